//! One row of `CHAOS.md`: what `make chaos` reports per injected fault.
//! Scenarios return it; behaviour tests assert on it; the chaos harness
//! prints the table.

/// The outcome of one fault scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What was injected, as an operator would name it.
    pub fault: String,
    /// How many times it was injected.
    pub count: u32,
    /// Tasks sent during the scenario.
    pub tasks: u32,
    /// Changes reported done (SUCCESS) that a TUF client cannot see, or
    /// tasks that never reached a final state.
    pub lost: u32,
    /// Client-side verification failures, version repeats or gaps, partial
    /// files visible in storage.
    pub inconsistent: u32,
    /// Whether the worker served the next task without being restarted.
    pub recovered_without_restart: bool,
}

impl Row {
    /// The markdown table row.
    pub fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} |",
            self.fault,
            self.count,
            self.tasks,
            self.lost,
            self.inconsistent,
            if self.recovered_without_restart {
                "yes"
            } else {
                "no"
            }
        )
    }

    /// The table header matching [`Row::markdown`].
    pub fn header() -> &'static str {
        "| fault | count | tasks | lost | inconsistent | recovered without restart |\n|---|---|---|---|---|---|"
    }
}
