//! Leases: what a pod (or a `generate` output) is made of, recorded in the store
//! so that `prune` and `rmi` never remove it (containerd's leases, which CRI uses
//! for the same purpose). A new `pull`/`load`/`import` under an image's name moves
//! the name, not a running pod's layers.
//!
//! `<store>/leases/<id>.json` names its holder, the directory of the pod's run plan,
//! and the manifests it uses. A lease whose holder directory is gone (the pod was
//! removed by other means, or `/run` was wiped by a reboot) is stale, and `prune`
//! drops it.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::store::Store;
use super::{Digest, ImageError};

/// The largest lease file read (its holder path and a digest per image).
const MAX_LEASE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lease {
    /// The directory of the run plan that uses the images.
    pub holder: PathBuf,
    /// `(name, manifest digest)` of each image, the name for messages only.
    pub images: Vec<(String, String)>,
}

impl Store {
    fn leases_dir(&self) -> PathBuf {
        self.root().join("leases")
    }

    /// One file per holder: named by a hash of its path.
    fn lease_path(&self, holder: &Path) -> PathBuf {
        let hash = Sha256::digest(holder.as_os_str().as_encoded_bytes());
        self.leases_dir()
            .join(format!("{}.json", hex::encode(&hash[..16])))
    }

    /// Records that `holder` uses `images` (name, manifest digest), replacing its
    /// previous lease. Fails, recording nothing, if one of them is no longer whole in
    /// the store (a `prune` ran after it was looked up): the caller has mounted
    /// nothing yet and can say so.
    pub fn lease(&self, holder: &Path, images: &[(String, String)]) -> Result<(), ImageError> {
        // Shared: `prune`/`rmi` (exclusive) either ran before, and the check below
        // sees what they removed, or run after, and see this lease.
        let _lock = self.lock_shared()?;
        for (name, digest) in images {
            let d = Digest::parse(digest)?;
            self.stored_digest(name, &d).map_err(|e| {
                ImageError::Other(format!(
                    "image {name} ({digest}) is no longer whole in the store: {e}"
                ))
            })?;
        }
        let dir = self.leases_dir();
        crate::fsutil::mkdir_mode(&dir, 0o700).map_err(|e| ImageError::io(&dir, e))?;
        let lease = Lease {
            holder: holder.to_path_buf(),
            images: images.to_vec(),
        };
        let path = self.lease_path(holder);
        let text = serde_json::to_vec_pretty(&lease).expect("a lease serializes");
        crate::fsutil::write_atomic(&path, &text, 0o600).map_err(|e| ImageError::io(&path, e))
    }

    /// Drops `holder`'s lease, if it has one.
    pub fn release(&self, holder: &Path) -> Result<(), ImageError> {
        let path = self.lease_path(holder);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io(&path, e)),
        }
    }

    /// Every lease, with whether its holder still exists.
    pub fn leases(&self) -> Result<Vec<(PathBuf, Lease, bool)>, ImageError> {
        let dir = self.leases_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ImageError::io(&dir, e))?;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = crate::fsutil::read_regular(&path, MAX_LEASE_BYTES)
                .map_err(|e| ImageError::invalid(path.display(), e.to_string()))?;
            let lease: Lease = serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::invalid(path.display(), e.to_string()))?;
            let live = lease.holder.is_dir();
            out.push((path, lease, live));
        }
        Ok(out)
    }

    /// The holders of live leases on the manifest `digest`.
    pub fn lease_holders(&self, digest: &str) -> Result<Vec<PathBuf>, ImageError> {
        Ok(self
            .leases()?
            .into_iter()
            .filter(|(_, lease, live)| *live && lease.images.iter().any(|(_, d)| d == digest))
            .map(|(_, lease, _)| lease.holder)
            .collect())
    }

    /// The manifests live leases hold, for the collector (which holds the exclusive
    /// lock); stale leases are removed. Returns (name, digest) pairs and how many
    /// stale leases went.
    pub(crate) fn leased_manifests(&self) -> Result<(Vec<(String, Digest)>, usize), ImageError> {
        let mut held = Vec::new();
        let mut seen = HashSet::new();
        let mut stale = 0;
        for (path, lease, live) in self.leases()? {
            if !live {
                fs::remove_file(&path).map_err(|e| ImageError::io(&path, e))?;
                stale += 1;
                continue;
            }
            for (name, digest) in lease.images {
                let d = Digest::parse(&digest)?;
                if seen.insert(d.to_string()) {
                    held.push((name, d));
                }
            }
        }
        Ok((held, stale))
    }
}
