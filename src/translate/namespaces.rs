//! Namespaces: the infra container creates the pod's; every other container joins
//! them by path, except where the pod uses the host's.

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType};

use crate::model::PodSpec;

/// What a joining container's config.json names until the infra runs:
/// `/proc/INFRA_PID/ns/<ns>`. The supervisor (and `run.sh`) write the infra's pid
/// in once it is known, so that a running pod's bundles name the real
/// `/proc/<infra-pid>/ns/*` (never a link that could be repointed).
pub const INFRA_PID_PLACEHOLDER: &str = "INFRA_PID";

/// `/proc/<pid>/ns`.
pub fn ns_dir(pid: &str) -> String {
    format!("/proc/{pid}/ns")
}

pub fn namespace(typ: LinuxNamespaceType, path: Option<String>) -> LinuxNamespace {
    let b = LinuxNamespaceBuilder::default().typ(typ);
    match path {
        Some(p) => b.path(p),
        None => b,
    }
    .build()
    .expect("a namespace with a type is valid")
}

/// The infra container's namespaces: a mount namespace of its own, and new PID, IPC,
/// network and UTS namespaces unless the pod uses the host's. With a pod network
/// the network namespace is the one `up` made and attached first, joined by its
/// pinned path (containerd's CRI does the same).
pub fn infra(spec: &PodSpec, netns: Option<&str>) -> Vec<LinuxNamespace> {
    let mut ns = vec![namespace(LinuxNamespaceType::Mount, None)];
    if !spec.host_pid {
        ns.push(namespace(LinuxNamespaceType::Pid, None));
    }
    if !spec.host_ipc {
        ns.push(namespace(LinuxNamespaceType::Ipc, None));
    }
    if !spec.host_network {
        ns.push(namespace(
            LinuxNamespaceType::Network,
            netns.map(str::to_string),
        ));
        ns.push(namespace(LinuxNamespaceType::Uts, None));
    }
    ns
}

/// A container's namespaces, and the names (`pid`, `ipc`, `net`, `uts`) of those it
/// joins from the infra through `/proc/INFRA_PID/ns/<name>`. Its PID namespace is
/// the infra's only with `shareProcessNamespace`.
pub fn container(spec: &PodSpec) -> (Vec<LinuxNamespace>, Vec<String>) {
    let ns_dir = ns_dir(INFRA_PID_PLACEHOLDER);
    let mut ns = vec![namespace(LinuxNamespaceType::Mount, None)];
    let mut joins = Vec::new();
    let mut join = |typ: LinuxNamespaceType, file: &str| {
        joins.push(file.to_string());
        namespace(typ, Some(format!("{ns_dir}/{file}")))
    };
    if !spec.host_pid {
        if spec.share_process_namespace {
            ns.push(join(LinuxNamespaceType::Pid, "pid"));
        } else {
            ns.push(namespace(LinuxNamespaceType::Pid, None));
        }
    }
    if !spec.host_ipc {
        ns.push(join(LinuxNamespaceType::Ipc, "ipc"));
    }
    if !spec.host_network {
        ns.push(join(LinuxNamespaceType::Network, "net"));
        ns.push(join(LinuxNamespaceType::Uts, "uts"));
    }
    (ns, joins)
}

/// Marks a config.json (as JSON) as run for the pod whose state is in `pod_dir`
/// ([`super::annotations::POD_DIR`]).
pub fn claim(config: &mut serde_json::Value, pod_dir: &str) {
    if let Some(obj) = config.as_object_mut() {
        let annotations = obj
            .entry("annotations")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(
                super::annotations::POD_DIR.to_string(),
                serde_json::Value::String(pod_dir.to_string()),
            );
        }
    }
}

/// Points every namespace a config.json (as JSON) joins at the running infra's:
/// `/proc/<pid>/ns/*`. Works on the JSON itself, so that the supervisor needs no
/// runtime-spec parser to write a pid.
pub fn join_infra(config: &mut serde_json::Value, infra_pid: i32) {
    let dir = ns_dir(&infra_pid.to_string());
    let Some(namespaces) = config
        .pointer_mut("/linux/namespaces")
        .and_then(|n| n.as_array_mut())
    else {
        return;
    };
    for ns in namespaces {
        let file = match ns.get("type").and_then(|t| t.as_str()) {
            Some("pid") => "pid",
            Some("ipc") => "ipc",
            Some("network") => "net",
            Some("uts") => "uts",
            _ => continue,
        };
        if let Some(path) = ns.get_mut("path") {
            *path = serde_json::Value::String(format!("{dir}/{file}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::test_support::namespaces;
    use oci_spec::runtime::{LinuxBuilder, Spec, SpecBuilder};

    #[test]
    fn joined_namespaces_get_the_infra_pid_and_own_ones_stay_unset() {
        let pod = crate::manifest::parse(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  shareProcessNamespace: true\n  containers: [{name: c, image: x}]\n",
            "t",
        )
        .unwrap()
        .pod;
        let (ns, joins) = container(&pod.spec);
        assert_eq!(joins, ["pid", "ipc", "net", "uts"]);
        let spec = SpecBuilder::default()
            .linux(LinuxBuilder::default().namespaces(ns).build().unwrap())
            .build()
            .unwrap();
        assert_eq!(
            namespaces(&spec)[2],
            (
                LinuxNamespaceType::Ipc,
                Some("/proc/INFRA_PID/ns/ipc".into())
            )
        );
        let mut json = serde_json::to_value(&spec).unwrap();
        join_infra(&mut json, 4242);
        let spec: Spec = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(
            namespaces(&spec),
            [
                (LinuxNamespaceType::Mount, None),
                (LinuxNamespaceType::Pid, Some("/proc/4242/ns/pid".into())),
                (LinuxNamespaceType::Ipc, Some("/proc/4242/ns/ipc".into())),
                (
                    LinuxNamespaceType::Network,
                    Some("/proc/4242/ns/net".into())
                ),
                (LinuxNamespaceType::Uts, Some("/proc/4242/ns/uts".into())),
            ]
        );
        // Writing the pid again changes nothing; own namespaces keep no path.
        let once = json.clone();
        join_infra(&mut json, 4242);
        assert_eq!(json, once);
        claim(&mut json, "/run/podshim/pods/default_p");
        assert_eq!(
            json["annotations"][crate::translate::annotations::POD_DIR],
            "/run/podshim/pods/default_p"
        );
    }
}
