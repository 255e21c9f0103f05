//! `podshim up` / `down` / `ps` / `logs` / `exec` with real runc (issue #3).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

const TWO_CONTAINERS: &str = "two-containers";

#[test]
fn two_containers_example_serves_the_init_page_to_the_client_over_localhost() {
    let pod = Pod::new("up", TWO_CONTAINERS);
    let yaml = example_in_namespace(TWO_CONTAINERS, "{ns}");
    let out = pod.up(&yaml, &[]);
    assert!(out.status.success(), "up: {}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(&format!("pod {} running", pod.key())),
        "{}",
        stdout(&out)
    );
    // runc sees podshim's containers.
    let listed = runc_ids();
    for c in [None, Some("web"), Some("client")] {
        assert!(
            listed.contains(&pod.id(c)),
            "{:?} missing from runc list",
            pod.id(c)
        );
    }
    let want = format!("hello from two-containers in {}", pod.ns);
    pod.wait_until("the client's log", Duration::from_secs(20), |p| {
        p.logs("client").contains(&want)
    });
    // exec returns the command's output and exit status.
    let out = pod.run(&[
        "exec",
        &pod.key(),
        "-c",
        "web",
        "--",
        "cat",
        "/www/index.html",
    ]);
    assert_eq!(stdout(&out).trim(), want);
    let out = pod.run(&["exec", &pod.key(), "-c", "web", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    // ps shows the pod running, the init container completed.
    let state = pod.state();
    assert_eq!(state["phase"], "Running");
    assert_eq!(pod.container("write-page")["state"]["state"], "terminated");
    assert_eq!(pod.container("write-page")["state"]["exitCode"], 0);
    let table = stdout(&pod.run(&["ps", &pod.key()]));
    assert!(
        table.contains("Running") && table.contains("2/2"),
        "{table}"
    );
    // A second up of the same file changes nothing (apply); the same pod
    // from another file is refused.
    let again = pod.up(&yaml, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains(&format!("pod {} unchanged", pod.key())),
        "{}",
        stdout(&again)
    );
    let other = pod.tmp.path().join("other.yaml");
    std::fs::write(
        &other,
        yaml.replace("{ns}", &pod.ns).replace("{name}", &pod.name),
    )
    .unwrap();
    let refused = pod.run(&["up", other.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("already exists"),
        "{}",
        stderr(&refused)
    );
    // --replace stops the old pod and starts a new one.
    let old_supervisor = pod.state()["supervisorPid"].clone();
    let replaced = pod.up(&yaml, &["--replace"]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    assert_ne!(pod.state()["supervisorPid"], old_supervisor);
    pod.wait_until("the new client's log", Duration::from_secs(20), |p| {
        p.logs("client").contains(&want)
    });

    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success(), "down: {}", stderr(&out));
    pod.assert_nothing_left();
    // Logs stay after down.
    assert!(pod.logs("client").contains(&want));
}

#[test]
fn init_containers_run_in_order_each_seeing_the_previous_output() {
    let pod = Pod::new("init", "inits");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes: [{name: w, emptyDir: {}}]\n  initContainers:\n    - {name: first, image: localhost/busybox:latest, command: [sh, -c, 'echo one > /w/log'], volumeMounts: [{name: w, mountPath: /w}]}\n    - {name: second, image: localhost/busybox:latest, command: [sh, -c, 'grep -q one /w/log && echo two >> /w/log'], volumeMounts: [{name: w, mountPath: /w}]}\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sh, -c, 'cat /w/log; exec sleep 600'], volumeMounts: [{name: w, mountPath: /w}]}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.wait_until("app log", Duration::from_secs(10), |p| {
        p.logs("app") == "one\ntwo\n"
    });
}

#[test]
fn failed_init_container_under_never_fails_up_and_leaves_nothing_behind() {
    let pod = Pod::new("initnever", "initfail");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  restartPolicy: Never\n  volumes: [{name: m, emptyDir: {medium: Memory}}]\n  initContainers:\n    - {name: setup, image: localhost/busybox:latest, command: [sh, -c, 'echo preparing; echo broken >&2; exit 3'], volumeMounts: [{name: m, mountPath: /m}]}\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sleep, '600']}\n";
    let out = pod.up(yaml, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("init container \"setup\" exited with code 3"),
        "{err}"
    );
    assert!(
        err.contains("broken"),
        "the last log lines are shown: {err}"
    );
    pod.assert_nothing_left();
}

