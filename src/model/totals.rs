//! A pod's CPU and memory added up as Kubernetes adds them
//! (k8s.io/component-helpers/resource `PodRequests`, `PodLimits`): app containers
//! and sidecars run together and are summed; an init container runs alone, beside
//! the sidecars started before it, so the pod needs the most any of those moments
//! needs. Pod-level `spec.resources` (KEP-2837), where written, replaces the sum.

use super::{Container, ContainerKind, PodSpec, Quantity, Resources};

/// CPU in millicores, memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    pub cpu: u128,
    pub memory: u128,
}

impl Amounts {
    fn add(self, o: Amounts) -> Amounts {
        Amounts {
            cpu: self.cpu.saturating_add(o.cpu),
            memory: self.memory.saturating_add(o.memory),
        }
    }
    fn max(self, o: Amounts) -> Amounts {
        Amounts {
            cpu: self.cpu.max(o.cpu),
            memory: self.memory.max(o.memory),
        }
    }
}

/// What a pod needs and may use, with whether each limit is declared (by every
/// container, or by the pod): the kubelet caps the pod's cgroup only then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: Amounts,
    pub limits: Amounts,
    pub cpu_limited: bool,
    pub memory_limited: bool,
}

fn cpu(q: Option<Quantity>) -> u128 {
    q.and_then(|q| q.millis()).unwrap_or(0)
}

fn memory(q: Option<Quantity>) -> u128 {
    q.and_then(|q| q.whole()).unwrap_or(0)
}

fn requests(r: &Resources) -> Amounts {
    Amounts {
        cpu: cpu(r.cpu_request),
        memory: memory(r.memory_request),
    }
}

fn limits(r: &Resources) -> Amounts {
    Amounts {
        cpu: cpu(r.cpu_limit),
        memory: memory(r.memory_limit),
    }
}

/// The containers' totals (`AggregateContainerRequests`/`Limits`), `containers` in
/// the model's order: init containers and sidecars, then app containers.
pub fn of_containers(containers: &[Container]) -> Totals {
    of(containers.iter().map(|c| (c.kind, c.resources)))
}

/// The same over each container's kind and resources, in that order.
pub fn of(containers: impl IntoIterator<Item = (ContainerKind, Resources)>) -> Totals {
    let mut t = Totals {
        cpu_limited: true,
        memory_limited: true,
        ..Totals::default()
    };
    let mut declared = |limits: Amounts| {
        t.cpu_limited &= limits.cpu != 0;
        t.memory_limited &= limits.memory != 0;
    };
    let (mut sum_req, mut sum_lim) = (Amounts::default(), Amounts::default());
    let (mut side_req, mut side_lim) = (Amounts::default(), Amounts::default());
    let (mut init_req, mut init_lim) = (Amounts::default(), Amounts::default());
    for (kind, resources) in containers {
        let (req, lim) = (requests(&resources), limits(&resources));
        match kind {
            ContainerKind::App => {
                declared(lim);
                sum_req = sum_req.add(req);
                sum_lim = sum_lim.add(lim);
            }
            ContainerKind::Sidecar => {
                sum_req = sum_req.add(req);
                sum_lim = sum_lim.add(lim);
                side_req = side_req.add(req);
                side_lim = side_lim.add(lim);
                declared(side_lim);
                init_req = init_req.max(side_req);
                init_lim = init_lim.max(side_lim);
            }
            ContainerKind::Init => {
                let (req, lim) = (req.add(side_req), lim.add(side_lim));
                declared(lim);
                init_req = init_req.max(req);
                init_lim = init_lim.max(lim);
            }
            ContainerKind::Infra => {}
        }
    }
    Totals {
        requests: sum_req.max(init_req),
        limits: sum_lim.max(init_lim),
        ..t
    }
}

/// The pod's totals: its own `spec.resources` where written (a pod-level limit
/// declares that limit), else its containers'.
pub fn of_pod(spec: &PodSpec) -> Totals {
    with_pod_level(of_containers(&spec.containers), spec.resources.as_ref())
}

