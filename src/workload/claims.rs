//! Local volumes for PersistentVolumeClaims: one directory per namespace and
//! claim under the store (`<store>/volumes/<ns>/<claim>/`: `claim.json`, the
//! claim as first made, and `data/`, what pods mount), made from a claim document
//! or on first use, kept when pods go (`down` keeps them, as a cluster keeps a
//! bound PV with its data), removed only by `podshim volume rm` while no pod uses
//! them.
//!
//! Names are parsed (`DnsLabel`, `DnsSubdomain`: no `/`, no `..`) before they
//! become paths, and every directory is opened without following a link: the
//! store is podshim's, but nothing here trusts what a container may have put in a
//! volume's data.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::workload::{AccessMode, Claim};
use crate::model::{DnsLabel, DnsSubdomain};

/// The volumes' directory under the store.
pub const VOLUMES_DIR: &str = "volumes";
/// The most a claim record may be (it is podshim's, but read with a bound).
const MAX_RECORD: u64 = 64 << 10;

/// What `claim.json` holds: the claim as it was first made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimRecord {
    pub namespace: String,
    pub name: String,
    pub access_modes: Vec<AccessMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    pub created_at: String,
    /// No claim document named it: made when a pod first used it.
    #[serde(default)]
    pub made_on_first_use: bool,
    /// The StatefulSet (uid) whose volumeClaimTemplates made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The manifest whose `up` made it (absolute; none for stdin or first
    /// use): a retention policy removes only claims of its own file, since
    /// two files may declare sets of one name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
    /// Its ordinal's pod was condemned by a scale-down under `whenScaled:
    /// Delete`: it goes once no pod uses it (at that `up` or a later one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scaled_away: bool,
}

impl ClaimRecord {
    /// Whether the StatefulSet `owner` (uid) made it by `up` of the file
    /// `manifest`: what a retention policy may act on. Another file's set of
    /// the same name has the same derived uid, and a claim of stdin's or of
    /// no recorded file is no file's.
    pub fn made_by(&self, owner: &str, manifest: Option<&Path>) -> bool {
        self.owner.as_deref() == Some(owner)
            && manifest.is_some()
            && self.manifest.as_deref() == manifest
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("{path}: {action}: {err}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        err: io::Error,
    },
    #[error(
        "PersistentVolumeClaim {namespace}/{name}: spec is immutable after creation except resources.requests (the volume has accessModes {had:?}; the input asks {asked:?}); `podshim volume rm {namespace}/{name}` first"
    )]
    Immutable {
        namespace: String,
        name: String,
        had: Vec<AccessMode>,
        asked: Vec<AccessMode>,
    },
    #[error("PersistentVolumeClaim {0}: not found (podshim volumes lists them)")]
    NotFound(String),
    #[error("PersistentVolumeClaim {claim} is in use by {}: `podshim down` them first", pods.join(", "))]
    InUse { claim: String, pods: Vec<String> },
    #[error(
        "PersistentVolumeClaim {0}: not a directory of podshim's (a link or another file): left alone"
    )]
    NotOurs(PathBuf),
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> ClaimError + use<> {
    let path = path.to_path_buf();
    move |err| ClaimError::Io { path, action, err }
}

/// `<store>/volumes/<ns>/<claim>`.
pub fn claim_dir(store_root: &Path, namespace: &DnsLabel, name: &DnsSubdomain) -> PathBuf {
    store_root
        .join(VOLUMES_DIR)
        .join(namespace.as_str())
        .join(name.as_str())
}

/// What pods mount: `<claim dir>/data`.
pub fn data_dir(store_root: &Path, namespace: &DnsLabel, name: &DnsSubdomain) -> PathBuf {
    claim_dir(store_root, namespace, name).join("data")
}

/// A directory podshim makes (0700 unless `mode` says), never through a link:
/// an existing link or file at `path` is refused.
fn make_dir(path: &Path, mode: u32) -> Result<bool, ClaimError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => Ok(false),
        Ok(_) => Err(ClaimError::NotOurs(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match fs::DirBuilder::new().mode(mode).create(path) {
                Ok(()) => {}
                // Another `up` made it meanwhile.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return make_dir(path, mode),
                Err(e) => return Err(io_err(path, "create directory")(e)),
            }
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(io_err(path, "chmod"))?;
            Ok(true)
        }
        Err(e) => Err(io_err(path, "stat")(e)),
    }
}

