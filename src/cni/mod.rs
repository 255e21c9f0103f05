//! The CNI client (CNI SPEC.md 1.0.0): attaches a pod's network namespace to a
//! network list (ADD, plugin by plugin, each given the previous one's result) and
//! detaches it (DEL, in reverse, each given the cached final result).
//!
//! `up` attaches a pod through [`crate::pod::network`]; see ARCHITECTURE.md
//! "Networking (CNI)".

pub mod cache;
pub mod config;
pub mod exec;
pub mod netns;
pub mod result;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};

pub use config::{ConfigError, NetworkList, PluginConf, load_dir};
pub use exec::{ExecError, PluginExec, SystemExec};
pub use result::CniResult;

use crate::model::Quantity;

/// Where plugins are looked for by default: the upstream location first (a
/// newer release installed by hand wins), then Debian's package.
pub const DEFAULT_BIN_DIRS: [&str; 2] = ["/opt/cni/bin", "/usr/lib/cni"];
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// Per plugin: bridge and portmap wait for the iptables lock (`-w`), which many
/// pods starting at once contend for.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The pod a network attachment is for; it becomes CNI_ARGS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub infra_container_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Kubernetes writes `TCP`; portmap reads lower case (its `runtimeConfig`
    /// convention, as the kubelet's and containerd's CRI pass it).
    pub fn as_cni(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A container port with a `hostPort`: the `portMappings` capability.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
    pub host_ip: Option<String>,
}

/// The `bandwidth` capability, in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bandwidth {
    pub ingress_rate: Option<u64>,
    pub egress_rate: Option<u64>,
}

pub const INGRESS_ANNOTATION: &str = "kubernetes.io/ingress-bandwidth";
pub const EGRESS_ANNOTATION: &str = "kubernetes.io/egress-bandwidth";

impl Bandwidth {
    /// From the pod's annotations, as the kubelet reads them
    /// (`bandwidth.ExtractPodBandwidthResources`: quantities of bits per second).
    /// `None` when the pod sets neither.
    pub fn from_annotations<'a>(
        annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Option<Bandwidth>, CniError> {
        let mut bw = Bandwidth::default();
        for (key, value) in annotations {
            let slot = match key {
                INGRESS_ANNOTATION => &mut bw.ingress_rate,
                EGRESS_ANNOTATION => &mut bw.egress_rate,
                _ => continue,
            };
            let bad = |problem: String| CniError::Annotation {
                key: key.to_string(),
                problem,
            };
            let q = Quantity::parse(value).map_err(|e| bad(e.to_string()))?;
            let bits = q
                .whole()
                .filter(|b| *b > 0)
                .ok_or_else(|| bad(format!("{value:?} is not a whole, positive rate")))?;
            *slot = Some(u64::try_from(bits).map_err(|_| bad(format!("{value:?} is too large")))?);
        }
        Ok((bw != Bandwidth::default()).then_some(bw))
    }

    fn runtime_config(&self) -> Value {
        // The kubelet's CNI driver set the bursts to MaxInt32 ("no limit"): the
        // annotation gives only a rate, and the plugin needs both.
        let mut m = Map::new();
        if let Some(rate) = self.ingress_rate {
            m.insert("ingressRate".into(), rate.into());
            m.insert("ingressBurst".into(), i32::MAX.into());
        }
        if let Some(rate) = self.egress_rate {
            m.insert("egressRate".into(), rate.into());
            m.insert("egressBurst".into(), i32::MAX.into());
        }
        Value::Object(m)
    }
}

