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
//!
//! The queue decides who goes next; a [`Ledger`] of send times decides
//! whether anyone may go now. [`InMemoryLedger`] sees this process only;
//! [`PgLedger`] keeps the send times in PostgreSQL, so that every process
//! using an API id (the service, a backfill beside it, replicas) shares its
//! one allowance — and its pause after a 429.
//!
//! Each request also has a [`PriorityClass`], the budget handle's: nightly
//! work is [`PriorityClass::Normal`], history (a backfill, `sync --priority
//! background`) [`PriorityClass::Background`]. The queue serves a higher
//! class first, and the shared ledger makes it hold across processes: no
//! process takes a slot for a background request while another waits with
//! a normal one.

mod class;
mod ledger;
mod pg_ledger;

pub use class::{PriorityClass, Wants};
pub use ledger::{InMemoryLedger, Ledger, LedgerError, Reservation, SlotId};
pub use pg_ledger::{PgLedger, HELD_BACK_RETRY, WAITER_GRACE};

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

use crate::domain::ApiId;

/// What a request is for, within its [`PriorityClass`]; lower is served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Polling a job that is probably ready: finishes work already paid for.
    Poll,
    /// Submitting a further page of a day already open.
    Continue,
    /// Opening new work: a new day's first pages, the site list.
    Open,
    /// Labour and membership reads: served only when no transaction
    /// request of this process is waiting, so they never delay the export.
    Background,
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
    /// Requests waiting for a slot after the latest grant: 0 means the
    /// budget has slack.
    pub queued: usize,
}

/// A shared request budget. Cheap to clone; all clones share one queue.
/// A handle asks at its [`PriorityClass`] ([`Budget::with_class`]; normal
/// unless said otherwise).
#[derive(Clone)]
pub struct Budget {
    tx: mpsc::UnboundedSender<Message>,
    stats: Arc<Mutex<BudgetStats>>,
    /// The class of this handle's requests, shared with its clones.
    class: Arc<AtomicU8>,
}

/// The budget's owner task has stopped; only at shutdown.
#[derive(Debug, thiserror::Error)]
#[error("the request budget is closed")]
pub struct Closed;

enum Message {
    Acquire {
        class: PriorityClass,
        priority: Priority,
        lane: Arc<str>,
        reply: oneshot::Sender<SlotId>,
    },
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// A granted slot's request was answered (or failed, or was dropped).
    Settled(SlotId),
}

/// The right to send one request, from [`Budget::acquire`]. Keep it until
/// the request's answer (or error) came back, then drop it: the vendor
/// counts the request at its arrival, somewhere in between, so the slot is
/// charged until the drop, and for the window plus guard after it.
#[derive(Debug)]
pub struct Slot {
    id: SlotId,
    tx: mpsc::UnboundedSender<Message>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::Settled(self.id));
    }
}

impl Budget {
    /// Start a budget that sees this process only (an [`InMemoryLedger`]).
    /// Must be called within a tokio runtime; the budget's task ends when the
    /// last clone is dropped.
    pub fn new(allowance: Allowance) -> Self {
        Self::with_ledger(allowance, InMemoryLedger::new(allowance))
    }

