//! A faithful imitation of the Sonny's Carwash Controls Data API, for tests,
//! benchmarks, the demo, and operators rehearsing a deployment.
//!
//! It serves `GET /v1/site/list`, `POST /v1/transaction/load-job`,
//! `GET /v1/transaction/get-job-data` and the transaction summaries
//! `GET /v1/transaction/version-2` and `GET /v1/transaction` over plain HTTP
//! with the service's authentication, throttle, validation, background
//! builds, caches and error bodies, plus switchable faults (HTML 500s, failed
//! builds, early expiry, slowness, null list totals, and the live service's
//! `""`-for-null and `discountAmount` quirks). It adds no convenience the
//! real service lacks, so a client that works here has not been taught
//! anything the live service will not honour.
//!
//! It also serves the labour and membership endpoints — `GET /v1/employee`,
//! `GET /v1/employee/{employee_id}/clock-entries`,
//! `GET /v1/recurring/account/list` and `GET /v1/recurring/account/status-list`
//! — behind the same gate (authentication, the one throttle per API id,
//! injected 500s, slowness); see [Labour and membership](#labour-and-membership).
//!
//! # The sample chain
//!
//! Two accounts, generated from the seed one (site, local date) at a time:
//!
//! | account | API id | zone | sites (siteID code zone) | `extra_sites` = n adds (siteID code zone) |
//! |---|---|---|---|---|
//! | `northside` | `northside-demo` | America/New_York | 1 `N01` America/New_York; 2 `N02` America/Chicago; 3 `N03` null (account zone), open 24 h | 4 `N04`, 5 `N05`, … 3+n; zones America/New_York, America/Chicago, null in turn |
//! | `desert` | `desert-demo` | America/Phoenix | 1 `D01` America/Phoenix; 2 `D02` America/Denver; 7 `""` virtual online store, America/Phoenix | 3 `D03` … 6 `D06`, 8 `D07`, 9 `D08`, … (id 7 is the store's); zones America/Phoenix, America/Denver in turn |
//!
//! [`SimulatorConfig::extra_sites`] (`simulate --extra-sites N`, default 0)
//! appends N tunnels to each account, after the sample's sites, for
//! benchmarks that need a large chain: 37 makes `northside` a 40-site chain.
//! They trade exactly like `N01` (hours, mix, special days, phases of their
//! own), are named `"<brand> - <place>"` in a seed-chosen order, and with 0
//! the chain is the sample's, byte for byte. Nobody is rostered and no
//! member signs up at them, so the labour and membership data are the same
//! whatever N is.
//!
//! Site ids restart at 1 per account, so transaction ids (`"{siteID}:{number}"`)
//! are unique only within an account, as with real separate databases.
//! Tunnel sites trade 7:00–21:00 local (6:00–23:00 on 1,000+ days); `N03` and
//! the online store trade around the clock, so their 23- and 25-hour days are
//! fully populated.
//!
//! # Special days
//!
//! Every physical site runs a 30-day cycle offset per site: one day with
//! exactly 0 transactions, one with exactly 100, one with exactly 101 and one
//! with 1,000–1,299; the other days have 150–400. Any 30 consecutive days
//! therefore contain each special day once per site. Find them with
//! [`Simulator::day_volume`]. The online store has 8–32 a day and no special days.
//!
//! # Jobs
//!
//! A build's snapshot is taken when `load-job` is accepted; the result is
//! revealed after the jittered build time. Submitting the same criteria
//! within 20 minutes returns the same hash without a rebuild, unless that
//! build ended in `fail`, in which case a fresh build starts under the same hash.
//! [`Simulator::update_transaction`] therefore shows in a job submitted after
//! the change and after the old hash is gone (20 minutes, or
//! [`Simulator::clear_job_cache`]).
//!
//! # The live record shape and the summaries
//!
//! By default ([`RecordShape::Live`]) `get-job-data` records are what the
//! live export sends: without `isRecurringPlanSale`,
//! `isRecurringPlanRedemption` and `transactionStatus` (`customerId` stays).
//! [`RecordShape::Spec`] (`simulate --spec-shape`) sends them as the
//! vendor's `TransactionListJobObject` describes. Either way
//! [`Simulator::transactions`] and [`Simulator::update_transaction`] work on
//! the whole record, so a test can set a status the export does not carry.
//!
//! A membership redemption (`isRecurringRedemption`,
//! `isRecurringPlanRedemption`) costs the wash's price, taxed like a sale,
//! and is settled by one plan tender (`Prepaid` / `RFID Recurring`, `LPR`
//! or `Washbook Recurring`) for the whole total, as on the live service; so
//! a client summing `total` over every transaction overstates sales.
//! A new membership is a plan sale with `isRecurringSale`; an upgrade is a
//! plan sale without it.
//!
//! The summaries are read straight from the request, without a job:
//! `startDate`, `endDate`, `site`, `limit` (1–100) and `offset` (a page
//! number from 1) answer `{"data": {"transactions", "offset", "limit",
//! "total"}}` for
//! exactly the transactions, in exactly the order, that `load-job` would
//! export for the same window and site (test changes included). Version-2
//! items carry `transNumber`, `transId` (the export's `id`), `total`,
//! `date` (the export's `completeDate`), `customerId`,
//! `isRecurringPlanSale`, `isRecurringPlanRedemption` and
//! `transactionStatus`; `/transaction` items the first four. Version 2
//! answers a request with the same API id, window, site, limit and offset
//! within 10 minutes from its cache, even after a change;
//! [`Simulator::clear_job_cache`] clears it along with the job hashes.
//! `/transaction` is not cached. [`Counters::summary_requests`] counts both.
//!
//! `GET /v1/transaction/type/{item_type}` (`wash`, `prepaid-wash`,
//! `recurring`, `merchandise`; `washbook`, `giftcard` and `house-account`
//! are always empty) pages the `/transaction` items of the window's
//! transactions holding an item of that type, the API's own classification;
//! not cached, counted in [`Counters::type_list_requests`]. With
//! [`SimulatorConfig::wash_departments`] (`simulate --wash-departments`)
//! the wash items are served under other department names, as operators
//! name them ("Express Washes", "Full Serve"); `type/wash` lists them all
//! the same.
//!
//! # Where the reference is silent
//!
//! The simulator picks the reading that asks the most of a client, so a
//! client that copes here copes with either behaviour of the live service:
//!
//! - An empty `site=` (and an empty `X-Sonnys-Site-Code`) counts as absent,
//!   i.e. all sites. The virtual site's code is `""`, so its transactions
//!   can only be exported together with the other sites' (they carry
//!   `locationCode: ""`).
//! - The throttle counts every request carrying an id header, before
//!   authentication; requests without one are not throttled.
//! - A job hash belongs to the API id that submitted it; another id gets 404.
//! - A page number past the last page passes with empty `data` and the
//!   window's `total`; a summary page past the end is an empty list with
//!   the total.
//! - The summaries validate their window exactly as `load-job` does:
//!   `startDate`, `endDate`, `limit` and `offset` are required integers
//!   (the vendor's document assumes "today" without dates; a client that
//!   always sends them works either way), the span is at most 24 hours,
//!   `startDate` at most `max_age_days` back, `endDate` not in the future;
//!   a `site=` that differs from the site header is a 403.
//! - The summaries' `total` is the count over all pages. With
//!   [`Faults::null_total_rate`] (0.1 by default, as the live service
//!   sometimes does) a page answers `"total": null`; which pages is a
//!   function of the criteria, so asking again does not help: a client
//!   must page until a short page. [`Faults::job_null_total_rate`] does
//!   the same to chosen jobs' `get-job-data` answers.
//! - In version 2, an unset `customerId` follows the `""`-for-null quirk;
//!   the plan flags and status are sent as recorded, `null` included (the
//!   chain has a few records without plan flags and a few without status).
//!   A voided transaction stays in both the export and the summaries.
//! - A wrong method on a known path answers 404 `EntityNotFoundError`.
//! - Nothing later than the present is served: the current day grows as the
//!   clock advances.
//!
//! # Labour and membership
//!
//! Each account has a fixed roster of 7–9 employees (ids `1101`–`1109` for
//! `northside`, `2101`–`2107` for `desert`, one of whom has left) whose
//! shifts, like transactions, are generated one (employee, local date) at a
//! time from the seed. The roster has managers over 40 hours a week who are
//! not eligible for overtime, attendants scheduled past 40 hours who are,
//! `1102` at `N01` and `N02` (two zones), `1108` at `N03` and `N01`, `2106`
//! at `D01` and the online store, night shifts across local midnight at
//! `N03` (`1104`) and the online store (`2105`), and a raise of $0.50 an hour
//! on each hiring anniversary. About 7 % of shifts are corrected by a manager
//! a few hours to a day after clock-out (the clock-in moves, so the entry as
//! first served disappears) and 3 % are created in BackOffice up to two days
//! later. Counters `labour_requests` and `member_requests` count the
//! requests of each family.
//!
//! Members sign up at `N01`–`N03` and `D01` since December 2023, 6–12 a
//! month per account (`D02`, the online store and any extra sites have
//! none, so a report meets a site without members). Their status changes follow billing:
//! failed payments that a retry fixes or that run out of retries, declines,
//! expired cards, suspensions, cancellations (some rejoin later), annual
//! plans that expire. The first members of December 2023 are scripted so
//! every seed has a cancel-and-rejoin, a recovered failed payment, a
//! suspension and an expiry. An account's status is that of its latest
//! change (`Active` before the first), so the account list agrees with
//! the status list. Tests can install a hand-made [`People`] instead with
//! [`Simulator::set_people`].
//!
//! Where the reference is silent on these endpoints, the simulator chose:
//!
//! - Clock-entry `startDate`/`endDate` are **UTC calendar dates** (or Unix
//!   seconds) of the clock-in, both ends included: a New York shift that
//!   starts at 20:00 local falls on the next UTC date, so a client must ask
//!   a day more on each side of the business days it wants. At most 14
//!   days (`endDate` − `startDate` ≤ 13 days for dates, ≤ 14 × 86,400 s for
//!   seconds), else 422. One date without the other is a 422; neither means
//!   the last 14 UTC dates. Unknown or non-numeric employee: 404.
//! - Payroll weeks run Friday to Thursday in UTC dates, like the vendor's
//!   example `"2021-01-08 - 2021-01-14"`; an entry belongs to the week of its
//!   clock-in. Hours are the entry's length rounded to hundredths; the first
//!   40 hours of a week are regular, the rest overtime if the entry is
//!   eligible, counted over the whole week even when the request covers
//!   part of it. `weekTotal…` sum the entries in the answer. While on
//!   shift, `clockOut` is `null` and the hours are 0 (`open_shifts`; off,
//!   the entry is not served until it ends). Rates have two decimals.
//!   [`Simulator::serve_without_clock_in`] serves an entry with
//!   `clockIn: null`, as the live service sometimes does.
//! - Unset `modificationTimestamp`, `name`, `customerId` and
//!   `cancelDate` follow the `""`-for-null quirk like transactions.
//! - `/employee` and the account list take `limit` 1–100 (default 10), the
//!   status list 100–1,000 (default 100); `offset` is a page number from 1.
//!   A share of pages (`people_null_total_rate`, by request) answer
//!   `"total": null`, so only a short page ends a walk.
//! - The account list filters by sign-up time; its period may be at most
//!   six calendar months (else 422) and defaults to the first day of last
//!   month (00:00 UTC) through now. `statusName`, `status` and `cancelDate`
//!   are as of the end of the period (or now): a client reading old periods
//!   gets old statuses and must take current ones from the status list.
//!   `cancelDate` is set only while the account is `Cancelled`. `signUpDate`
//!   and `cancelDate` look like the vendor's example, `2020-05-19 08:45:00`
//!   (UTC, no zone); `status_date` is ISO-8601 UTC, or for a share of
//!   changes (`bare_date_rate`) a bare `YYYY-MM-DD`, the change's date in
//!   the account's zone. `balance` is null.
//! - The status list's period defaults to today (UTC) through now and has
//!   no span limit; `recurringAccountStatus` filters on `new_status`.
//!   `washbook_account_id` and `recurring_id` carry the same id, the
//!   account list's `id`. Identical requests (same id, site header and
//!   parameters) within an hour get the cached answer, even after changes.
//! - A site header restricts clock entries, accounts (by billing site) and
//!   status changes to that site; `/employee` lists everyone.

