//! Image references, the content-addressed store, local imports and safe layer unpacking.
//!
//! - [`reference`]: [`ImageRef`] parsing, normalised like docker/Kubernetes.
//! - [`digest`]: the validated [`Digest`] type.
//! - [`store`]: [`Store`], an OCI image layout on disk (`blobs/sha256/<hex>`,
//!   `index.json` naming the images) plus `layers/<diffid-hex>/`, each layer
//!   unpacked once, read-only, for use as an overlayfs lowerdir.
//! - [`import`]: `podman import`-like one-layer images from a rootfs tar or directory.
//! - [`layout`]: `load` of an OCI image layout directory or a tar of one.
//! - [`pull`]: `Store::pull` from OCI/Docker registries (podshim's own client
//!   on reqwest; [`token`]: the bearer token exchange), with
//!   [`registries`] (registries.conf v2: mirrors, rewrites, blocks, short names)
//!   and [`auth`] (auth.json / docker config.json credentials).
//! - [`unpack`]: the safe layer unpacker (no writes outside the layer dir,
//!   whiteouts translated to overlayfs's format).

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

pub mod auth;
pub mod digest;
pub mod exec_limits;
pub mod http;
pub mod import;
pub mod layout;
pub mod lease;
pub mod pull;
pub mod reference;
pub mod registries;
pub mod retry;
pub mod store;
pub mod token;
pub mod unpack;

pub use auth::AuthFiles;
pub use digest::Digest;
pub use import::ImportOptions;
pub use lease::Lease;
pub use pull::{LayerEvent, PullOptions, PullProgress};
pub use registries::RegistriesConf;
pub use store::{ImageSummary, Pruned, Store};

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

/// Errors of the image module. Every variant names the image, blob, layer
/// entry or file involved.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {0} is not in the store (podshim import/load it first)")]
    NotFound(String),
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A blob does not match its descriptor (size or digest), or a layer
    /// does not match its diff_id.
    #[error("image {image}: blob {blob}: {reason}")]
    Verify {
        image: String,
        blob: String,
        reason: String,
    },
    /// A layer entry that would write outside the layer, or is otherwise refused.
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    /// A malformed or unsupported image layout, index, manifest or config.
    #[error("{source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error(
        "{source_name}: image {annotation:?} is named only by a tag; give a NAME (e.g. docker.io/library/app:{annotation})"
    )]
    NeedName {
        source_name: String,
        annotation: String,
    },
    /// A pull that failed: one line naming the image and the registry.
    #[error("pulling {image} from {registry}: {kind}: {detail}")]
    Pull {
        image: String,
        registry: String,
        kind: PullFailure,
        detail: String,
    },
    #[error("{0}")]
    Other(String),
}

/// Why a pull failed, for users and tests to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFailure {
    /// No connection (refused, DNS, TLS, timeout).
    Unreachable,
    /// The registry does not know the repository (NAME_UNKNOWN).
    UnknownRepository,
    /// The repository has no such tag or manifest (MANIFEST_UNKNOWN).
    UnknownManifest,
    /// Credentials missing or refused.
    Unauthorized,
    /// registries.conf blocks the registry.
    Blocked,
    /// An index without a manifest for this host's platform.
    NoMatchingPlatform,
    /// A blob or manifest whose content is not what its descriptor says.
    DigestMismatch,
    /// The pull's deadline passed (`up --timeout`).
    TimedOut,
    /// Anything else the registry or the content did wrong.
    Failed,
}

impl std::fmt::Display for PullFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PullFailure::Unreachable => "registry unreachable",
            PullFailure::UnknownRepository => "repository not found",
            PullFailure::UnknownManifest => "tag or manifest not found",
            PullFailure::Unauthorized => "unauthorized",
            PullFailure::Blocked => "registry blocked",
            PullFailure::NoMatchingPlatform => "no matching platform",
            PullFailure::DigestMismatch => "content does not match its digest",
            PullFailure::TimedOut => "timed out",
            PullFailure::Failed => "failed",
        })
    }
}

impl ImageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ImageError {
        ImageError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn invalid(source_name: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        ImageError::Invalid {
            source_name: source_name.to_string(),
            reason: reason.into(),
        }
    }
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

impl StoredImage {
    /// The layer directories in overlayfs `lowerdir=` order (topmost first),
    /// joined with ':'.
    pub fn overlay_lowerdir(&self) -> String {
        self.layer_dirs
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Refuses an image of more layers than a rootfs overlay stacks
/// ([`crate::bundle::overlay::MAX_LOWER_LAYERS`]): such an image could never
/// run, and fetching and unpacking its layers would only fill the store. Pull
/// and load check it right after parsing the manifest.
pub(crate) fn check_layer_count(layers: usize) -> Result<(), String> {
    let max = crate::bundle::overlay::MAX_LOWER_LAYERS;
    if layers > max {
        return Err(format!(
            "{layers} layers, more than the {max} an overlay rootfs stacks"
        ));
    }
    Ok(())
}

/// The OCI name (GOARCH) of this host's architecture, as written in image
/// configs and index platforms (image-spec config.md: "architecture").
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        other => other,
    }
}
