//! A private PostgreSQL server for tests and the demo, started from the
//! server binaries already installed on the machine (no download, no Docker).
//!
//! The server lives entirely in one data folder: its files, its log
//! (`server.log`), its unix socket and the settings we add
//! (`sonnys-etl.conf`; with TLS turned on by the tests, also
//! `sonnys-etl-tls.conf`, `sonnys-etl-hba.conf` and the certificate and key).
//! It keeps running after the program exits so the next
//! run can reuse it; [`PrivatePostgres::stop`] stops it.
//!
//! PostgreSQL refuses to run as root. When we are root, every server command
//! runs as an unprivileged user (`postgres` if it exists, else `nobody`) via
//! `runuser`, and the data folder is handed to that user.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use sqlx::{Connection, PgConnection};

/// Superuser name given to `initdb`, so URLs do not depend on who ran it.
const SUPERUSER: &str = "postgres";
/// File, in the data folder, that receives the server's log output.
const LOG_FILE: &str = "server.log";
/// File, in the data folder, holding the settings we choose; rewritten at each start.
const OUR_CONF: &str = "sonnys-etl.conf";
/// File, in the data folder, holding the TLS settings of [`PrivatePostgres::enable_tls`].
const TLS_CONF: &str = "sonnys-etl-tls.conf";
/// File, in the data folder, holding the pg_hba rules of [`PrivatePostgres::enable_tls`]
/// followed by initdb's own.
const TLS_HBA: &str = "sonnys-etl-hba.conf";
/// Files, in the data folder, holding the server's certificate and private key.
const TLS_CERT: &str = "server.crt";
const TLS_KEY: &str = "server.key";
/// How long `pg_ctl` may wait for the server to start or stop, in seconds.
const PG_CTL_WAIT_SECS: &str = "60";
/// Lines of a failing command's output quoted in its error.
const TAIL_LINES: usize = 25;
/// Longest unix socket path the kernel accepts (`sun_path` is 104 bytes on
/// macOS, 108 on Linux; keep the smaller, minus the terminating NUL).
const MAX_SOCKET_PATH: usize = 103;

const INSTALL_HINT: &str =
    "install the PostgreSQL server, e.g. `apt-get install postgresql` or `brew install postgresql`, \
     or point PG_BIN at the folder holding initdb, pg_ctl and postgres";

/// How a private server trades safety for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Whether the server flushes writes to disk. `false` makes tests much
    /// faster but a machine crash can corrupt the data folder: only for
    /// throw-away data.
    pub fsync: bool,
}

impl Options {
    /// PostgreSQL's durable defaults, for data worth keeping (the demo).
    pub const DURABLE: Options = Options { fsync: true };
    /// Fast settings for throw-away data (tests).
    pub const EPHEMERAL: Options = Options { fsync: false };
}

/// What a private server needs to accept TLS connections.
///
/// For the TLS tests only (see [`PrivatePostgres::enable_tls`]): hidden from
/// the documentation, not part of the product.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Tls {
    /// The server's certificate (PEM), then any intermediate certificates.
    pub certificate_pem: String,
    /// The certificate's private key (PEM).
    pub private_key_pem: String,
    /// pg_hba.conf lines placed before initdb's own (which trust every local
    /// connection), e.g. `hostnossl all all 0.0.0.0/0 reject` to refuse plaintext.
    pub hba_rules: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self::DURABLE
    }
}

/// A PostgreSQL server of our own, started from the machine's server binaries in a data folder of its own.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
}

impl PrivatePostgres {
    /// Find server binaries: $PG_BIN if set, then `pg_config --bindir`, then
    /// /usr/lib/postgresql/*/bin (highest version), then /usr/local/pgsql/bin,
    /// /opt/homebrew/opt/postgresql*/bin, /usr/local/opt/postgresql*/bin, PATH.
    ///
    /// A folder counts when it holds `initdb`, `pg_ctl` and `postgres`. When
    /// PG_BIN is set but wrong, that is an error rather than a silent fallback,
    /// since the caller asked for those binaries.
    pub fn find_binaries() -> anyhow::Result<PathBuf> {
        let pg_bin = std::env::var_os("PG_BIN").filter(|v| !v.is_empty());
        search_binaries(pg_bin, default_candidates())
    }