mod chain;
mod cli;
mod gate;
mod jobs;
mod members;
mod people;
mod people_routes;
mod query;
mod server;
mod staff;
mod summaries;
mod throttle;
mod washes;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use cli::{run, SimulateArgs};
pub use people::week_start;
pub use people::{
    MemberStatus, Modification, People, SimClockEntry, SimEmployee, SimMember, SimRecurringAccount,
    SimShift, SimStatusChange,
};

use chain::{Chain, Quirks};
use jobs::Jobs;
use members::Members;
use people::{MemberBook, PeopleOverride};
use staff::Staff;
use throttle::Throttle;

/// Settings of a simulator.
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// Seed of the sample chain; the same seed serves the same records.
    pub seed: u64,
    /// Requests an API id may make per throttle window (the service: 20).
    pub requests_per_window: u32,
    /// Length of a throttle window (the service: 15 s).
    pub window: Duration,
    /// Mean background build time of a page; each job's time is jittered
    /// ±50 % deterministically.
    pub build_latency: Duration,
    /// How far back `startDate` may reach, in days (the service: about 6 months).
    pub max_age_days: i64,
    /// Tunnel sites added to each account after the sample's, for
    /// benchmarks that need a large chain; 0 serves the sample chain as is.
    /// See [The sample chain](#the-sample-chain).
    pub extra_sites: u32,
    /// Which fields `get-job-data` records carry (the live service: [`RecordShape::Live`]).
    pub shape: RecordShape,
    /// The department names the chain's wash items are served in, by wash
    /// product (Basic, Deluxe, Ultimate in turn); `["Wash"]` by default.
    /// `/transaction/type/wash` lists the transactions holding one,
    /// whatever its name.
    pub wash_departments: Vec<String>,
    /// Faults to inject.
    pub faults: Faults,
}

