//! The runtime's argv, one pure function per verb (runc's CLI, which youki and
//! crun follow). Global flags come before the verb: `--root`, the configured
//! extra flags, then `--log <file> --log-format json` when a log file is given.

use std::ffi::OsString;
use std::path::Path;

use super::RuntimeConfig;

/// What `create` needs besides the bundle and id (the argv part of
/// [`super::CreateOptions`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateFlags<'a> {
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

/// The flags before the verb.
pub fn global_args(config: &RuntimeConfig, log: Option<&Path>) -> Vec<OsString> {
    let mut a = Vec::new();
    if let Some(root) = &config.root {
        a.push(os("--root"));
        a.push(os(root));
    }
    a.extend(config.global_args.iter().map(os));
    if let Some(log) = log {
        a.push(os("--log"));
        a.push(os(log));
        a.push(os("--log-format"));
        a.push(os("json"));
    }
    a
}

fn verb(config: &RuntimeConfig, log: Option<&Path>, verb: &str) -> Vec<OsString> {
    let mut a = global_args(config, log);
    a.push(os(verb));
    a
}

/// `create --bundle <bundle> [--pid-file p] [--console-socket s] [--no-pivot] <id>`
pub fn create_args(
    config: &RuntimeConfig,
    log: Option<&Path>,
    id: &str,
    bundle: &Path,
    flags: CreateFlags<'_>,
) -> Vec<OsString> {
    bundle_verb_args(verb(config, log, "create"), id, bundle, flags)
}

/// `run --detach --bundle <dir> [--pid-file <f>] [--console-socket <s>] [--no-pivot] <id>`:
/// create and start in one runtime invocation.
pub fn run_detached_args(
    config: &RuntimeConfig,
    log: Option<&Path>,
    id: &str,
    bundle: &Path,
    flags: CreateFlags<'_>,
) -> Vec<OsString> {
    let mut a = verb(config, log, "run");
    a.push(os("--detach"));
    bundle_verb_args(a, id, bundle, flags)
}

fn bundle_verb_args(
    mut a: Vec<OsString>,
    id: &str,
    bundle: &Path,
    flags: CreateFlags<'_>,
) -> Vec<OsString> {
    a.push(os("--bundle"));
    a.push(os(bundle));
    if let Some(p) = flags.pid_file {
        a.push(os("--pid-file"));
        a.push(os(p));
    }
    if let Some(s) = flags.console_socket {
        a.push(os("--console-socket"));
        a.push(os(s));
    }
    if flags.no_pivot {
        a.push(os("--no-pivot"));
    }
    a.push(os(id));
    a
}

/// `start <id>`
pub fn start_args(config: &RuntimeConfig, log: Option<&Path>, id: &str) -> Vec<OsString> {
    let mut a = verb(config, log, "start");
    a.push(os(id));
    a
}

/// `state <id>`
pub fn state_args(config: &RuntimeConfig, log: Option<&Path>, id: &str) -> Vec<OsString> {
    let mut a = verb(config, log, "state");
    a.push(os(id));
    a
}

/// `kill [--all] <id> <signal>`; the signal is passed as given (`SIGTERM`,
/// `TERM` and `15` are all understood by runc and youki).
pub fn kill_args(
    config: &RuntimeConfig,
    log: Option<&Path>,
    id: &str,
    signal: &str,
    all: bool,
) -> Vec<OsString> {
    let mut a = verb(config, log, "kill");
    if all {
        a.push(os("--all"));
    }
    a.push(os(id));
    a.push(os(signal));
    a
}

/// `update --resources FILE <id>`: the file holds the runtime-spec's
/// `linux.resources` (runc and youki both read it so).
pub fn update_args(
    config: &RuntimeConfig,
    log: Option<&Path>,
    id: &str,
    resources: &Path,
) -> Vec<OsString> {
    let mut a = verb(config, log, "update");
    a.push(os("--resources"));
    a.push(resources.as_os_str().to_owned());
    a.push(os(id));
    a
}

/// `delete [--force] <id>`
pub fn delete_args(
    config: &RuntimeConfig,
    log: Option<&Path>,
    id: &str,
    force: bool,
) -> Vec<OsString> {
    let mut a = verb(config, log, "delete");
    if force {
        a.push(os("--force"));
    }
    a.push(os(id));
    a
}

/// `list --format json`
pub fn list_args(config: &RuntimeConfig, log: Option<&Path>) -> Vec<OsString> {
    let mut a = verb(config, log, "list");
    a.push(os("--format"));
    a.push(os("json"));
    a
}

/// `features` (runtime-spec features.md; runc >= 1.1, youki, crun >= 1.7)
pub fn features_args(config: &RuntimeConfig, log: Option<&Path>) -> Vec<OsString> {
    verb(config, log, "features")
}

/// `ps --format json <id>`
pub fn ps_args(config: &RuntimeConfig, log: Option<&Path>, id: &str) -> Vec<OsString> {
    let mut a = verb(config, log, "ps");
    a.push(os("--format"));
    a.push(os("json"));
    a.push(os(id));
    a
}

/// `exec --pid-file F <id> <args>...`: a probe's or hook's command, in the
/// container's process settings (no `--` after the id: see [`exec_args`]).
pub fn exec_probe_args(
    config: &RuntimeConfig,
    log: Option<&Path>,
    id: &str,
    args: &[String],
    pid_file: &Path,
) -> Vec<OsString> {
    let mut a = verb(config, log, "exec");
    a.push(os("--pid-file"));
    a.push(os(pid_file));
    a.push(os(id));
    a.extend(args.iter().map(os));
    a
}

/// `exec [--tty] [--env K=V]... [--cwd dir] <id> <args>...`. No `--` after the
/// id: runc stops parsing flags at the id and would take a `--` as the program.
pub fn exec_args(
    config: &RuntimeConfig,
    log: Option<&Path>,
    id: &str,
    args: &[String],
    tty: bool,
    env: &[(String, String)],
    cwd: Option<&Path>,
) -> Vec<OsString> {
    let mut a = verb(config, log, "exec");
    if tty {
        a.push(os("--tty"));
    }
    for (k, v) in env {
        a.push(os("--env"));
        a.push(os(format!("{k}={v}")));
    }
    if let Some(cwd) = cwd {
        a.push(os("--cwd"));
        a.push(os(cwd));
    }
    a.push(os(id));
    a.extend(args.iter().map(os));
    a
}
