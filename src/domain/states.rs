//! The states the database records, typed: a site-day's status, the kinds
//! of people exports, and how a run ended. Each is stored as the text the
//! migrations' CHECK constraints list, so the views and operators' queries
//! read the same words.

use serde::Serialize;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::Postgres;

/// Stores a state as the text its `as_str` gives, and reads it back; an
/// unknown word is a decode error naming it (the CHECK constraints keep
/// them out).
macro_rules! stored_as_text {
    ($state:ty, [$($variant:path),+ $(,)?]) => {
        impl $state {
            /// Every state, in declaration order.
            pub const ALL: &'static [$state] = &[$($variant),+];

            /// The state stored as `word`, if any.
            pub fn parse(word: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|s| s.as_str() == word)
            }
        }

        impl sqlx::Type<Postgres> for $state {
            fn type_info() -> PgTypeInfo {
                <&str as sqlx::Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }

        impl sqlx::postgres::PgHasArrayType for $state {
            fn array_type_info() -> PgTypeInfo {
                <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl sqlx::Encode<'_, Postgres> for $state {
            fn encode_by_ref(
                &self,
                buf: &mut PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, Postgres> for $state {
            fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let word = <&str as sqlx::Decode<Postgres>>::decode(value)?;
                Self::parse(word).ok_or_else(|| {
                    format!(concat!("unknown ", stringify!($state), " {:?}"), word).into()
                })
            }
        }
    };
}

stored_as_text!(
    DayStatus,
    [DayStatus::Running, DayStatus::Done, DayStatus::Failed]
);
stored_as_text!(
    PeopleKind,
    [
        PeopleKind::Labour,
        PeopleKind::LabourSweep,
        PeopleKind::MemberHistory,
        PeopleKind::MemberSignUps,
        PeopleKind::MemberChanges,
    ]
);
stored_as_text!(
    RunOutcome,
    [RunOutcome::Ok, RunOutcome::Interrupted, RunOutcome::Failed]
);

/// The status of a site-day in `sonnys.sync_days` (and of a people export
/// in `sonnys.people_syncs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DayStatus {
    /// A process holds the day (its claim and heartbeat say whether it is alive).
    Running,
    /// Every record of the day is stored.
    Done,
    /// The last attempt failed; the next run tries again.
    Failed,
}

impl DayStatus {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DayStatus::Running => "running",
            DayStatus::Done => "done",
            DayStatus::Failed => "failed",
        }
    }
}

/// What one row of `sonnys.people_syncs` exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeopleKind {
    /// Employees and the clock entries of the recent days.
    Labour,
    /// Every employee's clock entries over `labour.sweep_days`.
    LabourSweep,
    /// Membership accounts signed up in one period of the first history.
    MemberHistory,
    /// Membership accounts signed up recently.
    MemberSignUps,
    /// Status changes (cancellations, payment failures, reactivations).
    MemberChanges,
}

impl PeopleKind {
    /// The word stored in `people_syncs.data`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeopleKind::Labour => "labour",
            PeopleKind::LabourSweep => "labour_sweep",
            PeopleKind::MemberHistory => "member_history",
            PeopleKind::MemberSignUps => "member_sign_ups",
            PeopleKind::MemberChanges => "member_changes",
        }
    }

    /// The export a kind belongs to, as `status` names it.
    pub fn family(self) -> PeopleFamily {
        match self {
            PeopleKind::Labour | PeopleKind::LabourSweep => PeopleFamily::Labour,
            _ => PeopleFamily::Members,
        }
    }

    /// Every kind of a family.
    pub fn of(family: PeopleFamily) -> &'static [PeopleKind] {
        match family {
            PeopleFamily::Labour => &[PeopleKind::Labour, PeopleKind::LabourSweep],
            PeopleFamily::Members => &[
                PeopleKind::MemberHistory,
                PeopleKind::MemberSignUps,
                PeopleKind::MemberChanges,
            ],
        }
    }
}

/// The two people exports: labour and memberships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeopleFamily {
    Labour,
    Members,
}

impl PeopleFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            PeopleFamily::Labour => "labour",
            PeopleFamily::Members => "members",
        }
    }
}

impl std::fmt::Display for PeopleFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::fmt::Display for DayStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How a run (or one account's part of it) ended: the one rule behind the
/// summary's `ok`/`interrupted`/`FAILED`, the `outcome` label of
/// `sonnys_etl_runs_total`, `sonnys.runs.outcome` and the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// Every site-day (and labour and membership export) succeeded.
    Ok,
    /// Stopped by a signal with nothing failed: the rest is done next time.
    Interrupted,
    /// Something failed (a site-day, a refused account, an export), even if
    /// the run was then also stopped by a signal.
    Failed,
}

impl RunOutcome {
    /// The label of `sonnys_etl_runs_total{outcome}`, the word stored in
    /// `sonnys.runs` and shown on the status page.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Failed => "failed",
        }
    }

    /// The word of a run summary's account line (a failure in capitals).
    pub fn headline(self) -> &'static str {
        match self {
            RunOutcome::Failed => "FAILED",
            other => other.as_str(),
        }
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_as_the_word_it_is_stored_as() {
        for s in DayStatus::ALL {
            assert_eq!(DayStatus::parse(s.as_str()), Some(*s));
        }
        for k in PeopleKind::ALL {
            assert_eq!(PeopleKind::parse(k.as_str()), Some(*k));
        }
        for o in RunOutcome::ALL {
            assert_eq!(RunOutcome::parse(o.as_str()), Some(*o));
        }
        assert_eq!(DayStatus::parse("pending"), None);
    }

    #[test]
    fn every_people_kind_belongs_to_the_family_that_lists_it() {
        for family in [PeopleFamily::Labour, PeopleFamily::Members] {
            for kind in PeopleKind::of(family) {
                assert_eq!(kind.family(), family, "{}", kind.as_str());
            }
        }
        assert_eq!(
            PeopleKind::of(PeopleFamily::Labour).len()
                + PeopleKind::of(PeopleFamily::Members).len(),
            5,
            "the five kinds of people_syncs.data"
        );
    }
}
