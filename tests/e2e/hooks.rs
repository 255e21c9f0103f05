//! Lifecycle hooks and termination with real runc: postStart before Running,
//! preStop before the stop signal, SIGKILL at the end of the grace period,
//! sidecars stopped after the apps in reverse, httpGet hooks from the host
//! side, `lifecycle.stopSignal` (issue #10).

use std::time::{Duration, Instant};

use crate::support::*;

fn yaml(grace: u32, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: '{{name}}', namespace: '{{ns}}'}}\nspec:\n  terminationGracePeriodSeconds: {grace}\n{spec}"
    )
}

/// A container that appends `start-NAME` to /log/order, `term-NAME` on SIGTERM,
/// and whose preStop hook appends `pre-NAME` (and takes a second).
fn recorder(name: &str, sidecar: bool) -> String {
    let restart = if sidecar {
        "      restartPolicy: Always\n"
    } else {
        ""
    };
    format!(
        "    - name: {name}\n      image: localhost/busybox:latest\n{restart}      volumeMounts: [{{name: log, mountPath: /log}}]\n      command: [sh, -c, 'trap \"echo term-{name} >> /log/order; exit 0\" TERM; echo start-{name} >> /log/order; while true; do sleep 0.1; done']\n      lifecycle:\n        preStop: {{exec: {{command: [sh, -c, 'echo pre-{name} >> /log/order; sleep 1']}}}}\n"
    )
}

#[test]
fn pre_stop_hooks_run_before_each_stop_signal_and_sidecars_stop_after_the_apps_in_reverse() {
    let pod = Pod::new("hooks", "order");
    let log = pod.tmp.path().join("shared");
    std::fs::create_dir_all(&log).unwrap();
    let spec = format!(
        "  volumes: [{{name: log, hostPath: {{path: {}}}}}]\n  initContainers:\n{}{}  containers:\n{}",
        log.display(),
        recorder("s1", true),
        recorder("s2", true),
        recorder("app", false),
    );
    let out = pod.up(&yaml(30, &spec), &[]);
    assert!(out.status.success(), "up: {}{}", stdout(&out), stderr(&out));
    pod.wait_until("the app's start", Duration::from_secs(10), |_| {
        std::fs::read_to_string(log.join("order")).is_ok_and(|t| t.contains("start-app"))
    });
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success(), "down: {}", stderr(&out));
    let order = std::fs::read_to_string(log.join("order")).unwrap();
    let order: Vec<&str> = order.lines().filter(|l| !l.starts_with("start-")).collect();
    assert_eq!(
        order,
        [
            "pre-app", "term-app", "pre-s2", "term-s2", "pre-s1", "term-s1"
        ]
    );
    pod.assert_nothing_left();
}

#[test]
fn a_container_ignoring_its_stop_signal_is_killed_when_the_grace_period_ends_after_its_pre_stop_hook()
 {
    let pod = Pod::new("hooks", "stubborn");
    let spec = "  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sh, -c, 'trap \"\" TERM; while true; do sleep 0.1; done']\n      lifecycle:\n        preStop: {exec: {command: [sleep, '1']}}\n";
    let out = pod.up(&yaml(4, spec), &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let began = Instant::now();
    let out = pod.run(&["down", &pod.key()]);
    let took = began.elapsed();
    assert!(out.status.success(), "down: {}", stderr(&out));
    // preStop (1 s), SIGTERM (ignored), SIGKILL at the end of the 4 s.
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(8),
        "down took {took:?}"
    );
    pod.assert_nothing_left();
}

#[test]
fn post_start_runs_before_the_container_counts_as_running_and_a_failed_one_restarts_it() {
    let pod = Pod::new("hooks", "poststart");
    let spec = "  containers:\n    - name: slow\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      lifecycle:\n        postStart: {exec: {command: [sh, -c, 'sleep 2; touch /tmp/hooked']}}\n      readinessProbe: {exec: {command: [test, -e, /tmp/hooked]}, periodSeconds: 1, failureThreshold: 1}\n    - name: broken\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      lifecycle:\n        postStart: {exec: {command: [sh, -c, 'echo no config >&2; exit 1']}}\n";
    let out = pod.up(&yaml(1, spec), &[]);
    assert!(out.status.success(), "up: {}{}", stdout(&out), stderr(&out));
    let slow = pod.container("slow");
    assert_eq!(slow["state"]["state"], "waiting", "{slow:#}");
    assert_eq!(slow["state"]["reason"], "ContainerCreating", "{slow:#}");
    pod.wait_until("slow running", Duration::from_secs(10), |p| {
        p.container("slow")["state"]["state"] == "running"
    });
    // Probed only once Running: its first readiness result is a success.
    pod.wait_until("slow ready", Duration::from_secs(5), |p| {
        p.container("slow")["ready"] == true
    });
    let records = pod.container("slow")["probes"].clone();
    assert_eq!(records[0]["success"], true, "{records:#}");
    pod.wait_until("broken restarted", Duration::from_secs(20), |p| {
        p.container("broken")["restartCount"].as_u64().unwrap() >= 1
    });
    assert_eq!(
        pod.container("broken")["lastState"]["message"],
        "PostStartHookError: Exec lifecycle hook ([sh -c echo no config >&2; exit 1]) for Container \"broken\" failed: no config"
    );
    pod.down();
    pod.assert_nothing_left();
}

