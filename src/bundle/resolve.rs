//! Resolving a path inside a directory that someone else can write to (a shared
//! volume, an image's rootfs) without ever following a symlink out of it.
//!
//! Every component is opened with `O_PATH | O_NOFOLLOW` relative to the directory
//! opened before it (the kubelet's `doSafeOpen`, pkg/volume/util/subpath); symlinks
//! are read from the opened link itself and resolved here, inside the root, so no
//! path is handed to the kernel whole. The result is an open file descriptor: what
//! it names cannot be swapped afterwards (CVE-2017-1002101, CVE-2021-25741).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};

/// Linux's limit on symlinks followed in one lookup (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// How symlinks that leave the root are treated.
#[derive(Debug, Clone)]
pub enum Scope {
    /// A volume: a symlink leading outside it is an error. An absolute target is a
    /// host path, allowed only when it points back inside `host_root`.
    Beneath { host_root: PathBuf },
    /// A container's rootfs: resolved as the container sees it, `/` being the root
    /// and `..` at the root staying there (containerd's securejoin).
    InRoot,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0} is a symlink leading outside the volume")]
    Escapes(String),
    #[error("{0}: too many levels of symbolic links")]
    Loop(String),
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{path}: {err}")]
    Io { path: String, err: io::Error },
}

fn io(path: &[String], err: impl Into<io::Error>) -> ResolveError {
    ResolveError::Io {
        path: shown(path),
        err: err.into(),
    }
}

fn shown(path: &[String]) -> String {
    if path.is_empty() {
        ".".into()
    } else {
        path.join("/")
    }
}

/// An open, resolved file.
pub struct Resolved {
    /// An `O_PATH` descriptor of it.
    pub fd: OwnedFd,
    pub is_dir: bool,
}

fn open_path(dir: impl AsFd, name: &Path) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Resolves `components` below `root`. Missing directories are created with
/// `create_dirs`' mode when given (the kubelet makes a missing subPath a
/// directory), else a missing component is [`ResolveError::NotFound`].
pub fn resolve(
    root: &Path,
    components: &[&str],
    scope: &Scope,
    create_dirs: Option<u32>,
) -> Result<Resolved, ResolveError> {
    let root_fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(&[root.display().to_string()], e))?;
    // Directories opened so far: the root first. `..` pops.
    let mut dirs: Vec<OwnedFd> = vec![root_fd];
    // The names walked, for messages.
    let mut walked: Vec<String> = Vec::new();
    let mut queue: VecDeque<OsString> = components.iter().map(OsString::from).collect();
    let mut links = 0;
    // The last symlink followed: an escape is reported as that link's.
    let mut via: Option<String> = None;
    let escapes = |via: &Option<String>, walked: &[String]| {
        ResolveError::Escapes(via.clone().unwrap_or_else(|| shown(walked)))
    };
    let mut leaf: Option<OwnedFd> = None;
    while let Some(name) = queue.pop_front() {
        if leaf.is_some() {
            return Err(ResolveError::NotADirectory(shown(&walked)));
        }
        match name.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                if dirs.len() > 1 {
                    dirs.pop();
                    walked.pop();
                } else if let Scope::Beneath { .. } = scope {
                    return Err(escapes(&via, &walked));
                }
                continue;
            }
            _ => {}
        }
        let dir = dirs.last().expect("the root is never popped");
        walked.push(name.to_string_lossy().into_owned());
        let fd = match open_path(dir, Path::new(&name)) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => {
                let Some(mode) = create_dirs else {
                    return Err(ResolveError::NotFound(shown(&walked)));
                };
                match mkdirat(dir, Path::new(&name), Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(io(&walked, e)),
                }
                let fd = open_path(dir, Path::new(&name)).map_err(|e| io(&walked, e))?;
                // mkdir(2) applies the umask: give the new directory its mode.
                if fstat(&fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
                    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
                    let _ = std::fs::set_permissions(
                        proc,
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    );
                }
                fd
            }
            Err(e) => return Err(io(&walked, e)),
        };
        let st = fstat(&fd).map_err(|e| io(&walked, e))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
        if kind == SFlag::S_IFLNK {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(ResolveError::Loop(shown(&walked)));
            }
            // Read from the link that was opened, not from its name again.
            let target = readlinkat(&fd, Path::new("")).map_err(|e| io(&walked, e))?;
            let target = PathBuf::from(target);
            via = Some(shown(&walked));
            walked.pop();
            let rest: Vec<OsString> = if target.is_absolute() {
                let relative = match scope {
                    Scope::InRoot => target.strip_prefix("/").unwrap_or(&target).to_path_buf(),
                    Scope::Beneath { host_root } => match target.strip_prefix(host_root) {
                        Ok(inside) => inside.to_path_buf(),
                        Err(_) => return Err(escapes(&via, &walked)),
                    },
                };
                dirs.truncate(1);
                walked.clear();
                relative.iter().map(OsString::from).collect()
            } else {
                target.iter().map(OsString::from).collect()
            };
            for part in rest.into_iter().rev() {
                queue.push_front(part);
            }
            continue;
        }
        if kind == SFlag::S_IFDIR {
            dirs.push(fd);
        } else {
            leaf = Some(fd);
        }
    }
    Ok(match leaf {
        Some(fd) => Resolved { fd, is_dir: false },
        None => Resolved {
            fd: dirs.pop().expect("the root is never popped"),
            is_dir: true,
        },
    })
}

