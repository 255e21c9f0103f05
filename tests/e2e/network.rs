//! Pods on a CNI network through `up`, with Debian's real plugins: each test has
//! its own bridge, subnet and network (tests/e2e/cni.rs' `TestNet`, removed by
//! those names and its pods' ids on drop) and talks only to 127.0.0.1 and to the
//! pod IPs of the pods it started there.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cni::{TestNet, can_run, free_port, ok, script};
use crate::support::*;

/// `GET /` over HTTP/1.0; the body.
fn http_get(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default())
}

/// The body of `GET /` once the server answers (it starts after `up` returns).
fn get_eventually(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match http_get(addr) {
            Ok(body) if !body.is_empty() => return body,
            r if Instant::now() > deadline => panic!(
                "{addr} did not answer: {r:?}\n{}",
                ok("iptables-save", &["-t", "nat"])
            ),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A web server pod: its page names its pod IP (from the downward API), its log
/// the pod's `/etc/hosts` line, its podIPs and its interfaces.
fn web_yaml(host_port: Option<u16>) -> String {
    let ports = host_port
        .map(|p| format!("    ports: [{{containerPort: 80, hostPort: {p}}}]\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: "{{name}}", namespace: "{{ns}}"}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: localhost/busybox:latest
    env:
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: POD_IPS, valueFrom: {{fieldRef: {{fieldPath: status.podIPs}}}}}}
    command: [sh, -c, 'mkdir -p /www && echo "hello from $POD_IP" > /www/index.html && grep -v "^#" /etc/hosts | tail -1 && echo "ips=$POD_IPS" && echo "links:" $(ls /sys/class/net) && echo READY && exec httpd -f -p 80 -h /www']
{ports}"#
    )
}

fn sleeper_yaml(command: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: \"{{name}}\", namespace: \"{{ns}}\"}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: localhost/busybox:latest\n    command: {command}\n"
    )
}

/// `up` of `yaml` on `net`'s network (its conf dir, asked for by name).
fn up_on(net: &TestNet, conf: &Path, pod: &Pod, yaml: &str) -> std::process::Output {
    up_with(net, conf, pod, yaml, false, &[])
}

/// `--network` and `--cni-conf-dir` for `net`'s network in `conf`; with
/// `own_plugins`, the test's plugin directory (then Debian's) as `--cni-bin-dir`.
fn network_args(net: &TestNet, conf: &Path, own_plugins: bool) -> Vec<String> {
    let mut args = vec![
        "--network".to_string(),
        net.network.clone(),
        "--cni-conf-dir".to_string(),
        conf.to_str().unwrap().to_string(),
    ];
    if own_plugins {
        args.extend([
            "--cni-bin-dir".to_string(),
            net.bin_dir().to_str().unwrap().to_string(),
            "--cni-bin-dir".to_string(),
            "/usr/lib/cni".to_string(),
        ]);
    }
    args
}

/// [`up_on`] with [`network_args`]' plugin choice and `extra` arguments.
fn up_with(
    net: &TestNet,
    conf: &Path,
    pod: &Pod,
    yaml: &str,
    own_plugins: bool,
    extra: &[&str],
) -> std::process::Output {
    let args = network_args(net, conf, own_plugins);
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(extra);
    pod.up(yaml, &all)
}

/// The pod's CNI container id: its infra's id and its pod directory's hash.
fn cid(pod: &Pod) -> String {
    podshim::pod::network::cni_container_id(&pod.id(None), &pod.pod_dir())
}

/// The CNI result cache entry of `pod` on network `network`.
fn cache_entry(network: &str, pod: &Pod) -> PathBuf {
    Path::new("/var/lib/cni/results").join(format!("{network}-{}-eth0", cid(pod)))
}

/// Nothing of the pod's network remains: no lease, no rule naming its id or
/// our subnet, no cache entry, no veth on the bridge.
fn assert_network_gone(net: &TestNet, network: &str, pod: &Pod) {
    assert_eq!(net.lease_files(), Vec::<String>::new(), "leases left");
    assert_eq!(
        net.rules("nat", None),
        Vec::<String>::new(),
        "nat rules left"
    );
    assert_eq!(
        net.rules("filter", None),
        Vec::<String>::new(),
        "filter rules left"
    );
    assert!(
        !cache_entry(network, pod).exists(),
        "{} left",
        cache_entry(network, pod).display()
    );
    assert_eq!(net.bridge_ports(), "", "veths left on {}", net.bridge);
}

