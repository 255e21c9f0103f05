//! Table tests of the translation rules, one behaviour per test.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};
use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};

use super::test_support::namespaces;
use super::*;
use crate::manifest;

const IMAGE: &str = "localhost/busybox:latest";

fn host() -> HostInfo {
    HostInfo {
        node_name: "node-1".into(),
        host_ip: "192.0.2.10".into(),
        resolv_conf: "nameserver 192.0.2.53\n".into(),
        hosts: "127.0.0.1 localhost\n192.0.2.10 node-1\n".into(),
        cpus: 4,
        memory_bytes: 8 << 30,
        oom_score_adj_floor: None,
        security: host_security(),
        exec_limits: Default::default(),
    }
}

/// A host like the one podshim is developed on: every capability but
/// CAP_SYS_RESOURCE, x86_64, no AppArmor, one device node.
fn host_security() -> HostSecurity {
    let mut capabilities = capabilities::all();
    capabilities.remove(&Capability::SysResource);
    HostSecurity {
        capabilities,
        devices: vec![
            oci_spec::runtime::LinuxDeviceBuilder::default()
                .path("/dev/kmsg")
                .typ(oci_spec::runtime::LinuxDeviceType::C)
                .major(1)
                .minor(11)
                .file_mode(0o644u32)
                .uid(0u32)
                .gid(0u32)
                .build()
                .unwrap(),
        ],
        arch: "x86_64".into(),
        apparmor: None,
        selinux: false,
    }
}

fn image(config: oci_spec::image::Config) -> ImageInfo {
    ImageInfo {
        name: IMAGE.into(),
        config: ImageConfigurationBuilder::default()
            .config(config)
            .build()
            .unwrap(),
    }
}

/// An image that runs `x` as `user` (its USER line).
fn image_with_user(user: &str) -> ImageInfo {
    image(
        ConfigBuilder::default()
            .cmd(vec!["x".into()])
            .user(user)
            .build()
            .unwrap(),
    )
}

fn default_image() -> ImageInfo {
    image(
        ConfigBuilder::default()
            .env(vec!["PATH=/bin".to_string(), "FROM_IMAGE=1".to_string()])
            .entrypoint(vec!["/entry".to_string()])
            .cmd(vec!["default-arg".to_string()])
            .working_dir("/srv")
            .stop_signal("SIGQUIT")
            .build()
            .unwrap(),
    )
}

fn try_plan_with(yaml: &str, img: ImageInfo) -> Result<PodPlan, TranslateError> {
    try_plan_on(yaml, img, &host(), &BTreeMap::new())
}

/// The plan of `yaml` on `host`, with the Localhost seccomp profiles `profiles`
/// (as `pod::prepare` reads them).
fn try_plan_on(
    yaml: &str,
    img: ImageInfo,
    host: &HostInfo,
    profiles: &BTreeMap<String, String>,
) -> Result<PodPlan, TranslateError> {
    let manifest = manifest::parse(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    let mut images = BTreeMap::new();
    images.insert(IMAGE.to_string(), img);
    let paths = PodPaths::new("/pods/p");
    let runtime = crate::runtime::RuntimeFeatures {
        recursive_read_only: true,
    };
    plan(&PlanInput {
        runtime: &runtime,
        pod: &manifest.pod,
        images: &images,
        paths: &paths,
        host,
        pod_ip: None,
        netns: None,
        seccomp_profiles: profiles,
        cgroup: &Default::default(),
        cdi: &Default::default(),
        claims: &Default::default(),
        node_pods: None,
        userns: (!manifest.pod.spec.host_users).then_some(crate::userns::IdRange {
            host_id: 1 << 30,
            size: crate::userns::IDS_PER_POD,
        }),
    })
}

fn plan_of(yaml: &str) -> PodPlan {
    try_plan_with(yaml, default_image()).unwrap_or_else(|e| panic!("{e}"))
}

/// A one-container pod; `container` and `spec` are YAML fragments indented to fit.
fn pod(spec: &str, container: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {{app: web}}\n  annotations: {{note: hi}}\nspec:\n{spec}  containers:\n    - name: c\n      image: {IMAGE}\n{container}"
    )
}

fn app(plan: &PodPlan) -> &Spec {
    &plan.containers.last().unwrap().spec
}

fn env(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().env().clone().unwrap()
}

fn env_var(spec: &Spec, name: &str) -> Option<String> {
    env(spec)
        .into_iter()
        .find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_string))
}

fn args(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().args().clone().unwrap()
}

fn mount<'a>(spec: &'a Spec, dest: &str) -> Option<&'a oci_spec::runtime::Mount> {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination().to_str() == Some(dest))
}

fn issues_of(yaml: &str) -> Vec<(String, String)> {
    try_plan_with(yaml, default_image()).unwrap_err().issues
}

#[test]
fn infra_creates_the_pod_namespaces_and_runs_pause_read_only() {
    let plan = plan_of(&pod("", ""));
    let infra = &plan.infra.spec;
    assert_eq!(args(infra), ["/pause"]);
    assert!(infra.root().as_ref().unwrap().readonly().unwrap());
    let ns: Vec<_> = namespaces(infra)
        .into_iter()
        .map(|(t, p)| (t, p.is_some()))
        .collect();
    assert_eq!(
        ns,
        [
            (LinuxNamespaceType::Mount, false),
            (LinuxNamespaceType::Pid, false),
            (LinuxNamespaceType::Ipc, false),
            (LinuxNamespaceType::Network, false),
            (LinuxNamespaceType::Uts, false)
        ]
    );
    assert_eq!(infra.hostname().as_deref(), Some("p"));
    assert_eq!(plan.infra.id, "default_p");
}

#[test]
fn containers_join_the_infra_network_ipc_and_uts_namespaces() {
    let plan = plan_of(&pod("", ""));
    let spec = app(&plan);
    assert_eq!(
        namespaces(spec),
        [
            (LinuxNamespaceType::Mount, None),
            (LinuxNamespaceType::Pid, None),
            (
                LinuxNamespaceType::Ipc,
                Some("/proc/INFRA_PID/ns/ipc".into())
            ),
            (
                LinuxNamespaceType::Network,
                Some("/proc/INFRA_PID/ns/net".into())
            ),
            (
                LinuxNamespaceType::Uts,
                Some("/proc/INFRA_PID/ns/uts".into())
            ),
        ]
    );
    // Joining the UTS namespace, the container must not rename the pod.
    assert_eq!(spec.hostname(), &None);
    assert_eq!(plan.containers[0].id, "default_p_c");
}

#[test]
fn share_process_namespace_joins_the_infra_pid_namespace() {
    let plan = plan_of(&pod("  shareProcessNamespace: true\n", ""));
    assert!(namespaces(app(&plan)).contains(&(
        LinuxNamespaceType::Pid,
        Some("/proc/INFRA_PID/ns/pid".into())
    )));
    assert_eq!(plan.containers[0].joins, ["pid", "ipc", "net", "uts"]);
}