/// Which fields the export's records carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordShape {
    /// As the live service sends them: without `isRecurringPlanSale`,
    /// `isRecurringPlanRedemption` and `transactionStatus`, which only the
    /// summaries (`/transaction/version-2`) carry.
    #[default]
    Live,
    /// As the vendor's `TransactionListJobObject` describes them: with
    /// those three fields.
    Spec,
}

impl RecordShape {
    /// A served record in this shape.
    fn apply(self, mut record: Value) -> Value {
        if self == Self::Live {
            if let Some(fields) = record.as_object_mut() {
                for field in chain::SUMMARY_ONLY_FIELDS {
                    fields.remove(*field);
                }
            }
        }
        record
    }
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            requests_per_window: 20,
            window: Duration::from_secs(15),
            build_latency: Duration::from_secs(2),
            max_age_days: 183,
            extra_sites: 0,
            shape: RecordShape::Live,
            wash_departments: vec!["Wash".to_string()],
            // The live service sends "" for unset strings and sometimes a
            // null list total; default to both.
            faults: Faults {
                // The live shape of the people endpoints.
                people_null_total_rate: people::LIVE_NULL_TOTAL_RATE,
                open_shifts: true,
                bare_date_rate: people::LIVE_BARE_DATE_RATE,
                empty_strings: true,
                null_total_rate: 0.1,
                ..Faults::default()
            },
        }
    }
}

