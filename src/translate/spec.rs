//! The OCI runtime spec pieces every podshim container shares: default mounts,
//! masked paths, capabilities, namespaces, and the canonical config.json rendering.

use std::collections::HashSet;
use std::str::FromStr;

use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, Mount,
    MountBuilder, Spec,
};

/// The mounts every container gets (the OCI runtime spec's Linux defaults, as runc's
/// `runc spec` and containerd's default spec write them). `/dev/shm` is not here:
/// the pod shares one (see `translate::plan`), like the kubelet's sandbox shm.
pub fn default_mounts(privileged: bool) -> Vec<Mount> {
    let m = |dest: &str, typ: &str, source: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(opts.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .expect("mount without id mappings is valid")
    };
    let sys_mode = if privileged { "rw" } else { "ro" };
    vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        ),
    ]
}

/// containerd's default masked and read-only paths (oci.WithMaskedPaths /
/// WithReadonlyPaths), which the kubelet's pods get unless privileged.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub fn masked_paths() -> Vec<String> {
    MASKED_PATHS.iter().map(|s| s.to_string()).collect()
}

pub fn readonly_paths() -> Vec<String> {
    READONLY_PATHS.iter().map(|s| s.to_string()).collect()
}

/// containerd's default capability set for CRI containers
/// (pkg/cri/.../oci.DefaultCaps), which Kubernetes users expect.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Kubernetes spells capabilities without the prefix (`NET_ADMIN`); OCI with it.
pub fn parse_capability(name: &str) -> Result<Capability, String> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    // oci-spec's FromStr takes the bare name; its serde form has the prefix.
    Capability::from_str(bare)
        .map_err(|_| format!("Unsupported value: {name:?}: not a Linux capability"))
}

pub fn all_capabilities() -> HashSet<Capability> {
    use names::ALL;
    ALL.iter()
        .filter_map(|n| parse_capability(n).ok())
        .collect()
}

/// Every capability name the OCI spec knows (Linux 6.x).
mod names {
    pub const ALL: &[&str] = &[
        "CAP_AUDIT_CONTROL",
        "CAP_AUDIT_READ",
        "CAP_AUDIT_WRITE",
        "CAP_BLOCK_SUSPEND",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_KILL",
        "CAP_LEASE",
        "CAP_LINUX_IMMUTABLE",
        "CAP_MAC_ADMIN",
        "CAP_MAC_OVERRIDE",
        "CAP_MKNOD",
        "CAP_NET_ADMIN",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_RAW",
        "CAP_PERFMON",
        "CAP_SETFCAP",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_CHROOT",
        "CAP_SYS_MODULE",
        "CAP_SYS_NICE",
        "CAP_SYS_PACCT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
    ];
}

/// A process's capability sets: the same set bounding, effective and permitted
/// (containerd's rule for root and non-root alike). Inheritable and ambient are set
/// empty explicitly: oci-spec's builder would default them to a non-empty set, and
/// CVE-2022-24769 is about exactly that.
pub fn capabilities(set: HashSet<Capability>) -> LinuxCapabilities {
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .expect("capability sets are always valid")
}

/// The device cgroup: deny everything, then (privileged) allow everything; runc adds
/// its standard allowlist (null, zero, full, tty, random, urandom, pts, ptmx) after
/// these rules, as containerd's default spec expects.
pub fn device_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
    let rule = |allow: bool| {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access("rwm")
            .build()
            .expect("device rule")
    };
    if privileged {
        vec![rule(false), rule(true)]
    } else {
        vec![rule(false)]
    }
}

pub fn namespace(typ: LinuxNamespaceType, path: Option<String>) -> LinuxNamespace {
    let b = LinuxNamespaceBuilder::default().typ(typ);
    match path {
        Some(p) => b.path(p),
        None => b,
    }
    .build()
    .expect("a namespace with a type is valid")
}

/// config.json text: two-space indented, object keys sorted and capability lists
/// sorted, so the same plan always yields the same bytes (oci-spec keeps
/// annotations, sysctls and capabilities in hash containers).
pub fn render_config(spec: &Spec) -> String {
    let mut value = serde_json::to_value(spec).expect("an oci-spec Spec always serializes");
    canonicalize(&mut value);
    let mut text = serde_json::to_string_pretty(&value).expect("a JSON value always serializes");
    text.push('\n');
    text
}

fn canonicalize(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, mut v) in entries {
                canonicalize(&mut v);
                map.insert(key, v);
            }
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(canonicalize);
            if items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| s.starts_with("CAP_")))
            {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_take_kubernetes_and_oci_spellings() {
        assert_eq!(parse_capability("NET_ADMIN").unwrap(), Capability::NetAdmin);
        assert_eq!(
            parse_capability("CAP_NET_ADMIN").unwrap(),
            Capability::NetAdmin
        );
        assert_eq!(parse_capability("net_admin").unwrap(), Capability::NetAdmin);
        assert!(parse_capability("NOT_A_CAP").is_err());
    }

    #[test]
    fn every_known_capability_name_parses() {
        assert_eq!(all_capabilities().len(), names::ALL.len());
    }
}
