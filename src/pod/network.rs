//! A pod's CNI network: which one `up` attaches it to, the attachment (a pinned
//! namespace, ADD) before its bundles are written, and the detachment (DEL, then
//! the namespace unpinned) that every teardown path runs as
//! [`crate::teardown::Step::Detach`]. See ARCHITECTURE.md "Networking (CNI)".

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::PodError;
use crate::cni::{self, Attachment, Bandwidth, Cni, NetworkList, PodRef, PortMapping, Protocol};
use crate::model::{self, Pod};
use crate::run_plan::PodNetwork;

/// The pod's interface, as every CRI runtime names it.
pub const IFNAME: &str = "eth0";

/// The file under the pod's directory that pins its network namespace.
pub const NETNS_FILE: &str = "netns";

/// The pod's CNI_CONTAINERID: the infra's id and 12 hex digits of the SHA-256 of
/// its pod directory. The result cache, host-local's leases and portmap's chains
/// are keyed by this id alone, in directories every state root shares
/// (`/var/lib/cni`): two roots running a pod of the same name must not free each
/// other's attachment (rule: never delete what podshim did not create here).
pub fn cni_container_id(infra_id: &str, pod_dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::ffi::OsStrExt;
    let hash = hex::encode(&Sha256::digest(pod_dir.as_os_str().as_bytes())[..6]);
    format!("{infra_id}-{hash}")
}

/// How `up` networks its pods (`--network`, `--cni-conf-dir`, `--cni-bin-dir`,
/// `--pod-subnet`, `--pod-bridge`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkOptions {
    /// `--network none`: loopback only, as before CNI.
    pub none: bool,
    /// `--network NAME`: the conf dir's network of that name.
    pub name: Option<String>,
    pub conf_dir: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
    pub cache_dir: PathBuf,
    /// The built-in default network's subnet and bridge.
    pub subnet: String,
    pub bridge: String,
    /// How long each plugin may take on ADD (`up` gives it what is left of its
    /// `--timeout`).
    pub timeout: std::time::Duration,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            none: false,
            name: None,
            conf_dir: PathBuf::from(cni::DEFAULT_CONF_DIR),
            bin_dirs: cni::DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect(),
            cache_dir: PathBuf::from(cni::cache::DEFAULT_CACHE_DIR),
            subnet: cni::config::DEFAULT_SUBNET.to_string(),
            bridge: cni::config::DEFAULT_BRIDGE.to_string(),
            timeout: cni::DEFAULT_TIMEOUT,
        }
    }
}

impl NetworkOptions {
    /// The network list a pod is attached to: none for `--network none`; the conf
    /// dir's first (or named) list; the built-in default when the dir has none
    /// (and no other name was asked for).
    pub fn resolve(&self, pod: &Pod) -> Result<Option<NetworkList>, PodError> {
        if self.none {
            return Ok(None);
        }
        let bad = |e: cni::ConfigError| PodError::Network(e.to_string());
        if let Some(list) = cni::load_dir(&self.conf_dir, self.name.as_deref()).map_err(bad)? {
            return Ok(Some(list));
        }
        match self.name.as_deref() {
            Some(name) if name != cni::config::DEFAULT_NETWORK => Err(PodError::Network(format!(
                "--network {name}: no network of that name in {}",
                self.conf_dir.display()
            ))),
            _ => {
                let plugins = cni::config::DefaultPlugins {
                    port_map: !port_mappings(pod).is_empty(),
                    bandwidth: pod
                        .annotations
                        .keys()
                        .any(|k| k == cni::INGRESS_ANNOTATION || k == cni::EGRESS_ANNOTATION),
                    firewall: !forward_policy_accepts(),
                };
                NetworkList::default_network(&self.subnet, &self.bridge, plugins)
                    .map(Some)
                    .map_err(bad)
            }
        }
    }

    fn cni(&self) -> Cni {
        Cni {
            bin_dirs: self.bin_dirs.clone(),
            cache_dir: self.cache_dir.clone(),
            timeout: self.timeout,
            ..Cni::default()
        }
    }
}

/// Whether the host's iptables FORWARD chain accepts by policy (`-P FORWARD
/// ACCEPT`, the kernel's default). When it cannot be read, it is taken not to.
fn forward_policy_accepts() -> bool {
    std::process::Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim() == "-P FORWARD ACCEPT")
        })
}

