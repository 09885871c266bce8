//! The backfill's progress (`[backfill] since`) per account: site-days done
//! and remaining, an ETA, and the days that will leave the API's reach
//! before the backfill gets to them. Read by `status`, the status page, the
//! service's metrics and log, and `plan`.
//!
//! ETA: the remaining site-days' requests of the account's API id (each
//! account's at its measured requests per site-day: the mean of its exports
//! of the last 35 days; without history, one page at
//! [`crate::plan::default_requests_per_page`]) ÷ the pace the nights leave
//! on that id: its allowance less what the service's runs spend a day. That
//! is read from `sonnys.runs` (the last 7 days, split between the API ids
//! by their sites); before the first run, a night is taken to export one
//! site-day of every site. Accounts sharing an API id share its pace, so
//! each is given the id's ETA (its sites go side by side with the others').

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::configuration::Settings;
use crate::domain::days::{backfill_dates, earliest_servable_date};
use crate::domain::SiteCode;

/// How far back the measured cost of a site-day reaches.
const HISTORY_DAYS: u64 = 35;
/// How far back the nights' spending is read.
const NIGHTS_DAYS: i64 = 7;
/// The least share of the allowance the backfill is counted on, so that
/// nights spending (nearly) all of it give a long ETA, not an endless one.
const LEAST_SHARE: f64 = 0.01;
const DAY_SECONDS: f64 = 86_400.0;

/// The backfill of one account.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackfillStatus {
    /// The first day it fills (`backfill.since`, clamped to the API's reach).
    pub since: NaiveDate,
    pub done: u64,
    pub remaining: u64,
    /// Expected requests of the remaining site-days.
    pub requests: f64,
    /// Requests a day the service's runs spend on the account's API id,
    /// which the backfill does not get.
    pub nightly_requests_per_day: f64,
    /// Requests per second left to the backfill of the account's API id.
    pub pace_per_second: f64,
    pub eta_seconds: u64,
    /// Site-days that leave the API's reach before the backfill, at its
    /// ETA's pace, gets to them: (site, date), oldest first.
    pub at_risk: Vec<(String, NaiveDate)>,
}

impl BackfillStatus {
    /// "backfill since 2026-06-01: 120 site-days done, 80 remaining, about 3 h left".
    pub fn describe(&self) -> String {
        if self.remaining == 0 {
            return format!(
                "backfill since {}: complete, {} site-days done",
                self.since, self.done
            );
        }
        format!(
            "backfill since {}: {} site-days done, {} remaining ({} requests), about {} left at the pace the nights leave",
            self.since,
            self.done,
            self.remaining,
            self.requests.round(),
            super::format::about(self.eta_seconds)
        )
    }

    /// "will leave the API's reach before the backfill gets to them: N01 2026-06-01, …".
    pub fn describe_at_risk(&self) -> Option<String> {
        if self.at_risk.is_empty() {
            return None;
        }
        let days: Vec<String> = self
            .at_risk
            .iter()
            .map(|(site, date)| format!("{site} {date}"))
            .collect();
        Some(format!(
            "{} site-days will leave the API's 183-day reach before the backfill gets to them: {}",
            days.len(),
            days.join(", ")
        ))
    }
}

/// The days that leave the API's reach before the backfill gets to them.
/// The backfill goes through the sites side by side, so the i-th remaining
/// day of a site (oldest first) is reached after about i rounds of every
/// site, `seconds_per_round` each; the day `earliest` (the oldest the API
/// serves now) leaves the reach within a day, the next one a day later.
fn at_risk(
    remaining_by_site: &[(String, Vec<NaiveDate>)],
    seconds_per_round: f64,
    earliest: NaiveDate,
) -> Vec<(String, NaiveDate)> {
    let mut lost = Vec::new();
    for (code, remaining) in remaining_by_site {
        for (i, date) in remaining.iter().enumerate() {
            let reached_after = i as f64 * seconds_per_round;
            let leaves_after = ((*date - earliest).num_days() as f64 + 1.0) * 86_400.0;
            if reached_after >= leaves_after {
                lost.push((code.clone(), *date));
            }
        }
    }
    lost.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    lost
}

