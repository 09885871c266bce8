//! Typed settings: a TOML file overridden by `SONNYS_ETL__SECTION__KEY`
//! environment variables and `DATABASE_URL`, checked completely at start-up so
//! that a mistake stops the program with the key named, before any request.
//!
//! API keys are read from the file, an environment variable or a file of their
//! own and held as [`SecretString`]: they are never printed.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::domain::{parse_timezone, AccountName, ApiId, SiteCode};

mod reporting;
pub use reporting::ReportingSettings;

/// The vendor's production endpoint.
pub const PRODUCTION_BASE_URL: &str = "https://trigonapi.sonnyscontrols.com/v1";

/// The service's schedule when none is configured: 03:30 every night.
pub const DEFAULT_CRON: &str = "0 30 3 * * *";
/// Default of `schedule.lookback_days`: days exported again every night.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 3;
/// Default of `schedule.catch_up_days`: missing days the service fills.
pub const DEFAULT_CATCH_UP_DAYS: u32 = 14;
/// The API serves about 6 months back (183 days before its today).
pub const MAX_CATCH_UP_DAYS: u32 = 180;

/// A configuration problem, naming the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub api: ApiSettings,
    pub sync: SyncSettings,
    pub schedule: ScheduleSettings,
    pub transactions: TransactionSettings,
    pub server: ServerSettings,
    pub labour: LabourSettings,
    pub members: MembersSettings,
    pub reporting: ReportingSettings,
    pub backfill: BackfillSettings,
    pub accounts: Vec<AccountSettings>,
}

/// History the service fills in the background (`[backfill]`).
#[derive(Debug, Clone, Default)]
pub struct BackfillSettings {
    /// The first business day to fill; none: no backfill. Clamped to the
    /// API's reach ([`crate::domain::days::earliest_servable_date`]).
    pub since: Option<Since>,
}

impl BackfillSettings {
    /// The first date the backfill exports at `now`: `since`, or the oldest
    /// date the API still serves when `since` lies beyond its reach.
    pub fn first_date(&self, now: chrono::DateTime<chrono::Utc>) -> Option<chrono::NaiveDate> {
        let since = self.since?;
        let wanted = match since {
            Since::Date(d) => d,
            Since::Ago(_) => since.at(now).date_naive(),
        };
        Some(wanted.max(crate::domain::days::earliest_servable_date(now)))
    }
}

/// The export of employees and clock entries (`[labour]`).
#[derive(Debug, Clone)]
pub struct LabourSettings {
    /// Whether `sync` and the service export labour by default.
    pub enabled: bool,
    /// Business days re-read every night, for employees seen lately.
    pub recent_days: u32,
    /// Employees with a clock entry (or first listed) within this many
    /// weeks are read every night; the others only by the sweep.
    pub active_weeks: u32,
    /// Business days the sweep re-reads for every employee, picking up
    /// BackOffice edits.
    pub sweep_days: u32,
    /// How often the sweep runs.
    pub sweep_every: Duration,
}

impl Default for LabourSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            recent_days: 2,
            active_weeks: 4,
            sweep_days: 14,
            sweep_every: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The export of membership accounts and their status changes (`[members]`).
#[derive(Debug, Clone)]
pub struct MembersSettings {
    /// Whether `sync` and the service export memberships by default.
    pub enabled: bool,
    /// How far back the first export reads sign-ups and status changes.
    pub since: Since,
    /// Days of sign-ups and status changes re-read every night.
    pub recent_days: u32,
}

impl Default for MembersSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            since: Since::Ago(Duration::from_secs(3 * 365 * 24 * 3600 + 24 * 3600)),
            recent_days: 2,
        }
    }
}

/// A point in the past: a date, or a span before now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Date(chrono::NaiveDate),
    Ago(Duration),
}

impl Since {
    /// The moment it names at `now`.
    pub fn at(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        match *self {
            Since::Date(d) => d.and_time(chrono::NaiveTime::MIN).and_utc(),
            Since::Ago(span) => {
                now - chrono::Duration::from_std(span).unwrap_or(chrono::Duration::zero())
            }
        }
    }
}

