//! Pod user namespaces (`hostUsers: false`, KEP-127): each such pod gets a range
//! of 65536 host ids of its own, root inside mapped to the first, as the
//! kubelet's user namespace manager gives them, and one user namespace that
//! every container of the pod joins (the infra too) — pinned at `<pod>/userns`
//! by podshim, so that the pod's network namespace can be made inside it
//! before any container runs, as containerd makes a userns pod's.
//!
//! Ranges come from `/etc/subuid` and `/etc/subgid`'s `podshim` entries (the
//! kubelet reads its own user's), else from [`DEFAULT_POOL`]. A range is leased
//! host-wide: a file per range under [`LEASE_DIR`] naming the directory that
//! holds it (a pod's state directory, or a `generate` output); a lease whose
//! holder is gone is free again.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe2, read};
use serde::{Deserialize, Serialize};

/// How many ids one pod maps (the kubelet's `userNsLength`).
pub const IDS_PER_POD: u32 = 65536;

/// Where host-wide leases are kept: one state for every `--root`, since two
/// roots' pods must not share host ids either.
pub const LEASE_DIR: &str = "/run/podshim-userns";

/// The ids podshim takes ranges from when `/etc/subuid` names no `podshim`:
/// 1024 pods' worth from 2^30, far above the ranges `adduser` hands out
/// (100000 onwards) and the ids of real users. (The kubelet's own default is
/// 65536 onwards, which such subordinate ranges overlap.)
pub const DEFAULT_POOL: Pool = Pool {
    first: 1 << 30,
    count: IDS_PER_POD * 1024,
};

/// A pod's ids: container ids `0..size` are host ids `host_id..host_id+size`,
/// for users and groups alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdRange {
    pub host_id: u32,
    pub size: u32,
}

impl IdRange {
    /// The line of `/proc/<pid>/uid_map` (and `gid_map`) that maps it.
    pub fn map_line(&self) -> String {
        format!("0 {} {}\n", self.host_id, self.size)
    }
}

