//! Container-level restart rules (KEP-5307 `restartPolicyRules`, KEP-5532's
//! `RestartAllContainers`): checked against a run's exit code in order, the
//! first that matches decides; none: the container's `restartPolicy`, else the
//! pod's.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartRule {
    pub action: RestartAction,
    pub operator: ExitCodeOperator,
    pub values: Vec<i32>,
}

impl RestartRule {
    pub fn matches(&self, exit_code: i32) -> bool {
        let listed = self.values.contains(&exit_code);
        match self.operator {
            ExitCodeOperator::In => listed,
            ExitCodeOperator::NotIn => !listed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartAction {
    /// Restart this container, with the usual back-off.
    Restart,
    /// Restart the whole pod in place: every container stopped (no preStop
    /// hooks), then the init containers again, the sidecars, the apps; the
    /// infra, its network and the volumes stay.
    RestartAllContainers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitCodeOperator {
    In,
    NotIn,
}

/// What a container's exit leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    Restart,
    RestartAll,
    /// It does not run again.
    Done,
}

/// The decision for an exit with `code`: the first matching rule, else
/// `policy` (the container's own, else the pod's).
pub fn after_exit(rules: &[RestartRule], policy: super::RestartPolicy, code: i32) -> AfterExit {
    match rules.iter().find(|r| r.matches(code)).map(|r| r.action) {
        Some(RestartAction::Restart) => AfterExit::Restart,
        Some(RestartAction::RestartAllContainers) => AfterExit::RestartAll,
        None if policy.restarts(code) => AfterExit::Restart,
        None => AfterExit::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RestartPolicy;

    fn rule(action: RestartAction, operator: ExitCodeOperator, values: &[i32]) -> RestartRule {
        RestartRule {
            action,
            operator,
            values: values.to_vec(),
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_the_policy_decides_the_rest() {
        let rules = [
            rule(RestartAction::Restart, ExitCodeOperator::In, &[42]),
            rule(
                RestartAction::RestartAllContainers,
                ExitCodeOperator::In,
                &[42, 43],
            ),
        ];
        assert_eq!(
            after_exit(&rules, RestartPolicy::Never, 42),
            AfterExit::Restart
        );
        assert_eq!(
            after_exit(&rules, RestartPolicy::Never, 43),
            AfterExit::RestartAll
        );
        assert_eq!(after_exit(&rules, RestartPolicy::Never, 1), AfterExit::Done);
        assert_eq!(
            after_exit(&rules, RestartPolicy::OnFailure, 1),
            AfterExit::Restart
        );
        assert_eq!(
            after_exit(&rules, RestartPolicy::OnFailure, 0),
            AfterExit::Done
        );
    }

    #[test]
    fn not_in_matches_every_code_but_its_values() {
        let rules = [rule(
            RestartAction::Restart,
            ExitCodeOperator::NotIn,
            &[0, 1],
        )];
        assert_eq!(after_exit(&rules, RestartPolicy::Never, 1), AfterExit::Done);
        assert_eq!(
            after_exit(&rules, RestartPolicy::Never, 7),
            AfterExit::Restart
        );
    }
}