#[test]
fn a_pod_has_an_ip_in_ps_the_downward_api_and_etc_hosts_and_serves_on_it_and_its_host_port() {
    if !can_run() {
        return;
    }
    for rt in runtimes() {
        let mut net = TestNet::new();
        let conf = net.conf_dir(&[]);
        let mut pod = Pod::new("net", "web");
        pod.runtime = rt.clone();
        net.track(&cid(&pod), &net.network.clone());
        let port = free_port();
        let out = up_on(&net, &conf, &pod, &web_yaml(Some(port)));
        assert!(out.status.success(), "{rt:?}: {}", stderr(&out));

        let state = pod.state();
        let ip = state["podIP"].as_str().unwrap_or_default().to_string();
        assert!(
            ip.starts_with(&net.prefix),
            "{rt:?}: podIP {ip:?} not in {}",
            net.subnet
        );
        assert_eq!(state["podIPs"], serde_json::json!([{"ip": ip}]));
        assert!(
            !state["hostIP"].as_str().unwrap_or_default().is_empty(),
            "{state:#}"
        );
        let wide = stdout(&pod.run(&["ps", &pod.key(), "-o", "wide"]));
        assert!(wide.lines().next().unwrap().ends_with("IP"), "{wide}");
        assert!(wide.contains(&ip), "{wide}");
        pod.wait_until("the server's log", Duration::from_secs(20), |p| {
            p.logs("web").contains("READY")
        });
        let log = pod.logs("web");
        assert!(
            log.contains(&format!("{ip}\tweb\n")),
            "the kubelet's hosts line: {log}"
        );
        assert!(log.contains(&format!("ips={ip}\n")), "{log}");
        assert!(log.contains("links: eth0 lo\n"), "{log}");
        assert_eq!(net.lease_files(), std::slice::from_ref(&ip));
        // exec (and the probes of the next issue) see the pod's network.
        let exec = pod.run(&[
            "exec",
            &pod.key(),
            "-c",
            "web",
            "--",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "dev",
            "eth0",
        ]);
        assert!(
            stdout(&exec).contains(&format!("inet {ip}/24")),
            "{}{}",
            stdout(&exec),
            stderr(&exec)
        );
        assert!(cache_entry(&net.network, &pod).exists());

        let page = format!("hello from {ip}\n");
        assert_eq!(get_eventually(&format!("{ip}:80")), page, "by pod IP");
        assert_eq!(
            get_eventually(&format!("127.0.0.1:{port}")),
            page,
            "by hostPort"
        );

        pod.down();
        assert_network_gone(&net, &net.network, &pod);
        pod.assert_nothing_left();
    }
}

#[test]
fn two_pods_on_one_network_reach_each_other_by_pod_ip() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let server = Pod::new("net", "server");
    let client = Pod::new("net", "client");
    net.track(&cid(&server), &net.network.clone());
    net.track(&cid(&client), &net.network.clone());
    let out = up_on(&net, &conf, &server, &web_yaml(None));
    assert!(out.status.success(), "{}", stderr(&out));
    let ip = server.state()["podIP"].as_str().unwrap().to_string();
    let fetch = format!(
        // busybox-static's wget crashes in static glibc's resolver; its nc does not.
        "[sh, -c, 'until printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 2 {ip} 80; do sleep 0.2; done; echo DONE; sleep 3600']"
    );
    let out = up_on(&net, &conf, &client, &sleeper_yaml(&fetch));
    assert!(out.status.success(), "{}", stderr(&out));
    let client_ip = client.state()["podIP"].as_str().unwrap().to_string();
    assert_ne!(client_ip, ip);
    client.wait_until("the client's fetch", Duration::from_secs(20), |p| {
        p.logs("c").contains("DONE")
    });
    assert!(
        client.logs("c").contains(&format!("hello from {ip}")),
        "{}",
        client.logs("c")
    );
    for pod in [&client, &server] {
        pod.down();
        pod.assert_nothing_left();
    }
    assert_network_gone(&net, &net.network, &server);
}

