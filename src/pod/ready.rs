//! `up --wait-ready`: waiting for a started pod's `Ready` condition, which in
//! Kubernetes holds once every app container and every sidecar is ready (init
//! containers never count). What is still missing is said with each container's
//! last probe result, so that a CI log shows why.

use std::path::Path;
use std::time::{Duration, Instant};

use super::PodError;
use crate::model::{ContainerKind, PodKey, ProbeKind};
use crate::state::{self, ContainerState, PodPhase, PodState};

/// How often the pod's state is read again while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Why `pod` is not ready, one line per container that is not; `None` once it is.
pub fn not_ready(pod: &PodState) -> Option<String> {
    let lines: Vec<String> = pod
        .containers
        .iter()
        .filter(|c| matches!(c.kind, ContainerKind::App | ContainerKind::Sidecar) && !c.ready)
        .map(|c| {
            let why = match &c.state {
                ContainerState::Waiting { reason } => format!("waiting ({reason})"),
                ContainerState::Terminated {
                    exit_code, reason, ..
                } => format!("terminated ({reason}, exit code {exit_code})"),
                ContainerState::Running { .. } => {
                    // The startup probe first: readiness is not run before it passed.
                    let kind = if c.started == Some(false) {
                        ProbeKind::Startup
                    } else {
                        ProbeKind::Readiness
                    };
                    match c.probes.iter().find(|r| r.probe == kind) {
                        Some(r) if !r.success => {
                            format!("{} probe failed: {}", kind.title(), r.message)
                        }
                        _ => format!("{} probe has not succeeded yet", kind.title()),
                    }
                }
            };
            format!("container {:?}: {why}", c.name)
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// Waits until the pod is ready, it ended, or `deadline`.
pub fn wait_ready(
    pod_dir: &Path,
    key: &PodKey,
    deadline: Instant,
    seconds: u64,
) -> Result<PodState, PodError> {
    loop {
        let pod = state::read(pod_dir)?;
        let why = match pod.phase {
            PodPhase::Running | PodPhase::Pending => match not_ready(&pod) {
                None => return Ok(pod),
                // A supervisor that is gone cannot make the pod ready (only a
                // pid that no process has, ESRCH, is gone).
                Some(_)
                    if pod.supervisor_pid.is_some_and(|pid| {
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                            == Err(nix::errno::Errno::ESRCH)
                    }) =>
                {
                    return Err(PodError::StartFailed {
                        pod: key.clone(),
                        message: "its supervisor exited before it was ready".into(),
                        kept: false,
                    });
                }
                Some(why) => why,
            },
            phase => {
                return Err(PodError::StartFailed {
                    pod: key.clone(),
                    message: format!(
                        "it ended ({phase:?}) before it was ready{}",
                        pod.message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ),
                    kept: false,
                });
            }
        };
        if Instant::now() >= deadline {
            return Err(PodError::NotReady {
                pod: key.clone(),
                seconds,
                why,
            });
        }
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Signal;
    use crate::state::{ContainerStatus, ProbeRecord};

    fn container(name: &str, kind: ContainerKind, ready: bool) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            id: format!("ns_p_{name}"),
            kind,
            image: None,
            state: ContainerState::Running {
                pid: 1,
                started_at: "2026-01-01T00:00:00Z".into(),
            },
            last_state: None,
            restart_count: 0,
            ready,
            started: Some(true),
            stop_signal: Signal::TERM,
            probes: vec![],
            user: None,
            resources: None,
        }
    }

    fn pod(containers: Vec<ContainerStatus>) -> PodState {
        let mut p: PodState = serde_json::from_value(serde_json::json!({
            "podId": "ns_p", "namespace": "ns", "name": "p", "uid": "u", "phase": "Running",
            "message": null, "createdAt": "2026-01-01T00:00:00Z", "supervisorPid": null,
            "runtime": {"program": "runc", "globalArgs": [], "root": null},
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "logDir": "/l", "bundleDir": "/b", "keepOnFailure": false, "containers": [],
            "hostIP": null
        }))
        .unwrap();
        p.containers = containers;
        p
    }

    #[test]
    fn a_pod_is_ready_when_its_apps_and_sidecars_are_whatever_its_init_containers_are() {
        let p = pod(vec![
            container("POD", ContainerKind::Infra, false),
            container("init", ContainerKind::Init, false),
            container("side", ContainerKind::Sidecar, true),
            container("app", ContainerKind::App, true),
        ]);
        assert_eq!(not_ready(&p), None);
    }

    #[test]
    fn what_is_not_ready_is_said_with_the_last_probe_result() {
        let mut app = container("app", ContainerKind::App, false);
        app.probes.push(ProbeRecord {
            probe: ProbeKind::Readiness,
            success: false,
            message: "HTTP probe failed with statuscode: 503".into(),
            since: "2026-01-01T00:00:01Z".into(),
        });
        let mut side = container("side", ContainerKind::Sidecar, false);
        side.started = Some(false);
        let p = pod(vec![side, app]);
        assert_eq!(
            not_ready(&p).unwrap(),
            "container \"side\": Startup probe has not succeeded yet; container \"app\": Readiness probe failed: HTTP probe failed with statuscode: 503"
        );
    }
}
