//! CRI annotations (containerd's pkg/cri/annotations), so that sandbox-aware
//! runtimes and hooks recognise the pod, and `podshim down` finds a pod's
//! containers in the runtime when its state is lost.

use std::collections::HashMap;

use crate::model::{ContainerKind, Pod};

pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";

/// podshim's own: the state directory of the pod a container was started for,
/// written by the supervisor into each config.json before its start. A runtime
/// container is this podshim's only when it names this pod directory, which is
/// how `down` recognises a pod's containers once its state is lost (bundles of a
/// `generate` output can be run by any podshim root, or by hand).
pub const POD_DIR: &str = "io.podshim.pod-dir";

/// `sandbox` for the infra, `container` for the others.
pub const TYPE_SANDBOX: &str = "sandbox";
pub const TYPE_CONTAINER: &str = "container";

pub fn annotations(
    pod: &Pod,
    kind: ContainerKind,
    name: &str,
    image: Option<&str>,
) -> HashMap<String, String> {
    let mut a = HashMap::new();
    let ty = if kind == ContainerKind::Infra {
        TYPE_SANDBOX
    } else {
        TYPE_CONTAINER
    };
    a.insert(CONTAINER_TYPE.into(), ty.into());
    a.insert(SANDBOX_ID.into(), pod.key.id());
    a.insert(SANDBOX_NAME.into(), pod.name().into());
    a.insert(SANDBOX_NAMESPACE.into(), pod.namespace().into());
    a.insert(SANDBOX_UID.into(), pod.uid.to_string());
    if kind != ContainerKind::Infra {
        a.insert(CONTAINER_NAME.into(), name.into());
        if let Some(image) = image {
            a.insert(IMAGE_NAME.into(), image.into());
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_and_its_containers_carry_the_cri_annotations() {
        let pod = crate::manifest::parse(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, uid: u-1}\nspec:\n  containers: [{name: c, image: x}]\n",
            "t",
        )
        .unwrap()
        .pod;
        let sandbox = annotations(&pod, ContainerKind::Infra, "POD", None);
        let app = annotations(
            &pod,
            ContainerKind::App,
            "c",
            Some("docker.io/library/x:latest"),
        );
        let rows = [
            (CONTAINER_TYPE, Some("sandbox"), Some("container")),
            (SANDBOX_ID, Some("shop_web"), Some("shop_web")),
            (SANDBOX_NAME, Some("web"), Some("web")),
            (SANDBOX_NAMESPACE, Some("shop"), Some("shop")),
            (SANDBOX_UID, Some("u-1"), Some("u-1")),
            (CONTAINER_NAME, None, Some("c")),
            (IMAGE_NAME, None, Some("docker.io/library/x:latest")),
        ];
        for (key, s, a) in rows {
            assert_eq!(sandbox.get(key).map(String::as_str), s, "{key}");
            assert_eq!(app.get(key).map(String::as_str), a, "{key}");
        }
        assert_eq!(sandbox.len(), 5);
    }
}
