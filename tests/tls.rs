//! TLS to every service: `rediss://` (results, settings, locks and the Redis
//! broker), `amqps://`, PostgreSQL with `sslmode`, S3 over `https://`, each
//! verified against a CA the test makes. The worker is told to trust it
//! the way an operator would (`SSL_CERT_FILE`, `sslrootcert`); a server
//! whose certificate another CA signed fails that connection by name,
//! without any plaintext attempt. The whole lifecycle over TLS is in
//! tests/lifecycle.rs.
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::private::PrivatePostgres;
use common::services::{Deployment, TlsFronts};
use common::tls::{Protocol, TestCa, TlsFront};
use common::TempDir;

fn line<'a>(report: &'a str, service: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(&format!("{service}: ")))
        .unwrap_or_else(|| panic!("no {service} line in:\n{report}"))
}

fn tls(dep: &Deployment) -> &TlsFronts {
    dep.tls.as_ref().unwrap()
}

#[test]
fn every_service_answers_over_tls_with_the_trusted_ca() {
    let dep = Deployment::new_s3().with_tls();
    let (ok, report) = dep.check(&[]);
    assert!(ok, "{report}");
    assert!(line(&report, "broker").contains("amqps://"), "{report}");
    dep.assert_no_plaintext_attempt();
}

#[test]
fn the_redis_broker_answers_over_tls() {
    let dep = Deployment::new_redis_broker().with_tls();
    let (ok, report) = dep.check(&[]);
    assert!(ok, "{report}");
    assert!(line(&report, "broker").contains("rediss://"), "{report}");
    dep.assert_no_plaintext_attempt();
}

/// Every connection names itself and the certificate problem.
#[test]
fn a_server_certificate_from_another_ca_fails_each_connection() {
    let dep = Deployment::new_s3().with_tls();
    let other = TestCa::new("another-ca");
    let other_ca = other.ca_file().display().to_string();
    let db_url = dep
        .env()
        .into_iter()
        .find(|(k, _)| k == "RSTUF_DB_SERVER")
        .unwrap()
        .1
        .replace(&tls(&dep).ca.ca_file().display().to_string(), &other_ca);
    let (ok, report) = dep.check(&[("SSL_CERT_FILE", other_ca), ("RSTUF_DB_SERVER", db_url)]);
    assert!(!ok, "{report}");
    for service in [
        "broker",
        "redis results",
        "redis settings",
        "postgresql",
        "storage",
    ] {
        let text = line(&report, service);
        assert!(text.contains("FAILED"), "{text}");
        assert!(
            text.contains("invalid peer certificate: UnknownIssuer"),
            "{service} does not name the certificate problem: {text}"
        );
    }
    assert!(line(&report, "broker").contains("amqps://"), "{report}");
    // The connections this worker makes itself also say what to do.
    for service in ["broker", "postgresql"] {
        let text = line(&report, service);
        assert!(
            text.contains("signed by a trusted CA (SSL_CERT_FILE"),
            "{text}"
        );
    }
    dep.assert_no_plaintext_attempt();
}

