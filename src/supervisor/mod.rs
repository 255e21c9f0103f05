//! The per-pod supervisor: a small process of its own (`podshim-supervisor`), a
//! child subreaper and the only waiter of its children (ARCHITECTURE.md rule 3).
//! `up` starts it detached with the pod's directory; it runs the pod through its
//! lifecycle ([`core`], pure), carried out by one event loop ([`driver`]): starts
//! and restarts containers, writes their logs and the pod's state, and on a stop
//! request tears the pod down.
//!
//! It reports to `up` on the pipe `up` gave it as stdout ([`handshake`]): started,
//! or failed and why.

pub mod attach;
pub mod backoff;
pub mod core;
pub mod driver;
pub mod handshake;
pub mod oom;
pub mod probing;
pub mod serial;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use self::core::{Core, Outcome, Timing};
use crate::bundle::{self, HostPaths, SystemMounter, When};
use crate::runtime::{CliRuntime, RuntimeConfig};
use crate::state::{self, PodPhase};
use driver::{Driver, SystemClock};
use handshake::{Report, StatusPipe};

/// Back-off overrides for tests (milliseconds); the kubelet's values otherwise.
pub const BACKOFF_ENV: &str = "PODSHIM_BACKOFF_INITIAL_MS";

/// The supervisor's binary, installed beside `podshim`.
pub const BINARY: &str = "podshim-supervisor";

fn timing() -> Timing {
    let mut t = Timing {
        // Runtime invocations are CPU-bound: about two per core at once.
        start_workers: std::env::var("PODSHIM_START_WORKERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n: &usize| *n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get() * 2)
                    .unwrap_or(4)
            }),
        ..Timing::default()
    };
    if let Some(ms) = std::env::var(BACKOFF_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        t.backoff_initial = Duration::from_millis(ms);
        t.backoff_max = Duration::from_millis(ms * 30);
    }
    t
}

/// Unmounts and removes what a pod left on disk: its bundle directory's mounts and,
/// for `up FILE` pods, the directory itself; then the pod directory.
pub fn remove_pod_files(
    pod_dir: &Path,
    bundle_dir: &Path,
    cgroup: Option<&(crate::translate::pod_cgroup::PodCgroup, Vec<String>)>,
) -> Result<()> {
    // The containers are deleted: their cgroups and the pod's go first.
    // One still in use (a process that escaped its container) is named, and the
    // files go anyway: the kernel keeps that cgroup until it empties.
    if let Some((cgroup, ids)) = cgroup
        && let Err(e) = crate::pod::stop::remove_cgroup(cgroup, ids)
    {
        tracing::error!("{e}");
    }
    if bundle_dir != pod_dir {
        // A `generate` output run with `up --from`: unmount, keep the user's files.
        bundle::unmount_all_under(bundle_dir, &SystemMounter)?;
    }
    bundle::remove(pod_dir, &SystemMounter)
        .with_context(|| format!("removing {}", pod_dir.display()))?;
    // The pod's host ids (`hostUsers: false`), leased to its directory.
    crate::userns::release(pod_dir);
    Ok(())
}

/// Detaches the pod's network (teardown::plan's Detach step, after the
/// containers). When DEL fails, the pod stays — its pinned namespace, through
/// which bridge finds its NAT chain, and its plan — recorded as Failed with the
/// plugin's message, for `down` to run the step again; `false` then.
fn detached(
    network: Option<&crate::run_plan::PodNetwork>,
    pod_dir: &Path,
    state: &crate::state::PodState,
) -> bool {
    let Some(net) = network else {
        return true;
    };
    match crate::pod::network::detach(net) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!("{e}");
            let mut kept = state.clone();
            kept.supervisor_pid = None;
            kept.phase = PodPhase::Failed;
            kept.message = Some(format!(
                "the pod's network could not be detached ({e}): podshim down retries"
            ));
            if let Err(e) = state::write(pod_dir, &kept) {
                tracing::error!("{e}");
            }
            false
        }
    }
}

