//! `fileKeyRef` variables (KEP-3721, the EnvFiles feature): a key of an env file
//! that an init container wrote into one of the pod's emptyDir volumes. As the kubelet does, the file is read when the container
//! starts, at every start, so a restart sees what the file says then.
//!
//! The file is untrusted (a container wrote it): it is resolved inside its
//! volume (symlinks never lead out), must be a regular file of at most
//! [`MAX_ENV_FILE`] bytes, and is parsed, not executed.

use std::io;

use super::{BundleError, io_err, resolve};
use crate::run_plan::{FileEnv, FileEnvs, RunContainer};

/// The largest env file podshim reads (an env file is a few lines; a bigger one
/// is refused, not read).
pub const MAX_ENV_FILE: u64 = 64 << 10;

/// The value of `key` in env-file `text`: `KEY=VALUE` lines; blank lines and
/// lines starting with `#` are skipped; whitespace around the key and the value
/// is dropped, and one pair of matching quotes around the value. A line without
/// `=` makes the file unparsable. The first definition of a key wins, as the
/// kubelet's ParseEnv returns the first match.
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
        if found.is_some() {
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

/// The value of one variable now: from its file, or `None` for an optional one
/// whose file or key is missing (the variable then keeps what the container had
/// without it: the image's value, or nothing).
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
            return Ok(None);
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
        None if f.optional => Ok(None),
        None => Err(err(format!(
            "key {:?} is not in env file {:?}",
            f.key,
            f.path.as_str()
        ))),
    }
}

/// Where the container's environment as written (before any file was read) is
/// kept, beside its config.json and as private: every start begins from it.
pub fn pristine_env_file(c: &RunContainer) -> std::path::PathBuf {
    c.bundle.join("env.pristine.json")
}

/// Where the bundle writer keeps a container's env as steps
/// ([`crate::run_plan::FileEnvs`]), 0600: it holds values.
pub fn steps_file(bundle: &std::path::Path) -> std::path::PathBuf {
    bundle.join("env.steps.json")
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> Result<Option<T>, BundleError> {
    match crate::fsutil::read_regular(path, super::MAX_CONFIG_BYTES) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_err(path, "parse")(io::Error::other(e))),
        Err(crate::fsutil::ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(crate::fsutil::ReadError::Io(e)) => Err(io_err(path, "read")(e)),
        Err(crate::fsutil::ReadError::TooLarge) => {
            Err(io_err(path, "read")(io::Error::other("too large")))
        }
    }
}