    /// Start (initdb on first use, trust auth, listen only on a unix socket in
    /// the data folder and 127.0.0.1 on a free port) or reuse a server already
    /// running from this data folder. Returns once it accepts connections.
    ///
    /// Uses durable settings; see [`PrivatePostgres::start_with`].
    pub async fn start(data_dir: &Path) -> anyhow::Result<PrivatePostgres> {
        Self::start_with(data_dir, Options::DURABLE).await
    }

    /// Like [`PrivatePostgres::start`], with the given [`Options`].
    ///
    /// A server already running from `data_dir` is reused as it is, with the
    /// settings it was started with. A restarted server keeps its previous
    /// port when that port is still free.
    pub async fn start_with(data_dir: &Path, options: Options) -> anyhow::Result<PrivatePostgres> {
        let bin_dir = Self::find_binaries()?;
        let data_dir = std::path::absolute(data_dir)
            .with_context(|| format!("cannot make {} absolute", data_dir.display()))?;
        let run_as = RunAs::detect()?;
        let server = PrivatePostgres {
            bin_dir,
            data_dir,
            port: 0,
            run_as,
        };
        server.reuse_or_start(options).await
    }

    /// Connection URL for `database` on this server, over TCP.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stop the server (pg_ctl stop -m fast).
    pub fn stop(self) -> anyhow::Result<()> {
        let mut cmd = self.pg_ctl();
        cmd.args(["stop", "-m", "fast", "-w", "-t", PG_CTL_WAIT_SECS]);
        let output = run_output(cmd, "pg_ctl stop")?;
        if !output.status.success() {
            bail!(
                "pg_ctl stop -D {} failed ({}):\n{}",
                self.data_dir.display(),
                output.status,
                tail(&output)
            );
        }
        Ok(())
    }

    /// Accept TLS with `tls` from now on, restarts included: writes the
    /// certificate and key (mode 0600, owned by the server's user, as
    /// PostgreSQL demands), puts the rules in front of initdb's, turns `ssl`
    /// on and restarts the server. Returns once it accepts connections.
    ///
    /// For the TLS tests only (the demo never needs TLS): hidden from the
    /// documentation, not part of the product.
    #[doc(hidden)]
    pub async fn enable_tls(&self, tls: &Tls) -> anyhow::Result<()> {
        self.write_server_file(TLS_CERT, &tls.certificate_pem, 0o600)?;
        self.write_server_file(TLS_KEY, &tls.private_key_pem, 0o600)?;

        let initdb_hba = self.data_dir.join("pg_hba.conf");
        let initdb_rules = std::fs::read_to_string(&initdb_hba)
            .with_context(|| format!("cannot read {}", initdb_hba.display()))?;
        let mut hba = String::from("# Written by sonnys-etl: rules of enable_tls first.\n");
        for rule in &tls.hba_rules {
            hba.push_str(rule);
            hba.push('\n');
        }
        hba.push_str("\n# initdb's rules.\n");
        hba.push_str(&initdb_rules);
        self.write_server_file(TLS_HBA, &hba, 0o600)?;

        let path = |name: &str| conf_string(&self.data_dir.join(name).to_string_lossy());
        let settings = format!(
            "# Written by sonnys-etl: TLS for this private server.\n\
             ssl = on\n\
             ssl_cert_file = {}\n\
             ssl_key_file = {}\n\
             hba_file = {}\n",
            path(TLS_CERT),
            path(TLS_KEY),
            path(TLS_HBA)
        );
        self.write_server_file(TLS_CONF, &settings, 0o600)?;
        // A server started before TLS existed here lacks the include.
        let ours = self.data_dir.join(OUR_CONF);
        let text = std::fs::read_to_string(&ours)
            .with_context(|| format!("cannot read {}", ours.display()))?;
        if !text.contains(TLS_CONF) {
            self.write_server_file(OUR_CONF, &format!("{text}{}", include_tls_conf()), 0o644)?;
        }
        self.restart().await
    }

