//! A pod's images, from the store, pulled first when Kubernetes' imagePullPolicy
//! says so.

use std::collections::BTreeMap;

use super::PodError;
use crate::image::{ImageError, PullFailure, PullOptions, Store, StoredImage};
use crate::model::{Pod, PullPolicy};
use crate::translate::ImageInfo;

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
