//! Group commit: ingests that arrive in one isolate while a write is in flight wait and are then
//! written together in one D1 transaction. Every request still answers only after its points are
//! committed. Waiting requests poll shared memory on a short timer of their own: the Workers
//! runtime cancels a request that waits on a promise only another request could settle, so no
//! cross-request wake-ups are used.

use crate::domain::config::Config;
use crate::domain::error::{ApiError, Code};
use crate::domain::ingest::{Batch, SeriesHash};
use crate::domain::round::{self, MAX_PARAM_BYTES};
use crate::platform::db::{Cost, Db, Wrote};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(2);
/// Under concurrency (the previous round carried other requests) a writer waits this long before
/// taking the queue, so that more requests share its transaction, as databases delay commits.
const GATHER: Duration = Duration::from_millis(2);
/// A round older than this lost its writer (a request the runtime abandoned without dropping its
/// future); the next request takes over instead of waiting for it forever.
const STALE_ROUND_MS: f64 = 15_000.0;
/// A waiting request gives up after this long and says its write is unconfirmed.
const MAX_WAIT_MS: f64 = 30_000.0;

/// What a request learns about the write that carried its points.
#[derive(Clone, Copy)]
pub struct Written {
    /// The D1 cost of the whole round.
    pub cost: Cost,
    /// How many requests shared it.
    pub requests: usize,
    /// Whether this request's Db made the call (its cost is already counted there).
    pub led: bool,
}

type Outcome = Result<Written, ApiError>;

/// One request's write: its batch as SQL parameters, each at most MAX_PARAM_BYTES.
struct Member {
    ticket: u64,
    params: Vec<String>,
    bytes: usize,
    /// Every series of the batch has one partial bucket (`Batch::one_partial_each`).
    one_each: bool,
    /// Its series, as `series_key` spells them.
    keys: Vec<u64>,
}

/// How many series this isolate remembers as written; past it, it forgets them all.
const KNOWN_MAX: usize = 50_000;

/// A series as the set of known ones holds it: a hash, 8 bytes whatever its name and labels. Two
/// series with the same hash only cost the one not written its retry (`Wrote::SeriesMissing`).
fn series_key(chart: &str, labels: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = SeriesHash::default();
    h.write(chart.as_bytes());
    h.write(&[0]);
    h.write(labels.as_bytes());
    h.finish()
}

thread_local! {
    /// The round in flight, if one is: its leader's ticket and when it started (ms). Only that
    /// leader clears it, so a leader taken over as stale cannot end its successor's round.
    static WRITING: Cell<Option<(u64, f64)>> = const { Cell::new(None) };
    /// Tickets whose request stopped waiting: an outcome for them is dropped, not kept forever.
    static ABANDONED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    static NEXT_TICKET: Cell<u64> = const { Cell::new(0) };
    static QUEUE: RefCell<VecDeque<Member>> = const { RefCell::new(VecDeque::new()) };
    static DONE: RefCell<HashMap<u64, Outcome>> = RefCell::new(HashMap::new());
    static LAST_ROUND: Cell<usize> = const { Cell::new(1) };
    /// Series this isolate has written, so that a write into them leaves out the statements
    /// that make sure they exist (three rows read per point). A series deleted since (its chart
    /// deleted, or emptied by retention) makes that write store nothing, and it is made again
    /// in full (`Wrote::SeriesMissing`): a wrong entry costs a call, never a point.
    static KNOWN: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
}

fn now_ms() -> f64 {
    worker::js_sys::Date::now()
}

