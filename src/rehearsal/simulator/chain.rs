//! The sample chain: two accounts of car-wash sites and their transactions,
//! generated deterministically from the seed, one (site, local date) at a time.
//!
//! Nothing here depends on wall-clock time or on the order of calls: a day's
//! transactions are a pure function of `(seed, account, site, local date)`, so
//! two simulators with the same seed serve byte-identical records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Map, Value};

use super::lock;

/// Transaction numbers are `days since this date * NUMBERS_PER_DAY + sequence`,
/// which keeps them increasing per site without materialising earlier days.
const NUMBER_EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("valid constant date"),
};
const NUMBERS_PER_DAY: i64 = 10_000;

/// Special days repeat with this period (in days) at every physical site.
pub(crate) const SPECIAL_PERIOD: i64 = 30;

/// Sales tax applied to every taxable line.
const TAX_RATE: Decimal = Decimal::from_parts(7, 0, 0, false, 2);

/// Days kept in the generation cache; generating a day again is cheap, the
/// cache only spares repeated polls of the same window.
const DAY_CACHE_CAPACITY: usize = 512;

/// Nullable string fields of a transaction record (top level).
const NULLABLE_TOP: &[&str] = &[
    "customerName",
    "customerId",
    "vehicleLicensePlate",
    "employeeCashier",
    "employeeGreeter",
];
/// Fields of the full record that the live export leaves out and only the
/// summaries (`/transaction/version-2`) carry.
pub(crate) const SUMMARY_ONLY_FIELDS: &[&str] = &[
    "isRecurringPlanSale",
    "isRecurringPlanRedemption",
    "transactionStatus",
];
/// Nullable string fields of `items[]`.
const NULLABLE_ITEM: &[&str] = &["sku"];
/// Nullable string fields of `tenders[]`.
const NULLABLE_TENDER: &[&str] = &[
    "tenderSubType",
    "referenceNumber",
    "creditCardLastFour",
    "creditCardExpirationDate",
];
/// Nullable string fields of `discount[]`.
const NULLABLE_DISCOUNT: &[&str] = &["discountSku"];

/// How a site trades, which decides its hours and its sales mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SiteKind {
    /// A tunnel open 7:00–21:00 local (6:00–23:00 on its busiest days).
    Tunnel,
    /// A site open around the clock, so its local day (23 or 25 hours on
    /// daylight-saving changes) is fully populated.
    AllHours,
    /// An e-commerce site with an empty code: online sales only, no special days.
    Virtual,
}

/// A site of the sample chain.
#[derive(Clone, Debug)]
pub(crate) struct SiteDef {
    pub site_id: i64,
    pub code: String,
    pub name: String,
    /// As `/site/list` reports it; `None` means the account's zone applies.
    pub timezone: Option<Tz>,
    pub kind: SiteKind,
    /// One of the tunnels appended by `extra_sites`: it trades like the
    /// sample's tunnels, but nobody is rostered or signs up as a member there.
    pub extra: bool,
}

/// An account (one API id/key pair, one BackOffice database).
#[derive(Clone, Debug)]
pub(crate) struct AccountDef {
    pub name: String,
    pub api_id: String,
    pub api_key: String,
    pub timezone: Tz,
    pub sites: Vec<SiteDef>,
}

impl AccountDef {
    /// The zone a site's business day is computed in.
    pub fn site_zone(&self, site: &SiteDef) -> Tz {
        site.timezone.unwrap_or(self.timezone)
    }
}

/// The fixed sample chain. Site ids restart at 1 in every account, as in
/// separate BackOffice databases, so transaction ids are only unique per account.
fn sample_accounts() -> Vec<AccountDef> {
    let site = |site_id, code: &str, name: &str, timezone, kind| SiteDef {
        site_id,
        code: code.to_string(),
        name: name.to_string(),
        timezone,
        kind,
        extra: false,
    };
    vec![
        AccountDef {
            name: "northside".into(),
            api_id: "northside-demo".into(),
            api_key: "sim-northside-key-7f3a9c21e5".into(),
            timezone: Tz::America__New_York,
            sites: vec![
                site(
                    1,
                    "N01",
                    "Northside Car Wash - Main St",
                    Some(Tz::America__New_York),
                    SiteKind::Tunnel,
                ),
                site(
                    2,
                    "N02",
                    "Northside Car Wash - Lakeview",
                    Some(Tz::America__Chicago),
                    SiteKind::Tunnel,
                ),
                site(
                    3,
                    "N03",
                    "Northside Express 24h - Route 9",
                    None,
                    SiteKind::AllHours,
                ),
            ],
        },
        AccountDef {
            name: "desert".into(),
            api_id: "desert-demo".into(),
            api_key: "sim-desert-key-4b8e2d90c1".into(),
            timezone: Tz::America__Phoenix,
            sites: vec![
                site(
                    1,
                    "D01",
                    "Desert Suds - Camelback",
                    Some(Tz::America__Phoenix),
                    SiteKind::Tunnel,
                ),
                site(
                    2,
                    "D02",
                    "Desert Suds - Colorado Springs",
                    Some(Tz::America__Denver),
                    SiteKind::Tunnel,
                ),
                site(
                    7,
                    "",
                    "Desert Suds Online Store",
                    Some(Tz::America__Phoenix),
                    SiteKind::Virtual,
                ),
            ],
        },
    ]
}

