//! Helpers shared by the translation's table tests.

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::model::Container;

/// The namespaces of a spec, with the path each joins (if any).
pub fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<String>)> {
    spec.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .clone()
        .unwrap()
        .iter()
        .map(|n| (n.typ(), n.path().as_ref().map(|p| p.display().to_string())))
        .collect()
}

/// The first container of a pod manifest, as the validator makes it.
pub fn first_container(yaml: &str) -> Container {
    crate::manifest::parse(yaml, "t")
        .unwrap_or_else(|e| panic!("{e}"))
        .pod
        .spec
        .containers[0]
        .clone()
}
