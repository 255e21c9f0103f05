//! [`OciRuntime`] over the runtime's CLI. Every verb runs through the
//! [`Spawner`] it is given, or is started without waiting (`spawn_*`, for the
//! supervisor's event loop, which reaps it: ARCHITECTURE.md rule 3), with `--log
//! <tmp> --log-format json`, so a failure reports the runtime's own message.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use super::args;
use super::error::{Invocation, RuntimeError, failure_message};
use super::state::{ContainerState, parse_list, parse_pids, parse_state};
use super::{CreateOptions, DirectSpawner, OciRuntime, RuntimeConfig, Spawner, Stdio3};

/// How often a read verb is tried while it meets a torn state file, and the first
/// pause between tries (doubling: 1.27 s at most in all, for a writer that a
/// loaded machine leaves unscheduled between its truncate and its write).
const TORN_STATE_TRIES: u32 = 8;
const TORN_STATE_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// The runtime CLI (runc, youki, crun) as an [`OciRuntime`].
#[derive(Clone)]
pub struct CliRuntime {
    config: RuntimeConfig,
    spawner: Arc<dyn Spawner>,
}

impl std::fmt::Debug for CliRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CliRuntime {
    pub fn new(config: RuntimeConfig, spawner: Arc<dyn Spawner>) -> CliRuntime {
        CliRuntime { config, spawner }
    }

