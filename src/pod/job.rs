//! Jobs on one node: a Job's record and status under the state root
//! (`<root>/jobs/<ns>_<name>/`: `job.json`, `manifest` (the input as `up` read
//! it), `status.json`, `controller.log`), its controller process (`podshim up
//! ... --job-controller DIR`, detached like a supervisor, running
//! [`crate::workload::job::JobCore`] over the pods it starts), and taking a Job
//! down.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{PodError, io_err, list};
use crate::manifest::ManifestSet;
use crate::model::PodKey;
pub use crate::paths::Paths;
use crate::state::{ContainerState, PodPhase};
use crate::workload::apply::PodOps;
use crate::workload::job::{Action, Counts, JobCore, Observed, Outcome};

/// The hidden command a Job's controller process runs: `podshim job-controller DIR`.
pub const CONTROLLER_COMMAND: &str = "job-controller";
/// The most a job's files may be when read back.
const MAX_FILE: u64 = 16 << 20;
/// The most pod names `status.json` lists (the latest).
const MAX_LISTED_PODS: usize = 1000;
/// The lock the controller holds while it runs: how `down` knows it is alive.
const CONTROLLER_LOCK: &str = "controller.lock";
/// The lock `up --wait` holds shared from before the controller starts until it
/// has reported the Job's end; ttlSecondsAfterFinished takes it exclusive before
/// it removes the Job, so a waiter never finds the Job gone instead of its end.
const WAITERS_LOCK: &str = "waiters.lock";

/// Held by `up --wait` while it waits for the Job of `dir` to end.
pub fn wait_lock(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, PodError> {
    let path = dir.join(WAITERS_LOCK);
    crate::fsutil::lock_file_shared(&path).map_err(io_err(&path, "lock"))
}

/// Whether the Job's controller runs (holds its lock).
pub fn controller_running(dir: &Path) -> Result<bool, PodError> {
    Ok(controller_lock(dir, false)?.is_none())
}

/// The descriptor a controller is handed its lock at.
pub const HANDED_LOCK_FD: i32 = 3;

/// The controller's lock taken for a controller about to be started, which
/// is handed it (`job-controller DIR --lock-fd N`): none while one runs, so
/// that two `up`s never start two. A plain flock on the open file, not a
/// guard, which would undo it when this copy closes.
pub fn lock_for_controller(dir: &Path) -> Result<Option<std::fs::File>, PodError> {
    use std::os::fd::AsRawFd;
    let path = dir.join(CONTROLLER_LOCK);
    let file = crate::fsutil::open_lock_file(&path).map_err(io_err(&path, "open"))?;
    // Others look whether a controller runs by taking the lock for a moment
    // (`watch`, `up --wait`, `down`): busy for longer than such a look, or
    // held by the live controller status.json names, it is a controller's.
    let deadline = Instant::now() + Duration::from_millis(250);
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(file));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(io_err(&path, "lock")(e));
        }
        let named = read_status(dir)
            .and_then(|s| s.controller_pid)
            .is_some_and(|pid| controller_alive(pid, dir));
        if named || Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lock a controller was handed by the `up` that started it: held
/// already (taken again on the same open file), and the one of `dir` now,
/// not of a Job removed meanwhile.
pub fn adopt_controller_lock(
    dir: &Path,
    file: std::fs::File,
) -> Result<nix::fcntl::Flock<std::fs::File>, PodError> {
    use std::os::unix::fs::MetadataExt;
    let path = dir.join(CONTROLLER_LOCK);
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| io_err(&path, "take the handed lock")(e.into()))?;
    let held = lock.metadata().map_err(io_err(&path, "stat"))?;
    let now = std::fs::symlink_metadata(&path).map_err(io_err(&path, "stat"))?;
    if (held.dev(), held.ino()) != (now.dev(), now.ino()) {
        return Err(PodError::Invalid(format!(
            "{}: the Job was removed before its controller started",
            dir.display()
        )));
    }
    Ok(lock)
}

/// Takes the controller's lock: held by the controller for its life; `down`
/// takes it without waiting to see whether one runs.
fn controller_lock(
    dir: &Path,
    wait: bool,
) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, PodError> {
    let path = dir.join(CONTROLLER_LOCK);
    crate::fsutil::lock_file(&path, wait).map_err(io_err(&path, "lock"))
}

