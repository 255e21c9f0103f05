//! `podshim resize`: a container's CPU and memory changed in place (KEP-1287), as
//! the kubelet applies a pod's `resize` subresource. The request is validated as
//! the API server validates one (a running app container or sidecar, requests at
//! most the limits, the QoS class unchanged, within the pod-level resources);
//! then, per `resizePolicy`, the cgroups are updated through the runtime's
//! `update` verb while the container runs (`NotRequired`), or the supervisor
//! restarts it with them (`RestartContainer`). The pod cgroup grows before the
//! container and shrinks after it, as the kubelet orders the two. The bundle's
//! config.json and the plan keep the new values for every later start.

use std::path::Path;

use super::{PodError, io_err};
use crate::model::{ContainerKind, PodKey, Quantity, ResizeRestart, Resources, totals};
use crate::paths::Paths;
use crate::run_plan::{PlanResources, RunPlan, SetupStep};
use crate::runtime::{CliRuntime, OciRuntime, RuntimeConfig};
use crate::state::{self, ContainerState};
use crate::translate::pod_cgroup::PodCgroup;
use crate::translate::qos;

/// What to change; a value not given stays.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub container: String,
    pub cpu_limit: Option<Quantity>,
    pub cpu_request: Option<Quantity>,
    pub memory_limit: Option<Quantity>,
    pub memory_request: Option<Quantity>,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resized {
    pub resources: PlanResources,
    /// Restarted for it (`RestartContainer`), else updated in place.
    pub restarted: bool,
}

fn invalid(key: &PodKey, why: String) -> PodError {
    PodError::Invalid(format!("pod {key}: resize: {why}"))
}

/// The container's new resources: a new limit carries a request that equalled
/// the old limit along with it (a request the API server defaulted from it).
pub fn merge(old: &Resources, req: &Request) -> Resources {
    let follow = |request: Option<Quantity>,
                  old_limit: Option<Quantity>,
                  new_limit: Option<Quantity>| {
        match (request, old_limit, new_limit) {
            (Some(r), Some(l), Some(n)) if r == l || (!r.exceeds(&l) && !l.exceeds(&r)) => Some(n),
            (None, _, Some(n)) => Some(n),
            (r, _, _) => r,
        }
    };
    let cpu_request = req
        .cpu_request
        .or_else(|| follow(old.cpu_request, old.cpu_limit, req.cpu_limit));
    let memory_request = req
        .memory_request
        .or_else(|| follow(old.memory_request, old.memory_limit, req.memory_limit));
    Resources {
        cpu_request,
        cpu_limit: req.cpu_limit.or(old.cpu_limit),
        memory_request,
        memory_limit: req.memory_limit.or(old.memory_limit),
    }
}