/// Makes the claim's volume unless it exists, and returns its data directory.
/// An existing volume must have the access modes the claim asks (a claim's
/// spec is immutable); a claim made on first use (`document: false`) takes any.
/// `manifest` is the file whose `up` declares it.
pub fn ensure(
    store_root: &Path,
    claim: &Claim,
    document: bool,
    manifest: Option<&Path>,
) -> Result<PathBuf, ClaimError> {
    let volumes = store_root.join(VOLUMES_DIR);
    make_dir(&volumes, 0o700)?;
    let ns_dir = volumes.join(claim.namespace.as_str());
    make_dir(&ns_dir, 0o700)?;
    let dir = ns_dir.join(claim.name.as_str());
    make_dir(&dir, 0o755)?;
    let record_path = dir.join("claim.json");
    match read_record(&dir) {
        Ok(Some(had)) => {
            if document && !had.made_on_first_use && had.access_modes != claim.access_modes {
                return Err(ClaimError::Immutable {
                    namespace: claim.namespace.to_string(),
                    name: claim.name.to_string(),
                    had: had.access_modes,
                    asked: claim.access_modes.clone(),
                });
            }
            if document && had.made_on_first_use {
                // The document arrived after a pod made the volume: it now says
                // what the claim is, but the data is not the set's (nor the
                // file's) to remove by a retention policy.
                let adopted = Claim {
                    owner: had.owner.clone(),
                    ..claim.clone()
                };
                write_record(&record_path, &adopted, false, had.manifest.as_deref())?;
            }
        }
        Ok(None) => write_record(
            &record_path,
            claim,
            !document,
            manifest.filter(|_| document),
        )?,
        Err(e) => return Err(e),
    }
    // World-writable like a local-path provisioner's volume, so that a
    // non-root container can write its data.
    let data = dir.join("data");
    make_dir(&data, 0o777)?;
    Ok(data)
}

fn write_record(
    path: &Path,
    claim: &Claim,
    first_use: bool,
    manifest: Option<&Path>,
) -> Result<(), ClaimError> {
    let record = ClaimRecord {
        namespace: claim.namespace.to_string(),
        name: claim.name.to_string(),
        access_modes: claim.access_modes.clone(),
        storage: claim.storage.clone(),
        created_at: crate::state::rfc3339(std::time::SystemTime::now()),
        made_on_first_use: first_use,
        owner: claim.owner.clone(),
        manifest: manifest.map(Path::to_path_buf),
        scaled_away: false,
    };
    store_record(path, &record)
}

/// Writes `claim.json` whole (atomically: a reader sees the old or the new).
fn store_record(path: &Path, record: &ClaimRecord) -> Result<(), ClaimError> {
    let text = serde_json::to_vec_pretty(record).map_err(|e| io_err(path, "encode")(e.into()))?;
    crate::fsutil::write_atomic(path, &text, 0o644).map_err(io_err(path, "write"))
}

fn read_record(dir: &Path) -> Result<Option<ClaimRecord>, ClaimError> {
    let path = dir.join("claim.json");
    match crate::fsutil::read_regular(&path, MAX_RECORD) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_err(&path, "parse")(io::Error::other(e))),
        Err(crate::fsutil::ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path, "read")(io::Error::other(e.to_string()))),
    }
}

/// Marks a volume whose ordinal a scale-down condemned (`scaled_away`), or
/// clears the mark of one whose ordinal came back; under the claim's lock,
/// from its record as it is then (gone meanwhile: nothing to mark).
pub fn set_scaled_away(volume: &Volume, scaled_away: bool) -> Result<(), ClaimError> {
    let _lock = lock(&volume.dir)?;
    let Some(had) = read_record(&volume.dir)? else {
        return Ok(());
    };
    if had.scaled_away == scaled_away {
        return Ok(());
    }
    store_record(
        &volume.dir.join("claim.json"),
        &ClaimRecord { scaled_away, ..had },
    )
}

/// A volume on disk.
#[derive(Debug, Clone)]
pub struct Volume {
    pub record: ClaimRecord,
    pub dir: PathBuf,
}

impl Volume {
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn display(&self) -> String {
        format!("{}/{}", self.record.namespace, self.record.name)
    }
}

