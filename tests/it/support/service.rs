//! The real `sonnys-etl run` binary as a child process, with its log lines
//! collected so that tests await what it says instead of sleeping.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// A running service.
pub struct ServiceProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    changed: Arc<Notify>,
}

impl ServiceProcess {
    /// Start `sonnys-etl --config <config> run` with `env` added.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> ServiceProcess {
        Self::command(config, &["run"], env)
    }

    /// Start `sonnys-etl --config <config> <args>` (any command, e.g. a
    /// `sync` beside the service) with `env` added.
    pub fn command(config: &Path, args: &[&str], env: &[(&str, &str)]) -> ServiceProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sonnys-etl"));
        command
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("SONNYS_ETL_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start sonnys-etl");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let changed = Arc::new(Notify::new());
        {
            let (lines, changed) = (lines.clone(), changed.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().unwrap().push(line);
                    changed.notify_waiters();
                }
                changed.notify_waiters();
            });
        }
        ServiceProcess {
            child,
            lines,
            changed,
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Lines logged so far that contain `text`.
    pub fn count(&self, text: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    /// Wait until `n` lines containing `text` were logged; panics with the
    /// log after `timeout`.
    pub async fn wait_for(&self, text: &str, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if self.count(text) >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "no {n} × {text:?} within {timeout:?}; the service logged:\n{}",
                    self.log().join("\n")
                );
            }
        }
    }

    /// The operations endpoint's base URL, from the service's log.
    pub async fn endpoint(&self) -> String {
        self.wait_for("operations endpoint", 1, Duration::from_secs(30))
            .await;
        let line = self
            .log()
            .into_iter()
            .find(|l| l.contains("operations endpoint"))
            .unwrap();
        let addr = line
            .split("listen=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no listen= in {line:?}"));
        format!("http://{addr}")
    }

    /// The id this process claims site-days under (`sync_days.lease_owner`).
    pub async fn replica(&self) -> uuid::Uuid {
        self.wait_for("service ready", 1, Duration::from_secs(30))
            .await;
        let line = self
            .log()
            .into_iter()
            .find(|l| l.contains("service ready"))
            .unwrap();
        line.split("replica=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no replica= in {line:?}"))
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} {pid}");
    }

    /// Wait for the process to exit; `None` if it is still running after `timeout`.
    pub async fn exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .map(|r| r.expect("wait for sonnys-etl"))
    }
}

/// A configuration file for the service in a folder that lives as long as
/// the returned value.
pub struct ConfigFile {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl ConfigFile {
    pub fn new(toml: &str) -> ConfigFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sonnys-etl.toml");
        std::fs::write(&path, toml).unwrap();
        ConfigFile { path, _dir: dir }
    }

    pub fn write(&self, toml: &str) {
        std::fs::write(&self.path, toml).unwrap();
    }
}