/// The ids ranges are cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub first: u32,
    pub count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error(
        "every one of the {0} user namespace ranges is leased (under {LEASE_DIR}): stop a pod with `hostUsers: false`, or give podshim more ids in /etc/subuid and /etc/subgid"
    )]
    Exhausted(u32),
    #[error("user namespace range {host_id}: leased to {holder}")]
    Taken { host_id: u32, holder: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UsernsError + '_ {
    move |source| UsernsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Pool {
    /// The host's pool: the `podshim` entries of /etc/subuid and /etc/subgid,
    /// which must agree (one range maps users and groups alike), else the default.
    pub fn from_host() -> Result<Pool, UsernsError> {
        let read = |f: &str| match crate::fsutil::read_regular(Path::new(f), 1 << 20) {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Err(crate::fsutil::ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(UsernsError::Config {
                file: f.into(),
                message: e.to_string(),
            }),
        };
        let uid = read("/etc/subuid")?;
        let gid = read("/etc/subgid")?;
        Pool::parse(uid.as_deref(), gid.as_deref())
    }

    /// The `podshim` entries of subuid(5) and subgid(5) text.
    pub fn parse(subuid: Option<&str>, subgid: Option<&str>) -> Result<Pool, UsernsError> {
        let entry = |file: &str, text: Option<&str>| -> Result<Option<Pool>, UsernsError> {
            let err = |message: String| UsernsError::Config {
                file: file.into(),
                message,
            };
            let Some(text) = text else { return Ok(None) };
            let Some(line) = text
                .lines()
                .find(|l| l.split(':').next() == Some("podshim"))
            else {
                return Ok(None);
            };
            let mut parts = line.split(':').skip(1);
            let (Some(first), Some(count), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(err(format!("{line:?}: not podshim:FIRST:COUNT")));
            };
            let (Ok(first), Ok(count)) = (first.parse::<u32>(), count.parse::<u32>()) else {
                return Err(err(format!("{line:?}: not podshim:FIRST:COUNT")));
            };
            // The kubelet's rules for its own entry.
            if first % IDS_PER_POD != 0 || count % IDS_PER_POD != 0 || count == 0 {
                return Err(err(format!(
                    "{line:?}: the first id and the count must be multiples of {IDS_PER_POD}"
                )));
            }
            if first.checked_add(count).is_none() {
                return Err(err(format!("{line:?}: goes past the largest id")));
            }
            Ok(Some(Pool { first, count }))
        };
        let pool = match (entry("/etc/subuid", subuid)?, entry("/etc/subgid", subgid)?) {
            (None, None) => DEFAULT_POOL,
            (Some(u), Some(g)) if u == g => u,
            _ => {
                return Err(UsernsError::Config {
                    file: "/etc/subuid".into(),
                    message: "its podshim entry must equal /etc/subgid's".into(),
                });
            }
        };
        // Another user's subordinate ids inside the pool would let that user's
        // rootless containers own a pod's files.
        let (start, end) = (
            u64::from(pool.first),
            u64::from(pool.first) + u64::from(pool.count),
        );
        for (file, text) in [("/etc/subuid", subuid), ("/etc/subgid", subgid)] {
            for line in text.unwrap_or_default().lines() {
                let mut parts = line.split(':');
                let (Some(user), Some(Ok(first)), Some(Ok(count))) = (
                    parts.next(),
                    parts.next().map(str::parse::<u64>),
                    parts.next().map(str::parse::<u64>),
                ) else {
                    continue;
                };
                if user != "podshim" && count > 0 && first < end && start < first + count {
                    return Err(UsernsError::Config {
                        file: file.into(),
                        message: format!(
                            "{user}'s ids {first}-{} overlap podshim's {start}-{} (give podshim a range of its own: a podshim:FIRST:COUNT line)",
                            first + count - 1,
                            end - 1
                        ),
                    });
                }
            }
        }
        Ok(pool)
    }

    fn ranges(&self) -> impl Iterator<Item = IdRange> + '_ {
        (0..self.count / IDS_PER_POD).map(|i| IdRange {
            host_id: self.first + i * IDS_PER_POD,
            size: IDS_PER_POD,
        })
    }
}

/// Every lease is taken, given up and checked under this lock (flock(2) on
/// `<leases>/lock`), so that two pods never see the same range as free.
fn lock(leases: &Path) -> Result<nix::fcntl::Flock<fs::File>, UsernsError> {
    crate::fsutil::mkdir_mode(leases, 0o700).map_err(io_err(leases))?;
    let path = leases.join("lock");
    crate::fsutil::lock_file(&path, true)
        .map_err(io_err(&path))?
        .ok_or_else(|| io_err(&path)(std::io::ErrorKind::WouldBlock.into()))
}

/// Who holds `range`, under the lock.
enum Lease {
    Free,
    Mine,
    Taken(String),
}

fn lease_state(leases: &Path, range: &IdRange, holder: &Path) -> Lease {
    let file = lease_file(leases, range);
    match crate::fsutil::read_regular(&file, 4096) {
        Err(crate::fsutil::ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Lease::Free,
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(h) if Path::new(&h) == holder => Lease::Mine,
            // A holder that is gone (a wiped state root, a removed output)
            // left its lease: free. An empty one is a writer that died
            // (leases are written under the lock).
            Ok(h) if h.is_empty() || !Path::new(&h).exists() => Lease::Free,
            Ok(h) => Lease::Taken(h),
            Err(_) => Lease::Taken("an unreadable holder".into()),
        },
        Err(e) => Lease::Taken(format!("an unreadable lease ({e})")),
    }
}

fn write_lease(leases: &Path, range: &IdRange, holder: &Path) -> Result<(), UsernsError> {
    let text = holder.to_str().ok_or_else(|| UsernsError::Io {
        path: holder.to_path_buf(),
        source: io::Error::other("not UTF-8"),
    })?;
    let file = lease_file(leases, range);
    crate::fsutil::write_atomic(&file, text.as_bytes(), 0o600).map_err(io_err(&file))
}

/// The range `holder` holds in `leases`, else the first free one of `pool`,
/// leased to it.
pub fn lease(pool: &Pool, leases: &Path, holder: &Path) -> Result<IdRange, UsernsError> {
    let _lock = lock(leases)?;
    // Held already, whatever the pool says now (it may have changed since).
    if let Some(held) = held(leases, holder).into_iter().next() {
        return Ok(held);
    }
    match pool
        .ranges()
        .find(|r| matches!(lease_state(leases, r, holder), Lease::Free))
    {
        Some(range) => write_lease(leases, &range, holder).map(|()| range),
        None => Err(UsernsError::Exhausted(pool.count / IDS_PER_POD)),
    }
}

/// The ranges `holder` holds in `leases` (the caller holds the lock): every
/// lease file, whose name is its range's first id, that names it.
fn held(leases: &Path, holder: &Path) -> Vec<IdRange> {
    let Ok(entries) = fs::read_dir(leases) else {
        return Vec::new();
    };
    let mut ranges: Vec<IdRange> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .map(|host_id| IdRange {
            host_id,
            size: IDS_PER_POD,
        })
        .filter(|r| matches!(lease_state(leases, r, holder), Lease::Mine))
        .collect();
    ranges.sort_by_key(|r| r.host_id);
    ranges
}

fn lease_file(leases: &Path, range: &IdRange) -> PathBuf {
    leases.join(range.host_id.to_string())
}

#[cfg(test)]
fn holder_of(leases: &Path, range: &IdRange) -> Option<PathBuf> {
    let bytes = crate::fsutil::read_regular(&lease_file(leases, range), 4096).ok()?;
    Some(PathBuf::from(String::from_utf8(bytes).ok()?))
}

/// Leases `range` to `holder` (a plan that names it: `up --from`, `run.sh`);
/// a lease whose holder directory is gone is taken over.
pub fn claim(leases: &Path, range: &IdRange, holder: &Path) -> Result<(), UsernsError> {
    let _lock = lock(leases)?;
    match lease_state(leases, range, holder) {
        Lease::Mine => Ok(()),
        Lease::Free => write_lease(leases, range, holder),
        Lease::Taken(h) => Err(UsernsError::Taken {
            host_id: range.host_id,
            holder: h,
        }),
    }
}

/// Gives up every lease `holder` holds in `leases`, no one else's.
pub fn release_held(leases: &Path, holder: &Path) {
    let Ok(_lock) = lock(leases) else {
        return;
    };
    for range in held(leases, holder) {
        let _ = fs::remove_file(lease_file(leases, &range));
    }
}

/// Gives up every host-wide lease `holder` holds (its directory is removed).
pub fn release(holder: &Path) {
    release_held(Path::new(LEASE_DIR), holder);
}

/// What a helper child does before it waits.
#[derive(Clone, Copy)]
enum Become<'a> {
    /// Unshares a new user namespace (the parent writes its maps).
    NewUser,
    /// Joins this user namespace.
    InUser(&'a OwnedFd),
    /// Joins this user namespace and unshares a network namespace in it,
    /// its loopback up.
    NetIn(&'a OwnedFd),
}

/// A child process that waits, as it [`Become`]s, until dropped.
struct Holder {
    pid: Pid,
    go: Option<OwnedFd>,
}

impl Holder {
    fn spawn(what: Become<'_>) -> io::Result<Holder> {
        // Close-on-exec: a process another thread spawns meanwhile must not
        // hold the pipes open (the child itself never execs).
        let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC)?;
        let (go_r, go_w) = pipe2(OFlag::O_CLOEXEC)?;
        // SAFETY: the child makes only async-signal-safe calls (close, setns,
        // unshare, socket, ioctl, write, read, _exit), allocating nothing, as
        // fork(2) in a threaded process requires.
        match unsafe { fork() }.map_err(io::Error::from)? {
            ForkResult::Child => {
                drop(ready_r);
                drop(go_w);
                let done = match what {
                    Become::NewUser => unshare(CloneFlags::CLONE_NEWUSER),
                    Become::InUser(user) => setns(user.as_fd(), CloneFlags::CLONE_NEWUSER),
                    Become::NetIn(user) => setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
                        .and_then(|()| unshare(CloneFlags::CLONE_NEWNET))
                        .and_then(|()| {
                            crate::cni::netns::set_up("lo").map_err(|_| nix::Error::EIO)
                        }),
                };
                let byte = [u8::from(done.is_err())];
                let _ = nix::unistd::write(&ready_w, &byte);
                let mut buf = [0u8; 1];
                while let Err(nix::Error::EINTR) = read(&go_r, &mut buf) {}
                // SAFETY: ends the child without running the parent's handlers.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                drop(ready_w);
                drop(go_r);
                let holder = Holder {
                    pid: child,
                    go: Some(go_w),
                };
                let mut buf = [1u8; 1];
                let n = loop {
                    match read(&ready_r, &mut buf) {
                        Err(nix::Error::EINTR) => {}
                        r => break r?,
                    }
                };
                if n != 1 || buf[0] != 0 {
                    return Err(io::Error::other(match what {
                        Become::NewUser => "the helper could not make a user namespace",
                        Become::InUser(_) => "the helper could not join the pod's user namespace",
                        Become::NetIn(_) => {
                            "the helper could not make a network namespace in the pod's user namespace"
                        }
                    }));
                }
                Ok(holder)
            }
        }
    }

    fn ns(&self, name: &str) -> String {
        format!("/proc/{}/ns/{name}", self.pid)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.go.take());
        while let Err(nix::Error::EINTR) = waitpid(self.pid, None) {}
    }
}