#[test]
fn host_namespaces_are_not_unshared_or_joined() {
    let plan = plan_of(&pod(
        "  hostNetwork: true\n  hostPID: true\n  hostIPC: true\n",
        "",
    ));
    assert_eq!(
        namespaces(&plan.infra.spec),
        [(LinuxNamespaceType::Mount, None)]
    );
    assert_eq!(namespaces(app(&plan)), [(LinuxNamespaceType::Mount, None)]);
    assert_eq!(plan.infra.spec.hostname(), &None);
    let hosts = &plan
        .files
        .iter()
        .find(|f| f.path.ends_with("hosts"))
        .unwrap()
        .content;
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n")
    );
    let hostname = &plan
        .files
        .iter()
        .find(|f| f.path.ends_with("hostname"))
        .unwrap()
        .content;
    assert_eq!(hostname, "node-1\n");
}

#[test]
fn hostname_is_spec_hostname_else_the_pod_name() {
    let plan = plan_of(&pod("  hostname: custom\n", ""));
    assert_eq!(plan.infra.spec.hostname().as_deref(), Some("custom"));
}

#[test]
fn image_entrypoint_cmd_workdir_env_and_stop_signal_are_used() {
    let plan = plan_of(&pod("", ""));
    let spec = app(&plan);
    assert_eq!(args(spec), ["/entry", "default-arg"]);
    assert_eq!(
        spec.process().as_ref().unwrap().cwd().to_str(),
        Some("/srv")
    );
    assert_eq!(env_var(spec, "FROM_IMAGE").as_deref(), Some("1"));
    assert_eq!(plan.containers[0].stop_signal.name(), "SIGQUIT");
}

#[test]
fn command_and_args_are_expanded_with_the_container_env() {
    let plan = plan_of(&pod(
        "",
        "      command: [\"/bin/$(CMD)\"]\n      args: [\"$(A)-$(MISSING)\", \"$$(A)\"]\n      env:\n        - {name: CMD, value: sh}\n        - {name: A, value: x}\n",
    ));
    assert_eq!(args(app(&plan)), ["/bin/sh", "x-$(MISSING)", "$(A)"]);
}

/// A `$(VAR)` naming a fileKeyRef variable cannot be expanded before the file
/// exists: the plan keeps the container's env and its own arguments as steps,
/// for each start to expand (the image's ENTRYPOINT is never expanded).
#[test]
fn references_to_file_key_ref_variables_are_left_for_each_start() {
    let plan = plan_of(&pod(
        "  volumes: [{name: data, emptyDir: {}}]\n",
        "      args: [\"--mode=$(MODE)\"]\n      env:\n        - {name: MODE, valueFrom: {fileKeyRef: {volumeName: data, path: c.env, key: MODE}}}\n        - {name: SAY, value: \"mode $(MODE)\"}\n        - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}\n",
    ));
    let spec = app(&plan);
    assert_eq!(env_var(spec, "SAY").as_deref(), Some("mode $(MODE)"));
    assert_eq!(env_var(spec, "MODE"), None);
    let steps = &plan.containers.last().unwrap().file_env;
    let names: Vec<String> = steps
        .vars
        .iter()
        .map(|s| match s {
            crate::run_plan::EnvStep::Value { name, value } => format!("value {name}={value}"),
            crate::run_plan::EnvStep::Resolved { name, value } => {
                format!("resolved {name}={value}")
            }
            crate::run_plan::EnvStep::File(f) => format!("file {}={}", f.name, f.key),
        })
        .collect();
    assert_eq!(
        names,
        [
            "file MODE=MODE",
            "value SAY=mode $(MODE)",
            "resolved NS=default"
        ]
    );
    let argv: Vec<(&str, bool)> = steps
        .args
        .iter()
        .map(|a| (a.arg.as_str(), a.expand))
        .collect();
    let entrypoint = args(spec)[0].clone();
    assert_eq!(
        argv,
        [(entrypoint.as_str(), false), ("--mode=$(MODE)", true)]
    );
    // The run plan (not private) names the file variable only: the steps,
    // which hold values, are the bundle's private file.
    let run = crate::bundle::layout(&plan, &stored(), Path::new("/pods/p")).unwrap();
    let text = serde_json::to_string(&run).unwrap();
    assert!(text.contains("\"key\":\"MODE\""), "{text}");
    assert!(
        !text.contains("mode $(MODE)") && !text.contains("--mode"),
        "{text}"
    );
    // Without a fileKeyRef nothing is kept.
    let plan = plan_of(&pod("", "      args: [\"$(A)\"]\n"));
    assert!(plan.containers.last().unwrap().file_env.is_empty());
}

#[test]
fn env_values_expand_earlier_variables_only() {
    let plan = plan_of(&pod(
        "",
        "      env:\n        - {name: B, value: \"$(A)\"}\n        - {name: A, value: one}\n        - {name: C, value: \"$(A)-$(B)\"}\n",
    ));
    let spec = app(&plan);
    assert_eq!(env_var(spec, "B").as_deref(), Some("$(A)"));
    assert_eq!(env_var(spec, "C").as_deref(), Some("one-$(A)"));
}

#[test]
fn field_refs_read_pod_metadata_and_node() {
    let plan = plan_of(&pod(
        "",
        "      env:\n        - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n        - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}\n        - {name: UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}\n        - {name: L, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}\n        - {name: AN, valueFrom: {fieldRef: {fieldPath: \"metadata.annotations['note']\"}}}\n        - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}\n        - {name: HOSTIP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}\n",
    ));
    let spec = app(&plan);
    assert_eq!(env_var(spec, "NAME").as_deref(), Some("p"));
    assert_eq!(env_var(spec, "NS").as_deref(), Some("default"));
    assert_eq!(env_var(spec, "UID").as_deref(), Some(plan.uid.as_str()));
    assert_eq!(env_var(spec, "L").as_deref(), Some("web"));
    assert_eq!(env_var(spec, "AN").as_deref(), Some("hi"));
    assert_eq!(env_var(spec, "NODE").as_deref(), Some("node-1"));
    assert_eq!(env_var(spec, "HOSTIP").as_deref(), Some("192.0.2.10"));
}

#[test]
fn resource_field_refs_use_limits_else_node_allocatable() {
    let plan = plan_of(&pod(
        "",
        "      resources: {limits: {memory: 64Mi}, requests: {cpu: 250m}}\n      env:\n        - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}\n        - {name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}\n        - {name: REQ, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}\n",
    ));
    let spec = app(&plan);
    assert_eq!(env_var(spec, "MEM").as_deref(), Some("64"));
    assert_eq!(env_var(spec, "CPU").as_deref(), Some("4"));
    assert_eq!(env_var(spec, "REQ").as_deref(), Some("250"));
}

const CM_AND_SECRET: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {K: v, other.key: o}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {PW: c2VjcmV0}\n---\n";

