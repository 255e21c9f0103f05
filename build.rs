//! Builds the pause helper (src/pause/pause.c) as a static binary that the infra
//! container runs from an otherwise empty rootfs.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "src/pause/pause.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("pause");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cc} to build {src}: {e}"));
    assert!(
        status.success(),
        "{cc} failed to build {src} statically (is libc6-dev installed?)"
    );
}
