//! Group commit: ingests that arrive in one isolate while a write is in flight wait and are then
//! written together in one D1 transaction. Every request still answers only after its points are
//! committed; a lone request is written at once. Waiting requests poll shared memory on a short
//! timer of their own: the Workers runtime cancels a request that waits on a promise only another
//! request could settle, so no cross-request wake-ups are used.

use crate::core::config::Config;
use crate::core::error::ApiError;
use crate::core::ingest::Batch;
use crate::platform::db::{Cost, Db};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// A round takes waiting batches while the total stays under this many points, which keeps the
/// one JSON parameter well below D1's 2 MB limit for a value.
const MAX_POINTS_PER_ROUND: usize = 10_000;
const POLL: Duration = Duration::from_millis(2);
/// Under concurrency (the previous round carried other requests) a writer waits this long before
/// taking the queue, so that more requests share its transaction, as databases delay commits.
const GATHER: Duration = Duration::from_millis(2);

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
    static WRITING: Cell<bool> = const { Cell::new(false) };
    static NEXT_TICKET: Cell<u64> = const { Cell::new(0) };
    static QUEUE: RefCell<VecDeque<(u64, Batch)>> = const { RefCell::new(VecDeque::new()) };
    static DONE: RefCell<HashMap<u64, Outcome>> = RefCell::new(HashMap::new());
    static LAST_ROUND: Cell<usize> = const { Cell::new(1) };
}

/// Writes `batch`, alone or together with batches of concurrent requests.
pub async fn write(db: &Db, batch: Batch, cfg: &Config, now: f64) -> Outcome {
    let ticket = NEXT_TICKET.with(|n| {
        let t = n.get();
        n.set(t.wrapping_add(1));
        t
    });
    QUEUE.with(|q| q.borrow_mut().push_back((ticket, batch)));
    loop {
        if let Some(outcome) = DONE.with(|d| d.borrow_mut().remove(&ticket)) {
            return outcome;
        }
        if !WRITING.with(|w| w.replace(true)) {
            return lead(db, ticket, cfg, now).await;
        }
        worker::Delay::from(POLL).await;
    }
}

/// Writes one round: this request's batch and as many waiting ones as fit, in arrival order.
async fn lead(db: &Db, ticket: u64, cfg: &Config, now: f64) -> Outcome {
    let mut guard = Round {
        tickets: vec![ticket],
        finished: false,
    };
    if LAST_ROUND.with(Cell::get) > 1 {
        worker::Delay::from(GATHER).await;
    }
    let round = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        let mut taken: Vec<(u64, Batch)> = Vec::new();
        let mut points = 0;
        let mut rest = VecDeque::new();
        while let Some((t, b)) = q.pop_front() {
            if t == ticket || points + b.len <= MAX_POINTS_PER_ROUND {
                points += b.len;
                taken.push((t, b));
            } else {
                rest.push_back((t, b));
            }
        }
        *q = rest;
        taken
    });
    guard.tickets = round.iter().map(|(t, _)| *t).collect();
    LAST_ROUND.with(|l| l.set(round.len()));
    let combined = Batch::combine(round.iter().map(|(_, b)| b));
    let before = db.cost();
    let result = db.ingest(&combined, cfg, now).await;
    let cost = db.cost().since(before);
    let requests = round.len();
    DONE.with(|d| {
        let mut d = d.borrow_mut();
        for (t, _) in &round {
            if *t != ticket {
                let shared = result.clone().map(|_| Written {
                    cost,
                    requests,
                    led: false,
                });
                d.insert(*t, shared);
            }
        }
    });
    guard.finished = true;
    result.map(|_| Written {
        cost,
        requests,
        led: true,
    })
}

/// Ends a round: lets the next writer start, and if the round was dropped half-way, tells the
/// requests it carried that their points were not written, so none of them waits forever.
struct Round {
    tickets: Vec<u64>,
    finished: bool,
}

impl Drop for Round {
    fn drop(&mut self) {
        if !self.finished {
            DONE.with(|d| {
                let mut d = d.borrow_mut();
                for t in &self.tickets {
                    d.insert(*t, Err(ApiError::internal()));
                }
            });
        }
        WRITING.with(|w| w.set(false));
    }
}
