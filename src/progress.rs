//! Progress of a sync: a bar per account on a terminal, periodic plain log
//! lines otherwise (systemd journals, containers, CI).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use crate::budget::Budget;
use crate::export::DayReport;

/// How often a plain progress line is logged per account.
const LOG_EVERY: Duration = Duration::from_secs(15);

/// Where progress goes.
pub struct Progress {
    bars: Option<MultiProgress>,
    totals: Arc<Totals>,
}

/// Site-days of a whole sync, across accounts: for the service's status line.
#[derive(Debug, Default)]
pub struct Totals {
    pub site_days: AtomicU64,
    pub finished: AtomicU64,
    /// Requests spent by finished site-days.
    pub requests: AtomicU64,
    /// The run's forecast (`plan`): requests, and the minimum time of the
    /// busiest API id in milliseconds. Zero until the forecast is made.
    pub forecast_requests: AtomicU64,
    pub forecast_ms: AtomicU64,
}

impl Totals {
    /// Record the run's forecast: `requests` in all, `minimum` for the busiest API id.
    pub fn set_forecast(&self, requests: f64, minimum: Duration) {
        self.forecast_requests
            .store(requests.round().max(0.0) as u64, Ordering::Relaxed);
        self.forecast_ms
            .store(minimum.as_millis() as u64, Ordering::Relaxed);
    }

    /// Time left by the forecast: its minimum time, less the share of its
    /// requests already spent. `None` without a forecast.
    pub fn left(&self) -> Option<Duration> {
        let forecast = self.forecast_requests.load(Ordering::Relaxed);
        if forecast == 0 {
            return None;
        }
        let spent = self.requests.load(Ordering::Relaxed).min(forecast);
        let minimum = Duration::from_millis(self.forecast_ms.load(Ordering::Relaxed));
        Some(minimum.mul_f64(1.0 - spent as f64 / forecast as f64))
    }
}

impl Progress {
    /// Bars when `terminal`, log lines otherwise.
    pub fn new(terminal: bool) -> Self {
        Self {
            bars: terminal.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            totals: Arc::default(),
        }
    }

    /// Log lines only.
    pub fn plain() -> Self {
        Self {
            bars: None,
            totals: Arc::default(),
        }
    }

    /// Site-days planned and finished so far, across accounts.
    pub fn totals(&self) -> Arc<Totals> {
        self.totals.clone()
    }

    pub fn account(&self, name: &str, site_days: u64, budget: Budget) -> AccountProgress {
        self.totals
            .site_days
            .fetch_add(site_days, Ordering::Relaxed);
        let bar = self.bars.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(site_days));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {pos}/{len} site-days {msg} ({elapsed}, ~{eta} left)",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_owned());
            bar
        });
        AccountProgress {
            totals: self.totals.clone(),
            name: name.to_owned(),
            bar,
            budget,
            site_days,
            done: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        }
    }
}

/// Progress of one account's sync.
pub struct AccountProgress {
    totals: Arc<Totals>,
    name: String,
    bar: Option<ProgressBar>,
    budget: Budget,
    site_days: u64,
    done: AtomicU64,
    pages: AtomicU64,
    requests: AtomicU64,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl AccountProgress {
    pub fn day_done(&self, report: &DayReport) {
        self.pages.fetch_add(report.pages, Ordering::Relaxed);
        self.requests.fetch_add(report.requests, Ordering::Relaxed);
        self.totals
            .requests
            .fetch_add(report.requests, Ordering::Relaxed);
        self.advance();
    }

    pub fn day_failed(&self) {
        self.advance();
    }

    fn advance(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.totals.finished.fetch_add(1, Ordering::Relaxed);
        let pages = self.pages.load(Ordering::Relaxed);
        let requests = self.requests.load(Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{pages} pages, {requests} requests"));
            bar.inc(1);
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= LOG_EVERY || done == self.site_days {
            *last = Instant::now();
            let elapsed = self.started.elapsed();
            let left = if done == 0 {
                Duration::ZERO
            } else {
                elapsed.mul_f64((self.site_days - done) as f64 / done as f64)
            };
            tracing::info!(account = %self.name, site_days_done = done, site_days = self.site_days, pages, requests,
                rate_limited = self.budget.stats().rate_limited, elapsed_s = elapsed.as_secs(), left_s = left.as_secs(),
                "sync progress");
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_the_forecast_less_the_share_of_its_requests_spent() {
        let totals = Totals::default();
        assert_eq!(totals.left(), None, "no forecast yet");
        totals.set_forecast(400.0, Duration::from_secs(300));
        assert_eq!(totals.left(), Some(Duration::from_secs(300)));
        totals.requests.store(100, Ordering::Relaxed);
        assert_eq!(totals.left(), Some(Duration::from_secs(225)));
        totals.requests.store(500, Ordering::Relaxed);
        assert_eq!(
            totals.left(),
            Some(Duration::ZERO),
            "past the forecast: nothing left, never negative"
        );
    }
}
