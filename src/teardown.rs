//! PURE: how a pod is taken down, as ordered steps, and the one grace budget they
//! share. Three executors read the same plan: the supervisor (event-driven), `down`
//! when the supervisor is gone (synchronously, through the runtime), and the
//! `stop.sh` renderer (as shell).
//!
//! Kubernetes' order (KEP-753): app containers together, then sidecars and init
//! containers one at a time in reverse order, then the infra; then what the pod
//! holds on the host. The grace period is one budget for the whole pod, as the
//! kubelet applies it; a later step still gets at least [`MIN_GRACE`] (the
//! kubelet's minimum for sidecars), never more than the pod's period.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::model::ContainerKind;
use crate::run_plan::RunPlan;

/// The least grace a container gets when the pod's budget is spent by earlier steps.
pub const MIN_GRACE: Duration = Duration::from_secs(2);

/// How long a container may take to die after SIGKILL before it is deleted anyway.
pub const AFTER_KILL: Duration = Duration::from_secs(2);

/// One step of a teardown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Stop these containers together (indices into [`RunPlan::all`], 0 being the
    /// infra): each gets its stop signal, then SIGKILL to all its processes when
    /// the step's grace is over; then it is deleted from the runtime. Only
    /// containers of this pod's bundles are touched.
    Stop(Vec<usize>),
    /// Detach the pod from its CNI network (DEL), then unpin its network
    /// namespace: after the containers, before the pod's files go.
    Detach(Box<crate::run_plan::PodNetwork>),
    /// The same for a pod whose plan is gone: its attachments found in the CNI
    /// result cache by the infra's id, its namespace at `<pod_dir>/netns` or,
    /// when that pin went with the state, the running infra's (`infra_pid`).
    DetachLost {
        infra_id: String,
        pod_dir: PathBuf,
        infra_pid: Option<i32>,
    },
    /// Remove the pod's cgroup and what the runtime left of its containers'
    /// (these ids) under it, once they are deleted.
    RemoveCgroup {
        cgroup: crate::translate::pod_cgroup::PodCgroup,
        ids: Vec<String>,
    },
    /// Unmount everything podshim mounted under this directory (rootfs overlays,
    /// tmpfs volumes, /dev/shm, subPath binds), deepest first.
    Unmount(PathBuf),
    /// Drop the pod's image lease held by this directory.
    Release(PathBuf),
    /// Remove this directory of podshim's.
    Remove(PathBuf),
}

/// What else goes with the containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The bundles alone (`stop.sh`): stop, unmount; the files stay.
    Bundles,
    /// A pod `up` started: its state directory goes too, and with a pod made from
    /// a manifest (its bundles in the state directory) the bundles and the lease.
    Pod { pod_dir: PathBuf },
}

/// The stop steps of a pod whose containers (infra first, then in start order)
/// are of these kinds.
pub fn stop_order(kinds: &[ContainerKind]) -> Vec<Step> {
    let apps: Vec<usize> = (0..kinds.len())
        .filter(|&i| kinds[i] == ContainerKind::App)
        .collect();
    let mut steps = Vec::new();
    if !apps.is_empty() {
        steps.push(Step::Stop(apps));
    }
    for i in (1..kinds.len()).rev() {
        if matches!(kinds[i], ContainerKind::Init | ContainerKind::Sidecar) {
            steps.push(Step::Stop(vec![i]));
        }
    }
    steps.push(Step::Stop(vec![0]));
    steps
}

/// The steps that take `plan` down.
pub fn plan(run: &RunPlan, scope: &Scope) -> Vec<Step> {
    let kinds: Vec<ContainerKind> = run.all().map(|c| c.kind).collect();
    let mut steps = stop_order(&kinds);
    if let Some(cgroup) = run.cgroup() {
        steps.push(Step::RemoveCgroup {
            cgroup: cgroup.clone(),
            ids: run.ids(),
        });
    }
    if let Some(network) = &run.network {
        steps.push(Step::Detach(Box::new(network.clone())));
    }
    steps.push(Step::Unmount(run.base.clone()));
    if let Scope::Pod { pod_dir } = scope {
        if *pod_dir == run.base {
            steps.push(Step::Release(pod_dir.clone()));
        } else {
            // `up --from DIR`: the generate output keeps its files and its lease.
            steps.push(Step::Unmount(pod_dir.clone()));
        }
        steps.push(Step::Remove(pod_dir.clone()));
    }
    steps
}

/// The pod's grace period, spent across its stop steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    deadline: Instant,
    grace: Duration,
}

/// `at + d`, or as far after `at` as an `Instant` goes: a grace period may be up
/// to 2^63-1 seconds (Kubernetes' int64), which no clock can add.
pub fn far_after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or_else(|| {
        // A century is beyond any pod's life and within every platform's Instant.
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        at.checked_add(d.min(century)).unwrap_or(at)
    })
}

impl Budget {
    pub fn new(started: Instant, grace: Duration) -> Budget {
        Budget {
            deadline: far_after(started, grace),
            grace,
        }
    }

    /// A later stop request with a shorter period: the budget only ever shrinks
    /// (the kubelet's `calculateEffectiveGracePeriod`: a deletion's grace period
    /// "can only decrease"). Whether it did.
    pub fn shorten(&mut self, now: Instant, grace: Duration) -> bool {
        let deadline = far_after(now, grace);
        if deadline >= self.deadline {
            return false;
        }
        self.deadline = deadline;
        self.grace = self.grace.min(grace);
        true
    }

