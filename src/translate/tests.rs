//! Table tests of the translation rules, one behaviour per test.

use std::collections::BTreeMap;

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
    let manifest = manifest::parse(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    let mut images = BTreeMap::new();
    images.insert(IMAGE.to_string(), img);
    let paths = PodPaths::new("/pods/p");
    let host = host();
    plan(&PlanInput {
        pod: &manifest.pod,
        images: &images,
        paths: &paths,
        host: &host,
        pod_ip: None,
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
    assert_eq!(env, ["PATH=/bin", "FROM_IMAGE=pod"]);
}

fn user(spec: &Spec) -> (u32, u32, Option<Vec<u32>>) {
    let u = spec.process().as_ref().unwrap().user();
    (u.uid(), u.gid(), u.additional_gids().clone())
}

#[test]
fn user_comes_from_the_image_or_the_security_context() {
    let numeric = image_with_user("1000:2000");
    let plan = try_plan_with(&pod("", ""), numeric.clone()).unwrap();
    assert_eq!(user(app(&plan)), (1000, 2000, None));
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
            group: None,
            keep_gid: false,
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
fn privileged_gets_every_capability_and_no_masked_paths() {
    let plan = plan_of(&pod("", "      securityContext: {privileged: true}\n"));
    let spec = app(&plan);
    assert_eq!(caps(spec).len(), capabilities::all().len());
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
