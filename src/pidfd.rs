//! Process file descriptors (pidfd_open(2), Linux 5.3): a process's exit seen
//! without waiting for it, so the one waiter stays the one waiter (ARCHITECTURE
//! rule 3) and timeouts need no polling of the runtime.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// A pidfd of `pid` (Linux 5.3): readable once the process has exited, whoever its
/// parent is. `None` when it is gone already.
pub fn open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: a plain syscall; the result is checked before it is owned.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a fresh descriptor returned by the kernel.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `signal` to the process of `fd` (pidfd_send_signal(2), Linux 5.1):
/// never to another process that got its pid since the pidfd was opened.
pub fn send_signal(fd: &OwnedFd, signal: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor we own; no siginfo is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether the process of `fd` has exited, now (a pidfd is readable then).
pub fn has_exited(fd: &OwnedFd) -> bool {
    let mut polls = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut polls, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Waits up to `timeout` for every pidfd to become readable (its process exited).
pub fn wait_all(fds: &[OwnedFd], timeout: Duration) -> bool {
    let deadline = crate::teardown::far_after(Instant::now(), timeout);
    let mut pending: Vec<&OwnedFd> = fds.iter().collect();
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut polls: Vec<PollFd> = pending
            .iter()
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(
            &mut polls,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return false,
            Ok(_) => {
                let done: Vec<bool> = polls
                    .iter()
                    .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                    .collect();
                let mut i = 0;
                pending.retain(|_| {
                    i += 1;
                    !done[i - 1]
                });
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfds_tell_when_a_process_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let fd = open(child.id() as i32).unwrap();
        // Still running: not readable.
        assert!(!wait_all(std::slice::from_ref(&fd), Duration::ZERO));
        child.kill().unwrap();
        assert!(wait_all(std::slice::from_ref(&fd), Duration::from_secs(30)));
        let _ = child.wait();
    }
}