    /// Restart the server (pg_ctl restart -m fast) on the same port.
    async fn restart(&self) -> anyhow::Result<()> {
        let mut cmd = self.pg_ctl();
        cmd.args(["restart", "-m", "fast", "-w", "-t", PG_CTL_WAIT_SECS, "-l"])
            .arg(self.data_dir.join(LOG_FILE));
        let output = run_output_async(cmd, "pg_ctl restart").await?;
        if !output.status.success() {
            bail!(
                "pg_ctl restart -D {} failed ({}):\n{}\nserver log ({}):\n{}",
                self.data_dir.display(),
                output.status,
                tail(&output),
                self.data_dir.join(LOG_FILE).display(),
                self.log_tail()
            );
        }
        self.wait_until_ready(Duration::from_secs(30)).await
    }

    /// Write `name` in the data folder with `mode`, owned by the server's user.
    fn write_server_file(&self, name: &str, text: &str, mode: u32) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.data_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        if let Some(run_as) = &self.run_as {
            std::os::unix::fs::chown(&path, Some(run_as.uid), Some(run_as.gid))
                .with_context(|| format!("cannot give {} to {}", path.display(), run_as.name))?;
        }
        Ok(())
    }

    async fn reuse_or_start(mut self, options: Options) -> anyhow::Result<PrivatePostgres> {
        if let Some(port) = self.running_port() {
            self.port = port;
            if server_answers(&self.url("postgres")).await {
                tracing::debug!(data_dir = %self.data_dir.display(), port, "reusing running PostgreSQL");
                return Ok(self);
            }
            // A pid file without an answering server: either it is still
            // starting (or recovering), or a crash left the file behind.
            if self.status_running().await? {
                self.wait_until_ready(Duration::from_secs(60))
                    .await
                    .with_context(|| {
                        format!(
                            "postmaster.pid in {} names a live process; if no PostgreSQL runs \
                             from that folder, the pid was reused: delete postmaster.pid",
                            self.data_dir.display()
                        )
                    })?;
                return Ok(self);
            }
        }

        if !self.data_dir.join("PG_VERSION").exists() {
            self.initdb().await?;
        }
        self.port = self.choose_port()?;
        self.write_settings(options)?;

        let mut cmd = self.pg_ctl();
        cmd.args(["start", "-w", "-t", PG_CTL_WAIT_SECS, "-l"])
            .arg(self.data_dir.join(LOG_FILE));
        let output = run_output_async(cmd, "pg_ctl start").await?;
        if !output.status.success() {
            bail!(
                "pg_ctl start -D {} failed ({}):\n{}\nserver log ({}):\n{}",
                self.data_dir.display(),
                output.status,
                tail(&output),
                self.data_dir.join(LOG_FILE).display(),
                self.log_tail()
            );
        }
        self.wait_until_ready(Duration::from_secs(30)).await?;
        tracing::info!(data_dir = %self.data_dir.display(), port = self.port, "started private PostgreSQL");
        Ok(self)
    }

    /// Port of the server running from this folder, from `postmaster.pid`
    /// (its fourth line), if the file exists.
    fn running_port(&self) -> Option<u16> {
        let text = std::fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        text.lines().nth(3)?.trim().parse().ok()
    }

    async fn status_running(&self) -> anyhow::Result<bool> {
        let mut cmd = self.pg_ctl();
        cmd.arg("status");
        let output = run_output_async(cmd, "pg_ctl status").await?;
        Ok(output.status.success())
    }

    async fn wait_until_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let url = self.url("postgres");
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if server_answers(&url).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "PostgreSQL in {} did not accept connections on port {} within {} s; server log:\n{}",
            self.data_dir.display(),
            self.port,
            limit.as_secs(),
            self.log_tail()
        )
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create data folder {}", self.data_dir.display()))?;
        if let Some(run_as) = &self.run_as {
            run_as.take_ownership(&self.data_dir)?;
        }
        let mut cmd = self.server_command("initdb");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["--auth=trust", "--encoding=UTF8", "--locale=C"])
            .arg(format!("--username={SUPERUSER}"));
        let output = run_output_async(cmd, "initdb").await?;
        if !output.status.success() {
            bail!(
                "initdb -D {} failed ({}):\n{}",
                self.data_dir.display(),
                output.status,
                tail(&output)
            );
        }
        // Our settings live in a file of their own, rewritten at each start,
        // so postgresql.conf is touched only once.
        let conf = self.data_dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)
            .with_context(|| format!("cannot read {}", conf.display()))?;
        text.push_str(&format!(
            "\n# Added by sonnys-etl: settings of this private server.\ninclude_if_exists = '{OUR_CONF}'\n"
        ));
        std::fs::write(&conf, text).with_context(|| format!("cannot write {}", conf.display()))?;
        Ok(())
    }

    /// The previous port when it is still free (so URLs stay stable across
    /// restarts), else a fresh one picked by the OS.
    fn choose_port(&self) -> anyhow::Result<u16> {
        let previous = std::fs::read_to_string(self.data_dir.join(OUR_CONF))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("port = "))
                    .and_then(|p| p.trim().parse::<u16>().ok())
            });
        if let Some(port) = previous {
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
        // Another program may take the port before the server binds it; the
        // window is short and the failure would name the port in the log.
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .context("cannot find a free TCP port on 127.0.0.1")?;
        Ok(listener.local_addr()?.port())
    }

    fn write_settings(&self, options: Options) -> anyhow::Result<()> {
        let socket_dir = self.data_dir.to_string_lossy();
        // The socket file is `<dir>/.s.PGSQL.<port>`; a path the kernel
        // cannot take would stop the server, so fall back to TCP only.
        let sockets = if socket_dir.len() + "/.s.PGSQL.65535".len() <= MAX_SOCKET_PATH {
            socket_dir.into_owned()
        } else {
            tracing::warn!(data_dir = %self.data_dir.display(), "data folder path too long for a unix socket; listening on TCP only");
            String::new()
        };
        let mut text = format!(
            "# Written by sonnys-etl at each start; edits are lost.\n\
             port = {}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = {}\n",
            self.port,
            conf_string(&sockets)
        );
        text.push_str(&include_tls_conf());
        if !options.fsync {
            text.push_str(
                "# Throw-away data: speed over crash safety.\n\
                 fsync = off\n\
                 synchronous_commit = off\n\
                 full_page_writes = off\n",
            );
        }
        let path = self.data_dir.join(OUR_CONF);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        if let Some(run_as) = &self.run_as {
            std::os::unix::fs::chown(&path, Some(run_as.uid), Some(run_as.gid))
                .with_context(|| format!("cannot give {} to {}", path.display(), run_as.name))?;
        }
        Ok(())
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir);
        cmd
    }

    /// A command for one of the server binaries, run as the unprivileged
    /// user when we are root.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut cmd = match &self.run_as {
            Some(run_as) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", &run_as.name, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        // The unprivileged user may not be able to enter our working folder,
        // and all paths we pass are absolute.
        cmd.current_dir("/");
        cmd
    }

    fn log_tail(&self) -> String {
        match std::fs::read_to_string(self.data_dir.join(LOG_FILE)) {
            Ok(text) => last_lines(&text, TAIL_LINES),
            Err(e) => format!("(no log: {e})"),
        }
    }
}

