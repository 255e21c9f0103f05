//! Whether a container run was OOM-killed: the kernel counts `oom_kill` events in
//! the memory controller of the container's cgroup (cgroup v1 `memory.oom_control`
//! since Linux 4.13, v2 `memory.events`), which lives until the runtime deletes the
//! container. The kubelet reports such a run as reason `OOMKilled` (the runtime's
//! TaskOOM event, which containerd's shim takes from the same counters).

use std::path::{Path, PathBuf};

/// The cgroup file that holds a run's `oom_kill` counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomCounter {
    file: PathBuf,
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// cgroup files are a few hundred bytes; anything larger is not one.
const MAX_READ: u64 = 64 << 10;

impl OomCounter {
    /// The counter of the cgroup process `pid` is in (read while it runs).
    pub fn of_process(pid: i32) -> Option<OomCounter> {
        let text = read(Path::new(&format!("/proc/{pid}/cgroup")))?;
        Self::from_cgroup_file(&text, Path::new(CGROUP_ROOT))
    }

    /// The counter of the cgroup config.json names (`cgroupsPath`, the same path
    /// in every hierarchy): the v1 memory hierarchy where it is mounted, else the
    /// unified one.
    pub fn of_cgroup_path(path: &str) -> Option<OomCounter> {
        let root = Path::new(CGROUP_ROOT);
        Self::at(path, root, root.join("memory").is_dir())
    }

    fn at(path: &str, root: &Path, v1_memory: bool) -> Option<OomCounter> {
        let line = if v1_memory {
            format!("0:memory:{path}")
        } else {
            format!("0::{path}")
        };
        Self::from_lines(&line, root, false)
    }

    /// For a run whose process was gone before its cgroup could be read: runc's
    /// rule for a spec without `cgroupsPath`, from the runtime's own cgroup
    /// (this supervisor's, its parent's): on v1 the container id joined to it,
    /// on v2 to its parent (libcontainer/cgroups/fs2 `defaultDirPath`: a cgroup
    /// with processes cannot enable controllers for a child). Other runtimes
    /// place it elsewhere; then the file is missing and no kill is reported.
    pub fn of_own_child(id: &str) -> Option<OomCounter> {
        let text = read(Path::new("/proc/self/cgroup"))?;
        Self::child_of(&text, Path::new(CGROUP_ROOT), id)
    }

    fn child_of(own_cgroup: &str, root: &Path, id: &str) -> Option<OomCounter> {
        let mut own = Self::from_lines(own_cgroup, root, true)?;
        let name = own.file.file_name()?.to_owned();
        own.file.pop();
        if name == "memory.events" && own.file != root {
            own.file.pop();
        }
        own.file.push(id);
        own.file.push(name);
        Some(own)
    }

    /// From `/proc/<pid>/cgroup` text and the cgroup mount root: the v1 memory
    /// hierarchy where there is one (hybrid hosts keep memory there), else the
    /// unified one.
    pub fn from_cgroup_file(text: &str, root: &Path) -> Option<OomCounter> {
        Self::from_lines(text, root, false)
    }

    fn from_lines(text: &str, root: &Path, root_ok: bool) -> Option<OomCounter> {
        let mut v2 = None;
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let rel = path.trim_start_matches('/');
            // A path from the kernel never climbs; refuse one that would.
            if rel.split('/').any(|c| c == "..") {
                return None;
            }
            // A zombie shows `/` for every controller; the root cgroup's counter
            // would be the host's OOM kills, not the container's.
            if rel.is_empty() && !root_ok {
                return None;
            }
            if controllers.split(',').any(|c| c == "memory") {
                return Some(OomCounter {
                    file: root.join("memory").join(rel).join("memory.oom_control"),
                });
            }
            if controllers.is_empty() {
                v2 = Some(OomCounter {
                    file: root.join(rel).join("memory.events"),
                });
            }
        }
        v2
    }

    /// Whether the kernel OOM-killed a process of this cgroup.
    pub fn killed(&self) -> bool {
        read(&self.file)
            .and_then(|t| oom_kills(&t))
            .is_some_and(|n| n > 0)
    }
}

