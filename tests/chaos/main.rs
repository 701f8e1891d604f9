//! `make chaos`: every fault scenario once, as a table in CHAOS.md (fault,
//! count, tasks, lost, inconsistent, recovered without restart). Not part
//! of `make test`: it runs for minutes, needs root (tmpfs mounts) and
//! strace, and kills worker processes and service connections.
//!
//! `RSTUF_CHAOS_ONLY=<text>` runs the scenarios whose fault names contain
//! it; `RSTUF_CHAOS_SEED=<n>` repeats a run's random kill points.
#[path = "../common/mod.rs"]
mod common;
mod scenarios;

use std::fmt::Write as _;
use std::time::Instant;

use common::chaos::Row;
use common::command_output;
use common::faults;
use common::load::Rng;
use scenarios::Service;

/// A scenario by the name RSTUF_CHAOS_ONLY matches.
type Scenario = (&'static str, Box<dyn FnOnce(&mut Rng) -> Row>);

fn scenarios() -> Vec<Scenario> {
    vec![
        (
            "kill -9",
            Box::new(|rng| scenarios::kill_workers(10, 1000, rng)),
        ),
        (
            "postgres connections",
            Box::new(|rng| scenarios::cut_connections(Service::Postgres, 5, rng)),
        ),
        (
            "redis connections",
            Box::new(|rng| scenarios::cut_connections(Service::Redis, 5, rng)),
        ),
        (
            "rabbitmq connections",
            Box::new(|rng| scenarios::cut_connections(Service::RabbitMq, 5, rng)),
        ),
        (
            "postgres restart",
            Box::new(|rng| scenarios::restart_service(Service::Postgres, 3, rng)),
        ),
        (
            "redis restart",
            Box::new(|rng| scenarios::restart_service(Service::Redis, 3, rng)),
        ),
        (
            "rabbitmq restart",
            Box::new(|rng| scenarios::restart_service(Service::RabbitMq, 3, rng)),
        ),
        ("lock expiry", Box::new(|_| common::stale::lock_expiry(10))),
        ("disk full", Box::new(|_| faults::disk_full(3))),
        ("read-only", Box::new(|_| faults::read_only(3))),
        ("s3 down", Box::new(|_| faults::s3_down(3))),
        ("s3 hang", Box::new(|_| faults::s3_hang(2))),
    ]
}

fn main() {
    let only = std::env::var("RSTUF_CHAOS_ONLY").unwrap_or_default();
    let (mut rng, seed) = Rng::from_env();
    let started = Instant::now();
    let mut rows = Vec::new();
    for (name, run) in scenarios() {
        if !name.contains(only.as_str()) {
            continue;
        }
        let began = Instant::now();
        eprintln!("chaos: {name} ...");
        let row = run(&mut rng);
        eprintln!("{}\n  ({:.0?})", row.markdown(), began.elapsed());
        rows.push(row);
    }
    let report = report(&rows, seed, &only, started.elapsed().as_secs());
    println!("{report}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("CHAOS.md");
    std::fs::write(&path, &report).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let failed = rows.iter().any(|r| r.lost > 0 || r.inconsistent > 0);
    std::process::exit(i32::from(failed));
}

fn report(rows: &[Row], seed: u64, only: &str, seconds: u64) -> String {
    let mut text = String::from("# Fault injection (`make chaos`)\n\n");
    let _ = writeln!(
        text,
        "- date: {}",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(
        text,
        "- machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        text,
        "- commit: {}",
        command_output("git", &["rev-parse", "--short", "HEAD"])
    );
    let _ = writeln!(text, "- seed: {seed} (RSTUF_CHAOS_SEED)");
    if !only.is_empty() {
        let _ = writeln!(text, "- subset: RSTUF_CHAOS_ONLY={only}");
    }
    let _ = writeln!(text, "- total duration: {seconds} s\n");
    let _ = writeln!(text, "{}", Row::header());
    for row in rows {
        let _ = writeln!(text, "{}", row.markdown());
    }
    text
}
