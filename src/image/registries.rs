//! Where images are pulled from, in the containers ecosystem's own format:
//! `registries.conf` version 2 (containers-registries.conf(5)) and its drop-ins
//! in `registries.conf.d/*.conf` (containers-registries.conf.d(5)).
//!
//! What is implemented, and how:
//!
//! | key                                   | meaning here                                                     |
//! |---------------------------------------|------------------------------------------------------------------|
//! | `unqualified-search-registries`       | short names (`nginx`) are tried in these registries, in order;  |
//! |                                       | unset or empty: `docker.io`, as Kubernetes and docker normalise   |
//! | `[[registry]] prefix`                 | matched against `host[:port]/repo` at path boundaries, longest   |
//! |                                       | prefix wins; `*.example.com` matches sub-domains; default: location |
//! | `[[registry]] location`               | replaces the matched prefix (a `docker.io` prefix may point at     |
//! |                                       | `127.0.0.1:5000`)                                                |
//! | `insecure`                            | plain HTTP allowed, TLS certificates not verified                  |
//! | `blocked`                             | pulls from the prefix are refused                                 |
//! | `mirror-by-digest-only`               | mirrors used only for digest references                           |
//! | `[[registry.mirror]] location/insecure` | tried in order before the location                             |
//! | `[[registry.mirror]] pull-from-mirror`  | `all` (default), `digest-only`, `tag-only`                      |
//! | `[aliases]`                           | short name → full name, checked before the search registries       |
//!
//! Drop-ins are read in file-name order after the main file: a `[[registry]]`
//! with the same prefix replaces the earlier one, a set
//! `unqualified-search-registries` replaces the earlier list, aliases merge.
//! `short-name-mode` and `credential-helpers` are accepted and ignored (podshim
//! never prompts, and reads credentials from auth files only); other keys are
//! warned about. Registries on a loopback address are insecure by default, as
//! docker treats `127.0.0.0/8`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ImageError, ImageRef, PullFailure};

/// The system-wide file.
pub const DEFAULT_REGISTRIES_CONF: &str = "/etc/containers/registries.conf";
/// Where docker and Kubernetes send unqualified names.
const DOCKER_HUB: &str = "docker.io";
/// Keys other tools put in registries.conf that podshim has no use for.
const IGNORED_KEYS: &[&str] = &[
    "short-name-mode",
    "credential-helpers",
    "additional-layer-store-auth-helper",
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileV2 {
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<RegistryToml>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RegistryToml {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<MirrorToml>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct MirrorToml {
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

/// When a mirror may serve a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorUse {
    All,
    DigestOnly,
    TagOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
    pub pull_from: MirrorUse,
}

/// One `[[registry]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub prefix: String,
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirror_by_digest_only: bool,
    pub mirrors: Vec<Mirror>,
}

/// A parsed registries.conf (plus drop-ins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    /// Files read, for error messages.
    pub sources: Vec<PathBuf>,
    pub unqualified_search: Vec<String>,
    pub registries: Vec<Registry>,
    pub aliases: BTreeMap<String, String>,
}

/// A place to pull one image from: `registry` (host[:port]) and
/// `repository` there, after prefix rewriting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub registry: String,
    pub repository: String,
    pub insecure: bool,
    /// A mirror (else the location itself).
    pub mirror: bool,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.registry)
    }
}

/// Loopback registries are insecure by default (docker's rule for 127.0.0.0/8).
fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => registry.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Split a location `host[:port][/path]` into registry and path prefix.
fn split_location(loc: &str) -> (&str, &str) {
    match loc.split_once('/') {
        Some((host, path)) => (host, path.trim_end_matches('/')),
        None => (loc, ""),
    }
}

