//! `podman import`-like: a one-layer image from a rootfs tar (optionally
//! gzip/zstd compressed) or a directory.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oci_spec::image::{Descriptor, MediaType};

use super::digest::{HashingReader, HashingWriter};
use super::store::Compression;
use super::{Digest, ImageError, ImageRef, Store, StoredImage, host_arch};

/// The image config's execution parameters (image-spec config.md `config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

impl Store {
    /// Make a one-layer image from `src` (a rootfs tar, optionally gzip or
    /// zstd compressed, or a directory) and name it `name`.
    ///
    /// A directory is tarred deterministically (sorted names, its own
    /// modes/owners/mtimes, hardlinks kept, devices/fifos/sockets left out)
    /// and gzip'd; an uncompressed tar is gzip'd; a compressed one is
    /// stored as is.
    pub fn import(
        &self,
        src: &Path,
        name: &ImageRef,
        opts: &ImportOptions,
    ) -> Result<StoredImage, ImageError> {
        let image = name.to_string();
        if name.digest.is_some() {
            return Err(ImageError::InvalidReference {
                reference: image,
                reason: "an imported image gets a new digest; name it by tag".into(),
            });
        }
        let meta = fs::metadata(src).map_err(|e| ImageError::io(src, e))?;
        let _lock = self.lock_exclusive()?;
        let tmpdir = self.root().join("tmp");

        // (uncompressed tar to gzip, or already compressed blob), diff_id
        let (blob, size, compression, diff_id) = if meta.is_dir() {
            let tmp = tempfile::tempfile_in(&tmpdir).map_err(|e| ImageError::io(&tmpdir, e))?;
            let mut w = HashingWriter::new(BufWriter::new(tmp));
            tar_dir(src, &mut w).map_err(|e| ImageError::io(src, e))?;
            let (buf, diff_id, _) = w.finish();
            let mut tmp = buf
                .into_inner()
                .map_err(|e| ImageError::io(&tmpdir, e.into_error()))?;
            tmp.rewind().map_err(|e| ImageError::io(&tmpdir, e))?;
            let (blob, size) = self.put_gzip(tmp, &image)?;
            (blob, size, Compression::Gzip, diff_id)
        } else {
            let open = || File::open(src).map_err(|e| ImageError::io(src, e));
            let mut head = [0u8; 4];
            let n = read_head(&mut open()?, &mut head).map_err(|e| ImageError::io(src, e))?;
            let compression = Compression::sniff(&head[..n]);
            let dec = compression
                .decoder(BufReader::new(open()?))
                .map_err(|e| ImageError::io(src, e))?;
            let (diff_id, _) = HashingReader::new(dec)
                .finish()
                .map_err(|e| ImageError::io(src, e))?;
            match compression {
                Compression::None => {
                    let (blob, size) = self.put_gzip(open()?, &image)?;
                    (blob, size, Compression::Gzip, diff_id)
                }
                c => {
                    let (blob, size) = self.put_blob(&mut BufReader::new(open()?), None, &image)?;
                    (blob, size, c, diff_id)
                }
            }
        };
        let layer_media_type = match compression {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        };
        self.ensure_layer(&blob, compression, &diff_id, &image)?;

        let created = rfc3339_now();
        let mut exec = serde_json::Map::new();
        if let Some(e) = &opts.entrypoint {
            exec.insert("Entrypoint".into(), e.clone().into());
        }
        if let Some(c) = &opts.cmd {
            exec.insert("Cmd".into(), c.clone().into());
        }
        if !opts.env.is_empty() {
            exec.insert("Env".into(), opts.env.clone().into());
        }
        if let Some(w) = &opts.workdir {
            exec.insert("WorkingDir".into(), w.clone().into());
        }
        if let Some(u) = &opts.user {
            exec.insert("User".into(), u.clone().into());
        }
        let config = serde_json::json!({
            "created": created,
            "architecture": host_arch(),
            "os": "linux",
            "config": exec,
            "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
            "history": [{ "created": created, "created_by": "podshim import" }],
        });
        let config = serde_json::to_vec(&config).expect("config serialises");
        let config_digest = self.put_blob_bytes(&config, &image)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len() },
            "layers": [{ "mediaType": layer_media_type.to_string(), "digest": blob.to_string(), "size": size }],
        });
        let manifest = serde_json::to_vec(&manifest).expect("manifest serialises");
        let manifest_digest = self.put_blob_bytes(&manifest, &image)?;
        let desc = descriptor(OCI_MANIFEST, &manifest_digest, manifest.len() as u64)?;
        self.tag(name, desc.clone())?;
        self.stored(&image, &desc)
    }

    /// gzip `r` (deterministically: no name, mtime 0) into a new blob.
    fn put_gzip(&self, r: impl Read, image: &str) -> Result<(Digest, u64), ImageError> {
        let mut gz =
            flate2::read::GzEncoder::new(BufReader::new(r), flate2::Compression::default());
        self.put_blob(&mut gz, None, image)
    }
}

pub(crate) fn descriptor(
    media_type: &str,
    d: &Digest,
    size: u64,
) -> Result<Descriptor, ImageError> {
    let digest = oci_spec::image::Digest::try_from(d.to_string()).map_err(|e| {
        ImageError::InvalidDigest {
            digest: d.to_string(),
            reason: e.to_string(),
        }
    })?;
    Ok(Descriptor::new(MediaType::from(media_type), size, digest))
}

fn read_head(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Tar `dir` deterministically: names sorted bytewise, relative (`./` for
/// the root, `a/b` below), numeric owners, no atime/ctime, hardlinks as
/// links to the first name seen. Devices, fifos and sockets are left out
/// (the unpacker would skip them anyway).
pub(crate) fn tar_dir(dir: &Path, out: &mut impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let root_meta = fs::symlink_metadata(dir)?;
    let mut h = header_for(&root_meta);
    b.append_data(&mut h, "./", io::empty())?;
    let mut seen: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    walk(&mut b, dir, &mut Vec::new(), &mut seen)?;
    b.finish()
}

fn header_for(meta: &fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_username("").ok();
    h.set_groupname("").ok();
    h
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    rel: &mut Vec<u8>,
    seen: &mut HashMap<(u64, u64), Vec<u8>>,
) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for n in names {
        let path = dir.join(&n);
        let meta = fs::symlink_metadata(&path)?;
        let base_len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(n.as_bytes());
        let name = Path::new(std::ffi::OsStr::from_bytes(rel));
        let ft = meta.file_type();
        let mut h = header_for(&meta);
        if ft.is_dir() {
            b.append_data(&mut h, name, io::empty())?;
            walk(b, &path, rel, seen)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)?;
            h.set_size(0);
            b.append_link(&mut h, name, &target)?;
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            match seen.get(&key) {
                Some(first) if meta.nlink() > 1 => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    let first = Path::new(std::ffi::OsStr::from_bytes(first)).to_path_buf();
                    b.append_link(&mut h, name, &first)?;
                }
                _ => {
                    if meta.nlink() > 1 {
                        seen.insert(key, rel.clone());
                    }
                    b.append_data(&mut h, name, File::open(&path)?)?;
                }
            }
        } else {
            tracing::warn!(path = %path.display(), "import: device, fifo or socket left out");
        }
        rel.truncate(base_len);
    }
    Ok(())
}

/// Now as RFC 3339 UTC (`2024-01-02T03:04:05Z`), without a date crate.
pub(crate) fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    rfc3339(secs)
}

fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
