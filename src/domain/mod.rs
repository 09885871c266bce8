//! Types that carry the rules of the domain: who an account is, what a site's
//! business day is, and the export windows the API accepts for it.
//!
//! Values are parsed once at the edge (configuration, /site/list) and trusted
//! everywhere inside.

pub mod days;
pub mod states;

use std::fmt;

use chrono::{DateTime, Days, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// What one page changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageWrite {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Records quarantined in `sonnys.rejected_records`.
    pub rejected: u64,
}

/// The longest span one `load-job` request may cover.
pub const MAX_WINDOW_SECONDS: i64 = 24 * 60 * 60;

/// The name an operator gives an account in the configuration; it is the
/// `account` column of every table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("must not be empty".into());
        }
        if name.len() > 64 || name.chars().any(|c| c.is_control()) {
            return Err("must be at most 64 printable characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The vendor's API id. Every request made with one id shares one budget.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiId(String);

impl ApiId {
    pub fn parse(id: &str) -> Result<Self, String> {
        let id = id.trim();
        if id.is_empty() {
            return Err("must not be empty".into());
        }
        if !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err("must be printable ASCII without spaces".into());
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A site code as /site/list reports it. Virtual (e-commerce) sites have an
/// empty code and cannot be exported on their own, so they have no `SiteCode`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteCode(String);

impl SiteCode {
    pub fn parse(code: &str) -> Option<Self> {
        let code = code.trim();
        (!code.is_empty()).then(|| Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A site with the zone its business days are counted in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub site_id: i64,
    pub code: SiteCode,
    pub name: String,
    /// The zone /site/list gave, if any.
    pub reported_timezone: Option<String>,
    /// The zone business days are computed in: the site's, else the account's, else UTC.
    pub timezone: Tz,
}

/// One site's local calendar day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BusinessDay {
    pub date: NaiveDate,
    pub timezone: Tz,
}

/// A span the export endpoint accepts: whole seconds, inclusive at both ends,
/// never longer than 24 hours. Only [`BusinessDay::windows`] makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExportWindow {
    start: i64,
    end: i64,
}

impl ExportWindow {
    pub fn new(start: i64, end: i64) -> Option<Self> {
        (start <= end && end - start <= MAX_WINDOW_SECONDS).then_some(Self { start, end })
    }

    /// First second of the window, Unix time.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Last second of the window, Unix time (inclusive).
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Whether a moment lies within the window (to the second).
    pub fn contains(&self, moment: DateTime<Utc>) -> bool {
        (self.start..=self.end).contains(&moment.timestamp())
    }
}

impl fmt::Display for ExportWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |t: i64| {
            DateTime::<Utc>::from_timestamp(t, 0)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| t.to_string())
        };
        write!(f, "{}..{}", show(self.start), show(self.end))
    }
}

impl BusinessDay {
    pub fn new(date: NaiveDate, timezone: Tz) -> Self {
        Self { date, timezone }
    }

    /// The business day a moment belongs to in the given zone.
    pub fn of(moment: DateTime<Utc>, timezone: Tz) -> Self {
        Self::new(moment.with_timezone(&timezone).date_naive(), timezone)
    }

    /// First instant of the local day. On days whose midnight does not exist
    /// (a gap at 00:00), the first instant that does.
    pub fn start(&self) -> DateTime<Utc> {
        local_day_start(self.date, self.timezone)
    }

    /// First instant of the next local day.
    pub fn end_exclusive(&self) -> DateTime<Utc> {
        let next = self
            .date
            .checked_add_days(Days::new(1))
            .unwrap_or(self.date);
        local_day_start(next, self.timezone)
    }

    /// Whether the whole day lies before `now`, so its data is final.
    pub fn is_complete(&self, now: DateTime<Utc>) -> bool {
        self.end_exclusive() <= now
    }

    /// The export windows covering this day: local midnight to the next local
    /// midnight minus one second, split so none spans more than 24 hours (a
    /// 25-hour fall-back day becomes two windows) and capped at `now`.
    /// Empty when the day has not started yet.
    pub fn windows(&self, now: DateTime<Utc>) -> Vec<ExportWindow> {
        let start = self.start().timestamp();
        let last = (self.end_exclusive().timestamp() - 1).min(now.timestamp());
        let mut windows = Vec::new();
        let mut from = start;
        while from <= last {
            // A window of MAX_WINDOW_SECONDS + 1 distinct seconds would span
            // more than 24 hours, so each covers at most 86,400 seconds.
            let to = (from + MAX_WINDOW_SECONDS - 1).min(last);
            windows.extend(ExportWindow::new(from, to));
            from = to + 1;
        }
        windows
    }
}

impl fmt::Display for BusinessDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.date)
    }
}

