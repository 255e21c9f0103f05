//! Namespaces: the infra container creates the pod's; every other container joins
//! them by path, except where the pod uses the host's.

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType};

use crate::model::PodSpec;

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
/// network and UTS namespaces unless the pod uses the host's.
pub fn infra(spec: &PodSpec) -> Vec<LinuxNamespace> {
    let mut ns = vec![namespace(LinuxNamespaceType::Mount, None)];
    if !spec.host_pid {
        ns.push(namespace(LinuxNamespaceType::Pid, None));
    }
    if !spec.host_ipc {
        ns.push(namespace(LinuxNamespaceType::Ipc, None));
    }
    if !spec.host_network {
        ns.push(namespace(LinuxNamespaceType::Network, None));
        ns.push(namespace(LinuxNamespaceType::Uts, None));
    }
    ns
}

/// A container's namespaces, and the names (`pid`, `ipc`, `net`, `uts`) of those it
/// joins from the infra through `<ns_dir>/<name>`. Its PID namespace is the infra's
/// only with `shareProcessNamespace`.
pub fn container(spec: &PodSpec, ns_dir: &str) -> (Vec<LinuxNamespace>, Vec<String>) {
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