/// When the service exports, and which days (`[schedule]`).
#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// The 6-field cron expression (seconds first), evaluated in `timezone`.
    pub schedule: crate::schedule::Schedule,
    /// Complete days re-exported on every run, for late voids and edits.
    pub lookback_days: u32,
    /// How far back missing days are found.
    pub catch_up_days: u32,
    /// Local time (in the schedule's zone) a run should have finished by;
    /// `plan --tonight` warns when the forecast misses it.
    pub deadline: Option<chrono::NaiveTime>,
    /// How the lookback days are looked at again.
    pub lookback: Lookback,
    /// How often the lookback days are exported whole even when their
    /// summaries show no change (a tender or a name changed, same total).
    pub full_lookback_every: Duration,
}

pub use crate::domain::days::Lookback;

/// Default of `schedule.full_lookback_every`.
pub const DEFAULT_FULL_LOOKBACK_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The `[transactions]` section.
#[derive(Debug, Clone)]
pub struct TransactionSettings {
    /// Read each exported site-day's summaries (`GET /transaction/version-2`)
    /// for the membership flags and status the live export lacks.
    pub summaries: bool,
    /// Read each exported site-day's wash list (`GET
    /// /transaction/type/wash`): the API's own classification of a wash,
    /// which the views then prefer to the item departments.
    pub wash_list: bool,
}

impl Default for TransactionSettings {
    fn default() -> Self {
        Self {
            summaries: true,
            wash_list: false,
        }
    }
}

impl Default for ScheduleSettings {
    /// 03:30 UTC every night, 3 days re-exported, 14 days caught up.
    fn default() -> Self {
        Self {
            schedule: crate::schedule::Schedule::parse(DEFAULT_CRON, chrono_tz::UTC)
                .unwrap_or_else(|e| unreachable!("the default schedule parses: {e}")),
            lookback_days: DEFAULT_LOOKBACK_DAYS,
            catch_up_days: DEFAULT_CATCH_UP_DAYS,
            deadline: None,
            lookback: Lookback::Summaries,
            full_lookback_every: DEFAULT_FULL_LOOKBACK_EVERY,
        }
    }
}

/// The service's operations endpoint (`[server]`).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where `/livez`, `/readyz`, `/metrics` and the status page listen;
    /// `None` when turned off (`listen = ""`).
    pub listen: Option<std::net::SocketAddr>,
    /// How long a stopping service lets the pages in flight commit.
    pub shutdown_timeout: Duration,
}

/// Default of `server.listen`: the operations endpoint on loopback.
pub const DEFAULT_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 9187);
/// Default of `server.shutdown_timeout`.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: Some(std::net::SocketAddr::from(DEFAULT_LISTEN)),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// Default of `database.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// Default of `database.outage_timeout`.
pub const DEFAULT_OUTAGE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// May hold a password, so it is a secret.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    /// How long a database outage is waited out before a site-day fails.
    pub outage_timeout: Duration,
}

impl Default for DatabaseSettings {
    /// No URL: it comes from the file or `DATABASE_URL`.
    fn default() -> Self {
        Self {
            url: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            outage_timeout: DEFAULT_OUTAGE_TIMEOUT,
        }
    }
}

/// The vendor's throttle: 20 requests per API id…
pub const DEFAULT_REQUESTS_PER_WINDOW: u32 = 20;
/// …per 15 seconds.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15);
/// Default of `api.jitter_guard`.
pub const DEFAULT_JITTER_GUARD: Duration = Duration::from_millis(250);
/// Default of `api.request_timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of `api.job_timeout`.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(600);
/// Default of `api.max_total_per_window`.
pub const DEFAULT_MAX_TOTAL_PER_WINDOW: u64 = 50_000;

