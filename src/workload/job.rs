//! The job controller (PURE): what a Job's pods did in, which pods to make or
//! delete and whether the Job is done out, at a time the caller gives (no
//! clock is read here). The rules are the job controller's
//! (pkg/controller/job): `parallelism` pods at a time until `completions`
//! succeeded, failures counted against `backoffLimit` (a restartPolicy
//! OnFailure pod's container restarts count too), `podFailurePolicy` rules
//! first, `activeDeadlineSeconds` from the Job's start, and a failed pod
//! replaced after the back-off (10 s doubling, at most 6 minutes). An Indexed
//! Job (`completionMode: Indexed`) is complete once each index below
//! `completions` has a pod that succeeded; a failed pod's index is made again,
//! the lowest pending indexes first.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::ExitCodeOperator;
use crate::model::workload::{JobSpec, PodFailureAction, PodFailureMatch};

/// The job controller's DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff.
const BACKOFF_MS: u64 = 10_000;
const MAX_BACKOFF_MS: u64 = 360_000;

/// What a pod of the Job is doing, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Not yet done; `restarts`: its containers' restarts (OnFailure).
    Active {
        restarts: u32,
    },
    Succeeded,
    /// Failed: each terminated container's name and exit code; the pod's
    /// conditions (type, status).
    Failed {
        exits: Vec<(String, i32)>,
        conditions: Vec<(String, String)>,
    },
    /// Its state is gone (someone took it down): a failure, as the controller
    /// counts a deleted pod.
    Gone,
}

/// The Job's end (its Complete or Failed condition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `Complete` or `Failed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `BackoffLimitExceeded`, `DeadlineExceeded`, `PodFailurePolicy` (Failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Outcome {
    pub fn complete(&self) -> bool {
        self.kind == "Complete"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make the pod of this attempt (attempts are numbered from 0).
    Start(u32),
    /// An Indexed Job's: make the pod of this attempt for this index.
    StartIndex {
        attempt: u32,
        index: u32,
    },
    /// Take this active pod down (the Job is done or past its deadline).
    Delete(String),
    Finish(Outcome),
}

/// The Job's counts, as its status reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub active: u32,
    pub succeeded: u32,
    pub failed: u32,
}

#[derive(Debug, Clone)]
pub struct JobCore {
    spec: JobSpec,
    started_ms: u64,
    /// How long the Job had been active before `started_ms` (a predecessor's
    /// time, for a resumed core).
    carried_ms: u64,
    /// Active pods by name, and the attempt each is.
    active: Vec<String>,
    /// Failures counted against backoffLimit (pods; restarts are added live).
    failed: u32,
    succeeded: u32,
    next_attempt: u32,
    /// When the last counted failure happened, for the back-off.
    last_failure_ms: Option<u64>,
    done: Option<Outcome>,
    /// Indexed: each active pod's index, and the indexes that succeeded.
    indexes: BTreeMap<String, u32>,
    completed: BTreeSet<u32>,
}

impl JobCore {
    pub fn new(spec: JobSpec, now_ms: u64) -> JobCore {
        JobCore {
            spec,
            started_ms: now_ms,
            carried_ms: 0,
            active: Vec::new(),
            failed: 0,
            succeeded: 0,
            next_attempt: 0,
            last_failure_ms: None,
            done: None,
            indexes: BTreeMap::new(),
            completed: BTreeSet::new(),
        }
    }

    /// An Indexed Job's progress taken up again (after [`JobCore::resume`]):
    /// the active pods' indexes and the indexes that succeeded.
    pub fn with_indexes(
        mut self,
        mut active: BTreeMap<String, u32>,
        mut completed: BTreeSet<u32>,
    ) -> Self {
        // Only indexes below completions are the Job's (the record is
        // podshim's own, but read back as any file).
        let c = self.spec.completions.unwrap_or(0);
        active.retain(|_, i| *i < c);
        completed.retain(|i| *i < c);
        self.indexes = active;
        self.completed = completed;
        self
    }

