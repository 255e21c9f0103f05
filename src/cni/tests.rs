//! The client's ordering, chaining, caching and rollback, with a fake PluginExec.

use super::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone)]
struct Call {
    plugin: String,
    command: String,
    env: HashMap<String, String>,
    stdin: Value,
}

/// Answers each plugin from a table; records every call.
#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<Call>>,
    /// (plugin, command) → what it does; absent: an ADD returns a result naming
    /// the plugin, a DEL succeeds.
    answers: HashMap<(&'static str, &'static str), Answer>,
    missing: Vec<&'static str>,
}

enum Answer {
    Fail(&'static str),
    Timeout,
    Print(&'static str),
}

fn result_of(plugin: &str) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": plugin}, {"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "10.87.0.7/24", "gateway": "10.87.0.1", "interface": 1}]
    })
}

impl PluginExec for Fake {
    fn find(&self, plugin_type: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
        (!self.missing.contains(&plugin_type)).then(|| dirs[0].join(plugin_type))
    }

    fn run(
        &self,
        plugin: &Path,
        env: &[(&str, String)],
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ExecError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let plugin = plugin.file_name().unwrap().to_str().unwrap().to_string();
        let command = env["CNI_COMMAND"].clone();
        self.calls.borrow_mut().push(Call {
            plugin: plugin.clone(),
            command: command.clone(),
            env,
            stdin: serde_json::from_slice(stdin).unwrap(),
        });
        let key = self
            .answers
            .keys()
            .find(|(p, c)| *p == plugin && *c == command)
            .copied();
        match key.and_then(|k| self.answers.get(&k)) {
            Some(Answer::Fail(stdout)) => Err(ExecError::Failed {
                status: "exit status: 1".into(),
                stdout: stdout.as_bytes().to_vec(),
                stderr: String::new(),
            }),
            Some(Answer::Timeout) => Err(ExecError::Timeout(timeout)),
            Some(Answer::Print(s)) => Ok(s.as_bytes().to_vec()),
            None if command == "ADD" => Ok(serde_json::to_vec(&result_of(&plugin)).unwrap()),
            None => Ok(Vec::new()),
        }
    }
}

impl Fake {
    fn calls(&self) -> Vec<(String, String)> {
        self.calls
            .borrow()
            .iter()
            .map(|c| (c.plugin.clone(), c.command.clone()))
            .collect()
    }
}

fn calls(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect()
}

fn network() -> NetworkList {
    NetworkList::parse(
        json!({
            "cniVersion": "1.0.0",
            "name": "testnet",
            "plugins": [
                {"type": "bridge", "bridge": "br0", "runtimeConfig": {"stale": true}},
                {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false}},
                {"type": "bandwidth", "capabilities": {"bandwidth": true}}
            ]
        })
        .to_string()
        .as_bytes(),
        Path::new("test.conflist"),
        false,
    )
    .unwrap()
}

fn attachment(netns: &Path) -> Attachment {
    Attachment {
        container_id: "default_web".into(),
        netns: netns.to_path_buf(),
        ifname: "eth0".into(),
        pod: PodRef {
            namespace: "default".into(),
            name: "web".into(),
            uid: "1234-abcd".into(),
            infra_container_id: "default_web".into(),
        },
        port_mappings: vec![PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
            host_ip: Some("127.0.0.1".into()),
        }],
        bandwidth: Some(Bandwidth {
            ingress_rate: Some(1_000_000),
            egress_rate: None,
        }),
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    cni: Cni<Fake>,
    att: Attachment,
}

fn setup(fake: Fake) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    // An existing path stands for the namespace.
    let netns = tmp.path().join("netns");
    std::fs::write(&netns, "").unwrap();
    let cni = Cni {
        bin_dirs: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
        cache_dir: tmp.path().join("cache"),
        timeout: Duration::from_secs(5),
        exec: fake,
    };
    Setup {
        att: attachment(&netns),
        cni,
        _tmp: tmp,
    }
}

fn cache_file(s: &Setup) -> PathBuf {
    s.cni.cache_dir.join("results/testnet-default_web-eth0")
}

