//! Labour and membership records of the simulator, and the rules that turn
//! what BackOffice stores (shifts, status changes) into what the endpoints
//! serve at a given moment: payroll weeks and overtime, entries that appear
//! or change after the fact, an account's status as of a date.
//!
//! The generated data lives in `staff` and `members`; a test may install a
//! hand-made [`People`] instead, and edit either through the test hooks of
//! [`super::Simulator`].
//!
//! The live service's shape on these endpoints (knobs of
//! [`super::Faults`], on by default in [`super::SimulatorConfig`]): list
//! pages that answer `"total": null`, open shifts served with
//! `clockOut: null`, status changes dated by a bare `YYYY-MM-DD`; and, by a
//! test hook, an entry served without `clockIn`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

use super::chain::{local_to_utc, mix, str_hash};
use super::{lock, Simulator};

/// Share of people list pages answering `"total": null` by default.
pub(crate) const LIVE_NULL_TOTAL_RATE: f64 = 0.2;
/// Share of status changes served with a bare date by default.
pub(crate) const LIVE_BARE_DATE_RATE: f64 = 0.1;

/// Regular hours per payroll week; hours beyond are overtime for employees
/// eligible for it.
pub(crate) const REGULAR_HOURS_PER_WEEK: Decimal = Decimal::from_parts(40, 0, 0, false, 0);

/// A recurring (membership) account status, numbered as the service numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberStatus {
    Active = 1,
    PaymentFailed = 2,
    PaymentCcExpired = 3,
    PaymentRetriesExceeded = 4,
    Suspended = 5,
    Expired = 6,
    Cancelled = 7,
    Declined = 8,
    AuthorizerError = 9,
    ClearedTokens = 10,
    ChangedAuthorizer = 11,
    PaymentCcUpdateStarted = 12,
    PaymentCcUpdateDeclined = 13,
    AuthorizerCommunicationError = 14,
    UnknownError = 15,
}

impl MemberStatus {
    /// Every status, in number order.
    pub const ALL: [MemberStatus; 15] = [
        Self::Active,
        Self::PaymentFailed,
        Self::PaymentCcExpired,
        Self::PaymentRetriesExceeded,
        Self::Suspended,
        Self::Expired,
        Self::Cancelled,
        Self::Declined,
        Self::AuthorizerError,
        Self::ClearedTokens,
        Self::ChangedAuthorizer,
        Self::PaymentCcUpdateStarted,
        Self::PaymentCcUpdateDeclined,
        Self::AuthorizerCommunicationError,
        Self::UnknownError,
    ];

    /// The status number, 1–15.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The status name as the service spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::PaymentFailed => "Payment Failed",
            Self::PaymentCcExpired => "Payment CC Expired",
            Self::PaymentRetriesExceeded => "Payment Retries Exceeded",
            Self::Suspended => "Suspended",
            Self::Expired => "Expired",
            Self::Cancelled => "Cancelled",
            Self::Declined => "Declined",
            Self::AuthorizerError => "Authorizer Error",
            Self::ClearedTokens => "Cleared Tokens",
            Self::ChangedAuthorizer => "Changed Authorizer",
            Self::PaymentCcUpdateStarted => "Payment CC Update Started",
            Self::PaymentCcUpdateDeclined => "Payment CC Update Declined",
            Self::AuthorizerCommunicationError => "Authorizer communication error",
            Self::UnknownError => "Unknown error",
        }
    }

    /// The status of a number, if it is one of the fifteen.
    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| i64::from(s.number()) == n)
    }
}

/// An employee as `/employee` lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEmployee {
    pub employee_id: i64,
    pub first_name: String,
    pub last_name: String,
}

/// A manager's change to a stored shift.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modification {
    /// When the change was made: before it the entry is served as first
    /// recorded and `wasModified` is false.
    pub at: DateTime<Utc>,
    /// The clock-in as first recorded, when the change moved it (entries
    /// have no id, so such an edit makes the old entry disappear).
    pub original_clock_in: Option<DateTime<Utc>>,
}

/// A shift as BackOffice stores it. The simulator derives the served entry
/// (hours, overtime, what is visible yet) from it and the present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimShift {
    pub employee_id: i64,
    /// Where the employee clocked in (`""`: the online store).
    pub site_code: String,
    pub clock_in: DateTime<Utc>,
    /// `None`: still on shift whatever the time. A clock-out after the
    /// present is served as null too.
    pub clock_out: Option<DateTime<Utc>>,
    /// Dollars per hour, two decimals.
    pub regular_rate: Decimal,
    pub overtime_eligible: bool,
    pub overtime_rate: Decimal,
    pub modification: Option<Modification>,
    /// When a manager created the entry in BackOffice; it is not served before.
    pub created_in_back_office: Option<DateTime<Utc>>,
}

