//! Issue 8: hostile manifests and images, limits, projections, OOM reporting.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::*;

fn exec(pod: &Pod, container: &str, script: &str) -> std::process::Output {
    pod.run(&[
        "exec",
        &pod.key(),
        "-c",
        container,
        "--",
        "sh",
        "-c",
        script,
    ])
}

/// Writing each of `targets` fails with EROFS (CVE-2017-1002102: no container can
/// rewrite what its siblings read).
fn assert_read_only(pod: &Pod, container: &str, targets: &[&str]) {
    for target in targets {
        let out = exec(pod, container, &format!("echo evil > {target}"));
        assert!(!out.status.success(), "{target} was writable");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{target}: {}",
            stderr(&out)
        );
    }
}

/// The kubelet's AtomicWriter layout in `dir`: name -> ..data/name, and
/// ..data -> ..<timestamp>.<random>.
fn assert_reached_through_data(pod: &Pod, container: &str, dir: &str, names: &[&str]) {
    for name in names {
        let out = exec(pod, container, &format!("readlink {dir}/{name}"));
        assert_eq!(stdout(&out), format!("..data/{name}\n"), "{dir}/{name}");
    }
    let out = exec(pod, container, &format!("readlink {dir}/..data"));
    assert!(stdout(&out).starts_with("..2"), "{}", stdout(&out));
}

#[test]
fn projections_are_read_only_in_every_container_and_reached_through_the_data_symlink() {
    let pod = Pod::new("proj", "projections");
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: '{ns}'}\ndata: {mode: fast}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: sec, namespace: '{ns}'}\nstringData: {pw: hunter2}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  volumes:\n    - {name: cm, configMap: {name: cfg}}\n    - {name: s, secret: {secretName: sec}}\n    - {name: info, downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}}\n  containers:\n    - name: writer\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      volumeMounts:\n        - {name: cm, mountPath: /cm, readOnly: false}\n        - {name: s, mountPath: /s}\n        - {name: info, mountPath: /info}\n        - {name: cm, mountPath: /mode, subPath: mode}\n    - name: reader\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      volumeMounts:\n        - {name: cm, mountPath: /cm}\n        - {name: s, mountPath: /s}\n        - {name: info, mountPath: /info}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    assert_read_only(
        &pod,
        "writer",
        &["/cm/mode", "/cm/new", "/s/pw", "/info/name", "/mode"],
    );
    let out = exec(&pod, "writer", "rm /cm/..data || ln -sfn / /cm/..data");
    assert!(!out.status.success(), "the data symlink was replaceable");
    let out = exec(&pod, "reader", "cat /cm/mode /s/pw /info/name");
    assert_eq!(stdout(&out), format!("fasthunter2{}", pod.name));
    assert_reached_through_data(&pod, "reader", "/cm", &["mode"]);
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
}

#[test]
fn a_projected_volume_combines_a_config_map_a_secret_and_the_downward_api_read_only_on_tmpfs() {
    let pod = Pod::new("projd", "projected");
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: '{ns}'}\ndata: {mode: fast, unused: x}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: sec, namespace: '{ns}'}\nstringData: {pw: hunter2}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  volumes:\n    - name: all\n      projected:\n        defaultMode: 0440\n        sources:\n          - {configMap: {name: cfg, items: [{key: mode, path: conf/mode, mode: 0600}]}}\n          - {secret: {name: sec, items: [{key: pw, path: pw, mode: 0400}]}}\n          - {downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}}\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      volumeMounts: [{name: all, mountPath: /all, readOnly: false}]\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let out = exec(&pod, "app", "cat /all/conf/mode /all/pw /all/name");
    assert_eq!(
        stdout(&out),
        format!("fasthunter2{}", pod.name),
        "{}",
        stderr(&out)
    );
    let out = exec(
        &pod,
        "app",
        "stat -L -c '%n %a' /all/conf/mode /all/pw /all/name; ls /all",
    );
    assert_eq!(
        stdout(&out),
        "/all/conf/mode 600\n/all/pw 400\n/all/name 440\nconf\nname\npw\n",
        "the modes, and only the listed items: {}",
        stderr(&out)
    );
    // Read-only although the mount says `readOnly: false`.
    assert_read_only(&pod, "app", &["/all/pw", "/all/conf/mode", "/all/new"]);
    // pkg/volume/projected: a memory-backed volume, mounted read-only.
    let out = exec(
        &pod,
        "app",
        "awk '$2 == \"/all\" {print $3, substr($4, 1, 2)}' /proc/mounts",
    );
    assert_eq!(stdout(&out), "tmpfs ro\n", "{}", stderr(&out));
    assert_reached_through_data(&pod, "app", "/all", &["pw", "conf"]);
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
}