#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub base_url: Url,
    /// What the vendor allows per API id and window (20 per 15 s).
    pub requests_per_window: u32,
    pub window: Duration,
    /// Requests per window left untouched for other consumers of the same id.
    pub reserve: u32,
    /// Added to the window before a request's slot is reused, to absorb
    /// network jitter between our clock and the server's.
    pub jitter_guard: Duration,
    pub request_timeout: Duration,
    /// How long one page's export job may take before the site-day fails.
    pub job_timeout: Duration,
    /// A window whose `total` exceeds this fails its day at once.
    pub max_total_per_window: u64,
}

impl Default for ApiSettings {
    /// The production endpoint and the vendor's documented throttle.
    fn default() -> Self {
        Self {
            base_url: Url::parse(PRODUCTION_BASE_URL)
                .unwrap_or_else(|e| unreachable!("the production URL parses: {e}")),
            requests_per_window: DEFAULT_REQUESTS_PER_WINDOW,
            window: DEFAULT_WINDOW,
            reserve: 0,
            jitter_guard: DEFAULT_JITTER_GUARD,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            job_timeout: DEFAULT_JOB_TIMEOUT,
            max_total_per_window: DEFAULT_MAX_TOTAL_PER_WINDOW,
        }
    }
}

impl ApiSettings {
    /// Requests per window this daemon may spend.
    pub fn allowance(&self) -> u32 {
        self.requests_per_window.saturating_sub(self.reserve)
    }
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Sites exported at the same time, across all accounts.
    pub max_concurrent_sites: usize,
    /// How long a claim on a site-day holds without renewal; a dead
    /// process's days are taken over after this.
    pub lease: Duration,
}

/// Default of `sync.max_concurrent_sites`.
pub const DEFAULT_MAX_CONCURRENT_SITES: usize = 16;

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            max_concurrent_sites: DEFAULT_MAX_CONCURRENT_SITES,
            lease: LEASE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub name: AccountName,
    pub api_id: ApiId,
    pub api_key: SecretString,
    /// Zone for sites whose /site/list entry has none.
    pub timezone: Option<Tz>,
    /// Only these sites; all of the account's sites when `None`.
    pub sites: Option<Vec<SiteCode>>,
}

// ---- the raw shape of the file, exactly the documented keys ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    transactions: RawTransactions,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    labour: RawLabour,
    #[serde(default)]
    members: RawMembers,
    #[serde(default)]
    reporting: reporting::RawReporting,
    #[serde(default)]
    backfill: RawBackfill,
    #[serde(default)]
    accounts: Vec<RawAccount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    max_connections: Option<u32>,
    password_credential: Option<String>,
    outage_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: Option<String>,
    timezone: Option<String>,
    lookback_days: Option<u32>,
    catch_up_days: Option<u32>,
    deadline: Option<String>,
    lookback: Option<String>,
    full_lookback_every: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransactions {
    summaries: Option<bool>,
    wash_list: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    shutdown_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    base_url: Option<String>,
    requests_per_window: Option<u32>,
    window: Option<String>,
    reserve: Option<u32>,
    jitter_guard: Option<String>,
    request_timeout: Option<String>,
    job_timeout: Option<String>,
    max_total_per_window: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    max_concurrent_sites: Option<usize>,
    lease: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabour {
    enabled: Option<bool>,
    recent_days: Option<u32>,
    active_weeks: Option<u32>,
    sweep_days: Option<u32>,
    sweep_every: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackfill {
    since: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMembers {
    enabled: Option<bool>,
    since: Option<String>,
    recent_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Option<String>,
    api_id: Option<String>,
    api_key: Option<String>,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_credential: Option<String>,
    timezone: Option<String>,
    sites: Option<Vec<String>>,
}

/// Where settings come from: an optional file and an environment.
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    pub env: HashMap<String, String>,
    /// Whether the API keys are read: commands that never call the API
    /// (`migrate`, `report`, `status`) must work without them.
    pub keys: Keys,
}

/// Whether a command needs the accounts' API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Required,
    /// Keys are not read; every account's key is empty and must not be used.
    NotNeeded,
}

impl Sources<'_> {
    /// The process environment and an optional file.
    pub fn process(file: Option<&Path>) -> Sources<'_> {
        Sources {
            file,
            env: std::env::vars().collect(),
            keys: Keys::Required,
        }
    }

    /// The same, for a command that never calls the API.
    pub fn without_keys(mut self) -> Self {
        self.keys = Keys::NotNeeded;
        self
    }
}

