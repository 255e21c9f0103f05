//! The pod's cgroup on the host: made, with its limits, before the infra starts;
//! removed once its containers are deleted. The runtime makes each container's
//! own cgroup under it (config.json's `cgroupsPath`), as runc does under the
//! kubelet's pod cgroups.
//!
//! Both layouts: cgroup v1 (and the hybrid of this kind of host, v1 controllers
//! with an empty v2 hierarchy beside them), where the pod's cgroup is made in the
//! cpu, memory and pids hierarchies and the runtime adds it in the others; and
//! pure v2, where the controllers are enabled down the path
//! (`cgroup.subtree_control`) so the pod's level can hold limits.
//!
//! Only what the plan names is removed: the pod's `pod<uid>` cgroup and its
//! containers' under it, with rmdir(2), which the kernel refuses while a cgroup
//! holds a process or a child; the parent and QoS levels are made where missing
//! (and on v2 given the controllers) and stay, as the kubelet's do. A path from a
//! plan is checked to be one podshim writes before anything is made or removed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::translate::pod_cgroup::PodCgroup;
use crate::translate::resources::PERIOD;

/// mountinfo of a host with thousands of mounts is well below it.
const MAX_MOUNTINFO: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("pod cgroup {path}: {what}: {err}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        err: io::Error,
    },
    #[error(
        "pod cgroup {path}: the {controller} controller is not mounted, so the pod's {what} cannot be limited"
    )]
    NoController {
        path: String,
        controller: &'static str,
        what: &'static str,
    },
    #[error(
        "pod cgroup {path} holds {other}, not a container of this pod: is metadata.uid shared with another pod?"
    )]
    Foreign { path: PathBuf, other: String },
    #[error(
        "pod cgroup {path} has running processes before the pod starts: another pod (another podshim root?) runs under the same uid and names"
    )]
    InUse { path: PathBuf },
    #[error("pod cgroup {path:?}: not a cgroup path podshim writes")]
    BadPath { path: String },
}

/// The cgroup hierarchies of this mount namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// cgroup v1 mounts and the controllers each holds (`name=systemd` too).
    pub v1: Vec<(PathBuf, Vec<String>)>,
    /// The v2 mount: `/sys/fs/cgroup` on a pure v2 host, `.../unified` on a hybrid.
    pub unified: Option<PathBuf>,
}

impl Hierarchies {
    pub fn read() -> io::Result<Hierarchies> {
        let path = Path::new("/proc/self/mountinfo");
        let file = fs::File::open(path)?;
        let bytes = crate::fsutil::read_bounded(file, MAX_MOUNTINFO).map_err(|e| match e {
            crate::fsutil::ReadError::Io(e) => e,
            crate::fsutil::ReadError::TooLarge => {
                io::Error::other(format!("{}: too large", path.display()))
            }
        })?;
        Ok(Self::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// From mountinfo text: `... mountpoint ... - fstype source superoptions`.
    pub fn parse(mountinfo: &str) -> Hierarchies {
        let mut h = Hierarchies::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = left.split(' ').collect();
            // A bind of a subtree is not a hierarchy's root.
            let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else {
                continue;
            };
            if *root != "/" {
                continue;
            }
            let point = PathBuf::from(crate::bundle::unescape_mountinfo(point));
            let mut right = right.split(' ');
            match (right.next(), right.nth(1)) {
                (Some("cgroup2"), _) => h.unified = Some(point),
                (Some("cgroup"), Some(options)) => {
                    let controllers = options
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("release_agent"))
                        .map(str::to_string)
                        .collect();
                    h.v1.push((point, controllers));
                }
                _ => {}
            }
        }
        h
    }

    /// Pure v2: no v1 hierarchy holds a controller (a `name=systemd` one, as
    /// some v2 hosts mount for old tools, holds none).
    pub fn is_unified(&self) -> bool {
        self.unified.is_some()
            && self
                .v1
                .iter()
                .all(|(_, c)| c.iter().all(|c| c.starts_with("name=")))
    }

