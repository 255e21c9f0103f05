//! The mounts podshim makes on the host, behind [`Mounter`] (ARCHITECTURE.md rule
//! 2), and the mount table it reads to know what is mounted.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// The mounts podshim makes on the host.
pub trait Mounter {
    /// An overlay with `options` as [`crate::run_plan::SetupStep::overlay_options`]
    /// writes them.
    fn mount_overlay(&self, target: &Path, options: &str) -> io::Result<()>;
    fn mount_tmpfs(&self, target: &Path, options: &str) -> io::Result<()>;
    /// Binds the file or directory `source` is open on (the kubelet's
    /// `doBindSubPath`: the kernel binds that very inode, so no path is resolved
    /// again between the check and the mount).
    fn bind_fd(&self, source: BorrowedFd<'_>, target: &Path) -> io::Result<()>;
    fn unmount(&self, target: &Path) -> io::Result<()>;
}

/// Real mounts with mount(2).
pub struct SystemMounter;

impl Mounter for SystemMounter {
    fn mount_overlay(&self, target: &Path, options: &str) -> io::Result<()> {
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(options),
        )
        .map_err(io::Error::from)
    }

    fn mount_tmpfs(&self, target: &Path, options: &str) -> io::Result<()> {
        use nix::mount::MsFlags;
        nix::mount::mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options),
        )
        .map_err(io::Error::from)
    }

    fn bind_fd(&self, source: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", source.as_raw_fd()));
        nix::mount::mount(
            Some(&proc_path),
            target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(io::Error::from)
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)
    }
}

/// Whether `path` is a mount point (listed in mountinfo: bind mounts of the same
/// filesystem keep the device, so comparing devices is not enough).
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    Ok(MountTable::read()?.contains(path))
}

/// One reading of this namespace's mount points, for code that checks many paths
/// (each reading parses all of /proc/self/mountinfo).
pub struct MountTable(std::collections::HashSet<PathBuf>);

impl MountTable {
    pub fn read() -> io::Result<MountTable> {
        Ok(MountTable(mount_points()?.into_iter().collect()))
    }

    pub fn contains(&self, path: &Path) -> bool {
        fs::canonicalize(path).is_ok_and(|p| self.0.contains(&p))
    }
}

/// Mount points of this mount namespace (`/proc/self/mountinfo`, field 5, with the
/// kernel's octal escapes undone). An error, never an empty list, when it cannot
/// be read: callers decide from it what is safe to remove.
pub fn mount_points() -> io::Result<Vec<PathBuf>> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| io::Error::new(e.kind(), format!("read /proc/self/mountinfo: {e}")))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .collect())
}

/// The mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok(mount_points()?
        .into_iter()
        .filter(|m| m.starts_with(&canonical))
        .collect())
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything mounted under `dir`, deepest first. A directory that no
/// longer exists (a wiped state directory) is matched by its path as given.
pub fn unmount_all_under(dir: &Path, mounter: &dyn Mounter) -> io::Result<()> {
    let mut mounts = mounts_under(dir)?;
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    // A path listed twice holds stacked mounts: unmount it twice.
    for m in &mounts {
        mounter
            .unmount(m)
            .map_err(|e| io::Error::new(e.kind(), format!("unmount {}: {e}", m.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b\011c"), "/a b\tc");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
    }
}
