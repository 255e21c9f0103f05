//! `hostUsers: false` (KEP-127) and `procMount` (KEP-4265): a pod in a user
//! namespace of its own, with real runc and youki.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// The host's view of a process: the first of its real uids and gids.
fn host_ids(pid: i64) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let first = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (first("Uid:"), first("Gid:"))
}

/// The docs' example (`hostUsers: false`), with two containers sharing a disk
/// and a memory volume: root inside is an unprivileged host id of the pod's
/// range, a `runAsUser: 1000` container that id plus 1000; what each writes
/// into the volumes is owned inside as it was written, and on the host's disk
/// by the container's own ids (the volumes are id-mapped); the image's files
/// are root's inside. `ps -o json` and `describe` show the range; `down`
/// gives it back. youki 0.7, whose exec stays outside the user namespace, is
/// refused the pod by name.
#[test]
fn a_pod_without_host_users_runs_its_root_as_an_unprivileged_host_id() {
    for rt in runtimes() {
        let mut pod = Pod::new("userns", "userns");
        pod.runtime = rt.clone();
        let yaml = "apiVersion: v1
kind: Pod
metadata: {name: '{name}', namespace: '{ns}'}
spec:
  hostUsers: false
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: data, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory}}
  containers:
  - name: shell
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo ID $(id -u) $(id -g); echo MAP $(cat /proc/self/uid_map); echo BIN $(stat -c \"%u %g\" /bin/sh); touch /data/root-file /mem/root-file /sub/in-sub; echo HOSTNAME $(cat /etc/hostname); echo DONE; sleep 600']
    volumeMounts: [{name: data, mountPath: /data}, {name: mem, mountPath: /mem}, {name: data, mountPath: /sub, subPath: made/here}]
  - name: user
    image: localhost/busybox:latest
    imagePullPolicy: Never
    securityContext: {runAsUser: 1000, runAsGroup: 3000}
    command: [sh, -c, 'touch /data/user-file; echo DONE; sleep 600']
    volumeMounts: [{name: data, mountPath: /data}]
";
        let out = pod.up(yaml, &[]);
        if rt.is_some() {
            assert_eq!(out.status.code(), Some(2), "{rt:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(
                    "spec.hostUsers: youki 0.7.0 runs `exec` outside a container's user namespace"
                ),
                "{}",
                stderr(&out)
            );
            pod.assert_nothing_left();
            continue;
        }
        assert!(out.status.success(), "{rt:?}: {}", stderr(&out));
        for c in ["shell", "user"] {
            pod.wait_until(c, Duration::from_secs(20), |p| p.logs(c).contains("DONE"));
        }
        let state = pod.state();
        let base = state["userNamespace"]["hostId"].as_u64().unwrap();
        assert_eq!(state["userNamespace"]["size"], 65536, "{state:#}");
        assert!(
            base >= podshim::userns::DEFAULT_POOL.first as u64,
            "{state:#}"
        );
        let log = pod.logs("shell");
        assert!(log.contains("ID 0 0\n"), "{rt:?}: {log}");
        assert!(log.contains(&format!("MAP 0 {base} 65536\n")), "{log}");
        assert!(
            log.contains("BIN 0 0\n"),
            "the image is root's inside: {log}"
        );
        assert!(log.contains("HOSTNAME userns\n"), "{log}");
        let shell = pod.container("shell")["state"]["pid"].as_i64().unwrap();
        assert_eq!(host_ids(shell), (base, base));
        let user = pod.container("user")["state"]["pid"].as_i64().unwrap();
        assert_eq!(host_ids(user), (base + 1000, base + 3000));
        // Inside: as written; on the host's disk: the same ids (id-mapped).
        let ls = pod.run(&[
            "exec",
            &pod.key(),
            "-c",
            "shell",
            "--",
            "stat",
            "-c",
            "%u %g %n",
            "/data/root-file",
            "/data/user-file",
            "/mem/root-file",
        ]);
        assert_eq!(
            stdout(&ls),
            "0 0 /data/root-file\n1000 3000 /data/user-file\n0 0 /mem/root-file\n",
            "{}",
            stderr(&ls)
        );
        use std::os::unix::fs::MetadataExt;
        let volume = pod.pod_dir().join("volumes/data");
        let meta = std::fs::metadata(volume.join("user-file")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1000, 3000));
        let meta = std::fs::metadata(volume.join("root-file")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0));
        // A subPath that did not exist is made in the volume, and written
        // through its id-mapped bind.
        let meta = std::fs::metadata(volume.join("made/here/in-sub")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0));
        // The writable layer is the pod root's on the host.
        let upper = pod
            .pod_dir()
            .join("bundles")
            .join(pod.id(Some("shell")))
            .join("upper");
        assert_eq!(std::fs::metadata(&upper).unwrap().uid() as u64, base);
        let describe = stdout(&pod.run(&["describe", &pod.key()]));
        assert!(
            describe.contains(&format!(
                "User Namespace:              host ids {base}-{} (root inside is {base})",
                base + 65535
            )),
            "{describe}"
        );
        pod.down();
        pod.assert_nothing_left();
    }
}

