//! Exit codes and messages of the command line.

use crate::support::*;

fn generate_yaml(tmp: &std::path::Path, manifest: &str) -> std::process::Output {
    let path = tmp.join("pod.yaml");
    std::fs::write(&path, manifest).unwrap();
    generate(tmp, &path, &tmp.join("out"))
}

#[test]
fn invalid_manifest_exits_2_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let out = generate_yaml(
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
    let out = generate_yaml(
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

/// `podshim up x | head -1`: the reader goes away, podshim finishes quietly.
#[test]
fn a_closed_stdout_ends_quietly_and_the_pod_still_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let ns = unique_namespace("epipe");
    let manifest = tmp.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: epipe, namespace: {ns}}}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n    - {{name: app, image: localhost/busybox:latest, command: [sleep, \"3600\"]}}\n"
        ),
    )
    .unwrap();
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = podshim(tmp.path())
        .args(["up", "--timeout", "60"])
        .arg(&manifest)
        .stdout(std::process::Stdio::from(write))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let ps = podshim(tmp.path())
        .arg("ps")
        .stdout(std::process::Stdio::from(write))
        .output()
        .unwrap();
    assert!(
        ps.status.success() && stderr(&ps).is_empty(),
        "{}",
        stderr(&ps)
    );
    let down = podshim(tmp.path())
        .args(["down", &format!("{ns}/epipe")])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", stderr(&down));
}

#[test]
fn completion_scripts_and_man_pages_come_from_the_command_definitions() {
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = podshim(tmp.path())
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("podshim") && script.contains("generate"),
            "{shell}"
        );
    }
    let dir = tmp.path().join("man");
    let out = podshim(tmp.path()).arg("man").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for page in [
        "podshim.1",
        "podshim-up.1",
        "podshim-down.1",
        "podshim-generate.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let up = std::fs::read_to_string(dir.join("podshim-up.1")).unwrap();
    assert!(up.contains("replace"), "{up}");
    assert!(!dir.join("podshim-bind-subpaths.1").exists());
}

/// `--root` (PODSHIM_ROOT) given relative to the working directory means the same
/// directory to the supervisor and the runtime (it once made runc look for the
/// rootfs under the bundle twice over).
#[test]
fn a_relative_state_root_is_the_same_directory_for_every_command() {
    let pod = Pod::new("relroot", "rel");
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: rel, namespace: {}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n    - {{name: a, image: localhost/busybox:latest, command: [sleep, \"3600\"]}}\n",
        pod.ns
    );
    std::fs::write(pod.tmp.path().join("pod.yaml"), yaml).unwrap();
    let up = pod
        .cmd()
        .current_dir(pod.tmp.path())
        .env("PODSHIM_ROOT", "run")
        .args(["up", "pod.yaml", "--timeout", "60"])
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", stderr(&up));
    // The absolute spelling, from elsewhere, finds the same pod running.
    assert_eq!(pod.state()["phase"], "Running");
    let ps = pod.run(&["ps", &pod.key()]);
    assert!(stdout(&ps).contains("Running"), "{}", stdout(&ps));
    let down = pod.run(&["down", &pod.key()]);
    assert!(down.status.success(), "{}", stderr(&down));
    pod.assert_nothing_left();
}
