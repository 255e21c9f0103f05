//! Image references, the content-addressed store, local imports and safe layer unpacking.

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

/// A normalised image reference, like Kubernetes/docker:
/// `busybox` → `docker.io/library/busybox:latest`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`, validated.
    pub digest: Option<String>,
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {0} is not in the store (podshim import/load it first)")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

/// An image in the store, ready to be turned into a rootfs.
#[derive(Debug, Clone)]
pub struct StoredImage {
    pub name: ImageRef,
    pub manifest_digest: String,
    pub config: ImageConfiguration,
    /// Unpacked, read-only layer directories, lowest first.
    pub layer_dirs: Vec<PathBuf>,
}
