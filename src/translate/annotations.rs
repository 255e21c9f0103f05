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
