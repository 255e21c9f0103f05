//! `load`: images from an OCI image layout (image-spec image-layout.md), as a
//! directory (`skopeo copy ... oci:DIR:tag`) or a tar of one
//! (`oci-archive:FILE:tag`, read in place without extracting it).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::store::{Compression, REF_NAME_ANNOTATION};
use super::{Digest, ImageError, ImageRef, Store, StoredImage, host_arch};

/// containerd's `ctr export` names images with this annotation.
const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// Manifests, indexes and configs are small; refuse absurd ones before reading
/// (the figure pulls use: [`super::http::MAX_MANIFEST`], containerd's and CRI-O's).
pub(crate) const MAX_JSON: u64 = super::http::MAX_MANIFEST;
/// Nested indexes deeper than this are refused (a loop would never end).
const MAX_DEPTH: usize = 4;

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Where the layout's files come from.
enum Source {
    Dir(PathBuf),
    /// An uncompressed tar and where each regular file's data starts.
    Tar {
        path: PathBuf,
        file: File,
        files: HashMap<String, (u64, u64)>,
    },
}

impl Source {
    fn open(src: &Path, tmpdir: &Path) -> Result<Source, ImageError> {
        let meta = std::fs::metadata(src).map_err(|e| ImageError::io(src, e))?;
        if meta.is_dir() {
            return Ok(Source::Dir(src.to_path_buf()));
        }
        let mut file = File::open(src).map_err(|e| ImageError::io(src, e))?;
        let mut head = [0u8; 4];
        let n = file.read(&mut head).map_err(|e| ImageError::io(src, e))?;
        file.rewind().map_err(|e| ImageError::io(src, e))?;
        let compression = Compression::sniff(&head[..n]);
        if compression != Compression::None {
            // A compressed archive cannot be read in place: decompress it
            // into the store's tmp/ (removed when the File is dropped).
            let mut tmp = tempfile::tempfile_in(tmpdir).map_err(|e| ImageError::io(tmpdir, e))?;
            let mut dec = compression
                .decoder(BufReader::new(file))
                .map_err(|e| ImageError::io(src, e))?;
            io::copy(&mut dec, &mut tmp).map_err(|e| ImageError::io(src, e))?;
            tmp.rewind().map_err(|e| ImageError::io(tmpdir, e))?;
            file = tmp;
        }
        let mut files = HashMap::new();
        {
            let mut archive = tar::Archive::new(&file);
            let entries = archive
                .entries()
                .map_err(|e| ImageError::invalid(src.display(), format!("not a tar: {e}")))?;
            for entry in entries {
                let entry = entry
                    .map_err(|e| ImageError::invalid(src.display(), format!("bad tar: {e}")))?;
                if !matches!(
                    entry.header().entry_type(),
                    tar::EntryType::Regular | tar::EntryType::Continuous
                ) {
                    continue;
                }
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let name = name
                    .trim_start_matches("./")
                    .trim_start_matches('/')
                    .to_string();
                files.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        Ok(Source::Tar {
            path: src.to_path_buf(),
            file,
            files,
        })
    }

    fn display(&self) -> String {
        match self {
            Source::Dir(p) | Source::Tar { path: p, .. } => p.display().to_string(),
        }
    }

    /// A reader for `rel` (e.g. `index.json`, `blobs/sha256/<hex>`) and its size.
    fn open_file(&self, rel: &str) -> Result<(Box<dyn Read + '_>, u64), ImageError> {
        match self {
            Source::Dir(root) => {
                let p = root.join(rel);
                let f = open_regular(&p)?;
                let len = f.metadata().map_err(|e| ImageError::io(&p, e))?.len();
                Ok((Box::new(BufReader::new(f)), len))
            }
            Source::Tar { path, file, files } => {
                let &(off, len) = files.get(rel).ok_or_else(|| {
                    ImageError::io(
                        path.join(rel),
                        io::Error::new(io::ErrorKind::NotFound, "not in the archive"),
                    )
                })?;
                let mut f = file.try_clone().map_err(|e| ImageError::io(path, e))?;
                f.seek(SeekFrom::Start(off))
                    .map_err(|e| ImageError::io(path, e))?;
                Ok((Box::new(BufReader::new(f).take(len)), len))
            }
        }
    }

    fn open_blob(&self, d: &Digest) -> Result<Box<dyn Read + '_>, ImageError> {
        Ok(self.open_file(&format!("blobs/sha256/{}", d.hex()))?.0)
    }

    /// Read a small JSON blob and verify it against its descriptor.
    fn json_blob(&self, desc: &Descriptor, image: &str) -> Result<(Digest, Vec<u8>), ImageError> {
        let d = Digest::parse(desc.digest().as_ref())?;
        if desc.size() > MAX_JSON {
            return Err(ImageError::Verify {
                image: image.to_string(),
                blob: d.to_string(),
                reason: format!(
                    "{} bytes is too large for a manifest or config",
                    desc.size()
                ),
            });
        }
        let mut buf = Vec::new();
        self.open_blob(&d)?
            .take(desc.size() + 1)
            .read_to_end(&mut buf)
            .map_err(|e| {
                ImageError::io(format!("{}/blobs/sha256/{}", self.display(), d.hex()), e)
            })?;
        verify(image, &d, desc.size(), &buf)?;
        Ok((d, buf))
    }
}

/// Opens a file of a layout directory only if it is a regular file
/// ([`crate::fsutil::open_regular`]): a symlink at its last component (to
/// /dev/zero it would read forever), a FIFO (the open would hang) or a device is
/// refused as invalid input.
fn open_regular(p: &Path) -> Result<File, ImageError> {
    crate::fsutil::open_regular(p).map_err(|e| match (e.raw_os_error(), e.kind()) {
        (Some(libc::ELOOP), _) => {
            ImageError::invalid(p.display(), "is a symlink, not a regular file")
        }
        // fsutil's own refusal (an OS error has its errno).
        (None, std::io::ErrorKind::InvalidInput) => {
            ImageError::invalid(p.display(), "not a regular file")
        }
        _ => ImageError::io(p, e),
    })
}

fn verify(image: &str, d: &Digest, size: u64, bytes: &[u8]) -> Result<(), ImageError> {
    if bytes.len() as u64 != size {
        return Err(ImageError::Verify {
            image: image.to_string(),
            blob: d.to_string(),
            reason: format!("size mismatch: descriptor says {size} bytes"),
        });
    }
    let got = Digest::of_bytes(bytes);
    if &got != d {
        return Err(ImageError::Verify {
            image: image.to_string(),
            blob: d.to_string(),
            reason: format!("digest mismatch: content is {got}"),
        });
    }
    Ok(())
}

fn annotation<'a>(d: &'a Descriptor, key: &str) -> Option<&'a String> {
    d.annotations().as_ref().and_then(|a| a.get(key))
}

