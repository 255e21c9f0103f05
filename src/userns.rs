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
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe, read};
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
        match (entry("/etc/subuid", subuid)?, entry("/etc/subgid", subgid)?) {
            (None, None) => Ok(DEFAULT_POOL),
            (Some(u), Some(g)) if u == g => Ok(u),
            _ => Err(UsernsError::Config {
                file: "/etc/subuid".into(),
                message: "its podshim entry must equal /etc/subgid's".into(),
            }),
        }
    }

    fn ranges(&self) -> impl Iterator<Item = IdRange> + '_ {
        (0..self.count / IDS_PER_POD).map(|i| IdRange {
            host_id: self.first + i * IDS_PER_POD,
            size: IDS_PER_POD,
        })
    }
}

/// The range `holder` holds in `leases`, else the first free one, leased to it.
pub fn lease(pool: &Pool, leases: &Path, holder: &Path) -> Result<IdRange, UsernsError> {
    crate::fsutil::mkdir_mode(leases, 0o700).map_err(io_err(leases))?;
    if let Some(held) = pool
        .ranges()
        .find(|r| holder_of(leases, r).as_deref() == Some(holder))
    {
        return Ok(held);
    }
    for range in pool.ranges() {
        match claim(leases, &range, holder) {
            Ok(()) => return Ok(range),
            Err(UsernsError::Taken { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(UsernsError::Exhausted(pool.count / IDS_PER_POD))
}

fn lease_file(leases: &Path, range: &IdRange) -> PathBuf {
    leases.join(range.host_id.to_string())
}

fn holder_of(leases: &Path, range: &IdRange) -> Option<PathBuf> {
    let bytes = crate::fsutil::read_regular(&lease_file(leases, range), 4096).ok()?;
    Some(PathBuf::from(String::from_utf8(bytes).ok()?))
}

/// Leases `range` to `holder` (a plan that names it: `up --from`); a lease
/// whose holder directory is gone is taken over.
pub fn claim(leases: &Path, range: &IdRange, holder: &Path) -> Result<(), UsernsError> {
    crate::fsutil::mkdir_mode(leases, 0o700).map_err(io_err(leases))?;
    let file = lease_file(leases, range);
    let text = holder.to_str().ok_or_else(|| UsernsError::Io {
        path: holder.to_path_buf(),
        source: io::Error::other("not UTF-8"),
    })?;
    for _ in 0..2 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
        {
            Ok(mut f) => return f.write_all(text.as_bytes()).map_err(io_err(&file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let held = holder_of(leases, range);
                if held.as_deref() == Some(holder) {
                    return Ok(());
                }
                match held {
                    // A holder that is gone (a wiped state root, a removed
                    // output) left its lease: free.
                    Some(h) if !h.exists() => {
                        let _ = fs::remove_file(&file);
                    }
                    // Half-written by a claim under way: not ours either way.
                    h => {
                        return Err(UsernsError::Taken {
                            host_id: range.host_id,
                            holder: h.map_or("another pod".into(), |h| h.display().to_string()),
                        });
                    }
                }
            }
            Err(e) => return Err(io_err(&file)(e)),
        }
    }
    Err(UsernsError::Taken {
        host_id: range.host_id,
        holder: "another pod".into(),
    })
}

/// Gives up `holder`'s lease of `range`; another holder's is left alone.
pub fn release(leases: &Path, range: &IdRange, holder: &Path) {
    if holder_of(leases, range).as_deref() == Some(holder) {
        let _ = fs::remove_file(lease_file(leases, range));
    }
}

/// Gives up every lease `holder` holds (its directory is being removed).
pub fn release_held(leases: &Path, holder: &Path) {
    let Ok(entries) = fs::read_dir(leases) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let held = crate::fsutil::read_regular(&path, 4096)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        // Only a lease file's name is a range's first id.
        let named = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if named && held.as_deref().map(Path::new) == Some(holder) {
            let _ = fs::remove_file(&path);
        }
    }
}

/// A child process that waits, in a new user namespace of `range`'s mapping
/// (or, with `netns_of`, in that user namespace and a new network namespace
/// of its own), until dropped.
struct Holder {
    pid: Pid,
    go: Option<OwnedFd>,
}

impl Holder {
    fn spawn(user: Option<&OwnedFd>) -> io::Result<Holder> {
        let (ready_r, ready_w) = pipe()?;
        let (go_r, go_w) = pipe()?;
        // SAFETY: the child makes only async-signal-safe calls (unshare, setns,
        // write, read, _exit) before it exits, as fork(2) in a threaded process
        // requires.
        match unsafe { fork() }.map_err(io::Error::from)? {
            ForkResult::Child => {
                drop(ready_r);
                drop(go_w);
                let done = match user {
                    Some(user) => setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
                        .and_then(|()| unshare(CloneFlags::CLONE_NEWNET)),
                    None => unshare(CloneFlags::CLONE_NEWUSER),
                };
                let byte = [u8::from(done.is_err())];
                let _ = nix::unistd::write(&ready_w, &byte);
                let mut buf = [0u8; 1];
                let _ = read(&go_r, &mut buf);
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
                let n = read(&ready_r, &mut buf)?;
                if n != 1 || buf[0] != 0 {
                    return Err(io::Error::other(match user {
                        Some(_) => {
                            "the helper could not make a network namespace in the pod's user namespace"
                        }
                        None => "the helper could not make a user namespace",
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
        let _ = waitpid(self.pid, None);
    }
}

/// Pins the namespace file `ns` at `pin`: a file of podshim's in the pod's
/// directory, made empty, or the one an unmount left (`stop.sh`), never a
/// link followed.
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
    let pinned =
        mount(Some(ns), pin, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(io::Error::from);
    if pinned.is_err() {
        let _ = fs::remove_file(pin);
    }
    pinned
}

/// Makes a user namespace mapping `range` and pins it at `pin`, unless one is
/// pinned there already (setting a pod up again). The mapping is written by
/// podshim, root of the host's namespace, so no setgroups(2) restriction
/// applies inside.
pub fn pin_new(range: &IdRange, pin: &Path) -> io::Result<()> {
    if crate::cni::netns::is_pinned(pin) {
        return Ok(());
    }
    let holder = Holder::spawn(None)?;
    let map = range.map_line();
    for file in ["uid_map", "gid_map"] {
        fs::write(format!("/proc/{}/{file}", holder.pid), &map)?;
    }
    pin_at(&holder.ns("user"), pin)
}

/// Opens the user namespace pinned at `pin`.
pub fn open(pin: &Path) -> io::Result<OwnedFd> {
    let f = fs::File::open(pin)?;
    if !crate::cni::netns::is_pinned(pin) {
        return Err(io::Error::other(format!(
            "{}: no user namespace is pinned there",
            pin.display()
        )));
    }
    Ok(OwnedFd::from(f))
}

/// Makes a network namespace owned by the user namespace pinned at `userns`
/// (so that the pod's root may administer it, and mount its sysfs) and pins
/// it at `pin`, which must not exist; its loopback is brought up by the infra's
/// runtime or podshim once the infra runs.
pub fn pin_netns_in(userns: &Path, pin: &Path) -> io::Result<()> {
    let user = open(userns)?;
    let holder = Holder::spawn(Some(&user))?;
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
        assert!(matches!(
            lease(&pool, &leases, &c),
            Err(UsernsError::Exhausted(2))
        ));
        assert!(matches!(
            claim(&leases, &ra, &c),
            Err(UsernsError::Taken { .. })
        ));
        // Only its holder releases a lease.
        release(&leases, &ra, &c);
        assert_eq!(holder_of(&leases, &ra).as_deref(), Some(a.as_path()));
        // A holder that is gone frees its range.
        fs::remove_dir(&b).unwrap();
        assert_eq!(lease(&pool, &leases, &c).unwrap(), rb);
        release(&leases, &ra, &a);
        assert_eq!(holder_of(&leases, &ra), None);
        // All of one holder's leases go at once, no one else's.
        let ra = lease(&pool, &leases, &a).unwrap();
        release_held(&leases, &a);
        assert_eq!(holder_of(&leases, &ra), None);
        assert_eq!(holder_of(&leases, &rb).as_deref(), Some(c.as_path()));
    }

    #[test]
    fn a_pinned_user_namespace_maps_the_range_and_owns_the_pods_network_namespace() {
        let tmp = tempfile::tempdir().unwrap();
        let range = IdRange {
            host_id: 1 << 30,
            size: IDS_PER_POD,
        };
        let pin = tmp.path().join("userns");
        pin_new(&range, &pin).unwrap();
        // Pinned again: the same namespace.
        pin_new(&range, &pin).unwrap();
        let net = tmp.path().join("netns");
        pin_netns_in(&pin, &net).unwrap();
        // A process that joins it sees the mapping.
        let holder = Holder::spawn(Some(&open(&pin).unwrap())).unwrap();
        let map = fs::read_to_string(format!("/proc/{}/uid_map", holder.pid)).unwrap();
        assert_eq!(
            map.split_whitespace().collect::<Vec<_>>(),
            ["0", "1073741824", "65536"]
        );
        drop(holder);
        for p in [&net, &pin] {
            nix::mount::umount(p.as_path()).unwrap();
        }
    }
}