    /// Start a budget whose slots are reserved in `ledger`, e.g. a
    /// [`PgLedger`] shared with every other process on the same API id.
    pub fn with_ledger(allowance: Allowance, ledger: impl Ledger) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(BudgetStats {
            pace: allowance.requests,
            ..Default::default()
        }));
        tokio::spawn(run(allowance, ledger, rx, stats.clone()));
        Self {
            tx,
            stats,
            class: Arc::new(AtomicU8::new(PriorityClass::Normal as u8)),
        }
    }

    /// A handle on the same budget (the same queue and slots) whose requests
    /// go at `class`, e.g. [`PriorityClass::Background`] for a backfill
    /// beside the nightly work. Its clones share its class.
    pub fn with_class(&self, class: PriorityClass) -> Budget {
        Budget {
            tx: self.tx.clone(),
            stats: self.stats.clone(),
            class: Arc::new(AtomicU8::new(class as u8)),
        }
    }

    /// Change the class of this handle and its clones, for the requests they
    /// ask for from now on.
    pub fn set_class(&self, class: PriorityClass) {
        self.class.store(class as u8, Ordering::Relaxed);
    }

    pub fn class(&self) -> PriorityClass {
        PriorityClass::from_level(i16::from(self.class.load(Ordering::Relaxed)))
    }

    /// Wait for the right to send one request. `lane` names who asks (a site),
    /// for fairness between sites. Hold the [`Slot`] until the request's
    /// answer or error came back.
    pub async fn acquire(&self, priority: Priority, lane: &str) -> Result<Slot, Closed> {
        let (reply, granted) = oneshot::channel();
        self.tx
            .send(Message::Acquire {
                class: self.class(),
                priority,
                lane: Arc::from(lane),
                reply,
            })
            .map_err(|_| Closed)?;
        let id = granted.await.map_err(|_| Closed)?;
        Ok(Slot {
            id,
            tx: self.tx.clone(),
        })
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
    class: PriorityClass,
    priority: Priority,
    /// Virtual time of this request: a lane's requests get successive tags,
    /// so lanes take turns however many requests each has queued.
    tag: u64,
    seq: u64,
    reply: oneshot::Sender<SlotId>,
}

impl Waiter {
    /// The most urgent class first, then the priority, then fair queuing.
    fn order(&self) -> (Reverse<PriorityClass>, Priority, u64, u64) {
        (Reverse(self.class), self.priority, self.tag, self.seq)
    }
}

/// The local side of a budget: who goes next, and how fast after a 429.
/// Whether anyone may go at all is the ledger's to say.
struct Queue {
    allowance: Allowance,
    pace: u32,
    paused_until: Option<Instant>,
    /// A 429's pause not yet written to the ledger.
    unpublished_pause: Option<Duration>,
    /// When the ledger said a slot may free; it is not asked before then.
    ledger_free_at: Option<Instant>,
    /// The class the ledger last recorded this budget as waiting with
    /// (`None`: not waiting). A waiter of a more urgent class makes the
    /// budget ask the ledger at once, so that other processes hold back.
    registered: Option<PriorityClass>,
    /// Ledger failures in a row, for the backoff.
    failures: u32,
    /// When the pace was last lowered or raised.
    pace_changed: Instant,
    waiters: Vec<Waiter>,
    /// Slots whose requests were answered, not yet written to the ledger.
    settled: Vec<SlotId>,
    /// The last tag given to each lane of each class (a site's backfill and
    /// its nightly days take turns with the other sites apart).
    last_tag: HashMap<(PriorityClass, Arc<str>), u64>,
    /// The tag of the latest grant: a lane that was idle starts here, not
    /// where it left off, so it shares fairly instead of bursting to catch up.
    clock: u64,
    seq: u64,
}

impl Queue {
    fn new(allowance: Allowance) -> Self {
        Self {
            allowance,
            pace: allowance.requests.max(1),
            paused_until: None,
            unpublished_pause: None,
            ledger_free_at: None,
            registered: None,
            failures: 0,
            pace_changed: Instant::now(),
            waiters: Vec::new(),
            settled: Vec::new(),
            last_tag: HashMap::new(),
            clock: 0,
            seq: 0,
        }
    }

    fn slot_life(&self) -> Duration {
        self.allowance.window + self.allowance.guard
    }

    fn enqueue(
        &mut self,
        class: PriorityClass,
        priority: Priority,
        lane: Arc<str>,
        reply: oneshot::Sender<SlotId>,
    ) {
        let last = self.last_tag.entry((class, lane)).or_insert(0);
        let tag = (*last).max(self.clock) + 1;
        *last = tag;
        self.seq += 1;
        self.waiters.push(Waiter {
            class,
            priority,
            tag,
            seq: self.seq,
            reply,
        });
    }