/// The API server's checks of a resize, over the whole pod with container `at`
/// given `new`.
pub fn check(plan: &RunPlan, at: usize, new: &Resources) -> Result<(), String> {
    let c = &plan.containers[at];
    if !matches!(c.kind, ContainerKind::App | ContainerKind::Sidecar) {
        return Err(format!(
            "container {:?} is an init container: only app containers and sidecars can be resized",
            c.name
        ));
    }
    for (name, request, limit) in [
        ("cpu", new.cpu_request, new.cpu_limit),
        ("memory", new.memory_request, new.memory_limit),
    ] {
        if let (Some(r), Some(l)) = (request, limit)
            && r.exceeds(&l)
        {
            return Err(format!(
                "{name} request must be less than or equal to the {name} limit"
            ));
        }
    }
    let of = |i: usize, r: &crate::run_plan::RunContainer| {
        if i == at {
            *new
        } else {
            r.resources.map(|p| p.model()).unwrap_or_default()
        }
    };
    let pod_level = plan.pod_resources.map(|p| p.model());
    let before: Vec<Resources> = plan
        .containers
        .iter()
        .map(|r| r.resources.map(|p| p.model()).unwrap_or_default())
        .collect();
    let after: Vec<Resources> = plan
        .containers
        .iter()
        .enumerate()
        .map(|(i, r)| of(i, r))
        .collect();
    if qos::qos_of(&before, pod_level.as_ref()) != qos::qos_of(&after, pod_level.as_ref()) {
        return Err(
            "Pod QoS is immutable: the new resources would change the pod's QoS class".into(),
        );
    }
    if let Some(pod) = pod_level {
        for (name, own, limit) in [
            ("cpu", new.cpu_limit, pod.cpu_limit),
            ("memory", new.memory_limit, pod.memory_limit),
        ] {
            if let (Some(own), Some(limit)) = (own, limit)
                && own.exceeds(&limit)
            {
                return Err(format!(
                    "{name} limit must be less than or equal to the pod's {name} limit"
                ));
            }
        }
        let sum = totals::of(
            plan.containers
                .iter()
                .map(|c| c.kind)
                .zip(after.iter().copied()),
        );
        for (name, total, request) in [
            (
                "cpu",
                Quantity::from_millis(sum.requests.cpu),
                pod.cpu_request,
            ),
            (
                "memory",
                Quantity::from_whole(sum.requests.memory),
                pod.memory_request,
            ),
        ] {
            if let Some(request) = request.filter(|q| !q.is_zero())
                && total.exceeds(&request)
            {
                return Err(format!(
                    "the containers' {name} requests would exceed the pod's {name} request"
                ));
            }
        }
    }
    Ok(())
}

/// The pod cgroup for the containers' resources `all` (the pod-level ones win).
fn pod_cgroup(plan: &RunPlan, old: &PodCgroup, all: &[Resources]) -> PodCgroup {
    let pod_level = plan.pod_resources.map(|p| p.model());
    let class = qos::qos_of(all, pod_level.as_ref());
    let t = totals::with_pod_level(
        totals::of(
            plan.containers
                .iter()
                .map(|c| c.kind)
                .zip(all.iter().copied()),
        ),
        pod_level.as_ref(),
    );
    crate::translate::pod_cgroup::sized(old.path.clone(), class, &t, old.pids_limit)
}

/// The larger of two cgroups' limits (none is unlimited): what the pod cgroup
/// holds while the container moves from one to the other.
fn larger(a: &PodCgroup, b: &PodCgroup) -> PodCgroup {
    let max = |x: Option<u64>, y: Option<u64>| x.zip(y).map(|(x, y)| x.max(y));
    PodCgroup {
        path: a.path.clone(),
        cpu_shares: a.cpu_shares.max(b.cpu_shares),
        cpu_quota: max(a.cpu_quota, b.cpu_quota),
        memory_limit: max(a.memory_limit, b.memory_limit),
        pids_limit: a.pids_limit,
    }
}

