//! A RabbitMQ virtual host of a test's own, so it can cut its workers off
//! the broker (`rabbitmqctl`) without touching other tests' connections.
use std::process::Command;

use super::unique;

pub fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