fn read(path: &Path) -> Option<String> {
    let bytes = crate::fsutil::read_regular(path, MAX_READ).ok()?;
    String::from_utf8(bytes).ok()
}

/// The `oom_kill N` line of `memory.oom_control` or `memory.events`.
fn oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_controller_is_found_on_hybrid_and_unified_hosts() {
        let root = Path::new("/sys/fs/cgroup");
        let hybrid = "9:name=systemd:/x\n4:memory:/process_api/ab/ns_pod_app\n1:cpu,cpuacct:/ns_pod_app\n0::/ns_pod_app\n";
        assert_eq!(
            OomCounter::from_cgroup_file(hybrid, root).unwrap().file,
            Path::new("/sys/fs/cgroup/memory/process_api/ab/ns_pod_app/memory.oom_control")
        );
        let unified = "0::/youki/ns_pod_app\n";
        assert_eq!(
            OomCounter::from_cgroup_file(unified, root).unwrap().file,
            Path::new("/sys/fs/cgroup/youki/ns_pod_app/memory.events")
        );
        assert_eq!(OomCounter::from_cgroup_file("0::/../../etc\n", root), None);
        // A zombie's cgroups all read `/`: unknown, never the host's counter.
        assert_eq!(
            OomCounter::from_cgroup_file("4:memory:/\n0::/\n", root),
            None
        );
        assert_eq!(OomCounter::from_cgroup_file("garbage", root), None);
    }

    #[test]
    fn a_run_with_a_cgroups_path_is_looked_for_there() {
        let root = Path::new("/sys/fs/cgroup");
        let path = "/podshim/kubepods/burstable/podu/ns_p_c";
        assert_eq!(
            OomCounter::at(path, root, true).unwrap().file,
            Path::new(
                "/sys/fs/cgroup/memory/podshim/kubepods/burstable/podu/ns_p_c/memory.oom_control"
            )
        );
        assert_eq!(
            OomCounter::at(path, root, false).unwrap().file,
            Path::new("/sys/fs/cgroup/podshim/kubepods/burstable/podu/ns_p_c/memory.events")
        );
    }

    #[test]
    fn a_reaped_run_is_looked_for_where_runc_puts_a_container_without_cgroups_path() {
        let root = Path::new("/sys/fs/cgroup");
        let v1 = "4:memory:/process_api/ab\n0::/x\n";
        assert_eq!(
            OomCounter::child_of(v1, root, "ns_p_c").unwrap().file,
            Path::new("/sys/fs/cgroup/memory/process_api/ab/ns_p_c/memory.oom_control")
        );
        let v2 = "0::/user.slice/session-1.scope\n";
        assert_eq!(
            OomCounter::child_of(v2, root, "ns_p_c").unwrap().file,
            Path::new("/sys/fs/cgroup/user.slice/ns_p_c/memory.events")
        );
        assert_eq!(
            OomCounter::child_of("0::/\n", root, "ns_p_c").unwrap().file,
            Path::new("/sys/fs/cgroup/ns_p_c/memory.events")
        );
    }

    #[test]
    fn the_oom_kill_counter_is_read_from_either_file() {
        assert_eq!(
            oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            Some(2)
        );
        assert_eq!(
            oom_kills("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n"),
            Some(1)
        );
        assert_eq!(oom_kills("oom_kill_disable 0\nunder_oom 0\n"), None);
    }

    #[test]
    fn a_counter_above_zero_is_a_kill() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("memory.events");
        let c = OomCounter { file: file.clone() };
        assert!(!c.killed(), "no file: nothing known");
        std::fs::write(&file, "oom 1\noom_kill 0\n").unwrap();
        assert!(!c.killed());
        std::fs::write(&file, "oom 1\noom_kill 1\n").unwrap();
        assert!(c.killed());
    }
}
