//! `add_artifacts`: record artifacts under the roles responsible for their
//! paths, have them published, and wait until they are.
//!
//! A path with the same info already stored under the same role is not
//! written again, so a redelivered task (or a repeated request) changes no
//! row and bumps no version; it only waits, if the row still waits too.
use std::collections::HashMap;

use serde_json::{json, Value};

use super::artifacts::{artifacts_of, list, new_artifacts, publish_requested, NewArtifact};
use super::context::role_name;
use super::context::{Context, Result};
use super::result::{done, failed};
use super::waiting::{self, Awaited};
use super::{routing, Action, Error, Request};
use crate::backend::TaskResult;
use crate::db::{ArtifactPath, FileId, NewFile, RoleId, TargetAction, TargetFile};
use crate::tuf::RoleName;

pub fn run(ctx: &Context, req: &Request, payload: &Value) -> Result<TaskResult> {
    let Some(artifacts) = artifacts_of(payload) else {
        return failed(
            Action::AddArtifacts,
            "Adding artifact(s) Failed",
            "No 'artifacts' in the payload",
        );
    };
    let artifacts = new_artifacts(list(artifacts)?)?;
    let mut added = Vec::new();
    let mut invalid = Vec::new();
    let mut routed = Vec::new();
    if !artifacts.is_empty() {
        let router = routing::current(ctx)?;
        for artifact in &artifacts {
            match router.role_for(artifact.path.as_str()) {
                Some(role) => {
                    added.push(artifact.path.0.clone());
                    routed.push((artifact, role));
                }
                None => invalid.push(artifact.path.0.clone()),
            }
        }
    }
    let rows = record(ctx, &routed)?;
    let mut awaited = Awaited::default();
    let mut waiting = false;
    for (artifact, role) in &routed {
        match rows.get(&artifact.path) {
            Some(&(id, false)) => {
                awaited.add(role, id);
                waiting = true;
            }
            _ => awaited.add_role(role),
        }
    }
    if waiting {
        waiting::publish_and_wait(ctx, req, &awaited, publish_requested(payload))?;
    }
    done(
        Action::AddArtifacts,
        "Artifact(s) Added",
        json!({
            "added_artifacts": added,
            "invalid_paths": invalid,
            "artifact_roles": awaited.role_names(),
        }),
    )
}

/// Stores what changed; returns every routed path's row id and whether it
/// is published.
fn record(
    ctx: &Context,
    routed: &[(&NewArtifact, String)],
) -> Result<HashMap<ArtifactPath, (FileId, bool)>> {
    if routed.is_empty() {
        return Ok(HashMap::new());
    }
    let role_ids = role_ids(ctx, routed)?;
    let paths: Vec<ArtifactPath> = routed.iter().map(|(a, _)| a.path.clone()).collect();
    let stored: HashMap<ArtifactPath, TargetFile> = ctx
        .db
        .files_by_paths(&paths)?
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect();
    // Like upstream's one-by-one handling, a repeated path ends with its
    // last entry; only that one is compared with the stored row.
    let mut last: HashMap<&ArtifactPath, NewFile> = HashMap::new();
    let mut order = Vec::new();
    for ((artifact, _), role) in routed.iter().zip(role_ids) {
        let file = NewFile {
            path: artifact.path.clone(),
            info: artifact.info.clone(),
            role,
        };
        if last.insert(&artifact.path, file).is_none() {
            order.push(&artifact.path);
        }
    }
    let changes: Vec<NewFile> = order
        .into_iter()
        .filter_map(|path| last.remove(path))
        .filter(|file| {
            !stored
                .get(&file.path)
                .is_some_and(|row| unchanged(row, file))
        })
        .collect();
    let mut rows: HashMap<ArtifactPath, (FileId, bool)> = stored
        .into_iter()
        .map(|(path, row)| (path, (row.id, row.published)))
        .collect();
    if !changes.is_empty() {
        for row in ctx.db.add_files(&changes)? {
            rows.insert(row.path, (row.id, row.published));
        }
    }
    Ok(rows)
}

fn unchanged(row: &TargetFile, file: &NewFile) -> bool {
    row.action == TargetAction::Add && row.role == Some(file.role) && row.info == file.info
}

/// The database id of each artifact's responsible role, in `routed` order.
fn role_ids(ctx: &Context, routed: &[(&NewArtifact, String)]) -> Result<Vec<RoleId>> {
    let mut names = routed
        .iter()
        .map(|(_, role)| role_name(role))
        .collect::<Result<Vec<RoleName>>>()?;
    names.sort();
    names.dedup();
    let found: HashMap<String, RoleId> = ctx
        .db
        .active_roles_named(&names)?
        .into_iter()
        .map(|r| (r.name.as_str().to_owned(), r.id))
        .collect();
    routed
        .iter()
        .map(|(artifact, role)| {
            found.get(role).copied().ok_or_else(|| {
                Error::Repository(format!(
                    "role '{role}' is responsible for artifact '{}' but has no active database \
                     row; the database and the targets metadata disagree",
                    artifact.path
                ))
            })
        })
        .collect()
}
