//! `up` of a manifest set: its bare Pods and its controllers brought to what the
//! file asks ([`crate::workload::apply`] decides; this starts and stops pods, each
//! call's pods in parallel, one thread per pod), and which pods a file owns (for
//! `down FILE` and `watch`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{PodError, Source, StartOptions, StopOptions, list};
use crate::image::{PullOptions, Store};
use crate::manifest::{Manifest, ManifestSet};
use crate::model::{Pod, PodKey};
use crate::paths::Paths;
use crate::state::PodState;
use crate::workload::apply::{Change, Existing, PodOps};

/// Pods started and stopped for real.
pub struct Ops<'a> {
    pub paths: &'a Paths,
    pub store: &'a Store,
    pub start: StartOptions,
    pub stop: StopOptions,
    pub pull: PullOptions,
    /// The manifest as named on the command line (the generated README's), and
    /// its absolute path (kept in each pod's state).
    pub file: String,
    pub path: Option<PathBuf>,
    /// Every pod started, with its state once it ran.
    pub started: Vec<(PathBuf, PodState)>,
    /// The first error, as it was (its exit status is the CLI's).
    pub error: Option<PodError>,
    /// Claims removed with the ordinals a scale-down removed
    /// (`persistentVolumeClaimRetentionPolicy.whenScaled: Delete`), `ns/name`.
    pub removed_claims: Vec<String>,
    /// What did not stop the apply but should be said (a claim kept in use).
    pub warnings: Vec<String>,
}

impl Ops<'_> {
    fn fail(&mut self, errors: Vec<PodError>) -> Result<(), String> {
        if errors.is_empty() {
            return Ok(());
        }
        let message = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        if self.error.is_none() {
            self.error = errors.into_iter().next();
        }
        Err(message)
    }
}