    /// The v1 hierarchy that holds `controller`.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(_, c)| c.iter().any(|c| c == controller))
            .map(|(p, _)| p.as_path())
    }

    /// `path` (absolute within a hierarchy) in every hierarchy.
    fn everywhere(&self, path: &str) -> Vec<PathBuf> {
        self.v1
            .iter()
            .map(|(p, _)| p.as_path())
            .chain(self.unified.as_deref())
            .map(|root| within(root, path))
            .collect()
    }
}

fn within(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |err| CgroupError::Io {
        path: path.to_path_buf(),
        what,
        err,
    }
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(|err| CgroupError::Io {
        path,
        what: "write",
        err,
    })
}

/// runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] onto [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// Makes the pod's cgroup and writes its limits. `ids` are the pod's containers:
/// a cgroup of another name under it means another pod has the same uid.
pub fn create(h: &Hierarchies, cg: &PodCgroup, ids: &[String]) -> Result<(), CgroupError> {
    checked(cg, ids)?;
    // Before a start nothing of the pod runs: a process in its cgroups is
    // another pod's that has the same uid and names (the same manifest under a
    // second podshim root), whose limits must not be rewritten.
    for dir in h.everywhere(&cg.path) {
        check_children(&dir, ids)?;
        for d in ids.iter().map(|id| dir.join(id)).chain([dir.clone()]) {
            if populated(&d) {
                return Err(CgroupError::InUse { path: d });
            }
        }
    }
    write_limits(h, cg)
}

/// Whether an error is a level removed under us: the last pod of a QoS level
/// going down while this one comes up (made again on the next try).
fn vanished(e: &CgroupError) -> bool {
    matches!(e, CgroupError::Io { err, .. } if err.kind() == io::ErrorKind::NotFound)
}

/// Makes the pod's cgroup where missing and writes its limits, without the
/// checks of a start ([`create`]): a resize sets them while the pod runs.
pub fn set_limits(h: &Hierarchies, cg: &PodCgroup, ids: &[String]) -> Result<(), CgroupError> {
    checked(cg, ids)?;
    write_limits(h, cg)
}

/// Makes the (checked) pod cgroup where missing and writes its limits, again
/// when a level vanished under it.
fn write_limits(h: &Hierarchies, cg: &PodCgroup) -> Result<(), CgroupError> {
    let once = || {
        if h.is_unified() {
            create_unified(h.unified.as_deref().expect("unified"), cg)
        } else {
            create_v1(h, cg)
        }
    };
    let mut result = once();
    for _ in 0..3 {
        match &result {
            Err(e) if vanished(e) => result = once(),
            _ => break,
        }
    }
    result
}

/// The plan's path and ids, which podshim wrote: never one that could climb.
fn checked(cg: &PodCgroup, ids: &[String]) -> Result<(), CgroupError> {
    use crate::translate::pod_cgroup::{is_cgroup_name, is_cgroup_path};
    if !is_cgroup_path(&cg.path) || cg.path == "/" {
        return Err(CgroupError::BadPath {
            path: cg.path.clone(),
        });
    }
    if let Some(id) = ids.iter().find(|id| !is_cgroup_name(id)) {
        return Err(CgroupError::BadPath {
            path: format!("{}/{id}", cg.path),
        });
    }
    Ok(())
}

/// Whether a cgroup directory holds a process (its `cgroup.procs` is not empty).
fn populated(dir: &Path) -> bool {
    fs::File::open(dir.join("cgroup.procs"))
        .ok()
        .and_then(|f| crate::fsutil::read_bounded(f, 4096).ok())
        .is_some_and(|b| b.iter().any(u8::is_ascii_digit))
}

