//! TLS to PostgreSQL as `sslmode` asks, and connection failures that name
//! their cause, against private servers: one with TLS, its certificate for
//! "localhost" signed by a CA made here, refusing plaintext over TCP; one
//! without TLS. Both are started once per run and shared by these tests.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use sonnys_etl::database;
use sonnys_etl::rehearsal::pgserver::{Options, PrivatePostgres, Tls};
use sqlx::PgPool;
use tokio::sync::OnceCell;

/// The server with TLS, and the CA files a client may trust.
struct TlsServer {
    port: u16,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing the server has.
    other_ca: PathBuf,
}

async fn tls_server() -> &'static TlsServer {
    static SERVER: OnceCell<TlsServer> = OnceCell::const_new();
    SERVER
        .get_or_init(|| async {
            let server = private_server("test-postgres-tls").await;
            let ca = Ca::new("sonnys-etl test CA");
            let (certificate_pem, private_key_pem) = ca.issue("localhost");
            server
                .enable_tls(&Tls {
                    certificate_pem,
                    private_key_pem,
                    hba_rules: vec![
                        "hostnossl all all 0.0.0.0/0 reject".to_owned(),
                        "hostssl all all 127.0.0.1/32 trust".to_owned(),
                    ],
                })
                .await
                .unwrap_or_else(|e| panic!("enable TLS on the private server: {e:#}"));

            let client_dir = target_dir().join("test-postgres-tls-client");
            std::fs::create_dir_all(&client_dir).unwrap();
            let ca_file = client_dir.join("ca.pem");
            std::fs::write(&ca_file, ca.cert.pem()).unwrap();
            let other_ca = client_dir.join("other-ca.pem");
            std::fs::write(&other_ca, Ca::new("some other CA").cert.pem()).unwrap();
            TlsServer {
                port: server.port(),
                ca: ca_file,
                other_ca,
            }
        })
        .await
}

/// Port of the server without TLS.
async fn plain_server() -> u16 {
    static PORT: OnceCell<u16> = OnceCell::const_new();
    *PORT
        .get_or_init(|| async { private_server("test-postgres-plain").await.port() })
        .await
}

async fn private_server(name: &str) -> PrivatePostgres {
    let data_dir = crate::support::private_server_dir(name);
    PrivatePostgres::start_with(&data_dir, Options::EPHEMERAL)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "start a private PostgreSQL in {}: {e:#}",
                data_dir.display()
            )
        })
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// A certificate authority of our own.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A server certificate naming only `host`, and its key, in PEM.
    fn issue(&self, host: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec![host.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, host);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

async fn connect(url: &str) -> anyhow::Result<PgPool> {
    database::connect(url, 2).await
}

async fn connect_err(url: &str) -> String {
    match connect(url).await {
        Ok(_) => panic!("{url} connected; expected a failure"),
        Err(e) => format!("{e:#}"),
    }
}

async fn encrypted(pool: &PgPool) -> bool {
    let mut conn = pool.acquire().await.unwrap();
    database::uses_tls(&mut conn).await.unwrap()
}

#[tokio::test]
async fn require_encrypts_the_connection() {
    let server = tls_server().await;
    let pool = connect(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
        server.port
    ))
    .await
    .unwrap();
    assert!(encrypted(&pool).await, "pg_stat_ssl says plaintext");
    let name: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "sonnys-etl");
}

#[tokio::test]
async fn verify_full_accepts_a_certificate_for_the_host_from_the_root_ca() {
    let server = tls_server().await;
    let pool = connect(&format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        server.port,
        server.ca.display()
    ))
    .await
    .unwrap();
    assert!(encrypted(&pool).await);
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_that_does_not_name_the_host() {
    let server = tls_server().await;
    let error = connect_err(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
        server.port,
        server.ca.display()
    ))
    .await;
    assert!(
        error.contains(&format!("127.0.0.1:{}", server.port)),
        "{error}"
    );
    assert!(
        error.contains("not valid for name \"127.0.0.1\""),
        "{error}"
    );
}

