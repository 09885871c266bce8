//! The ledger of send times behind a budget: it answers "may I send now,
//! else how long until a slot frees". In memory for one process, or in
//! PostgreSQL ([`super::PgLedger`]) for every process that uses the API id.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::{Allowance, PriorityClass, Wants};

/// The outcome of asking the ledger for slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// Slots reserved now; each is one request that may be sent.
    pub granted: u32,
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

    /// Grant nothing for the next `pause`: a 429 said the id is overspent.
    fn block(&mut self, pause: Duration) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// A ledger for one process: exact, but blind to other consumers of the id
/// (and so to their priorities).
#[derive(Debug)]
pub struct InMemoryLedger {
    /// How long a send occupies its slot: the window plus the guard.
    life: Duration,
    /// Send times still inside the window, oldest first.
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl InMemoryLedger {
    /// An empty ledger for `allowance`'s window and guard.
    pub fn new(allowance: Allowance) -> Self {
        Self {
            life: allowance.window + allowance.guard,
            sent: VecDeque::with_capacity(allowance.requests as usize),
            blocked_until: None,
        }
    }

    fn reserve_at(&mut self, now: Instant, limit: u32, wanted: u32) -> Reservation {
        if let Some(until) = self.blocked_until.filter(|u| *u > now) {
            return Reservation {
                granted: 0,
                retry_in: until - now,
                lowest_admitted: PriorityClass::LOWEST,
            };
        }
        while self.sent.front().is_some_and(|t| *t + self.life <= now) {
            self.sent.pop_front();
        }
        let in_window = self.sent.len() as u32;
        let granted = wanted.min(limit.saturating_sub(in_window));
        self.sent.extend((0..granted).map(|_| now));
        let retry_in = if in_window + granted < limit {
            Duration::ZERO
        } else {
            self.sent.front().map_or(Duration::ZERO, |t| {
                (*t + self.life).saturating_duration_since(now)
            })
        };
        Reservation {
            granted,
            retry_in,
            lowest_admitted: PriorityClass::LOWEST,
        }
    }
}

impl Ledger for InMemoryLedger {
    async fn reserve(&mut self, limit: u32, wanted: Wants) -> Result<Reservation, LedgerError> {
        Ok(self.reserve_at(Instant::now(), limit, wanted.total()))
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
    fn a_lower_limit_leaves_room_unused() {
        let mut l = ledger(3, 1000);
        let t0 = Instant::now();
        let r = l.reserve_at(t0, 1, 3);
        assert_eq!((r.granted, r.retry_in), (1, Duration::from_millis(1000)));
    }
}
