//! `sonnys-etl plan`: the request-budget forecast of a night or a date range,
//! from what the database already knows — the sites of `sonnys.sites` and
//! the pages and requests recorded in `sonnys.sync_days` — without a single
//! request to the API.
//!
//! Pages of a site-day: the mean of the same site's done days on the same
//! weekday over the last five weeks; else of all its recent days; else one
//! page per export window. Requests per page: the account's recorded ratio
//! over those weeks, else 2.05 (a submit and a poll per page, and a few polls
//! that find the job still working) plus 1 for the page's summaries when
//! they are read, plus at most 1 for its wash list when wash lists are read
//! (one request per 100 washes; the recorded ratio counts them exactly). A
//! lookback day checked by its summaries costs a summary
//! request per page, and the rest of an export as often as the account's
//! past checks of days that age found a change (every time, without any
//! history). Each account also lists its sites once.
//! The minimum time spends `requests_per_window − reserve` requests per window
//! back to back: max(0, requests − allowance) / allowance windows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use sqlx::PgPool;

use crate::api::people::{LIST_LIMIT, STATUS_LIST_LIMITS};
use crate::api::PAGE_SIZE;
use crate::configuration::Settings;
use crate::domain::days::{DaySelection, Redo};
use crate::domain::{BusinessDay, SiteCode};

/// Export requests per page when an account has no history yet.
pub const DEFAULT_REQUESTS_PER_PAGE: f64 = 2.05;
/// Summary requests per page of 100 transactions.
pub const SUMMARY_REQUESTS_PER_PAGE: f64 = 1.0;
/// Wash-list requests per page of 100 transactions when wash lists are read
/// (`[transactions] wash_list`): one per 100 washes, so at most one a page.
pub const WASH_LIST_REQUESTS_PER_PAGE: f64 = 1.0;

/// Requests per page without history: the export's, and the summaries'
/// when they are read.
pub fn default_requests_per_page(summaries: bool) -> f64 {
    DEFAULT_REQUESTS_PER_PAGE
        + if summaries {
            SUMMARY_REQUESTS_PER_PAGE
        } else {
            0.0
        }
}
/// How far back the history reaches.
const HISTORY_DAYS: u64 = 35;

/// Arguments of `sonnys-etl plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// First business day of the range (YYYY-MM-DD).
    #[arg(long, requires = "to", conflicts_with_all = ["tonight", "table"])]
    pub from: Option<NaiveDate>,
    /// Last business day of the range, inclusive.
    #[arg(long, requires = "from")]
    pub to: Option<NaiveDate>,
    /// Forecast the next scheduled run (the default), and warn when it
    /// cannot finish before `schedule.deadline`.
    #[arg(long)]
    pub tonight: bool,
    /// Print the reference table: transactions per night → pages →
    /// requests → time at the API's ceiling.
    #[arg(long, conflicts_with = "tonight")]
    pub table: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Table,
    Json,
}

/// The forecast of one API id (its accounts share one budget).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiForecast {
    pub api_id: String,
    pub accounts: Vec<String>,
    pub site_days: u64,
    /// Of which lookback days checked by their summaries first.
    pub checked_site_days: u64,
    pub pages: f64,
    pub requests_per_page: f64,
    /// All requests: the transactions' and `people_requests`.
    pub requests: f64,
    /// Of which labour and memberships (when enabled), at the lowest priority.
    pub people_requests: f64,
    /// Requests per window this daemon may spend on the id.
    pub allowance: u32,
    pub window_seconds: f64,
    pub minimum_seconds: f64,
}

/// A whole forecast.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Forecast {
    /// When the forecast run starts (the next scheduled run, or now).
    pub starts_at: DateTime<Utc>,
    pub api_ids: Vec<ApiForecast>,
    /// The time the run must end by (`schedule.deadline`), if set.
    pub deadline: Option<DateTime<Utc>>,
    /// Expected requests per account (its pages and its site list).
    pub per_account: BTreeMap<String, f64>,
    /// What the service's last nights really took (`sonnys.runs`), newest
    /// first: the forecast's check against reality.
    pub recent_nights: Vec<Night>,
    /// The backfill's remaining site-days and their cost per account
    /// (`[backfill] since`); empty without one.
    pub backfill: BTreeMap<String, crate::status::backfill::BackfillStatus>,
}

