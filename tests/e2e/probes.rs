//! Probes with real runc (and youki): every handler for every probe kind, the
//! thresholds, the startup gate, sidecar gating, `up --wait-ready`, and an image
//! with no shell and no HTTP client at all (issue #10).

use std::time::{Duration, Instant};

use crate::support::*;

fn yaml(spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: '{{name}}', namespace: '{{ns}}'}}\nspec:\n  terminationGracePeriodSeconds: 1\n{spec}"
    )
}

/// The three probes of a container, each with `handler` (a flow mapping), run
/// every second; liveness and readiness act on the first failure, the startup
/// probe gives the container 10 s.
fn probes(handler: &str) -> String {
    let p = |kind: &str, failures: u32| {
        format!("      {kind}: {{{handler}, periodSeconds: 1, failureThreshold: {failures}}}\n")
    };
    format!(
        "{}{}{}",
        p("startupProbe", 10),
        p("livenessProbe", 1),
        p("readinessProbe", 1)
    )
}

fn restarts(pod: &Pod, name: &str) -> u64 {
    pod.container(name)["restartCount"].as_u64().unwrap()
}

fn probe_records(pod: &Pod, name: &str) -> Vec<(String, bool)> {
    pod.container(name)["probes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["probe"].as_str().unwrap().to_string(),
                r["success"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn last_message(pod: &Pod, name: &str) -> String {
    pod.container(name)["lastState"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_handler_runs_every_probe_kind_and_a_liveness_failure_restarts_the_container() {
    let pod = Pod::new("probe", "handlers");
    let spec = format!(
        "  volumes: [{{name: www, emptyDir: {{}}}}]\n  containers:\n    - name: byexec\n      image: localhost/busybox:latest\n      command: [sh, -c, 'touch /tmp/ok; exec sleep 600']\n{}    - name: byhttp\n      image: localhost/busybox:latest\n      command: [sh, -c, 'echo ok > /www/healthz; exec httpd -f -p 8081 -h /www']\n      volumeMounts: [{{name: www, mountPath: /www}}]\n{}    - name: bytcp\n      image: localhost/busybox:latest\n      ports: [{{name: serve, containerPort: 8082}}]\n      command: [sh, -c, 'touch /tmp/serve; httpd -f -p 8082 -h /tmp & server=$!; while [ -e /tmp/serve ]; do sleep 0.2; done; kill -9 $server; exec sleep 600']\n{}",
        probes("exec: {command: [test, -e, /tmp/ok]}"),
        probes("httpGet: {path: /healthz, port: 8081}"),
        probes("tcpSocket: {port: serve}"),
    );
    let out = pod.up(&yaml(&spec), &["--wait-ready"]);
    assert!(out.status.success(), "up: {}{}", stdout(&out), stderr(&out));
    assert!(!stderr(&out).contains("ignored"), "{}", stderr(&out));
    // --wait-ready returned once each was ready: every probe kind ran and passed.
    for c in ["byexec", "byhttp", "bytcp"] {
        let status = pod.container(c);
        assert_eq!(status["ready"], true, "{c}: {status:#}");
        assert_eq!(status["started"], true, "{c}: {status:#}");
        let records = probe_records(&pod, c);
        assert!(
            records.contains(&("startup".into(), true)),
            "{c}: {records:?}"
        );
        pod.wait_until(
            &format!("{c}'s liveness and readiness results"),
            Duration::from_secs(10),
            |p| {
                let r = probe_records(p, c);
                r.contains(&("liveness".into(), true)) && r.contains(&("readiness".into(), true))
            },
        );
    }
    let table = stdout(&pod.run(&["ps", &pod.key()]));
    assert!(table.contains("3/3"), "{table}");

    // Each one's liveness fails: the exec probe's file is gone, the HTTP
    // server answers 404, the TCP port is closed.
    let exec = |c: &str, cmd: &[&str]| {
        let key = pod.key();
        let mut argv = vec!["exec", key.as_str(), "-c", c, "--"];
        argv.extend_from_slice(cmd);
        let out = pod.run(&argv);
        assert!(out.status.success(), "exec in {c}: {}", stderr(&out));
    };
    exec("byexec", &["rm", "/tmp/ok"]);
    std::fs::remove_file(pod.pod_dir().join("volumes/www/healthz")).unwrap();
    exec("bytcp", &["rm", "/tmp/serve"]);
    for c in ["byexec", "byhttp", "bytcp"] {
        pod.wait_until(&format!("{c} restarted"), Duration::from_secs(30), |p| {
            restarts(p, c) >= 1
        });
    }
    // The reason is each handler's own, as the kubelet words it.
    assert_eq!(
        last_message(&pod, "byexec"),
        "Liveness probe failed: command \"test -e /tmp/ok\" exited with code 1"
    );
    assert_eq!(
        last_message(&pod, "byhttp"),
        "Liveness probe failed: HTTP probe failed with statuscode: 404"
    );
    assert_eq!(
        last_message(&pod, "bytcp"),
        "Liveness probe failed: dial tcp 127.0.0.1:8082: connect: connection refused"
    );
    // PID 1 of each ignores SIGTERM (no handler): SIGKILL ended it after the
    // kubelet's minimum grace of 2 s.
    for c in ["byexec", "byhttp", "bytcp"] {
        let last = &pod.container(c)["lastState"];
        assert_eq!(last["exitCode"], 137, "{c}: {last:#}");
        assert_eq!(last["reason"], "Error", "{c}: {last:#}");
    }
    // The new runs are healthy again (fresh rootfs; the commands remake the files).
    for c in ["byexec", "byhttp", "bytcp"] {
        pod.wait_until(&format!("{c} ready again"), Duration::from_secs(20), |p| {
            p.container(c)["ready"] == true
        });
    }
    pod.down();
    pod.assert_nothing_left();
}

#[test]
fn an_image_with_no_shell_and_no_http_client_is_probed_from_the_host_side() {
    let pod = Pod::new("probe", "nohttpclient");
    // httpd-only holds one file, busybox as /bin/httpd: no sh, no wget, no nc.
    let spec = "  volumes: [{name: www, emptyDir: {}}]\n  containers:\n    - name: web\n      image: localhost/httpd-only:latest\n      volumeMounts: [{name: www, mountPath: /www}]\n      readinessProbe: {httpGet: {path: /ready, port: 8080, httpHeaders: [{name: X-Probe, value: podshim}]}, periodSeconds: 1, failureThreshold: 2, successThreshold: 2}\n      livenessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 1, periodSeconds: 1}\n";
    let out = pod.up(&yaml(spec), &[]);
    assert!(out.status.success(), "up: {}{}", stdout(&out), stderr(&out));
    let no_shell = pod.run(&["exec", &pod.key(), "-c", "web", "--", "sh", "-c", "true"]);
    assert!(!no_shell.status.success(), "the image has a shell");
    pod.wait_until("a failed readiness probe", Duration::from_secs(10), |p| {
        probe_records(p, "web").contains(&("readiness".into(), false))
    });
    assert_eq!(pod.container("web")["ready"], false);
    let table = stdout(&pod.run(&["ps", &pod.key()]));
    assert!(table.contains("0/1"), "{table}");
    // The page appears: ready after two successes in a row.
    std::fs::write(pod.pod_dir().join("volumes/www/ready"), "yes").unwrap();
    let appeared = Instant::now();
    pod.wait_until("ready", Duration::from_secs(10), |p| {
        p.container("web")["ready"] == true
    });
    assert!(
        appeared.elapsed() >= Duration::from_millis(900),
        "ready after one success; successThreshold is 2"
    );
    // Gone again: not ready after two failures; readiness restarts nothing.
    std::fs::remove_file(pod.pod_dir().join("volumes/www/ready")).unwrap();
    pod.wait_until("not ready", Duration::from_secs(10), |p| {
        p.container("web")["ready"] == false
    });
    assert_eq!(restarts(&pod, "web"), 0);
    let record = pod.container("web")["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["probe"] == "readiness")
        .cloned()
        .unwrap();
    assert_eq!(record["message"], "HTTP probe failed with statuscode: 404");
    pod.down();
    pod.assert_nothing_left();
}

#[test]
fn an_exec_probe_past_its_timeout_fails_as_timed_out_and_its_command_is_killed() {
    for runtime in runtimes() {
        let mut pod = Pod::new("probe", "slowexec");
        pod.runtime = runtime.clone();
        let spec = "  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      readinessProbe: {exec: {command: [sleep, '30']}, timeoutSeconds: 1, periodSeconds: 1}\n";
        let out = pod.up(&yaml(spec), &[]);
        assert!(out.status.success(), "{runtime:?}: up: {}", stderr(&out));
        pod.wait_until("a timed-out probe", Duration::from_secs(15), |p| {
            p.container("app")["probes"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|r| r["message"] == "command \"sleep 30\" timed out")
            })
        });
        assert_eq!(pod.container("app")["ready"], false);
        // The timed-out commands were killed: at most the one under way remains.
        let ps = pod.run(&["exec", &pod.key(), "-c", "app", "--", "ps", "-o", "args"]);
        let lingering = stdout(&ps)
            .lines()
            .filter(|l| l.trim() == "sleep 30")
            .count();
        assert!(lingering <= 1, "{runtime:?}: {}", stdout(&ps));
        pod.down();
        pod.assert_nothing_left();
    }
}

#[test]
fn a_sidecars_startup_probe_holds_the_app_containers_until_it_succeeds() {
    let pod = Pod::new("probe", "sidecargate");
    // The app fails at once (restartPolicy Never fails the pod) if it starts
    // before the sidecar made its file.
    let spec = "  restartPolicy: Never\n  volumes: [{name: m, emptyDir: {}}]\n  initContainers:\n    - name: side\n      image: localhost/busybox:latest\n      restartPolicy: Always\n      command: [sh, -c, 'sleep 2; touch /m/up; exec sleep 600']\n      volumeMounts: [{name: m, mountPath: /m}]\n      startupProbe: {exec: {command: [test, -e, /m/up]}, periodSeconds: 1, failureThreshold: 30}\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sh, -c, 'test -e /m/up || exit 3; exec sleep 600']\n      volumeMounts: [{name: m, mountPath: /m}]\n";
    let began = Instant::now();
    let out = pod.up(&yaml(spec), &[]);
    assert!(out.status.success(), "up: {}{}", stdout(&out), stderr(&out));
    assert!(
        began.elapsed() >= Duration::from_secs(2),
        "up returned before the sidecar started"
    );
    std::thread::sleep(Duration::from_millis(500));
    let app = pod.container("app");
    assert_eq!(app["state"]["state"], "running", "{app:#}");
    assert_eq!(pod.container("side")["started"], true);
    pod.down();
    pod.assert_nothing_left();
}

#[test]
fn up_wait_ready_fails_with_the_probes_last_message_and_leaves_the_pod_running() {
    let pod = Pod::new("probe", "neverready");
    let spec = "  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      readinessProbe: {exec: {command: [sh, -c, 'echo not yet; exit 1']}, periodSeconds: 1}\n";
    let out = pod.up(&yaml(spec), &["--wait-ready", "--timeout", "4"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "pod {} is not ready after 4 s: container \"app\": Readiness probe failed: not yet",
            pod.key()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(pod.state()["phase"], "Running");
    pod.down();
    pod.assert_nothing_left();
}

#[test]
fn describe_shows_states_probes_conditions_and_events_and_ps_json_the_conditions() {
    let pod = Pod::new("probe", "described");
    let spec = "  initContainers:\n    - name: setup\n      image: localhost/busybox:latest\n      command: ['true']\n  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sh, -c, 'touch /tmp/ok; sleep 1; rm /tmp/ok; exec sleep 600']\n      livenessProbe: {exec: {command: [test, -e, /tmp/ok]}, periodSeconds: 1, failureThreshold: 1}\n";
    let out = pod.up(&yaml(spec), &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    pod.wait_until("a restart", Duration::from_secs(20), |p| {
        restarts(p, "app") >= 1
    });
    let state = pod.state();
    let conditions: Vec<(String, String)> = state["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let types: Vec<&str> = conditions.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    assert!(
        conditions.contains(&("Initialized".into(), "True".into())),
        "{conditions:?}"
    );
    let table = stdout(&pod.run(&["ps", &pod.key()]));
    assert!(table.lines().next().unwrap().ends_with("REASON"), "{table}");
    assert!(table.contains("Liveness probe failed: command"), "{table}");
    let text = stdout(&pod.run(&["describe", &pod.key()]));
    for want in [
        &format!("Name:             {}", pod.name),
        "Init Containers:\n  setup:\n",
        "      Reason:       Completed\n",
        "    Liveness:       exec [test -e /tmp/ok] delay=0s timeout=1s period=1s #success=1 #failure=1\n",
        "    Last State:     Terminated\n",
        "      Message:      Liveness probe failed: command \"test -e /tmp/ok\" exited with code 1\n",
        "  Initialized                 True\n",
        "Unhealthy",
        "Container app failed liveness probe, will be restarted",
        "Started container app",
    ] {
        assert!(text.contains(want), "describe lacks {want:?}:\n{text}");
    }
    pod.down();
    pod.assert_nothing_left();
}

/// A gRPC health server of the test's own, listening on 127.0.0.1:`port` inside
/// the network namespace of the process `pid` (the pod's infra): an image needs
/// no gRPC server for this test, and only a probe made inside the pod's
/// namespace can reach it. A call for the service `live` answers the
/// ServingStatus in `live`, any other service the one in `status`. The server
/// (and its hold on the namespace) ends when the guard is dropped.
fn serve_grpc_in(
    pid: i64,
    port: u16,
    status: std::sync::Arc<std::sync::atomic::AtomicU8>,
    live: std::sync::Arc<std::sync::atomic::AtomicU8>,
) -> GrpcServer {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        bound_tx.send(()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                let accepted =
                    tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
                let Ok(Ok((tcp, _))) = accepted else {
                    continue;
                };
                let (status, live) = (status.clone(), live.clone());
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(tcp).await else {
                        return;
                    };
                    while let Some(Ok((request, mut respond))) = conn.accept().await {
                        let mut body = request.into_body();
                        let mut asked = Vec::new();
                        while let Some(chunk) = body.data().await {
                            match chunk {
                                Ok(c) => asked.extend_from_slice(&c),
                                Err(_) => break,
                            }
                        }
                        let head = http::Response::builder()
                            .status(200)
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let Ok(mut send) = respond.send_response(head, false) else {
                            continue;
                        };
                        let which = if asked.windows(4).any(|w| w == b"live") {
                            &live
                        } else {
                            &status
                        };
                        let s = which.load(std::sync::atomic::Ordering::SeqCst);
                        let _ =
                            send.send_data(bytes::Bytes::from(vec![0, 0, 0, 0, 2, 0x08, s]), false);
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", "0".parse().unwrap());
                        let _ = send.send_trailers(trailers);
                    }
                });
            }
        });
    });
    bound_rx.recv().unwrap();
    GrpcServer {
        stop,
        thread: Some(thread),
    }
}

struct GrpcServer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn grpc_probes_of_every_kind_check_the_health_service_inside_the_pods_network() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};
    let pod = Pod::new("probe", "grpc");
    let spec = "  containers:\n    - name: app\n      image: localhost/busybox:latest\n      command: [sleep, '600']\n      startupProbe: {grpc: {port: 50051}, periodSeconds: 1, failureThreshold: 30}\n      livenessProbe: {grpc: {port: 50051, service: live}, periodSeconds: 1, failureThreshold: 1}\n      readinessProbe: {grpc: {port: 50051}, periodSeconds: 1, failureThreshold: 1}\n";
    let out = pod.up(&yaml(spec), &[]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    // Nothing listens yet: the startup probe fails, and holds the other two.
    pod.wait_until("a failed startup probe", Duration::from_secs(10), |p| {
        probe_records(p, "app").contains(&("startup".into(), false))
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(probe_records(&pod, "app"), [("startup".to_string(), false)]);
    assert_eq!(pod.container("app")["started"], false);
    let (status, live) = (Arc::new(AtomicU8::new(1)), Arc::new(AtomicU8::new(1)));
    let infra = pod.container("POD")["state"]["pid"].as_i64().unwrap();
    let server = serve_grpc_in(infra, 50051, status.clone(), live.clone());
    pod.wait_until("ready", Duration::from_secs(10), |p| {
        p.container("app")["ready"] == true
    });
    assert_eq!(pod.container("app")["started"], true);
    // Readiness fails: not ready, and nothing restarts.
    status.store(2, Ordering::SeqCst);
    pod.wait_until("not ready", Duration::from_secs(10), |p| {
        p.container("app")["ready"] == false
    });
    let readiness = pod.container("app")["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["probe"] == "readiness")
        .cloned()
        .unwrap();
    assert_eq!(
        readiness["message"],
        "service unhealthy (responded with \"NOT_SERVING\")"
    );
    assert_eq!(restarts(&pod, "app"), 0);
    // Liveness fails: the container is restarted, with the probe's words.
    status.store(1, Ordering::SeqCst);
    live.store(2, Ordering::SeqCst);
    pod.wait_until("a restart", Duration::from_secs(20), |p| {
        restarts(p, "app") >= 1
    });
    assert_eq!(
        last_message(&pod, "app"),
        "Liveness probe failed: service unhealthy (responded with \"NOT_SERVING\")"
    );
    drop(server);
    pod.down();
    pod.assert_nothing_left();
}
