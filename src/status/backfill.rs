//! The backfill's progress (`[backfill] since`) per account: site-days done
//! and remaining, an ETA, and the days that will leave the API's reach
//! before the backfill gets to them. Read by `status`, the status page, the
//! service's metrics and log, and `plan`.
//!
//! ETA: remaining site-days × the account's measured requests per site-day
//! (the mean of its exports of the last 35 days; without history, one page
//! at [`crate::plan::default_requests_per_page`]) ÷ the API id's allowance
//! per second. It is the pace with the whole allowance; the nights take
//! their share of it first, so the backfill is that much later.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::configuration::Settings;
use crate::domain::days::{backfill_dates, earliest_servable_date};
use crate::domain::SiteCode;

/// How far back the measured cost of a site-day reaches.
const HISTORY_DAYS: u64 = 35;

/// The backfill of one account.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackfillStatus {
    /// The first day it fills (`backfill.since`, clamped to the API's reach).
    pub since: NaiveDate,
    pub done: u64,
    pub remaining: u64,
    /// Expected requests of the remaining site-days.
    pub requests: f64,
    pub eta_seconds: u64,
    /// Site-days that leave the API's reach before the backfill, at its
    /// ETA's pace, gets to them: (site, date), oldest first.
    pub at_risk: Vec<(String, NaiveDate)>,
}

impl BackfillStatus {
    /// "backfill since 2026-06-01: 120 site-days done, 80 remaining, about 3 h left".
    pub fn describe(&self) -> String {
        format!(
            "backfill since {}: {} site-days done, {} remaining ({} requests), about {} left",
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
    let per_second =
        f64::from(settings.api.allowance().max(1)) / settings.api.window.as_secs_f64().max(0.001);
    let earliest = earliest_servable_date(now);
    let none = HashSet::new();
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
            eta_seconds: 0,
            at_risk: Vec::new(),
        };
        // Each site's remaining days, oldest first: the backfill goes
        // through the sites side by side.
        let mut remaining_by_site = Vec::new();
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
            remaining_by_site.push((site.code.clone(), remaining));
        }
        status.requests = status.remaining as f64 * per_site_day;
        status.eta_seconds = (status.requests / per_second).round() as u64;
        let sites_working = remaining_by_site.len().max(1) as f64;
        let seconds_per_round = per_site_day * sites_working / per_second;
        status.at_risk = at_risk(&remaining_by_site, seconds_per_round, earliest);
        all.insert(account.name.to_string(), status);
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
    fn the_lines_say_what_is_done_left_and_lost() {
        let status = BackfillStatus {
            since: date(6, 1),
            done: 120,
            remaining: 80,
            requests: 400.0,
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
    }
}
