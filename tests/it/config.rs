//! Configuration mistakes stop the program with the key named, before any
//! request, and API keys never show in errors or debug output.

use std::collections::HashMap;
use std::io::Write;

use sonnys_etl::configuration::{Settings, Sources};

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(toml.as_bytes()).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load(&Sources {
        file: Some(file.path()),
        env,
        keys: sonnys_etl::configuration::Keys::Required,
    })
    .map_err(|e| e.to_string())
}

const ACCOUNT: &str = r#"
[[accounts]]
name = "brand-a"
api_id = "id-a"
api_key_env = "KEY_A"
timezone = "America/Chicago"
"#;

#[test]
fn a_complete_file_loads_with_defaults_and_env_overrides() {
    let s = load(
        ACCOUNT,
        &[
            ("KEY_A", "s3cret-key-a"),
            ("DATABASE_URL", "postgres://u:pw@db:5432/x"),
            ("SONNYS_ETL__API__RESERVE", "4"),
            ("SONNYS_ETL__API__WINDOW", "1500ms"),
        ],
    )
    .unwrap();
    assert_eq!(s.api.requests_per_window, 20);
    assert_eq!(s.api.reserve, 4);
    assert_eq!(s.api.allowance(), 16);
    assert_eq!(s.api.window, std::time::Duration::from_millis(1500));
    assert_eq!(s.database_url().unwrap(), "postgres://u:pw@db:5432/x");
    assert_eq!(s.accounts[0].name.as_str(), "brand-a");
    assert_eq!(s.accounts[0].timezone, Some(chrono_tz::America::Chicago));
}

#[test]
fn an_unknown_key_is_named() {
    let e = load(
        &format!("[api]\nwindoww = \"15s\"\n{ACCOUNT}"),
        &[("KEY_A", "k")],
    )
    .unwrap_err();
    assert!(e.contains("windoww"), "{e}");
}

#[test]
fn a_missing_key_variable_is_named() {
    let e = load(ACCOUNT, &[]).unwrap_err();
    assert!(e.contains("api_key_env") && e.contains("KEY_A"), "{e}");
}

#[test]
fn an_unreadable_key_file_is_named() {
    let e = load(
        "[[accounts]]\nname = \"a\"\napi_id = \"i\"\napi_key_file = \"/nonexistent/key\"\n",
        &[],
    )
    .unwrap_err();
    assert!(
        e.contains("api_key_file") && e.contains("/nonexistent/key"),
        "{e}"
    );
}

#[test]
fn two_accounts_with_one_name_are_refused() {
    let e = load(&format!("{ACCOUNT}{ACCOUNT}"), &[("KEY_A", "k")]).unwrap_err();
    assert!(e.contains("brand-a") && e.contains("unique"), "{e}");
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("[api]\nwindow = \"soon\"\n", "api.window"),
        ("[api]\nbase_url = \"ftp://x\"\n", "api.base_url"),
        ("[api]\nreserve = 20\n", "api.reserve"),
        ("[sync]\nmax_concurrent_sites = 0\n", "sync.max_concurrent_sites"),
        (
            "[[accounts]]\nname = \"a\"\napi_id = \"i\"\napi_key = \"k\"\ntimezone = \"Mars/Base\"\n",
            "timezone",
        ),
        ("[[accounts]]\nname = \"a\"\napi_id = \"i\"\n", "api_key"),
    ];
    for (toml, key) in cases {
        let e = load(toml, &[]).unwrap_err();
        assert!(e.contains(key), "{toml}: {e}");
    }
}

#[test]
fn api_keys_never_show_in_debug_output_or_errors() {
    let s = load(ACCOUNT, &[("KEY_A", "s3cret-key-a")]).unwrap();
    assert!(!format!("{s:?}").contains("s3cret-key-a"));
    let e = load(
        &format!("{ACCOUNT}[api]\nreserve = 99\n"),
        &[("KEY_A", "s3cret-key-a")],
    )
    .unwrap_err();
    assert!(!e.contains("s3cret-key-a"));
}

fn load_file(path: &std::path::Path, env: &[(&str, &str)]) -> Result<Settings, String> {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load(&Sources {
        file: Some(path),
        env,
        keys: sonnys_etl::configuration::Keys::Required,
    })
    .map_err(|e| e.to_string())
}

