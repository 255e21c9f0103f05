//! Safe layer unpacking into a directory used as an overlayfs lowerdir.
//!
//! Threat model: a layer tar is untrusted input. Nothing may be created,
//! changed or removed outside the layer directory (CVE-2018-15664 /
//! CVE-2019-14271 "zip slip" style bugs in docker cp, CVE-2024-21626's family,
//! umoci's CVE-2021-29136). The unpacker therefore:
//!
//! - never builds a host path from an entry name: every operation is relative
//!   to a directory file descriptor that was opened one component at a time
//!   from the layer root with `O_NOFOLLOW | O_DIRECTORY`, so a symlink can never
//!   be followed, not even one created by an earlier entry of the same layer;
//! - never follows the last component either (`O_NOFOLLOW`, `O_EXCL`,
//!   `AT_SYMLINK_NOFOLLOW`, `linkat` without `AT_SYMLINK_FOLLOW`).
//!
//! Per case (an error always names the layer and the entry):
//!
//! | entry                                | decision |
//! |--------------------------------------|----------|
//! | a `..` component                     | refused: no legitimate layer needs it, and silently rewriting it would hide a crafted tar |
//! | an absolute name (`/etc/passwd`)     | taken relative to the layer root, like GNU tar and containerd do: umoci writes its root entry as `/`, so real layers have them, and after the walk below it cannot escape |
//! | a parent component that is a symlink | refused: writing through it is exactly the escape (`a -> /etc`, `a/passwd`) |
//! | a parent component that is a file    | refused: the tar is inconsistent |
//! | hardlink target with `..`, through a symlinked parent, not (yet) in this layer, or a directory | refused (an absolute target, like an absolute name, is inside the layer) |
//! | root entry (`.`/`./`) not a directory| refused: the layer root must stay a directory we own |
//! | a symlink with any target            | created as is: it is only resolved later, inside the container's root (runc resolves mounts with that root) |
//! | char/block devices, fifos            | skipped: a pod has no business getting device nodes from an image (runc creates `/dev`); the only devices we make are overlay whiteouts |
//! | xattrs                               | `user.*` and `security.capability` are kept (file capabilities, e.g. ping); `trusted.*` (notably `trusted.overlay.*`, which would forge whiteouts/redirects), `security.selinux` and others are dropped |
//!
//! Whiteouts (OCI image-spec layer.md#whiteouts) become overlayfs's own
//! format, because layers are overlay lowerdirs: `.wh.x` → a 0/0 character
//! device `x`; `.wh..wh..opq` → xattr `trusted.overlay.opaque=y` on its
//! directory. A whiteout only hides LOWER layers (layer.md: "Files that are
//! present in the same layer as a whiteout file can only be hidden by whiteout
//! files in subsequent layers"), so:
//! - an opaque marker never removes its siblings, before or after them;
//! - `.wh.x` next to a non-directory `x` of the same layer keeps `x` (it hides
//!   the lower `x` anyway); next to a directory `x`, that directory is made
//!   opaque so that only this layer's content shows, which is what "delete
//!   the lower x, then add x/" means. A real entry `x` replaces a whiteout device `x`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FileStat, Mode, SFlag, UtimensatFlags, fchmod, fstatat, futimens, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use tar::EntryType;

use super::ImageError;

/// xattr that marks an overlayfs directory opaque (Documentation/filesystems/overlayfs.rst).
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Unpack the (uncompressed) layer tar read from `reader` into `dest`, an
/// existing empty directory. `layer` names the layer in errors. The reader is
/// borrowed so that a hashing reader can be finished by the caller. `dest` is
/// left with its write bits cleared (read-only lowerdir).
pub fn unpack_layer<R: Read>(reader: &mut R, dest: &Path, layer: &str) -> Result<(), ImageError> {
    let root = open_dir(dest)?;
    let mut u = Unpacker {
        root,
        dest: dest.to_path_buf(),
        layer: layer.to_string(),
        dirs: Vec::new(),
        root_meta: None,
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| u.err_io("(archive)", "reading the tar", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| u.err_io("(archive)", "reading the tar", e))?;
        u.entry(entry)?;
    }
    u.finish()
}