/// Faults and quirks to inject. `Faults::default()` is a perfectly behaved
/// service that also sends `null` for unset strings.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Share of `/employee`, `/recurring/account/list` and
    /// `/recurring/account/status-list` pages answering `"total": null`, as
    /// the live service sometimes does; chosen by the request (API id,
    /// path and parameters), so the same request always gets the same.
    pub people_null_total_rate: f64,
    /// Serve the entry of a shift not ended at the request with
    /// `clockOut: null`, as the live service does; off, such an entry is not
    /// served until its shift ends.
    pub open_shifts: bool,
    /// Share of status changes (chosen by account, member and time) whose
    /// `status_date` is a bare date `YYYY-MM-DD`, the change's date in the
    /// account's zone, as the live service sometimes sends; only a change
    /// that is its member's only one that day, so the day's order is not
    /// lost. [`Simulator::stored_status_at`] says what a client should store.
    pub bare_date_rate: f64,
    /// Probability that a request answers HTTP 500 with a non-JSON (HTML proxy) body.
    pub error_500_rate: f64,
    /// Probability that a finished build ends in status `fail` instead of `pass`.
    pub fail_rate: f64,
    /// Probability that `get-job-data` on a finished hash answers 404
    /// `EntityNotFoundError` as if expired; the job is then forgotten.
    pub expire_rate: f64,
    /// Extra delay added to every answer.
    pub slow: Duration,
    /// Send `""` instead of `null` for unset nullable strings, as the live service does.
    pub empty_strings: bool,
    /// Name the discount amount `discountAmount` instead of the spec's `discount`.
    pub discount_amount: bool,
    /// Share of jobs (chosen by hash) whose first passing answer holds only
    /// half of the page's records; asked again, the job answers whole.
    pub short_page_rate: f64,
    /// Probability that a passed page is served with `data: null`.
    pub null_data_rate: f64,
    /// Report this `total` instead of the real one (e.g. 10,000,000).
    pub absurd_total: Option<u64>,
    /// Share of records (chosen by id, so the same ones every time) whose
    /// `customerName` carries a NUL character.
    pub nul_rate: f64,
    /// Share of records (chosen by id) whose `completeDate` is 9999-12-31,
    /// outside any requested window.
    pub out_of_window_rate: f64,
    /// Share of jobs (chosen by hash) that answer `working` to two more
    /// polls after their build is done, as the live service sometimes
    /// does: a client cannot assume a build is ready after a fixed time.
    pub extra_working_rate: f64,
    /// Share of summary pages (`/transaction/version-2` and `/transaction`,
    /// chosen by their criteria, so the same pages every time) answering
    /// `"total": null`, as the live service sometimes does.
    pub null_total_rate: f64,
    /// Share of jobs (chosen by hash) whose passing `get-job-data` answers
    /// carry `"total": null`.
    pub job_null_total_rate: f64,
}

impl Faults {
    fn quirks(&self) -> Quirks {
        Quirks {
            empty_strings: self.empty_strings,
            discount_amount: self.discount_amount,
        }
    }
}