#[test]
fn add_runs_plugins_in_order_each_given_the_previous_result() {
    let s = setup(Fake::default());
    let result = s.cni.add(&network(), &s.att).unwrap();
    assert_eq!(
        s.cni.exec.calls(),
        calls(&[("bridge", "ADD"), ("portmap", "ADD"), ("bandwidth", "ADD")])
    );
    let c = s.cni.exec.calls.borrow();
    assert_eq!(c[0].stdin.get("prevResult"), None);
    assert_eq!(c[1].stdin["prevResult"], result_of("bridge"));
    assert_eq!(c[2].stdin["prevResult"], result_of("portmap"));
    for call in c.iter() {
        assert_eq!(call.stdin["name"], "testnet");
        assert_eq!(call.stdin["cniVersion"], "1.0.0");
    }
    // The list's result is the last plugin's.
    assert_eq!(result.interfaces[0].name, "bandwidth");
    assert_eq!(
        result.pod_ips("eth0"),
        ["10.87.0.7".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn plugins_get_the_cni_environment_with_the_pods_cni_args() {
    let s = setup(Fake::default());
    s.cni.add(&network(), &s.att).unwrap();
    let c = s.cni.exec.calls.borrow();
    let env = &c[0].env;
    assert_eq!(env["CNI_CONTAINERID"], "default_web");
    assert_eq!(env["CNI_NETNS"], s.att.netns.to_str().unwrap());
    assert_eq!(env["CNI_IFNAME"], "eth0");
    assert_eq!(env["CNI_PATH"], "/opt/cni/bin:/usr/lib/cni");
    assert_eq!(
        env["CNI_ARGS"],
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;\
         K8S_POD_INFRA_CONTAINER_ID=default_web;K8S_POD_UID=1234-abcd"
    );
}

#[test]
fn runtime_config_holds_only_the_capabilities_a_plugin_declares() {
    let s = setup(Fake::default());
    s.cni.add(&network(), &s.att).unwrap();
    let c = s.cni.exec.calls.borrow();
    // bridge declares none: its own (stale) runtimeConfig is passed as written.
    assert_eq!(c[0].stdin["runtimeConfig"], json!({"stale": true}));
    // portmap declares portMappings (bandwidth: false is not a declaration).
    assert_eq!(
        c[1].stdin["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]})
    );
    assert_eq!(
        c[2].stdin["runtimeConfig"],
        json!({"bandwidth": {"ingressRate": 1_000_000, "ingressBurst": i32::MAX}})
    );
}

#[test]
fn a_declared_capability_without_a_value_is_not_injected() {
    let mut s = setup(Fake::default());
    s.att.port_mappings.clear();
    s.att.bandwidth = None;
    s.cni.add(&network(), &s.att).unwrap();
    let c = s.cni.exec.calls.borrow();
    assert_eq!(c[1].stdin.get("runtimeConfig"), None);
    assert_eq!(c[2].stdin.get("runtimeConfig"), None);
}

#[test]
fn add_caches_the_final_result_and_the_configuration_as_libcni_does() {
    let s = setup(Fake::default());
    let net = network();
    s.cni.add(&net, &s.att).unwrap();
    let entry = cache::read(&cache_file(&s)).unwrap().unwrap();
    assert_eq!(entry.result, result_of("bandwidth"));
    assert_eq!(entry.config, net.bytes);
    assert_eq!(entry.network_name, "testnet");
    assert_eq!(entry.if_name, "eth0");
    assert_eq!(
        entry.cni_args[1],
        ["K8S_POD_NAMESPACE".to_string(), "default".to_string()]
    );
    assert!(entry.capability_args.contains_key("portMappings"));
}

#[test]
fn del_runs_plugins_in_reverse_with_the_cached_result_and_removes_the_cache() {
    let mut s = setup(Fake::default());
    s.cni.add(&network(), &s.att).unwrap();
    s.cni.exec.calls.borrow_mut().clear();
    // DEL names a namespace only when it is one, not the host's: a pinned one.
    if !nix::unistd::geteuid().is_root() {
        crate::testing::cannot_run("making a network namespace needs root");
        return;
    }
    let ns_dir = tempfile::tempdir().unwrap();
    s.att.netns = ns_dir.path().join("ns");
    netns::pin_new(&s.att.netns).unwrap();
    let _unpin = Unpin(s.att.netns.clone());
    s.cni.del(&network(), &s.att).unwrap();
    assert_eq!(
        s.cni.exec.calls(),
        calls(&[("bandwidth", "DEL"), ("portmap", "DEL"), ("bridge", "DEL")])
    );
    for call in s.cni.exec.calls.borrow().iter() {
        assert_eq!(call.stdin["prevResult"], result_of("bandwidth"));
        assert_eq!(call.env["CNI_NETNS"], s.att.netns.to_str().unwrap());
    }
    assert!(!cache_file(&s).exists());
}

#[test]
fn del_names_no_namespace_for_a_plain_file_a_crash_left_at_its_path() {
    let s = setup(Fake::default());
    // setup's netns is an empty file, as a crash between creating the pin and
    // mounting it leaves one.
    s.cni.del(&network(), &s.att).unwrap();
    for call in s.cni.exec.calls.borrow().iter() {
        assert_eq!(call.env["CNI_NETNS"], "");
    }
}

#[test]
fn del_uses_the_configuration_add_used_when_the_directory_changed() {
    let s = setup(Fake::default());
    s.cni.add(&network(), &s.att).unwrap();
    s.cni.exec.calls.borrow_mut().clear();
    let mut changed = network();
    changed.plugins.truncate(1);
    s.cni.del(&changed, &s.att).unwrap();
    assert_eq!(s.cni.exec.calls().len(), 3);
}

#[test]
fn del_without_a_cache_or_a_namespace_still_runs_every_plugin() {
    let mut s = setup(Fake::default());
    s.att.netns = PathBuf::from("/proc/999999999/ns/net");
    s.cni.del(&network(), &s.att).unwrap();
    assert_eq!(
        s.cni.exec.calls(),
        calls(&[("bandwidth", "DEL"), ("portmap", "DEL"), ("bridge", "DEL")])
    );
    for call in s.cni.exec.calls.borrow().iter() {
        assert_eq!(call.stdin.get("prevResult"), None);
        // A namespace that is gone is not named (it could be another's by now).
        assert_eq!(call.env["CNI_NETNS"], "");
    }
    // Twice is fine: DEL is idempotent.
    s.cni.del(&network(), &s.att).unwrap();
}

#[test]
fn a_corrupt_cache_does_not_stop_del() {
    let s = setup(Fake::default());
    std::fs::create_dir_all(cache_file(&s).parent().unwrap()).unwrap();
    std::fs::write(cache_file(&s), "{").unwrap();
    s.cni.del(&network(), &s.att).unwrap();
    assert_eq!(s.cni.exec.calls().len(), 3);
    assert!(!cache_file(&s).exists());
}

#[test]
fn a_failing_del_still_runs_the_other_plugins_and_keeps_the_cache() {
    let mut fake = Fake::default();
    fake.answers.insert(
        ("portmap", "DEL"),
        Answer::Fail(r#"{"cniVersion":"1.0.0","code":999,"msg":"iptables is locked"}"#),
    );
    let s = setup(fake);
    s.cni.add(&network(), &s.att).unwrap();
    let err = s.cni.del(&network(), &s.att).unwrap_err().to_string();
    assert!(
        err.contains("DEL of plugin portmap failed: iptables is locked (code 999)"),
        "{err}"
    );
    assert_eq!(
        s.cni.exec.calls().last().unwrap(),
        &("bridge".to_string(), "DEL".to_string())
    );
    assert!(cache_file(&s).exists());
}

#[test]
fn a_failed_add_undoes_what_ran_in_reverse_and_reports_the_plugins_error() {
    let mut fake = Fake::default();
    fake.answers.insert(
        ("portmap", "ADD"),
        Answer::Fail(
            r#"{"cniVersion":"1.0.0","code":11,"msg":"port 8080 is taken","details":"by sshd"}"#,
        ),
    );
    let s = setup(fake);
    let err = s.cni.add(&network(), &s.att).unwrap_err();
    assert!(
        matches!(&err, CniError::Add { rollback: None, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert_eq!(
        text,
        "CNI network testnet: ADD of plugin portmap failed: port 8080 is taken (code 11; by sshd)"
    );
    assert_eq!(
        s.cni.exec.calls(),
        calls(&[
            ("bridge", "ADD"),
            ("portmap", "ADD"),
            ("portmap", "DEL"),
            ("bridge", "DEL")
        ])
    );
    // The rollback's prevResult is the last result ADD got.
    assert_eq!(
        s.cni.exec.calls.borrow()[3].stdin["prevResult"],
        result_of("bridge")
    );
    assert!(!cache_file(&s).exists());
}

#[test]
fn a_failed_add_whose_rollback_fails_reports_both() {
    let mut fake = Fake::default();
    fake.answers.insert(
        ("bandwidth", "ADD"),
        Answer::Fail(r#"{"code":4,"msg":"bad rate"}"#),
    );
    fake.answers
        .insert(("bridge", "DEL"), Answer::Fail("not json"));
    let s = setup(fake);
    let text = s.cni.add(&network(), &s.att).unwrap_err().to_string();
    assert!(
        text.starts_with("CNI network testnet: ADD of plugin bandwidth failed: bad rate (code 4)"),
        "{text}"
    );
    assert!(
        text.contains("; and undoing it failed: CNI network testnet: DEL of plugin bridge failed: exit status: 1, without a CNI error on stdout (\"not json\")"),
        "{text}"
    );
}

#[test]
fn a_plugin_that_times_out_fails_add_and_is_undone() {
    let mut fake = Fake::default();
    fake.answers.insert(("bridge", "ADD"), Answer::Timeout);
    let s = setup(fake);
    let text = s.cni.add(&network(), &s.att).unwrap_err().to_string();
    assert_eq!(
        text,
        "CNI network testnet: ADD of plugin bridge: it did not finish within 5s and was killed"
    );
    assert_eq!(
        s.cni.exec.calls(),
        calls(&[("bridge", "ADD"), ("bridge", "DEL")])
    );
    assert_eq!(s.cni.exec.calls.borrow()[1].stdin.get("prevResult"), None);
}

#[test]
fn a_missing_plugin_fails_add_naming_it_and_the_directories() {
    let fake = Fake {
        missing: vec!["portmap"],
        ..Fake::default()
    };
    let s = setup(fake);
    let text = s.cni.add(&network(), &s.att).unwrap_err().to_string();
    assert!(
        text.starts_with("CNI network testnet: plugin \"portmap\" not found in [\"/opt/cni/bin\", \"/usr/lib/cni\"]"),
        "{text}"
    );
}

#[test]
fn a_result_that_is_not_a_cni_result_fails_add() {
    let mut fake = Fake::default();
    fake.answers
        .insert(("bridge", "ADD"), Answer::Print(r#"{"ips": 3}"#));
    let s = setup(fake);
    let text = s.cni.add(&network(), &s.att).unwrap_err().to_string();
    assert!(
        text.contains("ADD of plugin bridge: its result is not a CNI result"),
        "{text}"
    );
}

#[test]
fn prev_result_is_not_given_to_a_0_3_del() {
    let s = setup(Fake::default());
    let mut net = network();
    net.cni_version = "0.3.1".into();
    net.bytes =
        br#"{"cniVersion":"0.3.1","name":"testnet","plugins":[{"type":"bridge"}]}"#.to_vec();
    s.cni.add(&net, &s.att).unwrap();
    s.cni.exec.calls.borrow_mut().clear();
    s.cni.del(&net, &s.att).unwrap();
    let c = s.cni.exec.calls.borrow();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].stdin.get("prevResult"), None);
}

#[test]
fn names_that_cannot_be_file_names_or_cni_args_are_refused_before_any_plugin_runs() {
    let base = setup(Fake::default());
    type Change = fn(&mut Attachment);
    let cases: [(Change, &str); 5] = [
        (|a| a.container_id = "../x".into(), "container id"),
        (|a| a.ifname = "a/b".into(), "interface name"),
        (|a| a.ifname = "sixteen-chars-xx".into(), "interface name"),
        (|a| a.pod.name = "a;K8S_X=y".into(), "pod name"),
        (|a| a.netns = "relative".into(), "netns"),
    ];
    for (change, field) in cases {
        let mut att = base.att.clone();
        change(&mut att);
        let text = base.cni.add(&network(), &att).unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("CNI attachment: {field} ")),
            "{text}"
        );
        assert!(base.cni.del(&network(), &att).is_err());
    }
    assert!(base.cni.exec.calls().is_empty());
}

#[test]
fn bandwidth_comes_from_the_kubernetes_annotations() {
    let bw = Bandwidth::from_annotations([
        ("kubernetes.io/ingress-bandwidth", "10M"),
        ("kubernetes.io/egress-bandwidth", "1Gi"),
        ("other", "x"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(bw.ingress_rate, Some(10_000_000));
    assert_eq!(bw.egress_rate, Some(1 << 30));
    assert_eq!(Bandwidth::from_annotations([("other", "x")]).unwrap(), None);
    let err = Bandwidth::from_annotations([("kubernetes.io/egress-bandwidth", "fast")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("annotation kubernetes.io/egress-bandwidth: "),
        "{err}"
    );
    assert!(Bandwidth::from_annotations([("kubernetes.io/ingress-bandwidth", "0")]).is_err());
}

#[test]
fn the_hosts_own_namespace_is_never_attached_nor_named_to_del() {
    let mut s = setup(Fake::default());
    s.att.netns = PathBuf::from("/proc/self/ns/net");
    let err = s.cni.add(&network(), &s.att).unwrap_err().to_string();
    assert!(err.contains("is this host's network namespace"), "{err}");
    assert!(s.cni.exec.calls().is_empty());
    s.cni.del(&network(), &s.att).unwrap();
    for call in s.cni.exec.calls.borrow().iter() {
        assert_eq!(call.env["CNI_NETNS"], "");
    }
}

/// Unpins a test's namespace when dropped.
struct Unpin(PathBuf);

impl Drop for Unpin {
    fn drop(&mut self) {
        let _ = netns::unpin(&self.0);
    }
}
