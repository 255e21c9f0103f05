//! Names that become parts of paths, container ids and runtime arguments, parsed
//! once (Kubernetes' formats, k8s.io/apimachinery/pkg/util/validation) so that no
//! string from a manifest or a command line reaches the filesystem unparsed.

use std::fmt;

pub const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
pub const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// Why a value is not a valid name: one or more of Kubernetes' reasons (each is
/// reported as its own `Invalid value` error, as the API server does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub Vec<&'static str>);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

fn is_label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 label (`IsDNS1123Label`): at most 63 of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
/// Namespaces, container, volume and host names. Never contains `/`, `.` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct DnsLabel(String);

impl DnsLabel {
    pub fn parse(s: &str) -> Result<DnsLabel, NameError> {
        let mut why = Vec::new();
        if s.len() > 63 {
            why.push("must be no more than 63 characters");
        }
        if !is_label_chars(s) {
            why.push(DNS1123_LABEL_MSG);
        }
        if why.is_empty() {
            Ok(DnsLabel(s.to_string()))
        } else {
            Err(NameError(why))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A DNS-1123 subdomain (`IsDNS1123Subdomain`): at most 253 characters of
/// dot-separated labels. Pod, ConfigMap and Secret names. Never contains `/`, `_`
/// or a `..` (every label is non-empty).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct DnsSubdomain(String);

impl DnsSubdomain {
    pub fn parse(s: &str) -> Result<DnsSubdomain, NameError> {
        let mut why = Vec::new();
        if s.len() > 253 {
            why.push("must be no more than 253 characters");
        }
        if !s.split('.').all(is_label_chars) {
            why.push(DNS1123_SUBDOMAIN_MSG);
        }
        if why.is_empty() {
            Ok(DnsSubdomain(s.to_string()))
        } else {
            Err(NameError(why))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
display_as_str!(DnsLabel, DnsSubdomain, PodUid);

/// Kubernetes' default namespace.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Which pod: its namespace and name. Displayed as `ns/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodKey {
    pub namespace: DnsLabel,
    pub name: DnsSubdomain,
}

/// A pod named on the command line that is not a pod name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodKeyError {
    #[error("pod {arg:?}: namespace {namespace:?}: {why}")]
    Namespace {
        arg: String,
        namespace: String,
        why: NameError,
    },
    #[error("pod {arg:?}: name {name:?}: {why}")]
    Name {
        arg: String,
        name: String,
        why: NameError,
    },
}

impl PodKey {
    /// `NAME` (in `namespace`, else `default`) or `NS/NAME`, as kubectl takes them.
    /// Anything else, a path above all (`ns/x/../../tmp`), is refused before any
    /// path is built from it.
    pub fn parse(arg: &str, namespace: Option<&str>) -> Result<PodKey, PodKeyError> {
        let (ns, name) = match arg.split_once('/') {
            Some((ns, name)) => (ns, name),
            None => (namespace.unwrap_or(DEFAULT_NAMESPACE), arg),
        };
        let namespace = DnsLabel::parse(ns).map_err(|why| PodKeyError::Namespace {
            arg: arg.to_string(),
            namespace: ns.to_string(),
            why,
        })?;
        let name = DnsSubdomain::parse(name).map_err(|why| PodKeyError::Name {
            arg: arg.to_string(),
            name: name.to_string(),
            why,
        })?;
        Ok(PodKey { namespace, name })
    }

    /// The pod's id: the infra container's id and the pod's key on disk,
    /// `<ns>_<name>`. Kubernetes names cannot contain `_`, so ids never collide.
    pub fn id(&self) -> String {
        bounded_id(format!("{}_{}", self.namespace, self.name))
    }

    /// A workload container's id: `<ns>_<pod>_<container>`.
    pub fn container_id(&self, container: &DnsLabel) -> String {
        bounded_id(format!("{}_{}_{}", self.namespace, self.name, container))
    }
}

/// The longest id: ids name the pod directory, the runtime's state directory and
/// cgroup, and the log directory `<id>_<uid>` (a uid is up to 128 characters), all
/// of which must be file names (255 bytes), while Kubernetes allows a 253-character
/// pod name in a 63-character namespace.
pub const MAX_ID_LEN: usize = 100;

/// `id` when it fits; else its first characters, `__` and 16 hex digits of its
/// SHA-256, exactly [`MAX_ID_LEN`] long. An id that fits never holds `__`
/// (names cannot contain `_`; they are joined by one), so no pod can be named
/// to get a cut id; two cut ids meet only if their hashes do. The same pod
/// always gets the same id (`down` finds it by name).
fn bounded_id(id: String) -> String {
    use sha2::{Digest, Sha256};
    if id.len() <= MAX_ID_LEN {
        return id;
    }
    let hash = hex::encode(&Sha256::digest(id.as_bytes())[..8]);
    // Ids are ASCII (DNS names and `_`), so any byte index is a char boundary.
    let keep = MAX_ID_LEN - 2 - hash.len();
    format!("{}__{hash}", &id[..keep])
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A pod's uid: it names the pod's log directory, so it must not name another path:
/// 1 to 128 ASCII letters, digits or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PodUid(String);

pub const POD_UID_MSG: &str = "must be 1 to 128 alphanumeric characters or '-'";

impl PodUid {
    pub fn parse(s: &str) -> Result<PodUid, NameError> {
        if s.is_empty()
            || s.len() > 128
            || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(NameError(vec![POD_UID_MSG]));
        }
        Ok(PodUid(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains_follow_rfc_1123() {
        for ok in ["a", "web-1", "0", &"a".repeat(63)] {
            assert!(DnsLabel::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "a/b", ".."] {
            assert!(DnsLabel::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            DnsLabel::parse(&"a".repeat(64)).unwrap_err().0,
            ["must be no more than 63 characters"]
        );
        for ok in ["a.b", "web-0.shop", &format!("{}.b", "a".repeat(63))] {
            assert!(DnsSubdomain::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", ".a", "a.", "a/b", "..", "x_y"] {
            assert!(DnsSubdomain::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pod_keys_take_name_or_namespace_slash_name() {
        let k = PodKey::parse("web", None).unwrap();
        assert_eq!((k.namespace.as_str(), k.name.as_str()), ("default", "web"));
        let k = PodKey::parse("web", Some("shop")).unwrap();
        assert_eq!(k.to_string(), "shop/web");
        let k = PodKey::parse("shop/web.v1", Some("ignored")).unwrap();
        assert_eq!(k.id(), "shop_web.v1");
        assert_eq!(
            k.container_id(&DnsLabel::parse("c").unwrap()),
            "shop_web.v1_c"
        );
    }

    #[test]
    fn long_names_get_bounded_distinct_stable_ids() {
        let key = |ns: &str, name: &str| PodKey::parse(name, Some(ns)).unwrap();
        let short = key("shop", "web");
        assert_eq!(short.id(), "shop_web");
        assert_eq!(
            short.container_id(&DnsLabel::parse("app").unwrap()),
            "shop_web_app"
        );
        let ns = "n".repeat(63);
        let a = key(&ns, &format!("{}.x", "a".repeat(251)));
        let b = key(&ns, &format!("{}.y", "a".repeat(251)));
        for id in [a.id(), b.id()] {
            assert_eq!(id.len(), MAX_ID_LEN, "{id}");
            assert!(id.starts_with(&format!("{ns}_aaaa")), "{id}");
            assert_eq!(id.matches("__").count(), 1, "{id}");
        }
        // A name written to look like a cut id is no cut id: names have no `_`.
        let crafted = format!("{}-{}", &a.id()[ns.len() + 1..81], &a.id()[84..]);
        assert!(PodKey::parse(&crafted, Some(&ns)).is_ok_and(|k| k.id() != a.id()));
        assert_ne!(a.id(), b.id(), "names that share a prefix stay apart");
        assert_eq!(a.id(), a.clone().id(), "stable");
        let c = DnsLabel::parse(&"c".repeat(63)).unwrap();
        let cid = a.container_id(&c);
        assert_eq!(cid.len(), MAX_ID_LEN);
        assert_ne!(cid, a.id());
        // Exactly the limit is kept as written.
        let fits = key("n", &"f".repeat(MAX_ID_LEN - 2));
        assert_eq!(fits.id(), format!("n_{}", "f".repeat(MAX_ID_LEN - 2)));
    }

    #[test]
    fn pod_keys_that_are_paths_are_refused() {
        for bad in [
            "ns/x/../../../../tmp/dir",
            "../x",
            "ns/..",
            "/abs",
            "ns/",
            "",
            "a_b",
            "ns/a b",
        ] {
            assert!(PodKey::parse(bad, None).is_err(), "{bad}");
        }
        let err = PodKey::parse("ns/x/../../tmp", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("name \"x/../../tmp\""), "{err}");
    }

    #[test]
    fn uids_are_plain_tokens() {
        assert!(PodUid::parse("0c2b5e1c-1111-4222-8333-444455556666").is_ok());
        for bad in ["", "../x", "a/b", "a b", &"a".repeat(129)] {
            assert!(PodUid::parse(bad).is_err(), "{bad}");
        }
    }
}
