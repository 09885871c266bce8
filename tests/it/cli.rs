//! The real binary, as an operator runs it: `sync` with a configuration
//! file against the simulator, `migrate`, `demo`, and configuration errors.

use std::process::{Command, Output};
use std::time::Duration;

use crate::support::service::ConfigFile;
use crate::support::{fast_simulator, TestApp};

fn sonnys_etl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sonnys-etl"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SONNYS_ETL_CONFIG")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run sonnys-etl")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn sync_lands_the_days_and_a_second_run_changes_nothing() {
    let app = TestApp::start(fast_simulator()).await;
    let file = ConfigFile::new(&app.config_toml(20, Duration::from_millis(600)));
    let config = file.path.clone();
    let day = (chrono::Utc::now().date_naive() - chrono::Days::new(2)).to_string();
    let args = [
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--from",
        &day,
        "--to",
        &day,
    ];

    let first = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        move || sonnys_etl(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    })
    .await
    .unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        out.contains("northside: ok") && out.contains("desert: ok"),
        "{out}"
    );
    assert!(out.contains("0 × 429"), "{out}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sonnys.transactions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let served: usize = [
        ("northside", "N01"),
        ("northside", "N02"),
        ("northside", "N03"),
        ("desert", "D01"),
        ("desert", "D02"),
    ]
    .iter()
    .map(|(a, s)| app.served(a, s, day.parse().unwrap()).len())
    .sum();
    assert_eq!(stored as usize, served);

    let second = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        move || sonnys_etl(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    })
    .await
    .unwrap();
    assert!(second.status.success(), "{}", text(&second));
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("(0 new, 0 changed)"), "{out}");
    // The API keys never reach the output or the database.
    for account in app.simulator().accounts() {
        assert!(!text(&first).contains(&account.api_key));
        let leaked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sonnys.transactions WHERE raw::text LIKE '%' || $1 || '%'",
        )
        .bind(&account.api_key)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        assert_eq!(leaked, 0);
    }
}

#[tokio::test]
async fn a_refused_account_makes_sync_exit_non_zero_and_says_why() {
    let app = TestApp::start(fast_simulator()).await;
    app.simulator().revoke(&app.account("desert").api_id);
    let file = ConfigFile::new(&app.config_toml(20, Duration::from_millis(600)));
    let config = file.path.clone();
    let day = (chrono::Utc::now().date_naive() - chrono::Days::new(2)).to_string();
    let config = config.to_str().unwrap().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        sonnys_etl(&["sync", "--config", &config, "--from", &day], &[])
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("northside: ok"), "{out}");
    assert!(
        out.contains("desert: FAILED") && out.contains("403"),
        "{out}"
    );
}

#[test]
fn configuration_errors_stop_before_any_request_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[database]\nurl = \"postgres://x@127.0.0.1:1/x\"\n[[accounts]]\nname = \"a\"\napi_id = \"i\"\napi_key_env = \"NOT_SET_ANYWHERE\"\n",
    )
    .unwrap();
    let output = sonnys_etl(
        &[
            "sync",
            "--config",
            config.to_str().unwrap(),
            "--from",
            "2026-11-01",
        ],
        &[],
    );
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("api_key_env") && err.contains("NOT_SET_ANYWHERE"),
        "{err}"
    );

    let output = sonnys_etl(
        &[
            "sync",
            "--config",
            "/no/such/file.toml",
            "--from",
            "2026-11-01",
        ],
        &[],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/no/such/file.toml"));
}

#[test]
fn every_command_explains_itself() {
    for command in [
        "sync", "run", "status", "probe", "migrate", "report", "simulate", "demo",
    ] {
        let output = sonnys_etl(&[command, "--help"], &[]);
        assert!(output.status.success(), "{command}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage: sonnys-etl"),
            "{command}"
        );
    }
}

#[tokio::test]
async fn migrate_and_demo_work_against_a_given_database() {
    let app = TestApp::start(fast_simulator()).await;
    let url = app.db.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        let migrate = sonnys_etl(&["migrate"], &[("DATABASE_URL", &url)]);
        let demo = sonnys_etl(&["demo", "--days", "2"], &[("DATABASE_URL", &url)]);
        (migrate, demo)
    })
    .await
    .unwrap();
    assert!(output.0.status.success(), "{}", text(&output.0));
    assert!(output.1.status.success(), "{}", text(&output.1));
    let out = String::from_utf8_lossy(&output.1.stdout);
    for site in ["N01", "N02", "N03", "D01", "D02"] {
        assert!(out.contains(site), "per-site totals list {site}: {out}");
    }
    let done: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sonnys.sync_days WHERE status = 'done'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(done, 10, "5 sites × 2 days");
}

#[tokio::test]
async fn sigterm_stops_a_sync_promptly_and_leaves_no_day_marked_running() {
    a_signal_stops_a_sync_promptly_and_leaves_no_day_marked_running("-TERM").await;
}