#[test]
fn a_missing_host_path_without_a_type_is_created_as_a_0755_directory() {
    let pod = Pod::new("hpdir", "hostpath-unset");
    let host = pod.tmp.path().join("host/made/here");
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: '{{name}}', namespace: '{{ns}}'}}\nspec:\n  volumes: [{{name: h, hostPath: {{path: '{}'}}}}]\n  containers:\n    - {{name: app, image: localhost/busybox:latest, command: [sh, -c, 'echo hi > /data/f; sleep 600'], volumeMounts: [{{name: h, mountPath: /data}}]}}\n",
        host.display()
    );
    let out = pod.up(&yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    assert_eq!(
        std::fs::metadata(&host).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    pod.wait_until("the file in the host path", Duration::from_secs(10), |_| {
        host.join("f").exists()
    });
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
    assert!(host.join("f").exists(), "a host path is the host's: kept");
}

#[test]
fn a_pod_requesting_10_to_the_11_cores_runs_with_the_kernels_largest_weight() {
    let pod = Pod::new("cpu", "many-cores");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      resources: {requests: {cpu: '1e11'}, limits: {cpu: '1e11', memory: 7Ei}}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let config = pod.config("app");
    let cpu = &config["linux"]["resources"]["cpu"];
    assert_eq!(cpu["shares"], 262_144, "{cpu}");
    assert!(
        cpu.get("quota").is_none(),
        "no quota the kernel refuses: {cpu}"
    );
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
}

#[test]
fn a_container_killed_for_memory_is_reported_as_oomkilled_in_ps() {
    let pod = Pod::new("oom", "oom");
    // tail keeps the whole newline-free input in memory: far past the limit.
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  restartPolicy: Never\n  containers:\n    - name: hog\n      image: localhost/busybox:latest\n      command: [sh, -c, 'sleep 1; head -c 256m /dev/zero | tail']\n      resources: {limits: {memory: 16Mi}}\n    - {name: calm, image: localhost/busybox:latest, command: [sleep, '600']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    pod.wait_until("the hog to end", Duration::from_secs(30), |p| {
        p.container("hog")["state"]["state"] == "terminated"
    });
    let hog = pod.container("hog");
    assert_eq!(hog["state"]["reason"], "OOMKilled", "{hog:#}");
    assert_eq!(hog["state"]["exitCode"], 137, "{hog:#}");
    let calm = pod.container("calm");
    assert_eq!(calm["state"]["state"], "running", "{calm:#}");
    let table = stdout(&pod.run(&["ps", &pod.key()]));
    assert!(table.contains("OOMKilled"), "{table}");
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
}

/// Whether this process may lower OOM scores (CAP_SYS_RESOURCE, bit 24).
fn can_lower_oom_scores() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    eff & (1 << 24) != 0
}

fn oom_score_adj_of(pid: i64) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn runtime_pid(id: &str) -> i64 {
    let out = std::process::Command::new("runc")
        .args(["state", id])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["pid"].as_i64().unwrap()
}

#[test]
fn oom_scores_follow_the_pods_qos_and_the_supervisor_is_exempt_where_the_host_allows() {
    let capable = can_lower_oom_scores();
    // Without CAP_SYS_RESOURCE no score goes below podshim's own (this one's).
    let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let expect = |adj: i32| if capable { adj } else { adj.max(own) };

    let guaranteed = Pod::new("oomadj", "guaranteed");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sleep, '600'], resources: {limits: {cpu: 100m, memory: 64Mi}}}\n";
    let out = guaranteed.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    assert_eq!(
        oom_score_adj_of(runtime_pid(&guaranteed.id(None))),
        expect(-998)
    );
    assert_eq!(
        oom_score_adj_of(runtime_pid(&guaranteed.id(Some("app")))),
        expect(-997)
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(guaranteed.pod_dir().join("state.json")).unwrap())
            .unwrap();
    let supervisor = state["supervisorPid"].as_i64().unwrap();
    if capable {
        assert_eq!(oom_score_adj_of(supervisor), -1000);
    } else {
        let log = std::fs::read_to_string(guaranteed.pod_dir().join("supervisor.log")).unwrap();
        assert!(log.contains("CAP_SYS_RESOURCE"), "{log}");
    }

    let best_effort = Pod::new("oomadj", "best-effort");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sleep, '600']}\n";
    let out = best_effort.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    assert_eq!(
        oom_score_adj_of(runtime_pid(&best_effort.id(Some("app")))),
        1000
    );
    for pod in [&guaranteed, &best_effort] {
        let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
        assert!(out.status.success(), "{}", stderr(&out));
        pod.assert_nothing_left();
    }
}

