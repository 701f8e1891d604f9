//! The two tasks this worker runs, bound from a message's arguments the way
//! Python binds a call (`fun(*args, **kwargs)`), so that whatever Python
//! would refuse with `TypeError` is refused here with the field named.
use serde_json::{Map, Value};

use super::{Error, TaskMessage, TaskName};

/// A task this worker implements, with typed arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// `app.repository_service_tuf_worker(action, payload=None)`. `payload`
    /// is always a JSON object when present.
    Repository {
        action: String,
        payload: Option<Value>,
    },
    /// `app.bump_online_roles(expired=False)`; null counts as false, as
    /// Python's truth test does.
    BumpOnlineRoles { expired: bool },
}

/// A Python parameter: name and whether it has a default.
struct Param {
    name: &'static str,
    required: bool,
}

const REPOSITORY_PARAMS: [Param; 2] = [
    Param {
        name: "action",
        required: true,
    },
    Param {
        name: "payload",
        required: false,
    },
];

const BUMP_PARAMS: [Param; 1] = [Param {
    name: "expired",
    required: false,
}];

impl Task {
    /// The typed task of a decoded message; [`Error::NotRegistered`] for a
    /// name this worker does not run.
    pub fn from_message(msg: &TaskMessage) -> Result<Task, Error> {
        let name = &msg.headers.task;
        match name.as_str() {
            TaskName::REPOSITORY => {
                let [action, payload] = bind(name, &REPOSITORY_PARAMS, &msg.args, &msg.kwargs)?;
                Ok(Task::Repository {
                    action: repository_action(name, action)?,
                    payload: repository_payload(name, payload)?,
                })
            }
            TaskName::BUMP_ONLINE_ROLES => {
                let [expired] = bind(name, &BUMP_PARAMS, &msg.args, &msg.kwargs)?;
                Ok(Task::BumpOnlineRoles {
                    expired: bump_expired(name, expired)?,
                })
            }
            _ => Err(Error::NotRegistered { name: name.clone() }),
        }
    }

    pub fn name(&self) -> TaskName {
        TaskName::new(match self {
            Task::Repository { .. } => TaskName::REPOSITORY,
            Task::BumpOnlineRoles { .. } => TaskName::BUMP_ONLINE_ROLES,
        })
    }

    /// The keyword arguments Celery publishes for this task (`args` is
    /// always empty). The map sorts its keys, which for these names is also
    /// the order Python builds them in.
    pub fn kwargs(&self) -> Map<String, Value> {
        let mut kwargs = Map::new();
        match self {
            Task::Repository { action, payload } => {
                kwargs.insert("action".into(), Value::String(action.clone()));
                kwargs.insert("payload".into(), payload.clone().unwrap_or(Value::Null));
            }
            Task::BumpOnlineRoles { expired } => {
                kwargs.insert("expired".into(), Value::Bool(*expired));
            }
        }
        kwargs
    }
}

fn argument_error(task: &TaskName, field: &str, reason: impl Into<String>) -> Error {
    Error::Argument {
        task: task.clone(),
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Python's call binding: positionals fill parameters in order, keywords by
/// name; extra, duplicate or missing required arguments are errors.
fn bind<'a, const N: usize>(
    task: &TaskName,
    params: &[Param; N],
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
) -> Result<[Option<&'a Value>; N], Error> {
    if args.len() > N {
        return Err(argument_error(
            task,
            "args",
            format!("takes at most {N} positional arguments, got {}", args.len()),
        ));
    }
    if let Some(unknown) = kwargs.keys().find(|k| params.iter().all(|p| p.name != *k)) {
        return Err(argument_error(
            task,
            unknown,
            "is not a parameter of this task",
        ));
    }
    let mut bound = [None; N];
    for (slot, (i, param)) in bound.iter_mut().zip(params.iter().enumerate()) {
        *slot = match (args.get(i), kwargs.get(param.name)) {
            (Some(_), Some(_)) => {
                return Err(argument_error(
                    task,
                    param.name,
                    "given both by position and by name",
                ))
            }
            (Some(v), None) | (None, Some(v)) => Some(v),
            (None, None) if param.required => {
                return Err(argument_error(task, param.name, "is required"))
            }
            (None, None) => None,
        };
    }
    Ok(bound)
}

fn repository_action(task: &TaskName, value: Option<&Value>) -> Result<String, Error> {
    match value {
        Some(Value::String(action)) => Ok(action.clone()),
        other => Err(argument_error(task, "action", must_be("a string", other))),
    }
}

fn repository_payload(task: &TaskName, value: Option<&Value>) -> Result<Option<Value>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(payload @ Value::Object(_)) => Ok(Some(payload.clone())),
        other => Err(argument_error(
            task,
            "payload",
            must_be("an object or null", other),
        )),
    }
}