#[tokio::test]
async fn verify_ca_refuses_a_certificate_from_another_ca() {
    let server = tls_server().await;
    let error = connect_err(&format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-ca&sslrootcert={}",
        server.port,
        server.other_ca.display()
    ))
    .await;
    assert!(
        error.contains("invalid server certificate: unknown issuer"),
        "{error}"
    );
}

#[tokio::test]
async fn require_with_a_root_certificate_checks_the_issuer_as_libpq_does() {
    let server = tls_server().await;
    let url = |ca: &PathBuf| {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode=require&sslrootcert={}",
            server.port,
            ca.display()
        )
    };
    let error = connect_err(&url(&server.other_ca)).await;
    assert!(error.contains("unknown issuer"), "{error}");
    connect(&url(&server.ca)).await.unwrap();
}

/// libpq's verify-ca ignores the host name; sqlx 0.8.6 checks it with
/// rustls 0.23.24 and later (launchbadge/sqlx#3793, fixed in 0.9). Until
/// then the error says so; when this test fails, the fix has arrived: drop
/// the note in `database::tls_cause` and expect this connection to work.
#[tokio::test]
async fn verify_ca_by_address_fails_naming_the_sqlx_host_name_bug() {
    let server = tls_server().await;
    let error = connect_err(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-ca&sslrootcert={}",
        server.port,
        server.ca.display()
    ))
    .await;
    assert!(error.contains("not valid for name"), "{error}");
    assert!(error.contains("launchbadge/sqlx#3793"), "{error}");
}

#[tokio::test]
async fn a_server_requiring_tls_refuses_disable_and_accepts_prefer() {
    let server = tls_server().await;
    let url = |mode: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode={mode}",
            server.port
        )
    };
    let error = connect_err(&url("disable")).await;
    assert!(error.contains("no encryption"), "{error}");
    assert!(error.contains("requires TLS"), "{error}");

    let pool = connect(&url("prefer")).await.unwrap();
    assert!(encrypted(&pool).await);
}

#[tokio::test]
async fn require_refuses_a_server_without_tls() {
    let port = plain_server().await;
    let error = connect_err(&format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=require"
    ))
    .await;
    assert!(error.contains("server does not support TLS"), "{error}");
}

#[tokio::test]
async fn prefer_warns_once_per_pool_when_it_ends_up_in_plaintext() {
    let port = plain_server().await;
    let logs = Logs::capture();
    let pool = database::connect(
        &format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=prefer"),
        3,
    )
    .await
    .unwrap();
    // Three connections at once: each new one passes the check.
    let conns = futures::future::join_all((0..3).map(|_| pool.acquire())).await;
    let mut conns: Vec<_> = conns.into_iter().map(Result::unwrap).collect();
    assert!(!database::uses_tls(&mut conns[0]).await.unwrap());

    let warnings = logs.lines_containing("WITHOUT TLS");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(
        warnings[0].contains(&format!("127.0.0.1:{port}")),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
async fn tls_gives_no_warning() {
    let server = tls_server().await;
    let logs = Logs::capture();
    connect(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        server.port
    ))
    .await
    .unwrap();
    assert_eq!(logs.lines_containing("WITHOUT TLS"), Vec::<String>::new());
}

#[tokio::test]
async fn a_refused_port_is_named_within_seconds_without_the_password() {
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let error = connect_err(&format!(
        "postgres://postgres:s3cret@127.0.0.1:{port}/postgres"
    ))
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused"
        )),
        "{error}"
    );
    assert!(!error.contains("s3cret"), "{error}");
}

/// Log lines of this test's thread (`#[tokio::test]` runs on one thread).
struct Logs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    fn capture() -> Logs {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Captured(writer.clone()))
            .finish();
        Logs {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn lines_containing(&self, text: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.buffer.lock().unwrap())
            .lines()
            .filter(|line| line.contains(text))
            .map(str::to_owned)
            .collect()
    }
}

struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
