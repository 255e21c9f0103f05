//! PURE: the pod's cgroup as the kubelet lays it out with the cgroupfs driver
//! (pkg/kubelet/cm `qos_container_manager`, `pod_container_manager`):
//! `<parent>/kubepods/pod<uid>` for a Guaranteed pod, `<parent>/kubepods/burstable/
//! pod<uid>` and `<parent>/kubepods/besteffort/pod<uid>` for the others, each
//! container (the infra too) in `<pod cgroup>/<id>`; and sized as its
//! `ResourceConfigForPod` sizes it, with the node's `podPidsLimit`.

use serde::{Deserialize, Serialize};

use super::qos::QosClass;
use super::resources;
use crate::model::{Pod, totals};

/// Where podshim's pod cgroups go (`--cgroup-parent`, the kubelet's
/// `--cgroup-root`): an absolute cgroup path, as containerd and podman take a
/// cgroupfs parent. A relative path would be resolved by runc against its own
/// cgroup in each v1 hierarchy, a different place per controller and per caller,
/// which `down` from another shell could not find again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CgroupParent(String);

pub const DEFAULT_PARENT: &str = "/podshim";

impl CgroupParent {
    /// An absolute path of plain names: no `.`, `..` or empty component (nothing
    /// to climb out of the hierarchy with), each a file name.
    pub fn parse(s: &str) -> Result<CgroupParent, String> {
        let Some(rest) = s.strip_prefix('/') else {
            return Err(format!("cgroup parent {s:?}: must be an absolute path"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Ok(CgroupParent(String::new()));
        }
        for part in rest.split('/') {
            if !is_cgroup_name(part) {
                return Err(format!(
                    "cgroup parent {s:?}: {part:?} is not a cgroup name (letters, digits and . _ @ : -, not . or ..)"
                ));
            }
        }
        Ok(CgroupParent(format!("/{rest}")))
    }

    /// The path without a trailing `/` (empty for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A name run.sh and stop.sh can use unquoted-safe and no path can climb with:
/// 1 to 255 of `[A-Za-z0-9._@:-]`, not `.` or `..`.
pub fn is_cgroup_name(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 255
        && part != "."
        && part != ".."
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@:-".contains(&b))
}

/// A cgroup path as podshim writes them: absolute, of [`is_cgroup_name`]s.
pub fn is_cgroup_path(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(is_cgroup_name))
}

impl Default for CgroupParent {
    fn default() -> Self {
        CgroupParent(DEFAULT_PARENT.into())
    }
}

impl TryFrom<String> for CgroupParent {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        CgroupParent::parse(if s.is_empty() { "/" } else { &s })
    }
}

impl From<CgroupParent> for String {
    fn from(p: CgroupParent) -> String {
        if p.0.is_empty() { "/".into() } else { p.0 }
    }
}

impl CgroupParent {
    /// The parent of a state root when `--cgroup-parent` is not given: each
    /// root is a node of its own (its own `kubepods`), as each kubelet has its
    /// own `--cgroup-root`: `/podshim` for the default root, `/podshim-<hash>`
    /// for another, so that the same pod under two roots never shares a cgroup.
    pub fn for_root(root: &std::path::Path) -> CgroupParent {
        use sha2::{Digest, Sha256};
        if root == std::path::Path::new(crate::paths::DEFAULT_ROOT) {
            return CgroupParent::default();
        }
        let hash = hex::encode(&Sha256::digest(root.as_os_str().as_encoded_bytes())[..4]);
        CgroupParent(format!("{DEFAULT_PARENT}-{hash}"))
    }
}

/// The node's settings for pod cgroups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupConfig {
    pub parent: CgroupParent,
    /// The parent is podshim's own (derived from the state root, not given):
    /// it goes with the last pod under it.
    pub own_parent: bool,
    /// `--pod-pids-limit` (the kubelet's `podPidsLimit`); none is unlimited.
    pub pod_pids_limit: Option<u64>,
}