/// The containers' totals `t`, replaced by the pod-level resources where written.
pub fn with_pod_level(mut t: Totals, pod: Option<&Resources>) -> Totals {
    let Some(pod) = pod else {
        return t;
    };
    if pod.cpu_request.is_some() {
        t.requests.cpu = cpu(pod.cpu_request);
    }
    if pod.memory_request.is_some() {
        t.requests.memory = memory(pod.memory_request);
    }
    if let Some(l) = pod.cpu_limit.filter(|q| !q.is_zero()) {
        t.limits.cpu = cpu(Some(l));
        t.cpu_limited = true;
    }
    if let Some(l) = pod.memory_limit.filter(|q| !q.is_zero()) {
        t.limits.memory = memory(Some(l));
        t.memory_limited = true;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml_spec: &str) -> PodSpec {
        let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{yaml_spec}");
        crate::manifest::parse(&yaml, "t").unwrap().pod.spec
    }

    #[test]
    fn apps_and_sidecars_add_up_and_an_init_container_counts_the_sidecars_before_it() {
        let t = of_pod(&spec(concat!(
            "  initContainers:\n",
            "  - {name: side, image: x, restartPolicy: Always, resources: {requests: {cpu: 100m, memory: 10}, limits: {cpu: 200m, memory: 20}}}\n",
            // Alone with the sidecar: 1100m and 110 requested, 1200m and 120 limited.
            "  - {name: init, image: x, resources: {limits: {cpu: 1, memory: 100}}}\n",
            "  containers:\n",
            "  - {name: app, image: x, resources: {limits: {cpu: 300m, memory: 30}}}\n",
        )));
        assert_eq!(
            t.requests,
            Amounts {
                cpu: 1100,
                memory: 110
            }
        );
        assert_eq!(
            t.limits,
            Amounts {
                cpu: 1200,
                memory: 120
            }
        );
        assert!(t.cpu_limited && t.memory_limited);
        // Once the init container is done, the apps and the sidecar: the larger.
        let t = of_pod(&spec(concat!(
            "  initContainers:\n",
            "  - {name: init, image: x, resources: {limits: {cpu: 100m, memory: 1}}}\n",
            "  containers:\n",
            "  - {name: a, image: x, resources: {limits: {cpu: 300m, memory: 30}}}\n",
            "  - {name: b, image: x, resources: {limits: {cpu: 300m, memory: 30}}}\n",
        )));
        assert_eq!(
            t.limits,
            Amounts {
                cpu: 600,
                memory: 60
            }
        );
    }

    #[test]
    fn one_container_without_a_limit_leaves_the_pod_unlimited_in_that_resource() {
        let t = of_pod(&spec(concat!(
            "  containers:\n",
            "  - {name: a, image: x, resources: {limits: {cpu: 1}}}\n",
            "  - {name: b, image: x, resources: {limits: {cpu: 1, memory: 1Mi}}}\n",
        )));
        assert!(t.cpu_limited);
        assert!(!t.memory_limited);
        // An init container without a limit counts too.
        let t = of_pod(&spec(concat!(
            "  initContainers: [{name: i, image: x}]\n",
            "  containers: [{name: a, image: x, resources: {limits: {cpu: 1, memory: 1}}}]\n",
        )));
        assert!(!t.cpu_limited && !t.memory_limited);
    }

    #[test]
    fn pod_level_resources_replace_the_containers_sum_and_declare_their_limits() {
        let t = of_pod(&spec(concat!(
            "  resources: {limits: {cpu: 2, memory: 1Gi}}\n",
            "  containers:\n",
            "  - {name: a, image: x, resources: {requests: {cpu: 250m}}}\n",
            "  - {name: b, image: x}\n",
        )));
        // Requests default to the containers' where they request, else the limit.
        assert_eq!(
            t.requests,
            Amounts {
                cpu: 250,
                memory: 1 << 30
            }
        );
        assert_eq!(
            t.limits,
            Amounts {
                cpu: 2000,
                memory: 1 << 30
            }
        );
        assert!(t.cpu_limited && t.memory_limited);
    }
}
