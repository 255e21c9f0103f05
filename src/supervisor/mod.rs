//! The per-pod supervisor: podshim itself, detached, a child subreaper and the only
//! waiter of its children (DESIGN.md rule 3). It drives the runtime through the
//! pod's lifecycle, records state, writes logs, restarts containers, and on a stop
//! request tears the pod down.
//!
//! `up` starts it as `podshim supervise POD_DIR` with its stdout on a pipe: the
//! supervisor writes `started` once the app containers run, or `failed` and the
//! reason, then closes it.

pub mod backoff;
pub mod lifecycle;
pub mod netns;
pub mod reaper;
pub mod runner;

use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};

use crate::bundle::{self, HostPaths, SystemMounter, When};
use crate::runtime::{CliRuntime, RuntimeConfig};
use crate::state::{self, PodPhase};
use lifecycle::{Lifecycle, Outcome, Timing};
use reaper::{Reaper, ReaperSpawner};
use runner::RuntimeContainers;

/// Back-off overrides for tests (milliseconds); the kubelet's values otherwise.
pub const BACKOFF_ENV: &str = "PODSHIM_BACKOFF_INITIAL_MS";

fn timing() -> Timing {
    let mut t = Timing::default();
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
pub fn remove_pod_files(pod_dir: &Path, bundle_dir: &Path) -> Result<()> {
    if bundle_dir != pod_dir {
        // A `generate` output run with `up --from`: unmount, keep the user's files.
        bundle::unmount_all_under(bundle_dir, &SystemMounter)?;
    }
    bundle::remove(pod_dir, &SystemMounter)
        .with_context(|| format!("removing {}", pod_dir.display()))
}

/// Reports to `up` through the status pipe (fd 1), then detaches from it.
struct StatusPipe(Option<std::fs::File>);

impl StatusPipe {
    fn take_stdout() -> StatusPipe {
        // CLOEXEC: runc and the containers must not inherit the pipe, or `up` would
        // wait for them to exit before it sees the end of the report.
        // SAFETY: fcntl on our own fd 1; the result is checked before it is owned.
        let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            return StatusPipe(None);
        }
        // SAFETY: `fd` is a fresh descriptor we own; fd 1 is then replaced by
        // /dev/null so that nothing else writes to the pipe or keeps it open.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            use std::os::fd::AsRawFd;
            // SAFETY: dup2 onto our own stdout.
            unsafe { libc::dup2(null.as_raw_fd(), 1) };
        }
        StatusPipe(Some(file))
    }

    fn send(&mut self, text: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

/// The supervisor's main. Runs until the pod is stopped, completes or fails.
pub fn supervise(pod_dir: &Path) -> Result<()> {
    // Stop signals are taken by one thread with sigwait; block them everywhere else
    // before any thread exists (threads inherit the mask; children get it reset by
    // std's spawn).
    let mut stop_signals = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        stop_signals.add(sig);
    }
    stop_signals
        .thread_block()
        .context("blocking stop signals")?;
    let mut status = StatusPipe::take_stdout();
    let reaper = Reaper::start().context("becoming the pod's subreaper")?;

    let mut pod_state = state::read(pod_dir)?;
    let bundle_dir = pod_state.bundle_dir.clone();
    let plan = crate::run_plan::read(&bundle_dir)?;
    if let Err(e) = bundle::ensure(
        &plan.setup,
        &SystemMounter,
        HostPaths::Create,
        When::Starting,
    )
    .map_err(anyhow::Error::from)
    {
        // Nothing ran yet: roll back like any failed start (unless `up --keep`).
        if !pod_state.keep_on_failure {
            let _ = remove_pod_files(pod_dir, &bundle_dir);
        }
        status.send(&format!("failed\n{e:#}"));
        return Err(e);
    }
    pod_state.supervisor_pid = Some(std::process::id() as i32);
    state::write(pod_dir, &pod_state)?;

    let config = RuntimeConfig {
        program: pod_state.runtime.program.clone(),
        global_args: pod_state.runtime.global_args.clone(),
        root: pod_state.runtime.root.clone(),
    };
    let runtime = CliRuntime::new(config, Arc::new(ReaperSpawner(Arc::clone(&reaper))));
    let containers = RuntimeContainers {
        runtime: Arc::new(runtime),
        reaper,
        log_dir: pod_state.log_dir.clone(),
        setup: plan.setup.clone(),
        joining: plan.containers.clone(),
    };
    let dir = pod_dir.to_path_buf();
    let publish = Box::new(move |s: &state::PodState| {
        if let Err(e) = state::write(&dir, s) {
            tracing::error!("{e}");
        }
    });
    let keep = pod_state.keep_on_failure;
    let life = Lifecycle::new(plan, containers, timing(), pod_state, publish);

    let stopper = Arc::clone(&life);
    std::thread::spawn(move || {
        if let Ok(sig) = stop_signals.wait() {
            tracing::info!("{sig}: stopping the pod");
            stopper.request_stop();
        }
    });

    let status = Arc::new(std::sync::Mutex::new(status));
    let on_started = Arc::clone(&status);
    let outcome = life.run(move || on_started.lock().unwrap().send("started\n"));
    let started = life.has_started();
    let mut status = status.lock().unwrap();
    let final_state = life.state();
    match &outcome {
        Outcome::Failed(message) if !started => {
            if !keep {
                // The pod never ran: nothing of it stays (issue #3's rollback); the
                // logs go too, their last lines are in the message.
                let _ = remove_pod_files(pod_dir, &bundle_dir);
                let _ = std::fs::remove_dir_all(&final_state.log_dir);
            }
            status.send(&format!("failed\n{message}"));
        }
        Outcome::Stopped if !started => {
            let _ = remove_pod_files(pod_dir, &bundle_dir);
            status.send(&format!(
                "failed\n{}",
                final_state
                    .message
                    .clone()
                    .unwrap_or_else(|| "stopped while starting".into())
            ));
        }
        Outcome::Stopped if final_state.message.is_none() => {
            // Stopped on request (`down`): the pod goes; its logs stay.
            remove_pod_files(pod_dir, &bundle_dir)?;
        }
        _ => {
            // Completed, or the infra died: keep the record for `ps` until `down`.
            // Written through the lifecycle's lock, so no late event overwrites it.
            let lost_infra = matches!(outcome, Outcome::Stopped);
            life.update(|s| {
                s.supervisor_pid = None;
                if lost_infra {
                    s.phase = PodPhase::Failed;
                }
            });
        }
    }
    Ok(())
}
