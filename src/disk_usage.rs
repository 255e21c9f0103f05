//! How much disk a directory a container writes into takes, as `du -x` counts
//! it (the kubelet measures a disk-backed emptyDir so, for its `sizeLimit`:
//! pkg/volume/util/fs `DiskUsage`): allocated blocks of every inode under it, a
//! hard-linked file once, without following a symlink or crossing into another
//! filesystem.
//!
//! The tree is a container's, so it may change under the walk and may be built
//! to hurt it: each directory is opened relative to its parent with
//! `O_NOFOLLOW` (a directory swapped for a symlink is not entered), the walk
//! stops once the total passes what the caller cares about, and it is bounded
//! in depth and entries (past them it fails, naming the bound, rather than
//! counting part of the tree as if it were all of it).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

/// The deepest directory the walk enters (each level holds one descriptor).
pub const MAX_DEPTH: usize = 256;
/// The most entries the walk looks at.
pub const MAX_ENTRIES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsageError {
    #[error("{path}: {errno}")]
    Io { path: String, errno: nix::Error },
    #[error("it is deeper than {MAX_DEPTH} directories")]
    TooDeep,
    #[error("it has more than {MAX_ENTRIES} entries")]
    TooMany,
}

/// The bytes allocated under `root` (itself included), or, once they pass
/// `above`, the total so far (which is then more than `above`).
pub fn disk_usage(root: &Path, above: u64) -> Result<u64, UsageError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |errno| UsageError::Io { path, errno }
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let top = open(root, flags, Mode::empty()).map_err(io(root))?;
    let st = fstat(&top).map_err(io(root))?;
    let dev = st.st_dev;
    let mut total = allocated(&st);
    let mut linked: HashSet<u64> = HashSet::new();
    let mut entries = 0u64;
    // One level per open directory: its descriptor and the names left to look at.
    let mut stack: Vec<(OwnedFd, Vec<OsString>)> = Vec::new();
    let names = list(&top).map_err(io(root))?;
    stack.push((top, names));
    while let Some(depth) = stack.len().checked_sub(1) {
        let (dir, names) = &mut stack[depth];
        let Some(name) = names.pop() else {
            stack.pop();
            continue;
        };
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(UsageError::TooMany);
        }
        let at = root.join(&name);
        let st = match fstatat(
            &*dir,
            name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            // Removed since the directory was read: it takes nothing now.
            Err(nix::Error::ENOENT) => continue,
            Err(e) => return Err(io(&at)(e)),
        };
        // Another filesystem mounted here is not the volume's (`du -x`).
        if st.st_dev != dev {
            continue;
        }
        if st.st_nlink > 1 && !is_dir(&st) && !linked.insert(st.st_ino) {
            continue;
        }
        total = total.saturating_add(allocated(&st));
        if total > above {
            return Ok(total);
        }
        if !is_dir(&st) {
            continue;
        }
        if depth + 1 >= MAX_DEPTH {
            return Err(UsageError::TooDeep);
        }
        let child = match openat(&*dir, name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            // Swapped for a symlink or something else, or removed, since the
            // stat: not entered.
            Err(nix::Error::ELOOP | nix::Error::ENOTDIR | nix::Error::ENOENT) => continue,
            Err(e) => return Err(io(&at)(e)),
        };
        let names = list(&child).map_err(io(&at))?;
        stack.push((child, names));
    }
    Ok(total)
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// st_blocks are 512-byte units whatever the filesystem's block size (stat(2)).
fn allocated(st: &FileStat) -> u64 {
    u64::try_from(st.st_blocks).unwrap_or(0).saturating_mul(512)
}

/// The names in the open directory `dir`, read through its descriptor (the
/// /proc magic link is the directory itself, not a path to resolve again).
fn list(dir: &OwnedFd) -> Result<Vec<OsString>, nix::Error> {
    let io = |e: std::io::Error| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .map_err(io)?
        .map(|e| e.map(|e| e.file_name()).map_err(io))
        .filter(|n| n.as_ref().map_or(true, |n| !n.as_bytes().is_empty()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn blocks_of(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::symlink_metadata(path).unwrap().blocks() * 512
    }

    #[test]
    fn usage_counts_blocks_once_per_inode_and_never_follows_a_link_out() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vol");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/data"), vec![1u8; 64 << 10]).unwrap();
        // A hard link is the same blocks; a link to a big file outside is a link.
        fs::hard_link(root.join("a/b/data"), root.join("again")).unwrap();
        let outside = tmp.path().join("big");
        fs::write(&outside, vec![1u8; 1 << 20]).unwrap();
        symlink(&outside, root.join("out")).unwrap();
        symlink(tmp.path(), root.join("up")).unwrap();
        let want: u64 = [
            root.clone(),
            root.join("a"),
            root.join("a/b"),
            root.join("a/b/data"),
            root.join("out"),
            root.join("up"),
        ]
        .iter()
        .map(|p| blocks_of(p))
        .sum();
        assert_eq!(disk_usage(&root, u64::MAX), Ok(want));
        assert!((64 << 10..1 << 20).contains(&want), "{want}");
        // Past what the caller cares about the walk stops, with more than that.
        let early = disk_usage(&root, 1).unwrap();
        assert!(early > 1 && early <= want, "{early}");
        // The root itself is never a symlink followed.
        assert!(matches!(
            disk_usage(&root.join("up"), u64::MAX),
            Err(UsageError::Io {
                errno: nix::Error::ELOOP | nix::Error::ENOTDIR,
                ..
            })
        ));
    }

    #[test]
    fn a_tree_deeper_than_the_bound_is_refused_not_counted_in_part() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vol");
        let mut deep = root.clone();
        for _ in 0..MAX_DEPTH {
            deep.push("d");
        }
        fs::create_dir_all(&deep).unwrap();
        assert_eq!(disk_usage(&root, u64::MAX), Err(UsageError::TooDeep));
        fs::remove_dir_all(deep.parent().unwrap()).unwrap();
        assert!(disk_usage(&root, u64::MAX).is_ok());
    }
}
