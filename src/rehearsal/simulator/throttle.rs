//! The service's throttle, as documented: a fixed window per API id that the
//! first request opens and every request — rejected ones included — counts.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// The state of one API id's current window.
#[derive(Clone, Debug)]
struct Window {
    opened: Instant,
    count: u32,
    /// When the window's requests arrived, for [`Throttle::arrivals`]; at
    /// most [`KEPT_ARRIVALS`].
    arrivals: Vec<Instant>,
}

/// Arrival stamps kept per window: enough to show how a window filled.
const KEPT_ARRIVALS: usize = 64;

/// The verdict on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Whether the request is within the limit.
    pub allowed: bool,
    /// How many requests the current window has counted, this one included.
    pub count: u32,
}

/// Fixed-window request counters keyed by API id.
#[derive(Debug)]
pub(crate) struct Throttle {
    limit: u32,
    window: Duration,
    windows: HashMap<String, Window>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            windows: HashMap::new(),
        }
    }

    /// Changes the limit; open windows are dropped so the new window length
    /// applies from the next request.
    pub fn reconfigure(&mut self, limit: u32, window: Duration) {
        self.limit = limit;
        self.window = window;
        self.windows.clear();
    }

    /// Counts one request of `key` at `now`.
    pub fn hit(&mut self, key: &str, now: Instant) -> Verdict {
        let window = self.window;
        let entry = self.windows.entry(key.to_string()).or_insert(Window {
            opened: now,
            count: 0,
            arrivals: Vec::new(),
        });
        if now.duration_since(entry.opened) >= window {
            *entry = Window {
                opened: now,
                count: 0,
                arrivals: Vec::new(),
            };
        }
        entry.count = entry.count.saturating_add(1);
        if entry.arrivals.len() < KEPT_ARRIVALS {
            entry.arrivals.push(now);
        }
        Verdict {
            allowed: entry.count <= self.limit,
            count: entry.count,
        }
    }
}

impl Throttle {
    /// When the requests of `key`'s current window arrived, oldest first
    /// (the first one opened the window).
    pub fn arrivals(&self, key: &str) -> Vec<Instant> {
        self.windows
            .get(key)
            .map(|w| w.arrivals.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_plus_one_is_rejected_until_the_window_expires() {
        let mut t = Throttle::new(3, Duration::from_secs(15));
        let t0 = Instant::now();
        for i in 1..=3 {
            assert!(t.hit("a", t0).allowed, "request {i}");
        }
        assert_eq!(
            t.hit("a", t0 + Duration::from_secs(14)),
            Verdict {
                allowed: false,
                count: 4
            }
        );
        // Another id has its own budget.
        assert!(t.hit("b", t0).allowed);
        // Expiry is measured from the first request, not the last.
        assert_eq!(t.hit("a", t0 + Duration::from_secs(15)).count, 1);
    }

    #[test]
    fn hammering_keeps_counting() {
        let mut t = Throttle::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        let counts: Vec<u32> = (0..5).map(|_| t.hit("a", t0).count).collect();
        assert_eq!(counts, vec![1, 2, 3, 4, 5]);
    }
}
