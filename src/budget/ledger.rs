//! The ledger of send times behind a budget: it answers "may I send now,
//! else how long until a slot frees". In memory for one process, or in
//! PostgreSQL ([`super::PgLedger`]) for every process that uses the API id.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::{Allowance, PriorityClass, Wants};

/// The name of one reserved slot in its ledger (`sonnys.api_requests.id`
/// in PostgreSQL), by which it is settled.
pub type SlotId = i64;

/// The outcome of asking the ledger for slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Slots reserved now; each is one request that may be sent.
    pub granted: u32,
    /// The reserved slots' names, `granted` of them.
    pub slots: Vec<SlotId>,
    /// How long until a further slot may free (or, for a class held back,
    /// until it is worth asking again); zero if one is free now.
    pub retry_in: Duration,
    /// The least urgent class the slots may go to: classes below it were
    /// held back because another process waits with a more urgent one.
    pub lowest_admitted: PriorityClass,
}

/// The ledger could not be asked; the caller retries and sends nothing meanwhile.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the request ledger in PostgreSQL cannot be reached")]
    Database(#[from] sqlx::Error),
}

/// Send times of one API id, in a sliding window of the allowance's window
/// plus guard.
///
/// A slot is charged from its reservation until it is settled (its
/// request's answer or error came back), and for the window plus guard
/// after that: the vendor counts a request when it arrives, at some moment
/// between the two, so the slot's next use comes at least a window and
/// guard after that arrival however long the request took to get there.
/// A slot never settled (its process died) is charged from its reservation.
pub trait Ledger: Send + 'static {
    /// Reserve up to `wanted.total()` slots while keeping at most `limit`
    /// sends in the window, the most urgent classes first. Reserved slots
    /// are spent whether used or not. What is not granted waits: a shared
    /// ledger tells the other processes, which then hold back their less
    /// urgent requests until this budget asks again.
    fn reserve(
        &mut self,
        limit: u32,
        wanted: Wants,
    ) -> impl Future<Output = Result<Reservation, LedgerError>> + Send;

    /// Charge `slots` (reserved here, their requests answered or failed)
    /// from now on: each occupies its slot until a window plus guard after
    /// the later of its reservation and now.
    fn settle(&mut self, slots: &[SlotId]) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// Grant nothing for the next `pause`: a 429 said the id is overspent.
    fn block(&mut self, pause: Duration) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// A ledger for one process: exact, but blind to other consumers of the id
/// (and so to their priorities).
#[derive(Debug)]
pub struct InMemoryLedger {
    /// How long a send occupies its slot: the window plus the guard.
    life: Duration,
    /// Slots still inside the window: their names and when they were
    /// reserved or, once settled, the later of that and the settle.
    sent: Vec<(SlotId, Instant)>,
    next_id: SlotId,
    blocked_until: Option<Instant>,
}

impl InMemoryLedger {
    /// An empty ledger for `allowance`'s window and guard.
    pub fn new(allowance: Allowance) -> Self {
        Self {
            life: allowance.window + allowance.guard,
            sent: Vec::with_capacity(allowance.requests as usize),
            next_id: 0,
            blocked_until: None,
        }
    }

    fn reserve_at(&mut self, now: Instant, limit: u32, wanted: u32) -> Reservation {
        if let Some(until) = self.blocked_until.filter(|u| *u > now) {
            return Reservation {
                granted: 0,
                slots: Vec::new(),
                retry_in: until - now,
                lowest_admitted: PriorityClass::LOWEST,
            };
        }
        let life = self.life;
        self.sent.retain(|(_, t)| *t + life > now);
        let in_window = self.sent.len() as u32;
        let granted = wanted.min(limit.saturating_sub(in_window));
        let slots: Vec<SlotId> = (0..granted)
            .map(|_| {
                self.next_id += 1;
                self.next_id
            })
            .collect();
        self.sent.extend(slots.iter().map(|id| (*id, now)));
        let retry_in = if in_window + granted < limit {
            Duration::ZERO
        } else {
            self.sent
                .iter()
                .map(|(_, t)| *t)
                .min()
                .map_or(Duration::ZERO, |t| {
                    (t + self.life).saturating_duration_since(now)
                })
        };
        Reservation {
            granted,
            slots,
            retry_in,
            lowest_admitted: PriorityClass::LOWEST,
        }
    }

