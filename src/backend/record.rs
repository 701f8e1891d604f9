//! The JSON records Celery's Redis backend stores under
//! `celery-task-meta-<id>` (spec celery-wire.md §5), built as pure bytes.
//!
//! Field order is part of the format (`status, result, traceback, children,
//! date_done, [parent_id], task_id`), so records are structs serialized in
//! declaration order through the Python-compatible writer rather than
//! `serde_json::Map`, which would sort them.
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;

use super::Error;
use crate::celery::{pyjson, TaskHeaders, TaskId, TaskName};
use crate::tuf::UtcTime;

/// A UTC instant with microseconds: Python's `datetime.now(timezone.utc)`.
/// Serializes the way kombu encodes datetimes inside results:
/// `{"__type__": "datetime", "__value__": "<isoformat>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    time: UtcTime,
    micros: u32,
}

impl Timestamp {
    pub fn new(time: UtcTime, micros: u32) -> Result<Timestamp, Error> {
        if micros >= 1_000_000 {
            return Err(Error::Time(format!(
                "{micros} microseconds is not below one second"
            )));
        }
        Ok(Timestamp { time, micros })
    }

    pub fn now() -> Result<Timestamp, Error> {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(t: SystemTime) -> Result<Timestamp, Error> {
        let since = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Time(format!("system time {t:?} is before 1970")))?;
        let seconds = i64::try_from(since.as_secs())
            .map_err(|_| Error::Time(format!("system time {t:?} is too far ahead")))?;
        let time = UtcTime::from_unix_seconds(seconds).map_err(|e| Error::Time(e.to_string()))?;
        Self::new(time, since.subsec_micros())
    }

    /// Python's `isoformat()` of an aware UTC datetime: microseconds only
    /// when non-zero, offset `+00:00`.
    pub fn isoformat(&self) -> String {
        let c = self.time.civil();
        let fraction = if self.micros == 0 {
            String::new()
        } else {
            format!(".{:06}", self.micros)
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}+00:00",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.isoformat())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut marker = serializer.serialize_struct("datetime", 2)?;
        marker.serialize_field("__type__", "datetime")?;
        marker.serialize_field("__value__", &self.isoformat())?;
        marker.end()
    }
}

/// The result every RSTUF action returns (upstream's `TaskResult`
/// dataclass). `status` is not stored: it is `error is None` by definition,
/// so it cannot disagree with `error`. `details` is generic so an action can
/// give a struct whose field order matches upstream's dict.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult<D = Value> {
    /// The action name (`add_artifacts`, ...).
    pub task: String,
    pub last_update: Timestamp,
    pub message: String,
    pub error: Option<String>,
    pub details: Option<D>,
}

impl<D> TaskResult<D> {
    /// What the API shows: SUCCESS when true, ERRORED when false.
    pub fn status(&self) -> bool {
        self.error.is_none()
    }
}

impl<D: Serialize> Serialize for TaskResult<D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("TaskResult", 6)?;
        s.serialize_field("task", &self.task)?;
        s.serialize_field("status", &self.status())?;
        s.serialize_field("last_update", &self.last_update)?;
        s.serialize_field("message", &self.message)?;
        s.serialize_field("error", &self.error)?;
        s.serialize_field("details", &self.details)?;
        s.end()
    }
}

/// The meta of RSTUF's `RUNNING` updates while a task waits for publication.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress<D = Value> {
    pub details: D,
    pub message: String,
    pub last_update: Timestamp,
}

impl<D: Serialize> Serialize for Progress<D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Upstream passes exc_type/exc_message as None explicitly.
        let mut s = serializer.serialize_struct("Progress", 5)?;
        s.serialize_field("details", &self.details)?;
        s.serialize_field("message", &self.message)?;
        s.serialize_field("last_update", &self.last_update)?;
        s.serialize_field("exc_type", &None::<()>)?;
        s.serialize_field("exc_message", &None::<()>)?;
        s.end()
    }
}

/// A task that raised: the Python exception the reader will rebuild
/// (`exc_module.exc_type(*exc_message)`) and the optional traceback text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub exc_type: String,
    pub exc_message: Vec<String>,
    pub exc_module: String,
    pub traceback: Option<String>,
}

