//! Beyond one Pod (issue 12): Deployments, ReplicaSets, StatefulSets,
//! DaemonSets, Jobs and Lists with real runc; apply of a changed file; claims'
//! local volumes; `down FILE`.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use crate::support::*;

/// Every pod's state record in the test's state root.
fn pods(h: &Pod) -> Vec<serde_json::Value> {
    let out = h.run(&["ps", "-o", "json"]);
    assert!(out.status.success(), "ps: {}", stderr(&out));
    serde_json::from_str::<Vec<serde_json::Value>>(&stdout(&out)).unwrap()
}

fn names(h: &Pod) -> BTreeSet<String> {
    pods(h)
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn up_ok(h: &Pod, yaml: &str, extra: &[&str]) -> String {
    let out = h.up(yaml, extra);
    assert!(out.status.success(), "up: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn down_file(h: &Pod) -> String {
    let file = h.tmp.path().join("pod.yaml");
    let out = h.run(&["down", file.to_str().unwrap(), "--grace-period", "1"]);
    assert!(out.status.success(), "down FILE: {}", stderr(&out));
    stdout(&out)
}

/// No container of the test's namespace is left in the runtime, and no pod
/// state in its root.
fn assert_nothing_left(h: &Pod) {
    let prefix = format!("{}_", h.ns);
    let left: Vec<String> = runc_ids()
        .into_iter()
        .filter(|i| i.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "containers left: {left:?}");
    assert!(names(h).is_empty(), "pods left: {:?}", names(h));
    assert_eq!(mounts_under(h.tmp.path()), Vec::<std::path::PathBuf>::new());
}

fn deployment(replicas: u32, message: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: '{{name}}', namespace: '{{ns}}'}}\nspec:\n  replicas: {replicas}\n  strategy:\n    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - {{name: app, image: localhost/busybox:latest, command: [sh, -c, 'echo {message} $HOSTNAME; exec sleep 600']}}\n      - {{name: side, image: localhost/busybox:latest, command: [sleep, '600']}}\n"
    )
}

#[test]
fn deployment_replicas_are_named_labelled_owned_scaled_and_rolled_by_up() {
    let h = Pod::new("deploy", "web");
    let out = up_ok(&h, &deployment(3, "v1"), &[]);
    let records = pods(&h);
    assert_eq!(records.len(), 3, "{out}");
    let hash = records[0]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    for p in &records {
        let name = p["name"].as_str().unwrap();
        let suffix = name
            .strip_prefix(&format!("web-{hash}-"))
            .unwrap_or_else(|| panic!("{name} is not web-{hash}-xxxxx"));
        assert_eq!(suffix.len(), 5, "{name}");
        assert_eq!(p["labels"]["app"], "web");
        assert_eq!(p["phase"], "Running");
        let owner = &p["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet");
        assert_eq!(owner["name"], format!("web-{hash}"));
        assert_eq!(owner["controller"], true);
        assert_eq!(p["workload"]["kind"], "Deployment");
        // Each pod's containers are in the runtime, and say their pod's name.
        assert!(
            runc_ids()
                .iter()
                .any(|id| id == &format!("{}_{name}_app", h.ns))
        );
    }
    // ps groups them under their Deployment.
    let table = stdout(&h.run(&["ps"]));
    assert_eq!(table.matches("deployment/web").count(), 3, "{table}");
    let first = names(&h);

    // The same file again changes nothing.
    let again = up_ok(&h, &deployment(3, "v1"), &[]);
    assert_eq!(again.matches("unchanged").count(), 3, "{again}");
    assert_eq!(names(&h), first);

    // Scaled up: two more pods of the same template, the others left running.
    let scaled = up_ok(&h, &deployment(5, "v1"), &[]);
    assert_eq!(scaled.matches("running").count(), 2, "{scaled}");
    let five = names(&h);
    assert_eq!(five.len(), 5);
    assert!(first.is_subset(&five));

    // A changed template replaces every pod, one at a time within maxSurge 1
    // and maxUnavailable 0: five new names, none of the old.
    let rolled = up_ok(&h, &deployment(5, "v2"), &[]);
    let after = names(&h);
    assert_eq!(after.len(), 5, "{rolled}");
    assert!(after.is_disjoint(&five), "{after:?} {five:?}");
    assert_eq!(rolled.matches("stopped and removed").count(), 5, "{rolled}");
    let any = after.iter().next().unwrap();
    let log = stdout(&h.run(&["logs", &format!("{}/{any}", h.ns), "-c", "app"]));
    assert_eq!(log.trim(), format!("v2 {any}"));

    // Scaled down: the surplus goes.
    up_ok(&h, &deployment(2, "v2"), &[]);
    assert_eq!(names(&h).len(), 2);

    let down = down_file(&h);
    assert_eq!(down.matches("stopped and removed").count(), 2, "{down}");
    assert_nothing_left(&h);
}

