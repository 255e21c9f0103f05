use super::*;
use crate::model::{Hook, HttpGet, HttpHeader, HttpScheme, Probe, ProbeAction};

/// Parses `text`, expecting success.
fn ok(text: &str) -> Manifest {
    match parse(text, "pod.yaml") {
        Ok(m) => m,
        Err(e) => panic!("expected success, got:\n{e}"),
    }
}

/// Parses `text`, expecting failure; returns each error as displayed.
fn errors(text: &str) -> Vec<String> {
    match parse(text, "pod.yaml") {
        Ok(m) => panic!("expected errors, got a pod: {:?}", m.pod),
        Err(ManifestError::Invalid {
            source_name,
            errors,
        }) => {
            assert_eq!(source_name, "pod.yaml");
            errors.iter().map(|e| e.to_string()).collect()
        }
        Err(e) => panic!("expected Invalid, got {e}"),
    }
}

/// Parses `text` and expects exactly the single error `expected`.
fn one_error(text: &str, expected: &str) {
    assert_eq!(errors(text), vec![expected.to_string()]);
}

/// A Pod document whose single container is `web` (image nginx) plus `container`
/// lines (indented 4), and `spec` lines (indented 2).
fn pod_with(container: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n{spec}  containers:\n  - name: web\n    image: nginx\n{container}"
    )
}

const MINIMAL: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx
";

// --- parsing and documents -------------------------------------------------------

#[test]
fn minimal_pod_parses() {
    let m = ok(MINIMAL);
    assert_eq!(m.pod.name(), "web");
    let c = &m.pod.spec.containers[0];
    assert_eq!(c.image.written, "nginx");
    assert_eq!(
        c.image.reference.to_string(),
        "docker.io/library/nginx:latest"
    );
    assert_eq!(c.kind, crate::model::ContainerKind::App);
    // `latest` (here: no tag) pulls Always, as Kubernetes defaults it.
    assert_eq!(c.pull_policy, crate::model::PullPolicy::Always);
    assert!(m.warnings.is_empty());
}

#[test]
fn json_input_is_accepted() {
    let m = ok(
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}"#,
    );
    assert_eq!(m.pod.name(), "web");
    assert_eq!(m.pod.spec.containers[0].ports[0].container_port, 80);
}

#[test]
fn yaml_syntax_error_names_the_line() {
    one_error(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n   labels: {}\n",
        "YAML syntax error at line 5, column 10: mapping values are not allowed in this context",
    );
}

#[test]
fn yaml_duplicate_key_is_an_error() {
    one_error(
        "apiVersion: v1\nkind: Pod\nkind: Pod\n",
        "YAML syntax error at line 3, column 1: duplicate mapping key: kind",
    );
}

#[test]
fn config_maps_and_secrets_of_the_input_are_resolved_into_the_pod() {
    let env = "    env:\n    - {name: MODE, valueFrom: {configMapKeyRef: {name: app-config, key: mode}}}\n    - {name: PW, valueFrom: {secretKeyRef: {name: creds, key: password}}}\n    - {name: USER, valueFrom: {secretKeyRef: {name: creds, key: user}}}\n";
    let text = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  mode: fast\n\
         ---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ndata:\n  password: aHVudGVyMg==\nstringData:\n  user: admin\n",
        pod_with(env, "")
    );
    let m = ok(&text);
    let values: Vec<(String, crate::model::EnvValue)> = m.pod.spec.containers[0]
        .env
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    use crate::model::EnvValue::Data;
    assert_eq!(
        values,
        [
            ("MODE".to_string(), Data("fast".into())),
            ("PW".to_string(), Data("hunter2".into())),
            // stringData is merged into data, as the API server does.
            ("USER".to_string(), Data("admin".into())),
        ]
    );
}

#[test]
fn empty_documents_are_skipped() {
    let m = ok(&format!("---\n---\n{MINIMAL}---\n"));
    assert_eq!(m.pod.name(), "web");
}

#[test]
fn unknown_kind_is_refused_by_name() {
    let text = format!("{MINIMAL}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n");
    assert_eq!(
        errors(&text),
        vec![
            "document 2: kind Service is not supported (no kube-proxy: reach pods by their IPs or hostPorts; podshim reads Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, ConfigMap, Secret, PersistentVolumeClaim, List; --skip-unsupported-kinds skips the others)"
        ]
    );
}

#[test]
fn unknown_kind_alone_is_refused_by_name_and_no_pod_reported() {
    assert_eq!(
        errors("apiVersion: v1\nkind: Service\n"),
        vec![
            "document 1: kind Service is not supported (no kube-proxy: reach pods by their IPs or hostPorts; podshim reads Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, ConfigMap, Secret, PersistentVolumeClaim, List; --skip-unsupported-kinds skips the others)",
            "no Pod in the input"
        ]
    );
}

#[test]
fn wrong_api_version_is_refused() {
    one_error(
        &MINIMAL.replace("apiVersion: v1", "apiVersion: v2"),
        "document 1: apiVersion: Unsupported value: \"v2\": supported values: \"v1\"",
    );
}

#[test]
fn missing_kind_is_refused() {
    assert_eq!(
        errors("apiVersion: v1\nmetadata:\n  name: web\n"),
        vec!["document 1: kind: Required value", "no Pod in the input"]
    );
}

#[test]
fn two_pods_are_one_set_and_refused_where_one_pod_is_expected() {
    let text = format!(
        "{MINIMAL}---\n{}",
        MINIMAL.replace("name: web\nspec", "name: db\nspec")
    );
    let err = parse(&text, "t").unwrap_err().to_string();
    assert_eq!(
        err,
        "t: more than one Pod (default/db, ...): this command takes one; `podshim up` runs them all"
    );
    let set = parse_set(&text, "t", ParseOptions::default()).unwrap();
    let names: Vec<&str> = set.pods.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["web", "db"]);
}

#[test]
fn no_pod_is_refused() {
    one_error(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n",
        "no Pod in the input (found: ConfigMap)",
    );
}

#[test]
fn empty_input_is_refused() {
    one_error("", "no Pod in the input");
}

#[test]
fn multi_document_errors_name_their_document() {
    let text =
        format!("{MINIMAL}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n");
    one_error(
        &text,
        "document 2: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    );
}

#[test]
fn invalid_display_prefixes_each_error_with_the_source() {
    let err = parse(&pod_with("", "").replace("image: nginx\n", ""), "pod.yaml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "pod.yaml: spec.containers[0].image: Required value"
    );
    let err = parse("apiVersion: v1\nkind: Ingress\n---\nkind: Pod\n", "in.yaml").unwrap_err();
    assert!(
        err.to_string().starts_with(
            "in.yaml: document 1: kind Ingress is not supported (no ingress controller; podshim reads Pod,"
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("\nin.yaml: document 2: apiVersion: Required value"),
        "{err}"
    );
}

// --- unknown fields and types --------------------------------------------------------

#[test]
fn unknown_field_is_reported_with_its_path() {
    one_error(
        &pod_with("    imagee: nginx:1.27\n", ""),
        "spec.containers[0].imagee: unknown field",
    );
}

#[test]
fn unknown_top_level_field_is_reported() {
    one_error(&format!("{MINIMAL}specs: {{}}\n"), "specs: unknown field");
}

#[test]
fn unknown_field_in_a_volume_is_reported() {
    one_error(
        &pod_with(
            "",
            "  volumes:\n  - name: data\n    emptyDir:\n      medum: Memory\n",
        ),
        "spec.volumes[0].emptyDir.medum: unknown field",
    );
}

#[test]
fn unknown_field_with_null_value_is_reported() {
    one_error(
        &pod_with("    imagee: null\n", ""),
        "spec.containers[0].imagee: unknown field",
    );
}

#[test]
fn known_field_with_null_or_empty_value_is_not_unknown() {
    let m = ok(&pod_with(
        "    args: []\n    env: null\n    securityContext: {}\n    resources: {}\n    volumeMounts: []\n",
        "  volumes: []\n  initContainers: null\n  securityContext: {}\n  nodeSelector: {}\n  dnsConfig: {}\n",
    ));
    assert_eq!(m.pod.name(), "web");
}

#[test]
fn known_but_unsupported_field_with_null_or_empty_value_is_absent() {
    // Kubernetes treats null (and an empty object or list) as unset; so does podshim.
    let m = ok(&pod_with(
        "    lifecycle: null\n    resizePolicy: []\n",
        "  overhead: {}\n  tolerations: []\n",
    ));
    assert!(m.warnings.is_empty());
}

#[test]
fn kubectl_dry_run_output_is_accepted_without_warnings() {
    let m = ok("apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: web
  name: web
spec:
  containers:
  - image: nginx
    name: web
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Always
status: {}
");
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn wrong_type_is_reported_with_its_path() {
    one_error(
        &pod_with("    ports:\n    - containerPort: x\n", ""),
        "spec.containers[0].ports[0].containerPort: invalid type: string \"x\", expected i32",
    );
}

#[test]
fn wrong_type_of_a_list_element_is_reported_with_its_index() {
    one_error(
        &pod_with("    args: [\"ok\", {a: b}]\n", ""),
        "spec.containers[0].args[1]: invalid type: map, expected a string",
    );
}

#[test]
fn missing_required_field_is_reported_as_required() {
    one_error(
        &pod_with(
            "    env:\n    - name: A\n      valueFrom:\n        configMapKeyRef: {name: c, optional: true}\n",
            "",
        ),
        "spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Required value",
    );
}

#[test]
fn missing_container_port_is_port_zero() {
    // k8s-openapi reads a missing containerPort as 0, as Go does.
    one_error(
        &pod_with("    ports:\n    - name: http\n", ""),
        "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
}

#[test]
fn yaml_1_1_booleans_are_booleans_as_in_kubectl() {
    one_error(
        &pod_with("    env:\n    - {name: A, value: yes}\n", ""),
        "spec.containers[0].env[0].value: invalid type: boolean `true`, expected a string",
    );
}

#[test]
fn errors_after_a_type_error_are_still_reported() {
    let errs = errors(&pod_with(
        "    ports:\n    - containerPort: x\n    stdin: maybe\n    imagee: a\n",
        "",
    ));
    assert_eq!(
        errs,
        vec![
            "spec.containers[0].imagee: unknown field",
            "spec.containers[0].ports[0].containerPort: invalid type: string \"x\", expected i32",
            "spec.containers[0].stdin: invalid type: string \"maybe\", expected a boolean",
        ]
    );
}

#[test]
fn errors_after_a_missing_name_are_still_reported() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - image: nginx\n  - name: b\n    imagee: x\n";
    assert_eq!(
        errors(text),
        vec![
            "spec.containers[1].imagee: unknown field",
            "spec.containers[0].name: Required value",
            "spec.containers[1].image: Required value",
        ]
    );
}

#[test]
fn missing_spec_is_required() {
    one_error(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n",
        "spec: Required value",
    );
}

#[test]
fn unknown_field_in_a_config_map_is_reported() {
    let text = format!(
        "{MINIMAL}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndatta: {{}}\n"
    );
    one_error(&text, "document 2: datta: unknown field");
}

#[test]
fn secret_data_must_be_base64() {
    let text = format!(
        "{MINIMAL}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: \"!!\"\n"
    );
    one_error(
        &text,
        "document 2: data.k: invalid base64 data: Invalid symbol 33, offset 0.",
    );
}

#[test]
fn octal_modes_are_read_as_kubectl_does() {
    let m = ok(&format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{k: v}}\n",
        pod_with(
            "",
            "  volumes:\n  - name: cfg\n    configMap:\n      name: c\n      defaultMode: 0640\n",
        )
    ));
    let crate::model::VolumeSource::ConfigMap { files } = &m.pod.spec.volumes[0].source else {
        panic!("a configMap volume");
    };
    assert_eq!(files[0].mode.bits(), 0o640);
}

// --- supported, unsupported and cluster-only fields ------------------------------------

#[test]
fn unsupported_field_is_refused_by_name() {
    one_error(
        &pod_with(
            "    volumeDevices:\n      - name: d\n        devicePath: /dev/xvda\n",
            "",
        ),
        "not supported: spec.containers[0].volumeDevices",
    );
}

#[test]
fn unsupported_pod_fields_and_volume_kinds_are_refused_by_name() {
    let errs = errors(&pod_with(
        "    resources:\n      limits:\n        ephemeral-storage: 1Gi\n",
        "  runtimeClassName: kata\n  resourceClaims:\n  - name: gpu\n    resourceClaimName: gpu\n  volumes:\n  - name: data\n    gcePersistentDisk:\n      pdName: data\n",
    ));
    assert_eq!(
        errs,
        vec![
            "not supported: spec.runtimeClassName",
            "not supported: spec.resourceClaims",
            "not supported: spec.volumes[0].gcePersistentDisk",
            "not supported: spec.containers[0].resources.limits.ephemeral-storage",
            "spec.volumes[0]: Required value: must specify a volume type",
        ]
    );
}

#[test]
fn generate_name_is_not_supported() {
    one_error(
        &MINIMAL.replace(
            "  name: web\nspec",
            "  name: web\n  generateName: web-\nspec",
        ),
        "not supported: metadata.generateName",
    );
}

#[test]
fn a_container_restart_policy_overrides_the_pods() {
    let m = ok(&pod_with(
        "    restartPolicy: Never\n",
        "  restartPolicy: Always\n",
    ));
    assert_eq!(
        m.pod.spec.containers[0].restart_policy,
        Some(crate::model::RestartPolicy::Never)
    );
}

#[test]
fn cluster_only_field_is_accepted_with_a_warning() {
    let m = ok(&pod_with(
        "",
        "  nodeSelector:\n    disk: ssd\n  serviceAccountName: app\n  tolerations:\n  - key: k\n    operator: Exists\n",
    ));
    assert_eq!(
        m.warnings,
        vec![
            "spec.nodeSelector: ignored: cluster-only field (scheduling)",
            "spec.tolerations: ignored: cluster-only field (scheduling)",
        ]
    );
}

#[test]
fn status_is_accepted_with_a_warning() {
    let m = ok(&format!("{MINIMAL}status:\n  phase: Running\n"));
    assert_eq!(
        m.warnings,
        vec!["status: ignored: cluster-only field (written by the cluster)"]
    );
}

#[test]
fn unknown_field_inside_a_cluster_only_field_is_still_unknown() {
    one_error(
        &pod_with("", "  tolerations:\n  - kee: k\n"),
        "spec.tolerations[0].kee: unknown field",
    );
}

#[test]
fn supported_fields_are_accepted() {
    let text = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  uid: 0c2b5e1c-1111-4222-8333-444455556666
  labels: {app: web, tier.example.com/role: front}
  annotations: {note: "x"}
  creationTimestamp: "2024-01-01T00:00:00Z"
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 5
  hostname: web-0
  subdomain: shop
  hostAliases:
  - ip: 10.0.0.1
    hostnames: [db.local]
  dnsPolicy: None
  dnsConfig:
    nameservers: [1.1.1.1]
    searches: [example.com]
    options: [{name: ndots, value: "2"}]
  hostNetwork: false
  hostPID: false
  hostIPC: false
  shareProcessNamespace: true
  enableServiceLinks: false
  nodeName: edge-1
  securityContext:
    runAsUser: 1000
    runAsGroup: 1000
    runAsNonRoot: true
    supplementalGroups: [2000]
    sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "0"}]
  volumes:
  - name: host
    hostPath: {path: /srv, type: Directory}
  - name: scratch
    emptyDir: {medium: Memory, sizeLimit: 64Mi}
  - name: cfg
    configMap:
      name: app-config
      items: [{key: mode, path: mode.txt, mode: 0400}]
      defaultMode: 0644
  - name: sec
    secret: {secretName: creds, optional: true}
  - name: info
    downwardAPI:
      items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
  - name: all-in-one
    projected:
      defaultMode: 0440
      sources:
      - configMap: {name: cfg, optional: true, items: [{key: k, path: k, mode: 0400}]}
      - secret: {name: creds, optional: true, items: [{key: pw, path: pw}]}
      - downwardAPI:
          items:
          - {path: uid, fieldRef: {fieldPath: metadata.uid, apiVersion: v1}, mode: 0444}
          - {path: mem, resourceFieldRef: {containerName: web, resource: limits.memory, divisor: 1Mi}}
  initContainers:
  - name: init
    image: busybox
    command: [sh, -c, "true"]
  - name: proxy
    image: envoy
    restartPolicy: Always
    readinessProbe: {tcpSocket: {port: 9901}}
  containers:
  - name: web
    image: nginx:1.27
    imagePullPolicy: IfNotPresent
    command: [nginx]
    args: ["-g", "daemon off;"]
    workingDir: /srv
    env:
    - {name: MODE, valueFrom: {configMapKeyRef: {name: app-config, key: mode}}}
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}
    - {name: PW, valueFrom: {secretKeyRef: {name: creds, key: pw, optional: true}}}
    - {name: LABEL, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: PLAIN, value: x}
    envFrom:
    - configMapRef: {name: app-config}
      prefix: CFG_
    - secretRef: {name: other, optional: true}
    ports:
    - {containerPort: 80, name: http, protocol: TCP, hostPort: 8080, hostIP: 127.0.0.1}
    volumeMounts:
    - {name: host, mountPath: /srv, readOnly: true, mountPropagation: HostToContainer}
    - {name: cfg, mountPath: /etc/app/mode, subPath: mode.txt}
    resources:
      limits: {cpu: 500m, memory: 128Mi}
      requests: {cpu: 0.1, memory: 64Mi}
    securityContext:
      runAsUser: 101
      runAsGroup: 101
      runAsNonRoot: true
      privileged: false
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
    stdin: false
    tty: false
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: FallbackToLogsOnError
    livenessProbe: {httpGet: {path: /, port: 80}}
    startupProbe: {exec: {command: ["true"]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: shop}
data: {mode: fast}
"#;
    let m = ok(text);
    assert_eq!(m.pod.namespace(), "shop");
    assert_eq!(m.pod.uid.as_str(), "0c2b5e1c-1111-4222-8333-444455556666");
    // Nothing warns: probes are run, host ports are published through CNI.
    assert_eq!(m.warnings, Vec::<String>::new());
    let web = m
        .pod
        .spec
        .containers
        .iter()
        .find(|c| c.name.as_str() == "web")
        .unwrap();
    assert_eq!(
        web.probes.liveness.as_ref().map(|p| &p.action),
        Some(&ProbeAction::HttpGet(HttpGet {
            scheme: HttpScheme::Http,
            host: None,
            port: 80,
            path: "/".into(),
            headers: vec![],
        }))
    );
    let proxy = m
        .pod
        .spec
        .containers
        .iter()
        .find(|c| c.name.as_str() == "proxy")
        .unwrap();
    assert_eq!(
        proxy.probes.readiness.as_ref().map(|p| &p.action),
        Some(&ProbeAction::TcpSocket {
            host: None,
            port: 9901
        })
    );
}