#[tokio::test]
async fn a_hangup_stops_a_sync_like_sigterm_and_leaves_no_day_marked_running() {
    a_signal_stops_a_sync_promptly_and_leaves_no_day_marked_running("-HUP").await;
}

async fn a_signal_stops_a_sync_promptly_and_leaves_no_day_marked_running(signal: &str) {
    let mut config = fast_simulator();
    // Slow builds, so the sync is surely mid-way when the signal comes.
    config.build_latency = Duration::from_millis(800);
    let app = TestApp::start(config).await;
    let file = ConfigFile::new(&app.config_toml(20, Duration::from_millis(600)));
    let config = file.path.clone();
    let to = chrono::Utc::now().date_naive() - chrono::Days::new(2);
    let from = to - chrono::Days::new(20);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "sync",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ])
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the sync stops within 20 s of the signal")
        .unwrap();
    assert!(
        !status.success(),
        "an interrupted sync does not claim success"
    );
    let running: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sonnys.sync_days WHERE status = 'running'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(running, 0, "every started day recorded how it ended");
    let done: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sonnys.sync_days WHERE status = 'done'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(done < 5 * 21, "the sync was interrupted, not finished");
}

#[tokio::test]
async fn sync_missing_redoes_only_the_days_that_are_not_done() {
    let app = TestApp::start(fast_simulator()).await;
    let file = ConfigFile::new(&app.config_toml(20, Duration::from_millis(600)));
    let config = file.path.clone();
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (
        (today - chrono::Days::new(4)).to_string(),
        (today - chrono::Days::new(2)).to_string(),
    );
    let config_arg = config.to_str().unwrap().to_owned();
    let run = move |extra: &'static [&'static str]| {
        let (config, from, to) = (config_arg.clone(), from.clone(), to.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "sync",
                "--config",
                &config,
                "--from",
                &from,
                "--to",
                &to,
                "--account",
                "desert",
            ];
            args.extend_from_slice(extra);
            sonnys_etl(&args, &[])
        })
    };
    let first = run(&[]).await.unwrap();
    assert!(first.status.success(), "{}", text(&first));
    // One day failed overnight: only it is exported again.
    sqlx::query(
        "UPDATE sonnys.sync_days SET status = 'failed', last_error = 'HTTP 500' WHERE site_code = 'D01' AND business_date = $1",
    )
    .bind(today - chrono::Days::new(3))
    .execute(&app.db.pool)
    .await
    .unwrap();
    let before: i64 = sqlx::query_scalar("SELECT sum(attempts) FROM sonnys.sync_days")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let missing = run(&["--missing"]).await.unwrap();
    assert!(missing.status.success(), "{}", text(&missing));
    assert!(
        String::from_utf8_lossy(&missing.stdout).contains("1 of 1 site-days done"),
        "{}",
        text(&missing)
    );
    let after: i64 = sqlx::query_scalar("SELECT sum(attempts) FROM sonnys.sync_days")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(after, before + 1);
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sonnys.sync_days WHERE status <> 'done'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(failed, 0);
}

#[tokio::test]
async fn probe_exits_0_on_a_2xx_and_1_otherwise() {
    let app = TestApp::start(fast_simulator()).await;
    let base = app.sim.base_url();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ok = format!("http://{}/readyz", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/readyz", axum::routing::get(|| async { "ready" }));
        axum::serve(listener, app).await.unwrap();
    });
    let output = tokio::task::spawn_blocking(move || {
        assert!(sonnys_etl(&["probe", &ok], &[]).status.success());
        (
            sonnys_etl(&["probe", &format!("{base}/site/list")], &[]),
            sonnys_etl(
                &["probe", "http://127.0.0.1:9/readyz", "--timeout", "2s"],
                &[],
            ),
        )
    })
    .await
    .unwrap();
    // /site/list without credentials answers 403.
    assert_eq!(output.0.status.code(), Some(1), "{}", text(&output.0));
    assert!(text(&output.0).contains("403"), "{}", text(&output.0));
    assert_eq!(output.1.status.code(), Some(1));
}

#[tokio::test]
async fn the_oldest_from_accepted_is_one_the_api_serves_and_the_day_before_is_refused_up_front() {
    let app = TestApp::start(fast_simulator()).await;
    let file = ConfigFile::new(&app.config_toml(20, Duration::from_millis(600)));
    let config = file.path.clone();
    let oldest = sonnys_etl::domain::days::earliest_servable_date(chrono::Utc::now());
    let config = config.to_str().unwrap().to_owned();
    let (too_old, served) = tokio::task::spawn_blocking(move || {
        let day_before = (oldest - chrono::Days::new(1)).to_string();
        let oldest = oldest.to_string();
        (
            sonnys_etl(
                &[
                    "sync",
                    "--config",
                    &config,
                    "--from",
                    &day_before,
                    "--account",
                    "desert",
                    "--site",
                    "D01",
                ],
                &[],
            ),
            sonnys_etl(
                &[
                    "sync",
                    "--config",
                    &config,
                    "--from",
                    &oldest,
                    "--account",
                    "desert",
                    "--site",
                    "D01",
                ],
                &[],
            ),
        )
    })
    .await
    .unwrap();
    assert!(!too_old.status.success());
    assert!(text(&too_old).contains("183 days"), "{}", text(&too_old));
    assert!(
        served.status.success(),
        "the API serves it: {}",
        text(&served)
    );
}

