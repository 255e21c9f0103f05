//! Defaults that are not one field's: pure and deterministic, so that the same
//! input always yields byte-identical bundles. (Field defaults are applied where
//! each field is lowered, in `validate`.)

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

pub(crate) const DEFAULT_NAMESPACE: &str = crate::model::DEFAULT_NAMESPACE;

/// A uid for a pod that has none: the first 16 bytes of
/// sha256("podshim:<namespace>/<name>"), laid out as a UUID with the version-4 and
/// RFC 4122 variant bits set (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`). It is a
/// name-based id in a random-id layout: stable across runs, distinct across pods.
pub(crate) fn derived_uid(namespace: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("podshim:{namespace}/{name}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// As the API server does on write: `stringData` is merged into `data` (and wins),
/// so readers of a Secret only look at `data`.
pub(crate) fn secret(secret: &mut Secret) {
    if let Some(string_data) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(Default::default);
        for (k, v) in string_data {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
}