impl RegistriesConf {
    /// Load `path` (default: [`DEFAULT_REGISTRIES_CONF`], absent is fine) and
    /// the drop-ins in `registries.conf.d/` beside it. A path given explicitly
    /// must exist.
    pub fn load(path: Option<&Path>) -> Result<RegistriesConf, ImageError> {
        let (file, must_exist) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_REGISTRIES_CONF), false),
        };
        let mut conf = RegistriesConf::default();
        match std::fs::read_to_string(&file) {
            Ok(text) => conf.merge(&text, &file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {}
            Err(e) => return Err(ImageError::io(&file, e)),
        }
        let dropins = file
            .parent()
            .unwrap_or(Path::new("."))
            .join("registries.conf.d");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dropins)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| ImageError::io(&f, e))?;
            conf.merge(&text, &f)?;
        }
        Ok(conf)
    }

    /// Parse one file's text (as from `source`).
    pub fn parse(text: &str, source: &Path) -> Result<RegistriesConf, ImageError> {
        let mut conf = RegistriesConf::default();
        conf.merge(text, source)?;
        Ok(conf)
    }

    fn merge(&mut self, text: &str, source: &Path) -> Result<(), ImageError> {
        let bad = |reason: String| ImageError::invalid(source.display(), reason);
        let file: FileV2 = toml::from_str(text).map_err(|e| {
            bad(e
                .to_string()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("; "))
        })?;
        self.sources.push(source.to_path_buf());
        for key in file.other.keys() {
            if key == "registries" {
                return Err(bad(
                    "the version 1 format ([registries.search] ...) is not supported; use version 2 ([[registry]], unqualified-search-registries)".into(),
                ));
            }
            if !IGNORED_KEYS.contains(&key.as_str()) {
                tracing::warn!(file = %source.display(), key = %key, "registries.conf: unknown key ignored");
            }
        }
        if let Some(list) = file.unqualified_search_registries {
            self.unqualified_search = list;
        }
        for (i, r) in file.registry.into_iter().enumerate() {
            let what = format!("registry[{i}]");
            let location = r.location.clone().unwrap_or_default();
            let prefix = match (r.prefix, r.location) {
                (Some(p), _) => p,
                (None, Some(l)) => l,
                (None, None) => {
                    return Err(bad(format!("{what}: needs a prefix or a location")));
                }
            };
            let prefix = prefix.trim_end_matches('/').to_string();
            if prefix.is_empty() {
                return Err(bad(format!("{what}: empty prefix")));
            }
            if prefix.contains("://") || location.contains("://") {
                return Err(bad(format!(
                    "{what}: prefix and location are host[:port][/path], without a scheme"
                )));
            }
            if prefix.starts_with("*.") && !location.is_empty() {
                // containers-registries.conf(5): a wildcard prefix has no location.
                return Err(bad(format!(
                    "{what}: a wildcard prefix ({prefix}) cannot have a location"
                )));
            }
            let mut mirrors = Vec::new();
            for (j, m) in r.mirror.into_iter().enumerate() {
                let pull_from = match m.pull_from_mirror.as_deref() {
                    None | Some("all") => MirrorUse::All,
                    Some("digest-only") => MirrorUse::DigestOnly,
                    Some("tag-only") => MirrorUse::TagOnly,
                    Some(other) => {
                        return Err(bad(format!(
                            "{what}.mirror[{j}].pull-from-mirror: {other:?} is not one of all, digest-only, tag-only"
                        )));
                    }
                };
                if m.location.contains("://") {
                    return Err(bad(format!(
                        "{what}.mirror[{j}].location: host[:port][/path], without a scheme"
                    )));
                }
                mirrors.push(Mirror {
                    location: m.location.trim_end_matches('/').to_string(),
                    insecure: m.insecure,
                    pull_from,
                });
            }
            let entry = Registry {
                location: if location.is_empty() {
                    prefix.clone()
                } else {
                    location.trim_end_matches('/').to_string()
                },
                prefix,
                insecure: r.insecure,
                blocked: r.blocked,
                mirror_by_digest_only: r.mirror_by_digest_only,
                mirrors,
            };
            match self
                .registries
                .iter_mut()
                .find(|e| e.prefix == entry.prefix)
            {
                Some(existing) => *existing = entry,
                None => self.registries.push(entry),
            }
        }
        self.aliases.extend(file.aliases);
        Ok(())
    }

    /// The `[[registry]]` whose prefix matches `name` (`host[:port]/repo`)
    /// best: the longest, at a path boundary; wildcards after exact ones.
    pub fn find(&self, name: &str) -> Option<&Registry> {
        let (host, _) = split_location(name);
        self.registries
            .iter()
            .filter_map(|r| {
                if let Some(suffix) = r.prefix.strip_prefix('*') {
                    // `*.example.com` matches `a.example.com` (not example.com).
                    return host.ends_with(suffix).then_some((0, r));
                }
                let matches = name == r.prefix
                    || name
                        .strip_prefix(r.prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'));
                matches.then_some((r.prefix.len() + 1, r))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, r)| r)
    }

    /// Where to pull `image` from, in order: the mirrors that may serve it,
    /// then the (possibly rewritten) location. Refused when blocked.
    pub fn endpoints(&self, image: &ImageRef) -> Result<Vec<Endpoint>, ImageError> {
        let name = image.name();
        let Some(reg) = self.find(&name) else {
            return Ok(vec![Endpoint {
                insecure: is_loopback(&image.registry),
                registry: image.registry.clone(),
                repository: image.repository.clone(),
                mirror: false,
            }]);
        };
        if reg.blocked {
            return Err(ImageError::Pull {
                image: image.to_string(),
                registry: image.registry.clone(),
                kind: PullFailure::Blocked,
                detail: format!(
                    "prefix {} is blocked in {}",
                    reg.prefix,
                    self.sources_display()
                ),
            });
        }
        // The part of the name after the prefix (empty for a wildcard
        // prefix, whose location is the name itself).
        let rest = if reg.prefix.starts_with('*') {
            None
        } else {
            Some(&name[reg.prefix.len()..])
        };
        let rewrite = |location: &str, insecure: bool, mirror: bool| -> Endpoint {
            let full = match rest {
                Some(rest) => format!("{location}{rest}"),
                None => name.clone(),
            };
            let (host, path) = split_location(&full);
            Endpoint {
                registry: host.to_string(),
                repository: path.to_string(),
                insecure: insecure || is_loopback(host),
                mirror,
            }
        };
        let by_digest = image.digest.is_some();
        let mut out = Vec::new();
        if !reg.mirror_by_digest_only || by_digest {
            for m in &reg.mirrors {
                let usable = match m.pull_from {
                    MirrorUse::All => true,
                    MirrorUse::DigestOnly => by_digest,
                    MirrorUse::TagOnly => !by_digest,
                };
                if usable {
                    out.push(rewrite(&m.location, m.insecure, true));
                }
            }
        }
        out.push(rewrite(&reg.location, reg.insecure, false));
        Ok(out)
    }

    /// The full names a reference as written may mean. A qualified name (its
    /// first component has a `.` or `:` or is `localhost`) means itself; a
    /// short name means its alias if it has one, else itself in each
    /// unqualified-search registry (docker.io when there are none).
    pub fn candidates(&self, written: &str) -> Result<Vec<ImageRef>, ImageError> {
        let parsed = ImageRef::parse(written)?;
        if is_qualified(written) {
            return Ok(vec![parsed]);
        }
        // The repository as written (no tag or digest, no library/ yet).
        let (rest, digest) = match written.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (written, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (short, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let suffix = |base: &str| {
            let mut s = base.to_string();
            if let Some(t) = tag {
                s.push(':');
                s.push_str(t);
            }
            if let Some(d) = digest {
                s.push('@');
                s.push_str(d);
            }
            s
        };
        let alias = self.aliases.get(short).or_else(|| {
            self.aliases
                .get(&format!("{DOCKER_HUB}/{}", parsed.repository))
        });
        if let Some(target) = alias {
            let r = ImageRef::parse(&suffix(target)).map_err(|e| {
                ImageError::invalid(
                    self.sources_display(),
                    format!("alias {short:?} = {target:?}: {e}"),
                )
            })?;
            return Ok(vec![r]);
        }
        if self.unqualified_search.is_empty() {
            return Ok(vec![parsed]);
        }
        self.unqualified_search
            .iter()
            .map(|reg| {
                ImageRef::parse(&suffix(&format!("{reg}/{short}"))).map_err(|e| {
                    ImageError::invalid(
                        self.sources_display(),
                        format!("unqualified-search-registries {reg:?}: {e}"),
                    )
                })
            })
            .collect()
    }

    fn sources_display(&self) -> String {
        if self.sources.is_empty() {
            "(no registries.conf)".to_string()
        } else {
            self.sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// Whether a reference as written names its registry (distribution/reference's rule).
pub fn is_qualified(written: &str) -> bool {
    match written.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        RegistriesConf::parse(text, Path::new("/test/registries.conf")).unwrap()
    }

    fn eps(c: &RegistriesConf, r: &str) -> Vec<(String, String, bool, bool)> {
        c.endpoints(&ImageRef::parse(r).unwrap())
            .unwrap()
            .into_iter()
            .map(|e| (e.registry, e.repository, e.insecure, e.mirror))
            .collect()
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn no_config_pulls_from_the_named_registry() {
        let c = RegistriesConf::default();
        assert_eq!(
            eps(&c, "nginx"),
            [(s("docker.io"), s("library/nginx"), false, false)]
        );
        assert_eq!(
            eps(&c, "127.0.0.1:5000/x:1"),
            [(s("127.0.0.1:5000"), s("x"), true, false)]
        );
        assert_eq!(
            eps(&c, "localhost/x"),
            [(s("localhost"), s("x"), true, false)]
        );
    }

    #[test]
    fn prefix_location_and_mirrors_in_order() {
        let c = conf(
            r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io"
location = "127.0.0.1:5000"
[[registry.mirror]]
location = "mirror.local:1234/hub"
insecure = true
[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "docker.io/library/busybox"
location = "quay.io/other/bb"

[[registry]]
location = "quay.io"
blocked = true

[[registry]]
prefix = "*.corp.example"
insecure = true
"#,
        );
        assert_eq!(
            eps(&c, "nginx"),
            [
                (s("mirror.local:1234"), s("hub/library/nginx"), true, true),
                (s("127.0.0.1:5000"), s("library/nginx"), true, false),
            ]
        );
        let d = format!("nginx@sha256:{}", "a".repeat(64));
        assert_eq!(eps(&c, &d).len(), 3);
        // Longest prefix wins, at a path boundary.
        assert_eq!(
            eps(&c, "busybox"),
            [(s("quay.io"), s("other/bb"), false, false)]
        );
        assert_eq!(
            eps(&c, "busyboxer")[1],
            (s("127.0.0.1:5000"), s("library/busyboxer"), true, false)
        );
        let err = c
            .endpoints(&ImageRef::parse("quay.io/a/b").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("quay.io/a/b:latest") && err.contains("blocked"),
            "{err}"
        );
        assert_eq!(
            eps(&c, "reg.corp.example/app"),
            [(s("reg.corp.example"), s("app"), true, false)]
        );
    }

    #[test]
    fn short_names_aliases_and_search_registries() {
        let c = conf(
            r#"
unqualified-search-registries = ["127.0.0.1:5000", "docker.io"]
[aliases]
"pause" = "registry.k8s.io/pause"
"#,
        );
        let names = |w: &str| -> Vec<String> {
            c.candidates(w)
                .unwrap()
                .iter()
                .map(|r| r.to_string())
                .collect()
        };
        assert_eq!(
            names("nginx:1.25"),
            ["127.0.0.1:5000/nginx:1.25", "docker.io/library/nginx:1.25"]
        );
        assert_eq!(names("pause:3.9"), ["registry.k8s.io/pause:3.9"]);
        assert_eq!(names("quay.io/a/b"), ["quay.io/a/b:latest"]);
        assert_eq!(names("localhost/a"), ["localhost/a:latest"]);
        let none = RegistriesConf::default();
        assert_eq!(
            none.candidates("nginx").unwrap()[0].to_string(),
            "docker.io/library/nginx:latest"
        );
    }

    #[test]
    fn dropins_override_and_bad_files_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("registries.conf");
        std::fs::write(
            &main,
            "unqualified-search-registries = [\"a.example\"]\nshort-name-mode = \"enforcing\"\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"one.example\"\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("registries.conf.d")).unwrap();
        std::fs::write(
            dir.path().join("registries.conf.d/10-x.conf"),
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"two.example\"\n[aliases]\nfoo = \"quay.io/foo/foo\"\n",
        )
        .unwrap();
        let c = RegistriesConf::load(Some(&main)).unwrap();
        assert_eq!(c.unqualified_search, ["a.example"]);
        assert_eq!(c.registries.len(), 1);
        assert_eq!(c.registries[0].location, "two.example");
        assert_eq!(c.aliases["foo"], "quay.io/foo/foo");

        let err = RegistriesConf::parse(
            "[registries.search]\nregistries = []\n",
            Path::new("/x.conf"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/x.conf") && err.contains("version 1"),
            "{err}"
        );
        let err = RegistriesConf::parse("[[registry]]\ninsecure = 3\n", Path::new("/y.conf"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/y.conf:") && !err.contains('\n'), "{err}");
        assert!(RegistriesConf::load(Some(&dir.path().join("missing"))).is_err());
    }
}
