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

/// The set a container gets, containerd's way: a privileged container gets `host`,
/// the capabilities podshim holds (WithPrivileged's WithAllCurrentCapabilities,
/// applied after and over any add/drop), so it runs where the bounding set lacks
/// some (a container, a VM without CAP_SYS_RESOURCE). Otherwise containerd's
/// defaults, then WithCapabilities' order: `add: [ALL]` (the host's set), `drop:
/// [ALL]`, then the single adds, then the single drops.
pub fn effective(sc: &ContainerSecurity, host: &HashSet<Capability>) -> HashSet<Capability> {
    if sc.privileged {
        return host.clone();
    }
    let mut caps = defaults();
    if sc.capabilities_add.contains(&CapabilityName::All) {
        caps = host.clone();
    }
    if sc.capabilities_drop.contains(&CapabilityName::All) {
        caps.clear();
    }
    for name in &sc.capabilities_add {
        if let CapabilityName::One(c) = name {
            caps.insert(*c);
        }
    }
    for name in &sc.capabilities_drop {
        if let CapabilityName::One(c) = name {
            caps.remove(c);
        }
    }
    caps
}

/// The capabilities of a `/proc/<pid>/status` line's hex bitmap (`CapEff:`,
/// `CapBnd:`), by bit number (linux/capability.h); bits past the known ones are
/// dropped.
pub fn from_bitmap(hex: &str) -> HashSet<Capability> {
    let Ok(bits) = u64::from_str_radix(hex.trim(), 16) else {
        return HashSet::new();
    };
    BY_BIT
        .iter()
        .enumerate()
        .filter(|(bit, _)| bits & (1 << bit) != 0)
        .filter_map(|(_, name)| Capability::from_str(name).ok())
        .collect()
}

/// Capability names by bit number (linux/capability.h).
const BY_BIT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

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
    fn privileged_and_add_all_are_the_hosts_set_and_single_names_apply_after_all() {
        let mut host = all();
        host.remove(&Capability::SysResource);
        let cases: [(ContainerSecurity, usize, Option<&str>); 6] = [
            (sc(false, &[], &[]), DEFAULT_CAPS.len(), Some("KILL")),
            (
                sc(false, &["ALL"], &["NET_BIND_SERVICE"]),
                1,
                Some("NET_BIND_SERVICE"),
            ),
            (sc(false, &["KILL"], &[]), DEFAULT_CAPS.len() - 1, None),
            (sc(false, &[], &["ALL"]), ALL.len() - 1, Some("SYS_ADMIN")),
            (sc(false, &["CHOWN"], &["ALL"]), ALL.len() - 2, Some("KILL")),
            (
                sc(true, &["SYS_ADMIN"], &[]),
                ALL.len() - 1,
                Some("SYS_ADMIN"),
            ),
        ];
        for (sc, len, has) in cases {
            let caps = effective(&sc, &host);
            assert_eq!(caps.len(), len, "{sc:?}: {:?}", names(&caps));
            if let Some(has) = has {
                assert!(names(&caps).contains(&has.to_string()), "{sc:?}");
            }
            assert!(!caps.contains(&Capability::SysResource), "{sc:?}");
        }
        assert!(!names(&effective(&sc(false, &["KILL"], &[]), &host)).contains(&"KILL".into()));
    }

    #[test]
    fn a_status_bitmap_names_its_capabilities() {
        // This development host's CapBnd: all 41 but CAP_SYS_RESOURCE (bit 24).
        let caps = from_bitmap("000001fffeffffff");
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&Capability::SysResource));
        assert!(caps.contains(&Capability::CheckpointRestore));
        assert_eq!(from_bitmap("0000000000000000").len(), 0);
        assert_eq!(BY_BIT.len(), ALL.len());
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