    /// The active pods' indexes and the completed ones (Indexed).
    pub fn indexes(&self) -> (&BTreeMap<String, u32>, &BTreeSet<u32>) {
        (&self.indexes, &self.completed)
    }

    /// A controller's core taken up again from what its predecessor recorded:
    /// the Job started `elapsed_ms` ago (its deadline runs from then), with
    /// these counts, these pods active and attempts numbered from `next_attempt`
    /// (so no new pod takes an old one's name).
    pub fn resume(
        spec: JobSpec,
        now_ms: u64,
        elapsed_ms: u64,
        counts: &Counts,
        active: Vec<String>,
        next_attempt: u32,
    ) -> JobCore {
        JobCore {
            carried_ms: elapsed_ms,
            active,
            failed: counts.failed,
            succeeded: counts.succeeded,
            next_attempt,
            ..JobCore::new(spec, now_ms)
        }
    }

    /// The active pods and the next attempt's number, for the status (what
    /// [`JobCore::resume`] takes up again).
    pub fn progress(&self) -> (Vec<String>, u32) {
        (self.active.clone(), self.next_attempt)
    }

    pub fn done(&self) -> Option<&Outcome> {
        self.done.as_ref()
    }

    pub fn counts(&self) -> Counts {
        Counts {
            active: self.active.len() as u32,
            succeeded: self.succeeded,
            failed: self.failed,
        }
    }

    /// The caller made the pod of attempt `n`, named `name`.
    pub fn started(&mut self, name: String) {
        self.active.push(name);
    }

    /// The caller made an Indexed Job's pod for `index`, named `name`.
    pub fn started_index(&mut self, name: String, index: u32) {
        self.indexes.insert(name.clone(), index);
        self.active.push(name);
    }

    /// One pass: `observe` says what each active pod does. Returns what to do.
    pub fn step(&mut self, now_ms: u64, observe: impl Fn(&str) -> Observed) -> Vec<Action> {
        if self.done.is_some() {
            return Vec::new();
        }
        let mut actions = Vec::new();
        let mut restarts = 0u32;
        let mut still = Vec::new();
        let mut fail_job = None;
        // Every pod is looked at before anything is decided: a FailJob rule
        // matched by one must still see the others deleted.
        for name in std::mem::take(&mut self.active) {
            match observe(&name) {
                Observed::Active { restarts: r } => {
                    restarts = restarts.saturating_add(r);
                    still.push(name);
                }
                Observed::Succeeded => {
                    self.succeeded += 1;
                    if let Some(i) = self.indexes.remove(&name) {
                        self.completed.insert(i);
                    }
                }
                Observed::Gone => self.count_failure(now_ms),
                Observed::Failed { exits, conditions } => match self.policy(&exits, &conditions) {
                    Some((PodFailureAction::FailJob, index, why)) => {
                        // The pod still counts as failed in the status.
                        self.failed += 1;
                        if fail_job.is_none() {
                            let why = why.replace("{pod}", &name);
                            fail_job =
                                Some(format!("{why} matching FailJob rule at index {index}"));
                        }
                    }
                    // Replaced, not counted.
                    Some((PodFailureAction::Ignore, _, _)) => {}
                    _ => self.count_failure(now_ms),
                },
            }
        }
        self.active = still;
        // Failed pods' indexes are pending again.
        self.indexes.retain(|name, _| self.active.contains(name));
        if let Some(message) = fail_job {
            return self.finish(actions, "PodFailurePolicy", message);
        }
        if let Some(deadline) = self.spec.active_deadline_seconds
            && now_ms
                .saturating_sub(self.started_ms)
                .saturating_add(self.carried_ms)
                >= deadline.saturating_mul(1000)
        {
            return self.finish(
                actions,
                "DeadlineExceeded",
                "Job was active longer than specified deadline".into(),
            );
        }
        // pastBackoffLimitOnFailure: under OnFailure the active pods' restarts
        // reach the limit (any restart when it is 0); failed pods pass it.
        let restarts_past = self.spec.restart_on_failure
            && match self.spec.backoff_limit {
                0 => restarts > 0,
                limit => restarts >= limit,
            };
        if restarts_past || self.failed > self.spec.backoff_limit {
            return self.finish(
                actions,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".into(),
            );
        }
        let active = self.active.len() as u32;
        // Indexed: what counts is the indexes done, not the pods.
        let succeeded = match self.spec.indexed {
            true => self.completed.len() as u32,
            false => self.succeeded,
        };
        let want = match self.spec.completions {
            Some(c) => {
                if succeeded >= c {
                    self.done = Some(Outcome {
                        kind: "Complete".into(),
                        reason: None,
                        message: None,
                    });
                    actions.push(Action::Finish(self.done.clone().expect("just set")));
                    return actions;
                }
                self.spec.parallelism.min(c - succeeded)
            }
            // A work queue: done once one pod succeeded and none is left.
            None if self.succeeded > 0 => {
                if active == 0 {
                    self.done = Some(Outcome {
                        kind: "Complete".into(),
                        reason: None,
                        message: None,
                    });
                    actions.push(Action::Finish(self.done.clone().expect("just set")));
                }
                return actions;
            }
            None => self.spec.parallelism,
        };
        if let Some(at) = self.backoff_until()
            && now_ms < at
        {
            return actions;
        }
        if self.spec.indexed {
            // The lowest indexes neither done nor running.
            let c = self.spec.completions.unwrap_or(0);
            let running: BTreeSet<u32> = self.indexes.values().copied().collect();
            let pending = (0..c).filter(|i| !self.completed.contains(i) && !running.contains(i));
            for index in pending.take(want.saturating_sub(active) as usize) {
                actions.push(Action::StartIndex {
                    attempt: self.next_attempt,
                    index,
                });
                self.next_attempt += 1;
            }
            return actions;
        }
        for _ in active..want {
            actions.push(Action::Start(self.next_attempt));
            self.next_attempt += 1;
        }
        actions
    }

