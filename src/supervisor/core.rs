//! PURE: the pod's lifecycle as one state machine. The event loop ([`super::driver`])
//! feeds it one [`Input`] at a time (a start finished, a process exited, a stop was
//! requested, a timer fired) with the time it happened, and carries out the
//! [`Command`]s it returns. Nothing here sleeps, spawns, reads a clock or touches a
//! file, so every ordering, restart and timing rule is unit-tested with explicit
//! instants (ARCHITECTURE.md rule 2).
//!
//! Kubernetes' order: infra → init containers one at a time (each must exit 0) →
//! native sidecars (started in order, always restarted) → app containers (started
//! together, at most `Timing::start_workers` runtime calls at once, restarted per
//! the pod's restartPolicy with the kubelet's back-off). Stopping follows
//! [`crate::teardown::plan`] with one grace budget for the pod.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use super::backoff::Backoff;
use super::probing::{ProbeResult, Worker};
use crate::model::{
    AfterExit, ContainerKind, Hook, HookKind, Hooks, Probe, ProbeKind, Probes, RestartPolicy,
    RestartRule, Signal, TerminationMessagePolicy,
};
use crate::run_plan::{RunContainer, RunPlan};
use crate::state::{ContainerState, PodPhase, PodState, rfc3339};
use crate::teardown::{self, Budget, Step};

/// How a process ended: its exit code, or 128 + the signal that killed it (the
/// convention the kubelet reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub signal: Option<i32>,
    /// The kernel OOM-killed a process of the run's cgroup.
    pub oom_killed: bool,
}

/// When something happened: the monotonic instant (for timers) and the wall time
/// (for the state the user reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

/// Back-off and start settings (the kubelet's by default; tests shorten them).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How many app containers are started at once.
    pub start_workers: usize,
    /// How often the disk-backed emptyDirs with a `sizeLimit` are measured
    /// (the kubelet's eviction manager looks every 10 s).
    pub volume_check: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            backoff_initial: super::backoff::INITIAL,
            backoff_max: super::backoff::MAX,
            start_workers: 4,
            volume_check: Duration::from_secs(10),
        }
    }
}

/// A container, by its index in [`RunPlan::all`] (0 is the infra).
pub type Ctr = usize;

/// One run of one probe: its container, which probe, the container's run
/// (`generation`) and the probe's own run number, so that an answer that comes
/// after a later run began is told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeRun {
    pub ctr: Ctr,
    pub kind: ProbeKind,
    pub generation: u64,
    pub run: u64,
}

/// How long past its timeout a probe's answer may come before the run is
/// given up (a thread or runtime process that never ends).
const PROBE_SLACK: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Restart `ctr` after its back-off; stale unless `generation` is its current.
    Restart { ctr: Ctr, generation: u64 },
    /// The grace of stop step `step` (of the `epoch`-th stop) is over: SIGKILL.
    Grace { epoch: u64, step: usize },
    /// SIGKILL did not end it either: delete it anyway.
    Kill { epoch: u64, step: usize },
    /// Time for `ctr`'s `kind` probe (of run `generation`).
    Probe {
        ctr: Ctr,
        kind: ProbeKind,
        generation: u64,
    },
    /// A probe run is long past its timeout without an answer.
    ProbeLost(ProbeRun),
    /// The grace of a kill while the pod runs (a failed probe or postStart
    /// hook) is over.
    GraceOver { ctr: Ctr, generation: u64 },
    /// `activeDeadlineSeconds` have passed since the pod started.
    Deadline,
    /// Time to measure the emptyDirs with a `sizeLimit` again.
    VolumeCheck,
    /// An in-place restart's back-off is over: the pod starts again.
    RestartAll,
    /// A sleep hook is over.
    HookSlept {
        ctr: Ctr,
        hook: HookKind,
        generation: u64,
    },
    /// SIGKILL to `ctr`, the kubelet's minimum 2 s after its preStop hook.
    KillOne { ctr: Ctr, generation: u64 },
}

/// A measured emptyDir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeUsage {
    /// The bytes it holds (more than its limit, once past it: the walk stops).
    Bytes(u64),
    /// Past what the walk looks at (its depth or entries): more than can be
    /// shown to be within the limit.
    Unbounded(String),
    /// It could not be read.
    Unknown(String),
}

/// Why a container did not start, with the kubelet's waiting reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// `RunContainerError` (the runtime or a mount failed) or
    /// `CreateContainerConfigError` (its configuration could not be made: a
    /// `fileKeyRef` that cannot be read, as the kubelet's `ErrCreateContainerConfig`).
    pub reason: &'static str,
    pub message: String,
}

impl StartError {
    /// The container's configuration could not be made.
    pub fn config(message: String) -> StartError {
        StartError {
            reason: "CreateContainerConfigError",
            message,
        }
    }
}

impl From<String> for StartError {
    fn from(message: String) -> StartError {
        StartError {
            reason: "RunContainerError",
            message,
        }
    }
}

impl From<&str> for StartError {
    fn from(message: &str) -> StartError {
        message.to_string().into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The runtime call that starts `ctr` returned: its init pid, or why not.
    Started {
        ctr: Ctr,
        result: Result<i32, StartError>,
    },
    /// The infra runs: its namespaces were written into the other bundles (and its
    /// loopback brought up), or that failed.
    /// The infra's namespaces are ready; `Ok` carries the pod's IPs (IPv4 first;
    /// none for a pod with only its loopback).
    InfraReady(Result<Vec<String>, String>),
    /// `ctr`'s init process exited.
    Exited {
        ctr: Ctr,
        exit: Exit,
    },
    /// `down`, Ctrl-C; `down --grace-period` overrides the pod's period (as a
    /// deletion's grace period overrides the spec's in Kubernetes).
    StopRequested {
        grace: Option<Duration>,
    },
    Timer(Timer),
    /// A hook run asked for by [`Command::Hook`] ended.
    Hooked {
        ctr: Ctr,
        hook: HookKind,
        generation: u64,
        result: Result<(), String>,
    },
    /// A probe run asked for by [`Command::Probe`] ended (its timeout enforced).
    Probed {
        probe: ProbeRun,
        result: ProbeResult,
    },
    /// A probe run had no result (the runtime could not exec, the network
    /// namespace could not be entered): the kubelet throws such a run away.
    ProbeErrored {
        probe: ProbeRun,
        message: String,
    },
    /// What [`Command::MeasureVolumes`] found of each of the plan's
    /// `volume_limits`.
    VolumesMeasured(Vec<VolumeUsage>),
    /// `podshim resize` gave containers new resources (by container, none for
    /// the infra); the ones in `restart` need a restart to take them
    /// (`resizePolicy: RestartContainer`).
    Resized {
        resources: Vec<Option<crate::run_plan::PlanResources>>,
        restart: Vec<Ctr>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run `ctr` (its `restart`-th run): a fresh rootfs for a restart, its subPaths
    /// bound, then the runtime; answered by [`Input::Started`].
    Start { ctr: Ctr, restart: u32 },
    /// Write the infra's pid into the joining bundles, bring its loopback up;
    /// answered by [`Input::InfraReady`].
    PrepareInfra { pid: i32 },
    /// Send `signal` to `ctr`'s init, or with `all` to every process in it.
    Signal { ctr: Ctr, signal: Signal, all: bool },
    /// Delete `ctr` from the runtime (it has exited, or is killed by force).
    Remove { ctr: Ctr },
    /// Answer with [`Input::Timer`] at `at`.
    Arm { at: Instant, timer: Timer },
    /// Run `ctr`'s `hook` (exec or httpGet); answered by [`Input::Hooked`].
    Hook {
        ctr: Ctr,
        hook: HookKind,
        generation: u64,
    },
    /// Run one probe once, within its timeout; answered by [`Input::Probed`]
    /// (or [`Input::ProbeErrored`]) with the same [`ProbeRun`].
    Probe(ProbeRun),
    /// The pod's state changed: write it for `ps`.
    Publish,
    /// Measure the plan's `volume_limits`; answered by [`Input::VolumesMeasured`].
    MeasureVolumes,
    /// Tell `up` the app containers run.
    ReportStarted,
    /// Everything is stopped: the loop ends with this outcome.
    Finish(Outcome),
}

/// How the pod ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped on request (`down`, Ctrl-C).
    Stopped,
    /// Every app container finished and will not restart.
    Completed(PodPhase),
    /// The pod could not start (`up` is told why), or lost its infra.
    Failed(String),
}

/// Why the pod is stopping, which decides its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cause {
    Requested,
    Completed(PodPhase),
    Failed(String),
    /// A `RestartAllContainers` rule matched this container's exit: once all
    /// are stopped (the infra stays), the pod starts again from its first init
    /// container (KEP-5532).
    RestartAll(Ctr),
}