#[test]
fn failed_init_container_under_on_failure_is_retried_with_a_growing_restart_count() {
    let pod = Pod::new("initretry", "initretry");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  restartPolicy: OnFailure\n  terminationGracePeriodSeconds: 1\n  initContainers:\n    - {name: flaky, image: localhost/busybox:latest, command: [sh, -c, 'exit 1']}\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sleep, '600']}\n";
    // `up` keeps waiting while the init container crash-loops; give it a short timeout.
    let out = pod.up(yaml, &["--timeout", "3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("did not start within 3 s"),
        "{}",
        stderr(&out)
    );
    let count = pod.container("flaky")["restartCount"].as_u64().unwrap();
    assert!(count >= 2, "restart count {count}");
    pod.wait_until("one more restart", Duration::from_secs(10), |p| {
        p.container("flaky")["restartCount"].as_u64().unwrap() > count
    });
    assert_eq!(pod.container("app")["state"]["state"], "waiting");
}

#[test]
fn crashing_app_is_restarted_with_growing_back_off_under_always() {
    let pod = Pod::new("crash", "crasher");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  restartPolicy: Always\n  terminationGracePeriodSeconds: 1\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sh, -c, 'echo crashed; exit 1']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Five restarts counted: the fifth run's log (4.log) is then complete.
    pod.wait_until("5 restarts", Duration::from_secs(30), |p| {
        p.container("app")["restartCount"].as_u64().unwrap() >= 5
    });
    // Each run writes one line into its own <restart>.log, stamped by the CRI log
    // writer: the gaps between runs grow (back-off 0, 300, 600, 1200 ms with
    // PODSHIM_BACKOFF_INITIAL_MS=300).
    let dir = PathBuf::from(pod.state()["logDir"].as_str().unwrap()).join("app");
    let starts: Vec<f64> = (0..5)
        .map(|i| {
            let text = std::fs::read_to_string(dir.join(format!("{i}.log"))).unwrap();
            let stamp = text.split(' ').next().unwrap();
            let t = podshim::logs::parse_rfc3339(stamp).unwrap();
            t.duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        })
        .collect();
    let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps[1] >= 0.29 && gaps[2] >= 0.59 && gaps[3] >= 1.19,
        "{gaps:?}"
    );
    assert!(gaps[3] > gaps[2] && gaps[2] > gaps[1], "{gaps:?}");
    // Every restart ran at its first attempt: none found the previous run still
    // in the runtime under the same id (its delete is waited for).
    let log = std::fs::read_to_string(podshim::paths::supervisor_log(&pod.pod_dir())).unwrap();
    assert!(!log.contains("restarting"), "{log}");
    let out = pod.run(&["logs", &pod.key(), "-c", "app", "--previous"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A runtime whose `delete` is slow (as under load): the restart that follows a
/// crash at once (the kubelet's first back-off is zero) must wait for the old
/// run's delete, or `run` finds the id still taken.
#[test]
fn a_restart_waits_for_the_delete_of_the_previous_run() {
    let mut pod = Pod::new("crash", "slowdelete");
    let wrapper = slow_runc(pod.tmp.path(), "delete", 1);
    pod.runtime = Some(wrapper.to_str().unwrap().to_string());
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  restartPolicy: Always\n  terminationGracePeriodSeconds: 1\n  volumes: [{name: m, emptyDir: {}}]\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sh, -c, '[ -e /m/ran ] || { touch /m/ran; exit 1; }; exec sleep 600'], volumeMounts: [{name: m, mountPath: /m}]}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.wait_until("the restarted run", Duration::from_secs(30), |p| {
        let c = p.container("app");
        c["restartCount"] == 1 && c["state"]["state"] == "running"
    });
    let log = std::fs::read_to_string(podshim::paths::supervisor_log(&pod.pod_dir())).unwrap();
    assert!(!log.contains("restarting"), "{log}");
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
}

