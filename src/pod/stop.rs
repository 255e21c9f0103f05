//! Stopping a pod: through its supervisor when it lives; else by carrying out the
//! teardown plan ([`crate::teardown`]) through the runtime, with the pod's one
//! grace budget; and when its state is gone (a wiped /run), by finding its
//! containers in the runtime (`list`, the CRI sandbox annotations, this pod's
//! bundles). Only containers running this pod's bundles are ever signalled or
//! deleted, and "stopped" is only said once none of them remains.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{PodError, io_err, list};
use crate::bundle::{self, SystemMounter};
use crate::image::Store;
use crate::model::{PodKey, Signal};
use crate::paths::{Paths, PodPaths};
use crate::run_plan::{self, RunPlan};
use crate::runtime::{CliRuntime, OciRuntime, RuntimeConfig, Status};
use crate::state::{self, PodState};
use crate::teardown::{self, Budget, Scope, Step};
use crate::translate::annotations;

#[derive(Debug, Clone, Default)]
pub struct StopOptions {
    /// `--grace-period`: overrides the pod's terminationGracePeriodSeconds (and is
    /// the only one known when the pod's state is lost; Kubernetes' 30 s otherwise).
    pub grace: Option<u64>,
    /// The runtime to look in when the pod's state (which names its runtime) is lost.
    pub runtime: Option<RuntimeConfig>,
    /// Where CNI plugins are when the pod's plan (which names them) is lost; empty:
    /// the default directories.
    pub cni_bin_dirs: Vec<PathBuf>,
}

impl StopOptions {
    fn cni_bin_dirs(&self) -> Vec<PathBuf> {
        if self.cni_bin_dirs.is_empty() {
            super::network::NetworkOptions::default().bin_dirs
        } else {
            self.cni_bin_dirs.clone()
        }
    }
}

/// What a stop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReport {
    /// No such pod, and none of its containers in the runtime.
    NotFound,
    /// Stopped and removed. `deleted` names the runtime containers deleted here
    /// (none when the supervisor did it all).
    Stopped { deleted: Vec<String> },
    /// Its state was gone; its containers were found in the runtime, stopped and
    /// deleted. `others` are containers of the same pod name that are not this
    /// pod's bundles (another podshim root's): left alone.
    StateLost {
        deleted: Vec<String>,
        others: Vec<String>,
    },
}

/// Kubernetes' default grace period, for a pod whose own is unknown.
const DEFAULT_GRACE: u64 = 30;

