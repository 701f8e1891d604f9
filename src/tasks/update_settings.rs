//! `update_settings`: change the expiration policy of roles that already
//! have one. A role counts as known iff `<ROLE>_EXPIRATION` reads back
//! through dynaconf's get_fresh, so a stored 0 is reported invalid, as
//! upstream does.
use serde_json::{json, Value};

use super::context::{Context, Result};
use super::result::{done, failed};
use super::{Action, Error};
use crate::backend::TaskResult;
use crate::settings::SettingValue;

const FAILED: &str = "Update Settings Failed";

pub fn run(ctx: &Context, payload: &Value) -> Result<TaskResult> {
    let Some(settings) = payload.get("settings").filter(|s| !s.is_null()) else {
        return failed(
            Action::UpdateSettings,
            FAILED,
            "No 'settings' in the payload",
        );
    };
    let expiration = match settings.get("expiration") {
        None | Some(Value::Null) => {
            return failed(
                Action::UpdateSettings,
                FAILED,
                "No 'expiration' in the payload",
            )
        }
        Some(Value::Object(roles)) => roles,
        Some(_) => {
            return Err(Error::payload(
                "settings.expiration",
                "must be an object of role: days",
            ))
        }
    };
    if expiration.is_empty() {
        return failed(
            Action::UpdateSettings,
            FAILED,
            "No role provided for expiration policy change",
        );
    }
    let mut updated = Vec::new();
    let mut invalid = Vec::new();
    for (role, days) in expiration {
        let days = days.as_i64().ok_or_else(|| {
            Error::payload(
                format!("settings.expiration.{role}"),
                "must be a whole number of days",
            )
        })?;
        let name = format!("{}_EXPIRATION", role.to_uppercase());
        if ctx.setting_int(&name)?.is_some() {
            ctx.set_setting(&name, SettingValue::Int(days))?;
            updated.push(role.clone());
        } else {
            invalid.push(role.clone());
        }
    }
    done(
        Action::UpdateSettings,
        "Update Settings Succeded",
        json!({"updated_roles": updated, "invalid_roles": invalid}),
    )
}