    /// When the next pod may be made after failures: 10 s · 2^(failures-1),
    /// at most 6 minutes, after the last one.
    pub fn backoff_until(&self) -> Option<u64> {
        let last = self.last_failure_ms?;
        let shift = self.failed.saturating_sub(1).min(16);
        Some(last.saturating_add((BACKOFF_MS << shift).min(MAX_BACKOFF_MS)))
    }

    fn count_failure(&mut self, now_ms: u64) {
        self.failed += 1;
        self.last_failure_ms = Some(now_ms);
    }

    fn finish(&mut self, mut actions: Vec<Action>, reason: &str, message: String) -> Vec<Action> {
        self.indexes.clear();
        for name in self.active.drain(..) {
            actions.push(Action::Delete(name));
        }
        let outcome = Outcome {
            kind: "Failed".into(),
            reason: Some(reason.into()),
            message: Some(message),
        };
        self.done = Some(outcome.clone());
        actions.push(Action::Finish(outcome));
        actions
    }

    /// The first podFailurePolicy rule a failed pod matches: its action, index
    /// and what matched (the controller's message).
    fn policy(
        &self,
        exits: &[(String, i32)],
        conditions: &[(String, String)],
    ) -> Option<(PodFailureAction, usize, String)> {
        for (i, rule) in self.spec.pod_failure_policy.iter().enumerate() {
            match &rule.on {
                PodFailureMatch::ExitCodes {
                    container,
                    operator,
                    values,
                } => {
                    let hit = exits.iter().find(|(name, code)| {
                        *code != 0
                            && container.as_ref().is_none_or(|c| c == name)
                            && match operator {
                                ExitCodeOperator::In => values.contains(code),
                                ExitCodeOperator::NotIn => !values.contains(code),
                            }
                    });
                    if let Some((name, code)) = hit {
                        return Some((
                            rule.action,
                            i,
                            // The controller's wording, the pod's name put in by
                            // the caller.
                            format!(
                                "Container {name} for pod {{pod}} failed with exit code {code}"
                            ),
                        ));
                    }
                }
                PodFailureMatch::Conditions(wanted) => {
                    if let Some((t, _)) = wanted.iter().find(|w| conditions.iter().any(|c| c == *w))
                    {
                        return Some((rule.action, i, format!("Pod {{pod}} has condition {t}")));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::workload::PodFailureRule;
    use std::collections::BTreeMap;

    fn spec(completions: Option<u32>, parallelism: u32, backoff: u32) -> JobSpec {
        JobSpec {
            completions,
            parallelism,
            backoff_limit: backoff,
            active_deadline_seconds: None,
            pod_failure_policy: Vec::new(),
            restart_on_failure: false,
            ttl_seconds_after_finished: None,
            indexed: false,
        }
    }

    /// Runs the core against `outcome(attempt)` (what each attempt's pod ends
    /// as), one step per simulated second; returns the outcome, the attempts
    /// made and when the Job ended.
    fn simulate(
        core: &mut JobCore,
        outcome: impl Fn(u32) -> Observed,
        seconds: u64,
    ) -> (Option<Outcome>, Vec<u32>, u64) {
        let mut attempts = Vec::new();
        let mut names: BTreeMap<String, u32> = BTreeMap::new();
        for t in 0..seconds {
            let now = t * 1000;
            let actions = core.step(now, |name| outcome(names[name]));
            for a in actions {
                match a {
                    Action::Start(n) => {
                        attempts.push(n);
                        names.insert(format!("p{n}"), n);
                        core.started(format!("p{n}"));
                    }
                    Action::StartIndex { attempt, index } => {
                        attempts.push(attempt);
                        names.insert(format!("p{attempt}"), attempt);
                        core.started_index(format!("p{attempt}"), index);
                    }
                    Action::Delete(_) => {}
                    Action::Finish(o) => return (Some(o), attempts, t),
                }
            }
        }
        (None, attempts, seconds)
    }

    #[test]
    fn an_indexed_job_completes_once_each_index_succeeded_remaking_failed_indexes_lowest_first() {
        let mut s = spec(Some(3), 2, 6);
        s.indexed = true;
        let mut core = JobCore::new(s, 0);
        let start = |attempt, index| Action::StartIndex { attempt, index };
        assert_eq!(core.step(0, |_| unreachable!()), [start(0, 0), start(1, 1)]);
        core.started_index("a".into(), 0);
        core.started_index("b".into(), 1);
        let failed = Observed::Failed {
            exits: vec![("c".into(), 1)],
            conditions: vec![],
        };
        // Index 0 fails and 1 succeeds: nothing starts during the back-off.
        let step = core.step(1_000, |n| match n {
            "a" => failed.clone(),
            _ => Observed::Succeeded,
        });
        assert_eq!(step, []);
        // Then 0 again before 2, the lowest pending first.
        assert_eq!(
            core.step(11_000, |_| unreachable!()),
            [start(2, 0), start(3, 2)]
        );
        core.started_index("c".into(), 0);
        core.started_index("d".into(), 2);
        // Index 0 done, 2 still running: not complete yet.
        let step = core.step(12_000, |n| match n {
            "c" => Observed::Succeeded,
            _ => Observed::Active { restarts: 0 },
        });
        assert_eq!(step, []);
        let step = core.step(13_000, |_| Observed::Succeeded);
        assert!(
            matches!(&step[..], [Action::Finish(o)] if o.complete()),
            "{step:?}"
        );
        assert_eq!(core.counts().succeeded, 3);
        assert_eq!(core.counts().failed, 1);
        assert_eq!(core.indexes().1, &BTreeSet::from([0, 1, 2]));
    }

    #[test]
    fn completions_run_parallelism_at_a_time_until_enough_succeeded() {
        let mut core = JobCore::new(spec(Some(3), 2, 6), 0);
        let first = core.step(0, |_| Observed::Succeeded);
        assert_eq!(first, [Action::Start(0), Action::Start(1)]);
        core.started("a".into());
        core.started("b".into());
        // Both succeed: one more for the third completion, not two.
        assert_eq!(core.step(1000, |_| Observed::Succeeded), [Action::Start(2)]);
        core.started("c".into());
        let end = core.step(2000, |_| Observed::Succeeded);
        assert!(matches!(&end[..], [Action::Finish(o)] if o.complete()));
        assert_eq!(
            core.counts(),
            Counts {
                active: 0,
                succeeded: 3,
                failed: 0
            }
        );
    }

    #[test]
    fn failures_beyond_the_backoff_limit_fail_the_job_after_backing_off() {
        let mut core = JobCore::new(spec(Some(1), 1, 2), 0);
        let failed = || Observed::Failed {
            exits: vec![("c".into(), 1)],
            conditions: vec![],
        };
        let (outcome, attempts, at) = simulate(&mut core, |_| failed(), 200);
        let outcome = outcome.unwrap();
        assert_eq!(outcome.reason.as_deref(), Some("BackoffLimitExceeded"));
        // Three attempts (backoffLimit 2), the second 10 s and the third 20 s
        // after the failure before it.
        assert_eq!(attempts, [0, 1, 2]);
        assert!((30..=35).contains(&at), "ended at {at}");
    }

    #[test]
    fn a_failed_attempt_is_replaced_and_a_later_success_completes() {
        let mut core = JobCore::new(spec(Some(1), 1, 6), 0);
        let (outcome, attempts, _) = simulate(
            &mut core,
            |n| match n {
                0 => Observed::Failed {
                    exits: vec![("c".into(), 2)],
                    conditions: vec![],
                },
                _ => Observed::Succeeded,
            },
            100,
        );
        assert!(outcome.unwrap().complete());
        assert_eq!(attempts, [0, 1]);
        assert_eq!(core.counts().failed, 1);
    }

    #[test]
    fn on_failure_restarts_reaching_the_backoff_limit_fail_the_job() {
        let on_failure = |limit| JobSpec {
            restart_on_failure: true,
            ..spec(Some(1), 1, limit)
        };
        let mut core = JobCore::new(on_failure(3), 0);
        let (outcome, _, _) = simulate(&mut core, |_| Observed::Active { restarts: 3 }, 10);
        assert_eq!(
            outcome.unwrap().reason.as_deref(),
            Some("BackoffLimitExceeded")
        );
        // One fewer is not past it.
        let mut core = JobCore::new(on_failure(3), 0);
        let (outcome, _, _) = simulate(&mut core, |_| Observed::Active { restarts: 2 }, 10);
        assert_eq!(outcome, None);
        // Under Never, restarts (a sidecar's) are not failures.
        let mut core = JobCore::new(spec(Some(1), 1, 0), 0);
        let (outcome, _, _) = simulate(&mut core, |_| Observed::Active { restarts: 9 }, 10);
        assert_eq!(outcome, None);
    }

    #[test]
    fn a_fail_job_rule_deletes_every_other_active_pod() {
        let mut s = spec(Some(4), 3, 6);
        s.pod_failure_policy = vec![PodFailureRule {
            action: PodFailureAction::FailJob,
            on: PodFailureMatch::ExitCodes {
                container: None,
                operator: ExitCodeOperator::In,
                values: vec![5],
            },
        }];
        let mut core = JobCore::new(s, 0);
        assert_eq!(core.step(0, |_| Observed::Succeeded).len(), 3);
        for n in ["a", "b", "c"] {
            core.started(n.into());
        }
        let actions = core.step(1000, |n| match n {
            "a" => Observed::Failed {
                exits: vec![("m".into(), 5)],
                conditions: vec![],
            },
            _ => Observed::Active { restarts: 0 },
        });
        assert_eq!(
            &actions[..2],
            [Action::Delete("b".into()), Action::Delete("c".into())]
        );
        assert!(
            matches!(&actions[2], Action::Finish(o) if o.reason.as_deref() == Some("PodFailurePolicy"))
        );
        assert_eq!(core.counts().active, 0);
    }

    #[test]
    fn the_active_deadline_fails_the_job_and_deletes_its_pods() {
        let mut s = spec(Some(1), 1, 6);
        s.active_deadline_seconds = Some(5);
        let mut core = JobCore::new(s, 0);
        let mut deleted = Vec::new();
        for t in 0..10 {
            for a in core.step(t * 1000, |_| Observed::Active { restarts: 0 }) {
                match a {
                    Action::Start(n) => core.started(format!("p{n}")),
                    Action::StartIndex { .. } => unreachable!("not an Indexed Job"),
                    Action::Delete(name) => deleted.push(name),
                    Action::Finish(o) => {
                        assert_eq!(o.reason.as_deref(), Some("DeadlineExceeded"));
                        assert_eq!(t, 5);
                        assert_eq!(deleted, ["p0"]);
                        return;
                    }
                }
            }
        }
        panic!("no deadline");
    }

    #[test]
    fn pod_failure_policy_rules_fail_ignore_or_count_in_order() {
        let mut s = spec(Some(1), 1, 0);
        s.pod_failure_policy = vec![
            PodFailureRule {
                action: PodFailureAction::Ignore,
                on: PodFailureMatch::ExitCodes {
                    container: None,
                    operator: ExitCodeOperator::In,
                    values: vec![42],
                },
            },
            PodFailureRule {
                action: PodFailureAction::FailJob,
                on: PodFailureMatch::ExitCodes {
                    container: Some("main".into()),
                    operator: ExitCodeOperator::In,
                    values: vec![3],
                },
            },
        ];
        // 42 is ignored (replaced, not counted, even with backoffLimit 0); then 3
        // fails the Job by the second rule.
        let mut core = JobCore::new(s, 0);
        let (outcome, attempts, _) = simulate(
            &mut core,
            |n| Observed::Failed {
                exits: vec![("main".into(), if n == 0 { 42 } else { 3 })],
                conditions: vec![],
            },
            50,
        );
        let outcome = outcome.unwrap();
        assert_eq!(outcome.reason.as_deref(), Some("PodFailurePolicy"));
        assert_eq!(
            outcome.message.as_deref(),
            Some(
                "Container main for pod p1 failed with exit code 3 matching FailJob rule at index 1"
            )
        );
        assert_eq!(attempts, [0, 1]);
    }

    #[test]
    fn a_work_queue_completes_once_one_pod_succeeded_and_none_is_active() {
        let mut core = JobCore::new(spec(None, 2, 6), 0);
        assert_eq!(core.step(0, |_| Observed::Succeeded).len(), 2);
        core.started("a".into());
        core.started("b".into());
        // a succeeds, b still runs: no new pod, not done.
        assert!(
            core.step(1000, |n| if n == "a" {
                Observed::Succeeded
            } else {
                Observed::Active { restarts: 0 }
            })
            .is_empty()
        );
        let end = core.step(2000, |_| Observed::Succeeded);
        assert!(matches!(&end[..], [Action::Finish(o)] if o.complete()));
    }

    #[test]
    fn a_resumed_core_keeps_its_counts_attempt_numbers_and_deadline() {
        let mut s = spec(Some(3), 1, 6);
        s.active_deadline_seconds = Some(100);
        let counts = Counts {
            active: 1,
            succeeded: 1,
            failed: 2,
        };
        // 90 s into the Job, attempt 3 still running.
        let mut core = JobCore::resume(s, 1_000, 90_000, &counts, vec!["p3".into()], 4);
        assert_eq!(core.counts(), counts);
        let next = core.step(2_000, |_| Observed::Succeeded);
        // p3 succeeded (2 of 3): the next attempt is number 4, not 0.
        assert_eq!(next, [Action::Start(4)]);
        core.started("p4".into());
        // The deadline counts from the Job's start, not the new controller's.
        let end = core.step(11_000, |_| Observed::Active { restarts: 0 });
        assert!(
            matches!(end.last(), Some(Action::Finish(o)) if o.reason.as_deref() == Some("DeadlineExceeded")),
            "{end:?}"
        );
    }

    #[test]
    fn a_pod_taken_down_counts_as_a_failure() {
        let mut core = JobCore::new(spec(Some(1), 1, 0), 0);
        let (outcome, _, _) = simulate(&mut core, |_| Observed::Gone, 10);
        assert_eq!(
            outcome.unwrap().reason.as_deref(),
            Some("BackoffLimitExceeded")
        );
    }
}