pub fn stop(
    paths: &Paths,
    store: &Store,
    key: &PodKey,
    opts: &StopOptions,
) -> Result<StopReport, PodError> {
    let pod_dir = paths.pod_dir(&key.id());
    let existed = pod_dir.exists();
    // The pod's lock even when its state is lost (taking it makes the directory):
    // an `up` of the same name meanwhile is refused as busy instead of starting
    // containers under the ids being deleted.
    let lock = state::PodLock::acquire(&pod_dir)?;
    if !lock.is_current() {
        // The pod was removed while we waited for its lock (and may exist anew).
        return Ok(StopReport::Stopped {
            deleted: Vec::new(),
        });
    }
    let state = state::read(&pod_dir);
    // A pod directory is named by the pod's id, which for long names is cut and
    // hashed: a state naming another pod is that pod's, not ours to stop.
    if let Ok(s) = &state
        && (s.namespace != key.namespace.as_str() || s.name != key.name.as_str())
    {
        return Ok(StopReport::NotFound);
    }
    let Ok(pod) = state else {
        // No state: a wiped /run, a crashed `up`, a state file removed. Its
        // containers, if any, are found in the runtime.
        let report = stop_lost(paths, store, key, opts, existed);
        if existed {
            drop(lock);
        } else {
            // Whatever happened, the directory made for the lock does not stay.
            lock.release_and_remove();
        }
        return report;
    };
    let runtime = runtime_of(&pod);
    // What must be gone in the end: every container of the pod, by its bundle.
    let paths_of = PodPaths::new(&pod.bundle_dir);
    let expected: Vec<(String, PathBuf)> = pod
        .containers
        .iter()
        .map(|c| (c.id.clone(), paths_of.bundle(&c.id)))
        .collect();
    if let Some(pid) = pod
        .supervisor_pid
        .filter(|p| list::supervisor_alive(*p, &pod_dir))
    {
        if let Some(grace) = opts.grace {
            // Read by the supervisor when the signal arrives (a stale file from a
            // `down` that died first is overwritten; one it already read is gone).
            let file = crate::paths::stop_grace_file(&pod_dir);
            match crate::fsutil::write_atomic(&file, grace.to_string().as_bytes(), 0o600) {
                // The supervisor finished and removed the pod meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                r => r.map_err(super::io_err(&file, "write"))?,
            }
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGTERM);
        // The supervisor stops the pod within its grace period, plus a bounded wait
        // after SIGKILL per container and the runtime's deletes.
        let grace = opts.grace.unwrap_or(pod.termination_grace_period_seconds);
        // And its DEL: each plugin may take its timeout.
        let plugins = run_plan::read(&pod.bundle_dir)
            .ok()
            .and_then(|p| p.network)
            .and_then(|n| {
                crate::cni::NetworkList::parse(n.config.as_bytes(), &n.source, false).ok()
            })
            .map_or(0, |l| l.plugins.len() as u32);
        let wait = Duration::from_secs(grace.saturating_add(30))
            .saturating_add(Duration::from_secs(4) * pod.containers.len() as u32)
            .saturating_add(crate::cni::DEFAULT_TIMEOUT * plugins);
        let deadline = crate::teardown::far_after(Instant::now(), wait);
        while list::supervisor_alive(pid, &pod_dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Whatever the supervisor did not finish (or was not there to do).
    let mut deleted = Vec::new();
    if pod_dir.exists() {
        let grace = opts.grace.unwrap_or(pod.termination_grace_period_seconds);
        match run_plan::read(&pod.bundle_dir) {
            Ok(plan) => {
                let steps = teardown::plan(
                    &plan,
                    &Scope::Pod {
                        pod_dir: pod_dir.clone(),
                    },
                );
                deleted = execute(
                    &runtime,
                    store,
                    &targets_of(&plan),
                    &steps,
                    grace,
                    &opts.cni_bin_dirs(),
                )?;
            }
            Err(_) => {
                // No plan (a crashed write): the containers its state names, then
                // the files.
                let all: Vec<Target> = expected
                    .iter()
                    .zip(&pod.containers)
                    .map(|((id, bundle), c)| Target {
                        id: id.clone(),
                        bundle: bundle.clone(),
                        signal: c.stop_signal,
                    })
                    .collect();
                let cgroup = pod.cgroup.as_deref().and_then(lost_cgroup);
                let steps = lost_steps(&all, &pod_dir, &pod.pod_id, None, cgroup);
                deleted = execute(&runtime, store, &all, &steps, grace, &opts.cni_bin_dirs())?;
            }
        }
    }
    drop(lock);
    if pod.bundle_dir == pod_dir && !pod_dir.exists() {
        // The supervisor removed the pod; its lease goes with it.
        store.release(&pod_dir)?;
    }
    let left = remaining(&runtime, &expected);
    if !left.is_empty() {
        return Err(PodError::ContainersRemain {
            pod: key.clone(),
            ids: left,
        });
    }
    Ok(StopReport::Stopped { deleted })
}

fn runtime_of(state: &PodState) -> CliRuntime {
    CliRuntime::direct(RuntimeConfig {
        program: state.runtime.program.clone(),
        global_args: state.runtime.global_args.clone(),
        root: state.runtime.root.clone(),
    })
}

/// A container a teardown may touch: only while the runtime's container of that
/// id runs this bundle.
#[derive(Debug, Clone)]
struct Target {
    id: String,
    bundle: PathBuf,
    signal: Signal,
}

fn targets_of(plan: &RunPlan) -> Vec<Target> {
    plan.all()
        .map(|c| Target {
            id: c.id.clone(),
            bundle: c.bundle.clone(),
            signal: c.stop_signal,
        })
        .collect()
}

/// The ids of `expected` the runtime still has running their bundle.
fn remaining(runtime: &CliRuntime, expected: &[(String, PathBuf)]) -> Vec<String> {
    expected
        .iter()
        .filter(|(id, bundle)| runtime.state(id).is_ok_and(|s| s.bundle == *bundle))
        .map(|(id, _)| id.clone())
        .collect()
}

/// Carries out `steps` (indices into `targets`) synchronously: each Stop step
/// signals its containers, waits for their exits within the step's share of the
/// grace budget (pidfds: no polling of the runtime), SIGKILLs what is left, deletes.
/// Returns the ids deleted.
fn execute(
    runtime: &CliRuntime,
    store: &Store,
    targets: &[Target],
    steps: &[Step],
    grace: u64,
    cni_bin_dirs: &[PathBuf],
) -> Result<Vec<String>, PodError> {
    let budget = Budget::new(Instant::now(), Duration::from_secs(grace));
    let mut deleted = Vec::new();
    for step in steps {
        match step {
            Step::Stop(indices) => {
                let ours: Vec<(&Target, Option<i32>)> = indices
                    .iter()
                    .filter_map(|&i| targets.get(i))
                    .filter_map(|t| match runtime.state(&t.id) {
                        Ok(s) if s.bundle == t.bundle => {
                            let live = matches!(
                                s.status,
                                Status::Running
                                    | Status::Created
                                    | Status::Paused
                                    | Status::Pausing
                            );
                            Some((t, s.pid.filter(|_| live)))
                        }
                        // Another's container under this id, or none: not touched.
                        _ => None,
                    })
                    .collect();
                let live: Vec<(&Target, i32)> = ours
                    .iter()
                    .filter_map(|(t, pid)| Some((*t, (*pid)?)))
                    .collect();
                let pidfds: Vec<OwnedFd> = live
                    .iter()
                    .filter_map(|(_, pid)| crate::pidfd::open(*pid))
                    .collect();
                for (t, _) in &live {
                    let _ = runtime.kill(&t.id, &t.signal.runtime_arg(), false);
                }
                if !crate::pidfd::wait_all(&pidfds, budget.for_step(Instant::now())) {
                    for (t, _) in &live {
                        let _ = runtime.kill(&t.id, "KILL", true);
                    }
                    crate::pidfd::wait_all(&pidfds, teardown::AFTER_KILL);
                }
                for (t, _) in &ours {
                    match runtime.delete(&t.id, true) {
                        Ok(()) => deleted.push(t.id.clone()),
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            // One still in use (a process that escaped its container) is named,
            // and the teardown goes on: the kernel keeps that cgroup until it
            // empties, and the network and files must not wait for it.
            Step::RemoveCgroup { cgroup, ids } => {
                if let Err(e) = remove_cgroup(cgroup, ids) {
                    tracing::error!("{e}");
                }
            }
            Step::Detach(network) => super::network::detach(network)?,
            Step::DetachLost {
                infra_id,
                pod_dir,
                infra_pid,
            } => {
                use crate::cni::netns;
                let pin = pod_dir.join(super::network::NETNS_FILE);
                let found = super::network::lost_attachments(infra_id, pod_dir);
                if let Some(pid) = infra_pid
                    && !netns::is_pinned(&pin)
                    && !found.is_empty()
                {
                    // The pin went with the state; the infra still holds the
                    // namespace, where bridge finds the NAT chain it made.
                    let _ = std::fs::remove_file(&pin);
                    match netns::pin_from(*pid, &pin) {
                        // The pid, checked alive through a pidfd, may have been
                        // given again since the runtime was listed: it must still
                        // be this pod's infra, running.
                        Ok(()) if !is_running_infra(runtime, infra_id, *pid) => {
                            tracing::warn!(
                                "the infra {infra_id} is gone: DEL without its namespace"
                            );
                            let _ = netns::unpin(&pin);
                        }
                        Ok(()) => {}
                        Err(e) => tracing::warn!("{e}: DEL without the pod's network namespace"),
                    }
                }
                // DEL of each, then the pin unpinned (one left by an ADD that never
                // finished too).
                super::network::detach_found(found, cni_bin_dirs, pod_dir)?
            }
            Step::Unmount(dir) => {
                bundle::unmount_all_under(dir, &SystemMounter).map_err(io_err(dir, "unmount"))?
            }
            Step::Release(dir) => store.release(dir)?,
            Step::Remove(dir) => {
                bundle::remove(dir, &SystemMounter)?;
                crate::userns::release(dir);
            }
        }
    }
    Ok(deleted)
}

/// [`crate::cgroup::remove`] in this mount namespace's hierarchies.
pub fn remove_cgroup(
    cgroup: &crate::translate::pod_cgroup::PodCgroup,
    ids: &[String],
) -> Result<(), PodError> {
    let h = crate::cgroup::Hierarchies::read()
        .map_err(io_err(Path::new("/proc/self/mountinfo"), "read"))?;
    crate::cgroup::remove(&h, cgroup, ids).map_err(|e| PodError::Bundle(e.into()))
}

/// Whether the runtime's container `id` runs, with `pid` as its init.
fn is_running_infra(runtime: &CliRuntime, id: &str, pid: i32) -> bool {
    runtime
        .state(id)
        .is_ok_and(|s| s.status == Status::Running && s.pid == Some(pid))
}

/// The teardown of containers known only from the runtime: the workload
/// containers together; the pod's network, found by the infra's id (while the
/// infra, `infra_pid`, still holds its namespace); the infra (the last target);
/// then the pod's files.
fn lost_steps(
    targets: &[Target],
    pod_dir: &Path,
    infra_id: &str,
    infra_pid: Option<i32>,
    cgroup: Option<crate::translate::pod_cgroup::PodCgroup>,
) -> Vec<Step> {
    let n = targets.len();
    let mut steps = Vec::new();
    if n > 1 {
        steps.push(Step::Stop((0..n - 1).collect()));
    }
    steps.push(Step::DetachLost {
        infra_id: infra_id.to_string(),
        pod_dir: pod_dir.to_path_buf(),
        infra_pid,
    });
    if n > 0 {
        steps.push(Step::Stop(vec![n - 1]));
    }
    if let Some(cgroup) = cgroup {
        steps.push(Step::RemoveCgroup {
            cgroup,
            ids: targets.iter().map(|t| t.id.clone()).collect(),
        });
    }
    steps.push(Step::Unmount(pod_dir.to_path_buf()));
    steps.push(Step::Release(pod_dir.to_path_buf()));
    steps.push(Step::Remove(pod_dir.to_path_buf()));
    steps
}

/// The pod cgroup of a pod whose plan is gone, from a path the pod's own
/// records or its running infra give: `<parent>/kubepods[/<qos>]/pod<uid>` of
/// checked names. podshim's own parents (`/podshim`, `/podshim-<hash>`) go
/// with it where empty; another parent keeps all but `kubepods`.
fn lost_cgroup(path: &str) -> Option<crate::translate::pod_cgroup::PodCgroup> {
    use crate::translate::pod_cgroup::{DEFAULT_PARENT, PodCgroup, is_cgroup_path};
    let (parent, rest) = path.split_once("/kubepods/")?;
    let pod = rest.rsplit('/').next()?;
    let qos_ok = matches!(
        rest.split('/').collect::<Vec<_>>().as_slice(),
        [_] | ["burstable" | "besteffort", _]
    );
    if !is_cgroup_path(path) || !pod.starts_with("pod") || !qos_ok {
        return None;
    }
    let own = parent == DEFAULT_PARENT
        || parent
            .strip_prefix(DEFAULT_PARENT)
            .and_then(|h| h.strip_prefix('-'))
            .is_some_and(|h| h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    Some(PodCgroup {
        path: path.to_string(),
        cpu_shares: 2,
        cpu_quota: None,
        memory_limit: None,
        pids_limit: None,
        owned_from: if own {
            parent.to_string()
        } else {
            format!("{parent}/kubepods")
        },
    })
}

/// The pod cgroup a running infra `id` (process `pid`) is in: its own cgroup's
/// parent, read from /proc (its pids line, else the unified one).
fn infra_pod_cgroup(pid: i32, id: &str) -> Option<String> {
    let bytes =
        crate::fsutil::read_regular(Path::new(&format!("/proc/{pid}/cgroup")), 64 << 10).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let line = |pick: &dyn Fn(&str) -> bool| {
        text.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, controllers, path) = (p.next()?, p.next()?, p.next()?);
            pick(controllers).then(|| path.to_string())
        })
    };
    let own = line(&|c| c.split(',').any(|c| c == "pids")).or_else(|| line(&|c| c.is_empty()))?;
    own.strip_suffix(&format!("/{id}")).map(str::to_string)
}

/// Whether a runtime container was started for this pod directory: its
/// config names it ([`annotations::POD_DIR`], written by the supervisor). Bundles
/// alone cannot tell: another podshim root may run the same `generate` output.
fn started_here(pod_dir: &Path, state: &crate::runtime::ContainerState) -> bool {
    state
        .annotations
        .get(annotations::POD_DIR)
        .is_some_and(|d| Path::new(d) == list::supervisor_arg(pod_dir))
}

/// `down` of a pod whose state directory is gone: its containers, found in the
/// runtime by their CRI sandbox annotations and the pod directory they were
/// started for.
fn stop_lost(
    paths: &Paths,
    store: &Store,
    key: &PodKey,
    opts: &StopOptions,
    existed: bool,
) -> Result<StopReport, PodError> {
    let pod_dir = paths.pod_dir(&key.id());
    let runtime = CliRuntime::direct(match &opts.runtime {
        Some(r) => r.clone(),
        None => RuntimeConfig::resolve("runc", Vec::new(), None)
            .map_err(|e| io_err(Path::new("runc"), "find the runtime")(std::io::Error::other(e)))?,
    });
    let mut ours = Vec::new();
    let mut others = Vec::new();
    for s in runtime.list()? {
        let a = &s.annotations;
        let names_pod = a.get(annotations::SANDBOX_NAMESPACE).map(String::as_str)
            == Some(key.namespace.as_str())
            && a.get(annotations::SANDBOX_NAME).map(String::as_str) == Some(key.name.as_str());
        if !names_pod {
            continue;
        }
        if started_here(&pod_dir, &s) {
            ours.push(s);
        } else {
            others.push(format!("{} ({})", s.id, super::start::describe(&s)));
        }
    }
    let mounted = !bundle::mounts_under(&pod_dir)
        .map_err(io_err(&pod_dir, "list the mounts under"))?
        .is_empty();
    // After a reboot nothing of the pod is left but its CNI attachment: the IP
    // lease and NAT rules the plugins keep on disk, found by the infra's id.
    // (Keyed by the pod directory too: another root's pod of this name is not it.)
    let attached = !super::network::lost_attachments(&key.id(), &pod_dir).is_empty();
    if ours.is_empty() && !mounted && !existed && !attached {
        return Ok(if others.is_empty() {
            StopReport::NotFound
        } else {
            StopReport::StateLost {
                deleted: Vec::new(),
                others,
            }
        });
    }
    // The infra (sandbox) last.
    ours.sort_by_key(|s| {
        s.annotations
            .get(annotations::CONTAINER_TYPE)
            .map(String::as_str)
            == Some(annotations::TYPE_SANDBOX)
    });
    let targets: Vec<Target> = ours
        .iter()
        .map(|s| Target {
            id: s.id.clone(),
            bundle: s.bundle.clone(),
            // The image's STOPSIGNAL went with the state.
            signal: Signal::TERM,
        })
        .collect();
    let expected: Vec<(String, PathBuf)> = targets
        .iter()
        .map(|t| (t.id.clone(), t.bundle.clone()))
        .collect();
    let infra_pid = ours
        .last()
        .filter(|s| {
            s.annotations
                .get(annotations::CONTAINER_TYPE)
                .map(String::as_str)
                == Some(annotations::TYPE_SANDBOX)
                && s.status == Status::Running
        })
        .and_then(|s| s.pid);
    // Read before the infra stops: the pod cgroup it runs under.
    let cgroup = infra_pid
        .and_then(|pid| infra_pod_cgroup(pid, &key.id()))
        .and_then(|path| lost_cgroup(&path));
    let steps = lost_steps(&targets, &pod_dir, &key.id(), infra_pid, cgroup);
    let deleted = execute(
        &runtime,
        store,
        &targets,
        &steps,
        opts.grace.unwrap_or(DEFAULT_GRACE),
        &opts.cni_bin_dirs(),
    )?;
    let left = remaining(&runtime, &expected);
    if !left.is_empty() {
        return Err(PodError::ContainersRemain {
            pod: key.clone(),
            ids: left,
        });
    }
    Ok(StopReport::StateLost { deleted, others })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_known_only_from_the_runtime_stop_workloads_first_then_the_infra() {
        let t = |id: &str| Target {
            id: id.into(),
            bundle: PathBuf::from("/b"),
            signal: Signal::TERM,
        };
        let steps = lost_steps(
            &[t("a"), t("b"), t("infra")],
            Path::new("/p"),
            "ns_p",
            Some(42),
            None,
        );
        assert_eq!(
            steps,
            [
                Step::Stop(vec![0, 1]),
                Step::DetachLost {
                    infra_id: "ns_p".into(),
                    pod_dir: "/p".into(),
                    infra_pid: Some(42),
                },
                Step::Stop(vec![2]),
                Step::Unmount("/p".into()),
                Step::Release("/p".into()),
                Step::Remove("/p".into()),
            ]
        );
        assert_eq!(
            lost_steps(&[], Path::new("/p"), "ns_p", None, None).len(),
            4
        );
    }

    #[test]
    fn a_lost_pods_cgroup_is_taken_only_in_the_kubepods_layout() {
        let c = lost_cgroup("/podshim-0a1b2c3d/kubepods/burstable/podu").unwrap();
        assert_eq!(c.owned_from, "/podshim-0a1b2c3d");
        let c = lost_cgroup("/podshim/kubepods/podu").unwrap();
        assert_eq!(c.owned_from, "/podshim");
        // A parent the user named keeps all but kubepods.
        let c = lost_cgroup("/machine/kubepods/besteffort/podu").unwrap();
        assert_eq!(c.owned_from, "/machine/kubepods");
        for bad in [
            "/",
            "/user.slice/session-1.scope",
            "/podshim/kubepods/other/podu",
            "/podshim/kubepods/burstable/x",
            "/podshim/kubepods/../../etc/podu",
        ] {
            assert_eq!(lost_cgroup(bad), None, "{bad}");
        }
    }
}
