//! Network configuration lists (SPEC.md "Section 1: Network configuration format"),
//! loaded from a configuration directory as libcni does, or podshim's built-in one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::result::IpNet;
use crate::fsutil;

/// A configuration file is small; a larger one is not a configuration.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// More entries than this in a configuration directory is not a configuration
/// directory (a bound on what one `load` reads).
pub const MAX_DIR_ENTRIES: usize = 4096;

/// The versions Debian's plugins (containernetworking-plugins 1.1.1) speak and
/// whose results podshim parses: 0.3.0 brought the list result, 1.0.0 is the
/// newest they know. 0.1/0.2 results have another shape.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// The built-in network's name, and the bridge it makes.
pub const DEFAULT_NETWORK: &str = "podshim";
pub const DEFAULT_BRIDGE: &str = "podshim0";
/// The built-in network's subnet. Not 10.88.0.0/16 (podman's and containerd's
/// default bridge), not 10.89.0.0/16 (podman's pool for `podman network create`,
/// /24s from 10.89.0.0), not 10.85.0.0/16 (CRI-O's bridge), 10.42/10.43 (k3s),
/// 10.244 (flannel, kind), 10.96 (Kubernetes' service range) nor 172.17+ (Docker):
/// a host running any of them next to podshim keeps working. A /24 keeps the
/// chance of meeting a LAN small; 253 pods is plenty for one machine.
pub const DEFAULT_SUBNET: &str = "10.87.0.0/24";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("CNI configuration directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("CNI configuration directory {}: more than {MAX_DIR_ENTRIES} entries", dir.display())]
    TooManyEntries { dir: PathBuf },
    #[error("CNI configuration {}: {problem}", file.display())]
    Read { file: PathBuf, problem: String },
    #[error("CNI configuration {}: not JSON: {problem}", file.display())]
    Json { file: PathBuf, problem: String },
    #[error("CNI configuration {}: {field}: {problem}", file.display())]
    Field {
        file: PathBuf,
        field: String,
        problem: String,
    },
    #[error("CNI configuration directory {}: no network named {name:?} (networks: {found:?})", dir.display())]
    NoSuchNetwork {
        dir: PathBuf,
        name: String,
        found: Vec<String>,
    },
    #[error("CNI default network: subnet {0:?} is not an IPv4 network such as 10.87.0.0/24")]
    BadSubnet(String),
    #[error(
        "CNI default network: bridge {0:?} is not an interface name (1 to 15 of A-Z a-z 0-9 - _ .)"
    )]
    BadBridge(String),
}

/// One plugin of a list: its type (the executable's name), the capabilities it
/// declares, and its configuration as written (passed on with what the runtime adds).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConf {
    pub plugin_type: String,
    pub capabilities: BTreeSet<String>,
    pub raw: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<PluginConf>,
    /// Where it was read from (a file, or `built-in`), for messages.
    pub source: PathBuf,
    /// The list as JSON: what the result cache records, as libcni's does.
    pub bytes: Vec<u8>,
}