/// The supervisor must outlive its containers under memory pressure, or nothing
/// reaps, logs or restarts them: -1000 exempts it from the OOM killer, as conmon
/// does. Lowering a score takes CAP_SYS_RESOURCE; without it (a container, a VM,
/// a user namespace) the supervisor runs unprotected and says so once. Every
/// container's spec sets its own score, so none inherits this one.
fn protect_from_the_oom_killer() {
    const PATH: &str = "/proc/self/oom_score_adj";
    if let Err(e) = std::fs::write(PATH, "-1000") {
        tracing::warn!(
            "could not set {PATH} to -1000 ({e}; lowering it takes CAP_SYS_RESOURCE): the OOM killer may pick the supervisor"
        );
    }
}

/// The supervisor's main. Runs until the pod is stopped, completes or fails.
pub fn supervise(pod_dir: &Path) -> Result<()> {
    // Stop signals and SIGCHLD are taken by the loop's signalfd: blocked before
    // anything else (a thread started later inherits the mask; children get it
    // reset by std's spawn).
    driver::signal_set()
        .thread_block()
        .context("blocking signals")?;
    let mut status = StatusPipe::take_stdout();
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("becoming the pod's subreaper");
    }
    protect_from_the_oom_killer();
    let mut pod_state = state::read(pod_dir)?;
    let bundle_dir = pod_state.bundle_dir.clone();
    let plan = crate::run_plan::read(&bundle_dir)?;
    let cgroup = plan.cgroup().map(|c| (c.clone(), plan.ids()));
    // Mounts a reboot or stop.sh undid (up --from), made again.
    if let Err(e) = bundle::ensure(
        &plan.setup,
        &SystemMounter,
        HostPaths::Create,
        When::Starting,
    ) {
        // Nothing ran yet: roll back like any failed start (unless `up --keep`),
        // the network first; a DEL that fails keeps the pod for `down`.
        if !pod_state.keep_on_failure && detached(plan.network.as_ref(), pod_dir, &pod_state) {
            let _ = remove_pod_files(pod_dir, &bundle_dir, cgroup.as_ref());
        }
        status.send(&Report::Failed {
            message: e.to_string(),
        });
        return Err(e.into());
    }
    pod_state.supervisor_pid = Some(std::process::id() as i32);
    state::write(pod_dir, &pod_state)?;

    let config = RuntimeConfig {
        program: pod_state.runtime.program.clone(),
        global_args: pod_state.runtime.global_args.clone(),
        root: pod_state.runtime.root.clone(),
    };
    let keep = pod_state.keep_on_failure;
    let log_dir = pod_state.log_dir.clone();
    let network = plan.network.clone();
    let core = Core::new(&plan, pod_state, timing());
    let clock = SystemClock;
    let mut driver = Driver::new(
        core,
        plan,
        CliRuntime::direct(config),
        pod_dir.to_path_buf(),
        log_dir.clone(),
        &clock,
    )
    .context("starting the event loop")?;
    let outcome = driver.run(&mut || status.send(&Report::Started));
    let started = driver.core().has_started();
    let mut final_state = driver.core().state().clone();
    match &outcome {
        Outcome::Failed(message) if !started => {
            if !keep && detached(network.as_ref(), pod_dir, &final_state) {
                // The pod never ran: nothing of it stays (issue #3's rollback); the
                // logs go too, their last lines are in the message.
                let _ = remove_pod_files(pod_dir, &bundle_dir, cgroup.as_ref());
                let _ = std::fs::remove_dir_all(&log_dir);
            }
            status.send(&Report::Failed {
                message: message.clone(),
            });
        }
        Outcome::Stopped if !started => {
            if detached(network.as_ref(), pod_dir, &final_state) {
                let _ = remove_pod_files(pod_dir, &bundle_dir, cgroup.as_ref());
            }
            status.send(&Report::Failed {
                message: "stopped while starting".into(),
            });
        }
        Outcome::Stopped => {
            // Stopped on request (`down`): the pod goes; its logs stay.
            if detached(network.as_ref(), pod_dir, &final_state) {
                remove_pod_files(pod_dir, &bundle_dir, cgroup.as_ref())?;
            }
        }
        Outcome::Completed(_) | Outcome::Failed(_) => {
            // Completed, or the infra died: the record stays for `ps` until `down`.
            final_state.supervisor_pid = None;
            if matches!(outcome, Outcome::Failed(_)) {
                final_state.phase = PodPhase::Failed;
            }
            state::write(pod_dir, &final_state)?;
        }
    }
    Ok(())
}