#[test]
fn up_warns_once_per_runtime_binary_of_the_cves_its_runc_release_predates() {
    let mut pod = Pod::new("cve", "old-runc");
    let wrapper = pod.tmp.path().join("old-runc");
    let asked = pod.tmp.path().join("asked");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo x >> '{}'; echo 'runc version 1.1.13'; exit 0; fi\nexec runc \"$@\"\n",
            asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    pod.runtime = Some(wrapper.display().to_string());
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sleep, '600']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: runc 1.1.13 is older than the releases that fix CVE-2024-45310"),
        "{err}"
    );
    assert!(
        err.contains("CVE-2025-31133, CVE-2025-52565, CVE-2025-52881"),
        "{err}"
    );
    assert_eq!(err.matches("warning: runc").count(), 1, "one line: {err}");
    assert!(
        !err.contains("CVE-2024-21626"),
        "1.1.13 has that fix: {err}"
    );
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A second pod with the same binary: warned again, not asked again.
    let out = pod.up(yaml, &[]);
    assert!(stderr(&out).contains("CVE-2024-45310"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&asked).unwrap().lines().count(), 1);
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
}

#[test]
fn a_pod_named_with_kubernetes_253_characters_runs_logs_and_goes_down() {
    // Kubernetes allows 253 (a DNS subdomain); the infra's id, the pod directory
    // and the log directory `<id>_<uid>` must still be file names (255 bytes).
    let long = format!("{}.{}", "a".repeat(126), "b".repeat(126));
    assert_eq!(long.len(), 253);
    let pod = Pod::new("longname", &long);
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}', uid: 0c2b5e1c-1111-4222-8333-444455556666}\nspec:\n  containers:\n    - {name: a-container-name-of-the-sixty-three-characters-kubernetes-allow, image: localhost/busybox:latest, command: [sh, -c, 'echo started; exec sleep 600']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let c = "a-container-name-of-the-sixty-three-characters-kubernetes-allow";
    pod.wait_until("the log", Duration::from_secs(10), |p| {
        p.logs(c).contains("started")
    });
    let out = pod.run(&["exec", &pod.key(), "-c", c, "--", "hostname"]);
    // The kubelet's hostname: the name cut to 63 characters, no trailing '.'/'-'.
    assert_eq!(stdout(&out).trim(), "a".repeat(63), "{}", stderr(&out));
    // The runtime's ids are podshim's cut ones, at most 100 characters.
    let ids = runc_ids();
    for id in [pod.id(None), pod.id(Some(c))] {
        assert_eq!(id.len(), 100, "{id}");
        assert!(ids.contains(&id), "{id} not in {ids:?}");
    }
    let table = stdout(&pod.run(&["ps"]));
    assert!(table.contains(&pod.key()), "{table}");
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pod.logs(c).contains("started"), "logs are kept after down");
    pod.assert_nothing_left();
}

/// The signals a process blocks (`SigBlk` in /proc/PID/status).
fn blocked_signals(pid: i64) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .unwrap()
        .trim()
        .to_string()
}

fn containers_start_with_no_signal_blocked(runtime: Option<String>) {
    let mut pod = Pod::new("sigmask", "sigmask");
    pod.runtime = runtime.clone();
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 0.1; done']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let program = runtime.unwrap_or_else(|| "runc".into());
    for id in [pod.id(None), pod.id(Some("app"))] {
        let out = std::process::Command::new(&program)
            .args(["state", &id])
            .output()
            .unwrap();
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let pid = state["pid"].as_i64().unwrap();
        // The supervisor blocks its stop signals for its signalfd; a container that
        // inherited that mask would never see the SIGTERM of a graceful stop.
        assert_eq!(
            blocked_signals(pid),
            "0000000000000000",
            "{id} under {program}"
        );
    }
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
}

#[test]
fn containers_start_with_no_signal_blocked_under_runc() {
    containers_start_with_no_signal_blocked(None);
}

#[test]
fn containers_start_with_no_signal_blocked_under_youki() {
    let Some(youki) = youki() else { return };
    containers_start_with_no_signal_blocked(Some(youki));
}

#[test]
fn a_pod_directory_whose_state_names_another_pod_is_not_stopped_by_this_name() {
    // Ids are cut and hashed for long names; a directory found by a name must hold
    // that pod's state, or `down` of the name would stop another pod.
    let pod = Pod::new("keycheck", "owner");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sleep, '600']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let state_file = pod.pod_dir().join("state.json");
    let real = std::fs::read_to_string(&state_file).unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(&real).unwrap();
    forged["name"] = "someone-else".into();
    std::fs::write(&state_file, forged.to_string()).unwrap();
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("is not running"), "{}", stdout(&out));
    assert!(runc_ids().contains(&pod.id(Some("app"))), "left running");
    assert!(pod.pod_dir().exists());
    std::fs::write(&state_file, real).unwrap();
    let out = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
}

#[test]
fn an_environment_execve_would_refuse_is_refused_by_field_before_anything_runs() {
    let pod = Pod::new("e2big", "e2big");
    let big = "x".repeat(200 << 10);
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: '{{name}}', namespace: '{{ns}}'}}\nspec:\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      env: [{{name: BIG, value: {big}}}]\n"
    );
    let out = pod.up(&yaml, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("spec.containers[0].env: variable BIG is 204805 bytes")
            && err.contains("(MAX_ARG_STRLEN)"),
        "{err}"
    );
    pod.assert_nothing_left();
}