/// Places the extra sites are named after, in an order chosen by the seed.
const EXTRA_SITE_PLACES: &[&str] = &[
    "Oak Street",
    "Maple Avenue",
    "Riverside",
    "Hillcrest",
    "Airport Road",
    "Mill Creek",
    "Westgate",
    "Eastview",
    "Briarwood",
    "Cedar Park",
    "Fairview",
    "Harbor Point",
    "Kingsley",
    "Linden",
    "Meadowbrook",
    "Northgate",
    "Parkside",
    "Quarry Road",
    "Ridgeway",
    "Summit",
    "Timberline",
    "Union Square",
    "Valley View",
    "Willow Bend",
];

impl AccountDef {
    /// Appends `count` tunnel sites that continue the account's pattern:
    /// codes after the highest numbered one (`N04`, `N05`, …), site ids
    /// after the highest physical one skipping ids already taken (the
    /// online store's 7), zones cycling through the physical sites' zones as
    /// `/site/list` reports them (null included), names from
    /// [`EXTRA_SITE_PLACES`] in a seed-chosen order.
    fn add_extra_sites(&mut self, seed: u64, count: u32) {
        let physical: Vec<SiteDef> = self
            .sites
            .iter()
            .filter(|s| s.kind != SiteKind::Virtual)
            .cloned()
            .collect();
        let Some(last) = physical.last() else {
            return;
        };
        let digits_at = last
            .code
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .len();
        let (prefix, width) = (&last.code[..digits_at], last.code.len() - digits_at);
        let mut number = physical
            .iter()
            .filter_map(|s| s.code.strip_prefix(prefix)?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        let mut site_id = physical.iter().map(|s| s.site_id).max().unwrap_or(0);
        let brand = physical[0]
            .name
            .split_once(" - ")
            .map_or(self.name.as_str(), |(brand, _)| brand)
            .to_string();
        let account_key = str_hash(&self.api_id);
        let mut places = EXTRA_SITE_PLACES.to_vec();
        places.sort_by_key(|p| mix(seed, &[account_key, str_hash(p), 0xE57A]));
        for i in 0..count as usize {
            number += 1;
            site_id += 1;
            while self.sites.iter().any(|s| s.site_id == site_id) {
                site_id += 1;
            }
            let place = places[i % places.len()];
            let name = match i / places.len() {
                0 => format!("{brand} - {place}"),
                round => format!("{brand} - {place} {}", round + 1),
            };
            self.sites.push(SiteDef {
                site_id,
                code: format!("{prefix}{number:0width$}"),
                name,
                timezone: physical[i % physical.len()].timezone,
                kind: SiteKind::Tunnel,
                extra: true,
            });
        }
    }
}

/// splitmix64 finaliser: a fixed, well-mixing function (unlike `std`'s hasher,
/// whose output is not promised to stay the same across Rust releases).
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes a seed and parts into one stable 64-bit value.
pub(crate) fn mix(seed: u64, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(splitmix(seed), |acc, &p| splitmix(acc ^ splitmix(p)))
}

/// FNV-1a, for turning strings into mix parts.
pub(crate) fn str_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn days_since_epoch(date: NaiveDate) -> i64 {
    (date - NUMBER_EPOCH).num_days()
}

/// Converts a local wall-clock time to UTC; times inside a spring-forward gap
/// move forward to the first existing instant.
pub(crate) fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..8 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += chrono::Duration::minutes(30);
    }
    // No zone has a gap longer than a few hours; UTC is a harmless fallback.
    Utc.from_utc_datetime(&local)
}