/// Every volume under the store, by namespace and name. An entry that is not a
/// directory of podshim's (a link, a name that does not parse) is skipped.
pub fn list(store_root: &Path) -> Vec<Volume> {
    let mut out = Vec::new();
    let volumes = store_root.join(VOLUMES_DIR);
    let Ok(namespaces) = fs::read_dir(&volumes) else {
        return out;
    };
    let mut namespaces: Vec<_> = namespaces.flatten().collect();
    namespaces.sort_by_key(|e| e.file_name());
    for ns in namespaces {
        let Some(ns_name) = ns.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if DnsLabel::parse(&ns_name).is_err() || !ns.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(claims) = fs::read_dir(ns.path()) else {
            continue;
        };
        let mut claims: Vec<_> = claims.flatten().collect();
        claims.sort_by_key(|e| e.file_name());
        for c in claims {
            let ok_name = c
                .file_name()
                .to_str()
                .is_some_and(|n| DnsSubdomain::parse(n).is_ok());
            if !ok_name || !c.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if let Ok(Some(record)) = read_record(&c.path()) {
                out.push(Volume {
                    record,
                    dir: c.path(),
                });
            }
        }
    }
    out
}

/// Finds one volume.
pub fn find(
    store_root: &Path,
    namespace: &DnsLabel,
    name: &DnsSubdomain,
) -> Result<Volume, ClaimError> {
    let dir = claim_dir(store_root, namespace, name);
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.file_type().is_dir() => {}
        Ok(_) => return Err(ClaimError::NotOurs(dir)),
        Err(_) => return Err(ClaimError::NotFound(format!("{namespace}/{name}"))),
    }
    match read_record(&dir)? {
        Some(record) => Ok(Volume { record, dir }),
        None => Err(ClaimError::NotFound(format!("{namespace}/{name}"))),
    }
}

/// The pods under `pods_root` (the state root's `pods/`) whose plans bind
/// `data`, as `ns/name`; `except` (a pod directory) is not counted.
pub fn users(
    pods_root: &Path,
    data: &Path,
    except: Option<&Path>,
    active_only: bool,
) -> Vec<String> {
    let Ok(entries) = fs::read_dir(pods_root) else {
        return Vec::new();
    };
    let pods: Vec<(PathBuf, Option<crate::state::PodState>)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|d| Some(d.as_path()) != except)
        .map(|d| {
            let state = crate::state::read(&d).ok();
            (d, state)
        })
        .collect();
    users_in(&pods, data, active_only)
}

/// Of the pod directories `pods` (each with its state, if it has one), those
/// whose plans bind `data`.
fn users_in(
    pods: &[(PathBuf, Option<crate::state::PodState>)],
    data: &Path,
    active_only: bool,
) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    // The data directory by device and inode: a plan may spell the store's
    // path otherwise (a link, `..`).
    let id = |p: &Path| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let want = id(data);
    let binds = |path: &Path| path == data || (want.is_some() && id(path) == want);
    let mut out = Vec::new();
    for (dir, state) in pods {
        if active_only
            && state.as_ref().is_some_and(|s| {
                matches!(
                    s.phase,
                    crate::state::PodPhase::Succeeded | crate::state::PodPhase::Failed
                )
            })
        {
            continue;
        }
        // The plan is in the pod directory, or in the `generate` output that
        // `up --from` runs.
        let plan_dir = state.as_ref().map_or(dir.clone(), |s| s.bundle_dir.clone());
        match crate::run_plan::read(&plan_dir) {
            Ok(plan) => {
                if plan.setup.iter().any(
                    |s| matches!(s, crate::run_plan::SetupStep::HostPath { path, .. } if binds(path)),
                ) {
                    out.push(format!("{}/{}", plan.namespace, plan.name));
                }
            }
            // A pod being written (its plan comes last) or whose plan cannot be
            // read may use it: counted, by its directory.
            Err(_) => out.push(format!("the pod in {}", dir.display())),
        }
    }
    out.sort();
    out
}