/// The `portMappings` of a pod: every container port with a hostPort.
pub fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    pod.spec
        .containers
        .iter()
        .flat_map(|c| &c.ports)
        .filter_map(|p| {
            Some(PortMapping {
                host_port: p.host_port?,
                container_port: p.container_port,
                protocol: match p.protocol {
                    model::Protocol::TCP => Protocol::Tcp,
                    model::Protocol::UDP => Protocol::Udp,
                    model::Protocol::SCTP => Protocol::Sctp,
                },
                host_ip: p.host_ip.map(|ip| ip.to_string()),
            })
        })
        .collect()
}

/// Whether two mappings claim the same host port: same port and protocol, and
/// host IPs that overlap (none, or `0.0.0.0`/`::`, is every address).
fn clash(a: &PortMapping, b: &PortMapping) -> bool {
    let any = |ip: &Option<String>| {
        ip.as_deref()
            .is_none_or(|s| s.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()))
    };
    a.host_port == b.host_port
        && a.protocol == b.protocol
        && (any(&a.host_ip) || any(&b.host_ip) || a.host_ip == b.host_ip)
}

/// Refuses hostPorts another pod of this root holds, naming the port, the field
/// and the holder (the kubelet leaves this to the scheduler's NodePorts filter;
/// on one node podshim is the scheduler). `others` are the attachments of the
/// pods that run.
pub fn check_host_ports(
    pod: &Pod,
    wanted: &[PortMapping],
    others: &[(String, Vec<PortMapping>)],
) -> Result<(), PodError> {
    for (i, m) in wanted.iter().enumerate() {
        for (holder, theirs) in others {
            if theirs.iter().any(|t| clash(m, t)) {
                return Err(PodError::HostPortInUse {
                    pod: pod.key.clone(),
                    field: host_port_field(pod, i),
                    port: format!("{}/{}", m.host_port, m.protocol.as_cni().to_uppercase()),
                    holder: holder.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The field path of the `index`th hostPort of [`port_mappings`].
fn host_port_field(pod: &Pod, index: usize) -> String {
    host_port_fields(pod)
        .into_iter()
        .nth(index)
        .unwrap_or_else(|| "spec.containers[*].ports[*].hostPort".into())
}

/// The field path of every hostPort, in [`port_mappings`]' order.
pub fn host_port_fields(pod: &Pod) -> Vec<String> {
    let fields = crate::translate::field_paths(pod);
    pod.spec
        .containers
        .iter()
        .zip(&fields)
        .flat_map(|(c, field)| {
            c.ports
                .iter()
                .enumerate()
                .filter(|(_, p)| p.host_port.is_some())
                .map(move |(pi, _)| format!("{field}.ports[{pi}].hostPort"))
        })
        .collect()
}

/// Attaches the pod whose directory is `pod_dir` to `network`: pins a new
/// network namespace at `<pod_dir>/netns`, runs ADD, and returns what the plan
/// records. On failure nothing is left (ADD undoes itself; the namespace goes).
pub fn attach(
    opts: &NetworkOptions,
    network: &NetworkList,
    pod: &Pod,
    pod_dir: &Path,
) -> Result<PodNetwork, PodError> {
    let bandwidth = Bandwidth::from_annotations(
        pod.annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| PodError::NetworkInput(format!("metadata.annotations: {e}")))?;
    let netns = pod_dir.join(NETNS_FILE);
    // The infra's config.json names the pin by this path (a JSON string).
    if netns.to_str().is_none() {
        return Err(PodError::Network(format!(
            "{}: a pod network needs a state root whose path is UTF-8 (--root)",
            netns.display()
        )));
    }
    // `hostUsers: false`: the namespace is the pod's user namespace's (as
    // containerd makes a userns sandbox's), so that the pod's root may
    // administer it and mount its sysfs; that user namespace is made first.
    let userns = (!pod.spec.host_users).then(|| crate::paths::PodPaths::new(pod_dir).userns());
    let range = match &userns {
        Some(_) => Some(super::write::lease_ids(pod_dir)?),
        None => None,
    };
    let pinned = match (&userns, range) {
        (Some(pin), Some(range)) => crate::fsutil::mkdir_mode(pod_dir, 0o700)
            .and_then(|()| crate::userns::pin_new(&range, pin))
            .and_then(|_| crate::userns::pin_netns_in(pin, &netns)),
        _ => cni::netns::pin_new(&netns),
    };
    let unpin_userns = || {
        if let Some(pin) = &userns {
            let _ = cni::netns::unpin(pin);
            crate::userns::release(pod_dir);
        }
    };
    if let Err(e) = pinned {
        unpin_userns();
        return Err(super::io_err(&netns, "make a network namespace at")(e));
    }
    let mut net = PodNetwork {
        name: network.name.clone(),
        config: String::from_utf8_lossy(&network.bytes).into_owned(),
        source: network.source.clone(),
        bin_dirs: opts.bin_dirs.clone(),
        cache_dir: opts.cache_dir.clone(),
        netns: netns.clone(),
        container_id: cni_container_id(&pod.key.id(), pod_dir),
        ifname: IFNAME.to_string(),
        port_mappings: port_mappings(pod),
        bandwidth,
        ips: Vec::new(),
    };
    let added = opts.cni().add(network, &attachment(&net, pod_ref(pod)));
    let ips = match added {
        Ok(result) => result.pod_ips(IFNAME),
        Err(e) => {
            let _ = cni::netns::unpin(&netns);
            unpin_userns();
            return Err(PodError::Network(e.to_string()));
        }
    };
    net.ips = ips.iter().map(IpAddr::to_string).collect();
    if net.ips.is_empty() {
        let message = format!(
            "CNI network {}: ADD gave the pod no address on {IFNAME}",
            network.name
        );
        let _ = detach(&net);
        return Err(PodError::Network(message));
    }
    Ok(net)
}

fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        namespace: pod.namespace().to_string(),
        name: pod.name().to_string(),
        uid: pod.uid.to_string(),
        infra_container_id: pod.key.id(),
    }
}

fn attachment(net: &PodNetwork, pod: PodRef) -> Attachment {
    Attachment {
        container_id: net.container_id.clone(),
        // DEL without the pinned namespace (a reboot unpinned it) passes none
        // ([`Cni::del`]): the plugins then free what they hold by container id.
        netns: net.netns.clone(),
        ifname: net.ifname.clone(),
        pod,
        port_mappings: net.port_mappings.clone(),
        bandwidth: net.bandwidth,
    }
}

/// DEL of the attachment, then its namespace unpinned. When DEL fails the
/// namespace stays pinned and the cache entry kept, so that a second `down`
/// can finish it.
pub fn detach(net: &PodNetwork) -> Result<(), PodError> {
    let network = NetworkList::parse(net.config.as_bytes(), &net.source, false)
        .map_err(|e| PodError::Network(e.to_string()))?;
    let cni = Cni {
        bin_dirs: net.bin_dirs.clone(),
        cache_dir: net.cache_dir.clone(),
        ..Cni::default()
    };
    // CNI_ARGS come from the cache entry ADD wrote; these are for a DEL without it.
    let pod = PodRef {
        namespace: String::new(),
        name: String::new(),
        uid: String::new(),
        infra_container_id: String::new(),
    };
    cni.del(&network, &attachment(net, pod))
        .map_err(|e| PodError::Network(e.to_string()))?;
    cni::netns::unpin(&net.netns).map_err(super::io_err(&net.netns, "unpin"))
}

/// What an `up` killed during ADD left: the pod's pin, and no cache entry (ADD
/// writes it last). Its plugins may hold a lease and rules under the pod's CNI id,
/// which only a DEL with the network frees: run it with the network this `up`
/// resolves, in the pinned namespace (where bridge finds its chain), before the
/// leftovers are cleared. A failure is a warning: ADD then says what is wrong.
pub fn free_stale(opts: &NetworkOptions, pod: &Pod, pod_dir: &Path) {
    let pin = pod_dir.join(NETNS_FILE);
    if pod.spec.host_network
        || !cni::netns::is_pinned(&pin)
        || !lost_attachments(&pod.key.id(), pod_dir).is_empty()
    {
        return;
    }
    let network = match opts.resolve(pod) {
        Ok(Some(network)) => network,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("{e}");
            return;
        }
    };
    let net = PodNetwork {
        name: network.name.clone(),
        config: String::new(),
        source: network.source.clone(),
        bin_dirs: opts.bin_dirs.clone(),
        cache_dir: opts.cache_dir.clone(),
        netns: pin,
        container_id: cni_container_id(&pod.key.id(), pod_dir),
        ifname: IFNAME.to_string(),
        port_mappings: port_mappings(pod),
        bandwidth: None,
        ips: Vec::new(),
    };
    if let Err(e) = opts.cni().del(&network, &attachment(&net, pod_ref(pod))) {
        tracing::warn!("freeing what a crashed up left: {e}");
    }
}

/// The result cache's entries of the pod whose directory is `pod_dir` and
/// infra `infra_id`, in the default cache directory. An entry that cannot be read
/// is skipped with a warning naming it (DEL then runs without it, as libcni's does).
pub fn lost_attachments(infra_id: &str, pod_dir: &Path) -> Vec<(PathBuf, cni::cache::CacheEntry)> {
    let cache = PathBuf::from(cni::cache::DEFAULT_CACHE_DIR);
    cni::cache::find(&cache, &cni_container_id(infra_id, pod_dir), IFNAME)
}

/// The attachments of a pod whose state and plan are gone (a wiped `/run`, a
/// crashed `up`, a reboot): found in the result cache by the pod's CNI id (its
/// infra's and its directory's), each detached with the configuration ADD cached,
/// plugins looked for in `bin_dirs`; then `<pod_dir>/netns` unpinned.
pub fn detach_lost(bin_dirs: &[PathBuf], infra_id: &str, pod_dir: &Path) -> Result<(), PodError> {
    detach_found(lost_attachments(infra_id, pod_dir), bin_dirs, pod_dir)
}

/// [`detach_lost`] of the entries [`lost_attachments`] already found.
pub fn detach_found(
    found: Vec<(PathBuf, cni::cache::CacheEntry)>,
    bin_dirs: &[PathBuf],
    pod_dir: &Path,
) -> Result<(), PodError> {
    let netns = pod_dir.join(NETNS_FILE);
    let cache_dir = PathBuf::from(cni::cache::DEFAULT_CACHE_DIR);
    for (path, entry) in found {
        let net = PodNetwork {
            name: entry.network_name.clone(),
            config: String::from_utf8_lossy(&entry.config).into_owned(),
            source: path,
            bin_dirs: bin_dirs.to_vec(),
            cache_dir: cache_dir.clone(),
            netns: netns.clone(),
            container_id: entry.container_id.clone(),
            ifname: IFNAME.to_string(),
            port_mappings: Vec::new(),
            bandwidth: None,
            ips: Vec::new(),
        };
        detach(&net)?;
    }
    cni::netns::unpin(&netns).map_err(super::io_err(&netns, "unpin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(port: u16, proto: Protocol, ip: Option<&str>) -> PortMapping {
        PortMapping {
            host_port: port,
            container_port: 80,
            protocol: proto,
            host_ip: ip.map(str::to_string),
        }
    }

    #[test]
    fn host_ports_clash_on_port_protocol_and_overlapping_addresses() {
        use Protocol::{Tcp, Udp};
        assert!(clash(&m(8080, Tcp, None), &m(8080, Tcp, None)));
        assert!(clash(&m(8080, Tcp, Some("127.0.0.1")), &m(8080, Tcp, None)));
        assert!(clash(
            &m(8080, Tcp, Some("0.0.0.0")),
            &m(8080, Tcp, Some("10.0.0.1"))
        ));
        assert!(clash(
            &m(8080, Tcp, Some("127.0.0.1")),
            &m(8080, Tcp, Some("127.0.0.1"))
        ));
        assert!(!clash(
            &m(8080, Tcp, Some("127.0.0.1")),
            &m(8080, Tcp, Some("127.0.0.2"))
        ));
        assert!(!clash(&m(8080, Tcp, None), &m(8080, Udp, None)));
        assert!(!clash(&m(8080, Tcp, None), &m(8081, Tcp, None)));
    }

    #[test]
    fn a_host_port_another_pod_holds_is_refused_naming_field_port_and_holder() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: ns}\nspec:\n  containers:\n  - name: a\n    image: x\n    ports: [{containerPort: 80}]\n  - name: b\n    image: x\n    ports: [{containerPort: 81}, {containerPort: 80, hostPort: 8080}]\n";
        let pod = crate::manifest::parse(text, "pod.yaml").unwrap().pod;
        let wanted = port_mappings(&pod);
        assert_eq!(wanted, [m(8080, Protocol::Tcp, None)]);
        let others = vec![
            ("ns/other".to_string(), vec![m(9090, Protocol::Tcp, None)]),
            (
                "ns/holder".to_string(),
                vec![m(8080, Protocol::Tcp, Some("127.0.0.1"))],
            ),
        ];
        let err = check_host_ports(&pod, &wanted, &others)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "pod ns/web: spec.containers[1].ports[1].hostPort: host port 8080/TCP is in use by pod ns/holder"
        );
        assert!(check_host_ports(&pod, &wanted, &others[..1]).is_ok());
    }
}
