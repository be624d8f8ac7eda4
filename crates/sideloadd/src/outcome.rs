//! What a run did, plugin by plugin, and the one-line summary of it. Kept apart
//! from `run.rs` because every step below the orchestrator (`health.rs`,
//! `confirm.rs`, `password.rs`, `upkeep.rs`) records into it: they depend on this
//! module, never on `run.rs` (issue 16).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub deployed: Vec<String>,
    pub unchanged: Vec<String>,
    pub failed: Vec<Failure>,
    /// Uninstalled because no longer declared (`prune`).
    pub pruned: Vec<String>,
    /// Why the admin password from `adminPasswordFile` could not be set.
    pub admin_password_failed: Option<String>,
    /// Why Scrypted's plugin auto-update could not be checked or turned off.
    pub auto_update_failed: Option<String>,
}

impl Outcome {
    /// Every plugin in place and, when declared, the admin password set.
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
            && self.admin_password_failed.is_none()
            && self.auto_update_failed.is_none()
    }

    pub fn summary(&self) -> String {
        let password = match self.admin_password_failed {
            Some(_) => "; admin password not set",
            None => "",
        };
        let auto_update = match self.auto_update_failed {
            Some(_) => "; plugin auto-update not known to be off",
            None => "",
        };
        format!("{}{password}{auto_update}", self.plugins_summary())
    }

    fn plugins_summary(&self) -> String {
        let in_place = self.deployed.len() + self.unchanged.len();
        let pruned = match self.pruned.len() {
            0 => String::new(),
            n => format!(", {n} pruned"),
        };
        if self.failed.is_empty() {
            format!(
                "{in_place} plugins in place, {} skipped{pruned}",
                self.unchanged.len()
            )
        } else {
            let names: Vec<&str> = self.failed.iter().map(|f| f.name.as_str()).collect();
            format!(
                "{} of {} plugins failed: {}",
                self.failed.len(),
                in_place + self.failed.len(),
                names.join(", ")
            )
        }
    }
}