fn platform_name(d: &Descriptor) -> String {
    match d.platform() {
        Some(p) => {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s.push('/');
                s.push_str(v);
            }
            s
        }
        None => "(no platform)".to_string(),
    }
}

/// From an image index, the manifest for linux and this host's arch. On
/// arm64 a `v8` or absent variant is preferred.
pub(crate) fn pick_platform<'a>(
    index: &'a ImageIndex,
    what: &str,
) -> Result<&'a Descriptor, ImageError> {
    let arch = host_arch();
    let mut matches: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            d.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == "linux" && p.architecture().to_string() == arch
            })
        })
        .collect();
    matches.sort_by_key(|d| {
        let v = d.platform().as_ref().and_then(|p| p.variant().clone());
        !(v.is_none() || v.as_deref() == Some("v8"))
    });
    if let Some(d) = matches.first() {
        return Ok(d);
    }
    // An index with one platform-less manifest (some tools write that).
    if let [only] = index.manifests().as_slice() {
        if only.platform().is_none() {
            return Ok(only);
        }
    }
    let available: Vec<String> = index.manifests().iter().map(platform_name).collect();
    Err(ImageError::invalid(
        what,
        format!(
            "no manifest for linux/{arch}; the index has: {}",
            available.join(", ")
        ),
    ))
}

