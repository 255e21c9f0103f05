//! Pod state on disk: `state.json` written atomically, and a lock serialising
//! commands on one pod. Read by `ps`, `logs`, `exec` and `down`, written by the
//! supervisor.

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::model::{ContainerKind, RestartPolicy, Signal};

pub use crate::paths::{LOCK_FILE, STATE_FILE};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {action}: {err}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        err: io::Error,
    },
    #[error("{path}: not a podshim state file: {err}")]
    Parse {
        path: PathBuf,
        #[source]
        err: serde_json::Error,
    },
    #[error("pod {0} is locked by another podshim command")]
    Busy(String),
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> StateError + use<> {
    let path = path.to_path_buf();
    move |err| StateError::Io { path, action, err }
}

/// Kubernetes' pod phases, plus podshim's own for the ends of its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// `down` (or Ctrl-C under `up --wait`) is stopping it.
    Terminating,
}

/// A container's state, like the kubelet's ContainerState.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "state"
)]
pub enum ContainerState {
    Waiting {
        reason: String,
    },
    Running {
        pid: i32,
        started_at: String,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        /// Why it was stopped when podshim stopped it (a failed probe).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        started_at: String,
        finished_at: String,
    },
}

impl ContainerState {
    pub fn is_running(&self) -> bool {
        matches!(self, ContainerState::Running { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    pub id: String,
    pub kind: ContainerKind,
    pub image: Option<String>,
    pub state: ContainerState,
    /// The previous run's end, for `--previous` and `ps`.
    pub last_state: Option<ContainerState>,
    pub restart_count: u32,
    pub ready: bool,
    /// Kubernetes' `started`: the startup probe passed (or there is none); set
    /// for sidecars and app containers once they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    pub stop_signal: Signal,
    /// Each probe's last result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeRecord>,
    /// The ids the process runs as (Kubernetes' `containerStatuses[].user.linux`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<crate::run_plan::ContainerUser>,
    /// The CPU and memory the container is given (Kubernetes'
    /// `containerStatuses[].resources`), as last resized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::run_plan::PlanResources>,
}

/// The last result of one probe of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeRecord {
    pub probe: crate::model::ProbeKind,
    pub success: bool,
    /// Why it failed (empty for a success).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Since when the probe has found this (RFC 3339): the record is written
    /// only when the result or its message changes, not at every run.
    pub since: String,
}

/// The runtime the pod was started with, so `down`, `exec` and `ps` use the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeRecord {
    pub program: PathBuf,
    pub global_args: Vec<String>,
    pub root: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodState {
    pub pod_id: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub phase: PodPhase,
    /// Why the pod failed, with the container, exit code and last log lines.
    pub message: Option<String>,
    /// Kubernetes' `status.reason` (`DeadlineExceeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Kubernetes' `status.qosClass` (none for a pod started before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<crate::translate::qos::QosClass>,
    /// The pod's cgroup, the same path in every hierarchy (none for a pod
    /// started before podshim made one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// `hostUsers: false`: the host ids the pod's user namespace maps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_namespace: Option<crate::userns::IdRange>,
    pub created_at: String,
    pub supervisor_pid: Option<i32>,
    pub runtime: RuntimeRecord,
    pub restart_policy: RestartPolicy,
    pub termination_grace_period_seconds: u64,
    pub log_dir: PathBuf,
    /// Where the bundles, volumes and etc files live: the pod directory for `up FILE`,
    /// the `generate` output for `up --from DIR`.
    pub bundle_dir: PathBuf,
    /// Keep containers and mounts when the pod fails to start (`up --keep`).
    pub keep_on_failure: bool,
    /// Infra first, then the others in start order.
    pub containers: Vec<ContainerStatus>,
    /// The node's address (Kubernetes' `status.hostIP`).
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// The pod's first address (`status.podIP`), once its network is up.
    #[serde(rename = "podIP", default, skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// Every address of the pod, IPv4 first (`status.podIPs`).
    #[serde(rename = "podIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<PodIp>,
    /// Kubernetes' pod conditions, kept by the supervisor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<crate::status::PodCondition>,
    /// What happened to the pod, oldest first, at most
    /// [`crate::status::MAX_EVENTS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<crate::status::Event>,
    /// Where the pod came from: its labels, its controller, its manifest.
    #[serde(flatten, default)]
    pub origin: Origin,
}

/// What made a pod: read by `down FILE`, `up` of a changed file (apply), `ps`'s
/// grouping by owner and `watch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `metadata.ownerReferences`: the controller that made the pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<crate::model::workload::OwnerReference>,
    /// The workload of the manifest that wants it (a Deployment, where the
    /// pod's owner is its ReplicaSet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::model::workload::OwnerReference>,
    /// The manifest `up` read it from (absolute; none for stdin and `--from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
    /// The hash of its template (or Pod document): a changed one is replaced.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template_hash: String,
}

/// One of a pod's addresses, as Kubernetes' `PodIP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIp {
    pub ip: String,
}

