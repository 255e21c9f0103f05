//! `podshim watch DIR`: keep the pods of the manifests in DIR running, as the kubelet
//! does for static pods (`--pod-manifest-path`, pkg/kubelet/config/file.go and
//! file_linux.go).
//!
//! A new file starts its pods, a changed one is applied again, a removed one stops
//! them. inotify only says *when* to look: every look is a full listing of DIR, and the
//! listing is the truth. [`reconcile`] compares it with what was done before ([`Known`])
//! and decides ([`Action`]); the side effects are behind [`Applier`]. The directory is
//! also re-listed every [`WatchOptions::period`] (the kubelet's `fileCheckFrequency`,
//! 20 s), in case an event was missed, and that periodic pass asks the applier whether
//! every unchanged file's pods are still there ([`Applier::present`]), so that pods lost
//! with a wiped state root (a reboot) come back. On start every file is applied.
//!
//! Where podshim differs from the kubelet, on purpose:
//! - Only names ending in `.yaml`, `.yml` or `.json` are read (the kubelet reads every
//!   name not starting with "."): a backup left beside a manifest (`web.yaml.bak`,
//!   `web.yaml~`, `web.yaml.dpkg-old`) or an editor's probe file (vim's `4913`) would
//!   otherwise start its pods a second time or fail to parse on every re-list.
//! - A file that cannot be read (an I/O error, over the size bound, replaced by a
//!   symlink or a FIFO) keeps its pods running and is reported once; the kubelet drops
//!   a file it fails to parse from its set, which stops its pods. Stopping pods is only
//!   done for a file that is gone.
//! - DIR itself vanishing (deleted, moved away, unmounted) also keeps the pods running
//!   (the kubelet sends an empty set, stopping them all): it is more often a filesystem
//!   being remounted or a directory being swapped than a request to stop everything.
//!   DIR is opened again by path at every pass, so when it comes back, or when DIR is a
//!   symlink that now points elsewhere, the pods follow the files found there. A DIR
//!   that cannot be opened at start is an error, so a mistyped path is not a silent wait.
//! - Symlinks inside DIR are not followed (the kubelet follows them): the manifests
//!   are read with `O_NOFOLLOW` relative to the directory's fd, and only regular files
//!   are read, with `O_NONBLOCK` so a FIFO cannot hang the watcher.
//!
//! On stop the loop returns without removing anything: the pods keep running, as when
//! the kubelet stops; the caller decides what follows.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::stat::{FileStat, Mode, SFlag};
use sha2::{Digest as _, Sha256};

/// What `podshim watch` needs from the rest of podshim. Each call names the manifest
/// file by its full path (DIR joined with the entry's name).
pub trait Applier {
    /// Make the pods of `file` run as it says now: start the new ones, replace the
    /// changed ones. Called for a new file, a changed one, a failed one again on the next
    /// periodic pass, and an unchanged one whose pods are not all [`present`](Self::present).
    fn apply(&mut self, file: &Path) -> Result<(), String>;
    /// Stop the pods that were applied from `file`. The file is gone by then (or is no
    /// longer a manifest), so the applier must remember what it applied from it.
    fn remove(&mut self, file: &Path) -> Result<(), String>;
    /// Whether every pod `file` asks for exists. Asked on the periodic pass for a file
    /// that did not change; `false` makes the loop apply it again.
    fn present(&mut self, file: &Path) -> bool;
}

/// How `podshim watch` looks at DIR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchOptions {
    /// DIR is re-listed at least this often, and unchanged files are checked for
    /// presence then. The kubelet's `fileCheckFrequency` defaults to 20 s.
    pub period: Duration,
    /// After an event, wait until this long passes with no new event before listing, so
    /// that a burst (an editor moving the old file away and writing the new one) is seen
    /// as one change and not as a removal followed by a new file.
    pub debounce: Duration,
    /// A manifest larger than this is not read (reported, its pods left as they are).
    pub max_file_bytes: u64,
    /// At most this many manifests (by name order) are read per listing; the ones after
    /// are reported and left as they are.
    pub max_files: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            period: Duration::from_secs(20),
            debounce: Duration::from_millis(100),
            max_file_bytes: 4 << 20,
            max_files: 4096,
        }
    }
}

/// Why [`run`] gave up. Each names DIR.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// DIR could not be opened (at start; later this is logged and retried).
    #[error("{}: cannot open the manifest directory: {source}", dir.display())]
    Dir { dir: PathBuf, source: Errno },
    /// inotify could not be set up, or failed while watching.
    #[error("{}: cannot watch the manifest directory for changes (inotify): {source}", dir.display())]
    Inotify { dir: PathBuf, source: Errno },
    /// The options cannot work (a zero period would re-list without pause).
    #[error("{}: invalid watch options: {message}", dir.display())]
    Options { dir: PathBuf, message: String },
}

/// SHA-256 of a manifest's content.
pub type Digest = [u8; 32];

/// One manifest of a listing: its content's digest, or why it could not be read.
pub type Entry = Result<Digest, String>;

/// Why DIR is being listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The period elapsed (or the watcher just started): unchanged files are checked
    /// for presence, and failed applies and removes are retried.
    Periodic,
    /// Events came: only changes are acted on, so a failing file is not retried faster
    /// than the period.
    Event,
}

/// What was last done with one file's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pods {
    /// Nothing (the file was never readable): nothing to remove.
    Never,
    /// Applied with this content.
    Applied(Digest),
    /// Applying this content failed.
    ApplyFailed(Digest),
    /// The file went away and removing its pods failed.
    RemoveFailed,
}

/// The watcher's memory of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// What was last done with the file's pods.
    pub pods: Pods,
    /// The read error last reported for this file, so that it is reported once (until
    /// it changes or the file is readable again).
    pub reported: Option<String>,
}

/// One thing to do, decided by [`reconcile`] and carried out by the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Log that the file cannot be read; its pods keep running.
    Report(PathBuf, String),
    /// The file, reported unreadable before, can be read again.
    Recovered(PathBuf),
    /// The file is gone and nothing was applied from it: drop it from memory.
    Forget(PathBuf),
    /// The file is gone: stop its pods.
    Remove(PathBuf),
    /// Apply the file, whose content has this digest.
    Apply(PathBuf, Digest),
    /// The file did not change: apply it again if its pods are not all present.
    CheckPresent(PathBuf, Digest),
}

