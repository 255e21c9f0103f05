//! Facts about this host that a pod's configuration depends on, read once per run.

use std::collections::{BTreeSet, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use oci_spec::runtime::{Capability, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceType};

use crate::translate::capabilities::from_bitmap;
use crate::translate::{HostInfo, HostSecurity};

fn read_or_empty(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The interface of the IPv4 default route (`/proc/net/route`, destination 0).
fn default_route_interface() -> Option<String> {
    read_or_empty("/proc/net/route")
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&"00000000"))
        .and_then(|f| f.first().map(|s| s.to_string()))
}

/// The node's IP as the kubelet reports it: the address of the default route's
/// interface, else loopback.
pub fn host_ip() -> String {
    let iface = default_route_interface();
    nix::ifaddrs::getifaddrs()
        .ok()
        .and_then(|addrs| {
            addrs
                .filter(|a| iface.as_deref().is_none_or(|i| a.interface_name == i))
                .filter_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
                .find(|ip| !ip.is_loopback())
        })
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "127.0.0.1".into())
}

fn memory_bytes() -> u64 {
    read_or_empty("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

pub fn read() -> HostInfo {
    let status = read_or_empty("/proc/self/status");
    let node_name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
        .to_lowercase();
    HostInfo {
        node_name,
        host_ip: host_ip(),
        resolv_conf: read_or_empty("/etc/resolv.conf"),
        hosts: read_or_empty("/etc/hosts"),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        memory_bytes: memory_bytes(),
        oom_score_adj_floor: oom_score_adj_floor(&status),
        security: security(&status),
        exec_limits: crate::translate::ExecLimits {
            max_string: crate::image::exec_limits::max_arg_strlen(),
            total: crate::image::exec_limits::arg_limit(),
        },
    }
}

fn security(status: &str) -> HostSecurity {
    HostSecurity {
        capabilities: current_capabilities(status),
        devices: host_devices(Path::new("/dev")),
        arch: std::env::consts::ARCH.to_string(),
        apparmor: apparmor(),
        selinux: selinux_enabled(),
    }
}

/// Whether SELinux is on: selinuxfs is mounted (go-selinux's GetEnabled looks
/// for it, and containerd labels nothing without it).
fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// The capabilities this process holds: `CapEff` (containerd's cap.Current),
/// within `CapBnd` (nothing outside the bounding set can be given on).
fn current_capabilities(status: &str) -> HashSet<Capability> {
    let bounding = capability_set(status, "CapBnd:");
    capability_set(status, "CapEff:")
        .into_iter()
        .filter(|c| bounding.contains(c))
        .collect()
}

/// One capability line of `/proc/self/status` (`CapEff:`, `CapBnd:`).
fn capability_set(status: &str, name: &str) -> HashSet<Capability> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(from_bitmap)
        .unwrap_or_default()
}

/// The device nodes under `dir`, as containerd's HostDevices finds them: every
/// character and block device, recursively, except under pts, shm, fd, mqueue and
/// the LXC/LXD/udev private directories, and except /dev/console (the runtime
/// makes its own). Symlinks are not followed. Sorted by path, so that a plan is
/// the same from run to run.
fn host_devices(dir: &Path) -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    collect_devices(dir, &mut out);
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

fn collect_devices(dir: &Path, out: &mut Vec<LinuxDevice>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let path = entry.path();
        // symlink_metadata: never follow a link out of /dev.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            let skip = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
            if !skip.iter().any(|s| name == *s) {
                collect_devices(&path, out);
            }
            continue;
        }
        if name == "console" {
            continue;
        }
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            continue;
        };
        let rdev = meta.rdev();
        if let Ok(dev) = LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(nix::sys::stat::major(rdev) as i64)
            .minor(nix::sys::stat::minor(rdev) as i64)
            .file_mode(meta.mode() & 0o7777)
            .uid(meta.uid())
            .gid(meta.gid())
            .build()
        {
            out.push(dev);
        }
    }
}

/// `None` when the kernel has no AppArmor enabled (the kubelet's
/// IsAppArmorEnabled reads the same file), else the loaded profiles' names
/// (`/sys/kernel/security/apparmor/profiles`: `name (mode)` lines).
fn apparmor() -> Option<BTreeSet<String>> {
    if read_or_empty("/sys/module/apparmor/parameters/enabled").trim() != "Y" {
        return None;
    }
    Some(
        read_or_empty("/sys/kernel/security/apparmor/profiles")
            .lines()
            .filter_map(|l| l.rsplit_once(" (").map(|(name, _)| name.to_string()))
            .collect(),
    )
}

/// Lowering an OOM score takes CAP_SYS_RESOURCE in the initial user namespace
/// (proc(5), oom_score_adj: the kernel asks `capable()`); without it in the
/// effective set, or inside a user namespace (an unprivileged LXC/LXD container,
/// rootless), where CapEff shows capabilities the kernel does not honour for
/// this, a score below podshim's own would fail the start.
fn oom_score_adj_floor(status: &str) -> Option<i32> {
    if capability_set(status, "CapEff:").contains(&Capability::SysResource)
        && is_initial_user_namespace(&read_or_empty("/proc/self/uid_map"))
    {
        return None;
    }
    read_or_empty("/proc/self/oom_score_adj")
        .trim()
        .parse()
        .ok()
        .or(Some(0))
}

/// The initial user namespace maps every uid to itself: `0 0 4294967295`.
fn is_initial_user_namespace(uid_map: &str) -> bool {
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_identity_uid_map_is_the_initial_user_namespace() {
        assert!(is_initial_user_namespace(
            "         0          0 4294967295\n"
        ));
        assert!(!is_initial_user_namespace(
            "         0     100000      65536\n"
        ));
        assert!(!is_initial_user_namespace(""));
    }

    #[test]
    fn current_capabilities_are_the_effective_ones_within_the_bounding_set() {
        let status = "Name:\tx\nCapEff:\t000001ffffffffff\nCapBnd:\t000001fffeffffff\n";
        let caps = current_capabilities(status);
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&Capability::SysResource));
        assert!(current_capabilities("CapBnd:\t000001ffffffffff\n").is_empty());
    }

    #[test]
    fn host_devices_are_device_nodes_only_sorted_and_links_are_not_followed() {
        let devs = host_devices(Path::new("/dev"));
        let null = devs
            .iter()
            .find(|d| d.path() == Path::new("/dev/null"))
            .expect("/dev/null");
        assert_eq!((null.major(), null.minor()), (1, 3));
        assert!(devs.iter().all(|d| !d.path().starts_with("/dev/pts")));
        assert!(devs.iter().all(|d| d.path() != Path::new("/dev/console")));
        assert!(devs.windows(2).all(|w| w[0].path() <= w[1].path()));
    }
}