/// Pins the namespace file `ns` at `pin`: a file of podshim's in the pod's
/// directory, made empty, or the one an unmount left (`stop.sh`), never a
/// link followed; the mount goes onto the file opened, not a path resolved
/// again.
fn pin_at(ns: &str, pin: &Path) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o444)
        .custom_flags(libc::O_NOFOLLOW)
        .open(pin)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{}: not a regular file",
            pin.display()
        )));
    }
    let target = format!("/proc/self/fd/{}", file.as_raw_fd());
    let pinned = mount(
        Some(ns),
        target.as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io::Error::from);
    if pinned.is_err() {
        let _ = fs::remove_file(pin);
    }
    pinned
}

/// The mapping of the user namespace `user` (as a process in it reads its
/// uid_map).
fn mapping_of(user: &OwnedFd) -> io::Result<String> {
    let holder = Holder::spawn(Become::InUser(user))?;
    fs::read_to_string(format!("/proc/{}/uid_map", holder.pid))
}

/// Makes a user namespace mapping `range` and pins it at `pin`. One pinned
/// there already (setting a pod up again) is kept if it maps `range`, and
/// replaced otherwise (a pin left by an earlier pod of the directory must not
/// lend it ids leased to another since). The mapping is written by podshim,
/// root of the host's namespace, so no setgroups(2) restriction applies inside.
/// Whether a new namespace was pinned (none was there that maps `range`).
pub fn pin_new(range: &IdRange, pin: &Path) -> io::Result<bool> {
    if crate::cni::netns::is_pinned(pin) {
        let maps = open(pin).and_then(|u| mapping_of(&u));
        let wanted = range.map_line();
        if maps.is_ok_and(|m| m.split_whitespace().eq(wanted.split_whitespace())) {
            return Ok(false);
        }
        crate::cni::netns::unpin(pin)?;
    }
    let holder = Holder::spawn(Become::NewUser)?;
    let map = range.map_line();
    for file in ["uid_map", "gid_map"] {
        fs::write(format!("/proc/{}/{file}", holder.pid), &map)?;
    }
    pin_at(&holder.ns("user"), pin).map(|()| true)
}

