//! `rstuf-worker`: wires configuration, services and the broker pool
//! together. Everything with behaviour lives in the library.
use std::num::{NonZeroU16, NonZeroUsize};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use log::{error, info};

use rstuf_worker::backend::{BackendConfig, ResultBackend};
use rstuf_worker::broker::{self, BrokerConfig, QueueName, Shutdown};
use rstuf_worker::config::{self, Config, Env, Overrides, StorageConfig};
use rstuf_worker::db::Db;
use rstuf_worker::health::{self, Heartbeat, Probe};
use rstuf_worker::lock::schedule::{self, SlotClaimer};
use rstuf_worker::lock::{LockClient, LockConfig, LockKey};
use rstuf_worker::settings::{SettingsConfig, SettingsStore};
use rstuf_worker::storage::{AwsS3, LocalStorage, Storage};
use rstuf_worker::tasks::context::online_key_of;
use rstuf_worker::tasks::Context;
use rstuf_worker::tuf::metadata::Root;
use rstuf_worker::tuf::{Metadata, RoleName};
use rstuf_worker::worker::Worker;
use rstuf_worker::{beat, kms, metrics, tasks};

const USAGE: &str = "\
rstuf-worker: Repository Service for TUF worker

usage: rstuf-worker [run|migrate|check|health] [--threads N] [--queues Q1,Q2]
       rstuf-worker --version | --help

  run       consume RSTUF tasks (default); applies database migrations first
  migrate   create or check the database schema, then exit
  check     check configuration and every service, one line each; exit 1 on failure
  health    exit 0 only if the worker running with this DATA_DIR is consuming
            and its services answer (reads its heartbeat; for HEALTHCHECK)

Configuration comes from upstream's RSTUF_* environment variables (README.md).";

#[derive(Debug, PartialEq)]
enum Command {
    Run,
    Migrate,
    Check,
    Health,
    Version,
    Help,
}