    fn handle(&mut self, message: Message, stats: &Mutex<BudgetStats>) {
        match message {
            Message::Acquire {
                class,
                priority,
                lane,
                reply,
            } => self.enqueue(class, priority, lane, reply),
            Message::RateLimited { retry_after } => {
                self.rate_limited(Instant::now(), retry_after);
                stats.lock().unwrap_or_else(|e| e.into_inner()).rate_limited += 1;
            }
            Message::Settled(id) => self.settled.push(id),
        }
    }

    /// Write the settled slots to the ledger, so that each stays charged a
    /// window plus guard past its answer. Until written, a slot is charged
    /// from its reservation only, so this comes before the next
    /// reservation; on failure they are kept and written again.
    async fn write_settled(&mut self, ledger: &mut impl Ledger) -> bool {
        if self.settled.is_empty() {
            return true;
        }
        match ledger.settle(&self.settled).await {
            Ok(()) => {
                self.settled.clear();
                true
            }
            Err(error) => {
                tracing::warn!(error = %error, cause = ?std::error::Error::source(&error), "cannot settle request slots in the request ledger; retrying");
                false
            }
        }
    }

    fn rate_limited(&mut self, now: Instant, retry_after: Option<Duration>) {
        let pause = retry_after.unwrap_or_default().max(self.slot_life());
        let until = now + pause;
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        self.unpublished_pause = Some(self.unpublished_pause.map_or(pause, |p| p.max(pause)));
        // Another consumer spends part of the id: leave it more room.
        self.pace = (self.pace * 3 / 4).max(1);
        self.pace_changed = now;
    }

    /// Tell every consumer of the id about a 429, best effort: the local
    /// pause holds regardless.
    async fn publish_pause(&mut self, ledger: &mut impl Ledger) {
        let Some(pause) = self.unpublished_pause.take() else {
            return;
        };
        if let Err(error) = ledger.block(pause).await {
            tracing::warn!(error = %error, cause = ?std::error::Error::source(&error), "cannot share a 429's pause through the request ledger; retrying");
            self.unpublished_pause = Some(pause);
        }
    }

    /// When to look again for a slot that frees at `at`: a lowered pace
    /// recovers while waiting, so also then.
    fn look_again(&self, at: Instant, now: Instant) -> Instant {
        if self.pace < self.allowance.requests {
            at.min(self.pace_changed + self.slot_life()).max(now)
        } else {
            at
        }
    }

    /// Whether the ledger knows this budget waits with its most urgent class
    /// (waiting with the lowest class holds back nobody, so need not be told).
    fn ledger_knows(&self) -> bool {
        let Some(best) = self.waiters.iter().map(|w| w.class).max() else {
            return true;
        };
        best == PriorityClass::LOWEST || self.registered.is_some_and(|r| r >= best)
    }

    /// The slots to ask for: as many as waiters, up to the pace, for the
    /// most urgent classes first.
    fn wants(&self) -> Wants {
        let mut left = (self.waiters.len() as u32).min(self.pace);
        let mut wants = Wants::default();
        for class in PriorityClass::ALL.iter().rev() {
            let n = (self.waiters.iter().filter(|w| w.class == *class).count() as u32).min(left);
            wants.add(*class, n);
            left -= n;
        }
        wants
    }