/// Whether a PostgreSQL at `url` accepts a connection within about 2 s.
pub async fn server_answers(url: &str) -> bool {
    match tokio::time::timeout(Duration::from_secs(2), PgConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            // Closing politely only spares the server a log line.
            let _ = conn.close().await;
            true
        }
        _ => false,
    }
}

/// The unprivileged user server commands run as when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// `None` unless we are root; then `postgres` if it exists, else `nobody`.
    fn detect() -> anyhow::Result<Option<RunAs>> {
        if effective_uid()? != 0 {
            return Ok(None);
        }
        for name in ["postgres", "nobody"] {
            if let (Ok(uid), Ok(gid)) = (id_number(&["-u", name]), id_number(&["-g", name])) {
                return Ok(Some(RunAs {
                    name: name.to_string(),
                    uid,
                    gid,
                }));
            }
        }
        bail!("running as root, and neither user `postgres` nor `nobody` exists to run PostgreSQL as (it refuses to run as root)")
    }

    /// Give `dir` to this user and check that it can actually reach it: a
    /// parent folder closed to others (e.g. a 0700 temporary folder) would
    /// otherwise surface as an obscure initdb failure.
    fn take_ownership(&self, dir: &Path) -> anyhow::Result<()> {
        let mut chown = Command::new("chown");
        chown
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(dir);
        let output = run_output(chown, "chown")?;
        if !output.status.success() {
            bail!(
                "chown -R {} {} failed:\n{}",
                self.name,
                dir.display(),
                tail(&output)
            );
        }
        let mut check = Command::new("runuser");
        check
            .args(["-u", &self.name, "--", "test", "-w"])
            .arg(dir)
            .current_dir("/");
        let output = run_output(check, "runuser")?;
        if !output.status.success() {
            bail!(
                "PostgreSQL refuses to run as root, so it runs as user `{}`, which cannot reach {}: \
                 make every parent folder searchable by it (chmod o+x) or use a data folder elsewhere",
                self.name,
                dir.display()
            );
        }
        Ok(())
    }
}