// --- validation ------------------------------------------------------------------------

#[test]
fn pod_name_must_be_a_dns_subdomain() {
    one_error(
        &MINIMAL.replace("name: web\nspec", "name: Web_1\nspec"),
        "metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    );
}

#[test]
fn pod_name_is_required() {
    one_error(
        &MINIMAL.replace("metadata:\n  name: web\n", "metadata: {}\n"),
        "metadata.name: Required value",
    );
}

#[test]
fn pod_name_may_have_dots() {
    ok(&MINIMAL.replace("name: web\nspec", "name: web.example-1\nspec"));
}

#[test]
fn pod_name_longer_than_253_is_invalid() {
    let long = "a".repeat(254);
    one_error(
        &MINIMAL.replace("name: web\nspec", &format!("name: {long}\nspec")),
        &format!("metadata.name: Invalid value: \"{long}\": must be no more than 253 characters"),
    );
}

#[test]
fn namespace_must_be_a_dns_label() {
    one_error(
        &MINIMAL.replace("name: web\nspec", "name: web\n  namespace: a.b\nspec"),
        "metadata.namespace: Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
    );
}

#[test]
fn uid_must_not_name_another_path() {
    one_error(
        &MINIMAL.replace("name: web\nspec", "name: web\n  uid: ../../etc\nspec"),
        "metadata.uid: Invalid value: \"../../etc\": must be 1 to 128 alphanumeric characters or '-'",
    );
}

#[test]
fn container_name_must_be_a_dns_label() {
    one_error(
        &MINIMAL.replace("- name: web", "- name: web.1"),
        "spec.containers[0].name: Invalid value: \"web.1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
    );
}

#[test]
fn container_name_longer_than_63_is_invalid() {
    let long = "a".repeat(64);
    one_error(
        &MINIMAL.replace("- name: web", &format!("- name: {long}")),
        &format!(
            "spec.containers[0].name: Invalid value: \"{long}\": must be no more than 63 characters"
        ),
    );
}

#[test]
fn container_names_are_unique_across_init_and_app_containers() {
    let errs = errors(&pod_with(
        "  - name: web\n    image: nginx\n",
        "  initContainers:\n  - name: web\n    image: busybox\n",
    ));
    assert_eq!(
        errs,
        vec![
            "spec.containers[0].name: Duplicate value: \"web\"",
            "spec.containers[1].name: Duplicate value: \"web\"",
        ]
    );
}

#[test]
fn duplicate_container_name_is_reported_on_the_second() {
    one_error(
        &pod_with("  - name: web\n    image: nginx\n", ""),
        "spec.containers[1].name: Duplicate value: \"web\"",
    );
}

#[test]
fn image_is_required() {
    one_error(
        &MINIMAL.replace("    image: nginx\n", ""),
        "spec.containers[0].image: Required value",
    );
}

#[test]
fn at_least_one_container_is_required() {
    one_error(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers: []\n",
        "spec.containers: Required value",
    );
}

#[test]
fn volume_mount_must_name_a_declared_volume() {
    one_error(
        &pod_with(
            "    volumeMounts:\n    - name: data\n      mountPath: /data\n",
            "",
        ),
        "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
    );
}

#[test]
fn mount_path_must_be_absolute() {
    one_error(
        &pod_with(
            "    volumeMounts:\n    - name: data\n      mountPath: data\n",
            "  volumes:\n  - name: data\n    emptyDir: {}\n",
        ),
        "spec.containers[0].volumeMounts[0].mountPath: Invalid value: \"data\": must be an absolute path",
    );
}

#[test]
fn mount_path_must_not_repeat_in_one_container() {
    one_error(
        &pod_with(
            "    volumeMounts:\n    - {name: data, mountPath: /data}\n    - {name: data, mountPath: /data}\n",
            "  volumes:\n  - name: data\n    emptyDir: {}\n",
        ),
        "spec.containers[0].volumeMounts[1].mountPath: Duplicate value: \"/data\"",
    );
}

#[test]
fn sub_path_must_not_escape_the_volume() {
    one_error(
        &pod_with(
            "    volumeMounts:\n    - {name: data, mountPath: /data, subPath: ../etc}\n",
            "  volumes:\n  - name: data\n    emptyDir: {}\n",
        ),
        "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"../etc\": must not contain '..'",
    );
}

#[test]
fn bidirectional_propagation_needs_privileged() {
    one_error(
        &pod_with(
            "    volumeMounts:\n    - {name: data, mountPath: /data, mountPropagation: Bidirectional}\n",
            "  volumes:\n  - name: data\n    hostPath: {path: /srv}\n",
        ),
        "spec.containers[0].volumeMounts[0].mountPropagation: Forbidden: Bidirectional mount propagation is available only to privileged containers",
    );
}

#[test]
fn volume_names_are_dns_labels_and_unique() {
    let errs = errors(&pod_with(
        "",
        "  volumes:\n  - name: Data\n    emptyDir: {}\n  - name: cache\n    emptyDir: {}\n  - name: cache\n    emptyDir: {}\n",
    ));
    assert_eq!(
        errs,
        vec![
            "spec.volumes[0].name: Invalid value: \"Data\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            "spec.volumes[2].name: Duplicate value: \"cache\"",
        ]
    );
}

#[test]
fn volume_with_two_kinds_is_refused() {
    one_error(
        &pod_with(
            "",
            "  volumes:\n  - name: data\n    emptyDir: {}\n    hostPath: {path: /srv}\n",
        ),
        "spec.volumes[0]: Forbidden: may not specify more than 1 volume type",
    );
}

#[test]
fn host_path_must_be_absolute_and_typed() {
    let errs = errors(&pod_with(
        "",
        "  volumes:\n  - name: data\n    hostPath: {path: srv, type: Folder}\n",
    ));
    assert_eq!(
        errs,
        vec![
            "spec.volumes[0].hostPath.path: Invalid value: \"srv\": must be an absolute path",
            "spec.volumes[0].hostPath.type: Unsupported value: \"Folder\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\"",
        ]
    );
}

#[test]
fn env_name_must_be_valid() {
    one_error(
        &pod_with("    env:\n    - name: 1ST\n      value: x\n", ""),
        "spec.containers[0].env[0].name: Invalid value: \"1ST\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
    );
}

#[test]
fn env_names_with_dots_and_dashes_are_valid() {
    ok(&pod_with(
        "    env:\n    - {name: my.var-1, value: x}\n    - {name: _X, value: z}\n",
        "",
    ));
}

#[test]
fn env_value_from_needs_exactly_one_source() {
    let errs = errors(&pod_with(
        "    env:\n    - name: A\n      valueFrom: {}\n    - name: B\n      valueFrom:\n        fieldRef: {fieldPath: metadata.name}\n        resourceFieldRef: {resource: limits.cpu}\n",
        "",
    ));
    assert_eq!(
        errs,
        vec![
            "spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
            "spec.containers[0].env[1].valueFrom: Invalid value: \"\": may not have more than one field specified at a time",
        ]
    );
}

#[test]
fn env_field_ref_path_must_be_supported() {
    one_error(
        &pod_with(
            "    env:\n    - name: A\n      valueFrom:\n        fieldRef: {fieldPath: spec.foo}\n",
            "",
        ),
        "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.foo\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"",
    );
}

#[test]
fn config_map_key_ref_must_name_a_document_of_the_input() {
    one_error(
        &pod_with(
            "    env:\n    - {name: A, value: x}\n    - name: MODE\n      valueFrom:\n        configMapKeyRef: {name: app-config, key: mode}\n",
            "",
        ),
        "spec.containers[0].env[1].valueFrom.configMapKeyRef.name: Not found: \"app-config\"",
    );
}

#[test]
fn optional_references_may_be_missing() {
    ok(&pod_with(
        "    env:\n    - name: MODE\n      valueFrom:\n        configMapKeyRef: {name: app-config, key: mode, optional: true}\n    envFrom:\n    - secretRef: {name: creds, optional: true}\n",
        "  volumes:\n  - name: s\n    secret: {secretName: creds, optional: true}\n",
    ));
}

#[test]
fn secret_key_ref_key_must_exist() {
    let text = format!(
        "{}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  user: admin\n",
        pod_with(
            "    env:\n    - name: PW\n      valueFrom:\n        secretKeyRef: {name: creds, key: password}\n",
            ""
        )
    );
    one_error(
        &text,
        "document 1: spec.containers[0].env[0].valueFrom.secretKeyRef.key: Not found: \"password\"",
    );
}

#[test]
fn env_from_and_volumes_must_name_documents_of_the_input() {
    let errs = errors(&pod_with(
        "    envFrom:\n    - configMapRef: {name: app-config}\n",
        "  volumes:\n  - name: s\n    secret: {secretName: creds}\n  - name: c\n    configMap: {name: app-config}\n",
    ));
    assert_eq!(
        errs,
        vec![
            "spec.volumes[0].secret.secretName: Not found: \"creds\"",
            "spec.volumes[1].configMap.name: Not found: \"app-config\"",
            "spec.containers[0].envFrom[0].configMapRef.name: Not found: \"app-config\"",
        ]
    );
}

#[test]
fn config_map_volume_item_key_must_exist() {
    let text = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  mode: fast\n",
        pod_with(
            "",
            "  volumes:\n  - name: c\n    configMap:\n      name: app-config\n      items: [{key: other, path: other}]\n"
        )
    );
    one_error(
        &text,
        "document 1: spec.volumes[0].configMap.items[0].key: Not found: \"other\"",
    );
}