impl PodOps for Ops<'_> {
    fn start(&mut self, pods: &[&Pod], ready: bool) -> Result<(), String> {
        // One listing of the runtime's containers for the whole batch: a pod
        // whose ids another holds is refused, the others start.
        let mut refused = Vec::new();
        let mut pods: Vec<&Pod> = pods.to_vec();
        let listed = pods.len() > 1;
        if listed {
            let runtime = crate::runtime::CliRuntime::direct(self.start.runtime.clone());
            let ids: Vec<Vec<String>> = pods.iter().map(|p| super::start::runtime_ids(p)).collect();
            let all: Vec<&String> = ids.iter().flatten().collect();
            let taken = match runtime.list_matching(&|id| all.iter().any(|i| *i == id)) {
                Ok(taken) => taken,
                Err(e) => return self.fail(vec![e.into()]),
            };
            let mut keep = Vec::new();
            for (pod, ids) in pods.iter().zip(&ids) {
                match taken.iter().find(|s| ids.contains(&s.id)) {
                    Some(state) => refused.push(PodError::IdInUse {
                        pod: pod.key.clone(),
                        id: state.id.clone(),
                        holder: super::start::describe(state),
                    }),
                    None => keep.push(*pod),
                }
            }
            pods = keep;
        }
        let opts = StartOptions {
            wait_ready: self.start.wait_ready || ready,
            ids_checked: self.start.ids_checked || listed,
            ..self.start.clone()
        };
        let results: Vec<Result<super::start::Started, PodError>> = parallel(&pods, |pod| {
            let source = Source::Manifest {
                manifest: Box::new(Manifest {
                    pod: (*pod).clone(),
                    warnings: Vec::new(),
                }),
                file: self.file.clone(),
                pull: Box::new(self.pull.clone()),
                path: self.path.clone(),
            };
            super::start(self.paths, self.store, source, &opts)
        });
        let mut errors = refused;
        for r in results {
            match r {
                Ok(started) => self.started.push((started.pod_dir, started.state)),
                Err(e) => errors.push(e),
            }
        }
        self.fail(errors)
    }

    fn stop(&mut self, keys: &[PodKey]) -> Result<(), String> {
        let results = stop_all(self.paths, self.store, keys, &self.stop);
        let errors = results.into_iter().filter_map(Result::err).collect();
        self.fail(errors)
    }

    fn wait_available(&mut self, keys: &[PodKey], seconds: u32) -> Result<(), String> {
        // Each pod's ready streak, from its states as the supervisor writes
        // them: one that stops being ready starts over (podutil.IsPodAvailable
        // counts from the Ready condition's last transition). up's --timeout
        // bounds how long a pod may take to be ready, as it bounds a start;
        // the streak comes on top of it (a minReadySeconds of any length
        // works, as it does under a Deployment's progressDeadlineSeconds).
        let need = Duration::from_secs(u64::from(seconds));
        let deadline =
            crate::teardown::far_after(Instant::now(), self.start.timeout.saturating_add(need));
        let mut since: Vec<Option<Instant>> = vec![None; keys.len()];
        loop {
            let now = Instant::now();
            let mut waiting = Vec::new();
            for (key, since) in keys.iter().zip(since.iter_mut()) {
                let why = match list::read_pod(self.paths, key) {
                    Ok((_, s)) => super::ready::not_ready(&s),
                    Err(e) => Some(e.to_string()),
                };
                match why {
                    None => {
                        let at = *since.get_or_insert(now);
                        if now.duration_since(at) < need {
                            waiting.push(format!(
                                "{key}: ready for {}s",
                                now.duration_since(at).as_secs()
                            ));
                        }
                    }
                    Some(why) => {
                        *since = None;
                        waiting.push(format!("{key}: {why}"));
                    }
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if now >= deadline {
                return Err(format!(
                    "not available (ready for minReadySeconds {seconds}) within --timeout: {}",
                    waiting.join("; ")
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Stops every pod of `keys` at once (each within its own grace period), one
/// thread each; the reports in the order of `keys`.
pub fn stop_all(
    paths: &Paths,
    store: &Store,
    keys: &[PodKey],
    opts: &StopOptions,
) -> Vec<Result<super::StopReport, PodError>> {
    parallel(keys, |key| super::stop(paths, store, key, opts))
}

/// How many pods start or stop at once: each runs the runtime several times
/// (the infra, every container), and more at once than the machine has cores
/// for only makes them contend.
fn parallelism() -> usize {
    // 4 per core: on 2 cores, 2 to 20 at once timed alike (within the
    // machine's noise) for a Deployment of 20; a bound keeps 500 pods from
    // being 500 threads.
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 4
}

/// `f` of every item, at most [`parallelism`] at a time, results in the
/// items' order. A thread the system refuses runs its share here instead.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(item) = items.get(i) else { break };
            let r = f(item);
            results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
        }
    };
    std::thread::scope(|s| {
        let workers = parallelism().min(items.len());
        for _ in 1..workers {
            if std::thread::Builder::new().spawn_scoped(s, work).is_err() {
                break;
            }
        }
        work();
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was worked"))
        .collect()
}

/// What `up` did, pod by pod, in order.
pub type Changes = Vec<Change>;

/// Brings every pod of `set` to what it asks. A bare Pod that exists from
/// another manifest (or from none) is refused unless `replace`; one of this
/// manifest whose document changed is replaced; controllers apply.
pub fn apply(set: &ManifestSet, ops: &mut Ops<'_>, replace: bool) -> Result<Changes, PodError> {
    let records = list::all_pods(ops.paths);
    let mut changes = Vec::new();
    let mut fresh: Vec<&Pod> = Vec::new();
    let mut stale: Vec<&Pod> = Vec::new();
    for pod in set.bare_pods() {
        let existing = records
            .iter()
            .find(|(_, s)| s.namespace == pod.namespace() && s.name == pod.name());
        let same_file = |s: &PodState| s.origin.manifest.is_some() && s.origin.manifest == ops.path;
        match existing {
            None => fresh.push(pod),
            // --replace replaces whatever runs (the unit's restart after a
            // crash finds pods it cannot trust).
            Some(_) if replace => stale.push(pod),
            Some((_, s)) if same_file(s) && s.origin.template_hash == pod.template_hash => {
                changes.push(Change::Unchanged(pod.key.clone()));
            }
            Some((_, s)) if same_file(s) => stale.push(pod),
            Some(_) => return Err(PodError::AlreadyExists(pod.key.clone())),
        }
    }
    if !fresh.is_empty() {
        let _ = ops.start(&fresh, false);
        changes.extend(fresh.iter().map(|p| Change::Started(p.key.clone())));
    }
    if ops.error.is_none() {
        for pod in stale {
            // The same name: the old pod goes first.
            if ops.stop(std::slice::from_ref(&pod.key)).is_err()
                || ops.start(&[pod], false).is_err()
            {
                break;
            }
            changes.push(Change::Replaced(pod.key.clone()));
        }
    }
    for w in &set.workloads {
        if ops.error.is_some() {
            break;
        }
        let mine: Vec<&PodState> = records
            .iter()
            .map(|(_, s)| s)
            .filter(|s| is_of_workload(s, w))
            .collect();
        let relabeled: Vec<Pod>;
        let desired: Vec<&Pod> = match w.kind {
            crate::model::workload::WorkloadKind::DaemonSet => {
                let generation = daemonset_generation(w, &mine);
                relabeled = set
                    .pods_of(w)
                    .map(|p| {
                        let mut p = p.clone();
                        p.labels
                            .insert(TEMPLATE_GENERATION.to_string(), generation.to_string());
                        p
                    })
                    .collect();
                relabeled.iter().collect()
            }
            _ => set.pods_of(w).collect(),
        };
        // The same workload started from another file (or stdin) is that
        // file's, as a bare Pod is: taken over only under --replace.
        if !replace
            && let Some(other) = mine
                .iter()
                .find(|s| s.origin.manifest.is_none() || s.origin.manifest != ops.path)
        {
            return Err(PodError::Invalid(format!(
                "{} {}/{} already runs, started from {}: `podshim down` it first, or `up --replace`",
                w.kind.resource(),
                w.namespace,
                w.name,
                other
                    .origin
                    .manifest
                    .as_ref()
                    .map_or("another input".to_string(), |m| m.display().to_string())
            )));
        }
        // A Job's pods are its controller's: one that ended is its record
        // (kept until the Job goes), never "replaced" here.
        if w.kind == crate::model::workload::WorkloadKind::Job {
            continue;
        }
        let in_range =
            |o: u32| (w.ordinal_start..w.ordinal_start.saturating_add(w.replicas)).contains(&o);
        if w.claim_retention.delete_when_scaled {
            // whenScaled: Delete (KEP-1847) acts on the pods a scale-down
            // condemns: their claims are marked here, before any pod stops,
            // and go once free, at this `up` or a later one. Claims of
            // ordinals scaled away under Retain stay as they are.
            let condemned: Vec<u32> = mine
                .iter()
                .filter_map(|s| w.pod_ordinal(&s.name))
                .filter(|o| !in_range(*o))
                .collect();
            mark_scaled_away(ops, w, &condemned, true);
        }
        // An ordinal back in range keeps its claim, unmarked (whatever the
        // policy now: a mark is only for the scale-down that made it). Only a
        // set with claim templates has claims to look through.
        if !w.claim_templates.is_empty() {
            let back: Vec<u32> = crate::workload::claims::list(ops.store.root())
                .into_iter()
                .filter(|v| v.record.namespace == w.namespace.as_str() && v.record.scaled_away)
                .filter_map(|v| w.owns_claim(&v.record.name))
                .filter(|o| in_range(*o))
                .collect();
            mark_scaled_away(ops, w, &back, false);
        }
        // A controller's pod that ended (Failed, its supervisor gone) is
        // replaced, as the ReplicaSet controller counts only active pods and
        // the StatefulSet controller recreates a failed ordinal.
        let (dead, mine): (Vec<&PodState>, Vec<&PodState>) = mine.into_iter().partition(|s| {
            matches!(
                s.phase,
                crate::state::PodPhase::Failed | crate::state::PodPhase::Succeeded
            ) || s
                .supervisor_pid
                .is_none_or(|pid| !list::supervisor_alive(pid, &ops.paths.pod_dir(&s.pod_id)))
        });
        let dead: Vec<PodKey> = dead
            .iter()
            .filter_map(|s| PodKey::parse(&s.name, Some(&s.namespace)).ok())
            .collect();
        if !dead.is_empty() {
            if ops.stop(&dead).is_err() {
                break;
            }
            changes.extend(dead.into_iter().map(Change::Stopped));
        }
        let existing: Vec<Existing> = mine
            .into_iter()
            .filter_map(|s| {
                Some(Existing {
                    key: PodKey::parse(&s.name, Some(&s.namespace)).ok()?,
                    hash: s.origin.template_hash.clone(),
                    ready: super::ready::not_ready(s).is_none(),
                })
            })
            .collect();
        match crate::workload::apply::apply(w, &desired, &existing, ops) {
            Ok(c) => {
                if w.claim_retention.delete_when_scaled {
                    // The marked claims of ordinals outside start..start +
                    // replicas: they go once their pods have. Found from the
                    // marks, not from this run's scale-down, so one left by a
                    // failed `up` goes with the next; one a pod still uses is
                    // kept for later, with a warning (pvc-protection delays a
                    // delete).
                    let claims: Vec<String> = crate::workload::claims::list(ops.store.root())
                        .into_iter()
                        .filter(|v| {
                            v.record.namespace == w.namespace.as_str() && v.record.scaled_away
                        })
                        .filter(|v| w.owns_claim(&v.record.name).is_some_and(|o| !in_range(o)))
                        .map(|v| v.record.name)
                        .collect();
                    let (removed, _, error) = remove_claims(
                        ops.paths,
                        ops.store,
                        &w.namespace,
                        &claims,
                        &w.uid,
                        ops.path.as_deref(),
                    );
                    ops.removed_claims.extend(removed);
                    if let Some(e) = error {
                        ops.warnings.push(format!(
                            "{}: whenScaled: Delete: {e} (tried again at the next up)",
                            w.display()
                        ));
                    }
                }
                changes.extend(c)
            }
            Err(message) if ops.error.is_none() => return Err(PodError::Invalid(message)),
            Err(_) => break,
        }
    }
    match ops.error.take() {
        Some(e) => Err(e),
        None => Ok(changes),
    }
}

/// Marks (or unmarks) the claims of the set's `ordinals` the set made from
/// this file ([`crate::workload::claims::set_scaled_away`]); one that cannot
/// be marked is kept, with a warning.
fn mark_scaled_away(
    ops: &mut Ops<'_>,
    w: &crate::model::workload::Workload,
    ordinals: &[u32],
    scaled_away: bool,
) {
    use crate::workload::claims;
    for o in ordinals {
        for t in &w.claim_templates {
            let name = crate::workload::names::ordinal_claim(t, w.name.as_str(), *o);
            let Ok(name) = crate::model::DnsSubdomain::parse(&name) else {
                continue;
            };
            let Ok(volume) = claims::find(ops.store.root(), &w.namespace, &name) else {
                continue;
            };
            if volume.record.made_by(&w.uid, ops.path.as_deref())
                && volume.record.scaled_away != scaled_away
                && let Err(e) = claims::set_scaled_away(&volume, scaled_away)
            {
                ops.warnings
                    .push(format!("{}: whenScaled: Delete: {e}; kept", w.display()));
            }
        }
    }
}

/// A DaemonSet pod's label of its set's generation.
const TEMPLATE_GENERATION: &str = "pod-template-generation";

/// A DaemonSet's `metadata.generation`, which its pods' pod-template-generation
/// label carries: podshim keeps no DaemonSet object, so it is its pods'
/// generation, one more when the template changed since they were made, and
/// 1 with no pod of it left.
fn daemonset_generation(w: &crate::model::workload::Workload, pods: &[&PodState]) -> u64 {
    pods.iter()
        .filter_map(|s| {
            let g: u64 = s.origin.labels.get(TEMPLATE_GENERATION)?.parse().ok()?;
            Some(match s.origin.template_hash == w.template_hash {
                true => g,
                false => g.saturating_add(1),
            })
        })
        .max()
        .unwrap_or(1)
}

/// Removes those of the claims `names` of `namespace` that exist and that the
/// StatefulSet `owner` (uid) made: its persistentVolumeClaimRetentionPolicy
/// (a claim of the same name made otherwise, by a PersistentVolumeClaim
/// document or on first use, is not the set's to remove). One that a pod
/// still uses is refused, as `volume rm` refuses it, and the others go on.
/// Only claims `up` of the file `manifest` made go: another file's set of the
/// same name (the same derived uid) is not this one, and a claim of stdin's
/// or of no recorded file is no file's. Returns `ns/name` of each removed,
/// the set's claims kept as another file's (with why), and the first refusal.
#[allow(clippy::type_complexity)]
pub fn remove_claims(
    paths: &Paths,
    store: &Store,
    namespace: &crate::model::DnsLabel,
    names: &[String],
    owner: &str,
    manifest: Option<&Path>,
) -> (Vec<String>, Vec<(String, String)>, Option<PodError>) {
    use crate::workload::claims;
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    let mut error = None;
    for name in names {
        let Ok(name) = crate::model::DnsSubdomain::parse(name) else {
            continue;
        };
        let volume = match claims::find(store.root(), namespace, &name) {
            Ok(v) if v.record.owner.as_deref() == Some(owner) => {
                if !v.record.made_by(owner, manifest) {
                    let by = v.record.manifest.as_ref().map_or_else(
                        || "no file podshim recorded (stdin)".to_string(),
                        |m| m.display().to_string(),
                    );
                    kept.push((v.display(), format!("made by `up` of {by}")));
                    continue;
                }
                v
            }
            Ok(_) | Err(claims::ClaimError::NotFound(_)) => continue,
            Err(e) => {
                error.get_or_insert(e.into());
                continue;
            }
        };
        match claims::remove(&volume, |data| {
            claims::users(&paths.pods(), data, None, false)
        }) {
            Ok(()) => removed.push(volume.display()),
            Err(e) => {
                error.get_or_insert(e.into());
            }
        }
    }
    (removed, kept, error)
}

/// Whether a pod is one `w` wants: the same namespace, kind, name and uid (a
/// uid alone can be written into any manifest).
fn is_of_workload(s: &PodState, w: &crate::model::workload::Workload) -> bool {
    s.namespace == w.namespace.as_str()
        && s.origin.workload.as_ref().is_some_and(|o| {
            o.uid == w.uid && o.kind == w.kind.as_str() && o.name == w.name.as_str()
        })
}

/// The pods `down FILE` removes: those `up` of this file made (by the path
/// kept in their state), whatever their names now, and those the file names
/// (its bare Pods, its workloads' pods) that no other file made: a bare Pod
/// whose state is gone, one of `up --from` or stdin. A pod the file names that
/// `up` of another file made is left alone, and returned second.
pub fn pods_of_file(
    paths: &Paths,
    set: &ManifestSet,
    file: Option<&Path>,
) -> (Vec<PodKey>, Vec<PodKey>) {
    let records = list::all_pods(paths);
    let mut keys: Vec<PodKey> = Vec::new();
    let mut others = Vec::new();
    for (_, s) in &records {
        let Ok(key) = PodKey::parse(&s.name, Some(&s.namespace)) else {
            continue;
        };
        let named = set.bare_pods().any(|p| p.key == key)
            || set.workloads.iter().any(|w| is_of_workload(s, w));
        let from_file = file.is_some() && s.origin.manifest.as_deref() == file;
        let from_other = s.origin.manifest.is_some() && !from_file;
        if from_file || (named && !from_other) {
            keys.push(key);
        } else if named {
            others.push(key);
        }
    }
    // A bare Pod with no state left: `down` still finds its containers.
    for pod in set.bare_pods() {
        let known = records
            .iter()
            .any(|(_, s)| s.namespace == pod.namespace() && s.name == pod.name());
        if !known && !keys.contains(&pod.key) {
            keys.push(pod.key.clone());
        }
    }
    (keys, others)
}

/// The pods `up` of `file` made, by the path kept in their state: what `watch`
/// takes down when the file goes.
pub fn pods_from(paths: &Paths, file: &Path) -> Vec<PodKey> {
    list::all_pods(paths)
        .iter()
        .filter(|(_, s)| s.origin.manifest.as_deref() == Some(file))
        .filter_map(|(_, s)| PodKey::parse(&s.name, Some(&s.namespace)).ok())
        .collect()
}

/// The pods `up` of `file` made that `set` (the file as it is now) no longer
/// asks for: a document removed from it, a pod or workload renamed. `watch`
/// takes them down, as the kubelet stops the static pods a file no longer
/// holds.
pub fn pruned(paths: &Paths, set: &ManifestSet, file: &Path) -> Vec<PodKey> {
    list::all_pods(paths)
        .iter()
        .filter(|(_, s)| s.origin.manifest.as_deref() == Some(file))
        .filter(|(_, s)| {
            let named = set
                .pods
                .iter()
                .any(|p| p.namespace() == s.namespace && p.name() == s.name);
            !named && !set.workloads.iter().any(|w| is_of_workload(s, w))
        })
        .filter_map(|(_, s)| PodKey::parse(&s.name, Some(&s.namespace)).ok())
        .collect()
}