/// What the simulator observed for one API id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// Every request carrying this id (requests without an id count under `""`).
    pub requests: u64,
    /// Requests answered 429.
    pub rate_limited: u64,
    /// Pages served short or with `data: null` by the fault knobs.
    pub short_pages: u64,
    /// Records served with a NUL character or an out-of-window date.
    pub bad_records: u64,
    /// `load-job` requests accepted (answered with a hash).
    pub load_jobs: u64,
    /// Authenticated `get-job-data` requests.
    pub polls: u64,
    /// Polls answered with status `working`.
    pub polls_working: u64,
    /// Requests answered with an injected 500.
    pub errors_500: u64,
    /// The most requests the throttle ever counted in one window (rejected
    /// ones included, so above the limit once a 429 was served).
    pub max_in_window: u32,
    /// Requests to `/employee` and `/employee/{id}/clock-entries`, counted
    /// like `requests` (rejected ones included).
    pub labour_requests: u64,
    /// Requests to `/recurring/account/list` and `/status-list`, counted
    /// like `requests`.
    pub member_requests: u64,
    /// Requests to the summaries, `/transaction/version-2` and
    /// `/transaction`, counted like `requests`.
    pub summary_requests: u64,
    /// Requests to `/transaction/type/{item_type}` (the wash lists),
    /// counted like `requests`.
    pub type_list_requests: u64,
    /// When the requests of the window in which the first 429 was served
    /// arrived (wall clock, oldest first; the rejected one last): the
    /// evidence of how that window filled. Empty without a 429.
    pub first_rejected_window: Vec<std::time::SystemTime>,
}

/// An account of the sample chain, with its demo credentials.
#[derive(Clone, Debug)]
pub struct SimAccount {
    /// Short name, e.g. `northside`.
    pub name: String,
    /// Value of the `X-Sonnys-API-ID` header.
    pub api_id: String,
    /// Value of the `X-Sonnys-API-Key` header (a demo credential, fine to print).
    pub api_key: String,
    /// The account's zone, which applies to sites whose zone is null.
    pub timezone: String,
    /// The account's sites as `/site/list` reports them.
    pub sites: Vec<SimSite>,
}

/// A site as `/site/list` reports it.
#[derive(Clone, Debug)]
pub struct SimSite {
    /// `siteID`; the first part of the account's transaction ids.
    pub site_id: i64,
    /// Empty for the virtual (e-commerce) site.
    pub code: String,
    /// Display name.
    pub name: String,
    /// `None` when the service reports null (the account's zone applies).
    pub timezone: Option<String>,
}

/// Mutable state behind one lock; no lock is held across an await.
struct State {
    faults: Faults,
    /// Faults draw from their own generator so they never disturb the chain.
    fault_rng: ChaCha8Rng,
    throttle: Throttle,
    counters: HashMap<String, Counters>,
    revoked: HashSet<String>,
    /// Canonical replacements per API id and transaction id; `Null` deletes.
    overrides: HashMap<String, HashMap<String, Value>>,
    jobs: Jobs,
    /// Test changes to each API id's employees, shifts and members.
    people: HashMap<String, PeopleOverride>,
    /// Answers of `/recurring/account/status-list` by request, with when
    /// they were computed.
    status_cache: HashMap<String, (tokio::time::Instant, Value)>,
    /// Answers of `/transaction/version-2` by criteria hash, with when they
    /// were computed.
    summary_cache: HashMap<String, (tokio::time::Instant, Value)>,
}

struct Inner {
    seed: u64,
    build_latency: Duration,
    max_age_days: i64,
    shape: RecordShape,
    wash_departments: Vec<String>,
    chain: Chain,
    staff: Staff,
    members: Members,
    state: Mutex<State>,
}