    /// Grant every waiter that can go now; returns when to look again.
    /// Requests that arrive in `inbox` while the ledger is asked join the
    /// queue before the slots are handed out, so a slot reserved while a
    /// [`Priority::Background`] request was alone still goes to an export
    /// request that came meanwhile. A slot goes only to a class the ledger
    /// admitted.
    async fn grant(
        &mut self,
        ledger: &mut impl Ledger,
        stats: &Mutex<BudgetStats>,
        inbox: &mut mpsc::UnboundedReceiver<Message>,
    ) -> Option<Instant> {
        let now = Instant::now();
        let life = self.slot_life();
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
        stats.lock().unwrap_or_else(|e| e.into_inner()).queued = self.waiters.len();
        if self.waiters.is_empty() {
            return None;
        }
        if let Some(at) = self.ledger_free_at {
            if at > now && self.ledger_knows() {
                return Some(self.look_again(at, now));
            }
            self.ledger_free_at = None;
        }
        let wanted = self.wants();
        if !self.write_settled(ledger).await {
            // Never reserve while a slot is charged too short.
            return Some(Instant::now() + LEDGER_RETRY_FIRST);
        }
        let reservation = match ledger.reserve(self.pace, wanted).await {
            Ok(r) => r,
            Err(error) => {
                // Never send without a slot: wait and ask again.
                self.failures += 1;
                let backoff = LEDGER_RETRY_FIRST
                    .saturating_mul(1 << self.failures.min(8))
                    .min(LEDGER_RETRY_MAX);
                if self.failures == 1 || self.failures % 10 == 0 {
                    tracing::warn!(error = %error, cause = ?std::error::Error::source(&error), failures = self.failures, retry_ms = backoff.as_millis() as u64, "cannot reserve a request slot; no request is sent until one is reserved");
                }
                return Some(Instant::now() + backoff);
            }
        };
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "the request ledger answers again");
            self.failures = 0;
        }
        while let Ok(message) = inbox.try_recv() {
            self.handle(message, stats);
        }
        self.registered = wanted.waiting_after(reservation.granted);
        let mut slots = reservation.slots;
        while !slots.is_empty() {
            let Some(best) = self
                .waiters
                .iter()
                .enumerate()
                .filter(|(_, w)| w.class >= reservation.lowest_admitted)
                .min_by_key(|(_, w)| w.order())
                .map(|(i, _)| i)
            else {
                break;
            };
            let w = self.waiters.swap_remove(best);
            let Some(slot) = slots.pop() else { break };
            // A waiter that left passes its slot on; a slot nobody takes is
            // spent all the same (charged from its reservation: no request).
            if let Err(slot) = w.reply.send(slot) {
                slots.push(slot);
                continue;
            }
            self.clock = self.clock.max(w.tag);
            let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
            s.granted += 1;
            s.pace = self.pace;
            s.queued = self.waiters.len();
        }
        if self.waiters.is_empty() {
            return None;
        }
        let now = Instant::now();
        let at = now + reservation.retry_in;
        self.ledger_free_at = Some(at);
        if !self.ledger_knows() {
            // Requests wait that the ledger does not know of (they came while
            // it was asked, or were beyond the pace): tell it now, so that
            // other processes hold back for them.
            return Some(now);
        }
        Some(self.look_again(at, now))
    }
}

/// The first wait after the ledger fails; it doubles up to [`LEDGER_RETRY_MAX`].
const LEDGER_RETRY_FIRST: Duration = Duration::from_millis(25);
const LEDGER_RETRY_MAX: Duration = Duration::from_secs(2);

async fn run(
    allowance: Allowance,
    mut ledger: impl Ledger,
    mut rx: mpsc::UnboundedReceiver<Message>,
    stats: Arc<Mutex<BudgetStats>>,
) {
    let mut queue = Queue::new(allowance);
    let mut wake: Option<Instant> = None;
    loop {
        let message = match wake {
            Some(at) => tokio::select! {
                m = rx.recv() => Some(m),
                _ = sleep_until(at) => None,
            },
            None => Some(rx.recv().await),
        };
        if let Some(message) = message {
            let Some(message) = message else { return };
            queue.handle(message, &stats);
            // Take what else is already queued so one wake-up serves a burst
            // in priority order rather than arrival order.
            while let Ok(message) = rx.try_recv() {
                queue.handle(message, &stats);
            }
        }
        queue.publish_pause(&mut ledger).await;
        // Settles are written now even with nobody waiting: another
        // process may reserve next.
        let settled = queue.write_settled(&mut ledger).await;
        wake = queue.grant(&mut ledger, &stats, &mut rx).await;
        if !settled || !queue.settled.is_empty() {
            let retry = Instant::now() + LEDGER_RETRY_FIRST;
            wake = Some(wake.map_or(retry, |w| w.min(retry)));
        }
        if queue.unpublished_pause.is_some() {
            let retry = Instant::now() + LEDGER_RETRY_MAX;
            wake = Some(wake.map_or(retry, |w| w.min(retry)));
        }
    }
}