/// Effective uid from /proc (Linux), else from `id -u`; no libc needed.
fn effective_uid() -> anyhow::Result<u32> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let euid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|euid| euid.parse().ok());
        if let Some(euid) = euid {
            return Ok(euid);
        }
    }
    id_number(&["-u"])
}

fn id_number(args: &[&str]) -> anyhow::Result<u32> {
    let mut cmd = Command::new("id");
    cmd.args(args);
    let output = run_output(cmd, "id")?;
    if !output.status.success() {
        bail!("id {} failed:\n{}", args.join(" "), tail(&output));
    }
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .with_context(|| format!("unexpected output from id {}", args.join(" ")))
}

/// Run a command to completion, capturing its output; errors name it.
fn run_output(mut cmd: Command, name: &str) -> anyhow::Result<Output> {
    cmd.output()
        .with_context(|| format!("cannot run {name} ({:?})", cmd.get_program()))
}

async fn run_output_async(cmd: Command, name: &str) -> anyhow::Result<Output> {
    let program = cmd.get_program().to_owned();
    let mut cmd = tokio::process::Command::from(cmd);
    // pg_ctl start leaves the server running with our pipes unless told
    // otherwise; the server's output goes to its log file, not to us.
    cmd.stdin(std::process::Stdio::null());
    cmd.output()
        .await
        .with_context(|| format!("cannot run {name} ({program:?})"))
}

/// The last lines of a command's stdout and stderr, for error messages.
fn tail(output: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    last_lines(&text, TAIL_LINES)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The line that makes the TLS settings of [`PrivatePostgres::enable_tls`],
/// once written, survive the rewriting of our settings at each start.
fn include_tls_conf() -> String {
    format!("include_if_exists = '{TLS_CONF}'\n")
}

/// A string literal for postgresql.conf.
fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|name| dir.join(name).is_file())
}

/// The search behind [`PrivatePostgres::find_binaries`], with its inputs
/// passed in so it can be tested.
fn search_binaries(pg_bin: Option<OsString>, candidates: Vec<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = pg_bin {
        let dir = PathBuf::from(dir);
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
        bail!(
            "PG_BIN={} does not hold initdb, pg_ctl and postgres; unset it or {INSTALL_HINT}",
            dir.display()
        );
    }
    candidates
        .into_iter()
        .find(|dir| has_server_binaries(dir))
        .ok_or_else(|| anyhow!("no PostgreSQL server binaries found; {INSTALL_HINT}"))
}

