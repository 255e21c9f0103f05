//! `podshim generate`: bundles runnable by hand with plain runc.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

#[test]
fn generated_two_containers_bundles_run_by_hand_with_runc() {
    let tmp = tempfile::tempdir().unwrap();
    let ns = unique_namespace("gen");
    let manifest = tmp.path().join("pod.yaml");
    std::fs::write(&manifest, example_in_namespace("two-containers", &ns)).unwrap();
    let out_dir = tmp.path().join("out");
    let infra = format!("{ns}_two-containers");
    let ids: Vec<String> = ["", "_write-page", "_web", "_client"]
        .iter()
        .map(|s| format!("{infra}{s}"))
        .collect();
    let _cleanup = Cleanup {
        ids: ids.clone(),
        dir: out_dir.clone(),
    };

    let out = generate(tmp.path(), &manifest, &out_dir);
    assert!(out.status.success(), "generate failed: {}", stderr(&out));
    for id in &ids {
        assert!(
            out_dir
                .join("bundles")
                .join(id)
                .join("config.json")
                .is_file(),
            "{id}"
        );
    }
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("plan.json")).unwrap()).unwrap();
    let order: Vec<&str> = std::iter::once(&plan["infra"])
        .chain(plan["containers"].as_array().unwrap())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["POD", "write-page", "web", "client"]);
    assert_eq!(
        plan["containers"][1]["joins"],
        serde_json::json!(["ipc", "net", "uts"])
    );

    // The how-to-run, exactly as a person would use it.
    let run = Command::new(out_dir.join("run.sh")).output().unwrap();
    assert!(
        run.status.success(),
        "run.sh failed: {}{}",
        stdout(&run),
        stderr(&run)
    );
    let listed = runc_ids();
    for id in [&ids[0], &ids[2], &ids[3]] {
        assert!(listed.contains(id), "{id} not in runc list: {listed:?}");
    }
    // The init container ran to completion and was deleted.
    assert!(!listed.contains(&ids[1]));

    // The client reaches the web container over 127.0.0.1: one network namespace.
    let want = format!("hello from two-containers in {ns}");
    let log = wait_for(
        &out_dir.join("logs/client.log"),
        &want,
        Duration::from_secs(20),
    );
    assert!(log.contains(&want), "client log: {log:?}");

    // runc exec sees podshim's containers; the web container shares the infra's UTS.
    let exec = Command::new("runc")
        .args(["exec", &ids[2], "hostname"])
        .output()
        .unwrap();
    assert_eq!(stdout(&exec).trim(), "two-containers", "{}", stderr(&exec));

    let stop = Command::new(out_dir.join("stop.sh")).output().unwrap();
    assert!(stop.status.success(), "stop.sh failed: {}", stderr(&stop));
    let listed = runc_ids();
    for id in &ids {
        assert!(!listed.contains(id), "{id} left in runc list");
    }
    assert_eq!(mounts_under(&out_dir), Vec::<std::path::PathBuf>::new());
}

#[test]
fn generate_changes_nothing_outside_the_output_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let host_dir = tmp.path().join("host-data");
    let manifest = tmp.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: hostpath
  namespace: {ns}
spec:
  volumes:
    - name: data
      hostPath:
        path: {dir}
        type: DirectoryOrCreate
  containers:
    - name: app
      image: localhost/busybox:latest
      volumeMounts:
        - name: data
          mountPath: /data
"#,
            ns = unique_namespace("nochange"),
            dir = host_dir.display()
        ),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let _cleanup = Cleanup {
        ids: Vec::new(),
        dir: out_dir.clone(),
    };
    let before: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = podshim(tmp.path())
        .args(["--root", "/nonexistent/podshim-root", "generate"])
        .arg(&manifest)
        .arg("-o")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !host_dir.exists(),
        "generate created the hostPath directory"
    );
    let script = std::fs::read_to_string(out_dir.join("run.sh")).unwrap();
    assert!(
        script.contains(&format!("mkdir -p -m 0755 '{}'", host_dir.display())),
        "{script}"
    );
    let mut after: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    after.retain(|p| *p != out_dir);
    assert_eq!(before, after);
    assert!(!std::path::Path::new("/nonexistent/podshim-root").exists());
}