impl PodState {
    /// The pod's addresses, IPv4 first: `podIP` is the first, `podIPs` all.
    pub fn set_pod_ips(&mut self, ips: Vec<String>) {
        self.pod_ip = ips.first().cloned();
        self.pod_ips = ips.into_iter().map(|ip| PodIp { ip }).collect();
    }

    /// The containers of a pod about to start: all Waiting (ContainerCreating).
    pub fn initial_statuses(plan: &crate::run_plan::RunPlan) -> Vec<ContainerStatus> {
        plan.all()
            .map(|c| ContainerStatus {
                name: c.name.clone(),
                id: c.id.clone(),
                kind: c.kind,
                image: c.image.clone(),
                state: ContainerState::Waiting {
                    reason: "ContainerCreating".into(),
                },
                last_state: None,
                restart_count: 0,
                ready: false,
                started: None,
                stop_signal: c.stop_signal,
                probes: Vec::new(),
                user: c.user.clone(),
                resources: c.resources,
            })
            .collect()
    }

    pub fn container(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers.iter().find(|c| c.name == name)
    }
    pub fn container_mut(&mut self, name: &str) -> Option<&mut ContainerStatus> {
        self.containers.iter_mut().find(|c| c.name == name)
    }
}

pub fn state_path(pod_dir: &Path) -> PathBuf {
    crate::paths::state_file(pod_dir)
}

pub fn read(pod_dir: &Path) -> Result<PodState, StateError> {
    let path = state_path(pod_dir);
    let text = fs::read_to_string(&path).map_err(io_err(&path, "read"))?;
    serde_json::from_str(&text).map_err(|err| StateError::Parse { path, err })
}

/// Writes `state` atomically: a temporary file in the same directory renamed over
/// the old one, so readers never see a partial file. Not fsync'd: the state is
/// rewritten at every container event (an fsync each cost more than starting the
/// containers on a disk-backed /run), it describes processes that a power loss ends
/// anyway, and `down` copes with a stale record.
pub fn write(pod_dir: &Path, state: &PodState) -> Result<(), StateError> {
    let path = state_path(pod_dir);
    // A name per write: two threads of one process never share a temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = pod_dir.join(format!(".{STATE_FILE}.{}.{n}", std::process::id()));
    let text = serde_json::to_vec_pretty(state).expect("pod state always serializes");
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp, "create"))?;
    f.write_all(&text).map_err(io_err(&tmp, "write"))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io_err(&path, "rename into place"))
}

/// An exclusive lock on one pod (flock on `<pod dir>/lock`), released on drop.
pub struct PodLock {
    file: fs::File,
    path: PathBuf,
}

impl PodLock {
    /// Takes the lock, waiting for another command to finish with the pod.
    pub fn acquire(pod_dir: &Path) -> Result<PodLock, StateError> {
        Self::lock(pod_dir, false)
    }

    /// Takes the lock or fails at once with [`StateError::Busy`].
    pub fn try_acquire(pod_dir: &Path) -> Result<PodLock, StateError> {
        Self::lock(pod_dir, true)
    }