/// One finished run of the service, as `sonnys.runs` recorded it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Night {
    pub started_at: DateTime<Utc>,
    pub outcome: String,
    pub seconds: f64,
    pub site_days: u64,
    pub requests: u64,
}

/// Nights shown by `plan`.
const NIGHTS_SHOWN: i64 = 7;

impl Forecast {
    /// When the slowest API id can be done at the earliest.
    pub fn earliest_end(&self) -> DateTime<Utc> {
        let longest = self
            .api_ids
            .iter()
            .map(|a| a.minimum_seconds)
            .fold(0.0, f64::max);
        self.starts_at + chrono::Duration::milliseconds((longest * 1000.0) as i64)
    }

    /// Whether the run cannot finish before the deadline.
    pub fn misses_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| self.earliest_end() > d)
    }
}

use crate::store::status::DayHistory as History;

/// Forecast exporting `selection` at `at` for every configured account.
pub async fn forecast(
    pool: &PgPool,
    settings: &Settings,
    selection: DaySelection,
    at: DateTime<Utc>,
) -> sqlx::Result<Forecast> {
    let sites = crate::store::known_sites(pool).await?;
    let since = at.date_naive() - chrono::Days::new(HISTORY_DAYS);
    let history = crate::store::status::day_history(pool, since).await?;
    let done_since = selection.needs_done_from(at);
    let mut by_api: BTreeMap<String, ApiForecast> = BTreeMap::new();
    let mut per_account = BTreeMap::new();
    for account in &settings.accounts {
        let done = match done_since {
            Some(since) => crate::store::done_days(pool, &account.name, since).await?,
            None => HashMap::new(),
        };
        let none = HashSet::new();
        let mine: Vec<&History> = history
            .iter()
            .filter(|h| h.account == account.name.as_str())
            .collect();
        let (pages_seen, requests_seen) = mine
            .iter()
            .fold((0i64, 0i64), |(p, r), h| (p + h.pages, r + h.requests));
        let summaries = settings.transactions.summaries;
        let requests_per_page = if pages_seen > 0 && requests_seen > 0 {
            requests_seen as f64 / pages_seen as f64
        } else {
            default_requests_per_page(summaries)
                + if settings.transactions.wash_list {
                    WASH_LIST_REQUESTS_PER_PAGE
                } else {
                    0.0
                }
        };
        let checks = crate::store::lookback::check_history(
            pool,
            Some(&account.name),
            at - chrono::Duration::days(HISTORY_DAYS as i64),
        )
        .await?;
        let lookback = settings.schedule.lookback;
        let mut site_days = 0u64;
        let mut checked_site_days = 0u64;
        let mut pages = 0.0;
        let mut check_requests = 0.0;
        for site in sites.iter().filter(|s| s.exported_by(account)) {
            let (code, timezone) = (site.code.as_str(), site.timezone());
            let code_key = SiteCode::parse(code);
            let done = code_key.as_ref().and_then(|c| done.get(c)).unwrap_or(&none);
            for day in selection.site_days(timezone, at, done).days {
                site_days += 1;
                let expected = expected_pages(&mine, code, day, at);
                let checked = summaries
                    && done.contains(&day.date)
                    && selection.redo(timezone, at, day.date, lookback, false) == Redo::Check;
                if checked {
                    // The summaries, then the export (less the summaries
                    // it reuses) as often as such days changed before.
                    let age = (BusinessDay::of(at, timezone).date - day.date).num_days();
                    checked_site_days += 1;
                    check_requests += expected * SUMMARY_REQUESTS_PER_PAGE;
                    pages += expected * change_rate(&checks, age);
                } else {
                    pages += expected;
                }
            }
        }
        let a = settings.api.allowance();
        let entry = by_api
            .entry(account.api_id.to_string())
            .or_insert_with(|| ApiForecast {
                api_id: account.api_id.to_string(),
                accounts: Vec::new(),
                site_days: 0,
                checked_site_days: 0,
                pages: 0.0,
                requests_per_page,
                requests: 0.0,
                people_requests: 0.0,
                allowance: a,
                window_seconds: settings.api.window.as_secs_f64(),
                minimum_seconds: 0.0,
            });
        entry.accounts.push(account.name.to_string());
        entry.site_days += site_days;
        entry.checked_site_days += checked_site_days;
        entry.pages += pages;
        // One site list per account, the pages at the account's ratio, and
        // the lookback's checks.
        let people = people_requests(pool, settings, &account.name, at).await?;
        let requests = 1.0 + pages * requests_per_page + check_requests + people;
        entry.requests += requests;
        entry.people_requests += people;
        per_account.insert(account.name.to_string(), requests);
    }
    let mut api_ids: Vec<ApiForecast> = by_api.into_values().collect();
    for f in &mut api_ids {
        if f.pages > 0.0 {
            f.requests_per_page =
                (f.requests - f.people_requests - f.accounts.len() as f64) / f.pages;
        }
        f.minimum_seconds = minimum(f.requests, f.allowance, f.window_seconds);
    }
    let recent_nights = crate::store::runs::recent_runs(pool, NIGHTS_SHOWN)
        .await?
        .into_iter()
        .map(|r| Night {
            started_at: r.started_at,
            outcome: r.outcome.to_string(),
            seconds: (r.finished_at - r.started_at).num_milliseconds().max(0) as f64 / 1000.0,
            site_days: r.site_days,
            requests: r.requests,
        })
        .collect();
    Ok(Forecast {
        starts_at: at,
        api_ids,
        deadline: None,
        per_account,
        recent_nights,
        // The backfill as it stands now, whenever the forecast run starts.
        backfill: crate::status::backfill::load(pool, settings, Utc::now()).await?,
    })
}

