//! The pod's QoS class and each container's OOM score adjustment, as the kubelet
//! computes them (pkg/apis/core/v1/helper/qos `GetPodQOS`, pkg/kubelet/qos/policy.go
//! `GetContainerOOMScoreAdjust`): under memory pressure the kernel kills
//! BestEffort containers first and Guaranteed ones last, and never the supervisor
//! (which sets its own to -1000, as conmon does).

use crate::model::{Container, ContainerKind, PodSpec, Quantity};

/// Kubernetes' `status.qosClass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    #[default]
    BestEffort,
}

/// `guaranteedOOMScoreAdj`, `besteffortOOMScoreAdj`.
const GUARANTEED: i32 = -997;
const BEST_EFFORT: i32 = 1000;
/// containerd's `defaultSandboxOOMAdj` for the pause container.
pub const INFRA: i32 = -998;

fn positive(q: Option<Quantity>) -> Option<Quantity> {
    q.filter(|q| !q.is_zero())
}

/// `GetPodQOS`: BestEffort without any CPU or memory request or limit; Guaranteed
/// when every container limits both and requests what it limits (a request not
/// written is its limit, as the API server defaults it); else Burstable.
pub fn pod_qos(spec: &PodSpec) -> QosClass {
    qos_of(
        spec.containers.iter().map(|c| &c.resources),
        spec.resources.as_ref(),
    )
}

/// `GetPodQOS` of these containers' resources and the pod-level ones.
pub fn qos_of<'a>(
    containers: impl IntoIterator<Item = &'a crate::model::Resources>,
    pod: Option<&crate::model::Resources>,
) -> QosClass {
    if let Some(pod) = pod {
        return pod_level_qos(pod);
    }
    let mut any = false;
    let mut guaranteed = true;
    for r in containers {
        let (cpu_req, mem_req) = (positive(r.cpu_request), positive(r.memory_request));
        let (cpu_lim, mem_lim) = (positive(r.cpu_limit), positive(r.memory_limit));
        any |= cpu_req.is_some() || mem_req.is_some() || cpu_lim.is_some() || mem_lim.is_some();
        let same = |req: Option<Quantity>, lim: Option<Quantity>| match (req, lim) {
            (Some(req), Some(lim)) => !req.exceeds(&lim) && !lim.exceeds(&req),
            _ => false,
        };
        if !(same(cpu_req, cpu_lim) && same(mem_req, mem_lim)) {
            guaranteed = false;
        }
    }
    match (any, guaranteed) {
        (false, _) => QosClass::BestEffort,
        (true, true) => QosClass::Guaranteed,
        (true, false) => QosClass::Burstable,
    }
}

/// `ComputePodQOS` of a pod with pod-level resources: they alone decide.
/// Guaranteed when both CPU and memory are limited and requested at the limit.
fn pod_level_qos(r: &crate::model::Resources) -> QosClass {
    let (cpu_req, mem_req) = (positive(r.cpu_request), positive(r.memory_request));
    let (cpu_lim, mem_lim) = (positive(r.cpu_limit), positive(r.memory_limit));
    if [cpu_req, mem_req, cpu_lim, mem_lim]
        .iter()
        .all(Option::is_none)
    {
        return QosClass::BestEffort;
    }
    let same = |req: Option<Quantity>, lim: Option<Quantity>| match (req, lim) {
        (Some(req), Some(lim)) => !req.exceeds(&lim) && !lim.exceeds(&req),
        _ => false,
    };
    if same(cpu_req, cpu_lim) && same(mem_req, mem_lim) {
        QosClass::Guaranteed
    } else {
        QosClass::Burstable
    }
}

fn memory_request(c: &Container) -> u128 {
    c.resources
        .memory_request
        .and_then(|q| q.whole())
        .unwrap_or(0)
}

/// `1000 - 1000 * request / capacity`, in 128 bits (a request can be 2^63-1 bytes).
fn proportional(request: u128, capacity: u64) -> i64 {
    let capacity = u128::from(capacity.max(1));
    let share = (1000 * request / capacity).min(1000) as i64;
    1000 - share
}

/// `GetContainerOOMScoreAdjust`. `capacity` is the node's memory in bytes.
pub fn container(spec: &PodSpec, qos: QosClass, c: &Container, capacity: u64) -> i32 {
    match qos {
        QosClass::Guaranteed => return GUARANTEED,
        QosClass::BestEffort => return BEST_EFFORT,
        QosClass::Burstable => {}
    }
    let mut adj = proportional(memory_request(c), capacity);
    // A sidecar is killed no sooner than the app containers it serves: its score
    // is at most the one of the app container requesting the least memory.
    if c.kind == ContainerKind::Sidecar {
        let least = spec
            .containers
            .iter()
            .filter(|c| c.kind == ContainerKind::App)
            .map(memory_request)
            .min();
        if let Some(least) = least {
            adj = adj.min(proportional(least, capacity));
        }
    }
    // Burstable stays above Guaranteed and below BestEffort.
    let adj = adj.clamp(i64::from(1000 + GUARANTEED), i64::from(BEST_EFFORT - 1));
    adj as i32
}

