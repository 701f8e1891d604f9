//! Names and ids that travel in Celery headers.
use std::fmt;

use serde::{Deserialize, Serialize};

/// A Celery task id: the API's `uuid4().hex`, `publish_artifacts-<parent>`
/// for the worker's own sub-task, or the fixed `bump_online_roles` of beat.
/// Any string is accepted because any producer may choose it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    pub fn new(id: impl Into<String>) -> Self {
        TaskId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered Celery task name (`app.<function>` upstream).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskName(String);

impl TaskName {
    /// The API's task: every repository action.
    pub const REPOSITORY: &'static str = "app.repository_service_tuf_worker";
    /// Celery beat's periodic bump of expiring online roles.
    pub const BUMP_ONLINE_ROLES: &'static str = "app.bump_online_roles";

    pub fn new(name: impl Into<String>) -> Self {
        TaskName(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