/// The requests of an account's labour and membership exports at `at`, as
/// `people` makes them: the employee list, one request per employee and 12
/// days (every employee on sweep nights, else those seen lately), each
/// missing 6-month sign-up period, the night's sign-ups and the status
/// changes, with pages sized from what is stored.
async fn people_requests(
    pool: &PgPool,
    settings: &Settings,
    account: &crate::domain::AccountName,
    at: DateTime<Utc>,
) -> sqlx::Result<f64> {
    use crate::store::people as store;
    let pages = |n: i64, per: i64| ((n.max(1) + per - 1) / per) as f64;
    let mut requests = 0.0;
    let per_request = f64::from(crate::people::CLOCK_DAYS_PER_REQUEST);
    if settings.labour.enabled {
        let employees = crate::store::status::employee_count(pool, account).await?;
        requests += pages(employees, i64::from(LIST_LIMIT));
        let labour = &settings.labour;
        if store::sweep_due(pool, account, labour.sweep_every).await? {
            requests += employees as f64 * (f64::from(labour.sweep_days) / per_request).ceil();
        } else {
            let since = at - chrono::Duration::weeks(i64::from(labour.active_weeks));
            let active = store::active_employees(pool, account, since).await?.len();
            requests += active as f64 * (f64::from(labour.recent_days) / per_request).ceil();
        }
    }
    if settings.members.enabled {
        let members = &settings.members;
        let since = members.since.at(at);
        let recent = at - chrono::Duration::days(i64::from(members.recent_days) + 1);
        for (from, to) in store::missing_history(pool, account, since, recent).await? {
            let known = crate::store::status::sign_ups_between(pool, account, from, to).await?;
            requests += pages(known, i64::from(LIST_LIMIT));
        }
        let changes_from = match store::changes_covered_to(pool, account).await? {
            Some(to) => to - chrono::Duration::days(i64::from(members.recent_days)),
            None => since,
        };
        let changes =
            crate::store::status::status_changes_since(pool, account, changes_from).await?;
        // The night's sign-ups, and the status changes at 1,000 a page.
        requests += 1.0 + pages(changes, i64::from(*STATUS_LIST_LIMITS.end()));
    }
    Ok(requests)
}

/// The share of lookback checks of days `age` days old that found a change:
/// from the checks of that age, else of any age, else 1 (no history: assume
/// every day changed, so the forecast errs long).
fn change_rate(history: &[crate::store::lookback::CheckHistory], age: i64) -> f64 {
    let of = |rows: &mut dyn Iterator<Item = &crate::store::lookback::CheckHistory>| {
        let (checks, changed) = rows.fold((0, 0), |(c, k), h| (c + h.checks, k + h.changed));
        (checks > 0).then(|| changed as f64 / checks as f64)
    };
    of(&mut history.iter().filter(|h| i64::from(h.age_days) == age))
        .or_else(|| of(&mut history.iter()))
        .unwrap_or(1.0)
}

/// Seconds to send `requests` at `allowance` per window, back to back: the
/// first window's allowance goes at once.
pub fn minimum(requests: f64, allowance: u32, window_seconds: f64) -> f64 {
    let allowance = f64::from(allowance.max(1));
    (requests - allowance).max(0.0) / allowance * window_seconds
}

