//! `remove_artifacts`: mark artifacts removed, have their roles published
//! without them, and wait until they are.
//!
//! An artifact already removed but not yet published is not written again
//! (it is reported deleted and waited for), so a redelivered task bumps no
//! version for nothing.
use std::collections::HashMap;

use serde_json::{json, Value};

use super::artifacts::{artifacts_of, list, paths, publish_requested};
use super::context::{Context, Result};
use super::result::{done, failed};
use super::waiting::{self, Awaited};
use super::{routing, Action, Request};
use crate::backend::TaskResult;
use crate::db::{ArtifactPath, FileId, TargetAction};

const FAILED: &str = "Removing artifact(s) Failed";

/// What is known of a path's row while the payload is gone through.
#[derive(Clone, Copy)]
struct Row {
    id: FileId,
    action: TargetAction,
    published: bool,
}

pub fn run(ctx: &Context, req: &Request, payload: &Value) -> Result<TaskResult> {
    let Some(artifacts) = artifacts_of(payload) else {
        return failed(
            Action::RemoveArtifacts,
            FAILED,
            "No 'artifacts' in the payload",
        );
    };
    let items = list(artifacts)?;
    if items.is_empty() {
        return failed(
            Action::RemoveArtifacts,
            FAILED,
            "At list one artifact is required",
        );
    }
    let requested = paths(items)?;
    let router = routing::current(ctx)?;
    let mut rows: HashMap<ArtifactPath, Row> = ctx
        .db
        .files_by_paths(&requested)?
        .into_iter()
        .map(|f| {
            let row = Row {
                id: f.id,
                action: f.action,
                published: f.published,
            };
            (f.path, row)
        })
        .collect();
    let mut deleted = Vec::new();
    let mut not_found = Vec::new();
    let mut to_remove = Vec::new();
    let mut awaited = Awaited::default();
    for path in &requested {
        let role = router.role_for(path.as_str());
        let row = rows.get_mut(path);
        match (role, row) {
            (Some(role), Some(row)) if !(row.action == TargetAction::Remove && row.published) => {
                if row.action == TargetAction::Add {
                    to_remove.push(path.clone());
                    row.action = TargetAction::Remove;
                    row.published = false;
                }
                deleted.push(path.0.clone());
                awaited.add(&role, row.id);
            }
            _ => not_found.push(path.0.clone()),
        }
    }
    if !to_remove.is_empty() {
        ctx.db.remove_files(&to_remove)?;
    }
    if !deleted.is_empty() {
        waiting::publish_and_wait(ctx, req, &awaited, publish_requested(payload))?;
    }
    done(
        Action::RemoveArtifacts,
        "Artifact(s) removed",
        json!({"deleted_artifacts": deleted, "not_found_artifacts": not_found}),
    )
}
