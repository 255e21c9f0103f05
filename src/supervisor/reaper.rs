//! The one waiter for child processes (DESIGN.md rule 3).
//!
//! The supervisor is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so container
//! processes, orphaned when `runc create` exits, become its children. One thread calls
//! `waitpid(-1)` and routes each exit by pid to whoever subscribed; a subscription
//! made after the process already exited still receives it ("subscribe before spawn"
//! is honoured by holding the routing lock across spawn + subscribe).

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::runtime::Spawner;

/// How a process ended: its exit code, or 128 + the signal that killed it (the
/// convention the kubelet reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub signal: Option<i32>,
}

impl Exit {
    fn from_status(status: WaitStatus) -> Option<(i32, Exit)> {
        match status {
            WaitStatus::Exited(pid, code) => Some((pid.as_raw(), Exit { code, signal: None })),
            WaitStatus::Signaled(pid, sig, _) => Some((
                pid.as_raw(),
                Exit {
                    code: 128 + sig as i32,
                    signal: Some(sig as i32),
                },
            )),
            _ => None,
        }
    }

    pub fn as_exit_status(&self) -> ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        match self.signal {
            Some(sig) => ExitStatus::from_raw(sig),
            None => ExitStatus::from_raw((self.code & 0xff) << 8),
        }
    }
}

/// How long an exit nobody subscribed to is kept. Subscriptions follow the runtime's
/// exit within milliseconds; older entries are orphans (e.g. of a hostPID container)
/// whose pid may be reused, and must not be handed to a new process.
const UNCLAIMED_TTL: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Default)]
struct Routes {
    waiting: HashMap<i32, Sender<Exit>>,
    /// Exits nobody had subscribed to yet, with when they were reaped.
    unclaimed: HashMap<i32, (Exit, std::time::Instant)>,
    /// Children that may still exit (so the reaper knows whether to block).
    live: usize,
}

/// The reaper: create one per process, before any child exists.
pub struct Reaper {
    routes: Mutex<Routes>,
    wake: Condvar,
}

