//! The CNI client with Debian's real plugins (`/usr/lib/cni`): bridge, host-local,
//! portmap, firewall. Each test has its own bridge, subnet, network name, network
//! namespaces and IPAM directory, and a guard that removes them by those names
//! (and the iptables rules naming its container ids or its subnet) even when the
//! test fails.

use std::io::Read;
use std::net::{IpAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use podshim::cni::result::IpNet;
use podshim::cni::{Attachment, Cni, NetworkList, PodRef, PortMapping, Protocol};
use serde_json::{Value, json};

const PLUGINS: &str = "/usr/lib/cni";

pub(crate) fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        podshim::testing::cannot_run("CNI tests need root");
        return false;
    }
    for tool in ["ip", "iptables-save", "iptables-restore", "iptables"] {
        if which::which(tool).is_err() {
            podshim::testing::cannot_run(&format!("{tool} is not installed (scripts/setup)"));
            return false;
        }
    }
    for plugin in ["bridge", "host-local", "portmap", "firewall"] {
        if !Path::new(PLUGINS).join(plugin).exists() {
            podshim::testing::cannot_run(&format!(
                "{PLUGINS}/{plugin} is missing: containernetworking-plugins (scripts/setup)"
            ));
            return false;
        }
    }
    true
}

pub(crate) fn sh(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program).args(args).output().unwrap()
}