/// The name an index entry gives itself, if any usable one.
fn entry_name(d: &Descriptor, src: &str) -> Result<Option<ImageRef>, ImageError> {
    let Some(ann) =
        annotation(d, REF_NAME_ANNOTATION).or_else(|| annotation(d, CONTAINERD_NAME_ANNOTATION))
    else {
        return Ok(None);
    };
    // image-spec annotations.md: ref.name is usually only a tag ("latest"),
    // which names nothing by itself.
    if !ann.contains('/') && !ann.contains(':') && !ann.contains('@') {
        return Err(ImageError::NeedName {
            source_name: src.to_string(),
            annotation: ann.clone(),
        });
    }
    ImageRef::parse(ann).map(Some)
}

impl Store {
    /// Load the images of an OCI image layout (directory, or tar of one,
    /// possibly gzip/zstd compressed). Without `name`, each top-level entry
    /// of index.json must be named by a full reference in its
    /// `org.opencontainers.image.ref.name` annotation. With `name`, the
    /// layout's only image (or the one whose annotation is `name` or its tag)
    /// is loaded under `name`.
    pub fn load(
        &self,
        src: &Path,
        name: Option<&ImageRef>,
    ) -> Result<Vec<StoredImage>, ImageError> {
        let _lock = self.lock_exclusive()?;
        let source = Source::open(src, &self.root().join("tmp"))?;
        let sname = source.display();
        let (r, len) = source.open_file("index.json")?;
        let too_large = || {
            ImageError::invalid(
                format!("{sname}: index.json"),
                format!("more than the {MAX_JSON} bytes accepted"),
            )
        };
        if len > MAX_JSON {
            return Err(too_large());
        }
        // The file may grow while it is read: the bound holds whatever stat said.
        let mut buf = Vec::new();
        r.take(MAX_JSON + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ImageError::io(src.join("index.json"), e))?;
        if buf.len() as u64 > MAX_JSON {
            return Err(too_large());
        }
        let index: ImageIndex = serde_json::from_slice(&buf)
            .map_err(|e| ImageError::invalid(format!("{sname}: index.json"), e.to_string()))?;
        if index.manifests().is_empty() {
            return Err(ImageError::invalid(&sname, "index.json lists no images"));
        }

        let targets: Vec<(ImageRef, &Descriptor)> = match name {
            Some(n) => {
                let all = index.manifests();
                let chosen = if all.len() == 1 {
                    &all[0]
                } else {
                    let want = n.to_string();
                    all.iter()
                        .find(|d| {
                            annotation(d, REF_NAME_ANNOTATION)
                                .or_else(|| annotation(d, CONTAINERD_NAME_ANNOTATION))
                                .is_some_and(|a| {
                                    *a == want
                                        || Some(a) == n.tag.as_ref()
                                        || ImageRef::parse(a).is_ok_and(|r| r == *n)
                                })
                        })
                        .ok_or_else(|| {
                            ImageError::invalid(
                                &sname,
                                format!(
                                    "the layout has {} images and none is named {want} or {}",
                                    all.len(),
                                    n.tag.as_deref().unwrap_or("(no tag)")
                                ),
                            )
                        })?
                };
                vec![(n.clone(), chosen)]
            }
            None => index
                .manifests()
                .iter()
                .map(|d| match entry_name(d, &sname)? {
                    Some(n) => Ok((n, d)),
                    None => Err(ImageError::invalid(
                        &sname,
                        format!(
                            "image {} has no {REF_NAME_ANNOTATION} annotation; give a NAME",
                            d.digest()
                        ),
                    )),
                })
                .collect::<Result<_, _>>()?,
        };

        let mut out = Vec::new();
        for (name, desc) in targets {
            out.push(self.load_one(&source, &name, desc)?);
        }
        Ok(out)
    }

