//! The infra container's pause process: a tiny static C program (src/pause/pause.c)
//! built by build.rs and embedded here, so podshim needs no image for the sandbox.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The static pause binary.
pub const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// Where the pause binary sits inside the infra rootfs, and the infra's argv.
pub const PAUSE_PATH: &str = "/pause";

/// Lays out the infra container's rootfs in `rootfs`: the pause binary plus the
/// mount points runc needs, since the root is mounted read-only.
pub fn write_rootfs(rootfs: &Path) -> io::Result<()> {
    for dir in ["proc", "dev", "sys", "etc"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    // /etc/hosts, hostname and resolv.conf are bind-mounted on files: the mount
    // points must exist in a read-only root.
    for file in ["hosts", "hostname", "resolv.conf"] {
        let path = rootfs.join("etc").join(file);
        if !path.exists() {
            std::fs::write(&path, b"")?;
        }
    }
    let pause = rootfs.join(PAUSE_PATH.trim_start_matches('/'));
    let tmp = rootfs.join(".pause.tmp");
    std::fs::write(&tmp, PAUSE_BINARY)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, pause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_binary_is_a_static_elf() {
        assert_eq!(&PAUSE_BINARY[..4], b"\x7fELF");
        // A static binary has no PT_INTERP: the interpreter path never appears.
        let interp = b"/lib64/ld-linux";
        assert!(!PAUSE_BINARY.windows(interp.len()).any(|w| w == interp));
    }

    #[test]
    fn pause_exits_zero_on_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        write_rootfs(dir.path()).unwrap();
        let mut child = std::process::Command::new(dir.path().join("pause"))
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert!(child.wait().unwrap().success());
    }
}