fn open_dir(p: &Path) -> Result<OwnedFd, ImageError> {
    nix::fcntl::open(
        p,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::io(p, e.into()))
}

/// Ownership, mode, mtime and xattrs of an entry.
#[derive(Debug, Clone)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

struct Unpacker {
    root: OwnedFd,
    dest: PathBuf,
    layer: String,
    /// Directories whose mtime is set at the end (creating children changes it).
    dirs: Vec<(Vec<OsString>, i64)>,
    root_meta: Option<Meta>,
}

fn is_whiteout_dev(st: &FileStat) -> bool {
    (st.st_mode & libc::S_IFMT) == libc::S_IFCHR && st.st_rdev == 0
}

fn is_dir(st: &FileStat) -> bool {
    (st.st_mode & libc::S_IFMT) == libc::S_IFDIR
}

fn show(comps: &[OsString]) -> String {
    comps
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl Unpacker {
    fn refuse(&self, entry: &str, reason: impl Into<String>) -> ImageError {
        ImageError::UnsafeEntry {
            layer: self.layer.clone(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }

    fn err_io(&self, entry: &str, what: &str, e: io::Error) -> ImageError {
        ImageError::Io {
            path: self.dest.join(entry.trim_start_matches('/')),
            source: io::Error::new(e.kind(), format!("layer {}: {what}: {e}", self.layer)),
        }
    }

    fn err(&self, entry: &str, what: &str, e: Errno) -> ImageError {
        self.err_io(entry, what, e.into())
    }

    /// Split a raw entry name into components, refusing `..`; `.`, empty
    /// components (`./a//b`) and a leading `/` are dropped, so an absolute
    /// name is taken relative to the layer root.
    fn clean(&self, raw: &[u8], entry: &str, what: &str) -> Result<Vec<OsString>, ImageError> {
        let shown = String::from_utf8_lossy(raw).into_owned();
        let what = if shown == entry {
            what.to_string()
        } else {
            format!("{what} {shown:?}")
        };
        let mut out = Vec::new();
        for c in raw.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => return Err(self.refuse(entry, format!("{what} contains '..'"))),
                c => out.push(OsStr::from_bytes(c).to_os_string()),
            }
        }
        Ok(out)
    }

    /// Open the directory `comps` below the layer root, one component at a
    /// time, never following a symlink. With `create`, missing directories
    /// are made (0755 root:root, as tar does for implied parents) and a
    /// whiteout device in the way becomes an opaque directory.
    fn open_path(
        &self,
        comps: &[OsString],
        create: bool,
        entry: &str,
    ) -> Result<OwnedFd, ImageError> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut fd = nix::unistd::dup(&self.root).map_err(|e| self.err(entry, "dup", e))?;
        for (i, c) in comps.iter().enumerate() {
            let next = match openat(&fd, c.as_os_str(), flags, Mode::empty()) {
                Ok(n) => n,
                Err(Errno::ENOENT) if create => {
                    mkdirat(&fd, c.as_os_str(), Mode::from_bits_truncate(0o755))
                        .map_err(|e| self.err(entry, "creating a parent directory", e))?;
                    openat(&fd, c.as_os_str(), flags, Mode::empty())
                        .map_err(|e| self.err(entry, "opening a parent directory", e))?
                }
                Err(Errno::ENOENT) => {
                    return Err(self.refuse(
                        entry,
                        format!("{} does not exist in this layer", show(&comps[..=i])),
                    ));
                }
                Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                    let st = fstatat(&fd, c.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map_err(|_| self.err(entry, "opening a parent directory", e))?;
                    if create && is_whiteout_dev(&st) {
                        // `.wh.a` then `a/b`: the lower `a` is deleted and a
                        // new directory made, so only this layer's `a` shows.
                        unlinkat(&fd, c.as_os_str(), UnlinkatFlags::NoRemoveDir)
                            .map_err(|e| self.err(entry, "replacing a whiteout", e))?;
                        mkdirat(&fd, c.as_os_str(), Mode::from_bits_truncate(0o755))
                            .map_err(|e| self.err(entry, "creating a parent directory", e))?;
                        let n = openat(&fd, c.as_os_str(), flags, Mode::empty())
                            .map_err(|e| self.err(entry, "opening a parent directory", e))?;
                        set_opaque(&n).map_err(|e| self.err(entry, "setting opaque", e))?;
                        n
                    } else if (st.st_mode & libc::S_IFMT) == libc::S_IFLNK {
                        return Err(self.refuse(
                            entry,
                            format!(
                                "parent {} is a symlink; writing through it could escape the layer",
                                show(&comps[..=i])
                            ),
                        ));
                    } else {
                        return Err(self.refuse(
                            entry,
                            format!("parent {} is not a directory", show(&comps[..=i])),
                        ));
                    }
                }
                Err(e) => return Err(self.err(entry, "opening a parent directory", e)),
            };
            fd = next;
        }
        Ok(fd)
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta, ImageError> {
        let h = entry.header();
        let bad = |what: &str, e: io::Error| self.err_io(name, what, e);
        let uid = h.uid().map_err(|e| bad("uid", e))?;
        let gid = h.gid().map_err(|e| bad("gid", e))?;
        let (uid, gid) = match (u32::try_from(uid), u32::try_from(gid)) {
            (Ok(u), Ok(g)) if u != u32::MAX && g != u32::MAX => (u, g),
            _ => return Err(self.refuse(name, format!("uid/gid {uid}:{gid} out of range"))),
        };
        let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let mtime = h.mtime().map_err(|e| bad("mtime", e))?;
        let mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(|e| bad("pax header", e))? {
            for ext in pax {
                let ext = ext.map_err(|e| bad("pax header", e))?;
                let Some(key) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                    continue;
                };
                if key.starts_with(b"user.") || key == b"security.capability" {
                    xattrs.push((
                        OsStr::from_bytes(key).to_os_string(),
                        ext.value_bytes().to_vec(),
                    ));
                } else {
                    tracing::debug!(layer = %self.layer, entry = name, xattr = %String::from_utf8_lossy(key), "xattr dropped");
                }
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }

    /// chown, then chmod (chown clears setuid bits), xattrs (chown also
    /// clears security.capability), then mtime.
    fn apply_meta(&self, fd: &OwnedFd, m: &Meta, name: &str) -> Result<(), ImageError> {
        fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
            .map_err(|e| self.err(name, "chown", e))?;
        fchmod(fd, Mode::from_bits_truncate(m.mode)).map_err(|e| self.err(name, "chmod", e))?;
        for (k, v) in &m.xattrs {
            match fsetxattr(fd, k, v) {
                Ok(()) => {}
                Err(Errno::ENOTSUP) => {
                    tracing::warn!(layer = %self.layer, entry = name, xattr = ?k, "filesystem does not support this xattr; dropped")
                }
                Err(e) => return Err(self.err(name, &format!("setting xattr {k:?}"), e)),
            }
        }
        let t = TimeSpec::new(m.mtime, 0);
        futimens(fd, &t, &t).map_err(|e| self.err(name, "setting mtime", e))
    }

    /// Make room for a new non-directory (or directory, `want_dir`) entry
    /// `base` in `parent`: a later tar entry replaces an earlier one. Returns
    /// whether a whiteout device was replaced, and whether an existing
    /// directory is to be reused.
    fn make_room(
        &self,
        parent: &OwnedFd,
        base: &OsStr,
        want_dir: bool,
        name: &str,
    ) -> Result<(bool, bool), ImageError> {
        let st = match fstatat(parent, base, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok((false, false)),
            Err(e) => return Err(self.err(name, "stat", e)),
        };
        if is_dir(&st) {
            if want_dir {
                return Ok((false, true));
            }
            // The directory was made by this layer (the layer dir started
            // empty); remove it through the verified parent fd. std's
            // remove_dir_all does not follow symlinks (CVE-2022-21658 fix).
            let p = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd())).join(base);
            std::fs::remove_dir_all(&p)
                .map_err(|e| self.err_io(name, "replacing a directory", e))?;
            return Ok((false, false));
        }
        unlinkat(parent, base, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| self.err(name, "replacing an entry", e))?;
        Ok((is_whiteout_dev(&st), false))
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let etype = entry.header().entry_type();
        if matches!(etype, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        let comps = self.clean(&raw, &name, "name")?;
        let Some((base, parent)) = comps.split_last() else {
            // The layer root itself.
            if !etype.is_dir() {
                return Err(self.refuse(
                    &name,
                    format!("the layer root must be a directory, not {etype:?}"),
                ));
            }
            self.root_meta = Some(self.meta(&mut entry, &name)?);
            return Ok(());
        };
        let base_bytes = base.as_bytes();
        if let Some(hidden) = base_bytes.strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(parent, base_bytes, hidden, &name);
        }
        match etype {
            EntryType::Directory => {
                let m = self.meta(&mut entry, &name)?;
                let pfd = self.open_path(parent, true, &name)?;
                let (was_whiteout, reuse) = self.make_room(&pfd, base, true, &name)?;
                if !reuse {
                    mkdirat(&pfd, base.as_os_str(), Mode::from_bits_truncate(0o700))
                        .map_err(|e| self.err(&name, "mkdir", e))?;
                }
                let fd = openat(
                    &pfd,
                    base.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.err(&name, "opening directory", e))?;
                if was_whiteout {
                    set_opaque(&fd).map_err(|e| self.err(&name, "setting opaque", e))?;
                }
                self.apply_meta(&fd, &m, &name)?;
                self.dirs.push((comps.clone(), m.mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let m = self.meta(&mut entry, &name)?;
                let pfd = self.open_path(parent, true, &name)?;
                self.make_room(&pfd, base, false, &name)?;
                let fd = openat(
                    &pfd,
                    base.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| self.err(&name, "creating file", e))?;
                let mut f = File::from(fd);
                io::copy(&mut entry, &mut f).map_err(|e| self.err_io(&name, "writing file", e))?;
                let fd = OwnedFd::from(f);
                self.apply_meta(&fd, &m, &name)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.refuse(&name, "symlink without a target"))?
                    .into_owned();
                let m = self.meta(&mut entry, &name)?;
                let pfd = self.open_path(parent, true, &name)?;
                self.make_room(&pfd, base, false, &name)?;
                // The target is stored verbatim and never resolved here.
                symlinkat(OsStr::from_bytes(&target), &pfd, base.as_os_str())
                    .map_err(|e| self.err(&name, "creating symlink", e))?;
                fchownat(
                    &pfd,
                    base.as_os_str(),
                    Some(Uid::from_raw(m.uid)),
                    Some(Gid::from_raw(m.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.err(&name, "chown symlink", e))?;
                let t = TimeSpec::new(m.mtime, 0);
                utimensat(
                    &pfd,
                    base.as_os_str(),
                    &t,
                    &t,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| self.err(&name, "setting symlink mtime", e))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.refuse(&name, "hardlink without a target"))?
                    .into_owned();
                let tcomps = self.clean(&target, &name, "hardlink target")?;
                let Some((tbase, tparent)) = tcomps.split_last() else {
                    return Err(self.refuse(&name, "hardlink to the layer root"));
                };
                // The target's parents are walked like any entry's (no
                // symlink followed), and the target must already be a
                // non-directory of this layer.
                let tfd = self.open_path(tparent, false, &name)?;
                let st = match fstatat(&tfd, tbase.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(Errno::ENOENT) => {
                        return Err(self.refuse(
                            &name,
                            format!("hardlink target {} is not in this layer", show(&tcomps)),
                        ));
                    }
                    Err(e) => return Err(self.err(&name, "stat hardlink target", e)),
                };
                if is_dir(&st) || is_whiteout_dev(&st) {
                    return Err(self.refuse(
                        &name,
                        format!(
                            "hardlink target {} is a directory or a whiteout",
                            show(&tcomps)
                        ),
                    ));
                }
                let pfd = self.open_path(parent, true, &name)?;
                if tcomps == comps {
                    return Ok(()); // a link to itself: nothing to do
                }
                self.make_room(&pfd, base, false, &name)?;
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
                linkat(
                    &tfd,
                    tbase.as_os_str(),
                    &pfd,
                    base.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| self.err(&name, "creating hardlink", e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                tracing::debug!(layer = %self.layer, entry = %name, "device node or fifo skipped");
            }
            other => {
                return Err(self.refuse(&name, format!("unsupported tar entry type {other:?}")));
            }
        }
        Ok(())
    }

    fn whiteout(
        &mut self,
        parent: &[OsString],
        base: &[u8],
        hidden: &[u8],
        name: &str,
    ) -> Result<(), ImageError> {
        if base == OPAQUE_MARKER {
            // Marks the directory opaque; its siblings in this layer stay.
            let fd = self.open_path(parent, true, name)?;
            return set_opaque(&fd).map_err(|e| self.err(name, "setting opaque", e));
        }
        if hidden.starts_with(WHITEOUT_PREFIX) {
            // `.wh..wh.plnk` and friends are aufs bookkeeping, not content.
            tracing::debug!(layer = %self.layer, entry = name, "aufs metadata skipped");
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(self.refuse(name, "whiteout of nothing"));
        }
        let pfd = self.open_path(parent, true, name)?;
        let hidden = OsStr::from_bytes(hidden);
        match fstatat(&pfd, hidden, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_dir(&st) => {
                let fd = openat(
                    &pfd,
                    hidden,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.err(name, "opening directory", e))?;
                set_opaque(&fd).map_err(|e| self.err(name, "setting opaque", e))
            }
            // This layer's own `x` already hides the lower one: keep it.
            Ok(_) => Ok(()),
            Err(Errno::ENOENT) => {
                mknodat(&pfd, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| self.err(name, "creating whiteout device", e))?;
                fchownat(
                    &pfd,
                    hidden,
                    Some(Uid::from_raw(0)),
                    Some(Gid::from_raw(0)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.err(name, "chown whiteout", e))
            }
            Err(e) => Err(self.err(name, "stat", e)),
        }
    }

    fn finish(self) -> Result<(), ImageError> {
        for (comps, mtime) in self.dirs.iter().rev() {
            let name = show(comps);
            // A later entry may have replaced the directory: nothing to do.
            let Ok(fd) = self.open_path(comps, false, &name) else {
                continue;
            };
            let t = TimeSpec::new(*mtime, 0);
            futimens(&fd, &t, &t).map_err(|e| self.err(&name, "setting mtime", e))?;
        }
        let mut m = self.root_meta.clone().unwrap_or(Meta {
            uid: 0,
            gid: 0,
            mode: 0o755,
            mtime: 0,
            xattrs: Vec::new(),
        });
        // Read-only: the layer is shared by every container using it and is
        // never written again (overlay only ever reads a lowerdir).
        m.mode &= !0o222;
        self.apply_meta(&self.root, &m, ".")
    }
}

fn set_opaque(fd: &impl AsFd) -> Result<(), Errno> {
    fsetxattr(fd, OsStr::new(OPAQUE_XATTR), b"y")
}

fn fsetxattr(fd: &impl AsFd, name: &OsStr, value: &[u8]) -> Result<(), Errno> {
    let name = std::ffi::CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid fd, NUL-terminated name, value pointer/length from a slice.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// Read an xattr of a path (no symlink following); `None` when absent.
pub fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let p = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let n = std::ffi::CString::new(name)?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(r as usize);
    Ok(Some(buf))
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
pub(crate) mod tests;