/// Decide what to do, from what was done (`known`) and what DIR holds now (`listing`).
///
/// Actions come in this order: bookkeeping (report, recovered, forget), then removes,
/// then applies, then presence checks; so when a manifest is renamed (or a pod moves
/// from one file to another) the old file's pods are stopped before the new file's are
/// started, and the applier never sees the same pod asked for twice.
pub fn reconcile(
    known: &BTreeMap<PathBuf, Known>,
    listing: &BTreeMap<PathBuf, Entry>,
    pass: Pass,
) -> Vec<Action> {
    let periodic = pass == Pass::Periodic;
    let (mut notes, mut removes, mut applies, mut checks) = (vec![], vec![], vec![], vec![]);
    for (path, entry) in listing {
        let k = known.get(path);
        let reported = k.and_then(|k| k.reported.as_ref());
        match entry {
            Ok(digest) => {
                if reported.is_some() {
                    notes.push(Action::Recovered(path.clone()));
                }
                match k.map(|k| &k.pods) {
                    None | Some(Pods::Never) | Some(Pods::RemoveFailed) => {
                        applies.push(Action::Apply(path.clone(), *digest))
                    }
                    Some(Pods::Applied(old)) if old != digest => {
                        applies.push(Action::Apply(path.clone(), *digest))
                    }
                    Some(Pods::Applied(_)) if periodic => {
                        checks.push(Action::CheckPresent(path.clone(), *digest))
                    }
                    Some(Pods::Applied(_)) => {}
                    Some(Pods::ApplyFailed(old)) if old != digest || periodic => {
                        applies.push(Action::Apply(path.clone(), *digest))
                    }
                    Some(Pods::ApplyFailed(_)) => {}
                }
            }
            // A read error is taken as transient: the pods stay as they are.
            Err(message) => {
                if reported != Some(message) {
                    notes.push(Action::Report(path.clone(), message.clone()));
                }
            }
        }
    }
    for (path, k) in known {
        if listing.contains_key(path) {
            continue;
        }
        match k.pods {
            Pods::Never => notes.push(Action::Forget(path.clone())),
            Pods::Applied(_) | Pods::ApplyFailed(_) => removes.push(Action::Remove(path.clone())),
            Pods::RemoveFailed if periodic => removes.push(Action::Remove(path.clone())),
            Pods::RemoveFailed => {}
        }
    }
    notes.extend(removes);
    notes.extend(applies);
    notes.extend(checks);
    notes
}

/// Carry out one action through the applier and remember its outcome.
fn perform(known: &mut BTreeMap<PathBuf, Known>, applier: &mut dyn Applier, action: Action) {
    let fresh = || Known {
        pods: Pods::Never,
        reported: None,
    };
    match action {
        Action::Report(path, message) => {
            tracing::warn!(
                "{}: {message}; its pods, if any, keep running",
                path.display()
            );
            known.entry(path).or_insert_with(fresh).reported = Some(message);
        }
        Action::Recovered(path) => {
            tracing::info!("{}: readable again", path.display());
            known.entry(path).or_insert_with(fresh).reported = None;
        }
        Action::Forget(path) => {
            known.remove(&path);
        }
        Action::Remove(path) => match applier.remove(&path) {
            Ok(()) => {
                tracing::info!("{}: gone: its pods were removed", path.display());
                known.remove(&path);
            }
            Err(e) => {
                tracing::error!(
                    "{}: gone, but removing its pods failed (retried at the next re-list): {e}",
                    path.display()
                );
                known.entry(path).or_insert_with(fresh).pods = Pods::RemoveFailed;
            }
        },
        Action::CheckPresent(path, digest) => {
            if !applier.present(&path) {
                tracing::warn!(
                    "{}: some of its pods are missing: applying again",
                    path.display()
                );
                apply(known, applier, path, digest);
            }
        }
        Action::Apply(path, digest) => apply(known, applier, path, digest),
    }
}

fn apply(
    known: &mut BTreeMap<PathBuf, Known>,
    applier: &mut dyn Applier,
    path: PathBuf,
    digest: Digest,
) {
    // The applier reads the file again by itself; if the file changed since it was
    // hashed, the next listing sees a digest different from this one and applies again.
    let pods = match applier.apply(&path) {
        Ok(()) => {
            tracing::info!(
                "{}: applied (sha256 {})",
                path.display(),
                hex::encode(digest)
            );
            Pods::Applied(digest)
        }
        Err(e) => {
            tracing::error!(
                "{}: apply failed (retried at the next re-list): {e}",
                path.display()
            );
            Pods::ApplyFailed(digest)
        }
    };
    let k = known.entry(path).or_insert(Known {
        pods: Pods::Never,
        reported: None,
    });
    k.pods = pods;
}

/// Reconcile and carry out the actions, checking `stop` before each one (an apply can
/// take long; what was done before the stop is remembered, the rest is dropped).
fn step(
    known: &mut BTreeMap<PathBuf, Known>,
    listing: &BTreeMap<PathBuf, Entry>,
    pass: Pass,
    applier: &mut dyn Applier,
    stop: &AtomicBool,
) {
    for action in reconcile(known, listing, pass) {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        perform(known, applier, action);
    }
}

/// Whether a directory entry's name is a manifest podshim reads: not a dotfile (the
/// kubelet's rule: its listing globs `[^.]*` and its watch ignores names starting with
/// "."), and ending in `.yaml`, `.yml` or `.json` (podshim's rule, see the module doc).
fn is_manifest_name(name: &OsStr) -> bool {
    let name = name.as_bytes();
    if name.starts_with(b".") {
        return false;
    }
    match name.iter().rposition(|&b| b == b'.') {
        Some(dot) => {
            let ext = &name[dot + 1..];
            [&b"yaml"[..], b"yml", b"json"]
                .iter()
                .any(|m| ext.eq_ignore_ascii_case(m))
        }
        None => false,
    }
}

/// Why an entry of this type is not read, if it is not a regular file.
fn not_regular(st: &FileStat) -> Option<&'static str> {
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFREG {
        None
    } else if kind == SFlag::S_IFLNK {
        Some("is a symbolic link: not followed")
    } else if kind == SFlag::S_IFDIR {
        Some("is a directory: not read (subdirectories are not recursed into, as by the kubelet)")
    } else {
        Some("is not a regular file (a FIFO, socket or device): not read")
    }
}

/// Hash one manifest, opened relative to DIR's fd. `None`: it vanished meanwhile.
fn read_manifest(dir: &Dir, name: &OsStr, max_bytes: u64) -> Option<Entry> {
    let gone = |e: Errno| e == Errno::ENOENT;
    // Look before opening, so that a device is never opened (an open can have effects).
    match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(e) if gone(e) => return None,
        Err(e) => return Some(Err(format!("cannot stat: {e}"))),
        Ok(st) => {
            if let Some(why) = not_regular(&st) {
                return Some(Err(why.to_string()));
            }
        }
    }
    // The entry may have been replaced since: O_NOFOLLOW fails on a symlink, O_NONBLOCK
    // keeps a FIFO from blocking the open, and the type is checked again on the fd.
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if gone(e) => return None,
        Err(Errno::ELOOP) => return Some(Err("is a symbolic link: not followed".into())),
        Err(e) => return Some(Err(format!("cannot open: {e}"))),
    };
    let st = match nix::sys::stat::fstat(&fd) {
        Ok(st) => st,
        Err(e) => return Some(Err(format!("cannot stat: {e}"))),
    };
    if let Some(why) = not_regular(&st) {
        return Some(Err(why.to_string()));
    }
    let too_big = || format!("is larger than {max_bytes} bytes: not read");
    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > max_bytes {
        return Some(Err(too_big()));
    }
    // Hash while reading, with the bound enforced on what is read: the file may grow
    // after the fstat.
    let mut file = File::from(fd);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total: u64 = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                if total > max_bytes {
                    return Some(Err(too_big()));
                }
                hasher.update(&buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Some(Err(format!("cannot read: {e}"))),
        }
    }
    Some(Ok(hasher.finalize().into()))
}

