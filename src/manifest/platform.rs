//! Options a Linux node without SELinux has no use for: `seLinuxOptions`,
//! `seLinuxChangePolicy` and `windowsOptions`, treated as the kubelet and
//! containerd treat them there. Nothing is dropped silently: each one set is
//! validated as the API server does and reported with a warning.

use k8s_openapi::api::core::v1 as k8s;

use super::{Errs, dns1123_subdomain};

/// The API server's bounds on windowsOptions (pkg/apis/core/validation:
/// maxGMSACredentialSpecLength, maxRunAsUserNameLength).
const MAX_GMSA_SPEC_BYTES: usize = 64 * 1024;
const MAX_RUN_AS_USER_NAME: usize = 256;

/// `seLinuxOptions` at `path`: podshim sets no SELinux label, as containerd
/// with its default `enable_selinux = false` does not, and as it cannot on a
/// host without SELinux. Returns the field, so that a host with SELinux
/// enabled refuses the pod by name rather than run it unlabelled.
pub(super) fn selinux(
    warnings: &mut Vec<String>,
    path: &str,
    opts: Option<&k8s::SELinuxOptions>,
) -> Option<String> {
    let o = opts?;
    let set = [&o.user, &o.role, &o.type_, &o.level]
        .into_iter()
        .any(|f| f.as_deref().is_some_and(|v| !v.is_empty()));
    if !set {
        return None;
    }
    warnings.push(format!(
        "{path}: ignored: podshim sets no SELinux labels (as containerd with enable_selinux off); a host with SELinux enabled refuses the pod"
    ));
    Some(path.to_string())
}

/// `spec.securityContext.seLinuxChangePolicy` (KEP-1710): how volumes would be
/// relabelled; with no labels there is nothing to relabel.
pub(super) fn selinux_change_policy(
    errs: &mut Errs,
    warnings: &mut Vec<String>,
    value: Option<&str>,
) {
    let path = "spec.securityContext.seLinuxChangePolicy";
    const POLICIES: &[&str] = &["MountOption", "Recursive"];
    match value {
        None => {}
        Some(v) if POLICIES.contains(&v) => warnings.push(format!(
            "{path}: ignored: podshim relabels no volumes (it sets no SELinux labels)"
        )),
        Some(v) => errs.unsupported(path, v, POLICIES),
    }
}

/// `windowsOptions` at `path`: validated as the API server does
/// (validateWindowsSecurityContextOptions, validateLinux), then ignored with a
/// warning, as a Linux kubelet ignores them, except `hostProcess`, which asks
/// for a Windows host process and is refused.
pub(super) fn windows(
    errs: &mut Errs,
    warnings: &mut Vec<String>,
    path: &str,
    opts: Option<&k8s::WindowsSecurityContextOptions>,
    os_linux: bool,
) {
    let Some(o) = opts else { return };
    if o.gmsa_credential_spec_name.is_none()
        && o.gmsa_credential_spec.is_none()
        && o.run_as_user_name.is_none()
        && o.host_process.is_none()
    {
        return;
    }
    if os_linux {
        errs.forbidden(path, "windows options cannot be set for a linux pod");
        return;
    }
    let before = errs.0.len();
    if let Some(name) = &o.gmsa_credential_spec_name {
        dns1123_subdomain(errs, &format!("{path}.gmsaCredentialSpecName"), name);
    }
    if let Some(spec) = &o.gmsa_credential_spec {
        let field = format!("{path}.gmsaCredentialSpec");
        if spec.is_empty() {
            errs.invalid_str(field, spec, "gmsaCredentialSpec cannot be an empty string");
        } else if spec.len() > MAX_GMSA_SPEC_BYTES {
            errs.invalid_str(field, "", "gmsaCredentialSpec size must be under 64 KiB");
        }
    }
    if let Some(user) = &o.run_as_user_name {
        let field = format!("{path}.runAsUserName");
        if user.is_empty() {
            errs.invalid_str(field, user, "runAsUserName cannot be an empty string");
        } else if user.len() > MAX_RUN_AS_USER_NAME {
            errs.invalid_str(
                field,
                user,
                "runAsUserName's length must be under 256 characters",
            );
        }
    }
    if o.host_process == Some(true) {
        errs.not_supported(
            format!("{path}.hostProcess"),
            "Windows HostProcess containers run only on a Windows node",
        );
    }
    if errs.0.len() == before {
        warnings.push(format!(
            "{path}: ignored: Windows-only options (a Linux node ignores them, as the kubelet does)"
        ));
    }
}
