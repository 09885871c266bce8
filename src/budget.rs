//! One request budget per API id, shared by every worker that uses the id.
//!
//! The vendor counts requests in fixed windows that start at the first request
//! the server sees, so a client that keeps at most `allowance` requests in
//! *any* sliding window (plus a guard for network jitter) can never be the
//! cause of a 429 — and at the same time reaches the server's ceiling. A token
//! bucket does not have that property: it can send twice its capacity in one
//! window.
//!
//! Requests wait in one queue per budget. When a slot frees, the budget grants
//! it to the waiter with the best [`Priority`], and among those to the site
//! that has been served least, so a large site cannot starve a small one.
//! A 429 (another consumer overspent the id) pauses the budget past the window
//! and lowers its pace, which then recovers one request per clean window.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

use crate::domain::ApiId;

/// What a request is for; lower is served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Polling a job that is probably ready: finishes work already paid for.
    Poll,
    /// Submitting a further page of a day already open.
    Continue,
    /// Opening new work: a new day's first pages, the site list.
    Open,
}

/// The shape of one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Requests this daemon may send in any `window` (the vendor's limit less the reserve).
    pub requests: u32,
    pub window: Duration,
    /// Added to `window` before a slot is reused.
    pub guard: Duration,
}

/// Counters of one budget, for progress, metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetStats {
    pub granted: u64,
    pub rate_limited: u64,
    /// Current pace: requests per window after 429 feedback.
    pub pace: u32,
}

/// A shared request budget. Cheap to clone; all clones share one queue.
#[derive(Clone)]
pub struct Budget {
    tx: mpsc::UnboundedSender<Message>,
    stats: Arc<Mutex<BudgetStats>>,
}

/// The budget's owner task has stopped; only at shutdown.
#[derive(Debug, thiserror::Error)]
#[error("the request budget is closed")]
pub struct Closed;

enum Message {
    Acquire {
        priority: Priority,
        lane: Arc<str>,
        reply: oneshot::Sender<()>,
    },
    RateLimited {
        retry_after: Option<Duration>,
    },
}

impl Budget {
    /// Start a budget. Must be called within a tokio runtime; the budget's
    /// task ends when the last clone is dropped.
    pub fn new(allowance: Allowance) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(BudgetStats {
            pace: allowance.requests,
            ..Default::default()
        }));
        tokio::spawn(run(allowance, rx, stats.clone()));
        Self { tx, stats }
    }

    /// Wait for the right to send one request. `lane` names who asks (a site),
    /// for fairness between sites.
    pub async fn acquire(&self, priority: Priority, lane: &str) -> Result<(), Closed> {
        let (reply, granted) = oneshot::channel();
        self.tx
            .send(Message::Acquire {
                priority,
                lane: Arc::from(lane),
                reply,
            })
            .map_err(|_| Closed)?;
        granted.await.map_err(|_| Closed)
    }

    /// Tell the budget that a request was answered 429.
    pub fn rate_limited(&self, retry_after: Option<Duration>) {
        let _ = self.tx.send(Message::RateLimited { retry_after });
    }

    pub fn stats(&self) -> BudgetStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Waiter {
    priority: Priority,
    /// Virtual time of this request: a lane's requests get successive tags,
    /// so lanes take turns however many requests each has queued.
    tag: u64,
    seq: u64,
    reply: oneshot::Sender<()>,
}

struct State {
    allowance: Allowance,
    /// Send times still inside the sliding window, oldest first.
    sent: VecDeque<Instant>,
    pace: u32,
    paused_until: Option<Instant>,
    /// When the pace was last lowered or raised.
    pace_changed: Instant,
    waiters: Vec<Waiter>,
    /// The last tag given to each lane.
    last_tag: HashMap<Arc<str>, u64>,
    /// The tag of the latest grant: a lane that was idle starts here, not
    /// where it left off, so it shares fairly instead of bursting to catch up.
    clock: u64,
    seq: u64,
}

impl State {
    fn slot_life(&self) -> Duration {
        self.allowance.window + self.allowance.guard
    }

