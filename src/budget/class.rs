//! Priority across processes: the class of a request. Every process on an
//! API id shares one allowance (the [`super::PgLedger`]); the class says
//! whose requests get its slots when several processes wait at once.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::days::{last_ended_days, DaySelection};
use crate::domain::BusinessDay;

/// How urgent a request is across processes on one API id. A process never
/// takes a slot for a request of a lower class while another process waits
/// with one of a higher class; within a process, a higher class goes first
/// too, and [`super::Priority`] orders the requests of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, clap::ValueEnum)]
pub enum PriorityClass {
    /// History (a backfill): only the slots that no other process's normal
    /// work waits for.
    Background = 0,
    /// Nightly work: the scheduled run, catch-up, lookback, labour, members.
    #[default]
    Normal = 1,
}

impl PriorityClass {
    /// Every class, least urgent first.
    pub const ALL: [PriorityClass; 2] = [PriorityClass::Background, PriorityClass::Normal];
    /// The least urgent class: waiting with it holds back no other process.
    pub const LOWEST: PriorityClass = PriorityClass::Background;

    /// Its value in the ledger's tables (`sonnys.api_waiters.priority`,
    /// `sonnys.api_requests.priority`): higher is more urgent.
    pub fn level(self) -> i16 {
        self as i16
    }

    /// The class stored as `level`; an unknown level (a newer binary's
    /// class) reads as the nearest known one.
    pub fn from_level(level: i16) -> PriorityClass {
        if level >= PriorityClass::Normal.level() {
            PriorityClass::Normal
        } else {
            PriorityClass::Background
        }
    }

    /// The class of a sync whose priority was not given (`sync` without
    /// `--priority`): background when every day it exports is older than
    /// the service's nightly range in its site's zone — the last
    /// `catch_up_days` ended days ([`last_ended_days`], as
    /// [`DaySelection::Recent`] picks them) — so that a backfill started by hand beside the service leaves it the
    /// slots; otherwise (a recent day among them, or no day at all) normal.
    /// The service's own run ([`DaySelection::Recent`]) is always normal.
    pub fn of_sync<'d>(
        selection: &DaySelection,
        catch_up_days: u32,
        now: DateTime<Utc>,
        days: impl IntoIterator<Item = &'d BusinessDay>,
    ) -> PriorityClass {
        if matches!(selection, DaySelection::Recent { .. }) {
            return PriorityClass::Normal;
        }
        // The first day of the nightly range, per zone.
        let mut first: HashMap<Tz, NaiveDate> = HashMap::new();
        let mut any = false;
        for day in days {
            any = true;
            let start = *first
                .entry(day.timezone)
                .or_insert_with(|| last_ended_days(day.timezone, now, catch_up_days).0);
            if day.date >= start {
                return PriorityClass::Normal;
            }
        }
        if any {
            PriorityClass::Background
        } else {
            PriorityClass::Normal
        }
    }
}

impl fmt::Display for PriorityClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PriorityClass::Background => "background",
            PriorityClass::Normal => "normal",
        })
    }
}

/// The slots a budget asks its ledger for, by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants([u32; PriorityClass::ALL.len()]);

impl Wants {
    /// `n` slots of one class.
    pub fn of(class: PriorityClass, n: u32) -> Self {
        let mut wants = Wants::default();
        wants.add(class, n);
        wants
    }

    pub fn add(&mut self, class: PriorityClass, n: u32) {
        self.0[class as usize] += n;
    }

    pub fn get(&self, class: PriorityClass) -> u32 {
        self.0[class as usize]
    }

    pub fn total(&self) -> u32 {
        self.0.iter().sum()
    }

    /// Slots wanted for `lowest` and every class above it.
    pub fn from_class(&self, lowest: PriorityClass) -> u32 {
        PriorityClass::ALL
            .iter()
            .filter(|c| **c >= lowest)
            .map(|c| self.get(*c))
            .sum()
    }