/// List the manifests of DIR (its own entries only, no recursion, like the kubelet),
/// keyed by `dir_path` joined with the name. Err: the directory itself could not be
/// read, and nothing should be concluded from the listing.
fn list(
    dir: &mut Dir,
    dir_path: &Path,
    opts: &WatchOptions,
) -> Result<BTreeMap<PathBuf, Entry>, Errno> {
    // All the names first (names are small; the bound is on the files read and hashed),
    // sorted, so that which files fall past `max_files` does not depend on readdir order.
    let mut names: Vec<OsString> = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if is_manifest_name(name) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    let mut listing = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let entry = if i < opts.max_files {
            match read_manifest(dir, name, opts.max_file_bytes) {
                Some(entry) => entry,
                None => continue,
            }
        } else {
            Err(format!(
                "not read: {} holds more than {} manifests ({} in all; the first {} by name are read)",
                dir_path.display(),
                opts.max_files,
                names.len(),
                opts.max_files
            ))
        };
        listing.insert(dir_path.join(name), entry);
    }
    Ok(listing)
}

/// What an inotify event means for the loop.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// Nothing to do (a dotfile, a name that is not a manifest).
    Ignore,
    /// Something changed: list DIR once things are quiet.
    Relist,
    /// The watched directory is gone from the kernel's view (deleted, unmounted): the
    /// watch no longer exists; list (which opens DIR by path again).
    WatchGone,
}

fn classify(mask: AddWatchFlags, name: Option<&OsStr>) -> Event {
    if mask.contains(AddWatchFlags::IN_IGNORED) {
        return Event::WatchGone;
    }
    match name {
        Some(name) if !is_manifest_name(name) => Event::Ignore,
        // A manifest's name; or an event on DIR itself (moved, deleted, unmounted, its
        // mode changed) or the queue overflowed (events were lost).
        _ => Event::Relist,
    }
}

fn watch_mask() -> AddWatchFlags {
    // IN_CLOSE_WRITE rather than IN_MODIFY: one event per write-and-close, not one per
    // write(2). IN_CREATE still catches hard links and symlinks, which are never closed.
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

/// When to list: periodically, and `debounce` after the last of a burst of events.
/// Pure: the loop hands it the time.
#[derive(Debug)]
struct Schedule {
    period: Duration,
    debounce: Duration,
    next_periodic: Instant,
    quiet_at: Option<Instant>,
}

impl Schedule {
    /// The first pass is periodic and immediate: on start every file is applied.
    fn new(now: Instant, opts: &WatchOptions) -> Self {
        Schedule {
            period: opts.period,
            debounce: opts.debounce,
            next_periodic: now,
            quiet_at: None,
        }
    }

    fn event(&mut self, now: Instant) {
        self.quiet_at = Some(later(now, self.debounce));
    }

    /// A periodic pass is due when the period elapsed, even while events keep coming.
    fn due(&self, now: Instant) -> Option<Pass> {
        if now >= self.next_periodic {
            Some(Pass::Periodic)
        } else if self.quiet_at.is_some_and(|t| now >= t) {
            Some(Pass::Event)
        } else {
            None
        }
    }

    /// A pass ended at `now`. Either kind lists everything, so pending events are
    /// covered; the period counts from the end of a periodic pass, so a slow pass is not
    /// followed at once by another.
    fn done(&mut self, pass: Pass, now: Instant) {
        self.quiet_at = None;
        if pass == Pass::Periodic {
            self.next_periodic = later(now, self.period);
        }
    }

    /// How long to wait for events before looking again, at most `cap`.
    fn wait(&self, now: Instant, cap: Duration) -> Duration {
        let mut wait = cap.min(self.next_periodic.saturating_duration_since(now));
        if let Some(t) = self.quiet_at {
            wait = wait.min(t.saturating_duration_since(now));
        }
        wait
    }
}

/// `now + d`, saturating: a huge period (from the command line) must not panic.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// `stop` is seen within this long while waiting for events.
const STOP_POLL: Duration = Duration::from_millis(200);

/// At most this many reads of inotify events between two looks at `stop` and the
/// schedule, so that a flood of events cannot starve them.
const MAX_READS: usize = 64;

struct Watcher<'a> {
    dir: &'a Path,
    opts: &'a WatchOptions,
    inotify: Inotify,
    /// The watch, and the identity (st_dev, st_ino) of the directory it is on.
    watched: Option<(WatchDescriptor, (u64, u64))>,
    known: BTreeMap<PathBuf, Known>,
    /// The problem with DIR last logged, so that it is logged once.
    dir_problem: Option<String>,
}