#[test]
fn generate_replaces_its_own_previous_output_and_refuses_a_foreign_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        example_in_namespace("two-containers", &unique_namespace("again")),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let _cleanup = Cleanup {
        ids: Vec::new(),
        dir: out_dir.clone(),
    };
    for _ in 0..2 {
        let out = generate(tmp.path(), &manifest, &out_dir);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Three overlays and the shm tmpfs: the second run did not stack mounts.
    assert_eq!(
        mounts_under(&out_dir).len(),
        4,
        "{:?}",
        mounts_under(&out_dir)
    );

    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let out = generate(tmp.path(), &manifest, &foreign);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not empty and holds no plan.json"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn failed_generate_rolls_back_its_mounts_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    // A configMap volume whose items `x` and `x/y` cannot both be files: writing it
    // fails after the rootfs overlays and the pod's /dev/shm were mounted.
    let manifest = tmp.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm, namespace: {ns}}}\ndata: {{a: \"1\", b: \"2\"}}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: rollback\n  namespace: {ns}\nspec:\n  volumes: [{{name: v, configMap: {{name: cm, items: [{{key: a, path: x}}, {{key: b, path: x/y}}]}}}}]\n  containers:\n    - {{name: ok, image: localhost/busybox:latest}}\n    - name: other\n      image: localhost/busybox:latest\n      volumeMounts: [{{name: v, mountPath: /x}}]\n",
            ns = unique_namespace("rollback"),
        ),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let _cleanup = Cleanup {
        ids: Vec::new(),
        dir: out_dir.clone(),
    };
    let out = generate(tmp.path(), &manifest, &out_dir);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // The AtomicWriter's data directory: volumes/v/..<timestamp>.<random>/x.
    assert!(
        err.contains("volumes/v/..") && err.contains("/x: create directory"),
        "{err}"
    );
    assert_eq!(mounts_under(tmp.path()), Vec::<std::path::PathBuf>::new());
    assert!(!out_dir.exists());
}

#[test]
fn generate_of_a_deployment_writes_each_replicas_bundles_runnable_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let ns = unique_namespace("gendeploy");
    let manifest = tmp.path().join("deploy.yaml");
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers: [{{name: c, image: localhost/busybox:latest, command: [sleep, '600']}}]\n"
    );
    std::fs::write(&manifest, &deployment).unwrap();
    let out_dir = tmp.path().join("out");
    let mut cleanup = Cleanup {
        ids: Vec::new(),
        dir: out_dir.clone(),
    };
    let out = generate(tmp.path(), &manifest, &out_dir);
    assert!(out.status.success(), "generate: {}", stderr(&out));
    let listed: Vec<String> =
        serde_json::from_slice(&std::fs::read(out_dir.join("pods.json")).unwrap()).unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    for id in &listed {
        assert!(id.starts_with(&format!("{ns}_web-")), "{id}");
        cleanup.ids.extend([id.clone(), format!("{id}_c")]);
        let plan: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join(id).join("plan.json")).unwrap())
                .unwrap();
        assert_eq!(plan["infra"]["id"], id.as_str());
    }
    // One replica's bundles, run by hand as any generate output.
    let first = out_dir.join(&listed[0]);
    let run = Command::new(first.join("run.sh")).output().unwrap();
    assert!(run.status.success(), "run.sh: {}", stderr(&run));
    assert!(runc_ids().contains(&format!("{}_c", listed[0])));
    // A second generate is refused while those bundles run, then replaces
    // its own output.
    let again = generate(tmp.path(), &manifest, &out_dir);
    assert_eq!(again.status.code(), Some(1), "{}", stdout(&again));
    assert!(stderr(&again).contains("is in use"), "{}", stderr(&again));
    let stop = Command::new(first.join("stop.sh")).output().unwrap();
    assert!(stop.status.success(), "stop.sh: {}", stderr(&stop));
    let again = generate(tmp.path(), &manifest, &out_dir);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        mounts_under(&out_dir).len(),
        2 * 2,
        "{:?}",
        mounts_under(&out_dir)
    );
    // A Job's pods are its controller's to make: refused, saying so.
    let job = tmp.path().join("job.yaml");
    std::fs::write(
        &job,
        format!("apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j, namespace: {ns}}}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: c, image: localhost/busybox:latest}}]\n"),
    )
    .unwrap();
    let refused = generate(tmp.path(), &job, &tmp.path().join("job-out"));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("a Job's pods are made by its controller"),
        "{}",
        stderr(&refused)
    );
}