#[test]
fn daemonset_replicaset_and_list_items_run_as_their_controllers_name_them() {
    let h = Pod::new("kinds", "k");
    let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: DaemonSet\n  metadata: {name: agent, namespace: '{ns}'}\n  spec:\n    selector: {matchLabels: {app: agent}}\n    template:\n      metadata: {labels: {app: agent}}\n      spec:\n        terminationGracePeriodSeconds: 1\n        containers: [{name: a, image: localhost/busybox:latest, command: [sleep, '600']}]\n- apiVersion: apps/v1\n  kind: ReplicaSet\n  metadata: {name: rs, namespace: '{ns}'}\n  spec:\n    replicas: 2\n    selector: {matchLabels: {app: rs}}\n    template:\n      metadata: {labels: {app: rs}}\n      spec:\n        terminationGracePeriodSeconds: 1\n        containers: [{name: a, image: localhost/busybox:latest, command: [sleep, '600']}]\n";
    up_ok(&h, yaml, &[]);
    let records = pods(&h);
    assert_eq!(records.len(), 3);
    let agent: Vec<_> = records
        .iter()
        .filter(|p| p["workload"]["kind"] == "DaemonSet")
        .collect();
    assert_eq!(agent.len(), 1, "one pod on this node");
    assert!(agent[0]["name"].as_str().unwrap().starts_with("agent-"));
    assert!(agent[0]["labels"]["controller-revision-hash"].is_string());
    assert_eq!(agent[0]["labels"]["pod-template-generation"], "1");
    let rs: Vec<_> = records
        .iter()
        .filter(|p| p["ownerReferences"][0]["kind"] == "ReplicaSet")
        .collect();
    assert_eq!(rs.len(), 2);
    for p in rs {
        let name = p["name"].as_str().unwrap();
        assert_eq!(name.len(), "rs-".len() + 5, "{name}");
        assert!(p["labels"].get("pod-template-hash").is_none());
    }
    // The same set again keeps its generation; a changed template is the
    // set's next one (its metadata.generation, which the label carries).
    let generation = |h: &Pod| {
        pods(h)
            .iter()
            .find(|p| p["workload"]["kind"] == "DaemonSet")
            .map(|p| p["labels"]["pod-template-generation"].clone())
    };
    up_ok(&h, yaml, &[]);
    assert_eq!(generation(&h), Some("1".into()));
    up_ok(
        &h,
        &yaml.replacen("[sleep, '600']", "[sleep, '601']", 1),
        &[],
    );
    assert_eq!(generation(&h), Some("2".into()));
    down_file(&h);
    assert_nothing_left(&h);
}

fn statefulset(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db, namespace: '{{ns}}'}}\nspec:\n  replicas: {replicas}\n  serviceName: db\n  selector: {{matchLabels: {{app: db}}}}\n  template:\n    metadata: {{labels: {{app: db}}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: db\n        image: localhost/busybox:latest\n        command: [sh, -c, '[ -f /data/first ] || hostname > /data/first; read up rest < /proc/uptime; echo $up > /data/started; exec sleep 600']\n        readinessProbe: {{exec: {{command: ['true']}}, initialDelaySeconds: 2, periodSeconds: 1}}\n        volumeMounts: [{{name: data, mountPath: /data}}]\n  volumeClaimTemplates:\n  - metadata: {{name: data}}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources: {{requests: {{storage: 1Gi}}}}\n"
    )
}

