//! A pod's images, from the store, pulled first when Kubernetes' imagePullPolicy
//! says so.

use std::collections::BTreeMap;
use std::path::Path;

use super::PodError;
use crate::bundle::resolve::{self, ResolveError, Scope};
use crate::image::{ImageError, PullFailure, PullOptions, Store, StoredImage};
use crate::model::{Pod, PullPolicy, SeccompProfile};
use crate::translate::ImageInfo;

/// The kubelet's default seccomp profile root (`<root-dir>/seccomp`).
pub const DEFAULT_SECCOMP_ROOT: &str = "/var/lib/kubelet/seccomp";

/// The largest seccomp profile read (a profile is a few KiB; the kernel's filter
/// limit is far below this).
const MAX_PROFILE: u64 = 1 << 20;

/// The Localhost seccomp profiles the pod's containers name, by `localhostProfile`:
/// each resolved inside `root` component by component (`bundle::resolve`, no
/// symlink out of the root: the kubelet's filepath.Join would follow one) and read
/// bounded, a regular file only. Privileged containers get no seccomp filter
/// (containerd), so their profiles are not read. Every problem names its field.
pub fn seccomp_profiles(pod: &Pod, root: &Path) -> Result<BTreeMap<String, String>, PodError> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for c in pod
        .spec
        .containers
        .iter()
        .filter(|c| !c.security.privileged)
    {
        let SeccompProfile::Localhost { path, field } = &c.security.seccomp else {
            continue;
        };
        if out.contains_key(path.as_str()) {
            continue;
        }
        let shown = root.join(path.as_str()).display().to_string();
        let components: Vec<&str> = path.components().collect();
        let scope = Scope::Beneath {
            host_root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
        };
        let read = match resolve::resolve(root, &components, &scope, None) {
            Ok(r) => resolve::read_resolved(r, &shown, MAX_PROFILE),
            Err(ResolveError::Escapes(link)) => Err(format!(
                "{link} is a symlink leading outside the seccomp profile root {}",
                root.display()
            )),
            Err(e) => Err(format!(
                "{e} (in the seccomp profile root {})",
                root.display()
            )),
        };
        match read.and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8 text"))
        }) {
            Ok(text) => {
                out.insert(path.to_string(), text);
            }
            Err(why) => problems.push(format!(
                "{field}: Invalid value: {:?}: cannot load seccomp profile: {why}",
                path.as_str()
            )),
        }
    }
    if !problems.is_empty() {
        return Err(PodError::SeccompProfile {
            pod: pod.key.clone(),
            problems,
        });
    }
    Ok(out)
}

/// The pod's images: by the manifest's own image strings (for the translator) and
/// by normalised name (for the bundle writer).
pub struct PodImages {
    pub infos: BTreeMap<String, ImageInfo>,
    pub stored: BTreeMap<String, StoredImage>,
}

/// The pod's images, each pulled when its pull policy says so (registries.conf,
/// credentials and progress from `opts`). Every image that cannot be had is named,
/// all at once.
pub fn prepare(pod: &Pod, store: &Store, opts: &PullOptions) -> Result<PodImages, PodError> {
    let mut infos = BTreeMap::new();
    let mut stored = BTreeMap::new();
    let mut missing = Vec::new();
    for c in &pod.spec.containers {
        let written = c.image.written.as_str();
        if infos.contains_key(written) {
            continue;
        }
        match image_for(store, written, c.pull_policy, opts) {
            Ok(image) => {
                let name = image.name.to_string();
                infos.insert(
                    written.to_string(),
                    ImageInfo {
                        name: name.clone(),
                        config: image.config.clone(),
                    },
                );
                stored.insert(name, image);
            }
            Err(e) => missing.push(format!("container {:?}: {e}", c.name.as_str())),
        }
    }
    if !missing.is_empty() {
        return Err(PodError::Images(missing.join("\n  ")));
    }
    Ok(PodImages { infos, stored })
}

fn image_for(
    store: &Store,
    written: &str,
    policy: PullPolicy,
    opts: &PullOptions,
) -> Result<StoredImage, ImageError> {
    let present = match store.get_name(written, &opts.registries) {
        Ok(image) => Some(image),
        Err(ImageError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    match (policy, present) {
        (PullPolicy::Never, Some(image)) | (PullPolicy::IfNotPresent, Some(image)) => Ok(image),
        (PullPolicy::Never, None) => Err(ImageError::Other(format!(
            "image {written} is not in the store and imagePullPolicy is Never (podshim pull it first)"
        ))),
        // podman's convention: `localhost/NAME` names a locally built or
        // imported image, with no registry to pull it from.
        (PullPolicy::Always, Some(image)) if image.name.registry == "localhost" => Ok(image),
        (PullPolicy::Always, Some(image)) => match store.pull_name(written, opts) {
            Ok(pulled) => Ok(pulled),
            Err(ImageError::Pull {
                kind: PullFailure::Unreachable,
                ..
            }) => {
                // Offline on one machine: run what is there, and say so.
                eprintln!(
                    "warning: image {written}: registry unreachable; using the stored {} ({})",
                    image.name, image.manifest_digest
                );
                Ok(image)
            }
            Err(e) => Err(e),
        },
        (_, None) => store.pull_name(written, opts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn pod(profile: &str, privileged: bool) -> Pod {
        crate::manifest::parse(
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: x\n    securityContext:\n      privileged: {privileged}\n      seccompProfile: {{type: Localhost, localhostProfile: {profile}}}\n"
            ),
            "t",
        )
        .unwrap()
        .pod
    }

    #[test]
    fn localhost_profiles_are_read_inside_the_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("seccomp");
        std::fs::create_dir_all(root.join("profiles")).unwrap();
        std::fs::write(
            root.join("profiles/deny.json"),
            r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#,
        )
        .unwrap();
        std::fs::write(tmp.path().join("outside.json"), "{}").unwrap();
        symlink("../../outside.json", root.join("profiles/out.json")).unwrap();
        symlink("/etc/passwd", root.join("abs.json")).unwrap();
        symlink("deny.json", root.join("profiles/in.json")).unwrap();

        let read = seccomp_profiles(&pod("profiles/deny.json", false), &root).unwrap();
        assert_eq!(
            read["profiles/deny.json"],
            r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#
        );
        // A link that stays inside the root is followed there.
        assert!(seccomp_profiles(&pod("profiles/in.json", false), &root).is_ok());
        // A privileged container gets no filter: its profile is not read.
        assert!(
            seccomp_profiles(&pod("missing.json", true), &root)
                .unwrap()
                .is_empty()
        );
        let field = "spec.containers[0].securityContext.seccompProfile.localhostProfile";
        for (profile, why) in [
            ("profiles/out.json", "outside the seccomp profile root"),
            ("abs.json", "outside the seccomp profile root"),
            ("missing.json", "does not exist"),
            ("profiles", "is a directory"),
        ] {
            let err = seccomp_profiles(&pod(profile, false), &root).unwrap_err();
            assert!(err.is_invalid_input());
            let msg = err.to_string();
            assert!(msg.contains(field) && msg.contains(why), "{profile}: {msg}");
        }
    }
}
