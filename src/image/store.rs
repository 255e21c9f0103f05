//! The content-addressed image store.
//!
//! ```text
//! <root>/oci-layout, index.json   an OCI image layout: index.json lists one manifest
//!                                 descriptor per name (annotation org.opencontainers.image.ref.name
//!                                 = the full normalised reference), so skopeo/umoci can read it
//! <root>/blobs/sha256/<hex>       verified blobs (manifests, configs, compressed layers)
//! <root>/layers/<diffid-hex>/     each layer unpacked once, read-only, an overlay lowerdir
//! <root>/tmp/                     blobs being written (renamed into blobs/ once verified)
//! <root>/lock                     flock: exclusive for import/load/remove/prune, shared for
//!                                 get/list and for the whole of a pull (pulls run side by side;
//!                                 nothing is collected while one is under way)
//! <root>/names.lock               flock: exclusive around a pull's read-modify-write of index.json
//! ```
//!
//! Nothing is half-stored: a blob is written to `tmp/`, verified (size and
//! sha256 against its descriptor), then renamed; a layer is unpacked into
//! `layers/.tmp-*` beside its final place, its diff_id verified, then renamed.
//! A name only points at a manifest once everything it references is in place.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::digest::{HashingReader, HashingWriter};
use super::unpack::unpack_layer;
use super::{Digest, ImageError, ImageRef, StoredImage};

/// OCI image-spec annotations.md: the name of a manifest in an index.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// One line of `podshim images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub name: ImageRef,
    /// Manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// Bytes of the manifest, config and (compressed) layer blobs.
    pub size: u64,
    /// The config's `created`, RFC 3339, when it has one.
    pub created: Option<String>,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Blob files (manifests, configs, layers).
    pub blobs: usize,
    /// Bytes of those blobs.
    pub blob_bytes: u64,
    /// Unpacked layer directories.
    pub layers: usize,
    /// Leftovers of interrupted writes (in tmp/ and layers/.tmp-*).
    pub temporary: usize,
    /// Leases whose holder is gone.
    pub stale_leases: usize,
}

/// The image store under one root directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Held for the duration of a store operation.
pub(crate) struct StoreLock {
    _lock: Flock<File>,
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// OCI (image-spec media-types.md) and Docker schema2 layer media types.
    pub(crate) fn from_media_type(mt: &str) -> Option<Compression> {
        match mt {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// From the first bytes of a stream (gzip: 1f 8b; zstd frame: 28 b5 2f fd).
    pub(crate) fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub(crate) fn decoder<'a, R: Read + 'a>(self, r: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

/// Reads `inner` until `stop` is set, then fails.
pub(crate) struct StopReader<'a, R> {
    pub(crate) inner: R,
    pub(crate) stop: &'a AtomicBool,
}

impl<R: Read> Read for StopReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            // Not `Interrupted`: io::copy would read again.
            return Err(io::Error::other("the pull was stopped"));
        }
        self.inner.read(buf)
    }
}

fn mkdir_private(p: &Path) -> Result<(), ImageError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| ImageError::io(p, e))?;
    // DirBuilder's mode is masked by the umask and ignored for existing dirs.
    fs::set_permissions(p, fs::Permissions::from_mode(0o700)).map_err(|e| ImageError::io(p, e))
}

/// Write `bytes` to `path` atomically: a temp file beside it, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| ImageError::io(dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| ImageError::io(tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| ImageError::io(path, e.error))?;
    Ok(())
}

impl Store {
    /// Open (creating if needed, mode 0700) the store at `root`.
    pub fn open(root: &Path) -> Result<Store, ImageError> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for d in [
            root.to_path_buf(),
            root.join("blobs"),
            root.join("blobs/sha256"),
            root.join("layers"),
            root.join("tmp"),
        ] {
            mkdir_private(&d)?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Where the layer with this diff_id is (or would be) unpacked.
    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    fn lock(&self, arg: FlockArg) -> Result<StoreLock, ImageError> {
        self.lock_file("lock", arg)
    }

    fn lock_file(&self, name: &str, arg: FlockArg) -> Result<StoreLock, ImageError> {
        let p = self.root.join(name);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| ImageError::io(&p, e))?;
        let lock = Flock::lock(f, arg).map_err(|(_, e)| ImageError::io(&p, e.into()))?;
        Ok(StoreLock { _lock: lock })
    }

    pub(crate) fn lock_exclusive(&self) -> Result<StoreLock, ImageError> {
        self.lock(FlockArg::LockExclusive)
    }

    pub(crate) fn lock_shared(&self) -> Result<StoreLock, ImageError> {
        self.lock(FlockArg::LockShared)
    }

