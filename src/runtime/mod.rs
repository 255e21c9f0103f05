//! The OCI runtime, driven through its CLI (runc, youki, crun or any
//! runc-compatible program): `trait OciRuntime` and the CLI client.
//!
//! Child processes are started through a [`Spawner`], so that inside the supervisor
//! the one reaper waits for them (DESIGN.md rule 3) while the short-lived CLI
//! commands (`down`, `exec`) simply wait themselves.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Starts a command and collects its output and exit status.
pub trait Spawner: Send + Sync {
    fn output(&self, cmd: Command) -> std::io::Result<Output>;
}

/// `Command::output`, for processes that are not the supervisor.
pub struct DirectSpawner;

impl Spawner for DirectSpawner {
    fn output(&self, mut cmd: Command) -> std::io::Result<Output> {
        cmd.output()
    }
}

/// Where and how to run the runtime CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `runc` (looked up in PATH) or a path.
    pub program: PathBuf,
    /// Extra global flags (`--runtime-arg`), before the verb.
    pub global_args: Vec<String>,
    /// `--root` of the runtime's state, when not its default.
    pub root: Option<PathBuf>,
}