/// A clock entry as served, with the hours the pay rules give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimClockEntry {
    pub employee_id: i64,
    pub site_code: String,
    pub clock_in: DateTime<Utc>,
    /// `None` while on shift.
    pub clock_out: Option<DateTime<Utc>>,
    pub regular_rate: Decimal,
    pub regular_hours: Decimal,
    pub overtime_eligible: bool,
    pub overtime_rate: Decimal,
    pub overtime_hours: Decimal,
    pub was_modified: bool,
    pub modification_timestamp: Option<DateTime<Utc>>,
    pub was_created_in_back_office: bool,
    /// The payroll week as served, e.g. `"2021-01-08 - 2021-01-14"`.
    pub week: String,
    /// Served with `clockIn: null` (see [`Simulator::serve_without_clock_in`]):
    /// a client cannot key it and sets it aside.
    pub clock_in_missing: bool,
}

/// A recurring (membership) account as BackOffice stores it; its status
/// comes from its [`SimStatusChange`]s (`Active` before the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimMember {
    /// E.g. `"1:1001"`; also the `recurring_id` of its status changes.
    pub id: String,
    pub name: Option<String>,
    pub customer_id: Option<String>,
    /// A site code of the account.
    pub billing_site_code: String,
    pub signed_up: DateTime<Utc>,
}

/// One status change of a recurring account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimStatusChange {
    pub recurring_id: String,
    pub at: DateTime<Utc>,
    pub old_status: MemberStatus,
    pub new_status: MemberStatus,
    /// A person, or a service such as `Billing Service`.
    pub employee_name: String,
    /// Where the change happened.
    pub site_code: String,
}

/// A recurring account as `/recurring/account/list` reports it at a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRecurringAccount {
    pub id: String,
    pub name: Option<String>,
    pub customer_id: Option<String>,
    /// `None` when the billing site code is not one of the account's sites.
    pub billing_site_id: Option<i64>,
    pub billing_site_code: String,
    pub signed_up: DateTime<Utc>,
    /// When it was cancelled, if its status at the moment is `Cancelled`.
    pub cancelled: Option<DateTime<Utc>>,
    pub status: MemberStatus,
}

/// A hand-made data set for one account, installed with
/// [`super::Simulator::set_people`] in place of the generated one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct People {
    pub employees: Vec<SimEmployee>,
    pub shifts: Vec<SimShift>,
    pub members: Vec<SimMember>,
    pub changes: Vec<SimStatusChange>,
}

/// The start (a Friday) of the payroll week of a date. The vendor's example
/// week, "2021-01-08 - 2021-01-14", runs Friday to Thursday.
pub fn week_start(date: NaiveDate) -> NaiveDate {
    let since_friday = (date.weekday().num_days_from_monday() + 3) % 7;
    date - Days::new(u64::from(since_friday))
}

pub(crate) fn week_label(start: NaiveDate) -> String {
    format!("{} - {}", start, start + Days::new(6))
}

/// Hours of a span, rounded to hundredths as BackOffice reports them.
fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> Decimal {
    let seconds = (to - from).num_seconds().max(0);
    (Decimal::from(seconds) / Decimal::from(3_600))
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// A shift as it looks at `now`, before the week's pay rules.
struct Visible<'a> {
    shift: &'a SimShift,
    clock_in: DateTime<Utc>,
    clock_out: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
}

impl SimShift {
    /// The clock-in served at `now`, or `None` while the entry does not exist.
    pub(crate) fn served_clock_in(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.created_in_back_office.is_some_and(|t| t > now) {
            return None;
        }
        let clock_in = match &self.modification {
            Some(m) if m.at > now => m.original_clock_in.unwrap_or(self.clock_in),
            _ => self.clock_in,
        };
        (clock_in <= now).then_some(clock_in)
    }

    fn visible(&self, now: DateTime<Utc>) -> Option<Visible<'_>> {
        let clock_in = self.served_clock_in(now)?;
        let modified = self
            .modification
            .as_ref()
            .map(|m| m.at)
            .filter(|at| *at <= now);
        Some(Visible {
            shift: self,
            clock_in,
            clock_out: self.clock_out.filter(|t| *t <= now && *t >= clock_in),
            modified,
        })
    }
}

