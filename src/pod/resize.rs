//! `podshim resize`: a container's CPU and memory changed in place (KEP-1287), as
//! the kubelet applies a pod's `resize` subresource. The request is validated as
//! the API server validates one (a running app container or sidecar, requests at
//! most the limits, the QoS class unchanged, within the pod-level resources);
//! then, per `resizePolicy`, the cgroups are updated through the runtime's
//! `update` verb while the container runs (`NotRequired`), or the supervisor
//! restarts it with them (`RestartContainer`). The pod cgroup grows before the
//! container and shrinks after it, as the kubelet orders the two. The bundle's
//! config.json and the plan keep the new values for every later start.

use std::os::unix::fs::OpenOptionsExt;
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
            (Some(r), Some(l), Some(n)) if !r.exceeds(&l) && !l.exceeds(&r) => Some(n),
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

/// The API server's checks of a resize (ValidatePodResize), over the whole pod
/// with container `at` given `new`.
pub fn check(plan: &RunPlan, at: usize, new: &Resources) -> Result<(), String> {
    let c = &plan.containers[at];
    if plan.pod_resources.is_some() {
        return Err("pods with pod-level resources cannot be resized".into());
    }
    if plan.containers.iter().any(|c| c.resources.is_none()) {
        return Err("the pod was started by an older podshim that kept no resources: take it down and up again to resize it".into());
    }
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
    let before = all_resources(plan, None);
    let after = all_resources(plan, Some((at, *new)));
    if qos::qos_of(&before, None) != qos::qos_of(&after, None) {
        return Err(
            "Pod QoS is immutable: the new resources would change the pod's QoS class".into(),
        );
    }
    Ok(())
}

/// Every container's resources, container `at` given `new`.
fn all_resources(plan: &RunPlan, change: Option<(usize, Resources)>) -> Vec<Resources> {
    plan.containers
        .iter()
        .enumerate()
        .map(|(i, c)| match change {
            Some((at, new)) if at == i => new,
            _ => c.resources.map(|p| p.model()).unwrap_or_default(),
        })
        .collect()
}

/// The pod cgroup for the containers' resources `all` (a pod with pod-level
/// resources is never resized: [`check`]).
fn pod_cgroup(plan: &RunPlan, old: &PodCgroup, all: &[Resources]) -> PodCgroup {
    let kinds = plan.containers.iter().map(|c| c.kind);
    old.resized(
        qos::qos_of(all, None),
        &totals::of(kinds.zip(all.iter().copied())),
    )
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
        owned_from: a.owned_from.clone(),
    }
}

/// The memory the container's cgroup uses now (v1 `memory.usage_in_bytes`, v2
/// `memory.current`), if it can be read.
fn memory_usage(h: &crate::cgroup::Hierarchies, cgroup: &str) -> Option<u64> {
    let file = match h.is_unified() {
        true => h
            .unified
            .as_ref()?
            .join(cgroup.trim_start_matches('/'))
            .join("memory.current"),
        false => h
            .v1_mount("memory")?
            .join(cgroup.trim_start_matches('/'))
            .join("memory.usage_in_bytes"),
    };
    let bytes = crate::fsutil::read_regular(&file, 64).ok()?;
    String::from_utf8(bytes).ok()?.trim().parse().ok()
}