fn parse_args(args: &[String]) -> Result<(Command, Overrides), String> {
    let mut command = Command::Run;
    let mut overrides = Overrides::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "run" => command = Command::Run,
            "migrate" => command = Command::Migrate,
            "check" => command = Command::Check,
            "health" => command = Command::Health,
            "--version" | "-V" => command = Command::Version,
            "--help" | "-h" => command = Command::Help,
            "--threads" => {
                let value = rest.next().ok_or("--threads needs a number")?;
                let n = value
                    .parse()
                    .map_err(|_| format!("--threads {value:?} is not a number"))?;
                overrides.threads = Some(n);
            }
            "--queues" => {
                let value = rest.next().ok_or("--queues needs a comma-separated list")?;
                overrides.queues = Some(value.split(',').map(|q| q.trim().to_owned()).collect());
            }
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    Ok((command, overrides))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, overrides) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("rstuf-worker: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Version => {
            println!("rstuf-worker {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let lookup = |name: &str| std::env::var(name).ok();
    if command == Command::Health {
        return health(&config::data_dir(&Env::new(&lookup)));
    }
    let config = match Config::from_env(&Env::new(&lookup), &overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("rstuf-worker: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Run => run(&config),
        Command::Migrate => migrate(&config),
        _ => check(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn health(data_dir: &std::path::Path) -> ExitCode {
    match health::check(data_dir) {
        Ok(summary) => {
            println!("healthy: {summary}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            println!("unhealthy: {problem}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(config: &Config) -> Result<(), String> {
    let db = Db::connect(&config.db).map_err(|e| e.to_string())?;
    let report = db.migrate().map_err(|e| e.to_string())?;
    info!(
        "database {} at revision {} (applied now: {:?})",
        config.db.server_label(),
        report.revision,
        report.applied
    );
    Ok(())
}

fn open_storage(config: &StorageConfig) -> Result<Box<dyn Storage>, String> {
    match config {
        StorageConfig::Local(local) => Ok(Box::new(
            LocalStorage::open(local).map_err(|e| e.to_string())?,
        )),
        StorageConfig::S3(s3) => Ok(Box::new(AwsS3::connect(s3).map_err(|e| e.to_string())?)),
    }
}

/// The services the actions use.
fn context(config: &Config) -> Result<Context, String> {
    let settings = SettingsStore::connect(&SettingsConfig::new(
        config.redis.url(config.redis.db_settings),
    ))
    .map_err(|e| e.to_string())?;
    let db = Db::connect(&config.db).map_err(|e| e.to_string())?;
    Ok(Context::new(
        settings,
        db,
        open_storage(&config.storage)?,
        lock_client(config)?,
        config.lock_timeout,
        config.signers.clone(),
    ))
}

fn lock_client(config: &Config) -> Result<LockClient, String> {
    LockClient::new(&LockConfig {
        url: config.redis.url(config.redis.db_lock),
    })
    .map_err(|e| e.to_string())
}

fn broker_config(config: &Config) -> Result<BrokerConfig, String> {
    let queues = config
        .queues
        .iter()
        .map(|q| QueueName::new(q).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut broker = BrokerConfig::new(config.broker.clone());
    broker.visibility_timeout = config.broker_visibility_timeout;
    broker.queues = queues;
    broker.threads = NonZeroUsize::new(config.threads).ok_or("--threads must be at least 1")?;
    // One message per consumer: a thread busy with a long task does not
    // hold back messages other threads could run now.
    broker.prefetch = NonZeroU16::MIN;
    Ok(broker)
}

fn run(config: &Config) -> Result<(), String> {
    let shutdown = Shutdown::new();
    shutdown
        .install_signal_handlers()
        .map_err(|e| e.to_string())?;
    let broker = broker_config(config)?;
    migrate(config)?;
    let backend = ResultBackend::new(&BackendConfig::new(
        config.redis.url(config.redis.db_result),
    ))
    .map_err(|e| e.to_string())?;
    let ctx = Arc::new(context(config)?);
    if let Some(addr) = config.metrics_addr {
        metrics::http::serve(addr)
            .map_err(|e| format!("RSTUF_METRICS_ADDR: cannot serve metrics on {addr}: {e}"))?;
    }
    let _heartbeat = heartbeat(config, &ctx)?;
    tasks::start_publisher(ctx.clone())
        .map_err(|e| format!("cannot start the publisher thread: {e}"))?;
    let worker = Worker::new(
        ctx.clone(),
        config.bump_ttl,
        backend,
        &config.worker_id,
        config.task_time_limit,
    );
    if config
        .queues
        .iter()
        .any(|q| q == QueueName::RSTUF_INTERNALS)
    {
        start_beat(config, &shutdown, ctx)?;
    }
    info!(
        "rstuf-worker {} consuming {:?} with {} threads per queue",
        env!("CARGO_PKG_VERSION"),
        config.queues,
        config.threads
    );
    consume_each_queue_apart(&broker, &shutdown, &worker)?;
    info!("stopped");
    Ok(())
}

/// One consumer pool per queue. A task waiting for a publication (an
/// add_artifacts with `publish_artifacts: false`) holds its thread, and a
/// thread's consumer of another queue keeps what it prefetched: with both
/// queues on one thread, the publish_artifacts that would end the wait
/// could sit behind the wait forever.
fn consume_each_queue_apart(
    broker: &BrokerConfig,
    shutdown: &Shutdown,
    worker: &Worker,
) -> Result<(), String> {
    let pools: Vec<BrokerConfig> = broker
        .queues
        .iter()
        .map(|queue| BrokerConfig {
            queues: vec![queue.clone()],
            ..broker.clone()
        })
        .collect();
    std::thread::scope(|scope| {
        let running: Vec<_> = pools
            .iter()
            .map(|pool| {
                scope.spawn(move || {
                    let ended = broker::run(pool, shutdown, |delivery| worker.handle(delivery));
                    // One pool failing to start stops the others too.
                    shutdown.request();
                    ended.map_err(|e| e.to_string())
                })
            })
            .collect();
        running
            .into_iter()
            .map(|pool| {
                pool.join()
                    .unwrap_or_else(|_| Err("a consumer pool crashed".into()))
            })
            .collect::<Result<Vec<()>, String>>()
    })?;
    Ok(())
}

/// The heartbeat `health` reads: every consumer of every queue, and a round
/// trip to the result backend and PostgreSQL.
fn heartbeat(config: &Config, ctx: &Context) -> Result<Heartbeat, String> {
    let backend = ResultBackend::new(&BackendConfig::new(
        config.redis.url(config.redis.db_result),
    ))
    .map_err(|e| e.to_string())?;
    let db = ctx.db.clone();
    let probes: Vec<(&'static str, Probe)> = vec![
        (
            "redis",
            Box::new(move || backend.ping().map_err(|e| e.to_string())),
        ),
        (
            "postgresql",
            Box::new(move || db.ping().map_err(|e| e.to_string())),
        ),
    ];
    health::spawn(
        &config.data_dir,
        &config.queues,
        config.threads * config.queues.len(),
        metrics::consumers,
        probes,
    )
    .map_err(|e| format!("cannot start the heartbeat thread: {e}"))
}

/// The periodic bump; like upstream's beat it lives with `rstuf_internals`.
fn start_beat(config: &Config, shutdown: &Shutdown, ctx: Arc<Context>) -> Result<(), String> {
    let locks = LockClient::new(&LockConfig {
        url: config.redis.url(config.redis.db_lock),
    })
    .map_err(|e| e.to_string())?;
    let claimer = SlotClaimer::new(
        &locks,
        LockKey::new(schedule::BUMP_ONLINE_ROLES_CLAIM),
        &config.worker_id,
        schedule::DEFAULT_CLAIM_TTL,
    )
    .map_err(|e| e.to_string())?;
    let bor_ttl = config.bump_ttl;
    beat::spawn(
        claimer,
        shutdown.clone(),
        move || match tasks::bump_online_roles(&ctx, bor_ttl, true) {
            Ok(roles) => info!("periodic bump: bumped {roles:?}"),
            Err(failure) => error!("periodic bump failed: {}", failure.exc_message.join("; ")),
        },
    )
    .map_err(|e| format!("cannot start the periodic bump thread: {e}"))?;
    Ok(())
}

/// One line per component; any failure makes the exit code non-zero.
fn check(config: &Config) -> Result<(), String> {
    let mut failed = 0;
    let mut report = |component: &str, result: Result<String, String>| match result {
        Ok(detail) => println!("{component}: ok ({detail})"),
        Err(e) => {
            failed += 1;
            println!("{component}: FAILED: {e}");
        }
    };
    report(
        "config",
        Ok(format!(
            "{} threads, queues {:?}",
            config.threads, config.queues
        )),
    );
    report(
        "broker",
        broker_config(config).and_then(|b| {
            broker::check(&b.url, Duration::from_secs(5)).map_err(|e| e.to_string())?;
            Ok(b.url.to_string())
        }),
    );
    report(
        "redis results",
        ResultBackend::new(&BackendConfig::new(
            config.redis.url(config.redis.db_result),
        ))
        .and_then(|b| b.ping())
        .map(|()| format!("db {}", config.redis.db_result))
        .map_err(|e| e.to_string()),
    );
    report(
        "redis settings",
        SettingsStore::connect(&SettingsConfig::new(
            config.redis.url(config.redis.db_settings),
        ))
        .and_then(|mut store| store.bootstrap_state())
        .map(|state| format!("db {}, bootstrap {state:?}", config.redis.db_settings))
        .map_err(|e| e.to_string()),
    );
    report(
        "postgresql",
        Db::connect(&config.db)
            .map(|_| config.db.server_label())
            .map_err(|e| e.to_string()),
    );
    report(
        "storage",
        open_storage(&config.storage).map(|_| format!("{:?}", config.storage)),
    );
    report("online signer", check_online_signer(config));
    if failed > 0 {
        return Err(format!("{failed} check(s) failed"));
    }
    Ok(())
}

/// The signer of the online key that root in storage names: reachable,
/// root's key, and signing.
fn check_online_signer(config: &Config) -> Result<String, String> {
    let storage = open_storage(&config.storage)?;
    let root = RoleName::new("root").map_err(|e| e.to_string())?;
    let Some((_, bytes)) = storage.get_latest(&root).map_err(|e| e.to_string())? else {
        return Ok("no root in storage yet (the repository is not bootstrapped)".into());
    };
    let root = Metadata::<Root>::from_file_bytes(&bytes).map_err(|e| e.to_string())?;
    let (keyid, key) = online_key_of(&root.signed).map_err(|e| e.to_string())?;
    kms::probe(&config.signers, &keyid, &key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn subcommands_and_options() {
        let (cmd, o) = parse_args(&args(&["check", "--threads", "3"])).unwrap();
        assert_eq!((cmd, o.threads), (Command::Check, Some(3)));
        let (cmd, o) = parse_args(&args(&["--queues", "rstuf_internals"])).unwrap();
        assert_eq!(cmd, Command::Run);
        assert_eq!(o.queues, Some(vec!["rstuf_internals".to_owned()]));
        assert!(parse_args(&args(&["--threads"])).is_err());
        assert!(parse_args(&args(&["--threads", "x"]))
            .unwrap_err()
            .contains("\"x\""));
        assert!(parse_args(&args(&["serve"])).unwrap_err().contains("serve"));
    }
}