    fn settle_at(&mut self, now: Instant, slots: &[SlotId]) {
        for (id, t) in &mut self.sent {
            if slots.contains(id) {
                *t = (*t).max(now);
            }
        }
    }
}

impl Ledger for InMemoryLedger {
    async fn reserve(&mut self, limit: u32, wanted: Wants) -> Result<Reservation, LedgerError> {
        Ok(self.reserve_at(Instant::now(), limit, wanted.total()))
    }

    async fn settle(&mut self, slots: &[SlotId]) -> Result<(), LedgerError> {
        self.settle_at(Instant::now(), slots);
        Ok(())
    }

    async fn block(&mut self, pause: Duration) -> Result<(), LedgerError> {
        let until = Instant::now() + pause;
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(requests: u32, window_ms: u64) -> InMemoryLedger {
        InMemoryLedger::new(Allowance {
            requests,
            window: Duration::from_millis(window_ms),
            guard: Duration::ZERO,
        })
    }

    #[test]
    fn grants_up_to_the_limit_then_names_when_the_oldest_leaves() {
        let mut l = ledger(3, 1000);
        let t0 = Instant::now();
        assert_eq!(l.reserve_at(t0, 3, 2).granted, 2);
        let t1 = t0 + Duration::from_millis(400);
        let r = l.reserve_at(t1, 3, 5);
        assert_eq!(r.granted, 1);
        assert_eq!(r.retry_in, Duration::from_millis(600));
        let r = l.reserve_at(t0 + Duration::from_millis(1000), 3, 5);
        assert_eq!(r.granted, 2, "the first two left the window");
    }

    #[test]
    fn a_slot_is_charged_until_its_request_is_settled() {
        // A window of 1000 ms and a guard of 100 ms: slots live 1100 ms.
        let mut l = InMemoryLedger::new(Allowance {
            requests: 1,
            window: Duration::from_millis(1000),
            guard: Duration::from_millis(100),
        });
        let t0 = Instant::now();
        let first = l.reserve_at(t0, 1, 1);
        assert_eq!(first.granted, 1);
        // The request takes longer than the guard: the vendor may count it
        // up to 400 ms after the reservation, when its answer came back.
        l.settle_at(t0 + Duration::from_millis(400), &first.slots);
        // Charged from the reservation, the slot would free at 1100 ms,
        // 700 ms after the vendor counted the request: inside its window.
        let r = l.reserve_at(t0 + Duration::from_millis(1100), 1, 1);
        assert_eq!(
            r.granted, 0,
            "the slot is held a window and guard past the answer"
        );
        assert_eq!(r.retry_in, Duration::from_millis(400));
        let r = l.reserve_at(t0 + Duration::from_millis(1500), 1, 1);
        assert_eq!(r.granted, 1);
        // Settling never frees a slot earlier than its reservation did.
        l.settle_at(t0, &r.slots);
        assert_eq!(
            l.reserve_at(t0 + Duration::from_millis(2599), 1, 1).granted,
            0
        );
        assert_eq!(
            l.reserve_at(t0 + Duration::from_millis(2600), 1, 1).granted,
            1
        );
    }

    #[test]
    fn a_lower_limit_leaves_room_unused() {
        let mut l = ledger(3, 1000);
        let t0 = Instant::now();
        let r = l.reserve_at(t0, 1, 3);
        assert_eq!((r.granted, r.retry_in), (1, Duration::from_millis(1000)));
    }
}