    /// Serialises index.json updates among pulls, which hold the store lock
    /// only shared.
    pub(crate) fn lock_names(&self) -> Result<StoreLock, ImageError> {
        self.lock_file("names.lock", FlockArg::LockExclusive)
    }

    pub(crate) fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Copy a blob from `r` into the store, verifying it against
    /// `expected` (digest and size) when given. `image` names it in errors.
    pub(crate) fn put_blob(
        &self,
        r: &mut dyn Read,
        expected: Option<(&Digest, u64)>,
        image: &str,
    ) -> Result<(Digest, u64), ImageError> {
        let tmpdir = self.root.join("tmp");
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&tmpdir)
            .map_err(|e| ImageError::io(&tmpdir, e))?;
        let mut w = HashingWriter::new(io::BufWriter::new(tmp));
        // Read at most one byte more than expected: enough to know it is too big.
        let copied = match expected {
            Some((_, size)) => io::copy(&mut r.take(size.saturating_add(1)), &mut w),
            None => io::copy(r, &mut w),
        };
        let what = expected.map_or_else(|| "(new blob)".to_string(), |(d, _)| d.to_string());
        copied.map_err(|e| ImageError::Verify {
            image: image.to_string(),
            blob: what.clone(),
            reason: format!("reading: {e}"),
        })?;
        let (buf, digest, size) = w.finish();
        let tmp = buf
            .into_inner()
            .map_err(|e| ImageError::io(&tmpdir, e.into_error()))?;
        if let Some((want, want_size)) = expected {
            if size != want_size {
                return Err(ImageError::Verify {
                    image: image.to_string(),
                    blob: want.to_string(),
                    reason: format!(
                        "size mismatch: descriptor says {want_size} bytes, content has {}",
                        if size > want_size {
                            "more".to_string()
                        } else {
                            size.to_string()
                        }
                    ),
                });
            }
            if &digest != want {
                return Err(ImageError::Verify {
                    image: image.to_string(),
                    blob: want.to_string(),
                    reason: format!("digest mismatch: content is {digest}"),
                });
            }
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| ImageError::io(tmp.path(), e))?;
        let dst = self.blob_path(&digest);
        tmp.persist(&dst)
            .map_err(|e| ImageError::io(&dst, e.error))?;
        Ok((digest, size))
    }

    pub(crate) fn put_blob_bytes(&self, bytes: &[u8], image: &str) -> Result<Digest, ImageError> {
        let d = Digest::of_bytes(bytes);
        if !self.has_blob(&d) {
            self.put_blob(&mut &bytes[..], Some((&d, bytes.len() as u64)), image)?;
        }
        Ok(d)
    }

    pub(crate) fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let p = self.blob_path(d);
        fs::read(&p).map_err(|e| ImageError::io(&p, e))
    }

    /// Unpack the stored layer blob `blob` (compressed as `compression`)
    /// unless `layers/<diff_id>` already exists, verifying the uncompressed
    /// content against `diff_id`.
    pub(crate) fn ensure_layer(
        &self,
        blob: &Digest,
        compression: Compression,
        diff_id: &Digest,
        image: &str,
    ) -> Result<PathBuf, ImageError> {
        self.ensure_layer_until(blob, compression, diff_id, image, &AtomicBool::new(false))
    }

    /// [`Store::ensure_layer`], which stops (an error, its temporary
    /// directory removed) soon after `stop` is set: a pull whose deadline
    /// passed does not go on writing a large layer out (its runtime, which
    /// cannot cancel a blocking thread, waits for it, and so does `up`).
    pub(crate) fn ensure_layer_until(
        &self,
        blob: &Digest,
        compression: Compression,
        diff_id: &Digest,
        image: &str,
        stop: &AtomicBool,
    ) -> Result<PathBuf, ImageError> {
        let dst = self.layer_path(diff_id);
        if dst.is_dir() {
            return Ok(dst);
        }
        let layers = self.root.join("layers");
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&layers)
            .map_err(|e| ImageError::io(&layers, e))?;
        let src = self.blob_path(blob);
        let f = File::open(&src).map_err(|e| ImageError::io(&src, e))?;
        let dec = compression
            .decoder(io::BufReader::new(f))
            .map_err(|e| ImageError::io(&src, e))?;
        // Checked on the decompressed side: a few KiB of gzip may be MiBs
        // of layer.
        let mut hr = HashingReader::new(StopReader { inner: dec, stop });
        unpack_layer(&mut hr, tmp.path(), &blob.to_string())?;
        let (got, _) = hr.finish().map_err(|e| ImageError::Verify {
            image: image.to_string(),
            blob: blob.to_string(),
            reason: format!("decompressing: {e}"),
        })?;
        if &got != diff_id {
            return Err(ImageError::Verify {
                image: image.to_string(),
                blob: blob.to_string(),
                reason: format!(
                    "uncompressed content is {got}, but the config's rootfs.diff_ids says {diff_id}"
                ),
            });
        }
        let tmp_path = tmp.keep();
        match fs::rename(&tmp_path, &dst) {
            Ok(()) => Ok(dst),
            // Someone else finished the same layer first: theirs is identical.
            Err(e) if dst.is_dir() => {
                tracing::debug!(layer = %dst.display(), error = %e, "layer already unpacked");
                let _ = fs::remove_dir_all(&tmp_path);
                Ok(dst)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp_path);
                Err(ImageError::io(&dst, e))
            }
        }
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// name → manifest descriptor, from index.json.
    pub(crate) fn read_names(&self) -> Result<BTreeMap<String, Descriptor>, ImageError> {
        let p = self.index_path();
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(ImageError::io(&p, e)),
        };
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::invalid(p.display(), e.to_string()))?;
        let mut out = BTreeMap::new();
        for d in index.manifests() {
            if let Some(name) = d
                .annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME_ANNOTATION))
            {
                out.insert(name.clone(), d.clone());
            }
        }
        Ok(out)
    }

    pub(crate) fn write_names(
        &self,
        names: &BTreeMap<String, Descriptor>,
    ) -> Result<(), ImageError> {
        let manifests: Vec<serde_json::Value> = names
            .iter()
            .map(|(name, d)| {
                let mut d = d.clone();
                d.set_annotations(Some(HashMap::from([(
                    REF_NAME_ANNOTATION.to_string(),
                    name.clone(),
                )])));
                serde_json::to_value(d).expect("descriptor serialises")
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec_pretty(&index).expect("index serialises");
        write_atomic(&self.index_path(), &bytes)
    }

    /// Point `name` at the stored manifest described by `desc`. Caller holds
    /// the exclusive lock, and everything the manifest references is stored.
    pub(crate) fn tag(&self, name: &ImageRef, desc: Descriptor) -> Result<(), ImageError> {
        let mut names = self.read_names()?;
        names.insert(name.to_string(), desc);
        self.write_names(&names)
    }

    /// Find the stored name for `name`: exact, or for a digest reference any
    /// name of the same repository whose manifest has that digest.
    fn lookup(
        names: &BTreeMap<String, Descriptor>,
        name: &ImageRef,
    ) -> Option<(String, Descriptor)> {
        let exact = name.to_string();
        if let Some(d) = names.get(&exact) {
            return Some((exact, d.clone()));
        }
        let digest = name.digest.as_deref()?;
        names.iter().find_map(|(n, d)| {
            let r = ImageRef::parse(n).ok()?;
            (r.registry == name.registry
                && r.repository == name.repository
                && d.digest().to_string() == digest
                && name.tag.as_ref().is_none_or(|t| r.tag.as_ref() == Some(t)))
            .then(|| (n.clone(), d.clone()))
        })
    }

    fn manifest(&self, image: &str, d: &Digest) -> Result<ImageManifest, ImageError> {
        let bytes = self.read_blob(d)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::invalid(format!("image {image}: manifest {d}"), e.to_string()))
    }

    fn config(&self, image: &str, m: &ImageManifest) -> Result<ImageConfiguration, ImageError> {
        let d = Digest::parse(m.config().digest().as_ref())?;
        let bytes = self.read_blob(&d)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::invalid(format!("image {image}: config {d}"), e.to_string()))
    }

    /// Assemble a [`StoredImage`] from the store (no lock taken).
    pub(crate) fn stored(&self, name: &str, desc: &Descriptor) -> Result<StoredImage, ImageError> {
        self.stored_digest(name, &Digest::parse(desc.digest().as_ref())?)
    }

    /// [`Store::stored`] by manifest digest.
    pub(crate) fn stored_digest(
        &self,
        name: &str,
        mdigest: &Digest,
    ) -> Result<StoredImage, ImageError> {
        let mdigest = mdigest.clone();
        let manifest = self.manifest(name, &mdigest)?;
        let config = self.config(name, &manifest)?;
        let mut layer_dirs = Vec::new();
        for id in config.rootfs().diff_ids() {
            let id = Digest::parse(id)?;
            let p = self.layer_path(&id);
            if !p.is_dir() {
                return Err(ImageError::invalid(
                    format!("image {name}"),
                    format!("layer {} is missing; load the image again", p.display()),
                ));
            }
            layer_dirs.push(p);
        }
        Ok(StoredImage {
            name: ImageRef::parse(name)?,
            manifest_digest: mdigest.to_string(),
            config,
            layer_dirs,
        })
    }

    /// The stored image called `name`.
    pub fn get(&self, name: &ImageRef) -> Result<StoredImage, ImageError> {
        let _lock = self.lock_shared()?;
        let names = self.read_names()?;
        let (n, d) =
            Self::lookup(&names, name).ok_or_else(|| ImageError::NotFound(name.to_string()))?;
        self.stored(&n, &d)
    }

    /// Every name in the store, sorted.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let _lock = self.lock_shared()?;
        let mut out = Vec::new();
        for (name, desc) in self.read_names()? {
            let mdigest = Digest::parse(desc.digest().as_ref())?;
            let manifest = self.manifest(&name, &mdigest)?;
            let config = self.config(&name, &manifest)?;
            let size = desc.size()
                + manifest.config().size()
                + manifest.layers().iter().map(|l| l.size()).sum::<u64>();
            out.push(ImageSummary {
                name: ImageRef::parse(&name)?,
                digest: mdigest.to_string(),
                size,
                created: config.created().clone(),
            });
        }
        Ok(out)
    }

    /// Untag `name`, then delete the blobs and unpacked layers that no
    /// remaining name and no lease (a pod, a `generate` output) references.
    pub fn remove(&self, name: &ImageRef) -> Result<(), ImageError> {
        let _lock = self.lock_exclusive()?;
        let mut names = self.read_names()?;
        let (n, _) =
            Self::lookup(&names, name).ok_or_else(|| ImageError::NotFound(name.to_string()))?;
        names.remove(&n);
        self.write_names(&names)?;
        self.gc(&names).map(|_| ())
    }

    /// Delete every blob and unpacked layer that no name references, and the
    /// leftovers of interrupted pulls and imports. Waits for pulls under way.
    pub fn prune(&self) -> Result<Pruned, ImageError> {
        let _lock = self.lock_exclusive()?;
        let names = self.read_names()?;
        self.gc(&names)
    }

    /// Delete what neither `names` nor a live lease references. Caller holds the
    /// exclusive lock, so no import is half-way (its temp files are garbage too),
    /// and no lease is being taken.
    fn gc(&self, names: &BTreeMap<String, Descriptor>) -> Result<Pruned, ImageError> {
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        let (leased, stale_leases) = self.leased_manifests()?;
        let mut roots: Vec<(String, Digest)> = Vec::new();
        for (name, desc) in names {
            roots.push((name.clone(), Digest::parse(desc.digest().as_ref())?));
        }
        roots.extend(leased);
        for (name, md) in &roots {
            let m = self.manifest(name, md)?;
            blobs.insert(md.hex().to_string());
            blobs.insert(
                Digest::parse(m.config().digest().as_ref())?
                    .hex()
                    .to_string(),
            );
            for l in m.layers() {
                blobs.insert(Digest::parse(l.digest().as_ref())?.hex().to_string());
            }
            for id in self.config(name, &m)?.rootfs().diff_ids() {
                layers.insert(Digest::parse(id)?.hex().to_string());
            }
        }
        let mut pruned = Pruned {
            stale_leases,
            ..Pruned::default()
        };
        let mut sweep = |dir: &Path, keep: &HashSet<String>| -> Result<(), ImageError> {
            for e in fs::read_dir(dir).map_err(|e| ImageError::io(dir, e))? {
                let e = e.map_err(|e| ImageError::io(dir, e))?;
                let fname = e.file_name().to_string_lossy().into_owned();
                if keep.contains(&fname) {
                    continue;
                }
                let p = e.path();
                let is_dir = e.file_type().map_err(|e| ImageError::io(&p, e))?.is_dir();
                let temporary = fname.starts_with('.') || dir.ends_with("tmp");
                if temporary {
                    pruned.temporary += 1;
                } else if is_dir {
                    pruned.layers += 1;
                } else {
                    pruned.blobs += 1;
                    pruned.blob_bytes += e.metadata().map_or(0, |m| m.len());
                }
                let r = if is_dir {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                r.map_err(|e| ImageError::io(&p, e))?;
                tracing::debug!(path = %p.display(), "removed unreferenced");
            }
            Ok(())
        };
        sweep(&self.root.join("blobs/sha256"), &blobs)?;
        sweep(&self.root.join("layers"), &layers)?;
        sweep(&self.root.join("tmp"), &HashSet::new())?;
        Ok(pruned)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
