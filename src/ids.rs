//! Container ids, derived from the pod's namespace and name.
//!
//! Kubernetes names (DNS-1123) cannot contain `_`, so joining with `_` never collides
//! between pods or between containers of one pod.

/// The infra (sandbox) container's id, also the pod's key on disk: `<ns>_<pod>`.
pub fn pod_id(namespace: &str, pod: &str) -> String {
    format!("{namespace}_{pod}")
}

/// A workload container's id: `<ns>_<pod>_<container>`.
pub fn container_id(namespace: &str, pod: &str, container: &str) -> String {
    format!("{namespace}_{pod}_{container}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_join_namespace_pod_and_container_with_underscores() {
        assert_eq!(pod_id("default", "web"), "default_web");
        assert_eq!(container_id("default", "web", "nginx"), "default_web_nginx");
    }
}
