//! The supervisor's event loop: one thread, one `poll(2)` over a signalfd (SIGCHLD
//! and the stop signals) and the containers' log pipes, and a timer heap. Every
//! event becomes one [`Input`] for the [`Core`]; every [`Command`] it returns is
//! carried out here. No thread per container, no lock, no periodic poll.
//!
//! It is the only waiter of its children (ARCHITECTURE.md rule 3): the subreaper,
//! calling `waitpid(-1)` when SIGCHLD says so, routing each exit by pid to the
//! runtime call or container it belongs to. An exit can be reaped before the pid
//! file naming it is read (a container that exits at once): it waits in
//! `unclaimed` for a short while. Runtime verbs are started without waiting, so a
//! pod's containers start, stop and go in parallel without a thread.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal as NixSignal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::core::{
    Command, Core, Ctr, Exit, Input, Logs, Now, Outcome, ProbeRun, StartError, Timer,
};
use super::oom::OomCounter;
use super::serial::{Op, Serial};
use crate::bundle::{self, Mounter, SystemMounter, is_mount_point};
use crate::logs::{self, LogWriter, RotateLimits, Stream, StreamPump};
use crate::model::{ContainerKind, Hook, HookKind, ProbeAction};
use crate::run_plan::{RunContainer, RunPlan, SetupStep};
use crate::runtime::{CliRuntime, CreateOptions, OciRuntime, PendingRun, Stdio3};

/// Where the loop reads the time (a trait so that tests and the core agree on
/// what "now" is).
pub trait Clock {
    fn now(&self) -> Now;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        Now {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// How long an exit nobody claimed is kept: pid files are read within
/// milliseconds; older entries are orphans (e.g. of a hostPID container) whose pid
/// may be reused, and must not be handed to a new process.
const UNCLAIMED_TTL: Duration = Duration::from_secs(30);

/// How long the loop waits for runtime calls still under way once the pod is done.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Exits reaped before anyone claimed their pid: a container's init that exits
/// before the pid file naming it was read waits here for its `run` call to end.
#[derive(Default)]
struct Unclaimed(HashMap<i32, (Exit, Instant)>);

impl Unclaimed {
    fn insert(&mut self, pid: i32, exit: Exit, at: Instant) {
        self.0
            .retain(|_, (_, t)| at.saturating_duration_since(*t) < UNCLAIMED_TTL);
        self.0.insert(pid, (exit, at));
    }

    /// The exit of `pid` for a run spawned at `spawned`: one reaped before then
    /// was an earlier process's, whose pid the kernel has given again; one older
    /// than the TTL is an orphan's.
    fn take(&mut self, pid: i32, spawned: Instant, now: Instant) -> Option<Exit> {
        match self.0.remove(&pid) {
            Some((exit, at))
                if at >= spawned && now.saturating_duration_since(at) < UNCLAIMED_TTL =>
            {
                Some(exit)
            }
            _ => None,
        }
    }
}

/// How often a delete that met a torn state file ([`Serial`]'s module doc) is
/// run again.
const TORN_DELETES: u32 = 5;

/// What a runtime process is doing for the pod.
enum Call {
    /// `run --detach` of a container: its pid file names the container's init.
    Start {
        ctr: Ctr,
        pending: PendingRun,
        pid_file: PathBuf,
        /// When it was spawned: the container's init cannot have exited before.
        spawned: Instant,
    },
    /// `kill` or `delete`: only its failure is worth a line in the log.
    Other {
        ctr: Ctr,
        pending: PendingRun,
        delete: bool,
    },
    /// `exec` of an exec probe's or hook's command.
    Exec {
        ctr: Ctr,
        purpose: ExecFor,
        generation: u64,
        pending: PendingRun,
        /// Where the runtime writes the command's host pid.
        pid_file: PathBuf,
        command: Vec<String>,
        /// Its timeout passed and it was killed.
        timed_out: bool,
        /// This exec's number: its pid file's name and its deadline's key.
        serial: u64,
    },
}

/// What an `exec` (or a network thread) in a container is for: its result goes
/// back as that input.
#[derive(Debug, Clone, Copy)]
enum ExecFor {
    Probe(ProbeRun),
    Hook(HookKind),
}

impl ExecFor {
    fn name(self) -> String {
        match self {
            ExecFor::Probe(r) => format!("probe-{}", r.kind.title().to_lowercase()),
            ExecFor::Hook(h) => format!("hook-{}", h.title().to_lowercase()),
        }
    }

    /// A result: success or failure.
    fn input(self, ctr: Ctr, generation: u64, result: Result<String, String>) -> Input {
        match self {
            ExecFor::Probe(probe) => Input::Probed { probe, result },
            ExecFor::Hook(hook) => Input::Hooked {
                ctr,
                hook,
                generation,
                result: result.map(|_| ()),
            },
        }
    }

    /// No result at all: a probe's run is thrown away, a hook failed.
    fn errored(self, ctr: Ctr, generation: u64, message: String) -> Input {
        match self {
            ExecFor::Probe(probe) => Input::ProbeErrored { probe, message },
            ExecFor::Hook(_) => self.input(ctr, generation, Err(message)),
        }
    }
}

/// What an exec probe printed, read as it comes so that a chatty command does
/// not block on a full pipe; kept up to [`PROBE_OUTPUT`].
struct ProbeOutput {
    fd: OwnedFd,
    buf: Vec<u8>,
}

/// The kubelet keeps at most 10 KiB of a probe's output (`maxReadLength`).
const PROBE_OUTPUT: usize = 10 * 1024;

/// One stream of one container run, read as it comes.
struct Pump {
    ctr: Ctr,
    /// What it carries (a terminal's is stdout), for attach clients.
    stream: Stream,
    fd: OwnedFd,
    pump: StreamPump,
    writer: Arc<LogWriter>,
}

/// What the loop holds.
pub struct Driver<'a> {
    core: Core,
    plan: RunPlan,
    containers: Vec<RunContainer>,
    runtime: CliRuntime,
    pod_dir: PathBuf,
    log_dir: PathBuf,
    clock: &'a dyn Clock,
    signals: SignalFd,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    seq: u64,
    calls: HashMap<i32, Call>,
    inits: HashMap<i32, Ctr>,
    unclaimed: Unclaimed,
    /// Each container's current run's OOM counter, found when it started.
    oom: Vec<Option<OomCounter>>,
    /// A resize's pod cgroup, set when the first of these containers restarts.
    pending_cgroup: Option<(Vec<Ctr>, crate::translate::pod_cgroup::PodCgroup)>,
    /// Which containers this supervisor made in the runtime and has not deleted:
    /// nothing else is ever signalled or deleted.
    created: Vec<bool>,
    /// Which bundles were marked as this pod's (and given the infra's pid).
    claimed: Vec<bool>,
    /// A start (its restart number) waiting for a `delete` of the same container
    /// still under way: `run` would find the old container under the same id.
    deferred: Vec<Option<u32>>,
    /// One `kill` or `delete` at a time per container.
    serial: Serial,
    /// How often each container's current delete met a torn state file.
    torn_deletes: Vec<u32>,
    /// The infra's pid, once it runs.
    infra_pid: Option<i32>,
    pumps: Vec<Pump>,
    /// The pod's network namespace, which network probes enter (none: the
    /// host's, for a hostNetwork pod).
    netns: Option<Arc<OwnedFd>>,
    /// Network probes send their results from their threads, then wake the loop
    /// with a byte on `wake`.
    probe_tx: mpsc::Sender<Input>,
    probe_rx: mpsc::Receiver<Input>,
    wake_read: OwnedFd,
    wake_write: Arc<OwnedFd>,
    /// Exec probes' output, by their runtime process's pid.
    probe_outputs: HashMap<i32, ProbeOutput>,
    /// When each exec probe's time is up, by its runtime process's pid.
    probe_deadlines: BinaryHeap<Reverse<(Instant, i32, u64)>>,
    /// The number of the last exec started (see [`Call::Exec`]).
    exec_serial: u64,
    /// Set when a container's current run ends: a hook request of that run
    /// still waiting for an answer gives up.
    run_over: Vec<Arc<std::sync::atomic::AtomicBool>>,
    /// `podshim attach`'s hub of each container (none for the infra).
    hubs: Vec<Option<Arc<super::attach::Hub>>>,
    /// A `tty` container's terminal, sent by the runtime over its console
    /// socket to a thread of the start: (container, run, its master).
    console_tx: mpsc::Sender<(Ctr, u64, io::Result<OwnedFd>)>,
    console_rx: mpsc::Receiver<(Ctr, u64, io::Result<OwnedFd>)>,
    /// The start a `tty` container's terminal is awaited for (a serial of
    /// this supervisor's: a failed start's restart number is used again), and
    /// its log.
    console_runs: Vec<Option<(u64, Arc<LogWriter>)>>,
    console_serial: u64,
    /// Inputs produced while carrying out commands (a start that failed at once).
    inputs: VecDeque<Input>,
    outcome: Option<Outcome>,
}

/// The signals the loop takes through its signalfd: blocked for normal delivery.
pub fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [
        NixSignal::SIGCHLD,
        NixSignal::SIGTERM,
        NixSignal::SIGINT,
        NixSignal::SIGHUP,
        // `podshim resize`: read the new resources (never a stop).
        NixSignal::SIGUSR1,
    ] {
        set.add(sig);
    }
    set
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

pub(crate) fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let fd = fd.as_fd();
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(io::Error::from)?;
    Ok(())
}

