//! The generated staff of the sample chain: a fixed roster per account and
//! its shifts, each a pure function of (seed, account, employee, local date)
//! like a day of transactions in `chain`.
//!
//! The roster is chosen to exercise a labour report: managers over 40 hours
//! who are not eligible for overtime, attendants scheduled past 40 hours who
//! are, employees working at two sites (in two zones for `1102`), night
//! shifts across local midnight at `N03` and the online store, a yearly
//! raise on each hiring anniversary, and an employee who has left.

use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::{Decimal, RoundingStrategy};

use super::chain::{local_to_utc, mix, str_hash, AccountDef};
use super::people::{Modification, SimEmployee, SimShift};

/// Share of scheduled days actually worked (the rest: sick, leave, swaps).
const WORKED_SHARE: f64 = 0.93;
/// Share of unscheduled days on which an employee picks up an extra shift.
const EXTRA_SHARE: f64 = 0.06;
/// Percent of shifts a manager corrects afterwards, and created in BackOffice.
const MODIFIED_PERCENT: u32 = 7;
const BACK_OFFICE_PERCENT: u32 = 3;
/// The raise on each hiring anniversary, in cents per hour.
const RAISE_CENTS: i64 = 50;

/// A regular shift: at a site, on some weekdays, from a local time.
struct Slot {
    site: &'static str,
    /// Bit 0 is Monday.
    weekdays: u8,
    start: (u32, u32),
    minutes: i64,
}

const MON: u8 = 1;
const TUE: u8 = 2;
const WED: u8 = 4;
const THU: u8 = 8;
const FRI: u8 = 16;
const SAT: u8 = 32;
const SUN: u8 = 64;
const WEEKDAYS: u8 = MON | TUE | WED | THU | FRI;

struct EmployeeDef {
    id: i64,
    first: &'static str,
    last: &'static str,
    overtime_eligible: bool,
    base_cents: i64,
    hired: (i32, u32, u32),
    left: Option<(i32, u32, u32)>,
    /// The first slot is the employee's usual one, used for extra shifts.
    slots: &'static [Slot],
}

const fn slot(site: &'static str, weekdays: u8, start: (u32, u32), minutes: i64) -> Slot {
    Slot {
        site,
        weekdays,
        start,
        minutes,
    }
}

const NORTHSIDE: &[EmployeeDef] = &[
    EmployeeDef {
        id: 1101,
        first: "Maria",
        last: "Lopez",
        overtime_eligible: false,
        base_cents: 2400,
        hired: (2019, 3, 11),
        left: None,
        slots: &[slot("N01", WEEKDAYS, (7, 30), 570)],
    },
    EmployeeDef {
        id: 1102,
        first: "James",
        last: "Carter",
        overtime_eligible: true,
        base_cents: 1650,
        hired: (2021, 6, 1),
        left: None,
        slots: &[
            slot("N01", MON | TUE | WED, (8, 0), 540),
            slot("N02", THU | FRI | SAT, (10, 0), 510),
        ],
    },
    EmployeeDef {
        id: 1103,
        first: "Aisha",
        last: "Khan",
        overtime_eligible: true,
        base_cents: 1525,
        hired: (2022, 4, 18),
        left: None,
        slots: &[slot("N02", TUE | WED | THU | FRI | SAT, (12, 30), 510)],
    },
    EmployeeDef {
        id: 1104,
        first: "Tom",
        last: "Becker",
        overtime_eligible: true,
        base_cents: 1700,
        hired: (2020, 9, 14),
        left: None,
        slots: &[slot("N03", SUN | MON | TUE | WED | THU, (22, 0), 510)],
    },
    EmployeeDef {
        id: 1105,
        first: "Lucy",
        last: "Nguyen",
        overtime_eligible: true,
        base_cents: 1575,
        hired: (2023, 1, 9),
        left: None,
        slots: &[slot("N03", WEEKDAYS, (6, 0), 480)],
    },
    EmployeeDef {
        id: 1106,
        first: "Diego",
        last: "Ramos",
        overtime_eligible: true,
        base_cents: 1500,
        hired: (2022, 8, 22),
        left: None,
        slots: &[slot("N01", WEEKDAYS, (6, 45), 555)],
    },
    EmployeeDef {
        id: 1107,
        first: "Priya",
        last: "Shah",
        overtime_eligible: true,
        base_cents: 1450,
        hired: (2024, 5, 6),
        left: None,
        slots: &[slot("N02", SAT | SUN, (9, 0), 390)],
    },
    EmployeeDef {
        id: 1108,
        first: "Sam",
        last: "O'Neil",
        overtime_eligible: true,
        base_cents: 1550,
        hired: (2021, 11, 15),
        left: None,
        slots: &[
            slot("N03", MON | TUE | WED | THU, (14, 0), 480),
            slot("N01", SAT | SUN, (8, 0), 450),
        ],
    },
    EmployeeDef {
        id: 1109,
        first: "Kevin",
        last: "Brown",
        overtime_eligible: true,
        base_cents: 1475,
        hired: (2020, 2, 3),
        left: Some((2025, 10, 31)),
        slots: &[slot("N01", WED | THU | FRI | SAT | SUN, (8, 0), 480)],
    },
];

