//! The attacks of issue #7 ("One pod core"), each performed for real against the
//! podshim binary and runc: what a hostile manifest, image or neighbour could do,
//! and that it does not happen.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// A host directory a container must never reach, with a file it must not see.
fn host_target(tmp: &Path) -> PathBuf {
    let dir = tmp.join("host-secret");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), "host only\n").unwrap();
    dir
}

fn assert_untouched(host: &Path) {
    let names: Vec<String> = std::fs::read_dir(host)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["secret"], "the host directory was written to");
}

/// CVE-2017-1002101: an init container swaps the subPath directory of a shared
/// emptyDir for a symlink to a host directory; the next container's start must not
/// bind-mount the host directory.
#[test]
fn a_subpath_replaced_by_a_symlink_before_the_first_start_is_refused() {
    let pod = Pod::new("subpath", "swap");
    let host = host_target(pod.tmp.path());
    let out = pod.up(
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: "{{name}}", namespace: "{{ns}}"}}
spec:
  restartPolicy: Never
  volumes: [{{name: vol, emptyDir: {{}}}}]
  initContainers:
    - name: plant
      image: localhost/busybox:latest
      command: [sh, -c, "mkdir -p /vol/data && rm -rf /vol/data && ln -s {host} /vol/data"]
      volumeMounts: [{{name: vol, mountPath: /vol}}]
  containers:
    - name: app
      image: localhost/busybox:latest
      command: [sh, -c, "ls /mnt; touch /mnt/pwned; sleep 3600"]
      volumeMounts: [{{name: vol, mountPath: /mnt, subPath: data}}]
"#,
            host = host.display()
        ),
        &[],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "up succeeded: {}", stdout(&out));
    assert!(
        err.contains("subPath \"data\"") && err.contains("symlink leading outside the volume"),
        "{err}"
    );
    assert_untouched(&host);
    pod.assert_nothing_left();
}

/// The same swap by the container itself before it exits: its restart must not
/// follow the symlink either.
#[test]
fn a_subpath_replaced_by_a_symlink_before_a_restart_is_refused() {
    let pod = Pod::new("subpath", "restart");
    let host = host_target(pod.tmp.path());
    let out = pod.up(
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: "{{name}}", namespace: "{{ns}}"}}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  volumes: [{{name: vol, emptyDir: {{}}}}]
  containers:
    - name: app
      image: localhost/busybox:latest
      command: [sh, -c, "if [ -e /all/swapped ]; then touch /mnt/pwned; sleep 3600; fi; touch /all/swapped; rm -rf /all/data; ln -s {host} /all/data; sleep 1; exit 1"]
      volumeMounts:
        - {{name: vol, mountPath: /all}}
        - {{name: vol, mountPath: /mnt, subPath: data}}
"#,
            host = host.display()
        ),
        &[],
    );
    assert!(out.status.success(), "up: {}", stderr(&out));
    // The restart is attempted, and refused: the container waits in an error.
    pod.wait_until("a refused restart", Duration::from_secs(30), |p| {
        let c = p.container("app");
        c["restartCount"].as_u64() >= Some(1)
            && c["state"]["state"] == "waiting"
            && c["state"]["reason"] == "RunContainerError"
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_untouched(&host);
    let log = std::fs::read_to_string(pod.pod_dir().join("supervisor.log")).unwrap_or_default();
    assert!(log.contains("symlink leading outside the volume"), "{log}");
}

/// A generated bundle set whose volume was tampered with before `up --from` and
/// before `run.sh`: both resolve the subPath again at start.
#[test]
fn a_subpath_swapped_in_a_generate_output_is_refused_by_up_from_and_by_run_sh() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host_target(tmp.path());
    let ns = unique_namespace("subpath-gen");
    let manifest = tmp.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: gen, namespace: {ns}}}\nspec:\n  volumes: [{{name: vol, emptyDir: {{}}}}]\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sh, -c, \"touch /mnt/pwned; sleep 3600\"]\n      volumeMounts: [{{name: vol, mountPath: /mnt, subPath: data}}]\n"
        ),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let infra = format!("{ns}_gen");
    let _cleanup = Cleanup {
        ids: vec![infra.clone(), format!("{infra}_app")],
        dir: out_dir.clone(),
    };
    let state = tmp.path().join("state");
    let out = podshim(&state)
        .arg("generate")
        .arg(&manifest)
        .arg("-o")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::os::unix::fs::symlink(&host, out_dir.join("volumes/vol/data")).unwrap();

    let up = podshim(&state)
        .args(["up", "--timeout", "60", "--from"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let err = stderr(&up);
    assert!(!up.status.success(), "up --from succeeded");
    assert!(err.contains("symlink leading outside the volume"), "{err}");
    assert_untouched(&host);

    let run = Command::new(out_dir.join("run.sh")).output().unwrap();
    let err = stderr(&run);
    assert!(!run.status.success(), "run.sh succeeded");
    assert!(err.contains("symlink leading outside the volume"), "{err}");
    assert_untouched(&host);
    let stop = Command::new(out_dir.join("stop.sh")).output().unwrap();
    assert!(stop.status.success(), "{}", stderr(&stop));
    let left: Vec<String> = runc_ids()
        .into_iter()
        .filter(|i| i.starts_with(&infra))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
