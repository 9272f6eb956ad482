//! Group commit: ingests that arrive in one isolate while a write is in flight wait and are then
//! written together in one D1 transaction. Every request still answers only after its points are
//! committed. Waiting requests poll shared memory on a short timer of their own: the Workers
//! runtime cancels a request that waits on a promise only another request could settle, so no
//! cross-request wake-ups are used.

use crate::domain::config::Config;
use crate::domain::error::{ApiError, Code};
use crate::domain::ingest::Batch;
use crate::platform::db::{Cost, Db};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// A round carries at most this many points (the writer's own batch first), which keeps the one
/// JSON parameter well below D1's 2 MB limit for a value.
const MAX_POINTS_PER_ROUND: usize = 10_000;
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

thread_local! {
    /// When the round in flight started (ms), if one is.
    static WRITING_SINCE: Cell<Option<f64>> = const { Cell::new(None) };
    static NEXT_TICKET: Cell<u64> = const { Cell::new(0) };
    static QUEUE: RefCell<VecDeque<(u64, Batch)>> = const { RefCell::new(VecDeque::new()) };
    static DONE: RefCell<HashMap<u64, Outcome>> = RefCell::new(HashMap::new());
    static LAST_ROUND: Cell<usize> = const { Cell::new(1) };
}

fn now_ms() -> f64 {
    worker::js_sys::Date::now()
}

/// Neither confirmed nor denied: the transaction may or may not have committed.
fn unconfirmed() -> ApiError {
    ApiError::new(
        Code::WriteUnconfirmed,
        "the write did not confirm; the points may or may not have been stored",
    )
}

/// Writes `batch`, alone or together with batches of concurrent requests.
pub async fn write(db: &Db, batch: Batch, cfg: &Config, now: f64) -> Outcome {
    let ticket = NEXT_TICKET.with(|n| {
        let t = n.get();
        n.set(t.wrapping_add(1));
        t
    });
    let arrived = now_ms();
    QUEUE.with(|q| q.borrow_mut().push_back((ticket, batch)));
    loop {
        if let Some(outcome) = DONE.with(|d| d.borrow_mut().remove(&ticket)) {
            return outcome;
        }
        let t = now_ms();
        let free = WRITING_SINCE.with(|w| match w.get() {
            Some(since) if t - since < STALE_ROUND_MS => false,
            _ => {
                w.set(Some(t));
                true
            }
        });
        if free {
            return lead(db, ticket, cfg, now).await;
        }
        if t - arrived > MAX_WAIT_MS {
            QUEUE.with(|q| q.borrow_mut().retain(|(id, _)| *id != ticket));
            return Err(unconfirmed());
        }
        worker::Delay::from(POLL).await;
    }
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
    let round = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        let Some(pos) = q.iter().position(|(t, _)| *t == ticket) else {
            return Vec::new();
        };
        let mut taken: Vec<(u64, Batch)> = q.remove(pos).into_iter().collect();
        let mut points = taken.iter().map(|(_, b)| b.len).sum::<usize>();
        let mut rest = VecDeque::new();
        while let Some((t, b)) = q.pop_front() {
            if points + b.len <= MAX_POINTS_PER_ROUND {
                points += b.len;
                taken.push((t, b));
            } else {
                rest.push_back((t, b));
            }
        }
        *q = rest;
        taken
    });
    if round.is_empty() {
        // Our batch was dropped by a waiting deadline in a past life of this ticket; nothing to do.
        return Err(unconfirmed());
    }
    guard.taken = true;
    guard.riders = round.iter().skip(1).map(|(t, _)| *t).collect();
    LAST_ROUND.with(|l| l.set(round.len()));
    let combined = Batch::combine(round.iter().map(|(_, b)| b));
    let before = db.cost();
    let result = db.ingest(&combined, cfg, now).await;
    let cost = db.cost().since(before);
    let requests = round.len();
    DONE.with(|d| {
        let mut d = d.borrow_mut();
        for t in &guard.riders {
            let shared = result.clone().map(|_| Written {
                cost,
                requests,
                led: false,
            });
            d.insert(*t, shared);
        }
    });
    guard.finished = true;
    result.map(|_| Written {
        cost,
        requests,
        led: true,
    })
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
            QUEUE.with(|q| q.borrow_mut().retain(|(t, _)| *t != own));
        } else if !self.finished {
            DONE.with(|d| {
                let mut d = d.borrow_mut();
                for t in &self.riders {
                    d.insert(*t, Err(unconfirmed()));
                }
            });
        }
        WRITING_SINCE.with(|w| w.set(None));
    }
}