#[test]
fn env_cannot_read_binary_data() {
    let text = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nbinaryData:\n  blob: AAEC\n",
        pod_with(
            "    env:\n    - name: B\n      valueFrom:\n        configMapKeyRef: {name: c, key: blob}\n",
            ""
        )
    );
    one_error(
        &text,
        "document 1: spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Not found: \"blob\"",
    );
}

#[test]
fn a_config_map_with_a_wrong_type_is_reported_once() {
    let text = format!("{MINIMAL}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [c]\n");
    one_error(
        &text,
        "document 2: metadata.name: invalid type: sequence, expected a string",
    );
}

#[test]
fn duplicate_config_map_names_are_refused() {
    let cm = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
    one_error(
        &format!("{MINIMAL}{cm}{cm}"),
        "document 3: metadata.name: Duplicate value: \"c\"",
    );
}

#[test]
fn config_map_keys_must_be_file_names() {
    let text = format!(
        "{MINIMAL}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a/b: x\n"
    );
    one_error(
        &text,
        "document 2: data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.', and must not be '.' or '..'",
    );
}

#[test]
fn host_network_host_port_must_match_container_port() {
    one_error(
        &pod_with(
            "    ports:\n    - {containerPort: 80, hostPort: 8080}\n",
            "  hostNetwork: true\n",
        ),
        "spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when `hostNetwork` is true",
    );
}

#[test]
fn json_with_tabs_is_accepted() {
    ok(
        "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Pod\",\n\t\"metadata\": {\"name\": \"web\"},\n\t\"spec\": {\"containers\": [{\"name\": \"web\", \"image\": \"nginx\"}]}\n}\n",
    );
}

#[test]
fn unknown_field_in_json_is_reported() {
    one_error(
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "lables": {}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}"#,
        "metadata.lables: unknown field",
    );
}

#[test]
fn config_map_in_another_namespace_is_refused() {
    let text = format!(
        "{MINIMAL}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: other\n"
    );
    one_error(
        &text,
        "document 2: metadata.namespace: Invalid value: \"other\": must be the Pod's namespace \"default\"",
    );
}

#[test]
fn container_port_must_be_in_range() {
    one_error(
        &pod_with("    ports:\n    - containerPort: 0\n", ""),
        "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
}

#[test]
fn host_port_must_be_in_range_and_not_reused() {
    let errs = errors(&pod_with(
        "    ports:\n    - {containerPort: 80, hostPort: 70000}\n    - {containerPort: 81, hostPort: 8080}\n  - name: b\n    image: nginx\n    ports:\n    - {containerPort: 82, hostPort: 8080}\n",
        "",
    ));
    assert_eq!(
        errs,
        vec![
            "spec.containers[0].ports[0].hostPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[1].ports[0].hostPort: Duplicate value: \"8080/TCP\"",
        ]
    );
}

#[test]
fn port_protocol_and_name_are_validated() {
    let errs = errors(&pod_with(
        "    ports:\n    - {containerPort: 80, protocol: ICMP, name: Http}\n",
        "",
    ));
    assert_eq!(
        errs,
        vec![
            "spec.containers[0].ports[0].name: Invalid value: \"Http\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.containers[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        ]
    );
}

#[test]
fn hostname_must_be_a_dns_label() {
    one_error(
        &pod_with("", "  hostname: web.local\n"),
        "spec.hostname: Invalid value: \"web.local\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
    );
}

#[test]
fn restart_policy_must_be_known() {
    one_error(
        &pod_with("", "  restartPolicy: Sometimes\n"),
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    );
}

#[test]
fn an_init_container_restart_policy_is_never_on_failure_or_always_for_a_sidecar() {
    let m = ok(&pod_with(
        "",
        "  initContainers:\n  - name: init\n    image: busybox\n    restartPolicy: OnFailure\n",
    ));
    let init = &m.pod.spec.containers[0];
    assert_eq!(init.kind, crate::model::ContainerKind::Init);
    assert_eq!(
        init.restart_policy,
        Some(crate::model::RestartPolicy::OnFailure)
    );
    one_error(
        &pod_with(
            "",
            "  initContainers:\n  - name: init\n    image: busybox\n    restartPolicy: Sometimes\n",
        ),
        "spec.initContainers[0].restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    );
}

#[test]
fn restart_rules_are_lowered_in_order() {
    let m = ok(&pod_with(
        "    restartPolicy: Never\n    restartPolicyRules:\n    - {action: Restart, exitCodes: {operator: In, values: [42]}}\n    - {action: RestartAllContainers, exitCodes: {operator: NotIn, values: [0, 1]}}\n",
        "",
    ));
    use crate::model::{ExitCodeOperator, RestartAction, RestartRule};
    assert_eq!(
        m.pod.spec.containers[0].restart_rules,
        [
            RestartRule {
                action: RestartAction::Restart,
                operator: ExitCodeOperator::In,
                values: vec![42]
            },
            RestartRule {
                action: RestartAction::RestartAllContainers,
                operator: ExitCodeOperator::NotIn,
                values: vec![0, 1]
            },
        ]
    );
}

#[test]
fn restart_rules_need_the_containers_own_policy_and_valid_parts() {
    one_error(
        &pod_with(
            "    restartPolicyRules: [{action: Restart, exitCodes: {operator: In, values: [42]}}]\n",
            "",
        ),
        "spec.containers[0].restartPolicy: Required value: must be set when restartPolicyRules are specified",
    );
    assert_eq!(
        errors(&pod_with(
            "    restartPolicy: Never\n    restartPolicyRules: [{action: Reboot, exitCodes: {operator: Near, values: [1, 1]}}, {action: Restart}]\n",
            "",
        )),
        [
            "spec.containers[0].restartPolicyRules[0].action: Unsupported value: \"Reboot\": supported values: \"Restart\", \"RestartAllContainers\"",
            "spec.containers[0].restartPolicyRules[0].exitCodes.operator: Unsupported value: \"Near\": supported values: \"In\", \"NotIn\"",
            "spec.containers[0].restartPolicyRules[0].exitCodes.values[1]: Duplicate value: \"1\"",
            "spec.containers[0].restartPolicyRules[1].exitCodes: Required value",
        ]
    );
    one_error(
        &pod_with(
            "",
            "  initContainers:\n  - name: side\n    image: busybox\n    restartPolicy: Always\n    restartPolicyRules: [{action: Restart, exitCodes: {operator: In, values: [1]}}]\n",
        ),
        "spec.initContainers[0].restartPolicyRules: Forbidden: may not be set for init containers with restartPolicy=Always",
    );
}

#[test]
fn probes_on_plain_init_containers_are_forbidden() {
    one_error(
        &pod_with(
            "",
            "  initContainers:\n  - name: init\n    image: busybox\n    livenessProbe: {exec: {command: [\"true\"]}}\n",
        ),
        "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
    );
}

#[test]
fn image_pull_policy_must_be_known() {
    one_error(
        &pod_with("    imagePullPolicy: Sometimes\n", ""),
        "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
    );
}

#[test]
fn working_dir_must_be_absolute() {
    one_error(
        &pod_with("    workingDir: app\n", ""),
        "spec.containers[0].workingDir: Invalid value: \"app\": must be an absolute path",
    );
}

#[test]
fn dns_policy_none_needs_nameservers() {
    one_error(
        &pod_with("", "  dnsPolicy: None\n"),
        "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None",
    );
}

#[test]
fn resource_quantities_must_parse() {
    one_error(
        &pod_with("    resources:\n      limits:\n        memory: lots\n", ""),
        "spec.containers[0].resources.limits.memory: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = "apiVersion: v1
kind: Pod
metadata:
  name: Web_1
spec:
  containers:
  - name: web
    imagee: nginx
    ports:
    - containerPort: 0
";
    assert_eq!(
        errors(text),
        vec![
            "spec.containers[0].imagee: unknown field",
            "metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            "spec.containers[0].image: Required value",
            "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        ]
    );
}

#[test]
fn three_problems_yield_three_errors() {
    let errs = errors(&pod_with(
        "    volumeDevices: [{name: d, devicePath: /dev/xvda}]\n    workingDir: app\n",
        "  restartPolicy: Sometimes\n",
    ));
    assert_eq!(
        errs,
        vec![
            "not supported: spec.containers[0].volumeDevices",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.containers[0].workingDir: Invalid value: \"app\": must be an absolute path",
        ]
    );
}

// --- defaults ----------------------------------------------------------------------------

#[test]
fn namespace_defaults_to_default() {
    let m = ok(MINIMAL);
    assert_eq!(m.pod.namespace(), "default");
    assert_eq!(m.pod.key.id(), "default_web");
}

#[test]
fn defaulted_uid_is_stable_and_uuid_shaped() {
    let a = ok(MINIMAL);
    let b = ok(MINIMAL);
    assert_eq!(a.pod.uid, b.pod.uid);
    assert_eq!(a.pod.uid.as_str(), defaults::derived_uid("default", "web"));
    let uid = a.pod.uid.as_str();
    assert_eq!(uid.len(), 36);
    let parts: Vec<&str> = uid.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'));
    assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
    assert!(uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    // Another pod (or namespace) gets another uid.
    assert_ne!(uid, defaults::derived_uid("default", "db"));
    assert_ne!(uid, defaults::derived_uid("other", "web"));
}

#[test]
fn given_uid_is_kept() {
    let m = ok(&MINIMAL.replace("name: web\nspec", "name: web\n  uid: abc-123\nspec"));
    assert_eq!(m.pod.uid.as_str(), "abc-123");
}

#[test]
fn restart_policy_and_grace_period_and_protocol_are_defaulted() {
    let m = ok(&pod_with("    ports:\n    - containerPort: 80\n", ""));
    let spec = &m.pod.spec;
    assert_eq!(spec.restart_policy, crate::model::RestartPolicy::Always);
    assert_eq!(spec.termination_grace_period_seconds, 30);
    assert_eq!(
        spec.containers[0].ports[0].protocol,
        crate::model::Protocol::TCP
    );
    assert_eq!(
        spec.containers[0].termination_message_path.as_str(),
        "/dev/termination-log"
    );
}

// --- rules that only the validator checks (translate trusts the model) --------------

#[test]
fn only_namespaced_sysctls_are_accepted_and_net_ones_need_the_pod_network() {
    one_error(
        &pod_with(
            "",
            "  securityContext:\n    sysctls: [{name: vm.swappiness, value: \"1\"}]\n",
        ),
        "spec.securityContext.sysctls[0].name: Invalid value: \"vm.swappiness\": not a namespaced sysctl",
    );
    one_error(
        &pod_with(
            "",
            "  hostNetwork: true\n  securityContext:\n    sysctls: [{name: net.core.somaxconn, value: \"1024\"}]\n",
        ),
        "spec.securityContext.sysctls[0].name: Invalid value: \"net.core.somaxconn\": may not be specified when 'hostNetwork' is true",
    );
    let m = ok(&pod_with(
        "",
        "  securityContext:\n    sysctls: [{name: kernel.shmmax, value: \"1\"}]\n",
    ));
    assert_eq!(m.pod.spec.sysctls[0].name, "kernel.shmmax");
}

#[test]
fn unknown_capabilities_are_refused_with_their_path() {
    one_error(
        &pod_with(
            "    securityContext: {capabilities: {add: [NET_ADMIN, MAKE_COFFEE]}}\n",
            "",
        ),
        "spec.containers[0].securityContext.capabilities.add[1]: Unsupported value: \"MAKE_COFFEE\": not a Linux capability",
    );
}

#[test]
fn tty_stdin_and_stdin_once_are_read() {
    let m = ok(&pod_with(
        "    tty: true\n    stdin: true\n    stdinOnce: true\n",
        "",
    ));
    let c = &m.pod.spec.containers[0];
    assert!(c.tty && c.stdin && c.stdin_once);
    let m = ok(&pod_with("", ""));
    let c = &m.pod.spec.containers[0];
    assert!(!c.tty && !c.stdin && !c.stdin_once);
}

#[test]
fn termination_message_path_must_be_absolute() {
    one_error(
        &pod_with("    terminationMessagePath: term.log\n", ""),
        "spec.containers[0].terminationMessagePath: Invalid value: \"term.log\": must be an absolute path",
    );
}

#[test]
fn run_as_non_root_with_an_explicit_root_user_is_refused() {
    one_error(
        &pod_with(
            "    securityContext: {runAsNonRoot: true}\n",
            "  securityContext: {runAsUser: 0}\n",
        ),
        "spec.containers[0].securityContext.runAsNonRoot: Forbidden: container has runAsNonRoot and spec.securityContext.runAsUser is 0 (root)",
    );
    // The image's user is only known to the translator.
    ok(&pod_with("    securityContext: {runAsNonRoot: true}\n", ""));
}

#[test]
fn resource_field_refs_must_name_a_container_of_the_pod() {
    one_error(
        &pod_with(
            "    env:\n    - {name: M, valueFrom: {resourceFieldRef: {containerName: nope, resource: limits.memory}}}\n",
            "",
        ),
        "spec.containers[0].env[0].valueFrom.resourceFieldRef.containerName: Not found: \"nope\"",
    );
    one_error(
        &pod_with(
            "",
            "  volumes:\n  - name: info\n    downwardAPI:\n      items: [{path: m, resourceFieldRef: {containerName: nope, resource: limits.memory}}]\n",
        ),
        "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName: Not found: \"nope\"",
    );
    one_error(
        &pod_with(
            "    env:\n    - {name: M, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: \"0\"}}}\n",
            "",
        ),
        "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: Invalid value: \"0\": must be greater than zero",
    );
}

#[test]
fn env_from_keys_that_are_not_env_names_are_skipped_with_a_warning() {
    let m = ok(&format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{GOOD: a, 1bad: b}}\n",
        pod_with("    envFrom: [{configMapRef: {name: c}}]\n", "")
    ));
    let names: Vec<&str> = m.pod.spec.containers[0]
        .env
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["GOOD"]);
    assert_eq!(
        m.warnings,
        ["spec.containers[0].envFrom[0]: keys skipped, not valid environment variable names: 1bad"]
    );
}

#[test]
fn image_references_are_parsed_when_the_manifest_is() {
    let errs = errors(&pod_with("", "").replace("image: nginx", "image: \"nginx:bad tag\""));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("spec.containers[0].image: Invalid value: \"nginx:bad tag\": "),
        "{errs:?}"
    );
    let m = ok(&pod_with("    imagePullPolicy: Never\n", "").replace("nginx", "nginx:1.27"));
    assert_eq!(
        m.pod.spec.containers[0].pull_policy,
        crate::model::PullPolicy::Never
    );
    let m = ok(&pod_with("", "").replace("nginx", "nginx:1.27"));
    assert_eq!(
        m.pod.spec.containers[0].pull_policy,
        crate::model::PullPolicy::IfNotPresent
    );
}

#[test]
fn quantities_above_2_pow_63_minus_1_are_refused() {
    for (q, why) in [
        ("16Ei", "must be less than or equal to 9223372036854775807"),
        ("9Ei", "must be less than or equal to 9223372036854775807"),
        (
            "18446744073814409216",
            "must be less than or equal to 9223372036854775807",
        ),
        ("-1", "must be greater than or equal to 0"),
    ] {
        one_error(
            &pod_with(
                &format!("    resources:\n      limits:\n        memory: \"{q}\"\n"),
                "",
            ),
            &format!("spec.containers[0].resources.limits.memory: Invalid value: \"{q}\": {why}"),
        );
    }
}

#[test]
fn a_request_that_is_not_set_is_the_limit() {
    let m = ok(&pod_with(
        "    resources:\n      limits: {cpu: 500m, memory: 64Mi}\n      requests: {memory: 32Mi}\n",
        "",
    ));
    let r = m.pod.spec.containers[0].resources;
    assert_eq!(r.cpu_request, r.cpu_limit);
    assert_eq!(r.memory_request.unwrap().whole(), Some(32 << 20));
}

// --- issue 8: what the runtime would refuse, caught with its field path ---------

#[test]
fn a_request_above_its_limit_is_refused() {
    assert_eq!(
        errors(&pod_with(
            "    resources:\n      limits: {cpu: 500m, memory: 64Mi}\n      requests: {cpu: \"1\", memory: 65Mi}\n",
            "",
        )),
        [
            "spec.containers[0].resources.requests.cpu: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
            "spec.containers[0].resources.requests.memory: Invalid value: \"65Mi\": must be less than or equal to memory limit of 64Mi",
        ]
    );
    // Equal amounts in other units are not above.
    ok(&pod_with(
        "    resources:\n      limits: {cpu: \"1\", memory: 1Gi}\n      requests: {cpu: 1000m, memory: \"1073741824\"}\n",
        "",
    ));
}

#[test]
fn no_privilege_escalation_with_cap_sys_admin_is_refused() {
    one_error(
        &pod_with(
            "    securityContext:\n      allowPrivilegeEscalation: false\n      capabilities: {add: [CAP_SYS_ADMIN]}\n",
            "",
        ),
        "spec.containers[0].securityContext: Invalid value: \"\": cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
    );
    // The API server compares the written name: SYS_ADMIN passes there.
    ok(&pod_with(
        "    securityContext:\n      allowPrivilegeEscalation: false\n      capabilities: {add: [SYS_ADMIN]}\n",
        "",
    ));
    one_error(
        &pod_with(
            "    securityContext:\n      allowPrivilegeEscalation: false\n      privileged: true\n",
            "",
        ),
        "spec.containers[0].securityContext: Invalid value: \"\": cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
    );
    ok(&pod_with(
        "    securityContext:\n      allowPrivilegeEscalation: true\n      capabilities: {add: [SYS_ADMIN]}\n",
        "",
    ));
}

#[test]
fn env_names_that_walk_directories_are_refused() {
    for (name, why) in [
        (".", "must not be '.'"),
        ("..", "must not be '..'"),
        ("..x", "must not start with '..'"),
    ] {
        one_error(
            &pod_with(
                &format!("    env:\n    - {{name: \"{name}\", value: x}}\n"),
                "",
            ),
            &format!("spec.containers[0].env[0].name: Invalid value: \"{name}\": {why}"),
        );
    }
    ok(&pod_with(
        "    env:\n    - {name: .x, value: x}\n    - {name: x.., value: z}\n",
        "",
    ));
}

#[test]
fn ipc_sysctls_with_host_ipc_are_refused() {
    for name in [
        "kernel.shmmax",
        "kernel.msgmax",
        "kernel.sem",
        "fs.mqueue.msg_max",
    ] {
        one_error(
            &pod_with(
                "",
                &format!(
                    "  hostIPC: true\n  securityContext:\n    sysctls: [{{name: {name}, value: \"1\"}}]\n"
                ),
            ),
            &format!(
                "spec.securityContext.sysctls[0].name: Invalid value: \"{name}\": may not be specified when 'hostIPC' is true"
            ),
        );
    }
    // A net.* sysctl is about the network namespace, which hostIPC leaves the pod's.
    ok(&pod_with(
        "",
        "  hostIPC: true\n  securityContext:\n    sysctls: [{name: net.core.somaxconn, value: \"1024\"}]\n",
    ));
}

#[test]
fn a_working_dir_in_proc_is_refused() {
    for wd in ["/proc", "/proc/self/fd/7", "/proc/../proc/1/cwd"] {
        one_error(
            &pod_with(&format!("    workingDir: {wd}\n"), ""),
            &format!(
                "spec.containers[0].workingDir: Invalid value: \"{wd}\": must not be /proc or under /proc"
            ),
        );
    }
    ok(&pod_with("    workingDir: /procedures\n", ""));
}

#[test]
fn volumes_over_root_proc_or_dev_are_refused() {
    let with_mount = |mp: &str| {
        pod_with(
            &format!("    volumeMounts:\n    - {{name: v, mountPath: \"{mp}\"}}\n"),
            "  volumes:\n  - {name: v, emptyDir: {}}\n",
        )
    };
    for (mp, why) in [
        (
            "/",
            "must not be '/': a volume cannot replace the container's root filesystem",
        ),
        (
            "/.",
            "must not be '/': a volume cannot replace the container's root filesystem",
        ),
        (
            "/proc",
            "must not be /proc or under /proc: the runtime mounts procfs there",
        ),
        (
            "/proc/sys",
            "must not be /proc or under /proc: the runtime mounts procfs there",
        ),
        (
            "/proc/1/root",
            "must not be /proc or under /proc: the runtime mounts procfs there",
        ),
        (
            "/dev",
            "must not be /dev unless the container is privileged: the runtime mounts the container's devices there",
        ),
        (
            "/dev/",
            "must not be /dev unless the container is privileged: the runtime mounts the container's devices there",
        ),
    ] {
        one_error(
            &with_mount(mp),
            &format!(
                "spec.containers[0].volumeMounts[0].mountPath: Invalid value: \"{mp}\": {why}"
            ),
        );
    }
    // A privileged container may take the host's /dev, as CSI node plugins do.
    ok(&pod_with(
        "    securityContext: {privileged: true}\n    volumeMounts:\n    - {name: v, mountPath: /dev}\n",
        "  volumes:\n  - {name: v, hostPath: {path: /dev}}\n",
    ));
    // /dev/shm (a Memory emptyDir) and runc's lxcfs allowlist in /proc are fine.
    for mp in ["/dev/shm", "/proc/meminfo", "/devices", "/process"] {
        ok(&with_mount(mp));
    }
}

#[test]
fn annotations_above_256_kib_in_total_are_refused() {
    let big = "x".repeat(128 << 10);
    let with = |extra: usize| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    a: {big}\n    b: {}\nspec:\n  containers:\n  - name: web\n    image: nginx\n",
            "y".repeat((128 << 10) - 2 + extra)
        )
    };
    // "a" + "b" + both values: exactly 256 KiB passes, one byte more does not.
    ok(&with(0));
    one_error(
        &with(1),
        "metadata.annotations: Too long: may not be more than 262144 bytes",
    );
}

