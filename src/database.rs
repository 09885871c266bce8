//! Connecting to PostgreSQL: TLS as the URL's `sslmode` asks (libpq's rules),
//! a failure that names its cause within seconds instead of a pool timeout,
//! and a warning when `sslmode=prefer` ends up in plaintext.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use rustls::CertificateError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool};

/// How the service names itself to the server (`pg_stat_activity`).
pub const APPLICATION_NAME: &str = "sonnys-etl";
/// How long the first connection may take. A refused or reset connection
/// fails at once; this only bounds a server that does not answer at all.
pub const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for a connection of the pool once it runs.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Open a pool on `url`. One connection is made first on its own, so that an
/// unreachable server, a TLS failure or a refused login is reported with its
/// cause and the server's `host:port` (never the password).
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = connect_options(url)?;
    let server = Server::of(&options);
    let plaintext = Arc::new(PlaintextWarning::new(&options, &server));

    let mut first =
        tokio::time::timeout(FIRST_CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| {
                anyhow!(
                    "cannot connect to PostgreSQL at {server}: no answer within {} s",
                    FIRST_CONNECT_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| {
                anyhow!(
                    "cannot connect to PostgreSQL at {server}: {}",
                    cause(&e, &options)
                )
            })?;
    plaintext.check(&mut first).await;
    // Closing politely only spares the server a log line.
    let _ = first.close().await;

    let hook = plaintext.clone();
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _meta| {
            let hook = hook.clone();
            Box::pin(async move {
                hook.check(conn).await;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open a pool of connections to PostgreSQL at {server}"))
}

/// The connect options of `url`, as libpq would read it, named
/// [`APPLICATION_NAME`].
///
/// sqlx parses `sslmode`, `sslrootcert`, `sslcert` and `sslkey` from the URL
/// (and `PGSSLMODE`, `PGSSLROOTCERT`… from the environment); one libpq rule
/// it lacks is added here: `sslmode=require` with a root certificate given
/// verifies the server's certificate, as `verify-ca` does.
pub fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = url
        .parse()
        .with_context(|| format!("database.url {} is not a PostgreSQL URL", redact_url(url)))?;
    let options = if matches!(options.get_ssl_mode(), PgSslMode::Require) && root_cert_given(url) {
        options.ssl_mode(PgSslMode::VerifyCa)
    } else {
        options
    };
    Ok(options.application_name(APPLICATION_NAME))
}

/// Whether `url` (or else the environment) names a root certificate file.
fn root_cert_given(url: &str) -> bool {
    let in_url = url::Url::parse(url).is_ok_and(|u| {
        u.query_pairs()
            .any(|(key, _)| matches!(&*key, "sslrootcert" | "ssl-root-cert" | "ssl-ca"))
    });
    in_url || std::env::var_os("PGSSLROOTCERT").is_some_and(|v| !v.is_empty())
}

/// Whether this connection is encrypted, as the server sees it.
pub async fn uses_tls(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_optional(conn)
        .await
        .map(|ssl| ssl.unwrap_or(false))
}

/// Where the server is, for messages: `host:port`, or the unix socket.
#[derive(Debug, Clone)]
struct Server(String);

impl Server {
    fn of(options: &PgConnectOptions) -> Server {
        let host = options.get_host();
        let port = options.get_port();
        Server(match options.get_socket() {
            Some(socket) => format!("{} (port {port})", socket.display()),
            None if host.starts_with('/') => format!("{host} (port {port})"),
            // An IPv6 address, unless sqlx kept the URL's brackets.
            None if host.contains(':') && !host.starts_with('[') => format!("[{host}]:{port}"),
            None => format!("{host}:{port}"),
        })
    }

    fn is_unix_socket(options: &PgConnectOptions) -> bool {
        options.get_socket().is_some() || options.get_host().starts_with('/')
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `sslmode=prefer`, libpq's and sqlx's default, quietly falls back to
/// plaintext when the server does not offer TLS. This says so, once per pool.
#[derive(Debug)]
struct PlaintextWarning {
    server: Server,
    /// Set when there is nothing (more) to say: TLS was not preferred, the
    /// connection is a unix socket, or the warning was given.
    done: AtomicBool,
}

impl PlaintextWarning {
    fn new(options: &PgConnectOptions, server: &Server) -> PlaintextWarning {
        // Unix sockets never carry TLS, nor need it: no network to cross.
        let relevant =
            matches!(options.get_ssl_mode(), PgSslMode::Prefer) && !Server::is_unix_socket(options);
        PlaintextWarning {
            server: server.clone(),
            done: AtomicBool::new(!relevant),
        }
    }

    /// Warn if `conn` is the pool's first plaintext connection. A server that
    /// cannot tell (no `pg_stat_ssl`) gets no warning rather than no connection.
    async fn check(&self, conn: &mut PgConnection) {
        if self.done.load(Ordering::Relaxed) {
            return;
        }
        match uses_tls(conn).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(server = %self.server, error = %e, "cannot tell whether TLS is on");
                return;
            }
        }
        if !self.done.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                server = %self.server,
                "connected to PostgreSQL at {} WITHOUT TLS: the server does not offer it and \
                 sslmode=prefer falls back to plaintext; use sslmode=require (or verify-full) \
                 to refuse unencrypted connections",
                self.server
            );
        }
    }
}

/// The cause of a failed connection, in words an operator can act on.
fn cause(error: &sqlx::Error, options: &PgConnectOptions) -> String {
    match error {
        sqlx::Error::Io(e) => io_cause(e, options),
        sqlx::Error::Tls(e) => format!("TLS: {e}"),
        sqlx::Error::Database(e) => {
            let message = e.message();
            // pg_hba.conf's `hostnossl … reject` says "no encryption".
            if matches!(options.get_ssl_mode(), PgSslMode::Disable)
                && message.contains("no encryption")
            {
                format!("{message} (the server requires TLS; sslmode=disable turns it off)")
            } else {
                message.to_owned()
            }
        }
        other => other.to_string(),
    }
}

fn io_cause(error: &io::Error, options: &PgConnectOptions) -> String {
    // rustls reports handshake failures as InvalidData errors wrapping its own.
    if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return format!("TLS handshake failed: {}", tls_cause(tls, options));
    }
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_owned(),
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        _ => error.to_string(),
    }
}