    /// The grace of a step starting at `now`: what is left of the pod's period,
    /// but at least [`MIN_GRACE`] (or the whole period, when it is shorter).
    pub fn for_step(&self, now: Instant) -> Duration {
        self.deadline
            .saturating_duration_since(now)
            .max(MIN_GRACE.min(self.grace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RestartPolicy;

    fn run(kinds: &[ContainerKind]) -> RunPlan {
        let names: Vec<String> = (1..=kinds.len()).map(|i| format!("c{i}")).collect();
        let containers: Vec<(&str, ContainerKind)> = names
            .iter()
            .map(String::as_str)
            .zip(kinds.iter().copied())
            .collect();
        crate::run_plan::fixture(RestartPolicy::Always, 30, &containers)
    }

    use ContainerKind::{App, Init, Sidecar};

    #[test]
    fn apps_stop_together_then_sidecars_and_inits_in_reverse_then_the_infra() {
        type Row = (&'static [ContainerKind], Vec<Step>);
        let unmount = || Step::Unmount("/b".into());
        let rows: Vec<Row> = vec![
            (
                &[App],
                vec![Step::Stop(vec![1]), Step::Stop(vec![0]), unmount()],
            ),
            (
                &[Init, Sidecar, Init, Sidecar, App, App],
                vec![
                    Step::Stop(vec![5, 6]),
                    Step::Stop(vec![4]),
                    Step::Stop(vec![3]),
                    Step::Stop(vec![2]),
                    Step::Stop(vec![1]),
                    Step::Stop(vec![0]),
                    unmount(),
                ],
            ),
            // A pod stopped during its init containers has no app step to wait on.
            (
                &[Init],
                vec![Step::Stop(vec![1]), Step::Stop(vec![0]), unmount()],
            ),
        ];
        for (kinds, want) in rows {
            assert_eq!(plan(&run(kinds), &Scope::Bundles), want, "{kinds:?}");
        }
    }

    #[test]
    fn a_pod_from_a_manifest_goes_with_its_lease_and_one_from_generate_keeps_them() {
        let own = plan(
            &run(&[App]),
            &Scope::Pod {
                pod_dir: "/b".into(),
            },
        );
        assert_eq!(
            own[2..],
            [
                Step::Unmount("/b".into()),
                Step::Release("/b".into()),
                Step::Remove("/b".into())
            ]
        );
        let from = plan(
            &run(&[App]),
            &Scope::Pod {
                pod_dir: "/run/podshim/pods/ns_p".into(),
            },
        );
        assert_eq!(
            from[2..],
            [
                Step::Unmount("/b".into()),
                Step::Unmount("/run/podshim/pods/ns_p".into()),
                Step::Remove("/run/podshim/pods/ns_p".into())
            ]
        );
    }

    #[test]
    fn a_networked_pod_is_detached_after_its_containers_and_before_its_files() {
        let network = crate::run_plan::PodNetwork {
            name: "podshim".into(),
            config: "{}".into(),
            source: "built-in".into(),
            bin_dirs: vec![],
            cache_dir: "/var/lib/cni".into(),
            netns: "/b/netns".into(),
            container_id: "ns_p".into(),
            ifname: "eth0".into(),
            port_mappings: vec![],
            bandwidth: None,
            ips: vec!["10.87.0.2".into()],
        };
        let with = RunPlan {
            network: Some(network.clone()),
            ..run(&[Init, App])
        };
        let steps = plan(
            &with,
            &Scope::Pod {
                pod_dir: "/b".into(),
            },
        );
        assert_eq!(
            steps,
            [
                Step::Stop(vec![2]),
                Step::Stop(vec![1]),
                Step::Stop(vec![0]),
                Step::Detach(Box::new(network)),
                Step::Unmount("/b".into()),
                Step::Release("/b".into()),
                Step::Remove("/b".into())
            ]
        );
    }

    #[test]
    fn the_pod_cgroup_goes_once_every_container_is_deleted() {
        let cgroup = crate::translate::pod_cgroup::PodCgroup {
            path: "/podshim/kubepods/podu".into(),
            cpu_shares: 2,
            cpu_quota: None,
            memory_limit: None,
            pids_limit: None,
            owned_from: "/podshim".into(),
        };
        let mut with = run(&[App]);
        with.setup.push(crate::run_plan::SetupStep::PodCgroup {
            cgroup: cgroup.clone(),
            containers: with.ids(),
        });
        let remove = Step::RemoveCgroup {
            cgroup,
            ids: vec!["ns_p".into(), "ns_p_c1".into()],
        };
        // stop.sh (Scope::Bundles) removes it too: run.sh makes it again.
        assert_eq!(
            plan(&with, &Scope::Bundles),
            [
                Step::Stop(vec![1]),
                Step::Stop(vec![0]),
                remove,
                Step::Unmount("/b".into()),
            ]
        );
    }

    #[test]
    fn a_grace_period_of_2_pow_63_seconds_is_a_budget_not_a_panic() {
        let t0 = Instant::now();
        let b = Budget::new(t0, Duration::from_secs(i64::MAX as u64));
        assert!(b.for_step(t0) > Duration::from_secs(365 * 24 * 3600));
        let b = Budget::new(t0, Duration::MAX);
        assert!(b.for_step(t0) > Duration::from_secs(365 * 24 * 3600));
    }

    #[test]
    fn one_grace_budget_for_the_whole_pod_with_a_floor_per_step() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // (grace, seconds spent before the step, the step's grace)
        let rows = [
            (30, 0, 30),
            (30, 10, 20),
            (30, 29, 2),
            (30, 45, 2),
            (1, 0, 1),
            (1, 5, 1),
            (0, 0, 0),
            (0, 3, 0),
        ];
        for (grace, spent, want) in rows {
            let b = Budget::new(t0, s(grace));
            assert_eq!(b.for_step(t0 + s(spent)), s(want), "{grace} {spent}");
        }
    }
}