#[test]
fn projected_names_the_atomic_writer_uses_are_refused() {
    one_error(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {..data: x}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: web, image: nginx}]\n",
        "document 1: data[..data]: Invalid value: \"..data\": must not start with '..'",
    );
    one_error(
        &pod_with(
            "",
            "  volumes:\n  - name: d\n    downwardAPI:\n      items: [{path: ..data, fieldRef: {fieldPath: metadata.name}}]\n",
        ),
        "spec.volumes[0].downwardAPI.items[0].path: Invalid value: \"..data\": must not start with '..'",
    );
}

// --- seccomp and AppArmor ------------------------------------------------------------

/// The one container's seccomp and AppArmor settings of a pod with `annotations`
/// (indented 4), pod `securityContext` lines (indented 4) and container
/// `securityContext` lines (indented 6).
fn profiles(
    annotations: &str,
    pod_sc: &str,
    container_sc: &str,
) -> (crate::model::SeccompProfile, Option<crate::model::AppArmor>) {
    let m = ok(&profiles_pod(annotations, pod_sc, container_sc));
    let sc = &m.pod.spec.containers[0].security;
    (sc.seccomp.clone(), sc.apparmor.clone())
}

fn profiles_pod(annotations: &str, pod_sc: &str, container_sc: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    note: hello\n{annotations}spec:\n  securityContext:\n    runAsGroup: 0\n{pod_sc}  containers:\n  - name: web\n    image: nginx\n    securityContext:\n      runAsGroup: 0\n{container_sc}"
    )
}

#[test]
fn seccomp_profiles_come_from_the_container_then_its_annotation_then_the_pod() {
    use crate::model::SeccompProfile::*;
    let local = |path: &str, field: &str| Localhost {
        path: crate::model::RelPath::parse(path).unwrap(),
        field: field.into(),
    };
    let pod_ann = "    seccomp.security.alpha.kubernetes.io/pod: ";
    let c_ann = "    container.seccomp.security.alpha.kubernetes.io/web: ";
    let rows = [
        ("", "", "", Unconfined),
        (
            "",
            "    seccompProfile: {type: RuntimeDefault}\n",
            "",
            RuntimeDefault,
        ),
        (
            "",
            "    seccompProfile: {type: RuntimeDefault}\n",
            "      seccompProfile: {type: Unconfined}\n",
            Unconfined,
        ),
        (
            "",
            "",
            "      seccompProfile: {type: Localhost, localhostProfile: profiles/a.json}\n",
            local(
                "profiles/a.json",
                "spec.containers[0].securityContext.seccompProfile.localhostProfile",
            ),
        ),
        (
            &format!("{pod_ann}runtime/default\n"),
            "",
            "",
            RuntimeDefault,
        ),
        (
            &format!("{pod_ann}docker/default\n"),
            "",
            "",
            RuntimeDefault,
        ),
        (
            &format!("{pod_ann}unconfined\n{c_ann}localhost/x.json\n"),
            "",
            "",
            local(
                "x.json",
                "metadata.annotations[container.seccomp.security.alpha.kubernetes.io/web]",
            ),
        ),
        (
            &format!("{c_ann}unconfined\n"),
            "    seccompProfile: {type: RuntimeDefault}\n",
            "",
            Unconfined,
        ),
    ];
    for (ann, pod_sc, c_sc, want) in rows {
        assert_eq!(profiles(ann, pod_sc, c_sc).0, want, "{ann}{pod_sc}{c_sc}");
    }
}

#[test]
fn apparmor_profiles_come_from_the_container_then_its_annotation_then_the_pod() {
    use crate::model::{AppArmor, AppArmorProfile::*};
    let c_ann = "    container.apparmor.security.beta.kubernetes.io/web: ";
    let rows = [
        ("", "", "", None),
        (
            "",
            "    appArmorProfile: {type: RuntimeDefault}\n",
            "",
            Some((RuntimeDefault, "spec.securityContext.appArmorProfile")),
        ),
        (
            "",
            "    appArmorProfile: {type: RuntimeDefault}\n",
            "      appArmorProfile: {type: Localhost, localhostProfile: k8s-deny-write}\n",
            Some((
                Localhost("k8s-deny-write".into()),
                "spec.containers[0].securityContext.appArmorProfile",
            )),
        ),
        (
            &format!("{c_ann}unconfined\n"),
            "    appArmorProfile: {type: RuntimeDefault}\n",
            "",
            Some((
                Unconfined,
                "metadata.annotations[container.apparmor.security.beta.kubernetes.io/web]",
            )),
        ),
        (
            &format!("{c_ann}localhost/p\n"),
            "",
            "",
            Some((
                Localhost("p".into()),
                "metadata.annotations[container.apparmor.security.beta.kubernetes.io/web]",
            )),
        ),
    ];
    for (ann, pod_sc, c_sc, want) in rows {
        let want = want.map(|(profile, field)| AppArmor {
            profile,
            field: field.into(),
        });
        assert_eq!(profiles(ann, pod_sc, c_sc).1, want, "{ann}{pod_sc}{c_sc}");
    }
}

