//! Every action against a real worker, checked row by row against the
//! result tables of upstream's worker (shared/spec/task-results.md): the
//! exact `message`, `error` and `details`, and the side effects.
mod actions_support;
mod common;

use actions_support::{assert_result, payload_vector};
use common::services::Deployment;
use serde_json::{json, Value};

#[test]
fn update_settings_every_row() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    dep.set_settings(&[
        ("TIMESTAMP_EXPIRATION", "@int 1"),
        ("SNAPSHOT_EXPIRATION", "@int 1"),
        ("BINS_EXPIRATION", "@int 1"),
    ]);
    let failed = "Update Settings Failed";
    let r = dep.run_action("update_settings", json!({}));
    assert_result(
        &r,
        "update_settings",
        failed,
        json!("No 'settings' in the payload"),
        Value::Null,
    );
    let r = dep.run_action("update_settings", json!({"settings": {}}));
    assert_result(
        &r,
        "update_settings",
        failed,
        json!("No 'expiration' in the payload"),
        Value::Null,
    );
    let r = dep.run_action("update_settings", json!({"settings": {"expiration": {}}}));
    assert_result(
        &r,
        "update_settings",
        failed,
        json!("No role provided for expiration policy change"),
        Value::Null,
    );

    // The API's payload: roles echo in the order sent; unknown ones are invalid.
    let r = dep.run_action("update_settings", payload_vector("update_settings"));
    assert_result(
        &r,
        "update_settings",
        "Update Settings Succeded",
        Value::Null,
        json!({"updated_roles": ["timestamp", "snapshot", "bins"], "invalid_roles": ["nosuchrole"]}),
    );
    assert_eq!(
        dep.setting("TIMESTAMP_EXPIRATION").as_deref(),
        Some("@int 2")
    );
    assert_eq!(
        dep.setting("SNAPSHOT_EXPIRATION").as_deref(),
        Some("@int 3")
    );
    assert_eq!(dep.setting("BINS_EXPIRATION").as_deref(), Some("@int 4"));
    assert_eq!(dep.setting("NOSUCHROLE_EXPIRATION"), None);
}

#[test]
fn a_payload_of_the_wrong_shape_fails_naming_the_field() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    let id = dep.send_action(
        "update_settings",
        json!({"settings": {"expiration": {"timestamp": "soon"}}}),
    );
    let record = dep.wait_for_final(&id, std::time::Duration::from_secs(30));
    assert_eq!(record["status"], "FAILURE");
    assert_eq!(
        record["result"]["exc_message"][0],
        "payload field 'settings.expiration.timestamp': must be a whole number of days"
    );
}