/// What `job.json` holds: which Job of which input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub template_hash: String,
    /// `completions` (none: a work queue), for `ps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<u32>,
    /// The manifest's absolute path, as `up` was given it (none for stdin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
    /// `ttlSecondsAfterFinished` of the Job as it was made (the copy its
    /// controller runs), not as the file may say now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u64>,
    /// How `up` ran pods: the controller runs the Job's the same way.
    pub options: ControllerOptions,
}

/// The options of the `up` that started a Job, for its controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControllerOptions {
    pub paths: Paths,
    pub start: super::StartOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registries_conf: Option<PathBuf>,
}

impl PartialEq for ControllerOptions {
    fn eq(&self, other: &Self) -> bool {
        self.paths == other.paths && self.registries_conf == other.registries_conf
    }
}
impl Eq for ControllerOptions {}

/// What `status.json` holds: the Job's status, as Kubernetes reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_pid: Option<i32>,
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Every pod the Job made, oldest first.
    pub pods: Vec<String>,
    /// Complete or Failed, once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Outcome>,
    /// The pods active now and the next attempt's number: what a controller
    /// started again takes up.
    #[serde(default)]
    pub active_pods: Vec<String>,
    #[serde(default)]
    pub next_attempt: u32,
    /// Indexed: the indexes that succeeded, as Kubernetes writes them
    /// (`1,3-5`), and each active pod's index.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub completed_indexes: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub active_indexes: std::collections::BTreeMap<String, u32>,
}

/// Indexes as the Job status's `completedIndexes`: ascending, runs of three
/// or more as `a-b` (`0,2-4`).
pub fn format_indexes(set: &std::collections::BTreeSet<u32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(first) = it.next() {
        let mut last = first;
        while last
            .checked_add(1)
            .is_some_and(|next| it.peek() == Some(&next))
        {
            last = it.next().expect("peeked");
        }
        match last - first {
            0 => out.push(first.to_string()),
            1 => out.extend([first.to_string(), last.to_string()]),
            _ => out.push(format!("{first}-{last}")),
        }
    }
    out.join(",")
}

/// `completedIndexes` read back; what does not parse is left out (the file is
/// podshim's own).
pub fn parse_indexes(text: &str) -> std::collections::BTreeSet<u32> {
    let mut out = std::collections::BTreeSet::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    // Bounded by the most an Indexed Job may have.
                    out.extend(a..=b.min(a.saturating_add(100_000)));
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

pub fn jobs_dir(paths: &Paths) -> PathBuf {
    paths.root.join("jobs")
}

pub fn job_dir(paths: &Paths, key: &PodKey) -> PathBuf {
    jobs_dir(paths).join(key.id())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = crate::fsutil::read_regular(path, MAX_FILE).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), PodError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| io_err(path, "encode")(e.into()))?;
    crate::fsutil::write_atomic(path, &text, 0o600).map_err(io_err(path, "write"))
}

pub fn read_record(dir: &Path) -> Option<JobRecord> {
    read_json(&dir.join("job.json"))
}

pub fn read_status(dir: &Path) -> Option<JobStatus> {
    read_json(&dir.join("status.json"))
}