/// `procMount: Unmasked` (only with `hostUsers: false`) gives /proc without
/// the runtime's masks and read-only paths; `Default` keeps them.
#[test]
fn proc_mount_unmasked_leaves_proc_as_the_kernel_gives_it() {
    let pod = Pod::new("userns", "procmount");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: '{name}', namespace: '{ns}'}
spec:
  hostUsers: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: unmasked
    image: localhost/busybox:latest
    imagePullPolicy: Never
    securityContext: {procMount: Unmasked}
    command: [sh, -c, 'echo OVER $(grep -c \" /proc/\" /proc/self/mountinfo); echo DONE; sleep 600']
  - name: default
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo OVER $(grep -c \" /proc/\" /proc/self/mountinfo); echo DONE; sleep 600']
";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for c in ["unmasked", "default"] {
        pod.wait_until(c, Duration::from_secs(20), |p| p.logs(c).contains("DONE"));
    }
    assert!(
        pod.logs("unmasked").contains("OVER 0\n"),
        "{}",
        pod.logs("unmasked")
    );
    let masked = pod.logs("default");
    assert!(!masked.contains("OVER 0\n"), "{masked}");
    pod.down();
    pod.assert_nothing_left();
    // Kubernetes refuses Unmasked in the host's user namespace.
    let out = pod.up(&yaml.replace("  hostUsers: false\n", ""), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "spec.containers[0].securityContext.procMount: Invalid value: \"Unmasked\": `hostUsers` must be false to use `Unmasked`"
        ),
        "{}",
        stderr(&out)
    );
    pod.assert_nothing_left();
}

/// `generate` of a userns pod: run.sh pins the user namespace and id-maps the
/// volumes and layers through `podshim setup-step`, runs the pod with plain
/// runc, and stop.sh undoes every mount; the range stays the output's until
/// it is generated again or removed, and `up --from` runs the same bundles.
#[test]
fn generated_bundles_of_a_userns_pod_run_with_plain_runc_and_up_from() {
    let pod = Pod::new("userns", "gen");
    let yaml = busybox_pod(
        "  hostUsers: false\n  volumes: [{name: data, emptyDir: {}}]\n",
        "c",
        "    volumeMounts: [{name: data, mountPath: /data}]\n",
        "echo MAP $(cat /proc/self/uid_map); touch /data/f",
    )
    .replace("{ns}", &pod.ns)
    .replace("{name}", &pod.name);
    let manifest = pod.tmp.path().join("pod.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let out_dir = pod.tmp.path().join("gen");
    let ids = [pod.id(None), pod.id(Some("c"))];
    let _cleanup = Cleanup {
        ids: ids.to_vec(),
        dir: out_dir.clone(),
    };
    let out = generate(pod.tmp.path(), &manifest, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["setup"][0]["step"], "userNamespace");
    let base = plan["setup"][0]["range"]["hostId"]
        .as_u64()
        .unwrap_or_else(|| panic!("{:#}", plan["setup"][0]));
    let leased = std::fs::read_to_string(format!("{}/{base}", podshim::userns::LEASE_DIR)).unwrap();
    assert_eq!(std::path::Path::new(&leased), out_dir);
    let script = std::fs::read_to_string(out_dir.join("run.sh")).unwrap();
    assert!(script.contains("setup-step \"$DIR\" 0"), "{script}");
    let run = Command::new(out_dir.join("run.sh")).output().unwrap();
    assert!(
        run.status.success(),
        "run.sh: {}{}",
        stdout(&run),
        stderr(&run)
    );
    let text = wait_for(&out_dir.join("logs/c.log"), "DONE", Duration::from_secs(10));
    assert!(text.contains(&format!("MAP 0 {base} 65536")), "{text}");
    let stop = Command::new(out_dir.join("stop.sh")).output().unwrap();
    assert!(stop.status.success(), "stop.sh: {}", stderr(&stop));
    assert_eq!(mounts_under(&out_dir), Vec::<std::path::PathBuf>::new());
    // A reboot empties /run: the output's lease goes; setting the bundles up
    // again leases the range to them anew.
    let lease = format!("{}/{base}", podshim::userns::LEASE_DIR);
    std::fs::remove_file(&lease).unwrap();
    // `up --from` sets the same steps up again under the supervisor.
    let out = pod
        .cmd()
        .args(["up", "--timeout", "60", "--from"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "up --from: {}", stderr(&out));
    pod.wait_until("c", Duration::from_secs(20), |p| {
        p.logs("c").contains("DONE")
    });
    assert!(pod.logs("c").contains(&format!("MAP 0 {base} 65536")));
    pod.down();
    assert_eq!(mounts_under(&out_dir), Vec::<std::path::PathBuf>::new());
    // The output holds its range until it is gone.
    assert!(std::path::Path::new(&format!("{}/{base}", podshim::userns::LEASE_DIR)).exists());
    std::fs::remove_dir_all(&out_dir).unwrap();
    podshim::userns::release(&out_dir);
    pod.assert_nothing_left();
}
