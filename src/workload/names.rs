//! The names and hashes controllers give their pods (PURE): `<rs>-<hash>-<xxxxx>`
//! for a Deployment, `<sts>-<ordinal>` for a StatefulSet, `<name>-<xxxxx>` for a
//! ReplicaSet, DaemonSet or Job.
//!
//! Kubernetes draws the 5-character suffix at random (`generateName`,
//! apiserver's names.SimpleNameGenerator); podshim derives it from the owner and
//! the pod's slot, so the same manifest always names the same pods and `up` of an
//! unchanged file finds them. The alphabet and the hash's encoding are
//! Kubernetes' (k8s.io/apimachinery/pkg/util/rand SafeEncodeString: no vowels, no
//! 0/1/3, so no words and nothing mistaken for another character); the template
//! hash is FNV-32a as the deployment controller's ComputeHash, over podshim's
//! canonical JSON of the template (not Go's spew dump), so it has the cluster's
//! form, not its value.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// SafeEncodeString's alphabet.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The length of a generated suffix (names.SimpleNameGenerator's randomLength).
pub const SUFFIX_LEN: usize = 5;

/// The most a generateName base keeps (253 - 5: maxGeneratedNameLength).
const MAX_BASE: usize = 253 - SUFFIX_LEN;

/// SafeEncodeString: each byte of `s` as one character of the alphabet.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// FNV-1a, 32 bits (hash/fnv New32a).
fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The `pod-template-hash` / `controller-revision-hash` of a pod template: the
/// same for the same template whatever the order of its keys.
pub fn template_hash(template: &Value) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    safe_encode(&fnv32a(text.as_bytes()).to_string())
}

/// JSON with every object's keys sorted.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A generated name: `base` (cut as generateName cuts it) and a suffix derived
/// from `seed`.
pub fn generated(base: &str, seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let suffix: String = digest[..SUFFIX_LEN]
        .iter()
        .map(|b| ALPHANUMS[usize::from(*b) % ALPHANUMS.len()] as char)
        .collect();
    let base = &base[..base.len().min(MAX_BASE)];
    format!("{base}{suffix}")
}

/// The name of a Deployment's ReplicaSet for a template: `<deployment>-<hash>`.
pub fn replica_set(deployment: &str, hash: &str) -> String {
    format!("{deployment}-{hash}")
}

/// The pod of `owner` (a ReplicaSet, DaemonSet or Job name, with the owner's uid)
/// in slot `slot`.
pub fn pod(owner: &str, owner_uid: &str, hash: &str, slot: u32) -> String {
    generated(&format!("{owner}-"), &format!("{owner_uid}/{hash}/{slot}"))
}

/// A StatefulSet's pod: `<sts>-<ordinal>`.
pub fn ordinal_pod(set: &str, ordinal: u32) -> String {
    format!("{set}-{ordinal}")
}

/// A StatefulSet's claim for one ordinal: `<template>-<sts>-<ordinal>`.
pub fn ordinal_claim(template: &str, set: &str, ordinal: u32) -> String {
    format!("{template}-{set}-{ordinal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_encode_maps_digits_as_kubernetes_does() {
        // SafeEncodeString("0123456789"): '0' is byte 48, 48 % 27 = 21 -> '4'.
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn fnv32a_matches_the_reference_vectors() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn template_hash_ignores_key_order_and_sees_values() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a":{"x":"t","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_ne!(template_hash(&a), template_hash(&c));
        assert!(template_hash(&a).bytes().all(|ch| ALPHANUMS.contains(&ch)));
    }

    #[test]
    fn pod_names_are_stable_distinct_and_shaped_like_generate_name() {
        let a = pod("web-5d4f8", "uid", "5d4f8", 0);
        assert_eq!(a, pod("web-5d4f8", "uid", "5d4f8", 0));
        assert_ne!(a, pod("web-5d4f8", "uid", "5d4f8", 1));
        assert_ne!(a, pod("web-5d4f8", "other", "5d4f8", 0));
        let suffix = a.strip_prefix("web-5d4f8-").unwrap();
        assert_eq!(suffix.len(), SUFFIX_LEN);
        assert!(suffix.bytes().all(|ch| ALPHANUMS.contains(&ch)));
    }

    #[test]
    fn a_long_base_is_cut_to_keep_the_name_within_253() {
        let base = "a".repeat(300);
        assert_eq!(generated(&base, "s").len(), 253);
    }

    #[test]
    fn ordinal_names_follow_the_statefulset_controller() {
        assert_eq!(ordinal_pod("db", 2), "db-2");
        assert_eq!(ordinal_claim("data", "db", 2), "data-db-2");
    }
}
