//! The generated members of the sample chain: recurring accounts signing up
//! month by month since [`FIRST_MONTH`], each with a life of status changes
//! (failed payments that recover or not, suspensions, cancellations and
//! rejoins, expiring annual plans). A month's members and their histories
//! are a pure function of (seed, account, month), so the book grows with
//! the calendar without changing what was already served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::chain::{local_to_utc, mix, plan_name, str_hash, Chain, SiteKind};
use super::lock;
use super::people::{MemberBook, MemberStatus, SimMember, SimStatusChange};
use super::staff::Staff;

/// The first month with sign-ups (about three years before the sample
/// chain's present).
pub(crate) const FIRST_MONTH: NaiveDate = match NaiveDate::from_ymd_opt(2023, 12, 1) {
    Some(d) => d,
    None => panic!("valid constant date"),
};

/// Physical sites where nobody bills, so that reports meet a site with no
/// members. Nobody bills at the extra sites either, so that the member book
/// is the same whatever `extra_sites` is.
pub(crate) const SITES_WITHOUT_MEMBERS: &[&str] = &["D02"];

/// Who makes the changes that billing makes.
const BILLING: &str = "Billing Service";

/// Billing cycles walked per member; later changes are decades away.
const CYCLES: u32 = 120;

/// Members per month and account: this many plus up to six more.
const MONTHLY_SIGN_UPS: u64 = 6;

/// What happens to a member at one billing cycle.
#[derive(Clone, Copy, Debug)]
enum Event {
    Cancel {
        rejoins: bool,
    },
    PaymentFailed(Recovery),
    Declined,
    CardExpired {
        updated: bool,
    },
    Suspend {
        months: u32,
    },
    /// A passing billing problem, back to `Active` within two days.
    Glitch(MemberStatus),
    /// An annual plan that is not renewed.
    Expire,
}

/// How a failed payment ends.
#[derive(Clone, Copy, Debug)]
enum Recovery {
    /// A retry goes through.
    Retried,
    /// Retries run out; the customer fixes the card at the counter, or the
    /// account is cancelled a month later.
    Exceeded { rescued: bool },
    /// The authorizer declines the retry; the customer pays at the counter.
    Declined,
}

/// Events forced on the first members of the first month, so every seed
/// has each story at least once.
fn script(month: u32, k: u32) -> Option<(u32, Event)> {
    match (month, k) {
        (0, 0) => Some((3, Event::Cancel { rejoins: true })),
        (0, 1) => Some((2, Event::PaymentFailed(Recovery::Retried))),
        (0, 2) => Some((4, Event::Suspend { months: 2 })),
        (0, 3) => Some((12, Event::Expire)),
        _ => None,
    }
}

fn roll(rng: &mut ChaCha8Rng) -> Option<Event> {
    let r = rng.gen_range(0..1_000);
    Some(match r {
        0..=24 => Event::Cancel {
            rejoins: rng.gen_bool(0.3),
        },
        25..=64 => Event::PaymentFailed(match rng.gen_range(0..100) {
            0..=74 => Recovery::Retried,
            75..=89 => Recovery::Exceeded {
                rescued: rng.gen_bool(0.4),
            },
            _ => Recovery::Declined,
        }),
        65..=72 => Event::Declined,
        73..=80 => Event::CardExpired {
            updated: rng.gen_bool(0.8),
        },
        81..=88 => Event::Suspend {
            months: rng.gen_range(1..=3),
        },
        89..=94 => Event::Glitch(
            [
                MemberStatus::AuthorizerError,
                MemberStatus::ClearedTokens,
                MemberStatus::ChangedAuthorizer,
                MemberStatus::AuthorizerCommunicationError,
                MemberStatus::UnknownError,
            ][rng.gen_range(0..5)],
        ),
        _ => return None,
    })
}

/// One member's history in the making.
struct Walk<'a> {
    member: &'a SimMember,
    status: MemberStatus,
    /// The latest change; every change comes after it.
    t: DateTime<Utc>,
    changes: Vec<SimStatusChange>,
}

impl Walk<'_> {
    fn to(&mut self, at: DateTime<Utc>, new: MemberStatus, who: &str) {
        let at = at.max(self.t + Duration::minutes(1));
        self.changes.push(SimStatusChange {
            recurring_id: self.member.id.clone(),
            at,
            old_status: self.status,
            new_status: new,
            employee_name: who.to_string(),
            site_code: self.member.billing_site_code.clone(),
        });
        self.status = new;
        self.t = at;
    }
}

fn hours(rng: &mut ChaCha8Rng, range: std::ops::RangeInclusive<i64>) -> Duration {
    Duration::hours(rng.gen_range(range)) + Duration::minutes(rng.gen_range(0..60))
}

/// The generated members of every account, built per account on first use
/// and again when a new month begins.
pub(crate) struct Members {
    seed: u64,
    cache: Mutex<HashMap<usize, (u32, Arc<MemberBook>)>>,
}