fn tls_cause(error: &rustls::Error, options: &PgConnectOptions) -> String {
    match error {
        rustls::Error::InvalidCertificate(
            e @ (CertificateError::NotValidForName
            | CertificateError::NotValidForNameContext { .. }),
        ) if matches!(options.get_ssl_mode(), PgSslMode::VerifyCa) => format!(
            "invalid server certificate: {e} (sqlx 0.8 checks the host name even for \
             sslmode=verify-ca, launchbadge/sqlx#3793: connect by a name the certificate lists)"
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "invalid server certificate: unknown issuer (signed by a CA that is neither in \
             sslrootcert nor in the system's trusted CAs)"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(e) => format!("invalid server certificate: {e}"),
        other => other.to_string(),
    }
}

/// Hides the password of a database URL for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> PgSslMode {
        connect_options(url).unwrap().get_ssl_mode()
    }

    #[test]
    fn require_with_a_root_certificate_verifies_it_as_libpq_does() {
        assert!(matches!(
            mode("postgres://h/db?sslmode=require&sslrootcert=/ca.pem"),
            PgSslMode::VerifyCa
        ));
        assert!(matches!(
            mode("postgres://h/db?sslmode=verify-full&sslrootcert=/ca.pem"),
            PgSslMode::VerifyFull
        ));
    }

    #[test]
    fn servers_are_named_by_host_and_port_without_credentials() {
        let options = connect_options("postgres://u:secret@db.example:6432/x").unwrap();
        assert_eq!(Server::of(&options).to_string(), "db.example:6432");
        let options = connect_options("postgres://u:secret@[::1]:5432/x").unwrap();
        assert_eq!(Server::of(&options).to_string(), "[::1]:5432");
    }

    #[test]
    fn a_bad_url_is_reported_without_its_password() {
        let error = connect_options("postgres://u:secret@h:port/db").unwrap_err();
        assert!(!format!("{error:#}").contains("secret"), "{error:#}");
    }
}