/// Renders a UTC instant as the service does: `2026-05-19T05:32:32.123Z`.
pub(crate) fn format_instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses a record's `completeDate`.
pub(crate) fn complete_date(record: &Value) -> Option<DateTime<Utc>> {
    let text = record.get("completeDate")?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Money with exactly two decimal places, as the service sends it.
fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

fn to_cents(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

/// Money as an exact JSON number (rust_decimal's own `Serialize` writes a
/// string; the service sends numbers).
pub(crate) fn num(d: Decimal) -> Value {
    // A Decimal's display form is always a valid JSON number.
    d.to_string()
        .parse::<serde_json::Number>()
        .map_or(Value::Null, Value::Number)
}

fn tax_on(net: Decimal) -> Decimal {
    to_cents(net * TAX_RATE)
}

/// Generated days keyed by (account index, site index, local date).
type DayCache = HashMap<(usize, usize, NaiveDate), Arc<Vec<Value>>>;

/// The deterministic generator of the sample chain, with a small cache of days.
pub(crate) struct Chain {
    seed: u64,
    accounts: Vec<AccountDef>,
    cache: Mutex<DayCache>,
}

impl Chain {
    /// The sample chain with `extra_sites` more tunnels per account
    /// (see [`AccountDef::add_extra_sites`]).
    pub fn new(seed: u64, extra_sites: u32) -> Self {
        let mut accounts = sample_accounts();
        for account in &mut accounts {
            account.add_extra_sites(seed, extra_sites);
        }
        Self {
            seed,
            accounts,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn accounts(&self) -> &[AccountDef] {
        &self.accounts
    }

    pub fn account_index(&self, api_id: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.api_id == api_id)
    }

    fn site_key(&self, account: usize, site: usize) -> u64 {
        let a = &self.accounts[account];
        mix(
            str_hash(&a.api_id),
            &[a.sites[site].site_id as u64, str_hash(&a.sites[site].code)],
        )
    }

    /// Where in the special-day cycle a site starts, so sites of one account
    /// do not all have their quiet and busy days on the same date.
    fn special_phase(&self, account: usize, site: usize) -> i64 {
        (mix(self.seed, &[self.site_key(account, site), 0x5EC1A1]) % SPECIAL_PERIOD as u64) as i64
    }

    /// Number of transactions a site has on a local date (the whole day, even
    /// the part of today that has not happened yet).
    ///
    /// Physical sites follow a 30-day cycle (see the module docs of
    /// `simulator`): phase 2 → 0, phase 9 → exactly 100, phase 16 → exactly
    /// 101, phase 23 → 1,000–1,299; other days 150–400.
    pub fn day_volume(&self, account: usize, site: usize, date: NaiveDate) -> usize {
        let d = days_since_epoch(date);
        let r = mix(self.seed, &[self.site_key(account, site), d as u64, 0x7011]);
        let site_def = &self.accounts[account].sites[site];
        if site_def.kind == SiteKind::Virtual {
            return 8 + (r % 25) as usize;
        }
        match (d + self.special_phase(account, site)).rem_euclid(SPECIAL_PERIOD) {
            2 => 0,
            9 => 100,
            16 => 101,
            23 => 1_000 + (r % 300) as usize,
            _ => 150 + (r % 251) as usize,
        }
    }

    /// The canonical records (null for unset strings, amount key `discount`)
    /// of one site on one local date, in completeDate order.
    pub fn day(&self, account: usize, site: usize, date: NaiveDate) -> Arc<Vec<Value>> {
        let key = (account, site, date);
        if let Some(day) = lock(&self.cache).get(&key) {
            return Arc::clone(day);
        }
        let day = Arc::new(self.generate_day(account, site, date));
        let mut cache = lock(&self.cache);
        if cache.len() >= DAY_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&day));
        day
    }

    /// Customer number `n` of a site as transactions name them: its
    /// `customerId` and name.
    pub fn customer(&self, account: usize, site: usize, n: u64) -> (String, String) {
        let site_id = self.accounts[account].sites[site].site_id;
        (
            format!("{site_id}:{n}"),
            customer_name(self.site_key(account, site), n),
        )
    }

    /// Locates the site and local date a transaction id belongs to.
    pub fn locate(&self, account: usize, id: &str) -> Option<(usize, NaiveDate)> {
        let (site_id, number) = id.split_once(':')?;
        let site_id: i64 = site_id.parse().ok()?;
        let number: i64 = number.parse().ok()?;
        let site = self.accounts[account]
            .sites
            .iter()
            .position(|s| s.site_id == site_id)?;
        let days = u64::try_from(number.checked_sub(1)? / NUMBERS_PER_DAY).ok()?;
        Some((site, NUMBER_EPOCH.checked_add_days(Days::new(days))?))
    }

    /// Canonical records of the given sites whose completeDate, truncated to
    /// whole seconds, lies in `[start, end]` and is not after `now`, with
    /// overrides applied, sorted by completeDate then id.
    pub fn window(
        &self,
        account: usize,
        sites: &[usize],
        start: i64,
        end: i64,
        now: DateTime<Utc>,
        overrides: Option<&HashMap<String, Value>>,
    ) -> Vec<Value> {
        let (Some(start_t), Some(end_t)) = (
            DateTime::<Utc>::from_timestamp(start, 0),
            DateTime::<Utc>::from_timestamp(end, 0),
        ) else {
            return Vec::new();
        };
        let mut out: Vec<(DateTime<Utc>, String, Value)> = Vec::new();
        for &site in sites {
            let tz = self.accounts[account].site_zone(&self.accounts[account].sites[site]);
            let first = start_t.with_timezone(&tz).date_naive();
            let last = end_t.with_timezone(&tz).date_naive();
            for date in first.iter_days().take_while(|d| *d <= last) {
                for record in self.day(account, site, date).iter() {
                    let record = match record
                        .get("id")
                        .and_then(Value::as_str)
                        .and_then(|id| overrides.and_then(|o| o.get(id)))
                    {
                        Some(Value::Null) => continue,
                        Some(changed) => changed,
                        None => record,
                    };
                    let Some(t) = complete_date(record) else {
                        continue;
                    };
                    if t.timestamp() < start || t.timestamp() > end || t > now {
                        continue;
                    }
                    let id = record
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    out.push((t, id, record.clone()));
                }
            }
        }
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        out.into_iter().map(|(_, _, v)| v).collect()
    }

    fn generate_day(&self, account: usize, site: usize, date: NaiveDate) -> Vec<Value> {
        let acct = &self.accounts[account];
        let site_def = &acct.sites[site];
        let tz = acct.site_zone(site_def);
        let n = self.day_volume(account, site, date);
        if n == 0 {
            return Vec::new();
        }
        let site_key = self.site_key(account, site);
        let d = days_since_epoch(date);
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, &[site_key, d as u64, 0xDA7]));

        let (open_hour, close_hour) = match site_def.kind {
            SiteKind::Tunnel if n >= 1_000 => (6, 23),
            SiteKind::Tunnel => (7, 21),
            SiteKind::AllHours | SiteKind::Virtual => (0, 24),
        };
        let at_hour = |h: u32| -> DateTime<Utc> {
            let (day, h) = if h >= 24 {
                (date.succ_opt().unwrap_or(date), h - 24)
            } else {
                (date, h)
            };
            local_to_utc(tz, day.and_hms_opt(h, 0, 0).unwrap_or_default())
        };
        let open = at_hour(open_hour);
        let span_ms = (at_hour(close_hour) - open).num_milliseconds().max(1);
        let mut offsets: Vec<i64> = (0..n).map(|_| rng.gen_range(0..span_ms)).collect();
        offsets.sort_unstable();

        let ctx = DayContext {
            site: site_def,
            site_key,
        };
        offsets
            .into_iter()
            .enumerate()
            .map(|(i, offset)| {
                let number = d * NUMBERS_PER_DAY + i as i64 + 1;
                let when = open + chrono::Duration::milliseconds(offset);
                ctx.transaction(&mut rng, number, when)
            })
            .collect()
    }
}