#[test]
fn bad_seccomp_and_apparmor_settings_are_refused_with_their_field_paths() {
    let c = "spec.containers[0].securityContext";
    let rows = [
        (
            "",
            "",
            "      seccompProfile: {type: Localhost}\n",
            format!("{c}.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost"),
        ),
        (
            "",
            "",
            "      seccompProfile: {type: Localhost, localhostProfile: ../../etc/x.json}\n",
            format!("{c}.seccompProfile.localhostProfile: Invalid value: \"../../etc/x.json\": must not contain '..'"),
        ),
        (
            "",
            "    seccompProfile: {type: Localhost, localhostProfile: /etc/x.json}\n",
            "",
            "spec.securityContext.seccompProfile.localhostProfile: Invalid value: \"/etc/x.json\": must be a relative path".into(),
        ),
        (
            "",
            "",
            "      seccompProfile: {type: Strict}\n",
            format!("{c}.seccompProfile.type: Unsupported value: \"Strict\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""),
        ),
        (
            "",
            "",
            "      seccompProfile: {type: RuntimeDefault, localhostProfile: a.json}\n",
            format!("{c}.seccompProfile.localhostProfile: Invalid value: \"a.json\": can only be set when seccomp type is Localhost"),
        ),
        (
            "    seccomp.security.alpha.kubernetes.io/pod: strict\n",
            "",
            "",
            "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: Invalid value: \"strict\": must be a valid seccomp profile".into(),
        ),
        (
            "    seccomp.security.alpha.kubernetes.io/pod: localhost/../x.json\n",
            "",
            "",
            "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: Invalid value: \"../x.json\": must not contain '..'".into(),
        ),
        (
            "    seccomp.security.alpha.kubernetes.io/pod: unconfined\n",
            "    seccompProfile: {type: RuntimeDefault}\n",
            "",
            "spec.securityContext.seccompProfile.type: Forbidden: seccomp type in annotation and field must match".into(),
        ),
        (
            "",
            "",
            "      appArmorProfile: {type: Localhost}\n",
            format!("{c}.appArmorProfile.localhostProfile: Required value: must be set when AppArmor type is Localhost"),
        ),
        (
            "",
            "    appArmorProfile: {type: Enforce}\n",
            "",
            "spec.securityContext.appArmorProfile.type: Unsupported value: \"Enforce\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\"".into(),
        ),
        (
            "    container.apparmor.security.beta.kubernetes.io/web: enforce\n",
            "",
            "",
            "metadata.annotations[container.apparmor.security.beta.kubernetes.io/web]: Invalid value: \"enforce\": invalid AppArmor profile name".into(),
        ),
        (
            "    container.apparmor.security.beta.kubernetes.io/nope: unconfined\n",
            "",
            "",
            "metadata.annotations[container.apparmor.security.beta.kubernetes.io/nope]: Invalid value: \"nope\": container not found".into(),
        ),
        (
            "    container.apparmor.security.beta.kubernetes.io/web: unconfined\n",
            "",
            "      appArmorProfile: {type: RuntimeDefault}\n",
            format!("{c}.appArmorProfile.type: Forbidden: apparmor type in annotation and field must match"),
        ),
    ];
    for (ann, pod_sc, c_sc, want) in rows {
        let text = profiles_pod(ann, pod_sc, c_sc);
        let errors: Vec<String> = errors(&text)
            .into_iter()
            .map(|e| e.trim().to_string())
            .collect();
        assert!(
            errors.iter().any(|e| e.ends_with(&want)),
            "{ann}{pod_sc}{c_sc}\nwant {want}\ngot {errors:#?}"
        );
    }
}

// --- projected volumes -------------------------------------------------------------

/// A ConfigMap `cm` (keys `a`, `b`) and a Secret `s` (key `pw`) after a Pod whose
/// `volumes` lines (indented 2) are `volumes`.
fn projected_pod(volumes: &str) -> String {
    format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm}}\ndata: {{a: A, b: B}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{pw: hunter2}}\n",
        pod_with("", &format!("  volumes:\n{volumes}"))
    )
}

fn projected_files(m: &Manifest) -> Vec<(String, Vec<u8>, u32)> {
    use crate::model::{DownwardValue, FieldRef, ProjectedItem, VolumeSource};
    let VolumeSource::Projected { files } = &m.pod.spec.volumes[0].source else {
        panic!("not projected: {:?}", m.pod.spec.volumes[0].source);
    };
    files
        .iter()
        .map(|f| match f {
            ProjectedItem::Key(k) => (k.path.to_string(), k.content.clone(), k.mode.bits()),
            ProjectedItem::Downward(d) => {
                assert_eq!(d.value, DownwardValue::Field(FieldRef::Name));
                (d.path.to_string(), b"<name>".to_vec(), d.mode.bits())
            }
        })
        .collect()
}

#[test]
fn a_projected_volume_holds_the_files_of_all_its_sources_with_its_default_mode() {
    let m = ok(&projected_pod(
        "  - name: p\n    projected:\n      defaultMode: 0440\n      sources:\n      - configMap: {name: cm, items: [{key: a, path: conf/a, mode: 0600}]}\n      - secret: {name: s}\n      - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}\n",
    ));
    assert_eq!(m.warnings, Vec::<String>::new());
    let f = |p: &str, c: &[u8], mode: u32| (p.to_string(), c.to_vec(), mode);
    assert_eq!(
        projected_files(&m),
        [
            f("conf/a", b"A", 0o600),
            f("pw", b"hunter2", 0o440),
            f("name", b"<name>", 0o440),
        ]
    );
}

#[test]
fn a_projected_volume_without_a_default_mode_writes_0644() {
    let m = ok(&projected_pod(
        "  - name: p\n    projected:\n      sources: [{configMap: {name: cm, items: [{key: b, path: b}]}}]\n",
    ));
    assert_eq!(
        projected_files(&m),
        [("b".to_string(), b"B".to_vec(), 0o644)]
    );
}

#[test]
fn projected_sources_that_are_optional_may_be_missing_or_lack_keys() {
    let m = ok(&projected_pod(
        "  - name: p\n    projected:\n      sources:\n      - configMap: {name: nope, optional: true}\n      - secret: {name: gone, optional: true, items: [{key: k, path: k}]}\n      - configMap: {name: cm, optional: true, items: [{key: missing, path: m}, {key: a, path: a}]}\n",
    ));
    assert_eq!(
        projected_files(&m),
        [("a".to_string(), b"A".to_vec(), 0o644)]
    );
}

#[test]
fn projected_volume_errors_name_the_source_and_item() {
    let v = |sources: &str| {
        projected_pod(&format!(
            "  - name: p\n    projected:\n      sources:\n{sources}"
        ))
    };
    let rows: &[(&str, String, &[&str])] = &[
        (
            "a path with a '..' element",
            v(
                "      - secret: {name: s}\n      - configMap: {name: cm, items: [{key: a, path: x/../../etc}]}\n",
            ),
            &[
                "spec.volumes[0].projected.sources[1].configMap.items[0].path: Invalid value: \"x/../../etc\": must not contain '..'",
            ],
        ),
        (
            "an absolute path",
            v("      - secret: {name: s, items: [{key: pw, path: /pw}]}\n"),
            &[
                "spec.volumes[0].projected.sources[0].secret.items[0].path: Invalid value: \"/pw\": must be a relative path",
            ],
        ),
        (
            "a path the AtomicWriter uses",
            v(
                "      - downwardAPI: {items: [{path: ..data, fieldRef: {fieldPath: metadata.name}}]}\n",
            ),
            &[
                "spec.volumes[0].projected.sources[0].downwardAPI.items[0].path: Invalid value: \"..data\": must not start with '..'",
            ],
        ),
        (
            "a missing path and key",
            v("      - configMap: {name: cm, items: [{key: '', path: ''}]}\n"),
            &[
                "spec.volumes[0].projected.sources[0].configMap.items[0].key: Required value",
                "spec.volumes[0].projected.sources[0].configMap.items[0].path: Required value",
            ],
        ),
        (
            "two sources projecting one path",
            v(
                "      - configMap: {name: cm, items: [{key: a, path: same}]}\n      - secret: {name: s, items: [{key: pw, path: same}]}\n",
            ),
            &["spec.volumes[0].projected: Invalid value: \"s\": conflicting duplicate paths"],
        ),
        (
            "a downward API file on a ConfigMap's path",
            v(
                "      - configMap: {name: cm, items: [{key: a, path: same}]}\n      - downwardAPI: {items: [{path: same, fieldRef: {fieldPath: metadata.name}}]}\n",
            ),
            &["spec.volumes[0].projected: Invalid value: \"same\": conflicting duplicate paths"],
        ),
        (
            "one source projecting one path twice",
            v("      - configMap: {name: cm, items: [{key: a, path: x}, {key: b, path: x}]}\n"),
            &["spec.volumes[0].projected: Invalid value: \"cm\": conflicting duplicate paths"],
        ),
        (
            "a source of two kinds",
            v("      - configMap: {name: cm}\n        secret: {name: s}\n"),
            &[
                "spec.volumes[0].projected.sources[0]: Forbidden: may not specify more than 1 volume type per source",
            ],
        ),
        (
            "a cluster-only source beside another kind",
            v("      - configMap: {name: cm}\n        serviceAccountToken: {path: token}\n"),
            &[
                "spec.volumes[0].projected.sources[0]: Forbidden: may not specify more than 1 volume type per source",
            ],
        ),
        (
            "modes out of range",
            projected_pod(
                "  - name: p\n    projected:\n      defaultMode: 01000\n      sources: [{configMap: {name: cm, items: [{key: a, path: a, mode: -1}]}}]\n",
            ),
            &[
                "spec.volumes[0].projected.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive",
                "spec.volumes[0].projected.sources[0].configMap.items[0].mode: Invalid value: -1: must be a number between 0 and 0777 (octal), both inclusive",
            ],
        ),
        (
            "a ConfigMap and a Secret not in the input",
            v("      - configMap: {name: other}\n      - secret: {name: creds}\n"),
            &[
                "spec.volumes[0].projected.sources[0].configMap.name: Not found: \"other\"",
                "spec.volumes[0].projected.sources[1].secret.name: Not found: \"creds\"",
            ],
        ),
        (
            "a key the ConfigMap lacks",
            v("      - configMap: {name: cm, items: [{key: c, path: c}]}\n"),
            &["spec.volumes[0].projected.sources[0].configMap.items[0].key: Not found: \"c\""],
        ),
        (
            "no name",
            v("      - secret: {items: [{key: pw, path: pw}]}\n"),
            &["spec.volumes[0].projected.sources[0].secret.name: Required value"],
        ),
        (
            "a field the downward API does not project into files",
            v("      - downwardAPI: {items: [{path: ip, fieldRef: {fieldPath: status.podIP}}]}\n"),
            &[
                "spec.volumes[0].projected.sources[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: \"status.podIP\": supported values: \"metadata.annotations\", \"metadata.labels\", \"metadata.name\", \"metadata.namespace\", \"metadata.uid\"",
            ],
        ),
        (
            "a resource of no container",
            v(
                "      - downwardAPI: {items: [{path: mem, resourceFieldRef: {resource: limits.memory}}]}\n",
            ),
            &[
                "spec.volumes[0].projected.sources[0].downwardAPI.items[0].resourceFieldRef.containerName: Required value",
            ],
        ),
    ];
    for (what, text, expected) in rows {
        let expected: Vec<String> = expected
            .iter()
            .map(|e| format!("document 1: {e}"))
            .collect();
        assert_eq!(errors(text), expected, "{what}");
    }
}

#[test]
fn cluster_only_projected_sources_are_skipped_with_a_warning() {
    let m = ok(&projected_pod(
        "  - name: kube-api-access\n    projected:\n      sources:\n      - serviceAccountToken: {expirationSeconds: 3607, path: token}\n      - clusterTrustBundle: {signerName: example.com/s, path: ca.pem}\n      - podCertificate: {signerName: example.com/s, keyType: ED25519, credentialBundlePath: creds.pem}\n      - configMap: {name: cm, items: [{key: a, path: ca.crt}]}\n",
    ));
    assert_eq!(
        m.warnings,
        [
            "spec.volumes[0].projected.sources[0].serviceAccountToken: ignored: cluster-only field (service accounts: no API server issues a token)",
            "spec.volumes[0].projected.sources[1].clusterTrustBundle: ignored: cluster-only field (ClusterTrustBundle objects live in a cluster)",
            "spec.volumes[0].projected.sources[2].podCertificate: ignored: cluster-only field (a cluster signer issues pod certificates)",
        ]
    );
    assert_eq!(
        projected_files(&m),
        [("ca.crt".to_string(), b"A".to_vec(), 0o644)]
    );
}

#[test]
fn a_later_projected_source_replaces_an_earlier_ones_key_with_a_warning() {
    let text = projected_pod(
        "  - name: p\n    projected:\n      sources:\n      - configMap: {name: cm}\n      - secret: {name: s, items: [{key: pw, path: a}]}\n",
    );
    let m = ok(&text);
    assert_eq!(
        m.warnings,
        [
            "spec.volumes[0].projected.sources[1]: \"a\": replaces the file an earlier source projects there, as the kubelet does"
        ]
    );
    assert_eq!(
        projected_files(&m),
        [
            ("a".to_string(), b"hunter2".to_vec(), 0o644),
            ("b".to_string(), b"B".to_vec(), 0o644),
        ]
    );
}

// --- probes ----------------------------------------------------------------------------

#[test]
fn probes_get_the_api_servers_defaults() {
    let m = ok(&pod_with(
        "    readinessProbe: {exec: {command: [cat, /ready]}}\n",
        "",
    ));
    let p = m.pod.spec.containers[0].probes.readiness.clone().unwrap();
    assert_eq!(
        p,
        Probe {
            action: ProbeAction::Exec {
                command: vec!["cat".into(), "/ready".into()]
            },
            initial_delay_seconds: 0,
            timeout_seconds: 1,
            period_seconds: 10,
            success_threshold: 1,
            failure_threshold: 3,
            termination_grace_period_seconds: None,
        }
    );
}

#[test]
fn a_named_probe_port_is_resolved_against_the_containers_ports() {
    let m = ok(&pod_with(
        "    ports: [{name: web, containerPort: 8080}]\n    livenessProbe: {tcpSocket: {port: web}, periodSeconds: 2, failureThreshold: 1}\n",
        "",
    ));
    let p = m.pod.spec.containers[0].probes.liveness.clone().unwrap();
    assert_eq!(
        p.action,
        ProbeAction::TcpSocket {
            host: None,
            port: 8080
        }
    );
    assert_eq!((p.period_seconds, p.failure_threshold), (2, 1));
}

#[test]
fn a_probe_port_name_no_container_port_has_is_refused() {
    one_error(
        &pod_with("    livenessProbe: {httpGet: {port: metrics}}\n", ""),
        "spec.containers[0].livenessProbe.httpGet.port: Invalid value: \"metrics\": must name one of the container's ports",
    );
}

#[test]
fn a_probe_needs_exactly_one_handler() {
    one_error(
        &pod_with("    readinessProbe: {periodSeconds: 3}\n", ""),
        "spec.containers[0].readinessProbe: Required value: must specify a handler type",
    );
    one_error(
        &pod_with(
            "    readinessProbe: {exec: {command: [\"true\"]}, tcpSocket: {port: 80}}\n",
            "",
        ),
        "spec.containers[0].readinessProbe: Forbidden: may not specify more than 1 handler type",
    );
    one_error(
        &pod_with("    readinessProbe: {exec: {command: []}}\n", ""),
        "spec.containers[0].readinessProbe.exec.command: Required value",
    );
}

#[test]
fn liveness_and_startup_probes_act_on_one_success() {
    one_error(
        &pod_with(
            "    livenessProbe: {exec: {command: [\"true\"]}, successThreshold: 2}\n",
            "",
        ),
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
    );
    one_error(
        &pod_with(
            "    startupProbe: {exec: {command: [\"true\"]}, successThreshold: 3}\n",
            "",
        ),
        "spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1",
    );
    // Readiness may ask for more than one.
    let m = ok(&pod_with(
        "    readinessProbe: {exec: {command: [\"true\"]}, successThreshold: 2}\n",
        "",
    ));
    assert_eq!(
        m.pod.spec.containers[0]
            .probes
            .readiness
            .as_ref()
            .map(|p| p.success_threshold),
        Some(2)
    );
}