/// Writes `batch`, alone or together with batches of concurrent requests.
pub async fn write(db: &Db, batch: &Batch, cfg: &Config, now: f64) -> Outcome {
    // Serialized here, by the request itself, so that the writer of a round only joins texts.
    let params = sql_params(batch);
    let ticket = NEXT_TICKET.with(|n| {
        let t = n.get();
        n.set(t.wrapping_add(1));
        t
    });
    let arrived = now_ms();
    let bytes = params.iter().map(String::len).sum();
    QUEUE.with(|q| {
        q.borrow_mut().push_back(Member {
            ticket,
            params,
            bytes,
            one_each: batch.one_partial_each(),
            keys: batch
                .series
                .iter()
                .map(|s| series_key(s.chart.as_str(), &s.labels.canonical()))
                .collect(),
        })
    });
    loop {
        if let Some(outcome) = DONE.with(|d| d.borrow_mut().remove(&ticket)) {
            return outcome;
        }
        let t = now_ms();
        let free = WRITING.with(|w| match w.get() {
            Some((_, since)) if t - since < STALE_ROUND_MS => false,
            _ => {
                w.set(Some((ticket, t)));
                true
            }
        });
        if free {
            return lead(db, ticket, cfg, now).await;
        }
        if t - arrived > MAX_WAIT_MS {
            let queued = QUEUE.with(|q| {
                let mut q = q.borrow_mut();
                let before = q.len();
                q.retain(|m| m.ticket != ticket);
                q.len() < before
            });
            if !queued {
                // A round has our batch; whatever it learns is for nobody now.
                ABANDONED.with(|a| a.borrow_mut().push(ticket));
            }
            return Err(ApiError::write_unconfirmed());
        }
        worker::Delay::from(POLL).await;
    }
}

/// Takes this request's write and the waiting ones that fit (`round::take`) off the queue.
fn take_round(ticket: u64) -> Vec<Member> {
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        let Some(pos) = q.iter().position(|m| m.ticket == ticket) else {
            return Vec::new();
        };
        let Some(own) = q.remove(pos) else {
            return Vec::new();
        };
        let sizes: Vec<usize> = q.iter().map(|m| m.bytes).collect();
        let joins = round::take(own.bytes, &sizes);
        let mut taken = vec![own];
        let mut rest = VecDeque::with_capacity(q.len());
        for (m, join) in q.drain(..).zip(joins) {
            if join {
                taken.push(m);
            } else {
                rest.push_back(m);
            }
        }
        *q = rest;
        taken
    })
}

/// Writes one round: this request's batch first, then waiting ones in arrival order while they fit.
async fn lead(db: &Db, ticket: u64, cfg: &Config, now: f64) -> Outcome {
    let mut guard = Round {
        own: ticket,
        riders: Vec::new(),
        taken: false,
        finished: false,
    };
    if LAST_ROUND.with(Cell::get) > 1 {
        worker::Delay::from(GATHER).await;
    }
    let members = take_round(ticket);
    if members.is_empty() {
        // Our batch was dropped by a waiting deadline in a past life of this ticket; nothing to do.
        return Err(ApiError::write_unconfirmed());
    }
    guard.taken = true;
    guard.riders = members.iter().skip(1).map(|m| m.ticket).collect();
    LAST_ROUND.with(|l| l.set(members.len()));
    let mut outcomes = write_together(db, &members, cfg, now).await;
    let own = outcomes.remove(0);
    deliver(&guard.riders, outcomes);
    guard.finished = true;
    own.map(|w| Written { led: true, ..w })
}

/// Hands each waiting request its outcome, unless it has stopped waiting.
fn deliver(riders: &[u64], outcomes: impl IntoIterator<Item = Outcome>) {
    DONE.with(|d| {
        ABANDONED.with(|a| {
            let (mut d, mut a) = (d.borrow_mut(), a.borrow_mut());
            for (t, outcome) in riders.iter().zip(outcomes) {
                match a.iter().position(|x| x == t) {
                    Some(i) => {
                        a.swap_remove(i);
                    }
                    None => {
                        d.insert(*t, outcome);
                    }
                }
            }
        })
    });
}

