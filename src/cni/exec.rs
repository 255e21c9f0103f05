//! Running a plugin (SPEC.md "Section 2: Execution Protocol"): the one side effect
//! of the CNI client, behind [`PluginExec`] so that ordering, chaining, caching and
//! rollback are unit-tested with a fake.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A plugin's result is a small JSON document; more is not a result.
pub const MAX_STDOUT: u64 = 1 << 20;
/// What of a plugin's stderr is kept for an error message.
pub const MAX_STDERR: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot run it: {0}")]
    Spawn(std::io::Error),
    #[error("it did not finish within {0:?} and was killed")]
    Timeout(Duration),
    #[error("its output was larger than {MAX_STDOUT} bytes")]
    TooLarge,
    /// Exited non-zero (or by a signal): its stdout should hold the CNI error
    /// JSON, which the caller reads.
    #[error("it failed ({status})")]
    Failed {
        status: String,
        stdout: Vec<u8>,
        stderr: String,
    },
}

pub trait PluginExec {
    /// The plugin's executable: the first `dirs` entry holding `plugin_type`
    /// (libcni's `FindInPath`).
    fn find(&self, plugin_type: &str, dirs: &[PathBuf]) -> Option<PathBuf>;
    /// Runs `plugin` with the environment `env` (the `CNI_*` variables) and
    /// `stdin`, and returns its stdout if it exits 0 within `timeout`.
    fn run(
        &self,
        plugin: &Path,
        env: &[(&str, String)],
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ExecError>;
}

/// Runs real plugins as child processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemExec;

impl PluginExec for SystemExec {
    fn find(&self, plugin_type: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        dirs.iter().map(|d| d.join(plugin_type)).find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }

    fn run(
        &self,
        plugin: &Path,
        env: &[(&str, String)],
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ExecError> {
        let started = Instant::now();
        let mut cmd = Command::new(plugin);
        // The plugins need the rest of the environment (PATH for iptables); a
        // CNI_* variable of podshim's own environment must not reach them.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("CNI_")) {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout kills what it started too
            // (iptables, the IPAM plugin it delegates to).
            .process_group(0);
        let mut child = spawn_retrying_busy(&mut cmd).map_err(ExecError::Spawn)?;
        let pid = child.id() as i32;
        // Taken before anything can reap it: the pid names this child until then.
        let pidfd = crate::pidfd::open(pid);

        let mut child_stdin = child.stdin.take().expect("piped");
        let input = stdin.to_vec();
        // A thread each, so that a plugin that writes before it reads cannot
        // deadlock with podshim; a plugin that exits without reading makes the
        // write fail (EPIPE), which is its business.
        std::thread::spawn(move || {
            let _ = child_stdin.write_all(&input);
        });
        let (out_tx, out_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            let _ = out_tx.send(read_capped(stdout, MAX_STDOUT));
        });
        let (err_tx, err_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            let _ = err_tx.send(read_capped(stderr, MAX_STDERR));
        });

        let kill = |child: &mut std::process::Child| {
            // SAFETY: kill(2) of the process group led by our unreaped child.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
        };
        let exited = match &pidfd {
            Some(fd) => crate::pidfd::wait_all(std::slice::from_ref(fd), timeout),
            // pidfd_open failed (a kernel before 5.3): wait without a timeout.
            None => true,
        };
        if !exited {
            kill(&mut child);
            return Err(ExecError::Timeout(timeout));
        }
        let status = child.wait().map_err(ExecError::Spawn)?;
        // A child it left behind may hold the pipe open: the timeout bounds that
        // too, and its group is killed.
        let left = timeout.saturating_sub(started.elapsed());
        let Ok((out, too_large)) = out_rx.recv_timeout(left) else {
            // SAFETY: as above; the leader is reaped, but its group is ours until
            // its last member exits, which is what holds the pipe.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            return Err(ExecError::Timeout(timeout));
        };
        let (err, _) = err_rx
            .recv_timeout(Duration::from_millis(100))
            .unwrap_or_default();
        if too_large {
            return Err(ExecError::TooLarge);
        }
        if !status.success() {
            return Err(ExecError::Failed {
                status: status.to_string(),
                stdout: out,
                stderr: String::from_utf8_lossy(&err).trim().to_string(),
            });
        }
        Ok(out)
    }
}

/// Reads at most `max` bytes; `true` if there was more. Stops reading then (the
/// plugin's next write fails and it exits), so memory stays bounded.
fn read_capped(r: impl Read, max: u64) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let _ = r.take(max + 1).read_to_end(&mut out);
    let more = out.len() as u64 > max;
    out.truncate(max as usize);
    (out, more)
}

/// `cmd.spawn()`, tried again a few times on ETXTBSY: a plugin file that was
/// just written is "busy" while any process forked meanwhile still holds the
/// writer's descriptor (until its exec closes it), which passes in moments.
fn spawn_retrying_busy(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 5 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10 << tries));
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_plugin_gets_its_environment_and_stdin_and_its_stdout_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            "echo",
            r#"printf '%s|' "$CNI_COMMAND" "$CNI_IFNAME"; cat"#,
        );
        let out = SystemExec
            .run(
                &p,
                &[("CNI_COMMAND", "ADD".into()), ("CNI_IFNAME", "eth0".into())],
                b"{}",
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(out, b"ADD|eth0|{}");
    }

    #[test]
    fn plugins_are_found_in_the_first_directory_holding_an_executable() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("bridge"), "not executable").unwrap();
        let want = script(b.path(), "bridge", "true");
        let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(SystemExec.find("bridge", &dirs), Some(want));
        assert_eq!(SystemExec.find("portmap", &dirs), None);
    }

    #[test]
    fn a_hanging_plugin_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child");
        let p = script(
            dir.path(),
            "hang",
            &format!("sleep 1000 & echo $! > {}; wait", pidfile.display()),
        );
        let started = Instant::now();
        let err = SystemExec
            .run(&p, &[], b"", Duration::from_millis(500))
            .unwrap_err();
        assert!(matches!(err, ExecError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The sleep was in the plugin's group: it is gone (or a zombie of init).
        std::thread::sleep(Duration::from_millis(100));
        let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z"), "{state}");
    }

    #[test]
    fn a_failing_plugin_returns_its_stdout_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            "fail",
            r#"echo '{"code":7}'; echo oops >&2; exit 1"#,
        );
        match SystemExec.run(&p, &[], b"", Duration::from_secs(10)) {
            Err(ExecError::Failed {
                stdout,
                stderr,
                status,
            }) => {
                assert_eq!(stdout, b"{\"code\":7}\n");
                assert_eq!(stderr, "oops");
                assert!(status.contains('1'), "{status}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn output_past_the_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "big", "exec cat /dev/zero");
        let err = SystemExec
            .run(&p, &[], b"", Duration::from_secs(10))
            .unwrap_err();
        assert!(matches!(err, ExecError::TooLarge), "{err}");
    }
}
