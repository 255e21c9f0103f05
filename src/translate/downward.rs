//! The downward API's values (Kubernetes: pkg/fieldpath, pkg/api/v1/resource):
//! what `fieldRef` and `resourceFieldRef` read, for env vars and volume files.

use std::collections::BTreeMap;

use super::HostInfo;
use crate::model::{FieldRef, Pod, Quantity, ResourceField, ResourceRef};

/// What a downward API value reads besides the pod.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub pod: &'a Pod,
    pub host: &'a HostInfo,
    pub pod_ip: Option<&'a str>,
}

pub fn field(f: &Facts<'_>, field: &FieldRef) -> String {
    let pod = f.pod;
    match field {
        FieldRef::Name => pod.name().to_string(),
        FieldRef::Namespace => pod.namespace().to_string(),
        FieldRef::Uid => pod.uid.to_string(),
        FieldRef::NodeName => pod
            .spec
            .node_name
            .clone()
            .unwrap_or_else(|| f.host.node_name.clone()),
        FieldRef::ServiceAccountName => pod.spec.service_account_name.clone(),
        // A hostNetwork pod's IPs are the node's (the kubelet reports the host's
        // addresses as its podIPs).
        FieldRef::PodIp | FieldRef::PodIps if pod.spec.host_network => f.host.host_ip.clone(),
        // A loopback-only pod (`--network none`, generated bundles) has one
        // address, its loopback: 127.0.1.1, the address its /etc/hosts gives its
        // hostname (etc::hosts_file), never an empty value.
        FieldRef::PodIp | FieldRef::PodIps => {
            f.pod_ip.unwrap_or(super::etc::LOOPBACK_POD_IP).to_string()
        }
        FieldRef::HostIp | FieldRef::HostIps => f.host.host_ip.clone(),
        FieldRef::Labels => labels_file(&pod.labels),
        FieldRef::Annotations => labels_file(&pod.annotations),
        FieldRef::Label(key) => pod.labels.get(key).cloned().unwrap_or_default(),
        FieldRef::Annotation(key) => pod.annotations.get(key).cloned().unwrap_or_default(),
    }
}

/// `key="value"` lines, sorted, values quoted like Go's %q: the downward API's format
/// for `metadata.labels` and `metadata.annotations` files.
pub fn labels_file(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}\n", serde_json::Value::String(v.clone())))
        .collect::<String>()
        .trim_end_matches('\n')
        .to_string()
}

/// ExtractContainerResourceValue: a limit that is not set reads as the node's
/// allocatable amount; values are divided by the divisor and rounded up.
pub fn resource(host: &HostInfo, r: &ResourceRef) -> String {
    let node_cpu = Quantity::from_whole(u128::from(host.cpus));
    let node_mem = Quantity::from_whole(u128::from(host.memory_bytes));
    let zero = Quantity::from_whole(0);
    let res = &r.resources;
    let value = match r.field {
        ResourceField::LimitsCpu => res.cpu_limit.unwrap_or(node_cpu),
        ResourceField::LimitsMemory => res.memory_limit.unwrap_or(node_mem),
        ResourceField::RequestsCpu => res.cpu_request.unwrap_or(zero),
        ResourceField::RequestsMemory => res.memory_request.unwrap_or(zero),
    };
    // The divisor is validated non-zero, so there is always a result.
    value
        .div_ceil(&r.divisor)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_file_quotes_values_and_sorts_keys() {
        let map: BTreeMap<String, String> = [
            ("b".to_string(), "two \"q\"".to_string()),
            ("a".into(), "1".into()),
        ]
        .into();
        assert_eq!(labels_file(&map), "a=\"1\"\nb=\"two \\\"q\\\"\"");
    }

    #[test]
    fn a_host_network_pods_ip_is_the_hosts() {
        let host = host();
        let pod = |host_network: bool| {
            crate::manifest::parse(
                &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  hostNetwork: {host_network}\n  containers: [{{name: c, image: x}}]\n"),
                "t",
            )
            .unwrap()
            .pod
        };
        let (on, off) = (pod(true), pod(false));
        let facts = |p| Facts {
            pod: p,
            host: &host,
            pod_ip: Some("10.89.0.7"),
        };
        assert_eq!(field(&facts(&on), &FieldRef::PodIp), "192.0.2.1");
        assert_eq!(field(&facts(&on), &FieldRef::PodIps), "192.0.2.1");
        assert_eq!(field(&facts(&off), &FieldRef::PodIp), "10.89.0.7");
    }

    fn host() -> HostInfo {
        HostInfo {
            node_name: "n".into(),
            host_ip: "192.0.2.1".into(),
            resolv_conf: String::new(),
            hosts: String::new(),
            cpus: 4,
            memory_bytes: 8 << 30,
            oom_score_adj_floor: None,
            security: Default::default(),
            exec_limits: Default::default(),
        }
    }

    #[test]
    fn resource_values_divide_and_fall_back_to_the_node() {
        let host = host();
        let q = |s: &str| Quantity::parse(s).unwrap();
        let r = |field, limit: Option<&str>, divisor: &str| ResourceRef {
            resources: crate::model::Resources {
                cpu_limit: limit.map(q),
                memory_limit: limit.map(q),
                ..Default::default()
            },
            field,
            divisor: q(divisor),
        };
        let cases = [
            (r(ResourceField::LimitsCpu, Some("250m"), "1m"), "250"),
            (r(ResourceField::LimitsCpu, Some("250m"), "1"), "1"),
            (r(ResourceField::LimitsCpu, None, "1"), "4"),
            (r(ResourceField::LimitsMemory, Some("129Mi"), "1Mi"), "129"),
            (r(ResourceField::LimitsMemory, None, "1Gi"), "8"),
            (r(ResourceField::RequestsCpu, None, "1"), "0"),
        ];
        for (rr, want) in cases {
            assert_eq!(resource(&host, &rr), want, "{rr:?}");
        }
    }
}