/// Sets `c`'s own variables in its config.json, atomically, as they are now:
/// from the env steps the bundle writer kept, each `fileKeyRef` read from its
/// file and each `value` expanded again with them (a `$(VAR)` may name a
/// file's variable), set in place into the environment as written (saved at
/// the first start) or appended; an optional one that is missing keeps what
/// the environment had. Command and args are expanded again with them too.
/// Every file is read before config.json is touched.
pub fn apply(c: &RunContainer) -> Result<(), BundleError> {
    if c.file_env.is_empty() {
        return Ok(());
    }
    let path = steps_file(&c.bundle);
    let steps: FileEnvs = read_json(&path)?.ok_or_else(|| {
        io_err(&path, "read")(io::Error::new(
            io::ErrorKind::NotFound,
            "the container's env steps are missing (write the bundles again)",
        ))
    })?;
    let values = crate::translate::process::evaluate_env(&steps.vars, |f| value(c, f))?;
    let saved = pristine_env_file(c);
    let pristine: Option<Vec<String>> = read_json(&saved)?;
    super::edit_config(c, |config| {
        let written = config
            .pointer("/process/env")
            .and_then(|e| serde_json::from_value::<Vec<String>>(e.clone()).ok())
            .ok_or_else(|| io_err(&c.config_file(), "read")(io::Error::other("no process.env")))?;
        let mut env = match pristine {
            Some(env) => env,
            None => {
                let text = serde_json::to_string(&written).expect("strings serialize");
                crate::fsutil::write_atomic(&saved, text.as_bytes(), 0o600)
                    .map_err(io_err(&saved, "write"))?;
                written
            }
        };
        for (name, v) in &values {
            crate::translate::process::set_env(&mut env, name, v);
        }
        config["process"]["env"] = serde_json::Value::from(env);
        if !steps.args.is_empty() {
            let argv = crate::translate::process::expand_argv(&steps.args, &values);
            config["process"]["args"] = serde_json::Value::from(argv);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_plan::{ArgStep, EnvStep, FileEnvs};
    use std::fs;

    fn env_of(c: &RunContainer) -> Vec<String> {
        let config: serde_json::Value =
            serde_json::from_slice(&fs::read(c.config_file()).unwrap()).unwrap();
        serde_json::from_value(config["process"]["env"].clone()).unwrap()
    }

    fn args_of(c: &RunContainer) -> Vec<String> {
        let config: serde_json::Value =
            serde_json::from_slice(&fs::read(c.config_file()).unwrap()).unwrap();
        serde_json::from_value(config["process"]["args"].clone()).unwrap()
    }

    #[test]
    fn apply_starts_from_the_written_env_at_every_start() {
        let tmp = tempfile::tempdir().unwrap();
        let mut plan = crate::run_plan::fixture(
            crate::model::RestartPolicy::Always,
            1,
            &[("web", crate::model::ContainerKind::App)],
        );
        let c = &mut plan.containers[0];
        c.bundle = tmp.path().join("bundle");
        fs::create_dir(&c.bundle).unwrap();
        let volume = tmp.path().join("data");
        fs::create_dir(&volume).unwrap();
        // The image gave MODE and a bare FLAG; the container's own A is kept.
        fs::write(
            c.config_file(),
            r#"{"process":{"args":["sh"],"env":["PATH=/bin","MODE=image","FLAG","A=1","SAY=flag is $(FLAG), $(LATER), a=$(A)","LATER=x"]}}"#,
        )
        .unwrap();
        let var = |name: &str, key: &str, optional| FileEnv {
            name: name.into(),
            volume_path: volume.clone(),
            path: crate::model::RelPath::parse("config.env").unwrap(),
            key: key.into(),
            optional,
        };
        let value = |name: &str, value: &str| EnvStep::Value {
            name: name.into(),
            value: value.into(),
        };
        let steps = FileEnvs {
            vars: vec![
                // A Secret's value, say.
                EnvStep::Resolved {
                    name: "A".into(),
                    value: "1".into(),
                },
                EnvStep::File(var("MODE", "MODE", true)),
                EnvStep::File(var("FLAG", "FLAG", false)),
                EnvStep::File(var("NEW", "NEW", true)),
                // A `$(VAR)` naming a file's variable, and one defined after it
                // (left as written, as Kubernetes leaves it).
                value("SAY", "flag is $(FLAG), $(LATER), a=$(A)"),
                value("LATER", "x"),
            ],
            args: vec![
                ArgStep {
                    arg: "/entry$(FLAG)".into(),
                    expand: false,
                },
                ArgStep {
                    arg: "--flag=$(FLAG)".into(),
                    expand: true,
                },
            ],
        };
        std::fs::write(steps_file(&c.bundle), serde_json::to_vec(&steps).unwrap()).unwrap();
        c.file_env = steps.files().cloned().collect();
        fs::write(volume.join("config.env"), "MODE=file\nFLAG=on\nNEW=x\n").unwrap();
        apply(c).unwrap();
        assert_eq!(
            env_of(c),
            [
                "PATH=/bin",
                "MODE=file",
                "FLAG=on",
                "A=1",
                "SAY=flag is on, $(LATER), a=1",
                "LATER=x",
                "NEW=x"
            ]
        );
        assert_eq!(args_of(c), ["/entry$(FLAG)", "--flag=on"]);
        // The next start: MODE and NEW gone from the file, so the image's MODE
        // comes back and NEW is unset; FLAG changed, and what names it with it.
        fs::write(volume.join("config.env"), "FLAG=off\n").unwrap();
        apply(c).unwrap();
        assert_eq!(
            env_of(c),
            [
                "PATH=/bin",
                "MODE=image",
                "FLAG=off",
                "A=1",
                "SAY=flag is off, $(LATER), a=1",
                "LATER=x"
            ]
        );
        assert_eq!(args_of(c), ["/entry$(FLAG)", "--flag=off"]);
        // A required key that is missing fails, naming the variable.
        fs::write(volume.join("config.env"), "MODE=m\n").unwrap();
        let err = apply(c).unwrap_err().to_string();
        assert!(
            err.contains("env FLAG: key \"FLAG\" is not in env file"),
            "{err}"
        );
        // The pristine env is private.
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(pristine_env_file(c))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_env_file_that_links_out_of_its_volume_is_read_inside_it() {
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("data");
        fs::create_dir(&volume).unwrap();
        // A container made the file a link to the host's /etc/passwd.
        std::os::unix::fs::symlink("/etc/passwd", volume.join("config.env")).unwrap();
        let mut plan = crate::run_plan::fixture(
            crate::model::RestartPolicy::Always,
            1,
            &[("web", crate::model::ContainerKind::App)],
        );
        let c = &mut plan.containers[0];
        let f = FileEnv {
            name: "ROOT".into(),
            volume_path: volume.clone(),
            path: crate::model::RelPath::parse("config.env").unwrap(),
            key: "root".into(),
            optional: false,
        };
        let err = value(c, &f).unwrap_err().to_string();
        // Resolved inside the volume: /etc/passwd there does not exist.
        assert!(err.contains("does not exist"), "{err}");
        // A FIFO or an oversized file is refused, not read.
        fs::remove_file(volume.join("config.env")).unwrap();
        nix::unistd::mkfifo(&volume.join("config.env"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = value(c, &f).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        fs::remove_file(volume.join("config.env")).unwrap();
        fs::write(
            volume.join("config.env"),
            vec![b'#'; MAX_ENV_FILE as usize + 1],
        )
        .unwrap();
        let err = value(c, &f).unwrap_err().to_string();
        assert!(err.contains("larger than 65536 bytes"), "{err}");
    }

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
        // The first definition wins.
        assert_eq!(
            lookup(text, "CONFIG_VAR").unwrap().as_deref(),
            Some("HELLO")
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