/// The pods under `pods_root` other than `pod` (`ns/name`) that have `data`
/// mounted: started (a container of theirs ran, so their setup did), not
/// ended, and binding it in their plans. What a pod's start asks before it
/// gives the volume its fsGroup.
pub fn mounted_by(pods_root: &Path, data: &Path, pod: &str) -> Vec<String> {
    use crate::state::{ContainerState, PodPhase};
    let started = |s: &crate::state::PodState| {
        // One whose supervisor died is counted too: its containers may still
        // run (runc's outlive it), and leaving a shared volume's ownership
        // alone is the safe way.
        !matches!(s.phase, PodPhase::Succeeded | PodPhase::Failed)
            && s.containers
                .iter()
                .any(|c| !matches!(c.state, ContainerState::Waiting { .. }))
    };
    let Ok(entries) = fs::read_dir(pods_root) else {
        return Vec::new();
    };
    let pods: Vec<(PathBuf, Option<crate::state::PodState>)> = entries
        .flatten()
        .map(|e| e.path())
        .filter_map(|d| {
            let state = crate::state::read(&d).ok().filter(started)?;
            Some((d, Some(state)))
        })
        .collect();
    // A started pod's plan is there to read; one that cannot be read is
    // counted (the walk is skipped, the safe way for a shared volume).
    users_in(&pods, data, true)
        .into_iter()
        .filter(|u| u != pod)
        .collect()
}

/// Removes a volume and its data, after `users` (the pods whose plans mount its
/// data) came back empty, under the volume's lock so that no `up` makes it use
/// while it goes.
pub fn remove(volume: &Volume, users: impl FnOnce(&Path) -> Vec<String>) -> Result<(), ClaimError> {
    let _lock = lock(&volume.dir)?;
    let pods = users(&volume.data());
    if !pods.is_empty() {
        return Err(ClaimError::InUse {
            claim: volume.display(),
            pods,
        });
    }
    // A mount left under the data (a Bidirectional propagation's) is not
    // podshim's to descend into.
    match crate::bundle::mounts_under(&volume.dir) {
        Ok(m) if m.is_empty() => {}
        Ok(m) => {
            return Err(ClaimError::InUse {
                claim: volume.display(),
                pods: m
                    .iter()
                    .map(|p| format!("a mount at {}", p.display()))
                    .collect(),
            });
        }
        Err(e) => return Err(io_err(&volume.dir, "read the mounts under")(e)),
    }
    // remove_dir_all does not follow links (std's fix for CVE-2022-21658), so
    // whatever a container left in the data stays inside it.
    fs::remove_dir_all(&volume.dir).map_err(io_err(&volume.dir, "remove"))
}