fn exec(h: &Pod, pod: &str, cmd: &str) -> String {
    let out = h.run(&[
        "exec",
        &format!("{}/{pod}", h.ns),
        "-c",
        "db",
        "--",
        "sh",
        "-c",
        cmd,
    ]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

#[test]
fn statefulset_pods_start_in_ordinal_order_and_their_claims_outlive_down() {
    let h = Pod::new("sts", "db");
    up_ok(&h, &statefulset(2), &[]);
    assert_eq!(
        names(&h),
        BTreeSet::from(["db-0".to_string(), "db-1".to_string()])
    );
    let records = pods(&h);
    let db1 = records.iter().find(|p| p["name"] == "db-1").unwrap();
    assert_eq!(db1["labels"]["statefulset.kubernetes.io/pod-name"], "db-1");
    assert_eq!(db1["labels"]["apps.kubernetes.io/pod-index"], "1");
    assert_eq!(db1["ownerReferences"][0]["kind"], "StatefulSet");
    // Stable network identity: the hostname is the pod's name.
    assert_eq!(exec(&h, "db-1", "hostname"), "db-1");
    // OrderedReady: db-1 started once db-0 was ready, its readiness probe
    // passing no sooner than 2 s after it started.
    let t0: f64 = exec(&h, "db-0", "cat /data/started").parse().unwrap();
    let t1: f64 = exec(&h, "db-1", "cat /data/started").parse().unwrap();
    assert!(t1 - t0 >= 2.0, "db-0 at {t0}, db-1 at {t1}");
    // One volume per ordinal, listed with its user.
    let vols = stdout(&h.run(&["volumes"]));
    for o in [0, 1] {
        let line = vols
            .lines()
            .find(|l| l.starts_with(&format!("{}/data-db-{o} ", h.ns)))
            .unwrap_or_else(|| panic!("no volume for ordinal {o}: {vols}"));
        assert!(line.contains("RWO") && line.contains("1Gi"), "{line}");
        assert!(line.contains(&format!("{}/db-{o}", h.ns)), "{line}");
    }
    // A volume in use is not removed.
    let claim0 = format!("{}/data-db-0", h.ns);
    let refused = h.run(&["volume", "rm", &claim0]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("in use by"),
        "{}",
        stderr(&refused)
    );

    // down keeps the data; up again finds it.
    let down = down_file(&h);
    assert!(down.contains(&format!("volume {claim0} kept")), "{down}");
    assert_nothing_left(&h);
    up_ok(&h, &statefulset(2), &[]);
    assert_eq!(exec(&h, "db-0", "cat /data/first"), "db-0");
    assert_eq!(exec(&h, "db-1", "cat /data/first"), "db-1");
    down_file(&h);
    for o in [0, 1] {
        let claim = format!("{}/data-db-{o}", h.ns);
        let out = h.run(&["volume", "rm", &claim]);
        assert!(out.status.success(), "volume rm: {}", stderr(&out));
    }
    let vols = stdout(&h.run(&["volumes"]));
    assert!(!vols.contains(&h.ns), "{vols}");
    assert_nothing_left(&h);
}

#[test]
fn min_ready_seconds_holds_the_next_ordinal_until_the_last_is_available() {
    let h = Pod::new("minready", "db");
    let yaml = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: '{ns}'}\nspec:\n  replicas: 2\n  minReadySeconds: 3\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: db\n        image: localhost/busybox:latest\n        command: [sh, -c, 'read up rest < /proc/uptime; echo $up > /tmp/started; exec sleep 600']\n        readinessProbe: {exec: {command: ['true']}, periodSeconds: 1}\n";
    // A streak as long as up's --timeout is waited out too: the timeout
    // bounds how long each pod takes to be ready.
    let out = h.up(yaml, &["--timeout", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    down_file(&h);
    up_ok(&h, yaml, &[]);
    // db-1 started no sooner than 3 s after db-0 was ready, which it was no
    // sooner than it started: the probe alone would let it go at once.
    let t0: f64 = exec(&h, "db-0", "cat /tmp/started").parse().unwrap();
    let t1: f64 = exec(&h, "db-1", "cat /tmp/started").parse().unwrap();
    assert!(t1 - t0 >= 3.0, "db-0 at {t0}, db-1 at {t1}");
    down_file(&h);
    assert_nothing_left(&h);
}

#[test]
fn claim_retention_delete_removes_scaled_away_ordinals_claims_and_the_rest_with_down() {
    let h = Pod::new("stsretain", "db");
    let policy = "  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}\n  podManagementPolicy: Parallel\n";
    let yaml = |n: u32| {
        statefulset(n).replace(
            "  serviceName: db\n",
            &format!("  serviceName: db\n{policy}"),
        )
    };
    up_ok(&h, &yaml(2), &[]);
    let claims = |h: &Pod| -> BTreeSet<String> {
        stdout(&h.run(&["volumes"]))
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| c.starts_with(&format!("{}/", h.ns)))
            .map(str::to_string)
            .collect()
    };
    let c0 = format!("{}/data-db-0", h.ns);
    let c1 = format!("{}/data-db-1", h.ns);
    assert_eq!(claims(&h), BTreeSet::from([c0.clone(), c1.clone()]));
    // A claim the set did not make, though named as its ordinal 5's, is not
    // the set's to remove.
    let other = format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data-db-5, namespace: '{}'}}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Mi}}}}\n",
        h.ns
    );
    let other_file = h.tmp.path().join("other.yaml");
    std::fs::write(&other_file, other).unwrap();
    let out = h.run(&["up", other_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Another file's pod mounts db-1's claim: scaled to one, db-1 goes but
    // its claim stays while in use, with a warning, and up succeeds.
    let user = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: reader, namespace: '{}'}}\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes: [{{name: v, persistentVolumeClaim: {{claimName: data-db-1}}}}]\n  containers: [{{name: c, image: localhost/busybox:latest, command: [sleep, '600'], volumeMounts: [{{name: v, mountPath: /v}}]}}]\n",
        h.ns
    );
    let user_file = h.tmp.path().join("reader.yaml");
    std::fs::write(&user_file, user).unwrap();
    let out = h.run(&["up", user_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.up(&yaml(1), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("whenScaled: Delete: PersistentVolumeClaim")
            && stderr(&out).contains("in use by")
            && !stdout(&out).contains(&format!("volume {c1} removed")),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(claims(&h).contains(&c1));
    assert!(!names(&h).contains("db-1"));
    // Once it is free, the next up of the unchanged file removes it.
    let out = h.run(&["down", &format!("{}/reader", h.ns), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = up_ok(&h, &yaml(1), &[]);
    assert!(out.contains(&format!("volume {c1} removed")), "{out}");
    assert_eq!(
        claims(&h),
        BTreeSet::from([c0.clone(), format!("{}/data-db-5", h.ns)])
    );
    // Another file declaring a set of the same name (so the same uid), with
    // none of its pods running, does not take this file's claims with it
    // (db-0 stopped first, so that no pod's use keeps them).
    let out = h.run(&["down", &format!("{}/db-0", h.ns), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let twin = yaml(0).replace("{ns}", &h.ns).replace("{name}", &h.name);
    let twin_file = h.tmp.path().join("twin.yaml");
    std::fs::write(&twin_file, twin).unwrap();
    let out = h.run(&["down", twin_file.to_str().unwrap(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("removed ("), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("volume {c0} kept: made by `up` of ")),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        claims(&h),
        BTreeSet::from([c0.clone(), format!("{}/data-db-5", h.ns)])
    );
    // down takes the set and its claims; the other claim stays.
    let down = down_file(&h);
    assert!(down.contains(&format!("volume {c0} removed")), "{down}");
    assert_eq!(claims(&h), BTreeSet::from([format!("{}/data-db-5", h.ns)]));
    let out = h.run(&["volume", "rm", &format!("{}/data-db-5", h.ns)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_left(&h);
}

#[test]
fn claims_scaled_away_under_retain_are_not_removed_by_a_later_when_scaled_delete() {
    let h = Pod::new("stsretain2", "db");
    let delete = |n: u32| {
        statefulset(n).replace(
            "  serviceName: db\n",
            "  serviceName: db\n  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete}\n",
        )
    };
    up_ok(&h, &statefulset(2), &[]);
    // Scaled to one under Retain: db-1's claim stays.
    up_ok(&h, &statefulset(1), &[]);
    let c1 = format!("{}/data-db-1", h.ns);
    let listed = |h: &Pod| stdout(&h.run(&["volumes"]));
    assert!(listed(&h).contains(&c1));
    // The policy is now Delete: only the pods a scale-down condemns from now
    // on lose their claims (KEP-1847), not those scaled away before.
    let out = up_ok(&h, &delete(1), &[]);
    assert!(!out.contains("removed"), "{out}");
    assert!(listed(&h).contains(&c1));
    down_file(&h);
    for c in [format!("{}/data-db-0", h.ns), c1] {
        let out = h.run(&["volume", "rm", &c]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_nothing_left(&h);
}

#[test]
fn a_readwriteoncepod_claim_serves_one_pod_at_a_time() {
    let h = Pod::new("rwop", "one");
    let yaml = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: solo, namespace: '{ns}'}\nspec:\n  accessModes: [ReadWriteOncePod]\n  resources: {requests: {storage: 10Mi}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: first, namespace: '{ns}'}\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes: [{name: v, persistentVolumeClaim: {claimName: solo}}]\n  containers: [{name: c, image: localhost/busybox:latest, command: [sleep, '600'], volumeMounts: [{name: v, mountPath: /v}]}]\n";
    up_ok(&h, yaml, &[]);
    let second = yaml.replace("name: first", "name: second");
    let out = h.up(&second, &[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("is ReadWriteOncePod and in use by"),
        "{}",
        stderr(&out)
    );
    assert_eq!(names(&h), BTreeSet::from(["first".to_string()]));
    h.run(&["down", &format!("{}/first", h.ns), "--grace-period", "1"]);
    let out = h.run(&["volume", "rm", &format!("{}/solo", h.ns)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_left(&h);
}

#[test]
fn fs_group_is_given_to_a_claims_files_and_never_through_a_link_out_of_it() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let h = Pod::new("claimfsgroup", "owner");
    // Host files a container's symlinks name: the walk must leave them alone.
    let outside = h.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "host").unwrap();
    std::fs::set_permissions(outside.join("secret"), PermissionsExt::from_mode(0o600)).unwrap();
    let pod = |security: &str, command: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: '{{name}}', namespace: '{{ns}}'}}\nspec:\n  terminationGracePeriodSeconds: 1\n{security}  volumes: [{{name: v, persistentVolumeClaim: {{claimName: data}}}}]\n  containers: [{{name: c, image: localhost/busybox:latest, command: [sh, -c, '{command}'], volumeMounts: [{{name: v, mountPath: /data}}]}}]\n"
        )
    };
    // A first pod, without fsGroup, writes a private file and links out.
    let write = format!(
        "mkdir -p /data/sub && echo x > /data/sub/f && chmod 600 /data/sub/f && chmod 700 /data/sub && ln -s {o}/secret /data/to-file && ln -s {o} /data/to-dir && touch /data/done; exec sleep 600",
        o = outside.display()
    );
    up_ok(&h, &pod("", &write), &[]);
    let data = store().join("volumes").join(&h.ns).join("data/data");
    h.wait_until("the files written", Duration::from_secs(30), |_| {
        data.join("done").exists()
    });
    let out = h.run(&["down", &format!("{}/owner", h.ns), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The next pod asks for fsGroup: what the claim holds is given the group.
    let out = up_ok(
        &h,
        &pod("  securityContext: {fsGroup: 2345}\n", "exec sleep 600"),
        &[],
    );
    let meta = |p: &str| std::fs::symlink_metadata(data.join(p)).unwrap();
    for p in ["", "sub", "sub/f", "to-file", "to-dir"] {
        assert_eq!(meta(p).gid(), 2345, "{p:?}: {out}");
    }
    assert_eq!(meta("sub/f").mode() & 0o7777, 0o660);
    assert_eq!(meta("sub").mode() & 0o7777, 0o2770);
    let host = std::fs::metadata(outside.join("secret")).unwrap();
    assert_eq!((host.gid(), host.mode() & 0o7777), (0, 0o600));
    assert_eq!(std::fs::metadata(&outside).unwrap().gid(), 0);
    // A second pod with another fsGroup while the first runs: the files are
    // left as the first was given them (the first mount's, as the kubelet's
    // local volumes).
    let second = pod("  securityContext: {fsGroup: 3456}\n", "exec sleep 600")
        .replace("name: '{name}'", "name: second")
        .replace("{ns}", &h.ns);
    let second_file = h.tmp.path().join("second.yaml");
    std::fs::write(&second_file, second).unwrap();
    let out = h.run(&["up", second_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(names(&h).len(), 2);
    assert_eq!(meta("sub/f").gid(), 2345);
    let out = h.run(&["down", &format!("{}/second", h.ns), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Nor does a generated pod's start (`up --from`, as run.sh), which is
    // decided when it starts, not when its bundles were written.
    let third = pod("  securityContext: {fsGroup: 4567}\n", "exec sleep 600")
        .replace("name: '{name}'", "name: third")
        .replace("{ns}", &h.ns);
    let third_file = h.tmp.path().join("third.yaml");
    std::fs::write(&third_file, third).unwrap();
    let out_dir = h.tmp.path().join("out_dir-third");
    let out = generate(h.tmp.path(), &third_file, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.run(&["up", "--from", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(names(&h).len(), 2);
    assert_eq!((meta("").gid(), meta("sub/f").gid()), (2345, 2345));
    let out = h.run(&["down", &format!("{}/third", h.ns), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.run(&["down", &format!("{}/owner", h.ns), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.run(&["volume", "rm", &format!("{}/data", h.ns)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_left(&h);
}

fn job(spec: &str, command: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: '{{name}}', namespace: '{{ns}}'}}\nspec:\n{spec}  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: main, image: localhost/busybox:latest, command: [sh, -c, '{command}']}}]\n"
    )
}

/// `up --wait` of `yaml`: exit 0, and the Job `name` Complete with `n`
/// succeeded.
fn up_wait_complete(h: &Pod, yaml: &str, name: &str, n: u32) {
    let out = h.up(yaml, &["--wait"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let want = format!("job {}/{name}: Complete ({n} succeeded)", h.ns);
    assert!(stdout(&out).contains(&want), "{}", stdout(&out));
}

/// The directory of the Job `name` in the test's state root.
fn job_dir(h: &Pod, name: &str) -> std::path::PathBuf {
    h.tmp
        .path()
        .join("run/jobs")
        .join(format!("{}_{name}", h.ns))
}

/// The Job's `status.json` (null while there is none).
fn job_status(dir: &std::path::Path) -> serde_json::Value {
    std::fs::read(dir.join("status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// SIGKILLs the Job's controller and waits until it is gone (or a zombie):
/// its lock goes with it. Returns its pid.
fn kill_controller(h: &Pod, dir: &std::path::Path) -> i32 {
    let pid = job_status(dir)["controllerPid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    h.wait_until("the controller gone", Duration::from_secs(10), |_| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    });
    pid
}

/// Waits until the Job has one pod active.
fn wait_first_attempt(h: &Pod, dir: &std::path::Path) {
    h.wait_until("the first attempt", Duration::from_secs(30), |_| {
        job_status(dir)["activePods"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
}

#[test]
fn a_job_runs_its_completions_and_up_wait_exits_with_its_outcome() {
    let h = Pod::new("job", "count");
    up_wait_complete(
        &h,
        &job(
            "  completions: 3\n  parallelism: 2\n",
            "echo done $HOSTNAME",
        ),
        "count",
        3,
    );
    let records = pods(&h);
    assert_eq!(records.len(), 3);
    for p in &records {
        assert_eq!(p["phase"], "Succeeded");
        assert_eq!(p["labels"]["job-name"], "count");
        assert_eq!(p["ownerReferences"][0]["kind"], "Job");
    }
    let table = stdout(&h.run(&["ps"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{}/count", h.ns))
                && l.contains("3/3")
                && l.contains("Complete")),
        "{table}"
    );
    let down = down_file(&h);
    assert!(
        down.contains(&format!("job {}/count removed", h.ns)),
        "{down}"
    );
    assert_nothing_left(&h);
}

#[test]
fn a_failing_job_fails_by_its_backoff_limit_or_its_pod_failure_policy() {
    let h = Pod::new("jobfail", "broken");
    let out = h.up(&job("  backoffLimit: 0\n", "exit 2"), &["--wait"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out)
            .contains("Failed: BackoffLimitExceeded: Job has reached the specified backoff limit"),
        "{}",
        stdout(&out)
    );
    down_file(&h);
    let policy = "  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {containerName: main, operator: In, values: [42]}\n";
    let out = h.up(&job(policy, "exit 42"), &["--wait"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("Failed: PodFailurePolicy: Container main for pod broken-")
            && text.contains("failed with exit code 42 matching FailJob rule at index 0"),
        "{text}"
    );
    // One attempt only, whatever the backoffLimit.
    assert_eq!(pods(&h).len(), 1);
    down_file(&h);
    assert_nothing_left(&h);
}

#[test]
fn a_jobs_active_deadline_ends_it_and_takes_its_pods_down() {
    let h = Pod::new("jobdeadline", "slow");
    let spec = "  activeDeadlineSeconds: 2\n";
    let out = h.up(
        &job(spec, "sleep 600").replace(
            "restartPolicy: Never",
            "restartPolicy: Never\n      terminationGracePeriodSeconds: 1",
        ),
        &["--wait"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out)
            .contains("Failed: DeadlineExceeded: Job was active longer than specified deadline"),
        "{}",
        stdout(&out)
    );
    let records = pods(&h);
    assert!(records.is_empty(), "{records:?}");
    down_file(&h);
    assert_nothing_left(&h);
}

#[test]
fn kinds_one_node_cannot_serve_are_refused_by_name_unless_skipped() {
    let h = Pod::new("kinds", "svc");
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: '{ns}'}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers: [{name: c, image: localhost/busybox:latest, command: [sleep, '600']}]\n";
    let out = h.up(yaml, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("document 1: kind Service is not supported (no kube-proxy"),
        "{}",
        stderr(&out)
    );
    assert!(names(&h).is_empty());
    let out = h.up(yaml, &["--skip-unsupported-kinds"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: document 1: Service web: skipped"),
        "{}",
        stderr(&out)
    );
    down_file(&h);
    assert_nothing_left(&h);
}

#[test]
fn a_bare_pod_of_another_file_is_not_replaced_by_up() {
    let h = Pod::new("other", "p");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers: [{name: c, image: localhost/busybox:latest, command: [sleep, '600']}]\n";
    up_ok(&h, yaml, &[]);
    let other = h.tmp.path().join("other.yaml");
    std::fs::write(
        &other,
        yaml.replace("{ns}", &h.ns)
            .replace("{name}", &h.name)
            .replace("600", "601"),
    )
    .unwrap();
    let out = h.run(&["up", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    // The same file, changed: replaced.
    let changed = up_ok(&h, &yaml.replace("600", "602"), &[]);
    assert!(changed.contains("replaced"), "{changed}");
    let cmd = &pods(&h)[0]["templateHash"];
    assert!(cmd.is_string());
    down_file(&h);
    assert_nothing_left(&h);
}

/// The argv of a unit's `Key=` line (the test's paths hold no space or quote).
fn unit_command(unit: &str, key: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in\n{unit}"));
    line.split_whitespace().map(str::to_string).collect()
}

fn systemd_analyze_verify(unit: &std::path::Path) {
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(unit)
        .output()
        .expect("systemd-analyze (scripts/setup installs systemd)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify {}: {}",
        unit.display(),
        stderr(&out)
    );
}

#[test]
fn generated_systemd_unit_verifies_runs_notifies_ready_and_stops() {
    use std::os::unix::net::UnixDatagram;
    let h = Pod::new("systemd", "web");
    let manifest = h.tmp.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        deployment(2, "boot")
            .replace("{ns}", &h.ns)
            .replace("{name}", &h.name),
    )
    .unwrap();
    let units = h.tmp.path().join("units");
    std::fs::create_dir(&units).unwrap();
    let out = h.run(&[
        "generate",
        "systemd",
        manifest.to_str().unwrap(),
        "-o",
        units.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let unit_path = units.join("podshim-pod.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(unit.contains("\nType=notify\n"), "{unit}");
    assert!(unit.contains("\nRestart=on-failure\n"), "{unit}");
    systemd_analyze_verify(&unit_path);
    let start = unit_command(&unit, "ExecStart");
    let stop = unit_command(&unit, "ExecStop");
    // The network `generate` was run with (PODSHIM_NETWORK=none here) is
    // the unit's own: systemd passes on none of the caller's environment.
    assert_eq!(
        &start[start.len() - 6..],
        [
            "up",
            "--wait",
            "--replace",
            "--network",
            "none",
            manifest.to_str().unwrap()
        ]
    );
    assert_eq!(
        &stop[stop.len() - 2..],
        ["down", manifest.to_str().unwrap()]
    );

    // The unit's ExecStart, as systemd would run it: READY=1 arrives on our
    // socket once the pods run.
    let socket_path = h.tmp.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    let mut service = std::process::Command::new(&start[0])
        .args(&start[1..])
        // The unit carries the state paths and the network.
        .env_remove("PODSHIM_NETWORK")
        .env_remove("PODSHIM_ROOT")
        .env_remove("PODSHIM_STORE")
        .env_remove("PODSHIM_LOGS")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let n = socket
        .recv(&mut buf)
        .expect("READY=1 within the start timeout");
    let message = String::from_utf8_lossy(&buf[..n]).to_string();
    assert_eq!(message, "READY=1\nSTATUS=2 pods running");
    let records = pods(&h);
    assert_eq!(records.len(), 2);
    assert!(
        records.iter().all(|p| p["phase"] == "Running"),
        "{records:?}"
    );

    // ExecStop takes the pods down; `up --wait` sees them go and ends cleanly.
    let out = std::process::Command::new(&stop[0])
        .args(&stop[1..])
        .output()
        .unwrap();
    assert!(out.status.success(), "ExecStop: {}", stderr(&out));
    let status = service.wait().unwrap();
    assert!(status.success(), "ExecStart ended with {status}");
    assert_nothing_left(&h);

    // The template for a manifest directory verifies too, and runs `DIR/%I`.
    let out = h.run(&[
        "generate",
        "systemd",
        "--template",
        h.tmp.path().to_str().unwrap(),
        "-o",
        units.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let template = units.join("podshim@.service");
    let text = std::fs::read_to_string(&template).unwrap();
    let start = unit_command(&text, "ExecStart");
    assert_eq!(
        start.last().unwrap(),
        &format!("{}/%I", h.tmp.path().display())
    );
    systemd_analyze_verify(&template);
}

fn watch_pod(name: &str, sleep: u32) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: '{{ns}}'}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers: [{{name: c, image: localhost/busybox:latest, command: [sleep, '{sleep}']}}]\n"
    )
}

#[test]
fn watch_keeps_a_manifest_directory_running_through_changes_and_a_wiped_state_root() {
    let h = Pod::new("watch", "static");
    let dir = h.tmp.path().join("manifests");
    std::fs::create_dir(&dir).unwrap();
    let write = |file: &str, text: &str| {
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text.replace("{ns}", &h.ns)).unwrap();
        std::fs::rename(&tmp, dir.join(file)).unwrap();
    };
    let start_watch = || {
        podshim(h.tmp.path())
            .args(["watch", dir.to_str().unwrap(), "--period", "1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let stop_watch = |mut child: std::process::Child| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::SIGTERM,
        )
        .unwrap();
        assert!(child.wait().unwrap().success());
    };
    let hash_of = |name: &str| {
        pods(&h)
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["templateHash"].as_str().unwrap().to_string())
    };
    write("a.yaml", &watch_pod("a", 600));
    let watcher = start_watch();
    h.wait_until("pod a", Duration::from_secs(60), |_| {
        names(&h).contains("a")
    });
    // A new file starts its pods; a dotfile is ignored.
    let b = deployment(2, "b").replace("{name}", "b");
    write("b.yaml", &format!("{b}---\n{}", watch_pod("extra", 600)));
    write(".hidden.yaml", &watch_pod("hidden", 600));
    h.wait_until("deployment b", Duration::from_secs(60), |_| {
        names(&h).iter().filter(|n| n.starts_with("b-")).count() == 2 && names(&h).contains("extra")
    });
    // A document the file no longer holds: its pod stops, the rest stays.
    let deployed: BTreeSet<String> = names(&h)
        .into_iter()
        .filter(|n| n.starts_with("b-"))
        .collect();
    write("b.yaml", &b);
    h.wait_until("pod extra pruned", Duration::from_secs(60), |_| {
        !names(&h).contains("extra")
    });
    assert!(deployed.is_subset(&names(&h)));
    // A changed file replaces its pod.
    let before = hash_of("a").unwrap();
    write("a.yaml", &watch_pod("a", 601));
    h.wait_until("pod a replaced", Duration::from_secs(60), |_| {
        hash_of("a").is_some_and(|x| x != before)
    });
    // A removed file stops its pods.
    std::fs::remove_file(dir.join("b.yaml")).unwrap();
    h.wait_until("deployment b gone", Duration::from_secs(60), |_| {
        !names(&h).iter().any(|n| n.starts_with("b-"))
    });
    assert!(!names(&h).contains("hidden"));
    // Stopping the watcher leaves the pods running, as a kubelet restart does.
    stop_watch(watcher);
    assert_eq!(pods(&h)[0]["phase"], "Running");

    // A reboot: every pod and the state root gone. The watcher brings the
    // directory's pods back.
    let out = h.run(&["down", &format!("{}/a", h.ns), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(h.tmp.path().join("run")).unwrap();
    let watcher = start_watch();
    h.wait_until("pod a back", Duration::from_secs(60), |_| {
        pods(&h)
            .iter()
            .any(|p| p["name"] == "a" && p["phase"] == "Running")
    });
    stop_watch(watcher);
    let out = h.run(&[
        "down",
        dir.join("a.yaml").to_str().unwrap(),
        "--grace-period",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_left(&h);
}

#[test]
fn watch_takes_up_a_job_whose_controller_died() {
    let h = Pod::new("watchjob", "batch");
    let dir = h.tmp.path().join("manifests");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("job.yaml");
    std::fs::write(
        &file,
        job("  completions: 2\n", "sleep 2")
            .replace("{ns}", &h.ns)
            .replace("{name}", &h.name),
    )
    .unwrap();
    let mut watcher = podshim(h.tmp.path())
        .args(["watch", dir.to_str().unwrap(), "--period", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = job_dir(&h, "batch");
    let status = || job_status(&dir);
    wait_first_attempt(&h, &dir);
    let pid = kill_controller(&h, &dir);
    // The watcher's periodic check sees the Job without its controller and
    // applies the file again: a new controller finishes the Job.
    h.wait_until("the job complete", Duration::from_secs(60), |_| {
        status()["condition"]["type"] == "Complete"
    });
    assert_eq!(status()["succeeded"], 2, "{}", status());
    assert_ne!(status()["controllerPid"].as_i64(), Some(pid as i64));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watcher.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    assert!(watcher.wait().unwrap().success());
    let out = h.run(&["down", file.to_str().unwrap(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_left(&h);
}

#[test]
fn a_workload_of_another_file_is_neither_taken_over_by_up_nor_removed_by_its_down() {
    let h = Pod::new("takeover", "web");
    up_ok(&h, &deployment(2, "a"), &[]);
    let first = names(&h);
    let other = h.tmp.path().join("other.yaml");
    std::fs::write(
        &other,
        deployment(2, "b")
            .replace("{ns}", &h.ns)
            .replace("{name}", &h.name),
    )
    .unwrap();
    let out = h.run(&["up", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!(
            "deployment {}/web already runs, started from",
            h.ns
        )),
        "{}",
        stderr(&out)
    );
    let out = h.run(&["down", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("left alone"), "{}", stdout(&out));
    assert_eq!(names(&h), first);
    down_file(&h);
    assert_nothing_left(&h);
}

#[test]
fn a_job_with_ttl_seconds_after_finished_goes_with_its_pods_once_up_wait_saw_its_end() {
    let h = Pod::new("jobttl", "brief");
    let dir = job_dir(&h, "brief");
    for ttl in ["2", "0"] {
        let yaml = job(&format!("  ttlSecondsAfterFinished: {ttl}\n"), "echo done");
        up_wait_complete(&h, &yaml, "brief", 1);
        if ttl == "2" {
            // Ended, and kept for its two seconds: listed as Complete.
            let ps = stdout(&h.run(&["ps"]));
            assert!(ps.contains("Complete"), "{ps}");
        }
        // Then the Job and its pod are removed, as the TTL-after-finished
        // controller's cascade removes them; `up` again runs it anew.
        h.wait_until("the job removed", Duration::from_secs(20), |h| {
            !dir.exists() && names(h).is_empty()
        });
    }
    assert_nothing_left(&h);
}

#[test]
fn a_completed_job_is_never_run_again_whatever_the_file_now_says() {
    let h = Pod::new("jobonce", "once");
    up_wait_complete(&h, &job("", "echo once"), "once", 1);
    assert_eq!(names(&h).len(), 1);
    // The file gains a TTL (not the Job's as made, and no template change):
    // `up --wait` reports the end that stands; no second pod runs.
    up_wait_complete(
        &h,
        &job("  ttlSecondsAfterFinished: 0\n", "echo once"),
        "once",
        1,
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(names(&h).len(), 1, "{:?}", names(&h));
    down_file(&h);
    assert_nothing_left(&h);
}

#[test]
fn down_ends_a_job_controller_waiting_out_ttl_seconds_after_finished() {
    let h = Pod::new("jobttldown", "kept");
    let yaml = job("  ttlSecondsAfterFinished: 3600\n", "echo done");
    let out = h.up(&yaml, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = job_dir(&h, "kept");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("status.json")).unwrap()).unwrap();
    let pid = status["controllerPid"]
        .as_i64()
        .expect("the controller waits") as i32;
    assert_eq!(names(&h).len(), 1);
    down_file(&h);
    assert!(!dir.exists());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| !c.windows(14).any(|w| w == b"job-controller")),
        "the controller outlived down"
    );
    assert_nothing_left(&h);
}

#[test]
fn an_indexed_job_runs_one_pod_per_index_with_its_index_and_hostname() {
    let h = Pod::new("jobindexed", "shard");
    let yaml = job(
        "  completionMode: Indexed\n  completions: 3\n  parallelism: 2\n",
        "echo index=$JOB_COMPLETION_INDEX host=$(hostname)",
    );
    up_wait_complete(&h, &yaml, "shard", 3);
    let mut seen = BTreeSet::new();
    for p in pods(&h) {
        let name = p["name"].as_str().unwrap().to_string();
        let index = p["labels"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(name.starts_with(&format!("shard-{index}-")), "{name}");
        let logs = stdout(&h.run(&["logs", &format!("{}/{name}", h.ns)]));
        assert_eq!(logs.trim(), format!("index={index} host=shard-{index}"));
        seen.insert(index);
    }
    assert_eq!(
        seen,
        BTreeSet::from(["0".to_string(), "1".to_string(), "2".to_string()])
    );
    let status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            h.tmp
                .path()
                .join("run/jobs")
                .join(format!("{}_shard", h.ns))
                .join("status.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(status["completedIndexes"], "0-2", "{status}");
    down_file(&h);
    assert_nothing_left(&h);
}

/// A Job `name` whose container runs `script` with /marks, a host directory
/// all its attempts share: a marker there tells a first attempt from the rest.
fn marked_job(h: &Pod, name: &str, spec: &str, script: &str) -> String {
    let marks = h.tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}, namespace: '{{ns}}'}}\nspec:\n{spec}  template:\n    spec:\n      restartPolicy: Never\n      terminationGracePeriodSeconds: 1\n      volumes: [{{name: m, hostPath: {{path: '{}'}}}}]\n      containers: [{{name: main, image: localhost/busybox:latest, volumeMounts: [{{name: m, mountPath: /marks}}], command: [sh, -c, '{script}']}}]\n",
        marks.display()
    )
}

#[test]
fn an_indexed_jobs_failed_index_is_made_again_and_the_job_completes_once_each_index_succeeded() {
    let h = Pod::new("jobreindex", "flaky");
    // Index 1 fails its first attempt; index 0 succeeds.
    let yaml = marked_job(
        &h,
        "flaky",
        "  completionMode: Indexed\n  completions: 2\n  parallelism: 2\n  backoffLimit: 1\n",
        "if [ $JOB_COMPLETION_INDEX = 1 ] && ! [ -e /marks/tried ]; then touch /marks/tried; exit 3; fi; echo index=$JOB_COMPLETION_INDEX",
    );
    up_wait_complete(&h, &yaml, "flaky", 2);
    let status = job_status(&job_dir(&h, "flaky"));
    assert_eq!(status["failed"], 1, "{status}");
    assert_eq!(status["completedIndexes"], "0,1", "{status}");
    // Three pods: index 0 once, index 1 failed and then made again.
    let mut by_index: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in pods(&h) {
        let index = p["labels"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap()
            .to_string();
        by_index
            .entry(index)
            .or_default()
            .push(p["phase"].as_str().unwrap().to_string());
    }
    for phases in by_index.values_mut() {
        phases.sort();
    }
    assert_eq!(
        by_index,
        BTreeMap::from([
            ("0".to_string(), vec!["Succeeded".to_string()]),
            (
                "1".to_string(),
                vec!["Failed".to_string(), "Succeeded".to_string()]
            ),
        ])
    );
    down_file(&h);
    assert_nothing_left(&h);
}

#[test]
fn a_job_whose_controller_never_wrote_its_status_is_started_again_by_up() {
    let h = Pod::new("jobnostatus", "first");
    // The first attempt hangs; any later one succeeds.
    let yaml = marked_job(
        &h,
        "first",
        "",
        "if ! [ -e /marks/tried ]; then touch /marks/tried; exec sleep 600; fi",
    );
    let out = h.up(&yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = job_dir(&h, "first");
    wait_first_attempt(&h, &dir);
    // As if `up` had died between making the Job and starting its
    // controller: a record, no controller, no status, no pod.
    kill_controller(&h, &dir);
    for name in names(&h) {
        let out = h.run(&["down", &format!("{}/{name}", h.ns), "--grace-period", "1"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    std::fs::remove_file(dir.join("status.json")).unwrap();
    // up of the same file starts a controller for it, which runs it.
    up_wait_complete(&h, &yaml, "first", 1);
    down_file(&h);
    assert_nothing_left(&h);
}

#[test]
fn a_job_whose_controller_died_is_taken_up_again_by_up() {
    let h = Pod::new("jobresume", "resumed");
    let yaml = job("  completions: 2\n", "sleep 2");
    let out = h.up(&yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = job_dir(&h, "resumed");
    wait_first_attempt(&h, &dir);
    // Its lock goes with it; `up` starts a controller that takes up the Job.
    kill_controller(&h, &dir);
    up_wait_complete(&h, &yaml, "resumed", 2);
    // The attempt that ran on is counted, not made again: two pods in all.
    assert_eq!(pods(&h).len(), 2, "{:?}", names(&h));
    down_file(&h);
    assert_nothing_left(&h);
}

/// A registry on 127.0.0.1 that takes connections and never answers: a pull
/// from it hangs (until the client's read timeout) while the listener lives.
struct StalledRegistry {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StalledRegistry {
    fn start() -> StalledRegistry {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        held.push(conn);
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        StalledRegistry {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for StalledRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_job_pod_whose_start_its_controller_died_in_is_counted_and_cleared() {
    let h = Pod::new("jobinflight", "stalled");
    let registry = StalledRegistry::start();
    let yaml = job("  backoffLimit: 0\n", "true").replace(
        "localhost/busybox:latest",
        &format!("127.0.0.1:{}/stall:1", registry.port),
    );
    let out = h.up(&yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = job_dir(&h, "stalled");
    let status = || job_status(&dir);
    // The controller pulls the pod's image, which hangs: the pod is in
    // flight, and status.json says so before the start returns.
    h.wait_until("the pull in flight", Duration::from_secs(30), |_| {
        registry.accepted.load(std::sync::atomic::Ordering::SeqCst) > 0
    });
    let active = status()["activePods"].clone();
    assert_eq!(active.as_array().map(Vec::len), Some(1), "{}", status());
    kill_controller(&h, &dir);
    drop(registry);
    // The controller that takes up sees the attempt gone, a failure: with
    // backoffLimit 0 the Job fails, and no attempt is made again.
    let out = h.up(&yaml, &["--wait"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("BackoffLimitExceeded"),
        "{}",
        stdout(&out)
    );
    let end = status();
    assert_eq!(end["failed"], 1, "{end}");
    assert_eq!(end["pods"], serde_json::json!([active[0].clone()]), "{end}");
    // What the dead start left under the state root is cleared.
    let pods_dir = h.tmp.path().join("run/pods");
    let prefix = format!("{}_", h.ns);
    let left = || -> Vec<String> {
        std::fs::read_dir(&pods_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(left(), Vec::<String>::new());
    down_file(&h);
    assert_nothing_left(&h);
}