const DESERT: &[EmployeeDef] = &[
    EmployeeDef {
        id: 2101,
        first: "Rosa",
        last: "Martinez",
        overtime_eligible: false,
        base_cents: 2300,
        hired: (2018, 7, 9),
        left: None,
        slots: &[slot("D01", WEEKDAYS, (7, 0), 600)],
    },
    EmployeeDef {
        id: 2102,
        first: "Ben",
        last: "Okafor",
        overtime_eligible: true,
        base_cents: 1550,
        hired: (2022, 2, 14),
        left: None,
        slots: &[slot("D01", TUE | WED | THU | FRI | SAT, (12, 30), 540)],
    },
    EmployeeDef {
        id: 2103,
        first: "Grace",
        last: "Wilson",
        overtime_eligible: false,
        base_cents: 2250,
        hired: (2019, 10, 21),
        left: None,
        slots: &[slot("D02", WEEKDAYS, (7, 30), 570)],
    },
    EmployeeDef {
        id: 2104,
        first: "Carlos",
        last: "Patel",
        overtime_eligible: true,
        base_cents: 1500,
        hired: (2023, 3, 27),
        left: None,
        slots: &[slot("D02", WED | THU | FRI | SAT | SUN, (12, 0), 540)],
    },
    EmployeeDef {
        id: 2105,
        first: "Olga",
        last: "Kowalski",
        overtime_eligible: true,
        base_cents: 1800,
        hired: (2021, 3, 1),
        left: None,
        slots: &[slot("", SUN | MON | TUE | WED | THU, (23, 0), 480)],
    },
    EmployeeDef {
        id: 2106,
        first: "Wei",
        last: "Anderson",
        overtime_eligible: true,
        base_cents: 1525,
        hired: (2022, 10, 10),
        left: None,
        slots: &[
            slot("D01", SAT | SUN, (7, 0), 480),
            slot("", MON | WED, (9, 0), 360),
        ],
    },
    EmployeeDef {
        id: 2107,
        first: "Linda",
        last: "Davis",
        overtime_eligible: true,
        base_cents: 1475,
        hired: (2024, 9, 3),
        left: None,
        slots: &[slot("D02", FRI | SAT | SUN, (10, 0), 360)],
    },
];