/// The folder systemd's `LoadCredential=` fills, from `$CREDENTIALS_DIRECTORY`.
fn credential(
    env: &HashMap<String, String>,
    key: &str,
    name: &str,
) -> Result<SecretString, ConfigError> {
    let dir = env.get("CREDENTIALS_DIRECTORY").ok_or_else(|| {
        invalid(
            key,
            format!("names the credential `{name}`, but $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)"),
        )
    })?;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(invalid(key, format!("`{name}` is not a credential name")));
    }
    let path = Path::new(dir).join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

impl Settings {
    /// Load and check the settings.
    pub fn load(sources: &Sources<'_>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = sources.file {
            if !file.is_file() {
                return Err(ConfigError::Load(format!(
                    "the file {} does not exist or is not a file",
                    file.display()
                )));
            }
            builder = builder.add_source(
                config::File::from(file)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let overrides: HashMap<String, String> = sources
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("SONNYS_ETL__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("SONNYS_ETL")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(overrides.into_iter().collect())),
        );
        let raw: RawSettings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        Self::check(raw, &sources.env, sources.keys)
    }

    /// Every section checked by its own rule; the first problem found,
    /// with its key, stops the load.
    fn check(
        raw: RawSettings,
        env: &HashMap<String, String>,
        keys: Keys,
    ) -> Result<Self, ConfigError> {
        let schedule = raw.schedule.check()?;
        Ok(Settings {
            database: raw.database.check(env)?,
            api: raw.api.check()?,
            sync: raw.sync.check()?,
            schedule,
            transactions: raw.transactions.check(),
            reporting: ReportingSettings::check(raw.reporting)?,
            server: raw.server.check()?,
            labour: raw.labour.check()?,
            members: raw.members.check()?,
            backfill: raw.backfill.check()?,
            accounts: check_accounts(raw.accounts, env, keys)?,
        })
    }

    /// The database URL, or a clear error when none is configured.
    pub fn database_url(&self) -> Result<&str, ConfigError> {
        self.database
            .url
            .as_ref()
            .map(|u| u.expose_secret())
            .ok_or_else(|| {
                invalid(
                    "database.url",
                    "is not set (set it in the file or DATABASE_URL)",
                )
            })
    }
}

// ---- one check per section: defaults come from each section's Default ----

impl RawDatabase {
    /// `[database]`, with `DATABASE_URL` and the password credential.
    fn check(self, env: &HashMap<String, String>) -> Result<DatabaseSettings, ConfigError> {
        // DATABASE_URL overrides the file, as every environment variable does.
        let mut database_url = env
            .get("DATABASE_URL")
            .cloned()
            .filter(|u| !u.trim().is_empty())
            .or(self.url)
            .filter(|u| !u.trim().is_empty());
        if let Some(url) = &mut database_url {
            let mut parsed = Url::parse(url).map_err(|_| {
                invalid(
                    "database.url",
                    "is not a URL (expected postgres://user@host:port/database)",
                )
            })?;
            if let Some(name) = &self.password_credential {
                let password = credential(env, "database.password_credential", name)?;
                parsed
                    .set_password(Some(password.expose_secret()))
                    .map_err(|_| {
                        invalid(
                            "database.password_credential",
                            "cannot be combined with this database.url (it needs a host)",
                        )
                    })?;
                *url = parsed.to_string();
            }
        } else if self.password_credential.is_some() {
            return Err(invalid(
                "database.password_credential",
                "needs database.url (or DATABASE_URL) without a password",
            ));
        }
        let defaults = DatabaseSettings::default();
        Ok(DatabaseSettings {
            url: database_url.map(SecretString::from),
            max_connections: positive(
                "database.max_connections",
                self.max_connections,
                defaults.max_connections,
            )?,
            outage_timeout: duration(
                "database.outage_timeout",
                self.outage_timeout,
                defaults.outage_timeout,
            )?,
        })
    }
}

impl RawApi {
    /// `[api]`: the endpoint, the vendor's throttle and the timeouts.
    fn check(self) -> Result<ApiSettings, ConfigError> {
        let defaults = ApiSettings::default();
        let base_url = self
            .base_url
            .unwrap_or_else(|| PRODUCTION_BASE_URL.to_owned());
        let base_url = Url::parse(base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                invalid(
                    "api.base_url",
                    format!("`{base_url}` is not an http(s) URL"),
                )
            })?;
        let requests_per_window = positive(
            "api.requests_per_window",
            self.requests_per_window,
            defaults.requests_per_window,
        )?;
        let reserve = self.reserve.unwrap_or(defaults.reserve);
        if reserve >= requests_per_window {
            return Err(invalid(
                "api.reserve",
                format!(
                    "{reserve} leaves nothing of api.requests_per_window = {requests_per_window}"
                ),
            ));
        }
        Ok(ApiSettings {
            base_url,
            requests_per_window,
            window: duration("api.window", self.window, defaults.window)?,
            reserve,
            jitter_guard: duration_or_zero(
                "api.jitter_guard",
                self.jitter_guard,
                defaults.jitter_guard,
            )?,
            request_timeout: duration(
                "api.request_timeout",
                self.request_timeout,
                defaults.request_timeout,
            )?,
            job_timeout: duration("api.job_timeout", self.job_timeout, defaults.job_timeout)?,
            max_total_per_window: positive(
                "api.max_total_per_window",
                self.max_total_per_window,
                defaults.max_total_per_window,
            )?,
        })
    }
}