/// The volume's lock (flock(2) on `<claim dir>/lock`), held until dropped: by
/// `volume rm`, and by `up` from its check of the claim's users until the pod's
/// plan is written.
pub fn lock(dir: &Path) -> Result<nix::fcntl::Flock<fs::File>, ClaimError> {
    // Beside the claim's directory, not in it: `volume rm` removes the
    // directory while it holds the lock, and a waiter must not then hold a
    // lock on a file no one else can open.
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let path = dir.with_file_name(format!(".{name}.lock"));
    match crate::fsutil::lock_file(&path, true) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(io_err(&path, "lock")(io::Error::from(
            io::ErrorKind::WouldBlock,
        ))),
        Err(e) => Err(io_err(&path, "lock")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, modes: &[AccessMode]) -> Claim {
        Claim {
            namespace: DnsLabel::parse("default").unwrap(),
            name: DnsSubdomain::parse(name).unwrap(),
            access_modes: modes.to_vec(),
            storage: Some("1Gi".into()),
            owner: None,
        }
    }

    #[test]
    fn a_claim_gets_a_data_directory_that_outlives_a_second_ensure() {
        let store = tempfile::tempdir().unwrap();
        let c = claim("data", &[AccessMode::ReadWriteOnce]);
        let data = ensure(store.path(), &c, true, None).unwrap();
        assert_eq!(data, store.path().join("volumes/default/data/data"));
        fs::write(data.join("kept"), "x").unwrap();
        assert_eq!(ensure(store.path(), &c, true, None).unwrap(), data);
        assert_eq!(fs::read_to_string(data.join("kept")).unwrap(), "x");
        let mode = fs::metadata(&data).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o777);
        let vols = list(store.path());
        assert_eq!(vols.len(), 1);
        assert_eq!(vols[0].display(), "default/data");
        assert!(!vols[0].record.made_on_first_use);
    }

    #[test]
    fn a_claim_document_cannot_change_the_access_modes_of_its_volume() {
        let store = tempfile::tempdir().unwrap();
        ensure(
            store.path(),
            &claim("d", &[AccessMode::ReadWriteOnce]),
            true,
            None,
        )
        .unwrap();
        let err = ensure(
            store.path(),
            &claim("d", &[AccessMode::ReadWriteOncePod]),
            true,
            None,
        )
        .unwrap_err();
        assert!(matches!(err, ClaimError::Immutable { .. }), "{err}");
        // A pod's use without a document takes the volume as it is.
        ensure(
            store.path(),
            &claim("d", &[AccessMode::ReadWriteOncePod]),
            false,
            None,
        )
        .unwrap();
    }

    #[test]
    fn a_volume_first_made_by_a_pod_takes_the_document_that_follows() {
        let store = tempfile::tempdir().unwrap();
        ensure(
            store.path(),
            &claim("d", &[AccessMode::ReadWriteOnce]),
            false,
            None,
        )
        .unwrap();
        assert!(list(store.path())[0].record.made_on_first_use);
        ensure(
            store.path(),
            &claim("d", &[AccessMode::ReadWriteOncePod]),
            true,
            None,
        )
        .unwrap();
        let v = &list(store.path())[0];
        assert!(!v.record.made_on_first_use);
        assert_eq!(v.record.access_modes, vec![AccessMode::ReadWriteOncePod]);
    }

    #[test]
    fn a_set_adopting_a_volume_a_pod_made_does_not_own_it_but_owns_those_it_makes() {
        let store = tempfile::tempdir().unwrap();
        let file = Path::new("/srv/web.yaml");
        ensure(
            store.path(),
            &claim("data-web-0", &[AccessMode::ReadWriteOnce]),
            false,
            None,
        )
        .unwrap();
        let of_set = |name: &str| Claim {
            owner: Some("uid-web".into()),
            ..claim(name, &[AccessMode::ReadWriteOnce])
        };
        ensure(store.path(), &of_set("data-web-0"), true, Some(file)).unwrap();
        ensure(store.path(), &of_set("data-web-1"), true, Some(file)).unwrap();
        let records: Vec<_> = list(store.path())
            .into_iter()
            .map(|v| (v.record.name, v.record.owner, v.record.manifest))
            .collect();
        assert_eq!(
            records,
            [
                ("data-web-0".to_string(), None, None),
                (
                    "data-web-1".to_string(),
                    Some("uid-web".to_string()),
                    Some(file.to_path_buf())
                ),
            ]
        );
    }

    #[test]
    fn a_link_where_a_volume_goes_is_refused_not_followed() {
        let store = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fs::create_dir_all(store.path().join("volumes/default")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), store.path().join("volumes/default/d"))
            .unwrap();
        let err = ensure(
            store.path(),
            &claim("d", &[AccessMode::ReadWriteOnce]),
            true,
            None,
        )
        .unwrap_err();
        assert!(matches!(err, ClaimError::NotOurs(_)), "{err}");
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn remove_is_refused_while_a_pod_uses_the_volume_and_keeps_the_data() {
        let store = tempfile::tempdir().unwrap();
        let data = ensure(
            store.path(),
            &claim("d", &[AccessMode::ReadWriteOnce]),
            true,
            None,
        )
        .unwrap();
        fs::write(data.join("f"), "x").unwrap();
        let v = find(
            store.path(),
            &DnsLabel::parse("default").unwrap(),
            &DnsSubdomain::parse("d").unwrap(),
        )
        .unwrap();
        let err = remove(&v, |p| {
            assert_eq!(p, data);
            vec!["default/web".into()]
        })
        .unwrap_err();
        assert!(err.to_string().contains("in use by default/web"), "{err}");
        assert!(data.join("f").exists());
        remove(&v, |_| vec![]).unwrap();
        assert!(!v.dir.exists());
        assert!(list(store.path()).is_empty());
    }

    #[test]
    fn remove_does_not_follow_a_link_a_container_left_in_the_data() {
        let store = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("precious"), "x").unwrap();
        let data = ensure(
            store.path(),
            &claim("d", &[AccessMode::ReadWriteOnce]),
            true,
            None,
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), data.join("escape")).unwrap();
        let v = &list(store.path())[0];
        remove(v, |_| vec![]).unwrap();
        assert!(outside.path().join("precious").exists());
    }
}