fn ymd((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Dollars with cents, rounded half away from zero.
fn cents(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

/// One account's roster with what its shifts are generated from.
struct AccountStaff {
    roster: &'static [EmployeeDef],
    /// The zone of each site code.
    zones: Vec<(String, Tz)>,
    /// Mixed into every shift's seed.
    key: u64,
}

/// The generated staff of every account of the chain.
pub(crate) struct Staff {
    seed: u64,
    accounts: Vec<AccountStaff>,
}

impl Staff {
    pub fn new(seed: u64, accounts: &[AccountDef]) -> Self {
        let accounts = accounts
            .iter()
            .map(|a| {
                let roster = match a.name.as_str() {
                    "northside" => NORTHSIDE,
                    "desert" => DESERT,
                    _ => &[],
                };
                let zones = a
                    .sites
                    .iter()
                    .map(|s| (s.code.clone(), a.site_zone(s)))
                    .collect();
                AccountStaff {
                    roster,
                    zones,
                    key: str_hash(&a.api_id),
                }
            })
            .collect();
        Self { seed, accounts }
    }

    fn roster(&self, account: usize) -> &'static [EmployeeDef] {
        self.accounts.get(account).map_or(&[], |a| a.roster)
    }

    /// Every employee of the account, former ones included, by id.
    pub fn employees(&self, account: usize) -> Vec<SimEmployee> {
        self.roster(account)
            .iter()
            .map(|e| SimEmployee {
                employee_id: e.id,
                first_name: e.first.to_string(),
                last_name: e.last.to_string(),
            })
            .collect()
    }

    /// Full names of the account's employees who work at a site (all of
    /// them when none does), for status changes made at the counter.
    pub fn names_at(&self, account: usize, site_code: &str) -> Vec<String> {
        let roster = self.roster(account);
        let at_site: Vec<String> = roster
            .iter()
            .filter(|e| e.left.is_none() && e.slots.iter().any(|s| s.site == site_code))
            .map(|e| format!("{} {}", e.first, e.last))
            .collect();
        if at_site.is_empty() {
            roster
                .iter()
                .map(|e| format!("{} {}", e.first, e.last))
                .collect()
        } else {
            at_site
        }
    }

    /// The shifts of an employee that start on the local dates `[first, last]`
    /// (each in its site's zone), oldest first, with the state they will
    /// have once every later edit is made. Unknown employee: none.
    pub fn shifts(
        &self,
        account: usize,
        employee_id: i64,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Vec<SimShift> {
        let Some(e) = self.roster(account).iter().find(|e| e.id == employee_id) else {
            return Vec::new();
        };
        let first = first.max(ymd(e.hired));
        let last = e.left.map_or(last, |l| last.min(ymd(l)));
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter_map(|d| self.shift(account, e, d))
            .collect()
    }

    fn shift(&self, account: usize, e: &EmployeeDef, date: NaiveDate) -> Option<SimShift> {
        let AccountStaff { zones, key, .. } = self.accounts.get(account)?;
        let days = date.num_days_from_ce();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(
            self.seed,
            &[*key, e.id as u64, days as u64, 0x0054_17F7],
        ));
        let weekday = 1u8 << date.weekday().num_days_from_monday();
        let slot = match e.slots.iter().find(|s| s.weekdays & weekday != 0) {
            Some(s) if rng.gen_bool(WORKED_SHARE) => s,
            Some(_) => return None,
            None if rng.gen_bool(EXTRA_SHARE) => e.slots.first()?,
            None => return None,
        };
        let zone = zones.iter().find(|(code, _)| code == slot.site)?.1;
        let start = date.and_hms_opt(slot.start.0, slot.start.1, 0)?;
        let clock_in = local_to_utc(zone, start)
            + Duration::minutes(rng.gen_range(-12..=6))
            + Duration::seconds(rng.gen_range(0..60));
        let length = Duration::minutes(slot.minutes + rng.gen_range(-10..=35))
            + Duration::seconds(rng.gen_range(0..60));
        let clock_out = clock_in + length;

        let rate = Decimal::new(
            e.base_cents + RAISE_CENTS * anniversaries(ymd(e.hired), date),
            2,
        );
        let roll = rng.gen_range(0..100);
        let modification = (roll < MODIFIED_PERCENT).then(|| Modification {
            // The employee clocked in late or forgot; the manager set the
            // time they really started, the next day or so.
            at: clock_out + Duration::minutes(rng.gen_range(120..=1_800)),
            original_clock_in: Some(clock_in + Duration::minutes(rng.gen_range(12..=35))),
        });
        let created_in_back_office = (MODIFIED_PERCENT..MODIFIED_PERCENT + BACK_OFFICE_PERCENT)
            .contains(&roll)
            .then(|| clock_out + Duration::minutes(rng.gen_range(240..=2_400)));
        Some(SimShift {
            employee_id: e.id,
            site_code: slot.site.to_string(),
            clock_in,
            clock_out: Some(clock_out),
            regular_rate: rate,
            overtime_eligible: e.overtime_eligible,
            overtime_rate: cents(rate * Decimal::new(15, 1)),
            modification,
            created_in_back_office,
        })
    }
}

/// Hiring anniversaries passed on `date` (a raise each).
fn anniversaries(hired: NaiveDate, date: NaiveDate) -> i64 {
    let mut years = i64::from(date.year() - hired.year());
    if (date.month(), date.day()) < (hired.month(), hired.day()) {
        years -= 1;
    }
    years.max(0)
}

#[cfg(test)]
mod tests {
    use super::super::chain::Chain;
    use super::super::people::{clock_entries, shift_dates};
    use super::*;
    use chrono::{TimeZone, Utc};

    fn staff() -> (Staff, Chain) {
        let chain = Chain::new(42, 0);
        (Staff::new(42, chain.accounts()), chain)
    }

    #[test]
    fn shifts_are_a_pure_function_of_the_seed() {
        let (a, _) = staff();
        let (b, _) = staff();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let x = a.shifts(0, 1102, d("2026-01-01"), d("2026-03-01"));
        assert_eq!(x, b.shifts(0, 1102, d("2026-01-01"), d("2026-03-01")));
        assert!(x.len() > 40, "{}", x.len());
        // Asking day by day gives the same shifts.
        let one_by_one: Vec<SimShift> = d("2026-01-01")
            .iter_days()
            .take_while(|x| *x <= d("2026-03-01"))
            .flat_map(|day| a.shifts(0, 1102, day, day))
            .collect();
        assert_eq!(x, one_by_one);
    }

    #[test]
    fn the_roster_covers_overtime_two_sites_and_night_shifts() {
        let (s, _) = staff();
        let from = Utc
            .with_ymd_and_hms(2026, 1, 2, 0, 0, 0)
            .single()
            .expect("t");
        let to = from + Duration::days(27);
        let (first, last) = shift_dates(from, to);
        let now = to + Duration::days(5);
        for account in 0..2 {
            let mut overtime = false;
            let mut two_sites = false;
            for e in s.employees(account) {
                let shifts = s.shifts(account, e.employee_id, first, last);
                let entries = clock_entries(&shifts, from, to, now);
                overtime |= entries.iter().any(|x| x.overtime_hours > Decimal::ZERO);
                let mut sites: Vec<&str> = entries.iter().map(|x| x.site_code.as_str()).collect();
                sites.dedup();
                sites.sort_unstable();
                sites.dedup();
                two_sites |= sites.len() > 1;
                for x in &shifts {
                    assert!(x.clock_out.expect("generated shifts end") > x.clock_in);
                }
            }
            assert!(overtime && two_sites, "account {account}");
        }
    }

    #[test]
    fn raises_come_on_hiring_anniversaries() {
        let hired = NaiveDate::from_ymd_opt(2021, 6, 1).expect("date");
        assert_eq!(
            anniversaries(hired, NaiveDate::from_ymd_opt(2022, 5, 31).expect("d")),
            0
        );
        assert_eq!(
            anniversaries(hired, NaiveDate::from_ymd_opt(2022, 6, 1).expect("d")),
            1
        );
        assert_eq!(
            anniversaries(hired, NaiveDate::from_ymd_opt(2020, 1, 1).expect("d")),
            0
        );
    }
}
