//! Exit codes and messages of the command line.

use crate::support::*;

fn generate(tmp: &std::path::Path, manifest: &str) -> std::process::Output {
    let path = tmp.join("pod.yaml");
    std::fs::write(&path, manifest).unwrap();
    podshim(tmp)
        .arg("generate")
        .arg(&path)
        .arg("-o")
        .arg(tmp.join("out"))
        .output()
        .unwrap()
}

#[test]
fn invalid_manifest_exits_2_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let out = generate(
        tmp.path(),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n    - name: app\n      imagee: busybox\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("spec.containers[0].imagee: unknown field"),
        "{err}"
    );
    assert!(
        err.contains("spec.containers[0].image: Required value"),
        "{err}"
    );
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn manifest_from_stdin_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = podshim(tmp.path())
        .args(["generate", "-", "-o"])
        .arg(tmp.path().join("out"))
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("-: "), "{}", stderr(&out));
    assert!(stderr(&out).contains("Service"), "{}", stderr(&out));
}

#[test]
fn missing_image_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = generate(
        tmp.path(),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: noimage\nspec:\n  containers:\n    - name: app\n      image: localhost/not-there:1.0\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("container \"app\""), "{err}");
    assert!(err.contains("localhost/not-there:1.0"), "{err}");
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn images_lists_and_rmi_removes() {
    let tmp = tempfile::tempdir().unwrap();
    // A store of its own, so removing does not disturb the other tests.
    let own_store = tmp.path().join("store");
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let run = |args: &[&str]| {
        podshim(tmp.path())
            .env("PODSHIM_STORE", &own_store)
            .args(args)
            .output()
            .unwrap()
    };
    let rootfs_arg = rootfs.display().to_string();
    let out = run(&[
        "import",
        &rootfs_arg,
        "example.com/tools/bb:1",
        "--cmd",
        "/bin/busybox",
        "--cmd",
        "sh",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["images"]);
    let listing = stdout(&out);
    assert!(listing.starts_with("NAME"), "{listing}");
    assert!(listing.contains("example.com/tools/bb:1"), "{listing}");
    let out = run(&["rmi", "example.com/tools/bb:1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["images", "-q"]);
    assert_eq!(stdout(&out), "");
    let out = run(&["rmi", "example.com/tools/bb:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("example.com/tools/bb:1"),
        "{}",
        stderr(&out)
    );
}
