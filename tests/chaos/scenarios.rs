//! The scenarios only `make chaos` runs: worker processes killed with
//! SIGKILL under load, and the worker's connections to PostgreSQL, Redis
//! and RabbitMQ cut under load. (Lock expiry and storage faults live in
//! tests/common, shared with the behaviour tests.)
use std::process::Command;
use std::time::Duration;

use crate::common::chaos::Row;
use crate::common::fixtures::install_bins_after_bootstrap;
use crate::common::load::{client_view, Load, Rng, Watcher};
use crate::common::private::{PrivatePostgres, PrivateRedis};
use crate::common::rabbitmq::TlsNode;
use crate::common::services::{Deployment, WorkerProcess};
use crate::common::services::{RedisDb, TestDb};
use crate::common::stale::count;
use crate::common::tls::TestCa;

/// `tasks` additions and removals across two worker processes, one of
/// which is killed with SIGKILL `kills` times at random points and started
/// again; the client verifies the repository after every kill. Every task
/// must end SUCCESS (a FAILURE counts as lost here: no fault excuses it).
pub fn kill_workers(kills: u32, tasks: usize, rng: &mut Rng) -> Row {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let mut workers = vec![dep.start_worker(&[]), dep.start_worker(&[])];
    let watcher = Watcher::start(dep.storage.path());
    let mut load = Load::new(&dep, "killed");
    let mut inconsistent = Vec::new();
    let batch = tasks / (kills as usize + 1);
    for _ in 0..kills {
        load.add(batch * 4 / 5);
        load.remove_some(batch / 5);
        std::thread::sleep(Duration::from_millis(rng.below(2000)));
        let victim = workers.swap_remove(rng.below(2) as usize);
        victim.signal_and_wait("KILL");
        if let Err(output) = client_view(dep.storage.path(), &[]) {
            inconsistent.push(format!("after a kill the client cannot refresh: {output}"));
        }
        workers.push(dep.start_worker(&[]));
    }
    load.add(batch);
    let mut judged = load.judge();
    judged.inconsistent.extend(inconsistent);
    judged.inconsistent.extend(watcher.finish());
    judged.report();
    Row {
        fault: "kill -9 of one of 2 worker processes under load (killed one restarted)".into(),
        count: kills,
        tasks: load.tasks(),
        lost: count(&judged.lost) + count(&judged.failed),
        inconsistent: count(&judged.inconsistent),
        recovered_without_restart: judged.failed.is_empty(),
    }
}

/// A service the worker keeps connections to, and how to cut them.
#[derive(Debug, Clone, Copy)]
pub enum Service {
    Postgres,
    Redis,
    RabbitMq,
}

impl Service {
    fn port(self) -> u16 {
        match self {
            Service::Postgres => 5432,
            Service::Redis => 6379,
            Service::RabbitMq => 5672,
        }
    }

    fn how(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL connections terminated (pg_terminate_backend)",
            Service::Redis => "Redis connections killed (CLIENT KILL)",
            Service::RabbitMq => "RabbitMQ connections closed (rabbitmqctl close_connection)",
        }
    }

    /// Cuts every connection `worker` has to the service; how many.
    fn cut(self, dep: &Deployment, worker: &WorkerProcess) -> u32 {
        let ports = client_ports(worker.pid(), self.port());
        for port in &ports {
            match self {
                Service::Postgres => {
                    dep.sql()
                        .execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE client_port = $1",
                            &[&i32::from(*port)],
                        )
                        .unwrap();
                }
                Service::Redis => {
                    let _: redis::RedisResult<()> = redis::cmd("CLIENT")
                        .arg("KILL")
                        .arg("ADDR")
                        .arg(format!("127.0.0.1:{port}"))
                        .query(&mut dep.redis());
                }
                Service::RabbitMq => {
                    let _ = Command::new("rabbitmqctl")
                        .arg("close_connection")
                        .arg(format!("127.0.0.1:{port} -> 127.0.0.1:5672"))
                        .arg("chaos: connection closed by make chaos")
                        .output();
                }
            }
        }
        u32::try_from(ports.len()).unwrap_or(u32::MAX)
    }
}