#[test]
fn config_map_secret_and_env_from_sources_resolve() {
    let yaml = format!(
        "{CM_AND_SECRET}{}",
        pod(
            "",
            "      envFrom:\n        - {configMapRef: {name: cm}, prefix: CM_}\n        - {secretRef: {name: s}}\n      env:\n        - {name: K2, valueFrom: {configMapKeyRef: {name: cm, key: K}}}\n        - {name: PW2, valueFrom: {secretKeyRef: {name: s, key: PW}}}\n        - {name: OPT, valueFrom: {configMapKeyRef: {name: cm, key: nope, optional: true}}}\n"
        )
    );
    let plan = plan_of(&yaml);
    let spec = app(&plan);
    assert_eq!(env_var(spec, "CM_K").as_deref(), Some("v"));
    assert_eq!(env_var(spec, "CM_other.key").as_deref(), Some("o"));
    assert_eq!(env_var(spec, "PW").as_deref(), Some("secret"));
    assert_eq!(env_var(spec, "K2").as_deref(), Some("v"));
    assert_eq!(env_var(spec, "PW2").as_deref(), Some("secret"));
    assert_eq!(env_var(spec, "OPT"), None);
}

#[test]
fn container_env_overrides_image_env_in_place() {
    let plan = plan_of(&pod(
        "",
        "      env:\n        - {name: FROM_IMAGE, value: pod}\n",
    ));
    let env = env(app(&plan));
    // HOSTNAME as containerd sets it: the pod's hostname (its name here).
    assert_eq!(env, ["PATH=/bin", "HOSTNAME=p", "FROM_IMAGE=pod"]);
}

#[test]
fn hostname_is_in_every_containers_environment_the_nodes_under_host_network() {
    let plan = plan_of(&pod("  hostname: web-0\n", ""));
    assert_eq!(env_var(app(&plan), "HOSTNAME").as_deref(), Some("web-0"));
    let plan = plan_of(&pod("  hostNetwork: true\n", ""));
    assert_eq!(env_var(app(&plan), "HOSTNAME").as_deref(), Some("node-1"));
}

fn user(spec: &Spec) -> (u32, u32, Option<Vec<u32>>) {
    let u = spec.process().as_ref().unwrap().user();
    (u.uid(), u.gid(), u.additional_gids().clone())
}

#[test]
fn user_comes_from_the_image_or_the_security_context() {
    let numeric = image_with_user("1000:2000");
    let plan = try_plan_with(&pod("", ""), numeric.clone()).unwrap();
    // The image's group is dropped as the kubelet drops it; the bundle writer
    // takes uid 1000's passwd group.
    assert_eq!(user(app(&plan)), (1000, 0, None));
    let plan = try_plan_with(
        &pod(
            "  securityContext: {runAsUser: 5, runAsGroup: 6, supplementalGroups: [7]}\n",
            "",
        ),
        numeric.clone(),
    )
    .unwrap();
    assert_eq!(user(app(&plan)), (5, 6, Some(vec![7])));
    // The container's securityContext wins over the pod's.
    let plan = try_plan_with(
        &pod(
            "  securityContext: {runAsUser: 5}\n",
            "      securityContext: {runAsUser: 9}\n",
        ),
        numeric,
    )
    .unwrap();
    assert_eq!(user(app(&plan)).0, 9);
}

#[test]
fn named_image_user_is_left_for_the_rootfs_lookup() {
    let named = image_with_user("www-data");
    let plan = try_plan_with(&pod("", ""), named).unwrap();
    assert_eq!(
        plan.containers[0].user_lookup,
        Some(UserLookup {
            user: "www-data".into(),
            keep_gid: false,
            image_groups: true,
        })
    );
}

#[test]
fn out_of_range_image_uid_is_an_error() {
    let bad = image_with_user("4294967296");
    let err = try_plan_with(&pod("", ""), bad).unwrap_err();
    assert_eq!(err.issues.len(), 1);
    assert!(
        err.issues[0]
            .1
            .contains("uid must be between 0 and 4294967294"),
        "{err}"
    );
}

#[test]
fn run_as_non_root_refuses_a_root_user() {
    let issues = issues_of(&pod("", "      securityContext: {runAsNonRoot: true}\n"));
    assert_eq!(
        issues,
        [(
            "spec.containers[0].securityContext.runAsNonRoot".to_string(),
            "Forbidden: container has runAsNonRoot and image will run as root".to_string()
        )]
    );
}

fn caps(spec: &Spec) -> Vec<Capability> {
    let mut v: Vec<_> = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .clone()
        .unwrap()
        .into_iter()
        .collect();
    v.sort_by_key(|c| c.to_string());
    v
}

#[test]
fn default_capabilities_are_containerds_and_never_inheritable() {
    let plan = plan_of(&pod("", ""));
    assert_eq!(caps(app(&plan)).len(), capabilities::DEFAULT_CAPS.len());
    let c = app(&plan)
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    assert_eq!(c.inheritable().as_ref().map(|s| s.len()), Some(0));
    assert_eq!(c.ambient().as_ref().map(|s| s.len()), Some(0));
}

#[test]
fn capabilities_drop_all_then_add() {
    let plan = plan_of(&pod(
        "",
        "      securityContext: {capabilities: {drop: [ALL], add: [NET_ADMIN, CAP_SYS_TIME]}}\n",
    ));
    assert_eq!(
        caps(app(&plan)),
        [Capability::NetAdmin, Capability::SysTime]
    );
}

#[test]
fn privileged_gets_the_hosts_capabilities_devices_and_no_masked_paths() {
    let plan = plan_of(&pod("", "      securityContext: {privileged: true}\n"));
    let spec = app(&plan);
    // containerd's WithAllCurrentCapabilities: what the host has, not every
    // capability the kernel headers know (this host lacks CAP_SYS_RESOURCE).
    let mut want: Vec<_> = host_security().capabilities.into_iter().collect();
    want.sort_by_key(|c| c.to_string());
    assert_eq!(caps(spec), want);
    // containerd's WithHostDevices.
    assert_eq!(
        spec.linux().as_ref().unwrap().devices().as_deref(),
        Some(&host_security().devices[..])
    );
    assert_eq!(
        app(&plan_of(&pod("", "")))
            .linux()
            .as_ref()
            .unwrap()
            .devices(),
        &None
    );
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
    assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
    assert!(
        mount(spec, "/sys")
            .unwrap()
            .options()
            .as_ref()
            .unwrap()
            .contains(&"rw".to_string())
    );
}

