//! `up` of a file whose pods may already run: what to start, replace and stop
//! so that each controller has the pods its manifest asks for, in the order and
//! at the pace its strategy allows (the deployment controller's rolling update,
//! the StatefulSet controller's ordinals). The decisions are here; the starts
//! and stops go through [`PodOps`], a real one in `pod::apply`, a fake in the
//! tests.

use std::collections::BTreeSet;

use crate::model::workload::{UpdateStrategy, Workload, WorkloadKind};
use crate::model::{Pod, PodKey};

/// A pod that exists, and the hash of what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub key: PodKey,
    pub hash: String,
    /// Running and ready: it counts as available in a rollout.
    pub ready: bool,
}

/// Starting and stopping pods: each call's pods at once, returning when all
/// run (and with `ready`, are ready) or are gone.
pub trait PodOps {
    fn start(&mut self, pods: &[&Pod], ready: bool) -> Result<(), String>;
    fn stop(&mut self, keys: &[PodKey]) -> Result<(), String>;
    /// Returns once each of `keys` (started ready) has been ready for
    /// `seconds` without a break: available, as `minReadySeconds` has it.
    fn wait_available(&mut self, keys: &[PodKey], seconds: u32) -> Result<(), String>;
}

/// `ops.start(pods, true)`, then, under `minReadySeconds`, until they are
/// available (podutil.IsPodAvailable): what a rollout and OrderedReady wait for
/// before the next step.
fn start_available(w: &Workload, pods: &[&Pod], ops: &mut dyn PodOps) -> Result<(), String> {
    ops.start(pods, true)?;
    if w.min_ready_seconds > 0 {
        let keys: Vec<PodKey> = pods.iter().map(|p| p.key.clone()).collect();
        ops.wait_available(&keys, w.min_ready_seconds)?;
    }
    Ok(())
}

/// What `up` did to one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Started(PodKey),
    /// Stopped and started again from the changed manifest.
    Replaced(PodKey),
    Stopped(PodKey),
    Unchanged(PodKey),
}

impl Change {
    pub fn key(&self) -> &PodKey {
        match self {
            Change::Started(k)
            | Change::Replaced(k)
            | Change::Stopped(k)
            | Change::Unchanged(k) => k,
        }
    }
}

/// Brings `workload` to `desired` (its pods as the manifest names them now) from
/// `existing` (the pods it owns that run).
pub fn apply(
    w: &Workload,
    desired: &[&Pod],
    existing: &[Existing],
    ops: &mut dyn PodOps,
) -> Result<Vec<Change>, String> {
    match w.kind {
        WorkloadKind::StatefulSet => ordinals(w, desired, existing, ops),
        WorkloadKind::Job => Ok(Vec::new()),
        _ => replicas(w, desired, existing, ops),
    }
}