/// NS_GET_NSTYPE (linux/nsfs.h).
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Opens the user namespace pinned at `pin` (checked on the descriptor: a
/// user namespace's nsfs file).
pub fn open(pin: &Path) -> io::Result<OwnedFd> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(pin)?;
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the type.
    let kind = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE as _) };
    if kind != libc::CLONE_NEWUSER {
        return Err(io::Error::other(format!(
            "{}: no user namespace is pinned there",
            pin.display()
        )));
    }
    Ok(OwnedFd::from(f))
}

/// Makes a network namespace owned by the user namespace pinned at `userns`
/// (so that the pod's root may administer it, and mount its sysfs), its
/// loopback up, and pins it at `pin`.
pub fn pin_netns_in(userns: &Path, pin: &Path) -> io::Result<()> {
    let user = open(userns)?;
    let holder = Holder::spawn(Become::NetIn(&user))?;
    pin_at(&holder.ns("net"), pin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_podshims_subordinate_range_else_the_default() {
        assert_eq!(Pool::parse(None, None).unwrap(), DEFAULT_POOL);
        let sub = "alice:100000:65536\npodshim:655360:131072\n";
        assert_eq!(
            Pool::parse(Some(sub), Some(sub)).unwrap(),
            Pool {
                first: 655360,
                count: 131072
            }
        );
        // Another user's entries are not podshim's.
        assert_eq!(
            Pool::parse(Some("alice:100000:65536\n"), None).unwrap(),
            DEFAULT_POOL
        );
        let err = |u: &str, g: &str| Pool::parse(Some(u), Some(g)).unwrap_err().to_string();
        assert!(
            err("podshim:100000:65536\n", "podshim:100000:65536\n").contains("multiples of 65536"),
        );
        assert!(err("podshim:655360:65536\n", "").contains("must equal /etc/subgid's"));
        assert!(err("podshim:x:65536\n", "").contains("not podshim:FIRST:COUNT"));
        assert!(err("podshim:4294901760:131072\n", "").contains("past the largest id"));
        // Someone else's range inside the pool is refused.
        let e = Pool::parse(Some("bob:1073745000:10\n"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bob's ids 1073745000-1073745009 overlap podshim's"),
            "{e}"
        );
    }

    #[test]
    fn a_lease_is_one_holders_and_freed_when_the_holder_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let leases = tmp.path().join("leases");
        let pool = Pool {
            first: 1 << 20,
            count: IDS_PER_POD * 2,
        };
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        let c = tmp.path().join("c");
        for d in [&a, &b, &c] {
            fs::create_dir(d).unwrap();
        }
        let ra = lease(&pool, &leases, &a).unwrap();
        assert_eq!(ra.host_id, 1 << 20);
        // The same holder gets its range again; another the next one.
        assert_eq!(lease(&pool, &leases, &a).unwrap(), ra);
        let rb = lease(&pool, &leases, &b).unwrap();
        assert_eq!(rb.host_id, (1 << 20) + IDS_PER_POD);
        // A holder keeps its range when the pool changes under it.
        let moved = Pool {
            first: 1 << 24,
            count: IDS_PER_POD,
        };
        assert_eq!(lease(&moved, &leases, &a).unwrap(), ra);
        assert!(matches!(
            lease(&pool, &leases, &c),
            Err(UsernsError::Exhausted(2))
        ));
        assert!(matches!(
            claim(&leases, &ra, &c),
            Err(UsernsError::Taken { .. })
        ));
        // Only its holder releases a lease.
        release_held(&leases, &c);
        assert_eq!(holder_of(&leases, &ra).as_deref(), Some(a.as_path()));
        // A holder that is gone frees its range.
        fs::remove_dir(&b).unwrap();
        assert_eq!(lease(&pool, &leases, &c).unwrap(), rb);
        // A lease left empty (a writer that died) is free.
        fs::write(lease_file(&leases, &ra), "").unwrap();
        let rd = lease(&pool, &leases, &tmp.path().join("a")).unwrap();
        assert_eq!(rd, ra);
        // All of one holder's leases go at once, no one else's.
        release_held(&leases, &a);
        assert_eq!(holder_of(&leases, &ra), None);
        assert_eq!(holder_of(&leases, &rb).as_deref(), Some(c.as_path()));
    }

    #[test]
    fn a_pinned_user_namespace_maps_the_range_and_owns_the_pods_network_namespace() {
        use std::os::unix::fs::MetadataExt;
        /// Unmounts the pins whatever the test's outcome.
        struct Pins(Vec<PathBuf>);
        impl Drop for Pins {
            fn drop(&mut self) {
                for p in &self.0 {
                    let _ = crate::cni::netns::unpin(p);
                }
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let range = IdRange {
            host_id: 1 << 30,
            size: IDS_PER_POD,
        };
        let pin = tmp.path().join("userns");
        let net = tmp.path().join("netns");
        let _pins = Pins(vec![net.clone(), pin.clone()]);
        let ino = |fd: &OwnedFd| {
            fs::File::from(fd.try_clone().unwrap())
                .metadata()
                .unwrap()
                .ino()
        };
        pin_new(&range, &pin).unwrap();
        let first = ino(&open(&pin).unwrap());
        // Pinned again: the same namespace.
        pin_new(&range, &pin).unwrap();
        assert_eq!(ino(&open(&pin).unwrap()), first);
        pin_netns_in(&pin, &net).unwrap();
        // A process that joins it sees the mapping.
        let map = mapping_of(&open(&pin).unwrap()).unwrap();
        assert_eq!(
            map.split_whitespace().collect::<Vec<_>>(),
            ["0", "1073741824", "65536"]
        );
        // The network namespace is the user namespace's (NS_GET_USERNS).
        let net_file = fs::File::open(&net).unwrap();
        // SAFETY: NS_GET_USERNS returns a new descriptor of the owner.
        let owner = unsafe { libc::ioctl(net_file.as_raw_fd(), 0xb701 as _) };
        assert!(owner >= 0, "{}", io::Error::last_os_error());
        // SAFETY: the descriptor the ioctl just returned.
        let owner = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(owner) };
        assert_eq!(ino(&owner), first);
        // A pin of another mapping is replaced, not used.
        let other = IdRange {
            host_id: (1 << 30) + IDS_PER_POD,
            size: IDS_PER_POD,
        };
        pin_new(&other, &pin).unwrap();
        let map = mapping_of(&open(&pin).unwrap()).unwrap();
        assert_eq!(map.split_whitespace().nth(1), Some("1073807360"));
        // A pin of something else is no user namespace.
        assert!(open(&net).is_err());
    }
}
