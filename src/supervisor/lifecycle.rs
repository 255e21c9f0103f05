//! The pod's lifecycle in Kubernetes order, independent of how containers are run:
//! infra → init containers one at a time (each must exit 0) → native sidecars
//! (started in order, always restarted) → app containers (started together,
//! restarted per the pod's restartPolicy with the kubelet's back-off). Stopping runs in
//! reverse: app containers together, sidecars one by one in reverse order, the infra.
//!
//! Side effects sit behind [`Containers`] so the ordering and restart rules are
//! unit-tested with a fake (DESIGN.md rule 2); the real implementation drives the OCI
//! runtime.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::backoff::Backoff;
use super::reaper::Exit;
use crate::model::{ContainerKind, RestartPolicy};
use crate::run_plan::{RunContainer as ContainerPlan, RunPlan as PodPlan};
use crate::state::{ContainerState, ContainerStatus, PodPhase, PodState, rfc3339};

/// A started container: its init pid and where its exit arrives.
pub struct Started {
    pub pid: i32,
    pub exit: Receiver<Exit>,
}

/// How containers are run. Errors are messages naming what failed (the runtime's
/// own text included).
pub trait Containers: Send + Sync {
    /// Creates and starts `c` (its `restart`-th run) and subscribes to its exit.
    fn start(&self, c: &ContainerPlan, restart: u32) -> Result<Started, String>;
    /// Sends `signal` to the container's processes.
    fn signal(&self, c: &ContainerPlan, signal: &str) -> Result<(), String>;
    /// Deletes the (stopped) container from the runtime.
    fn remove(&self, c: &ContainerPlan) -> Result<(), String>;
    /// The last lines of the container's current log, for failure messages.
    fn last_log_lines(&self, c: &ContainerPlan, restart: u32) -> String;
    /// Called once the infra runs, before anything joins it (link its namespaces,
    /// bring the pod's loopback up).
    fn infra_started(&self, pid: i32) -> Result<(), String>;
}

/// Back-off settings (the kubelet's by default; tests shorten them).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            backoff_initial: super::backoff::INITIAL,
            backoff_max: super::backoff::MAX,
        }
    }
}

/// One container's live bookkeeping, shared by its monitor and the stopper.
#[derive(Default)]
struct Slot {
    /// The pid of the current run while it runs.
    running: Option<i32>,
    /// Bumped at every exit, so a stopper can wait for "an exit after I signalled".
    exits: u64,
    /// A restart is under way: a stopper waits for it to finish (and then stops the
    /// new run) instead of finding "not running" and leaving it behind.
    starting: bool,
}

/// The pod being run.
pub struct Lifecycle<C: Containers> {
    plan: PodPlan,
    ops: C,
    timing: Timing,
    state: Mutex<PodState>,
    publish: Box<dyn Fn(&PodState) + Send + Sync>,
    slots: Mutex<HashMap<String, Slot>>,
    slot_changed: Condvar,
    stopping: Mutex<bool>,
    stop_changed: Condvar,
    /// Set once the initial start phase is over (`up` has returned).
    started: Mutex<bool>,
}

/// How `run` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped on request (`down`, Ctrl-C).
    Stopped,
    /// Every app container finished and will not restart.
    Completed(PodPhase),
    /// The pod could not start or lost its infra.
    Failed(String),
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

/// How long a container may take to die after SIGKILL before it is deleted anyway.
const AFTER_SIGKILL: Duration = Duration::from_secs(2);

/// The least grace a container gets when the pod's budget is spent by earlier steps.
const MIN_GRACE: Duration = Duration::from_secs(2);

/// How many app containers start at once: `PODSHIM_START_WORKERS`, else twice the
/// CPUs (a runtime invocation also waits on the kernel part of the time).
fn start_workers() -> usize {
    std::env::var("PODSHIM_START_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() * 2)
                .unwrap_or(4)
        })
}

/// The kubelet's terminated reasons: `Completed` for exit 0, else `Error`.
fn reason_for(exit: &Exit) -> String {
    if exit.code == 0 { "Completed" } else { "Error" }.into()
}