/// The CPU and memory part of `linux.resources` (nothing else: a device rule
/// given to `update` would replace the container's).
fn update_json(new: &Resources) -> serde_json::Value {
    let linux = crate::translate::resources::linux(new, false);
    let mut out = serde_json::Map::new();
    let value = serde_json::to_value(&linux).expect("resources serialize");
    for key in ["cpu", "memory"] {
        if let Some(v) = value.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    serde_json::Value::Object(out)
}

pub fn resize(paths: &Paths, key: &PodKey, req: &Request) -> Result<Resized, PodError> {
    let (pod_dir, _) = super::read_pod(paths, key)?;
    let _lock = state::PodLock::acquire(&pod_dir)?;
    let pod = state::read(&pod_dir)?;
    let mut plan = crate::run_plan::read(&pod.bundle_dir)?;
    let Some(at) = plan.containers.iter().position(|c| c.name == req.container) else {
        return Err(invalid(
            key,
            format!("container {:?} not found", req.container),
        ));
    };
    let old = plan.containers[at]
        .resources
        .map(|p| p.model())
        .unwrap_or_default();
    let new = merge(&old, req);
    check(&plan, at, &new)
        .map_err(|why| invalid(key, format!("container {:?}: {why}", req.container)))?;
    let running = pod.supervisor_pid.is_some()
        && matches!(
            pod.container(&req.container).map(|c| &c.state),
            Some(ContainerState::Running { .. })
        );
    let policy = plan.containers[at].resize_policy;
    let changed = |a: Option<Quantity>, b: Option<Quantity>| a != b;
    let restart = running
        && ((policy.cpu == ResizeRestart::RestartContainer
            && (changed(old.cpu_request, new.cpu_request)
                || changed(old.cpu_limit, new.cpu_limit)))
            || (policy.memory == ResizeRestart::RestartContainer
                && (changed(old.memory_request, new.memory_request)
                    || changed(old.memory_limit, new.memory_limit))));
    let all: Vec<Resources> = plan
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == at {
                new
            } else {
                c.resources.map(|p| p.model()).unwrap_or_default()
            }
        })
        .collect();
    let cgroups = plan.cgroup().cloned().map(|old_cg| {
        let new_cg = pod_cgroup(&plan, &old_cg, &all);
        (old_cg, new_cg)
    });
    let h = crate::cgroup::Hierarchies::read()
        .map_err(io_err(Path::new("/proc/self/mountinfo"), "read"))?;
    let ids = plan.ids();
    let cgroup_err = |e: crate::cgroup::CgroupError| PodError::Bundle(e.into());
    if let Some((old_cg, new_cg)) = &cgroups
        && running
    {
        crate::cgroup::set_limits(&h, &larger(old_cg, new_cg), &ids).map_err(cgroup_err)?;
    }
    let container = plan.containers[at].clone();
    let json = update_json(&new);
    if running && !restart {
        let runtime = CliRuntime::direct(RuntimeConfig {
            program: pod.runtime.program.clone(),
            global_args: pod.runtime.global_args.clone(),
            root: pod.runtime.root.clone(),
        });
        let file = pod_dir.join("resize.json");
        crate::fsutil::write_atomic(&file, json.to_string().as_bytes(), 0o600)
            .map_err(io_err(&file, "write"))?;
        let updated = runtime.update(&container.id, &file);
        let _ = std::fs::remove_file(&file);
        if let Err(e) = updated {
            // The pod cgroup back as it was: nothing changed.
            if let Some((old_cg, _)) = &cgroups {
                let _ = crate::cgroup::set_limits(&h, old_cg, &ids);
            }
            return Err(e.into());
        }
    }
    if let Some((_, new_cg)) = &cgroups
        && running
    {
        crate::cgroup::set_limits(&h, new_cg, &ids).map_err(cgroup_err)?;
    }
    // Every later start takes the new values: the bundle, then the plan.
    crate::bundle::edit_config(&container, |config| {
        let res = &mut config["linux"]["resources"];
        for key in ["cpu", "memory"] {
            match json.get(key) {
                Some(v) => res[key] = v.clone(),
                None => {
                    if let Some(o) = res.as_object_mut() {
                        o.remove(key);
                    }
                }
            }
        }
        Ok(())
    })?;
    let resources = PlanResources::of(&new);
    plan.containers[at].resources = Some(resources);
    if let Some((_, new_cg)) = cgroups {
        for step in &mut plan.setup {
            if let SetupStep::PodCgroup { cgroup, .. } = step {
                *cgroup = new_cg.clone();
            }
        }
    }
    let plan_file = RunPlan::file(&plan.base);
    crate::fsutil::write_atomic(&plan_file, crate::run_plan::render(&plan).as_bytes(), 0o644)
        .map_err(io_err(&plan_file, "write"))?;
    // The supervisor takes the new values into the status, and restarts the
    // container for them where its policy asks.
    if let Some(pid) = pod.supervisor_pid {
        if restart {
            let file = crate::paths::resize_file(&pod_dir);
            crate::fsutil::write_atomic(&file, format!("{}\n", req.container).as_bytes(), 0o600)
                .map_err(io_err(&file, "write"))?;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGUSR1,
        );
    }
    Ok(Resized {
        resources,
        restarted: restart,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Option<Quantity> {
        Some(Quantity::parse(s).unwrap())
    }

    #[test]
    fn a_new_limit_carries_a_request_that_was_the_limit() {
        let guaranteed = Resources {
            cpu_request: q("500m"),
            cpu_limit: q("0.5"),
            memory_request: q("64Mi"),
            memory_limit: q("64Mi"),
        };
        let req = Request {
            cpu_limit: q("1"),
            ..Default::default()
        };
        let new = merge(&guaranteed, &req);
        assert_eq!((new.cpu_request, new.cpu_limit), (q("1"), q("1")));
        assert_eq!(new.memory_limit, q("64Mi"));
        // A request below its limit stays.
        let burstable = Resources {
            cpu_request: q("100m"),
            cpu_limit: q("500m"),
            ..Default::default()
        };
        assert_eq!(merge(&burstable, &req).cpu_request, q("100m"));
        // Unless given.
        let req = Request {
            cpu_request: q("200m"),
            ..req
        };
        assert_eq!(merge(&burstable, &req).cpu_request, q("200m"));
    }

    fn plan(containers: &[(&str, ContainerKind, Resources)]) -> RunPlan {
        let kinds: Vec<(&str, ContainerKind)> =
            containers.iter().map(|(n, k, _)| (*n, *k)).collect();
        let mut p = crate::run_plan::fixture(crate::model::RestartPolicy::Always, 1, &kinds);
        for (c, (_, _, r)) in p.containers.iter_mut().zip(containers) {
            c.resources = Some(PlanResources::of(r));
        }
        p
    }

    #[test]
    fn a_resize_is_refused_as_the_api_server_refuses_it() {
        let limited = Resources {
            cpu_request: q("1"),
            cpu_limit: q("1"),
            memory_request: q("64Mi"),
            memory_limit: q("64Mi"),
        };
        let p = plan(&[
            ("init", ContainerKind::Init, limited),
            ("app", ContainerKind::App, limited),
        ]);
        assert!(
            check(&p, 0, &limited)
                .unwrap_err()
                .contains("init container")
        );
        // Guaranteed stays Guaranteed: a request below the limit would make it Burstable.
        let burstable = Resources {
            cpu_request: q("500m"),
            ..limited
        };
        assert!(
            check(&p, 1, &burstable)
                .unwrap_err()
                .starts_with("Pod QoS is immutable")
        );
        let doubled = Resources {
            cpu_request: q("2"),
            cpu_limit: q("2"),
            ..limited
        };
        check(&p, 1, &doubled).unwrap();
        let upside_down = Resources {
            cpu_request: q("3"),
            cpu_limit: q("2"),
            ..limited
        };
        assert!(
            check(&p, 1, &upside_down)
                .unwrap_err()
                .contains("request must be less than or equal")
        );
        // Within the pod-level limit.
        let mut p = p;
        p.pod_resources = Some(PlanResources::of(&Resources {
            cpu_request: q("1500m"),
            cpu_limit: q("1500m"),
            memory_request: q("1Gi"),
            memory_limit: q("1Gi"),
        }));
        assert!(
            check(&p, 1, &doubled)
                .unwrap_err()
                .contains("pod's cpu limit")
        );
    }

    #[test]
    fn the_pod_cgroup_holds_the_larger_limits_while_a_container_moves() {
        let a = PodCgroup {
            path: "/p".into(),
            cpu_shares: 512,
            cpu_quota: Some(50_000),
            memory_limit: Some(100),
            pids_limit: None,
        };
        let b = PodCgroup {
            cpu_shares: 1024,
            cpu_quota: Some(20_000),
            memory_limit: None,
            ..a.clone()
        };
        let l = larger(&a, &b);
        assert_eq!(
            (l.cpu_shares, l.cpu_quota, l.memory_limit),
            (1024, Some(50_000), None)
        );
    }
}