impl Reaper {
    /// Makes this process a child subreaper and starts the reaping thread.
    pub fn start() -> io::Result<Arc<Reaper>> {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let reaper = Arc::new(Reaper {
            routes: Mutex::new(Routes::default()),
            wake: Condvar::new(),
        });
        let r = Arc::clone(&reaper);
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || r.run())?;
        Ok(reaper)
    }

    fn run(&self) {
        loop {
            match waitpid(Pid::from_raw(-1), None) {
                Ok(status) => {
                    if let Some((pid, exit)) = Exit::from_status(status) {
                        self.route(pid, exit);
                    }
                }
                Err(nix::errno::Errno::ECHILD) => {
                    // No children: sleep until one is announced. The timeout covers
                    // orphans reparented to us without an announcement.
                    let routes = self.routes.lock().unwrap();
                    let _ = self
                        .wake
                        .wait_timeout_while(routes, Duration::from_millis(200), |r| r.live == 0);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::error!("waitpid: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    fn route(&self, pid: i32, exit: Exit) {
        let mut routes = self.routes.lock().unwrap();
        routes.live = routes.live.saturating_sub(1);
        match routes.waiting.remove(&pid) {
            Some(tx) => {
                let _ = tx.send(exit);
            }
            None => {
                let now = std::time::Instant::now();
                routes
                    .unclaimed
                    .retain(|_, (_, at)| now.duration_since(*at) < UNCLAIMED_TTL);
                routes.unclaimed.insert(pid, (exit, now));
            }
        }
    }

    /// Subscribes to the exit of `pid`, a process that is (or was) our child.
    pub fn subscribe(&self, pid: i32) -> Receiver<Exit> {
        let (tx, rx) = mpsc::channel();
        let mut routes = self.routes.lock().unwrap();
        match routes.unclaimed.remove(&pid) {
            Some((exit, at)) if at.elapsed() < UNCLAIMED_TTL => {
                let _ = tx.send(exit);
            }
            // None, or a stale exit of an earlier process with this pid.
            _ => {
                routes.waiting.insert(pid, tx);
                routes.live += 1;
                self.wake.notify_all();
            }
        }
        rx
    }

    /// Spawns `cmd` and subscribes to its exit. An exit reaped before the
    /// subscription waits in `unclaimed`, so spawns need not hold the routing lock
    /// (they run in parallel when app containers start together).
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<(Child, Receiver<Exit>)> {
        let child = cmd.spawn()?;
        let rx = self.subscribe(child.id() as i32);
        Ok((child, rx))
    }
}

/// Runs runtime CLI commands through the reaper.
pub struct ReaperSpawner(pub Arc<Reaper>);

impl Spawner for ReaperSpawner {
    fn output(&self, mut cmd: Command) -> io::Result<Output> {
        use std::io::Read;
        // Like `Command::output`, stdio the caller configured is kept (the runtime
        // client hands `create` the container's log pipes); only pipes are read.
        let (mut child, exit) = self.0.spawn(&mut cmd)?;
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let err_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        });
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut out);
        }
        let err = err_thread.join().unwrap_or_default();
        let exit = exit
            .recv()
            .map_err(|_| io::Error::other("the reaper stopped"))?;
        Ok(Output {
            status: exit.as_exit_status(),
            stdout: out,
            stderr: err,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reaper makes the whole test process a subreaper and reaps every child of
    // it, so these tests run it in a forked helper process: `cargo test` runs the
    // test binary again with a filter and an environment marker.
    fn in_subprocess(name: &str, body: impl FnOnce()) {
        if std::env::var_os("PODSHIM_REAPER_TEST").is_some() {
            body();
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = Command::new(exe)
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env("PODSHIM_REAPER_TEST", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} failed in its subprocess:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn reaper_routes_exit_codes_and_signals_by_pid() {
        in_subprocess(
            "supervisor::reaper::tests::reaper_routes_exit_codes_and_signals_by_pid",
            || {
                let reaper = Reaper::start().unwrap();
                let (_c1, e1) = reaper
                    .spawn(Command::new("sh").args(["-c", "exit 3"]))
                    .unwrap();
                let (c2, e2) = reaper.spawn(Command::new("sleep").arg("10")).unwrap();
                nix::sys::signal::kill(Pid::from_raw(c2.id() as i32), nix::sys::signal::SIGKILL)
                    .unwrap();
                assert_eq!(
                    e1.recv().unwrap(),
                    Exit {
                        code: 3,
                        signal: None
                    }
                );
                assert_eq!(
                    e2.recv().unwrap(),
                    Exit {
                        code: 137,
                        signal: Some(9)
                    }
                );
            },
        );
    }

    #[test]
    fn orphaned_grandchild_is_reaped_and_routed_after_a_late_subscription() {
        in_subprocess(
            "supervisor::reaper::tests::orphaned_grandchild_is_reaped_and_routed_after_a_late_subscription",
            || {
                let reaper = Reaper::start().unwrap();
                // sh starts a background grandchild, prints its pid and exits: the
                // grandchild is reparented to us, like a container after `runc create`.
                let out = ReaperSpawner(Arc::clone(&reaper))
                    .output({
                        let mut c = Command::new("sh");
                        c.args(["-c", "(sleep 0.3; exit 7) >/dev/null 2>&1 & echo $!"])
                            .stdout(std::process::Stdio::piped());
                        c
                    })
                    .unwrap();
                assert!(out.status.success());
                let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
                std::thread::sleep(Duration::from_millis(600));
                let exit = reaper
                    .subscribe(pid)
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap();
                assert_eq!(exit.code, 7);
            },
        );
    }

    #[test]
    fn spawner_collects_output_through_the_reaper() {
        in_subprocess(
            "supervisor::reaper::tests::spawner_collects_output_through_the_reaper",
            || {
                let reaper = Reaper::start().unwrap();
                let mut c = Command::new("sh");
                c.args(["-c", "echo out; echo err >&2; exit 2"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                let out = ReaperSpawner(reaper).output(c).unwrap();
                assert_eq!(out.stdout, b"out\n");
                assert_eq!(out.stderr, b"err\n");
                assert_eq!(out.status.code(), Some(2));
            },
        );
    }
}
