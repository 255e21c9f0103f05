//! One test per attack and per whiteout rule. Malicious tars are built with
//! raw header names: `tar::Header::set_path` refuses `..`, an attacker's tool
//! does not.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::{OPAQUE_XATTR, get_xattr, unpack_layer};
use crate::image::ImageError;

/// A tar built entry by entry with names written straight into the header.
pub(crate) struct RawTar {
    b: tar::Builder<Vec<u8>>,
}

impl RawTar {
    pub(crate) fn new() -> Self {
        RawTar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(name: &[u8], etype: EntryType, link: Option<&[u8]>, size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name);
            if let Some(l) = link {
                gnu.linkname[..l.len()].copy_from_slice(l);
            }
        }
        h.set_entry_type(etype);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000_000);
        h.set_cksum();
        h
    }

    pub(crate) fn dir(mut self, name: &str) -> Self {
        let h = Self::header(name.as_bytes(), EntryType::Directory, None, 0, 0o755);
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub(crate) fn file(mut self, name: &str, data: &[u8]) -> Self {
        let h = Self::header(
            name.as_bytes(),
            EntryType::Regular,
            None,
            data.len() as u64,
            0o644,
        );
        self.b.append(&h, data).unwrap();
        self
    }

    pub(crate) fn symlink(mut self, name: &str, target: &str) -> Self {
        let h = Self::header(
            name.as_bytes(),
            EntryType::Symlink,
            Some(target.as_bytes()),
            0,
            0o777,
        );
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub(crate) fn hardlink(mut self, name: &str, target: &str) -> Self {
        let h = Self::header(
            name.as_bytes(),
            EntryType::Link,
            Some(target.as_bytes()),
            0,
            0o644,
        );
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub(crate) fn special(mut self, name: &str, etype: EntryType) -> Self {
        let h = Self::header(name.as_bytes(), etype, None, 0, 0o644);
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    /// A custom header (owner, mode, mtime) for a regular file.
    pub(crate) fn file_with(
        mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    ) -> Self {
        let mut h = Self::header(
            name.as_bytes(),
            EntryType::Regular,
            None,
            data.len() as u64,
            mode,
        );
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    /// A PAX extended header applying to the next entry.
    pub(crate) fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body_len = 1 + k.len() + 1 + v.len() + 1; // " k=v\n"
            let mut len = body_len + 1;
            while len.to_string().len() + body_len != len {
                len = len.to_string().len() + body_len;
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let h = Self::header(
            b"././@PaxHeader",
            EntryType::XHeader,
            None,
            data.len() as u64,
            0o644,
        );
        self.b.append(&h, &data[..]).unwrap();
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A scratch area: `<tmp>/layer` (empty, to unpack into) and `<tmp>/outside`
/// (must stay untouched).
struct Scratch {
    _tmp: tempfile::TempDir,
    layer: PathBuf,
    outside: PathBuf,
}

fn scratch() -> Scratch {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    let outside = tmp.path().join("outside");
    fs::create_dir(&layer).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    Scratch {
        _tmp: tmp,
        layer,
        outside,
    }
}

fn unpack(s: &Scratch, tar: &[u8]) -> Result<(), ImageError> {
    unpack_layer(&mut &tar[..], &s.layer, "test-layer")
}

/// Everything outside the layer is as `scratch()` made it.
fn assert_outside_untouched(s: &Scratch) {
    let mut names: Vec<_> = fs::read_dir(&s.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
    let m = fs::symlink_metadata(s.outside.join("secret")).unwrap();
    assert!(m.is_file());
    assert_eq!(m.nlink(), 1);
    assert_eq!(fs::read(s.outside.join("secret")).unwrap(), b"secret");
    let mut top: Vec<_> = fs::read_dir(s.outside.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(
        top,
        vec![std::ffi::OsString::from("layer"), "outside".into()]
    );
}

fn assert_refused(r: Result<(), ImageError>, entry: &str) {
    match r {
        Err(e @ ImageError::UnsafeEntry { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(entry), "error should name {entry:?}: {msg}");
            assert!(
                msg.contains("test-layer"),
                "error should name the layer: {msg}"
            );
        }
        other => panic!("expected refusal of {entry:?}, got {other:?}"),
    }
}

fn is_whiteout(p: &Path) -> bool {
    let m = fs::symlink_metadata(p).unwrap();
    m.file_type().is_char_device() && m.rdev() == 0
}

fn opaque(p: &Path) -> bool {
    get_xattr(p, OPAQUE_XATTR).unwrap().as_deref() == Some(b"y")
}

#[test]
fn dotdot_entry_is_refused() {
    let s = scratch();
    let tar = RawTar::new().file("../outside/evil", b"x").build();
    assert_refused(unpack(&s, &tar), "../outside/evil");
    let tar = RawTar::new()
        .dir("a")
        .file("a/../../outside/evil", b"x")
        .build();
    assert_refused(unpack(&s, &tar), "a/../../outside/evil");
    assert_outside_untouched(&s);
}

#[test]
fn absolute_entry_is_taken_relative_to_the_layer_root() {
    let s = scratch();
    let name = format!("{}/evil", s.outside.display());
    let tar = RawTar::new()
        .dir("/")
        .file(&name, b"x")
        .file("/etc/passwd", b"root")
        .build();
    unpack(&s, &tar).unwrap();
    let inside = s.layer.join(name.trim_start_matches('/'));
    assert_eq!(fs::read(inside).unwrap(), b"x");
    assert_eq!(fs::read(s.layer.join("etc/passwd")).unwrap(), b"root");
    assert_outside_untouched(&s);
}

#[test]
fn symlinked_parent_is_refused() {
    let s = scratch();
    let target = s.outside.display().to_string();
    let tar = RawTar::new()
        .symlink("a", &target)
        .file("a/passwd", b"x")
        .build();
    assert_refused(unpack(&s, &tar), "a/passwd");
    // Relative variant, through a directory of the layer.
    let s = scratch();
    let tar = RawTar::new()
        .dir("d")
        .symlink("d/up", "../../outside")
        .file("d/up/passwd", b"x")
        .build();
    assert_refused(unpack(&s, &tar), "d/up/passwd");
    assert_outside_untouched(&s);
}

#[test]
fn hardlink_escape_via_dotdot_is_refused() {
    let s = scratch();
    let tar = RawTar::new().hardlink("h", "../outside/secret").build();
    assert_refused(unpack(&s, &tar), "h");
    let abs = format!("{}/secret", s.outside.display());
    // An absolute target means the layer's own file, which is not there.
    let tar = RawTar::new().hardlink("h2", &abs).build();
    assert_refused(unpack(&s, &tar), "h2");
    let tar = RawTar::new()
        .file("a/b", b"x")
        .hardlink("h3", "/a/../../outside/secret")
        .build();
    assert_refused(unpack(&s, &tar), "h3");
    assert!(!s.layer.join("h").exists() && !s.layer.join("h2").exists());
    assert_outside_untouched(&s);
}

#[test]
fn hardlink_through_symlink_is_refused() {
    let s = scratch();
    let tar = RawTar::new()
        .symlink("s", &s.outside.display().to_string())
        .hardlink("h", "s/secret")
        .build();
    assert_refused(unpack(&s, &tar), "h");
    assert!(fs::symlink_metadata(s.layer.join("h")).is_err());
    assert_outside_untouched(&s);
}

#[test]
fn root_entry_not_a_directory_is_refused() {
    for tar in [
        RawTar::new().symlink("./", "/").file("x", b"x").build(),
        RawTar::new().symlink(".", "../outside").build(),
        RawTar::new().file("./", b"x").build(),
    ] {
        let s = scratch();
        match unpack(&s, &tar) {
            Err(e @ ImageError::UnsafeEntry { .. }) => {
                assert!(e.to_string().contains("root must be a directory"), "{e}");
            }
            other => panic!("expected refusal, got {other:?}"),
        }
        assert_outside_untouched(&s);
        assert!(fs::symlink_metadata(&s.layer).unwrap().is_dir());
    }
}

#[test]
fn absolute_symlink_is_created_verbatim_and_nothing_escapes() {
    let s = scratch();
    let secret = format!("{}/secret", s.outside.display());
    let tar = RawTar::new()
        .dir("etc")
        .symlink("etc/link", &secret)
        .symlink("etc/dirlink", &s.outside.display().to_string())
        // A later regular file of the same name replaces the symlink; it
        // must not write through it.
        .file("etc/link", b"mine")
        .build();
    unpack(&s, &tar).unwrap();
    assert_eq!(
        fs::read_link(s.layer.join("etc/dirlink")).unwrap(),
        s.outside
    );
    let m = fs::symlink_metadata(s.layer.join("etc/link")).unwrap();
    assert!(m.is_file());
    assert_eq!(fs::read(s.layer.join("etc/link")).unwrap(), b"mine");
    assert_outside_untouched(&s);

    let s = scratch();
    let tar = RawTar::new().symlink("etc/passwd", "/etc/passwd").build();
    unpack(&s, &tar).unwrap();
    assert_eq!(
        fs::read_link(s.layer.join("etc/passwd")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_outside_untouched(&s);
}

#[test]
fn hardlink_within_layer_shares_the_inode() {
    let s = scratch();
    let tar = RawTar::new()
        .file("bin/busybox", b"elf")
        .hardlink("bin/ls", "bin/busybox")
        .hardlink("./bin/cat", "./bin/busybox")
        .build();
    unpack(&s, &tar).unwrap();
    let a = fs::metadata(s.layer.join("bin/busybox")).unwrap();
    let b = fs::metadata(s.layer.join("bin/ls")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 3);
}

#[test]
fn whiteout_file_becomes_overlay_char_device() {
    let s = scratch();
    let tar = RawTar::new()
        .dir("etc")
        .file("etc/.wh.gone", b"")
        .file(".wh.top", b"")
        .build();
    unpack(&s, &tar).unwrap();
    assert!(is_whiteout(&s.layer.join("etc/gone")));
    assert!(is_whiteout(&s.layer.join("top")));
    assert!(!s.layer.join("etc/.wh.gone").exists());
}

#[test]
fn opaque_dir_before_siblings_keeps_them() {
    let s = scratch();
    let tar = RawTar::new()
        .dir("d")
        .file("d/.wh..wh..opq", b"")
        .file("d/a", b"a")
        .dir("d/sub")
        .build();
    unpack(&s, &tar).unwrap();
    assert!(opaque(&s.layer.join("d")));
    assert_eq!(fs::read(s.layer.join("d/a")).unwrap(), b"a");
    assert!(s.layer.join("d/sub").is_dir());
    assert!(!s.layer.join("d/.wh..wh..opq").exists());
}

#[test]
fn opaque_dir_after_siblings_keeps_them() {
    let s = scratch();
    let tar = RawTar::new()
        .dir("d")
        .file("d/a", b"a")
        .dir("d/sub")
        .file("d/sub/b", b"b")
        .file("d/.wh..wh..opq", b"")
        .build();
    unpack(&s, &tar).unwrap();
    assert!(opaque(&s.layer.join("d")));
    assert_eq!(fs::read(s.layer.join("d/a")).unwrap(), b"a");
    assert_eq!(fs::read(s.layer.join("d/sub/b")).unwrap(), b"b");
}

#[test]
fn whiteout_next_to_same_name_entry_keeps_the_entry() {
    // Whiteout after the entry.
    let s = scratch();
    let tar = RawTar::new().file("x", b"new").file(".wh.x", b"").build();
    unpack(&s, &tar).unwrap();
    assert_eq!(fs::read(s.layer.join("x")).unwrap(), b"new");
    // Whiteout before the entry.
    let s = scratch();
    let tar = RawTar::new().file(".wh.x", b"").file("x", b"new").build();
    unpack(&s, &tar).unwrap();
    assert_eq!(fs::read(s.layer.join("x")).unwrap(), b"new");
    // A directory next to its whiteout keeps its content and hides the
    // lower one's (opaque), in either order.
    for tar in [
        RawTar::new()
            .file(".wh.d", b"")
            .dir("d")
            .file("d/a", b"a")
            .build(),
        RawTar::new()
            .dir("d")
            .file("d/a", b"a")
            .file(".wh.d", b"")
            .build(),
        RawTar::new().file(".wh.d", b"").file("d/a", b"a").build(),
    ] {
        let s = scratch();
        unpack(&s, &tar).unwrap();
        assert_eq!(fs::read(s.layer.join("d/a")).unwrap(), b"a");
        assert!(opaque(&s.layer.join("d")));
    }
}

#[test]
fn device_nodes_and_fifos_are_skipped() {
    let s = scratch();
    let tar = RawTar::new()
        .dir("dev")
        .special("dev/sda", EntryType::Block)
        .special("dev/mem", EntryType::Char)
        .special("dev/fifo", EntryType::Fifo)
        .file("dev/ok", b"ok")
        .build();
    unpack(&s, &tar).unwrap();
    for n in ["dev/sda", "dev/mem", "dev/fifo"] {
        assert!(
            fs::symlink_metadata(s.layer.join(n)).is_err(),
            "{n} created"
        );
    }
    assert!(s.layer.join("dev/ok").is_file());
}

#[test]
fn metadata_and_allowed_xattrs_are_preserved() {
    let s = scratch();
    let tar = RawTar::new()
        .dir("./")
        .pax(&[
            ("SCHILY.xattr.user.test", b"v"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            (
                "SCHILY.xattr.security.selinux",
                b"system_u:object_r:etc_t:s0",
            ),
        ])
        .file_with("usr/bin/su", b"elf", 0o4755, 1000, 2000, 1_234_567_890)
        .build();
    unpack(&s, &tar).unwrap();
    let m = fs::metadata(s.layer.join("usr/bin/su")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    assert_eq!((m.uid(), m.gid()), (1000, 2000));
    assert_eq!(m.mtime(), 1_234_567_890);
    let su = s.layer.join("usr/bin/su");
    assert_eq!(
        get_xattr(&su, "user.test").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    // A layer may not forge overlay metadata.
    assert_eq!(get_xattr(&su, OPAQUE_XATTR).unwrap(), None);
    // The layer root is read-only.
    let root = fs::metadata(&s.layer).unwrap();
    assert_eq!(root.permissions().mode() & 0o777, 0o555);
}

#[test]
fn later_entry_replaces_earlier_one() {
    let s = scratch();
    let tar = RawTar::new()
        .file("a", b"1")
        .hardlink("b", "a")
        .file("a", b"2")
        .dir("c")
        .file("c/x", b"")
        .file("c", b"file now")
        .build();
    unpack(&s, &tar).unwrap();
    // Replacing `a` did not write through the hardlink `b`.
    assert_eq!(fs::read(s.layer.join("a")).unwrap(), b"2");
    assert_eq!(fs::read(s.layer.join("b")).unwrap(), b"1");
    assert_eq!(fs::read(s.layer.join("c")).unwrap(), b"file now");
}
