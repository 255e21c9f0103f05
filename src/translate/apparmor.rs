//! A container's AppArmor profile, decided as the kubelet and containerd do.
//!
//! - A host without AppArmor: the kubelet's admission (pkg/security/apparmor
//!   validate.go) rejects a pod that asks for any profile but `Unconfined` with
//!   "Cannot enforce AppArmor: AppArmor is not enabled on the host"; a pod that asks
//!   for nothing runs.
//! - A host with AppArmor: containerd's GenerateApparmorSpecOpts. Unset or
//!   `RuntimeDefault` is its default profile `cri-containerd.apparmor.d`, except for
//!   privileged containers; `Localhost` names a profile that must be loaded.
//!   containerd loads its default profile itself; podshim loads no profiles, so an
//!   unset profile runs unconfined when that one is not loaded, and an explicit
//!   `RuntimeDefault` is refused rather than silently weakened (rule 5).

use std::collections::BTreeSet;

use crate::model::{AppArmorProfile, ContainerSecurity};

/// containerd's default AppArmor profile name (appArmorDefaultProfileName).
pub const DEFAULT_PROFILE: &str = "cri-containerd.apparmor.d";

/// The profile for `process.apparmorProfile`, or the field path and message that
/// refuse the pod. `host` is `None` without AppArmor, else the loaded profiles.
pub fn profile(
    sc: &ContainerSecurity,
    host: Option<&BTreeSet<String>>,
) -> Result<Option<String>, (String, String)> {
    let asked = sc.apparmor.as_ref();
    let Some(loaded) = host else {
        return match asked {
            Some(a) if a.profile != AppArmorProfile::Unconfined => Err((
                a.field.clone(),
                "Forbidden: Cannot enforce AppArmor: AppArmor is not enabled on the host".into(),
            )),
            _ => Ok(None),
        };
    };
    match asked.map(|a| (&a.profile, a.field.as_str())) {
        Some((AppArmorProfile::Unconfined, _)) => Ok(None),
        None | Some((AppArmorProfile::RuntimeDefault, _)) if sc.privileged => Ok(None),
        None if !loaded.contains(DEFAULT_PROFILE) => Ok(None),
        None => Ok(Some(DEFAULT_PROFILE.into())),
        Some((AppArmorProfile::RuntimeDefault, field)) => {
            if loaded.contains(DEFAULT_PROFILE) {
                Ok(Some(DEFAULT_PROFILE.into()))
            } else {
                Err((
                    field.to_string(),
                    format!(
                        "Forbidden: Cannot enforce AppArmor: the runtime default profile {DEFAULT_PROFILE:?} is not loaded (podshim loads no profiles: load it with apparmor_parser)"
                    ),
                ))
            }
        }
        Some((AppArmorProfile::Localhost(name), field)) => {
            if loaded.contains(name) {
                Ok(Some(name.clone()))
            } else {
                Err((
                    field.to_string(),
                    format!("Forbidden: Cannot enforce AppArmor: profile {name:?} is not loaded"),
                ))
            }
        }
    }
}