#[test]
fn ten_pods_started_at_once_get_ten_distinct_ips_and_down_frees_them() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let pods: Vec<Pod> = (0..10).map(|i| Pod::new("net", &format!("p{i}"))).collect();
    for pod in &pods {
        net.track(&cid(pod), &net.network.clone());
    }
    let yaml = sleeper_yaml("[sleep, '3600']");
    let ips: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .map(|pod| {
                let (net, conf, yaml) = (&net, &conf, &yaml);
                s.spawn(move || {
                    let out = up_on(net, conf, pod, yaml);
                    assert!(out.status.success(), "{}: {}", pod.key(), stderr(&out));
                    pod.state()["podIP"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10, "{ips:?}");
    assert!(ips.iter().all(|ip| ip.starts_with(&net.prefix)), "{ips:?}");
    assert_eq!(net.lease_files(), distinct);
    std::thread::scope(|s| {
        for pod in &pods {
            s.spawn(move || {
                pod.down();
            });
        }
    });
    for pod in &pods {
        pod.assert_nothing_left();
    }
    assert_network_gone(&net, &net.network, &pods[0]);
}

#[test]
fn a_host_port_another_pod_holds_is_refused_naming_the_port_and_the_holder() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let first = Pod::new("net", "web");
    net.track(&cid(&first), &net.network.clone());
    let port = free_port();
    let out = up_on(&net, &conf, &first, &web_yaml(Some(port)));
    assert!(out.status.success(), "{}", stderr(&out));
    // A second pod in the same state root asks for the same port.
    let second = first.tmp.path().join("second.yaml");
    std::fs::write(
        &second,
        web_yaml(Some(port))
            .replace("{ns}", &first.ns)
            .replace("{name}", "second"),
    )
    .unwrap();
    let out = first
        .cmd()
        .arg("up")
        .arg(&second)
        .args([
            "--network",
            &net.network,
            "--cni-conf-dir",
            conf.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "pod {ns}/second: spec.containers[0].ports[0].hostPort: host port {port}/TCP is in use by pod {ns}/web",
            ns = first.ns
        )),
        "{}",
        stderr(&out)
    );
    // Nothing of the second pod was made; the first still serves.
    assert_eq!(net.lease_files().len(), 1);
    assert!(
        !first
            .tmp
            .path()
            .join("run/pods")
            .join(format!("{}_second", first.ns))
            .exists()
    );
    let ip = first.state()["podIP"].as_str().unwrap().to_string();
    assert_eq!(
        get_eventually(&format!("127.0.0.1:{port}")),
        format!("hello from {ip}\n")
    );
    first.down();
    assert_network_gone(&net, &net.network, &first);
}

#[test]
fn nothing_of_the_network_is_left_after_a_failed_up_a_killed_supervisor_or_a_wiped_state_root() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let port = free_port();

    // A container that cannot start: up fails and rolls the network back.
    let failed = Pod::new("net", "failed");
    net.track(&cid(&failed), &net.network.clone());
    let out = up_on(
        &net,
        &conf,
        &failed,
        &web_yaml(Some(port)).replace("command: [sh, -c,", "command: [/no/such/program, -c,"),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/no/such/program"),
        "{}",
        stderr(&out)
    );
    assert_network_gone(&net, &net.network, &failed);
    failed.assert_nothing_left();

    // The supervisor SIGKILLed, then down.
    let killed = Pod::new("net", "killed");
    net.track(&cid(&killed), &net.network.clone());
    let out = up_on(&net, &conf, &killed, &web_yaml(Some(port)));
    assert!(out.status.success(), "{}", stderr(&out));
    killed.kill_supervisor();
    killed.down();
    assert_network_gone(&net, &net.network, &killed);
    killed.assert_nothing_left();

    // The state root wiped (its mounts, the pinned namespace among them, undone)
    // while the containers run: down finds the attachment in the CNI cache and
    // detaches it in the infra's namespace.
    let wiped = Pod::new("net", "wiped");
    net.track(&cid(&wiped), &net.network.clone());
    let out = up_on(&net, &conf, &wiped, &web_yaml(Some(port)));
    assert!(out.status.success(), "{}", stderr(&out));
    wiped.kill_supervisor();
    let root = wiped.tmp.path().join("run");
    podshim::bundle::unmount_all_under(&root, &podshim::bundle::SystemMounter).unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    let down = wiped.down();
    assert!(
        stdout(&down).contains("its state was gone"),
        "{}",
        stdout(&down)
    );
    assert_network_gone(&net, &net.network, &wiped);
    wiped.assert_nothing_left();
}