/// What kind of business a transaction records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    RetailWash,
    FreeWash,
    PlanSale,
    PlanUpgrade,
    Redemption,
    RecurringPayment,
    PrepaidSale,
    PrepaidRedemption,
    Merchandise,
    Return,
    Rewash,
}

/// Mix at physical sites, in percent.
const TUNNEL_MIX: &[(Kind, u32)] = &[
    (Kind::RetailWash, 36),
    (Kind::FreeWash, 3),
    (Kind::PlanSale, 5),
    (Kind::PlanUpgrade, 2),
    (Kind::Redemption, 35),
    (Kind::RecurringPayment, 4),
    (Kind::PrepaidSale, 3),
    (Kind::PrepaidRedemption, 4),
    (Kind::Merchandise, 4),
    (Kind::Return, 1),
    (Kind::Rewash, 3),
];
/// Mix at the online store.
const VIRTUAL_MIX: &[(Kind, u32)] = &[
    (Kind::PlanSale, 30),
    (Kind::PlanUpgrade, 10),
    (Kind::PrepaidSale, 40),
    (Kind::Merchandise, 15),
    (Kind::Return, 5),
];

struct Product {
    name: &'static str,
    sku: &'static str,
    cents: i64,
}

const fn product(name: &'static str, sku: &'static str, cents: i64) -> Product {
    Product { name, sku, cents }
}

/// The position of a wash product in the menu (Basic, Deluxe, Ultimate).
pub(crate) fn wash_product(name: &str) -> Option<usize> {
    WASHES.iter().position(|p| p.name == name)
}

const WASHES: &[Product] = &[
    product("Basic Wash", "1001", 1000),
    product("Deluxe Wash", "1002", 1500),
    product("Ultimate Wash", "1003", 2200),
];
const EXTRAS: &[Product] = &[
    product("Tire Shine", "2001", 300),
    product("Rain Repellent", "2002", 400),
    product("Hot Wax", "2003", 500),
];
/// Membership plans; the plan at index i includes the wash at index i.
const PLANS: &[Product] = &[
    product("Basic Wash Club", "3001", 1999),
    product("Deluxe Wash Club", "3002", 2999),
    product("Ultimate Wash Club", "3003", 3999),
];
const PREPAID: &[Product] = &[
    product("Basic Wash Prepaid", "4001", 1000),
    product("Deluxe Wash Prepaid", "4002", 1500),
    product("5-Wash Book Ultimate", "4013", 9900),
];
const MERCHANDISE: &[Product] = &[
    product("Air Freshener", "5001", 299),
    product("Microfiber Towel", "5002", 699),
    product("Glass Cleaner", "5003", 449),
];
const FIRST_NAMES: &[&str] = &[
    "James", "Maria", "Robert", "Linda", "Michael", "Patricia", "David", "Jennifer", "Carlos",
    "Aisha", "Wei", "Olga", "Tom", "Priya", "Kevin", "Grace",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Garcia", "Johnson", "Nguyen", "Brown", "Martinez", "Davis", "Lopez", "Wilson",
    "Anderson", "Thomas", "Kowalski", "Patel", "Okafor",
];
const EMPLOYEES: &[&str] = &[
    "Mary Jones",
    "Rick Johnson",
    "Dana Lee",
    "Luis Ortega",
    "Sam Carter",
    "Beth Miller",
];
const CARD_BRANDS: &[&str] = &["Visa", "MasterCard", "Discover", "Amex"];
const MEMBER_TENDERS: &[&str] = &["RFID Recurring", "LPR", "Washbook Recurring"];

/// The name of customer number `n` of a site, the same wherever it appears.
fn customer_name(site_key: u64, n: u64) -> String {
    let h = mix(site_key, &[n]);
    format!(
        "{} {}",
        FIRST_NAMES[(h % FIRST_NAMES.len() as u64) as usize],
        LAST_NAMES[((h >> 8) % LAST_NAMES.len() as u64) as usize]
    )
}

/// The name of membership plan `i` (any index; it wraps).
pub(crate) fn plan_name(i: usize) -> &'static str {
    PLANS[i % PLANS.len()].name
}

/// One line of `items[]`.
struct Line {
    name: &'static str,
    sku: Option<&'static str>,
    department: &'static str,
    quantity: i64,
    gross: Decimal,
    discount: Decimal,
    taxable: bool,
}

impl Line {
    fn sale(p: &Product, department: &'static str) -> Self {
        Line {
            name: p.name,
            sku: Some(p.sku),
            department,
            quantity: 1,
            gross: money(p.cents),
            discount: Decimal::ZERO,
            taxable: true,
        }
    }

    /// A line given away in full (membership wash, coupon, rewash).
    fn comped(p: &Product, department: &'static str) -> Self {
        Line {
            discount: money(p.cents),
            ..Line::sale(p, department)
        }
    }

    fn net(&self) -> Decimal {
        self.gross - self.discount
    }

    fn tax(&self) -> Decimal {
        if self.taxable {
            tax_on(self.net())
        } else {
            to_cents(Decimal::ZERO)
        }
    }
}

/// One entry of `discount[]`.
struct DiscountLine {
    name: &'static str,
    sku: Option<&'static str>,
    applied_to: &'static str,
    amount: Decimal,
    code: String,
}

/// Per-day generation context.
struct DayContext<'a> {
    site: &'a SiteDef,
    site_key: u64,
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