/// One attachment of a pod to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The infra container's id: the CNI_CONTAINERID, part of the cache's name
    /// and of the plugins' own records (host-local's lease, portmap's chains).
    pub container_id: String,
    /// The pod's network namespace (`/proc/<infra>/ns/net`). For DEL, a path that
    /// no longer exists is passed as empty (the spec lets DEL run without it).
    pub netns: PathBuf,
    pub ifname: String,
    pub pod: PodRef,
    pub port_mappings: Vec<PortMapping>,
    pub bandwidth: Option<Bandwidth>,
}

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Cache(#[from] cache::CacheError),
    #[error("CNI attachment: {field} {value:?}: {problem}")]
    Invalid {
        field: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("annotation {key}: {problem}")]
    Annotation { key: String, problem: String },
    #[error("CNI network {network}: plugin {plugin:?} not found in {dirs:?}")]
    NotFound {
        network: String,
        plugin: String,
        dirs: Vec<PathBuf>,
    },
    #[error("CNI network {network}: {command} of plugin {plugin}: {source}")]
    Exec {
        network: String,
        plugin: String,
        command: &'static str,
        source: Box<ExecError>,
    },
    /// The plugin's error (SPEC.md "Error"), its code, message and details.
    #[error("{0}")]
    Plugin(Box<PluginError>),
    #[error(
        "CNI network {network}: {command} of plugin {plugin}: its result is not a CNI result: {problem}"
    )]
    BadResult {
        network: String,
        plugin: String,
        command: &'static str,
        problem: String,
    },
    /// ADD failed and what it had added was removed again (`rollback: None`), or
    /// removing it failed too.
    #[error("{add}{}", rollback.as_ref().map(|r| format!("; and undoing it failed: {r}")).unwrap_or_default())]
    Add {
        add: Box<CniError>,
        rollback: Option<Box<CniError>>,
    },
    /// Every plugin's DEL ran; these failed (the cache is kept for a retry).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Del(Vec<CniError>),
}

/// A plugin that exited non-zero, with what it said (SPEC.md "Error": `code`,
/// `msg`, `details` on stdout) and its stderr.
#[derive(Debug, thiserror::Error)]
#[error("CNI network {network}: {command} of plugin {plugin} failed: {msg} (code {code}{}){}",
    if details.is_empty() { String::new() } else { format!("; {details}") },
    if stderr.is_empty() { String::new() } else { format!("; stderr: {stderr}") })]
pub struct PluginError {
    pub network: String,
    pub plugin: String,
    pub command: &'static str,
    pub code: u64,
    pub msg: String,
    pub details: String,
    pub stderr: String,
}

/// The CNI client: where plugins and the cache are, how long a plugin may take,
/// and how plugins are run.
#[derive(Debug, Clone)]
pub struct Cni<E: PluginExec = SystemExec> {
    pub bin_dirs: Vec<PathBuf>,
    pub cache_dir: PathBuf,
    pub timeout: Duration,
    pub exec: E,
}

impl Default for Cni<SystemExec> {
    fn default() -> Self {
        Cni {
            bin_dirs: DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect(),
            cache_dir: PathBuf::from(cache::DEFAULT_CACHE_DIR),
            timeout: DEFAULT_TIMEOUT,
            exec: SystemExec,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Command {
    Add,
    Del,
}

impl Command {
    fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
        }
    }
}

/// What one ADD or DEL passes to every plugin.
struct Invocation<'a> {
    network: &'a NetworkList,
    command: Command,
    container_id: &'a str,
    netns: String,
    ifname: &'a str,
    cni_args: &'a [[String; 2]],
    capability_args: &'a Map<String, Value>,
}