    /// For processes that are not the supervisor: waits for its children itself.
    pub fn direct(config: RuntimeConfig) -> CliRuntime {
        CliRuntime::new(config, Arc::new(DirectSpawner))
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The program's file name (`runc`, `youki`), for messages.
    pub fn name(&self) -> String {
        self.config
            .program
            .file_name()
            .unwrap_or(self.config.program.as_os_str())
            .to_string_lossy()
            .into_owned()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.config.program);
        // youki's errors are anyhow reports: with RUST_BACKTRACE set (as under
        // `cargo test`) they carry a backtrace of `<unknown>` frames that buries
        // the message. This turns anyhow's off and leaves panics' alone.
        cmd.env("RUST_LIB_BACKTRACE", "0");
        // With NOTIFY_SOCKET set, `runc create`/`run` hand the socket to the
        // container and wait for its READY=1 (runc's notify_socket.go): a
        // container is no systemd service.
        cmd.env_remove(crate::systemd::NOTIFY_SOCKET);
        // The supervisor blocks SIGTERM, SIGINT, SIGHUP and SIGCHLD for its
        // signalfd, and a signal mask survives fork and exec: std's spawn does not
        // clear it, and youki passes it on to the container process (runc's Go
        // runtime happens to clear it). A container with SIGTERM blocked never
        // sees a graceful stop and is always SIGKILLed after the grace period, so
        // every runtime starts with nothing blocked.
        // SAFETY: the closure only calls sigemptyset and pthread_sigmask, both
        // async-signal-safe, on a set on its own stack.
        unsafe {
            cmd.pre_exec(|| {
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                match libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) {
                    0 => Ok(()),
                    e => Err(std::io::Error::from_raw_os_error(e)),
                }
            });
        }
        cmd
    }

    fn at(&self, verb: &'static str, id: Option<&str>) -> Invocation {
        Invocation {
            program: self.name(),
            verb,
            id: id.map(str::to_string),
        }
    }

    /// The command of one verb and its `--log` file. `stdio` is the container's
    /// (for `create` and `run`); other verbs get `/dev/null` as stdin and have their
    /// stdout and stderr captured.
    fn command_for(
        &self,
        at: &Invocation,
        argv: impl FnOnce(Option<&Path>) -> Vec<OsString>,
        stdio: Option<Stdio3>,
    ) -> Result<(Command, tempfile::NamedTempFile), RuntimeError> {
        let log = tempfile::Builder::new()
            .prefix("podshim-runtime-")
            .suffix(".log")
            .tempfile()
            .map_err(|source| RuntimeError::Log {
                at: at.clone(),
                path: std::env::temp_dir(),
                source,
            })?;
        let mut cmd = self.command();
        cmd.args(argv(Some(log.path())));
        match stdio {
            Some(s) => {
                let fd_or_null =
                    |fd: Option<std::os::fd::OwnedFd>| fd.map_or_else(Stdio::null, Stdio::from);
                cmd.stdin(fd_or_null(s.stdin))
                    .stdout(fd_or_null(s.stdout))
                    .stderr(fd_or_null(s.stderr));
            }
            None => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            }
        }
        tracing::debug!(program = %self.config.program.display(), args = ?cmd.get_args().collect::<Vec<_>>(), "runtime");
        Ok((cmd, log))
    }

    /// The result of a finished verb: the runtime's own message when it failed.
    fn check(
        at: Invocation,
        log: &Path,
        stderr: &[u8],
        status: std::process::ExitStatus,
    ) -> Result<(), RuntimeError> {
        if status.success() {
            return Ok(());
        }
        // An unreadable log only loses the best message; stderr and the status remain.
        let log_text = std::fs::read(log).unwrap_or_default();
        let message = failure_message(&at, &log_text, stderr, status);
        Err(RuntimeError::Failed {
            at,
            message,
            status,
        })
    }

    /// Runs one verb to its end.
    fn run(
        &self,
        at: Invocation,
        argv: impl FnOnce(Option<&Path>) -> Vec<OsString>,
        stdio: Option<Stdio3>,
    ) -> Result<Output, RuntimeError> {
        let (cmd, log) = self.command_for(&at, argv, stdio)?;
        let out = self
            .spawner
            .output(cmd)
            .map_err(|source| RuntimeError::Spawn {
                at: at.clone(),
                program: self.config.program.clone(),
                source,
            })?;
        Self::check(at, log.path(), &out.stderr, out.status)?;
        Ok(out)
    }

    /// A verb that only reads state (`state`, `list`), run again while the
    /// runtime saw a state file mid-write ([`RuntimeError::is_torn_state`]) or a
    /// container deleted in the middle of its listing
    /// ([`RuntimeError::is_list_race`]): both pass within microseconds, and
    /// reading them as errors would make a teardown skip a container that is
    /// there, or an `up` fail because another pod went down.
    fn run_read(
        &self,
        at: Invocation,
        argv: impl Fn(Option<&Path>) -> Vec<OsString>,
    ) -> Result<Output, RuntimeError> {
        let mut pause = TORN_STATE_FIRST_PAUSE;
        for _ in 1..TORN_STATE_TRIES {
            match self.run(at.clone(), &argv, None) {
                Err(e) if e.is_torn_state() || e.is_list_race() => {
                    tracing::debug!(%at, "{e}; reading again");
                    std::thread::sleep(pause);
                    pause = pause.saturating_mul(2);
                }
                r => return r,
            }
        }
        self.run(at, &argv, None)
    }

    /// The containers whose ids `wanted` accepts. Under youki, whose `list` is a
    /// table of ids, only those are asked for their state: a check of a pod's own
    /// ids does not read (or wait on) every other container's state file.
    pub fn list_matching(
        &self,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ContainerState>, RuntimeError> {
        let at = self.at("list", None);
        let out = self.run_read(at.clone(), |log| args::list_args(&self.config, log))?;
        if let Some(ids) = table_ids(&out.stdout) {
            // youki 0.7 knows no `list --format json` and prints its table
            // anyway: take the ids from it and ask for each one's state.
            let mut states = Vec::new();
            for id in ids.into_iter().filter(|id| wanted(id)) {
                match self.state(&id) {
                    Ok(s) => states.push(s),
                    // Deleted since the list was printed.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(states);
        }
        let mut all = Self::parse(at, &out, parse_list)?;
        all.retain(|s| wanted(&s.id));
        Ok(all)
    }

    /// Starts a verb and returns without waiting: whoever reaps the runtime's
    /// process (the supervisor's event loop, its one waiter) hands its status to
    /// [`PendingRun::finish`].
    fn spawn(
        &self,
        at: Invocation,
        argv: impl FnOnce(Option<&Path>) -> Vec<OsString>,
        stdio: Stdio3,
    ) -> Result<PendingRun, RuntimeError> {
        let (mut cmd, log) = self.command_for(&at, argv, Some(stdio))?;
        let child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
            at: at.clone(),
            program: self.config.program.clone(),
            source,
        })?;
        Ok(PendingRun {
            pid: child.id() as i32,
            log,
            at,
        })
    }

    /// `kill`, not waited for (see [`CliRuntime::spawn_run_detached`]).
    pub fn spawn_kill(
        &self,
        id: &str,
        signal: &str,
        all: bool,
    ) -> Result<PendingRun, RuntimeError> {
        self.spawn(
            self.at("kill", Some(id)),
            |log| args::kill_args(&self.config, log, id, signal, all),
            Stdio3::default(),
        )
    }

    /// `delete --force`, not waited for (see [`CliRuntime::spawn_run_detached`]).
    pub fn spawn_delete(&self, id: &str) -> Result<PendingRun, RuntimeError> {
        self.spawn(
            self.at("delete", Some(id)),
            |log| args::delete_args(&self.config, log, id, true),
            Stdio3::default(),
        )
    }

    /// `exec --pid-file`, not waited for (see [`CliRuntime::spawn_run_detached`]):
    /// a probe's command, its stdout and stderr both into `output`. The process's
    /// host pid is in `pid_file` once it runs, so that a timeout can kill it.
    pub fn spawn_exec(
        &self,
        id: &str,
        argv: &[String],
        pid_file: &Path,
        output: std::os::fd::OwnedFd,
    ) -> Result<PendingRun, RuntimeError> {
        let stderr = output.try_clone().map_err(|source| RuntimeError::Spawn {
            at: self.at("exec", Some(id)),
            program: self.config.program.clone(),
            source,
        })?;
        self.spawn(
            self.at("exec", Some(id)),
            |log| args::exec_probe_args(&self.config, log, id, argv, pid_file),
            Stdio3 {
                stdin: None,
                stdout: Some(output),
                stderr: Some(stderr),
            },
        )
    }

    /// Starts `run --detach` and returns without waiting: whoever reaps the
    /// runtime's process (the supervisor's event loop) hands its status to
    /// [`PendingRun::finish`]. The container's stdio is handed over here.
    pub fn spawn_run_detached(
        &self,
        id: &str,
        bundle: &Path,
        opts: CreateOptions,
    ) -> Result<PendingRun, RuntimeError> {
        let mut opts = opts;
        let stdio = std::mem::take(&mut opts.stdio);
        let flags = opts.flags();
        self.spawn(
            self.at("run", Some(id)),
            |log| args::run_detached_args(&self.config, log, id, bundle, flags),
            stdio,
        )
    }

    fn parse<T>(
        at: Invocation,
        out: &Output,
        parse: impl FnOnce(&[u8]) -> Result<T, serde_json::Error>,
    ) -> Result<T, RuntimeError> {
        parse(&out.stdout).map_err(|source| RuntimeError::Parse {
            at,
            output: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            source,
        })
    }
}