/// Locks a mutex, carrying on after a panic elsewhere: every critical
/// section leaves the state consistent, so poisoning carries no meaning here.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A simulated Data API. Cheap to clone; clones share all state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl Simulator {
    /// Creates a simulator; nothing is served until [`Simulator::start`].
    pub fn new(config: SimulatorConfig) -> Self {
        let state = State {
            faults: config.faults,
            fault_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0xFA01_7500_0000_0000),
            throttle: Throttle::new(config.requests_per_window, config.window),
            counters: HashMap::new(),
            revoked: HashSet::new(),
            overrides: HashMap::new(),
            jobs: Jobs::default(),
            people: HashMap::new(),
            status_cache: HashMap::new(),
            summary_cache: HashMap::new(),
        };
        let chain = Chain::new(config.seed, config.extra_sites);
        Self {
            inner: Arc::new(Inner {
                seed: config.seed,
                build_latency: config.build_latency,
                max_age_days: config.max_age_days,
                shape: config.shape,
                wash_departments: config.wash_departments,
                staff: Staff::new(config.seed, chain.accounts()),
                members: Members::new(config.seed),
                chain,
                state: Mutex::new(state),
            }),
        }
    }

    /// Binds `addr` (port 0 picks a free port) and serves in a background
    /// task; returns once listening.
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningSimulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = server::router(self.clone());
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender stops the server just like a sent signal.
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "simulator server stopped with an error");
            }
        });
        tracing::info!(%addr, "simulator listening");
        Ok(RunningSimulator {
            addr,
            simulator: self.clone(),
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The sample chain's accounts with their demo credentials.
    pub fn accounts(&self) -> Vec<SimAccount> {
        self.inner
            .chain
            .accounts()
            .iter()
            .map(|a| SimAccount {
                name: a.name.clone(),
                api_id: a.api_id.clone(),
                api_key: a.api_key.clone(),
                timezone: a.timezone.name().to_string(),
                sites: a
                    .sites
                    .iter()
                    .map(|s| SimSite {
                        site_id: s.site_id,
                        code: s.code.clone(),
                        name: s.name.clone(),
                        timezone: s.timezone.map(|tz| tz.name().to_string()),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The records of one site (`site_code` `""` is the virtual site) whose
    /// completeDate, truncated to whole seconds, lies in `[start, end]`, as
    /// `get-job-data` would serve them now in the spec shape, i.e. the whole
    /// truth whatever [`RecordShape`] is served (the plan flags and status
    /// included): overrides applied, nothing after the present, current
    /// `""`/`discountAmount` quirks, sorted by completeDate then id. Unknown
    /// account or site: empty.
    pub fn transactions(
        &self,
        api_id: &str,
        site_code: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<Value> {
        let chain = &self.inner.chain;
        let Some(account) = chain.account_index(api_id) else {
            return Vec::new();
        };
        let sites: Vec<usize> = chain.accounts()[account]
            .sites
            .iter()
            .position(|s| s.code == site_code)
            .into_iter()
            .collect();
        let state = lock(&self.inner.state);
        let quirks = state.faults.quirks();
        chain
            .window(
                account,
                &sites,
                start.timestamp(),
                end.timestamp(),
                Utc::now(),
                state.overrides.get(api_id),
            )
            .iter()
            .map(|r| {
                washes::name_departments(chain::render(r, quirks), &self.inner.wash_departments)
            })
            .collect()
    }

    /// Number of transactions a site has on a local calendar date in its own
    /// zone (the whole day, including any part of today still to come).
    /// Unknown account or site: 0. Not affected by `update_transaction`.
    pub fn day_volume(&self, api_id: &str, site_code: &str, local_date: NaiveDate) -> usize {
        let chain = &self.inner.chain;
        chain
            .account_index(api_id)
            .and_then(|a| {
                let s = chain.accounts()[a]
                    .sites
                    .iter()
                    .position(|s| s.code == site_code)?;
                Some(chain.day_volume(a, s, local_date))
            })
            .unwrap_or(0)
    }

    /// What the simulator observed for one API id (`""`: requests without one).
    pub fn counters(&self, api_id: &str) -> Counters {
        lock(&self.inner.state)
            .counters
            .get(api_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes one record, e.g. to void it, change its total or drop an item.
    /// `f` sees the whole record (as [`Simulator::transactions`] shows it,
    /// plan flags and status included, current quirks); `""`
    /// in nullable string fields is read back as null and `discountAmount`
    /// as `discount`, so the change survives later fault changes. Setting
    /// the record to `Value::Null` deletes it. Keep `completeDate` within the
    /// record's local day: records are found through the day their id encodes.
    ///
    /// Builds made afterwards serve the changed record; existing hashes and
    /// cached summaries keep their snapshot until they expire (or
    /// [`Simulator::clear_job_cache`]). Returns whether the record exists.
    pub fn update_transaction(&self, api_id: &str, id: &str, f: impl FnOnce(&mut Value)) -> bool {
        let chain = &self.inner.chain;
        let Some(account) = chain.account_index(api_id) else {
            tracing::warn!(api_id, id, "update_transaction: unknown account");
            return false;
        };
        let Some((site, date)) = chain.locate(account, id) else {
            tracing::warn!(api_id, id, "update_transaction: not a transaction id");
            return false;
        };
        let day = chain.day(account, site, date);
        let Some(original) = day.iter().find(|r| r["id"] == id) else {
            tracing::warn!(api_id, id, "update_transaction: no such transaction");
            return false;
        };
        let mut state = lock(&self.inner.state);
        let quirks = state.faults.quirks();
        let overrides = state.overrides.entry(api_id.to_string()).or_default();
        let current = overrides.get(id).unwrap_or(original);
        if current.is_null() {
            // Deleted earlier; nothing left to change.
            return false;
        }
        let mut record = chain::render(current, quirks);
        f(&mut record);
        chain::normalize(&mut record);
        overrides.insert(id.to_string(), record);
        true
    }

    /// Clears every server-side cache of the transaction endpoints, as if
    /// 20 minutes had passed: every job hash and every cached summary page.
    pub fn clear_job_cache(&self) {
        let mut state = lock(&self.inner.state);
        state.jobs.clear();
        state.summary_cache.clear();
    }

    /// Forgets every job hash but keeps the cached summary pages, as
    /// happens when the summaries were read less than 10 minutes ago and
    /// the export's jobs are built anew: the two can then disagree.
    pub fn clear_export_jobs(&self) {
        lock(&self.inner.state).jobs.clear();
    }

    /// From now on `api_id` answers 403 `NotAuthorizedError`.
    pub fn revoke(&self, api_id: &str) {
        lock(&self.inner.state).revoked.insert(api_id.to_string());
    }

    /// Replaces the faults at run time.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.inner.state).faults = faults;
    }

    /// Changes the throttle at run time; open windows are dropped, so every
    /// API id starts a fresh window with its next request.
    pub fn set_throttle(&self, requests_per_window: u32, window: Duration) {
        lock(&self.inner.state)
            .throttle
            .reconfigure(requests_per_window, window);
    }
}

/// Labour and membership data: what the people endpoints serve, the
/// truth tests compare against, and the hooks that change it.
impl Simulator {
    /// The employees of an account, by id (unknown account: none).
    pub fn employees(&self, api_id: &str) -> Vec<SimEmployee> {
        self.inner
            .chain
            .account_index(api_id)
            .map(|account| self.employee_list(account, api_id))
            .unwrap_or_default()
    }

    /// The clock entries of an employee whose clock-in lies in `[from, to]`
    /// (any span), as the endpoint would serve them now: hours and overtime
    /// by the whole payroll week, edits and back-office entries only once
    /// made, `clock_out` `None` while on shift. Unknown account or
    /// employee: none.
    pub fn clock_entries(
        &self,
        api_id: &str,
        employee_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<SimClockEntry> {
        self.inner
            .chain
            .account_index(api_id)
            .and_then(|account| {
                self.served_clock_entries(account, api_id, employee_id, from, to, Utc::now())
            })
            .unwrap_or_default()
    }

    /// A manager moves the clock-in of the entry now served with
    /// `old_clock_in` to `new_clock_in`: from now on it is served with
    /// `wasModified` true and `modificationTimestamp` now, and the entry at
    /// the old clock-in is gone (entries have no id). Keep the new clock-in
    /// before the clock-out. Returns whether such an entry exists.
    pub fn edit_clock_in(
        &self,
        api_id: &str,
        employee_id: i64,
        old_clock_in: DateTime<Utc>,
        new_clock_in: DateTime<Utc>,
    ) -> bool {
        let now = Utc::now();
        let Some(account) = self.inner.chain.account_index(api_id) else {
            return false;
        };
        let Some(found) = self
            .shifts_of(account, api_id, employee_id, old_clock_in, old_clock_in)
            .and_then(|shifts| {
                shifts
                    .into_iter()
                    .find(|s| s.served_clock_in(now) == Some(old_clock_in))
            })
        else {
            tracing::warn!(api_id, employee_id, %old_clock_in, "edit_clock_in: no such entry");
            return false;
        };
        let mut state = lock(&self.inner.state);
        let over = state.people.entry(api_id.to_string()).or_default();
        if let Some(i) = over.added.iter().position(|s| *s == found) {
            over.added.remove(i);
        } else if let Some((_, shifts)) = over.staff.as_mut() {
            shifts.retain(|s| *s != found);
        } else {
            over.removed.insert((employee_id, found.clock_in));
        }
        over.added.push(SimShift {
            clock_in: new_clock_in,
            modification: Some(Modification {
                at: now,
                original_clock_in: None,
            }),
            ..found
        });
        true
    }

    /// Every recurring account that has signed up by now, with its status
    /// now (as the account list reports it for a period ending now).
    pub fn recurring_accounts(&self, api_id: &str) -> Vec<SimRecurringAccount> {
        let now = Utc::now();
        let Some(account) = self.inner.chain.account_index(api_id) else {
            return Vec::new();
        };
        let start = DateTime::<Utc>::MIN_UTC;
        self.accounts_signed_up(account, api_id, start, now, now)
    }

    /// Every status change made by now, oldest first.
    pub fn status_changes(&self, api_id: &str) -> Vec<SimStatusChange> {
        let now = Utc::now();
        let Some(account) = self.inner.chain.account_index(api_id) else {
            return Vec::new();
        };
        self.changes_between(account, api_id, DateTime::<Utc>::MIN_UTC, now, now)
    }

    /// Serves `people` for the account instead of the generated employees,
    /// shifts and members (earlier edits of the account are dropped).
    /// Unknown account: ignored.
    pub fn set_people(&self, api_id: &str, people: People) {
        if self.inner.chain.account_index(api_id).is_none() {
            tracing::warn!(api_id, "set_people: unknown account");
            return;
        }
        let over = PeopleOverride {
            staff: Some((people.employees, people.shifts)),
            members: Some(Arc::new(MemberBook::new(people.members, people.changes))),
            ..PeopleOverride::default()
        };
        lock(&self.inner.state)
            .people
            .insert(api_id.to_string(), over);
    }

    /// Records one more status change, e.g. a cancellation after a status
    /// list was cached. On generated members this freezes the book at the
    /// current month. Returns whether the account exists.
    pub fn add_status_change(&self, api_id: &str, change: SimStatusChange) -> bool {
        let Some(account) = self.inner.chain.account_index(api_id) else {
            return false;
        };
        let book = self.member_book(account, api_id, Utc::now());
        let book = Arc::new(book.with_change(change));
        lock(&self.inner.state)
            .people
            .entry(api_id.to_string())
            .or_default()
            .members = Some(book);
        true
    }

    /// Forgets the status list's cached answers, as if an hour had passed.
    pub fn clear_status_cache(&self) {
        lock(&self.inner.state).status_cache.clear();
    }

    fn employee_list(&self, account: usize, api_id: &str) -> Vec<SimEmployee> {
        let state = lock(&self.inner.state);
        match state.people.get(api_id).and_then(|p| p.staff.as_ref()) {
            Some((employees, _)) => {
                let mut employees = employees.clone();
                employees.sort_by_key(|e| e.employee_id);
                employees
            }
            None => self.inner.staff.employees(account),
        }
    }

    /// Every stored shift of an employee that may bear on entries clocked
    /// in during `[from, to]`, test edits applied; `None`: no such employee.
    fn shifts_of(
        &self,
        account: usize,
        api_id: &str,
        employee_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Option<Vec<SimShift>> {
        let state = lock(&self.inner.state);
        let over = state.people.get(api_id);
        let mut shifts = match over.and_then(|p| p.staff.as_ref()) {
            Some((employees, shifts)) => {
                employees.iter().find(|e| e.employee_id == employee_id)?;
                shifts
                    .iter()
                    .filter(|s| s.employee_id == employee_id)
                    .cloned()
                    .collect()
            }
            None => {
                let staff = &self.inner.staff;
                staff
                    .employees(account)
                    .iter()
                    .find(|e| e.employee_id == employee_id)?;
                let (first, last) = people::shift_dates(from, to);
                staff.shifts(account, employee_id, first, last)
            }
        };
        if let Some(over) = over {
            shifts.retain(|s| !over.removed.contains(&(s.employee_id, s.clock_in)));
            shifts.extend(
                over.added
                    .iter()
                    .filter(|s| s.employee_id == employee_id)
                    .cloned(),
            );
        }
        Some(shifts)
    }

    fn served_clock_entries(
        &self,
        account: usize,
        api_id: &str,
        employee_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<Vec<SimClockEntry>> {
        let shifts = self.shifts_of(account, api_id, employee_id, from, to)?;
        let entries = people::clock_entries(&shifts, from, to, now);
        Some(self.live_clock_entries(api_id, &shifts, entries, now))
    }

    fn member_book(&self, account: usize, api_id: &str, now: DateTime<Utc>) -> Arc<MemberBook> {
        let installed = lock(&self.inner.state)
            .people
            .get(api_id)
            .and_then(|p| p.members.clone());
        installed.unwrap_or_else(|| {
            let inner = &self.inner;
            inner.members.book(&inner.chain, &inner.staff, account, now)
        })
    }

    /// Accounts that signed up in `[start, end]` and by `now`, with their
    /// status at the end of that period (or now, if earlier).
    fn accounts_signed_up(
        &self,
        account: usize,
        api_id: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<SimRecurringAccount> {
        let book = self.member_book(account, api_id, now);
        let sites = &self.inner.chain.accounts()[account].sites;
        let site_id = |code: &str| sites.iter().find(|s| s.code == code).map(|s| s.site_id);
        let as_of = end.min(now);
        book.members
            .iter()
            .filter(|m| m.signed_up >= start && m.signed_up <= as_of)
            .map(|m| book.account(m, as_of, site_id))
            .collect()
    }

    /// Status changes made in `[start, end]` and by `now`, oldest first.
    fn changes_between(
        &self,
        account: usize,
        api_id: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<SimStatusChange> {
        let as_of = end.min(now);
        self.member_book(account, api_id, now)
            .changes
            .iter()
            .filter(|c| c.at >= start && c.at <= as_of)
            .cloned()
            .collect()
    }
}

/// A simulator serving HTTP. Dropping it stops the server.
pub struct RunningSimulator {
    addr: SocketAddr,
    simulator: Simulator,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSimulator {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, e.g. `http://127.0.0.1:8089/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The simulator behind the server, for counters, faults and overrides.
    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    /// Stops accepting connections and waits until open ones are finished.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                tracing::error!(%error, "simulator server task failed");
            }
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