impl NetworkList {
    /// Parses a `.conflist`, or (`single`) a `.conf` holding one plugin, which
    /// becomes a list of that plugin as libcni's `ConfListFromConf` does.
    pub fn parse(bytes: &[u8], source: &Path, single: bool) -> Result<NetworkList, ConfigError> {
        let field = |field: &str, problem: &str| ConfigError::Field {
            file: source.to_path_buf(),
            field: field.to_string(),
            problem: problem.to_string(),
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ConfigError::Json {
            file: source.to_path_buf(),
            problem: e.to_string(),
        })?;
        let Value::Object(top) = value else {
            return Err(field("(top level)", "must be an object"));
        };
        let name = match top.get("name") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(field("name", "must be a string")),
            None => return Err(field("name", "is required")),
        };
        // SPEC.md: "must start with an alphanumeric character, optionally followed
        // by any combination of one or more alphanumeric characters, underscore,
        // dot (.) or hyphen (-)". It is part of the cache's file names.
        if !valid_identifier(&name) {
            return Err(field(
                "name",
                &format!("{name:?} must be alphanumerics, then alphanumerics, '_', '.' or '-'"),
            ));
        }
        let cni_version = match top.get("cniVersion") {
            Some(Value::String(s)) if SUPPORTED_VERSIONS.contains(&s.as_str()) => s.clone(),
            Some(Value::String(s)) => {
                return Err(field(
                    "cniVersion",
                    &format!("{s:?} is not supported (supported: {SUPPORTED_VERSIONS:?})"),
                ));
            }
            Some(_) => return Err(field("cniVersion", "must be a string")),
            None => return Err(field("cniVersion", "is required")),
        };
        // A `.conf`/`.json` holding a `plugins` list is a list (CRI-O reads them
        // so too); without one it is a single plugin.
        let single = single && !top.contains_key("plugins");
        let raw_plugins: Vec<(String, Map<String, Value>)> = if single {
            vec![("(top level)".to_string(), top.clone())]
        } else {
            match top.get("plugins") {
                Some(Value::Array(list)) if !list.is_empty() => list
                    .iter()
                    .enumerate()
                    .map(|(i, p)| match p {
                        Value::Object(m) => Ok((format!("plugins[{i}]"), m.clone())),
                        _ => Err(field(&format!("plugins[{i}]"), "must be an object")),
                    })
                    .collect::<Result<_, _>>()?,
                Some(Value::Array(_)) => return Err(field("plugins", "must not be empty")),
                Some(_) => return Err(field("plugins", "must be a list")),
                None => return Err(field("plugins", "is required")),
            }
        };
        let mut plugins = Vec::new();
        for (path, raw) in raw_plugins {
            let plugin_type = match raw.get("type") {
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(field(&format!("{path}.type"), "must be a string")),
                None => return Err(field(&format!("{path}.type"), "is required")),
            };
            // The type is a file name in the bin directories, never a path.
            if plugin_type.is_empty()
                || plugin_type == "."
                || plugin_type == ".."
                || plugin_type.contains('/')
            {
                return Err(field(
                    &format!("{path}.type"),
                    &format!("{plugin_type:?} is not a plugin name"),
                ));
            }
            let mut capabilities = BTreeSet::new();
            match raw.get("capabilities") {
                None => {}
                Some(Value::Object(caps)) => {
                    for (cap, on) in caps {
                        match on {
                            Value::Bool(true) => {
                                capabilities.insert(cap.clone());
                            }
                            Value::Bool(false) => {}
                            _ => {
                                return Err(field(
                                    &format!("{path}.capabilities.{cap}"),
                                    "must be true or false",
                                ));
                            }
                        }
                    }
                }
                Some(_) => {
                    return Err(field(&format!("{path}.capabilities"), "must be an object"));
                }
            }
            plugins.push(PluginConf {
                plugin_type,
                capabilities,
                raw,
            });
        }
        // What is kept (in the result cache and the plan, for DEL) is a list:
        // a single plugin's file as the list libcni's `ConfListFromConf` makes of it.
        let bytes = if single {
            serde_json::to_vec(&serde_json::json!({
                "cniVersion": cni_version,
                "name": name,
                "plugins": [Value::Object(top)],
            }))
            .expect("JSON values serialize")
        } else {
            bytes.to_vec()
        };
        Ok(NetworkList {
            name,
            cni_version,
            plugins,
            source: source.to_path_buf(),
            bytes,
        })
    }

    /// podshim's network when the configuration directory has none: a bridge with
    /// host-local addresses (masqueraded out, the bridge the pods' gateway), then
    /// hostPorts (`portmap`, SNAT so that 127.0.0.1 reaches them) and the
    /// `firewall` plugin, which lets the pods' traffic through a FORWARD policy of
    /// DROP (Docker sets one).
    pub fn default_network(
        subnet: &str,
        bridge: &str,
        plugins: DefaultPlugins,
    ) -> Result<NetworkList, ConfigError> {
        // IFNAMSIZ: 15 bytes and a NUL; no '/', ':' or blanks (dev_valid_name).
        if bridge.is_empty()
            || bridge.len() > 15
            || !bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(ConfigError::BadBridge(bridge.to_string()));
        }
        match IpNet::parse(subnet) {
            Some(net) if net.addr.is_ipv4() && net.prefix <= 30 => {}
            _ => return Err(ConfigError::BadSubnet(subnet.to_string())),
        }
        let mut chain = vec![json!({
            "type": "bridge",
            "bridge": bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "routes": [{"dst": "0.0.0.0/0"}]
            }
        })];
        if plugins.port_map {
            chain.push(
                json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}),
            );
        }
        if plugins.firewall {
            chain.push(json!({"type": "firewall"}));
        }
        if plugins.bandwidth {
            chain.push(json!({"type": "bandwidth", "capabilities": {"bandwidth": true}}));
        }
        let list = json!({
            "cniVersion": "1.0.0",
            "name": DEFAULT_NETWORK,
            "plugins": chain
        });
        let bytes = serde_json::to_vec_pretty(&list).expect("JSON values serialize");
        NetworkList::parse(&bytes, Path::new("built-in"), false)
    }
}