pub(crate) fn ok(program: &str, args: &[&str]) -> String {
    let out = sh(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One test's network: names unique to this process and test, removed on drop.
pub(crate) struct TestNet {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) network: String,
    pub(crate) bridge: String,
    pub(crate) subnet: String,
    /// `10.231.N.`: every address of the subnet starts so (iptables cleanup).
    pub(crate) prefix: String,
    netns: Vec<String>,
    pub(crate) container_ids: Vec<String>,
    listeners: Vec<Child>,
    /// CNI result cache entries podshim wrote for this test's pods (removed
    /// when a test fails before `down`).
    pub(crate) cache_entries: Vec<PathBuf>,
    /// host-local lease directories outside the test's own (the built-in
    /// network's `/var/lib/cni/networks/podshim`): our subnet's leases go.
    pub(crate) shared_lease_dirs: Vec<PathBuf>,
}

impl TestNet {
    pub(crate) fn new() -> TestNet {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // 37 is prime to 250: the tests of one run never share a subnet.
        let third = (pid + n * 37) % 250 + 1;
        let subnet = format!("10.231.{third}.0/24");
        let routes = ok("ip", &["-4", "route"]);
        assert!(
            !routes.contains(&format!("10.231.{third}.")),
            "{subnet} is in use on this host:\n{routes}"
        );
        TestNet {
            tmp: tempfile::tempdir().unwrap(),
            network: format!("e2ecni-{pid}-{n}"),
            // At most 15 bytes, Linux's limit.
            bridge: format!("pc{}x{n}", pid % 1_000_000),
            subnet,
            prefix: format!("10.231.{third}."),
            netns: Vec::new(),
            container_ids: Vec::new(),
            listeners: Vec::new(),
            cache_entries: Vec::new(),
            shared_lease_dirs: Vec::new(),
        }
    }

    /// A conf dir holding this network's conflist (`extra` plugins after
    /// bridge, portmap and firewall), for `up --cni-conf-dir`.
    pub(crate) fn conf_dir(&self, extra: &[Value]) -> PathBuf {
        let dir = self.tmp.path().join("net.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("10-{}.conflist", self.network)),
            &self.conflist(extra).bytes,
        )
        .unwrap();
        dir
    }

    /// A pod's infra id, whose rules, leases and cache entry go on drop.
    pub(crate) fn track(&mut self, infra_id: &str, network: &str) {
        self.container_ids.push(infra_id.to_string());
        self.cache_entries
            .push(Path::new("/var/lib/cni/results").join(format!("{network}-{infra_id}-eth0")));
    }

    pub(crate) fn ipam_dir(&self) -> PathBuf {
        self.tmp.path().join("ipam")
    }

    pub(crate) fn bin_dir(&self) -> PathBuf {
        self.tmp.path().join("bin")
    }

    /// bridge (host-local IPAM in the test's directory), portmap, firewall, then
    /// `extra` plugins.
    pub(crate) fn conflist(&self, extra: &[Value]) -> NetworkList {
        let mut plugins = vec![
            json!({
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": true,
                "ipMasq": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": self.subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": self.ipam_dir()
                }
            }),
            json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}),
            json!({"type": "firewall"}),
        ];
        plugins.extend(extra.iter().cloned());
        let list = json!({"cniVersion": "1.0.0", "name": self.network, "plugins": plugins});
        NetworkList::parse(list.to_string().as_bytes(), Path::new("e2e"), false).unwrap()
    }

    fn cni(&self) -> Cni {
        Cni {
            bin_dirs: vec![self.bin_dir(), PathBuf::from(PLUGINS)],
            cache_dir: self.tmp.path().join("cache"),
            timeout: Duration::from_secs(60),
            ..Cni::default()
        }
    }

    /// A new network namespace (`ip netns add`) and an attachment for it.
    fn pod(&mut self, i: usize) -> Attachment {
        let name = format!("{}-{i}", self.network);
        ok("ip", &["netns", "add", &name]);
        self.netns.push(name.clone());
        let id = format!("e2e_{}_{i}", self.network);
        self.container_ids.push(id.clone());
        Attachment {
            container_id: id.clone(),
            netns: PathBuf::from("/run/netns").join(&name),
            ifname: "eth0".into(),
            pod: PodRef {
                namespace: "e2e".into(),
                name: format!("{}-{i}", self.network),
                uid: format!("uid-{i}"),
                infra_container_id: id,
            },
            port_mappings: Vec::new(),
            bandwidth: None,
        }
    }

    pub(crate) fn lease_files(&self) -> Vec<String> {
        let dir = self.ipam_dir().join(&self.network);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut v: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<IpAddr>().is_ok())
            .collect();
        v.sort();
        v
    }

    /// The bridge's ports (the host ends of the pods' veths).
    pub(crate) fn bridge_ports(&self) -> String {
        let out = sh("ip", &["-o", "link", "show", "master", &self.bridge]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The rules of `table` naming one of our container ids, `needle`, or our subnet.
    pub(crate) fn rules(&self, table: &str, needle: Option<&str>) -> Vec<String> {
        ok("iptables-save", &["-t", table])
            .lines()
            .filter(|l| l.starts_with("-A "))
            .filter(|l| {
                self.container_ids.iter().any(|id| l.contains(id.as_str()))
                    || l.contains(&self.prefix)
                    || needle.is_some_and(|n| l.contains(n))
            })
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for entry in &self.cache_entries {
            let _ = std::fs::remove_file(entry);
        }
        for dir in &self.shared_lease_dirs {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(&self.prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        for l in &mut self.listeners {
            let _ = l.kill();
            let _ = l.wait();
        }
        for ns in &self.netns {
            let _ = sh("ip", &["netns", "del", ns]);
        }
        let _ = sh("ip", &["link", "del", &self.bridge]);
        // The plugins' rules for our pods: each `-A` line deleted as written, then
        // the per-pod chains they jumped to (bridge's CNI-<hash>, portmap's
        // CNI-DN-<hash>); the shared chains (CNI-HOSTPORT-*, CNI-FORWARD) stay.
        for table in ["nat", "filter"] {
            let rules = self.rules(table, None);
            if rules.is_empty() {
                continue;
            }
            let mut input = format!("*{table}\n");
            let mut chains = Vec::new();
            for rule in &rules {
                input.push_str(&rule.replacen("-A ", "-D ", 1));
                input.push('\n');
                if let Some(target) = rule.split(" -j ").nth(1) {
                    let target = target.split_whitespace().next().unwrap_or("");
                    if target.starts_with("CNI-")
                        && !target.starts_with("CNI-HOSTPORT")
                        && target != "CNI-FORWARD"
                        && target != "CNI-ADMIN"
                    {
                        chains.push(target.to_string());
                    }
                }
            }
            input.push_str("COMMIT\n");
            let mut child = Command::new("iptables-restore")
                .arg("--noflush")
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
            let _ = child.wait();
            for chain in chains {
                let _ = sh("iptables", &["-t", table, "-F", &chain]);
                let _ = sh("iptables", &["-t", table, "-X", &chain]);
            }
        }
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn eth0_addr(netns: &str) -> String {
    ok(
        "ip",
        &["-n", netns, "-4", "-o", "addr", "show", "dev", "eth0"],
    )
}

#[test]
fn cni_add_gives_the_namespace_eth0_in_the_subnet_and_forwards_a_host_port() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let mut att = net.pod(0);
    let port = free_port();
    att.port_mappings = vec![PortMapping {
        host_port: port,
        container_port: 8080,
        protocol: Protocol::Tcp,
        host_ip: None,
    }];
    let list = net.conflist(&[]);
    let cni = net.cni();
    let result = cni.add(&list, &att).unwrap();
    let ips = result.pod_ips("eth0");
    assert_eq!(ips.len(), 1, "{result:?}");
    let subnet = IpNet::parse(&net.subnet).unwrap();
    assert!(subnet.contains(ips[0]), "{ips:?} not in {}", net.subnet);
    let ns = net.netns[0].clone();
    assert!(
        eth0_addr(&ns).contains(&format!("{}/24", ips[0])),
        "{}",
        eth0_addr(&ns)
    );
    assert_eq!(net.lease_files(), [ips[0].to_string()]);
    assert!(
        net.bridge_ports().contains("veth"),
        "{}",
        net.bridge_ports()
    );

    // A listener inside the namespace, reached through 127.0.0.1:<hostPort>.
    let listener = Command::new("ip")
        .args(["netns", "exec", &ns, "/usr/bin/python3", "-c"])
        .arg(
            "import socket\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('0.0.0.0', 8080)); s.listen(8)\n\
             while True:\n    c, _ = s.accept(); c.sendall(b'hello from the pod'); c.close()\n",
        )
        .spawn()
        .unwrap();
    net.listeners.push(listener);
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let attempt = TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(2),
        )
        .and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut buf = String::new();
            s.read_to_string(&mut buf)?;
            Ok(buf)
        });
        match attempt {
            Ok(text) if !text.is_empty() => break text,
            _ if Instant::now() > deadline => panic!(
                "127.0.0.1:{port} did not reach the pod: {attempt:?}\n{}",
                ok("iptables-save", &["-t", "nat"])
            ),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert_eq!(got, "hello from the pod");
    let port_text = port.to_string();
    let nat = net.rules("nat", Some(&port_text));
    assert!(nat.iter().any(|r| r.contains(&port_text)), "{nat:?}");
    assert!(nat.iter().any(|r| r.contains(&att.container_id)), "{nat:?}");

    cni.del(&list, &att).unwrap();
    assert_eq!(net.bridge_ports(), "");
    let eth0 = sh("ip", &["-n", &ns, "-o", "link", "show", "dev", "eth0"]);
    assert!(!eth0.status.success(), "eth0 is still there");
    assert_eq!(net.lease_files(), Vec::<String>::new());
    assert_eq!(net.rules("nat", Some(&port_text)), Vec::<String>::new());
    assert_eq!(net.rules("filter", None), Vec::<String>::new());
    assert!(
        !net.tmp
            .path()
            .join("cache/results")
            .join(format!("{}-{}-eth0", net.network, att.container_id))
            .exists()
    );
}

#[test]
fn cni_ten_concurrent_adds_get_ten_distinct_addresses_and_dels_free_them() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let atts: Vec<Attachment> = (0..10).map(|i| net.pod(i)).collect();
    let list = net.conflist(&[]);
    let cni = net.cni();
    let ips: Vec<IpAddr> = std::thread::scope(|s| {
        let handles: Vec<_> = atts
            .iter()
            .map(|att| s.spawn(|| cni.add(&list, att).map(|r| r.pod_ips("eth0")[0])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10, "{ips:?}");
    assert_eq!(net.lease_files().len(), 10);
    std::thread::scope(|s| {
        for att in &atts {
            let (cni, list) = (&cni, &list);
            s.spawn(move || cni.del(list, att).unwrap());
        }
    });
    assert_eq!(net.lease_files(), Vec::<String>::new());
    assert_eq!(net.bridge_ports(), "");
    assert_eq!(net.rules("nat", None), Vec::<String>::new());
    assert_eq!(net.rules("filter", None), Vec::<String>::new());
}

#[test]
fn cni_del_after_the_namespace_is_gone_still_frees_the_lease_and_the_nat_rules() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let mut att = net.pod(0);
    let port = free_port();
    att.port_mappings = vec![PortMapping {
        host_port: port,
        container_port: 80,
        protocol: Protocol::Tcp,
        host_ip: Some("127.0.0.1".into()),
    }];
    let list = net.conflist(&[]);
    let cni = net.cni();
    cni.add(&list, &att).unwrap();
    let port_text = port.to_string();
    assert!(!net.rules("nat", Some(&port_text)).is_empty());
    ok("ip", &["netns", "del", &net.netns[0]]);
    cni.del(&list, &att).unwrap();
    assert_eq!(net.lease_files(), Vec::<String>::new());
    // portmap's rules go by container id, without the namespace.
    let left = net.rules("nat", Some(&port_text));
    assert!(
        !left
            .iter()
            .any(|r| r.contains(&port_text) || r.contains("dnat name")),
        "{left:?}"
    );
    // The bridge plugin (1.1.1) finds its masquerade rules from the addresses of
    // the pod's interface, so without the namespace they stay (it returns early
    // on a missing netns): podshim runs DEL while the infra lives (see
    // ARCHITECTURE.md "Networking (CNI)"); a reboot flushes them. Only those.
    assert!(
        left.iter()
            .all(|r| r.contains("CNI-") && !r.contains("HOSTPORT")),
        "{left:?}"
    );
    assert_eq!(net.rules("filter", None), Vec::<String>::new());
    // And with neither the namespace nor the cache: DEL is idempotent.
    cni.del(&list, &att).unwrap();
}

pub(crate) fn script(net: &TestNet, name: &str, body: &str) {
    std::fs::create_dir_all(net.bin_dir()).unwrap();
    let path = net.bin_dir().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn cni_a_failing_plugin_fails_add_with_its_message_and_what_ran_is_undone() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    let dels = net.tmp.path().join("dels");
    script(
        &net,
        "e2e-refuse",
        &format!(
            "cat >/dev/null\n\
             if [ \"$CNI_COMMAND\" = DEL ]; then echo DEL >> {}; exit 0; fi\n\
             echo '{{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"e2e refuses\",\"details\":\"on purpose\"}}'\n\
             exit 1",
            dels.display()
        ),
    );
    let att = net.pod(0);
    let list = net.conflist(&[json!({"type": "e2e-refuse"})]);
    let err = net.cni().add(&list, &att).unwrap_err().to_string();
    assert!(
        err.contains("ADD of plugin e2e-refuse failed: e2e refuses (code 100; on purpose)"),
        "{err}"
    );
    assert!(!err.contains("undoing it failed"), "{err}");
    assert_eq!(std::fs::read_to_string(&dels).unwrap(), "DEL\n");
    assert_eq!(net.lease_files(), Vec::<String>::new());
    assert_eq!(net.bridge_ports(), "");
    assert_eq!(net.rules("nat", None), Vec::<String>::new());
    assert_eq!(net.rules("filter", None), Vec::<String>::new());
}

#[test]
fn cni_a_hanging_plugin_times_out_and_what_ran_is_undone() {
    if !can_run() {
        return;
    }
    let mut net = TestNet::new();
    script(
        &net,
        "e2e-hang",
        "cat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && exec sleep 1000\nexit 0",
    );
    let att = net.pod(0);
    let list = net.conflist(&[json!({"type": "e2e-hang"})]);
    let cni = Cni {
        timeout: Duration::from_secs(3),
        ..net.cni()
    };
    let started = Instant::now();
    let err = cni.add(&list, &att).unwrap_err().to_string();
    assert!(
        err.contains("ADD of plugin e2e-hang: it did not finish within 3s and was killed"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(net.lease_files(), Vec::<String>::new());
    assert_eq!(net.bridge_ports(), "");
    assert_eq!(net.rules("nat", None), Vec::<String>::new());
}