impl Watcher<'_> {
    /// Open DIR by path (following a symlink: DIR is the operator's choice), with the
    /// identity (st_dev, st_ino) of the directory found there.
    fn open_dir(&self) -> Result<(OwnedFd, (u64, u64)), WatchError> {
        let dir_err = |source| WatchError::Dir {
            dir: self.dir.to_path_buf(),
            source,
        };
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(self.dir, flags, Mode::empty()).map_err(dir_err)?;
        let st = nix::sys::stat::fstat(&fd).map_err(dir_err)?;
        #[allow(clippy::unnecessary_cast)] // st_dev and st_ino are not u64 everywhere
        let id = (st.st_dev as u64, st.st_ino as u64);
        Ok((fd, id))
    }

    /// Make sure the watch is on the directory just opened (DIR may have been replaced
    /// since the watch was added: moved away and back, or a symlink swapped).
    fn watch(&mut self, fd: &OwnedFd, id: (u64, u64)) -> Result<(), WatchError> {
        if self.watched.map(|(_, watched)| watched) == Some(id) {
            return Ok(());
        }
        // Through the fd, not the path: the watch is then on the directory listed, even
        // if DIR is swapped meanwhile. Without /proc, the path it is.
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let wd = match self.inotify.add_watch(&proc_path, watch_mask()) {
            Err(Errno::ENOENT) => self.inotify.add_watch(self.dir, watch_mask()),
            other => other,
        }
        .map_err(|source| WatchError::Inotify {
            dir: self.dir.to_path_buf(),
            source,
        })?;
        if let Some((old, _)) = self.watched.replace((wd, id))
            && old != wd
        {
            // Fails harmlessly when the kernel already dropped it (IN_IGNORED).
            let _ = self.inotify.rm_watch(old);
        }
        Ok(())
    }

    fn dir_problem(&mut self, problem: Option<String>) {
        match (&problem, &self.dir_problem) {
            (Some(p), last) if last.as_ref() != Some(p) => tracing::warn!(
                "{p}; the pods keep running; trying again every {:?}",
                self.opts.period
            ),
            (None, Some(_)) => tracing::info!("{}: readable again", self.dir.display()),
            _ => {}
        }
        self.dir_problem = problem;
    }

    fn pass(&mut self, pass: Pass, applier: &mut dyn Applier, stop: &AtomicBool) {
        let (fd, id) = match self.open_dir() {
            Ok(opened) => opened,
            Err(e) => {
                if let Some((old, _)) = self.watched.take() {
                    // DIR moved away: stop hearing about the directory now elsewhere.
                    let _ = self.inotify.rm_watch(old);
                }
                return self.dir_problem(Some(e.to_string()));
            }
        };
        if let Err(e) = self.watch(&fd, id) {
            // Listed all the same; the next pass tries to watch again.
            tracing::warn!("{e}; until it can, changes are seen at each re-list only");
        }
        let mut dir = match Dir::from_fd(fd) {
            Ok(dir) => dir,
            Err(e) => {
                let problem = format!("{}: cannot list: {e}", self.dir.display());
                return self.dir_problem(Some(problem));
            }
        };
        let listing = match list(&mut dir, self.dir, self.opts) {
            Ok(listing) => listing,
            Err(e) => {
                let problem = format!("{}: cannot list: {e}", self.dir.display());
                return self.dir_problem(Some(problem));
            }
        };
        drop(dir); // not held between passes, so the watcher never keeps DIR's mount busy
        self.dir_problem(None);
        step(&mut self.known, &listing, pass, applier, stop);
    }

    /// Read the pending events; whether any calls for a listing.
    fn read_events(&mut self) -> Result<bool, WatchError> {
        let mut relist = false;
        for _ in 0..MAX_READS {
            let events = match self.inotify.read_events() {
                Ok(events) => events,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(source) => {
                    return Err(WatchError::Inotify {
                        dir: self.dir.to_path_buf(),
                        source,
                    });
                }
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    tracing::warn!(
                        "{}: too many events at once, some were lost: listing again",
                        self.dir.display()
                    );
                    relist = true;
                    continue;
                }
                let current = self.watched.map(|(wd, _)| wd) == Some(ev.wd);
                if !current {
                    continue; // a directory DIR no longer is
                }
                match classify(ev.mask, ev.name.as_deref()) {
                    Event::Ignore => {}
                    Event::Relist => relist = true,
                    Event::WatchGone => {
                        self.watched = None;
                        relist = true;
                    }
                }
            }
        }
        Ok(relist)
    }
}

