//! The `BOOTSTRAP` setting: where the repository is in its one-time setup.
use crate::celery::TaskId;

/// What `BOOTSTRAP` says, as the upstream worker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapState {
    /// Absent or `None`: never bootstrapped, or a failed attempt was reset.
    None,
    /// `pre-<id>`: the API accepted `POST /bootstrap` and queued task `<id>`.
    Pre(TaskId),
    /// `signing-<id>`: root is below its threshold; `ROOT_SIGNING` holds it.
    Signing(TaskId),
    /// `<id>`: bootstrap finished by task `<id>`.
    Finished(TaskId),
}

const PRE: &str = "pre-";
const SIGNING_WORD: &str = "signing";

impl BootstrapState {
    /// Reads the stored string (`None` when `get_fresh` found nothing). Like
    /// the upstream worker, anything without a known prefix is "finished".
    pub fn parse(stored: Option<&str>) -> Self {
        match stored {
            None => BootstrapState::None,
            Some(text) => {
                if let Some(id) = text.strip_prefix(PRE) {
                    BootstrapState::Pre(TaskId::new(id))
                } else if let Some(rest) = text.strip_prefix(SIGNING_WORD) {
                    // Upstream tests only `startswith("signing")`.
                    BootstrapState::Signing(TaskId::new(rest.strip_prefix('-').unwrap_or(rest)))
                } else {
                    BootstrapState::Finished(TaskId::new(text))
                }
            }
        }
    }

    /// The string to store, `None` for "not bootstrapped".
    pub fn to_stored(&self) -> Option<String> {
        match self {
            BootstrapState::None => None,
            BootstrapState::Pre(id) => Some(format!("{PRE}{id}")),
            BootstrapState::Signing(id) => Some(format!("{SIGNING_WORD}-{id}")),
            BootstrapState::Finished(id) => Some(id.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;

    #[test]
    fn every_state_of_the_bootstrap_vector_parses_and_round_trips() {
        let vector = testdata::json("vectors/settings/after-bootstrap-bins.json");
        let id = TaskId::new("7a634b556f784ae88785d36425f9a218");
        let expected = [
            BootstrapState::Pre(id.clone()),
            BootstrapState::Signing(id.clone()),
            BootstrapState::Finished(id),
        ];
        for (step, state) in vector["steps"].as_array().unwrap().iter().zip(expected) {
            let stored = step["HGETALL DYNACONF_MAIN"]["BOOTSTRAP"].as_str().unwrap();
            assert_eq!(
                BootstrapState::parse(Some(stored)),
                state,
                "{}",
                step["after"]
            );
            assert_eq!(state.to_stored().as_deref(), Some(stored));
        }
    }

    #[test]
    fn nothing_stored_means_not_bootstrapped() {
        assert_eq!(BootstrapState::parse(None), BootstrapState::None);
        assert_eq!(BootstrapState::None.to_stored(), None);
    }
}