#[test]
fn after_a_reboot_down_frees_the_ip_lease_and_the_port_mappings() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let pod = Pod::new("net", "boot");
    net.track(&cid(&pod), &net.network.clone());
    let port = free_port();
    let out = up_on(&net, &conf, &pod, &web_yaml(Some(port)));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(net.lease_files().len(), 1);
    // What a reboot leaves: no process, no runtime state, no /run; the plugins'
    // files on disk (host-local's lease, the CNI cache) and, here, their rules.
    pod.kill_supervisor();
    for id in [pod.id(Some("web")), pod.id(None)] {
        ok("runc", &["delete", "-f", &id]);
    }
    let root = pod.tmp.path().join("run");
    podshim::bundle::unmount_all_under(&root, &podshim::bundle::SystemMounter).unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    // cgroupfs is in memory too: the root's cgroup tree is gone after a reboot.
    let parent = podshim::translate::pod_cgroup::CgroupParent::for_root(&root);
    for dir in cgroup_dirs(parent.as_str()) {
        remove_cgroup_tree(&dir);
    }
    let down = pod.run(&["down", &pod.key()]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(
        net.lease_files(),
        Vec::<String>::new(),
        "the lease is freed"
    );
    assert!(!cache_entry(&net.network, &pod).exists());
    // portmap's rules name the pod's id; all of them go. (bridge 1.1.1 finds its
    // masquerade chain through the pod's interface, which went with the
    // namespace: that chain is what a reboot flushes; TestNet removes it here.)
    let dnat: Vec<String> = net
        .rules("nat", None)
        .into_iter()
        .filter(|r| r.contains("dnat name") || r.contains(&port.to_string()))
        .collect();
    assert_eq!(dnat, Vec::<String>::new());
    assert_eq!(net.rules("filter", None), Vec::<String>::new());
    pod.assert_nothing_left();
}

#[test]
fn network_none_keeps_a_loopback_only_pod_and_says_its_host_ports_are_not_published() {
    if !can_run() {
        return;
    }
    let pod = Pod::new("net", "none");
    let out = pod.up(&web_yaml(Some(free_port())), &["--network", "none"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "warning: spec.containers[0].ports[0].hostPort: not published: the pod runs with --network none"
        ),
        "{}",
        stderr(&out)
    );
    pod.wait_until("the server's log", Duration::from_secs(20), |p| {
        p.logs("web").contains("READY")
    });
    assert!(
        pod.logs("web").contains("links: lo\n"),
        "{}",
        pod.logs("web")
    );
    assert!(pod.state().get("podIP").is_none(), "{:#}", pod.state());
    assert!(!pod.pod_dir().join("netns").exists());
    pod.down();
    pod.assert_nothing_left();
}