/// Places server binaries usually are, in the order they are tried.
fn default_candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
            if !dir.is_empty() {
                dirs.push(PathBuf::from(dir));
            }
        }
    }
    let mut debian = versioned_dirs(Path::new("/usr/lib/postgresql"), "");
    debian.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(debian.into_iter().map(|(_, dir)| dir.join("bin")));
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    for root in ["/opt/homebrew/opt", "/usr/local/opt"] {
        let mut brew = versioned_dirs(Path::new(root), "postgresql");
        brew.sort_by(|a, b| b.0.cmp(&a.0));
        dirs.extend(brew.into_iter().map(|(_, dir)| dir.join("bin")));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// Subfolders of `root` named `<prefix><version>`, with the version parsed
/// as numbers so that 16 sorts above 9.6. An unversioned name (Homebrew's
/// `postgresql`) gets an empty version and sorts last.
fn versioned_dirs(root: &Path, prefix: &str) -> Vec<(Vec<u32>, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(prefix)?.trim_start_matches('@');
            let version = rest
                .split('.')
                .filter(|part| !part.is_empty())
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bin_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in ["initdb", "pg_ctl", "postgres"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        dir
    }

    #[test]
    fn pg_bin_wins_over_other_places() {
        let chosen = fake_bin_dir();
        let other = fake_bin_dir();
        let found = search_binaries(
            Some(chosen.path().as_os_str().to_owned()),
            vec![other.path().to_path_buf()],
        )
        .unwrap();
        assert_eq!(found, chosen.path());
    }

    #[test]
    fn a_wrong_pg_bin_is_an_error_naming_it() {
        let empty = tempfile::tempdir().unwrap();
        let other = fake_bin_dir();
        let err = search_binaries(
            Some(empty.path().as_os_str().to_owned()),
            vec![other.path().to_path_buf()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("PG_BIN"), "{err}");
        assert!(err.contains(&empty.path().display().to_string()), "{err}");
    }

    #[test]
    fn first_candidate_with_all_binaries_is_chosen() {
        let partial = tempfile::tempdir().unwrap();
        std::fs::write(partial.path().join("pg_ctl"), "").unwrap();
        let full = fake_bin_dir();
        let found = search_binaries(
            None,
            vec![
                PathBuf::from("/nonexistent/bin"),
                partial.path().to_path_buf(),
                full.path().to_path_buf(),
            ],
        )
        .unwrap();
        assert_eq!(found, full.path());
    }

    #[test]
    fn nothing_found_says_what_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let err = search_binaries(None, vec![empty.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("apt-get install postgresql"), "{err}");
        assert!(err.contains("brew install postgresql"), "{err}");
    }

    #[test]
    fn versions_sort_numerically() {
        let root = tempfile::tempdir().unwrap();
        for name in ["9.6", "16", "15", "notes"] {
            std::fs::create_dir(root.path().join(name)).unwrap();
        }
        let mut found = versioned_dirs(root.path(), "");
        found.sort_by(|a, b| b.0.cmp(&a.0));
        let names: Vec<_> = found
            .iter()
            .map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["16", "15", "9.6"]);
    }

    #[test]
    fn homebrew_names_parse() {
        let root = tempfile::tempdir().unwrap();
        for name in ["postgresql@14", "postgresql@16", "postgresql", "python@3"] {
            std::fs::create_dir(root.path().join(name)).unwrap();
        }
        let mut found = versioned_dirs(root.path(), "postgresql");
        found.sort_by(|a, b| b.0.cmp(&a.0));
        let names: Vec<_> = found
            .iter()
            .map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["postgresql@16", "postgresql@14", "postgresql"]);
    }

    #[test]
    fn conf_strings_are_quoted() {
        assert_eq!(conf_string("/a/it's"), "'/a/it''s'");
        assert_eq!(conf_string(""), "''");
    }
}