/// Deployments, ReplicaSets and DaemonSets: pods named by template hash and
/// slot, so new pods never share an old one's name.
fn replicas(
    w: &Workload,
    desired: &[&Pod],
    existing: &[Existing],
    ops: &mut dyn PodOps,
) -> Result<Vec<Change>, String> {
    let mut changes = Vec::new();
    let wanted: BTreeSet<&PodKey> = desired.iter().map(|p| &p.key).collect();
    let have: BTreeSet<&PodKey> = existing.iter().map(|e| &e.key).collect();
    // Pods of the current template beyond `replicas`: scaled down first.
    let surplus: Vec<PodKey> = existing
        .iter()
        .filter(|e| e.hash == w.template_hash && !wanted.contains(&e.key))
        .map(|e| e.key.clone())
        .collect();
    if !surplus.is_empty() {
        ops.stop(&surplus)?;
        changes.extend(surplus.into_iter().map(Change::Stopped));
    }
    // Old pods, the unready first: they go first, as they are not available
    // anyway (the deployment controller's cleanupUnhealthyReplicas).
    let mut old_pods: Vec<&Existing> = existing
        .iter()
        .filter(|e| e.hash != w.template_hash)
        .collect();
    old_pods.sort_by_key(|e| e.ready);
    let mut old_unready = old_pods.iter().filter(|e| !e.ready).count();
    let mut old: Vec<PodKey> = old_pods.into_iter().map(|e| e.key.clone()).collect();
    let current_unready = existing
        .iter()
        .filter(|e| e.hash == w.template_hash && wanted.contains(&e.key) && !e.ready)
        .count();
    let mut missing: Vec<&Pod> = desired
        .iter()
        .copied()
        .filter(|p| !have.contains(&p.key))
        .collect();
    changes.extend(
        desired
            .iter()
            .filter(|p| have.contains(&p.key))
            .map(|p| Change::Unchanged(p.key.clone())),
    );
    let n = w.replicas;
    let mut current = desired.len() - missing.len();
    match w.strategy {
        UpdateStrategy::Recreate => {
            if !old.is_empty() {
                ops.stop(&old)?;
                changes.extend(old.drain(..).map(Change::Stopped));
            }
            if !missing.is_empty() {
                ops.start(&missing, false)?;
                changes.extend(missing.drain(..).map(|p| Change::Started(p.key.clone())));
            }
        }
        UpdateStrategy::OnDelete => {
            // Old pods stay until they are gone; only the shortfall is made up.
            let room = (n as usize).saturating_sub(old.len() + current);
            let start: Vec<&Pod> = missing.iter().copied().take(room).collect();
            if !start.is_empty() {
                ops.start(&start, false)?;
                changes.extend(start.iter().map(|p| Change::Started(p.key.clone())));
            }
        }
        UpdateStrategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } => {
            // The deployment controller's fenceposts: surge rounds up,
            // unavailability down, and never both zero.
            let surge = max_surge.resolve(n, true) as usize;
            let mut unavailable = max_unavailable.resolve(n, false) as usize;
            if surge == 0 && unavailable == 0 {
                unavailable = 1;
            }
            let n = n as usize;
            let rolling = !old.is_empty();
            while !old.is_empty() || !missing.is_empty() {
                let available = (old.len() - old_unready) + current.saturating_sub(current_unready);
                // Old pods that may go while `n - unavailable` stay available
                // (the unready ones always may).
                let stop = old_unready
                    + (old.len() - old_unready)
                        .min(available.saturating_sub(n.saturating_sub(unavailable)));
                // New pods that fit under `n + surge`.
                let total = old.len() - stop + current;
                let start = missing.len().min((n + surge).saturating_sub(total));
                if stop == 0 && start == 0 {
                    return Err(format!(
                        "{}: the rollout cannot progress (maxSurge {surge}, maxUnavailable {unavailable})",
                        w.display()
                    ));
                }
                if stop > 0 {
                    old_unready = 0;
                    let gone: Vec<PodKey> = old.drain(..stop).collect();
                    ops.stop(&gone)?;
                    changes.extend(gone.into_iter().map(Change::Stopped));
                }
                if start > 0 {
                    let batch: Vec<&Pod> = missing.drain(..start).collect();
                    // A rollout waits for each new pod to be available before an
                    // old one goes (ready, for minReadySeconds).
                    if rolling {
                        start_available(w, &batch, ops)?;
                    } else {
                        ops.start(&batch, false)?;
                    }
                    current += batch.len();
                    changes.extend(batch.iter().map(|p| Change::Started(p.key.clone())));
                }
            }
        }
    }
    Ok(changes)
}

