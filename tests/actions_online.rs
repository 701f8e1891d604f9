//! force_online_metadata_update and the bump of online roles against a real
//! worker, starting from the repository upstream's bootstrap leaves, every
//! step checked with python-tuf's client.
mod actions_support;
mod common;

use std::time::{Duration, SystemTime};

use actions_support::assert_meta;
use common::fixtures::install_bins_after_bootstrap;
use common::services::{Deployment, WorkerProcess};
use common::unique;
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(60);
const FAILED: &str = "Force new online metadata update failed";

fn bootstrapped(extra_env: &[(&str, &str)]) -> (Deployment, WorkerProcess) {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let worker = dep.start_worker(extra_env);
    (dep, worker)
}

/// The final record's result. The API cannot show this action's results
/// (its task name is not in the API's enum), as with upstream.
fn force(dep: &Deployment, payload: Value) -> Value {
    let id = dep.send_action("force_online_metadata_update", payload);
    let record = dep.wait_for_final(&id, LONG);
    record["result"].clone()
}

fn assert_force(result: &Value, message: &str, error: Value, details: Value) {
    assert_eq!(result["task"], "force_online_metadata_update", "{result}");
    assert_eq!(result["message"], message, "{result}");
    assert_eq!(result["error"], error, "{result}");
    assert_eq!(result["status"], error.is_null(), "{result}");
    assert_eq!(result["details"], details, "{result}");
}

fn updated(roles: &[&str]) -> Value {
    json!({"updated_roles": roles})
}

/// (targets, snapshot, timestamp) versions in storage.
fn top_versions(dep: &Deployment) -> (u64, u64, u64) {
    let timestamp = dep.metadata("timestamp.json")["signed"]["version"]
        .as_u64()
        .unwrap();
    (
        dep.latest_version("targets"),
        dep.latest_version("snapshot"),
        timestamp,
    )
}