#[test]
fn crashing_app_is_not_restarted_under_never() {
    let pod = Pod::new("never", "never");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  restartPolicy: Never\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sh, -c, 'sleep 0.5; exit 4']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.wait_until("the pod to fail", Duration::from_secs(10), |p| {
        p.state()["phase"] == "Failed"
    });
    let app = pod.container("app");
    assert_eq!(app["restartCount"], 0);
    assert_eq!(app["state"]["exitCode"], 4);
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success());
    pod.assert_nothing_left();
}

#[test]
fn sidecar_runs_alongside_the_app_and_stops_after_it() {
    let pod = Pod::new("sidecar", "sidecar");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 2\n  initContainers:\n    - {name: side, image: localhost/busybox:latest, restartPolicy: Always, command: [sh, -c, 'trap \"echo side-stopped; exit 0\" TERM; while true; do sleep 0.1; done']}\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sh, -c, 'sleep 2; echo app-done']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pod.container("side")["state"]["state"], "running");
    assert_eq!(pod.container("app")["state"]["state"], "running");
    pod.wait_until("the pod to succeed", Duration::from_secs(20), |p| {
        p.state()["phase"] == "Succeeded"
    });
    let side = pod.container("side");
    let app = pod.container("app");
    assert_eq!(side["state"]["state"], "terminated");
    assert!(pod.logs("side").contains("side-stopped"));
    // The sidecar finished after the app did.
    let app_end = app["state"]["finishedAt"].as_str().unwrap().to_string();
    let side_end = side["state"]["finishedAt"].as_str().unwrap().to_string();
    assert!(side_end >= app_end, "{side_end} < {app_end}");
}