#[test]
fn allow_privilege_escalation_false_sets_no_new_privileges_and_read_only_root() {
    let plan = plan_of(&pod(
        "",
        "      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}\n",
    ));
    let spec = app(&plan);
    assert_eq!(
        spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    let plan = plan_of(&pod("", ""));
    assert_eq!(
        app(&plan).process().as_ref().unwrap().no_new_privileges(),
        Some(false)
    );
}

#[test]
fn cpu_and_memory_become_cgroup_settings() {
    let plan = plan_of(&pod(
        "",
        "      resources: {limits: {cpu: 1500m, memory: 1Gi}, requests: {cpu: 100m}}\n",
    ));
    let r = app(&plan)
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .clone()
        .unwrap();
    let cpu = r.cpu().clone().unwrap();
    assert_eq!(cpu.shares(), Some(102));
    assert_eq!(cpu.quota(), Some(150_000));
    assert_eq!(cpu.period(), Some(100_000));
    assert_eq!(r.memory().unwrap().limit(), Some(1 << 30));
    // A limit alone also sets the request (Kubernetes defaulting).
    let plan = plan_of(&pod("", "      resources: {limits: {cpu: \"2\"}}\n"));
    let r = app(&plan)
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .clone()
        .unwrap();
    assert_eq!(r.cpu().clone().unwrap().shares(), Some(2048));
}

#[test]
fn pod_files_are_mounted_unless_a_volume_covers_them() {
    let plan = plan_of(&pod(
        "  volumes: [{name: h, emptyDir: {}}]\n",
        "      volumeMounts: [{name: h, mountPath: /etc/hosts, subPath: hosts}]\n",
    ));
    let spec = app(&plan);
    assert_eq!(
        mount(spec, "/etc/hosts")
            .unwrap()
            .source()
            .as_ref()
            .unwrap()
            .to_str(),
        Some("/pods/p/subpaths/default_p_c/0")
    );
    assert_eq!(
        mount(spec, "/etc/resolv.conf")
            .unwrap()
            .source()
            .as_ref()
            .unwrap()
            .to_str(),
        Some("/pods/p/etc/resolv.conf")
    );
    assert_eq!(
        mount(spec, "/dev/shm")
            .unwrap()
            .source()
            .as_ref()
            .unwrap()
            .to_str(),
        Some("/pods/p/shm")
    );
}

#[test]
fn volume_mounts_honour_read_only_and_propagation() {
    let plan = plan_of(&pod(
        "  volumes: [{name: a, emptyDir: {}}, {name: b, hostPath: {path: /srv/b, type: Directory}}]\n",
        "      securityContext: {privileged: true}\n      volumeMounts:\n        - {name: a, mountPath: /a, readOnly: true}\n        - {name: b, mountPath: /b, mountPropagation: HostToContainer}\n        - {name: b, mountPath: /c, mountPropagation: Bidirectional}\n",
    ));
    let spec = app(&plan);
    let opts = |d: &str| mount(spec, d).unwrap().options().clone().unwrap();
    assert_eq!(opts("/a"), ["rbind", "rprivate", "ro"]);
    assert_eq!(opts("/b"), ["rbind", "rslave"]);
    assert_eq!(opts("/c"), ["rbind", "rshared"]);
    assert_eq!(
        mount(spec, "/b")
            .unwrap()
            .source()
            .as_ref()
            .unwrap()
            .to_str(),
        Some("/srv/b")
    );
}

#[test]
fn volumes_plan_their_host_side() {
    let yaml = format!(
        "{CM_AND_SECRET}{}",
        pod(
            "  volumes:\n    - {name: hp, hostPath: {path: /var/x, type: DirectoryOrCreate}}\n    - {name: ed, emptyDir: {}}\n    - {name: mem, emptyDir: {medium: Memory, sizeLimit: 1Mi}}\n    - {name: cm, configMap: {name: cm, items: [{key: K, path: sub/k.txt, mode: 0600}]}}\n    - {name: sec, secret: {secretName: s, defaultMode: 0400}}\n    - {name: dapi, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}}\n",
            ""
        )
    );
    let plan = plan_of(&yaml);
    let v = |n: &str| plan.volumes.iter().find(|v| v.name == n).unwrap();
    assert_eq!(
        v("hp").source,
        VolumeSource::HostPath {
            host_path_type: crate::model::HostPathType::DirectoryOrCreate
        }
    );
    assert_eq!(v("hp").host_path.to_str(), Some("/var/x"));
    assert_eq!(v("ed").source, VolumeSource::Directory);
    assert_eq!(v("ed").host_path.to_str(), Some("/pods/p/volumes/ed"));
    assert_eq!(
        v("mem").source,
        VolumeSource::Tmpfs {
            size_bytes: Some(1 << 20)
        }
    );
    assert_eq!(
        v("cm").files,
        [ProjectedFile {
            path: "sub/k.txt".into(),
            content: b"v".to_vec(),
            mode: 0o600
        }]
    );
    assert_eq!(v("sec").source, VolumeSource::Tmpfs { size_bytes: None });
    assert_eq!(
        v("sec").files,
        [ProjectedFile {
            path: "PW".into(),
            content: b"secret".to_vec(),
            mode: 0o400
        }]
    );
    assert_eq!(v("dapi").files[0].content, b"app=\"web\"");
}

#[test]
fn a_projected_volume_is_one_tmpfs_of_its_sources_files_mounted_read_only() {
    let yaml = format!(
        "{CM_AND_SECRET}{}",
        pod(
            "  volumes:\n    - name: all\n      projected:\n        defaultMode: 0440\n        sources:\n          - {configMap: {name: cm, items: [{key: K, path: conf/k}]}}\n          - {secret: {name: s, items: [{key: PW, path: pw, mode: 0400}]}}\n          - {downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}}\n",
            "      volumeMounts: [{name: all, mountPath: /all, readOnly: false}]\n",
        )
    );
    let plan = plan_of(&yaml);
    let v = &plan.volumes[0];
    assert_eq!(v.host_path.to_str(), Some("/pods/p/volumes/all"));
    // pkg/volume/projected: always memory-backed, a Secret among the sources or not.
    assert_eq!(v.source, VolumeSource::Tmpfs { size_bytes: None });
    assert!(
        v.projection,
        "written by the AtomicWriter, mounted read-only"
    );
    let file = |path: &str, content: &[u8], mode| ProjectedFile {
        path: path.into(),
        content: content.to_vec(),
        mode,
    };
    assert_eq!(
        v.files,
        [
            file("conf/k", b"v", 0o440),
            file("pw", b"secret", 0o400),
            file("name", b"p", 0o440),
        ]
    );
    // CVE-2017-1002102: read-only whatever the mount says.
    let all = mount(app(&plan), "/all").unwrap();
    assert_eq!(
        all.options().as_deref().unwrap(),
        ["rbind", "rprivate", "ro"]
    );
}

#[test]
fn optional_missing_config_map_volume_is_empty() {
    let plan = plan_of(&pod(
        "  volumes: [{name: cm, configMap: {name: absent, optional: true}}]\n",
        "",
    ));
    assert!(plan.volumes[0].files.is_empty());
}

#[test]
fn sub_path_mounts_name_a_bind_target_of_podshims_not_a_path_in_the_volume() {
    let plan = plan_of(&pod(
        "  volumes: [{name: d, emptyDir: {}}]\n",
        "      volumeMounts: [{name: d, mountPath: /y}, {name: d, mountPath: /x, subPath: a/b}]\n",
    ));
    assert_eq!(
        plan.containers[0].sub_paths,
        [crate::run_plan::SubPathBind {
            volume: "d".into(),
            volume_path: "/pods/p/volumes/d".into(),
            sub_path: crate::model::RelPath::parse("a/b").unwrap(),
            target: "/pods/p/subpaths/default_p_c/1".into(),
            userns: None,
        }]
    );
    // runc is given the bind target, which no container can write to or replace.
    assert_eq!(
        mount(app(&plan), "/x").unwrap().source().as_deref(),
        Some(std::path::Path::new("/pods/p/subpaths/default_p_c/1"))
    );
    assert_eq!(
        mount(app(&plan), "/y").unwrap().source().as_deref(),
        Some(std::path::Path::new("/pods/p/volumes/d"))
    );
}

#[test]
fn init_containers_sidecars_and_apps_keep_kubernetes_order() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n    - {name: i1, image: localhost/busybox:latest}\n    - {name: side, image: localhost/busybox:latest, restartPolicy: Always}\n    - {name: i2, image: localhost/busybox:latest}\n  containers:\n    - {name: a, image: localhost/busybox:latest}\n    - {name: b, image: localhost/busybox:latest}\n";
    let plan = plan_of(yaml);
    let order: Vec<_> = plan
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    assert_eq!(
        order,
        [
            ("i1", ContainerKind::Init),
            ("side", ContainerKind::Sidecar),
            ("i2", ContainerKind::Init),
            ("a", ContainerKind::App),
            ("b", ContainerKind::App)
        ]
    );
}

