//! A container's seccomp filter: containerd's default profile (`RuntimeDefault`),
//! a profile file of the host's (`Localhost`), or none (`Unconfined`, and every
//! privileged container: containerd's GenerateSeccompSpecOpts sets no profile then).
//!
//! The default profile is data, `seccomp_default.json`: containerd's
//! `contrib/seccomp/seccomp_default.go` (DefaultProfile and its `arches`) written as
//! rules in the shape of moby's profile files, each rule kept only where its
//! `includes` hold and its `excludes` do not (every capability of `includes.caps` in
//! the container's bounding set, the architecture in `includes.arches`), the way
//! DefaultProfile appends its capability- and architecture-gated rules. The one
//! kernel-version rule (ptrace and process_vm_* from Linux 4.8) is unconditional:
//! no kernel podshim's runtimes support is older.
//!
//! A Localhost file is an OCI `LinuxSeccomp` object, as containerd's WithProfile
//! reads it (the Kubernetes docs' profiles are in that shape).

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder,
    LinuxSyscall, LinuxSyscallBuilder,
};
use serde::Deserialize;

use crate::model::{ContainerSecurity, SeccompProfile};

const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DefaultProfile {
    #[allow(dead_code)]
    provenance: String,
    default_action: LinuxSeccompAction,
    /// Rust's `std::env::consts::ARCH` → the seccomp architectures of that machine.
    arch_map: BTreeMap<String, Vec<Arch>>,
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Rule {
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<LinuxSeccompArg>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

fn default_profile() -> &'static DefaultProfile {
    static PROFILE: OnceLock<DefaultProfile> = OnceLock::new();
    PROFILE.get_or_init(|| {
        serde_json::from_str(DEFAULT_PROFILE).expect("seccomp_default.json is a valid profile")
    })
}

/// `CAP_SYS_ADMIN` (the data's spelling) as an oci-spec capability.
fn capability(name: &str) -> Option<Capability> {
    Capability::from_str(name.strip_prefix("CAP_").unwrap_or(name)).ok()
}

/// The runtime default profile for a container with bounding set `caps` on a
/// machine of architecture `arch` (Rust's name for it).
pub fn runtime_default(caps: &HashSet<Capability>, arch: &str) -> LinuxSeccomp {
    let profile = default_profile();
    let has = |name: &String| capability(name).is_some_and(|c| caps.contains(&c));
    let syscalls: Vec<LinuxSyscall> = profile
        .syscalls
        .iter()
        .filter(|r| {
            r.includes.caps.iter().all(has)
                && (r.includes.arches.is_empty() || r.includes.arches.iter().any(|a| a == arch))
                && !r.excludes.caps.iter().any(has)
                && !r.excludes.arches.iter().any(|a| a == arch)
        })
        .map(|r| {
            let mut b = LinuxSyscallBuilder::default()
                .names(r.names.clone())
                .action(r.action);
            if let Some(errno) = r.errno_ret {
                b = b.errno_ret(errno);
            }
            if !r.args.is_empty() {
                b = b.args(r.args.clone());
            }
            b.build().expect("a syscall rule with names and an action")
        })
        .collect();
    let mut b = LinuxSeccompBuilder::default()
        .default_action(profile.default_action)
        .syscalls(syscalls);
    // An architecture containerd has no list for gets none (native only).
    if let Some(arches) = profile.arch_map.get(arch) {
        b = b.architectures(arches.clone());
    }
    b.build().expect("a seccomp profile with a default action")
}

/// The filter of a container with bounding set `caps`: `Ok(None)` for none, or
/// the field path and message of a Localhost file that is not a profile.
/// `profiles` holds the Localhost files' text by `localhostProfile`.
pub fn filter(
    sc: &ContainerSecurity,
    caps: &HashSet<Capability>,
    arch: &str,
    profiles: &BTreeMap<String, String>,
) -> Result<Option<LinuxSeccomp>, (String, String)> {
    if sc.privileged {
        return Ok(None);
    }
    match &sc.seccomp {
        SeccompProfile::Unconfined => Ok(None),
        SeccompProfile::RuntimeDefault => Ok(Some(runtime_default(caps, arch))),
        SeccompProfile::Localhost { path, field } => {
            let Some(text) = profiles.get(path.as_str()) else {
                return Err((
                    field.clone(),
                    format!("seccomp profile {path:?} was not read"),
                ));
            };
            serde_json::from_str::<LinuxSeccomp>(text)
                .map(Some)
                .map_err(|e| {
                    (
                        field.clone(),
                        format!("Invalid value: {path:?}: not a seccomp profile: {e}"),
                    )
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_data_parses_and_names_known_capabilities_and_arches() {
        let p = default_profile();
        assert_eq!(p.default_action, LinuxSeccompAction::ScmpActErrno);
        for rule in &p.syscalls {
            for cap in rule.includes.caps.iter().chain(&rule.excludes.caps) {
                assert!(capability(cap).is_some(), "{cap}");
            }
        }
        // Every rule is one a runtime accepts: names, and an errno only with ERRNO.
        for rule in &p.syscalls {
            assert!(!rule.names.is_empty());
            assert!(rule.errno_ret.is_none() || rule.action == LinuxSeccompAction::ScmpActErrno);
        }
        assert!(p.arch_map.contains_key("x86_64") && p.arch_map.contains_key("aarch64"));
    }
}
