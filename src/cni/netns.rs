//! A pod's network namespace, made before its infra and pinned by a bind mount
//! on a file of the pod's directory, as containerd's CRI does
//! (`pkg/netns`): CNI ADD runs before any container, so the pod IP is known when
//! the bundles are written (downward env, `/etc/hosts`), and DEL finds the
//! namespace — with its interface, which bridge needs to remove its NAT chain —
//! even when the infra has died. The infra joins it by path; the others join the
//! infra's as before. A reboot unpins it; DEL then runs without it.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

/// `NSFS_MAGIC` (linux/magic.h): what statfs says of a namespace file.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Makes a new network namespace with its loopback up and pins it at `path`,
/// which must not exist. On failure nothing is left at `path`.
pub fn pin_new(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)?;
    let target = path.to_path_buf();
    // unshare(CLONE_NEWNET) changes the calling thread's namespace only: a
    // thread of its own, which ends once the namespace is pinned.
    let made = std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        set_up("lo")?;
        let own = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
        mount(
            Some(own.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(io::Error::from)
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")));
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Pins the network namespace of the running process `pid` at `path` (which
/// must not exist): for a DEL of a pod whose pin was lost with its state while
/// its infra still runs. The namespace is opened, then the process checked to be
/// alive through a pidfd taken before: the namespace is that process's. Whether
/// that process is still the infra (its pid may have been given again since the
/// caller learnt it) the caller checks after, with the runtime. The host's own
/// namespace is refused.
pub fn pin_from(pid: i32, path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let gone = || io::Error::new(io::ErrorKind::NotFound, format!("process {pid} has exited"));
    let pidfd = crate::pidfd::open(pid).ok_or_else(gone)?;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    if crate::pidfd::has_exited(&pidfd) {
        return Err(gone());
    }
    // A hostNetwork pod's infra, or a pid given to a host process: never pinned
    // as a pod's (bridge's DEL would remove the host's eth0).
    if same_namespace(&ns.metadata()?, Path::new(HOST)) {
        return Err(io::Error::other(format!(
            "process {pid} is in this host's network namespace"
        )));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)?;
    let source = format!("/proc/self/fd/{}", ns.as_raw_fd());
    let pinned = mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io::Error::from);
    if pinned.is_err() {
        let _ = std::fs::remove_file(path);
    }
    pinned
}

/// The network namespace podshim itself runs in: the host's.
const HOST: &str = "/proc/self/ns/net";

fn same_namespace(ns: &std::fs::Metadata, other: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(other).is_ok_and(|o| o.dev() == ns.dev() && o.ino() == ns.ino())
}

/// Whether `path` is the network namespace podshim runs in (the host's).
pub fn is_hosts(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| same_namespace(&m, Path::new(HOST)))
}

/// Whether `path` is a pinned namespace (not a plain file left by a crash).
pub fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}

/// Unpins the namespace at `path` and removes the file; nothing there is fine.
/// The namespace itself ends with its last process.
pub fn unpin(path: &Path) -> io::Result<()> {
    while is_pinned(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(io::Error::from)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Sets `lo` up in the network namespace of `pid` (runc does it when it makes a
/// network namespace; youki does not; podshim relies on neither, issue #3). Runs
/// on a short-lived thread of its own: setns(2) changes only the calling
/// thread's namespace.
pub fn loopback_up(pid: i32) -> io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || -> io::Result<()> {
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        set_up("lo")
    })
    .join()
    .map_err(|_| io::Error::other("loopback thread panicked"))?
}

/// `ip link set NAME up` in the calling thread's namespace (SIOCSIFFLAGS).
pub(crate) fn set_up(name: &str) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain socket/ioctl calls on a zeroed `ifreq` whose name fits (IFNAMSIZ).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_namespace_has_loopback_up_and_unpins_without_a_trace() {
        if !nix::unistd::geteuid().is_root() {
            crate::testing::cannot_run("pinning a network namespace needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("netns");
        pin_new(&path).unwrap();
        assert!(is_pinned(&path));
        // A second pin on the same path is refused and leaves the first alone.
        assert!(pin_new(&path).is_err());
        assert!(is_pinned(&path));
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", path.display()))
            .args([
                "cat",
                "/sys/class/net/lo/operstate",
                "/sys/class/net/lo/flags",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // lo's operstate is "unknown" when up; flags has IFF_UP (0x1).
        let flags = text.lines().nth(1).unwrap().trim_start_matches("0x");
        assert_eq!(u32::from_str_radix(flags, 16).unwrap() & 1, 1, "{text}");
        unpin(&path).unwrap();
        assert!(!path.exists());
        // Unpinning what is gone is fine (a second teardown).
        unpin(&path).unwrap();
    }

    #[test]
    fn a_running_processs_namespace_is_pinned_and_an_exited_ones_is_not() {
        if !nix::unistd::geteuid().is_root() {
            crate::testing::cannot_run("pinning a network namespace needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let own = tmp.path().join("own");
        pin_new(&own).unwrap();
        let mut child = std::process::Command::new("nsenter")
            .arg(format!("--net={}", own.display()))
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // nsenter execs sleep once it has joined: wait for that.
        let joined =
            || std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e.ends_with("sleep"));
        let t0 = std::time::Instant::now();
        while !joined() && t0.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let again = tmp.path().join("again");
        pin_from(pid, &again).unwrap();
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        assert_eq!(ino(&again), ino(&own), "the same namespace");
        unpin(&again).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let err = pin_from(pid, &again).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(!again.exists());
        unpin(&own).unwrap();
    }

    #[test]
    fn a_plain_file_is_not_a_pinned_namespace() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("netns");
        std::fs::write(&path, "").unwrap();
        assert!(!is_pinned(&path));
        unpin(&path).unwrap();
        assert!(!path.exists());
    }
}
