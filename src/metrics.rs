//! Prometheus metrics of the service. Every series is named here, and each
//! notable event is counted by one function, called where the event is
//! handled (and logged). Labels stay small and bounded: account, site,
//! endpoint, HTTP status, outcome — never a date or a transaction id.
//!
//! Outside the service no recorder is installed and these calls cost nothing.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const API_REQUESTS: &str = "sonnys_etl_api_requests_total";
pub const SITE_DAYS: &str = "sonnys_etl_site_days_total";
pub const TRANSACTIONS_WRITTEN: &str = "sonnys_etl_transactions_written_total";
pub const BUDGET_WAIT: &str = "sonnys_etl_budget_wait_seconds";
pub const RUNS: &str = "sonnys_etl_runs_total";
pub const RUN_DURATION: &str = "sonnys_etl_run_duration_seconds";
pub const SITE_LAST_SUCCESS: &str = "sonnys_etl_site_last_success_timestamp_seconds";
pub const NEXT_RUN: &str = "sonnys_etl_next_run_timestamp_seconds";
pub const TICKS_SKIPPED: &str = "sonnys_etl_ticks_skipped_total";
pub const REJECTED_RECORDS: &str = "sonnys_etl_rejected_records_total";
pub const FORECAST_REQUESTS: &str = "sonnys_etl_forecast_requests";
pub const BACKFILL_SITE_DAYS: &str = "sonnys_etl_backfill_site_days";
pub const BACKFILL_ETA: &str = "sonnys_etl_backfill_eta_seconds";
pub const SUMMARY_DISAGREEMENTS: &str = "sonnys_etl_summary_disagreements_total";

/// Install the process-wide recorder; the handle renders `/metrics`.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(BUDGET_WAIT.into()),
            &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(RUN_DURATION.into()),
                &[
                    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
                ],
            )
        })
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe();
    Ok(handle)
}

fn describe() {
    describe_counter!(
        API_REQUESTS,
        "Requests sent to the Sonny's API, by account, endpoint and HTTP status (`error`: no answer)."
    );
    describe_counter!(
        SITE_DAYS,
        "Site-days finished, by account and status: `done` exported, `failed`, and for lookback days checked by their summaries `unchanged` (not exported again) or `changed` (exported again)."
    );
    describe_counter!(
        TRANSACTIONS_WRITTEN,
        "Transactions written: `inserted` new, `updated` changed since their last export."
    );
    describe_histogram!(
        BUDGET_WAIT,
        metrics::Unit::Seconds,
        "Time a request waited for its API id's budget, by account."
    );
    describe_counter!(
        RUNS,
        "Scheduled runs finished, by outcome (ok, failed, interrupted)."
    );
    describe_histogram!(
        RUN_DURATION,
        metrics::Unit::Seconds,
        "Duration of scheduled runs."
    );
    describe_gauge!(
        SITE_LAST_SUCCESS,
        metrics::Unit::Seconds,
        "Unix time at which the site's latest done business day ended in its zone: the data is complete up to here."
    );
    describe_gauge!(
        NEXT_RUN,
        metrics::Unit::Seconds,
        "Unix time of the next scheduled run."
    );
    describe_gauge!(
        FORECAST_REQUESTS,
        "Requests the current or last run was forecast to need, by account (sonnys-etl plan)."
    );
    describe_gauge!(
        BACKFILL_SITE_DAYS,
        "Site-days of the backfill ([backfill] since), by account and state: `done` or `remaining`."
    );
    describe_gauge!(
        BACKFILL_ETA,
        metrics::Unit::Seconds,
        "Expected time until the backfill is done, by account: the remaining requests of its API id at the pace the nights leave."
    );
    describe_counter!(
        REJECTED_RECORDS,
        "Records quarantined in sonnys.rejected_records (unparsable, inexact, or dated outside their window), by account."
    );
    describe_counter!(
        SUMMARY_DISAGREEMENTS,
        "Membership flags or statuses where the export's record and the transaction summary disagreed (the summary's value was stored), by account."
    );
    describe_counter!(
        TICKS_SKIPPED,
        "Schedule ticks skipped because the previous run was still going."
    );
}

/// One request answered with `status` (an HTTP code, or `error`).
pub fn api_request(account: &str, endpoint: &'static str, status: &str) {
    counter!(API_REQUESTS, "account" => account.to_owned(), "endpoint" => endpoint, "status" => status.to_owned())
        .increment(1);
}

pub fn budget_wait(account: &str, waited: Duration) {
    histogram!(BUDGET_WAIT, "account" => account.to_owned()).record(waited.as_secs_f64());
}

/// Fields where an export record and its summary disagreed.
pub fn summary_disagreements(account: &str, fields: u64) {
    counter!(SUMMARY_DISAGREEMENTS, "account" => account.to_owned()).increment(fields);
}

/// A site-day finished: `done` (or `unchanged`, `changed` for a lookback
/// day checked by its summaries) with what it wrote, or `failed`.
pub fn site_day(account: &str, status: &'static str, write: &crate::domain::PageWrite) {
    let (inserted, updated) = (write.inserted, write.updated);
    if write.rejected > 0 {
        counter!(REJECTED_RECORDS, "account" => account.to_owned()).increment(write.rejected);
    }
    counter!(SITE_DAYS, "account" => account.to_owned(), "status" => status).increment(1);
    if inserted > 0 {
        counter!(TRANSACTIONS_WRITTEN, "account" => account.to_owned(), "change" => "inserted")
            .increment(inserted);
    }
    if updated > 0 {
        counter!(TRANSACTIONS_WRITTEN, "account" => account.to_owned(), "change" => "updated")
            .increment(updated);
    }
}

pub fn run_finished(outcome: crate::domain::states::RunOutcome, took: Duration) {
    counter!(RUNS, "outcome" => outcome.as_str()).increment(1);
    histogram!(RUN_DURATION).record(took.as_secs_f64());
}

pub fn tick_skipped() {
    counter!(TICKS_SKIPPED).increment(1);
}

pub fn site_last_success(account: &str, site: &str, unix_seconds: i64) {
    gauge!(SITE_LAST_SUCCESS, "account" => account.to_owned(), "site" => site.to_owned())
        .set(unix_seconds as f64);
}

pub fn forecast_requests(account: &str, requests: f64) {
    gauge!(FORECAST_REQUESTS, "account" => account.to_owned()).set(requests);
}

/// The backfill's progress of an account.
pub fn backfill(account: &str, done: u64, remaining: u64, eta_seconds: u64) {
    gauge!(BACKFILL_SITE_DAYS, "account" => account.to_owned(), "state" => "done").set(done as f64);
    gauge!(BACKFILL_SITE_DAYS, "account" => account.to_owned(), "state" => "remaining")
        .set(remaining as f64);
    gauge!(BACKFILL_ETA, "account" => account.to_owned()).set(eta_seconds as f64);
}

pub fn next_run(unix_seconds: i64) {
    gauge!(NEXT_RUN).set(unix_seconds as f64);
}
