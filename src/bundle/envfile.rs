//! `fileKeyRef` variables (KEP-3721, the EnvFiles feature): a key of an env file
//! that an init container (or the host, through a hostPath) wrote into one of
//! the pod's volumes. As the kubelet does, the file is read when the container
//! starts, at every start, so a restart sees what the file says then.
//!
//! The file is untrusted (a container wrote it): it is resolved inside its
//! volume (symlinks never lead out), must be a regular file of at most
//! [`MAX_ENV_FILE`] bytes, and is parsed, not executed.

use std::io;

use super::{BundleError, io_err, resolve};
use crate::run_plan::{FileEnv, RunContainer};

/// The largest env file podshim reads (an env file is a few lines; a bigger one
/// is refused, not read).
pub const MAX_ENV_FILE: u64 = 64 << 10;

/// The value of `key` in env-file `text`: `KEY=VALUE` lines; blank lines and
/// lines starting with `#` are skipped; whitespace around the key and the value
/// is dropped, and one pair of matching quotes around the value. A line without
/// `=` makes the file unparsable. The last definition of a key wins.
pub fn lookup(text: &str, key: &str) -> Result<Option<String>, String> {
    let mut found = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: not KEY=VALUE", n + 1));
        };
        // execve(2) ends a variable at NUL: such a value cannot be passed on.
        if line.contains('\0') {
            return Err(format!("line {}: has a NUL byte", n + 1));
        }
        if k.trim() != key {
            continue;
        }
        let v = v.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| v.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .filter(|_| v.len() >= 2);
        found = Some(unquoted.unwrap_or(v).to_string());
    }
    Ok(found)
}

/// The value of one variable now: from its file, else (optional) its base.
fn value(c: &RunContainer, f: &FileEnv) -> Result<Option<String>, BundleError> {
    let err = |message: String| BundleError::EnvFile {
        container: c.name.clone(),
        name: f.name.clone(),
        message,
    };
    let parts: Vec<&str> = f.path.as_str().split('/').collect();
    let text = resolve::read_in_root(&f.volume_path, &parts, MAX_ENV_FILE)
        .map_err(|e| err(format!("env file {e}")))?;
    let Some(text) = text else {
        if f.optional {
            return Ok(f.base.clone());
        }
        return Err(err(format!(
            "env file {:?} does not exist",
            f.path.as_str()
        )));
    };
    let text = String::from_utf8(text)
        .map_err(|_| err(format!("env file {:?} is not UTF-8", f.path.as_str())))?;
    match lookup(&text, &f.key).map_err(|e| err(format!("env file {:?}: {e}", f.path.as_str())))? {
        Some(v) => Ok(Some(v)),
        None if f.optional => Ok(f.base.clone()),
        None => Err(err(format!(
            "key {:?} is not in env file {:?}",
            f.key,
            f.path.as_str()
        ))),
    }
}

/// Sets `c`'s `fileKeyRef` variables in its config.json (in place, else at the
/// end; an optional one that is missing gets its base value back, or is
/// removed), atomically.
pub fn apply(c: &RunContainer) -> Result<(), BundleError> {
    if c.file_env.is_empty() {
        return Ok(());
    }
    let values = c
        .file_env
        .iter()
        .map(|f| Ok((f.name.as_str(), value(c, f)?)))
        .collect::<Result<Vec<_>, BundleError>>()?;
    let path = c.config_file();
    let bytes = crate::fsutil::read_regular(&path, super::MAX_CONFIG_BYTES).map_err(|e| {
        io_err(&path, "read")(match e {
            crate::fsutil::ReadError::Io(e) => e,
            crate::fsutil::ReadError::TooLarge => io::Error::other("too large"),
        })
    })?;
    let mut config: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| io_err(&path, "parse")(io::Error::other(e)))?;
    let Some(env) = config
        .pointer_mut("/process/env")
        .and_then(|e| e.as_array_mut())
    else {
        return Err(io_err(&path, "read")(io::Error::other("no process.env")));
    };
    for (name, value) in values {
        let prefix = format!("{name}=");
        let at = env
            .iter()
            .position(|e| e.as_str().is_some_and(|e| e.starts_with(&prefix)));
        match (at, value) {
            (Some(i), Some(v)) => env[i] = format!("{name}={v}").into(),
            (None, Some(v)) => env.push(format!("{name}={v}").into()),
            (Some(i), None) => {
                env.remove(i);
            }
            (None, None) => {}
        }
    }
    let text = crate::translate::render_value(config);
    crate::fsutil::write_atomic(&path, text.as_bytes(), 0o600).map_err(io_err(&path, "write"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_are_parsed_as_key_value_with_comments_and_quotes() {
        let text = "# made by init\n\nCONFIG_VAR=HELLO\n  SPACED = two words  \nQUOTED=\"a b\"\nSINGLE='x=y'\nEMPTY=\nCONFIG_VAR=AGAIN\n";
        assert_eq!(
            lookup(text, "SPACED").unwrap().as_deref(),
            Some("two words")
        );
        assert_eq!(lookup(text, "QUOTED").unwrap().as_deref(), Some("a b"));
        assert_eq!(lookup(text, "SINGLE").unwrap().as_deref(), Some("x=y"));
        assert_eq!(lookup(text, "EMPTY").unwrap().as_deref(), Some(""));
        // The last definition wins.
        assert_eq!(
            lookup(text, "CONFIG_VAR").unwrap().as_deref(),
            Some("AGAIN")
        );
        assert_eq!(lookup(text, "MISSING").unwrap(), None);
        // A lone quote is kept as it is.
        assert_eq!(lookup("Q=\"\n", "Q").unwrap().as_deref(), Some("\""));
        assert_eq!(
            lookup("A=1\nrm -rf /\n", "A").unwrap_err(),
            "line 2: not KEY=VALUE"
        );
        assert_eq!(
            lookup("A=x\0y\n", "A").unwrap_err(),
            "line 1: has a NUL byte"
        );
    }
}