impl<E: PluginExec> Cni<E> {
    /// ADD: runs the list's plugins in order, each given the previous one's result
    /// as `prevResult` (SPEC.md "Network configuration list runtime execution"),
    /// caches the final result, and returns it. On failure it runs DEL of the
    /// plugins that ran (the failing one included: it may have done part of its
    /// work), in reverse, and reports the ADD's error (and the DEL's if that
    /// failed too).
    pub fn add(&self, network: &NetworkList, att: &Attachment) -> Result<CniResult, CniError> {
        validate(att)?;
        // bridge would move the host's interface and address it: a pod's
        // namespace is never the one podshim runs in.
        if netns::is_hosts(&att.netns) {
            return Err(CniError::Invalid {
                field: "netns",
                value: att.netns.display().to_string(),
                problem: "is this host's network namespace",
            });
        }
        let cni_args = cni_args(&att.pod);
        let capability_args = capability_args(att);
        let inv = Invocation {
            network,
            command: Command::Add,
            container_id: &att.container_id,
            netns: att.netns.to_string_lossy().into_owned(),
            ifname: &att.ifname,
            cni_args: &cni_args,
            capability_args: &capability_args,
        };
        let cache_path = cache::path(
            &self.cache_dir,
            &network.name,
            &att.container_id,
            &att.ifname,
        );
        let entry = |result: &Value| {
            cache::CacheEntry::new(
                &network.name,
                &att.container_id,
                &att.ifname,
                &network.bytes,
                cni_args.clone(),
                capability_args.clone(),
                result.clone(),
            )
        };
        let mut prev: Option<Value> = None;
        let mut failed = None;
        for (i, plugin) in network.plugins.iter().enumerate() {
            match self.run_plugin(&inv, plugin, prev.as_ref()) {
                Ok(result) => {
                    // Cached after each plugin, not only at the end as libcni
                    // does: a runtime killed in the middle of the chain leaves what
                    // its DEL needs (firewall removes its rules only by the
                    // addresses in prevResult).
                    if i + 1 < network.plugins.len()
                        && let Err(e) = cache::write(&cache_path, &entry(&result))
                    {
                        prev = Some(result);
                        failed = Some((i, e.into()));
                        break;
                    }
                    prev = Some(result);
                }
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        let outcome = match failed {
            Some((i, e)) => Err((i, e)),
            None => {
                let result = prev.clone().unwrap_or(Value::Null);
                // The list's result is the last plugin's (checked when it ran).
                let parsed = CniResult::parse(&result).expect("checked when the plugin returned");
                match cache::write(&cache_path, &entry(&result)) {
                    Ok(()) => Ok(parsed),
                    // Not cached, the attachment could not be undone with the
                    // result it got: undo it now.
                    Err(e) => Err((network.plugins.len() - 1, e.into())),
                }
            }
        };
        match outcome {
            Ok(result) => Ok(result),
            Err((ran, add)) => {
                let inv = Invocation {
                    command: Command::Del,
                    ..inv
                };
                let errors = self.del_plugins(&inv, &network.plugins[..=ran], prev.as_ref());
                // Undone: the partial entry goes too (kept if the undo failed, for
                // a later DEL).
                if errors.is_empty() {
                    let _ = cache::remove(&cache_path);
                }
                let rollback = (!errors.is_empty()).then(|| Box::new(CniError::Del(errors)));
                Err(CniError::Add {
                    add: Box::new(add),
                    rollback,
                })
            }
        }
    }

    /// DEL: runs every plugin in reverse with the cached ADD result as
    /// `prevResult`, using the configuration ADD used if it was cached (the
    /// directory may have changed since). Without a cache entry, or without the
    /// namespace, every plugin still runs (SPEC.md: DEL "should not return an
    /// error" for missing resources; host-local frees the lease by container id,
    /// portmap removes its chains by container id). The entry is removed once
    /// every plugin succeeded; if one failed the rest still ran and the entry is
    /// kept for a retry.
    pub fn del(&self, network: &NetworkList, att: &Attachment) -> Result<(), CniError> {
        validate(att)?;
        let cache_path = cache::path(
            &self.cache_dir,
            &network.name,
            &att.container_id,
            &att.ifname,
        );
        let cached = match cache::read(&cache_path) {
            Ok(cached) => cached,
            Err(e) => {
                // DEL must not be stopped by a broken cache: the plugins free what
                // they hold by container id.
                tracing::warn!("{e}; running DEL without the cached result");
                None
            }
        };
        let cached_network = cached.as_ref().and_then(|c| {
            NetworkList::parse(&c.config, &cache_path, false)
                .inspect_err(|e| tracing::warn!("{e}; using the current configuration"))
                .ok()
                .filter(|n| n.name == network.name)
        });
        let network = cached_network.as_ref().unwrap_or(network);
        let cni_args = cached
            .as_ref()
            .map(|c| c.cni_args.clone())
            .unwrap_or_else(|| cni_args(&att.pod));
        let capability_args = cached
            .as_ref()
            .map(|c| c.capability_args.clone())
            .unwrap_or_else(|| capability_args(att));
        // Only a namespace (a pin, or /proc/<pid>/ns/net of a live process):
        // a plain file left by a crash, or a path gone, is passed as none.
        let netns = if netns::is_pinned(&att.netns) && !netns::is_hosts(&att.netns) {
            att.netns.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let inv = Invocation {
            network,
            command: Command::Del,
            container_id: &att.container_id,
            netns,
            ifname: &att.ifname,
            cni_args: &cni_args,
            capability_args: &capability_args,
        };
        let prev = cached.as_ref().map(|c| &c.result);
        let errors = self.del_plugins(&inv, &network.plugins, prev);
        if !errors.is_empty() {
            return Err(CniError::Del(errors));
        }
        cache::remove(&cache_path)?;
        Ok(())
    }

    fn del_plugins(
        &self,
        inv: &Invocation,
        plugins: &[PluginConf],
        prev: Option<&Value>,
    ) -> Vec<CniError> {
        // SPEC.md: prevResult in DEL since 0.4.0; a 0.3.x plugin would refuse it.
        let prev = prev.filter(|_| !inv.network.cni_version.starts_with("0.3."));
        plugins
            .iter()
            .rev()
            .filter_map(|p| self.run_plugin(inv, p, prev).err())
            .collect()
    }

    fn run_plugin(
        &self,
        inv: &Invocation,
        plugin: &PluginConf,
        prev: Option<&Value>,
    ) -> Result<Value, CniError> {
        let network = &inv.network.name;
        let command = inv.command.as_str();
        let path = self
            .exec
            .find(&plugin.plugin_type, &self.bin_dirs)
            .ok_or_else(|| CniError::NotFound {
                network: network.clone(),
                plugin: plugin.plugin_type.clone(),
                dirs: self.bin_dirs.clone(),
            })?;
        let stdin = plugin_stdin(inv.network, plugin, prev, inv.capability_args);
        let env = [
            ("CNI_COMMAND", command.to_string()),
            ("CNI_CONTAINERID", inv.container_id.to_string()),
            ("CNI_NETNS", inv.netns.clone()),
            ("CNI_IFNAME", inv.ifname.to_string()),
            (
                "CNI_ARGS",
                inv.cni_args
                    .iter()
                    .map(|[k, v]| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
            ("CNI_PATH", join_paths(&self.bin_dirs)),
        ];
        let out = match self.exec.run(&path, &env, &stdin, self.timeout) {
            Ok(out) => out,
            Err(ExecError::Failed {
                status,
                stdout,
                stderr,
            }) => {
                return Err(plugin_error(
                    network, plugin, command, &status, &stdout, stderr,
                ));
            }
            Err(source) => {
                return Err(CniError::Exec {
                    network: network.clone(),
                    plugin: plugin.plugin_type.clone(),
                    command,
                    source: Box::new(source),
                });
            }
        };
        if inv.command == Command::Del {
            // DEL prints nothing on success (SPEC.md).
            return Ok(Value::Null);
        }
        let bad = |problem: String| CniError::BadResult {
            network: network.clone(),
            plugin: plugin.plugin_type.clone(),
            command,
            problem,
        };
        let value: Value = serde_json::from_slice(&out).map_err(|e| bad(e.to_string()))?;
        CniResult::parse(&value).map_err(bad)?;
        Ok(value)
    }
}

/// The plugin's stdin: its configuration with the list's `name` and `cniVersion`,
/// the previous result, and `runtimeConfig` holding only the capabilities the
/// plugin declares that the runtime has values for (SPEC.md "Deriving
/// runtimeConfig"; libcni's `injectRuntimeConfig`).
fn plugin_stdin(
    network: &NetworkList,
    plugin: &PluginConf,
    prev: Option<&Value>,
    capability_args: &Map<String, Value>,
) -> Vec<u8> {
    let mut conf = plugin.raw.clone();
    conf.insert("name".into(), network.name.clone().into());
    conf.insert("cniVersion".into(), network.cni_version.clone().into());
    conf.remove("prevResult");
    if let Some(prev) = prev {
        conf.insert("prevResult".into(), prev.clone());
    }
    let runtime: Map<String, Value> = capability_args
        .iter()
        .filter(|(cap, _)| plugin.capabilities.contains(*cap))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !runtime.is_empty() {
        conf.insert("runtimeConfig".into(), Value::Object(runtime));
    }
    serde_json::to_vec(&conf).expect("JSON values serialize")
}

fn plugin_error(
    network: &str,
    plugin: &PluginConf,
    command: &'static str,
    status: &str,
    stdout: &[u8],
    stderr: String,
) -> CniError {
    #[derive(serde::Deserialize)]
    struct ErrorJson {
        #[serde(default)]
        code: u64,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    match serde_json::from_slice::<ErrorJson>(stdout) {
        Ok(e) if !e.msg.is_empty() || e.code != 0 => CniError::Plugin(Box::new(PluginError {
            network: network.to_string(),
            plugin: plugin.plugin_type.clone(),
            command,
            code: e.code,
            msg: e.msg,
            details: e.details,
            stderr,
        })),
        // Not the spec's error: say what it did print.
        _ => CniError::Plugin(Box::new(PluginError {
            network: network.to_string(),
            plugin: plugin.plugin_type.clone(),
            command,
            code: 0,
            msg: format!(
                "{status}, without a CNI error on stdout{}",
                if stdout.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({:?})",
                        String::from_utf8_lossy(&stdout[..stdout.len().min(512)])
                    )
                }
            ),
            details: String::new(),
            stderr,
        })),
    }
}

/// CNI_ARGS as the kubelet's and containerd's CRI pass them: `IgnoreUnknown=1`
/// first, so that a plugin that knows none of the keys does not fail.
fn cni_args(pod: &PodRef) -> Vec<[String; 2]> {
    vec![
        ["IgnoreUnknown".into(), "1".into()],
        ["K8S_POD_NAMESPACE".into(), pod.namespace.clone()],
        ["K8S_POD_NAME".into(), pod.name.clone()],
        [
            "K8S_POD_INFRA_CONTAINER_ID".into(),
            pod.infra_container_id.clone(),
        ],
        ["K8S_POD_UID".into(), pod.uid.clone()],
    ]
}

fn capability_args(att: &Attachment) -> Map<String, Value> {
    let mut caps = Map::new();
    if !att.port_mappings.is_empty() {
        let maps: Vec<Value> = att
            .port_mappings
            .iter()
            .map(|p| {
                let mut m = json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": p.protocol.as_cni(),
                });
                if let Some(ip) = &p.host_ip {
                    m["hostIP"] = ip.clone().into();
                }
                m
            })
            .collect();
        caps.insert("portMappings".into(), maps.into());
    }
    if let Some(bw) = &att.bandwidth {
        caps.insert("bandwidth".into(), bw.runtime_config());
    }
    caps
}

fn join_paths(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.to_string_lossy())
        .collect::<Vec<_>>()
        .join(":")
}

/// The parts that become file names (the cache's) and CNI_ARGS.
fn validate(att: &Attachment) -> Result<(), CniError> {
    let invalid = |field, value: &str, problem| CniError::Invalid {
        field,
        value: value.to_string(),
        problem,
    };
    // SPEC.md "Parameters": CNI_CONTAINERID "must have at least one character ...
    // alphanumeric, underscore (_), dot (.) or hyphen (-)".
    if !config::valid_identifier(&att.container_id) {
        return Err(invalid(
            "container id",
            &att.container_id,
            "must be alphanumerics, then alphanumerics, '_', '.' or '-'",
        ));
    }
    // SPEC.md "Parameters": CNI_IFNAME as Linux allows: at most 15 bytes, not
    // `.`/`..`, no `/`, `:` or whitespace.
    let name = &att.ifname;
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(invalid(
            "interface name",
            name,
            "is not a Linux interface name",
        ));
    }
    let pod = &att.pod;
    for (field, value) in [
        ("pod namespace", &pod.namespace),
        ("pod name", &pod.name),
        ("pod uid", &pod.uid),
        ("infra container id", &pod.infra_container_id),
    ] {
        if value.contains([';', '=']) || value.chars().any(char::is_control) {
            return Err(invalid(field, value, "cannot be passed in CNI_ARGS"));
        }
    }
    if !Path::new(&att.netns).is_absolute() {
        return Err(invalid(
            "netns",
            &att.netns.to_string_lossy(),
            "must be an absolute path",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