impl RawSync {
    /// `[sync]`: concurrency and the claim on a site-day.
    fn check(self) -> Result<SyncSettings, ConfigError> {
        let defaults = SyncSettings::default();
        let sync = SyncSettings {
            max_concurrent_sites: positive(
                "sync.max_concurrent_sites",
                self.max_concurrent_sites,
                defaults.max_concurrent_sites,
            )?,
            lease: duration("sync.lease", self.lease, defaults.lease)?,
        };
        if sync.lease < Duration::from_secs(2) {
            return Err(invalid(
                "sync.lease",
                format!(
                    "{} is too short: the heartbeat renews a claim every quarter of it, so give it at least 2s",
                    humantime::format_duration(sync.lease)
                ),
            ));
        }
        Ok(sync)
    }
}

impl RawSchedule {
    /// `[schedule]`: when the service runs and which days it exports.
    fn check(self) -> Result<ScheduleSettings, ConfigError> {
        let defaults = ScheduleSettings::default();
        let schedule_zone = self
            .timezone
            .as_deref()
            .map(parse_timezone)
            .transpose()
            .map_err(|p| invalid("schedule.timezone", p))?
            .unwrap_or(chrono_tz::UTC);
        let cron = self.cron.unwrap_or_else(|| DEFAULT_CRON.to_owned());
        let schedule = ScheduleSettings {
            schedule: crate::schedule::Schedule::parse(&cron, schedule_zone)
                .map_err(|p| invalid("schedule.cron", p))?,
            lookback_days: self.lookback_days.unwrap_or(defaults.lookback_days),
            catch_up_days: positive(
                "schedule.catch_up_days",
                self.catch_up_days,
                defaults.catch_up_days,
            )?,
            deadline: self
                .deadline
                .as_deref()
                .map(|t| {
                    chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| {
                        invalid(
                            "schedule.deadline",
                            format!("`{t}` is not a local time like \"07:00\""),
                        )
                    })
                })
                .transpose()?,
            lookback: match self.lookback.as_deref().map(str::trim) {
                None | Some("summaries") => Lookback::Summaries,
                Some("full") => Lookback::Full,
                Some(other) => {
                    return Err(invalid(
                        "schedule.lookback",
                        format!("`{other}` is not \"summaries\" or \"full\""),
                    ))
                }
            },
            full_lookback_every: duration(
                "schedule.full_lookback_every",
                self.full_lookback_every,
                defaults.full_lookback_every,
            )?,
        };
        if schedule.catch_up_days > MAX_CATCH_UP_DAYS {
            return Err(invalid(
                "schedule.catch_up_days",
                format!(
                    "{} reaches further back than the API serves (at most {MAX_CATCH_UP_DAYS} days)",
                    schedule.catch_up_days
                ),
            ));
        }
        if schedule.lookback_days > schedule.catch_up_days {
            return Err(invalid(
                "schedule.lookback_days",
                format!(
                    "{} is more than schedule.catch_up_days = {}",
                    schedule.lookback_days, schedule.catch_up_days
                ),
            ));
        }
        Ok(schedule)
    }
}