impl Exit {
    fn from_status(status: WaitStatus) -> Option<(i32, Exit)> {
        match status {
            WaitStatus::Exited(pid, code) => Some((
                pid.as_raw(),
                Exit {
                    code,
                    signal: None,
                    oom_killed: false,
                },
            )),
            WaitStatus::Signaled(pid, sig, _) => Some((
                pid.as_raw(),
                Exit {
                    code: 128 + sig as i32,
                    signal: Some(sig as i32),
                    oom_killed: false,
                },
            )),
            _ => None,
        }
    }

    fn as_exit_status(&self) -> std::process::ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        match self.signal {
            Some(sig) => std::process::ExitStatus::from_raw(sig),
            None => std::process::ExitStatus::from_raw((self.code & 0xff) << 8),
        }
    }
}

/// The parent of process `pid` (`PPid:` in /proc/<pid>/status), if it exists.
fn parent_of(pid: i32) -> Option<i32> {
    let status =
        crate::fsutil::read_regular(Path::new(&format!("/proc/{pid}/status")), 64 * 1024).ok()?;
    String::from_utf8_lossy(&status)
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// How long the runtime has to send a container's terminal.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The first connection to `listener` within `timeout`.
fn accept_within(
    listener: &std::os::unix::net::UnixListener,
    timeout: Duration,
) -> io::Result<std::os::unix::net::UnixStream> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the runtime did not connect to the console socket",
                ));
            }
            Ok(_) => match listener.accept() {
                Ok((s, _)) => return Ok(s),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => return Err(e),
            },
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Empties `c`'s termination message file for a new run: opened without
/// following a link, and only if it is a regular file.
fn empty_termination_log(c: &RunContainer) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = crate::paths::termination_log_of(&c.bundle);
    match fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => {
            f.set_len(0).map_err(|e| format!("{}: {e}", path.display()))
        }
        Ok(_) => Err(format!("{}: not a regular file", path.display())),
        // Generated bundles of an older podshim may have none.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// What a container run left: its log, read back for failure messages, and its
/// termination message file.
struct LogTail<'a> {
    log_dir: &'a Path,
    containers: &'a [RunContainer],
}

