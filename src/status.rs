//! PURE: a pod's conditions and events, as the kubelet reports them
//! (`pkg/kubelet/status/generate.go`, `events/event.go`): what `ps -o json` and
//! `describe` show besides the containers' own states.

use serde::{Deserialize, Serialize};

use crate::model::ContainerKind;
use crate::state::{ContainerState, ContainerStatus, PodPhase};

/// One of Kubernetes' pod conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub kind: String,
    /// `True` or `False`.
    pub status: String,
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the conditions are now, before their transition times: (type, true,
/// reason, message), in the order `kubectl describe` prints them.
pub fn desired(
    phase: PodPhase,
    initialized: bool,
    restarting_all: Option<bool>,
    containers: &[ContainerStatus],
) -> Vec<(&'static str, bool, Option<String>, Option<String>)> {
    let infra_runs = containers
        .iter()
        .any(|c| c.kind == ContainerKind::Infra && c.state.is_running());
    // GeneratePodInitializedCondition: every init container completed and every
    // sidecar started (`initialized`, which the supervisor knows: it went on to
    // the app containers); until then, those not yet so are named.
    let incomplete: Vec<&str> = containers
        .iter()
        .filter(|c| match c.kind {
            ContainerKind::Init => {
                !matches!(c.state, ContainerState::Terminated { exit_code: 0, .. })
            }
            ContainerKind::Sidecar => c.started != Some(true),
            _ => false,
        })
        .map(|c| c.name.as_str())
        .collect();
    // GenerateContainersReadyCondition: every app container and sidecar ready.
    let unready: Vec<&str> = containers
        .iter()
        .filter(|c| matches!(c.kind, ContainerKind::App | ContainerKind::Sidecar) && !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let completed = matches!(phase, PodPhase::Succeeded | PodPhase::Failed);
    let ready = (|| {
        if completed {
            return (false, Some("PodCompleted".to_string()), None);
        }
        if !unready.is_empty() {
            return (
                false,
                Some("ContainersNotReady".to_string()),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            );
        }
        (true, None, None)
    })();
    let init = if initialized {
        (true, None, None)
    } else {
        (
            false,
            Some("ContainersNotInitialized".to_string()),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    };
    let mut out = vec![
        ("PodReadyToStartContainers", infra_runs, None, None),
        ("Initialized", init.0, init.1, init.2),
        ("Ready", ready.0, ready.1.clone(), ready.2.clone()),
        ("ContainersReady", ready.0, ready.1, ready.2),
        // The pod is on this machine by definition.
        ("PodScheduled", true, None, None),
    ];
    // KEP-5532: shown once the pod restarted in place; True while it does.
    if let Some(restarting) = restarting_all {
        out.push(("AllContainersRestarting", restarting, None, None));
    }
    out
}

/// `conditions` brought up to date at `now`: a condition's transition time
/// changes only when its status does.
pub fn update(
    conditions: &mut Vec<PodCondition>,
    phase: PodPhase,
    initialized: bool,
    restarting_all: Option<bool>,
    containers: &[ContainerStatus],
    now: &str,
) {
    let next: Vec<PodCondition> = desired(phase, initialized, restarting_all, containers)
        .into_iter()
        .map(|(kind, ok, reason, message)| {
            let status = if ok { "True" } else { "False" }.to_string();
            let since = conditions
                .iter()
                .find(|c| c.kind == kind && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.to_string());
            PodCondition {
                kind: kind.into(),
                status,
                last_transition_time: since,
                reason,
                message,
            }
        })
        .collect();
    *conditions = next;
}

/// How many events a pod keeps (the oldest go first), so that its state file
/// stays small however long it runs.
pub const MAX_EVENTS: usize = 100;

/// One event, as `kubectl describe` lists them. A repeat of an event of the
/// same object, reason and message counts it up instead of adding a line (the
/// event recorder's aggregation), and moves it last: the list is in the order
/// of last occurrence, as kubectl sorts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    /// The container it is about (none: the pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub message: String,
    pub count: u32,
    pub first_timestamp: String,
    pub last_timestamp: String,
}

/// Adds an event to `events`, keeping at most [`MAX_EVENTS`].
pub fn record(
    events: &mut Vec<Event>,
    warning: bool,
    reason: &str,
    container: Option<&str>,
    message: String,
    now: &str,
) {
    let kind = if warning { "Warning" } else { "Normal" };
    if let Some(i) = events.iter().position(|e| {
        e.kind == kind
            && e.container.as_deref() == container
            && e.reason == reason
            && e.message == message
    }) {
        let mut e = events.remove(i);
        e.count = e.count.saturating_add(1);
        e.last_timestamp = now.to_string();
        events.push(e);
        return;
    }
    events.push(Event {
        kind: kind.into(),
        reason: reason.into(),
        container: container.map(str::to_string),
        message,
        count: 1,
        first_timestamp: now.to_string(),
        last_timestamp: now.to_string(),
    });
    if events.len() > MAX_EVENTS {
        let extra = events.len() - MAX_EVENTS;
        events.drain(..extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Signal;

    fn c(name: &str, kind: ContainerKind, state: ContainerState, ready: bool) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            id: name.into(),
            kind,
            image: None,
            state,
            last_state: None,
            restart_count: 0,
            ready,
            started: matches!(kind, ContainerKind::App | ContainerKind::Sidecar).then_some(ready),
            stop_signal: Signal::TERM,
            probes: vec![],
            user: None,
            resources: None,
        }
    }

    fn running() -> ContainerState {
        ContainerState::Running {
            pid: 1,
            started_at: "t".into(),
        }
    }

    fn waiting() -> ContainerState {
        ContainerState::Waiting {
            reason: "ContainerCreating".into(),
        }
    }

    fn completed(code: i32) -> ContainerState {
        ContainerState::Terminated {
            exit_code: code,
            reason: "Completed".into(),
            message: None,
            started_at: "t".into(),
            finished_at: "t".into(),
        }
    }

    fn get<'a>(
        d: &'a [(&'static str, bool, Option<String>, Option<String>)],
        kind: &str,
    ) -> &'a (&'static str, bool, Option<String>, Option<String>) {
        d.iter().find(|x| x.0 == kind).unwrap()
    }

    #[test]
    fn a_pod_waiting_for_its_init_container_is_not_initialized_nor_ready() {
        let d = desired(
            PodPhase::Pending,
            false,
            None,
            &[
                c("POD", ContainerKind::Infra, running(), false),
                c("init", ContainerKind::Init, running(), false),
                c("app", ContainerKind::App, waiting(), false),
            ],
        );
        assert!(get(&d, "PodReadyToStartContainers").1);
        assert_eq!(
            get(&d, "Initialized"),
            &(
                "Initialized",
                false,
                Some("ContainersNotInitialized".into()),
                Some("containers with incomplete status: [init]".into())
            )
        );
        assert_eq!(
            get(&d, "Ready").3.as_deref(),
            Some("containers with unready status: [app]")
        );
    }

    #[test]
    fn a_running_pod_with_every_container_ready_is_ready() {
        let d = desired(
            PodPhase::Running,
            true,
            None,
            &[
                c("POD", ContainerKind::Infra, running(), false),
                c("init", ContainerKind::Init, completed(0), false),
                c("side", ContainerKind::Sidecar, running(), true),
                c("app", ContainerKind::App, running(), true),
            ],
        );
        assert!(d.iter().all(|x| x.1), "{d:?}");
    }

    #[test]
    fn a_completed_pod_is_not_ready_with_reason_pod_completed() {
        let d = desired(
            PodPhase::Succeeded,
            true,
            None,
            &[c("app", ContainerKind::App, completed(0), false)],
        );
        assert_eq!(get(&d, "Ready").2.as_deref(), Some("PodCompleted"));
        assert!(!get(&d, "PodReadyToStartContainers").1);
    }

    #[test]
    fn a_transition_time_changes_only_with_the_status() {
        let mut conds = Vec::new();
        let waiting_app = [c("app", ContainerKind::App, waiting(), false)];
        update(
            &mut conds,
            PodPhase::Pending,
            true,
            None,
            &waiting_app,
            "t1",
        );
        update(
            &mut conds,
            PodPhase::Pending,
            true,
            None,
            &waiting_app,
            "t2",
        );
        let ready = |conds: &[PodCondition]| {
            conds
                .iter()
                .find(|c| c.kind == "Ready")
                .map(|c| (c.status.clone(), c.last_transition_time.clone()))
                .unwrap()
        };
        assert_eq!(ready(&conds), ("False".into(), "t1".into()));
        let ready_app = [c("app", ContainerKind::App, running(), true)];
        update(&mut conds, PodPhase::Running, true, None, &ready_app, "t3");
        assert_eq!(ready(&conds), ("True".into(), "t3".into()));
    }

    #[test]
    fn repeated_events_count_up_and_the_list_is_bounded() {
        let mut events = Vec::new();
        record(
            &mut events,
            true,
            "Unhealthy",
            Some("a"),
            "Liveness probe failed: x".into(),
            "t1",
        );
        record(
            &mut events,
            true,
            "Unhealthy",
            Some("a"),
            "Liveness probe failed: x".into(),
            "t2",
        );
        assert_eq!(events.len(), 1);
        assert_eq!(
            (
                events[0].count,
                events[0].first_timestamp.as_str(),
                events[0].last_timestamp.as_str()
            ),
            (2, "t1", "t2")
        );
        for i in 0..(MAX_EVENTS + 20) {
            record(
                &mut events,
                false,
                "Started",
                Some("a"),
                format!("run {i}"),
                "t",
            );
        }
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(
            events.last().unwrap().message,
            format!("run {}", MAX_EVENTS + 19)
        );
    }
}