#[test]
fn probe_timings_must_not_be_negative() {
    assert_eq!(
        errors(&pod_with(
            "    livenessProbe: {exec: {command: [\"true\"]}, periodSeconds: -1, timeoutSeconds: -2}\n",
            ""
        )),
        [
            "spec.containers[0].livenessProbe.timeoutSeconds: Invalid value: -2: must be greater than or equal to 0",
            "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
        ]
    );
}

#[test]
fn a_probe_grace_period_is_positive_and_not_for_readiness() {
    one_error(
        &pod_with(
            "    livenessProbe: {exec: {command: [\"true\"]}, terminationGracePeriodSeconds: 0}\n",
            "",
        ),
        "spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0",
    );
    one_error(
        &pod_with(
            "    readinessProbe: {exec: {command: [\"true\"]}, terminationGracePeriodSeconds: 5}\n",
            "",
        ),
        "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes",
    );
}

#[test]
fn http_probe_headers_and_schemes_are_checked() {
    one_error(
        &pod_with(
            "    readinessProbe: {httpGet: {port: 80, scheme: FTP}}\n",
            "",
        ),
        "spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\"",
    );
    one_error(
        &pod_with(
            "    readinessProbe: {httpGet: {port: 80, httpHeaders: [{name: \"X Bad\", value: v}]}}\n",
            "",
        ),
        "spec.containers[0].readinessProbe.httpGet.httpHeaders[0].name: Invalid value: \"X Bad\": a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
    );
    one_error(
        &pod_with(
            "    readinessProbe: {httpGet: {port: 80, httpHeaders: [{name: X-A, value: \"a\\r\\nEvil: 1\"}]}}\n",
            "",
        ),
        "spec.containers[0].readinessProbe.httpGet.httpHeaders[0].value: Invalid value: \"a\\r\\nEvil: 1\": must not contain line breaks or NUL",
    );
    let m = ok(&pod_with(
        "    readinessProbe: {httpGet: {port: 443, scheme: HTTPS, path: /healthz, host: 127.0.0.1, httpHeaders: [{name: Host, value: example.test}]}}\n",
        "",
    ));
    assert_eq!(
        m.pod.spec.containers[0]
            .probes
            .readiness
            .as_ref()
            .map(|p| &p.action),
        Some(&ProbeAction::HttpGet(HttpGet {
            scheme: HttpScheme::Https,
            host: Some("127.0.0.1".into()),
            port: 443,
            path: "/healthz".into(),
            headers: vec![HttpHeader {
                name: "Host".into(),
                value: "example.test".into()
            }],
        }))
    );
}