impl DayContext<'_> {
    fn is_virtual(&self) -> bool {
        self.site.kind == SiteKind::Virtual
    }

    /// A member of this site: id, name and plate are a function of the
    /// member number, so the same customer looks the same every day.
    fn member(&self, rng: &mut ChaCha8Rng) -> (String, String, String) {
        let n: u64 = rng.gen_range(1..2_500);
        let h = mix(self.site_key, &[n]);
        let letters: String = (0..3)
            .map(|i| char::from(b'A' + ((h >> (16 + i * 5)) % 26) as u8))
            .collect();
        let plate = format!("{letters}{:04}", (h >> 40) % 10_000);
        (
            format!("{}:{n}", self.site.site_id),
            customer_name(self.site_key, n),
            plate,
        )
    }

    fn transaction(&self, rng: &mut ChaCha8Rng, number: i64, when: DateTime<Utc>) -> Value {
        let mix_table = if self.is_virtual() {
            VIRTUAL_MIX
        } else {
            TUNNEL_MIX
        };
        let roll = rng.gen_range(0..mix_table.iter().map(|(_, w)| w).sum::<u32>());
        let mut acc = 0;
        let kind = mix_table
            .iter()
            .find(|(_, w)| {
                acc += w;
                roll < acc
            })
            .map_or(Kind::RetailWash, |(k, _)| *k);

        let mut lines: Vec<Line> = Vec::new();
        let mut discounts: Vec<DiscountLine> = Vec::new();
        let mut customer: Option<(String, String, String)> = None;
        let mut trans_type = "Sale";
        // Flags in spec order: payment, redemption, sale, prepaid redemption, prepaid sale.
        let mut flags = [false; 5];
        let mut plan_sale = Some(false);
        let mut plan_redemption = Some(false);
        let mut member_tender = None;
        let mut device = if self.is_virtual() {
            "Web Store".to_string()
        } else if rng.gen_bool(0.6) {
            format!("Pay Station {}", rng.gen_range(1..=3))
        } else {
            format!("POS{}", rng.gen_range(1..=2))
        };

        match kind {
            Kind::RetailWash => {
                let w = rng.gen_range(0..WASHES.len());
                lines.push(Line::sale(&WASHES[w], "Wash"));
                for extra in EXTRAS {
                    if rng.gen_bool(0.15 * (w + 1) as f64) {
                        lines.push(Line::sale(extra, "Wash Extras"));
                    }
                }
                if rng.gen_bool(0.1) {
                    let amount = money(300);
                    lines[0].discount = amount;
                    discounts.push(DiscountLine {
                        name: "$3 Off Coupon",
                        sku: Some("6003"),
                        applied_to: WASHES[w].name,
                        amount,
                        code: digits(rng, 8),
                    });
                }
            }
            Kind::FreeWash => {
                let w = &WASHES[rng.gen_range(0..2)];
                lines.push(Line::comped(w, "Wash"));
                discounts.push(DiscountLine {
                    name: "Free Wash Coupon",
                    sku: Some("6001"),
                    applied_to: w.name,
                    amount: money(w.cents),
                    code: digits(rng, 8),
                });
                member_tender = Some(("Coupon", Some("Code")));
            }
            Kind::PlanSale | Kind::PlanUpgrade => {
                let p = rng.gen_range(0..PLANS.len());
                let mut plan = Line::sale(&PLANS[p], "Recurring Plan");
                if kind == Kind::PlanUpgrade {
                    // An upgrade or switch charges the prorated difference.
                    plan.gross = money(rng.gen_range(2..=10) * 100);
                } else {
                    flags[2] = true;
                }
                lines.push(plan);
                if !self.is_virtual() {
                    lines.push(Line::comped(&WASHES[p], "Wash"));
                    discounts.push(DiscountLine {
                        name: "Membership Wash",
                        sku: None,
                        applied_to: WASHES[p].name,
                        amount: money(WASHES[p].cents),
                        code: format!("CLUB{}", p + 1),
                    });
                }
                plan_sale = Some(true);
                customer = Some(self.member(rng));
            }
            Kind::Redemption => {
                // The live service prices a member's wash like a sale and
                // settles it with the plan's tender: the line is not comped.
                let w = rng.gen_range(0..WASHES.len());
                lines.push(Line::sale(&WASHES[w], "Wash"));
                flags[1] = true;
                plan_redemption = Some(true);
                customer = Some(self.member(rng));
                let sub = *pick(rng, MEMBER_TENDERS);
                if sub == "LPR" {
                    device = format!("LPR Lane {}", rng.gen_range(1..=2));
                }
                member_tender = Some(("Prepaid", Some(sub)));
            }
            Kind::RecurringPayment => {
                lines.push(Line::sale(pick(rng, PLANS), "Recurring Plan"));
                flags[0] = true;
                customer = Some(self.member(rng));
                device = "Recurring Billing".to_string();
            }
            Kind::PrepaidSale => {
                lines.push(Line::sale(pick(rng, PREPAID), "Prepaid Wash"));
                flags[4] = true;
                if rng.gen_bool(0.5) {
                    customer = Some(self.member(rng));
                }
            }
            Kind::PrepaidRedemption => {
                let w = rng.gen_range(0..WASHES.len());
                lines.push(Line::comped(&WASHES[w], "Wash"));
                flags[3] = true;
                member_tender = Some(("Prepaid Wash", Some("Code")));
            }
            Kind::Merchandise => {
                // Lines are grouped by item, so several of one item are one line.
                let p = pick(rng, MERCHANDISE);
                let quantity = rng.gen_range(1..=2);
                lines.push(Line {
                    quantity,
                    gross: money(p.cents * quantity),
                    ..Line::sale(p, "Merchandise")
                });
                if rng.gen_bool(0.2) {
                    // An open-price item rung up without a SKU.
                    lines.push(Line {
                        name: "Misc Merchandise",
                        sku: None,
                        department: "Merchandise",
                        quantity: 1,
                        gross: money(rng.gen_range(100..1_000)),
                        discount: Decimal::ZERO,
                        taxable: true,
                    });
                }
            }
            Kind::Return => {
                trans_type = "Return";
                let (p, department) = if self.is_virtual() || rng.gen_bool(0.4) {
                    (pick(rng, MERCHANDISE), "Merchandise")
                } else {
                    (pick(rng, WASHES), "Wash")
                };
                lines.push(Line {
                    quantity: -1,
                    gross: -money(p.cents),
                    ..Line::sale(p, department)
                });
            }
            Kind::Rewash => {
                trans_type = "Rewash";
                let w = pick(rng, WASHES);
                let mut line = Line::comped(w, "Wash");
                line.taxable = false;
                lines.push(line);
            }
        }

        let total: Decimal = lines.iter().map(|l| l.net() + l.tax()).sum();
        let total = to_cents(total);
        let tenders = match member_tender {
            Some((tender, sub)) => vec![Tender::settling(tender, sub, total)],
            None if total.is_zero() => Vec::new(),
            None => vec![self.payment(rng, total, kind)],
        };

        let voided = rng.gen_bool(0.02);
        let status = if voided {
            Some("Voided")
        } else if rng.gen_bool(0.005) {
            None
        } else {
            Some("Completed")
        };
        if plan_sale == Some(false) && plan_redemption == Some(false) && rng.gen_bool(0.04) {
            // Older records of the enriched view lack the membership flags.
            plan_sale = None;
            plan_redemption = None;
        }

        // Only staffed terminals record a cashier.
        let cashier = device.starts_with("POS").then(|| *pick(rng, EMPLOYEES));
        let greeter = (!self.is_virtual() && kind != Kind::RecurringPayment && rng.gen_bool(0.3))
            .then(|| *pick(rng, EMPLOYEES));
        let (customer_id, customer_name, plate) = match customer {
            Some((id, name, plate)) => (Some(id), Some(name), Some(plate)),
            None => (None, None, None),
        };

        json!({
            "id": format!("{}:{number}", self.site.site_id),
            "number": number,
            "type": trans_type,
            "completeDate": format_instant(when),
            "locationCode": self.site.code,
            "salesDeviceName": device,
            "total": num(total),
            "tenders": tenders.iter().map(Tender::to_json).collect::<Vec<_>>(),
            "items": lines.iter().map(|l| json!({
                "name": l.name,
                "sku": l.sku,
                "department": l.department,
                "quantity": l.quantity,
                "gross": num(to_cents(l.gross)),
                "net": num(to_cents(l.net())),
                "discount": num(to_cents(l.discount)),
                "tax": num(l.tax()),
                "additionalFee": num(to_cents(Decimal::ZERO)),
                "isVoided": voided,
            })).collect::<Vec<_>>(),
            "customerName": customer_name,
            "customerId": customer_id,
            "vehicleLicensePlate": plate,
            "employeeCashier": cashier,
            "employeeGreeter": greeter,
            "discount": discounts.iter().map(|d| json!({
                "discountName": d.name,
                "discountSku": d.sku,
                "appliedToItemName": d.applied_to,
                "discount": num(to_cents(d.amount)),
                "discountCode": d.code,
            })).collect::<Vec<_>>(),
            "isRecurringPayment": flags[0],
            "isRecurringRedemption": flags[1],
            "isRecurringSale": flags[2],
            "isPrepaidRedemption": flags[3],
            "isPrepaidSale": flags[4],
            "isRecurringPlanSale": plan_sale,
            "isRecurringPlanRedemption": plan_redemption,
            "transactionStatus": status,
        })
    }

    /// How the customer paid a non-zero total.
    fn payment(&self, rng: &mut ChaCha8Rng, total: Decimal, kind: Kind) -> Tender {
        let card_only = self.is_virtual() || kind == Kind::RecurringPayment;
        let roll = rng.gen_range(0..100);
        if !card_only && roll < 25 && total > Decimal::ZERO {
            // Customers hand over whole dollars, often a bill bigger than needed.
            let mut amount = total.ceil();
            if rng.gen_bool(0.5) {
                amount = (amount / Decimal::from(5)).ceil() * Decimal::from(5);
            }
            return Tender {
                tender: "Cash",
                sub: None,
                amount: to_cents(amount),
                change: to_cents(total - amount),
                total,
                reference: None,
                last_four: None,
                expiration: None,
            };
        }
        let (tender, sub, expiration) = if !card_only && roll < 35 {
            ("Debit", Some("Debit"), None)
        } else {
            let exp = format!(
                "{}-{:02}",
                rng.gen_range(2027..=2031),
                rng.gen_range(1..=12)
            );
            ("Credit", Some(*pick(rng, CARD_BRANDS)), Some(exp))
        };
        Tender {
            tender,
            sub,
            amount: total,
            change: to_cents(Decimal::ZERO),
            total,
            reference: Some(digits(rng, 11)),
            last_four: Some(digits(rng, 4)),
            expiration,
        }
    }
}

