//! Shared by `generate` and `up`: a manifest's images, from the store, pulled
//! first when Kubernetes' imagePullPolicy says so.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::image::{ImageError, ImageRef, PullFailure, PullOptions, Store, StoredImage};
use crate::manifest::PodManifest;
use crate::translate::ImageInfo;

/// The pod's images: by the manifest's own image strings (for the translator) and
/// by normalised name (for the bundle writer).
pub struct PodImages {
    pub infos: BTreeMap<String, ImageInfo>,
    pub stored: BTreeMap<String, StoredImage>,
}

/// Kubernetes' imagePullPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The policy as written, else Kubernetes' default (SetDefaults_Container
    /// in pkg/apis/core/v1/defaults.go): `Always` for the `latest` tag or no
    /// tag, `IfNotPresent` otherwise (so also for a digest-only reference).
    pub fn for_image(written: &str, explicit: Option<&str>) -> Result<PullPolicy> {
        Ok(match explicit {
            Some("Always") => PullPolicy::Always,
            Some("IfNotPresent") => PullPolicy::IfNotPresent,
            Some("Never") => PullPolicy::Never,
            Some(other) => bail!("imagePullPolicy {other:?}: not Always, IfNotPresent or Never"),
            None => {
                let r = ImageRef::parse(written)?;
                // parse() gives `latest` to a name with neither tag nor digest.
                if r.tag.as_deref() == Some("latest") {
                    PullPolicy::Always
                } else {
                    PullPolicy::IfNotPresent
                }
            }
        })
    }
}

/// The manifest's images, pulling per policy, with registries.conf from
/// `registries_conf` (`--registries-conf`, else the system's) and progress on stderr.
pub fn resolve_images(
    manifest: &PodManifest,
    store: &Store,
    registries_conf: Option<&Path>,
) -> Result<PodImages> {
    let mut opts = PullOptions::system(registries_conf)?;
    opts.progress = Some(Arc::new(super::pull::Progress::new()));
    resolve_images_with(manifest, store, &opts)
}

/// [`resolve_images`] with explicit pull options.
pub fn resolve_images_with(
    manifest: &PodManifest,
    store: &Store,
    opts: &PullOptions,
) -> Result<PodImages> {
    let mut infos = BTreeMap::new();
    let mut stored = BTreeMap::new();
    let spec = manifest.pod.spec.as_ref();
    let containers = spec
        .into_iter()
        .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers));
    let mut missing = Vec::new();
    for c in containers {
        let Some(written) = c.image.as_deref() else {
            continue;
        };
        if infos.contains_key(written) {
            continue;
        }
        let what = || format!("container {:?}: image {written:?}", c.name);
        let policy =
            PullPolicy::for_image(written, c.image_pull_policy.as_deref()).with_context(what)?;
        match image_for(store, written, policy, opts) {
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
            Err(e) => missing.push(format!("container {:?}: {e:#}", c.name)),
        }
    }
    if !missing.is_empty() {
        bail!("{}", missing.join("\n  "));
    }
    Ok(PodImages { infos, stored })
}

fn image_for(
    store: &Store,
    written: &str,
    policy: PullPolicy,
    opts: &PullOptions,
) -> Result<StoredImage> {
    let present = match store.get_name(written, &opts.registries) {
        Ok(image) => Some(image),
        Err(ImageError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    match (policy, present) {
        (PullPolicy::Never, Some(image)) | (PullPolicy::IfNotPresent, Some(image)) => Ok(image),
        (PullPolicy::Never, None) => bail!(
            "image {written} is not in the store and imagePullPolicy is Never (podshim pull it first)"
        ),
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
            Err(e) => Err(e.into()),
        },
        (_, None) => Ok(store.pull_name(written, opts)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults_follow_kubernetes() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases: &[(&str, Option<&str>, PullPolicy)] = &[
            ("nginx", None, PullPolicy::Always),
            ("nginx:latest", None, PullPolicy::Always),
            ("nginx:1.25", None, PullPolicy::IfNotPresent),
            ("nginx:1.25", Some("Always"), PullPolicy::Always),
            ("nginx", Some("Never"), PullPolicy::Never),
            ("nginx", Some("IfNotPresent"), PullPolicy::IfNotPresent),
        ];
        for (image, explicit, want) in cases {
            assert_eq!(
                PullPolicy::for_image(image, *explicit).unwrap(),
                *want,
                "{image} {explicit:?}"
            );
        }
        assert_eq!(
            PullPolicy::for_image(&format!("nginx@{d}"), None).unwrap(),
            PullPolicy::IfNotPresent
        );
        assert!(PullPolicy::for_image("nginx", Some("Sometimes")).is_err());
    }
}