/// A host where podshim may not lower scores (no CAP_SYS_RESOURCE: a container,
/// a VM, a user namespace) gets none below `floor`, its own current score, as
/// containerd's `restrict_oom_score_adj` does; runc would fail the start.
pub fn restrict(adj: i32, floor: Option<i32>) -> i32 {
    floor.map_or(adj, |f| adj.max(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(containers: &str) -> PodSpec {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  initContainers: [{{name: side, image: x, restartPolicy: Always}}]\n  containers:\n{containers}"
        );
        crate::manifest::parse(&yaml, "t").unwrap().pod.spec
    }

    #[test]
    fn qos_classes_follow_get_pod_qos() {
        let rows = [
            ("  - {name: a, image: x}\n", QosClass::BestEffort),
            (
                "  - {name: a, image: x, resources: {limits: {cpu: 0, memory: 0}}}\n",
                QosClass::BestEffort,
            ),
            (
                "  - {name: a, image: x, resources: {requests: {memory: 1Mi}}}\n",
                QosClass::Burstable,
            ),
            // Every container must limit both: the sidecar here limits nothing.
            (
                "  - {name: a, image: x, resources: {limits: {cpu: 1, memory: 1Gi}}}\n",
                QosClass::Burstable,
            ),
        ];
        for (containers, want) in rows {
            assert_eq!(pod_qos(&spec(containers)), want, "{containers}");
        }
        let all_limited = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: x, resources: {limits: {cpu: 1, memory: 1Gi}}}\n  - {name: b, image: x, resources: {limits: {cpu: 500m, memory: 1Mi}, requests: {cpu: 0.5, memory: 1Mi}}}\n";
        let s = crate::manifest::parse(all_limited, "t").unwrap().pod.spec;
        assert_eq!(pod_qos(&s), QosClass::Guaranteed);
        let below = all_limited.replace(
            "requests: {cpu: 0.5, memory: 1Mi}",
            "requests: {cpu: 0.4, memory: 1Mi}",
        );
        let s = crate::manifest::parse(&below, "t").unwrap().pod.spec;
        assert_eq!(pod_qos(&s), QosClass::Burstable);
    }

    #[test]
    fn oom_score_adjustments_follow_the_kubelets_policy() {
        const GIB: u64 = 1 << 30;
        let s = spec(
            "  - {name: a, image: x, resources: {requests: {memory: 1Gi}}}\n  - {name: b, image: x, resources: {requests: {memory: 8Gi}}}\n  - {name: c, image: x, resources: {requests: {memory: 1Ki}}}\n",
        );
        let by_name = |n: &str| s.containers.iter().find(|c| c.name.as_str() == n).unwrap();
        let adj = |n: &str| container(&s, QosClass::Burstable, by_name(n), 4 * GIB);
        assert_eq!(adj("a"), 750);
        // Above the node's memory: still above Guaranteed's -997 + 1000.
        assert_eq!(adj("b"), 3);
        // A tiny request: below BestEffort's 1000.
        assert_eq!(adj("c"), 999);
        // The sidecar requests nothing, yet is killed no sooner than c (the least).
        assert_eq!(adj("side"), 999);
        let s2 = spec("  - {name: a, image: x, resources: {requests: {memory: 2Gi}}}\n");
        let side = s2
            .containers
            .iter()
            .find(|c| c.name.as_str() == "side")
            .unwrap();
        assert_eq!(container(&s2, QosClass::Burstable, side, 4 * GIB), 500);
        assert_eq!(container(&s2, QosClass::Guaranteed, side, 4 * GIB), -997);
        assert_eq!(container(&s2, QosClass::BestEffort, side, 4 * GIB), 1000);
        // 2^63-1 bytes requested does not overflow.
        let huge = spec(
            "  - {name: a, image: x, resources: {requests: {memory: \"9223372036854775807\"}}}\n",
        );
        let a = huge
            .containers
            .iter()
            .find(|c| c.name.as_str() == "a")
            .unwrap();
        assert_eq!(container(&huge, QosClass::Burstable, a, 4 * GIB), 3);
    }

    #[test]
    fn a_host_that_cannot_lower_scores_keeps_them_at_its_own() {
        assert_eq!(restrict(-997, None), -997);
        assert_eq!(restrict(-997, Some(0)), 0);
        assert_eq!(restrict(500, Some(0)), 500);
    }
}