/// Requests per second the backfill of an API id gets: its allowance per
/// second less what the nights spend of it a day, and at least
/// [`LEAST_SHARE`] of the allowance.
fn pace_left(allowance_per_second: f64, nightly_per_day: f64) -> f64 {
    (allowance_per_second - nightly_per_day / DAY_SECONDS).max(allowance_per_second * LEAST_SHARE)
}

/// One account's remaining work, before its API id's pace is known.
struct Remaining {
    account: String,
    api_id: String,
    status: BackfillStatus,
    per_site_day: f64,
    by_site: Vec<(String, Vec<NaiveDate>)>,
}

/// Every configured account's backfill at `now`; empty without `backfill.since`.
pub async fn load(
    pool: &PgPool,
    settings: &Settings,
    now: DateTime<Utc>,
) -> sqlx::Result<BTreeMap<String, BackfillStatus>> {
    let mut all = BTreeMap::new();
    let Some(since) = settings.backfill.first_date(now) else {
        return Ok(all);
    };
    let sites = crate::store::known_sites(pool).await?;
    let history =
        crate::store::status::day_history(pool, now.date_naive() - Days::new(HISTORY_DAYS)).await?;
    let allowance_per_second =
        f64::from(settings.api.allowance().max(1)) / settings.api.window.as_secs_f64().max(0.001);
    let earliest = earliest_servable_date(now);
    let none = HashSet::new();
    let mut accounts = Vec::new();
    for account in &settings.accounts {
        let done_days = crate::store::done_days(pool, &account.name, since).await?;
        let (days, requests) = history
            .iter()
            .filter(|h| h.account == account.name.as_str())
            .fold((0i64, 0i64), |(d, r), h| (d + h.days, r + h.requests));
        let per_site_day = if days > 0 && requests > 0 {
            requests as f64 / days as f64
        } else {
            crate::plan::default_requests_per_page(settings.transactions.summaries)
        };
        let mut status = BackfillStatus {
            since,
            done: 0,
            remaining: 0,
            requests: 0.0,
            nightly_requests_per_day: 0.0,
            pace_per_second: allowance_per_second,
            eta_seconds: 0,
            at_risk: Vec::new(),
        };
        // Each site's remaining days, oldest first: the backfill goes
        // through the sites side by side.
        let mut by_site = Vec::new();
        for site in sites.iter().filter(|s| s.exported_by(account)) {
            let done = SiteCode::parse(&site.code)
                .as_ref()
                .and_then(|c| done_days.get(c))
                .unwrap_or(&none);
            let mut remaining = Vec::new();
            for date in backfill_dates(site.timezone(), now, since, settings.schedule.catch_up_days)
            {
                if done.contains(&date) {
                    status.done += 1;
                } else {
                    remaining.push(date);
                }
            }
            status.remaining += remaining.len() as u64;
            by_site.push((site.code.clone(), remaining));
        }
        status.requests = status.remaining as f64 * per_site_day;
        accounts.push(Remaining {
            account: account.name.to_string(),
            api_id: account.api_id.to_string(),
            status,
            per_site_day,
            by_site,
        });
    }

    // What the nights spend a day on each API id.
    let (spent, first_run) =
        crate::store::runs::requests_since(pool, now - chrono::Duration::days(NIGHTS_DAYS)).await?;
    let all_sites: usize = accounts.iter().map(|a| a.by_site.len()).sum();
    let mut nightly: HashMap<&str, f64> = HashMap::new();
    for a in &accounts {
        let per_day = match first_run {
            // The runs' requests a day, over the days they span (one at
            // least), split by the id's share of the sites.
            Some(first) => {
                let span = ((now - first).num_seconds() as f64 / DAY_SECONDS)
                    .clamp(1.0, NIGHTS_DAYS as f64);
                spent as f64 / span * a.by_site.len() as f64 / all_sites.max(1) as f64
            }
            // No run yet: one site-day of every site a night.
            None => a.by_site.len() as f64 * a.per_site_day,
        };
        *nightly.entry(a.api_id.as_str()).or_default() += per_day;
    }
    // Each id's remaining requests and sites.
    let mut work: HashMap<&str, (f64, f64)> = HashMap::new();
    for a in &accounts {
        let w = work.entry(a.api_id.as_str()).or_default();
        w.0 += a.status.requests;
        w.1 += a.per_site_day * a.by_site.len() as f64;
    }
    for a in &accounts {
        let night = nightly.get(a.api_id.as_str()).copied().unwrap_or(0.0);
        let pace = pace_left(allowance_per_second, night);
        let (requests, round_requests) = work.get(a.api_id.as_str()).copied().unwrap_or_default();
        let mut status = a.status.clone();
        status.nightly_requests_per_day = night;
        status.pace_per_second = pace;
        status.eta_seconds = if status.remaining == 0 {
            0
        } else {
            (requests / pace).round() as u64
        };
        // A round exports a site-day of every site on the id.
        let seconds_per_round = round_requests.max(a.per_site_day) / pace;
        status.at_risk = at_risk(&a.by_site, seconds_per_round, earliest);
        all.insert(a.account.clone(), status);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[test]
    fn days_the_backfill_reaches_only_after_they_leave_the_apis_reach_are_named() {
        let earliest = date(6, 1);
        let sites = vec![
            ("N01".to_owned(), vec![date(6, 1), date(6, 2), date(6, 3)]),
            ("N02".to_owned(), vec![date(6, 20)]),
        ];
        // A round of every site a day: each day is reached just in time.
        assert!(at_risk(&sites, 86_400.0, earliest).is_empty());
        // Three days a round: 2 and 3 June leave before their turn; the first
        // day of each site goes at once.
        assert_eq!(
            at_risk(&sites, 3.0 * 86_400.0, earliest),
            vec![
                ("N01".to_owned(), date(6, 2)),
                ("N01".to_owned(), date(6, 3))
            ]
        );
    }

    #[test]
    fn the_eta_runs_at_the_pace_the_nights_leave() {
        // 80 requests a minute; the nights spend 5,760 a day (72 minutes'
        // worth), so the backfill gets 95 % of the allowance.
        let allowance = 80.0 / 60.0;
        let pace = pace_left(allowance, 5_760.0);
        assert!((pace / allowance - 0.95).abs() < 1e-9, "{pace}");
        let hours = |p: f64| 96_000.0 / p / 3600.0;
        assert!((hours(allowance) - 20.0).abs() < 1e-9);
        assert!((hours(pace) - 20.0 / 0.95).abs() < 1e-9);
        // Nights that spend the whole allowance leave a long ETA, not an
        // endless one.
        let starved = pace_left(allowance, 200_000.0);
        assert!(starved > 0.0 && starved < allowance * 0.02, "{starved}");
    }

    #[test]
    fn the_lines_say_what_is_done_left_and_lost() {
        let status = BackfillStatus {
            since: date(6, 1),
            done: 120,
            remaining: 80,
            requests: 400.0,
            nightly_requests_per_day: 1000.0,
            pace_per_second: 1.3,
            eta_seconds: 3 * 3600,
            at_risk: vec![("N01".to_owned(), date(6, 1))],
        };
        let line = status.describe();
        assert!(
            line.contains("120 site-days done") && line.contains("80 remaining"),
            "{line}"
        );
        let risk = status.describe_at_risk().unwrap();
        assert!(risk.contains("N01 2026-06-01"), "{risk}");
        let complete = BackfillStatus {
            done: 200,
            remaining: 0,
            requests: 0.0,
            eta_seconds: 0,
            at_risk: Vec::new(),
            ..status
        };
        assert_eq!(
            complete.describe(),
            "backfill since 2026-06-01: complete, 200 site-days done"
        );
    }
}
