//! A running simulator plus a fresh database, and helpers to sync between
//! them the way the daemon does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sonnys_etl::configuration::{Settings, Sources};
use sonnys_etl::domain::{parse_timezone, BusinessDay};
use sonnys_etl::progress::Progress;
use sonnys_etl::rehearsal::simulator::{
    RunningSimulator, SimAccount, SimSite, Simulator, SimulatorConfig,
};
use sonnys_etl::sync::{SyncPlan, SyncSummary, Syncer};
use tokio_util::sync::CancellationToken;

use super::{test_db, TestDb};

/// The simulator settings tests use: the real API's shape, scaled down in time.
pub fn fast_simulator() -> SimulatorConfig {
    SimulatorConfig {
        requests_per_window: 20,
        window: Duration::from_millis(600),
        build_latency: Duration::from_millis(60),
        ..SimulatorConfig::default()
    }
}

pub struct TestApp {
    pub db: TestDb,
    pub sim: RunningSimulator,
}

impl TestApp {
    pub async fn start(config: SimulatorConfig) -> TestApp {
        let sim = Simulator::new(config)
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("start the simulator");
        TestApp {
            db: test_db().await,
            sim,
        }
    }

    pub fn simulator(&self) -> &Simulator {
        self.sim.simulator()
    }

    pub fn account(&self, name: &str) -> SimAccount {
        self.simulator()
            .accounts()
            .into_iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no simulated account {name}"))
    }

    pub fn site(&self, account: &str, code: &str) -> SimSite {
        self.account(account)
            .sites
            .into_iter()
            .find(|s| s.code == code)
            .unwrap_or_else(|| panic!("no site {code} in {account}"))
    }

    /// The configuration file a user would write for the simulated chain,
    /// with the budget matching the simulator's throttle.
    pub fn config_toml(&self, requests_per_window: u32, window: Duration) -> String {
        let mut toml = format!(
            "[database]\nurl = \"{}\"\nmax_connections = 5\n\n[api]\nbase_url = \"{}\"\nrequests_per_window = {requests_per_window}\nwindow = \"{}ms\"\njitter_guard = \"20ms\"\nrequest_timeout = \"10s\"\njob_timeout = \"60s\"\n",
            self.db.url,
            self.sim.base_url(),
            window.as_millis()
        );
        for a in self.simulator().accounts() {
            toml.push_str(&format!(
                "\n[[accounts]]\nname = \"{}\"\napi_id = \"{}\"\napi_key = \"{}\"\ntimezone = \"{}\"\n",
                a.name, a.api_id, a.api_key, a.timezone
            ));
        }
        toml
    }

    pub fn settings(&self) -> Settings {
        self.settings_with("")
    }

    /// The test settings with `extra` TOML sections appended.
    pub fn settings_with(&self, extra: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let toml = format!(
            "{}\n{extra}",
            self.config_toml(20, Duration::from_millis(600))
        );
        std::fs::write(&path, toml).unwrap();
        Settings::load(&Sources {
            file: Some(&path),
            env: HashMap::new(),
            keys: sonnys_etl::configuration::Keys::Required,
        })
        .expect("the test configuration loads")
    }

    /// Sync like `sonnys-etl sync --from --to [--account]... [--site]...`.
    pub async fn sync(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        accounts: &[&str],
        sites: &[&str],
    ) -> SyncSummary {
        let syncer = Syncer::new(Arc::new(self.settings()), self.db.pool.clone());
        let plan = SyncPlan {
            days: sonnys_etl::domain::days::DaySelection::Range {
                from,
                to,
                missing_only: false,
            },
            accounts: accounts.iter().map(|s| s.to_string()).collect(),
            sites: sites.iter().map(|s| s.to_string()).collect(),
        };
        syncer
            .run(&plan, &CancellationToken::new(), &Progress::plain())
            .await
            .expect("a valid plan")
    }

    /// Run a sync plan with the test settings plus `extra` TOML.
    pub async fn sync_plan(&self, plan: &SyncPlan, extra: &str) -> SyncSummary {
        Syncer::new(Arc::new(self.settings_with(extra)), self.db.pool.clone())
            .run(plan, &CancellationToken::new(), &Progress::plain())
            .await
            .expect("a valid plan")
    }

    /// The site's business day in its own zone (the account's when null).
    pub fn business_day(&self, account: &str, code: &str, date: NaiveDate) -> BusinessDay {
        let site = self.site(account, code);
        let zone = site
            .timezone
            .unwrap_or_else(|| self.account(account).timezone);
        BusinessDay::new(date, parse_timezone(&zone).unwrap())
    }

    /// What the simulator serves for a site-day.
    pub fn served(&self, account: &str, code: &str, date: NaiveDate) -> Vec<serde_json::Value> {
        let day = self.business_day(account, code, date);
        let end: DateTime<Utc> = day.end_exclusive() - chrono::Duration::seconds(1);
        self.simulator()
            .transactions(&self.account(account).api_id, code, day.start(), end)
    }

    /// A complete recent day of the site whose volume satisfies `want`.
    pub fn find_day(&self, account: &str, code: &str, want: impl Fn(usize) -> bool) -> NaiveDate {
        let api_id = self.account(account).api_id;
        let today = Utc::now().date_naive();
        (2..90)
            .map(|back| today - chrono::Days::new(back))
            .find(|d| want(self.simulator().day_volume(&api_id, code, *d)))
            .unwrap_or_else(|| panic!("no such day for {account}/{code} in the last 90 days"))
    }
}