/// What a container's run left to read: the last lines of its log (for
/// failure messages) and its termination message file (the only things the core
/// reads, behind a trait so tests pass their own).
pub trait Logs {
    fn last_lines(&self, ctr: Ctr, restart: u32, lines: usize) -> String;
    /// What the run wrote at its `terminationMessagePath`, at most
    /// [`MAX_TERMINATION_MESSAGE`] bytes of it.
    fn termination_message(&self, ctr: Ctr) -> String;
}

/// The kubelet keeps 4096 bytes of a termination message (`maxMessageLength`).
pub const MAX_TERMINATION_MESSAGE: usize = 4096;
/// `FallbackToLogsOnError` takes the last 80 lines of the log, at most 2048 bytes
/// (MaxContainerTerminationMessageLogLines, ...LogLength).
const FALLBACK_LINES: usize = 80;
const FALLBACK_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Not started yet, or removed.
    Idle,
    /// The runtime call is under way.
    Starting,
    Running {
        pid: i32,
    },
    /// Exited, still in the runtime until removed.
    Exited,
    /// Waiting to restart; the old run was removed.
    BackOff,
}

#[derive(Debug, Clone)]
struct Slot {
    run: Run,
    restarts: u32,
    backoff: Backoff,
    /// Bumped at every exit, so that a stale restart timer is ignored.
    generation: u64,
    /// When the current run ended.
    finished: Option<Instant>,
    /// It will not run again (an init container that succeeded, an app container
    /// its policy does not restart).
    done: bool,
    /// Signalled in the current stop step.
    signalled: bool,
    /// When SIGKILL was sent to the current run: it is deleted anyway only once
    /// [`teardown::AFTER_KILL`] has passed since.
    killed: Option<Instant>,
    /// When the current run began: probes' initial delays count from it.
    run_started: Option<Instant>,
    /// The current run passed its startup probe, or has none.
    probes_started: bool,
    /// The current run's probe workers, by [`ProbeKind`] (`as usize`).
    workers: [Worker; 3],
    /// Why podshim is killing the current run (a failed probe or postStart
    /// hook), for its terminated state.
    kill_reason: Option<String>,
    /// The current run is killed to take resized resources: restarted at once,
    /// whatever its restart policy, as the kubelet restarts it.
    resize_restart: bool,
    /// When the current run began, as the state says it.
    started_at: String,
    /// Its postStart hook is under way.
    post_start: bool,
    pre_stop: PreStop,
    /// When its stop signal was sent (after its preStop hook).
    stop_signalled: Option<Instant>,
}

/// Where a run's preStop hook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PreStop {
    Idle,
    Running,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Waiting for the infra (and its preparation).
    Infra,
    /// Running the init container or starting the sidecar at this index.
    Init(Ctr),
    /// Starting the app containers: those not yet asked for, and those whose
    /// first runtime call is under way (a restart of one already started is not
    /// one of them).
    Apps {
        queue: VecDeque<Ctr>,
        in_flight: BTreeSet<Ctr>,
    },
    Running,
    /// Everything but the infra stopped for an in-place restart; the pod starts
    /// again when the back-off of the container that asked for it is over.
    RestartWait,
    Stopping {
        steps: Vec<Vec<Ctr>>,
        step: usize,
        budget: Budget,
        /// The grace of the current step is over: whatever starts late in it is
        /// killed, not signalled.
        expired: bool,
        cause: Cause,
    },
    Done,
}

/// The pod being run.
pub struct Core {
    kinds: Vec<ContainerKind>,
    stop_signals: Vec<Signal>,
    names: Vec<String>,
    probes: Vec<Probes>,
    hooks: Vec<Hooks>,
    message_policies: Vec<TerminationMessagePolicy>,
    container_policies: Vec<Option<RestartPolicy>>,
    restart_rules: Vec<Vec<RestartRule>>,
    policy: RestartPolicy,
    grace: Duration,
    /// `activeDeadlineSeconds`.
    deadline: Option<Duration>,
    /// The disk-backed emptyDirs' `sizeLimit`s.
    volume_limits: Vec<crate::run_plan::VolumeLimit>,
    timing: Timing,
    keep_on_failure: bool,
    slots: Vec<Slot>,
    phase: Phase,
    started: bool,
    /// Every init container completed and every sidecar started (the pod's
    /// Initialized condition).
    initialized: bool,
    /// Whether the pod restarts in place now (none: it never did), the
    /// AllContainersRestarting condition.
    restarting_all: Option<bool>,
    /// How many stops began (an in-place restart is one): stale stop timers
    /// are told by it.
    stop_epoch: u64,
    state: PodState,
    out: Vec<Command>,
    /// The wall time of the input being handled, for conditions and events.
    now: String,
}

/// The kubelet's terminated reasons: `OOMKilled` when the kernel killed a process
/// of the run for memory (whatever the exit code: the runtime's OOM event decides),
/// else `Completed` for exit 0 and `Error` otherwise.
fn reason_for(exit: &Exit) -> &'static str {
    if exit.oom_killed {
        "OOMKilled"
    } else if exit.code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

impl Core {
    pub fn new(plan: &RunPlan, state: PodState, timing: Timing) -> Core {
        let all: Vec<&RunContainer> = plan.all().collect();
        let slot = Slot {
            run: Run::Idle,
            restarts: 0,
            backoff: Backoff::new(timing.backoff_initial, timing.backoff_max),
            generation: 0,
            finished: None,
            done: false,
            signalled: false,
            killed: None,
            run_started: None,
            probes_started: false,
            workers: Default::default(),
            kill_reason: None,
            resize_restart: false,
            started_at: String::new(),
            post_start: false,
            pre_stop: PreStop::Idle,
            stop_signalled: None,
        };
        Core {
            kinds: all.iter().map(|c| c.kind).collect(),
            stop_signals: all.iter().map(|c| c.stop_signal).collect(),
            names: all.iter().map(|c| c.name.clone()).collect(),
            probes: all.iter().map(|c| c.probes.clone()).collect(),
            hooks: all.iter().map(|c| c.hooks.clone()).collect(),
            message_policies: all.iter().map(|c| c.termination_message_policy).collect(),
            container_policies: all.iter().map(|c| c.restart_policy).collect(),
            restart_rules: all.iter().map(|c| c.restart_rules.clone()).collect(),
            policy: plan.restart_policy,
            grace: Duration::from_secs(plan.termination_grace_period_seconds),
            deadline: plan.active_deadline_seconds.map(Duration::from_secs),
            volume_limits: plan.volume_limits.clone(),
            keep_on_failure: state.keep_on_failure,
            timing,
            slots: vec![slot; all.len()],
            phase: Phase::Infra,
            started: false,
            initialized: false,
            restarting_all: None,
            stop_epoch: 0,
            state,
            out: Vec::new(),
            now: String::new(),
        }
    }

    /// The pod's record, as `ps` reads it.
    pub fn state(&self) -> &PodState {
        &self.state
    }