impl Members {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Every member of the account who signs up by the end of `now`'s
    /// month, with every status change (later ones too: callers filter by
    /// the present).
    pub fn book(
        &self,
        chain: &Chain,
        staff: &Staff,
        account: usize,
        now: DateTime<Utc>,
    ) -> Arc<MemberBook> {
        let today = now.date_naive();
        let months = (today.year() - FIRST_MONTH.year()) * 12 + today.month0() as i32
            - FIRST_MONTH.month0() as i32
            + 1;
        let months = u32::try_from(months).unwrap_or(0);
        if let Some((m, book)) = lock(&self.cache).get(&account) {
            if *m == months {
                return Arc::clone(book);
            }
        }
        let mut members = Vec::new();
        let mut changes = Vec::new();
        for month in 0..months {
            self.month(chain, staff, account, month, &mut members, &mut changes);
        }
        let book = Arc::new(MemberBook::new(members, changes));
        lock(&self.cache).insert(account, (months, Arc::clone(&book)));
        book
    }

    fn month(
        &self,
        chain: &Chain,
        staff: &Staff,
        account: usize,
        month: u32,
        members: &mut Vec<SimMember>,
        changes: &mut Vec<SimStatusChange>,
    ) {
        let acct = &chain.accounts()[account];
        let billing: Vec<usize> = acct
            .sites
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.kind != SiteKind::Virtual
                    && !s.extra
                    && !SITES_WITHOUT_MEMBERS.contains(&s.code.as_str())
            })
            .map(|(i, _)| i)
            .collect();
        let Some(start) = FIRST_MONTH.checked_add_months(Months::new(month)) else {
            return;
        };
        if billing.is_empty() {
            return;
        }
        let days_in_month = start
            .checked_add_months(Months::new(1))
            .map_or(28, |next| (next - start).num_days());
        let account_key = str_hash(&acct.api_id);
        let count = MONTHLY_SIGN_UPS + mix(self.seed, &[account_key, u64::from(month), 0x5165]) % 7;
        for k in 0..count as u32 {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(
                self.seed,
                &[account_key, u64::from(month), u64::from(k), 0x4E4B],
            ));
            let site = billing[rng.gen_range(0..billing.len())];
            let site_def = &acct.sites[site];
            let day = start + Duration::days(rng.gen_range(0..days_in_month));
            let local = day.and_hms_opt(
                rng.gen_range(7..21),
                rng.gen_range(0..60),
                rng.gen_range(0..60),
            );
            let Some(local) = local else { continue };
            let signed_up = local_to_utc(acct.site_zone(site_def), local);
            let n: u64 = rng.gen_range(1..2_500);
            let (customer_id, customer) = chain.customer(account, site, n);
            let plan = plan_name(rng.gen_range(0..3));
            let member = SimMember {
                id: format!("{}:{}", site_def.site_id, 1_001 + month * 20 + k),
                name: (!rng.gen_bool(0.05)).then(|| format!("{customer} - {plan}")),
                customer_id: Some(customer_id),
                billing_site_code: site_def.code.clone(),
                signed_up,
            };
            let cashiers = staff.names_at(account, &site_def.code);
            changes.extend(history(&mut rng, &member, script(month, k), &cashiers));
            members.push(member);
        }
    }
}