#[test]
fn the_shipped_configuration_files_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let keys = [
        ("SONNYS_BRAND_A_API_KEY", "a"),
        ("NORTHSIDE_DEMO_KEY", "n"),
        ("DESERT_DEMO_KEY", "d"),
    ];
    let brand_b = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(brand_b.path(), "b").unwrap();
    let example = std::fs::read_to_string(root.join("config/example.toml"))
        .unwrap()
        .replace(
            "/run/secrets/sonnys-brand-b",
            brand_b.path().to_str().unwrap(),
        );
    let example = load(&example, &keys).unwrap();
    assert_eq!(example.schedule.schedule.expression(), "0 30 3 * * *");
    assert_eq!(
        example.server.listen,
        Some("127.0.0.1:9187".parse().unwrap())
    );
    for file in ["config/simulator.toml", "config/compose.toml"] {
        load_file(&root.join(file), &keys).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

#[test]
fn the_schedule_and_server_sections_name_their_key_when_wrong() {
    let cases = [
        ("[schedule]\ncron = \"30 3 * * *\"\n", "schedule.cron", "6"),
        (
            "[schedule]\ntimezone = \"Central\"\n",
            "schedule.timezone",
            "IANA",
        ),
        (
            "[schedule]\ncatch_up_days = 400\n",
            "schedule.catch_up_days",
            "API",
        ),
        (
            "[schedule]\ncatch_up_days = 2\nlookback_days = 3\n",
            "schedule.lookback_days",
            "catch_up_days",
        ),
        (
            "[server]\nlisten = \"localhost\"\n",
            "server.listen",
            "address",
        ),
        (
            "[server]\nshutdown_timeout = \"0s\"\n",
            "server.shutdown_timeout",
            "zero",
        ),
    ];
    for (toml, key, reason) in cases {
        let e = load(&format!("{toml}{ACCOUNT}"), &[("KEY_A", "k")]).unwrap_err();
        assert!(e.contains(key) && e.contains(reason), "{toml}: {e}");
    }
    let off = load(
        &format!("[server]\nlisten = \"\"\n{ACCOUNT}"),
        &[("KEY_A", "k")],
    )
    .unwrap();
    assert_eq!(off.server.listen, None);
}

#[test]
fn secrets_come_from_systemd_credentials() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db-password"), "pa ss/word\n").unwrap();
    std::fs::write(dir.path().join("brand-a-key"), "s3cret-from-credential\n").unwrap();
    let creds = dir.path().to_str().unwrap();
    let toml = "[database]\nurl = \"postgres://sonnys@db.example:5432/sonnys\"\npassword_credential = \"db-password\"\n\n[[accounts]]\nname = \"brand-a\"\napi_id = \"id-a\"\napi_key_credential = \"brand-a-key\"\n";
    let s = load(toml, &[("CREDENTIALS_DIRECTORY", creds)]).unwrap();
    let url = url::Url::parse(s.database_url().unwrap()).unwrap();
    assert_eq!(
        url.password(),
        Some("pa%20ss%2Fword"),
        "the password is put into the URL, escaped"
    );
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&s.accounts[0].api_key),
        "s3cret-from-credential"
    );
    assert!(!format!("{s:?}").contains("pa ss"));

    let missing = load(toml, &[]).unwrap_err();
    assert!(
        missing.contains("database.password_credential")
            && missing.contains("CREDENTIALS_DIRECTORY"),
        "{missing}"
    );
    std::fs::remove_file(dir.path().join("brand-a-key")).unwrap();
    let unreadable = load(toml, &[("CREDENTIALS_DIRECTORY", creds)]).unwrap_err();
    assert!(
        unreadable.contains("api_key_credential") && unreadable.contains("brand-a-key"),
        "{unreadable}"
    );
}

#[test]
fn commands_that_never_call_the_api_need_no_key() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(ACCOUNT.as_bytes()).unwrap();
    let without = Settings::load(
        &Sources {
            file: Some(file.path()),
            env: HashMap::new(),
            keys: sonnys_etl::configuration::Keys::Required,
        }
        .without_keys(),
    )
    .unwrap();
    assert_eq!(without.accounts[0].name.as_str(), "brand-a");
    assert!(load(ACCOUNT, &[]).unwrap_err().contains("KEY_A"));
}

#[test]
fn backfill_since_is_a_date_or_a_span_clamped_to_the_apis_reach() {
    use chrono::TimeZone;
    use sonnys_etl::configuration::Since;
    let none = load(ACCOUNT, &[("KEY_A", "k")]).unwrap();
    assert_eq!(none.backfill.since, None, "no backfill by default");
    let now = chrono::Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    let date = load(
        &format!("[backfill]\nsince = \"2026-07-01\"\n{ACCOUNT}"),
        &[("KEY_A", "k")],
    )
    .unwrap();
    assert_eq!(
        date.backfill.first_date(now),
        Some(chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap())
    );
    let span = load(
        &format!("[backfill]\nsince = \"6months\"\n{ACCOUNT}"),
        &[("KEY_A", "k")],
    )
    .unwrap();
    assert!(matches!(span.backfill.since, Some(Since::Ago(_))));
    // Beyond the API's 183 days: the oldest date it still serves.
    let far = load(
        &format!("[backfill]\nsince = \"2025-01-01\"\n{ACCOUNT}"),
        &[("KEY_A", "k")],
    )
    .unwrap();
    assert_eq!(
        far.backfill.first_date(now),
        Some(sonnys_etl::domain::days::earliest_servable_date(now))
    );
    let e = load(
        &format!("[backfill]\nsince = \"last summer\"\n{ACCOUNT}"),
        &[("KEY_A", "k")],
    )
    .unwrap_err();
    assert!(e.contains("backfill.since"), "{e}");
}
