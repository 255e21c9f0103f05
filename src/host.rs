//! Facts about this host that a pod's configuration depends on, read once per run.

use crate::translate::HostInfo;

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
fn host_ip() -> String {
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
        oom_score_adj_floor: oom_score_adj_floor(),
    }
}

/// Lowering an OOM score takes CAP_SYS_RESOURCE (proc(5), oom_score_adj); without
/// it in the effective set, a score below podshim's own would fail the start.
fn oom_score_adj_floor() -> Option<i32> {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = read_or_empty("/proc/self/status");
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if effective & (1 << CAP_SYS_RESOURCE) != 0 {
        return None;
    }
    read_or_empty("/proc/self/oom_score_adj")
        .trim()
        .parse()
        .ok()
        .or(Some(0))
}
