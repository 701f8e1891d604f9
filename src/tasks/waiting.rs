//! How add/remove tasks wait for their rows to be published, showing the
//! API upstream's RUNNING progress meanwhile.
//!
//! A task that asked this process's publisher for a round waits for that
//! round (woken the moment it ends). Rows published elsewhere (another
//! worker process, a Python worker, a later publish_artifacts) are noticed
//! by checking the database whenever a local round ends and at a short
//! interval otherwise.
use std::time::{Duration, Instant};

use serde_json::json;

use super::context::{Context, Result};
use super::publisher::{publisher, Plan, Ticket};
use super::pyrepr::list_repr;
use super::{Error, Request};
use crate::backend::{Failure, Progress, Timestamp};
use crate::db::FileId;

/// How often the database is checked for rows published by others.
const POLL: Duration = Duration::from_millis(200);
/// How often upstream rewrites the RUNNING state while waiting.
const REPORT_EVERY: Duration = Duration::from_secs(3);

/// The rows a task waits for, by role in the order the roles were first
/// met in the payload.
#[derive(Debug, Default)]
pub struct Awaited {
    roles: Vec<(String, Vec<FileId>)>,
}

impl Awaited {
    pub fn add(&mut self, role: &str, file: FileId) {
        match self.roles.iter_mut().find(|(name, _)| name == role) {
            Some((_, files)) => files.push(file),
            None => self.roles.push((role.to_owned(), vec![file])),
        }
    }

    /// A role with no rows to wait for still shows in the progress.
    pub fn add_role(&mut self, role: &str) {
        if !self.roles.iter().any(|(name, _)| name == role) {
            self.roles.push((role.to_owned(), Vec::new()));
        }
    }

    /// Role names, first-seen order.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|(name, _)| name.clone()).collect()
    }

    fn ids(&self) -> Vec<FileId> {
        self.roles
            .iter()
            .flat_map(|(_, files)| files.iter().copied())
            .collect()
    }

    /// Roles none of whose rows are in `unpublished`.
    fn published_roles(&self, unpublished: &[FileId]) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, files)| files.iter().all(|f| !unpublished.contains(f)))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Asks this process's publisher for a round when `publish` (where
/// upstream sends its publish sub-task), then waits until every awaited
/// row is published; without `publish`, until someone else publishes them.
pub fn publish_and_wait(
    ctx: &Context,
    req: &Request,
    awaited: &Awaited,
    publish: bool,
) -> Result<()> {
    let round = match publish {
        true => Some(publisher()?.submit(Plan::unpublished())),
        false => None,
    };
    until_published(ctx, req, awaited, round)
}

/// Blocks until every awaited row is published. `round` is the publisher
/// round the task asked for, if any; its failure fails the task the way
/// upstream's failed publish sub-task does (ChordError).
fn until_published(
    ctx: &Context,
    req: &Request,
    awaited: &Awaited,
    mut round: Option<Ticket>,
) -> Result<()> {
    let ids = awaited.ids();
    let publisher = publisher()?;
    let mut unpublished = ids.clone();
    let mut next_report = Instant::now();
    loop {
        // An abandoned task stops waiting; its rows stay for a later round.
        super::fence::check()?;
        let rounds_seen = publisher.rounds();
        if let Some(ticket) = round {
            match publisher.wait(ticket, Duration::ZERO) {
                Some(Err(failed)) => return Err(subtask_failed(req, &failed.failure)),
                Some(Ok(_)) => round = None,
                None => {}
            }
        }
        if round.is_none() {
            unpublished = ctx.db.unpublished_files(&ids)?;
            if unpublished.is_empty() {
                return Ok(());
            }
        }
        if Instant::now() >= next_report {
            report(req, awaited, &unpublished);
            next_report = Instant::now() + REPORT_EVERY;
        }
        let pause = match round {
            Some(_) => next_report.saturating_duration_since(Instant::now()),
            None => POLL,
        };
        publisher.wait_for_round(rounds_seen, pause);
    }
}

/// Upstream's RUNNING meta while its task waits.
fn report(req: &Request, awaited: &Awaited, unpublished: &[FileId]) {
    let Ok(last_update) = Timestamp::now() else {
        return;
    };
    (req.report)(&Progress {
        details: json!({
            "published_roles": awaited.published_roles(unpublished),
            "roles_to_publish": list_repr(&awaited.role_names()),
        }),
        message: "Publishing".into(),
        last_update,
    });
}

/// Upstream raises `ChordError` naming its sub-task and the sub-task's
/// exception when the publication it waited for failed.
fn subtask_failed(req: &Request, cause: &Failure) -> Error {
    Error::Raised(Failure::new(
        "celery.exceptions",
        "ChordError",
        format!(
            "Failed to execute publish_artifacts-{}: {} {}",
            req.id.as_str(),
            cause.exc_type,
            list_repr(&cause.exc_message)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_keep_first_seen_order_and_complete_when_all_rows_are_published() {
        let mut awaited = Awaited::default();
        awaited.add("bins-e", FileId(1));
        awaited.add("bins-3", FileId(2));
        awaited.add("bins-e", FileId(3));
        awaited.add_role("bins-7");
        assert_eq!(awaited.role_names(), ["bins-e", "bins-3", "bins-7"]);
        assert_eq!(awaited.ids(), [FileId(1), FileId(3), FileId(2)]);
        assert_eq!(awaited.published_roles(&[FileId(3)]), ["bins-3", "bins-7"]);
        assert_eq!(awaited.published_roles(&[]), ["bins-e", "bins-3", "bins-7"]);
    }
}
