//! Projected volume files (configMap, secret, downwardAPI) written the kubelet's
//! way (pkg/volume/util/atomic_writer.go): the files go into a fresh
//! `..<timestamp>.<random>` directory, `..data` is a symlink to it put in place by
//! rename, and each top-level name is a symlink `name -> ..data/name`. A reader
//! sees all of one version or all of the next, never a mix, and applications that
//! watch `..data` to reload (as they do on a cluster) find it.

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::SystemTime;

use super::{BundleError, io_err};
use crate::translate::ProjectedFile;

/// The data symlink readers follow.
pub const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";
/// The timestamped directory's mode (the AtomicWriter chmods it to 0755; the
/// files in it have their own modes).
const TS_DIR_MODE: u32 = 0o755;

/// Writes `files` into the volume directory `dir` (which must be podshim's own,
/// fresh or written by this function before). Paths are the model's `RelPath`s:
/// relative, no `..`, never starting with `..` (validation), so none can name the
/// writer's own entries.
///
/// With `group` (the pod's `fsGroup`), everything written is given that group as
/// the kubelet's SetVolumeOwnership does for a read-only volume: files gain
/// group read (`| 0440`), directories group read and search and the setgid bit
/// (`| 2550`), symlinks are lchown'd and never chmod'ed (that would change their
/// target).
pub fn write(
    dir: &Path,
    files: &[ProjectedFile],
    now: SystemTime,
    group: Option<u32>,
) -> Result<(), BundleError> {
    fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
    let prefix = format!("..{}.", crate::logs::format_atomic_writer(now));
    let ts = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(9)
        .tempdir_in(dir)
        .map_err(io_err(dir, "create the data directory"))?
        .keep();
    fs::set_permissions(&ts, Permissions::from_mode(TS_DIR_MODE)).map_err(io_err(&ts, "chmod"))?;
    for f in files {
        let path = ts.join(&f.path);
        if let Some(parent) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(TS_DIR_MODE)
                .create(parent)
                .map_err(io_err(parent, "create directory"))?;
        }
        write_new(&path, &f.content, f.mode).map_err(io_err(&path, "write"))?;
    }
    if let Some(gid) = group {
        give_group(&ts, gid)?;
    }
    let ts_name = ts.file_name().expect("a tempdir has a name");
    // Swap `..data` by renaming a new symlink over it: atomic for readers.
    let tmp = dir.join(DATA_TMP);
    let _ = fs::remove_file(&tmp);
    symlink(ts_name, &tmp).map_err(io_err(&tmp, "create symlink"))?;
    if let Some(gid) = group {
        lchown(&tmp, gid)?;
    }
    let data = dir.join(DATA);
    let old = fs::read_link(&data).ok();
    fs::rename(&tmp, &data).map_err(io_err(&data, "rename"))?;
    for top in top_level_names(files) {
        let link = dir.join(&top);
        match symlink(Path::new(DATA).join(&top), &link) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            r => r.map_err(io_err(&link, "create symlink"))?,
        }
        if let Some(gid) = group {
            lchown(&link, gid)?;
        }
    }
    // The previous version, if any, is no longer reachable through `..data`.
    if let Some(old) = old.filter(|o| o.as_os_str() != ts_name) {
        let old = dir.join(old);
        fs::remove_dir_all(&old).map_err(io_err(&old, "remove"))?;
    }
    Ok(())
}

/// The bits SetVolumeOwnership adds on a read-only volume (pkg/volume
/// volume_linux.go: roMask, execMask, ModeSetgid for directories).
const GROUP_FILE_BITS: u32 = 0o440;
const GROUP_DIR_BITS: u32 = 0o2550;

/// Gives `path` (a directory this writer just made, holding only what it wrote)
/// and everything under it the group `gid`.
fn give_group(path: &Path, gid: u32) -> Result<(), BundleError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path, "stat"))?;
    lchown(path, gid)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let bits = if meta.is_dir() {
        GROUP_DIR_BITS
    } else {
        GROUP_FILE_BITS
    };
    fs::set_permissions(path, Permissions::from_mode((meta.mode() & 0o7777) | bits))
        .map_err(io_err(path, "chmod"))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(io_err(path, "read directory"))? {
            let entry = entry.map_err(io_err(path, "read directory"))?;
            give_group(&entry.path(), gid)?;
        }
    }
    Ok(())
}