/// The budgets of all API ids in use: one per id, however many accounts or
/// workers use it. The default keeps its ledgers in memory; [`Budgets::shared`]
/// keeps them in PostgreSQL, shared with every other process.
#[derive(Clone, Default)]
pub struct Budgets {
    inner: Arc<Mutex<HashMap<ApiId, Budget>>>,
    /// Where the ledgers are shared; `None`: in this process only.
    pool: Option<PgPool>,
}

impl Budgets {
    /// Budgets whose ledgers live in `pool`'s database, so that every process
    /// using an API id keeps within its one allowance.
    pub fn shared(pool: PgPool) -> Self {
        Self {
            inner: Arc::default(),
            pool: Some(pool),
        }
    }

    pub fn get_or_create(&self, api_id: &ApiId, allowance: Allowance) -> Budget {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(api_id.clone())
            .or_insert_with(|| match &self.pool {
                Some(pool) => Budget::with_ledger(
                    allowance,
                    PgLedger::new(pool.clone(), api_id.clone(), allowance),
                ),
                None => Budget::new(allowance),
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger that fails its first `failures` reservations.
    struct Flaky {
        failures: u32,
        calls: Arc<Mutex<u32>>,
        inner: InMemoryLedger,
    }

    impl Ledger for Flaky {
        async fn reserve(&mut self, limit: u32, wanted: Wants) -> Result<Reservation, LedgerError> {
            *self.calls.lock().unwrap() += 1;
            if self.failures > 0 {
                self.failures -= 1;
                return Err(LedgerError::Database(sqlx::Error::PoolTimedOut));
            }
            self.inner.reserve(limit, wanted).await
        }

        async fn settle(&mut self, slots: &[SlotId]) -> Result<(), LedgerError> {
            self.inner.settle(slots).await
        }

        async fn block(&mut self, pause: Duration) -> Result<(), LedgerError> {
            self.inner.block(pause).await
        }
    }

    /// A ledger that takes a while to answer, like one in PostgreSQL.
    struct Slow(InMemoryLedger);

    impl Ledger for Slow {
        async fn reserve(&mut self, limit: u32, wanted: Wants) -> Result<Reservation, LedgerError> {
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.0.reserve(limit, wanted).await
        }

        async fn settle(&mut self, slots: &[SlotId]) -> Result<(), LedgerError> {
            self.0.settle(slots).await
        }

        async fn block(&mut self, pause: Duration) -> Result<(), LedgerError> {
            self.0.block(pause).await
        }
    }

    fn one_per_second() -> Allowance {
        Allowance {
            requests: 1,
            window: Duration::from_secs(1),
            guard: Duration::ZERO,
        }
    }

    /// Acquires `(priority, name)` in order, each queued before the next,
    /// and returns the names in the order they were granted.
    async fn grant_order(budget: &Budget, asks: &[(Priority, &'static str)]) -> Vec<&'static str> {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for &(priority, name) in asks {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                budget.acquire(priority, name).await.unwrap();
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        order
    }

    #[tokio::test(start_paused = true)]
    async fn background_requests_go_after_every_waiting_export_request() {
        let budget = Budget::new(one_per_second());
        budget.acquire(Priority::Open, "x").await.unwrap();
        // The background requests queued first; every export request
        // waiting when a slot frees still goes before them.
        let order = grant_order(
            &budget,
            &[
                (Priority::Background, "background 1"),
                (Priority::Background, "background 2"),
                (Priority::Open, "open"),
                (Priority::Continue, "continue"),
                (Priority::Poll, "poll"),
            ],
        )
        .await;
        assert_eq!(
            order,
            ["poll", "continue", "open", "background 1", "background 2"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_export_request_that_arrives_while_the_ledger_is_asked_beats_a_background_one() {
        let budget = Budget::with_ledger(
            one_per_second(),
            Slow(InMemoryLedger::new(one_per_second())),
        );
        budget.acquire(Priority::Open, "x").await.unwrap();
        let start = Instant::now();
        let order = Arc::new(Mutex::new(Vec::new()));
        let background = {
            let (budget, order) = (budget.clone(), order.clone());
            tokio::spawn(async move {
                budget
                    .acquire(Priority::Background, "people")
                    .await
                    .unwrap();
                order.lock().unwrap().push("background");
            })
        };
        // The slot frees about a second after the first grant; the budget
        // then asks the slow ledger, and this request arrives meanwhile.
        tokio::time::sleep_until(start + Duration::from_millis(1_005)).await;
        budget.acquire(Priority::Continue, "x").await.unwrap();
        order.lock().unwrap().push("continue");
        background.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["continue", "background"]);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_granted_while_the_ledger_fails_and_it_is_asked_again_soon() {
        let allowance = Allowance {
            requests: 20,
            window: Duration::from_secs(15),
            guard: Duration::ZERO,
        };
        let calls = Arc::new(Mutex::new(0));
        let budget = Budget::with_ledger(
            allowance,
            Flaky {
                failures: 3,
                calls: calls.clone(),
                inner: InMemoryLedger::new(allowance),
            },
        );
        let start = Instant::now();
        budget.acquire(Priority::Open, "a").await.unwrap();
        // Backoffs of 50, 100 and 200 ms, then the slot.
        assert_eq!(start.elapsed(), Duration::from_millis(350));
        assert_eq!(*calls.lock().unwrap(), 4);
        assert_eq!(budget.stats().granted, 1);
    }

    /// A ledger that records what each reservation asked for, and when.
    struct Recording {
        asked: Arc<Mutex<Vec<(Instant, Wants)>>>,
        inner: InMemoryLedger,
    }

    impl Ledger for Recording {
        async fn reserve(&mut self, limit: u32, wanted: Wants) -> Result<Reservation, LedgerError> {
            self.asked.lock().unwrap().push((Instant::now(), wanted));
            self.inner.reserve(limit, wanted).await
        }

        async fn settle(&mut self, slots: &[SlotId]) -> Result<(), LedgerError> {
            self.inner.settle(slots).await
        }

        async fn block(&mut self, pause: Duration) -> Result<(), LedgerError> {
            self.inner.block(pause).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_background_class_request_goes_after_every_normal_one_whatever_its_priority() {
        let budget = Budget::new(one_per_second());
        let backfill = budget.with_class(PriorityClass::Background);
        assert_eq!(backfill.class(), PriorityClass::Background);
        assert_eq!(budget.class(), PriorityClass::Normal);
        budget.acquire(Priority::Open, "x").await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let ask = |handle: &Budget, priority, name: &'static str| {
            let (handle, order) = (handle.clone(), order.clone());
            tokio::spawn(async move {
                handle.acquire(priority, "x").await.unwrap();
                order.lock().unwrap().push(name);
            })
        };
        let mut tasks = vec![ask(&backfill, Priority::Poll, "backfill poll")];
        tokio::task::yield_now().await;
        tasks.push(ask(&budget, Priority::Background, "people"));
        tokio::task::yield_now().await;
        tasks.push(ask(&budget, Priority::Open, "open"));
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["open", "people", "backfill poll"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_normal_request_behind_background_ones_asks_the_ledger_at_once() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let budget = Budget::with_ledger(
            one_per_second(),
            Recording {
                asked: asked.clone(),
                inner: InMemoryLedger::new(one_per_second()),
            },
        );
        let backfill = budget.with_class(PriorityClass::Background);
        let start = Instant::now();
        backfill.acquire(Priority::Open, "x").await.unwrap();
        let waiting = {
            let backfill = backfill.clone();
            tokio::spawn(async move { backfill.acquire(Priority::Open, "x").await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The window is full for another 900 ms; the ledger still hears of
        // the normal request now, so that other processes hold back for it.
        let normal = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.acquire(Priority::Open, "x").await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let calls = asked.lock().unwrap().clone();
        let (at, wants) = *calls.last().unwrap();
        assert_eq!(at - start, Duration::from_millis(100));
        assert_eq!(wants, Wants::of(PriorityClass::Normal, 1));
        normal.await.unwrap().unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(!waiting.is_finished(), "the background request goes after");
        waiting.await.unwrap().unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
