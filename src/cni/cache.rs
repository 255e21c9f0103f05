//! The result cache (SPEC.md "Section 3: Execution of Network Configurations",
//! "the runtime must ... store the result of ADD"; libcni's layout and format, so
//! that `cnitool` and libcni-based tools read podshim's entries):
//! `<cacheDir>/results/<network>-<containerID>-<ifname>`, a `cniCacheV1` JSON object
//! with the configuration (base64), the CNI_ARGS, the capability arguments and the
//! final result.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fsutil;

/// libcni's default cache directory.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/cni";
/// A cache entry holds a configuration and a result: far below this.
pub const MAX_CACHE_BYTES: u64 = 2 << 20;
const KIND: &str = "cniCacheV1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub kind: String,
    #[serde(rename = "containerId")]
    pub container_id: String,
    /// The configuration list as ADD used it, base64 as Go writes a `[]byte`.
    #[serde(with = "b64")]
    pub config: Vec<u8>,
    #[serde(rename = "ifName")]
    pub if_name: String,
    #[serde(rename = "networkName")]
    pub network_name: String,
    #[serde(rename = "cniArgs", default)]
    pub cni_args: Vec<[String; 2]>,
    #[serde(rename = "capabilityArgs", default)]
    pub capability_args: Map<String, Value>,
    pub result: Value,
}

impl CacheEntry {
    pub fn new(
        network: &str,
        container_id: &str,
        ifname: &str,
        config: &[u8],
        cni_args: Vec<[String; 2]>,
        capability_args: Map<String, Value>,
        result: Value,
    ) -> CacheEntry {
        CacheEntry {
            kind: KIND.to_string(),
            container_id: container_id.to_string(),
            config: config.to_vec(),
            if_name: ifname.to_string(),
            network_name: network.to_string(),
            cni_args,
            capability_args,
            result,
        }
    }
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("CNI result cache {}: {problem}", path.display())]
    Read { path: PathBuf, problem: String },
    #[error("CNI result cache {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The entry's path. The three parts were checked to be file-name safe
/// (identifiers and an interface name without `/`).
pub fn path(cache_dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    cache_dir
        .join("results")
        .join(format!("{network}-{container_id}-{ifname}"))
}

/// Written to a temporary file and renamed: a DEL after a crash reads the whole
/// entry or none. 0600 in a 0700 directory: the configuration may hold secrets.
pub fn write(path: &Path, entry: &CacheEntry) -> Result<(), CacheError> {
    let err = |source| CacheError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().expect("a cache path has a directory");
    if !dir.is_dir() {
        fsutil::mkdir_mode(dir, 0o700).map_err(err)?;
    }
    let bytes = serde_json::to_vec(entry).expect("JSON values serialize");
    fsutil::write_atomic(path, &bytes, 0o600).map_err(err)
}

/// The entry, `None` if there is none.
pub fn read(path: &Path) -> Result<Option<CacheEntry>, CacheError> {
    let problem = |problem: String| CacheError::Read {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = match fsutil::read_regular(path, MAX_CACHE_BYTES) {
        Ok(bytes) => bytes,
        Err(fsutil::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(problem(e.to_string())),
    };
    let entry: CacheEntry = serde_json::from_slice(&bytes).map_err(|e| problem(e.to_string()))?;
    if entry.kind != KIND {
        return Err(problem(format!("kind {:?} is not {KIND:?}", entry.kind)));
    }
    Ok(Some(entry))
}

/// The entries of `container_id` on `ifname`, whatever their network: what a DEL
/// needs when the pod's plan is gone. Network names may hold `-`, so entries are
/// matched by their suffix and then by what they say of themselves.
/// An entry that cannot be read is skipped with a warning naming it: DEL must not
/// be stopped by a broken cache.
pub fn find(cache_dir: &Path, container_id: &str, ifname: &str) -> Vec<(PathBuf, CacheEntry)> {
    let dir = cache_dir.join("results");
    let suffix = format!("-{container_id}-{ifname}");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!("{}: {e}; no cached CNI result is used", dir.display());
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(&suffix) {
            continue;
        }
        let path = entry.path();
        match read(&path) {
            Ok(Some(e)) if e.container_id == container_id && e.if_name == ifname => {
                found.push((path, e))
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("{e}; skipped"),
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

pub fn remove(path: &Path) -> Result<(), CacheError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CacheError::Write {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The base64 of `bytes`, as the cache writes its configuration (for tests).
pub fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn entries_are_written_as_libcni_does_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "net", "ns_pod", "eth0");
        assert_eq!(p, dir.path().join("results/net-ns_pod-eth0"));
        assert_eq!(read(&p).unwrap(), None);
        let entry = CacheEntry::new(
            "net",
            "ns_pod",
            "eth0",
            b"{\"name\":\"net\"}",
            vec![["K8S_POD_NAME".into(), "pod".into()]],
            Map::new(),
            json!({"cniVersion": "1.0.0"}),
        );
        write(&p, &entry).unwrap();
        let on_disk: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(on_disk["kind"], "cniCacheV1");
        assert_eq!(on_disk["containerId"], "ns_pod");
        assert_eq!(on_disk["config"], encode(b"{\"name\":\"net\"}"));
        assert_eq!(on_disk["cniArgs"], json!([["K8S_POD_NAME", "pod"]]));
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read(&p).unwrap(), Some(entry));
        remove(&p).unwrap();
        remove(&p).unwrap();
        assert_eq!(read(&p).unwrap(), None);
    }

    #[test]
    fn a_corrupt_or_oversized_entry_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "net", "c", "eth0");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "{").unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("net-c-eth0"));
        std::fs::write(&p, vec![b' '; MAX_CACHE_BYTES as usize + 1]).unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("too large"));
    }
}