/// StatefulSets: pods named by ordinal; a changed template replaces a pod in
/// place, from the highest ordinal down (the controller's RollingUpdate, one at a
/// time, each ready before the next); scaling starts missing ordinals in order
/// and stops surplus ones from the highest.
fn ordinals(
    w: &Workload,
    desired: &[&Pod],
    existing: &[Existing],
    ops: &mut dyn PodOps,
) -> Result<Vec<Change>, String> {
    let mut changes = Vec::new();
    let wanted: BTreeSet<&PodKey> = desired.iter().map(|p| &p.key).collect();
    let ordinal = |k: &PodKey| {
        k.name
            .as_str()
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut surplus: Vec<PodKey> = existing
        .iter()
        .filter(|e| !wanted.contains(&e.key))
        .map(|e| e.key.clone())
        .collect();
    surplus.sort_by_key(|k| std::cmp::Reverse(ordinal(k)));
    if !surplus.is_empty() {
        if w.ordered {
            for k in &surplus {
                ops.stop(std::slice::from_ref(k))?;
            }
        } else {
            ops.stop(&surplus)?;
        }
        changes.extend(surplus.into_iter().map(Change::Stopped));
    }
    let find = |k: &PodKey| existing.iter().find(|e| &e.key == k);
    let missing: Vec<&Pod> = desired
        .iter()
        .copied()
        .filter(|p| find(&p.key).is_none())
        .collect();
    if !missing.is_empty() {
        if w.ordered {
            // OrderedReady: each ordinal running and available (ready, for
            // minReadySeconds) before the next (isRunningAndAvailable).
            for p in &missing {
                start_available(w, &[p], ops)?;
            }
        } else {
            ops.start(&missing, false)?;
        }
        changes.extend(missing.iter().map(|p| Change::Started(p.key.clone())));
    }
    let mut stale: Vec<&Pod> = desired
        .iter()
        .copied()
        .filter(|p| find(&p.key).is_some_and(|e| e.hash != w.template_hash))
        .collect();
    stale.sort_by_key(|p| std::cmp::Reverse(ordinal(&p.key)));
    for p in desired {
        if find(&p.key).is_some_and(|e| e.hash == w.template_hash)
            || (w.strategy == UpdateStrategy::OnDelete && find(&p.key).is_some())
        {
            changes.push(Change::Unchanged(p.key.clone()));
        }
    }
    if w.strategy != UpdateStrategy::OnDelete {
        for p in stale {
            ops.stop(std::slice::from_ref(&p.key))?;
            start_available(w, &[p], ops)?;
            changes.push(Change::Replaced(p.key.clone()));
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::workload::IntOrPercent;

    #[derive(Default)]
    struct Fake {
        log: Vec<String>,
        running: BTreeSet<String>,
        /// The most pods that ran at once, and the fewest during a rollout.
        peak: usize,
        low: Option<usize>,
    }

    impl PodOps for Fake {
        fn start(&mut self, pods: &[&Pod], ready: bool) -> Result<(), String> {
            let names: Vec<&str> = pods.iter().map(|p| p.name()).collect();
            self.log.push(format!(
                "start{} {}",
                if ready { "+ready" } else { "" },
                names.join(",")
            ));
            self.running.extend(names.iter().map(|n| n.to_string()));
            self.peak = self.peak.max(self.running.len());
            Ok(())
        }
        fn stop(&mut self, keys: &[PodKey]) -> Result<(), String> {
            let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
            self.log.push(format!("stop {}", names.join(",")));
            for n in names {
                self.running.remove(n);
            }
            self.low = Some(
                self.low
                    .map_or(self.running.len(), |l| l.min(self.running.len())),
            );
            Ok(())
        }
        fn wait_available(&mut self, keys: &[PodKey], seconds: u32) -> Result<(), String> {
            let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
            self.log
                .push(format!("available {} after {seconds}s", names.join(",")));
            Ok(())
        }
    }

    fn set(yaml: &str) -> crate::manifest::ManifestSet {
        crate::manifest::parse_set(yaml, "t", Default::default()).unwrap()
    }

    fn deployment(replicas: u32, image: &str, strategy: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n{strategy}  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: c, image: {image}}}]\n"
        )
    }

    fn existing(s: &crate::manifest::ManifestSet) -> Vec<Existing> {
        s.pods
            .iter()
            .map(|p| Existing {
                key: p.key.clone(),
                hash: p.template_hash.clone(),
                ready: true,
            })
            .collect()
    }

    fn run(s: &crate::manifest::ManifestSet, have: &[Existing], fake: &mut Fake) -> Vec<Change> {
        let w = &s.workloads[0];
        let desired: Vec<&Pod> = s.pods_of(w).collect();
        apply(w, &desired, have, fake).unwrap()
    }

    #[test]
    fn a_first_up_starts_every_replica_at_once() {
        let s = set(&deployment(3, "a", ""));
        let mut fake = Fake::default();
        run(&s, &[], &mut fake);
        assert_eq!(fake.log.len(), 1);
        assert!(fake.log[0].starts_with("start web-"), "{:?}", fake.log);
        assert_eq!(fake.running.len(), 3);
    }

    #[test]
    fn an_unchanged_file_changes_nothing() {
        let s = set(&deployment(3, "a", ""));
        let mut fake = Fake::default();
        let changes = run(&s, &existing(&s), &mut fake);
        assert!(fake.log.is_empty());
        assert!(changes.iter().all(|c| matches!(c, Change::Unchanged(_))));
    }

    #[test]
    fn scaling_starts_or_stops_only_the_difference() {
        let three = set(&deployment(3, "a", ""));
        let five = set(&deployment(5, "a", ""));
        let mut fake = Fake::default();
        run(&five, &existing(&three), &mut fake);
        assert_eq!(fake.log.len(), 1);
        assert_eq!(
            fake.log[0].matches(',').count(),
            1,
            "two new pods: {:?}",
            fake.log
        );
        let mut fake = Fake::default();
        let changes = run(&three, &existing(&five), &mut fake);
        assert_eq!(fake.log.len(), 1);
        assert!(fake.log[0].starts_with("stop "));
        assert_eq!(
            changes
                .iter()
                .filter(|c| matches!(c, Change::Stopped(_)))
                .count(),
            2
        );
    }

    #[test]
    fn a_rolling_update_keeps_within_max_surge_and_max_unavailable() {
        let strategy = "  strategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n";
        let old = set(&deployment(4, "a", strategy));
        let new = set(&deployment(4, "b", strategy));
        let mut fake = Fake {
            running: old.pods.iter().map(|p| p.name().to_string()).collect(),
            ..Default::default()
        };
        run(&new, &existing(&old), &mut fake);
        // One new pod (ready) before each old one goes: never more than 5, never
        // fewer than 4.
        assert_eq!(fake.peak, 5, "{:?}", fake.log);
        assert_eq!(fake.low, Some(4), "{:?}", fake.log);
        assert_eq!(fake.log.len(), 8, "{:?}", fake.log);
        assert!(fake.log[0].starts_with("start+ready "), "{:?}", fake.log);
        let names: BTreeSet<String> = new.pods.iter().map(|p| p.name().to_string()).collect();
        assert_eq!(fake.running, names);
    }

    #[test]
    fn a_default_rolling_update_of_four_goes_one_down_one_up() {
        // 25%: maxSurge 1 (rounded up), maxUnavailable 1 (rounded down).
        let old = set(&deployment(4, "a", ""));
        let new = set(&deployment(4, "b", ""));
        let mut fake = Fake {
            running: old.pods.iter().map(|p| p.name().to_string()).collect(),
            ..Default::default()
        };
        run(&new, &existing(&old), &mut fake);
        assert!(fake.peak <= 5 && fake.low >= Some(3), "{:?}", fake.log);
        assert_eq!(fake.running.len(), 4);
    }

    #[test]
    fn unready_old_pods_go_first_and_do_not_count_as_available() {
        let strategy = "  strategy:\n    rollingUpdate: {maxSurge: 0, maxUnavailable: 1}\n";
        let old = set(&deployment(3, "a", strategy));
        let new = set(&deployment(3, "b", strategy));
        let mut have = existing(&old);
        have[2].ready = false;
        let unready = have[2].key.name.to_string();
        let mut fake = Fake {
            running: old.pods.iter().map(|p| p.name().to_string()).collect(),
            ..Default::default()
        };
        run(&new, &have, &mut fake);
        // The unready pod goes first, alone: two ready ones stay while the
        // first new pod starts (maxUnavailable 1 of 3 was already spent).
        assert_eq!(fake.log[0], format!("stop {unready}"), "{:?}", fake.log);
        assert!(fake.log[1].starts_with("start+ready "), "{:?}", fake.log);
        assert_eq!(fake.low, Some(2), "{:?}", fake.log);
        assert_eq!(fake.running.len(), 3);
    }

    #[test]
    fn recreate_stops_every_old_pod_before_starting_new_ones() {
        let strategy = "  strategy: {type: Recreate}\n";
        let old = set(&deployment(2, "a", strategy));
        let new = set(&deployment(2, "b", strategy));
        let mut fake = Fake::default();
        run(&new, &existing(&old), &mut fake);
        assert_eq!(fake.log.len(), 2);
        assert!(fake.log[0].starts_with("stop ") && fake.log[1].starts_with("start "));
    }

    #[test]
    fn percent_fenceposts_round_as_the_deployment_controller() {
        assert_eq!(IntOrPercent::Percent(25).resolve(10, true), 3);
        assert_eq!(IntOrPercent::Percent(25).resolve(10, false), 2);
        assert_eq!(IntOrPercent::Percent(25).resolve(1, false), 0);
    }

    fn statefulset(replicas: u32, image: &str, policy: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db}}\nspec:\n  replicas: {replicas}\n{policy}  selector: {{matchLabels: {{app: db}}}}\n  template:\n    metadata: {{labels: {{app: db}}}}\n    spec:\n      containers: [{{name: c, image: {image}}}]\n"
        )
    }

    #[test]
    fn statefulset_pods_start_in_ordinal_order_each_ready_before_the_next() {
        let s = set(&statefulset(3, "a", ""));
        let mut fake = Fake::default();
        run(&s, &[], &mut fake);
        assert_eq!(
            fake.log,
            ["start+ready db-0", "start+ready db-1", "start+ready db-2"]
        );
        let parallel = set(&statefulset(3, "a", "  podManagementPolicy: Parallel\n"));
        let mut fake = Fake::default();
        run(&parallel, &[], &mut fake);
        assert_eq!(fake.log, ["start db-0,db-1,db-2"]);
    }

    #[test]
    fn min_ready_seconds_holds_each_rollout_step_and_ordinal_until_the_pods_are_available() {
        let min = "  minReadySeconds: 7\n";
        // A rollout: each new pod available before the next old one goes.
        let strategy =
            format!("{min}  strategy:\n    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}\n");
        let old = set(&deployment(2, "a", &strategy));
        let new = set(&deployment(2, "b", &strategy));
        let mut fake = Fake::default();
        run(&new, &existing(&old), &mut fake);
        let steps: Vec<&str> = fake
            .log
            .iter()
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "start+ready",
                "available",
                "stop",
                "start+ready",
                "available",
                "stop"
            ],
            "{:?}",
            fake.log
        );
        assert!(fake.log[1].ends_with(" after 7s"), "{:?}", fake.log);
        // A first up starts them all at once, waiting for no one.
        let mut fake = Fake::default();
        run(&new, &[], &mut fake);
        assert_eq!(fake.log.len(), 1, "{:?}", fake.log);
        // OrderedReady: each ordinal available before the next.
        let s = set(&statefulset(2, "a", min));
        let mut fake = Fake::default();
        run(&s, &[], &mut fake);
        assert_eq!(
            fake.log,
            [
                "start+ready db-0",
                "available db-0 after 7s",
                "start+ready db-1",
                "available db-1 after 7s"
            ]
        );
    }

    #[test]
    fn statefulset_updates_replace_from_the_highest_ordinal_and_scale_down_from_it() {
        let old = set(&statefulset(3, "a", ""));
        let new = set(&statefulset(2, "b", ""));
        let mut fake = Fake::default();
        let changes = run(&new, &existing(&old), &mut fake);
        assert_eq!(
            fake.log,
            [
                "stop db-2",
                "stop db-1",
                "start+ready db-1",
                "stop db-0",
                "start+ready db-0"
            ]
        );
        assert!(changes.contains(&Change::Replaced(new.pods[0].key.clone())));
        let on_delete = set(&statefulset(2, "b", "  updateStrategy: {type: OnDelete}\n"));
        let mut fake = Fake::default();
        run(&on_delete, &existing(&old), &mut fake);
        assert_eq!(fake.log, ["stop db-2"]);
    }
}
