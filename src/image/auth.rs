//! Registry credentials from the files podman, skopeo and docker write
//! (containers-auth.json(5)): `$REGISTRY_AUTH_FILE`,
//! `${XDG_RUNTIME_DIR}/containers/auth.json`, then `$DOCKER_CONFIG/config.json`
//! or `~/.docker/config.json`. The first file with an entry for the registry
//! wins. Entries are `"auths": {"host[:port][/repo]": {"auth": base64("user:password")}}`;
//! docker's `https://index.docker.io/v1/` key means docker.io. The most
//! specific key (a repository path before its host) is used, as containers/image does.
//! Credential helpers (`credHelpers`, `credsStore`) are not run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::ImageError;

#[derive(Debug, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// A user name and password for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
    /// The file it came from.
    pub source: PathBuf,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        write!(
            f,
            "Credential({} from {})",
            self.username,
            self.source.display()
        )
    }
}

/// The auth files to search, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFiles {
    pub files: Vec<PathBuf>,
}

impl AuthFiles {
    /// The standard list, from the environment.
    pub fn from_env() -> AuthFiles {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let mut files = Vec::new();
        if let Some(f) = var("REGISTRY_AUTH_FILE") {
            files.push(PathBuf::from(f));
        }
        if let Some(d) = var("XDG_RUNTIME_DIR") {
            files.push(Path::new(&d).join("containers/auth.json"));
        }
        if let Some(d) = var("DOCKER_CONFIG") {
            files.push(Path::new(&d).join("config.json"));
        } else if let Some(h) = var("HOME") {
            files.push(Path::new(&h).join(".docker/config.json"));
        }
        AuthFiles { files }
    }

    /// Only this file.
    pub fn file(path: impl Into<PathBuf>) -> AuthFiles {
        AuthFiles {
            files: vec![path.into()],
        }
    }

    /// Credentials for `registry/repository`, or None (anonymous).
    pub fn lookup(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credential>, ImageError> {
        for f in &self.files {
            let bytes = match std::fs::read(f) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ImageError::io(f, e)),
            };
            let parsed: AuthFile = serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::invalid(f.display(), e.to_string()))?;
            if let Some(c) = find(&parsed, registry, repository, f)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `host/` → `host`.
fn normalise_key(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let k = k
        .strip_suffix("/v1/")
        .or_else(|| k.strip_suffix("/v2/"))
        .or_else(|| k.strip_suffix("/v1"))
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k)
        .trim_end_matches('/');
    match k.split_once('/') {
        Some(("index.docker.io" | "registry-1.docker.io", rest)) => format!("docker.io/{rest}"),
        _ if k == "index.docker.io" || k == "registry-1.docker.io" => "docker.io".to_string(),
        _ => k.to_string(),
    }
}

fn find(
    file: &AuthFile,
    registry: &str,
    repository: &str,
    source: &Path,
) -> Result<Option<Credential>, ImageError> {
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    let full = format!("{registry}/{repository}");
    let best = file
        .auths
        .iter()
        .filter_map(|(k, v)| {
            let k = normalise_key(k);
            let hit = k == registry
                || full == k
                || full
                    .strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with('/'));
            hit.then_some((k.len(), k, v))
        })
        .max_by_key(|(len, _, _)| *len);
    let Some((_, key, entry)) = best else {
        return Ok(None);
    };
    let bad =
        |reason: &str| ImageError::invalid(source.display(), format!("auths[{key:?}]: {reason}"));
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("auth is not base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| bad("auth is not UTF-8"))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| bad("auth is not base64 of user:password"))?;
        return Ok(Some(Credential {
            username: u.to_string(),
            password: p.to_string(),
            source: source.to_path_buf(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(Some(Credential {
            username: u.clone(),
            password: p.clone(),
            source: source.to_path_buf(),
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn first_file_with_an_entry_wins_and_the_most_specific_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(
            &a,
            format!(
                r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{}"}}, "127.0.0.1:5000/team/app": {{"auth": "{}"}}}}}}"#,
                b64("u1:p1"),
                b64("u2:p:2")
            ),
        )
        .unwrap();
        std::fs::write(
            &b,
            format!(
                r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}, "127.0.0.1:5000": {{"auth": "{}"}}}}}}"#,
                b64("hub:s3cret-hub-password"),
                b64("other:x")
            ),
        )
        .unwrap();
        let files = AuthFiles {
            files: vec![dir.path().join("missing.json"), a.clone(), b.clone()],
        };
        let c = files.lookup("127.0.0.1:5000", "x").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u1", "p1"));
        assert_eq!(c.source, a);
        let c = files.lookup("127.0.0.1:5000", "team/app").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u2", "p:2"));
        let c = files.lookup("docker.io", "library/nginx").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.source.as_path()),
            ("hub", b.as_path())
        );
        assert!(files.lookup("quay.io", "x").unwrap().is_none());
        // The password is never in its Debug form (the source path, a random
        // temporary name, may contain any short string).
        assert!(!format!("{c:?}").contains("s3cret-hub-password"));
    }

    #[test]
    fn broken_entries_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        std::fs::write(&a, r#"{"auths": {"r.example": {"auth": "!!"}}}"#).unwrap();
        let err = AuthFiles::file(&a)
            .lookup("r.example", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.json") && err.contains("base64"), "{err}");
    }
}
