//! `up` of a manifest set: its bare Pods and its controllers brought to what the
//! file asks ([`crate::workload::apply`] decides; this starts and stops pods, each
//! call's pods in parallel, one thread per pod), and which pods a file owns (for
//! `down FILE` and `watch`).

use std::path::{Path, PathBuf};

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
        let results: Vec<Result<super::start::Started, PodError>> = std::thread::scope(|s| {
            let handles: Vec<_> = pods
                .iter()
                .map(|pod| {
                    let source = Source::Manifest {
                        manifest: Box::new(Manifest {
                            pod: (*pod).clone(),
                            warnings: Vec::new(),
                        }),
                        file: self.file.clone(),
                        pull: Box::new(self.pull.clone()),
                        path: self.path.clone(),
                    };
                    let opts = &opts;
                    let (paths, store) = (self.paths, self.store);
                    s.spawn(move || super::start(paths, store, source, opts))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(PodError::Invalid("a start thread panicked".into()))
                    })
                })
                .collect()
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
}

/// Stops every pod of `keys` at once (each within its own grace period), one
/// thread each; the reports in the order of `keys`.
pub fn stop_all(
    paths: &Paths,
    store: &Store,
    keys: &[PodKey],
    opts: &StopOptions,
) -> Vec<Result<super::StopReport, PodError>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .iter()
            .map(|key| s.spawn(move || super::stop(paths, store, key, opts)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(PodError::Invalid("a stop thread panicked".into())))
            })
            .collect()
    })
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
        match existing {
            None => fresh.push(pod),
            Some((_, s)) if replace => {
                let _ = s;
                stale.push(pod);
            }
            Some((_, s)) if s.origin.manifest.is_some() && s.origin.manifest == ops.path => {
                if s.origin.template_hash == pod.template_hash {
                    changes.push(Change::Unchanged(pod.key.clone()));
                } else {
                    stale.push(pod);
                }
            }
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
        let desired: Vec<&Pod> = set.pods_of(w).collect();
        let existing: Vec<Existing> = records
            .iter()
            .filter(|(_, s)| s.origin.workload.as_ref().is_some_and(|o| o.uid == w.uid))
            .filter_map(|(_, s)| {
                Some(Existing {
                    key: PodKey::parse(&s.name, Some(&s.namespace)).ok()?,
                    hash: s.origin.template_hash.clone(),
                })
            })
            .collect();
        match crate::workload::apply::apply(w, &desired, &existing, ops) {
            Ok(c) => changes.extend(c),
            Err(message) if ops.error.is_none() => return Err(PodError::Invalid(message)),
            Err(_) => break,
        }
    }
    match ops.error.take() {
        Some(e) => Err(e),
        None => Ok(changes),
    }
}

/// The pods `down FILE` removes: the file's bare Pods, and every pod a
/// controller of the file owns, or that `up` of this file made (by the path kept
/// in its state), whatever its name now.
pub fn pods_of_file(paths: &Paths, set: &ManifestSet, file: Option<&Path>) -> Vec<PodKey> {
    let records = list::all_pods(paths);
    let mut keys: Vec<PodKey> = set.bare_pods().map(|p| p.key.clone()).collect();
    for (_, s) in &records {
        let owned = s
            .origin
            .workload
            .as_ref()
            .is_some_and(|o| set.workloads.iter().any(|w| w.uid == o.uid));
        let from_file = file.is_some() && s.origin.manifest.as_deref() == file;
        if (owned || from_file)
            && let Ok(key) = PodKey::parse(&s.name, Some(&s.namespace))
            && !keys.contains(&key)
        {
            keys.push(key);
        }
    }
    keys
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