/// Reads a file of a container's rootfs as the container would see it (symlinks
/// resolved inside the rootfs, so an image whose `/etc` is a link to the host's
/// does not make podshim read the host's files): `None` when it does not exist;
/// only a regular file of at most `max` bytes.
pub fn read_in_root(rootfs: &Path, path: &[&str], max: u64) -> Result<Option<Vec<u8>>, String> {
    let shown_path = format!("/{}", path.join("/"));
    match resolve(rootfs, path, &Scope::InRoot, None) {
        Ok(r) => read_resolved(r, &shown_path, max).map(Some),
        Err(ResolveError::NotFound(_)) => Ok(None),
        Err(e) => Err(format!("{shown_path}: {e}")),
    }
}

/// Reads the regular file `resolved` (at most `max` bytes); `shown_path` names it.
pub fn read_resolved(resolved: Resolved, shown_path: &str, max: u64) -> Result<Vec<u8>, String> {
    if resolved.is_dir {
        return Err(format!("{shown_path}: is a directory"));
    }
    // Its type from the O_PATH descriptor, before anything opens it: opening a
    // device node or a FIFO the image put there has effects of its own.
    let st = nix::sys::stat::fstat(&resolved.fd).map_err(|e| format!("{shown_path}: {e}"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(format!("{shown_path}: not a regular file"));
    }
    // Reopen the very inode for reading; O_NONBLOCK so that a FIFO does not block.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", resolved.fd.as_raw_fd()))
        .map_err(|e| format!("{shown_path}: {e}"))?;
    crate::fsutil::read_bounded(file, max).map_err(|e| match e {
        crate::fsutil::ReadError::TooLarge => {
            format!("{shown_path} is larger than {max} bytes")
        }
        crate::fsutil::ReadError::Io(e) => format!("{shown_path}: {e}"),
    })
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn beneath(root: &Path) -> Scope {
        Scope::Beneath {
            host_root: fs::canonicalize(root).unwrap(),
        }
    }

    fn real_path(r: &Resolved) -> PathBuf {
        fs::read_link(format!("/proc/self/fd/{}", r.fd.as_raw_fd())).unwrap()
    }

    #[test]
    fn symlinks_leading_out_of_a_volume_are_refused_at_any_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let vol = tmp.path().join("vol");
        fs::create_dir_all(vol.join("a")).unwrap();
        symlink("/etc", vol.join("abs")).unwrap();
        symlink("../../", vol.join("a/up")).unwrap();
        symlink("../vol/a", vol.join("sideways")).unwrap();
        let scope = beneath(&vol);
        for (sub, want) in [
            (
                &["abs", "ssh"][..],
                "abs is a symlink leading outside the volume",
            ),
            (
                &["a", "up"][..],
                "a/up is a symlink leading outside the volume",
            ),
        ] {
            let err = resolve(&vol, sub, &scope, Some(0o755)).err().unwrap();
            assert_eq!(err.to_string(), want);
        }
        assert!(!Path::new("/etc/ssh/podshim").exists());
        // `..` through the volume's own name: out (the name is the host's).
        assert!(matches!(
            resolve(&vol, &["sideways"], &scope, None),
            Err(ResolveError::Escapes(_))
        ));
    }

    #[test]
    fn symlinks_inside_a_volume_are_followed_and_missing_dirs_created() {
        let tmp = tempfile::tempdir().unwrap();
        let vol = tmp.path().join("vol");
        fs::create_dir_all(vol.join("real")).unwrap();
        symlink("real", vol.join("link")).unwrap();
        let abs_inside = fs::canonicalize(&vol).unwrap().join("real");
        symlink(&abs_inside, vol.join("abs-inside")).unwrap();
        let scope = beneath(&vol);
        let r = resolve(&vol, &["link", "x", "y"], &scope, Some(0o750)).unwrap();
        assert!(r.is_dir);
        assert_eq!(
            real_path(&r),
            fs::canonicalize(&vol).unwrap().join("real/x/y")
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(vol.join("real/x"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o750
        );
        let r = resolve(&vol, &["abs-inside"], &scope, None).unwrap();
        assert_eq!(real_path(&r), abs_inside);
        // Nothing is created without create_dirs.
        assert!(matches!(
            resolve(&vol, &["nope"], &scope, None),
            Err(ResolveError::NotFound(_))
        ));
    }

    #[test]
    fn loops_and_files_in_the_middle_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        fs::write(tmp.path().join("f"), "x").unwrap();
        let scope = beneath(tmp.path());
        assert!(matches!(
            resolve(tmp.path(), &["a"], &scope, None),
            Err(ResolveError::Loop(_))
        ));
        assert!(matches!(
            resolve(tmp.path(), &["f", "x"], &scope, Some(0o755)),
            Err(ResolveError::NotADirectory(_))
        ));
        let r = resolve(tmp.path(), &["f"], &scope, None).unwrap();
        assert!(!r.is_dir);
    }

    #[test]
    fn rootfs_reads_stay_in_the_rootfs_even_through_an_absolute_etc_link() {
        let tmp = tempfile::tempdir().unwrap();
        let host_etc = tmp.path().join("host-etc");
        fs::create_dir(&host_etc).unwrap();
        fs::write(host_etc.join("passwd"), "root:x:0:0:host:/:/bin/sh\n").unwrap();
        let rootfs = tmp.path().join("rootfs");
        fs::create_dir_all(rootfs.join("real-etc")).unwrap();
        fs::write(rootfs.join("real-etc/passwd"), "app:x:7:7::/:/bin/sh\n").unwrap();
        // /etc -> <host path>: the container would see <rootfs>/<host path>, absent.
        symlink(&host_etc, rootfs.join("etc")).unwrap();
        assert_eq!(read_in_root(&rootfs, &["etc", "passwd"], 1 << 20), Ok(None));
        // /etc -> /real-etc resolves inside the rootfs.
        fs::remove_file(rootfs.join("etc")).unwrap();
        symlink("/real-etc", rootfs.join("etc")).unwrap();
        assert_eq!(
            read_in_root(&rootfs, &["etc", "passwd"], 1 << 20).unwrap(),
            Some(b"app:x:7:7::/:/bin/sh\n".to_vec())
        );
        // `..` at the root stays at the root.
        fs::remove_file(rootfs.join("etc")).unwrap();
        symlink("../../../../real-etc", rootfs.join("etc")).unwrap();
        assert!(
            read_in_root(&rootfs, &["etc", "passwd"], 1 << 20)
                .unwrap()
                .is_some()
        );
        // Bounded, and only regular files.
        assert!(
            read_in_root(&rootfs, &["etc", "passwd"], 4)
                .unwrap_err()
                .contains("larger than 4 bytes")
        );
        fs::create_dir_all(rootfs.join("dev")).unwrap();
        symlink("/dev/zero", rootfs.join("real-etc/group")).unwrap();
        // /dev/zero inside the rootfs does not exist here: absent, not the host's.
        assert_eq!(read_in_root(&rootfs, &["etc", "group"], 1 << 20), Ok(None));
    }

    #[test]
    fn a_rootfs_file_that_is_a_fifo_is_refused_without_being_opened() {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path();
        fs::create_dir(rootfs.join("etc")).unwrap();
        let fifo = rootfs.join("etc/passwd");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // inotify sees every open for reading or writing (an O_PATH lookup is
        // none): what opening a device or FIFO would set off.
        // SAFETY: plain syscalls on a descriptor this test owns; the buffer is ours.
        let (events, read) = unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(fd >= 0);
            let path = CString::new(fifo.as_os_str().as_bytes()).unwrap();
            assert!(libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_OPEN) >= 0);
            let result = read_in_root(rootfs, &["etc", "passwd"], 1 << 20);
            let mut buf = [0u8; 256];
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            (n, result)
        };
        assert_eq!(read.unwrap_err(), "/etc/passwd: not a regular file");
        assert!(events < 0, "the FIFO was opened");
    }
}
