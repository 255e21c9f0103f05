//! Bringing the pod's loopback interface up. runc does it when it creates a network
//! namespace; youki does not; podshim relies on neither (issue #3).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Sets `lo` up in the network namespace of `pid`. Runs on a short-lived thread of
/// its own: setns(2) changes only the calling thread's namespace.
pub fn loopback_up(pid: i32) -> io::Result<()> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || -> io::Result<()> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        set_up("lo")
    })
    .join()
    .map_err(|_| io::Error::other("loopback thread panicked"))?
}

fn set_up(name: &str) -> io::Result<()> {
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