/// Keep the pods of the manifests in `dir` running until `stop` is set; then return
/// `Ok` without removing anything. Errors: `dir` cannot be opened or watched at start,
/// or inotify fails later; everything else (unreadable files, failed applies, DIR
/// vanishing) is logged and retried.
pub fn run(
    dir: &Path,
    opts: &WatchOptions,
    applier: &mut dyn Applier,
    stop: &AtomicBool,
) -> Result<(), WatchError> {
    if opts.period.is_zero() {
        return Err(WatchError::Options {
            dir: dir.to_path_buf(),
            message: "the re-list period must be longer than zero".into(),
        });
    }
    let inotify =
        Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(|source| {
            WatchError::Inotify {
                dir: dir.to_path_buf(),
                source,
            }
        })?;
    let mut w = Watcher {
        dir,
        opts,
        inotify,
        watched: None,
        known: BTreeMap::new(),
        dir_problem: None,
    };
    // At start, a DIR that cannot be opened or watched is an error, not a wait.
    let (fd, id) = w.open_dir()?;
    w.watch(&fd, id)?;
    drop(fd);
    tracing::info!(
        "{}: watching (re-listed every {:?})",
        dir.display(),
        opts.period
    );
    let mut schedule = Schedule::new(Instant::now(), opts);
    loop {
        if stop.load(Ordering::SeqCst) {
            tracing::info!("{}: stopped watching; the pods keep running", dir.display());
            return Ok(());
        }
        let now = Instant::now();
        if let Some(pass) = schedule.due(now) {
            w.pass(pass, applier, stop);
            schedule.done(pass, Instant::now());
            continue;
        }
        // Round up, so a wait of less than a millisecond does not spin.
        let wait = schedule.wait(now, STOP_POLL);
        let ms = wait.as_micros().div_ceil(1000);
        let timeout = PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX));
        let mut fds = [PollFd::new(w.inotify.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => continue,
            Ok(_) => {}
            // A signal (the one that sets `stop`, say): look at `stop` again.
            Err(Errno::EINTR) => continue,
            Err(source) => {
                return Err(WatchError::Inotify {
                    dir: dir.to_path_buf(),
                    source,
                });
            }
        }
        if w.read_events()? {
            schedule.event(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    fn d(n: u8) -> Digest {
        [n; 32]
    }

    fn p(name: &str) -> PathBuf {
        PathBuf::from("/m").join(name)
    }

    fn known(entries: &[(&str, Pods)]) -> BTreeMap<PathBuf, Known> {
        entries
            .iter()
            .map(|(n, pods)| {
                let k = Known {
                    pods: pods.clone(),
                    reported: None,
                };
                (p(n), k)
            })
            .collect()
    }

    fn listing(entries: &[(&str, Entry)]) -> BTreeMap<PathBuf, Entry> {
        entries.iter().map(|(n, e)| (p(n), e.clone())).collect()
    }

    // ---- reconcile ----

    #[test]
    fn reconcile_applies_a_new_file() {
        let acts = reconcile(&known(&[]), &listing(&[("a.yaml", Ok(d(1)))]), Pass::Event);
        assert_eq!(acts, vec![Action::Apply(p("a.yaml"), d(1))]);
    }

    #[test]
    fn reconcile_applies_a_changed_file_on_any_pass() {
        let k = known(&[("a.yaml", Pods::Applied(d(1)))]);
        let l = listing(&[("a.yaml", Ok(d(2)))]);
        for pass in [Pass::Event, Pass::Periodic] {
            assert_eq!(
                reconcile(&k, &l, pass),
                vec![Action::Apply(p("a.yaml"), d(2))]
            );
        }
    }

    #[test]
    fn reconcile_removes_a_gone_file() {
        let k = known(&[
            ("a.yaml", Pods::Applied(d(1))),
            ("b.yaml", Pods::ApplyFailed(d(2))),
        ]);
        let acts = reconcile(&k, &listing(&[]), Pass::Event);
        assert_eq!(
            acts,
            vec![Action::Remove(p("a.yaml")), Action::Remove(p("b.yaml"))]
        );
    }

    #[test]
    fn reconcile_checks_presence_of_unchanged_files_only_on_the_periodic_pass() {
        let k = known(&[("a.yaml", Pods::Applied(d(1)))]);
        let l = listing(&[("a.yaml", Ok(d(1)))]);
        assert_eq!(reconcile(&k, &l, Pass::Event), vec![]);
        assert_eq!(
            reconcile(&k, &l, Pass::Periodic),
            vec![Action::CheckPresent(p("a.yaml"), d(1))]
        );
    }

    #[test]
    fn reconcile_retries_a_failed_apply_on_the_periodic_pass_or_when_the_file_changes() {
        let k = known(&[("a.yaml", Pods::ApplyFailed(d(1)))]);
        let same = listing(&[("a.yaml", Ok(d(1)))]);
        assert_eq!(reconcile(&k, &same, Pass::Event), vec![]);
        assert_eq!(
            reconcile(&k, &same, Pass::Periodic),
            vec![Action::Apply(p("a.yaml"), d(1))]
        );
        let changed = listing(&[("a.yaml", Ok(d(2)))]);
        assert_eq!(
            reconcile(&k, &changed, Pass::Event),
            vec![Action::Apply(p("a.yaml"), d(2))]
        );
    }

    #[test]
    fn reconcile_retries_a_failed_remove_only_on_the_periodic_pass() {
        let k = known(&[("a.yaml", Pods::RemoveFailed)]);
        assert_eq!(reconcile(&k, &listing(&[]), Pass::Event), vec![]);
        assert_eq!(
            reconcile(&k, &listing(&[]), Pass::Periodic),
            vec![Action::Remove(p("a.yaml"))]
        );
    }

    #[test]
    fn reconcile_applies_a_file_that_came_back_after_a_failed_remove() {
        let k = known(&[("a.yaml", Pods::RemoveFailed)]);
        let l = listing(&[("a.yaml", Ok(d(1)))]);
        assert_eq!(
            reconcile(&k, &l, Pass::Event),
            vec![Action::Apply(p("a.yaml"), d(1))]
        );
    }

    #[test]
    fn reconcile_keeps_the_pods_of_an_unreadable_file_and_reports_it_once() {
        let mut k = known(&[("a.yaml", Pods::Applied(d(1)))]);
        let l = listing(&[("a.yaml", Err("cannot read: EIO".into()))]);
        for pass in [Pass::Event, Pass::Periodic] {
            assert_eq!(
                reconcile(&k, &l, pass),
                vec![Action::Report(p("a.yaml"), "cannot read: EIO".into())]
            );
        }
        k.get_mut(&p("a.yaml")).unwrap().reported = Some("cannot read: EIO".into());
        for pass in [Pass::Event, Pass::Periodic] {
            assert_eq!(reconcile(&k, &l, pass), vec![]);
        }
        let other = listing(&[("a.yaml", Err("is a symbolic link: not followed".into()))]);
        assert_eq!(
            reconcile(&k, &other, Pass::Event),
            vec![Action::Report(
                p("a.yaml"),
                "is a symbolic link: not followed".into()
            )]
        );
    }

    #[test]
    fn reconcile_notes_recovery_and_acts_on_the_content() {
        let mut k = known(&[("a.yaml", Pods::Applied(d(1)))]);
        k.get_mut(&p("a.yaml")).unwrap().reported = Some("cannot read: EIO".into());
        let acts = reconcile(&k, &listing(&[("a.yaml", Ok(d(2)))]), Pass::Event);
        assert_eq!(
            acts,
            vec![
                Action::Recovered(p("a.yaml")),
                Action::Apply(p("a.yaml"), d(2))
            ]
        );
    }

    #[test]
    fn reconcile_forgets_a_gone_file_that_was_never_applied() {
        let mut k = known(&[("a.yaml", Pods::Never)]);
        k.get_mut(&p("a.yaml")).unwrap().reported = Some("is a directory".into());
        let acts = reconcile(&k, &listing(&[]), Pass::Event);
        assert_eq!(acts, vec![Action::Forget(p("a.yaml"))]);
    }

    #[test]
    fn reconcile_removes_before_applying_so_a_rename_does_not_remove_the_new_pods() {
        let k = known(&[("b.yaml", Pods::Applied(d(1)))]);
        let l = listing(&[
            ("a.yaml", Ok(d(1))),
            ("c.yaml", Err("cannot read: EIO".into())),
        ]);
        let acts = reconcile(&k, &l, Pass::Periodic);
        assert_eq!(
            acts,
            vec![
                Action::Report(p("c.yaml"), "cannot read: EIO".into()),
                Action::Remove(p("b.yaml")),
                Action::Apply(p("a.yaml"), d(1)),
            ]
        );
    }

    // ---- perform / step, with a fake applier ----

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Call {
        Apply(PathBuf),
        Remove(PathBuf),
        Present(PathBuf),
    }

    /// Records every call; the test says which files' applies and removes fail and
    /// which files' pods are missing.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<FakeState>>);

    #[derive(Default)]
    struct FakeState {
        calls: Vec<Call>,
        failing: BTreeSet<PathBuf>,
        missing: BTreeSet<PathBuf>,
    }

    impl Fake {
        fn calls(&self) -> Vec<Call> {
            self.0.lock().unwrap().calls.clone()
        }
        fn set_failing(&self, path: &Path, failing: bool) {
            let mut s = self.0.lock().unwrap();
            if failing {
                s.failing.insert(path.to_path_buf());
            } else {
                s.failing.remove(path);
            }
        }
        fn set_missing(&self, path: &Path) {
            self.0.lock().unwrap().missing.insert(path.to_path_buf());
        }
        fn count(&self, call: &Call) -> usize {
            self.calls().iter().filter(|c| *c == call).count()
        }
    }

    impl Applier for Fake {
        fn apply(&mut self, file: &Path) -> Result<(), String> {
            let mut s = self.0.lock().unwrap();
            s.calls.push(Call::Apply(file.to_path_buf()));
            if s.failing.contains(file) {
                return Err("image pull failed".into());
            }
            s.missing.remove(file);
            Ok(())
        }
        fn remove(&mut self, file: &Path) -> Result<(), String> {
            let mut s = self.0.lock().unwrap();
            s.calls.push(Call::Remove(file.to_path_buf()));
            if s.failing.contains(file) {
                return Err("runc delete failed".into());
            }
            Ok(())
        }
        fn present(&mut self, file: &Path) -> bool {
            let mut s = self.0.lock().unwrap();
            s.calls.push(Call::Present(file.to_path_buf()));
            !s.missing.contains(file)
        }
    }

    #[test]
    fn step_reapplies_a_file_whose_pods_are_missing_on_the_periodic_pass() {
        let (mut fake, stop) = (Fake::default(), AtomicBool::new(false));
        let mut k = BTreeMap::new();
        let l = listing(&[("a.yaml", Ok(d(1)))]);
        step(&mut k, &l, Pass::Periodic, &mut fake, &stop);
        step(&mut k, &l, Pass::Periodic, &mut fake, &stop);
        fake.set_missing(&p("a.yaml"));
        step(&mut k, &l, Pass::Event, &mut fake, &stop); // not asked on an event pass
        step(&mut k, &l, Pass::Periodic, &mut fake, &stop);
        let a = || p("a.yaml");
        assert_eq!(
            fake.calls(),
            vec![
                Call::Apply(a()),
                Call::Present(a()),
                Call::Present(a()),
                Call::Apply(a())
            ]
        );
        assert_eq!(k[&a()].pods, Pods::Applied(d(1)));
    }

    #[test]
    fn step_records_a_failed_apply_and_retries_it_on_the_next_periodic_pass_only() {
        let (mut fake, stop) = (Fake::default(), AtomicBool::new(false));
        let a = p("a.yaml");
        fake.set_failing(&a, true);
        let mut k = BTreeMap::new();
        let l = listing(&[("a.yaml", Ok(d(1)))]);
        step(&mut k, &l, Pass::Periodic, &mut fake, &stop);
        assert_eq!(k[&a].pods, Pods::ApplyFailed(d(1)));
        step(&mut k, &l, Pass::Event, &mut fake, &stop);
        assert_eq!(fake.count(&Call::Apply(a.clone())), 1);
        fake.set_failing(&a, false);
        step(&mut k, &l, Pass::Periodic, &mut fake, &stop);
        assert_eq!(fake.count(&Call::Apply(a.clone())), 2);
        assert_eq!(k[&a].pods, Pods::Applied(d(1)));
    }

    #[test]
    fn step_keeps_a_file_whose_remove_failed_and_retries_it() {
        let (mut fake, stop) = (Fake::default(), AtomicBool::new(false));
        let a = p("a.yaml");
        let mut k = known(&[("a.yaml", Pods::Applied(d(1)))]);
        fake.set_failing(&a, true);
        step(&mut k, &listing(&[]), Pass::Event, &mut fake, &stop);
        assert_eq!(k[&a].pods, Pods::RemoveFailed);
        fake.set_failing(&a, false);
        step(&mut k, &listing(&[]), Pass::Periodic, &mut fake, &stop);
        assert!(k.is_empty(), "{k:?}");
        assert_eq!(fake.count(&Call::Remove(a)), 2);
    }

    #[test]
    fn step_reports_an_unreadable_file_once_and_forgets_it_when_gone() {
        let (mut fake, stop) = (Fake::default(), AtomicBool::new(false));
        let mut k = BTreeMap::new();
        let l = listing(&[("a.yaml", Err("is a symbolic link: not followed".into()))]);
        step(&mut k, &l, Pass::Periodic, &mut fake, &stop);
        let reported = Some("is a symbolic link: not followed".to_string());
        assert_eq!(k[&p("a.yaml")].reported, reported);
        assert_eq!(reconcile(&k, &l, Pass::Periodic), vec![]);
        step(&mut k, &listing(&[]), Pass::Event, &mut fake, &stop);
        assert!(k.is_empty(), "{k:?}");
        assert_eq!(fake.calls(), vec![]);
    }

    #[test]
    fn step_does_nothing_more_once_stop_is_set() {
        let (mut fake, stop) = (Fake::default(), AtomicBool::new(true));
        let mut k = BTreeMap::new();
        step(
            &mut k,
            &listing(&[("a.yaml", Ok(d(1)))]),
            Pass::Periodic,
            &mut fake,
            &stop,
        );
        assert_eq!(fake.calls(), vec![]);
        assert!(k.is_empty());
    }

    // ---- schedule (simulated time) ----

    fn opts(period_ms: u64, debounce_ms: u64) -> WatchOptions {
        WatchOptions {
            period: Duration::from_millis(period_ms),
            debounce: Duration::from_millis(debounce_ms),
            ..WatchOptions::default()
        }
    }

    #[test]
    fn schedule_starts_with_a_periodic_pass_then_waits_a_period() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(t0, &opts(20_000, 100));
        assert_eq!(s.due(t0), Some(Pass::Periodic));
        s.done(Pass::Periodic, t0 + ms(5));
        assert_eq!(s.due(t0 + ms(20_004)), None);
        assert_eq!(s.wait(t0 + ms(5), ms(200)), ms(200));
        assert_eq!(s.wait(t0 + ms(19_905), ms(200)), ms(100));
        assert_eq!(s.due(t0 + ms(20_005)), Some(Pass::Periodic));
    }

    #[test]
    fn schedule_lists_once_events_have_been_quiet_for_the_debounce() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(t0, &opts(20_000, 100));
        s.done(Pass::Periodic, t0);
        s.event(t0 + ms(10));
        assert_eq!(s.wait(t0 + ms(10), ms(200)), ms(100));
        s.event(t0 + ms(90)); // a second event of the burst pushes the listing back
        assert_eq!(s.due(t0 + ms(150)), None);
        assert_eq!(s.due(t0 + ms(190)), Some(Pass::Event));
        s.done(Pass::Event, t0 + ms(191));
        assert_eq!(s.due(t0 + ms(300)), None);
        // An event pass does not move the periodic one.
        assert_eq!(s.due(t0 + ms(20_000)), Some(Pass::Periodic));
    }

    #[test]
    fn schedule_periodic_pass_is_not_delayed_by_an_endless_burst() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(t0, &opts(1_000, 100));
        s.done(Pass::Periodic, t0);
        for i in 1..=20 {
            s.event(t0 + ms(i * 50));
            if i * 50 < 1_000 {
                assert_eq!(s.due(t0 + ms(i * 50)), None);
            }
        }
        assert_eq!(s.due(t0 + ms(1_000)), Some(Pass::Periodic));
    }

    #[test]
    fn schedule_takes_a_huge_period_without_panicking() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, &opts(0, 0));
        s.period = Duration::MAX;
        s.debounce = Duration::MAX;
        s.done(Pass::Periodic, t0);
        s.event(t0);
        assert_eq!(s.due(t0 + Duration::from_secs(3600)), None);
    }

    // ---- names and events ----

    #[test]
    fn manifest_names_are_non_dot_yaml_yml_json_in_any_case() {
        for yes in [
            "a.yaml",
            "a.yml",
            "a.json",
            "A.YAML",
            "kube-apiserver.Yml",
            "a.b.json",
        ] {
            assert!(is_manifest_name(OsStr::new(yes)), "{yes}");
        }
        for no in [
            ".a.yaml",
            ".a.yaml.swp",
            "a.yaml~",
            "a.yaml.bak",
            "4913",
            "yaml",
            "a.txt",
            ".",
            "..",
            "a.",
        ] {
            assert!(!is_manifest_name(OsStr::new(no)), "{no}");
        }
    }

    #[test]
    fn events_on_dotfiles_and_other_names_are_ignored() {
        let mv = AddWatchFlags::IN_MOVED_TO;
        assert_eq!(classify(mv, Some(OsStr::new(".a.yaml.tmp"))), Event::Ignore);
        assert_eq!(classify(mv, Some(OsStr::new("a.yaml~"))), Event::Ignore);
        assert_eq!(classify(mv, Some(OsStr::new("a.yaml"))), Event::Relist);
        let self_moved = AddWatchFlags::IN_MOVE_SELF;
        assert_eq!(classify(self_moved, None), Event::Relist);
        assert_eq!(classify(AddWatchFlags::IN_IGNORED, None), Event::WatchGone);
    }

    // ---- listing, on a real directory ----

    fn list_dir(dir: &Path, opts: &WatchOptions) -> BTreeMap<PathBuf, Entry> {
        let mut d = Dir::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        list(&mut d, dir, opts).unwrap()
    }

    fn sha256(data: &[u8]) -> Digest {
        Sha256::digest(data).into()
    }

    #[test]
    fn list_hashes_manifests_and_skips_dotfiles_and_other_names() {
        let t = tempfile::tempdir().unwrap();
        for name in ["a.yaml", "b.json", ".hidden.yaml", "a.yaml~", "notes.txt"] {
            std::fs::write(t.path().join(name), name).unwrap();
        }
        let got = list_dir(t.path(), &WatchOptions::default());
        let want = BTreeMap::from([
            (t.path().join("a.yaml"), Ok(sha256(b"a.yaml"))),
            (t.path().join("b.json"), Ok(sha256(b"b.json"))),
        ]);
        assert_eq!(got, want);
        assert_eq!(
            hex::encode(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn list_reports_a_symlink_without_following_it() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target.txt");
        std::fs::write(&target, "kind: Pod").unwrap();
        std::os::unix::fs::symlink(&target, t.path().join("link.yaml")).unwrap();
        let got = list_dir(t.path(), &WatchOptions::default());
        let e = &got[&t.path().join("link.yaml")];
        assert!(
            e.as_ref().is_err_and(|m| m.contains("symbolic link")),
            "{e:?}"
        );
    }

    #[test]
    fn list_reports_a_fifo_without_blocking_on_it() {
        let t = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&t.path().join("pipe.yaml"), Mode::from_bits_truncate(0o644)).unwrap();
        // No writer: a blocking open would never return; fail instead of hanging.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = t.path().to_path_buf();
        std::thread::spawn(move || tx.send(list_dir(&path, &WatchOptions::default())));
        let got = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("listing blocked on the FIFO");
        let e = &got[&t.path().join("pipe.yaml")];
        assert!(
            e.as_ref().is_err_and(|m| m.contains("not a regular file")),
            "{e:?}"
        );
    }

    #[test]
    fn list_reports_a_directory_and_does_not_recurse_into_it() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("sub.yaml")).unwrap();
        std::fs::create_dir_all(t.path().join("sub")).unwrap();
        std::fs::write(t.path().join("sub").join("inner.yaml"), "x").unwrap();
        std::fs::write(t.path().join("sub.yaml").join("inner.yaml"), "x").unwrap();
        let got = list_dir(t.path(), &WatchOptions::default());
        assert_eq!(got.len(), 1, "{got:?}");
        let e = &got[&t.path().join("sub.yaml")];
        assert!(
            e.as_ref().is_err_and(|m| m.contains("is a directory")),
            "{e:?}"
        );
    }

    #[test]
    fn list_reports_a_file_over_the_size_bound() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("big.yaml"), [b'x'; 17]).unwrap();
        std::fs::write(t.path().join("fits.yaml"), [b'x'; 16]).unwrap();
        let o = WatchOptions {
            max_file_bytes: 16,
            ..WatchOptions::default()
        };
        let got = list_dir(t.path(), &o);
        let e = &got[&t.path().join("big.yaml")];
        assert!(
            e.as_ref()
                .is_err_and(|m| m.contains("larger than 16 bytes")),
            "{e:?}"
        );
        assert_eq!(got[&t.path().join("fits.yaml")], Ok(sha256(&[b'x'; 16])));
    }

    #[test]
    fn list_reads_at_most_max_files_by_name_and_reports_the_rest() {
        let t = tempfile::tempdir().unwrap();
        for name in ["c.yaml", "a.yaml", "b.yaml"] {
            std::fs::write(t.path().join(name), name).unwrap();
        }
        let o = WatchOptions {
            max_files: 2,
            ..WatchOptions::default()
        };
        let got = list_dir(t.path(), &o);
        assert_eq!(got[&t.path().join("a.yaml")], Ok(sha256(b"a.yaml")));
        assert_eq!(got[&t.path().join("b.yaml")], Ok(sha256(b"b.yaml")));
        let e = &got[&t.path().join("c.yaml")];
        assert!(
            e.as_ref()
                .is_err_and(|m| m.contains("more than 2 manifests")),
            "{e:?}"
        );
    }

    // ---- the loop, end to end, in a temporary directory ----

    /// Wait (generously) until `cond` holds on the calls made so far.
    fn wait_for(fake: &Fake, what: &str, cond: impl Fn(&[Call]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let calls = fake.calls();
            if cond(&calls) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; calls: {calls:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn has(call: Call) -> impl Fn(&[Call]) -> bool {
        move |calls| calls.contains(&call)
    }

    /// Run the loop on `dir` in a thread while `body` acts on the directory; then stop
    /// it and return what it returned.
    fn watching(
        dir: &Path,
        o: WatchOptions,
        fake: &Fake,
        body: impl FnOnce(),
    ) -> Result<(), WatchError> {
        /// Sets `stop` when dropped, also when `body` panics: the scope would otherwise
        /// wait for the loop forever and a failing test would hang instead of failing.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let mut applier = fake.clone();
            let (o, stop) = (&o, &stop);
            let h = s.spawn(move || run(dir, o, &mut applier, stop));
            {
                let _stop = StopOnDrop(stop);
                body();
            }
            h.join().unwrap()
        })
    }

    fn write_by_rename(dir: &Path, name: &str, content: &str) {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }

    #[test]
    fn run_applies_every_file_on_start_and_stops_without_removing_anything() {
        let t = tempfile::tempdir().unwrap();
        for name in ["a.yaml", "b.json", ".hidden.yaml", "c.txt"] {
            std::fs::write(t.path().join(name), name).unwrap();
        }
        let fake = Fake::default();
        let (a, b) = (t.path().join("a.yaml"), t.path().join("b.json"));
        let r = watching(t.path(), opts(60_000, 20), &fake, || {
            wait_for(&fake, "both applied", |c| {
                c.contains(&Call::Apply(a.clone())) && c.contains(&Call::Apply(b.clone()))
            });
        });
        r.unwrap();
        assert_eq!(fake.calls(), vec![Call::Apply(a), Call::Apply(b)]);
    }

    #[test]
    fn run_follows_new_changed_renamed_and_deleted_files() {
        let t = tempfile::tempdir().unwrap();
        let fake = Fake::default();
        let (a, b) = (t.path().join("a.yaml"), t.path().join("b.yaml"));
        let r = watching(t.path(), opts(60_000, 20), &fake, || {
            // A new file, written to a dotfile and renamed into place: one apply.
            write_by_rename(t.path(), "a.yaml", "v1");
            wait_for(&fake, "a applied", has(Call::Apply(a.clone())));
            // Changed in place.
            std::fs::write(&a, "v2").unwrap();
            wait_for(&fake, "a applied again", |_| {
                fake.count(&Call::Apply(a.clone())) == 2
            });
            // Touched, same content: nothing.
            std::fs::write(&a, "v2").unwrap();
            // Renamed: the old name's pods go, the new name's come.
            std::fs::rename(&a, &b).unwrap();
            wait_for(&fake, "b applied", has(Call::Apply(b.clone())));
            std::fs::remove_file(&b).unwrap();
            wait_for(&fake, "b removed", has(Call::Remove(b.clone())));
        });
        r.unwrap();
        assert_eq!(
            fake.calls(),
            vec![
                Call::Apply(a.clone()),
                Call::Apply(a.clone()),
                Call::Remove(a),
                Call::Apply(b.clone()),
                Call::Remove(b),
            ]
        );
    }

    #[test]
    fn run_reapplies_a_file_whose_pods_vanished() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a.yaml");
        std::fs::write(&a, "v1").unwrap();
        let fake = Fake::default();
        let r = watching(t.path(), opts(50, 20), &fake, || {
            wait_for(&fake, "a applied", has(Call::Apply(a.clone())));
            wait_for(&fake, "a checked", has(Call::Present(a.clone())));
            fake.set_missing(&a); // the state root was wiped
            wait_for(&fake, "a applied again", |_| {
                fake.count(&Call::Apply(a.clone())) == 2
            });
        });
        r.unwrap();
        assert!(!fake.calls().iter().any(|c| matches!(c, Call::Remove(_))));
    }

    #[test]
    fn run_retries_a_failed_apply_on_a_later_re_list() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a.yaml");
        std::fs::write(&a, "v1").unwrap();
        let fake = Fake::default();
        fake.set_failing(&a, true);
        let r = watching(t.path(), opts(50, 20), &fake, || {
            wait_for(&fake, "a tried", has(Call::Apply(a.clone())));
            fake.set_failing(&a, false);
            wait_for(
                &fake,
                "a checked once applied",
                has(Call::Present(a.clone())),
            );
        });
        r.unwrap();
        let applies = fake.count(&Call::Apply(a.clone()));
        assert!(applies >= 2, "{:?}", fake.calls());
    }

    #[test]
    fn run_keeps_the_pods_of_a_file_that_became_unreadable() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a.yaml"), t.path().join("b.yaml"));
        std::fs::write(&a, "small").unwrap();
        let fake = Fake::default();
        let o = WatchOptions {
            max_file_bytes: 64,
            ..opts(60_000, 20)
        };
        let r = watching(t.path(), o, &fake, || {
            wait_for(&fake, "a applied", has(Call::Apply(a.clone())));
            std::fs::write(&a, [b'x'; 65]).unwrap();
            // b is listed after a grew, so once b is applied a was seen unreadable.
            std::fs::write(&b, "b").unwrap();
            wait_for(&fake, "b applied", has(Call::Apply(b.clone())));
            assert!(!fake.calls().contains(&Call::Remove(a.clone())));
            std::fs::remove_file(&a).unwrap();
            wait_for(&fake, "a removed", has(Call::Remove(a.clone())));
        });
        r.unwrap();
        assert_eq!(
            fake.calls(),
            vec![Call::Apply(a.clone()), Call::Apply(b), Call::Remove(a)]
        );
    }

    #[test]
    fn run_follows_dir_when_its_symlink_is_swapped_to_another_directory() {
        let t = tempfile::tempdir().unwrap();
        let (one, two) = (t.path().join("one"), t.path().join("two"));
        std::fs::create_dir(&one).unwrap();
        std::fs::create_dir(&two).unwrap();
        std::fs::write(one.join("a.yaml"), "a").unwrap();
        std::fs::write(two.join("b.yaml"), "b").unwrap();
        let dir = t.path().join("manifests");
        std::os::unix::fs::symlink(&one, &dir).unwrap();
        let fake = Fake::default();
        let (a, b, c) = (dir.join("a.yaml"), dir.join("b.yaml"), dir.join("c.yaml"));
        // No periodic pass after the first: only events make the loop look.
        let r = watching(&dir, opts(600_000, 20), &fake, || {
            wait_for(&fake, "a applied", has(Call::Apply(a.clone())));
            let tmp = t.path().join("manifests.new");
            std::os::unix::fs::symlink(&two, &tmp).unwrap();
            std::fs::rename(&tmp, &dir).unwrap();
            // The swap itself makes no event in the watched directory; one does, and the
            // pass it causes opens DIR by path and finds the other directory.
            std::fs::write(one.join("poke.yaml"), "poke").unwrap();
            wait_for(&fake, "b applied", has(Call::Apply(b.clone())));
            // The watch moved: an event in the new directory is seen.
            std::fs::write(two.join("c.yaml"), "c").unwrap();
            wait_for(&fake, "c applied", has(Call::Apply(c.clone())));
        });
        r.unwrap();
        assert_eq!(
            fake.calls(),
            vec![
                Call::Apply(a.clone()),
                Call::Remove(a),
                Call::Apply(b),
                Call::Apply(c)
            ]
        );
    }

    #[test]
    fn run_keeps_the_pods_while_dir_is_gone_and_follows_it_when_back() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        let (a, b) = (dir.join("a.yaml"), dir.join("b.yaml"));
        std::fs::write(&a, "a").unwrap();
        let fake = Fake::default();
        let r = watching(&dir, opts(50, 20), &fake, || {
            wait_for(&fake, "a applied", has(Call::Apply(a.clone())));
            std::fs::rename(&dir, t.path().join("old")).unwrap();
            // A new DIR, made aside and moved into place, without a.yaml.
            let new = t.path().join("new");
            std::fs::create_dir(&new).unwrap();
            std::fs::write(new.join("b.yaml"), "b").unwrap();
            std::fs::rename(&new, &dir).unwrap();
            wait_for(&fake, "b applied", has(Call::Apply(b.clone())));
        });
        r.unwrap();
        let calls = fake.calls();
        assert_eq!(calls[0], Call::Apply(a.clone()));
        assert!(calls.contains(&Call::Remove(a)), "{calls:?}");
    }

    #[test]
    fn run_fails_for_a_missing_directory_and_names_it() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("nope");
        let stop = AtomicBool::new(false);
        let e = run(&dir, &WatchOptions::default(), &mut Fake::default(), &stop).unwrap_err();
        assert!(
            matches!(
                e,
                WatchError::Dir {
                    source: Errno::ENOENT,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
    }

    #[test]
    fn run_refuses_a_zero_period() {
        let t = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let e = run(t.path(), &opts(0, 0), &mut Fake::default(), &stop).unwrap_err();
        assert!(matches!(e, WatchError::Options { .. }), "{e:?}");
    }
}