/// Every Job under the state root.
pub fn all_jobs(paths: &Paths) -> Vec<(PathBuf, JobRecord, JobStatus)> {
    let Ok(entries) = std::fs::read_dir(jobs_dir(paths)) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        // A Job's name never starts with a dot; a directory being removed does.
        .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
        .filter_map(|e| {
            let dir = e.path();
            let record = read_record(&dir)?;
            let status = read_status(&dir).unwrap_or_default();
            Some((dir, record, status))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Whether `pid` is the controller of `dir` (its command line says so).
pub fn controller_alive(pid: i32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let dir = dir.as_os_str().as_encoded_bytes();
    args.windows(2)
        .any(|w| w[0] == CONTROLLER_COMMAND.as_bytes() && w[1] == dir)
}

/// Makes the Job's directory: its record and the input `up` read, before its
/// controller starts. A Job of the same uid that exists is left alone (its
/// template is immutable: a changed one is refused).
pub fn create(
    paths: &Paths,
    key: &PodKey,
    record: &JobRecord,
    manifest_text: &str,
) -> Result<Option<PathBuf>, PodError> {
    let dir = job_dir(paths, key);
    if let Some(had) = read_record(&dir) {
        if had.uid == record.uid && had.template_hash == record.template_hash {
            return Ok(None);
        }
        return Err(PodError::Invalid(format!(
            "job {key}: spec.template: Invalid value: field is immutable (the Job that ran has another template or uid); `podshim down` it first"
        )));
    }
    crate::fsutil::mkdir_mode(&jobs_dir(paths), 0o700).map_err(io_err(&dir, "create directory"))?;
    std::fs::create_dir(&dir).map_err(io_err(&dir, "create directory"))?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(io_err(&dir, "chmod"))?;
    crate::fsutil::write_atomic(&dir.join("manifest"), manifest_text.as_bytes(), 0o600)
        .map_err(io_err(&dir, "write the manifest into"))?;
    write_json(&dir.join("job.json"), record)?;
    Ok(Some(dir))
}

/// What a pod of the Job is doing: a pod of that name the Job does not own
/// (another file's) is no pod of the Job's, so Gone.
fn observe(paths: &Paths, key: &PodKey, job_uid: &str) -> Observed {
    let Ok((_, s)) = list::read_pod(paths, key) else {
        return Observed::Gone;
    };
    if s.origin.workload.as_ref().is_none_or(|w| w.uid != job_uid) {
        return Observed::Gone;
    }
    // The pod's own containers: not the infra's, nor a sidecar's (which
    // restart whatever the pod's policy).
    let own = |c: &&crate::state::ContainerStatus| {
        matches!(
            c.kind,
            crate::model::ContainerKind::App | crate::model::ContainerKind::Init
        )
    };
    let restarts = s
        .containers
        .iter()
        .filter(own)
        .map(|c| c.restart_count)
        .sum();
    match s.phase {
        PodPhase::Succeeded => Observed::Succeeded,
        PodPhase::Failed => Observed::Failed {
            exits: s
                .containers
                .iter()
                .filter(own)
                .filter_map(|c| match &c.state {
                    ContainerState::Terminated { exit_code, .. } => {
                        Some((c.name.clone(), *exit_code))
                    }
                    _ => None,
                })
                .collect(),
            conditions: s
                .conditions
                .iter()
                .map(|c| (c.kind.clone(), c.status.clone()))
                .collect(),
        },
        _ => Observed::Active { restarts },
    }
}

/// The core's counts and progress into the status.
fn record_progress(core: &JobCore, status: &mut JobStatus) {
    status.counts = core.counts();
    (status.active_pods, status.next_attempt) = core.progress();
    let (active, completed) = core.indexes();
    status.active_indexes = active.clone();
    status.completed_indexes = format_indexes(completed);
}

/// Whether `key`'s pod directory is there without a state: a start that did
/// not finish (its `up` or controller died), whose leftovers `stop` clears.
fn lost_start(paths: &Paths, key: &PodKey) -> bool {
    let dir = paths.pod_dir(&key.id());
    // A start in progress (another `up`'s of the same name) holds the pod's
    // lock: only a directory whose lock is free was left by a dead one.
    dir.is_dir()
        && crate::state::read(&dir).is_err()
        && crate::state::PodLock::try_acquire(&dir).is_ok()
}

/// The controller: starts the Job's pods through `ops` and keeps `status.json`
/// until the Job ends or `stop` is set (SIGTERM: `down` takes the pods down
/// after it).
pub fn run_controller(
    dir: &Path,
    set: &ManifestSet,
    ops: &mut super::apply::Ops<'_>,
    stop: &AtomicBool,
    handed: Option<nix::fcntl::Flock<std::fs::File>>,
) -> Result<Outcome, PodError> {
    let record = read_record(dir)
        .ok_or_else(|| PodError::Invalid(format!("{}: no job.json", dir.display())))?;
    let workload = set
        .workloads
        .iter()
        .find(|w| w.uid == record.uid)
        .ok_or_else(|| {
            PodError::Invalid(format!(
                "{}: the manifest holds no Job {}",
                dir.display(),
                record.name
            ))
        })?;
    let spec = workload.job.clone().ok_or_else(|| {
        PodError::Invalid(format!("{}: {} is not a Job", dir.display(), record.name))
    })?;
    let ttl = spec.ttl_seconds_after_finished;
    let template = set.templates.get(&workload.uid).ok_or_else(|| {
        PodError::Invalid(format!(
            "{}: no template for {}",
            dir.display(),
            record.name
        ))
    })?;
    // Held until the controller ends: handed over by the `up` that started
    // it (which took it first, so no two run), else taken here, waiting for
    // any other's end (a controller run by hand), which takes up nothing if
    // its TTL removed the Job meanwhile.
    let _alive = match handed {
        Some(lock) => Some(lock),
        None => controller_lock(dir, true)?,
    };
    if read_record(dir).is_none_or(|r| r.uid != record.uid) {
        return Err(PodError::Invalid(format!(
            "job {}: removed while this controller waited for another",
            record.name
        )));
    }
    let epoch = Instant::now();
    let now_ms = || epoch.elapsed().as_millis() as u64;
    // A Job that ended is never run again: without a TTL its end stands; with
    // one, its controller died in the wait and this one waits out the rest
    // from the Job's end.
    if let Some(ended) = read_status(dir).filter(|s| s.condition.is_some()) {
        let Some(ttl) = ttl else {
            return Ok(ended.condition.expect("filtered on it"));
        };
        let since = ended
            .completion_time
            .as_deref()
            .and_then(crate::state::parse_rfc3339)
            .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
            .unwrap_or_default();
        let outcome = ended.condition.clone().expect("filtered on it");
        write_json(
            &dir.join("status.json"),
            &JobStatus {
                controller_pid: Some(std::process::id() as i32),
                ..ended
            },
        )?;
        expire(
            dir,
            &record,
            Duration::from_secs(ttl).saturating_sub(since),
            ops,
            stop,
        )?;
        return Ok(outcome);
    }
    // A controller that died left the Job's progress: taken up again, its
    // deadline from the Job's start.
    let previous = read_status(dir).filter(|s| s.condition.is_none());
    let started_at = previous
        .as_ref()
        .and_then(|s| crate::state::parse_rfc3339(&s.start_time));
    let (mut core, mut status) = match (previous, started_at) {
        (Some(prev), Some(at)) => {
            let elapsed = std::time::SystemTime::now()
                .duration_since(at)
                .map_or(0, |d| d.as_millis() as u64);
            let core = JobCore::resume(
                spec,
                now_ms(),
                elapsed,
                &prev.counts,
                prev.active_pods.clone(),
                prev.next_attempt,
            )
            .with_indexes(
                prev.active_indexes.clone(),
                parse_indexes(&prev.completed_indexes),
            );
            let status = JobStatus {
                controller_pid: Some(std::process::id() as i32),
                ..prev
            };
            (core, status)
        }
        _ => (
            JobCore::new(spec, now_ms()),
            JobStatus {
                controller_pid: Some(std::process::id() as i32),
                start_time: crate::state::rfc3339(std::time::SystemTime::now()),
                ..Default::default()
            },
        ),
    };
    write_json(&dir.join("status.json"), &status)?;
    let key_of = |name: &str| PodKey::parse(name, Some(&record.namespace));
    loop {
        let gone = std::cell::RefCell::new(Vec::new());
        let actions = core.step(now_ms(), |name| match key_of(name) {
            Ok(k) => {
                let seen = observe(ops.paths, &k, &record.uid);
                if seen == Observed::Gone {
                    gone.borrow_mut().push(k);
                }
                seen
            }
            Err(_) => Observed::Gone,
        });
        // An active pod gone without a state: a start that a controller died
        // in (this one's starts are done by now). What it left is cleared.
        let lost: Vec<PodKey> = gone
            .into_inner()
            .into_iter()
            .filter(|k| lost_start(ops.paths, k))
            .collect();
        if !lost.is_empty() {
            let _ = ops.stop(&lost);
            ops.error = None;
        }
        let mut starts = Vec::new();
        let mut deletes = Vec::new();
        let mut finished = None;
        for a in actions {
            match a {
                Action::Start(n) => {
                    let name =
                        crate::workload::names::pod(workload.name.as_str(), &workload.uid, "", n);
                    match template.instantiate(&name) {
                        Ok(pod) => starts.push((pod, None)),
                        // The template was valid for every name it made so far.
                        Err(e) => {
                            return Err(PodError::Invalid(format!("job {}: {e}", record.name)));
                        }
                    }
                }
                // `<job>-<index>-<suffix>`, as generateName `<job>-<index>-` gives.
                Action::StartIndex { attempt, index } => {
                    let prefix = format!("{}-{index}", workload.name);
                    let name = crate::workload::names::pod(&prefix, &workload.uid, "", attempt);
                    match template.instantiate_index(&name, index) {
                        Ok(pod) => starts.push((pod, Some(index))),
                        Err(e) => {
                            return Err(PodError::Invalid(format!("job {}: {e}", record.name)));
                        }
                    }
                }
                Action::Delete(name) => {
                    if let Ok(k) = key_of(&name) {
                        deletes.push(k);
                    }
                }
                Action::Finish(o) => finished = Some(o),
            }
        }
        if !starts.is_empty() {
            // Written ahead: a controller that dies while these start leaves
            // them active in status.json, so the one that takes up observes
            // them (a pod never made is Gone, a failure, as one that failed to
            // start) and never makes the same attempt twice.
            for (p, index) in &starts {
                status.pods.push(p.name().to_string());
                match index {
                    Some(i) => core.started_index(p.name().to_string(), *i),
                    None => core.started(p.name().to_string()),
                }
            }
            // The status stays small whatever the attempts: the latest names.
            if status.pods.len() > MAX_LISTED_PODS {
                let cut = status.pods.len() - MAX_LISTED_PODS;
                status.pods.drain(..cut);
            }
            record_progress(&core, &mut status);
            write_json(&dir.join("status.json"), &status)?;
            let refs: Vec<&crate::model::Pod> = starts.iter().map(|(p, _)| p).collect();
            // A pod that failed to start is gone: the next step counts it.
            if let Err(e) = ops.start(&refs, false) {
                tracing::warn!("job {}: {e}", record.name);
                ops.error = None;
            }
        }
        // Only the Job's own pods are taken down.
        deletes.retain(|k| {
            list::read_pod(ops.paths, k).is_ok_and(|(_, s)| {
                s.origin
                    .workload
                    .as_ref()
                    .is_some_and(|w| w.uid == record.uid)
            })
        });
        if !deletes.is_empty() {
            let _ = ops.stop(&deletes);
            ops.error = None;
        }
        record_progress(&core, &mut status);
        if let Some(outcome) = finished {
            status.condition = Some(outcome.clone());
            status.completion_time = Some(crate::state::rfc3339(std::time::SystemTime::now()));
            // Waiting out ttlSecondsAfterFinished, the controller still runs
            // (and `down` stops it by its pid).
            if ttl.is_none() {
                status.controller_pid = None;
            }
            write_json(&dir.join("status.json"), &status)?;
            if let Some(ttl) = ttl {
                expire(dir, &record, Duration::from_secs(ttl), ops, stop)?;
            }
            return Ok(outcome);
        }
        write_json(&dir.join("status.json"), &status)?;
        if stop.load(Ordering::SeqCst) {
            return Err(PodError::Invalid(format!(
                "job {}: controller stopped",
                record.name
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// ttlSecondsAfterFinished (the TTL-after-finished controller): `after` from
/// now, the Job's pods and its directory are removed, once no `up --wait` is
/// still to report its end. SIGTERM ends the wait: `down` removes the Job then.
fn expire(
    dir: &Path,
    record: &JobRecord,
    after: Duration,
    ops: &mut super::apply::Ops<'_>,
    stop: &AtomicBool,
) -> Result<(), PodError> {
    let until = crate::teardown::far_after(Instant::now(), after);
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(250)));
    }
    let path = dir.join(WAITERS_LOCK);
    let _waiters = crate::fsutil::lock_file(&path, true).map_err(io_err(&path, "lock"))?;
    let pods = owned_pods(ops.paths, dir, record);
    // A pod that does not go keeps the Job, for `down` to finish.
    ops.stop(&pods).map_err(PodError::Invalid)?;
    purge(&retire(dir)?)
}

/// What a Job's directory is renamed to before it is removed.
const TOMB_PREFIX: &str = ".removing-";

/// Renames a Job's directory to a dot-name `all_jobs` skips, before anything
/// of it is removed: the lock files are made by whoever opens them (`up
/// --wait`, `watch`), and one made again while `remove_dir_all` ran would leave
/// a directory without its record that no later `up` could make again (EEXIST)
/// nor `down` see; and no `up` finds a Job being removed to start a
/// controller for. Returns the new path.
fn retire(dir: &Path) -> Result<PathBuf, PodError> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let tomb = dir.with_file_name(format!(
        "{TOMB_PREFIX}{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::rename(dir, &tomb).map_err(io_err(dir, "rename for removal"))?;
    Ok(tomb)
}

/// Removes a retired directory, and those a process that died left.
fn purge(tomb: &Path) -> Result<(), PodError> {
    std::fs::remove_dir_all(tomb).map_err(io_err(tomb, "remove"))?;
    if let Some(jobs) = tomb.parent() {
        sweep(jobs);
    }
    Ok(())
}

/// Removes the retired directories (`.removing-<id>-<pid>-<nanos>`, never a
/// link) whose remover is gone: a crash between the rename and the end of the
/// removal left them.
fn sweep(jobs: &Path) {
    let Ok(entries) = std::fs::read_dir(jobs) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TOMB_PREFIX)) else {
            continue;
        };
        let pid = rest.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        let gone = pid
            .is_some_and(|p| p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists());
        if gone && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The pods of the Job of `dir`: those its uid owns, and those whose start a
/// controller died in (in `status.json`'s active pods, without a state).
fn owned_pods(paths: &Paths, dir: &Path, record: &JobRecord) -> Vec<PodKey> {
    let mut pods = Vec::new();
    for (_, s) in list::all_pods(paths) {
        if s.namespace == record.namespace
            && s.origin
                .workload
                .as_ref()
                .is_some_and(|o| o.uid == record.uid && o.kind == "Job" && o.name == record.name)
            && let Ok(key) = PodKey::parse(&s.name, Some(&s.namespace))
        {
            pods.push(key);
        }
    }
    if let Some(status) = read_status(dir) {
        for name in &status.active_pods {
            if let Ok(key) = PodKey::parse(name, Some(&record.namespace))
                && !pods.contains(&key)
                && lost_start(paths, &key)
            {
                pods.push(key);
            }
        }
    }
    pods
}

/// Takes a Job down: its controller (SIGTERM, then SIGKILL after 10 s), every
/// pod it owns (by the Job's uid), then its directory.
pub fn remove(
    paths: &Paths,
    store: &crate::image::Store,
    dir: &Path,
    opts: &super::StopOptions,
) -> Result<Vec<PodKey>, PodError> {
    let record = read_record(dir);
    // Out of every `up`'s sight first: none starts a controller for it while
    // its pods go (a controller its own would not see).
    let tomb = retire(dir)?;
    match take_down(paths, store, dir, &tomb, record.as_ref(), opts) {
        Ok(removed) => {
            purge(&tomb)?;
            Ok(removed)
        }
        Err(e) => {
            // Back where `down` finds it, to be tried again; never over a
            // Job of that name made meanwhile, not even an empty directory
            // another `up` is about to fill.
            let _ = nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                &tomb,
                nix::fcntl::AT_FDCWD,
                dir,
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            );
            Err(e)
        }
    }
}

/// The controller of the retired Job `tomb` (once at `dir`) and its pods.
fn take_down(
    paths: &Paths,
    store: &crate::image::Store,
    dir: &Path,
    tomb: &Path,
    record: Option<&JobRecord>,
    opts: &super::StopOptions,
) -> Result<Vec<PodKey>, PodError> {
    // A controller runs while it holds its lock; only then is its pid (checked
    // against its command line, which names the Job's path) signalled.
    let running = controller_lock(tomb, false)?.is_none();
    if running
        && let Some(pid) = read_status(tomb).and_then(|s| s.controller_pid)
        && controller_alive(pid, dir)
    {
        let target = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(target, nix::sys::signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while controller_alive(pid, dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if controller_alive(pid, dir) {
            let _ = nix::sys::signal::kill(target, nix::sys::signal::SIGKILL);
        }
    }
    let mut removed = Vec::new();
    if let Some(record) = record {
        removed = owned_pods(paths, tomb, record);
        // All at once, each within its grace period.
        for report in super::apply::stop_all(paths, store, &removed, opts) {
            report?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_job_being_removed_has_no_lock_made_again_where_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("default_j");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("job.json"), "{}").unwrap();
        let held = wait_lock(&dir).unwrap();
        let tomb = retire(&dir).unwrap();
        // While its files go, a waiter or watcher opening a lock finds no
        // directory, and makes none (which would leave a Job without its
        // record where `up` makes it); nor may `up` start a controller there.
        assert!(wait_lock(&dir).is_err());
        assert!(lock_for_controller(&dir).is_err());
        assert!(!dir.exists());
        drop(held);
        purge(&tomb).unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_retired_directory_whose_remover_died_is_swept_and_no_other() {
        let tmp = tempfile::tempdir().unwrap();
        // pid 0 is no process's; this process's own is in use; a link and a
        // Job are never taken.
        let dead = tmp
            .path()
            .join(format!("{TOMB_PREFIX}default_a-999999999-1"));
        let alive = tmp
            .path()
            .join(format!("{TOMB_PREFIX}default_b-{}-1", std::process::id()));
        let job = tmp.path().join("default_c");
        for d in [&dead, &alive, &job] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("manifest"), "x").unwrap();
        }
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(
            &outside,
            tmp.path()
                .join(format!("{TOMB_PREFIX}default_d-999999998-1")),
        )
        .unwrap();
        sweep(tmp.path());
        assert!(!dead.exists());
        assert!(alive.exists() && job.exists() && outside.exists());
    }

    #[test]
    fn a_controller_lock_is_taken_once_and_handed_over_only_for_its_own_job() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("default_j");
        std::fs::create_dir(&dir).unwrap();
        let file = lock_for_controller(&dir).unwrap().unwrap();
        // A second `up` starts no second controller.
        assert!(lock_for_controller(&dir).unwrap().is_none());
        assert!(controller_running(&dir).unwrap());
        let copy = file.try_clone().unwrap();
        drop(file);
        // The lock is the open file's: the copy (the controller's) keeps it,
        // and takes it again as its own.
        assert!(controller_running(&dir).unwrap());
        let adopted = adopt_controller_lock(&dir, copy).unwrap();
        drop(adopted);
        assert!(!controller_running(&dir).unwrap());
        // A lock of a Job removed and made again is not this one's.
        let old = lock_for_controller(&dir).unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(CONTROLLER_LOCK), "").unwrap();
        let err = adopt_controller_lock(&dir, old).unwrap_err();
        assert!(err.to_string().contains("removed before"), "{err}");
    }

    #[test]
    fn completed_indexes_are_written_as_kubernetes_writes_them_and_read_back() {
        let set = BTreeSet::from([0, 1, 3, 4, 5, 7, 9, 10]);
        assert_eq!(format_indexes(&set), "0,1,3-5,7,9,10");
        assert_eq!(parse_indexes("0,1,3-5,7,9,10"), set);
        assert_eq!(format_indexes(&BTreeSet::new()), "");
        // The top of the range ends a run without overflowing.
        assert_eq!(
            format_indexes(&BTreeSet::from([u32::MAX - 2, u32::MAX - 1, u32::MAX])),
            format!("{}-{}", u32::MAX - 2, u32::MAX)
        );
        // Read back with a bound: a range is never more than an Indexed Job's
        // most completions, and garbage is left out.
        assert_eq!(parse_indexes("x,2-1,5").len(), 1);
        assert_eq!(parse_indexes("0-4294967295").len(), 100_001);
    }
}