/// Writes members in one transaction. Only a refusal by the series limit is certain to have
/// rolled back; then the members are written again in halves, so that the request at fault fails
/// alone in a few calls. Any other failure may have committed, so writing again could store the
/// points twice: every member then learns that its write is unconfirmed.
async fn write_together(db: &Db, members: &[Member], cfg: &Config, now: f64) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = (0..members.len()).map(|_| None).collect();
    let mut pending = vec![(0, members.len())];
    let mut queries = 0;
    while let Some((from, to)) = pending.pop() {
        let group = &members[from..to];
        let packed = round::pack(
            group
                .iter()
                .flat_map(|m| m.params.iter().map(String::as_str)),
            MAX_PARAM_BYTES,
        );
        // Two statements a parameter. Past the budget (but never for the first call), these
        // members were certainly not written: they may send again.
        queries += 2 * packed.len();
        if queries > round::MAX_QUERIES && queries > 2 * packed.len() {
            for slot in &mut outcomes[from..to] {
                *slot = Some(Err(ApiError::busy()));
            }
            continue;
        }
        let before = db.cost();
        // Alone, a batch of one partial per series needs no folding in SQL; members of a round
        // may share a series.
        let one_each = group.len() == 1 && group[0].one_each && packed.len() == 1;
        let known = KNOWN.with(|k| {
            let k = k.borrow();
            group
                .iter()
                .all(|m| m.keys.iter().all(|key| k.contains(key)))
        });
        let mut result = db
            .ingest(&as_strs(&packed), one_each, known, cfg, now)
            .await;
        let mut made_sure = !known;
        if result == Ok(Wrote::SeriesMissing) {
            made_sure = true;
            // Nothing was stored: forget these series and write again, making sure of them.
            KNOWN.with(|k| {
                let mut k = k.borrow_mut();
                for key in group.iter().flat_map(|m| &m.keys) {
                    k.remove(key);
                }
            });
            queries += 2 * packed.len();
            result = db
                .ingest(&as_strs(&packed), one_each, false, cfg, now)
                .await;
        }
        let cost = db.cost().since(before);
        match result {
            Ok(_) => {
                if made_sure {
                    remember(group);
                }
                for slot in &mut outcomes[from..to] {
                    *slot = Some(Ok(Written {
                        cost,
                        requests: group.len(),
                        led: false,
                    }));
                }
            }
            Err(e) if e.code == Code::TooManySeries && group.len() > 1 => {
                let mid = from + group.len() / 2;
                pending.push((mid, to));
                pending.push((from, mid));
            }
            Err(e) => {
                for slot in &mut outcomes[from..to] {
                    *slot = Some(Err(e.clone()));
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(ApiError::write_unconfirmed())))
        .collect()
}

/// Keeps the series of members just written, as existing.
fn remember(group: &[Member]) {
    KNOWN.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() > KNOWN_MAX {
            k.clear();
        }
        k.extend(group.iter().flat_map(|m| m.keys.iter().copied()));
    });
}

/// The batch as D1-sized SQL parameters.
fn sql_params(batch: &Batch) -> Vec<String> {
    batch.to_sql_params(MAX_PARAM_BYTES)
}

fn as_strs(params: &[String]) -> Vec<&str> {
    params.iter().map(String::as_str).collect()
}

/// Ends a round, also when its future is dropped half-way: before the queue was taken, this
/// request's batch leaves the queue so that nobody writes it later; after, the requests it carried
/// learn that their write is unconfirmed. Either way the next writer may start.
struct Round {
    own: u64,
    riders: Vec<u64>,
    taken: bool,
    finished: bool,
}

impl Drop for Round {
    fn drop(&mut self) {
        if !self.taken {
            let own = self.own;
            QUEUE.with(|q| q.borrow_mut().retain(|m| m.ticket != own));
        } else if !self.finished {
            deliver(
                &self.riders,
                self.riders
                    .iter()
                    .map(|_| Err(ApiError::write_unconfirmed())),
            );
        }
        let own = self.own;
        WRITING.with(|w| {
            if w.get().is_some_and(|(leader, _)| leader == own) {
                w.set(None);
            }
        });
    }
}