    /// The counts least urgent first, as the ledger's SQL takes them.
    pub fn by_level(&self) -> Vec<i32> {
        self.0
            .iter()
            .map(|n| i32::try_from(*n).unwrap_or(i32::MAX))
            .collect()
    }

    /// The most urgent class that still waits once `granted` slots went to
    /// the most urgent classes first; `None` when every slot was granted.
    pub fn waiting_after(&self, granted: u32) -> Option<PriorityClass> {
        let mut served = 0u32;
        for class in PriorityClass::ALL.iter().rev() {
            served = served.saturating_add(self.get(*class));
            if self.get(*class) > 0 && served > granted {
                return Some(*class);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::America::Chicago;
    use chrono_tz::Pacific::Kiritimati;

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn range(from: NaiveDate, to: NaiveDate) -> DaySelection {
        DaySelection::Range {
            from,
            to,
            missing_only: false,
        }
    }

    #[test]
    fn a_sync_is_background_only_when_every_day_is_older_than_the_nightly_range_of_its_zone() {
        // 2026-11-29 10:30 UTC: in Chicago the 28th has ended, the 29th not.
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 10, 30, 0).unwrap();
        let class = |days: &[(NaiveDate, Tz)]| {
            let days: Vec<BusinessDay> =
                days.iter().map(|(d, z)| BusinessDay::new(*d, *z)).collect();
            let selection = range(days[0].date, days[days.len() - 1].date);
            PriorityClass::of_sync(&selection, 3, now, &days)
        };
        // Chicago's nightly range with catch_up_days = 3: the 26th..28th.
        assert_eq!(
            class(&[(date(11, 20), Chicago), (date(11, 25), Chicago)]),
            PriorityClass::Background
        );
        assert_eq!(
            class(&[(date(11, 25), Chicago), (date(11, 26), Chicago)]),
            PriorityClass::Normal
        );
        // In Kiritimati (UTC+14) the 29th has ended: its range is the 27th..29th.
        assert_eq!(
            class(&[(date(11, 26), Kiritimati)]),
            PriorityClass::Background
        );
        assert_eq!(class(&[(date(11, 26), Chicago)]), PriorityClass::Normal);
    }

    #[test]
    fn the_services_run_and_a_sync_of_no_day_are_normal() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 10, 30, 0).unwrap();
        let recent = DaySelection::Recent {
            catch_up_days: 3,
            lookback_days: 1,
        };
        let old = [BusinessDay::new(date(10, 1), Chicago)];
        assert_eq!(
            PriorityClass::of_sync(&recent, 3, now, &old),
            PriorityClass::Normal
        );
        let selection = range(date(10, 1), date(10, 2));
        assert_eq!(
            PriorityClass::of_sync(&selection, 3, now, &[]),
            PriorityClass::Normal
        );
        assert_eq!(
            PriorityClass::of_sync(&selection, 3, now, &old),
            PriorityClass::Background
        );
    }

    #[test]
    fn slots_go_to_the_most_urgent_class_first() {
        let mut wants = Wants::of(PriorityClass::Normal, 3);
        wants.add(PriorityClass::Background, 2);
        assert_eq!(wants.total(), 5);
        assert_eq!(wants.from_class(PriorityClass::Normal), 3);
        assert_eq!(wants.by_level(), vec![2, 3]);
        assert_eq!(wants.waiting_after(0), Some(PriorityClass::Normal));
        assert_eq!(wants.waiting_after(2), Some(PriorityClass::Normal));
        assert_eq!(wants.waiting_after(3), Some(PriorityClass::Background));
        assert_eq!(wants.waiting_after(5), None);
        assert_eq!(
            Wants::of(PriorityClass::Background, 1).waiting_after(0),
            Some(PriorityClass::Background)
        );
        assert_eq!(Wants::default().waiting_after(0), None);
    }
}