impl Logs for LogTail<'_> {
    fn last_lines(&self, ctr: Ctr, restart: u32, lines: usize) -> String {
        let dir = self.log_dir.join(&self.containers[ctr].name);
        let path = logs::log_file(&dir, restart);
        let mut out = Vec::new();
        let opts = logs::ReadOptions {
            tail: Some(lines),
            ..Default::default()
        };
        let _ = logs::read_log(&path, &opts, &mut out, &|| true);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The container writes this file (bind-mounted at its
    /// terminationMessagePath): a regular file only, never through a link,
    /// and only its first 4096 bytes.
    fn termination_message(&self, ctr: Ctr) -> String {
        use std::io::Read;
        let path = crate::paths::termination_log_of(&self.containers[ctr].bundle);
        let Ok(file) = crate::fsutil::open_regular(&path) else {
            return String::new();
        };
        let mut out = Vec::new();
        let _ = file
            .take(super::core::MAX_TERMINATION_MESSAGE as u64)
            .read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl<'a> Driver<'a> {
    /// `signals` must already be blocked in this thread (and no other thread may
    /// exist that would take them).
    pub fn new(
        core: Core,
        plan: RunPlan,
        runtime: CliRuntime,
        pod_dir: PathBuf,
        log_dir: PathBuf,
        clock: &'a dyn Clock,
    ) -> io::Result<Driver<'a>> {
        let signals = SignalFd::with_flags(
            &signal_set(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let containers: Vec<RunContainer> = plan.all().cloned().collect();
        let n = containers.len();
        let (probe_tx, probe_rx) = mpsc::channel();
        let (console_tx, console_rx) = mpsc::channel();
        let hubs = containers
            .iter()
            .map(|c| {
                (c.kind != ContainerKind::Infra).then(|| {
                    super::attach::Hub::new(c.stdio.tty, c.stdio.stdin, c.stdio.stdin_once)
                })
            })
            .collect();
        let (wake_read, wake_write) = pipe()?;
        set_nonblocking(&wake_read)?;
        Ok(Driver {
            core,
            plan,
            containers,
            runtime,
            pod_dir,
            log_dir,
            clock,
            signals,
            timers: BinaryHeap::new(),
            seq: 0,
            calls: HashMap::new(),
            inits: HashMap::new(),
            oom: vec![None; n],
            unclaimed: Unclaimed::default(),
            created: vec![false; n],
            pending_cgroup: None,
            claimed: vec![false; n],
            deferred: vec![None; n],
            serial: Serial::new(n),
            torn_deletes: vec![0; n],
            infra_pid: None,
            pumps: Vec::new(),
            netns: None,
            probe_tx,
            probe_rx,
            wake_read,
            wake_write: Arc::new(wake_write),
            probe_outputs: HashMap::new(),
            probe_deadlines: BinaryHeap::new(),
            exec_serial: 0,
            run_over: (0..n)
                .map(|_| Arc::new(std::sync::atomic::AtomicBool::new(false)))
                .collect(),
            hubs,
            console_tx,
            console_rx,
            console_runs: vec![None; n],
            console_serial: 0,
            inputs: VecDeque::new(),
            outcome: None,
        })
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Runs the pod until the core finishes; returns how it ended. `on_report`
    /// is called when the app containers run.
    pub fn run(&mut self, on_started: &mut dyn FnMut()) -> Outcome {
        let dir = crate::attach::dir(&self.pod_dir);
        for (c, hub) in self.containers.iter().zip(&self.hubs) {
            let Some(hub) = hub else { continue };
            if let Err(e) = crate::attach::bind(&dir, &c.name).and_then(|l| hub.serve(l)) {
                tracing::error!("attach {:?}: {e}", c.name);
            }
        }
        let now = self.clock.now();
        let commands = self.core.start(now);
        self.execute(commands, on_started);
        while self.outcome.is_none() {
            self.turn(on_started);
        }
        self.drain();
        self.outcome.take().unwrap_or(Outcome::Stopped)
    }

    /// One turn of the loop: wait for an event or the next timer, handle it all.
    fn turn(&mut self, on_started: &mut dyn FnMut()) {
        let next_timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
        let next_deadline = self.probe_deadlines.peek().map(|Reverse((at, _, _))| *at);
        let timeout = [next_timer, next_deadline]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(Instant::now()));
        let ready = self.wait(timeout);
        let now = self.clock.now();
        if ready.signals {
            self.take_signals();
        }
        for i in ready.pumps.into_iter().rev() {
            self.read_pump(i);
        }
        for pid in ready.probe_outputs {
            self.read_probe_output(pid);
        }
        if ready.wake {
            let mut buf = [0u8; 64];
            while matches!(nix::unistd::read(&self.wake_read, &mut buf), Ok(n) if n > 0) {}
            while let Ok(input) = self.probe_rx.try_recv() {
                self.inputs.push_back(input);
            }
            while let Ok((ctr, serial, master)) = self.console_rx.try_recv() {
                self.take_console(ctr, serial, master);
            }
        }
        while let Some(Reverse((at, pid, serial))) = self.probe_deadlines.peek().copied() {
            if at > now.mono {
                break;
            }
            self.probe_deadlines.pop();
            self.probe_timed_out(pid, serial);
        }
        while let Some(Reverse((at, _, _))) = self.timers.peek().copied() {
            if at > now.mono {
                break;
            }
            let Reverse((_, _, timer)) = self.timers.pop().expect("peeked");
            self.inputs.push_back(Input::Timer(timer));
        }
        self.feed(on_started);
    }

    fn feed(&mut self, on_started: &mut dyn FnMut()) {
        while let Some(input) = self.inputs.pop_front() {
            if self.outcome.is_some() {
                return;
            }
            if let Input::Started {
                ctr,
                result: Err(_),
            } = &input
            {
                self.console_runs[*ctr] = None;
            }
            if let Input::Exited { ctr, .. } = input {
                // Its last words are in the pipe already: into the log first, so a
                // failure message can quote them.
                self.drain_pumps_of(ctr);
                // A hook request of the run that ended is waited for no more.
                self.run_over[ctr].store(true, std::sync::atomic::Ordering::SeqCst);
                if let Some(hub) = &self.hubs[ctr] {
                    hub.clear();
                }
                // A terminal that comes after its run is not taken.
                self.console_runs[ctr] = None;
            }
            let now = self.clock.now();
            let tail = LogTail {
                log_dir: &self.log_dir,
                containers: &self.containers,
            };
            let commands = self.core.handle(input, now, &tail);
            self.execute(commands, on_started);
        }
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Ready {
        let timeout = match timeout {
            None => PollTimeout::NONE,
            Some(d) => {
                // Round up: a timer due in 0.4 ms must not spin.
                let ms = d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.wake_read.as_fd(), PollFlags::POLLIN),
        ];
        for p in &self.pumps {
            fds.push(PollFd::new(p.fd.as_fd(), PollFlags::POLLIN));
        }
        let outputs: Vec<i32> = self.probe_outputs.keys().copied().collect();
        for pid in &outputs {
            fds.push(PollFd::new(
                self.probe_outputs[pid].fd.as_fd(),
                PollFlags::POLLIN,
            ));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ready::default(),
            Err(e) => {
                tracing::error!("poll: {e}");
                std::thread::sleep(Duration::from_millis(10));
                return Ready::default();
            }
        }
        let hit = |f: &PollFd| {
            f.revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let pumps_end = 2 + self.pumps.len();
        Ready {
            signals: hit(&fds[0]),
            wake: hit(&fds[1]),
            pumps: (2..pumps_end)
                .filter(|&i| hit(&fds[i]))
                .map(|i| i - 2)
                .collect(),
            probe_outputs: (pumps_end..fds.len())
                .filter(|&i| hit(&fds[i]))
                .map(|i| outputs[i - pumps_end])
                .collect(),
        }
    }

    fn take_signals(&mut self) {
        let mut child = false;
        while let Ok(Some(info)) = self.signals.read_signal() {
            match info.ssi_signo as i32 {
                libc::SIGCHLD => child = true,
                libc::SIGUSR1 => self.take_resize(),
                sig => {
                    tracing::info!("signal {sig}: stopping the pod");
                    let grace = self.stop_grace();
                    self.inputs.push_back(Input::StopRequested { grace });
                }
            }
        }
        if child {
            self.reap();
        }
    }

    /// `podshim resize` rewrote the plan's resources and named, in the resize
    /// file, the containers to restart. The supervisor owns the bundles while it
    /// runs: it writes the new values into config.json, and for a restart sets
    /// the pod cgroup to them once the old run is gone; then the core. The file
    /// is taken by renaming it (a resize after that writes a new one), read
    /// bounded, and names only containers of the plan.
    fn take_resize(&mut self) {
        let file = crate::paths::resize_file(&self.pod_dir);
        let taken = file.with_extension("taken");
        let names = match fs::rename(&file, &taken) {
            Ok(()) => {
                let text = crate::fsutil::read_regular(&taken, 64 << 10)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let _ = fs::remove_file(&taken);
                text
            }
            Err(_) => String::new(),
        };
        let plan = match crate::run_plan::read(&self.plan.base) {
            Ok(plan) => plan,
            Err(e) => return tracing::error!("resize: {e}"),
        };
        let mut resources = Vec::new();
        for c in &mut self.containers {
            let new = plan.container(&c.name).and_then(|p| p.resources);
            if new != c.resources
                && let Some(r) = new
            {
                let edited = bundle::edit_config(c, |config| {
                    crate::translate::resources::set_cpu_memory(config, &r.model());
                    Ok(())
                });
                if let Err(e) = edited {
                    tracing::error!("resize of {:?}: {e}", c.name);
                    continue;
                }
                c.resources = new;
            }
            resources.push(c.resources);
        }
        let restart: Vec<Ctr> = names
            .lines()
            .filter_map(|n| self.containers.iter().position(|c| c.name == n.trim()))
            .filter(|&ctr| ctr != 0)
            .collect();
        if !restart.is_empty()
            && let Some(cg) = plan.cgroup()
        {
            self.pending_cgroup = Some((restart.clone(), cg.clone()));
        }
        self.inputs.push_back(Input::Resized { resources, restart });
    }

    /// Reaps every child that exited and routes its exit.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Ok(status) => {
                    if let Some((pid, exit)) = Exit::from_status(status) {
                        // Stamped when reaped, on the clock starts are stamped
                        // with: a start made while routing an earlier exit (a
                        // deferred restart) is older than what is reaped after it.
                        let now = self.clock.now();
                        self.route(pid, exit, now);
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::error!("waitpid: {e}");
                    break;
                }
            }
        }
    }

    fn route(&mut self, pid: i32, exit: Exit, now: Now) {
        if let Some(call) = self.calls.remove(&pid) {
            return self.call_done(call, exit, now);
        }
        if let Some(ctr) = self.inits.remove(&pid) {
            let exit = self.with_oom(ctr, exit);
            self.inputs.push_back(Input::Exited { ctr, exit });
            return;
        }
        self.unclaimed.insert(pid, exit, now.mono);
    }

    /// The grace period `down --grace-period` left for this stop, taken once.
    fn stop_grace(&self) -> Option<Duration> {
        let file = crate::paths::stop_grace_file(&self.pod_dir);
        let text = crate::fsutil::read_regular(&file, 32).ok()?;
        let _ = fs::remove_file(&file);
        let secs: u64 = std::str::from_utf8(&text).ok()?.trim().parse().ok()?;
        Some(Duration::from_secs(secs))
    }

    /// The OOM counter of a run known only by its id: in the cgroup its
    /// config.json names, under the pod's; a plan without a pod cgroup (older
    /// podshim) left the place to runc.
    fn oom_by_path(&self, id: &str) -> Option<OomCounter> {
        match self.plan.cgroup() {
            Some(cg) => OomCounter::of_cgroup_path(&cg.container(id)),
            None => OomCounter::of_own_child(id),
        }
    }

    /// The exit, marked OOM-killed when the run's cgroup counted a kill; read
    /// before the container (and its cgroup) is deleted.
    fn with_oom(&self, ctr: Ctr, exit: Exit) -> Exit {
        let oom_killed = self.oom[ctr].as_ref().is_some_and(OomCounter::killed);
        Exit { oom_killed, ..exit }
    }

    fn call_done(&mut self, call: Call, exit: Exit, now: Now) {
        match call {
            Call::Start {
                ctr,
                pending,
                pid_file,
                spawned,
            } => {
                let result = pending
                    .finish(exit.as_exit_status())
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        fs::read_to_string(&pid_file)
                            .ok()
                            .and_then(|s| s.trim().parse::<i32>().ok())
                            .ok_or_else(|| format!("{}: no pid after run", pid_file.display()))
                    });
                match result {
                    Ok(pid) => {
                        self.created[ctr] = true;
                        self.inputs.push_back(Input::Started {
                            ctr,
                            result: Ok(pid),
                        });
                        // Read while the process runs (a zombie's cgroup is `/`); a
                        // run already reaped (its pid may be another's by now) gets
                        // the runtime's default place.
                        let id = &self.containers[ctr].id;
                        match self.unclaimed.take(pid, spawned, now.mono) {
                            Some(exit) => {
                                self.oom[ctr] = self.oom_by_path(id);
                                let exit = self.with_oom(ctr, exit);
                                self.inputs.push_back(Input::Exited { ctr, exit })
                            }
                            None => {
                                self.oom[ctr] =
                                    OomCounter::of_process(pid).or_else(|| self.oom_by_path(id));
                                self.inits.insert(pid, ctr);
                            }
                        }
                    }
                    Err(e) => {
                        // A container half-made by this failed run is ours to delete;
                        // one that another pod or person holds under the id is not.
                        self.delete_if_ours(ctr);
                        self.inputs.push_back(Input::Started {
                            ctr,
                            result: Err(e.into()),
                        });
                    }
                }
            }
            Call::Exec {
                ctr,
                purpose,
                generation,
                pending,
                pid_file,
                command,
                timed_out,
                serial: _,
            } => {
                let pid = pending.pid;
                self.read_probe_output(pid);
                let output = self
                    .probe_outputs
                    .remove(&pid)
                    .map(|o| String::from_utf8_lossy(&o.buf).into_owned())
                    .unwrap_or_default();
                let _ = fs::remove_file(&pid_file);
                // The kubelet's exec prober: exit 0 is a success; otherwise the
                // command's output is the message ("command ... timed out" when
                // the timeout killed it).
                let command = command.join(" ");
                let failed = exit.code != 0 || exit.signal.is_some();
                // The runtime could not exec (the command is not there, the
                // container is going): no result, as the kubelet has none.
                let runtime_error = (!timed_out && failed)
                    .then(|| pending.runtime_error())
                    .flatten();
                let result = match runtime_error {
                    Some(e) => Err(e),
                    None if timed_out => Ok(Err(format!("command {command:?} timed out"))),
                    None if !failed => Ok(Ok(output)),
                    None if !output.trim().is_empty() => Ok(Err(output.trim_end().to_string())),
                    None => Ok(Err(format!(
                        "command {command:?} exited with code {}",
                        exit.code
                    ))),
                };
                // The kubelet's words for a failed exec hook, however it failed.
                let hook_failed = |e: String| {
                    format!(
                        "Exec lifecycle hook ([{command}]) for Container {:?} failed: {e}",
                        self.containers[ctr].name
                    )
                };
                let input = match (purpose, result) {
                    (ExecFor::Hook(_), Err(e) | Ok(Err(e))) => {
                        purpose.errored(ctr, generation, hook_failed(e))
                    }
                    (_, Err(e)) => purpose.errored(ctr, generation, e),
                    (_, Ok(r)) => purpose.input(ctr, generation, r),
                };
                self.inputs.push_back(input);
            }
            Call::Other {
                ctr,
                pending,
                delete,
            } => {
                let mut again = None;
                match pending.finish(exit.as_exit_status()) {
                    Err(e)
                        if delete && e.is_torn_state() && self.torn_deletes[ctr] < TORN_DELETES =>
                    {
                        self.torn_deletes[ctr] += 1;
                        tracing::debug!("{:?}: {e}; deleting again", self.containers[ctr].name);
                        again = Some(Op::Delete);
                    }
                    Err(e) if !e.is_not_found() && !e.is_not_running() => {
                        tracing::warn!("{:?}: {e}", self.containers[ctr].name);
                    }
                    _ => {}
                }
                if delete && again.is_none() {
                    self.torn_deletes[ctr] = 0;
                }
                if let Some(next) = self.serial.done(ctr, again) {
                    self.spawn_op(ctr, next);
                }
                if delete
                    && !self.deleting(ctr)
                    && let Some(restart) = self.deferred[ctr].take()
                {
                    self.start_deferred(ctr, restart);
                }
            }
        }
    }

    /// Whether a `delete` of `ctr` is under way or waits its turn (the one just
    /// reaped is no longer in `calls`).
    fn deleting(&self, ctr: Ctr) -> bool {
        self.serial.delete_queued(ctr)
            || self
                .calls
                .values()
                .any(|call| matches!(call, Call::Other { ctr: c, delete: true, .. } if *c == ctr))
    }

    /// A restart that waited for its previous run's delete. The pod may have
    /// begun stopping meanwhile (its infra gone: the namespaces the bundle names
    /// may be another process's by now): then it is not started, and the core is
    /// told so; once the pod is done, nothing is.
    fn start_deferred(&mut self, ctr: Ctr, restart: u32) {
        if self.core.is_done() {
            return;
        }
        if self.core.is_stopping() {
            self.inputs.push_back(Input::Started {
                ctr,
                result: Err("not started: the pod is stopping".into()),
            });
            return;
        }
        self.start(ctr, restart);
    }

    /// Deletes `ctr` only if the runtime's container of that id runs this pod's
    /// bundle (synchronously: only after a failed start).
    fn delete_if_ours(&mut self, ctr: Ctr) {
        let c = &self.containers[ctr];
        if let Ok(state) = self.runtime.state(&c.id)
            && state.bundle == c.bundle
        {
            let _ = self.runtime.delete(&c.id, true);
        }
    }

    fn execute(&mut self, commands: Vec<Command>, on_started: &mut dyn FnMut()) {
        for command in commands {
            match command {
                Command::Start { ctr, restart } => {
                    if self.deleting(ctr) {
                        self.deferred[ctr] = Some(restart);
                    } else {
                        self.start(ctr, restart);
                    }
                }
                Command::PrepareInfra { pid } => {
                    let result = self.prepare_infra(pid);
                    self.inputs.push_back(Input::InfraReady(result));
                }
                Command::Signal { ctr, signal, all } => {
                    if self.created[ctr] {
                        let signal = signal.runtime_arg();
                        self.submit(ctr, Op::Kill { signal, all });
                    }
                }
                Command::Remove { ctr } => {
                    if std::mem::take(&mut self.created[ctr]) {
                        self.submit(ctr, Op::Delete);
                    }
                }
                Command::Arm { at, timer } => {
                    self.seq += 1;
                    self.timers.push(Reverse((at, self.seq, timer)));
                }
                Command::Probe(run) => self.probe(run),
                Command::MeasureVolumes => self.measure_volumes(),
                Command::Hook {
                    ctr,
                    hook,
                    generation,
                } => self.hook(ctr, hook, generation),
                Command::Publish => {
                    if let Err(e) = crate::state::write(&self.pod_dir, self.core.state()) {
                        tracing::error!("{e}");
                    }
                }
                Command::ReportStarted => on_started(),
                Command::Finish(outcome) => self.outcome = Some(outcome),
            }
        }
        // Inputs made while carrying these out (a start that failed at once).
        if !self.inputs.is_empty() && self.outcome.is_none() {
            self.feed(on_started);
        }
    }

    /// Runs `op` now, or once the verb under way for `ctr` ends.
    fn submit(&mut self, ctr: Ctr, op: Op) {
        if let Some(op) = self.serial.submit(ctr, op) {
            self.spawn_op(ctr, op);
        }
    }

    fn spawn_op(&mut self, ctr: Ctr, op: Op) {
        let id = &self.containers[ctr].id;
        let (spawned, delete) = match &op {
            Op::Kill { signal, all } => (self.runtime.spawn_kill(id, signal, *all), false),
            Op::Delete => (self.runtime.spawn_delete(id), true),
        };
        match spawned {
            Ok(pending) => {
                self.calls.insert(
                    pending.pid,
                    Call::Other {
                        ctr,
                        pending,
                        delete,
                    },
                );
            }
            Err(e) => {
                tracing::warn!("{:?}: {e}", self.containers[ctr].name);
                if let Some(next) = self.serial.not_started(ctr) {
                    self.spawn_op(ctr, next);
                }
            }
        }
    }

    /// Runs one probe: an exec probe as a runtime `exec` this loop waits for, a
    /// network probe on a thread of its own in the pod's network namespace. Both
    /// answer with [`Input::Probed`] (or [`Input::ProbeErrored`]) within the
    /// probe's timeout.
    fn probe(&mut self, run: ProbeRun) {
        let Some(probe) = self.containers[run.ctr].probes.get(run.kind).cloned() else {
            return;
        };
        let timeout = Duration::from_secs(probe.timeout_seconds.max(1).into());
        let purpose = ExecFor::Probe(run);
        let (ctr, generation) = (run.ctr, run.generation);
        match probe.action {
            ProbeAction::Exec { command } => {
                self.exec_in(ctr, purpose, generation, command, Some(timeout))
            }
            action => self.on_thread(ctr, purpose, generation, move |netns, pod_ip| {
                crate::probe::run_network(netns, &action, pod_ip, timeout)
            }),
        }
    }

    /// Runs a hook: exec in the container (no timeout of its own, as the
    /// kubelet's: stopping the container ends it), httpGet from the host side
    /// (any answer is a success; only a failed request is not).
    fn hook(&mut self, ctr: Ctr, hook: HookKind, generation: u64) {
        let Some(h) = self.containers[ctr].hooks.get(hook).cloned() else {
            return;
        };
        let purpose = ExecFor::Hook(hook);
        // A preStop hook cannot outlast the grace period; a postStart request
        // that gets no answer is given up when the container's run ends.
        let timeout = match hook {
            HookKind::PreStop => {
                Duration::from_secs(self.plan.termination_grace_period_seconds.max(2))
            }
            HookKind::PostStart => crate::probe::NO_TIMEOUT,
        };
        let name = self.containers[ctr].name.clone();
        let cancel = Arc::clone(&self.run_over[ctr]);
        match h {
            Hook::Exec { command } => self.exec_in(ctr, purpose, generation, command, None),
            Hook::HttpGet(get) => self.on_thread(ctr, purpose, generation, move |netns, pod_ip| {
                crate::probe::run_hook(netns, &get, pod_ip, timeout, &cancel).map(|r| {
                    r.map_err(|e| {
                        format!(
                            "HTTP lifecycle hook ({}) for Container {name:?} failed: {e}",
                            get.path
                        )
                    })
                })
            }),
            // The core waits out a sleep itself.
            Hook::Sleep { .. } => {}
        }
    }

    /// Runs `f` on a thread of its own (given the pod's network namespace and
    /// the pod IP, the default host); its result comes back through the wake
    /// pipe. An `Err` of `f` is no result at all; so is a panic.
    fn on_thread(
        &mut self,
        ctr: Ctr,
        purpose: ExecFor,
        generation: u64,
        f: impl FnOnce(Option<&OwnedFd>, &str) -> Result<Result<String, String>, String>
        + Send
        + 'static,
    ) {
        let netns = self.netns.clone();
        let tx = self.probe_tx.clone();
        let wake = Arc::clone(&self.wake_write);
        // The kubelet's default host is the pod IP; a pod with only its
        // loopback is probed on 127.0.0.1.
        let pod_ip = self
            .core
            .state()
            .pod_ip
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into());
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{ctr}", purpose.name()))
            .spawn(move || {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    f(netns.as_deref(), &pod_ip)
                }));
                let input = match ran {
                    Ok(Ok(result)) => purpose.input(ctr, generation, result),
                    Ok(Err(e)) => purpose.errored(ctr, generation, e),
                    Err(_) => purpose.errored(ctr, generation, "the prober panicked".into()),
                };
                let _ = tx.send(input);
                let _ = nix::unistd::write(&*wake, &[1]);
            });
        if let Err(e) = spawned {
            let input = purpose.errored(ctr, generation, format!("start a thread: {e}"));
            self.inputs.push_back(input);
        }
    }

    /// Measures the emptyDirs with a `sizeLimit` on a thread of its own (a big
    /// tree takes a while to walk): each walk stops once past its limit.
    fn measure_volumes(&mut self) {
        use super::core::VolumeUsage;
        let limits = self.plan.volume_limits.clone();
        let n = limits.len();
        let tx = self.probe_tx.clone();
        let wake = Arc::clone(&self.wake_write);
        let all_unknown = move |why: String| {
            (0..n)
                .map(|_| VolumeUsage::Unknown(why.clone()))
                .collect::<Vec<_>>()
        };
        let measure = move || {
            limits
                .iter()
                .map(|v| match crate::disk_usage::disk_usage(&v.path, v.bytes) {
                    Ok(b) => VolumeUsage::Bytes(b),
                    Err(e @ crate::disk_usage::UsageError::Io { .. }) => {
                        VolumeUsage::Unknown(e.to_string())
                    }
                    Err(e) => VolumeUsage::Unbounded(e.to_string()),
                })
                .collect::<Vec<_>>()
        };
        let fallback = all_unknown;
        let spawned = std::thread::Builder::new()
            .name("volume-usage".into())
            .spawn(move || {
                let usage = std::panic::catch_unwind(std::panic::AssertUnwindSafe(measure))
                    .unwrap_or_else(|_| fallback("the walk panicked".into()));
                let _ = tx.send(Input::VolumesMeasured(usage));
                let _ = nix::unistd::write(&*wake, &[1]);
            });
        if let Err(e) = spawned {
            let failed = all_unknown(format!("start a thread: {e}"));
            self.inputs.push_back(Input::VolumesMeasured(failed));
        }
    }

    /// `exec` of `command` in `ctr`, waited for by this loop; with a timeout, its
    /// command is killed when that is up.
    fn exec_in(
        &mut self,
        ctr: Ctr,
        purpose: ExecFor,
        generation: u64,
        command: Vec<String>,
        timeout: Option<Duration>,
    ) {
        if let Err(e) = self.spawn_exec(ctr, purpose, generation, command, timeout) {
            self.inputs.push_back(purpose.errored(ctr, generation, e));
        }
    }

    fn spawn_exec(
        &mut self,
        ctr: Ctr,
        purpose: ExecFor,
        generation: u64,
        command: Vec<String>,
        timeout: Option<Duration>,
    ) -> Result<(), String> {
        self.exec_serial += 1;
        let serial = self.exec_serial;
        let c = &self.containers[ctr];
        // Its own file: an exec of an earlier run still under way keeps its own.
        let pid_file = c.bundle.join(format!("{}-{serial}.pid", purpose.name()));
        let _ = fs::remove_file(&pid_file);
        let (read, write) = pipe().map_err(|e| format!("pipe: {e}"))?;
        set_nonblocking(&read).map_err(|e| format!("pipe: {e}"))?;
        let pending = self
            .runtime
            .spawn_exec(&c.id, &command, &pid_file, write)
            .map_err(|e| e.to_string())?;
        let pid = pending.pid;
        self.calls.insert(
            pid,
            Call::Exec {
                ctr,
                purpose,
                generation,
                pending,
                pid_file,
                command,
                timed_out: false,
                serial,
            },
        );
        self.probe_outputs.insert(
            pid,
            ProbeOutput {
                fd: read,
                buf: Vec::new(),
            },
        );
        if let Some(timeout) = timeout {
            let at = crate::teardown::far_after(self.clock.now().mono, timeout);
            self.probe_deadlines.push(Reverse((at, pid, serial)));
        }
        Ok(())
    }

    /// An exec probe's time is up: its command is killed, and the runtime's
    /// `exec` then ends. The command's pid is taken from the runtime's pid file
    /// only while it is still the runtime process's child (a pidfd held while
    /// that is checked, so a pid given to another process since is never
    /// signalled); before that, the `exec` itself is killed.
    fn probe_timed_out(&mut self, runtime_pid: i32, serial: u64) {
        let Some(Call::Exec {
            pid_file,
            timed_out,
            serial: current,
            ..
        }) = self.calls.get_mut(&runtime_pid)
        else {
            return;
        };
        if *current != serial {
            return;
        }
        *timed_out = true;
        let command_pid = crate::fsutil::read_regular(pid_file, 32)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|p| *p > 1);
        if let Some(pid) = command_pid
            && let Some(fd) = crate::pidfd::open(pid)
            && parent_of(pid) == Some(runtime_pid)
        {
            let _ = crate::pidfd::send_signal(&fd, libc::SIGKILL);
            return;
        }
        // Our own child, not yet reaped (it is in `calls`): its pid is its own.
        let _ = nix::sys::signal::kill(Pid::from_raw(runtime_pid), NixSignal::SIGKILL);
    }

    /// Reads what an exec's pipe holds, keeping up to [`PROBE_OUTPUT`], and at
    /// most 64 KiB per turn of the loop (a command that floods its output
    /// shares the loop with the rest of the pod).
    fn read_probe_output(&mut self, pid: i32) {
        let Some(out) = self.probe_outputs.get_mut(&pid) else {
            return;
        };
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            match nix::unistd::read(&out.fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = PROBE_OUTPUT.saturating_sub(out.buf.len());
                    out.buf.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }

    /// Kubernetes restarts a container as a new container with a fresh writable
    /// layer: empty the overlay's upper and work dirs and mount it again.
    fn fresh_rootfs(&self, c: &RunContainer) -> Result<(), String> {
        let rootfs = c.rootfs();
        let Some((upper, work, options, owner)) = self.plan.setup.iter().find_map(|s| match s {
            SetupStep::Overlay {
                target,
                lower,
                upper,
                work,
                owner,
            } if *target == rootfs => Some((
                upper.clone(),
                work.clone(),
                SetupStep::overlay_options(lower, upper, work),
                *owner,
            )),
            _ => None,
        }) else {
            return Ok(());
        };
        while is_mount_point(&rootfs).map_err(|e| e.to_string())? {
            SystemMounter
                .unmount(&rootfs)
                .map_err(|e| format!("unmount {}: {e}", rootfs.display()))?;
        }
        for d in [&upper, &work] {
            let _ = fs::remove_dir_all(d);
            fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            // The pod root's, in a user namespace (SetupStep::Overlay).
            if let Some(id) = owner {
                std::os::unix::fs::chown(d, Some(id), Some(id))
                    .map_err(|e| format!("chown {}: {e}", d.display()))?;
            }
        }
        SystemMounter
            .mount_overlay(&rootfs, &options)
            .map_err(|e| format!("mount the overlay rootfs {}: {e}", rootfs.display()))
    }

    fn start(&mut self, ctr: Ctr, restart: u32) {
        // A resize restart: the old run is gone, the pod cgroup takes the new
        // values before the new run starts under it.
        if let Some((ctrs, cg)) = &self.pending_cgroup
            && ctrs.contains(&ctr)
        {
            let ids: Vec<String> = self.containers.iter().map(|c| c.id.clone()).collect();
            if let Err(e) = crate::cgroup::Hierarchies::read()
                .map_err(|e| e.to_string())
                .and_then(|h| crate::cgroup::set_limits(&h, cg, &ids).map_err(|e| e.to_string()))
            {
                tracing::error!("resize: {e}");
            }
            self.pending_cgroup = None;
        }
        let c = self.containers[ctr].clone();
        let result = (|| -> Result<(), StartError> {
            if c.kind != ContainerKind::Infra {
                if restart > 0 {
                    self.fresh_rootfs(&c)?;
                }
                // Each run writes its own termination message (the kubelet gives
                // every container instance a new file; `up --from` reuses
                // bundles another pod's runs wrote into).
                empty_termination_log(&c)?;
                self.run_over[ctr].store(true, std::sync::atomic::Ordering::SeqCst);
                self.run_over[ctr] = Arc::new(std::sync::atomic::AtomicBool::new(false));
                // Resolved again at every start: a container may have swapped a
                // subPath for a symlink since the last one (CVE-2017-1002101).
                // The kubelet makes the mounts in generateContainerConfig: a
                // subPath that cannot be bound is a CreateContainerConfigError.
                bundle::subpath::bind_all(&c, &SystemMounter)
                    .map_err(|e| StartError::config(e.to_string()))?;
            }
            if !self.claimed[ctr] {
                // Marked as this pod's before it exists in the runtime; a joining
                // bundle names the infra's real /proc/<pid>/ns/* from now on (done
                // here, not all at once, so that it overlaps other starts).
                let pid = (c.kind != ContainerKind::Infra)
                    .then_some(self.infra_pid)
                    .flatten();
                bundle::claim(&c, &self.pod_dir, pid).map_err(|e| e.to_string())?;
                self.claimed[ctr] = true;
            }
            // fileKeyRef variables: read again at every start, as the kubelet
            // does (an init container may have written the file just now).
            // The error is about this container: said without its name, which
            // the event and the pod's failure give.
            bundle::envfile::apply(&c).map_err(|e| match e {
                bundle::BundleError::EnvFile { name, message, .. } => {
                    StartError::config(format!("env {name}: {message}"))
                }
                // podshim's own files (config.json, the env steps).
                e => StartError::from(e.to_string()),
            })?;
            let pid_file = crate::paths::pid_file(&c.bundle);
            let _ = fs::remove_file(&pid_file);
            let spawned = self.clock.now().mono;
            let mut stdio = Stdio3::default();
            let mut pumps = Vec::new();
            let mut console_socket = None;
            if c.kind != ContainerKind::Infra {
                let dir = self.log_dir.join(&c.name);
                let writer = LogWriter::open(&dir, restart, RotateLimits::default())
                    .map_err(|e| format!("log file in {}: {e}", dir.display()))?;
                let hub = self.hubs[ctr].as_ref();
                if c.stdio.tty {
                    // The terminal: its master comes over the console socket
                    // (runtime-spec's `--console-socket`), to a thread; the
                    // loop then logs what it prints (as stdout, the CRI's way
                    // for a tty) and attach writes to it.
                    self.console_serial += 1;
                    let serial = self.console_serial;
                    console_socket = Some(self.await_console(ctr, serial)?);
                    self.console_runs[ctr] = Some((serial, Arc::clone(&writer)));
                } else if c.stdio.stdin {
                    let (read, write) = pipe().map_err(|e| format!("pipe: {e}"))?;
                    stdio.stdin = Some(read);
                    if let Some(hub) = hub {
                        hub.set_input(Some(fs::File::from(write)));
                    }
                }
                let streams: &[Stream] = match c.stdio.tty {
                    true => &[],
                    false => &[Stream::Stdout, Stream::Stderr],
                };
                for &stream in streams {
                    let (read, write) = pipe().map_err(|e| format!("pipe: {e}"))?;
                    set_nonblocking(&read).map_err(|e| format!("pipe: {e}"))?;
                    match stream {
                        Stream::Stdout => stdio.stdout = Some(write),
                        Stream::Stderr => stdio.stderr = Some(write),
                    }
                    pumps.push(Pump {
                        ctr,
                        stream,
                        fd: read,
                        pump: StreamPump::new(stream),
                        writer: Arc::clone(&writer),
                    });
                }
            }
            let opts = CreateOptions {
                pid_file: Some(pid_file.clone()),
                console_socket,
                stdio,
                ..Default::default()
            };
            // `run --detach` creates and starts in one runtime invocation. The
            // container holds the pipes' write ends from here on; ours are closed
            // once the runtime process is spawned.
            let pending = self
                .runtime
                .spawn_run_detached(&c.id, &c.bundle, opts)
                .map_err(|e| e.to_string())?;
            self.calls.insert(
                pending.pid,
                Call::Start {
                    ctr,
                    pending,
                    pid_file,
                    spawned,
                },
            );
            self.pumps.extend(pumps);
            Ok(())
        })();
        if let Err(e) = result {
            self.inputs.push_back(Input::Started {
                ctr,
                result: Err(e),
            });
        }
    }

    /// Listens on a console socket for `ctr`'s start number `serial` and
    /// returns the path the runtime connects to; a thread takes the terminal
    /// the runtime sends (or gives up after [`CONSOLE_TIMEOUT`]) and wakes the
    /// loop. The sockets have a directory of their own: no container's name
    /// can be one of theirs.
    fn await_console(&mut self, ctr: Ctr, serial: u64) -> Result<PathBuf, String> {
        let name = serial.to_string();
        let dir = self.pod_dir.join("console");
        let (dir_fd, listener) = crate::attach::bind_for_others(&dir, &name)
            .map_err(|e| format!("console socket in {}: {e}", dir.display()))?;
        let path = crate::attach::path_for_others(&dir_fd, &name);
        let tx = self.console_tx.clone();
        let wake = Arc::clone(&self.wake_write);
        let socket = dir.join(&name);
        std::thread::Builder::new()
            .name(format!("console-{ctr}"))
            .spawn(move || {
                let master = accept_within(&listener, CONSOLE_TIMEOUT).and_then(|s| {
                    s.set_read_timeout(Some(CONSOLE_TIMEOUT))?;
                    crate::attach::recv_fd(&s)
                });
                drop(dir_fd);
                let _ = fs::remove_file(&socket);
                let _ = tx.send((ctr, serial, master));
                let _ = nix::unistd::write(&*wake, &[1]);
            })
            .map_err(|e| format!("start a thread: {e}"))?;
        Ok(path)
    }

    /// A terminal arrived: the loop reads it into the log and the attach
    /// clients; the hub writes input to a duplicate of it. One for a run that
    /// is over (a late runtime) is closed.
    fn take_console(&mut self, ctr: Ctr, serial: u64, master: io::Result<OwnedFd>) {
        let Some((awaited, writer)) = self.console_runs[ctr].clone() else {
            return;
        };
        if awaited != serial {
            return;
        }
        self.console_runs[ctr] = None;
        let master = match master {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(
                    "{}: no terminal from the runtime: {e}",
                    self.containers[ctr].name
                );
                return;
            }
        };
        if let Some(hub) = &self.hubs[ctr] {
            match master.try_clone() {
                Ok(input) => hub.set_input(Some(fs::File::from(input))),
                Err(e) => tracing::error!("{}: terminal: {e}", self.containers[ctr].name),
            }
        }
        if let Err(e) = set_nonblocking(&master) {
            tracing::error!("{}: terminal: {e}", self.containers[ctr].name);
        }
        self.pumps.push(Pump {
            ctr,
            stream: Stream::Stdout,
            fd: master,
            pump: StreamPump::new(Stream::Stdout),
            writer,
        });
    }

    /// Once the infra runs: the pod's loopback is up (runc brings it up, youki does
    /// not); the other bundles get its pid before their first start.
    /// The infra's network: its loopback up; the pod's IPs. A hostNetwork pod has
    /// no network namespace of its own, and the host's address is its IP (as the
    /// kubelet reports it).
    fn prepare_infra(&mut self, pid: i32) -> Result<Vec<String>, String> {
        self.infra_pid = Some(pid);
        let own_netns = fs::read_link(format!("/proc/{pid}/ns/net")).ok()
            != fs::read_link("/proc/self/ns/net").ok();
        if own_netns {
            crate::cni::netns::loopback_up(pid).map_err(|e| format!("bring lo up: {e}"))?;
            // Held for the network probes: the infra's pid cannot be reused while
            // this loop has not reaped it, and the fd outlives it anyway.
            let ns = fs::File::open(format!("/proc/{pid}/ns/net"))
                .map_err(|e| format!("open the pod's network namespace: {e}"))?;
            self.netns = Some(Arc::new(OwnedFd::from(ns)));
            // Attached to its network by `up`, before the infra ran.
            return Ok(self
                .plan
                .network
                .as_ref()
                .map(|n| n.ips.clone())
                .unwrap_or_default());
        }
        Ok(self.core.state().host_ip.iter().cloned().collect())
    }

    /// Reads what is in pump `i`'s pipe; at its end, writes the remainder and
    /// drops the pump.
    fn read_pump(&mut self, i: usize) {
        let mut buf = [0u8; 16 * 1024];
        let clock = || SystemTime::now();
        let eof = loop {
            let p = &mut self.pumps[i];
            match nix::unistd::read(&p.fd, &mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    p.pump.feed(&buf[..n], &p.writer, &clock);
                    if let Some(hub) = &self.hubs[p.ctr] {
                        hub.broadcast(p.stream, &buf[..n]);
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => break false,
                Err(nix::errno::Errno::EINTR) => {}
                // A terminal's master reads EIO once its last process is gone.
                Err(nix::errno::Errno::EIO) => break true,
                Err(e) => {
                    tracing::warn!("log {}: {e}", p.writer.path().display());
                    break true;
                }
            }
        };
        if eof {
            let p = self.pumps.swap_remove(i);
            if let Some(e) = p.pump.finish(&p.writer, &clock) {
                tracing::warn!("log {}: {e}", p.writer.path().display());
            }
        }
    }

    fn drain_pumps_of(&mut self, ctr: Ctr) {
        let mut i = self.pumps.len();
        while i > 0 {
            i -= 1;
            if self.pumps[i].ctr == ctr {
                self.read_pump(i);
            }
        }
    }

    /// Once the pod is done: waits (bounded) for runtime calls still under way,
    /// and writes what the log pipes still hold.
    fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !self.calls.is_empty() && Instant::now() < deadline {
            let ready = self.wait(Some(Duration::from_millis(100)));
            if ready.signals {
                self.take_signals();
            }
            for i in ready.pumps.into_iter().rev() {
                self.read_pump(i);
            }
        }
        for i in (0..self.pumps.len()).rev() {
            self.read_pump(i);
        }
        // Anything left is held open by a process that outlived its container.
        for p in self.pumps.drain(..) {
            let _ = p.pump.finish(&p.writer, &SystemTime::now);
        }
    }
}