#[test]
fn http_hooks_are_sent_from_the_host_side_with_the_kubelets_user_agent() {
    let pod = Pod::new("hooks", "http");
    let log = pod.tmp.path().join("shared");
    std::fs::create_dir_all(&log).unwrap();
    // The sidecar serves a CGI script (written here, into the hostPath it
    // serves) that records each request; its startup probe holds the app until
    // it listens (on 8090: the app has 8080).
    let cgi = log.join("cgi-bin");
    std::fs::create_dir_all(&cgi).unwrap();
    std::fs::write(
        cgi.join("hit"),
        "#!/bin/sh\necho \"$QUERY_STRING $HTTP_USER_AGENT\" >> /log/hits\necho Content-Type: text/plain\necho\necho ok\n",
    )
    .unwrap();
    std::fs::set_permissions(
        cgi.join("hit"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let spec = format!(
        "  volumes: [{{name: log, hostPath: {{path: {}}}}}]\n  initContainers:\n    - name: web\n      image: localhost/busybox:latest\n      restartPolicy: Always\n      volumeMounts: [{{name: log, mountPath: /log}}]\n      command: [httpd, -f, -p, '8090', -h, /log]\n      startupProbe: {{tcpSocket: {{port: 8090}}, periodSeconds: 1, failureThreshold: 10}}\n  containers:\n    - name: app\n      image: localhost/httpd-only:latest\n      lifecycle:\n        postStart: {{httpGet: {{path: '/cgi-bin/hit?post', port: 8090}}}}\n        preStop: {{httpGet: {{path: '/cgi-bin/hit?pre', port: 8090}}}}\n",
        log.display()
    );
    let out = pod.up(&yaml(5, &spec), &[]);
    assert!(out.status.success(), "up: {}{}", stdout(&out), stderr(&out));
    pod.wait_until("the app running", Duration::from_secs(10), |p| {
        p.container("app")["state"]["state"] == "running"
    });
    let hits = std::fs::read_to_string(log.join("hits")).unwrap();
    assert_eq!(hits, "post kube-lifecycle/1.37\n");
    pod.down();
    let hits = std::fs::read_to_string(log.join("hits")).unwrap();
    assert_eq!(hits, "post kube-lifecycle/1.37\npre kube-lifecycle/1.37\n");
    pod.assert_nothing_left();
}

#[test]
fn lifecycle_stop_signal_replaces_sigterm() {
    let pod = Pod::new("hooks", "stopsignal");
    let log = pod.tmp.path().join("shared");
    std::fs::create_dir_all(&log).unwrap();
    let spec = format!(
        "  os: {{name: linux}}\n  volumes: [{{name: log, hostPath: {{path: {}}}}}]\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      volumeMounts: [{{name: log, mountPath: /log}}]\n      command: [sh, -c, 'trap \"echo usr1 > /log/signal; exit 0\" USR1; while true; do sleep 0.1; done']\n      lifecycle: {{stopSignal: SIGUSR1}}\n",
        log.display()
    );
    let out = pod.up(&yaml(10, &spec), &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    assert_eq!(pod.container("app")["stopSignal"], "SIGUSR1");
    let began = Instant::now();
    pod.down();
    assert!(began.elapsed() < Duration::from_secs(5), "SIGUSR1 ended it");
    assert_eq!(
        std::fs::read_to_string(log.join("signal")).unwrap(),
        "usr1\n"
    );
    pod.assert_nothing_left();
}

#[test]
fn a_containers_termination_message_is_its_file_or_under_fallback_its_logs_end() {
    let pod = Pod::new("hooks", "termmsg");
    let spec = "  restartPolicy: Never\n  containers:\n    - name: file\n      image: localhost/busybox:latest\n      terminationMessagePath: /tmp/why\n      command: [sh, -c, 'echo config missing > /tmp/why; exit 2']\n    - name: fallback\n      image: localhost/busybox:latest\n      terminationMessagePolicy: FallbackToLogsOnError\n      command: [sh, -c, 'echo starting; sleep 0.2; echo disk full >&2; exit 3']\n    - name: quiet\n      image: localhost/busybox:latest\n      command: [sh, -c, 'echo only a log; sleep 1; exit 4']\n";
    let out = pod.up(&yaml(1, spec), &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    pod.wait_until("all three ended", Duration::from_secs(15), |p| {
        ["file", "fallback", "quiet"]
            .iter()
            .all(|c| p.container(c)["state"]["state"] == "terminated")
    });
    assert_eq!(
        pod.container("file")["state"]["message"],
        "config missing\n"
    );
    assert_eq!(
        pod.container("fallback")["state"]["message"],
        "starting\ndisk full\n"
    );
    assert!(pod.container("quiet")["state"].get("message").is_none());
    pod.down();
    pod.assert_nothing_left();
}

#[test]
fn a_pod_past_its_active_deadline_fails_with_deadline_exceeded() {
    let pod = Pod::new("hooks", "deadline");
    let spec = "  activeDeadlineSeconds: 2\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n";
    let out = pod.up(&yaml(1, spec), &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    pod.wait_until("the deadline", Duration::from_secs(15), |p| {
        p.state()["phase"] == "Failed"
    });
    let state = pod.state();
    assert_eq!(state["reason"], "DeadlineExceeded", "{state:#}");
    assert_eq!(
        state["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    // Its containers are gone from the runtime; the record stays until down.
    pod.wait_until("the supervisor's end", Duration::from_secs(10), |p| {
        p.state()["supervisorPid"].is_null()
    });
    assert!(!runc_ids().contains(&pod.id(Some("app"))));
    pod.down();
    pod.assert_nothing_left();
}

#[test]
fn a_restart_rule_restarts_on_its_exit_code_under_never() {
    let pod = Pod::new("hooks", "rules");
    let spec = "  restartPolicy: Never\n  volumes: [{name: m, emptyDir: {}}]\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      volumeMounts: [{name: m, mountPath: /m}]\n      command: [sh, -c, '[ -e /m/again ] && exit 1; touch /m/again; exit 42']\n      restartPolicy: Never\n      restartPolicyRules: [{action: Restart, exitCodes: {operator: In, values: [42]}}]\n";
    let out = pod.up(&yaml(1, spec), &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    pod.wait_until("the pod's end", Duration::from_secs(20), |p| {
        p.state()["phase"] == "Failed"
    });
    let app = pod.container("app");
    assert_eq!(app["restartCount"], 1, "{app:#}");
    assert_eq!(app["lastState"]["exitCode"], 42, "{app:#}");
    assert_eq!(app["state"]["exitCode"], 1, "{app:#}");
    pod.down();
    pod.assert_nothing_left();
}

#[test]
fn restart_all_containers_runs_the_init_containers_again_in_the_same_sandbox() {
    let pod = Pod::new("hooks", "restartall");
    let spec = "  volumes: [{name: m, emptyDir: {}}]\n  initContainers:\n    - name: setup\n      image: localhost/busybox:latest\n      volumeMounts: [{name: m, mountPath: /m}]\n      command: [sh, -c, 'echo ran >> /m/inits']\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      volumeMounts: [{name: m, mountPath: /m}]\n      command: [sh, -c, '[ $(wc -l < /m/inits) -ge 2 ] && exec sleep 600; exit 7']\n      restartPolicy: Always\n      restartPolicyRules: [{action: RestartAllContainers, exitCodes: {operator: In, values: [7]}}]\n";
    let out = pod.up(&yaml(1, spec), &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let infra_pid = |p: &Pod| p.container("POD")["state"]["pid"].clone();
    let first_infra = infra_pid(&pod);
    pod.wait_until("the app running again", Duration::from_secs(20), |p| {
        p.container("app")["restartCount"] == 1 && p.container("app")["state"]["state"] == "running"
    });
    assert_eq!(pod.container("setup")["restartCount"], 1);
    assert_eq!(infra_pid(&pod), first_infra, "the sandbox stays");
    let inits = pod.run(&["exec", &pod.key(), "-c", "app", "--", "cat", "/m/inits"]);
    assert_eq!(
        stdout(&inits),
        "ran\nran\n",
        "the emptyDir stays; the init container ran again"
    );
    let state = pod.state();
    let restarting = state["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "AllContainersRestarting")
        .cloned()
        .unwrap();
    assert_eq!(restarting["status"], "False", "{state:#}");
    pod.down();
    pod.assert_nothing_left();
}
