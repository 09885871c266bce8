//! What a real browser makes of a page: Debian's `chromium`, headless, loads
//! a URL and gives back the DOM it built and a screenshot.
//!
//! Without `chromium` on `PATH` the tests that need it are skipped loudly,
//! except under CI (env `CI` set), which installs it and where a missing
//! browser must fail the run rather than pass it silently.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long one Chromium invocation may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The page width the screenshot is taken at.
pub const WINDOW_SIZE: &str = "1280,2000";

/// A page as Chromium rendered it. The screenshot lives in a temporary
/// folder that goes away with this value.
pub struct Rendered {
    /// The DOM after parsing, serialised (`--dump-dom`).
    pub dom: String,
    /// A PNG of the page in a [`WINDOW_SIZE`] window.
    pub screenshot: PathBuf,
    _dir: TempDir,
}

/// Loads `url` in headless Chromium twice: once for a screenshot, once for
/// the DOM. `None` (after saying so on stderr) when Chromium is not
/// installed outside CI.
pub fn render(url: &str) -> Option<Rendered> {
    let Some(chromium) = find_on_path("chromium") else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is not on PATH; CI must install it (apt-get install chromium)");
        }
        // Straight to stderr: the test harness captures `eprintln!`, and a
        // skip nobody sees would read as a pass.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** skipping: chromium not installed (apt-get install chromium) ***\n"
        );
        return None;
    };
    let dir = tempfile::tempdir().expect("create a folder for chromium");

    let screenshot = dir.path().join("screenshot.png");
    run(
        &chromium,
        dir.path(),
        "screenshot",
        &[
            format!("--screenshot={}", screenshot.display()),
            format!("--window-size={WINDOW_SIZE}"),
            "--hide-scrollbars".to_owned(),
        ],
        url,
    );
    assert!(
        screenshot.is_file(),
        "chromium wrote no screenshot of {url}"
    );

    let dom_file = run(
        &chromium,
        dir.path(),
        "dom",
        &["--dump-dom".to_owned()],
        url,
    );
    let dom = std::fs::read_to_string(&dom_file).expect("read chromium's DOM dump");
    assert!(!dom.trim().is_empty(), "chromium dumped no DOM of {url}");

    Some(Rendered {
        dom,
        screenshot,
        _dir: dir,
    })
}

/// Runs Chromium once with a fresh profile in `dir/<name>-profile`; returns
/// the file its standard output went to.
fn run(chromium: &Path, dir: &Path, name: &str, args: &[String], url: &str) -> PathBuf {
    let profile = dir.join(format!("{name}-profile"));
    let stdout_path = dir.join(format!("{name}.out"));
    let stderr_path = dir.join(format!("{name}.err"));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            // Tests run as root in containers, where the sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        // Files, not pipes: a large DOM cannot fill a pipe nobody reads yet.
        .stdout(File::create(&stdout_path).expect("create chromium's stdout file"))
        .stderr(File::create(&stderr_path).expect("create chromium's stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", chromium.display()));

    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium ({name}) did not finish {url} within {TIMEOUT:?}; stderr:\n{}",
                stderr_tail(&stderr_path)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium ({name}) failed on {url} with {status}; stderr:\n{}",
        stderr_tail(&stderr_path)
    );
    stdout_path
}

fn stderr_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn find_on_path(program: impl AsRef<OsStr>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program.as_ref()))
        .find(|candidate| candidate.is_file())
}