fn check_children(dir: &Path, ids: &[String]) -> Result<(), CgroupError> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_dir()) && !ids.contains(&name) {
            return Err(CgroupError::Foreign {
                path: dir.to_path_buf(),
                other: name,
            });
        }
    }
    Ok(())
}

/// A limit the pod needs and the controller to hold it is not there.
fn missing(cg: &PodCgroup, controller: &'static str, what: &'static str) -> CgroupError {
    CgroupError::NoController {
        path: cg.path.clone(),
        controller,
        what,
    }
}

fn create_v1(h: &Hierarchies, cg: &PodCgroup) -> Result<(), CgroupError> {
    let quota = cg.cpu_quota.map_or("-1".to_string(), |q| q.to_string());
    let memory = cg.memory_limit.map_or("-1".to_string(), |m| m.to_string());
    let pids = cg.pids_limit.map_or("max".to_string(), |p| p.to_string());
    let mut writes: Vec<(&Path, Vec<(&str, String)>)> = Vec::new();
    // Shares are a weight: without the cpu controller there is nothing to weigh.
    match (h.v1_mount("cpu"), cg.cpu_quota) {
        (Some(cpu), _) => writes.push((
            cpu,
            vec![
                ("cpu.shares", cg.cpu_shares.to_string()),
                ("cpu.cfs_period_us", PERIOD.to_string()),
                ("cpu.cfs_quota_us", quota),
            ],
        )),
        (None, Some(_)) => return Err(missing(cg, "cpu", "CPU")),
        (None, None) => {}
    }
    match h.v1_mount("memory") {
        Some(m) => writes.push((m, vec![("memory.limit_in_bytes", memory)])),
        None if cg.memory_limit.is_some() => return Err(missing(cg, "memory", "memory")),
        None => {}
    }
    match h.v1_mount("pids") {
        Some(p) => writes.push((p, vec![("pids.max", pids)])),
        None if cg.pids_limit.is_some() => return Err(missing(cg, "pids", "pids")),
        None => {}
    }
    for (root, files) in writes {
        let dir = within(root, &cg.path);
        fs::create_dir_all(&dir).map_err(io_err(&dir, "create"))?;
        for (file, value) in files {
            write(&dir, file, &value)?;
        }
    }
    if cg.is_best_effort()
        && let Some(cpu) = h.v1_mount("cpu")
    {
        write(&within(cpu, cg.qos_level()), "cpu.shares", "2")?;
    }
    Ok(())
}