#[test]
fn up_from_generated_bundles_refuses_a_network_it_cannot_give_them() {
    let pod = Pod::new("net", "from");
    let out = pod.run(&["up", "--from", "/nonexistent", "--network", "podshim"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "--network podshim: `up --from` runs generated bundles as they are, loopback-only"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unknown_network_name_fails_naming_it_and_the_conf_dir_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    let net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let pod = Pod::new("net", "nosuch");
    let out = pod.up(
        &web_yaml(None),
        &[
            "--network",
            "nosuch",
            "--cni-conf-dir",
            conf.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "CNI configuration directory {}: no network named \"nosuch\" (networks: [\"{}\"])",
            conf.display(),
            net.network
        )),
        "{}",
        stderr(&out)
    );
    pod.assert_nothing_left();
    // A conf dir that is not there has no such network either.
    let missing = net.tmp.path().join("missing.d");
    let out = pod.up(
        &web_yaml(None),
        &[
            "--network",
            "nosuch",
            "--cni-conf-dir",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "--network nosuch: no network of that name in {}",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );
    pod.assert_nothing_left();
}

#[test]
fn the_built_in_network_is_used_when_the_conf_dir_has_none() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let empty = net.tmp.path().join("empty.d");
    std::fs::create_dir_all(&empty).unwrap();
    let leases = PathBuf::from("/var/lib/cni/networks/podshim");
    net.shared_lease_dirs.push(leases.clone());
    let pod = Pod::new("net", "builtin");
    net.track(&cid(&pod), "podshim");
    let out = pod.up(
        &web_yaml(None),
        &[
            "--network",
            "podshim",
            "--cni-conf-dir",
            empty.to_str().unwrap(),
            "--pod-subnet",
            &net.subnet,
            "--pod-bridge",
            &net.bridge,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ip = pod.state()["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with(&net.prefix), "{ip} not in {}", net.subnet);
    assert!(leases.join(&ip).exists());
    assert!(
        net.bridge_ports().contains("veth"),
        "{}",
        net.bridge_ports()
    );
    assert_eq!(
        get_eventually(&format!("{ip}:80")),
        format!("hello from {ip}\n")
    );
    pod.down();
    assert!(!leases.join(&ip).exists(), "the lease is freed");
    assert!(!cache_entry("podshim", &pod).exists());
    assert_eq!(net.rules("nat", None), Vec::<String>::new());
    assert_eq!(net.bridge_ports(), "");
    pod.assert_nothing_left();
}

#[test]
fn bandwidth_annotations_shape_the_pods_traffic_and_a_bad_one_is_refused_by_name() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[serde_json::json!({
        "type": "bandwidth",
        "capabilities": {"bandwidth": true}
    })]);
    let with = |ingress: &str| {
        sleeper_yaml("[sleep, '3600']").replace(
            "namespace: \"{ns}\"}",
            &format!(
                "namespace: \"{{ns}}\", annotations: {{kubernetes.io/ingress-bandwidth: {ingress}, kubernetes.io/egress-bandwidth: 20M}}}}"
            ),
        )
    };
    let bad = Pod::new("net", "badbw");
    let out = up_on(&net, &conf, &bad, &with("lots"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("metadata.annotations: annotation kubernetes.io/ingress-bandwidth:"),
        "{}",
        stderr(&out)
    );
    bad.assert_nothing_left();
    assert_eq!(net.lease_files(), Vec::<String>::new());

    let pod = Pod::new("net", "bw");
    net.track(&cid(&pod), &net.network.clone());
    let out = up_on(&net, &conf, &pod, &with("10M"));
    assert!(out.status.success(), "{}", stderr(&out));
    // The host end of the pod's veth is shaped to the ingress rate; the egress
    // rate is on the ifb device the plugin made for it.
    let veth = net
        .bridge_ports()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let qdisc = ok("tc", &["qdisc", "show", "dev", &veth]);
    assert!(
        qdisc.contains("tbf") && qdisc.contains("rate 10Mbit"),
        "{qdisc}"
    );
    let ifbs = || -> Vec<String> {
        ok("ip", &["-o", "link", "show", "type", "ifb"])
            .lines()
            .filter_map(|l| {
                l.split(": ")
                    .nth(1)
                    .map(|n| n.split('@').next().unwrap().to_string())
            })
            .collect()
    };
    let ours: Vec<String> = ifbs()
        .into_iter()
        .filter(|n| ok("tc", &["qdisc", "show", "dev", n]).contains("rate 20Mbit"))
        .collect();
    assert_eq!(ours.len(), 1, "{:?}", ifbs());
    pod.down();
    assert!(!ifbs().contains(&ours[0]), "{} left", ours[0]);
    assert_network_gone(&net, &net.network, &pod);
    pod.assert_nothing_left();
}

#[test]
fn a_plugin_that_fails_or_hangs_fails_up_with_its_message_or_a_timeout_and_rolls_back() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    script(
        &net,
        "e2e-refuse",
        "cat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\n\
         echo '{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"e2e refuses\",\"details\":\"on purpose\"}'\nexit 1",
    );
    script(
        &net,
        "e2e-hang",
        "cat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && exec sleep 1000\nexit 0",
    );
    for (plugin, want, extra) in [
        (
            "e2e-refuse",
            "ADD of plugin e2e-refuse failed: e2e refuses (code 100; on purpose)",
            vec![],
        ),
        // `up --timeout` bounds the plugins too.
        (
            "e2e-hang",
            "ADD of plugin e2e-hang: it did not finish within",
            vec!["--timeout", "4"],
        ),
    ] {
        let conf = net.tmp.path().join(format!("{plugin}.d"));
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("10-test.conflist"),
            &net.conflist(&[serde_json::json!({"type": plugin})]).bytes,
        )
        .unwrap();
        let pod = Pod::new("net", plugin);
        net.track(&cid(&pod), &net.network.clone());
        let out = up_with(
            &net,
            &conf,
            &pod,
            &web_yaml(Some(free_port())),
            true,
            &extra,
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
        assert!(
            !stderr(&out).contains("undoing it failed"),
            "{}",
            stderr(&out)
        );
        assert_network_gone(&net, &net.network, &pod);
        pod.assert_nothing_left();
    }
}

#[test]
fn a_host_port_with_a_host_ip_is_published_on_that_address() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let pod = Pod::new("net", "hostip");
    net.track(&cid(&pod), &net.network.clone());
    let port = free_port();
    let yaml = web_yaml(Some(port)).replace(
        &format!("hostPort: {port}}}"),
        &format!("hostPort: {port}, hostIP: 127.0.0.1}}"),
    );
    assert!(yaml.contains("hostIP: 127.0.0.1"), "{yaml}");
    let out = up_on(&net, &conf, &pod, &yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    let ip = pod.state()["podIP"].as_str().unwrap().to_string();
    assert_eq!(
        get_eventually(&format!("127.0.0.1:{port}")),
        format!("hello from {ip}\n")
    );
    // portmap matches the host IP in its DNAT rule for the port.
    let port_text = port.to_string();
    let dnat = net.rules("nat", Some(&port_text));
    assert!(
        dnat.iter()
            .any(|r| r.contains("-d 127.0.0.1/32") && r.contains(&port_text)),
        "{dnat:?}"
    );
    pod.down();
    assert_network_gone(&net, &net.network, &pod);
    pod.assert_nothing_left();
}

/// The pids whose command line names `needle` (a path unique to the test).
fn pids_naming(needle: &Path) -> Vec<i32> {
    let needle = needle.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

#[test]
fn an_up_that_crashed_after_attaching_is_detached_by_the_next_up() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let pod = Pod::new("net", "crash");
    net.track(&cid(&pod), &net.network.clone());
    // Attached, then stuck before the infra runs; the supervisor and the runtime
    // die, and the state goes: what a crash between ADD and the state leaves.
    let wrapper = slow_runc(pod.tmp.path(), "run", 60);
    let path = pod.tmp.path().join("pod.yaml");
    std::fs::write(
        &path,
        web_yaml(None)
            .replace("{ns}", &pod.ns)
            .replace("{name}", &pod.name),
    )
    .unwrap();
    let mut up = pod
        .cmd()
        .arg("--runtime")
        .arg(&wrapper)
        .arg("up")
        .arg(&path)
        .args([
            "--keep",
            "--network",
            &net.network,
            "--cni-conf-dir",
            conf.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its `run` of the infra (the runtime is asked for its version first).
    let running = || {
        pids_naming(&wrapper).into_iter().any(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"run"))
        })
    };
    let t0 = Instant::now();
    while !running() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the runtime never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(net.lease_files().len(), 1);
    let supervisor = pod.state()["supervisorPid"].as_i64().unwrap() as i32;
    // The wrapper and its `sleep`.
    let wrappers = pids_naming(&wrapper);
    let children: Vec<i32> = wrappers
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    for pid in std::iter::once(supervisor).chain(wrappers).chain(children) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
    let _ = up.wait();
    std::fs::remove_file(pod.pod_dir().join("state.json")).unwrap();
    assert!(pod.pod_dir().join("netns").exists());

    let out = up_on(&net, &conf, &pod, &web_yaml(None));
    assert!(out.status.success(), "{}", stderr(&out));
    let ip = pod.state()["podIP"].as_str().unwrap().to_string();
    assert_eq!(
        net.lease_files(),
        std::slice::from_ref(&ip),
        "the first lease was freed"
    );
    pod.down();
    assert_network_gone(&net, &net.network, &pod);
    pod.assert_nothing_left();
}

#[test]
fn a_single_plugin_conf_network_attaches_and_detaches() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    // The bridge plugin alone, as a `.conf` (the CNI README's form).
    let list = net.conflist(&[]);
    let mut conf: serde_json::Value = serde_json::from_slice(&list.bytes).unwrap();
    let mut bridge = conf["plugins"][0].take();
    bridge["name"] = conf["name"].clone();
    bridge["cniVersion"] = conf["cniVersion"].clone();
    let dir = net.tmp.path().join("conf.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("10-one.conf"), bridge.to_string()).unwrap();
    let pod = Pod::new("net", "one");
    net.track(&cid(&pod), &net.network.clone());
    let out = up_on(&net, &dir, &pod, &web_yaml(None));
    assert!(out.status.success(), "{}", stderr(&out));
    let ip = pod.state()["podIP"].as_str().unwrap().to_string();
    assert_eq!(
        get_eventually(&format!("{ip}:80")),
        format!("hello from {ip}\n")
    );
    pod.down();
    assert_network_gone(&net, &net.network, &pod);
    pod.assert_nothing_left();
}

#[test]
fn pods_of_one_name_in_two_state_roots_keep_their_own_attachments() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let a = Pod::new("net", "twin");
    // Same namespace and name, another state root and runtime root (so that the
    // runtime ids do not collide either).
    let mut b = Pod::new("net", "twin");
    b.ns = a.ns.clone();
    let b_runtime_root = b.tmp.path().join("runc-root");
    for pod in [&a, &b] {
        net.track(&cid(pod), &net.network.clone());
    }
    let out = up_on(&net, &conf, &a, &web_yaml(None));
    assert!(out.status.success(), "{}", stderr(&out));
    let conf_s = conf.to_str().unwrap();
    let out = b
        .cmd()
        .arg("--runtime-root")
        .arg(&b_runtime_root)
        .arg("up")
        .arg({
            let p = b.tmp.path().join("pod.yaml");
            std::fs::write(
                &p,
                web_yaml(None)
                    .replace("{ns}", &b.ns)
                    .replace("{name}", &b.name),
            )
            .unwrap();
            p
        })
        .args(["--network", &net.network, "--cni-conf-dir", conf_s])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let ip_a = a.state()["podIP"].as_str().unwrap().to_string();
    let ip_b = stdout(
        &b.cmd()
            .args(["ps", &b.key(), "-o", "json"])
            .output()
            .unwrap(),
    );
    let ip_b: serde_json::Value = serde_json::from_str(&ip_b).unwrap();
    let ip_b = ip_b[0]["podIP"].as_str().unwrap().to_string();
    assert_ne!(ip_a, ip_b);
    assert_eq!(net.lease_files().len(), 2);
    // Down of b, and a down in a third root where the pod does not exist, leave
    // a's attachment alone.
    let down = b
        .cmd()
        .arg("--runtime-root")
        .arg(&b_runtime_root)
        .args(["down", &b.key(), "--grace-period", "1"])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", stderr(&down));
    let third = Pod::new("net", "twin");
    let down = third
        .cmd()
        .args(["down", &format!("{}/twin", a.ns)])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(net.lease_files(), std::slice::from_ref(&ip_a));
    assert_eq!(
        get_eventually(&format!("{ip_a}:80")),
        format!("hello from {ip_a}\n")
    );
    a.down();
    assert_eq!(net.lease_files(), Vec::<String>::new());
    a.assert_nothing_left();
}