#[test]
fn cri_annotations_name_the_sandbox_and_container() {
    let plan = plan_of(&pod("", ""));
    let a = app(&plan).annotations().clone().unwrap();
    assert_eq!(a[annotations::CONTAINER_TYPE], "container");
    assert_eq!(a[annotations::SANDBOX_ID], "default_p");
    assert_eq!(a[annotations::SANDBOX_NAME], "p");
    assert_eq!(a[annotations::SANDBOX_NAMESPACE], "default");
    assert_eq!(a[annotations::SANDBOX_UID], plan.uid);
    assert_eq!(a[annotations::CONTAINER_NAME], "c");
    assert_eq!(a[annotations::IMAGE_NAME], IMAGE);
    let infra = plan.infra.spec.annotations().clone().unwrap();
    assert_eq!(infra[annotations::CONTAINER_TYPE], "sandbox");
    assert!(!infra.contains_key(annotations::CONTAINER_NAME));
}

#[test]
fn termination_log_is_mounted_at_the_termination_message_path() {
    let plan = plan_of(&pod("", "      terminationMessagePath: /tmp/term\n"));
    let m = mount(app(&plan), "/tmp/term").unwrap();
    assert_eq!(
        m.source().as_ref().unwrap().to_str(),
        Some("/pods/p/bundles/default_p_c/termination-log")
    );
}

#[test]
fn an_image_without_entrypoint_or_cmd_needs_a_command() {
    let empty = image(ConfigBuilder::default().build().unwrap());
    let err = try_plan_with(&pod("", ""), empty).unwrap_err();
    assert_eq!(err.issues[0].0, "spec.containers[0].command");
}

#[test]
fn config_json_rendering_is_deterministic() {
    let yaml = pod("", "      securityContext: {privileged: true}\n");
    let a = render_config(app(&plan_of(&yaml)));
    for _ in 0..5 {
        assert_eq!(render_config(app(&plan_of(&yaml))), a);
    }
}

#[test]
fn an_image_stop_signal_is_parsed_and_a_bad_one_names_the_image() {
    let quit = image(
        ConfigBuilder::default()
            .cmd(vec!["x".into()])
            .stop_signal("quit")
            .build()
            .unwrap(),
    );
    let plan = try_plan_with(&pod("", ""), quit).unwrap();
    assert_eq!(plan.containers[0].stop_signal.name(), "SIGQUIT");
    // A STOPSIGNAL that is not a signal (here: shell text meant for stop.sh).
    let hostile = image(
        ConfigBuilder::default()
            .cmd(vec!["x".into()])
            .stop_signal("SIGTERM; touch /tmp/pwned")
            .build()
            .unwrap(),
    );
    let err = try_plan_with(&pod("", ""), hostile).unwrap_err();
    assert_eq!(
        err.issues,
        [(
            "spec.containers[0].image".to_string(),
            format!("image {IMAGE:?} STOPSIGNAL: invalid signal \"SIGTERM; touch /tmp/pwned\"")
        )]
    );
}

#[test]
fn run_as_group_applies_to_a_named_image_user_too() {
    let named = image_with_user("www-data");
    let plan = try_plan_with(&pod("  securityContext: {runAsGroup: 7}\n", ""), named).unwrap();
    assert_eq!(user(app(&plan)).1, 7);
    assert!(plan.containers[0].user_lookup.as_ref().unwrap().keep_gid);
}

// --- capabilities, seccomp, AppArmor -------------------------------------------------

#[test]
fn add_all_is_the_hosts_capabilities_and_all_applies_before_single_names() {
    let host_caps = host_security().capabilities;
    let without = |c: Capability| {
        let mut s = host_caps.clone();
        s.remove(&c);
        s.len()
    };
    // containerd's WithCapabilities: add ALL, then drop ALL, then single adds, then
    // single drops; a privileged container gets the host's set whatever it adds
    // or drops (WithPrivileged comes after).
    let rows: [(&str, usize, Option<Capability>, Option<Capability>); 5] = [
        (
            "{add: [ALL]}",
            host_caps.len(),
            Some(Capability::SysAdmin),
            Some(Capability::SysResource),
        ),
        (
            "{add: [ALL], drop: [CHOWN]}",
            without(Capability::Chown),
            None,
            Some(Capability::Chown),
        ),
        ("{add: [ALL], drop: [ALL]}", 0, None, None),
        (
            "{drop: [ALL], add: [KILL]}",
            1,
            Some(Capability::Kill),
            None,
        ),
        (
            "{add: [SYS_ADMIN], drop: [SYS_ADMIN]}",
            capabilities::DEFAULT_CAPS.len(),
            None,
            Some(Capability::SysAdmin),
        ),
    ];
    for (sc, len, has, lacks) in rows {
        let plan = plan_of(&pod(
            "",
            &format!("      securityContext: {{capabilities: {sc}}}\n"),
        ));
        let got = caps(app(&plan));
        assert_eq!(got.len(), len, "{sc}: {got:?}");
        if let Some(c) = has {
            assert!(got.contains(&c), "{sc}: {got:?}");
        }
        if let Some(c) = lacks {
            assert!(!got.contains(&c), "{sc}: {got:?}");
        }
    }
    let plan = plan_of(&pod(
        "",
        "      securityContext: {privileged: true, capabilities: {drop: [SYS_ADMIN]}}\n",
    ));
    assert_eq!(caps(app(&plan)).len(), host_caps.len());
}