fn local_day_start(date: NaiveDate, timezone: Tz) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    match timezone.from_local_datetime(&midnight) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        LocalResult::None => {
            // Midnight falls into a gap (some zones shift at 00:00): the day
            // starts at the first local minute that exists.
            (1..=180)
                .find_map(|m| {
                    timezone
                        .from_local_datetime(&(midnight + chrono::Duration::minutes(m)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| midnight.and_utc())
        }
    }
}

/// Parse an IANA zone name, naming the problem when it is not one.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| format!("`{name}` is not an IANA time zone (for example America/Chicago)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32, tz: Tz) -> BusinessDay {
        BusinessDay::new(NaiveDate::from_ymd_opt(y, m, d).unwrap(), tz)
    }

    fn far_future() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn an_ordinary_day_is_one_window_from_midnight_to_a_second_before_midnight() {
        let d = day(2026, 6, 15, chrono_tz::America::Chicago);
        let w = d.windows(far_future());
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].start(),
            Utc.with_ymd_and_hms(2026, 6, 15, 5, 0, 0)
                .unwrap()
                .timestamp()
        );
        assert_eq!(w[0].end() - w[0].start(), 86_399);
    }

    #[test]
    fn the_fall_back_day_is_split_into_two_windows_of_at_most_24_hours() {
        let d = day(2026, 11, 1, chrono_tz::America::New_York);
        let w = d.windows(far_future());
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].start(), d.start().timestamp());
        assert_eq!(w[1].end(), d.end_exclusive().timestamp() - 1);
        assert_eq!(w[0].end() + 1, w[1].start());
        let covered: i64 = w.iter().map(|w| w.end() - w.start() + 1).sum();
        assert_eq!(covered, 25 * 3600);
        assert!(w.iter().all(|w| w.end() - w.start() < MAX_WINDOW_SECONDS));
    }

    #[test]
    fn the_spring_forward_day_is_23_hours_in_one_window() {
        let d = day(2026, 3, 8, chrono_tz::America::New_York);
        let w = d.windows(far_future());
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].end() - w[0].start() + 1, 23 * 3600);
    }

    #[test]
    fn phoenix_has_no_daylight_saving() {
        let d = day(2026, 11, 1, chrono_tz::America::Phoenix);
        assert_eq!(d.windows(far_future()).len(), 1);
    }

    #[test]
    fn windows_never_end_in_the_future() {
        let d = day(2026, 6, 15, chrono_tz::UTC);
        let now = Utc.with_ymd_and_hms(2026, 6, 15, 10, 30, 0).unwrap();
        let w = d.windows(now);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].end(), now.timestamp());
        assert!(!d.is_complete(now));
        assert!(day(2026, 6, 16, chrono_tz::UTC).windows(now).is_empty());
    }

    #[test]
    fn a_moment_belongs_to_the_local_date() {
        let t = Utc.with_ymd_and_hms(2026, 6, 16, 3, 0, 0).unwrap();
        assert_eq!(
            BusinessDay::of(t, chrono_tz::America::Chicago).date,
            NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
        );
    }

    #[test]
    fn bad_names_are_rejected_with_a_reason() {
        assert!(parse_timezone("Mars/Olympus").unwrap_err().contains("IANA"));
        assert!(AccountName::parse("  ").is_err());
        assert!(ApiId::parse("has space").is_err());
        assert!(SiteCode::parse("").is_none());
    }
}