#[test]
fn a_del_that_fails_keeps_the_pod_and_its_namespace_until_a_down_finishes_it() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let fails = net.tmp.path().join("del-failures");
    // Last in the list: on ADD it passes the previous result on; its first two
    // DELs fail (the supervisor's and the first `down`'s).
    script(
        &net,
        "e2e-del-once",
        &format!(
            "conf=$(cat)\n\
             if [ \"$CNI_COMMAND\" = DEL ] && [ \"$(cat {fails} 2>/dev/null | wc -l)\" -lt 2 ]; then echo x >> {fails}; \
             echo '{{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"e2e DEL fails twice\"}}'; exit 1; fi\n\
             [ \"$CNI_COMMAND\" = ADD ] && printf '%s' \"$conf\" | jq -c .prevResult\n\
             exit 0",
            fails = fails.display()
        ),
    );
    let dir = net.conf_dir(&[serde_json::json!({"type": "e2e-del-once"})]);
    let pod = Pod::new("net", "delonce");
    net.track(&cid(&pod), &net.network.clone());
    let out = up_with(&net, &dir, &pod, &web_yaml(Some(free_port())), true, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let down = pod.run(&["down", &pod.key(), "--grace-period", "1"]);
    assert!(
        !down.status.success(),
        "the first down reports the plugin's failure"
    );
    assert!(
        stderr(&down).contains("e2e DEL fails twice"),
        "{}",
        stderr(&down)
    );
    assert!(
        pod.pod_dir().join("netns").exists(),
        "the pin is kept for the retry"
    );
    let state = pod.state();
    assert_eq!(state["phase"], "Failed", "{state:#}");
    pod.down();
    assert_network_gone(&net, &net.network, &pod);
    pod.assert_nothing_left();
}