impl RawTransactions {
    /// `[transactions]`.
    fn check(self) -> TransactionSettings {
        TransactionSettings {
            summaries: self
                .summaries
                .unwrap_or(TransactionSettings::default().summaries),
            wash_list: self
                .wash_list
                .unwrap_or(TransactionSettings::default().wash_list),
        }
    }
}

impl RawServer {
    /// `[server]`: the operations endpoint.
    fn check(self) -> Result<ServerSettings, ConfigError> {
        let listen = match self.listen.as_deref().map(str::trim) {
            None => ServerSettings::default().listen,
            Some("") => None,
            Some(text) => Some(text.parse().map_err(|_| {
                invalid(
                    "server.listen",
                    format!("`{text}` is not an address like \"127.0.0.1:9187\" (\"\" turns the endpoint off)"),
                )
            })?),
        };
        Ok(ServerSettings {
            listen,
            shutdown_timeout: duration(
                "server.shutdown_timeout",
                self.shutdown_timeout,
                ServerSettings::default().shutdown_timeout,
            )?,
        })
    }
}

impl RawLabour {
    /// `[labour]`.
    fn check(self) -> Result<LabourSettings, ConfigError> {
        let defaults = LabourSettings::default();
        let labour = LabourSettings {
            enabled: self.enabled.unwrap_or(defaults.enabled),
            recent_days: positive("labour.recent_days", self.recent_days, defaults.recent_days)?,
            active_weeks: positive(
                "labour.active_weeks",
                self.active_weeks,
                defaults.active_weeks,
            )?,
            sweep_days: positive("labour.sweep_days", self.sweep_days, defaults.sweep_days)?,
            sweep_every: duration("labour.sweep_every", self.sweep_every, defaults.sweep_every)?,
        };
        for (key, days) in [
            ("labour.recent_days", labour.recent_days),
            ("labour.sweep_days", labour.sweep_days),
        ] {
            if days > 90 {
                return Err(invalid(
                    key,
                    format!("{days} days is more than the 90 a night can re-read"),
                ));
            }
        }
        Ok(labour)
    }
}

impl RawMembers {
    /// `[members]`.
    fn check(self) -> Result<MembersSettings, ConfigError> {
        let defaults = MembersSettings::default();
        Ok(MembersSettings {
            enabled: self.enabled.unwrap_or(defaults.enabled),
            since: match self.since.as_deref() {
                None => defaults.since,
                Some(text) => parse_since("members.since", text, "3years")?,
            },
            recent_days: positive(
                "members.recent_days",
                self.recent_days,
                defaults.recent_days,
            )?,
        })
    }
}

impl RawBackfill {
    /// `[backfill]`.
    fn check(self) -> Result<BackfillSettings, ConfigError> {
        Ok(BackfillSettings {
            since: match self.since.as_deref() {
                None => None,
                Some(text) => Some(parse_since("backfill.since", text, "6months")?),
            },
        })
    }
}

/// A date (`2026-06-01`) or a span before now (`6months`), for `key`.
fn parse_since(key: &str, text: &str, example: &str) -> Result<Since, ConfigError> {
    let text = text.trim();
    match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => Ok(Since::Date(date)),
        Err(_) => Ok(Since::Ago(humantime::parse_duration(text).map_err(
            |_| {
                invalid(
                    key,
                    format!("{text:?} is neither a date (2023-01-01) nor a span ({example})"),
                )
            },
        )?)),
    }
}