/// Which plugins the built-in network chains after bridge, per pod: each costs
/// its own execution (portmap's DEL, with iptables-nft, ~100 ms), so only what
/// the pod uses. The list ADD ran is cached, and DEL runs that one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DefaultPlugins {
    /// The pod has hostPorts.
    pub port_map: bool,
    /// The pod has bandwidth annotations.
    pub bandwidth: bool,
    /// The host's FORWARD chain would drop the pod's traffic (its policy is not
    /// ACCEPT, as Docker leaves it): the firewall plugin lets it through.
    pub firewall: bool,
}

impl DefaultPlugins {
    pub const ALL: DefaultPlugins = DefaultPlugins {
        port_map: true,
        bandwidth: true,
        firewall: true,
    };
}

pub(crate) fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Loads a network from `dir` as libcni's `LoadConfList`/go-cni do: the files
/// ending in `.conflist`, `.conf` or `.json`, in file-name order; the first one, or
/// with `name` the first whose network has that name. `Ok(None)` when the directory
/// is missing or holds no configuration (the caller then uses
/// [`NetworkList::default_network`]). Only regular files are read, each bounded; a
/// file that does not parse is an error naming it, never skipped.
pub fn load_dir(dir: &Path, name: Option<&str>) -> Result<Option<NetworkList>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Dir {
                dir: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for (n, entry) in entries.enumerate() {
        if n >= MAX_DIR_ENTRIES {
            return Err(ConfigError::TooManyEntries {
                dir: dir.to_path_buf(),
            });
        }
        let entry = entry.map_err(|source| ConfigError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "conflist" | "conf" | "json") {
            continue;
        }
        // Directories named like configurations are not configurations (libcni
        // skips them too); anything else that is not a regular file is refused
        // when read.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        files.push(path);
    }
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let bytes =
            fsutil::read_regular(&file, MAX_CONFIG_BYTES).map_err(|e| ConfigError::Read {
                file: file.clone(),
                problem: match e {
                    fsutil::ReadError::TooLarge => {
                        format!("larger than {MAX_CONFIG_BYTES} bytes")
                    }
                    fsutil::ReadError::Io(e) => e.to_string(),
                },
            })?;
        let single = file.extension().is_some_and(|e| e != "conflist");
        let list = NetworkList::parse(&bytes, &file, single)?;
        match name {
            None => return Ok(Some(list)),
            Some(name) if list.name == name => return Ok(Some(list)),
            Some(_) => found.push(list.name),
        }
    }
    match name {
        Some(name) if !found.is_empty() => Err(ConfigError::NoSuchNetwork {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            found,
        }),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn conflist(name: &str) -> String {
        format!(r#"{{"cniVersion":"1.0.0","name":"{name}","plugins":[{{"type":"bridge"}}]}}"#)
    }

    #[test]
    fn the_first_file_by_name_is_the_network() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("20-b.conflist"), conflist("b")).unwrap();
        fs::write(dir.path().join("10-a.conflist"), conflist("a")).unwrap();
        fs::write(dir.path().join("00-ignored.txt"), "not a configuration").unwrap();
        fs::create_dir(dir.path().join("05-dir.conf")).unwrap();
        let list = load_dir(dir.path(), None).unwrap().unwrap();
        assert_eq!(list.name, "a");
        assert_eq!(list.source, dir.path().join("10-a.conflist"));
    }

    #[test]
    fn a_named_network_is_found_in_any_file_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("10-a.conflist"), conflist("a")).unwrap();
        fs::write(dir.path().join("20-b.json"), conflist("b")).unwrap();
        assert_eq!(load_dir(dir.path(), Some("b")).unwrap().unwrap().name, "b");
        let err = load_dir(dir.path(), Some("c")).unwrap_err().to_string();
        assert!(err.contains("no network named \"c\""), "{err}");
        assert!(err.contains("[\"a\", \"b\"]"), "{err}");
    }

    #[test]
    fn a_single_conf_becomes_a_list_of_one_plugin() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("10-one.conf"),
            r#"{"cniVersion":"0.4.0","name":"one","type":"bridge","bridge":"br9","capabilities":{"portMappings":true}}"#,
        )
        .unwrap();
        let list = load_dir(dir.path(), None).unwrap().unwrap();
        assert_eq!(list.cni_version, "0.4.0");
        assert_eq!(list.plugins.len(), 1);
        assert_eq!(list.plugins[0].plugin_type, "bridge");
        assert_eq!(list.plugins[0].raw["bridge"], "br9");
        assert!(list.plugins[0].capabilities.contains("portMappings"));
        // What DEL reads back (the cache, the plan) is that list, parsed as one.
        let again = NetworkList::parse(&list.bytes, Path::new("cache"), false).unwrap();
        assert_eq!(again.name, "one");
        assert_eq!(again.plugins, list.plugins);
    }

    #[test]
    fn an_empty_or_missing_directory_has_no_network() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_dir(dir.path(), None).unwrap(), None);
        assert_eq!(load_dir(&dir.path().join("nope"), Some("x")).unwrap(), None);
    }

    #[test]
    fn symlinks_fifos_and_oversized_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("10-zero.conflist");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = load_dir(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("10-zero.conflist"), "{err}");
        fs::remove_file(&link).unwrap();
        let fifo = dir.path().join("10-fifo.conf");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Returns at once: the FIFO is never opened for a blocking read.
        let err = load_dir(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("10-fifo.conf"), "{err}");
        fs::remove_file(&fifo).unwrap();
        let big = dir.path().join("10-big.conflist");
        fs::write(&big, vec![b' '; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        let err = load_dir(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("10-big.conflist") && err.contains("larger than"),
            "{err}"
        );
    }

    #[test]
    fn bad_fields_are_named_with_the_file() {
        let cases = [
            (r#"[]"#, "(top level): must be an object"),
            (r#"{"name":"x"}"#, "cniVersion: is required"),
            (
                r#"{"cniVersion":"0.2.0","name":"x","plugins":[{"type":"a"}]}"#,
                "cniVersion: \"0.2.0\" is not supported",
            ),
            (
                r#"{"cniVersion":"1.0.0","plugins":[{"type":"a"}]}"#,
                "name: is required",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"../x","plugins":[{"type":"a"}]}"#,
                "name: \"../x\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[]}"#,
                "plugins: must not be empty",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"a"},{}]}"#,
                "plugins[1].type: is required",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"../../bin/sh"}]}"#,
                "plugins[0].type: \"../../bin/sh\" is not a plugin name",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"a","capabilities":{"portMappings":1}}]}"#,
                "plugins[0].capabilities.portMappings: must be true or false",
            ),
            (r#"{"cniVersion":"1.0.0","#, "not JSON"),
        ];
        for (text, want) in cases {
            let err = NetworkList::parse(
                text.as_bytes(),
                Path::new("/etc/cni/net.d/x.conflist"),
                false,
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with("CNI configuration /etc/cni/net.d/x.conflist: "),
                "{err}"
            );
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn the_default_network_is_bridge_then_what_the_pod_uses_on_its_subnet() {
        let list =
            NetworkList::default_network(DEFAULT_SUBNET, DEFAULT_BRIDGE, DefaultPlugins::ALL)
                .unwrap();
        assert_eq!(list.name, "podshim");
        let types: Vec<&str> = list
            .plugins
            .iter()
            .map(|p| p.plugin_type.as_str())
            .collect();
        assert_eq!(types, ["bridge", "portmap", "firewall", "bandwidth"]);
        assert!(list.plugins[3].capabilities.contains("bandwidth"));
        assert_eq!(list.plugins[0].raw["bridge"], "podshim0");
        assert_eq!(
            list.plugins[0].raw["ipam"]["ranges"][0][0]["subnet"],
            "10.87.0.0/24"
        );
        assert!(list.plugins[1].capabilities.contains("portMappings"));
        let other = NetworkList::default_network("10.123.0.0/16", "pb0", DefaultPlugins::default())
            .unwrap();
        // Only bridge for a pod without hostPorts or bandwidth, on a host that
        // forwards.
        assert_eq!(other.plugins.len(), 1);
        assert_eq!(
            other.plugins[0].raw["ipam"]["ranges"][0][0]["subnet"],
            "10.123.0.0/16"
        );
        assert_eq!(other.plugins[0].raw["bridge"], "pb0");
        for bad in ["", "sixteen-bytes-xx", "a/b", "a b", "a:b"] {
            assert!(
                NetworkList::default_network(DEFAULT_SUBNET, bad, DefaultPlugins::ALL).is_err(),
                "{bad}"
            );
        }
        for bad in ["10.87.0.0", "fd00::/64", "10.87.0.0/31", "x"] {
            assert!(
                NetworkList::default_network(bad, DEFAULT_BRIDGE, DefaultPlugins::ALL).is_err(),
                "{bad}"
            );
        }
    }
}
