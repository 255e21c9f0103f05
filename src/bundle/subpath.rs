//! subPath mounts, bound before every start of their container (first start,
//! restarts, `up --from`, `run.sh`): the subPath is resolved inside its volume
//! without following a symlink out ([`super::resolve`]), and the resolved file
//! descriptor is bound onto a path of podshim's, which config.json names. runc never
//! resolves a path a container could have changed (the kubelet's
//! `doBindSubPath`; CVE-2017-1002101, CVE-2021-25741).

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use super::mounts::{Mounter, is_mount_point};
use super::resolve::{Scope, resolve};
use super::{BundleError, io_err};
use crate::run_plan::{RunContainer, SubPathBind};

/// Binds every subPath of `c`, replacing a bind left by an earlier start.
pub fn bind_all(c: &RunContainer, mounter: &dyn Mounter) -> Result<(), BundleError> {
    for b in &c.sub_paths {
        bind(&c.name, b, mounter)?;
    }
    Ok(())
}

pub fn bind(container: &str, b: &SubPathBind, mounter: &dyn Mounter) -> Result<(), BundleError> {
    let err = |message: String| BundleError::SubPath {
        container: container.to_string(),
        sub_path: b.sub_path.to_string(),
        message,
    };
    // An earlier start's bind names the inode resolved then: resolve again.
    while is_mount_point(&b.target).map_err(io_err(&b.target, "read the mounts at"))? {
        mounter
            .unmount(&b.target)
            .map_err(io_err(&b.target, "unmount the previous subPath bind"))?;
    }
    let root = fs::canonicalize(&b.volume_path)
        .map_err(|e| err(format!("volume {}: {e}", b.volume_path.display())))?;
    // A missing subPath becomes a directory with the volume's own mode, as the
    // kubelet's SafeMakeDir makes it.
    let mode = fs::metadata(&root)
        .map(|m| m.mode() & 0o7777)
        .map_err(|e| err(format!("volume {}: {e}", root.display())))?;
    let parts: Vec<&str> = b.sub_path.components().collect();
    let resolved = resolve(
        &root,
        &parts,
        &Scope::Beneath {
            host_root: root.clone(),
        },
        Some(mode),
    )
    .map_err(|e| err(e.to_string()))?;
    if let Some(parent) = b.target.parent() {
        // Traversable: a runtime in the pod's user namespace opens the target
        // as the pod's root (the pod directory is the gate).
        crate::fsutil::mkdir_mode(parent, 0o755).map_err(io_err(parent, "create directory"))?;
    }
    // The bind target has the source's kind: a directory for a directory, else a file.
    let existing = fs::symlink_metadata(&b.target).ok();
    match (&existing, resolved.is_dir) {
        (Some(m), true) if m.is_dir() => {}
        (Some(m), false) if m.is_file() => {}
        (Some(m), _) => {
            if m.is_dir() {
                fs::remove_dir(&b.target)
            } else {
                fs::remove_file(&b.target)
            }
            .map_err(io_err(&b.target, "remove"))?;
            make_target(&b.target, resolved.is_dir)?;
        }
        (None, is_dir) => make_target(&b.target, is_dir)?,
    }
    match &b.userns {
        // Resolved (and made) in the volume itself as the host's root; bound
        // with the pod's ids.
        Some(pin) => {
            let ns = crate::userns::open(pin).map_err(io_err(pin, "open"))?;
            mounter
                .mount_idmapped(resolved.fd.as_fd(), &b.target, ns.as_fd(), false)
                .map_err(io_err(&b.target, "bind the subPath"))
        }
        None => mounter
            .bind_fd(resolved.fd.as_fd(), &b.target)
            .map_err(io_err(&b.target, "bind the subPath")),
    }
}

fn make_target(target: &std::path::Path, dir: bool) -> Result<(), BundleError> {
    super::mounts::make_mount_point(target, dir).map_err(io_err(target, "create mount point"))
}