/// `[[accounts]]`: unique names, ids, exactly one source of each key.
fn check_accounts(
    raw: Vec<RawAccount>,
    env: &HashMap<String, String>,
    keys: Keys,
) -> Result<Vec<AccountSettings>, ConfigError> {
    let mut names = BTreeSet::new();
    let mut accounts = Vec::with_capacity(raw.len());
    for (i, a) in raw.into_iter().enumerate() {
        let at = |field: &str| format!("accounts[{i}].{field}");
        let name = a
            .name
            .as_deref()
            .ok_or_else(|| invalid(at("name"), "is missing"))
            .and_then(|n| AccountName::parse(n).map_err(|p| invalid(at("name"), p)))?;
        if !names.insert(name.clone()) {
            return Err(invalid(
                at("name"),
                format!("`{name}` is used by two accounts; names must be unique"),
            ));
        }
        let at = |field: &str| format!("accounts[{i}] ({name}).{field}");
        let api_id = a
            .api_id
            .as_deref()
            .ok_or_else(|| invalid(at("api_id"), "is missing"))
            .and_then(|id| ApiId::parse(id).map_err(|p| invalid(at("api_id"), p)))?;
        let api_key = match (
            a.api_key,
            a.api_key_env,
            a.api_key_file,
            a.api_key_credential,
        ) {
            _ if keys == Keys::NotNeeded => String::new(),
            (Some(key), None, None, None) => key,
            (None, Some(var), None, None) => env.get(&var).cloned().ok_or_else(|| {
                invalid(
                    at("api_key_env"),
                    format!("the environment variable {var} is not set"),
                )
            })?,
            (None, None, Some(path), None) => std::fs::read_to_string(&path)
                .map_err(|e| {
                    invalid(
                        at("api_key_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?
                .trim()
                .to_owned(),
            (None, None, None, Some(name)) => credential(env, &at("api_key_credential"), &name)?
                .expose_secret()
                .to_owned(),
            (None, None, None, None) => return Err(invalid(
                at("api_key"),
                "is missing: set one of api_key, api_key_env, api_key_file or api_key_credential",
            )),
            _ => {
                return Err(invalid(
                    at("api_key"),
                    "set only one of api_key, api_key_env, api_key_file and api_key_credential",
                ))
            }
        };
        if keys == Keys::Required && api_key.trim().is_empty() {
            return Err(invalid(at("api_key"), "is empty"));
        }
        let timezone = a
            .timezone
            .as_deref()
            .map(parse_timezone)
            .transpose()
            .map_err(|p| invalid(at("timezone"), p))?;
        let sites = a
            .sites
            .map(|codes| {
                codes
                    .iter()
                    .map(|c| {
                        SiteCode::parse(c)
                            .ok_or_else(|| invalid(at("sites"), "holds an empty site code"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        accounts.push(AccountSettings {
            name,
            api_id,
            api_key: SecretString::from(api_key),
            timezone,
            sites,
        });
    }
    Ok(accounts)
}

/// How long a claim on a site-day holds without being renewed (`sync.lease`
/// by default). The exporting process renews it with every heartbeat
/// (every 15 s, `store::HEARTBEAT_EVERY`); a claim of a process that died
/// runs out after this and the day is taken over.
pub const LEASE: Duration = Duration::from_secs(60);

fn positive<T: Copy + PartialOrd + Default + std::fmt::Display>(
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    let value = value.unwrap_or(default);
    if value <= T::default() {
        return Err(invalid(key, format!("must be greater than 0, got {value}")));
    }
    Ok(value)
}

fn duration_or_zero(
    key: &str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text.trim()).map_err(|e| {
            invalid(
                key,
                format!("`{text}` is not a duration like \"15s\" or \"1500ms\": {e}"),
            )
        }),
    }
}

fn duration(key: &str, value: Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    let d = duration_or_zero(key, value, default)?;
    if d.is_zero() {
        return Err(invalid(key, "must be longer than zero"));
    }
    Ok(d)
}
