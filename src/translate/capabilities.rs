//! A container's capability sets: containerd's CRI defaults, privileged, and
//! `capabilities.drop`/`add`.

use std::collections::HashSet;
use std::str::FromStr;

use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};

use crate::model::{CapabilityName, ContainerSecurity};

/// containerd's default capability set for CRI containers
/// (pkg/cri/.../oci.DefaultCaps), which Kubernetes users expect.
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability name the OCI spec knows (Linux 6.x).
const ALL: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

fn set(names: &[&str]) -> HashSet<Capability> {
    names
        .iter()
        .filter_map(|n| Capability::from_str(n).ok())
        .collect()
}

pub fn all() -> HashSet<Capability> {
    set(ALL)
}

pub fn defaults() -> HashSet<Capability> {
    set(DEFAULT_CAPS)
}

/// The set a container gets: every capability when privileged, else containerd's
/// defaults; then `drop` (ALL empties it), then `add` (ALL fills it).
pub fn effective(sc: &ContainerSecurity) -> HashSet<Capability> {
    let mut caps = if sc.privileged { all() } else { defaults() };
    for name in &sc.capabilities_drop {
        match name {
            CapabilityName::All => caps.clear(),
            CapabilityName::One(c) => {
                caps.remove(c);
            }
        }
    }
    for name in &sc.capabilities_add {
        match name {
            CapabilityName::All => caps = all(),
            CapabilityName::One(c) => {
                caps.insert(*c);
            }
        }
    }
    caps
}

/// A process's capability sets: the same set bounding, effective and permitted
/// (containerd's rule for root and non-root alike). Inheritable and ambient are set
/// empty explicitly: oci-spec's builder would default them to a non-empty set, and
/// CVE-2022-24769 is about exactly that.
pub fn sets(set: HashSet<Capability>) -> LinuxCapabilities {
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .expect("capability sets are always valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(caps: &HashSet<Capability>) -> Vec<String> {
        let mut v: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        v.sort();
        v
    }

    fn sc(privileged: bool, drop: &[&str], add: &[&str]) -> ContainerSecurity {
        let parse = |l: &[&str]| {
            l.iter()
                .map(|n| CapabilityName::parse(n).unwrap())
                .collect()
        };
        ContainerSecurity {
            privileged,
            allow_privilege_escalation: true,
            capabilities_drop: parse(drop),
            capabilities_add: parse(add),
            ..Default::default()
        }
    }

    #[test]
    fn every_known_capability_name_parses() {
        assert_eq!(all().len(), ALL.len());
        assert_eq!(defaults().len(), DEFAULT_CAPS.len());
    }

    #[test]
    fn drop_applies_before_add_and_all_means_every_capability() {
        let cases: [(ContainerSecurity, usize, Option<&str>); 5] = [
            (sc(false, &[], &[]), DEFAULT_CAPS.len(), Some("KILL")),
            (
                sc(false, &["ALL"], &["NET_BIND_SERVICE"]),
                1,
                Some("NET_BIND_SERVICE"),
            ),
            (sc(false, &["KILL"], &[]), DEFAULT_CAPS.len() - 1, None),
            (sc(false, &[], &["ALL"]), ALL.len(), Some("SYS_ADMIN")),
            (
                sc(true, &["SYS_ADMIN"], &[]),
                ALL.len() - 1,
                Some("NET_ADMIN"),
            ),
        ];
        for (sc, len, has) in cases {
            let caps = effective(&sc);
            assert_eq!(caps.len(), len, "{sc:?}: {:?}", names(&caps));
            if let Some(has) = has {
                assert!(names(&caps).contains(&has.to_string()), "{sc:?}");
            }
        }
        assert!(!names(&effective(&sc(false, &["KILL"], &[]))).contains(&"KILL".into()));
    }

    #[test]
    fn kubernetes_and_oci_spellings_are_the_same_capability() {
        for n in ["NET_ADMIN", "CAP_NET_ADMIN", "net_admin"] {
            assert_eq!(
                CapabilityName::parse(n),
                Some(CapabilityName::One(Capability::NetAdmin)),
                "{n}"
            );
        }
        assert_eq!(CapabilityName::parse("all"), Some(CapabilityName::All));
        assert_eq!(CapabilityName::parse("NOT_A_CAP"), None);
    }
}