fn create_unified(root: &Path, cg: &PodCgroup) -> Result<(), CgroupError> {
    let dir = within(root, &cg.path);
    fs::create_dir_all(&dir).map_err(io_err(&dir, "create"))?;
    // Each level down to the pod's hands it cpu, memory and pids (the
    // no-internal-process rule exempts the root; podshim's levels hold no process).
    let mut level = root.to_path_buf();
    let mut parts = cg.path.trim_start_matches('/').split('/').peekable();
    while let Some(part) = parts.next() {
        let available = fs::read_to_string(level.join("cgroup.controllers"))
            .map_err(io_err(&level, "read cgroup.controllers"))?;
        let enable: Vec<String> = ["cpu", "memory", "pids"]
            .iter()
            .filter(|c| available.split_whitespace().any(|a| a == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if !enable.is_empty() {
            write(&level, "cgroup.subtree_control", &enable.join(" "))?;
        }
        level.push(part);
        if parts.peek().is_none() {
            break;
        }
    }
    let available = fs::read_to_string(dir.join("cgroup.controllers"))
        .map_err(io_err(&dir, "read cgroup.controllers"))?;
    let has = |c: &str| available.split_whitespace().any(|a| a == c);
    if has("cpu") {
        write(
            &dir,
            "cpu.weight",
            &shares_to_weight(cg.cpu_shares).to_string(),
        )?;
        let max = cg.cpu_quota.map_or("max".to_string(), |q| q.to_string());
        write(&dir, "cpu.max", &format!("{max} {PERIOD}"))?;
    } else if cg.cpu_quota.is_some() {
        return Err(missing(cg, "cpu", "CPU"));
    }
    match (has("memory"), cg.memory_limit) {
        (true, limit) => write(
            &dir,
            "memory.max",
            &limit.map_or("max".to_string(), |m| m.to_string()),
        )?,
        (false, Some(_)) => return Err(missing(cg, "memory", "memory")),
        (false, None) => {}
    }
    match (has("pids"), cg.pids_limit) {
        (true, limit) => write(
            &dir,
            "pids.max",
            &limit.map_or("max".to_string(), |p| p.to_string()),
        )?,
        (false, Some(_)) => return Err(missing(cg, "pids", "pids")),
        (false, None) => {}
    }
    if cg.is_best_effort() && has("cpu") {
        write(&within(root, cg.qos_level()), "cpu.weight", "1")?;
    }
    Ok(())
}

/// Removes the containers' cgroups the runtime left and the pod's, in every
/// hierarchy. One still in use (a process the runtime did not stop) is an error
/// naming it; the others are removed anyway.
pub fn remove(h: &Hierarchies, cg: &PodCgroup, ids: &[String]) -> Result<(), CgroupError> {
    checked(cg, ids)?;
    let mut first = None;
    for dir in h.everywhere(&cg.path) {
        for path in ids.iter().map(|id| dir.join(id)).chain([dir.clone()]) {
            match fs::remove_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    first.get_or_insert(CgroupError::Io {
                        path,
                        what: "remove (still in use)",
                        err,
                    });
                }
            }
        }
    }
    // The levels podshim made for its pods go with the last of them (rmdir
    // fails on one that still holds another pod: that one stays).
    if first.is_none() && !cg.owned_from.is_empty() && is_cgroup_path_owned(cg) {
        let mut level = cg.qos_level().to_string();
        while level.len() >= cg.owned_from.len() && level.starts_with(&cg.owned_from) {
            for dir in h.everywhere(&level) {
                let _ = fs::remove_dir(dir);
            }
            match level.rsplit_once('/') {
                Some((up, _)) if !up.is_empty() => level = up.to_string(),
                _ => break,
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// `owned_from` is a level above the pod's own path, of checked names.
fn is_cgroup_path_owned(cg: &PodCgroup) -> bool {
    crate::translate::pod_cgroup::is_cgroup_path(&cg.owned_from)
        && cg.path.starts_with(&format!("{}/", cg.owned_from))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
36 30 0:32 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,freezer
";

    #[test]
    fn mountinfo_gives_each_hierarchy_and_its_controllers() {
        let h = Hierarchies::parse(HYBRID);
        assert!(!h.is_unified());
        assert_eq!(h.unified, Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(
            h.v1_mount("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            h.v1_mount("freezer"),
            Some(Path::new("/sys/fs/cgroup/with space"))
        );
        assert_eq!(
            h.v1_mount("name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        assert_eq!(h.v1_mount("hugetlb"), None);
        assert_eq!(h.everywhere("/a/b").len(), 6);
        let v2 = Hierarchies::parse("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert!(v2.is_unified());
    }

    fn cg(path: &str) -> PodCgroup {
        PodCgroup {
            path: path.into(),
            cpu_shares: 512,
            cpu_quota: Some(50_000),
            memory_limit: Some(64 << 20),
            pids_limit: Some(100),
            owned_from: String::new(),
        }
    }

    /// A fake v1 tree: one directory per hierarchy under `root`.
    fn v1_tree(root: &Path) -> Hierarchies {
        let mut h = Hierarchies::default();
        for c in ["cpu", "memory", "pids", "freezer"] {
            fs::create_dir_all(root.join(c)).unwrap();
            h.v1.push((root.join(c), vec![c.to_string()]));
        }
        h
    }

    #[test]
    fn a_v1_pod_cgroup_gets_its_limits_and_goes_with_its_containers() {
        let tmp = tempfile::tempdir().unwrap();
        let h = v1_tree(tmp.path());
        let c = cg("/podshim/kubepods/burstable/poduid");
        let ids = vec!["ns_p".to_string(), "ns_p_a".to_string()];
        create(&h, &c, &ids).unwrap();
        let read = |p: &str| fs::read_to_string(tmp.path().join(p)).unwrap();
        let pod = "podshim/kubepods/burstable/poduid";
        assert_eq!(read(&format!("cpu/{pod}/cpu.shares")), "512");
        assert_eq!(read(&format!("cpu/{pod}/cpu.cfs_period_us")), "100000");
        assert_eq!(read(&format!("cpu/{pod}/cpu.cfs_quota_us")), "50000");
        assert_eq!(
            read(&format!("memory/{pod}/memory.limit_in_bytes")),
            "67108864"
        );
        assert_eq!(read(&format!("pids/{pod}/pids.max")), "100");
        // The runtime made a container's cgroup in another hierarchy.
        fs::create_dir_all(tmp.path().join(format!("freezer/{pod}/ns_p_a"))).unwrap();
        // (A fake tree's directories hold the files written: emptied as the
        // kernel's cgroupfs would be.)
        for c in ["cpu", "memory", "pids"] {
            for e in fs::read_dir(tmp.path().join(c).join(pod)).unwrap() {
                fs::remove_file(e.unwrap().path()).unwrap();
            }
        }
        // Another pod's under the same QoS level keeps the levels.
        fs::create_dir_all(tmp.path().join("cpu/podshim/kubepods/burstable/podother")).unwrap();
        let owned = PodCgroup {
            owned_from: "/podshim".into(),
            ..c.clone()
        };
        remove(&h, &owned, &ids).unwrap();
        for c in ["cpu", "memory", "pids", "freezer"] {
            assert!(!tmp.path().join(c).join(pod).exists(), "{c}");
        }
        assert!(tmp.path().join("cpu/podshim/kubepods/burstable").is_dir());
        // The levels podshim made for its pods go where no pod is left.
        assert!(!tmp.path().join("memory/podshim").exists());
        fs::remove_dir(tmp.path().join("cpu/podshim/kubepods/burstable/podother")).unwrap();
        let other = PodCgroup {
            path: "/podshim/kubepods/burstable/podother".into(),
            ..owned.clone()
        };
        remove(&h, &other, &[]).unwrap();
        assert!(!tmp.path().join("cpu/podshim").exists());
        // A parent that is not podshim's own stays: only `kubepods` goes.
        fs::create_dir_all(tmp.path().join("cpu/theirs/kubepods/besteffort/podx")).unwrap();
        let theirs = PodCgroup {
            path: "/theirs/kubepods/besteffort/podx".into(),
            owned_from: "/theirs/kubepods".into(),
            ..c.clone()
        };
        remove(&h, &theirs, &[]).unwrap();
        assert!(!tmp.path().join("cpu/theirs/kubepods").exists());
        assert!(tmp.path().join("cpu/theirs").is_dir());
    }

    #[test]
    fn a_cgroup_of_another_pod_under_the_same_uid_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let h = v1_tree(tmp.path());
        let c = cg("/podshim/kubepods/poduid");
        fs::create_dir_all(tmp.path().join("cpu/podshim/kubepods/poduid/other_pod")).unwrap();
        let e = create(&h, &c, &["ns_p".to_string()]).unwrap_err();
        assert!(
            e.to_string().contains("holds other_pod") && e.to_string().contains("metadata.uid"),
            "{e}"
        );
    }

    #[test]
    fn a_pod_cgroup_with_processes_before_the_start_is_another_pods() {
        let tmp = tempfile::tempdir().unwrap();
        let h = v1_tree(tmp.path());
        let c = cg("/podshim/kubepods/poduid");
        let leaf = tmp.path().join("memory/podshim/kubepods/poduid/ns_p");
        fs::create_dir_all(&leaf).unwrap();
        fs::write(leaf.join("cgroup.procs"), "4242\n").unwrap();
        let e = create(&h, &c, &["ns_p".to_string()]).unwrap_err();
        assert!(matches!(e, CgroupError::InUse { .. }), "{e}");
        // Untouched: no limit was written.
        assert!(
            !tmp.path()
                .join("memory/podshim/kubepods/poduid/memory.limit_in_bytes")
                .exists()
        );
        // A resize of the running pod sets them.
        set_limits(&h, &c, &["ns_p".to_string()]).unwrap();
    }

    #[test]
    fn a_plan_path_that_could_climb_is_refused_before_anything_is_touched() {
        let tmp = tempfile::tempdir().unwrap();
        let h = v1_tree(tmp.path());
        for path in ["/../../etc", "relative", "/", "/a/./b", "/a b"] {
            let e = create(&h, &cg(path), &[]).unwrap_err();
            assert!(matches!(e, CgroupError::BadPath { .. }), "{path}: {e}");
            assert!(remove(&h, &cg(path), &[]).is_err(), "{path}");
        }
        let e = remove(&h, &cg("/p/kubepods/podu"), &["../x".to_string()]).unwrap_err();
        assert!(matches!(e, CgroupError::BadPath { .. }), "{e}");
    }

    #[test]
    fn a_name_only_v1_hierarchy_on_a_v2_host_leaves_it_unified() {
        let h = Hierarchies::parse(concat!(
            "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "40 30 0:40 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n",
            // A bind of a subtree is no hierarchy.
            "41 30 0:41 /sub /mnt/cpu rw - cgroup cgroup rw,cpu\n",
        ));
        assert!(h.is_unified());
        assert_eq!(h.v1.len(), 1);
    }

    #[test]
    fn a_limit_without_its_controller_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let mut h = v1_tree(tmp.path());
        h.v1.retain(|(_, c)| c[0] != "pids");
        let e = create(&h, &cg("/p/kubepods/poduid"), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pod cgroup /p/kubepods/poduid: the pids controller is not mounted, so the pod's pids cannot be limited"
        );
    }

    #[test]
    fn a_v2_pod_cgroup_enables_its_controllers_down_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        // A fake v2 tree: each level offers the controllers its parent enabled.
        let levels = [
            "",
            "podshim",
            "podshim/kubepods",
            "podshim/kubepods/besteffort",
            "podshim/kubepods/besteffort/poduid",
        ];
        for l in levels {
            fs::create_dir_all(root.join(l)).unwrap();
            fs::write(
                root.join(l).join("cgroup.controllers"),
                "cpuset cpu io memory pids\n",
            )
            .unwrap();
        }
        let h = Hierarchies {
            v1: vec![],
            unified: Some(root.to_path_buf()),
        };
        let mut c = cg("/podshim/kubepods/besteffort/poduid");
        c.cpu_shares = 2;
        c.cpu_quota = None;
        create(&h, &c, &[]).unwrap();
        let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
        for l in &levels[..4] {
            let control = root.join(l).join("cgroup.subtree_control");
            assert_eq!(
                fs::read_to_string(control).unwrap(),
                "+cpu +memory +pids",
                "{l}"
            );
        }
        let pod = levels[4];
        assert_eq!(read(&format!("{pod}/cpu.weight")), "1");
        assert_eq!(read(&format!("{pod}/cpu.max")), "max 100000");
        assert_eq!(read(&format!("{pod}/memory.max")), "67108864");
        assert_eq!(read(&format!("{pod}/pids.max")), "100");
        assert_eq!(read("podshim/kubepods/besteffort/cpu.weight"), "1");
    }

    #[test]
    fn shares_map_onto_v2_weights_as_runc_maps_them() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
