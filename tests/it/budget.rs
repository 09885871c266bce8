//! The request budget: never more than the allowance in any sliding window,
//! fair between sites, and recovering after a 429 burst. Time is paused, so
//! these run instantly and exactly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use sonnys_etl::budget::{Allowance, Budget, Priority};
use tokio::time::Instant;

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// The most grants that fall in any half-open interval of length `window`.
fn busiest_window(grants: &mut [Instant], window: Duration) -> usize {
    grants.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..grants.len() {
        while grants[hi] - grants[lo] >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_sliding_window_ever_holds_more_than_the_allowance(
        requests in 1u32..25,
        window_ms in 100u64..20_000,
        arrivals in proptest::collection::vec((0u64..40_000, 0usize..8, 0u8..3), 1..200),
    ) {
        let window = Duration::from_millis(window_ms);
        let grants = paused_runtime().block_on(async move {
            let budget = Budget::new(Allowance { requests, window, guard: Duration::ZERO });
            let start = Instant::now();
            let grants = Arc::new(Mutex::new(Vec::new()));
            let tasks: Vec<_> = arrivals.into_iter().map(|(at_ms, site, class)| {
                let budget = budget.clone();
                let grants = grants.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(start + Duration::from_millis(at_ms)).await;
                    let priority = [Priority::Poll, Priority::Continue, Priority::Open][class as usize];
                    budget.acquire(priority, &format!("site-{site}")).await.unwrap();
                    grants.lock().unwrap().push(Instant::now());
                })
            }).collect();
            for t in tasks { t.await.unwrap(); }
            let g = grants.lock().unwrap().clone();
            g
        });
        let mut grants = grants;
        prop_assert!(busiest_window(&mut grants, window) <= requests as usize);
    }
}

#[test]
fn the_allowance_is_used_in_full_not_rationed() {
    let (first_window, total) = paused_runtime().block_on(async {
        let budget = Budget::new(Allowance {
            requests: 20,
            window: Duration::from_secs(15),
            guard: Duration::ZERO,
        });
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..60 {
            budget.acquire(Priority::Continue, "a").await.unwrap();
            times.push(start.elapsed());
        }
        (
            times
                .iter()
                .filter(|t| **t < Duration::from_secs(1))
                .count(),
            *times.last().unwrap(),
        )
    });
    assert_eq!(
        first_window, 20,
        "a burst takes the whole allowance at once"
    );
    assert_eq!(
        total,
        Duration::from_secs(30),
        "60 requests take exactly two more windows"
    );
}

#[test]
fn a_small_site_is_not_starved_by_a_large_one() {
    let order = paused_runtime().block_on(async {
        let budget = Budget::new(Allowance {
            requests: 2,
            window: Duration::from_secs(1),
            guard: Duration::ZERO,
        });
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // The large site queues 40 requests first...
        for _ in 0..40 {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                budget.acquire(Priority::Continue, "large").await.unwrap();
                order.lock().unwrap().push("large");
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // ...then the small site asks for 4.
        for _ in 0..4 {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                budget.acquire(Priority::Continue, "small").await.unwrap();
                order.lock().unwrap().push("small");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let o = order.lock().unwrap().clone();
        o
    });
    let first_small = order.iter().position(|s| *s == "small").unwrap();
    let last_small = order.iter().rposition(|s| *s == "small").unwrap();
    // The small site's 4 requests interleave with the large site's: they are
    // done within ~8 grants of its arrival, not after the 36 still queued.
    assert!(last_small - first_small <= 8, "{order:?}");
    assert!(last_small < 20, "{order:?}");
}

#[test]
fn a_ready_poll_goes_before_new_work() {
    let order = paused_runtime().block_on(async {
        let budget = Budget::new(Allowance {
            requests: 1,
            window: Duration::from_secs(1),
            guard: Duration::ZERO,
        });
        budget.acquire(Priority::Open, "x").await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (p, name) in [
            (Priority::Open, "open"),
            (Priority::Continue, "continue"),
            (Priority::Poll, "poll"),
        ] {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                budget.acquire(p, "x").await.unwrap();
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let o = order.lock().unwrap().clone();
        o
    });
    assert_eq!(order, ["poll", "continue", "open"]);
}

#[test]
fn after_a_429_burst_the_budget_pauses_past_the_window_then_recovers() {
    paused_runtime().block_on(async {
        let window = Duration::from_secs(15);
        let budget = Budget::new(Allowance {
            requests: 20,
            window,
            guard: Duration::ZERO,
        });
        budget.acquire(Priority::Continue, "a").await.unwrap();
        let hit = Instant::now();
        for _ in 0..3 {
            budget.rate_limited(None);
        }
        budget.acquire(Priority::Continue, "a").await.unwrap();
        assert!(
            hit.elapsed() >= window,
            "no request before the window has passed"
        );
        let lowered = budget.stats().pace;
        assert!(lowered < 20, "the pace drops after 429s: {lowered}");
        assert_eq!(budget.stats().rate_limited, 3);
        // Keep asking; within a few windows the pace is back to the allowance.
        let start = Instant::now();
        while budget.stats().pace < 20 {
            budget.acquire(Priority::Continue, "a").await.unwrap();
            assert!(start.elapsed() < window * 30, "the pace never recovered");
        }
    });
}