/// The snapshot version timestamp points at, and snapshot's targets entry.
fn chain(dep: &Deployment) -> (u64, u64) {
    let snapshot = dep.metadata("timestamp.json")["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let targets = dep.metadata(&format!("{snapshot}.snapshot.json"))["signed"]["meta"]
        ["targets.json"]["version"]
        .as_u64()
        .unwrap();
    (snapshot, targets)
}

#[test]
fn force_every_row() {
    let (dep, _worker) = bootstrapped(&[]);
    let refused = json!("New metadata updates requre completed bootstrap");
    for state in ["@none ", "pre-123", "signing-123"] {
        dep.set_settings(&[("BOOTSTRAP", state)]);
        let r = force(&dep, json!({"roles": ["timestamp"]}));
        assert_force(&r, FAILED, refused.clone(), Value::Null);
    }
    dep.set_settings(&[("BOOTSTRAP", common::fixtures::BOOTSTRAP_TASK)]);
    assert_eq!(top_versions(&dep), (1, 1, 1));

    let id = dep.send_action("force_online_metadata_update", json!({"role": ["x"]}));
    let record = dep.wait_for_final(&id, LONG);
    assert_eq!(record["status"], "FAILURE");
    assert_eq!(
        record["result"]["exc_message"],
        json!(["payload field 'roles': is missing"])
    );

    let done = "Force new online metadata update succeeded";
    // Nothing online asked for: nothing changes.
    for roles in [json!([]), json!(["root"])] {
        assert_force(
            &force(&dep, json!({"roles": roles})),
            done,
            Value::Null,
            updated(&[]),
        );
    }
    assert_eq!(top_versions(&dep), (1, 1, 1));

    assert_force(
        &force(&dep, json!({"roles": ["timestamp"]})),
        done,
        Value::Null,
        updated(&["timestamp"]),
    );
    assert_eq!(top_versions(&dep), (1, 1, 2));
    assert_eq!(chain(&dep), (1, 1));

    // Upstream crashes here (TypeError) after writing a snapshot.
    assert_force(
        &force(&dep, json!({"roles": ["snapshot"]})),
        done,
        Value::Null,
        updated(&["snapshot", "timestamp"]),
    );
    assert_eq!(top_versions(&dep), (1, 2, 3));
    assert_eq!(chain(&dep), (2, 1));

    // Upstream crashes here too; snapshot must list the new targets.
    assert_force(
        &force(&dep, json!({"roles": ["targets"]})),
        done,
        Value::Null,
        updated(&["snapshot", "timestamp", "targets"]),
    );
    assert_eq!(top_versions(&dep), (2, 3, 4));
    assert_eq!(chain(&dep), (3, 2));
    assert_eq!(
        dep.ngclient(&[]).refresh,
        "refresh OK: root v1, timestamp v4, snapshot v3, targets v2"
    );

    assert_force(
        &force(&dep, json!({"roles": ["bins-3", "root"]})),
        done,
        Value::Null,
        updated(&["snapshot", "timestamp", "bins-3"]),
    );
    assert_eq!(dep.latest_version("bins-3"), 2);
    assert_eq!(dep.latest_version("bins-4"), 1);
    assert_eq!(dep.role_row("bins-3").0, 2);
    assert_eq!(top_versions(&dep), (2, 4, 5));

    // An artifact waiting for publication is published by a forced bins
    // update, as upstream's rebuilds every bin from the database.
    let add = dep.send_action(
        "add_artifacts",
        json!({"artifacts": [{"path": "late.txt", "info": {"length": 1, "hashes": {"sha256": "aa"}}}],
               "publish_artifacts": false}),
    );
    // The API's payload.
    let payload: Value = serde_json::from_slice(
        &std::fs::read(common::shared(
            "vectors/payloads/force_online_metadata_update.json",
        ))
        .unwrap(),
    )
    .unwrap();
    wait_until_running(&dep, &add);
    assert_force(
        &force(&dep, payload["kwargs"]["payload"].clone()),
        done,
        Value::Null,
        updated(&["snapshot", "timestamp", "targets", "bins"]),
    );
    for bin in common::fixtures::bin_names() {
        let expected = if bin == "bins-3" { 3 } else { 2 };
        assert_eq!(dep.latest_version(&bin), expected, "{bin}");
        assert_eq!(dep.role_row(&bin).0, expected as i32, "{bin}");
    }
    assert_eq!(top_versions(&dep), (3, 5, 6));
    assert_eq!(chain(&dep), (5, 3));
    let snapshot = dep.metadata("5.snapshot.json");
    assert_meta(&snapshot, &[("bins-3.json", 3), ("bins-a.json", 2)]);
    let record = dep.wait_for_final(&add, LONG);
    assert_eq!(record["status"], "SUCCESS");
    let client = dep.ngclient(&["late.txt"]);
    assert!(client.not_found.is_empty(), "{client:?}");
}

fn wait_until_running(dep: &Deployment, id: &str) {
    common::fixtures::eventually(LONG, "RUNNING", || {
        let raw: Option<String> = redis::cmd("GET")
            .arg(format!("celery-task-meta-{id}"))
            .query(&mut dep.redis())
            .unwrap();
        raw.is_some_and(|r| r.contains("\"RUNNING\""))
    });
}

#[test]
fn force_with_a_lost_lock_reports_the_timeout() {
    let (dep, _worker) = bootstrapped(&[("RSTUF_LOCK_TIMEOUT", "0.001")]);
    let _thief = dep.steal_lock_targets();
    // Re-signing 16 bins, snapshot and timestamp outlasts the 1 ms lock
    // even before the thief strikes: the lock is gone at the commit check.
    assert_force(
        &force(&dep, json!({"roles": ["bins"]})),
        FAILED,
        json!("The task to update online roles exceeded the timeout of 0 seconds."),
        Value::Null,
    );
    assert_eq!(top_versions(&dep), (1, 1, 1));
    assert_eq!(dep.latest_version("bins-0"), 1);
}

/// `app.bump_online_roles` as celery beat sends it; its bare-list result.
fn bump(dep: &Deployment) -> Value {
    bump_with(dep, json!({"expired": true}))
}

fn bump_with(dep: &Deployment, kwargs: Value) -> Value {
    let id = unique("bump");
    dep.send(
        &dep.internals,
        &json!([{"name": "app.bump_online_roles", "id": id, "kwargs": kwargs}]),
    );
    let record = dep.wait_for_final(&id, LONG);
    assert_eq!(record["status"], "SUCCESS", "{record}");
    record["result"].clone()
}

fn set_role_expiry(dep: &Deployment, role: &str, from_now: Duration) {
    let at = SystemTime::now() + from_now;
    dep.sql()
        .execute(
            "UPDATE rstuf_target_roles SET expires = $2 WHERE rolename = $1",
            &[&role, &at],
        )
        .unwrap();
}

fn days_left(dep: &Deployment, file: &str) -> f64 {
    let expires = dep.metadata(file)["signed"]["expires"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &expires, "+%s"])
        .output()
        .unwrap();
    let at: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (at as f64 - now as f64) / 86_400.0
}