impl<C: Containers + 'static> Lifecycle<C> {
    pub fn new(
        plan: PodPlan,
        ops: C,
        timing: Timing,
        state: PodState,
        publish: Box<dyn Fn(&PodState) + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new(Lifecycle {
            plan,
            ops,
            timing,
            state: Mutex::new(state),
            publish,
            slots: Mutex::new(HashMap::new()),
            slot_changed: Condvar::new(),
            stopping: Mutex::new(false),
            stop_changed: Condvar::new(),
            started: Mutex::new(false),
        })
    }

    /// Initial statuses for a plan: everything Waiting.
    pub fn initial_statuses(plan: &PodPlan) -> Vec<ContainerStatus> {
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
                stop_signal: c.stop_signal,
            })
            .collect()
    }

    pub fn state(&self) -> PodState {
        self.state.lock().unwrap().clone()
    }

    /// Changes the pod's record and publishes it (under one lock: writes never race).
    pub(crate) fn update(&self, f: impl FnOnce(&mut PodState)) {
        let mut s = self.state.lock().unwrap();
        f(&mut s);
        (self.publish)(&s);
    }

    fn set_container(&self, name: &str, f: impl FnOnce(&mut ContainerStatus)) {
        self.update(|s| {
            if let Some(c) = s.container_mut(name) {
                f(c);
            }
        });
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.lock().unwrap()
    }

    /// Asks the pod to stop; `run` returns [`Outcome::Stopped`] once it has.
    pub fn request_stop(&self) {
        *self.stopping.lock().unwrap() = true;
        self.stop_changed.notify_all();
    }

    /// Sleeps up to `d`, returning early (true) when a stop is requested.
    fn sleep_unless_stopped(&self, d: Duration) -> bool {
        let guard = self.stopping.lock().unwrap();
        let (guard, _) = self
            .stop_changed
            .wait_timeout_while(guard, d, |stopping| !*stopping)
            .unwrap();
        *guard
    }

    /// Waits for an exit, or a stop request. `None` means stopping.
    fn wait_exit(&self, exit: &Receiver<Exit>) -> Option<Exit> {
        loop {
            if self.is_stopping() {
                return None;
            }
            match exit.recv_timeout(Duration::from_millis(100)) {
                Ok(e) => return Some(e),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Some(Exit {
                        code: 255,
                        signal: None,
                    });
                }
            }
        }
    }

    fn mark_running(&self, c: &ContainerPlan, pid: i32) {
        self.slots
            .lock()
            .unwrap()
            .entry(c.id.clone())
            .or_default()
            .running = Some(pid);
        self.set_container(&c.name, |s| {
            s.state = ContainerState::Running {
                pid,
                started_at: now(),
            };
            // No probes yet: a running container is ready (Kubernetes' rule without
            // a readinessProbe).
            s.ready = c.kind != ContainerKind::Init;
        });
    }

    fn mark_exited(&self, c: &ContainerPlan, exit: &Exit) {
        // Record first, then wake a stopper waiting for this exit: the record is
        // complete before the pod can be torn down.
        self.set_container(&c.name, |s| {
            let started_at = match &s.state {
                ContainerState::Running { started_at, .. } => started_at.clone(),
                _ => now(),
            };
            s.state = ContainerState::Terminated {
                exit_code: exit.code,
                reason: reason_for(exit),
                started_at,
                finished_at: now(),
            };
            s.ready = false;
        });
        {
            let mut slots = self.slots.lock().unwrap();
            let slot = slots.entry(c.id.clone()).or_default();
            slot.running = None;
            slot.exits += 1;
        }
        self.slot_changed.notify_all();
    }

    /// Starts `c` and waits for nothing; records Running. Start errors are returned.
    fn start(&self, c: &ContainerPlan, restart: u32) -> Result<Started, String> {
        let started = self.ops.start(c, restart)?;
        self.mark_running(c, started.pid);
        Ok(started)
    }

    fn restart_count(&self, c: &ContainerPlan) -> u32 {
        self.state
            .lock()
            .unwrap()
            .container(&c.name)
            .map(|s| s.restart_count)
            .unwrap_or(0)
    }

    fn begin_restart(&self, c: &ContainerPlan, reason: &str) {
        self.set_container(&c.name, |s| {
            s.last_state = Some(s.state.clone());
            s.state = ContainerState::Waiting {
                reason: reason.into(),
            };
            s.restart_count += 1;
        });
    }

    fn failure_message(&self, c: &ContainerPlan, exit: &Exit, restart: u32) -> String {
        let mut msg = format!(
            "{} container {:?} exited with code {}",
            match c.kind {
                ContainerKind::Init => "init",
                ContainerKind::Sidecar => "sidecar",
                ContainerKind::App => "app",
                ContainerKind::Infra => "infra",
            },
            c.name,
            exit.code
        );
        let lines = self.ops.last_log_lines(c, restart);
        if !lines.trim().is_empty() {
            msg.push_str("; its last log lines:\n");
            msg.push_str(lines.trim_end());
        }
        msg
    }

    /// Runs the pod until it completes, fails, or is asked to stop.
    /// `on_started` is called once the initial start phase succeeded.
    pub fn run(self: &Arc<Self>, on_started: impl FnOnce()) -> Outcome {
        self.update(|s| s.phase = PodPhase::Pending);
        let infra = self.plan.infra.clone();
        let infra_started = match self.start(&infra, 0) {
            Ok(s) => s,
            Err(e) => return self.fail(format!("infra container: {e}")),
        };
        let infra_pid = infra_started.pid;
        let infra_exit = infra_started.exit;
        // The infra's exit ends the pod: no container may (re)join namespaces whose
        // holder is gone (its pid could be reused).
        {
            let me = Arc::clone(self);
            let infra = infra.clone();
            std::thread::spawn(move || {
                if let Some(exit) = me.wait_exit_forever(&infra_exit) {
                    me.mark_exited(&infra, &exit);
                    if !me.is_stopping() {
                        me.update(|s| {
                            s.message =
                                Some(format!("infra container exited with code {}", exit.code))
                        });
                        me.request_stop();
                    }
                }
            });
        }

        if let Err(e) = self.ops.infra_started(infra_pid) {
            return self.fail(format!("infra container: {e}"));
        }
        let mut monitors: Vec<std::thread::JoinHandle<()>> = Vec::new();
        let containers = self.plan.containers.clone();
        let mut apps = Vec::new();
        for c in &containers {
            if self.is_stopping() {
                let outcome = self.finish_stop();
                for handle in monitors {
                    let _ = handle.join();
                }
                return outcome;
            }
            match c.kind {
                ContainerKind::Init => {
                    if let Err(outcome) = self.run_init(c) {
                        return outcome;
                    }
                }
                ContainerKind::Sidecar => match self.start(c, 0) {
                    Ok(started) => {
                        monitors.push(self.monitor(c.clone(), started, RestartPolicy::Always))
                    }
                    Err(e) => return self.fail(format!("sidecar container {:?}: {e}", c.name)),
                },
                ContainerKind::App => apps.push(c.clone()),
                ContainerKind::Infra => {}
            }
        }
        // App containers start together (the kubelet starts them in one sync), by a
        // few workers: runtime invocations are CPU-bound, so more at once than the
        // machine has cores only adds contention.
        let workers = start_workers().min(apps.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<Result<Started, String>>>> =
            apps.iter().map(|_| Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(c) = apps.get(i) else { break };
                        *slots[i].lock().unwrap() = Some(self.start(c, 0));
                    }
                });
            }
        });
        let results: Vec<(ContainerPlan, Result<Started, String>)> = apps
            .iter()
            .cloned()
            .zip(
                slots
                    .into_iter()
                    .map(|s| s.into_inner().unwrap().expect("every app was started")),
            )
            .collect();
        let policy = self.plan.restart_policy;
        let mut app_monitors = Vec::new();
        let mut first_error = None;
        for (c, result) in results {
            match result {
                Ok(started) => app_monitors.push(self.monitor(c, started, policy)),
                Err(e) if first_error.is_none() => {
                    first_error = Some(format!("container {:?}: {e}", c.name))
                }
                Err(_) => {}
            }
        }
        if let Some(e) = first_error {
            return self.fail(e);
        }
        // The infra may have died (or a stop come) while the apps were starting.
        if self.is_stopping() {
            let outcome = self.finish_stop();
            for handle in app_monitors.into_iter().chain(monitors) {
                let _ = handle.join();
            }
            return outcome;
        }
        *self.started.lock().unwrap() = true;
        self.update(|s| s.phase = PodPhase::Running);
        on_started();

        // Wait for every app monitor to end (completion) or for a stop request.
        while !app_monitors.iter().all(|h| h.is_finished()) {
            if self.sleep_unless_stopped(Duration::from_millis(100)) {
                let outcome = self.finish_stop();
                for handle in app_monitors.into_iter().chain(monitors) {
                    let _ = handle.join();
                }
                return outcome;
            }
        }
        // All app containers finished for good: Kubernetes then stops the sidecars and
        // the pod is Succeeded when every app container exited 0.
        let all_ok = self
            .state()
            .containers
            .iter()
            .filter(|c| c.kind == ContainerKind::App)
            .all(|c| matches!(c.state, ContainerState::Terminated { exit_code: 0, .. }));
        let phase = if all_ok {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
        self.request_stop();
        self.stop_all();
        for m in monitors {
            let _ = m.join();
        }
        self.update(|s| s.phase = phase);
        Outcome::Completed(phase)
    }

    fn wait_exit_forever(&self, exit: &Receiver<Exit>) -> Option<Exit> {
        exit.recv().ok()
    }

    fn fail(&self, message: String) -> Outcome {
        let keep = self.state.lock().unwrap().keep_on_failure && !*self.started.lock().unwrap();
        self.update(|s| {
            s.phase = PodPhase::Failed;
            s.message = Some(message.clone());
        });
        self.request_stop();
        // `up --keep` leaves a pod that failed to start as it is, for debugging.
        if !keep {
            self.stop_all();
        }
        Outcome::Failed(message)
    }

    /// Whether the initial start phase completed (`up` has returned).
    pub fn has_started(&self) -> bool {
        *self.started.lock().unwrap()
    }

    fn finish_stop(&self) -> Outcome {
        self.stop_all();
        Outcome::Stopped
    }

    /// Runs one init container to completion, retrying per the pod's restartPolicy.
    fn run_init(self: &Arc<Self>, c: &ContainerPlan) -> Result<(), Outcome> {
        let mut backoff = Backoff::new(self.timing.backoff_initial, self.timing.backoff_max);
        loop {
            let restart = self.restart_count(c);
            let started = self
                .start(c, restart)
                .map_err(|e| self.fail(format!("init container {:?}: {e}", c.name)))?;
            let Some(exit) = self.wait_exit(&started.exit) else {
                // Stopping while it runs: keep watching its exit, so the stopper sees
                // it end within the grace period instead of waiting for SIGKILL.
                let me = Arc::clone(self);
                let c2 = c.clone();
                std::thread::spawn(move || {
                    if let Ok(exit) = started.exit.recv() {
                        me.mark_exited(&c2, &exit);
                    }
                });
                return Err(self.finish_stop());
            };
            let finished = Instant::now();
            self.mark_exited(c, &exit);
            let _ = self.ops.remove(c);
            if exit.code == 0 {
                return Ok(());
            }
            // Kubernetes: a failed init container fails the pod under Never, and is
            // retried with back-off under OnFailure and Always.
            if self.plan.restart_policy == RestartPolicy::Never {
                let msg = self.failure_message(c, &exit, restart);
                return Err(self.fail(msg));
            }
            self.begin_restart(c, "CrashLoopBackOff");
            if self.sleep_unless_stopped(backoff.delay(finished, Instant::now())) {
                return Err(self.finish_stop());
            }
            backoff.restarted(finished, Instant::now());
        }
    }

    /// Watches a running container and restarts it per `policy` until the pod stops
    /// or the policy says it is done.
    fn monitor(
        self: &Arc<Self>,
        c: ContainerPlan,
        first: Started,
        policy: RestartPolicy,
    ) -> std::thread::JoinHandle<()> {
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            let mut backoff = Backoff::new(me.timing.backoff_initial, me.timing.backoff_max);
            let mut current = first;
            loop {
                let exit = match current.exit.recv() {
                    Ok(e) => e,
                    Err(_) => Exit {
                        code: 255,
                        signal: None,
                    },
                };
                let finished = Instant::now();
                me.mark_exited(&c, &exit);
                if me.is_stopping() {
                    return;
                }
                let restart = policy.restarts(exit.code);
                if !restart {
                    let _ = me.ops.remove(&c);
                    return;
                }
                me.begin_restart(&c, "CrashLoopBackOff");
                loop {
                    if me.sleep_unless_stopped(backoff.delay(finished, Instant::now())) {
                        let _ = me.ops.remove(&c);
                        return;
                    }
                    backoff.restarted(finished, Instant::now());
                    let _ = me.ops.remove(&c);
                    // Claim the restart under the slots lock, unless a stop came first.
                    {
                        let mut slots = me.slots.lock().unwrap();
                        // No (re)start once the infra is gone: its pid, which the
                        // namespace link names, may already be reused.
                        let infra_gone = slots
                            .get(&me.plan.infra.id)
                            .is_none_or(|slot| slot.running.is_none());
                        if me.is_stopping() || infra_gone {
                            return;
                        }
                        slots.entry(c.id.clone()).or_default().starting = true;
                    }
                    let result = me.start(&c, me.restart_count(&c));
                    me.slots
                        .lock()
                        .unwrap()
                        .entry(c.id.clone())
                        .or_default()
                        .starting = false;
                    me.slot_changed.notify_all();
                    match result {
                        Ok(started) => {
                            current = started;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!("restarting {:?}: {e}", c.name);
                            me.set_container(&c.name, |s| {
                                s.state = ContainerState::Waiting {
                                    reason: "RunContainerError".into(),
                                }
                            });
                        }
                    }
                }
            }
        })
    }

    /// Stops one container: its stop signal, then SIGKILL when `grace` is over; then
    /// deletes it. Waits for the exit through the container's monitor.
    fn stop_container(&self, c: &ContainerPlan, grace: Duration) {
        let exits_before = {
            let slots = self.slots.lock().unwrap();
            // A restart in flight finishes first; then its run is stopped like any other.
            let slots = self
                .slot_changed
                .wait_while(slots, |s| s.get(&c.id).is_some_and(|x| x.starting))
                .unwrap();
            match slots.get(&c.id) {
                Some(slot) if slot.running.is_some() => slot.exits,
                _ => {
                    drop(slots);
                    let _ = self.ops.remove(c);
                    return;
                }
            }
        };
        let wait = |d: Duration| -> bool {
            let slots = self.slots.lock().unwrap();
            let (slots, _) = self
                .slot_changed
                .wait_timeout_while(slots, d, |s| {
                    s.get(&c.id).is_some_and(|x| x.exits == exits_before)
                })
                .unwrap();
            slots.get(&c.id).is_some_and(|x| x.exits != exits_before)
        };
        let _ = self.ops.signal(c, &c.stop_signal.runtime_arg());
        if !wait(grace) {
            let _ = self.ops.signal(c, "SIGKILL");
            wait(AFTER_SIGKILL);
        }
        let _ = self.ops.remove(c);
    }

    /// Stops everything in reverse order: app containers together, sidecars one by
    /// one in reverse order (KEP-753), then the infra. The grace period is one budget
    /// for the whole pod, as the kubelet applies it; each later step still gets at
    /// least MIN_GRACE (the kubelet's minimum for sidecars), never more than the pod's.
    fn stop_all(&self) {
        self.update(|s| {
            if s.phase != PodPhase::Failed {
                s.phase = PodPhase::Terminating;
            }
        });
        let grace = Duration::from_secs(self.plan.termination_grace_period_seconds);
        let deadline = Instant::now() + grace;
        let remaining = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(MIN_GRACE.min(grace))
        };
        let apps: Vec<&ContainerPlan> = self
            .plan
            .containers
            .iter()
            .filter(|c| c.kind == ContainerKind::App)
            .collect();
        std::thread::scope(|scope| {
            for c in &apps {
                let grace = remaining();
                scope.spawn(move || self.stop_container(c, grace));
            }
        });
        for c in self
            .plan
            .containers
            .iter()
            .rev()
            .filter(|c| c.kind != ContainerKind::App)
        {
            self.stop_container(c, remaining());
        }
        self.stop_container(&self.plan.infra, remaining());
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