fn seccomp(spec: &Spec) -> Option<oci_spec::runtime::LinuxSeccomp> {
    spec.linux().as_ref().unwrap().seccomp().clone()
}

/// The syscalls a profile allows whatever their arguments.
fn allowed(s: &oci_spec::runtime::LinuxSeccomp) -> Vec<String> {
    s.syscalls()
        .iter()
        .flatten()
        .filter(|r| {
            r.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
                && r.args().as_ref().is_none_or(|a| a.is_empty())
        })
        .flat_map(|r| r.names().clone())
        .collect()
}

#[test]
fn runtime_default_seccomp_is_containerds_filtered_by_capabilities_and_architecture() {
    use oci_spec::runtime::{Arch, LinuxSeccompAction};
    let yaml = |c: &str| {
        pod(
            "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n",
            c,
        )
    };
    let s = seccomp(app(&plan_of(&yaml("")))).expect("a seccomp profile");
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(
        s.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    let names = allowed(&s);
    for call in ["read", "execve", "arch_prctl", "process_vm_readv"] {
        assert!(names.contains(&call.to_string()), "{call} allowed");
    }
    // Gated by capabilities the container lacks, or by another architecture.
    for call in [
        "unshare", "mount", "setns", "reboot", "kcmp", "set_tls", "clone3",
    ] {
        assert!(!names.contains(&call.to_string()), "{call} not allowed");
    }
    // clone without namespace flags only, and clone3 gives ENOSYS (moby#42681).
    let rules = s.syscalls().clone().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r.names() == &["clone"] && r.args().is_some())
    );
    assert!(
        rules
            .iter()
            .any(|r| r.names() == &["clone3"] && r.errno_ret() == Some(38))
    );
    // Every capability-gated rule the container's capabilities open.
    let admin = seccomp(app(&plan_of(&yaml(
        "      securityContext: {capabilities: {add: [SYS_ADMIN, SYS_PTRACE]}}\n",
    ))))
    .unwrap();
    let names = allowed(&admin);
    for call in [
        "unshare", "mount", "setns", "clone", "clone3", "ptrace", "kcmp",
    ] {
        assert!(
            names.contains(&call.to_string()),
            "{call} allowed with SYS_ADMIN"
        );
    }
    assert!(
        !admin
            .syscalls()
            .iter()
            .flatten()
            .any(|r| r.errno_ret() == Some(38))
    );
    // Another architecture: its own syscalls and architectures.
    let mut arm = host();
    arm.security.arch = "aarch64".into();
    let plan = try_plan_on(&yaml(""), default_image(), &arm, &BTreeMap::new()).unwrap();
    let s = seccomp(app(&plan)).unwrap();
    assert_eq!(
        s.architectures().as_deref(),
        Some(&[Arch::ScmpArchArm, Arch::ScmpArchAarch64][..])
    );
    let names = allowed(&s);
    assert!(names.contains(&"set_tls".to_string()));
    assert!(!names.contains(&"arch_prctl".to_string()));
}

#[test]
fn unconfined_unset_and_privileged_containers_get_no_seccomp_filter() {
    for (spec, c) in [
        ("", ""),
        (
            "  securityContext: {seccompProfile: {type: Unconfined}}\n",
            "",
        ),
        (
            "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n",
            "      securityContext: {seccompProfile: {type: Unconfined}}\n",
        ),
        // containerd: "Do not set seccomp profile when container is privileged".
        (
            "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n",
            "      securityContext: {privileged: true}\n",
        ),
    ] {
        assert_eq!(seccomp(app(&plan_of(&pod(spec, c)))), None, "{spec}{c}");
    }
}

#[test]
fn a_localhost_seccomp_profile_is_the_file_read_for_it() {
    let yaml = pod(
        "",
        "      securityContext: {seccompProfile: {type: Localhost, localhostProfile: profiles/violation.json}}\n",
    );
    // The Kubernetes docs' violation.json.
    let profiles = BTreeMap::from([(
        "profiles/violation.json".to_string(),
        r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#.to_string(),
    )]);
    let plan = try_plan_on(&yaml, default_image(), &host(), &profiles).unwrap();
    let s = seccomp(app(&plan)).unwrap();
    assert_eq!(
        s.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
    );
    assert_eq!(s.syscalls(), &None);
    // A file that is not a seccomp profile names the field it was given in.
    let bad = BTreeMap::from([(
        "profiles/violation.json".to_string(),
        r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#.to_string(),
    )]);
    let err = try_plan_on(&yaml, default_image(), &host(), &bad).unwrap_err();
    assert_eq!(
        err.issues[0].0,
        "spec.containers[0].securityContext.seccompProfile.localhostProfile"
    );
    assert!(err.issues[0].1.contains("not a seccomp profile"), "{err}");
}

fn apparmor(spec: &Spec) -> Option<String> {
    spec.process().as_ref().unwrap().apparmor_profile().clone()
}

#[test]
fn apparmor_on_a_host_without_it_rejects_the_pod_as_the_kubelet_does_unless_unconfined() {
    let yaml = |sc: &str| pod("", &format!("      securityContext: {{{sc}}}\n"));
    for sc in [
        "appArmorProfile: {type: RuntimeDefault}",
        "appArmorProfile: {type: Localhost, localhostProfile: k8s-deny-write}",
        "privileged: true, appArmorProfile: {type: RuntimeDefault}",
    ] {
        let err = try_plan_with(&yaml(sc), default_image()).unwrap_err();
        assert_eq!(
            err.issues,
            [(
                "spec.containers[0].securityContext.appArmorProfile".to_string(),
                "Forbidden: Cannot enforce AppArmor: AppArmor is not enabled on the host"
                    .to_string()
            )],
            "{sc}"
        );
    }
    for sc in ["appArmorProfile: {type: Unconfined}", "runAsGroup: 0"] {
        assert_eq!(apparmor(app(&plan_of(&yaml(sc)))), None, "{sc}");
    }
}