/// One entry of `tenders[]`.
struct Tender {
    tender: &'static str,
    sub: Option<&'static str>,
    amount: Decimal,
    change: Decimal,
    total: Decimal,
    reference: Option<String>,
    last_four: Option<String>,
    expiration: Option<String>,
}

impl Tender {
    /// A tender that settles the whole total without change or card: a
    /// membership plan (the wash's price), a prepaid code or a coupon (0).
    fn settling(tender: &'static str, sub: Option<&'static str>, total: Decimal) -> Self {
        Tender {
            tender,
            sub,
            amount: total,
            change: to_cents(Decimal::ZERO),
            total,
            reference: None,
            last_four: None,
            expiration: None,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "tender": self.tender,
            "tenderSubType": self.sub,
            "amount": num(self.amount),
            "change": num(self.change),
            "total": num(self.total),
            "referenceNumber": self.reference,
            "creditCardLastFour": self.last_four,
            "creditCardExpirationDate": self.expiration,
        })
    }
}

/// How the service's known quirks reshape a canonical record.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Quirks {
    pub empty_strings: bool,
    pub discount_amount: bool,
}

fn for_each_object(record: &mut Value, mut f: impl FnMut(&str, &mut Map<String, Value>)) {
    let Some(top) = record.as_object_mut() else {
        return;
    };
    f("", top);
    for list in ["items", "tenders", "discount"] {
        if let Some(Value::Array(entries)) = top.get_mut(list) {
            for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                f(list, entry);
            }
        }
    }
}

