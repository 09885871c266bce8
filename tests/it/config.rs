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