fn bump_expired(task: &TaskName, value: Option<&Value>) -> Result<bool, Error> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(expired)) => Ok(*expired),
        other => Err(argument_error(task, "expired", must_be("a boolean", other))),
    }
}

fn must_be(expected: &str, got: Option<&Value>) -> String {
    let got = match got {
        None | Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    };
    format!("must be {expected}, got {got}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::celery::message::tests::{raw_from_vector, VECTORS};
    use crate::celery::RawMessage;
    use serde_json::json;

    fn task_of(name: &str) -> Task {
        Task::from_message(&TaskMessage::decode(&raw_from_vector(name)).unwrap()).unwrap()
    }

    #[test]
    fn every_amqp_vector_resolves_to_its_task() {
        let add = task_of(VECTORS[1]);
        let Task::Repository { action, payload } = &add else {
            panic!("{add:?}")
        };
        assert_eq!(action, "add_artifacts");
        let payload = payload.as_ref().unwrap();
        assert_eq!(payload["publish_artifacts"], true);
        assert_eq!(payload["artifacts"][0]["info"]["custom"]["k"], "v\u{e9}");

        assert_eq!(
            task_of(VECTORS[0]),
            Task::Repository {
                action: "update_settings".into(),
                payload: Some(json!({"settings": {"expiration": {"timestamp": 2}}})),
            }
        );
        assert_eq!(
            task_of(VECTORS[2]),
            Task::Repository {
                action: "publish_artifacts".into(),
                payload: None
            }
        );
        assert_eq!(
            task_of(VECTORS[3]),
            Task::Repository {
                action: "publish_artifacts".into(),
                payload: Some(
                    json!({"delegated_artifacts": ["bins-e"], "mode": "errored", "sleep": 0})
                ),
            }
        );
        let bump = task_of(VECTORS[4]);
        assert_eq!(bump, Task::BumpOnlineRoles { expired: true });
        assert_eq!(bump.name().as_str(), "app.bump_online_roles");
        assert_eq!(add.name().as_str(), "app.repository_service_tuf_worker");
    }

    fn message(task: &str, args: Value, kwargs: Value) -> TaskMessage {
        let body = serde_json::to_vec(&json!([args, kwargs, null])).unwrap();
        let raw = RawMessage {
            headers: json!({"task": task, "id": "t-1"})
                .as_object()
                .unwrap()
                .clone(),
            content_type: Some("application/json".into()),
            content_encoding: Some("utf-8".into()),
            correlation_id: None,
            body,
        };
        TaskMessage::decode(&raw).unwrap()
    }

    #[test]
    fn unknown_names_are_not_registered_not_undecodable() {
        let msg = message("app._update_online_role", json!(["bins-1"]), json!({}));
        let err = Task::from_message(&msg).unwrap_err();
        assert_eq!(
            err,
            Error::NotRegistered {
                name: TaskName::new("app._update_online_role")
            }
        );
        assert_eq!(
            err.to_string(),
            "task \"app._update_online_role\" is not registered with this worker \
             (it runs \"app.repository_service_tuf_worker\" and \"app.bump_online_roles\")"
        );
        assert_eq!(msg.headers.id.as_str(), "t-1");
    }

    #[test]
    fn arguments_bind_like_a_python_call() {
        let repo = TaskName::REPOSITORY;
        assert_eq!(
            Task::from_message(&message(repo, json!(["bootstrap", {"a": 1}]), json!({}))).unwrap(),
            Task::Repository {
                action: "bootstrap".into(),
                payload: Some(json!({"a": 1}))
            }
        );
        assert_eq!(
            Task::from_message(&message(repo, json!([]), json!({"action": "x"}))).unwrap(),
            Task::Repository {
                action: "x".into(),
                payload: None
            }
        );
        let bump = TaskName::BUMP_ONLINE_ROLES;
        assert_eq!(
            Task::from_message(&message(bump, json!([]), json!({}))).unwrap(),
            Task::BumpOnlineRoles { expired: false }
        );
        assert_eq!(
            Task::from_message(&message(bump, json!([]), json!({"expired": null}))).unwrap(),
            Task::BumpOnlineRoles { expired: false }
        );
        assert_eq!(
            Task::from_message(&message(bump, json!([true]), json!({}))).unwrap(),
            Task::BumpOnlineRoles { expired: true }
        );
    }

    #[test]
    fn bad_arguments_name_the_field() {
        let repo = TaskName::REPOSITORY;
        let bump = TaskName::BUMP_ONLINE_ROLES;
        let cases = [
            (repo, json!([]), json!({}), "action", "is required"),
            (
                repo,
                json!([]),
                json!({"payload": {}}),
                "action",
                "is required",
            ),
            (
                repo,
                json!([]),
                json!({"action": 3}),
                "action",
                "must be a string, got a number",
            ),
            (
                repo,
                json!([]),
                json!({"action": null}),
                "action",
                "must be a string, got null",
            ),
            (
                repo,
                json!([]),
                json!({"action": "a", "payload": []}),
                "payload",
                "must be an object or null, got an array",
            ),
            (
                repo,
                json!([]),
                json!({"action": "a", "payload": "p"}),
                "payload",
                "must be an object or null, got a string",
            ),
            (
                repo,
                json!([]),
                json!({"action": "a", "refresh": true}),
                "refresh",
                "is not a parameter of this task",
            ),
            (
                repo,
                json!(["a"]),
                json!({"action": "a"}),
                "action",
                "given both by position and by name",
            ),
            (
                repo,
                json!(["a", null, 1]),
                json!({}),
                "args",
                "takes at most 2 positional arguments, got 3",
            ),
            (
                bump,
                json!([]),
                json!({"expired": "yes"}),
                "expired",
                "must be a boolean, got a string",
            ),
            (
                bump,
                json!([]),
                json!({"expired": 1}),
                "expired",
                "must be a boolean, got a number",
            ),
        ];
        for (task, args, kwargs, field, reason) in cases {
            let err = Task::from_message(&message(task, args.clone(), kwargs.clone())).unwrap_err();
            assert_eq!(
                err,
                Error::Argument {
                    task: TaskName::new(task),
                    field: field.into(),
                    reason: reason.into()
                },
                "{args} {kwargs}"
            );
        }
        let err = Task::from_message(&message(repo, json!([]), json!({}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task app.repository_service_tuf_worker: argument \"action\" is required"
        );
    }

    #[test]
    fn kwargs_are_what_celery_sends() {
        let task = Task::Repository {
            action: "publish_artifacts".into(),
            payload: None,
        };
        assert_eq!(
            Value::Object(task.kwargs()),
            json!({"action": "publish_artifacts", "payload": null})
        );
        let bump = Task::BumpOnlineRoles { expired: true };
        assert_eq!(Value::Object(bump.kwargs()), json!({"expired": true}));
    }
}