/// The pages a site-day is expected to have.
fn expected_pages(history: &[&History], code: &str, day: BusinessDay, at: DateTime<Utc>) -> f64 {
    let weekday = day.date.weekday().number_from_monday() as i32;
    let mean = |rows: &mut dyn Iterator<Item = &&History>| {
        let (days, pages) = rows.fold((0i64, 0i64), |(d, p), h| (d + h.days, p + h.pages));
        (days > 0).then(|| pages as f64 / days as f64)
    };
    let site = || history.iter().filter(|h| h.site_code == code);
    mean(&mut site().filter(|h| h.weekday == weekday))
        .or_else(|| mean(&mut site()))
        .unwrap_or_else(|| day.windows(at.max(day.end_exclusive())).len().max(1) as f64)
}

/// The reference table of the vendor's documentation, computed.
pub fn reference_table(
    out: &mut impl std::io::Write,
    allowance: u32,
    window: Duration,
    summaries: bool,
) -> std::io::Result<()> {
    let per_page = default_requests_per_page(summaries);
    writeln!(
        out,
        "{:>22}  {:>6}  {:>9}  {:>16}",
        "transactions a night", "pages", "requests", "time at ceiling"
    )?;
    for transactions in [500u64, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000] {
        let pages = transactions.div_ceil(u64::from(PAGE_SIZE));
        let requests = pages as f64 * per_page;
        let seconds = minimum(requests, allowance, window.as_secs_f64());
        writeln!(
            out,
            "{transactions:>22}  {pages:>6}  {:>9.0}  {:>16}",
            requests.ceil(),
            humantime::format_duration(Duration::from_secs(seconds.ceil() as u64)).to_string()
        )?;
    }
    writeln!(
        out,
        "(pages = ⌈transactions / 100⌉, {per_page} requests a page{}, {allowance} requests per {}s)",
        if summaries {
            format!(": {DEFAULT_REQUESTS_PER_PAGE} for the export and {SUMMARY_REQUESTS_PER_PAGE} for the summaries")
        } else {
            String::new()
        },
        window.as_secs_f64()
    )
}

/// Print a forecast for people.
pub fn print(forecast: &Forecast, zone: Tz, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let local = |t: DateTime<Utc>| {
        t.with_timezone(&zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    writeln!(
        out,
        "forecast of a run starting {}",
        local(forecast.starts_at)
    )?;
    for f in &forecast.api_ids {
        writeln!(
            out,
            "API id {} ({}): {} site-days{}, ~{:.0} pages, ~{:.0} requests ({:.2}/page{}), at least {} at {} per {}s",
            f.api_id,
            f.accounts.join(", "),
            f.site_days,
            if f.checked_site_days > 0 {
                format!(
                    " ({} lookback days checked by their summaries first)",
                    f.checked_site_days
                )
            } else {
                String::new()
            },
            f.pages,
            f.requests,
            f.requests_per_page,
            if f.people_requests > 0.0 {
                format!("; ~{:.0} of them for labour and members", f.people_requests)
            } else {
                String::new()
            },
            humantime::format_duration(Duration::from_secs(f.minimum_seconds.ceil() as u64)),
            f.allowance,
            f.window_seconds
        )?;
    }
    writeln!(out, "earliest end: {}", local(forecast.earliest_end()))?;
    if let Some(deadline) = forecast.deadline {
        if forecast.misses_deadline() {
            writeln!(
                out,
                "WARNING: the run cannot finish before schedule.deadline ({}); start earlier or export fewer days",
                local(deadline)
            )?;
        } else {
            writeln!(
                out,
                "finishes before schedule.deadline ({})",
                local(deadline)
            )?;
        }
    }
    for (account, backfill) in &forecast.backfill {
        writeln!(out, "{account}: {}", backfill.describe())?;
        if let Some(risk) = backfill.describe_at_risk() {
            writeln!(out, "{account}: warning: {risk}")?;
        }
    }
    if !forecast.recent_nights.is_empty() {
        writeln!(out, "the last nights (sonnys.runs), newest first:")?;
        for n in &forecast.recent_nights {
            writeln!(
                out,
                "  {}  {:<11}  took {}, {} site-days, {} requests",
                local(n.started_at),
                n.outcome,
                humantime::format_duration(Duration::from_secs(n.seconds.round() as u64)),
                n.site_days,
                n.requests
            )?;
        }
    }
    Ok(())
}