/// The pod's cgroup: its path (the same in every hierarchy) and the limits on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodCgroup {
    /// Absolute within each cgroup hierarchy: `/podshim/kubepods/burstable/pod<uid>`.
    pub path: String,
    /// cgroup v1 `cpu.shares` (v2 `cpu.weight` is converted from it, as runc does).
    pub cpu_shares: u64,
    /// CFS quota in µs per [`PERIOD`](resources::PERIOD); none is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<u64>,
    /// The highest level podshim made for its pods and removes once empty:
    /// `<parent>/kubepods`, or the parent itself when it is podshim's own.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owned_from: String,
}

impl PodCgroup {
    /// The cgroup of container `id`: config.json's `linux.cgroupsPath`.
    pub fn container(&self, id: &str) -> String {
        format!("{}/{id}", self.path)
    }

    /// The QoS level's cgroup the pod's sits in (`kubepods`, `kubepods/burstable`).
    pub fn qos_level(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(parent, _)| parent)
    }
}

/// The QoS level's directory under `kubepods` (none for Guaranteed pods).
fn qos_dir(qos: QosClass) -> &'static str {
    match qos {
        QosClass::Guaranteed => "",
        QosClass::Burstable => "/burstable",
        QosClass::BestEffort => "/besteffort",
    }
}

/// The pod's cgroup (`ResourceConfigForPod`): a Guaranteed pod is capped in CPU
/// and memory; a Burstable one gets its requests' weight, and a cap in each
/// resource every container (or the pod itself) limits; a BestEffort one the
/// least weight.
pub fn plan(pod: &Pod, qos: QosClass, config: &CgroupConfig) -> PodCgroup {
    let path = format!(
        "{}/kubepods{}/pod{}",
        config.parent.as_str(),
        qos_dir(qos),
        pod.uid
    );
    let owned_from = if config.own_parent && !config.parent.as_str().is_empty() {
        config.parent.as_str().to_string()
    } else {
        format!("{}/kubepods", config.parent.as_str())
    };
    PodCgroup {
        path,
        cpu_shares: 0,
        cpu_quota: None,
        memory_limit: None,
        pids_limit: config.pod_pids_limit,
        owned_from,
    }
    .resized(qos, &totals::of_pod(&pod.spec))
}

impl PodCgroup {
    /// This cgroup's limits for a pod of class `qos` needing `t`; its path, pids
    /// limit and the levels it owns stay (a resize sizes it anew).
    pub fn resized(&self, qos: QosClass, t: &totals::Totals) -> PodCgroup {
        let millis = |m: u128| u64::try_from(m).unwrap_or(u64::MAX);
        let (cpu_capped, memory_capped) = match qos {
            QosClass::Guaranteed => (true, true),
            QosClass::Burstable => (t.cpu_limited, t.memory_limited),
            QosClass::BestEffort => (false, false),
        };
        let cpu_shares = match qos {
            QosClass::BestEffort => resources::MIN_SHARES,
            _ => resources::shares(millis(t.requests.cpu)),
        };
        PodCgroup {
            cpu_shares,
            cpu_quota: cpu_capped
                .then(|| resources::quota(millis(t.limits.cpu)))
                .flatten(),
            memory_limit: memory_capped
                .then(|| u64::try_from(t.limits.memory).unwrap_or(u64::MAX))
                .filter(|&m| m != 0),
            ..self.clone()
        }
    }