#[test]
fn an_up_killed_during_add_leaves_nothing_the_next_up_does_not_free() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    // A plugin that never ends, after bridge has leased the pod an address (no
    // `exec`, so that its command line names it).
    script(
        &net,
        "e2e-stall",
        "cat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && while :; do sleep 1; done\nexit 0",
    );
    let stall = net.bin_dir().join("e2e-stall");
    let stalled = net.tmp.path().join("stall.d");
    std::fs::create_dir_all(&stalled).unwrap();
    std::fs::write(
        stalled.join("10-stall.conflist"),
        &net.conflist(&[serde_json::json!({"type": "e2e-stall"})])
            .bytes,
    )
    .unwrap();
    let pod = Pod::new("net", "stall");
    net.track(&cid(&pod), &net.network.clone());
    let path = pod.tmp.path().join("pod.yaml");
    std::fs::write(
        &path,
        web_yaml(None)
            .replace("{ns}", &pod.ns)
            .replace("{name}", &pod.name),
    )
    .unwrap();
    let mut up = pod
        .cmd()
        .arg("up")
        .arg(&path)
        .args(network_args(&net, &stalled, true))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while pids_naming(&stall).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the plugin never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(net.lease_files().len(), 1, "bridge leased an address");
    up.kill().unwrap();
    let _ = up.wait();
    for pid in pids_naming(&stall) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
    assert!(pod.pod_dir().join("netns").exists());
    // What ran of the chain is cached after each plugin: the next up's DEL has
    // bridge's result (firewall removes its rules only by those addresses).
    assert!(cache_entry(&net.network, &pod).exists());

    // (The cached list names the stalling plugin: its directory stays given.)
    let conf = net.conf_dir(&[]);
    let out = up_with(&net, &conf, &pod, &web_yaml(None), true, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ip = pod.state()["podIP"].as_str().unwrap().to_string();
    assert_eq!(net.lease_files(), std::slice::from_ref(&ip));
    pod.down();
    assert_network_gone(&net, &net.network, &pod);
    pod.assert_nothing_left();
}