fn nullable_fields(list: &str) -> &'static [&'static str] {
    match list {
        "" => NULLABLE_TOP,
        "items" => NULLABLE_ITEM,
        "tenders" => NULLABLE_TENDER,
        _ => NULLABLE_DISCOUNT,
    }
}

/// Turns a canonical record into what the service sends under `quirks`.
pub(crate) fn render(record: &Value, quirks: Quirks) -> Value {
    let mut out = record.clone();
    for_each_object(&mut out, |list, obj| {
        if quirks.empty_strings {
            for field in nullable_fields(list) {
                if let Some(v @ Value::Null) = obj.get_mut(*field) {
                    *v = Value::String(String::new());
                }
            }
        }
        if quirks.discount_amount && list == "discount" {
            if let Some(amount) = obj.remove("discount") {
                obj.insert("discountAmount".into(), amount);
            }
        }
    });
    out
}

/// The inverse of [`render`]: `""` in a nullable string field means unset,
/// and `discountAmount` is the spec's `discount`.
pub(crate) fn normalize(record: &mut Value) {
    for_each_object(record, |list, obj| {
        for field in nullable_fields(list) {
            if let Some(v) = obj.get_mut(*field) {
                if v.as_str() == Some("") {
                    *v = Value::Null;
                }
            }
        }
        if list == "discount" {
            if let Some(amount) = obj.remove("discountAmount") {
                obj.insert("discount".into(), amount);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Timelike;

    use super::*;

    fn chain() -> Chain {
        Chain::new(42, 0)
    }

    fn dec(v: &Value) -> Decimal {
        let text = v.to_string();
        text.parse()
            .unwrap_or_else(|e| panic!("money `{text}` is not a decimal: {e}"))
    }

    #[test]
    fn every_day_of_a_site_is_consistent_money() {
        let c = chain();
        let date = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        for (a, account) in c.accounts().iter().enumerate() {
            for s in 0..account.sites.len() {
                for record in c.day(a, s, date).iter() {
                    let items = record["items"].as_array().expect("items");
                    let sum: Decimal = items.iter().map(|i| dec(&i["net"]) + dec(&i["tax"])).sum();
                    for i in items {
                        assert_eq!(dec(&i["gross"]) - dec(&i["discount"]), dec(&i["net"]));
                    }
                    assert_eq!(sum, dec(&record["total"]), "{record}");
                    let tenders = record["tenders"].as_array().expect("tenders");
                    let paid: Decimal = tenders.iter().map(|t| dec(&t["total"])).sum();
                    let handed: Decimal = tenders
                        .iter()
                        .map(|t| dec(&t["amount"]) + dec(&t["change"]))
                        .sum();
                    assert_eq!(paid, dec(&record["total"]), "{record}");
                    assert_eq!(handed, dec(&record["total"]), "{record}");
                    let flags = [
                        "isRecurringPayment",
                        "isRecurringRedemption",
                        "isRecurringSale",
                        "isPrepaidRedemption",
                        "isPrepaidSale",
                    ];
                    let set = flags.iter().filter(|f| record[**f] == true).count();
                    assert!(set <= 1, "{record}");
                }
            }
        }
    }

    #[test]
    fn a_redemption_costs_the_wash_and_is_paid_by_the_plan() {
        let c = chain();
        let date = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        let redemptions: Vec<Value> = c
            .day(0, 0, date)
            .iter()
            .filter(|r| r["isRecurringPlanRedemption"] == true)
            .cloned()
            .collect();
        assert!(redemptions.len() > 10, "{}", redemptions.len());
        for r in &redemptions {
            assert_eq!(r["isRecurringRedemption"], true, "{r}");
            let wash = &r["items"][0];
            let price = WASHES
                .iter()
                .find(|w| wash["name"] == w.name)
                .map(|w| money(w.cents))
                .expect("a wash");
            assert_eq!(dec(&wash["net"]), price, "{r}");
            assert_eq!(dec(&wash["discount"]), Decimal::ZERO, "{r}");
            assert_eq!(dec(&r["total"]), price + tax_on(price), "{r}");
            let tenders = r["tenders"].as_array().expect("tenders");
            assert_eq!(tenders.len(), 1, "{r}");
            assert_eq!(tenders[0]["tender"], "Prepaid", "{r}");
            assert!(MEMBER_TENDERS.contains(&tenders[0]["tenderSubType"].as_str().unwrap_or("")));
            assert_eq!(dec(&tenders[0]["amount"]), dec(&r["total"]), "{r}");
        }
    }

    #[test]
    fn special_days_recur_every_thirty_days() {
        let c = chain();
        let start = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
        for (a, account) in c.accounts().iter().enumerate() {
            for (s, site) in account.sites.iter().enumerate() {
                if site.kind == SiteKind::Virtual {
                    continue;
                }
                let vols: Vec<usize> = start
                    .iter_days()
                    .take(30)
                    .map(|d| c.day_volume(a, s, d))
                    .collect();
                assert!(vols.contains(&0) && vols.contains(&100) && vols.contains(&101));
                assert!(vols.iter().any(|v| *v >= 1_000));
            }
        }
    }

    #[test]
    fn thirty_seven_extra_sites_make_a_forty_site_chain_that_trades_every_normal_day() {
        let c = Chain::new(42, 37);
        let north = &c.accounts()[0];
        assert_eq!(north.sites.len(), 40);
        let codes: Vec<&str> = north.sites.iter().map(|s| s.code.as_str()).collect();
        let expected: Vec<String> = (1..=40).map(|n| format!("N{n:02}")).collect();
        assert_eq!(codes, expected);
        let ids: HashSet<i64> = north.sites.iter().map(|s| s.site_id).collect();
        assert_eq!(ids.len(), 40);
        let names: HashSet<&str> = north.sites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 40);

        let start = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        for (s, site) in north.sites.iter().enumerate().skip(3) {
            assert_eq!(site.kind, SiteKind::Tunnel, "{}", site.code);
            let tz = north.site_zone(site);
            let date = start
                .iter_days()
                .take(30)
                .find(|d| (150..=400).contains(&c.day_volume(0, s, *d)))
                .expect("a normal day in 30");
            let day = c.day(0, s, date);
            assert_eq!(day.len(), c.day_volume(0, s, date), "{}", site.code);
            for record in day.iter() {
                assert_eq!(record["locationCode"], site.code.as_str());
                let id = record["id"].as_str().expect("id");
                assert_eq!(c.locate(0, id), Some((s, date)), "{id}");
                let local = complete_date(record)
                    .expect("completeDate")
                    .with_timezone(&tz);
                assert_eq!(local.date_naive(), date);
                assert!((7..21).contains(&local.hour()), "{record}");
            }
        }
    }

    #[test]
    fn extra_sites_follow_each_accounts_codes_ids_and_zones() {
        let c = Chain::new(42, 6);
        let desert = &c.accounts()[1];
        let extra: Vec<(i64, &str, Option<Tz>)> = desert.sites[3..]
            .iter()
            .map(|s| (s.site_id, s.code.as_str(), s.timezone))
            .collect();
        let (phoenix, denver) = (Some(Tz::America__Phoenix), Some(Tz::America__Denver));
        assert_eq!(
            extra,
            [
                (3, "D03", phoenix),
                (4, "D04", denver),
                (5, "D05", phoenix),
                (6, "D06", denver),
                (8, "D07", phoenix),
                (9, "D08", denver),
            ]
        );
        let north = &c.accounts()[0];
        let zones: Vec<Option<Tz>> = north.sites[3..6].iter().map(|s| s.timezone).collect();
        assert_eq!(
            zones,
            [
                Some(Tz::America__New_York),
                Some(Tz::America__Chicago),
                None
            ]
        );
        assert!(north.sites[3].name.starts_with("Northside Car Wash - "));
        assert!(desert.sites[3].name.starts_with("Desert Suds - "));
    }

    #[test]
    fn extra_sites_change_nothing_at_the_sample_sites() {
        let (sample, big) = (chain(), Chain::new(42, 37));
        let date = NaiveDate::from_ymd_opt(2026, 6, 2).expect("date");
        for (a, account) in sample.accounts().iter().enumerate() {
            for (s, site) in account.sites.iter().enumerate() {
                let other = &big.accounts()[a].sites[s];
                assert_eq!(
                    (other.site_id, &other.code, &other.name),
                    (site.site_id, &site.code, &site.name)
                );
                assert_eq!(big.day(a, s, date), sample.day(a, s, date));
            }
        }
    }

    #[test]
    fn a_25_hour_day_is_fully_populated_in_local_time() {
        let c = chain();
        // US daylight saving ends on 2026-11-01; N03 trades around the clock.
        let date = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
        let day = c.day(0, 2, date);
        let times: Vec<DateTime<Utc>> = day.iter().filter_map(complete_date).collect();
        assert_eq!(times.len(), c.day_volume(0, 2, date));
        for t in &times {
            assert_eq!(t.with_timezone(&Tz::America__New_York).date_naive(), date);
        }
        let (first, last) = (times[0], times[times.len() - 1]);
        assert!(
            last - first > chrono::Duration::hours(24),
            "{first} .. {last}"
        );
    }

    #[test]
    fn ids_locate_their_day_and_numbers_increase() {
        let c = chain();
        let date = NaiveDate::from_ymd_opt(2026, 7, 4).expect("date");
        let day = c.day(0, 2, date);
        let mut last = 0;
        for record in day.iter() {
            let id = record["id"].as_str().expect("id");
            assert_eq!(c.locate(0, id), Some((2, date)));
            let number = record["number"].as_i64().expect("number");
            assert!(number > last);
            last = number;
        }
    }

    #[test]
    fn render_and_normalize_are_inverse() {
        let c = chain();
        let date = NaiveDate::from_ymd_opt(2026, 6, 2).expect("date");
        let quirks = Quirks {
            empty_strings: true,
            discount_amount: true,
        };
        for record in c.day(0, 0, date).iter() {
            let mut served = render(record, quirks);
            normalize(&mut served);
            assert_eq!(&served, record);
        }
    }
}
