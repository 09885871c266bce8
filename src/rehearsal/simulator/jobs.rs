//! Export jobs of `load-job` / `get-job-data`: a hash per set of criteria,
//! a background build that finishes at a jittered ready time, and a 20-minute
//! lifetime after which the hash is forgotten.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::chain::{mix, str_hash};

/// How long the service keeps a job (and dedups identical criteria).
pub(crate) const JOB_TTL: Duration = Duration::from_secs(20 * 60);

/// The only page size the service accepts.
pub(crate) const PAGE_SIZE: u32 = 100;

/// The criteria of one `load-job` or summaries request, after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Criteria {
    pub api_id: String,
    pub start: i64,
    pub end: i64,
    /// `None` means every site of the account.
    pub site: Option<String>,
    pub limit: u32,
    /// Page number, starting at 1.
    pub offset: u32,
}

impl Criteria {
    /// The 32-hex-digit job hash: a function of the criteria only, like the
    /// service's, so the same criteria give the same hash.
    pub fn hash(&self) -> String {
        let text = format!(
            "{}|{}|{}|{}|{}|{}",
            self.api_id,
            self.start,
            self.end,
            self.site
                .as_deref()
                .map_or("*".to_string(), |s| format!("={s}")),
            self.limit,
            self.offset
        );
        let h = str_hash(&text);
        format!(
            "{:016x}{:016x}",
            mix(h, &[0x4A0B_0001]),
            mix(h, &[0x4A0B_0002])
        )
    }
}

/// How a build ends.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// The page's canonical records and the number of records in the window.
    Pass {
        data: Vec<Value>,
        total: usize,
    },
    Fail,
}

/// One submitted job.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub api_id: String,
    pub offset: u32,
    pub limit: u32,
    pub created: Instant,
    pub ready_at: Instant,
    /// Decided (and snapshotted) at submit time, revealed at `ready_at`.
    pub outcome: Outcome,
    /// The first passing answer holds only half the page (a build seen
    /// half-finished); later answers hold all of it.
    pub short_once: bool,
    /// Polls still to be answered `working` after the build is done.
    pub extra_working: u32,
}

impl Job {
    pub fn is_ready(&self, now: Instant) -> bool {
        now >= self.ready_at
    }
}

/// All live jobs, keyed by hash.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    jobs: HashMap<String, Job>,
}

impl Jobs {
    /// Forgets jobs older than [`JOB_TTL`].
    pub fn purge(&mut self, now: Instant) {
        self.jobs
            .retain(|_, job| now.duration_since(job.created) < JOB_TTL);
    }

    pub fn get(&self, hash: &str) -> Option<&Job> {
        self.jobs.get(hash)
    }

    pub fn get_mut(&mut self, hash: &str) -> Option<&mut Job> {
        self.jobs.get_mut(hash)
    }

    /// Whether a submit of this hash must start a build: there is no live job,
    /// or the last build failed (the documented remedy for `fail` is to submit
    /// again, which would be pointless if the failed job were reused).
    pub fn needs_build(&self, hash: &str, now: Instant) -> bool {
        match self.jobs.get(hash) {
            None => true,
            Some(job) => job.is_ready(now) && matches!(job.outcome, Outcome::Fail),
        }
    }

    pub fn insert(&mut self, hash: String, job: Job) {
        self.jobs.insert(hash, job);
    }

    pub fn remove(&mut self, hash: &str) {
        self.jobs.remove(hash);
    }

    pub fn clear(&mut self) {
        self.jobs.clear();
    }
}

/// The build time of one job: the configured mean jittered ±50 %, derived
/// from the hash so a given job always takes the same time.
pub(crate) fn build_time(mean: Duration, seed: u64, hash: &str) -> Duration {
    let permille = mix(seed, &[str_hash(hash), 0xB01D]) % 1_001;
    mean.mul_f64(0.5 + permille as f64 / 1_000.0)
}

/// Records `[(page-1)*limit, page*limit)` of a sorted window.
pub(crate) fn page(window: &[Value], offset: u32, limit: u32) -> Vec<Value> {
    let start = (offset.saturating_sub(1) as usize).saturating_mul(limit as usize);
    window
        .iter()
        .skip(start)
        .take(limit as usize)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn criteria(offset: u32) -> Criteria {
        Criteria {
            api_id: "a".into(),
            start: 100,
            end: 200,
            site: Some("N01".into()),
            limit: 100,
            offset,
        }
    }

    #[test]
    fn hash_is_a_function_of_the_criteria() {
        assert_eq!(criteria(1).hash(), criteria(1).hash());
        assert_ne!(criteria(1).hash(), criteria(2).hash());
        let all_sites = Criteria {
            site: None,
            ..criteria(1)
        };
        assert_ne!(all_sites.hash(), criteria(1).hash());
        assert_eq!(criteria(1).hash().len(), 32);
    }

    #[test]
    fn build_time_stays_within_half_and_one_and_a_half() {
        let mean = Duration::from_secs(2);
        for o in 1..50 {
            let t = build_time(mean, 42, &criteria(o).hash());
            assert!(t >= Duration::from_secs(1) && t <= Duration::from_secs(3));
        }
    }

    #[test]
    fn pages_are_hundred_record_slices() {
        let window: Vec<Value> = (0..250).map(Value::from).collect();
        assert_eq!(page(&window, 1, 100)[0], Value::from(0));
        assert_eq!(page(&window, 3, 100).len(), 50);
        assert!(page(&window, 4, 100).is_empty());
    }
}