fn lchown(path: &Path, gid: u32) -> Result<(), BundleError> {
    std::os::unix::fs::lchown(path, None, Some(gid)).map_err(io_err(path, "chown"))
}

fn top_level_names(files: &[ProjectedFile]) -> Vec<String> {
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|f| f.path.split('/').next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn write_new(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(content)?;
    // The umask must not narrow the mode the manifest asked for.
    f.set_permissions(Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn file(path: &str, content: &str, mode: u32) -> ProjectedFile {
        ProjectedFile {
            path: path.into(),
            content: content.into(),
            mode,
        }
    }

    #[test]
    fn with_fs_group_every_entry_has_the_group_and_group_read() {
        if !nix::unistd::geteuid().is_root() {
            return crate::testing::cannot_run("chown to another group needs root");
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sec");
        fs::create_dir(&dir).unwrap();
        write(
            &dir,
            &[file("pw", "x", 0o400), file("sub/k", "y", 0o600)],
            SystemTime::now(),
            Some(2000),
        )
        .unwrap();
        let ts = dir.join(fs::read_link(dir.join(DATA)).unwrap());
        let meta = |p: &Path| fs::symlink_metadata(p).unwrap();
        // 0400 + group read: the kubelet's secret under fsGroup is 0440.
        for (path, mode) in [
            (ts.join("pw"), 0o440),
            (ts.join("sub/k"), 0o640),
            (ts.join("sub"), 0o2755),
            (ts.clone(), 0o2755),
        ] {
            let m = meta(&path);
            assert_eq!((m.gid(), m.mode() & 0o7777), (2000, mode), "{path:?}");
        }
        // The links are the group's too, and still links (not chmod'ed through).
        for link in [dir.join(DATA), dir.join("pw"), dir.join("sub")] {
            let m = meta(&link);
            assert!(m.file_type().is_symlink(), "{link:?}");
            assert_eq!(m.gid(), 2000, "{link:?}");
        }
    }

    #[test]
    fn files_are_reached_through_the_data_symlink_with_their_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cm");
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        write(
            &dir,
            &[file("a", "1", 0o600), file("sub/b", "2", 0o644)],
            at,
            None,
        )
        .unwrap();
        let data = fs::read_link(dir.join(DATA)).unwrap();
        let data = data.to_str().unwrap();
        assert!(data.starts_with("..2023_11_14_22_13_20."), "{data}");
        assert_eq!(fs::read_link(dir.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(
            fs::read_link(dir.join("sub")).unwrap(),
            Path::new("..data/sub")
        );
        assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "1");
        assert_eq!(fs::read_to_string(dir.join("sub/b")).unwrap(), "2");
        let mode = |p: &str| fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("a"), 0o600);
        assert_eq!(mode("sub/b"), 0o644);
        assert_eq!(mode(data), 0o755);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [data, "..data", "a", "sub"]);
    }

    #[test]
    fn a_second_write_swaps_the_data_and_removes_the_old_version() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cm");
        write(&dir, &[file("a", "1", 0o644)], SystemTime::now(), None).unwrap();
        let first = fs::read_link(dir.join(DATA)).unwrap();
        write(&dir, &[file("a", "2", 0o644)], SystemTime::now(), None).unwrap();
        let second = fs::read_link(dir.join(DATA)).unwrap();
        assert_ne!(first, second);
        assert!(!dir.join(&first).exists(), "the old version is gone");
        assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "2");
        assert!(!dir.join(DATA_TMP).exists());
    }

    #[test]
    fn no_files_still_make_the_data_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), &[], SystemTime::now(), None).unwrap();
        assert!(tmp.path().join(DATA).is_dir());
    }
}