/// The status changes of one member, from sign-up on.
fn history(
    rng: &mut ChaCha8Rng,
    member: &SimMember,
    script: Option<(u32, Event)>,
    cashiers: &[String],
) -> Vec<SimStatusChange> {
    let mut walk = Walk {
        member,
        status: MemberStatus::Active,
        t: member.signed_up,
        changes: Vec::new(),
    };
    let fallback = String::from("Manager");
    let cashier = |rng: &mut ChaCha8Rng| -> String {
        cashiers
            .get(rng.gen_range(0..cashiers.len().max(1)))
            .unwrap_or(&fallback)
            .clone()
    };
    // Some plans are annual and not renewed: they expire after a year.
    let annual = script.is_none() && rng.gen_bool(0.08);
    // Billing runs at 08:00 UTC on the sign-up day of each month.
    let bill = |i: u32| {
        member
            .signed_up
            .date_naive()
            .checked_add_months(Months::new(i))
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .map(|t| t.and_utc())
    };
    for i in 1..=CYCLES {
        let Some(at) = bill(i) else { break };
        if at <= walk.t {
            // Inside a suspension or after a rejoin: no bill this cycle.
            continue;
        }
        let event = match script {
            Some((cycle, _)) if i < cycle => None,
            Some((cycle, event)) if i == cycle => Some(event),
            _ if annual && i == 12 => Some(Event::Expire),
            _ => roll(rng),
        };
        let Some(event) = event else { continue };
        match event {
            Event::Cancel { rejoins } => {
                let who = cashier(rng);
                walk.to(at - hours(rng, 24..=480), MemberStatus::Cancelled, &who);
                if !rejoins {
                    break;
                }
                let back = walk.t + Duration::days(rng.gen_range(20..=180)) + hours(rng, 0..=8);
                let who = cashier(rng);
                walk.to(back, MemberStatus::Active, &who);
            }
            Event::PaymentFailed(recovery) => {
                walk.to(at, MemberStatus::PaymentFailed, BILLING);
                match recovery {
                    Recovery::Retried => {
                        walk.to(at + hours(rng, 24..=96), MemberStatus::Active, BILLING);
                    }
                    Recovery::Exceeded { rescued } => {
                        walk.to(
                            at + Duration::days(5),
                            MemberStatus::PaymentRetriesExceeded,
                            BILLING,
                        );
                        if rescued {
                            let who = cashier(rng);
                            walk.to(walk.t + hours(rng, 48..=480), MemberStatus::Active, &who);
                        } else {
                            walk.to(
                                walk.t + Duration::days(30),
                                MemberStatus::Cancelled,
                                BILLING,
                            );
                            break;
                        }
                    }
                    Recovery::Declined => {
                        walk.to(at + hours(rng, 2..=20), MemberStatus::Declined, BILLING);
                        let who = cashier(rng);
                        walk.to(walk.t + hours(rng, 24..=72), MemberStatus::Active, &who);
                    }
                }
            }
            Event::Declined => {
                walk.to(at, MemberStatus::Declined, BILLING);
                walk.to(at + hours(rng, 24..=72), MemberStatus::Active, BILLING);
            }
            Event::CardExpired { updated } => {
                walk.to(at, MemberStatus::PaymentCcExpired, BILLING);
                walk.to(
                    at + hours(rng, 20..=30),
                    MemberStatus::PaymentCcUpdateStarted,
                    BILLING,
                );
                if updated {
                    walk.to(walk.t + hours(rng, 1..=6), MemberStatus::Active, BILLING);
                } else {
                    walk.to(
                        walk.t + hours(rng, 1..=6),
                        MemberStatus::PaymentCcUpdateDeclined,
                        BILLING,
                    );
                    walk.to(
                        walk.t + Duration::days(10),
                        MemberStatus::Cancelled,
                        BILLING,
                    );
                    break;
                }
            }
            Event::Suspend { months } => {
                let who = cashier(rng);
                walk.to(at - hours(rng, 24..=72), MemberStatus::Suspended, &who);
                let Some(resume) = bill(i + months) else {
                    break;
                };
                walk.to(resume, MemberStatus::Active, BILLING);
            }
            Event::Glitch(status) => {
                let who = if status == MemberStatus::ClearedTokens {
                    cashier(rng)
                } else {
                    BILLING.to_string()
                };
                walk.to(at, status, &who);
                walk.to(at + hours(rng, 6..=47), MemberStatus::Active, BILLING);
            }
            Event::Expire => {
                walk.to(at, MemberStatus::Expired, BILLING);
                break;
            }
        }
    }
    walk.changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn book(now: DateTime<Utc>) -> (Arc<MemberBook>, Arc<MemberBook>) {
        let chain = Chain::new(42, 0);
        let staff = Staff::new(42, chain.accounts());
        let members = Members::new(42);
        (
            members.book(&chain, &staff, 0, now),
            members.book(&chain, &staff, 1, now),
        )
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 15, 12, 0, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn histories_are_ordered_and_chain_from_one_status_to_the_next() {
        let (north, desert) = book(now());
        for b in [north, desert] {
            assert!(b.members.len() > 200, "{}", b.members.len());
            let mut by_member: HashMap<&str, Vec<&SimStatusChange>> = HashMap::new();
            for c in &b.changes {
                by_member.entry(&c.recurring_id).or_default().push(c);
            }
            for m in &b.members {
                let mut status = MemberStatus::Active;
                let mut t = m.signed_up;
                for c in by_member.get(m.id.as_str()).into_iter().flatten() {
                    assert_eq!(c.old_status, status, "{}", m.id);
                    assert!(c.at > t, "{}", m.id);
                    status = c.new_status;
                    t = c.at;
                }
            }
        }
    }

    #[test]
    fn the_book_of_a_later_month_extends_the_earlier_one() {
        let (earlier, _) = book(now());
        let (later, _) = book(now() + Duration::days(40));
        assert!(later.members.len() > earlier.members.len());
        for m in &earlier.members {
            assert!(later.members.contains(m));
        }
    }

    #[test]
    fn extra_sites_leave_the_members_as_they_are() {
        let chain = Chain::new(42, 37);
        let staff = Staff::new(42, chain.accounts());
        let members = Members::new(42);
        let (north, desert) = book(now());
        for (account, sample) in [north, desert].into_iter().enumerate() {
            let big = members.book(&chain, &staff, account, now());
            assert_eq!(big.members, sample.members);
            assert_eq!(big.changes, sample.changes);
        }
    }

    #[test]
    fn no_member_bills_at_d02_or_the_online_store() {
        let (_, desert) = book(now());
        assert!(desert.members.iter().all(|m| m.billing_site_code == "D01"));
        assert!(desert.changes.iter().all(|c| c.site_code == "D01"));
    }
}
