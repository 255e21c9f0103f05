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
    // The restart is attempted, and refused: the container waits in the
    // kubelet's error for mounts it cannot make.
    pod.wait_until("a refused restart", Duration::from_secs(30), |p| {
        let c = p.container("app");
        c["restartCount"].as_u64() >= Some(1)
            && c["state"]["state"] == "waiting"
            && c["state"]["reason"] == "CreateContainerConfigError"
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
    let out = generate(&state, &manifest, &out_dir);
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

/// `generate -o DIR` over bundles that run (a pod `up --from DIR` started, or
/// `DIR/run.sh`) once unmounted their rootfs and deleted them under the running
/// containers.
#[test]
fn generate_refuses_to_replace_an_output_whose_bundles_run() {
    let tmp = tempfile::tempdir().unwrap();
    let ns = unique_namespace("gen-inuse");
    let manifest = tmp.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: busy, namespace: {ns}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n    - {{name: app, image: localhost/busybox:latest, command: [sleep, \"3600\"]}}\n"
        ),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let app = format!("{ns}_busy_app");
    let _cleanup = Cleanup {
        ids: vec![format!("{ns}_busy"), app.clone()],
        dir: out_dir.clone(),
    };
    let state = tmp.path().join("state");
    // The same directory by another name: through a symlink, and with `..`.
    std::os::unix::fs::symlink(tmp.path(), tmp.path().join("alias")).unwrap();
    let aliases = [
        out_dir.clone(),
        tmp.path().join("alias/out"),
        tmp.path().join("state/../out"),
    ];
    let generate_into = |dir: &std::path::Path| generate(&state, &manifest, dir);
    let regenerate = || generate_into(&out_dir);
    let app_runs = || {
        let out = Command::new("runc").args(["state", &app]).output().unwrap();
        stdout(&out).contains("\"running\"")
            && out_dir
                .join(format!("bundles/{app}/rootfs/bin/sleep"))
                .exists()
    };
    let out = regenerate();
    assert!(out.status.success(), "{}", stderr(&out));

    let up = podshim(&state)
        .args(["up", "--timeout", "60", "--from"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", stderr(&up));
    for dir in &aliases {
        let out = generate_into(dir);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("pod {ns}/busy runs it")),
            "{}: {}",
            dir.display(),
            stderr(&out)
        );
        assert!(app_runs(), "the pod's bundles were touched");
    }
    let down = podshim(&state)
        .args(["down", &format!("{ns}/busy")])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", stderr(&down));

    let run = Command::new(out_dir.join("run.sh")).output().unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    for dir in &aliases {
        let out = generate_into(dir);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("the runtime has containers of its bundles"),
            "{}: {}",
            dir.display(),
            stderr(&out)
        );
        assert!(app_runs(), "run.sh's bundles were touched");
    }
    let stop = Command::new(out_dir.join("stop.sh")).output().unwrap();
    assert!(stop.status.success(), "{}", stderr(&stop));
    // Stopped: the output is replaced as before.
    let out = regenerate();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Pod names on the command line are parsed as names before any path is built:
/// `ns/x/../../../victim` once named a directory beside the state root, which
/// `down` then unmounted and deleted.
#[test]
fn a_pod_name_that_is_a_path_is_refused_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("precious"), "keep me").unwrap();
    // The state root is <tmp>/run: pods/ns_x/../../.. climbs to <tmp>.
    let name = "ns/x/../../../victim";
    for verb in [
        &["down", name][..],
        &["ps", name][..],
        &["logs", name][..],
        &["rm", name][..],
        &["exec", name, "--", "true"][..],
    ] {
        let out = podshim(tmp.path()).args(verb).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{verb:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("name \"x/../../../victim\""),
            "{verb:?}: {}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("stopped and removed"));
    }
    assert_eq!(
        std::fs::read_to_string(victim.join("precious")).unwrap(),
        "keep me"
    );
    let names: Vec<_> = std::fs::read_dir(&victim).unwrap().collect();
    assert_eq!(names.len(), 1, "something was written into the victim");
}

/// An image made locally from busybox-static with a marker file.
fn marker_rootfs(dir: &Path, marker: &str) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "sleep"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(dir.join("marker"), marker).unwrap();
}

/// Re-tagging an image (a new import under the same name) and then `prune` used
/// to take a running pod's whole filesystem away: its layers are leased now.
#[test]
fn a_retag_and_prune_leave_a_running_pods_layers_in_place() {
    let pod = Pod::new("lease", "leased");
    let store = pod.tmp.path().join("store");
    let import = |marker: &str| {
        let rootfs = pod.tmp.path().join(format!("rootfs-{marker}"));
        marker_rootfs(&rootfs, marker);
        let out = pod
            .cmd()
            .env("PODSHIM_STORE", &store)
            .arg("import")
            .arg(&rootfs)
            .args(["localhost/lease:v1", "--cmd", "sh"])
            .output()
            .unwrap();
        assert!(out.status.success(), "import: {}", stderr(&out));
    };
    import("one");
    let path = pod.tmp.path().join("pod.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {}, namespace: {}}}\nspec:\n  restartPolicy: Always\n  terminationGracePeriodSeconds: 1\n  containers:\n    - {{name: app, image: localhost/lease:v1, command: [sleep, \"3600\"]}}\n",
            pod.name, pod.ns
        ),
    )
    .unwrap();
    let with_store = |args: &[&str]| {
        pod.cmd()
            .env("PODSHIM_STORE", &store)
            .args(args)
            .output()
            .unwrap()
    };
    let up = with_store(&["up", path.to_str().unwrap(), "--timeout", "60"]);
    assert!(up.status.success(), "up: {}", stderr(&up));
    let marker = || stdout(&with_store(&["exec", &pod.key(), "--", "cat", "/marker"]));
    assert_eq!(marker(), "one");

    import("two");
    let prune = with_store(&["prune"]);
    assert!(prune.status.success(), "prune: {}", stderr(&prune));
    assert_eq!(marker(), "one", "the running container lost its filesystem");
    // A restart makes a fresh rootfs from the same (leased) layers.
    let app = pod.id(Some("app"));
    let kill = Command::new("runc")
        .args(["kill", &app, "KILL"])
        .output()
        .unwrap();
    assert!(kill.status.success(), "{}", stderr(&kill));
    pod.wait_until("the restart", Duration::from_secs(30), |p| {
        let c = p.container("app");
        c["restartCount"].as_u64() >= Some(1) && c["state"]["state"] == "running"
    });
    assert_eq!(marker(), "one");

    // Down releases the lease: the next prune collects the old layers.
    let down = with_store(&["down", &pod.key()]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(std::fs::read_dir(store.join("leases")).unwrap().count(), 0);
    let layers = |s: &Path| std::fs::read_dir(s.join("layers")).unwrap().count();
    let before = layers(&store);
    assert!(with_store(&["prune"]).status.success());
    assert_eq!(layers(&store), before - 1);
    assert_eq!(
        stdout(&with_store(&["images", "-q"])).trim(),
        "localhost/lease:v1"
    );
}

/// podshim never kills or deletes a runtime container it did not create: a pod of
/// the same name under another state root holds the container ids.
#[test]
fn up_refuses_container_ids_another_owner_holds_and_leaves_them_running() {
    let owner = Pod::new("owner", "shared");
    let yaml = r#"apiVersion: v1
kind: Pod
metadata: {name: "{name}", namespace: "{ns}"}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - {name: app, image: localhost/busybox:latest, command: [sleep, "3600"]}
"#;
    let up = owner.up(yaml, &[]);
    assert!(up.status.success(), "{}", stderr(&up));
    // The same pod, from another podshim root.
    let intruder = Pod {
        tmp: tempfile::tempdir().unwrap(),
        ns: owner.ns.clone(),
        name: owner.name.clone(),
        runtime: None,
    };
    let out = intruder.up(yaml, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("already has a container {}", owner.id(None)))
            && err.contains(&owner.tmp.path().display().to_string()),
        "{err}"
    );
    // down from the other root finds the containers but leaves them alone.
    let down = intruder.run(&["down", &intruder.key()]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(stdout(&down).contains("left alone"), "{}", stdout(&down));
    assert!(!intruder.pod_dir().exists());
    for id in [owner.id(None), owner.id(Some("app"))] {
        let state = Command::new("runc").args(["state", &id]).output().unwrap();
        assert!(
            stdout(&state).contains("\"running\""),
            "{id}: {}",
            stdout(&state)
        );
    }
    let c = owner.container("app");
    assert_eq!(c["state"]["state"], "running");
}

/// A pod whose state directory is gone (a wiped /run): `down` finds its
/// containers in the runtime, stops and deletes them, and says what it did.
#[test]
fn down_after_the_state_was_wiped_finds_the_containers_in_the_runtime() {
    let pod = Pod::new("lost", "lost");
    let up = pod.up(
        r#"apiVersion: v1
kind: Pod
metadata: {name: "{name}", namespace: "{ns}"}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - {name: a, image: localhost/busybox:latest, command: [sleep, "3600"]}
    - {name: b, image: localhost/busybox:latest, command: [sleep, "3600"]}
"#,
        &[],
    );
    assert!(up.status.success(), "{}", stderr(&up));
    // The supervisor dies with the state; the mounts go, as a reboot of /run
    // would take them (a lazy unmount, then the directory).
    let supervisor = pod.state()["supervisorPid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    podshim::bundle::unmount_all_under(&pod.pod_dir(), &podshim::bundle::SystemMounter).unwrap();
    std::fs::remove_dir_all(pod.pod_dir()).unwrap();

    let down = pod.run(&["down", &pod.key()]);
    assert!(down.status.success(), "{}", stderr(&down));
    let said = stdout(&down);
    assert!(said.contains("its state was gone"), "{said}");
    for id in [pod.id(None), pod.id(Some("a")), pod.id(Some("b"))] {
        assert!(said.contains(&id), "{id} not reported: {said}");
    }
    assert!(!said.contains("stopped and removed"), "{said}");
    pod.assert_nothing_left();
    let again = pod.run(&["down", &pod.key()]);
    assert_eq!(
        stdout(&again).trim(),
        format!("pod {} is not running", pod.key())
    );
}

/// `down` of a pod with no state holds the pod's lock while it looks for the
/// pod's containers in the runtime: an `up` of the same name meanwhile is refused
/// as busy. (It once ran unlocked: the `up` started, and the `down`, listing the
/// runtime after it, found and deleted the new pod's containers.)
#[test]
fn up_during_a_down_of_the_same_lost_pod_is_refused_as_busy() {
    let pod = Pod::new("lost", "race");
    let wrapper = slow_runc(pod.tmp.path(), "list", 2);
    let down = pod
        .cmd()
        .arg("--runtime")
        .arg(&wrapper)
        .args(["down", &pod.key()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let up = pod.up(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n    - {name: a, image: localhost/busybox:latest, command: [sleep, '3600']}\n",
        &[],
    );
    let down = down.wait_with_output().unwrap();
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(
        stdout(&down).trim(),
        format!("pod {} is not running", pod.key())
    );
    assert_eq!(up.status.code(), Some(1), "{}", stdout(&up));
    assert!(
        stderr(&up).contains("is locked by another podshim command"),
        "{}",
        stderr(&up)
    );
    // The down made the pod's directory only for its lock, and removed it.
    pod.assert_nothing_left();
}
