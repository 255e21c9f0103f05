//! Image reference parsing, normalised the way docker and Kubernetes do
//! (github.com/distribution/reference: `ParseNormalizedNamed`).

use std::str::FromStr;

use super::{Digest, ImageError, ImageRef};

const DEFAULT_REGISTRY: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";
/// distribution/reference: NameTotalLengthMax.
const MAX_NAME_LEN: usize = 255;

impl ImageRef {
    /// Parse and normalise a reference: `busybox` → `docker.io/library/busybox:latest`,
    /// `foo/bar` → `docker.io/foo/bar:latest`; `localhost/x`, `host:5000/x` and any
    /// first component with a `.` name a registry. A tag and a digest may both be
    /// given and are both kept; with neither, the tag is `latest`.
    pub fn parse(s: &str) -> Result<ImageRef, ImageError> {
        let bad = |reason: &str| ImageError::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let d = Digest::parse(d).map_err(|e| bad(&e.to_string()))?;
                (rest, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/'
        // (a ':' before a '/' is a registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            if !valid_tag(tag) {
                return Err(bad(&format!(
                    "invalid tag {tag:?}: up to 128 of [A-Za-z0-9_.-], not starting with . or -"
                )));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if !valid_registry(&registry) {
            return Err(bad(&format!("invalid registry {registry:?}")));
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() {
            return Err(bad("missing repository name"));
        }
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("repository name must be lowercase"));
        }
        if let Some(c) = repository.split('/').find(|c| !valid_path_component(c)) {
            return Err(bad(&format!(
                "invalid repository component {c:?}: lowercase letters and digits, separated by '.', '_', '__' or '-'"
            )));
        }
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(bad("repository name is longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (tag, _) => tag,
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl FromStr for ImageRef {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// distribution/reference: tag = `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// distribution/reference: path-component = `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// host[:port]: DNS labels (letters, digits, '-') separated by '.', or a
/// bracketed IPv6 address, optionally followed by a numeric port.
fn valid_registry(r: &str) -> bool {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip6, tail)) => {
                if ip6.is_empty() || !ip6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                match tail {
                    "" => return true,
                    t => ("x", t.strip_prefix(':').unwrap_or("bad")),
                }
            }
            None => return false,
        }
    } else {
        match r.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (r, "0"),
        }
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && host.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// input, registry, repository, tag, digest
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    );

    #[test]
    fn reference_parsing_table() {
        let d = D;
        let ok: &[Case] = &[
            (
                "busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            (
                "busybox:1.36",
                "docker.io",
                "library/busybox",
                Some("1.36"),
                None,
            ),
            ("foo/bar", "docker.io", "foo/bar", Some("latest"), None),
            (
                "docker.io/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            (
                "index.docker.io/foo/bar:v1",
                "docker.io",
                "foo/bar",
                Some("v1"),
                None,
            ),
            (
                "localhost/busybox",
                "localhost",
                "busybox",
                Some("latest"),
                None,
            ),
            (
                "localhost:5000/x",
                "localhost:5000",
                "x",
                Some("latest"),
                None,
            ),
            ("localhost:5000/x:y", "localhost:5000", "x", Some("y"), None),
            (
                "quay.io/org/app",
                "quay.io",
                "org/app",
                Some("latest"),
                None,
            ),
            (
                "registry.k8s.io/pause:3.9",
                "registry.k8s.io",
                "pause",
                Some("3.9"),
                None,
            ),
            (
                "a.b/c/d/e_f/g__h/i-j--k:T_1.2-x",
                "a.b",
                "c/d/e_f/g__h/i-j--k",
                Some("T_1.2-x"),
                None,
            ),
            ("[::1]:5000/x", "[::1]:5000", "x", Some("latest"), None),
        ];
        for (input, reg, repo, tag, digest) in ok {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry, *reg, "{input}");
            assert_eq!(r.repository, *repo, "{input}");
            assert_eq!(r.tag.as_deref(), *tag, "{input}");
            assert_eq!(r.digest.as_deref(), *digest, "{input}");
            // Display round-trips through parse.
            assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r, "{input}");
        }
        let r: ImageRef = format!("quay.io/org/app@{d}").parse().unwrap();
        assert_eq!((r.tag.as_deref(), r.digest.as_deref()), (None, Some(d)));
        assert_eq!(r.to_string(), format!("quay.io/org/app@{d}"));
        let r = ImageRef::parse(&format!("busybox:1.36@{d}")).unwrap();
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("1.36"), Some(d))
        );
        assert_eq!(r.to_string(), format!("docker.io/library/busybox:1.36@{d}"));

        let bad = [
            "".to_string(),
            "Busybox".to_string(),
            "foo/Bar".to_string(),
            "busybox:".to_string(),
            "busybox:-x".to_string(),
            "busybox:a/b".to_string(),
            format!("busybox:{}", "x".repeat(129)),
            "busybox@sha256:abc".to_string(),
            format!("busybox@sha512:{}", "a".repeat(64)),
            format!("busybox@sha256:{}", "A".repeat(64)),
            "foo//bar".to_string(),
            "foo/-bar".to_string(),
            "foo/bar_".to_string(),
            "foo/a...b".to_string(),
            "my_host:x/y".to_string(),
            "localhost:99999999/x".to_string(),
            "quay.io/".to_string(),
            "../x".to_string(),
        ];
        for input in bad {
            let err = ImageRef::parse(&input).expect_err(&input).to_string();
            assert!(err.contains(&format!("{input:?}")), "{input}: {err}");
        }
    }
}