#[test]
fn bump_resigns_what_expires_soon_and_checks_timestamp_itself() {
    let (dep, _worker) = bootstrapped(&[]);
    dep.set_settings(&[
        ("BINS_EXPIRATION", "@int 30"),
        ("SNAPSHOT_EXPIRATION", "@int 30"),
    ]);
    // Everything expires in 2036: nothing to do.
    assert_eq!(bump(&dep), json!([]));
    assert_eq!(top_versions(&dep), (1, 1, 1));

    // Another bump holds BOR: skipped, and its lock is left alone.
    let mut locks = dep.redis();
    redis::cmd("SET")
        .arg("BOR")
        .arg("locked")
        .query::<()>(&mut locks)
        .unwrap();
    set_role_expiry(&dep, "bins-3", Duration::from_secs(30 * 60));
    assert_eq!(bump(&dep), json!([]));
    let bor: Option<String> = redis::cmd("GET").arg("BOR").query(&mut locks).unwrap();
    assert_eq!(bor.as_deref(), Some("locked"));
    redis::cmd("DEL")
        .arg("BOR")
        .query::<()>(&mut locks)
        .unwrap();
    // Not bootstrapped: skipped.
    dep.set_settings(&[("BOOTSTRAP", "@none ")]);
    assert_eq!(bump(&dep), json!([]));
    dep.set_settings(&[("BOOTSTRAP", common::fixtures::BOOTSTRAP_TASK)]);
    assert_eq!(top_versions(&dep), (1, 1, 1));

    // bins-3 expires within HOURS_BEFORE_EXPIRE (default 1).
    assert_eq!(bump(&dep), json!(["bins-3"]));
    assert_eq!(dep.latest_version("bins-3"), 2);
    assert_eq!(dep.latest_version("bins-4"), 1);
    assert_eq!(top_versions(&dep), (1, 2, 2));
    let (version, expires) = dep.role_row("bins-3");
    assert_eq!(version, 2);
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(29 * 86_400), "{left:?}");
    assert!((29.9..30.1).contains(&days_left(&dep, "2.bins-3.json")));
    assert!((0.9..1.1).contains(&days_left(&dep, "timestamp.json")));
    dep.ngclient(&[]);

    // Timestamp (1 day) is the only role inside 25 hours: upstream never
    // looks at it; here it is re-signed alone.
    dep.set_settings(&[("HOURS_BEFORE_EXPIRE", "@int 25")]);
    assert_eq!(bump(&dep), json!(["timestamp"]));
    assert_eq!(top_versions(&dep), (1, 2, 3));
    assert_eq!(chain(&dep), (2, 1));

    // A stored 0 reads as unset (dynaconf's get_fresh): the default hour.
    dep.set_settings(&[("HOURS_BEFORE_EXPIRE", "@int 0")]);
    assert_eq!(bump(&dep), json!([]));

    // A window past 2036: every online role.
    dep.set_settings(&[("HOURS_BEFORE_EXPIRE", "@int 175200")]);
    let mut everything: Vec<String> = common::fixtures::bin_names();
    everything.extend(["targets", "snapshot", "timestamp"].map(String::from));
    assert_eq!(bump(&dep), json!(everything));
    assert_eq!(top_versions(&dep), (2, 3, 4));
    assert_eq!(chain(&dep), (3, 2));
    assert_eq!(dep.latest_version("bins-3"), 3);
    assert_eq!(dep.latest_version("bins-a"), 2);
    assert!((364.9..365.1).contains(&days_left(&dep, "2.targets.json")));
    assert_eq!(
        dep.ngclient(&[]).refresh,
        "refresh OK: root v1, timestamp v4, snapshot v3, targets v2"
    );
}

#[test]
fn bump_without_expired_resigns_every_online_role_like_upstream() {
    let (dep, _worker) = bootstrapped(&[]);
    let mut everything: Vec<String> = common::fixtures::bin_names();
    everything.push("targets".into());
    // Upstream's default (`expired=False`): all roles, whatever their expiry.
    assert_eq!(bump_with(&dep, json!({})), json!(everything));
    assert_eq!(top_versions(&dep), (2, 2, 2));
    assert_eq!(chain(&dep), (2, 2));
    for bin in common::fixtures::bin_names() {
        assert_eq!(dep.latest_version(&bin), 2, "{bin}");
    }
    assert_eq!(
        dep.ngclient(&[]).refresh,
        "refresh OK: root v1, timestamp v2, snapshot v2, targets v2"
    );
}