    /// Whether the app containers ran (`up` was told so).
    pub fn has_started(&self) -> bool {
        self.started
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the pod is being stopped (or is done): nothing may start now.
    pub fn is_stopping(&self) -> bool {
        self.stopping()
    }

    /// The first commands: start the infra (and arm the pod's deadline).
    pub fn start(&mut self, now: Now) -> Vec<Command> {
        self.now = rfc3339(now.wall);
        self.state.phase = PodPhase::Pending;
        self.out.push(Command::Publish);
        if let Some(deadline) = self.deadline {
            self.out.push(Command::Arm {
                at: teardown::far_after(now.mono, deadline),
                timer: Timer::Deadline,
            });
        }
        self.arm_volume_check(now);
        self.run(0);
        self.flush()
    }

    /// Takes one input; returns what to do.
    pub fn handle(&mut self, input: Input, now: Now, logs: &dyn Logs) -> Vec<Command> {
        if self.phase == Phase::Done {
            return Vec::new();
        }
        self.now = rfc3339(now.wall);
        match input {
            Input::Started { ctr, result } => self.on_started(ctr, result, now),
            Input::VolumesMeasured(usage) => self.on_volumes_measured(usage, now),
            Input::InfraReady(result) => self.on_infra_ready(result, now),
            Input::Exited { ctr, exit } => self.on_exited(ctr, exit, now, logs),
            Input::Resized { resources, restart } => self.on_resized(resources, restart, now),
            Input::StopRequested { grace } => {
                // A stop while the pod restarts in place ends it instead, the
                // infra last.
                if let Phase::Stopping { steps, cause, .. } = &mut self.phase
                    && matches!(cause, Cause::RestartAll(_))
                {
                    *cause = Cause::Requested;
                    steps.push(vec![0]);
                    self.restarting_all = Some(false);
                    if self.state.phase != PodPhase::Failed {
                        self.state.phase = PodPhase::Terminating;
                    }
                }
                if let (Phase::Stopping { .. }, Some(grace)) = (&self.phase, grace) {
                    self.shorten_stop(grace, now);
                } else if !matches!(self.phase, Phase::Stopping { .. }) {
                    if let Some(grace) = grace {
                        self.grace = grace;
                    }
                    self.stop(Cause::Requested, now);
                }
            }
            Input::Timer(t) => self.on_timer(t, now),
            Input::Probed { probe, result } => self.on_probed(probe, result, now),
            Input::ProbeErrored { probe, message } => {
                self.probe_without_result(probe, &message, now)
            }
            Input::Hooked {
                ctr,
                hook,
                generation,
                result,
            } => self.on_hooked(ctr, hook, generation, result, now),
        }
        self.flush()
    }

    /// The commands of one input, with one state write for all its changes,
    /// placed before any report or finish: `up` reads the state once it is told
    /// the pod started.
    fn flush(&mut self) -> Vec<Command> {
        let commands = std::mem::take(&mut self.out);
        let publish = commands.contains(&Command::Publish);
        let mut out: Vec<Command> = commands
            .into_iter()
            .filter(|c| *c != Command::Publish)
            .collect();
        if publish {
            crate::status::update(
                &mut self.state.conditions,
                self.state.phase,
                self.initialized,
                self.restarting_all,
                &self.state.containers,
                &self.now,
            );
            let at = out
                .iter()
                .position(|c| matches!(c, Command::ReportStarted | Command::Finish(_)))
                .unwrap_or(out.len());
            out.insert(at, Command::Publish);
        }
        out
    }

    fn stopping(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. } | Phase::Done)
    }

    fn name(&self, ctr: Ctr) -> &str {
        &self.names[ctr]
    }

    /// Records an event (about `ctr`, or the pod), as the kubelet's recorder.
    fn event(&mut self, warning: bool, reason: &str, ctr: Option<Ctr>, message: String) {
        let container = ctr.map(|c| self.names[c].clone());
        let now = self.now.clone();
        crate::status::record(
            &mut self.state.events,
            warning,
            reason,
            container.as_deref(),
            message,
            &now,
        );
        self.out.push(Command::Publish);
    }

    fn set_status(&mut self, ctr: Ctr, f: impl FnOnce(&mut crate::state::ContainerStatus)) {
        if let Some(c) = self.state.containers.get_mut(ctr) {
            f(c);
        }
        self.out.push(Command::Publish);
    }

    /// Asks the runtime to run `ctr`.
    fn run(&mut self, ctr: Ctr) {
        let slot = &mut self.slots[ctr];
        slot.run = Run::Starting;
        slot.signalled = false;
        slot.killed = None;
        let restart = slot.restarts;
        self.out.push(Command::Start { ctr, restart });
    }

    fn on_started(&mut self, ctr: Ctr, result: Result<i32, StartError>, now: Now) {
        let pid = match result {
            Ok(pid) => pid,
            Err(e) => return self.start_failed(ctr, e, now),
        };
        if ctr != 0 {
            let message = format!("Started container {}", self.name(ctr));
            self.event(false, "Started", Some(ctr), message);
        }
        let slot = &mut self.slots[ctr];
        // A new run: a resize restart asked of an earlier one is over.
        slot.resize_restart = false;
        slot.run = Run::Running { pid };
        slot.run_started = Some(now.mono);
        slot.started_at = rfc3339(now.wall);
        slot.workers = Default::default();
        slot.kill_reason = None;
        slot.pre_stop = PreStop::Idle;
        slot.stop_signalled = None;
        // The kubelet runs postStart once the runtime started the container; it
        // is not Running (not probed; a sidecar does not let the next container
        // go) until the hook completed.
        let post_start = !self.stopping() && self.hooks[ctr].post_start.is_some();
        self.slots[ctr].post_start = post_start;
        if post_start {
            self.run_hook(ctr, HookKind::PostStart, now);
        } else {
            self.became_running(ctr, now);
        }
        match &mut self.phase {
            // Started while the pod stops (a restart in flight): stopped with its step.
            Phase::Stopping { .. } => self.signal_if_in_step(ctr, now),
            Phase::Infra if ctr == 0 => self.out.push(Command::PrepareInfra { pid }),
            // A first start frees a start worker (a restart was not one).
            Phase::Apps { in_flight, .. } => {
                let first_start = in_flight.remove(&ctr);
                if first_start {
                    self.start_apps(now);
                }
            }
            _ => {}
        }
    }

    /// The container runs (its postStart hook, if any, completed): its state says
    /// so, its probes begin, and a sidecar that has started lets the next
    /// container go.
    fn became_running(&mut self, ctr: Ctr, now: Now) {
        let Run::Running { pid } = self.slots[ctr].run else {
            return;
        };
        let kind = self.kinds[ctr];
        let probed = matches!(kind, ContainerKind::App | ContainerKind::Sidecar);
        // Kubernetes (prober_manager UpdatePodStatus): started once the startup
        // probe succeeded (at once without one); ready once started and the
        // readiness probe succeeded (at once without one); an init container never.
        let started = !probed || self.probes[ctr].startup.is_none();
        let ready = probed && started && self.probes[ctr].readiness.is_none();
        self.slots[ctr].probes_started = started;
        let at = self.slots[ctr].started_at.clone();
        self.set_status(ctr, |s| {
            s.state = ContainerState::Running {
                pid,
                started_at: at,
            };
            s.started = probed.then_some(started);
            s.ready = ready;
        });
        if probed && !self.stopping() {
            match self.probes[ctr].startup.is_some() {
                true => self.arm_probe_after_delay(ctr, ProbeKind::Startup, now),
                false => self.arm_after_startup(ctr, now),
            }
        }
        // A sidecar lets the next init container go once it started: at once
        // without a startup probe, else when that succeeds (KEP-753).
        if self.phase == Phase::Init(ctr) && kind == ContainerKind::Sidecar && started {
            self.next_init(ctr + 1, now)
        }
    }

    /// Runs `ctr`'s `hook`: a sleep is a timer of the core's own, the others the
    /// event loop's (answered by [`Input::Hooked`]).
    fn run_hook(&mut self, ctr: Ctr, hook: HookKind, now: Now) {
        let generation = self.slots[ctr].generation;
        match self.hooks[ctr].get(hook) {
            Some(Hook::Sleep { seconds }) => self.out.push(Command::Arm {
                at: teardown::far_after(now.mono, Duration::from_secs(*seconds)),
                timer: Timer::HookSlept {
                    ctr,
                    hook,
                    generation,
                },
            }),
            Some(_) => self.out.push(Command::Hook {
                ctr,
                hook,
                generation,
            }),
            None => {}
        }
    }

    fn on_hooked(
        &mut self,
        ctr: Ctr,
        hook: HookKind,
        generation: u64,
        result: Result<(), String>,
        now: Now,
    ) {
        let slot = &self.slots[ctr];
        if slot.generation != generation || !matches!(slot.run, Run::Running { .. }) {
            return;
        }
        match hook {
            HookKind::PostStart => {
                if !std::mem::take(&mut self.slots[ctr].post_start) || self.stopping() {
                    return;
                }
                match result {
                    Ok(()) => self.became_running(ctr, now),
                    Err(e) => {
                        // The kubelet kills the container (FailedPostStartHook) and
                        // restarts it under its policy; the hook's output is why.
                        tracing::warn!("{:?}: PostStart hook failed: {e}", self.name(ctr));
                        self.event(true, "FailedPostStartHook", Some(ctr), e.clone());
                        self.event(false, "Killing", Some(ctr), "FailedPostStartHook".into());
                        let grace = self.grace;
                        self.kill_for(ctr, format!("PostStartHookError: {e}"), grace, now);
                    }
                }
            }
            HookKind::PreStop => {
                if self.slots[ctr].pre_stop != PreStop::Running {
                    return;
                }
                self.slots[ctr].pre_stop = PreStop::Done;
                if let Err(e) = result {
                    // FailedPreStopHook: the stop goes on.
                    tracing::warn!("{:?}: PreStop hook failed: {e}", self.name(ctr));
                    self.event(true, "FailedPreStopHook", Some(ctr), e);
                }
                self.signal_stop(ctr);
                self.slots[ctr].stop_signalled = Some(now.mono);
            }
        }
    }

    /// Begins stopping `ctr`: its preStop hook first if it has one (once per run),
    /// else its stop signal at once.
    fn begin_kill(&mut self, ctr: Ctr, now: Now) {
        if self.stopping() && ctr != 0 {
            let message = format!("Stopping container {}", self.name(ctr));
            self.event(false, "Killing", Some(ctr), message);
        }
        // An in-place restart of the whole pod runs no preStop hook (KEP-5532).
        let restarting_all = matches!(
            self.phase,
            Phase::Stopping {
                cause: Cause::RestartAll(_),
                ..
            }
        );
        match self.slots[ctr].pre_stop {
            PreStop::Running => {}
            PreStop::Idle if self.hooks[ctr].pre_stop.is_some() && !restarting_all => {
                self.slots[ctr].pre_stop = PreStop::Running;
                self.run_hook(ctr, HookKind::PreStop, now);
            }
            _ => {
                self.signal_stop(ctr);
                self.slots[ctr].stop_signalled = Some(now.mono);
            }
        }
    }

    /// `ctr`'s grace period is over. A preStop hook still under way has had its
    /// time: the stop signal goes now. The kubelet leaves at least 2 s between
    /// a preStop hook's end and SIGKILL (minimumGracePeriodInSeconds); otherwise
    /// SIGKILL now.
    fn grace_over(&mut self, ctr: Ctr, now: Now) {
        let generation = self.slots[ctr].generation;
        let kill_at = |at: Instant| Command::Arm {
            at,
            timer: Timer::KillOne { ctr, generation },
        };
        if self.slots[ctr].pre_stop == PreStop::Running {
            self.slots[ctr].pre_stop = PreStop::Done;
            self.signal_stop(ctr);
            self.slots[ctr].stop_signalled = Some(now.mono);
            self.out.push(kill_at(now.mono + teardown::MIN_GRACE));
            return;
        }
        let after_hook = self.hooks[ctr].pre_stop.is_some();
        match self.slots[ctr].stop_signalled {
            Some(at) if after_hook && now.mono < at + teardown::MIN_GRACE => {
                self.out.push(kill_at(at + teardown::MIN_GRACE));
            }
            _ => self.kill(ctr, now),
        }
    }

    /// Stops `ctr` for good reason while the pod runs (a failed probe or
    /// postStart hook): its preStop hook, its stop signal, SIGKILL after
    /// `grace`; it is then restarted under its policy, `why` in its terminated
    /// state.
    fn kill_for(&mut self, ctr: Ctr, why: String, grace: Duration, now: Now) {
        self.slots[ctr].kill_reason = Some(why);
        self.set_status(ctr, |s| s.ready = false);
        self.begin_kill(ctr, now);
        let generation = self.slots[ctr].generation;
        self.out.push(Command::Arm {
            at: teardown::far_after(now.mono, grace),
            timer: Timer::GraceOver { ctr, generation },
        });
    }

    fn start_failed(&mut self, ctr: Ctr, error: StartError, now: Now) {
        let StartError {
            reason,
            message: error,
        } = error;
        self.event(true, "Failed", Some(ctr), format!("Error: {error}"));
        self.slots[ctr].run = Run::Idle;
        let kind = self.kinds[ctr];
        self.set_status(ctr, |s| {
            s.state = ContainerState::Waiting {
                reason: reason.into(),
            };
        });
        if self.stopping() {
            self.step_progress(now);
            return;
        }
        // After an in-place restart the pod has run: a start that fails then is
        // a restart that failed, not the pod failing to start.
        let (freed, first_start) = match &mut self.phase {
            Phase::Apps { in_flight, .. } => {
                let freed = in_flight.remove(&ctr);
                (freed, freed && !self.started)
            }
            _ => (false, !self.started && self.slots[ctr].restarts == 0),
        };
        if !first_start {
            // A restart that failed: the kubelet reports the reason and tries
            // again after the next back-off; no run happened, so no restart counts.
            tracing::warn!("restarting {:?}: {error}", self.name(ctr));
            self.arm_restart(ctr, now);
            if freed {
                self.start_apps(now);
            }
            return;
        }
        let what = match kind {
            ContainerKind::Infra => "infra container".to_string(),
            ContainerKind::Init => format!("init container {:?}", self.name(ctr)),
            ContainerKind::Sidecar => format!("sidecar container {:?}", self.name(ctr)),
            ContainerKind::App => format!("container {:?}", self.name(ctr)),
        };
        self.fail(format!("{what}: {error}"), now);
    }

    fn on_infra_ready(&mut self, result: Result<Vec<String>, String>, now: Now) {
        if self.stopping() {
            return;
        }
        match result {
            Ok(ips) => {
                self.state.set_pod_ips(ips);
                self.out.push(Command::Publish);
                self.next_init(1, now)
            }
            Err(e) => self.fail(format!("infra container: {e}"), now),
        }
    }

    /// Runs the init container (or starts the sidecar) at `from`, or, past the
    /// last (containers come init and sidecar first, then apps), starts the app
    /// containers.
    fn next_init(&mut self, from: Ctr, now: Now) {
        if from < self.kinds.len() && self.kinds[from] != ContainerKind::App {
            self.phase = Phase::Init(from);
            self.run(from);
            return;
        }
        let queue = (from..self.kinds.len()).collect();
        self.initialized = true;
        self.phase = Phase::Apps {
            queue,
            in_flight: BTreeSet::new(),
        };
        self.start_apps(now);
    }

    /// Starts queued app containers while fewer than `start_workers` runtime calls
    /// are under way; once all run, the pod is Running.
    fn start_apps(&mut self, now: Now) {
        let workers = self.timing.start_workers.max(1);
        let mut next = Vec::new();
        let Phase::Apps { queue, in_flight } = &mut self.phase else {
            return;
        };
        while in_flight.len() < workers {
            let Some(ctr) = queue.pop_front() else { break };
            in_flight.insert(ctr);
            next.push(ctr);
        }
        let all_started = queue.is_empty() && in_flight.is_empty();
        for ctr in next {
            self.run(ctr);
        }
        if all_started {
            self.phase = Phase::Running;
            self.state.phase = PodPhase::Running;
            self.out.push(Command::Publish);
            // `up` is told once (not again after an in-place restart).
            if !std::mem::replace(&mut self.started, true) {
                self.out.push(Command::ReportStarted);
            }
            if self.restarting_all == Some(true) {
                self.restarting_all = Some(false);
            }
            self.check_completion(now);
        }
    }

    fn on_exited(&mut self, ctr: Ctr, exit: Exit, now: Now, logs: &dyn Logs) {
        let slot = &mut self.slots[ctr];
        if !matches!(slot.run, Run::Running { .. }) {
            return;
        }
        slot.run = Run::Exited;
        slot.finished = Some(now.mono);
        slot.generation += 1;
        let killed_for = slot.kill_reason.take();
        if exit.oom_killed {
            let message = format!(
                "Container {} was killed for running out of memory",
                self.names[ctr]
            );
            self.event(true, "OOMKilled", Some(ctr), message);
        }
        let slot = &mut self.slots[ctr];
        slot.post_start = false;
        let message = self.termination_message(ctr, &exit, killed_for, logs);
        let at = rfc3339(now.wall);
        self.set_status(ctr, |s| {
            let started_at = match &s.state {
                ContainerState::Running { started_at, .. } => started_at.clone(),
                _ => at.clone(),
            };
            s.state = ContainerState::Terminated {
                exit_code: exit.code,
                reason: reason_for(&exit).into(),
                message,
                started_at,
                finished_at: at,
            };
            s.ready = false;
            s.started = s.started.map(|_| false);
        });
        if self.stopping() {
            self.slots[ctr].resize_restart = false;
            self.out.push(Command::Remove { ctr });
            self.slots[ctr].run = Run::Idle;
            self.step_progress(now);
            return;
        }
        let kind = self.kinds[ctr];
        if std::mem::take(&mut self.slots[ctr].resize_restart) {
            // Restarted for its new resources: no back-off, one restart counted.
            self.out.push(Command::Remove { ctr });
            self.slots[ctr].restarts += 1;
            self.set_status(ctr, |s| {
                s.last_state = Some(s.state.clone());
                s.state = ContainerState::Waiting {
                    reason: "ContainerCreating".into(),
                };
                s.restart_count += 1;
            });
            self.slots[ctr].run = Run::BackOff;
            let generation = self.slots[ctr].generation;
            self.out.push(Command::Arm {
                at: now.mono,
                timer: Timer::Restart { ctr, generation },
            });
            return;
        }
        match kind {
            ContainerKind::Infra => {
                // No container may (re)join namespaces whose holder is gone: its pid,
                // which the bundles name, could be reused.
                let message = format!("infra container exited with code {}", exit.code);
                self.state.message = Some(message.clone());
                self.stop(Cause::Failed(message), now);
            }
            ContainerKind::Init => {
                self.out.push(Command::Remove { ctr });
                self.slots[ctr].run = Run::Idle;
                // Init containers run to completion: a success is final.
                if exit.code == 0 {
                    self.slots[ctr].done = true;
                    return self.next_init(ctr + 1, now);
                }
                // Kubernetes: a failed init container fails the pod under Never
                // (its own, else the pod's), and is retried with back-off under
                // OnFailure and Always, unless a restart rule decides.
                match self.after_exit(ctr, exit.code) {
                    AfterExit::Restart => self.back_off(ctr, now),
                    AfterExit::RestartAll => self.stop(Cause::RestartAll(ctr), now),
                    AfterExit::Done => {
                        let message = self.failure_message(ctr, &exit, logs);
                        self.fail(message, now)
                    }
                }
            }
            // A native sidecar is always restarted, whatever the pod's policy.
            ContainerKind::Sidecar => {
                self.out.push(Command::Remove { ctr });
                self.back_off(ctr, now);
            }
            ContainerKind::App => {
                self.out.push(Command::Remove { ctr });
                match self.after_exit(ctr, exit.code) {
                    AfterExit::Restart => self.back_off(ctr, now),
                    AfterExit::RestartAll => {
                        self.slots[ctr].run = Run::Idle;
                        self.stop(Cause::RestartAll(ctr), now)
                    }
                    AfterExit::Done => {
                        self.slots[ctr].run = Run::Idle;
                        self.slots[ctr].done = true;
                        self.check_completion(now);
                    }
                }
            }
        }
    }

    /// What `ctr`'s exit with `code` leads to: its restart rules, then its own
    /// restart policy, then the pod's.
    fn after_exit(&self, ctr: Ctr, code: i32) -> AfterExit {
        let policy = self.container_policies[ctr].unwrap_or(self.policy);
        crate::model::after_exit(&self.restart_rules[ctr], policy, code)
    }

    /// Waits the kubelet's back-off, then restarts `ctr` (its old run removed):
    /// one more restart counted.
    fn back_off(&mut self, ctr: Ctr, now: Now) {
        self.slots[ctr].restarts += 1;
        self.set_status(ctr, |s| {
            s.last_state = Some(s.state.clone());
            s.state = ContainerState::Waiting {
                reason: "CrashLoopBackOff".into(),
            };
            s.restart_count += 1;
        });
        self.arm_restart(ctr, now);
    }

    /// Arms `ctr`'s restart after its next back-off. Alone (no restart counted)
    /// for a failed start of a restart: `ctr` stays Waiting (RunContainerError)
    /// and is tried again then.
    fn arm_restart(&mut self, ctr: Ctr, now: Now) {
        let slot = &mut self.slots[ctr];
        let finished = slot.finished.unwrap_or(now.mono);
        let delay = slot.backoff.delay(finished, now.mono);
        slot.backoff.restarted(finished, now.mono);
        slot.run = Run::BackOff;
        let generation = slot.generation;
        if !delay.is_zero() {
            let message = format!(
                "Back-off restarting failed container {} in pod {}_{}({})",
                self.names[ctr], self.state.name, self.state.namespace, self.state.uid
            );
            self.event(true, "BackOff", Some(ctr), message);
        }
        self.out.push(Command::Arm {
            at: teardown::far_after(now.mono, delay),
            timer: Timer::Restart { ctr, generation },
        });
    }

    /// Kubernetes: the pod is done once every app container finished for good;
    /// it Succeeded when each exited 0. Sidecars and the infra are then stopped.
    fn check_completion(&mut self, now: Now) {
        if self.phase != Phase::Running {
            return;
        }
        let apps: Vec<Ctr> = (0..self.kinds.len())
            .filter(|&i| self.kinds[i] == ContainerKind::App)
            .collect();
        if !apps.iter().all(|&i| self.slots[i].done) {
            return;
        }
        let all_ok = apps.iter().all(|&i| {
            matches!(
                self.state.containers.get(i).map(|c| &c.state),
                Some(ContainerState::Terminated { exit_code: 0, .. })
            )
        });
        let phase = if all_ok {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
        self.stop(Cause::Completed(phase), now);
    }

    /// Arms `kind`'s first run of the current run: its initial delay after the
    /// container started.
    fn arm_probe_after_delay(&mut self, ctr: Ctr, kind: ProbeKind, now: Now) {
        let Some(probe) = self.probes[ctr].get(kind) else {
            return;
        };
        let delay = Duration::from_secs(probe.initial_delay_seconds.into());
        let since = self.slots[ctr].run_started.unwrap_or(now.mono);
        let at = teardown::far_after(since, delay).max(now.mono);
        let generation = self.slots[ctr].generation;
        self.out.push(Command::Arm {
            at,
            timer: Timer::Probe {
                ctr,
                kind,
                generation,
            },
        });
    }

    /// Liveness and readiness wait for the startup probe (worker.go: "the
    /// container has not started"); from then on, each after its initial delay.
    fn arm_after_startup(&mut self, ctr: Ctr, now: Now) {
        for kind in [ProbeKind::Liveness, ProbeKind::Readiness] {
            self.arm_probe_after_delay(ctr, kind, now);
        }
    }

    /// Whether `generation` is `ctr`'s current run, and it runs.
    fn current(&self, ctr: Ctr, generation: u64) -> bool {
        let slot = &self.slots[ctr];
        slot.generation == generation && matches!(slot.run, Run::Running { .. })
    }

    fn probe_due(&mut self, ctr: Ctr, kind: ProbeKind, generation: u64, now: Now) {
        if self.stopping() {
            return;
        }
        let slot = &mut self.slots[ctr];
        if slot.generation != generation
            || !matches!(slot.run, Run::Running { .. })
            || (kind != ProbeKind::Startup && !slot.probes_started)
        {
            return;
        }
        let w = &mut slot.workers[kind as usize];
        if w.hold || w.in_flight {
            return;
        }
        w.in_flight = true;
        w.launched = Some(now.mono);
        w.seq += 1;
        let run = ProbeRun {
            ctr,
            kind,
            generation,
            run: w.seq,
        };
        let timeout = self.probes[ctr].get(kind).map_or(Duration::ZERO, |p| {
            Duration::from_secs(p.timeout_seconds.into())
        });
        self.out.push(Command::Probe(run));
        self.out.push(Command::Arm {
            at: teardown::far_after(now.mono, timeout + PROBE_SLACK),
            timer: Timer::ProbeLost(run),
        });
    }

    /// A probe run that had no result (or never answered): nothing counts, the
    /// next run comes at its time (worker.go: "Prober error, throw away the
    /// result").
    fn probe_without_result(&mut self, run: ProbeRun, why: &str, now: Now) {
        let ProbeRun {
            ctr,
            kind,
            generation,
            ..
        } = run;
        let Some(period) = self.probes[ctr].get(kind).map(|p| p.period_seconds) else {
            return;
        };
        if self.stopping() || !self.current(ctr, generation) {
            return;
        }
        let w = &mut self.slots[ctr].workers[kind as usize];
        if !w.in_flight || w.seq != run.run {
            return;
        }
        w.in_flight = false;
        let launched = w.launched;
        let message = format!("{} probe errored: {why}", kind.title());
        tracing::warn!("{:?}: {message}", self.name(ctr));
        self.event(true, "Unhealthy", Some(ctr), message);
        self.arm_next_run(ctr, kind, generation, launched, period, now);
    }

    /// The probe's next run: a period after the last one began, or now if that
    /// is past.
    fn arm_next_run(
        &mut self,
        ctr: Ctr,
        kind: ProbeKind,
        generation: u64,
        launched: Option<Instant>,
        period: u32,
        now: Now,
    ) {
        let next = teardown::far_after(
            launched.unwrap_or(now.mono),
            Duration::from_secs(period.into()),
        );
        self.out.push(Command::Arm {
            at: next.max(now.mono),
            timer: Timer::Probe {
                ctr,
                kind,
                generation,
            },
        });
    }

    fn on_probed(&mut self, run: ProbeRun, result: ProbeResult, now: Now) {
        let ProbeRun {
            ctr,
            kind,
            generation,
            ..
        } = run;
        let Some(probe) = self.probes[ctr].get(kind).cloned() else {
            return;
        };
        if self.stopping() {
            return;
        }
        let slot = &mut self.slots[ctr];
        let current = slot.generation == generation && matches!(slot.run, Run::Running { .. });
        let w = &mut slot.workers[kind as usize];
        if !current || !w.in_flight || w.seq != run.run {
            return;
        }
        let ok = result.is_ok();
        let committed = w.record(ok, &probe);
        let launched = w.launched;
        let message = match &result {
            Ok(_) => String::new(),
            Err(e) => e.clone(),
        };
        if !ok {
            tracing::info!(
                "{:?}: {} probe failed: {message}",
                self.name(ctr),
                kind.title()
            );
            let text = format!("{} probe failed: {message}", kind.title());
            self.event(true, "Unhealthy", Some(ctr), text);
        }
        let at = rfc3339(now.wall);
        let record = crate::state::ProbeRecord {
            probe: kind,
            success: ok,
            message: message.clone(),
            since: at,
        };
        let changed = self.state.containers.get(ctr).is_none_or(|s| {
            s.probes
                .iter()
                .find(|r| r.probe == kind)
                .is_none_or(|r| (r.success, &r.message) != (ok, &message))
        });
        if changed {
            self.set_status(ctr, |s| {
                s.probes.retain(|r| r.probe != kind);
                s.probes.push(record);
                s.probes.sort_by_key(|r| r.probe);
            });
        }
        let mut again = true;
        match (kind, committed) {
            (ProbeKind::Startup, Some(true)) => {
                again = false;
                self.slots[ctr].workers[kind as usize].hold = true;
                self.startup_succeeded(ctr, now);
            }
            (ProbeKind::Startup | ProbeKind::Liveness, Some(false)) => {
                again = false;
                self.slots[ctr].workers[kind as usize].hold = true;
                self.probe_failed(ctr, kind, &message, &probe, now);
            }
            (ProbeKind::Readiness, Some(ready)) => {
                let ready = ready && self.slots[ctr].probes_started;
                self.set_status(ctr, |s| s.ready = ready);
            }
            _ => {}
        }
        if again {
            self.arm_next_run(ctr, kind, generation, launched, probe.period_seconds, now);
        }
    }

    fn startup_succeeded(&mut self, ctr: Ctr, now: Now) {
        self.slots[ctr].probes_started = true;
        let ready = self.probes[ctr].readiness.is_none();
        self.set_status(ctr, |s| {
            s.started = Some(true);
            s.ready = ready;
        });
        self.arm_after_startup(ctr, now);
        if self.phase == Phase::Init(ctr) && self.kinds[ctr] == ContainerKind::Sidecar {
            self.next_init(ctr + 1, now);
        }
    }

    /// A liveness or startup probe failed: the container is killed (its stop
    /// signal, SIGKILL after the grace period) and restarted under its policy,
    /// as the kubelet does ("Container ... failed liveness probe, will be
    /// restarted").
    fn probe_failed(&mut self, ctr: Ctr, kind: ProbeKind, why: &str, probe: &Probe, now: Now) {
        let message = format!("{} probe failed: {why}", kind.title());
        tracing::warn!("{:?}: {message}; stopping it", self.name(ctr));
        let killing = format!(
            "Container {} failed {} probe, will be restarted",
            self.name(ctr),
            kind.title().to_lowercase()
        );
        self.event(false, "Killing", Some(ctr), killing);
        // The probe's own grace period (KEP-2238), else the pod's; never less
        // than the kubelet's minimum of 2 s (minimumGracePeriodInSeconds).
        let grace = probe
            .termination_grace_period_seconds
            .map(Duration::from_secs)
            .unwrap_or(self.grace)
            .max(teardown::MIN_GRACE);
        self.kill_for(ctr, message, grace, now);
    }

    /// New resources are in the status; a running container whose resize needs a
    /// restart is stopped (its stop signal, the pod's grace) and started again.
    fn on_resized(
        &mut self,
        resources: Vec<Option<crate::run_plan::PlanResources>>,
        restart: Vec<Ctr>,
        now: Now,
    ) {
        for (ctr, r) in resources.into_iter().enumerate().take(self.kinds.len()) {
            self.set_status(ctr, |s| s.resources = r);
        }
        if self.stopping() {
            return;
        }
        for ctr in restart {
            // Not running (its next start takes the new values), or already being
            // killed (a failed probe or hook: that restart takes them too).
            if ctr >= self.kinds.len()
                || !matches!(self.slots[ctr].run, Run::Running { .. })
                || self.slots[ctr].kill_reason.is_some()
            {
                continue;
            }
            let message = format!("Container {} resize requires restart", self.name(ctr));
            self.event(false, "Killing", Some(ctr), message.clone());
            self.slots[ctr].resize_restart = true;
            self.kill_for(ctr, message, self.grace.max(teardown::MIN_GRACE), now);
        }
    }

    /// The terminated state's message, as the kubelet finds it: the file at the
    /// container's `terminationMessagePath` first; else why podshim stopped it;
    /// else, under `FallbackToLogsOnError` for a run that failed, its log's end.
    fn termination_message(
        &self,
        ctr: Ctr,
        exit: &Exit,
        killed_for: Option<String>,
        logs: &dyn Logs,
    ) -> Option<String> {
        if self.kinds[ctr] == ContainerKind::Infra {
            return killed_for;
        }
        let written = logs.termination_message(ctr);
        if !written.is_empty() {
            return Some(written);
        }
        if killed_for.is_some() {
            return killed_for;
        }
        let failed = exit.code != 0 || exit.oom_killed;
        if failed && self.message_policies[ctr] == TerminationMessagePolicy::FallbackToLogsOnError {
            let lines = logs.last_lines(ctr, self.slots[ctr].restarts, FALLBACK_LINES);
            let mut start = lines.len().saturating_sub(FALLBACK_BYTES);
            while !lines.is_char_boundary(start) {
                start += 1;
            }
            let tail = &lines[start..];
            return (!tail.is_empty()).then(|| tail.to_string());
        }
        None
    }

    fn failure_message(&self, ctr: Ctr, exit: &Exit, logs: &dyn Logs) -> String {
        let mut msg = format!(
            "{} container {:?} exited with code {}",
            self.kinds[ctr].as_str(),
            self.name(ctr),
            exit.code
        );
        let lines = logs.last_lines(ctr, self.slots[ctr].restarts, 10);
        if !lines.trim().is_empty() {
            msg.push_str("; its last log lines:\n");
            msg.push_str(lines.trim_end());
        }
        msg
    }

    fn arm_volume_check(&mut self, now: Now) {
        if !self.volume_limits.is_empty() {
            self.out.push(Command::Arm {
                at: now.mono + self.timing.volume_check,
                timer: Timer::VolumeCheck,
            });
        }
    }

    /// The eviction manager's `emptyDirLimitEviction`: a disk-backed emptyDir
    /// holding more than its `sizeLimit` evicts the pod (Failed, reason
    /// Evicted), its containers stopped at once
    /// (`immediateEvictionGracePeriodSeconds`, which the runtime's 2 s minimum
    /// raises) and never restarted, whatever the restart policy. One the walk
    /// cannot bound (a tree past its depth or entries) is taken as over its
    /// limit: otherwise a container could opt out of it.
    fn on_volumes_measured(&mut self, usage: Vec<VolumeUsage>, now: Now) {
        if self.ending() {
            return;
        }
        let mut over = None;
        for (v, used) in self.volume_limits.iter().zip(&usage) {
            let why = match used {
                VolumeUsage::Bytes(b) if *b > v.bytes => {
                    // The kubelet's emptyDirMessageFmt, its trailing space included.
                    format!(
                        "Usage of EmptyDir volume {:?} exceeds the limit {:?}. ",
                        v.name, v.written
                    )
                }
                VolumeUsage::Unbounded(why) => format!(
                    "Usage of EmptyDir volume {:?} could not be measured ({why}): taken to exceed the limit {:?}. ",
                    v.name, v.written
                ),
                VolumeUsage::Unknown(e) => {
                    // The kubelet logs a failed measurement and tries again.
                    tracing::warn!("emptyDir volume {:?}: {e}", v.name);
                    continue;
                }
                VolumeUsage::Bytes(_) => continue,
            };
            over = Some(why);
            break;
        }
        match over {
            Some(message) => {
                self.grace = teardown::MIN_GRACE;
                self.end_pod("Evicted", message, now);
            }
            None => self.arm_volume_check(now),
        }
    }

    /// Whether the pod is being stopped for good (an in-place restart is not).
    fn ending(&self) -> bool {
        match &self.phase {
            Phase::Stopping { cause, .. } => !matches!(cause, Cause::RestartAll(_)),
            Phase::Done => true,
            _ => false,
        }
    }

    /// The kubelet ends the pod (its active deadline, an eviction): Failed with
    /// `reason`, a warning event of that reason, and its containers stopped
    /// with the grace as it is, whatever `up --keep` says (which keeps a pod
    /// that failed to start). A stop under way for an in-place restart
    /// becomes the pod's end (the infra last).
    fn end_pod(&mut self, reason: &str, message: String, now: Now) {
        if let Phase::Stopping { steps, cause, .. } = &mut self.phase {
            if !matches!(cause, Cause::RestartAll(_)) {
                return;
            }
            *cause = Cause::Failed(message.clone());
            steps.push(vec![0]);
            self.restarting_all = Some(false);
        } else if self.stopping() {
            return;
        }
        tracing::warn!("{message}");
        self.state.reason = Some(reason.into());
        self.event(true, reason, None, message.clone());
        self.state.phase = PodPhase::Failed;
        self.state.message = Some(message.clone());
        self.out.push(Command::Publish);
        self.stop(Cause::Failed(message), now);
    }

    fn fail(&mut self, message: String, now: Now) {
        self.state.phase = PodPhase::Failed;
        self.state.message = Some(message.clone());
        self.out.push(Command::Publish);
        if self.keep_on_failure && !self.started {
            // `up --keep` leaves a pod that failed to start as it is, for debugging.
            self.phase = Phase::Done;
            self.out.push(Command::Finish(Outcome::Failed(message)));
            return;
        }
        self.stop(Cause::Failed(message), now);
    }

    fn on_timer(&mut self, timer: Timer, now: Now) {
        match timer {
            Timer::Restart { ctr, generation } => {
                let slot = &self.slots[ctr];
                if slot.run != Run::BackOff || slot.generation != generation || self.stopping() {
                    return;
                }
                // No (re)start once the infra is gone: the pid its bundles name may
                // already be reused.
                if !matches!(self.slots[0].run, Run::Running { .. }) {
                    return;
                }
                self.run(ctr);
            }
            Timer::Grace { epoch, step } => {
                let Some(running) = self.running_in(epoch, step) else {
                    return;
                };
                if let Phase::Stopping { expired, .. } = &mut self.phase {
                    // A shortened stop re-armed this step: killed once is enough.
                    if *expired {
                        return;
                    }
                    *expired = true;
                }
                // The stop signal was not enough: SIGKILL to every process of those
                // still running, as the kubelet's final kill (after a preStop
                // hook, at least 2 s after the stop signal).
                for ctr in running {
                    self.grace_over(ctr, now);
                }
                self.out.push(Command::Arm {
                    at: now.mono + teardown::AFTER_KILL,
                    timer: Timer::Kill {
                        epoch: self.stop_epoch,
                        step,
                    },
                });
            }
            Timer::Kill { epoch, step } => {
                let Some(running) = self.running_in(epoch, step) else {
                    return;
                };
                // Not one killed since (it started late): its own Kill timer comes.
                let stuck = running.into_iter().filter(|&c| {
                    self.slots[c].killed.is_some_and(|at| {
                        now.mono.saturating_duration_since(at) >= teardown::AFTER_KILL
                    })
                });
                for ctr in stuck.collect::<Vec<_>>() {
                    tracing::warn!(
                        "{:?} did not exit after SIGKILL: deleting it",
                        self.name(ctr)
                    );
                    self.out.push(Command::Remove { ctr });
                    self.slots[ctr].run = Run::Idle;
                }
                self.step_progress(now);
            }
            Timer::Probe {
                ctr,
                kind,
                generation,
            } => self.probe_due(ctr, kind, generation, now),
            Timer::ProbeLost(run) => {
                self.probe_without_result(run, "no answer within its timeout", now)
            }
            Timer::GraceOver { ctr, generation } => {
                if self.current(ctr, generation) && !self.stopping() {
                    self.grace_over(ctr, now);
                }
            }
            Timer::HookSlept {
                ctr,
                hook,
                generation,
            } => self.on_hooked(ctr, hook, generation, Ok(()), now),
            Timer::RestartAll => self.restart_all_go(now),
            Timer::Deadline => {
                // The kubelet's active deadline handler: the pod fails, its
                // containers are stopped with the pod's grace period.
                let message = "Pod was active on the node longer than the specified deadline";
                self.end_pod("DeadlineExceeded", message.to_string(), now);
            }
            Timer::VolumeCheck => {
                if !self.ending() {
                    self.out.push(Command::MeasureVolumes);
                }
            }
            Timer::KillOne { ctr, generation } => {
                if !self.current(ctr, generation) {
                    return;
                }
                self.kill(ctr, now);
                if let Phase::Stopping { step, .. } = self.phase {
                    // Deleted anyway if even SIGKILL does not end it.
                    self.out.push(Command::Arm {
                        at: now.mono + teardown::AFTER_KILL,
                        timer: Timer::Kill {
                            epoch: self.stop_epoch,
                            step,
                        },
                    });
                }
            }
        }
    }

    /// The containers of stop step `step` that still run, if it is the current
    /// step of the current stop (a timer of an earlier step, or of an earlier
    /// stop such as an in-place restart's, is stale).
    fn running_in(&self, epoch: u64, step: usize) -> Option<Vec<Ctr>> {
        if epoch != self.stop_epoch {
            return None;
        }
        let Phase::Stopping {
            steps,
            step: current,
            ..
        } = &self.phase
        else {
            return None;
        };
        (*current == step).then(|| {
            steps[step]
                .iter()
                .copied()
                .filter(|&c| matches!(self.slots[c].run, Run::Running { .. }))
                .collect()
        })
    }

    /// Begins the teardown: the stop steps of [`teardown::plan`], one budget.
    fn stop(&mut self, cause: Cause, now: Now) {
        if matches!(self.phase, Phase::Stopping { .. } | Phase::Done) {
            return;
        }
        self.stop_epoch += 1;
        if self.state.phase != PodPhase::Failed && !matches!(cause, Cause::RestartAll(_)) {
            self.state.phase = PodPhase::Terminating;
        }
        self.out.push(Command::Publish);
        // The plan's order over this pod's containers; the rest of the teardown
        // (unmounts, files) is the event loop's once everything is stopped.
        let keep_infra = matches!(cause, Cause::RestartAll(_));
        if keep_infra {
            self.restarting_all = Some(true);
        }
        // KEP-5532: an in-place restart terminates fast: all at once, no
        // preStop hook, no grace period (SIGKILL in `begin_step`).
        let all_but_infra: Vec<Ctr> = (1..self.kinds.len()).collect();
        let steps: Vec<Vec<Ctr>> = if keep_infra {
            vec![all_but_infra]
        } else {
            teardown::stop_order(&self.kinds)
                .into_iter()
                .filter_map(|s| match s {
                    Step::Stop(ctrs) => Some(ctrs),
                    _ => None,
                })
                .collect()
        };
        self.phase = Phase::Stopping {
            steps,
            step: 0,
            budget: Budget::new(now.mono, self.grace),
            expired: false,
            cause,
        };
        self.begin_step(now);
    }

    /// A second stop request with a shorter grace period while stopping: the
    /// rest of the stop, the current step included, gets what is left of it.
    fn shorten_stop(&mut self, grace: Duration, now: Now) {
        let Phase::Stopping {
            step,
            budget,
            expired,
            ..
        } = &mut self.phase
        else {
            return;
        };
        if !budget.shorten(now.mono, grace) || *expired {
            return;
        }
        let (step, left) = (*step, budget.for_step(now.mono));
        self.out.push(Command::Arm {
            at: teardown::far_after(now.mono, left),
            timer: Timer::Grace {
                epoch: self.stop_epoch,
                step,
            },
        });
    }

    fn begin_step(&mut self, now: Now) {
        let Phase::Stopping {
            steps,
            step,
            budget,
            expired,
            cause,
        } = &mut self.phase
        else {
            return;
        };
        // An in-place restart kills at once (its step counts as expired, so
        // that a container that starts late is killed too).
        let fast = matches!(cause, Cause::RestartAll(_));
        *expired = fast;
        let (ctrs, step, grace) = (steps[*step].clone(), *step, budget.for_step(now.mono));
        for ctr in ctrs {
            self.slots[ctr].signalled = false;
            match self.slots[ctr].run {
                Run::Running { .. } if fast => self.kill(ctr, now),
                Run::Running { .. } => self.begin_kill(ctr, now),
                // Its start finishes first; then it is signalled (on_started).
                Run::Starting => {}
                Run::Exited => {
                    self.out.push(Command::Remove { ctr });
                    self.slots[ctr].run = Run::Idle;
                }
                Run::BackOff | Run::Idle => self.slots[ctr].run = Run::Idle,
            }
        }
        let epoch = self.stop_epoch;
        self.out.push(if fast {
            // Deleted anyway if even SIGKILL does not end them.
            Command::Arm {
                at: teardown::far_after(now.mono, teardown::AFTER_KILL),
                timer: Timer::Kill { epoch, step },
            }
        } else {
            Command::Arm {
                at: teardown::far_after(now.mono, grace),
                timer: Timer::Grace { epoch, step },
            }
        });
        self.step_progress(now);
    }

    /// SIGKILL to every process of `ctr`, as the kubelet's final kill.
    fn kill(&mut self, ctr: Ctr, now: Now) {
        let slot = &mut self.slots[ctr];
        slot.signalled = true;
        slot.killed = Some(now.mono);
        self.out.push(Command::Signal {
            ctr,
            signal: Signal::KILL,
            all: true,
        });
    }

    fn signal_stop(&mut self, ctr: Ctr) {
        self.slots[ctr].signalled = true;
        self.out.push(Command::Signal {
            ctr,
            signal: self.stop_signals[ctr],
            all: false,
        });
    }

    /// A container that started during the teardown is stopped when its step
    /// comes, or at once if its step is the current one; killed at once if that
    /// step's grace is already over (its Grace timer will not fire again), with
    /// a Kill timer of its own for a process that ignores even SIGKILL.
    fn signal_if_in_step(&mut self, ctr: Ctr, now: Now) {
        let Phase::Stopping {
            steps,
            step,
            expired,
            ..
        } = &self.phase
        else {
            return;
        };
        let (step, expired) = (*step, *expired);
        let pos = steps.iter().position(|s| s.contains(&ctr));
        if pos.is_some_and(|p| p <= step) {
            if expired {
                self.kill(ctr, now);
                self.out.push(Command::Arm {
                    at: now.mono + teardown::AFTER_KILL,
                    timer: Timer::Kill {
                        epoch: self.stop_epoch,
                        step,
                    },
                });
            } else {
                self.begin_kill(ctr, now);
            }
        }
        self.step_progress(now);
    }

    /// Everything but the infra stopped for an in-place restart: every
    /// container's run counts as a restart, and the pod starts again from its
    /// first init container once `trigger`'s back-off is over. Without its
    /// infra it cannot: it fails.
    fn restart_all(&mut self, trigger: Ctr, now: Now) {
        if !matches!(self.slots[0].run, Run::Running { .. }) {
            // Failed at once, not after the back-off (restart_all_go says why).
            self.phase = Phase::RestartWait;
            return self.restart_all_go(now);
        }
        for ctr in 1..self.slots.len() {
            // A run that ran (or ended) since the last count is one more restart;
            // one already counted by its back-off is not counted again.
            let ran = self.state.containers.get(ctr).is_some_and(|s| {
                matches!(
                    s.state,
                    ContainerState::Running { .. } | ContainerState::Terminated { .. }
                )
            });
            let slot = &mut self.slots[ctr];
            slot.run = Run::Idle;
            slot.done = false;
            slot.generation += 1;
            slot.run_started = None;
            if ran {
                slot.restarts += 1;
            }
            self.set_status(ctr, |s| {
                if ran {
                    s.last_state = Some(s.state.clone());
                    s.restart_count += 1;
                }
                s.state = ContainerState::Waiting {
                    reason: "PodInitializing".into(),
                };
                s.ready = false;
                s.started = s.started.map(|_| false);
            });
        }
        self.initialized = false;
        self.state.phase = if self.started {
            PodPhase::Running
        } else {
            PodPhase::Pending
        };
        // The restart waits for the back-off of the container that asked for it,
        // as any restart of it would (first at once, then 10 s doubling).
        let delay = {
            let slot = &mut self.slots[trigger];
            let finished = slot.finished.unwrap_or(now.mono);
            let delay = slot.backoff.delay(finished, now.mono);
            slot.backoff.restarted(finished, now.mono);
            delay
        };
        self.phase = Phase::RestartWait;
        if delay.is_zero() {
            return self.restart_all_go(now);
        }
        let message = format!(
            "Back-off restarting all containers after container {} in pod {}_{}({})",
            self.names[trigger], self.state.name, self.state.namespace, self.state.uid
        );
        self.event(true, "BackOff", Some(trigger), message);
        self.out.push(Command::Arm {
            at: teardown::far_after(now.mono, delay),
            timer: Timer::RestartAll,
        });
    }

    /// The in-place restart's back-off is over: from the first init container
    /// again, if the infra still runs.
    fn restart_all_go(&mut self, now: Now) {
        if self.phase != Phase::RestartWait {
            return;
        }
        if !matches!(self.slots[0].run, Run::Running { .. }) {
            self.restarting_all = Some(false);
            return self.fail("infra container exited while the pod restarted".into(), now);
        }
        self.event(
            false,
            "Started",
            None,
            "Restarting all containers in place".into(),
        );
        self.next_init(1, now);
    }

    /// Moves to the next step once nothing of the current one runs or starts;
    /// after the last, the pod is done.
    fn step_progress(&mut self, now: Now) {
        let Phase::Stopping { steps, step, .. } = &mut self.phase else {
            return;
        };
        let busy = steps[*step]
            .iter()
            .any(|&c| matches!(self.slots[c].run, Run::Running { .. } | Run::Starting));
        if busy {
            return;
        }
        if *step + 1 < steps.len() {
            *step += 1;
            // A step with nothing to wait on comes back here at once.
            return self.begin_step(now);
        }
        if let Phase::Stopping {
            cause: Cause::RestartAll(trigger),
            ..
        } = &self.phase
        {
            let trigger = *trigger;
            return self.restart_all(trigger, now);
        }
        let Phase::Stopping { cause, .. } = std::mem::replace(&mut self.phase, Phase::Done) else {
            unreachable!("matched above");
        };
        let outcome = match cause {
            Cause::Requested => Outcome::Stopped,
            Cause::RestartAll(_) => unreachable!("handled above"),
            Cause::Completed(phase) => {
                self.state.phase = phase;
                Outcome::Completed(phase)
            }
            Cause::Failed(message) => {
                self.state.phase = PodPhase::Failed;
                Outcome::Failed(message)
            }
        };
        self.out.push(Command::Publish);
        self.out.push(Command::Finish(outcome));
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