#[test]
fn apparmor_on_a_host_with_it_applies_loaded_profiles() {
    let mut with = host();
    with.security.apparmor = Some(
        ["cri-containerd.apparmor.d", "k8s-deny-write"]
            .map(String::from)
            .into(),
    );
    let on = |h: &HostInfo, sc: &str| {
        try_plan_on(
            &pod("", &format!("      securityContext: {{{sc}}}\n")),
            default_image(),
            h,
            &BTreeMap::new(),
        )
    };
    let rows = [
        ("runAsGroup: 0", Some("cri-containerd.apparmor.d")),
        (
            "appArmorProfile: {type: RuntimeDefault}",
            Some("cri-containerd.apparmor.d"),
        ),
        (
            "appArmorProfile: {type: Localhost, localhostProfile: k8s-deny-write}",
            Some("k8s-deny-write"),
        ),
        ("appArmorProfile: {type: Unconfined}", None),
        ("privileged: true", None),
        (
            "privileged: true, appArmorProfile: {type: RuntimeDefault}",
            None,
        ),
    ];
    for (sc, want) in rows {
        let plan = on(&with, sc).unwrap_or_else(|e| panic!("{sc}: {e}"));
        assert_eq!(apparmor(app(&plan)).as_deref(), want, "{sc}");
    }
    let err = on(
        &with,
        "appArmorProfile: {type: Localhost, localhostProfile: other}",
    )
    .unwrap_err();
    assert_eq!(
        err.issues[0].1,
        "Forbidden: Cannot enforce AppArmor: profile \"other\" is not loaded"
    );
    // Without the runtime's default profile loaded, an unset profile runs unconfined
    // (podshim loads no profiles) and an explicit RuntimeDefault is refused.
    let mut bare = host();
    bare.security.apparmor = Some(Default::default());
    assert_eq!(apparmor(app(&on(&bare, "runAsGroup: 0").unwrap())), None);
    assert!(on(&bare, "appArmorProfile: {type: RuntimeDefault}").is_err());
}

#[test]
fn the_infra_mounts_sysfs_read_write_only_when_a_container_is_privileged() {
    let sys_rw = |plan: &PodPlan| {
        mount(&plan.infra.spec, "/sys")
            .unwrap()
            .options()
            .as_ref()
            .unwrap()
            .contains(&"rw".to_string())
    };
    assert!(!sys_rw(&plan_of(&pod("", ""))));
    assert!(sys_rw(&plan_of(&pod(
        "",
        "      securityContext: {privileged: true}\n"
    ))));
}

#[test]
fn the_service_account_name_defaults_to_default_as_the_api_server_sets_it() {
    let env = "      env:\n        - {name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}\n";
    let plan = plan_of(&pod("", env));
    assert_eq!(env_var(app(&plan), "SA").as_deref(), Some("default"));
    let plan = plan_of(&pod("  serviceAccountName: builder\n", env));
    assert_eq!(env_var(app(&plan), "SA").as_deref(), Some("builder"));
    let plan = plan_of(&pod("  serviceAccount: legacy\n", env));
    assert_eq!(env_var(app(&plan), "SA").as_deref(), Some("legacy"));
}

// --- SELinux -------------------------------------------------------------------------

#[test]
fn se_linux_options_run_unlabelled_without_selinux_and_are_refused_on_a_host_with_it() {
    let yaml = pod(
        "  securityContext: {seLinuxOptions: {level: 's0:c123,c456'}}\n",
        "",
    );
    let plan = try_plan_with(&yaml, default_image()).unwrap();
    let spec = app(&plan);
    assert_eq!(spec.process().as_ref().unwrap().selinux_label(), &None);
    assert_eq!(spec.linux().as_ref().unwrap().mount_label(), &None);
    let mut enforcing = host();
    enforcing.security.selinux = true;
    let err = try_plan_on(&yaml, default_image(), &enforcing, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        err.issues,
        [(
            "spec.securityContext.seLinuxOptions".to_string(),
            "Forbidden: this host has SELinux enabled and podshim sets no SELinux labels (remove seLinuxOptions to run unlabelled)".to_string()
        )]
    );
    // The container's own options name its field.
    let own = pod(
        "",
        "      securityContext: {seLinuxOptions: {type: spc_t}}\n",
    );
    let err = try_plan_on(&own, default_image(), &enforcing, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        err.issues[0].0,
        "spec.containers[0].securityContext.seLinuxOptions"
    );
}

// --- recursiveReadOnly ----------------------------------------------------------------

#[test]
fn recursive_read_only_enabled_is_refused_on_a_runtime_without_rro_and_if_possible_falls_back() {
    let yaml = |mode: &str| {
        pod(
            "  volumes: [{name: h, hostPath: {path: /mnt}}]\n",
            &format!(
                "      volumeMounts: [{{name: h, mountPath: /m, readOnly: true, recursiveReadOnly: {mode}}}]\n"
            ),
        )
    };
    let without = crate::runtime::RuntimeFeatures::default();
    let on = |mode: &str| {
        let manifest = manifest::parse(&yaml(mode), "test.yaml").unwrap();
        let mut images = BTreeMap::new();
        images.insert(IMAGE.to_string(), default_image());
        plan(&PlanInput {
            runtime: &without,
            pod: &manifest.pod,
            images: &images,
            paths: &PodPaths::new("/pods/p"),
            host: &host(),
            pod_ip: None,
            netns: None,
            seccomp_profiles: &BTreeMap::new(),
            cgroup: &Default::default(),
            cdi: &Default::default(),
            claims: &Default::default(),
            node_pods: None,
            userns: None,
        })
    };
    let err = on("Enabled").unwrap_err();
    assert_eq!(err.issues.len(), 1, "{err}");
    assert_eq!(
        err.issues[0].0,
        "spec.containers[0].volumeMounts[0].recursiveReadOnly"
    );
    assert!(err.issues[0].1.contains("\"rro\""), "{err}");
    let plan = on("IfPossible").unwrap();
    let m = app(&plan)
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination().to_str() == Some("/m"))
        .unwrap()
        .clone();
    assert_eq!(m.options().as_deref().unwrap(), ["rbind", "rprivate", "ro"]);
}

// --- hostnameOverride, setHostnameAsFQDN ---------------------------------------------

fn pod_file<'a>(plan: &'a PodPlan, name: &str) -> &'a str {
    &plan
        .files
        .iter()
        .find(|f| f.path.ends_with(name))
        .unwrap()
        .content
}

fn env_of(spec: &oci_spec::runtime::Spec, key: &str) -> Option<String> {
    spec.process()
        .as_ref()?
        .env()
        .as_ref()?
        .iter()
        .find_map(|e| e.strip_prefix(&format!("{key}=")).map(str::to_string))
}

#[test]
fn set_hostname_as_fqdn_makes_the_kernel_hostname_the_pods_fqdn() {
    let plan = plan_of(&pod(
        "  hostname: busybox-1\n  subdomain: busybox-subdomain\n  setHostnameAsFQDN: true\n",
        "",
    ));
    let fqdn = "busybox-1.busybox-subdomain.default.svc.cluster.local";
    assert_eq!(plan.infra.spec.hostname().as_deref(), Some(fqdn));
    assert_eq!(pod_file(&plan, "hostname"), format!("{fqdn}\n"));
    assert_eq!(env_of(app(&plan), "HOSTNAME").as_deref(), Some(fqdn));
    // /etc/hosts still names the FQDN and the short name.
    assert!(pod_file(&plan, "hosts").contains(&format!("\t{fqdn}\tbusybox-1\n")));
    // Without a subdomain the FQDN is the hostname itself.
    let plan = plan_of(&pod("  hostname: solo\n  setHostnameAsFQDN: true\n", ""));
    assert_eq!(plan.infra.spec.hostname().as_deref(), Some("solo"));
}