#[derive(Default)]
struct Ready {
    signals: bool,
    /// A network probe reported.
    wake: bool,
    pumps: Vec<usize>,
    /// Exec probes whose output pipe has something (by runtime pid).
    probe_outputs: Vec<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: Exit = Exit {
        code: 1,
        signal: None,
        oom_killed: false,
    };

    #[test]
    fn an_exit_reaped_before_its_run_began_is_not_given_to_it() {
        let t0 = Instant::now();
        let mut u = Unclaimed::default();
        // An orphan with pid 42 exited; then a run began whose init got pid 42.
        u.insert(42, EXIT, t0);
        let spawned = t0 + Duration::from_millis(5);
        assert_eq!(
            u.take(42, spawned, spawned + Duration::from_millis(50)),
            None
        );
    }

    #[test]
    fn an_exit_reaped_before_the_pid_file_was_read_is_given_to_its_run() {
        let t0 = Instant::now();
        let mut u = Unclaimed::default();
        u.insert(42, EXIT, t0 + Duration::from_millis(20));
        assert_eq!(u.take(42, t0, t0 + Duration::from_millis(50)), Some(EXIT));
        assert_eq!(u.take(42, t0, t0 + Duration::from_millis(50)), None);
    }

    #[test]
    fn unclaimed_exits_expire() {
        let t0 = Instant::now();
        let mut u = Unclaimed::default();
        u.insert(42, EXIT, t0);
        assert_eq!(u.take(42, t0, t0 + UNCLAIMED_TTL), None);
        u.insert(7, EXIT, t0);
        u.insert(8, EXIT, t0 + UNCLAIMED_TTL);
        assert_eq!(u.0.len(), 1, "the expired entry is dropped");
    }

    #[test]
    fn exit_statuses_keep_the_code_and_the_signal() {
        let e = Exit {
            code: 137,
            signal: Some(9),
            oom_killed: false,
        };
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&e.as_exit_status()),
            Some(9)
        );
        let e = Exit {
            code: 3,
            signal: None,
            oom_killed: false,
        };
        assert_eq!(e.as_exit_status().code(), Some(3));
    }
}