/// The entries of one employee at `now` whose clock-in lies in `[from, to]`,
/// oldest first. `shifts` must hold every shift of the employee whose
/// clock-in may fall in the payroll weeks touched by the range, since
/// overtime depends on the whole week.
///
/// Weeks are UTC dates, Friday to Thursday; an entry belongs to the week of
/// its clock-in. Hours are the entry's length rounded to hundredths (0 while
/// on shift); the first 40 hours of a week are regular, the rest overtime
/// for entries eligible for it.
pub(crate) fn clock_entries(
    shifts: &[SimShift],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<SimClockEntry> {
    let mut visible: Vec<Visible<'_>> = shifts.iter().filter_map(|s| s.visible(now)).collect();
    visible.sort_by(|a, b| (a.clock_in, &a.shift.site_code).cmp(&(b.clock_in, &b.shift.site_code)));
    let mut out = Vec::new();
    let mut week: Option<NaiveDate> = None;
    let mut regular_so_far = Decimal::ZERO;
    for v in visible {
        let this_week = week_start(v.clock_in.date_naive());
        if week != Some(this_week) {
            week = Some(this_week);
            regular_so_far = Decimal::ZERO;
        }
        let total = v
            .clock_out
            .map_or(Decimal::ZERO, |out| hours(v.clock_in, out));
        let regular = if v.shift.overtime_eligible {
            total.min((REGULAR_HOURS_PER_WEEK - regular_so_far).max(Decimal::ZERO))
        } else {
            total
        };
        regular_so_far += regular;
        if v.clock_in < from || v.clock_in > to {
            continue;
        }
        let s = v.shift;
        out.push(SimClockEntry {
            employee_id: s.employee_id,
            site_code: s.site_code.clone(),
            clock_in: v.clock_in,
            clock_out: v.clock_out,
            regular_rate: s.regular_rate,
            regular_hours: regular.normalize(),
            overtime_eligible: s.overtime_eligible,
            overtime_rate: s.overtime_rate,
            overtime_hours: (total - regular).normalize(),
            was_modified: v.modified.is_some(),
            modification_timestamp: v.modified,
            was_created_in_back_office: s.created_in_back_office.is_some(),
            week: week_label(this_week),
            clock_in_missing: false,
        });
    }
    out
}

/// The UTC dates whose shifts may matter for entries clocked in during
/// `[from, to]`: whole payroll weeks, a day more on each side for shifts
/// recorded by local date, and a day for clock-ins moved by a later edit.
pub(crate) fn shift_dates(from: DateTime<Utc>, to: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let first = week_start(from.date_naive()) - Days::new(2);
    let last = week_start(to.date_naive()) + Days::new(6 + 2);
    (first, last)
}

/// Members and their status changes, indexed for the list endpoints.
#[derive(Debug, Default)]
pub(crate) struct MemberBook {
    /// By sign-up time, then id.
    pub members: Vec<SimMember>,
    /// By time, then id.
    pub changes: Vec<SimStatusChange>,
    /// Indexes into `changes` per member id, in time order.
    by_member: HashMap<String, Vec<usize>>,
}

impl MemberBook {
    pub fn new(mut members: Vec<SimMember>, mut changes: Vec<SimStatusChange>) -> Self {
        members.sort_by(|a, b| (a.signed_up, &a.id).cmp(&(b.signed_up, &b.id)));
        changes.sort_by(|a, b| (a.at, &a.recurring_id).cmp(&(b.at, &b.recurring_id)));
        let mut by_member: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in changes.iter().enumerate() {
            by_member.entry(c.recurring_id.clone()).or_default().push(i);
        }
        Self {
            members,
            changes,
            by_member,
        }
    }

    /// The status of a member at `at`, and when it became `Cancelled` if it is.
    pub fn status_at(&self, id: &str, at: DateTime<Utc>) -> (MemberStatus, Option<DateTime<Utc>>) {
        let latest = self
            .by_member
            .get(id)
            .into_iter()
            .flatten()
            .map(|&i| &self.changes[i])
            .take_while(|c| c.at <= at)
            .last();
        match latest {
            Some(c) if c.new_status == MemberStatus::Cancelled => (c.new_status, Some(c.at)),
            Some(c) => (c.new_status, None),
            None => (MemberStatus::Active, None),
        }
    }

    /// The member as the account list reports it for a period ending at `at`.
    pub fn account(
        &self,
        member: &SimMember,
        at: DateTime<Utc>,
        site_id: impl Fn(&str) -> Option<i64>,
    ) -> SimRecurringAccount {
        let (status, cancelled) = self.status_at(&member.id, at);
        SimRecurringAccount {
            id: member.id.clone(),
            name: member.name.clone(),
            customer_id: member.customer_id.clone(),
            billing_site_id: site_id(&member.billing_site_code),
            billing_site_code: member.billing_site_code.clone(),
            signed_up: member.signed_up,
            cancelled,
            status,
        }
    }

    /// Whether `change` is its member's only change on its local date in
    /// `zone`: only then can a bare date stand for it without losing the
    /// order of the member's day.
    pub fn alone_on_its_day(&self, change: &SimStatusChange, zone: Tz) -> bool {
        let day = |t: DateTime<Utc>| t.with_timezone(&zone).date_naive();
        self.by_member
            .get(&change.recurring_id)
            .into_iter()
            .flatten()
            .map(|&i| &self.changes[i])
            .filter(|c| day(c.at) == day(change.at))
            .count()
            <= 1
    }

    /// A copy with one more change.
    pub fn with_change(&self, change: SimStatusChange) -> Self {
        let mut changes = self.changes.clone();
        changes.push(change);
        Self::new(self.members.clone(), changes)
    }
}

/// What a test changed of one account's people: an installed data set in
/// place of the generated one, and edits on top of either.
#[derive(Debug, Default)]
pub(crate) struct PeopleOverride {
    /// Installed employees and shifts; `None`: the generated staff.
    pub staff: Option<(Vec<SimEmployee>, Vec<SimShift>)>,
    /// Generated shifts replaced by an edit, by (employee, stored clock-in).
    pub removed: HashSet<(i64, DateTime<Utc>)>,
    /// Shifts that replace them.
    pub added: Vec<SimShift>,
    /// Installed or edited members; `None`: the generated ones.
    pub members: Option<Arc<MemberBook>>,
    /// Entries served without `clockIn`, by (employee, stored clock-in).
    pub no_clock_in: HashSet<(i64, DateTime<Utc>)>,
}

/// Whether `key` is among the `share` chosen for a quirk: the same keys
/// every time, so a repeated request meets the same answer.
pub(crate) fn chosen(key: &str, share: f64) -> bool {
    share > 0.0 && (mix(0x0051_1FE5, &[str_hash(key)]) % 10_000) as f64 / 10_000.0 < share
}

/// The live service's shape on the people endpoints, and the truth tests
/// compare a client's results with.
impl Simulator {
    /// From now on the entry of `employee_id` now served with `clock_in`
    /// is served with `clockIn: null`, as the live service sometimes sends
    /// an entry. Returns whether such an entry exists.
    pub fn serve_without_clock_in(
        &self,
        api_id: &str,
        employee_id: i64,
        clock_in: DateTime<Utc>,
    ) -> bool {
        let now = Utc::now();
        let Some(account) = self.inner.chain.account_index(api_id) else {
            return false;
        };
        let found = self
            .shifts_of(account, api_id, employee_id, clock_in, clock_in)
            .into_iter()
            .flatten()
            .find(|s| s.served_clock_in(now) == Some(clock_in));
        let Some(shift) = found else {
            tracing::warn!(api_id, employee_id, %clock_in, "serve_without_clock_in: no such entry");
            return false;
        };
        lock(&self.inner.state)
            .people
            .entry(api_id.to_string())
            .or_default()
            .no_clock_in
            .insert((employee_id, shift.clock_in));
        true
    }

    /// The instant a client should store for `change` as the status list
    /// serves it now: its time, or — served as a bare date — that date's
    /// local midnight in the account's zone.
    pub fn stored_status_at(&self, api_id: &str, change: &SimStatusChange) -> DateTime<Utc> {
        let Some(account) = self.inner.chain.account_index(api_id) else {
            return change.at;
        };
        match self.served_status_date(account, api_id, change, Utc::now()) {
            Some(date) => local_to_utc(
                self.inner.chain.accounts()[account].timezone,
                date.and_time(chrono::NaiveTime::MIN),
            ),
            None => change.at,
        }
    }

    /// The account-local date `change` is served with instead of its time,
    /// if it is one of the `bare_date_rate` chosen (by account, member and
    /// time) and its member's only change that day.
    pub(crate) fn served_status_date(
        &self,
        account: usize,
        api_id: &str,
        change: &SimStatusChange,
        now: DateTime<Utc>,
    ) -> Option<NaiveDate> {
        let share = lock(&self.inner.state).faults.bare_date_rate;
        let key = format!(
            "bare:{api_id}:{}:{}",
            change.recurring_id,
            change.at.timestamp()
        );
        if !chosen(&key, share) {
            return None;
        }
        let zone = self.inner.chain.accounts()[account].timezone;
        self.member_book(account, api_id, now)
            .alone_on_its_day(change, zone)
            .then(|| change.at.with_timezone(&zone).date_naive())
    }

    /// Entries as the live service serves them: open shifts only when
    /// `open_shifts` is on, entries a test chose without their clock-in.
    pub(crate) fn live_clock_entries(
        &self,
        api_id: &str,
        shifts: &[SimShift],
        mut entries: Vec<SimClockEntry>,
        now: DateTime<Utc>,
    ) -> Vec<SimClockEntry> {
        let state = lock(&self.inner.state);
        if !state.faults.open_shifts {
            entries.retain(|e| e.clock_out.is_some());
        }
        if let Some(missing) = state.people.get(api_id).map(|p| &p.no_clock_in) {
            for e in &mut entries {
                // Marked by the stored clock-in, which an edit may move.
                e.clock_in_missing = shifts.iter().any(|s| {
                    s.served_clock_in(now) == Some(e.clock_in)
                        && missing.contains(&(s.employee_id, s.clock_in))
                });
            }
        }
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("time")
    }

    fn shift(clock_in: DateTime<Utc>, minutes: i64) -> SimShift {
        SimShift {
            employee_id: 7,
            site_code: "N01".into(),
            clock_in,
            clock_out: Some(clock_in + chrono::Duration::minutes(minutes)),
            regular_rate: Decimal::new(1550, 2),
            overtime_eligible: true,
            overtime_rate: Decimal::new(2325, 2),
            modification: None,
            created_in_back_office: None,
        }
    }

    #[test]
    fn payroll_weeks_run_friday_to_thursday_like_the_vendors_example() {
        let friday = NaiveDate::from_ymd_opt(2021, 1, 8).expect("date");
        for d in 0..7 {
            assert_eq!(week_start(friday + Days::new(d)), friday);
        }
        assert_eq!(week_label(friday), "2021-01-08 - 2021-01-14");
    }

    #[test]
    fn hours_past_forty_in_a_week_are_overtime() {
        // Five shifts of 8 h 30 min from Friday 2021-01-08: 42.5 hours.
        let shifts: Vec<SimShift> = (0..5)
            .map(|d| shift(t(2021, 1, 8 + d, 13, 0), 8 * 60 + 30))
            .collect();
        let now = t(2021, 2, 1, 0, 0);
        let entries = clock_entries(&shifts, t(2021, 1, 1, 0, 0), now, now);
        let regular: Vec<String> = entries
            .iter()
            .map(|e| e.regular_hours.to_string())
            .collect();
        let overtime: Vec<String> = entries
            .iter()
            .map(|e| e.overtime_hours.to_string())
            .collect();
        assert_eq!(regular, ["8.5", "8.5", "8.5", "8.5", "6"]);
        assert_eq!(overtime, ["0", "0", "0", "0", "2.5"]);
        // Asking for the last day only still counts the week before it.
        let last = clock_entries(&shifts, t(2021, 1, 12, 0, 0), now, now);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].overtime_hours.to_string(), "2.5");
    }

    #[test]
    fn an_open_shift_has_no_clock_out_and_no_hours_yet() {
        let s = shift(t(2021, 1, 8, 13, 0), 480);
        let now = t(2021, 1, 8, 15, 0);
        let e = clock_entries(&[s], t(2021, 1, 8, 0, 0), now, now);
        assert_eq!(e[0].clock_out, None);
        assert_eq!(e[0].regular_hours, Decimal::ZERO);
    }

    #[test]
    fn an_edit_shows_only_from_its_time_and_moves_the_entry() {
        let mut s = shift(t(2021, 1, 8, 13, 0), 480);
        s.modification = Some(Modification {
            at: t(2021, 1, 9, 10, 0),
            original_clock_in: Some(t(2021, 1, 8, 13, 25)),
        });
        let before = t(2021, 1, 9, 9, 0);
        let e = clock_entries(&[s.clone()], t(2021, 1, 8, 0, 0), before, before);
        assert_eq!(
            (e[0].clock_in, e[0].was_modified),
            (t(2021, 1, 8, 13, 25), false)
        );
        let after = t(2021, 1, 9, 11, 0);
        let e = clock_entries(&[s], t(2021, 1, 8, 0, 0), after, after);
        assert_eq!(
            (e[0].clock_in, e[0].was_modified),
            (t(2021, 1, 8, 13, 0), true)
        );
        assert_eq!(e[0].modification_timestamp, Some(t(2021, 1, 9, 10, 0)));
    }

    #[test]
    fn an_entry_created_in_back_office_appears_when_created() {
        let mut s = shift(t(2021, 1, 8, 13, 0), 480);
        s.created_in_back_office = Some(t(2021, 1, 10, 9, 0));
        let from = t(2021, 1, 8, 0, 0);
        assert!(clock_entries(
            &[s.clone()],
            from,
            t(2021, 1, 10, 8, 0),
            t(2021, 1, 10, 8, 0)
        )
        .is_empty());
        let e = clock_entries(&[s], from, t(2021, 1, 10, 9, 0), t(2021, 1, 10, 9, 0));
        assert!(e[0].was_created_in_back_office);
    }

    #[test]
    fn status_follows_the_latest_change_and_cancel_date_only_while_cancelled() {
        let member = SimMember {
            id: "1:1001".into(),
            name: None,
            customer_id: None,
            billing_site_code: "N01".into(),
            signed_up: t(2024, 1, 5, 15, 0),
        };
        let change = |at, old, new| SimStatusChange {
            recurring_id: "1:1001".into(),
            at,
            old_status: old,
            new_status: new,
            employee_name: "Maria Lopez".into(),
            site_code: "N01".into(),
        };
        let book = MemberBook::new(
            vec![member],
            vec![
                change(
                    t(2024, 3, 1, 12, 0),
                    MemberStatus::Active,
                    MemberStatus::Cancelled,
                ),
                change(
                    t(2024, 5, 1, 12, 0),
                    MemberStatus::Cancelled,
                    MemberStatus::Active,
                ),
            ],
        );
        assert_eq!(
            book.status_at("1:1001", t(2024, 2, 1, 0, 0)),
            (MemberStatus::Active, None)
        );
        assert_eq!(
            book.status_at("1:1001", t(2024, 4, 1, 0, 0)),
            (MemberStatus::Cancelled, Some(t(2024, 3, 1, 12, 0)))
        );
        assert_eq!(
            book.status_at("1:1001", t(2024, 6, 1, 0, 0)),
            (MemberStatus::Active, None)
        );
    }

    #[test]
    fn a_quirk_picks_about_its_share_and_always_the_same_keys() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("bare:x:1:{i}")).collect();
        let picked = keys.iter().filter(|k| chosen(k, 0.1)).count();
        assert!((800..1_200).contains(&picked), "{picked}");
        assert!(keys.iter().all(|k| chosen(k, 0.1) == chosen(k, 0.1)));
        assert!(!keys.iter().any(|k| chosen(k, 0.0)));
        assert!(keys.iter().all(|k| chosen(k, 1.0)));
    }

    #[test]
    fn a_change_is_alone_on_its_day_only_in_the_zone_that_dates_it() {
        let change = |at| SimStatusChange {
            recurring_id: "1:1001".into(),
            at,
            old_status: MemberStatus::Active,
            new_status: MemberStatus::PaymentFailed,
            employee_name: "Billing Service".into(),
            site_code: "N01".into(),
        };
        // 08:00 and 23:30 UTC on 06-01: one day in UTC, two in Tokyo.
        let (a, b) = (change(t(2024, 6, 1, 8, 0)), change(t(2024, 6, 1, 23, 30)));
        let book = MemberBook::new(Vec::new(), vec![a.clone(), b.clone()]);
        assert!(!book.alone_on_its_day(&a, chrono_tz::UTC));
        assert!(book.alone_on_its_day(&a, chrono_tz::Asia::Tokyo));
        assert!(book.alone_on_its_day(&b, chrono_tz::Asia::Tokyo));
    }

    #[test]
    fn status_numbers_and_names_round_trip() {
        for (i, s) in MemberStatus::ALL.iter().enumerate() {
            assert_eq!(usize::from(s.number()), i + 1);
            assert_eq!(MemberStatus::from_number(i as i64 + 1), Some(*s));
        }
        assert_eq!(MemberStatus::from_number(16), None);
        assert_eq!(MemberStatus::UnknownError.name(), "Unknown error");
    }
}