/// Local ports of `pid`'s established TCP connections to 127.0.0.1:`port`:
/// only this worker's connections are cut, never other tests'.
fn client_ports(pid: u32, port: u16) -> Vec<u16> {
    let out = Command::new("ss")
        .args(["-Htnp", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output()
        .expect("ss runs");
    let owner = format!("pid={pid},");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.contains(&owner))
        .filter_map(|line| {
            line.split_whitespace()
                .nth(2)?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// `rounds` times: twenty additions in flight, then every connection of
/// the worker to `service` cut at a random point. Tasks in flight may end
/// FAILURE; none may hang, and the last addition, sent after the last
/// cut, must succeed on the same worker.
pub fn cut_connections(service: Service, rounds: u32, rng: &mut Rng) -> Row {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let worker = dep.start_worker(&[]);
    let watcher = Watcher::start(dep.storage.path());
    let mut load = Load::new(&dep, "cut");
    let mut cuts = 0;
    for _ in 0..rounds {
        load.add(20);
        std::thread::sleep(Duration::from_millis(rng.below(1500)));
        cuts += service.cut(&dep, &worker);
    }
    std::thread::sleep(Duration::from_secs(1));
    load.add(1);
    let mut judged = load.judge();
    judged.inconsistent.extend(watcher.finish());
    judged.report();
    Row {
        fault: service.how().into(),
        count: cuts,
        tasks: load.tasks(),
        lost: count(&judged.lost),
        inconsistent: count(&judged.inconsistent),
        recovered_without_restart: !load.last_failed(),
    }
}

/// How long a restarted service stays down.
const DOWN: Duration = Duration::from_secs(2);

/// A server of the scenario's own, which it restarts.
enum Private {
    Postgres(PrivatePostgres),
    Redis(PrivateRedis),
    /// The node, and the CA whose files its TLS listener reads.
    RabbitMq {
        node: TlsNode,
        _ca: TestCa,
    },
}

impl Private {
    /// Starts one for `service` and points `dep` at it.
    fn start(service: Service, dep: &mut Deployment) -> Private {
        match service {
            Service::Postgres => {
                let pg = PrivatePostgres::start(None);
                dep.db = TestDb::on(pg.port);
                Private::Postgres(pg)
            }
            Service::Redis => {
                let redis = PrivateRedis::start();
                dep.redis = RedisDb::private(redis.port);
                Private::Redis(redis)
            }
            Service::RabbitMq => {
                let ca = TestCa::new("rstuf-chaos-ca");
                let node = TlsNode::start(&ca);
                dep.private_broker = Some(node.plain_url());
                Private::RabbitMq { node, _ca: ca }
            }
        }
    }

    fn restart(&mut self) {
        match self {
            Private::Postgres(pg) => pg.restart(DOWN),
            Private::Redis(redis) => redis.restart(DOWN),
            Private::RabbitMq { node, .. } => node.restart(DOWN),
        }
    }
}

/// `restarts` times: twenty additions in flight, then the service the
/// worker uses (a private instance) restarted at a random point, down for
/// [`DOWN`]. Judged as [`cut_connections`].
pub fn restart_service(service: Service, restarts: u32, rng: &mut Rng) -> Row {
    let mut dep = Deployment::new();
    let mut server = Private::start(service, &mut dep);
    install_bins_after_bootstrap(&dep);
    let worker = dep.start_worker(&[]);
    let watcher = Watcher::start(dep.storage.path());
    let mut load = Load::new(&dep, "restart");
    for _ in 0..restarts {
        load.add(20);
        std::thread::sleep(Duration::from_millis(rng.below(1500)));
        server.restart();
    }
    std::thread::sleep(Duration::from_secs(1));
    load.add(1);
    let mut judged = load.judge();
    judged.inconsistent.extend(watcher.finish());
    judged.report();
    let name = match service {
        Service::Postgres => "PostgreSQL",
        Service::Redis => "Redis",
        Service::RabbitMq => "RabbitMQ",
    };
    let row = Row {
        fault: format!(
            "{name} restarted (private instance, down {} s)",
            DOWN.as_secs()
        ),
        count: restarts,
        tasks: load.tasks(),
        lost: count(&judged.lost),
        inconsistent: count(&judged.inconsistent),
        recovered_without_restart: !load.last_failed(),
    };
    drop(worker);
    drop(dep);
    drop(server);
    row
}