    /// In the BestEffort level, which the kubelet's QoS manager gives the least
    /// weight.
    pub fn is_best_effort(&self) -> bool {
        self.qos_level().ends_with("/besteffort")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn pod(spec: &str) -> Pod {
        let yaml =
            format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p, uid: 0b1c}}\nspec:\n{spec}");
        crate::manifest::parse(&yaml, "t").unwrap().pod
    }

    fn cgroup(spec: &str, config: &CgroupConfig) -> PodCgroup {
        let p = pod(spec);
        plan(&p, super::super::qos::pod_qos(&p.spec), config)
    }

    #[test]
    fn each_qos_class_has_the_kubelets_level_and_limits() {
        let config = CgroupConfig::default();
        let guaranteed = cgroup(
            "  containers:\n  - {name: a, image: x, resources: {limits: {cpu: 500m, memory: 64Mi}}}\n  - {name: b, image: x, resources: {limits: {cpu: 250m, memory: 32Mi}}}\n",
            &config,
        );
        assert_eq!(
            guaranteed,
            PodCgroup {
                path: "/podshim/kubepods/pod0b1c".into(),
                cpu_shares: 768,
                cpu_quota: Some(75_000),
                memory_limit: Some(96 << 20),
                pids_limit: None,
                owned_from: "/podshim/kubepods".into(),
            }
        );
        assert_eq!(
            guaranteed.container("ns_p_a"),
            "/podshim/kubepods/pod0b1c/ns_p_a"
        );
        assert_eq!(guaranteed.qos_level(), "/podshim/kubepods");
        // One container without a memory limit: CPU capped, memory not.
        let burstable = cgroup(
            "  containers:\n  - {name: a, image: x, resources: {requests: {cpu: 100m}, limits: {cpu: 1}}}\n  - {name: b, image: x, resources: {limits: {cpu: 1}}}\n",
            &config,
        );
        assert_eq!(burstable.path, "/podshim/kubepods/burstable/pod0b1c");
        assert_eq!(burstable.cpu_shares, 1126);
        assert_eq!(burstable.cpu_quota, Some(200_000));
        assert_eq!(burstable.memory_limit, None);
        let best_effort = cgroup("  containers: [{name: a, image: x}]\n", &config);
        assert_eq!(best_effort.path, "/podshim/kubepods/besteffort/pod0b1c");
        assert_eq!(
            (
                best_effort.cpu_shares,
                best_effort.cpu_quota,
                best_effort.memory_limit
            ),
            (2, None, None)
        );
    }

    #[test]
    fn pod_level_resources_size_the_pod_cgroup() {
        let c = cgroup(
            "  resources: {requests: {cpu: 500m, memory: 100Mi}, limits: {cpu: 1, memory: 200Mi}}\n  containers: [{name: a, image: x}, {name: b, image: x}]\n",
            &CgroupConfig::default(),
        );
        assert_eq!(c.path, "/podshim/kubepods/burstable/pod0b1c");
        assert_eq!(
            (c.cpu_shares, c.cpu_quota, c.memory_limit),
            (512, Some(100_000), Some(200 << 20))
        );
        let g = cgroup(
            "  resources: {limits: {cpu: 1, memory: 200Mi}}\n  containers: [{name: a, image: x}]\n",
            &CgroupConfig::default(),
        );
        assert_eq!(g.path, "/podshim/kubepods/pod0b1c");
    }

    #[test]
    fn the_parent_and_pids_limit_are_the_nodes() {
        let config = CgroupConfig {
            parent: CgroupParent::parse("/").unwrap(),
            own_parent: false,
            pod_pids_limit: Some(64),
        };
        let c = cgroup("  containers: [{name: a, image: x}]\n", &config);
        assert_eq!(c.path, "/kubepods/besteffort/pod0b1c");
        assert_eq!(c.pids_limit, Some(64));
        assert_eq!(c.owned_from, "/kubepods");
        // Each state root its own parent, which goes with its last pod.
        assert_eq!(
            CgroupParent::for_root(Path::new("/run/podshim")).as_str(),
            "/podshim"
        );
        let other = CgroupParent::for_root(Path::new("/tmp/x/run"));
        assert!(
            other.as_str().starts_with("/podshim-") && other.as_str().len() == 17,
            "{other:?}"
        );
        let own = CgroupConfig {
            parent: other.clone(),
            own_parent: true,
            pod_pids_limit: None,
        };
        let c = cgroup("  containers: [{name: a, image: x}]\n", &own);
        assert_eq!(c.owned_from, other.as_str());
    }

    #[test]
    fn a_cgroup_parent_is_an_absolute_path_of_plain_names() {
        for ok in ["/", "/podshim", "/a/b/", "/machine.slice"] {
            assert!(CgroupParent::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(CgroupParent::parse("/a/b/").unwrap().as_str(), "/a/b");
        for bad in [
            "", "podshim", "/a/../b", "/a//b", "/./a", "/a\0b", "/a b", "/a*", "/a\nb",
        ] {
            let e = CgroupParent::parse(bad).unwrap_err();
            assert!(e.starts_with("cgroup parent"), "{bad}: {e}");
        }
    }
}
