//! How much disk a directory a container writes into takes, as `du -x` counts
//! it (the kubelet measures a disk-backed emptyDir so, for its `sizeLimit`:
//! pkg/volume/util/fs `DiskUsage`): allocated blocks of every inode under it, a
//! hard-linked file once, without following a symlink or crossing into another
//! filesystem.
//!
//! The tree is a container's, so it may change under the walk and may be built
//! to hurt it: each directory is opened relative to its parent with
//! `O_NOFOLLOW` (a directory swapped for a symlink is not entered) and checked
//! to be the one stat'ed, directories are read as the walk goes (never whole
//! into memory), the walk stops once the total passes what the caller cares
//! about, and it is bounded in depth (one descriptor per level) and entries:
//! past them it fails, naming the bound, rather than counting part of the tree
//! as if it were all of it (the caller takes that as over its limit).

use std::collections::HashSet;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, OwningIter};
use nix::fcntl::OFlag;
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
        let path = format!("{path:?}");
        move |errno| UsageError::Io { path, errno }
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let top = Dir::open(root, flags, Mode::empty()).map_err(io(root))?;
    let st = fstat(&top).map_err(io(root))?;
    let dev = st.st_dev;
    let mut total = allocated(&st);
    if total > above {
        return Ok(total);
    }
    let mut linked: HashSet<u64> = HashSet::new();
    let mut entries = 0u64;
    // One level per open directory, read as it goes (never a whole directory
    // in memory): its entries and its path, for messages.
    let mut stack: Vec<(OwningIter, PathBuf)> = vec![(top.into_iter(), root.to_path_buf())];
    while let Some(depth) = stack.len().checked_sub(1) {
        let (dir, path) = &mut stack[depth];
        let entry = match dir.next() {
            None => {
                stack.pop();
                continue;
            }
            Some(Ok(e)) => e,
            Some(Err(e)) => return Err(io(path)(e)),
        };
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(UsageError::TooMany);
        }
        let at = path.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        // SAFETY: the descriptor is the iterator's, which outlives this use.
        let fd = unsafe { BorrowedFd::borrow_raw(dir.as_raw_fd()) };
        let st = match fstatat(fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
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
        let child = match Dir::openat(fd, name, flags, Mode::empty()) {
            Ok(d) => d,
            // Swapped for a symlink or something else, or removed, since the
            // stat: not entered.
            Err(nix::Error::ELOOP | nix::Error::ENOTDIR | nix::Error::ENOENT) => continue,
            Err(e) => return Err(io(&at)(e)),
        };
        // The directory stat'ed, not one renamed into its place since (which
        // may be on another filesystem, or counted already).
        match fstat(&child) {
            Ok(c) if c.st_dev == st.st_dev && c.st_ino == st.st_ino => {}
            Ok(_) => continue,
            Err(e) => return Err(io(&at)(e)),
        }
        stack.push((child.into_iter(), at));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
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