    fn lock(pod_dir: &Path, nonblocking: bool) -> Result<PodLock, StateError> {
        fs::create_dir_all(pod_dir).map_err(io_err(pod_dir, "create"))?;
        let path = crate::paths::lock_file(pod_dir);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path, "open"))?;
        let mut op = libc::LOCK_EX;
        if nonblocking {
            op |= libc::LOCK_NB;
        }
        // SAFETY: flock on an fd we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Err(StateError::Busy(pod_dir.display().to_string()));
            }
            return Err(StateError::Io {
                path,
                action: "lock",
                err,
            });
        }
        Ok(PodLock { file, path })
    }

    /// Releases a lock that was taken only to look (its pod directory made for
    /// it): removes the lock file, if it is still ours, and the directory, if
    /// nothing else is in it.
    pub fn release_and_remove(self) {
        if self.is_current() {
            let _ = fs::remove_file(&self.path);
            if let Some(dir) = self.path.parent() {
                let _ = fs::remove_dir(dir);
            }
        }
    }

    /// Whether the lock file we hold is still the one at its path: a pod removed (and
    /// perhaps created again) while we waited has a new lock file.
    pub fn is_current(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), fs::metadata(&self.path)) {
            (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
            _ => false,
        }
    }
}

/// RFC 3339 UTC with seconds, like Kubernetes' status times.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days → (year, month, day) for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses what [`rfc3339`] writes.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 20 || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // days_from_civil
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample() -> PodState {
        PodState {
            pod_id: "default_p".into(),
            namespace: "default".into(),
            name: "p".into(),
            uid: "u".into(),
            phase: PodPhase::Running,
            message: None,
            reason: None,
            qos_class: Some(crate::translate::qos::QosClass::Burstable),
            cgroup: Some("/podshim/kubepods/burstable/podu".into()),
            user_namespace: None,
            created_at: "2026-11-26T21:00:00Z".into(),
            supervisor_pid: Some(42),
            runtime: RuntimeRecord {
                program: "/usr/sbin/runc".into(),
                global_args: vec![],
                root: None,
            },
            restart_policy: RestartPolicy::Always,
            termination_grace_period_seconds: 30,
            log_dir: "/var/log/podshim/pods/default_p_u".into(),
            bundle_dir: "/run/podshim/pods/default_p".into(),
            keep_on_failure: false,
            containers: vec![ContainerStatus {
                name: "c".into(),
                id: "default_p_c".into(),
                kind: ContainerKind::App,
                image: Some("localhost/busybox:latest".into()),
                state: ContainerState::Terminated {
                    exit_code: 1,
                    reason: "Error".into(),
                    message: None,
                    started_at: "2026-11-26T21:00:00Z".into(),
                    finished_at: "2026-11-26T21:00:01Z".into(),
                },
                last_state: None,
                restart_count: 3,
                ready: false,
                started: None,
                stop_signal: Signal::TERM,
                probes: Vec::new(),
                user: None,
                resources: None,
            }],
            host_ip: Some("192.0.2.1".into()),
            pod_ip: Some("10.89.0.2".into()),
            pod_ips: vec![PodIp {
                ip: "10.89.0.2".into(),
            }],
            conditions: Vec::new(),
            events: Vec::new(),
            origin: Default::default(),
        }
    }

    #[test]
    fn state_round_trips_through_the_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let state = sample();
        write(dir.path(), &state).unwrap();
        assert_eq!(read(dir.path()).unwrap(), state);
        // No temporary file is left beside it.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [STATE_FILE]);
        // Kubernetes' PodStatus names for the addresses.
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(json["hostIP"], "192.0.2.1");
        assert_eq!(json["podIP"], "10.89.0.2");
        assert_eq!(json["podIPs"], serde_json::json!([{"ip": "10.89.0.2"}]));
    }

    #[test]
    fn second_lock_on_a_pod_is_refused_while_the_first_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let first = PodLock::try_acquire(dir.path()).unwrap();
        assert!(matches!(
            PodLock::try_acquire(dir.path()),
            Err(StateError::Busy(_))
        ));
        drop(first);
        assert!(PodLock::try_acquire(dir.path()).is_ok());
    }

    #[test]
    fn rfc3339_formats_and_parses_utc_seconds() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let s = rfc3339(t);
        assert_eq!(s, "2026-11-18T11:06:40Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