    fn enqueue(&mut self, priority: Priority, lane: Arc<str>, reply: oneshot::Sender<()>) {
        let last = self.last_tag.entry(lane).or_insert(0);
        let tag = (*last).max(self.clock) + 1;
        *last = tag;
        self.seq += 1;
        self.waiters.push(Waiter {
            priority,
            tag,
            seq: self.seq,
            reply,
        });
    }

    fn handle(&mut self, message: Message, stats: &Mutex<BudgetStats>) {
        match message {
            Message::Acquire {
                priority,
                lane,
                reply,
            } => self.enqueue(priority, lane, reply),
            Message::RateLimited { retry_after } => {
                self.rate_limited(Instant::now(), retry_after);
                stats.lock().unwrap_or_else(|e| e.into_inner()).rate_limited += 1;
            }
        }
    }

    fn rate_limited(&mut self, now: Instant, retry_after: Option<Duration>) {
        let until = now + retry_after.unwrap_or_default().max(self.slot_life());
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        // Another consumer spends part of the id: leave it more room.
        self.pace = (self.pace * 3 / 4).max(1);
        self.pace_changed = now;
    }

    /// Grant every waiter that can go now; returns when to look again.
    fn grant(&mut self, now: Instant, stats: &Mutex<BudgetStats>) -> Option<Instant> {
        let life = self.slot_life();
        while self.sent.front().is_some_and(|t| *t + life <= now) {
            self.sent.pop_front();
        }
        if let Some(until) = self.paused_until {
            if until > now {
                return Some(until);
            }
            self.paused_until = None;
        }
        if self.pace < self.allowance.requests && now >= self.pace_changed + life {
            self.pace += 1;
            self.pace_changed = now;
        }
        self.waiters.retain(|w| !w.reply.is_closed());
        while !self.waiters.is_empty() && (self.sent.len() as u32) < self.pace {
            let best = self
                .waiters
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| (w.priority, w.tag, w.seq))
                .map(|(i, _)| i)?;
            let w = self.waiters.swap_remove(best);
            if w.reply.send(()).is_err() {
                continue;
            }
            self.sent.push_back(now);
            self.clock = self.clock.max(w.tag);
            let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
            s.granted += 1;
            s.pace = self.pace;
        }
        if self.waiters.is_empty() {
            return None;
        }
        // Full: the oldest send leaves the window first. A lowered pace
        // recovers while waiting, so look again then too.
        let next_free = self.sent.front().map(|t| *t + life).unwrap_or(now);
        if self.pace < self.allowance.requests {
            Some(next_free.min(self.pace_changed + life).max(now))
        } else {
            Some(next_free)
        }
    }
}

async fn run(
    allowance: Allowance,
    mut rx: mpsc::UnboundedReceiver<Message>,
    stats: Arc<Mutex<BudgetStats>>,
) {
    let mut state = State {
        allowance,
        sent: VecDeque::with_capacity(allowance.requests as usize),
        pace: allowance.requests.max(1),
        paused_until: None,
        pace_changed: Instant::now(),
        waiters: Vec::new(),
        last_tag: HashMap::new(),
        clock: 0,
        seq: 0,
    };
    let mut wake: Option<Instant> = None;
    loop {
        let message = match wake {
            Some(at) => tokio::select! {
                m = rx.recv() => m,
                _ = sleep_until(at) => {
                    wake = state.grant(Instant::now(), &stats);
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(message) = message else { return };
        state.handle(message, &stats);
        // Take what else is already queued so one wake-up serves a burst in
        // priority order rather than arrival order.
        while let Ok(message) = rx.try_recv() {
            state.handle(message, &stats);
        }
        wake = state.grant(Instant::now(), &stats);
    }
}

/// The budgets of all API ids in use: one per id, however many accounts or
/// workers use it.
#[derive(Clone, Default)]
pub struct Budgets {
    inner: Arc<Mutex<HashMap<ApiId, Budget>>>,
}

impl Budgets {
    pub fn get_or_create(&self, api_id: &ApiId, allowance: Allowance) -> Budget {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(api_id.clone())
            .or_insert_with(|| Budget::new(allowance))
            .clone()
    }
}