impl Failure {
    /// An exception with one message argument and no traceback.
    pub fn new(exc_module: &str, exc_type: &str, message: impl Into<String>) -> Failure {
        Failure {
            exc_type: exc_type.to_owned(),
            exc_message: vec![message.into()],
            exc_module: exc_module.to_owned(),
            traceback: None,
        }
    }

    /// What Celery stores for a message naming a task it does not know.
    pub fn not_registered(name: &TaskName) -> Failure {
        Self::new("celery.exceptions", "NotRegistered", name.as_str())
    }
}

/// The `result` part of a FAILURE record.
struct ExceptionInfo<'a>(&'a Failure);

impl Serialize for ExceptionInfo<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("exception", 3)?;
        s.serialize_field("exc_type", &self.0.exc_type)?;
        s.serialize_field("exc_message", &self.0.exc_message)?;
        s.serialize_field("exc_module", &self.0.exc_module)?;
        s.end()
    }
}

/// The `result` of a STARTED record.
#[derive(serde::Serialize)]
struct Started<'a> {
    pid: u32,
    hostname: &'a str,
}

/// Celery states this worker writes through the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Started,
    /// RSTUF's custom progress state.
    Running,
    Success,
    Failure,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Started => "STARTED",
            State::Running => "RUNNING",
            State::Success => "SUCCESS",
            State::Failure => "FAILURE",
        }
    }

    /// Celery's READY_STATES: only these get a `date_done`.
    pub fn is_ready(self) -> bool {
        matches!(self, State::Success | State::Failure)
    }
}

/// What Celery knows about the task a record is for (its `request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRequest {
    pub id: TaskId,
    /// Set for a task sent from inside another task.
    pub parent_id: Option<TaskId>,
    /// Sub-tasks this task has sent so far; every later record lists them.
    pub children: Vec<TaskId>,
}

impl TaskRequest {
    pub fn new(id: TaskId) -> TaskRequest {
        TaskRequest {
            id,
            parent_id: None,
            children: Vec::new(),
        }
    }

    pub fn from_headers(headers: &TaskHeaders) -> TaskRequest {
        TaskRequest {
            parent_id: headers.parent_id.clone(),
            ..Self::new(headers.id.clone())
        }
    }
}

/// A child as `AsyncResult.as_tuple()` gives it: `[[id, parent], null]`,
/// the parent being null for results Celery creates when sending.
struct Child<'a>(&'a TaskId);

impl Serialize for Child<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ((self.0, None::<()>), None::<()>).serialize(serializer)
    }
}

#[derive(serde::Serialize)]
struct Record<'a, R: ?Sized> {
    status: &'static str,
    result: &'a R,
    traceback: Option<&'a str>,
    children: Vec<Child<'a>>,
    date_done: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<&'a TaskId>,
    task_id: &'a TaskId,
}

/// RSTUF's own PRE_RUN write (different field order, no traceback etc.).
#[derive(serde::Serialize)]
struct PreRun<'a> {
    status: &'static str,
    task_id: &'a TaskId,
    result: Option<()>,
}

fn encode<T: Serialize + ?Sized>(task_id: &TaskId, value: &T) -> Result<Vec<u8>, Error> {
    pyjson::to_vec(value).map_err(|e| Error::Encode {
        task_id: task_id.clone(),
        reason: e.to_string(),
    })
}

/// `{"status": "PRE_RUN", "task_id": <id>, "result": null}`.
pub fn pre_run_json(id: &TaskId) -> Result<Vec<u8>, Error> {
    let record = PreRun {
        status: "PRE_RUN",
        task_id: id,
        result: None,
    };
    encode(id, &record)
}

/// A state record. `date_done` must be given exactly for ready states.
pub fn record_json<R: Serialize + ?Sized>(
    request: &TaskRequest,
    state: State,
    result: &R,
    traceback: Option<&str>,
    date_done: Option<Timestamp>,
) -> Result<Vec<u8>, Error> {
    let record = Record {
        status: state.as_str(),
        result,
        traceback,
        children: request.children.iter().map(Child).collect(),
        date_done: date_done.map(|t| t.isoformat()),
        parent_id: request.parent_id.as_ref(),
        task_id: &request.id,
    };
    encode(&request.id, &record)
}