#[test]
fn a_grpc_probe_is_lowered_and_its_port_checked() {
    let m = ok(&pod_with(
        "    livenessProbe: {grpc: {port: 9000, service: db}}\n",
        "",
    ));
    assert_eq!(m.warnings, Vec::<String>::new());
    assert_eq!(
        m.pod.spec.containers[0]
            .probes
            .liveness
            .as_ref()
            .map(|p| &p.action),
        Some(&ProbeAction::Grpc {
            port: 9000,
            service: Some("db".into())
        })
    );
    one_error(
        &pod_with("    livenessProbe: {grpc: {port: 0}}\n", ""),
        "spec.containers[0].livenessProbe.grpc.port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
}

// --- lifecycle -------------------------------------------------------------------------

#[test]
fn lifecycle_hooks_and_the_stop_signal_are_lowered() {
    let m = ok(&pod_with(
        "    ports: [{name: admin, containerPort: 9000}]\n    lifecycle:\n      postStart: {exec: {command: [sh, -c, 'echo hi']}}\n      preStop: {httpGet: {path: /quit, port: admin}}\n      stopSignal: SIGUSR1\n",
        "  os: {name: linux}\n",
    ));
    let c = &m.pod.spec.containers[0];
    assert_eq!(
        c.hooks.post_start,
        Some(Hook::Exec {
            command: vec!["sh".into(), "-c".into(), "echo hi".into()]
        })
    );
    assert_eq!(
        c.hooks.pre_stop,
        Some(Hook::HttpGet(HttpGet {
            scheme: HttpScheme::Http,
            host: None,
            port: 9000,
            path: "/quit".into(),
            headers: vec![],
        }))
    );
    assert_eq!(
        c.stop_signal,
        Some(crate::model::Signal::parse("USR1").unwrap())
    );
    let m = ok(&pod_with(
        "    lifecycle: {preStop: {sleep: {seconds: 5}}}\n",
        "",
    ));
    assert_eq!(
        m.pod.spec.containers[0].hooks.pre_stop,
        Some(Hook::Sleep { seconds: 5 })
    );
}

#[test]
fn a_stop_signal_needs_spec_os_name_and_a_linux_signal_name() {
    one_error(
        &pod_with("    lifecycle: {stopSignal: SIGUSR1}\n", ""),
        "spec.containers[0].lifecycle.stopSignal: Forbidden: may not be set for containers with empty `spec.os.name`",
    );
    one_error(
        &pod_with(
            "    lifecycle: {stopSignal: USR1}\n",
            "  os: {name: linux}\n",
        ),
        "spec.containers[0].lifecycle.stopSignal: Invalid value: \"USR1\": must be the name of a Linux signal, such as \"SIGTERM\" or \"SIGRTMIN+3\"",
    );
    one_error(
        &pod_with("", "  os: {name: windows}\n"),
        "spec.os.name: not supported: podshim runs Linux containers",
    );
}

#[test]
fn a_sleep_hook_may_not_outlast_the_grace_period_and_tcp_socket_hooks_are_refused() {
    one_error(
        &pod_with(
            "    lifecycle: {preStop: {sleep: {seconds: 45}}}\n",
            "  terminationGracePeriodSeconds: 40\n",
        ),
        "spec.containers[0].lifecycle.preStop.sleep: Invalid value: 45: must be non-negative and less than terminationGracePeriodSeconds (40)",
    );
    one_error(
        &pod_with("    lifecycle: {postStart: {tcpSocket: {port: 80}}}\n", ""),
        "spec.containers[0].lifecycle.postStart.tcpSocket: not supported: tcpSocket is not a lifecycle handler (the kubelet fails it at run time)",
    );
    one_error(
        &pod_with("    lifecycle: {postStart: {}}\n", ""),
        "spec.containers[0].lifecycle.postStart: Required value: must specify a handler type",
    );
}

#[test]
fn lifecycle_on_a_plain_init_container_is_forbidden() {
    one_error(
        &pod_with(
            "",
            "  initContainers:\n  - name: init\n    image: busybox\n    lifecycle: {preStop: {sleep: {seconds: 1}}}\n",
        ),
        "spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always",
    );
}

#[test]
fn active_deadline_seconds_is_positive() {
    let m = ok(&pod_with("", "  activeDeadlineSeconds: 60\n"));
    assert_eq!(m.pod.spec.active_deadline_seconds, Some(60));
    one_error(
        &pod_with("", "  activeDeadlineSeconds: 0\n"),
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
    );
}

// --- fsGroup and supplementalGroupsPolicy -------------------------------------------

#[test]
fn fs_group_and_group_policies_are_parsed_and_defaulted() {
    let m = ok(&pod_with(
        "",
        "  securityContext:\n    fsGroup: 2000\n    fsGroupChangePolicy: OnRootMismatch\n    supplementalGroupsPolicy: Strict\n",
    ));
    let spec = &m.pod.spec;
    assert_eq!(spec.fs_group.map(|g| g.get()), Some(2000));
    assert_eq!(
        spec.fs_group_change_policy,
        crate::model::FsGroupChangePolicy::OnRootMismatch
    );
    assert_eq!(
        spec.supplemental_groups_policy,
        crate::model::SupplementalGroupsPolicy::Strict
    );
    let m = ok(&pod_with("", ""));
    assert_eq!(m.pod.spec.fs_group, None);
    assert_eq!(
        m.pod.spec.fs_group_change_policy,
        crate::model::FsGroupChangePolicy::Always
    );
    assert_eq!(
        m.pod.spec.supplemental_groups_policy,
        crate::model::SupplementalGroupsPolicy::Merge
    );
}

#[test]
fn bad_fs_group_and_group_policies_are_refused_as_kubernetes_does() {
    assert_eq!(
        errors(&pod_with(
            "",
            "  securityContext:\n    fsGroup: -1\n    fsGroupChangePolicy: Sometimes\n    supplementalGroupsPolicy: merge\n",
        )),
        vec![
            "spec.securityContext.supplementalGroupsPolicy: Unsupported value: \"merge\": supported values: \"Merge\", \"Strict\"",
            "spec.securityContext.fsGroup: Invalid value: -1: must be between 0 and 2147483647, inclusive",
            "spec.securityContext.fsGroupChangePolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnRootMismatch\"",
        ]
    );
}

// --- seLinuxOptions and windowsOptions ----------------------------------------------

#[test]
fn se_linux_and_windows_options_are_warned_about_as_ignored_on_this_node() {
    let m = ok(&pod_with(
        "    securityContext:\n      seLinuxOptions: {type: spc_t}\n      windowsOptions: {runAsUserName: ContainerUser}\n",
        "  securityContext:\n    seLinuxOptions: {level: 's0:c1,c2'}\n    seLinuxChangePolicy: MountOption\n    windowsOptions: {gmsaCredentialSpecName: gmsa-webapp-1}\n",
    ));
    assert_eq!(
        m.warnings,
        [
            "spec.securityContext.seLinuxOptions: ignored: podshim sets no SELinux labels (as containerd with enable_selinux off); a host with SELinux enabled refuses the pod",
            "spec.securityContext.seLinuxChangePolicy: ignored: podshim relabels no volumes (it sets no SELinux labels)",
            "spec.securityContext.windowsOptions: ignored: Windows-only options (a Linux node ignores them, as the kubelet does)",
            "spec.containers[0].securityContext.seLinuxOptions: ignored: podshim sets no SELinux labels (as containerd with enable_selinux off); a host with SELinux enabled refuses the pod",
            "spec.containers[0].securityContext.windowsOptions: ignored: Windows-only options (a Linux node ignores them, as the kubelet does)",
        ]
    );
    let web = &m.pod.spec.containers[0];
    assert_eq!(
        web.security.selinux_field.as_deref(),
        Some("spec.containers[0].securityContext.seLinuxOptions")
    );
    // Empty options ask for nothing.
    let m = ok(&pod_with(
        "",
        "  securityContext:\n    seLinuxOptions: {}\n",
    ));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn bad_windows_options_and_host_process_are_refused_as_kubernetes_does() {
    assert_eq!(
        errors(&pod_with(
            "    securityContext:\n      windowsOptions: {hostProcess: true}\n",
            "  securityContext:\n    seLinuxChangePolicy: Sometimes\n    windowsOptions: {gmsaCredentialSpecName: Not_A_Name, runAsUserName: ''}\n",
        )),
        vec![
            "spec.securityContext.seLinuxChangePolicy: Unsupported value: \"Sometimes\": supported values: \"MountOption\", \"Recursive\"",
            "spec.securityContext.windowsOptions.gmsaCredentialSpecName: Invalid value: \"Not_A_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            "spec.securityContext.windowsOptions.runAsUserName: Invalid value: \"\": runAsUserName cannot be an empty string",
            "spec.containers[0].securityContext.windowsOptions.hostProcess: not supported: Windows HostProcess containers run only on a Windows node",
        ]
    );
    // validateLinux: a Linux pod may not have them at all.
    one_error(
        &pod_with(
            "",
            "  os: {name: linux}\n  securityContext:\n    windowsOptions: {runAsUserName: ContainerUser}\n",
        ),
        "spec.securityContext.windowsOptions: Forbidden: windows options cannot be set for a linux pod",
    );
}

// --- recursiveReadOnly ----------------------------------------------------------------

#[test]
fn recursive_read_only_is_validated_as_kubernetes_does() {
    let with = |mount: &str| {
        pod_with(
            &format!("    volumeMounts:\n    - {{name: h, mountPath: /m, {mount}}}\n"),
            "  volumes:\n  - {name: h, hostPath: {path: /mnt}}\n",
        )
    };
    let m = ok(&with("readOnly: true, recursiveReadOnly: Enabled"));
    assert_eq!(
        m.pod.spec.containers[0].mounts[0].recursive_read_only,
        crate::model::RecursiveReadOnly::Enabled
    );
    ok(&with(
        "readOnly: true, mountPropagation: None, recursiveReadOnly: IfPossible",
    ));
    ok(&with("recursiveReadOnly: Disabled"));
    one_error(
        &with("recursiveReadOnly: IfPossible"),
        "spec.containers[0].volumeMounts[0].recursiveReadOnly: Forbidden: may only be specified when readOnly is true",
    );
    one_error(
        &with("readOnly: true, mountPropagation: HostToContainer, recursiveReadOnly: Enabled"),
        "spec.containers[0].volumeMounts[0].recursiveReadOnly: Forbidden: may only be specified when mountPropagation is None or not specified",
    );
    one_error(
        &with("readOnly: true, recursiveReadOnly: Always"),
        "spec.containers[0].volumeMounts[0].recursiveReadOnly: Unsupported value: \"Always\": supported values: \"Disabled\", \"Enabled\", \"IfPossible\"",
    );
}

// --- hostnameOverride -----------------------------------------------------------------

#[test]
fn hostname_override_is_validated_as_kep_4762_does() {
    let m = ok(&pod_with("", "  hostnameOverride: db.example.internal\n"));
    assert_eq!(
        m.pod.spec.hostname_override.as_ref().map(|h| h.as_str()),
        Some("db.example.internal")
    );
    assert_eq!(
        errors(&pod_with(
            "",
            "  hostnameOverride: Bad_Name\n  setHostnameAsFQDN: true\n  hostNetwork: true\n",
        )),
        vec![
            "spec.hostnameOverride: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            "spec.hostnameOverride: Forbidden: may not be set when setHostnameAsFQDN is true",
            "spec.hostnameOverride: Forbidden: may not be set when hostNetwork is true",
        ]
    );
    let long = format!("{}.example", "a".repeat(60));
    assert_eq!(
        errors(&pod_with("", &format!("  hostnameOverride: {long}\n"))),
        vec![format!(
            "spec.hostnameOverride: Invalid value: \"{long}\": must be no more than 64 characters"
        )]
    );
}

// --- extended resources ---------------------------------------------------------------

#[test]
fn extended_resources_are_accepted_as_cluster_only_and_validated() {
    // The docs' "Assign Extended Resources to a Container" example.
    let m = ok(&pod_with(
        "    resources:\n      requests:\n        example.com/dongle: 3\n      limits:\n        example.com/dongle: 3\n        nvidia.com/gpu: 1\n",
        "",
    ));
    assert_eq!(
        m.warnings,
        [
            "spec.containers[0].resources.requests.example.com/dongle: scheduled by a cluster: podshim gives devices only where a CDI spec names the resource (--cdi-spec-dir)",
            "spec.containers[0].resources.limits.example.com/dongle: scheduled by a cluster: podshim gives devices only where a CDI spec names the resource (--cdi-spec-dir)",
            "spec.containers[0].resources.limits.nvidia.com/gpu: scheduled by a cluster: podshim gives devices only where a CDI spec names the resource (--cdi-spec-dir)",
        ]
    );
    assert_eq!(
        errors(&pod_with(
            "    resources:\n      requests:\n        example.com/dongle: 2\n        example.com/foo: 1\n      limits:\n        example.com/dongle: 3\n        nvidia.com/gpu: 500m\n",
            "",
        )),
        vec![
            "spec.containers[0].resources.limits.nvidia.com/gpu: Invalid value: \"500m\": must be an integer",
            "spec.containers[0].resources.requests.example.com/dongle: Invalid value: \"2\": must be equal to example.com/dongle limit of 3",
            "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
        ]
    );
    // kubernetes.io names are not extended resources: refused by name.
    one_error(
        &pod_with(
            "    resources:\n      limits:\n        kubernetes.io/thing: 1\n",
            "",
        ),
        "not supported: spec.containers[0].resources.limits.kubernetes.io/thing",
    );
}

// --- pod-level resources ---------------------------------------------------------------

#[test]
fn pod_level_resources_are_validated_and_defaulted_as_the_api_server_does() {
    use crate::model::Quantity;
    let q = |s: &str| Some(Quantity::parse(s).unwrap());
    // defaultPodRequests: the containers' total where they request, else the limit.
    let m = ok(&pod_with(
        "    resources: {requests: {cpu: 250m}}\n",
        "  resources:\n    limits: {cpu: '1', memory: 1Gi}\n",
    ));
    let r = m.pod.spec.resources.unwrap();
    assert_eq!(r.cpu_request.unwrap().millis(), Some(250));
    assert_eq!(r.memory_request, q("1Gi"));
    assert_eq!((r.cpu_limit, r.memory_limit), (q("1"), q("1Gi")));
    // Requests alone are kept as written.
    let m = ok(&pod_with(
        "",
        "  resources:\n    requests: {memory: 64Mi}\n",
    ));
    let r = m.pod.spec.resources.unwrap();
    assert_eq!(
        (r.memory_request, r.memory_limit, r.cpu_request),
        (q("64Mi"), None, None)
    );
    // No pod-level resources at all: none, as `IsPodLevelResourcesSet` says.
    assert_eq!(ok(MINIMAL).pod.spec.resources, None);
    assert_eq!(
        errors(&pod_with(
            "    resources: {requests: {cpu: 600m}, limits: {cpu: '2', memory: 2Gi}}\n",
            "  resources:\n    requests: {cpu: 500m, memory: 2Gi}\n    limits: {cpu: '1', memory: 1Gi}\n",
        )),
        vec![
            "spec.resources.requests.memory: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi",
            "spec.resources.requests.cpu: Invalid value: \"500m\": must be greater than or equal to aggregate container requests of 600m",
            "spec.containers[0].resources.limits.cpu: Invalid value: \"2\": must be less than or equal to pod limits of 1",
            "spec.containers[0].resources.limits.memory: Invalid value: \"2Gi\": must be less than or equal to pod limits of 1Gi",
        ]
    );
    // Only CPU and memory are pod-level resources here; the rest by name.
    one_error(
        &pod_with("", "  resources:\n    limits: {hugepages-2Mi: 2Mi}\n"),
        "not supported: spec.resources.limits.hugepages-2Mi",
    );
    one_error(
        &pod_with("", "  resources:\n    limits: {cpu: lots}\n"),
        "spec.resources.limits.cpu: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    );
}

#[test]
fn pod_level_resources_decide_the_qos_class() {
    use crate::translate::qos::{QosClass, pod_qos};
    let qos = |spec: &str, container: &str| pod_qos(&ok(&pod_with(container, spec)).pod.spec);
    // Limits alone: requests default to them, Guaranteed whatever the containers say.
    assert_eq!(
        qos("  resources:\n    limits: {cpu: '1', memory: 1Gi}\n", ""),
        QosClass::Guaranteed
    );
    assert_eq!(
        qos(
            "  resources:\n    requests: {cpu: '2'}\n",
            "    resources: {limits: {cpu: 1, memory: 1Gi}}\n"
        ),
        QosClass::Burstable
    );
    assert_eq!(
        qos("  resources:\n    limits: {cpu: '1'}\n", ""),
        QosClass::Burstable
    );
}

#[test]
fn resize_policy_is_validated_as_the_api_server_does() {
    use crate::model::{ResizePolicy, ResizeRestart};
    let m = ok(&pod_with(
        "    resizePolicy: [{resourceName: memory, restartPolicy: RestartContainer}]\n",
        "",
    ));
    assert_eq!(
        m.pod.spec.containers[0].resize_policy,
        ResizePolicy {
            cpu: ResizeRestart::NotRequired,
            memory: ResizeRestart::RestartContainer
        }
    );
    assert_eq!(
        errors(&pod_with(
            "    resizePolicy:\n    - {resourceName: cpu, restartPolicy: RestartContainer}\n    - {resourceName: cpu, restartPolicy: NotRequired}\n    - {resourceName: gpu, restartPolicy: Sometimes}\n",
            "  restartPolicy: Never\n",
        )),
        vec![
            "spec.containers[0].resizePolicy[0].restartPolicy: Invalid value: \"RestartContainer\": must be 'NotRequired' when `restartPolicy` is 'Never'",
            "spec.containers[0].resizePolicy[1].resourceName: Duplicate value: \"cpu\"",
            "spec.containers[0].resizePolicy[2].restartPolicy: Unsupported value: \"Sometimes\": supported values: \"NotRequired\", \"RestartContainer\"",
            "spec.containers[0].resizePolicy[2].resourceName: Unsupported value: \"gpu\": supported values: \"cpu\", \"memory\"",
        ]
    );
    one_error(
        &format!(
            "{MINIMAL}  initContainers:\n  - name: init\n    image: nginx\n    resizePolicy: [{{resourceName: cpu, restartPolicy: NotRequired}}]\n"
        ),
        "spec.initContainers[0].resizePolicy: Forbidden: only allowed for containers and restartable init containers",
    );
}

// --- fileKeyRef -------------------------------------------------------------------------

#[test]
fn file_key_ref_is_validated_as_kubernetes_does() {
    let with = |from: &str| {
        pod_with(
            &format!("    env: [{{name: V, valueFrom: {{fileKeyRef: {from}}}}}]\n"),
            "  volumes: [{name: data, emptyDir: {}}]\n",
        )
    };
    let m = ok(&with(
        "{volumeName: data, path: sub/config.env, key: CONFIG_VAR}",
    ));
    assert!(matches!(
        &m.pod.spec.containers[0].env[0].value,
        crate::model::EnvValue::File(f) if f.key == "CONFIG_VAR" && f.path.as_str() == "sub/config.env" && !f.optional
    ));
    // The API server allows an emptyDir only; a key may hold spaces.
    let m = ok(&with("{volumeName: data, path: e.env, key: 'A B'}"));
    assert_eq!(m.pod.spec.containers[0].env.len(), 1);
    one_error(
        &pod_with(
            "    env: [{name: V, valueFrom: {fileKeyRef: {volumeName: host, path: e.env, key: K}}}]\n",
            "  volumes: [{name: host, hostPath: {path: /etc}}]\n",
        ),
        "spec.containers[0].env[0].valueFrom.fileKeyRef.volumeName: Invalid value: \"host\": must reference an emptyDir volume",
    );
    assert_eq!(
        errors(&with("{volumeName: nope, path: ../x, key: 'A=B'}")),
        vec![
            "spec.containers[0].env[0].valueFrom.fileKeyRef.volumeName: Not found: \"nope\"",
            "spec.containers[0].env[0].valueFrom.fileKeyRef.path: Invalid value: \"../x\": must not contain '..'",
            "spec.containers[0].env[0].valueFrom.fileKeyRef.key: Invalid value: \"A=B\": must consist of printable ASCII characters except '='",
        ]
    );
}

// --- hostUsers and procMount ------------------------------------------------------------

/// validateHostUsers: a pod in a user namespace of its own uses none of the
/// host's other namespaces; ValidateProcMountType and `Unmasked` only with
/// `hostUsers: false` (KEP-4265).
#[test]
fn host_users_and_proc_mount_are_validated_as_kubernetes_does() {
    let m = ok(&pod_with(
        "    securityContext: {procMount: Unmasked}\n",
        "  hostUsers: false\n",
    ));
    assert!(!m.pod.spec.host_users);
    assert!(m.pod.spec.containers[0].security.proc_mount_unmasked);
    let m = ok(&pod_with("    securityContext: {procMount: Default}\n", ""));
    assert!(m.pod.spec.host_users);
    assert!(!m.pod.spec.containers[0].security.proc_mount_unmasked);
    assert_eq!(
        errors(&pod_with(
            "",
            "  hostUsers: false\n  hostNetwork: true\n  hostPID: true\n  hostIPC: true\n"
        )),
        [
            "spec.hostNetwork: Forbidden: when `pod.Spec.HostUsers` is false",
            "spec.HostPID: Forbidden: when `pod.Spec.HostUsers` is false",
            "spec.HostIPC: Forbidden: when `pod.Spec.HostUsers` is false",
        ]
    );
    one_error(
        &pod_with("    securityContext: {procMount: Unmasked}\n", ""),
        "spec.containers[0].securityContext.procMount: Invalid value: \"Unmasked\": `hostUsers` must be false to use `Unmasked`",
    );
    one_error(
        &pod_with(
            "    securityContext: {procMount: Unmasked}\n",
            "  hostUsers: true\n",
        ),
        "spec.containers[0].securityContext.procMount: Invalid value: \"Unmasked\": `hostUsers` must be false to use `Unmasked`",
    );
    one_error(
        &pod_with(
            "    securityContext: {procMount: Open}\n",
            "  hostUsers: false\n",
        ),
        "spec.containers[0].securityContext.procMount: Unsupported value: \"Open\": supported values: \"Default\", \"Unmasked\"",
    );
}

// --- workloads -------------------------------------------------------------------------

fn set(text: &str) -> ManifestSet {
    parse_set(text, "t", ParseOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn set_errors(text: &str) -> Vec<String> {
    match parse_set(text, "t", ParseOptions::default()) {
        Ok(_) => vec![],
        Err(ManifestError::Invalid { errors, .. }) => {
            errors.iter().map(|e| e.to_string()).collect()
        }
        Err(e) => vec![e.to_string()],
    }
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n";

#[test]
fn a_deployment_makes_its_replicas_named_and_labelled_as_the_controller_does() {
    let s = set(DEPLOYMENT);
    assert_eq!(s.workloads.len(), 1);
    let w = &s.workloads[0];
    assert_eq!(w.display(), "deployment/web");
    assert_eq!(s.pods.len(), 3);
    let hash = &w.template_hash;
    for p in &s.pods {
        let name = p.name();
        let suffix = name
            .strip_prefix(&format!("web-{hash}-"))
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(suffix.len(), 5);
        assert_eq!(p.labels["app"], "web");
        assert_eq!(&p.labels["pod-template-hash"], hash);
        assert_eq!(p.owner_references.len(), 1);
        let o = &p.owner_references[0];
        // Owned by the Deployment's ReplicaSet, wanted by the Deployment.
        let rs = format!("web-{hash}");
        assert_eq!(
            (o.api_version.as_str(), o.kind.as_str(), o.name.as_str()),
            ("apps/v1", "ReplicaSet", rs.as_str())
        );
        assert!(o.controller && o.block_owner_deletion);
        assert_ne!(&o.uid, &w.uid);
        assert_eq!(&p.workload.as_ref().unwrap().uid, &w.uid);
        assert_eq!(p.workload.as_ref().unwrap().kind, "Deployment");
        assert_eq!(&p.template_hash, hash);
    }
    let mut names: Vec<&str> = s.pods.iter().map(|p| p.name()).collect();
    names.dedup();
    assert_eq!(names.len(), 3);
    // The same input names the same pods; a changed template, other pods.
    let again = set(DEPLOYMENT);
    assert_eq!(again.pods[0].key, s.pods[0].key);
    let changed = set(&DEPLOYMENT.replace("image: nginx", "image: nginx:2"));
    assert_ne!(changed.workloads[0].template_hash, *hash);
    assert_ne!(changed.pods[0].key, s.pods[0].key);
}

#[test]
fn a_statefulset_names_pods_by_ordinal_with_hostname_subdomain_and_claims() {
    let text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n  namespace: prod\nspec:\n  replicas: 2\n  serviceName: db\n  selector:\n    matchLabels: {app: db}\n  template:\n    metadata:\n      labels: {app: db}\n    spec:\n      containers:\n      - name: db\n        image: busybox\n        volumeMounts:\n        - {name: data, mountPath: /data}\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources: {requests: {storage: 1Gi}}\n";
    let s = set(text);
    let names: Vec<String> = s.pods.iter().map(|p| p.key.to_string()).collect();
    assert_eq!(names, ["prod/db-0", "prod/db-1"]);
    let p = &s.pods[1];
    assert_eq!(p.spec.hostname.as_ref().unwrap().as_str(), "db-1");
    assert_eq!(p.spec.subdomain.as_ref().unwrap().as_str(), "db");
    assert_eq!(p.labels["statefulset.kubernetes.io/pod-name"], "db-1");
    assert_eq!(p.labels["apps.kubernetes.io/pod-index"], "1");
    assert!(p.labels["controller-revision-hash"].starts_with("db-"));
    let claims: Vec<String> = s
        .claims
        .iter()
        .map(|c| format!("{}/{}", c.namespace, c.name))
        .collect();
    assert_eq!(claims, ["prod/data-db-0", "prod/data-db-1"]);
    assert!(matches!(
        &p.spec.volumes[0].source,
        model::VolumeSource::PersistentVolumeClaim { claim, .. } if claim.as_str() == "data-db-1"
    ));
    assert!(s.workloads[0].ordered);
}

#[test]
fn a_job_makes_no_pods_up_front_and_its_template_instantiates_with_job_labels() {
    let text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  completions: 3\n  parallelism: 2\n  backoffLimit: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: m\n        image: busybox\n";
    let s = set(text);
    assert!(s.pods.is_empty());
    let w = &s.workloads[0];
    let job = w.job.as_ref().unwrap();
    assert_eq!(
        (job.completions, job.parallelism, job.backoff_limit),
        (Some(3), 2, 1)
    );
    let pod = s.templates[&w.uid].instantiate("migrate-abcde").unwrap();
    assert_eq!(pod.labels["job-name"], "migrate");
    assert_eq!(pod.labels["batch.kubernetes.io/controller-uid"], w.uid);
    assert_eq!(pod.owner_references[0].api_version, "batch/v1");
}

#[test]
fn controller_rules_are_checked_with_their_paths() {
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  template:\n    spec:\n      containers:\n      - name: m\n        image: busybox\n";
    assert_eq!(
        set_errors(job),
        [
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        ]
    );
    let bad = DEPLOYMENT
        .replace("labels: {app: web}", "labels: {app: other}")
        .replace("image: nginx", "imagee: nginx");
    assert_eq!(
        set_errors(&bad),
        [
            "spec.template.metadata.labels: Invalid value: {\"app\": \"other\"}: `selector` does not match template `labels`",
            "spec.template.spec.containers[0].imagee: unknown field",
            "spec.template.spec.containers[0].image: Required value",
        ]
    );
    let never = DEPLOYMENT.replace(
        "    spec:\n      containers",
        "    spec:\n      restartPolicy: Never\n      containers",
    );
    assert_eq!(
        set_errors(&never),
        [
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
        ]
    );
    let zero = DEPLOYMENT.replace(
        "  replicas: 3\n",
        "  replicas: 3\n  strategy:\n    rollingUpdate: {maxSurge: 0, maxUnavailable: 0}\n  paused: true\n",
    );
    assert_eq!(
        set_errors(&zero),
        [
            "not supported: spec.paused",
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
        ]
    );
}

#[test]
fn list_items_are_read_with_their_index_in_paths() {
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n- {{apiVersion: v1, kind: Pod, metadata: {{name: b}}, spec: {{containers: [{{name: c, imagee: x}}]}}}}\n",
        serde_json::to_string(&serde_json::json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"x"}]}})).unwrap()
    );
    assert_eq!(
        set_errors(&text),
        [
            "document 1: items[1].spec.containers[0].imagee: unknown field",
            "document 1: items[1].spec.containers[0].image: Required value",
        ]
    );
}