impl CliRuntime {
    /// `create` and `run --detach`: a verb on a bundle, with the container's stdio.
    fn bundle_verb(
        &self,
        verb: &'static str,
        build: ArgsBuilder,
        id: &str,
        bundle: &Path,
        opts: CreateOptions,
    ) -> Result<(), RuntimeError> {
        let mut opts = opts;
        let stdio = std::mem::take(&mut opts.stdio);
        let flags = opts.flags();
        self.run(
            self.at(verb, Some(id)),
            |log| build(&self.config, log, id, bundle, flags),
            Some(stdio),
        )?;
        Ok(())
    }
}

/// A `run --detach` under way, started by [`CliRuntime::spawn_run_detached`].
#[derive(Debug)]
pub struct PendingRun {
    /// The runtime process's pid: its exit is the run's end.
    pub pid: i32,
    log: tempfile::NamedTempFile,
    at: Invocation,
}

impl PendingRun {
    /// The run's result, from the runtime process's exit status (its message from
    /// the `--log` file when it failed).
    pub fn finish(self, status: std::process::ExitStatus) -> Result<(), RuntimeError> {
        CliRuntime::check(self.at, self.log.path(), &[], status)
    }

    /// For an `exec`: the runtime's own error, when it failed itself (its
    /// `--log` has an error entry), as opposed to the command exiting non-zero.
    pub fn runtime_error(&self) -> Option<String> {
        let log = std::fs::read(self.log.path()).ok()?;
        super::error::last_log_error(&log)
    }
}