/// The STARTED result: the executing process and worker node.
pub fn started_result(pid: u32, hostname: &str) -> impl Serialize + '_ {
    Started { pid, hostname }
}

/// The FAILURE result part of an exception.
pub fn failure_result(failure: &Failure) -> impl Serialize + '_ {
    ExceptionInfo(failure)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tuf::testdata;
    use serde_json::json;

    /// `celery-task-meta-*` values of the capture, by case and position.
    fn observed(case: &str, index: usize) -> String {
        let doc = testdata::json("vectors/celery/result-backend-observed.json");
        doc[case]["observed_values"][index]["value"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) fn at(iso_seconds: &str, micros: u32) -> Timestamp {
        Timestamp::new(UtcTime::parse(iso_seconds).unwrap(), micros).unwrap()
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    /// add_artifacts' details dict in upstream's key order.
    #[derive(serde::Serialize)]
    struct Added {
        added_artifacts: Vec<&'static str>,
        invalid_paths: Vec<&'static str>,
        artifact_roles: Vec<&'static str>,
    }

    #[test]
    fn pre_run_started_and_running_match_the_capture() {
        let ok = TaskRequest::new(TaskId::new("plain-ok"));
        assert_eq!(text(pre_run_json(&ok.id).unwrap()), observed("ok", 0));
        let started = record_json(
            &ok,
            State::Started,
            &started_result(15012, "tiny@vm"),
            None,
            None,
        );
        assert_eq!(text(started.unwrap()), observed("ok", 1));
        let progress = Progress {
            details: json!({"published_roles": ["bins-e"], "roles_to_publish": "['bins-e', 'bins-3']"}),
            message: "Publishing".into(),
            last_update: at("2026-11-24T17:20:56Z", 780_294),
        };
        let running = record_json(&ok, State::Running, &progress, None, None).unwrap();
        assert_eq!(text(running), observed("ok", 2));
    }

    #[test]
    fn success_and_errored_results_match_the_capture() {
        let ok = TaskRequest::new(TaskId::new("plain-ok"));
        let result = TaskResult {
            task: "add_artifacts".into(),
            last_update: at("2026-11-24T17:20:57Z", 281_166),
            message: "Artifact(s) Added".into(),
            error: None,
            details: Some(Added {
                added_artifacts: vec!["file1.tar.gz"],
                invalid_paths: vec![],
                artifact_roles: vec!["bins-e"],
            }),
        };
        assert!(result.status());
        let done = Some(at("2026-11-24T17:20:57Z", 281_249));
        let json = record_json(&ok, State::Success, &result, None, done).unwrap();
        assert_eq!(text(json), observed("ok", 3));

        let errored = TaskRequest::new(TaskId::new("plain-errored"));
        let result: TaskResult = TaskResult {
            task: "add_artifacts".into(),
            last_update: at("2026-11-24T17:20:57Z", 987_100),
            message: "Adding artifact(s) Failed".into(),
            error: Some("No 'artifacts' in the payload".into()),
            details: None,
        };
        assert!(!result.status());
        let done = Some(at("2026-11-24T17:20:57Z", 987_169));
        let json = record_json(&errored, State::Success, &result, None, done).unwrap();
        assert_eq!(text(json), observed("errored", 1));
    }

    #[test]
    fn every_captured_failure_matches() {
        let doc = testdata::json("vectors/celery/result-backend-observed.json");
        for case in ["raise_value", "raise_custom", "raise_chord", "raise_lock"] {
            let want = observed(case, 1);
            let stored: Value = serde_json::from_str(&want).unwrap();
            let r = &stored["result"];
            let failure = Failure {
                exc_module: r["exc_module"].as_str().unwrap().into(),
                traceback: stored["traceback"].as_str().map(str::to_owned),
                ..Failure::new(
                    "",
                    r["exc_type"].as_str().unwrap(),
                    r["exc_message"][0].as_str().unwrap(),
                )
            };
            let (seconds, micros) = stored["date_done"].as_str().unwrap().split_at(19);
            let micros: u32 = micros[1..7].parse().unwrap();
            let done = Some(at(&format!("{seconds}Z"), micros));
            let request = TaskRequest::new(TaskId::new(doc[case]["task_id"].as_str().unwrap()));
            let tb = failure.traceback.as_deref();
            let json = record_json(
                &request,
                State::Failure,
                &failure_result(&failure),
                tb,
                done,
            );
            assert_eq!(text(json.unwrap()), want, "{case}");
        }
    }

    #[test]
    fn children_and_parent_id_sit_where_celery_puts_them() {
        // Layout from celery-wire.md §5 (children as AsyncResult.as_tuple()).
        let mut parent = TaskRequest::new(TaskId::new("T"));
        parent.children.push(TaskId::new("publish_artifacts-T"));
        let json = record_json(&parent, State::Running, &json!({}), None, None).unwrap();
        assert_eq!(
            text(json),
            r#"{"status": "RUNNING", "result": {}, "traceback": null, "children": [[["publish_artifacts-T", null], null]], "date_done": null, "task_id": "T"}"#
        );
        let mut child = TaskRequest::new(TaskId::new("publish_artifacts-T"));
        child.parent_id = Some(TaskId::new("T"));
        let done = Some(at("2026-01-02T03:04:05Z", 0));
        let json = record_json(&child, State::Success, &json!([]), None, done).unwrap();
        assert_eq!(
            text(json),
            r#"{"status": "SUCCESS", "result": [], "traceback": null, "children": [], "date_done": "2026-01-02T03:04:05+00:00", "parent_id": "T", "task_id": "publish_artifacts-T"}"#
        );
    }

    #[test]
    fn not_registered_failure_is_celerys() {
        // celery-wire.md §3: exc_type NotRegistered, module celery.exceptions,
        // message [name], traceback null.
        let failure = Failure::not_registered(&TaskName::new("app.other"));
        let request = TaskRequest::new(TaskId::new("x"));
        let done = Some(at("2026-01-02T03:04:05Z", 12));
        let json = record_json(
            &request,
            State::Failure,
            &failure_result(&failure),
            None,
            done,
        );
        assert_eq!(
            text(json.unwrap()),
            r#"{"status": "FAILURE", "result": {"exc_type": "NotRegistered", "exc_message": ["app.other"], "exc_module": "celery.exceptions"}, "traceback": null, "children": [], "date_done": "2026-01-02T03:04:05.000012+00:00", "task_id": "x"}"#
        );
    }

    #[test]
    fn timestamps_follow_python_isoformat() {
        // datetime(..., tzinfo=timezone.utc).isoformat() in Python.
        assert_eq!(
            at("2026-11-24T17:20:57Z", 0).isoformat(),
            "2026-11-24T17:20:57+00:00"
        );
        assert_eq!(
            at("0001-01-01T00:00:00Z", 1).isoformat(),
            "0001-01-01T00:00:00.000001+00:00"
        );
        assert_eq!(
            pyjson::to_string(&at("2026-11-24T17:20:57Z", 100)).unwrap(),
            r#"{"__type__": "datetime", "__value__": "2026-11-24T17:20:57.000100+00:00"}"#
        );
        assert!(matches!(
            Timestamp::new(UtcTime::parse("2026-01-01T00:00:00Z").unwrap(), 1_000_000),
            Err(Error::Time(_))
        ));
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_795_540_857, 281_166_999);
        assert_eq!(
            Timestamp::from_system_time(t).unwrap(),
            at("2026-11-24T17:20:57Z", 281_166)
        );
        let before = SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert!(matches!(
            Timestamp::from_system_time(before),
            Err(Error::Time(_))
        ));
    }

    #[test]
    fn request_from_headers_keeps_the_parent() {
        let headers = TaskHeaders {
            task: TaskName::new(TaskName::REPOSITORY),
            id: TaskId::new("publish_artifacts-p"),
            retries: 0,
            eta: None,
            expires: None,
            root_id: Some(TaskId::new("p")),
            parent_id: Some(TaskId::new("p")),
            group: None,
            origin: None,
            ignore_result: false,
        };
        let request = TaskRequest::from_headers(&headers);
        assert_eq!(request.id.as_str(), "publish_artifacts-p");
        assert_eq!(request.parent_id, Some(TaskId::new("p")));
        assert!(request.children.is_empty());
    }
}