#[test]
fn the_redis_broker_refuses_a_server_certificate_from_another_ca() {
    let dep = Deployment::new_redis_broker().with_tls();
    let other = TestCa::new("another-ca");
    let (ok, report) = dep.check(&[("SSL_CERT_FILE", other.ca_file().display().to_string())]);
    assert!(!ok, "{report}");
    let text = line(&report, "broker");
    assert!(
        text.contains("rediss://") && text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
    dep.assert_no_plaintext_attempt();
}

/// A real `redis-server` of the test's own, TLS only, with the test CA's
/// server certificate: what the redis crate's rustls client meets in
/// production (OpenSSL on the server side).
struct TlsRedis {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl TlsRedis {
    fn start(ca: &TestCa) -> TlsRedis {
        let dir = TempDir::new("rstuf-tls-redis");
        let port = common::free_port();
        let (cert, key) = ca.server_files();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(ca.ca_file())
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        let redis = TlsRedis {
            child,
            port,
            _dir: dir,
        };
        common::wait_for_port(port, Duration::from_secs(30));
        redis
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_tls_only_redis_server_is_reached_with_the_trusted_ca_only() {
    let ca = TestCa::new("rstuf-test-ca");
    let redis = TlsRedis::start(&ca);
    let dep = Deployment::new();
    let url = format!("rediss://localhost:{}/0", redis.port);
    let trusted = [
        ("RSTUF_REDIS_SERVER", url.clone()),
        ("SSL_CERT_FILE", ca.ca_file().display().to_string()),
    ];
    let (ok, report) = dep.check(&trusted);
    assert!(ok, "{report}");

    let other = TestCa::new("another-ca");
    let untrusted = [
        ("RSTUF_REDIS_SERVER", url),
        ("SSL_CERT_FILE", other.ca_file().display().to_string()),
    ];
    let (ok, report) = dep.check(&untrusted);
    assert!(!ok, "{report}");
    for service in ["redis results", "redis settings"] {
        let text = line(&report, service);
        assert!(
            text.contains("FAILED") && text.contains("UnknownIssuer"),
            "{text}"
        );
    }
}

/// `verify-ca` (and `require`) accept a certificate for another host name
/// but still only from a trusted CA; `verify-full` wants the name too.
#[test]
fn postgresql_sslmodes_check_the_chain_and_verify_full_the_host_name() {
    let ca = TestCa::for_names("rstuf-test-ca", "DNS:db.elsewhere.example");
    let front = TlsFront::to(5432, Protocol::Postgres, &ca);
    let dep = Deployment::new();
    let postgres = |mode: &str, root: &TestCa| {
        let url = format!(
            "postgresql://postgres@127.0.0.1:{}/{}?sslmode={mode}&sslrootcert={}",
            front.port,
            dep.db.name,
            root.ca_file().display()
        );
        let (_, report) = dep.check(&[("RSTUF_DB_SERVER", url)]);
        line(&report, "postgresql").to_owned()
    };
    for mode in ["verify-ca", "require"] {
        let text = postgres(mode, &ca);
        assert!(text.starts_with("postgresql: ok"), "{mode}: {text}");
    }
    let text = postgres("verify-full", &ca);
    assert!(
        text.contains("FAILED") && text.contains("certificate not valid for name \"127.0.0.1\""),
        "{text}"
    );
    let other = TestCa::new("another-ca");
    for mode in ["verify-ca", "require"] {
        let text = postgres(mode, &other);
        assert!(
            text.contains("FAILED") && text.contains("UnknownIssuer"),
            "{mode}: {text}"
        );
    }
    assert_eq!(front.plaintext_attempts(), 0);
}

/// `rstuf-worker migrate` (the schema, over TLS) with `RSTUF_DB_SERVER`:
/// (exit 0, stderr).
fn migrate(dep: &Deployment, db_server: String, extra: &[(&str, String)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rstuf-worker"))
        .arg("migrate")
        .env_clear()
        .envs(dep.env())
        .env("RSTUF_DB_SERVER", db_server)
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_tls_only_postgresql_server_gets_the_schema_with_the_trusted_ca_only() {
    let ca = TestCa::new("rstuf-test-ca");
    let pg = PrivatePostgres::start(Some(&ca));
    let dep = Deployment::new();
    let server = format!("postgresql://postgres@localhost:{}/postgres", pg.port);
    let root = |ca: &TestCa| ca.ca_file().display().to_string();

    let (ok, log) = migrate(
        &dep,
        format!("{server}?sslmode=verify-full&sslrootcert={}", root(&ca)),
        &[],
    );
    assert!(ok, "{log}");
    // libpq's variables, as upstream's deployments set them.
    let (ok, log) = migrate(
        &dep,
        server.clone(),
        &[
            ("PGSSLMODE", "verify-full".into()),
            ("PGSSLROOTCERT", root(&ca)),
        ],
    );
    assert!(ok, "{log}");

    let other = TestCa::new("another-ca");
    let (ok, log) = migrate(
        &dep,
        format!("{server}?sslmode=verify-full"),
        &[("SSL_CERT_FILE", root(&other))],
    );
    assert!(!ok, "{log}");
    assert!(
        log.contains("PostgreSQL") && log.contains("invalid peer certificate: UnknownIssuer"),
        "{log}"
    );
    // Without TLS the server turns the worker away: TLS was really in use.
    let (ok, log) = migrate(&dep, server, &[]);
    assert!(!ok && log.contains("no encryption"), "{log}");
}

/// Over amqps the worker's consumers and its quarantine (the bare AMQP
/// connection that rejects messages amiquip cannot parse) both speak TLS
/// to RabbitMQ's own TLS listener.
#[test]
fn over_amqps_an_unparsable_message_is_rejected_and_tasks_still_run() {
    const POISON: &str = r#"
import sys, amqp
c = amqp.Connection("127.0.0.1:" + sys.argv[1], userid="guest", password="guest")
c.connect()
ch = c.channel()
ch.basic_publish(amqp.Message(b"poison", content_type=b"\xff\xfe", application_headers={"id": "poison"}),
                 exchange="", routing_key=sys.argv[2])
c.close()
"#;
    let dep = Deployment::new().with_tls_rabbitmq_node();
    // Many consumers: the poison kills them in turn before one sweep takes it.
    let worker = dep.start_worker_with_threads(8, &[]);
    let node = tls(&dep).rabbitmq_node.as_ref().unwrap();
    common::run_ok(Command::new(common::python()).args([
        "-c",
        POISON,
        &node.plain_port.to_string(),
        &dep.queue,
    ]));
    let id = dep.send_action("no_such_action", serde_json::json!({}));
    dep.wait_for_final(&id, Duration::from_secs(60));
    worker.wait_for_log("rejected delivery", Duration::from_secs(30));
}