/// The signature of [`args::create_args`] and [`args::run_detached_args`].
type ArgsBuilder =
    fn(&RuntimeConfig, Option<&Path>, &str, &Path, args::CreateFlags<'_>) -> Vec<OsString>;

impl OciRuntime for CliRuntime {
    fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<(), RuntimeError> {
        self.bundle_verb("create", args::create_args, id, bundle, opts)
    }

    fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        opts: CreateOptions,
    ) -> Result<(), RuntimeError> {
        self.bundle_verb("run", args::run_detached_args, id, bundle, opts)
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let at = self.at("start", Some(id));
        self.run(at, |log| args::start_args(&self.config, log, id), None)?;
        Ok(())
    }

    fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let at = self.at("state", Some(id));
        let out = self.run_read(at.clone(), |log| args::state_args(&self.config, log, id))?;
        Self::parse(at, &out, parse_state)
    }

    fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuntimeError> {
        let at = self.at("kill", Some(id));
        self.run(
            at,
            |log| args::kill_args(&self.config, log, id, signal, all),
            None,
        )?;
        Ok(())
    }

    fn update(&self, id: &str, resources: &Path) -> Result<(), RuntimeError> {
        let at = self.at("update", Some(id));
        self.run(
            at,
            |log| args::update_args(&self.config, log, id, resources),
            None,
        )?;
        Ok(())
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let at = self.at("delete", Some(id));
        self.run(
            at,
            |log| args::delete_args(&self.config, log, id, force),
            None,
        )?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<ContainerState>, RuntimeError> {
        self.list_matching(&|_| true)
    }

    fn features(&self) -> super::RuntimeFeatures {
        let at = self.at("features", None);
        match self.run(at, |log| args::features_args(&self.config, log), None) {
            Ok(out) => {
                let release = std::fs::read_to_string("/proc/sys/kernel/osrelease");
                super::RuntimeFeatures::parse(&out.stdout)
                    .on_kernel(release.as_deref().unwrap_or(""))
            }
            Err(e) => {
                tracing::debug!("{e}: taking no optional features");
                super::RuntimeFeatures::default()
            }
        }
    }

    fn ps(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        let at = self.at("ps", Some(id));
        let out = self.run(at.clone(), |log| args::ps_args(&self.config, log, id), None)?;
        Self::parse(at, &out, parse_pids)
    }

    fn exec_command(
        &self,
        id: &str,
        argv: &[String],
        tty: bool,
        env: &[(String, String)],
        cwd: Option<&Path>,
    ) -> Command {
        // No --log: the runtime's errors go to the inherited stderr, which the
        // person at the terminal reads.
        let mut cmd = self.command();
        cmd.args(args::exec_args(&self.config, None, id, argv, tty, env, cwd));
        cmd
    }
}

/// The ids in a `list` table (`ID  PID  STATUS ...` then one row per
/// container), or `None` when the output is not such a table. Container ids
/// hold no whitespace, so the first word of a row is its id.
pub(crate) fn table_ids(stdout: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(stdout).ok()?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next()?;
    if header.split_whitespace().next() != Some("ID") {
        return None;
    }
    Some(
        lines
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect(),
    )
}