#[test]
fn kinds_one_node_cannot_serve_are_skipped_only_when_asked() {
    let text = format!("{MINIMAL}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n");
    assert_eq!(set_errors(&text).len(), 1);
    let s = parse_set(
        &text,
        "t",
        ParseOptions {
            skip_unsupported_kinds: true,
        },
    )
    .unwrap();
    assert_eq!(s.pods.len(), 1);
    assert_eq!(
        s.warnings,
        [
            "document 2: Service web: skipped: not served on one node (no kube-proxy: reach pods by their IPs or hostPorts)"
        ]
    );
}

#[test]
fn claims_are_validated_as_kubernetes_does() {
    let claim = |spec: &str| {
        format!(
            "{MINIMAL}---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n{spec}"
        )
    };
    let s = set(&claim(
        "  accessModes: [ReadWriteOncePod]\n  resources: {requests: {storage: 1Gi}}\n",
    ));
    assert_eq!(
        s.claims[0].access_modes,
        [model::workload::AccessMode::ReadWriteOncePod]
    );
    assert_eq!(s.claims[0].storage.as_deref(), Some("1Gi"));
    assert_eq!(
        set_errors(&claim(
            "  accessModes: [ReadWriteAll]\n  volumeMode: Block\n"
        )),
        [
            "document 2: spec.accessModes: Unsupported value: \"ReadWriteAll\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
            "document 2: spec.resources[storage]: Required value",
            "document 2: spec.volumeMode: not supported: a local volume is a directory (Filesystem)",
        ]
    );
    assert_eq!(
        set_errors(&claim(
            "  accessModes: [ReadWriteOnce, ReadWriteOncePod]\n  resources: {requests: {storage: \"0\"}}\n"
        )),
        [
            "document 2: spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
            "document 2: spec.resources[storage]: Invalid value: 0: must be greater than zero",
        ]
    );
}

#[test]
fn a_controller_pod_that_collides_with_a_bare_pod_is_refused() {
    let text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n---\n".to_string()
        + &MINIMAL.replace("name: web\nspec", "name: web-0\nspec");
    assert_eq!(
        set_errors(&text),
        ["document 2: metadata.name: Duplicate value: pod default/web-0 (also made by document 1)"]
    );
}

#[test]
fn an_input_asking_for_too_many_pods_is_refused_before_any_is_made() {
    let huge = DEPLOYMENT.replace("replicas: 3", "replicas: 2147483647");
    let errs = set_errors(&huge);
    assert!(
        errs.contains(&"spec.replicas: Invalid value: 2147483647: must be no more than 500 (the pods one input may run on one node)".to_string()),
        "{errs:?}"
    );
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  parallelism: 100000\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: busybox}]\n";
    assert!(
        set_errors(job)
            .iter()
            .any(|e| e.starts_with("spec.parallelism: Invalid value: 100000"))
    );
}

#[test]
fn workloads_with_one_uid_or_one_name_are_refused() {
    let with_uid = DEPLOYMENT.replace(
        "  name: web\n",
        "  name: web\n  uid: 11111111-2222-4333-8444-555555555555\n",
    );
    let other = with_uid.replace("  name: web\n  uid:", "  name: other\n  uid:");
    let text = format!("{with_uid}---\n{other}");
    assert_eq!(
        set_errors(&text),
        [
            "document 2: metadata.uid: Duplicate value: \"11111111-2222-4333-8444-555555555555\" (also document 1's)"
        ]
    );
    let twice = format!("{DEPLOYMENT}---\n{DEPLOYMENT}");
    assert_eq!(
        set_errors(&twice),
        [
            "document 2: metadata.uid: Duplicate value: \"".to_string()
                + &set(DEPLOYMENT).workloads[0].uid
                + "\" (also document 1's)",
            "document 2: metadata.name: Duplicate value: \"web\" (a Deployment of document 1)"
                .to_string(),
        ]
    );
}

#[test]
fn rolling_update_bounds_and_job_defaults_follow_kubernetes() {
    // maxSurge may pass 100%; maxUnavailable may not.
    let surge = DEPLOYMENT.replace(
        "  replicas: 3\n",
        "  replicas: 3\n  strategy:\n    rollingUpdate: {maxSurge: 200%, maxUnavailable: 101%}\n",
    );
    assert_eq!(
        set_errors(&surge),
        [
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"101%\": must not be greater than 100%"
        ]
    );
    // A DaemonSet's rolling update sets one of the two.
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  updateStrategy:\n    rollingUpdate: {maxSurge: 1}\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: busybox}]\n";
    assert_eq!(
        set_errors(ds),
        [
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: non-zero: may not be set when maxUnavailable is non-zero"
        ]
    );
    assert!(
        set_errors(&ds.replace("{maxSurge: 1}", "{maxSurge: 1, maxUnavailable: 0}")).is_empty()
    );
    // minReadySeconds: kept for the rollout, and never below 0.
    let min = |n: &str| {
        DEPLOYMENT.replace(
            "  replicas: 3\n",
            &format!("  replicas: 3\n  minReadySeconds: {n}\n"),
        )
    };
    assert_eq!(set(&min("5")).workloads[0].min_ready_seconds, 5);
    assert_eq!(
        set_errors(&min("-1")),
        ["spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"]
    );
    // A Job with neither completions nor parallelism runs one pod to completion.
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  activeDeadlineSeconds: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: busybox}]\n";
    let s = set(job);
    let spec = s.workloads[0].job.as_ref().unwrap();
    assert_eq!(
        (
            spec.completions,
            spec.parallelism,
            spec.active_deadline_seconds
        ),
        (Some(1), 1, Some(0))
    );
    // A StatefulSet's claim retention: Retain unless Delete is asked; its
    // ordinals' claims are `<template>-<set>-<ordinal>`, no other name.
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete}\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: busybox}]\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n";
    let w = &set(sts).workloads[0];
    assert!(w.claim_retention.delete_when_scaled && !w.claim_retention.delete_when_deleted);
    assert_eq!(w.owns_claim("data-db-12"), Some(12));
    for other in [
        "data-db-",
        "data-db-x",
        "data-dbb-1",
        "dat-db-1",
        "data-db-1-2",
        "data-db-01",
    ] {
        assert_eq!(w.owns_claim(other), None, "{other}");
    }
    assert_eq!(
        set_errors(&sts.replace("whenScaled: Delete", "whenDeleted: Keep")),
        [
            "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Delete\", \"Retain\""
        ]
    );
    // Indexed: completions named (defaulted when parallelism is unset too),
    // at most 100000.
    let indexed = |extra: &str| {
        job.replace(
            "  activeDeadlineSeconds: 0\n",
            &format!("  completionMode: Indexed\n{extra}"),
        )
    };
    assert!(set(&indexed("")).workloads[0].job.as_ref().unwrap().indexed);
    assert_eq!(
        set_errors(&indexed("  parallelism: 2\n")),
        ["spec.completions: Required value: when completion mode is Indexed"]
    );
    assert_eq!(
        set_errors(&indexed("  completions: 100001\n")),
        [
            "spec.completions: Invalid value: 100001: must be less than or equal to 100000 when completion mode is Indexed"
        ]
    );
    // ValidateJob: the last index's hostname must be a label; each index's
    // pod has `<job>-<index>` as its hostname whatever the template says.
    let long = "j".repeat(61);
    assert_eq!(
        set_errors(&indexed("  completions: 20\n").replace("name: j}", &format!("name: {long}}}"))),
        [format!(
            "metadata.name: Invalid value: \"{long}\": will not able to create pod with invalid DNS label: {long}-19"
        )]
    );
    assert!(
        set_errors(&indexed("  completions: 10\n").replace("name: j}", &format!("name: {long}}}")))
            .is_empty()
    );
    let named = set(&indexed("  completions: 2\n").replace(
        "      restartPolicy",
        "      hostname: x\n      restartPolicy",
    ));
    let w = &named.workloads[0];
    let pod = named.templates[&w.uid]
        .instantiate_index("j-1-abcde", 1)
        .unwrap();
    assert_eq!(pod.spec.hostname.as_ref().map(|h| h.as_str()), Some("j-1"));
    // What `kubectl get -o yaml` writes is accepted (suspend false,
    // manualSelector false, partition 0, maxUnavailable 1); what podshim
    // cannot do is refused by name.
    let exported = job.replace(
        "  activeDeadlineSeconds: 0\n",
        "  suspend: false\n  manualSelector: false\n",
    );
    assert!(set_errors(&exported).is_empty());
    assert_eq!(
        set_errors(&exported.replace("suspend: false", "suspend: true")),
        [
            "spec.suspend: not supported: podshim runs a Job's pods once `up` reads it, and keeps no Job to resume later; set false or leave it out"
        ]
    );
    let rolling = |r: &str| {
        sts.replace(
            "  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete}\n",
            &format!("  updateStrategy: {{type: RollingUpdate, rollingUpdate: {{{r}}}}}\n"),
        )
    };
    assert!(set_errors(&rolling("partition: 0, maxUnavailable: 1")).is_empty());
    assert_eq!(
        set_errors(&rolling("partition: 2")),
        [
            "spec.updateStrategy.rollingUpdate.partition: not supported: ordinals below a partition would be remade from the old revision, which podshim does not keep; use 0, or OnDelete"
        ]
    );
    assert_eq!(
        set_errors(&rolling("maxUnavailable: 2")),
        [
            "spec.updateStrategy.rollingUpdate.maxUnavailable: not supported: ordinals are replaced one at a time (1)"
        ]
    );
    // ttlSecondsAfterFinished: unset, 0 (removed at once), or refused below 0.
    assert_eq!(spec.ttl_seconds_after_finished, None);
    let ttl = |v: &str| {
        job.replace(
            "  activeDeadlineSeconds: 0\n",
            &format!("  ttlSecondsAfterFinished: {v}\n"),
        )
    };
    assert_eq!(
        set(&ttl("0")).workloads[0]
            .job
            .as_ref()
            .unwrap()
            .ttl_seconds_after_finished,
        Some(0)
    );
    // An int32, as the API has it: no wait of more than 68 years.
    assert_eq!(set_errors(&ttl("2147483648")).len(), 1);
    assert_eq!(
        set_errors(&ttl("-1")),
        ["spec.ttlSecondsAfterFinished: Invalid value: -1: must be greater than or equal to 0"]
    );
    // A rule naming no container of the template is refused.
    let rule = job.replace(
        "  activeDeadlineSeconds: 0\n",
        "  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {containerName: mm, operator: In, values: [1]}\n",
    );
    assert_eq!(
        set_errors(&rule),
        [
            "spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: \"mm\": must be one of the container or initContainer names in the pod template"
        ]
    );
}

#[test]
fn a_config_map_over_one_mebibyte_is_refused() {
    let big = "x".repeat((1 << 20) + 1);
    let text = format!(
        "{MINIMAL}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  k: {big}\n"
    );
    assert_eq!(
        set_errors(&text),
        ["document 2: Too long: must have at most 1048576 bytes"]
    );
}
