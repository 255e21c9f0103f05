//! The OCI runtime spec pieces every podshim container shares: masked and
//! read-only paths, and the canonical config.json rendering.

use oci_spec::runtime::Spec;

/// containerd's default masked and read-only paths (oci.WithMaskedPaths /
/// WithReadonlyPaths), which the kubelet's pods get unless privileged.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub fn masked_paths() -> Vec<String> {
    MASKED_PATHS.iter().map(|s| s.to_string()).collect()
}

pub fn readonly_paths() -> Vec<String> {
    READONLY_PATHS.iter().map(|s| s.to_string()).collect()
}

/// config.json text: two-space indented, object keys sorted and capability lists
/// sorted, so the same plan always yields the same bytes (oci-spec keeps
/// annotations, sysctls and capabilities in hash containers).
pub fn render_config(spec: &Spec) -> String {
    render_value(serde_json::to_value(spec).expect("an oci-spec Spec always serializes"))
}

/// [`render_config`] of a config.json already parsed as JSON.
pub fn render_value(mut value: serde_json::Value) -> String {
    canonicalize(&mut value);
    let mut text = serde_json::to_string_pretty(&value).expect("a JSON value always serializes");
    text.push('\n');
    text
}

fn canonicalize(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, mut v) in entries {
                canonicalize(&mut v);
                map.insert(key, v);
            }
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(canonicalize);
            if items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| s.starts_with("CAP_")))
            {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_keys_and_capability_lists_are_sorted() {
        let mut v =
            serde_json::json!({"b": 1, "a": {"d": ["CAP_KILL", "CAP_CHOWN"], "c": ["z", "a"]}});
        canonicalize(&mut v);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":{"c":["z","a"],"d":["CAP_CHOWN","CAP_KILL"]},"b":1}"#
        );
    }
}