#[test]
fn probes_reach_a_cni_pod_on_its_pod_ip_from_the_host_side() {
    if !can_run() {
        return;
    }
    let net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let pod = Pod::new("net", "probed");
    let mut net = net;
    net.track(&cid(&pod), &net.network.clone());
    // The server listens on the pod IP only: a probe of 127.0.0.1 would be
    // refused. The kubelet's default host is the pod IP.
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: \"{name}\", namespace: \"{ns}\"}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: localhost/busybox:latest\n    env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]\n    command: [sh, -c, 'mkdir -p /www && echo up > /www/index.html && exec httpd -f -p $POD_IP:8080 -h /www']\n    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}\n    livenessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: 3}\n";
    let out = up_with(&net, &conf, &pod, yaml, false, &["--wait-ready"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let ip = pod.state()["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with(&net.prefix), "{ip}");
    assert_eq!(pod.container("web")["ready"], true);
    // Liveness (tcpSocket on the pod IP; a second for the server to listen,
    // as a probe at the container's start may come before it does) keeps
    // passing: no restart.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pod.container("web")["restartCount"], 0);
    let refused = pod.run(&[
        "exec",
        &pod.key(),
        "-c",
        "web",
        "--",
        "wget",
        "-q",
        "-O-",
        "http://127.0.0.1:8080/",
    ]);
    assert!(
        !refused.status.success(),
        "the server answers on 127.0.0.1 too"
    );
    pod.down();
    assert_network_gone(&net, &net.network.clone(), &pod);
}

/// `hostUsers: false` on a pod network: the network namespace is made in the
/// pod's user namespace before the infra runs (as containerd makes a userns
/// sandbox's), so the pod's root binds port 80 and mounts its own sysfs; the
/// pod serves on its IP and its hostPort, and `down` leaves nothing.
#[test]
fn a_pod_in_its_own_user_namespace_gets_its_ip_and_serves_on_it() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let conf = net.conf_dir(&[]);
    let pod = Pod::new("net", "userns");
    net.track(&cid(&pod), &net.network.clone());
    let port = free_port();
    let yaml = web_yaml(Some(port)).replace("spec:\n", "spec:\n  hostUsers: false\n");
    let out = up_on(&net, &conf, &pod, &yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    let state = pod.state();
    let ip = state["podIP"].as_str().unwrap_or_default().to_string();
    assert!(ip.starts_with(&net.prefix), "{state:#}");
    let base = state["userNamespace"]["hostId"].as_u64().unwrap();
    pod.wait_until("the server", Duration::from_secs(20), |p| {
        p.logs("web").contains("READY")
    });
    assert!(
        pod.logs("web").contains("links: eth0 lo\n"),
        "{}",
        pod.logs("web")
    );
    let pid = pod.container("web")["state"]["pid"].as_i64().unwrap();
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        uid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", &base.to_string(), "65536"]
    );
    let page = format!("hello from {ip}\n");
    assert_eq!(get_eventually(&format!("{ip}:80")), page, "by pod IP");
    assert_eq!(
        get_eventually(&format!("127.0.0.1:{port}")),
        page,
        "by hostPort"
    );
    pod.down();
    assert_network_gone(&net, &net.network, &pod);
    pod.assert_nothing_left();
}
