//! Shared by `generate` and `up`: a manifest's images looked up in the store.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::image::{ImageRef, Store, StoredImage};
use crate::manifest::PodManifest;
use crate::translate::ImageInfo;

/// The pod's images: by the manifest's own image strings (for the translator) and
/// by normalised name (for the bundle writer).
pub struct PodImages {
    pub infos: BTreeMap<String, ImageInfo>,
    pub stored: BTreeMap<String, StoredImage>,
}

pub fn resolve_images(manifest: &PodManifest, store: &Store) -> Result<PodImages> {
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
        let reference = ImageRef::parse(written)
            .with_context(|| format!("container {:?}: image {written:?}", c.name))?;
        match store.get(&reference) {
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
            Err(e) => missing.push(format!("container {:?}: {e}", c.name)),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!("{}", missing.join("\n  "));
    }
    Ok(PodImages { infos, stored })
}