    fn load_one(
        &self,
        source: &Source,
        name: &ImageRef,
        top: &Descriptor,
    ) -> Result<StoredImage, ImageError> {
        let image = name.to_string();
        // Follow (nested) indexes down to one image manifest.
        let mut desc = top.clone();
        let mut depth = 0;
        let (mdigest, mbytes) = loop {
            let mt = desc.media_type().to_string();
            let (d, bytes) = source.json_blob(&desc, &image)?;
            match mt.as_str() {
                OCI_INDEX | DOCKER_LIST => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(ImageError::invalid(
                            format!("image {image}"),
                            "image indexes nested too deeply",
                        ));
                    }
                    let idx: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
                        ImageError::invalid(format!("image {image}: index {d}"), e.to_string())
                    })?;
                    desc = pick_platform(&idx, &format!("image {image}: index {d}"))?.clone();
                }
                OCI_MANIFEST | DOCKER_MANIFEST => break (d, bytes),
                other => {
                    return Err(ImageError::invalid(
                        format!("image {image}: {d}"),
                        format!(
                            "unsupported media type {other:?} (want an OCI or Docker schema2 manifest or index)"
                        ),
                    ));
                }
            }
        };
        if let Some(want) = &name.digest {
            if *want != mdigest.to_string() {
                return Err(ImageError::Verify {
                    image: image.clone(),
                    blob: mdigest.to_string(),
                    reason: format!("the reference asks for manifest {want}"),
                });
            }
        }
        let manifest: ImageManifest = serde_json::from_slice(&mbytes).map_err(|e| {
            ImageError::invalid(format!("image {image}: manifest {mdigest}"), e.to_string())
        })?;
        super::check_layer_count(manifest.layers().len())
            .map_err(|e| ImageError::invalid(format!("image {image}: manifest {mdigest}"), e))?;
        let (cdigest, cbytes) = source.json_blob(manifest.config(), &image)?;
        let config: ImageConfiguration = serde_json::from_slice(&cbytes).map_err(|e| {
            ImageError::invalid(format!("image {image}: config {cdigest}"), e.to_string())
        })?;
        super::exec_limits::check_config(&config).map_err(|e| {
            ImageError::invalid(format!("image {image}: config {cdigest}"), e.to_string())
        })?;
        if config.os().to_string() != "linux" {
            return Err(ImageError::invalid(
                format!("image {image}"),
                format!("image is for os {}, not linux", config.os()),
            ));
        }
        if config.architecture().to_string() != host_arch() {
            tracing::warn!(image = %image, arch = %config.architecture(), host = host_arch(), "image is for another architecture");
        }
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(ImageError::invalid(
                format!("image {image}: config {cdigest}"),
                format!(
                    "{} rootfs.diff_ids for {} layers",
                    diff_ids.len(),
                    manifest.layers().len()
                ),
            ));
        }
        for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let ld = Digest::parse(layer.digest().as_ref())?;
            let diff_id = Digest::parse(diff_id)?;
            let mt = layer.media_type().to_string();
            let compression = Compression::from_media_type(&mt).ok_or_else(|| {
                ImageError::invalid(
                    format!("image {image}: layer {ld}"),
                    format!("unsupported layer media type {mt:?}"),
                )
            })?;
            if !self.has_blob(&ld) {
                let mut r = source.open_blob(&ld)?;
                self.put_blob(&mut r, Some((&ld, layer.size())), &image)?;
            }
            self.ensure_layer(&ld, compression, &diff_id, &image)?;
        }
        self.put_blob_bytes(&cbytes, &image)?;
        self.put_blob_bytes(&mbytes, &image)?;
        let mt = desc.media_type().to_string();
        let stored_desc = super::import::descriptor(&mt, &mdigest, mbytes.len() as u64)?;
        self.tag(name, stored_desc.clone())?;
        self.stored(&image, &stored_desc)
    }
}