#[tokio::test]
async fn a_request_timeout_is_named_as_such_and_counted() {
    let mut config = fast_simulator();
    config.faults.slow = Duration::from_millis(1500);
    let app = TestApp::start(config).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonnys-etl.toml");
    let toml = app
        .config_toml(20, Duration::from_millis(600))
        .replace("request_timeout = \"10s\"", "request_timeout = \"300ms\"");
    std::fs::write(&path, toml).unwrap();
    let day = (chrono::Utc::now().date_naive() - chrono::Days::new(2)).to_string();
    let path = path.to_str().unwrap().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        sonnys_etl(
            &[
                "sync",
                "--config",
                &path,
                "--from",
                &day,
                "--account",
                "desert",
            ],
            &[],
        )
    })
    .await
    .unwrap();
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(
        out.contains("timeout") && out.contains("api.request_timeout"),
        "{out}"
    );
    // Five attempts of the site list, each a request sent (the server may
    // have counted it against the budget).
    assert!(out.contains(" 5 requests"), "{out}");
}

#[tokio::test]
async fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let app = TestApp::start(fast_simulator()).await;
    let file = ConfigFile::new(&app.config_toml(20, Duration::from_millis(600)));
    let path = file.path.clone();
    let day = (chrono::Utc::now().date_naive() - chrono::Days::new(2)).to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sonnys-etl"))
            .args([
                "sync",
                "--config",
                path.to_str().unwrap(),
                "--from",
                &day,
                "--account",
                "desert",
            ])
            .env_remove("DATABASE_URL")
            .env_remove("NO_COLOR")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INFO"), "some log lines: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[tokio::test]
async fn demo_names_a_missing_database_instead_of_starting_a_server_of_its_own() {
    let app = TestApp::start(fast_simulator()).await;
    let mut url = url::Url::parse(&app.db.url).unwrap();
    url.set_path("/sonnys_no_such_database");
    let url = url.to_string();
    let output = tokio::task::spawn_blocking(move || {
        sonnys_etl(&["demo", "--days", "1"], &[("DATABASE_URL", &url)])
    })
    .await
    .unwrap();
    let out = text(&output);
    assert!(!output.status.success());
    assert!(
        out.contains("sonnys_no_such_database") && out.contains("does not exist"),
        "{out}"
    );
    assert!(!out.contains("starting a private one"), "{out}");
}

#[tokio::test]
async fn a_site_code_listed_twice_is_exported_once() {
    let app = TestApp::start(fast_simulator()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonnys-etl.toml");
    let toml = app.config_toml(20, Duration::from_millis(600)).replacen(
        "timezone = \"America/New_York\"\n",
        "timezone = \"America/New_York\"\nsites = [\"N01\", \"N01\"]\n",
        1,
    );
    assert!(toml.contains("sites = [\"N01\", \"N01\"]"), "{toml}");
    std::fs::write(&path, toml).unwrap();
    let day = (chrono::Utc::now().date_naive() - chrono::Days::new(2)).to_string();
    let output = tokio::task::spawn_blocking(move || {
        sonnys_etl(
            &[
                "sync",
                "--config",
                path.to_str().unwrap(),
                "--from",
                &day,
                "--account",
                "northside",
            ],
            &[],
        )
    })
    .await
    .unwrap();
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("1 of 1 site-days done across 1 sites"),
        "{out}"
    );
}

#[tokio::test]
async fn migrate_and_report_need_no_api_key() {
    let app = TestApp::start(fast_simulator()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonnys-etl.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{}\"\n\n[[accounts]]\nname = \"brand-a\"\napi_id = \"id\"\napi_key_env = \"SONNYS_TEST_KEY_THAT_IS_NOT_SET\"\n",
            app.db.url
        ),
    )
    .unwrap();
    let config = path.to_str().unwrap().to_owned();
    let (migrate, report, sync) = tokio::task::spawn_blocking(move || {
        (
            sonnys_etl(&["migrate", "--config", &config], &[]),
            sonnys_etl(
                &[
                    "report",
                    "--config",
                    &config,
                    "--from",
                    "2026-11-01",
                    "--to",
                    "2026-11-02",
                ],
                &[],
            ),
            sonnys_etl(&["sync", "--config", &config, "--from", "2026-11-01"], &[]),
        )
    })
    .await
    .unwrap();
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert!(report.status.success(), "{}", text(&report));
    // A command that calls the API still names the missing variable.
    assert!(!sync.status.success());
    assert!(
        text(&sync).contains("SONNYS_TEST_KEY_THAT_IS_NOT_SET"),
        "{}",
        text(&sync)
    );
}