pub fn resize(paths: &Paths, key: &PodKey, req: &Request) -> Result<Resized, PodError> {
    let (pod_dir, _) = super::read_pod(paths, key)?;
    let lock = state::PodLock::acquire(&pod_dir)?;
    if !lock.is_current() {
        return Err(PodError::NotFound(key.clone()));
    }
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
    let bad = |why: String| invalid(key, format!("container {:?}: {why}", req.container));
    check(&plan, at, &new).map_err(bad)?;
    // The pod runs while its supervisor does (it owns config.json then).
    let supervisor = pod
        .supervisor_pid
        .filter(|&pid| super::supervisor_alive(pid, &pod_dir));
    let running = supervisor.is_some()
        && matches!(
            pod.container(&req.container).map(|c| &c.state),
            Some(ContainerState::Running { .. })
        );
    let policy = plan.containers[at].resize_policy;
    let cpu_changed = old.cpu_request != new.cpu_request || old.cpu_limit != new.cpu_limit;
    let memory_changed =
        old.memory_request != new.memory_request || old.memory_limit != new.memory_limit;
    let restart = running
        && ((policy.cpu == ResizeRestart::RestartContainer && cpu_changed)
            || (policy.memory == ResizeRestart::RestartContainer && memory_changed));
    let h = crate::cgroup::Hierarchies::read()
        .map_err(io_err(Path::new("/proc/self/mountinfo"), "read"))?;
    let container = plan.containers[at].clone();
    let own_cgroup = plan.cgroup().map(|cg| cg.container(&container.id));
    // A limit below what the container uses now would have the kernel reclaim
    // or OOM-kill it: the kubelet leaves such a resize pending; podshim refuses.
    if running
        && !restart
        && let (Some(limit), Some(cgroup)) = (new.memory_limit, &own_cgroup)
        && let Some(used) = memory_usage(&h, cgroup)
        && u128::from(used) > limit.whole().unwrap_or(u128::MAX)
    {
        return Err(bad(format!(
            "memory limit {} bytes is below the {used} bytes it uses now",
            limit.whole().unwrap_or_default()
        )));
    }
    let all = all_resources(&plan, Some((at, new)));
    let cgroups = plan.cgroup().cloned().map(|old_cg| {
        let new_cg = pod_cgroup(&plan, &old_cg, &all);
        (old_cg, new_cg)
    });
    let ids = plan.ids();
    let cgroup_err = |e: crate::cgroup::CgroupError| PodError::Bundle(e.into());
    // The pod cgroup grows first: it holds the larger of both while the
    // container moves (the kernel refuses a v1 parent quota below a child's).
    if let (Some((old_cg, new_cg)), Some(_)) = (&cgroups, supervisor) {
        crate::cgroup::set_limits(&h, &larger(old_cg, new_cg), &ids).map_err(cgroup_err)?;
    }
    let undo_pod = || {
        if let (Some((old_cg, _)), Some(_)) = (&cgroups, supervisor) {
            let _ = crate::cgroup::set_limits(&h, old_cg, &ids);
        }
    };
    if running && !restart {
        let runtime = CliRuntime::direct(RuntimeConfig {
            program: pod.runtime.program.clone(),
            global_args: pod.runtime.global_args.clone(),
            root: pod.runtime.root.clone(),
        });
        let file = pod_dir.join("resize.json");
        let json = crate::translate::resources::cpu_memory_json(&new);
        let updated = crate::fsutil::write_atomic(&file, json.to_string().as_bytes(), 0o600)
            .map_err(io_err(&file, "write"))
            .and_then(|()| runtime.update(&container.id, &file).map_err(PodError::from));
        let _ = std::fs::remove_file(&file);
        if let Err(e) = updated {
            undo_pod();
            return Err(e);
        }
    }
    // The plan keeps the new values; config.json follows them, written by the
    // supervisor while it runs (it edits the bundles before starts), else here.
    plan.containers[at].resources = Some(PlanResources::of(&new));
    if let Some((_, new_cg)) = &cgroups {
        for step in &mut plan.setup {
            if let SetupStep::PodCgroup { cgroup, .. } = step {
                *cgroup = new_cg.clone();
            }
        }
    }
    let plan_file = RunPlan::file(&plan.base);
    if let Err(e) =
        crate::fsutil::write_atomic(&plan_file, crate::run_plan::render(&plan).as_bytes(), 0o644)
    {
        undo_pod();
        return Err(io_err(&plan_file, "write")(e));
    }
    let Some(pid) = supervisor else {
        crate::bundle::edit_config(&container, |config| {
            crate::translate::resources::set_cpu_memory(config, &new);
            Ok(())
        })?;
        return Ok(Resized {
            resources: PlanResources::of(&new),
            restarted: false,
        });
    };
    // Now, or (a restart) once the old run is gone: the pod cgroup at its new
    // values.
    if !restart && let Some((_, new_cg)) = &cgroups {
        crate::cgroup::set_limits(&h, new_cg, &ids).map_err(cgroup_err)?;
    }
    if restart {
        // Appended: a second resize before the supervisor took the first keeps
        // both names (the supervisor takes the file by renaming it).
        use std::io::Write as _;
        let file = crate::paths::resize_file(&pod_dir);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| writeln!(f, "{}", req.container))
            .map_err(io_err(&file, "write"))?;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGUSR1,
    );
    Ok(Resized {
        resources: PlanResources::of(&new),
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
        // A pod with pod-level resources is not resized (ValidatePodResize).
        let mut p = p;
        p.pod_resources = Some(PlanResources::of(&Resources {
            cpu_request: q("1500m"),
            cpu_limit: q("1500m"),
            memory_request: q("1Gi"),
            memory_limit: q("1Gi"),
        }));
        assert_eq!(
            check(&p, 1, &doubled).unwrap_err(),
            "pods with pod-level resources cannot be resized"
        );
        // Nor one whose plan kept no resources (an older podshim's).
        let mut p = plan(&[("app", ContainerKind::App, limited)]);
        p.pod_resources = None;
        p.containers[0].resources = None;
        assert!(
            check(&p, 0, &doubled)
                .unwrap_err()
                .contains("older podshim")
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
            owned_from: String::new(),
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