#[test]
fn an_fqdn_longer_than_64_characters_is_refused_as_the_kubelet_does() {
    let long = "h".repeat(40);
    let err = try_plan_with(
        &pod(
            &format!("  hostname: {long}\n  subdomain: sub\n  setHostnameAsFQDN: true\n"),
            "",
        ),
        default_image(),
    )
    .unwrap_err();
    assert_eq!(err.issues[0].0, "spec.setHostnameAsFQDN");
    assert!(
        err.issues[0]
            .1
            .contains("is too long (64 characters is the max, 70 characters requested)"),
        "{err}"
    );
}

#[test]
fn hostname_override_is_the_whole_hostname_without_a_domain() {
    let plan = plan_of(&pod(
        "  hostname: ignored\n  subdomain: sub\n  hostnameOverride: db.example.internal\n",
        "",
    ));
    assert_eq!(
        plan.infra.spec.hostname().as_deref(),
        Some("db.example.internal")
    );
    assert_eq!(
        env_of(app(&plan), "HOSTNAME").as_deref(),
        Some("db.example.internal")
    );
    let hosts = pod_file(&plan, "hosts");
    assert!(hosts.contains("\tdb.example.internal\n"), "{hosts}");
    assert!(!hosts.contains("svc.cluster.local"), "{hosts}");
}

#[test]
fn status_pod_ip_of_a_loopback_only_pod_is_the_address_its_hosts_file_gives_it() {
    let yaml = pod(
        "",
        "      env: [{name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]\n",
    );
    // try_plan_with plans without a network: no pod IP.
    let plan = try_plan_with(&yaml, default_image()).unwrap();
    assert_eq!(env_of(app(&plan), "MY_IP").as_deref(), Some("127.0.1.1"));
    assert!(pod_file(&plan, "hosts").contains("127.0.1.1\tp\n"));
}

/// `hostUsers: false`: every container, the infra too, joins the user
/// namespace pinned in the pod's directory with the range's mappings; each
/// volume, /etc file and /dev/shm is bound from its id-mapped view (a subPath
/// is resolved inside the view), and the layout id-maps each image layer once
/// under the overlays, whose writable layer is the pod root's.
#[test]
fn a_pod_without_host_users_joins_its_pinned_user_namespace_through_id_mapped_views() {
    let plan = plan_of(&pod(
        "  hostUsers: false\n  volumes: [{name: data, emptyDir: {}}]\n",
        "      volumeMounts: [{name: data, mountPath: /data}, {name: data, mountPath: /sub, subPath: s}]\n",
    ));
    let userns = plan.userns.clone().unwrap();
    assert_eq!(userns.pin, Path::new("/pods/p/userns"));
    assert_eq!(userns.range.host_id, 1 << 30);
    for c in plan.all() {
        let linux = c.spec.linux().as_ref().unwrap();
        let ns = linux.namespaces().as_ref().unwrap();
        assert_eq!(ns[0].typ(), LinuxNamespaceType::User, "{}", c.name);
        assert_eq!(ns[0].path().as_deref(), Some(Path::new("/pods/p/userns")));
        let map = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (map.container_id(), map.host_id(), map.size()),
            (0, 1 << 30, 65536)
        );
        assert_eq!(linux.gid_mappings(), linux.uid_mappings());
    }
    let view = |source: &str| {
        userns
            .idmapped
            .iter()
            .find(|(s, _)| s == Path::new(source))
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("{source}: {:?}", userns.idmapped))
    };
    let spec = app(&plan);
    let data = mount(spec, "/data").unwrap();
    assert_eq!(
        data.source().as_deref(),
        Some(view("/pods/p/volumes/data").as_path())
    );
    assert_eq!(
        mount(spec, "/etc/hosts").unwrap().source().as_deref(),
        Some(view("/pods/p/etc/hosts").as_path())
    );
    assert_eq!(
        mount(spec, "/dev/shm").unwrap().source().as_deref(),
        Some(view("/pods/p/shm").as_path())
    );
    let c = plan.containers.last().unwrap();
    // A subPath is resolved (and made) in the volume itself, bound id-mapped.
    assert_eq!(
        c.sub_paths[0].volume_path,
        Path::new("/pods/p/volumes/data")
    );
    assert_eq!(
        c.sub_paths[0].userns.as_deref(),
        Some(Path::new("/pods/p/userns"))
    );
    // The subPath's bind target is podshim's, bound from inside the view.
    assert!(
        mount(spec, "/sub")
            .unwrap()
            .source()
            .as_deref()
            .unwrap()
            .starts_with("/pods/p/subpaths")
    );
    let run = crate::bundle::layout(&plan, &stored(), Path::new("/pods/p")).unwrap();
    assert!(matches!(
        run.setup[0],
        crate::run_plan::SetupStep::UserNamespace { .. }
    ));
    let overlay = run
        .setup
        .iter()
        .find_map(|s| match s {
            crate::run_plan::SetupStep::Overlay { lower, owner, .. } => Some((lower, owner)),
            _ => None,
        })
        .unwrap();
    assert_eq!(*overlay.1, Some(1 << 30));
    for layer in overlay.0 {
        assert!(layer.starts_with("/pods/p/idmapped"), "{}", layer.display());
    }
    assert_eq!(run.user_namespace(), Some(userns.range));
    // With host users, none of it.
    let plan = plan_of(&pod("", ""));
    assert!(plan.userns.is_none());
    let ns = app(&plan)
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .clone()
        .unwrap();
    assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
}

/// The image of [`default_image`] as the store holds it: two layers.
fn stored() -> BTreeMap<String, crate::image::StoredImage> {
    let info = default_image();
    let stored = crate::image::StoredImage {
        name: crate::image::ImageRef::parse(IMAGE).unwrap(),
        manifest_digest: format!("sha256:{}", "1".repeat(64)),
        config: info.config,
        layer_dirs: vec!["/store/layers/a".into(), "/store/layers/b".into()],
    };
    [(IMAGE.to_string(), stored)].into()
}

/// The eviction manager measures a disk emptyDir with a positive `sizeLimit`
/// only (`size.Sign() == 1`), and quotes the limit as written.
#[test]
fn only_a_positive_disk_size_limit_is_measured() {
    let plan = plan_of(&pod(
        "  volumes:\n  - {name: a, emptyDir: {sizeLimit: 0}}\n  - {name: b, emptyDir: {sizeLimit: 500M}}\n  - {name: m, emptyDir: {medium: Memory, sizeLimit: 1Mi}}\n",
        "",
    ));
    let limits: Vec<(String, Option<(u64, String)>)> = plan
        .volumes
        .iter()
        .map(|v| (v.name.clone(), v.disk_limit.clone()))
        .collect();
    assert_eq!(
        limits,
        [
            ("a".to_string(), None),
            ("b".to_string(), Some((500_000_000, "500M".to_string()))),
            ("m".to_string(), None),
        ]
    );
}