#[test]
fn down_kills_a_container_ignoring_sigterm_after_the_grace_period_and_stops_others_at_once() {
    let pod = Pod::new("grace", "grace");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  terminationGracePeriodSeconds: 3\n  containers:\n    - {name: stubborn, image: localhost/busybox:latest, command: [sh, -c, 'trap \"\" TERM; while true; do sleep 0.1; done']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t0 = Instant::now();
    let out = pod.run(&["down", &pod.key()]);
    let took = t0.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    pod.assert_nothing_left();

    let pod = Pod::new("grace", "polite");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  terminationGracePeriodSeconds: 30\n  containers:\n    - {name: polite, image: localhost/busybox:latest, command: [sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 0.1; done']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t0 = Instant::now();
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success());
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    pod.assert_nothing_left();
}

#[test]
fn down_grace_period_overrides_the_pods_own_through_the_supervisor() {
    let pod = Pod::new("downgrace", "long-grace");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  terminationGracePeriodSeconds: 300\n  containers:\n    - {name: stubborn, image: localhost/busybox:latest, command: [sh, -c, 'trap \"\" TERM; while true; do sleep 0.1; done']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t0 = Instant::now();
    let out = pod.run(&["down", &pod.key(), "--grace-period", "2"]);
    let took = t0.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    // Killed after the 2 s asked for, far from the pod's 300 s.
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(60),
        "{took:?}"
    );
    pod.assert_nothing_left();
}

#[test]
fn down_after_the_supervisor_was_sigkilled_cleans_up_and_is_idempotent() {
    let pod = Pod::new("killed", "orphan");
    let yaml = example_in_namespace(TWO_CONTAINERS, "{ns}")
        .replace("name: two-containers", "name: orphan");
    let out = pod.up(&yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = pod.state()["supervisorPid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(stdout(&pod.run(&["ps", &pod.key()])).contains("Unknown"));
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(pod.tmp.path().to_str().unwrap()));
    let again = pod.run(&["down", &pod.key()]);
    assert!(again.status.success());
    assert!(stdout(&again).contains("is not running"));
}

#[test]
fn up_with_a_missing_image_fails_naming_it_and_leaves_nothing() {
    let pod = Pod::new("noimg", "noimage");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  containers:\n    - {name: app, image: localhost/nowhere:1}\n";
    let out = pod.up(yaml, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("localhost/nowhere:1"),
        "{}",
        stderr(&out)
    );
    pod.assert_nothing_left();
}

#[test]
fn up_with_a_command_that_does_not_exist_fails_with_the_runtime_message_and_rolls_back() {
    let pod = Pod::new("nocmd", "nocmd");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  volumes: [{name: m, emptyDir: {medium: Memory}}]\n  containers:\n    - {name: ok, image: localhost/busybox:latest, command: [sleep, '600']}\n    - {name: bad, image: localhost/busybox:latest, command: [no-such-command], volumeMounts: [{name: m, mountPath: /m}]}\n";
    let out = pod.up(yaml, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("container \"bad\""), "{err}");
    assert!(
        err.contains("executable file not found"),
        "runc's own message: {err}"
    );
    pod.assert_nothing_left();
}

#[test]
fn up_keep_leaves_a_failed_pod_for_debugging() {
    let pod = Pod::new("keep", "kept");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  containers:\n    - {name: bad, image: localhost/busybox:latest, command: [no-such-command]}\n";
    let out = pod.up(yaml, &["--keep"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("kept for debugging"),
        "{}",
        stderr(&out)
    );
    assert!(pod.pod_dir().join("state.json").exists());
    assert!(runc_ids().contains(&pod.id(None)), "the infra is kept");
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success());
    pod.assert_nothing_left();
}

fn runtime_pod_runs(pod: &mut Pod, runtime: &str) {
    pod.runtime = Some(runtime.to_string());
    let yaml = example_in_namespace(TWO_CONTAINERS, "{ns}");
    let out = pod.up(&yaml, &[]);
    assert!(
        out.status.success(),
        "up with {runtime}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let want = format!("hello from two-containers in {}", pod.ns);
    pod.wait_until("the client's log", Duration::from_secs(20), |p| {
        p.logs("client").contains(&want)
    });
    let out = pod.run(&[
        "exec",
        &pod.key(),
        "-c",
        "web",
        "--",
        "cat",
        "/www/index.html",
    ]);
    assert_eq!(stdout(&out).trim(), want, "{}", stderr(&out));
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
}

#[test]
fn the_pod_runs_under_a_runc_compatible_wrapper_given_by_path() {
    let mut pod = Pod::new("wrapper", TWO_CONTAINERS);
    let wrapper = pod.tmp.path().join("my-runtime");
    let calls = pod.tmp.path().join("calls");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec runc \"$@\"\n",
            calls.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    runtime_pod_runs(&mut pod, wrapper.to_str().unwrap());
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert!(
        calls.contains("run --detach") && calls.contains("kill") && calls.contains("delete"),
        "{calls}"
    );
}

#[test]
fn the_pod_runs_under_youki_given_by_path() {
    let Some(youki) = youki() else { return };
    let mut pod = Pod::new("youki", TWO_CONTAINERS);
    runtime_pod_runs(&mut pod, &youki);
}

#[test]
fn up_from_runs_a_generated_bundle_set_and_down_keeps_the_directory() {
    let pod = Pod::new("from", TWO_CONTAINERS);
    let manifest = pod.tmp.path().join("pod.yaml");
    std::fs::write(&manifest, example_in_namespace(TWO_CONTAINERS, &pod.ns)).unwrap();
    let out_dir = pod.tmp.path().join("gen");
    let out = generate(pod.tmp.path(), &manifest, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    // After generate's mounts are gone (as after a reboot), up --from makes them again.
    let _ = Command::new(out_dir.join("stop.sh")).output();
    let out = pod
        .cmd()
        .arg("up")
        .arg("--from")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "up --from: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let want = format!("hello from two-containers in {}", pod.ns);
    pod.wait_until("the client's log", Duration::from_secs(20), |p| {
        p.logs("client").contains(&want)
    });
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.assert_nothing_left();
    assert!(
        out_dir.join("plan.json").is_file(),
        "the generate output stays"
    );
    assert_eq!(mounts_under(&out_dir), Vec::<PathBuf>::new());
}

#[test]
fn up_wait_streams_logs_and_ctrl_c_stops_the_pod() {
    use std::io::{BufRead, BufReader};
    let pod = Pod::new("wait", TWO_CONTAINERS);
    let path = pod.tmp.path().join("pod.yaml");
    std::fs::write(&path, example_in_namespace(TWO_CONTAINERS, &pod.ns)).unwrap();
    let mut child = pod
        .cmd()
        .arg("up")
        .arg(&path)
        .arg("--wait")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let want = format!("[client] hello from two-containers in {}", pod.ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = lines.next().expect("up --wait ended early").unwrap();
        if line == want {
            break;
        }
        assert!(Instant::now() < deadline, "no client line");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "up --wait exited with {status}");
    pod.assert_nothing_left();
}

#[test]
fn commands_on_one_pod_are_serialised_by_its_lock() {
    let pod = Pod::new("lock", "locked");
    std::fs::create_dir_all(pod.pod_dir()).unwrap();
    let held = podshim::state::PodLock::acquire(&pod.pod_dir()).unwrap();
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sleep, '600']}\n";
    let out = pod.up(yaml, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("locked by another podshim command"),
        "{}",
        stderr(&out)
    );
    drop(held);
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The design's shape: once the infra runs, every other bundle of the pod names the
/// infra's real /proc/<pid>/ns/* (not a link), and the pod directory it runs for.
#[test]
fn a_running_pods_bundles_name_the_infras_real_namespaces_and_their_pod() {
    let pod = Pod::new("ns", TWO_CONTAINERS);
    let out = pod.up(&example_in_namespace(TWO_CONTAINERS, "{ns}"), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let state = Command::new("runc")
        .args(["state", &pod.id(None)])
        .output()
        .unwrap();
    let infra: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    let pid = infra["pid"].as_i64().unwrap();
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            pod.pod_dir()
                .join("bundles")
                .join(pod.id(Some("web")))
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let paths: Vec<(String, String)> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| Some((n["type"].as_str()?.into(), n["path"].as_str()?.into())))
        .collect();
    assert_eq!(
        paths,
        [
            ("ipc".to_string(), format!("/proc/{pid}/ns/ipc")),
            ("network".to_string(), format!("/proc/{pid}/ns/net")),
            ("uts".to_string(), format!("/proc/{pid}/ns/uts")),
        ]
    );
    assert_eq!(
        config["annotations"]["io.podshim.pod-dir"],
        pod.pod_dir().display().to_string()
    );
    // runc sees the same.
    let web = Command::new("runc")
        .args(["state", &pod.id(Some("web"))])
        .output()
        .unwrap();
    let web: serde_json::Value = serde_json::from_slice(&web.stdout).unwrap();
    assert_eq!(
        web["annotations"]["io.podshim.pod-dir"],
        pod.pod_dir().display().to_string()
    );
}

#[test]
fn a_host_network_pods_ip_is_the_hosts_in_ps_and_the_downward_api() {
    let pod = Pod::new("hostip", "host-net");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  hostNetwork: true\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      env:\n        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n        - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let state = pod.state();
    let host_ip = state["hostIP"].as_str().unwrap().to_string();
    assert!(!host_ip.is_empty());
    assert_eq!(state["podIP"], host_ip.as_str(), "{state:#}");
    assert_eq!(state["podIPs"], serde_json::json!([{"ip": host_ip}]));
    let out = pod.run(&[
        "exec",
        &pod.key(),
        "-c",
        "app",
        "--",
        "sh",
        "-c",
        "echo $POD_IP $HOST_IP",
    ]);
    assert_eq!(stdout(&out).trim(), format!("{host_ip} {host_ip}"));
    let wide = stdout(&pod.run(&["ps", &pod.key(), "-o", "wide"]));
    assert!(wide.lines().next().unwrap().ends_with("IP"), "{wide}");
    assert!(wide.contains(&host_ip), "{wide}");
    // A pod of its own network namespace has only its loopback yet: no podIP.
    let own = Pod::new("hostip", "own-net");
    let out = own.up("apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sleep, '600']}\n", &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let state = own.state();
    assert_eq!(state["hostIP"], host_ip.as_str());
    assert!(state.get("podIP").is_none(), "{state:#}");
    for p in [&pod, &own] {
        let out = p.run(&["down", &p.key(), "--grace-period", "1"]);
        assert!(out.status.success(), "{}", stderr(&out));
        p.assert_nothing_left();
    }
}

#[test]
fn hostname_is_in_every_containers_environment_as_containerd_sets_it() {
    let pod = Pod::new("up", "envhost");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: '{name}', namespace: '{ns}'}\nspec:\n  hostname: web-0\n  terminationGracePeriodSeconds: 1\n  containers:\n    - {name: app, image: localhost/busybox:latest, command: [sh, -c, 'echo \"host=$HOSTNAME\"; exec sleep 600']}\n";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.wait_until("the log", Duration::from_secs(10), |p| {
        p.logs("app").contains("host=web-0\n")
    });
    let exec = pod.run(&[
        "exec",
        &pod.key(),
        "-c",
        "app",
        "--",
        "sh",
        "-c",
        "echo $HOSTNAME",
    ]);
    assert_eq!(stdout(&exec), "web-0\n");
    pod.down();
    pod.assert_nothing_left();
}

/// The kubelet's emptyDir eviction: a container fills a disk-backed emptyDir
/// past its `sizeLimit`; within the eviction manager's 10 s the pod is evicted
/// (Failed, reason Evicted, the kubelet's message), its containers stopped,
/// and not restarted under Always.
#[test]
fn a_disk_emptydir_past_its_size_limit_evicts_the_pod() {
    let pod = Pod::new("evict", "p");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: '{name}', namespace: '{ns}'}
spec:
  terminationGracePeriodSeconds: 30
  volumes:
  - {name: cache-volume, emptyDir: {sizeLimit: 1Mi}}
  containers:
  - name: fill
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'trap \"\" TERM; dd if=/dev/zero of=/cache/blob bs=1024 count=3072; sync; echo FILLED; sleep 600']
    volumeMounts: [{name: cache-volume, mountPath: /cache}]
";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    pod.wait_until("the eviction", Duration::from_secs(25), |p| {
        p.state()["phase"] == "Failed"
    });
    let state = pod.state();
    let message = "Usage of EmptyDir volume \"cache-volume\" exceeds the limit \"1Mi\". ";
    assert_eq!(state["reason"], "Evicted", "{state:#}");
    assert_eq!(state["message"], message);
    // The kubelet adds no DisruptionTarget condition for this eviction.
    assert!(
        !state["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "DisruptionTarget"),
        "{state:#}"
    );
    // Stopped with the eviction's 2 s, not the pod's 30 (it ignores SIGTERM).
    pod.wait_until("the supervisor's end", Duration::from_secs(10), |p| {
        p.state()["supervisorPid"].is_null()
    });
    assert!(pod.logs("fill").contains("FILLED"), "{}", pod.logs("fill"));
    assert_eq!(pod.container("fill")["restartCount"], 0);
    assert!(!runc_ids().contains(&pod.id(Some("fill"))));
    let describe = stdout(&pod.run(&["describe", &pod.key()]));
    assert!(describe.contains("Evicted"), "{describe}");
    pod.down();
    pod.assert_nothing_left();
}
