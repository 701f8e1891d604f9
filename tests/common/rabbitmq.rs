//! A RabbitMQ virtual host of a test's own, so it can cut its workers off
//! the broker (`rabbitmqctl`) without touching other tests' connections.
use std::process::Command;

use super::unique;

pub fn rabbitmqctl(args: &[&str]) {
    super::run_ok(Command::new("rabbitmqctl").args(args));
}

/// Deleted on drop.
pub struct Vhost(String);

impl Vhost {
    pub fn new() -> Vhost {
        let vhost = Vhost(unique("rstuf_vhost"));
        vhost.create();
        vhost
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `RSTUF_BROKER_SERVER` for this vhost.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.0)
    }

    /// (Re)creates the vhost with guest's permissions.
    pub fn create(&self) {
        rabbitmqctl(&["add_vhost", &self.0]);
        rabbitmqctl(&["set_permissions", "-p", &self.0, "guest", ".*", ".*", ".*"]);
    }

    /// Deletes it: its connections are closed and reconnects are refused.
    pub fn delete(&self) {
        rabbitmqctl(&["delete_vhost", &self.0]);
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.0])
            .output();
    }
}

/// A second RabbitMQ node of the test's own (its own node name, ports,
/// database and logs in a temporary directory, sharing epmd and the
/// Erlang cookie with the shared node, which it leaves alone): TLS with
/// the test CA's server certificate on one port, plaintext on another for
/// the test's own publishing. Shut down on drop.
pub struct TlsNode {
    name: String,
    server: std::process::Child,
    pub tls_port: u16,
    pub plain_port: u16,
    _dir: super::TempDir,
}

impl TlsNode {
    pub fn start(ca: &super::tls::TestCa) -> TlsNode {
        let dir = super::TempDir::new("rstuf-rabbit");
        let (tls_port, plain_port) = (super::free_port(), super::free_port());
        let (cert, key) = ca.server_files();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(
            path("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{plain_port}\n\
                 listeners.ssl.default = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {}\nssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\nssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                ca.ca_file().display(),
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        // No plugins: the shared node's management port stays its own.
        std::fs::write(path("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(path("env.conf"), "ERL_EPMD_ADDRESS=127.0.0.1\n").unwrap();
        // The node runs as user rabbitmq: it must read the key and write here.
        for target in [dir.path(), ca.ca_file().parent().unwrap()] {
            let status = Command::new("chmod")
                .args(["-R", "a+rwX"])
                .arg(target)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let name = format!("{}@localhost", unique("rstuf_tls"));
        let server = Command::new("rabbitmq-server")
            .env("RABBITMQ_NODENAME", &name)
            .env("RABBITMQ_DIST_PORT", super::free_port().to_string())
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_CONF_ENV_FILE", path("env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rabbitmq-server runs");
        let node = TlsNode {
            name,
            server,
            tls_port,
            plain_port,
            _dir: dir,
        };
        // Booting a node takes seconds; its listeners open last.
        super::wait_for_port(node.tls_port, std::time::Duration::from_secs(120));
        super::wait_for_port(node.plain_port, std::time::Duration::from_secs(10));
        node
    }

    /// What the worker uses.
    pub fn amqps_url(&self) -> String {
        format!("amqps://guest:guest@127.0.0.1:{}//", self.tls_port)
    }

    /// What the test publishes with.
    pub fn plain_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}//", self.plain_port)
    }

    /// Stops the broker application (every connection closed, listeners
    /// gone), waits `down`, and starts it again from its data directory:
    /// durable queues and persistent messages come back.
    pub fn restart(&self, down: std::time::Duration) {
        rabbitmqctl(&["-n", &self.name, "stop_app"]);
        std::thread::sleep(down);
        rabbitmqctl(&["-n", &self.name, "start_app"]);
        super::wait_for_port(self.plain_port, std::time::Duration::from_secs(60));
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-n", &self.name, "shutdown"])
            .output();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
