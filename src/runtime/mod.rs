//! The OCI runtime, driven through its CLI (runc, youki, crun or any
//! runc-compatible program): `trait OciRuntime` and the CLI client.
//!
//! Child processes are started through a [`Spawner`] (the CLI commands wait for
//! them), or started without waiting ([`PendingRun`]) so that the supervisor's event
//! loop, their one waiter, reaps them (ARCHITECTURE.md rule 3).

pub mod advisories;
pub mod args;
mod cli;
mod error;
mod state;

#[cfg(test)]
mod real_tests;
#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use cli::{CliRuntime, PendingRun};
pub use error::{Invocation, RuntimeError, last_log_error};
pub use state::{ContainerState, Status, parse_list, parse_pids, parse_state};

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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuntimeConfig {
    /// `runc` (looked up in PATH) or a path.
    pub program: PathBuf,
    /// Extra global flags (`--runtime-arg`), before the verb.
    pub global_args: Vec<String>,
    /// `--root` of the runtime's state, when not its default.
    pub root: Option<PathBuf>,
}

/// Why `--runtime` names no usable program.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("runtime is empty: give a name (runc) or a path")]
    Empty,
    #[error("runtime `{name}` not found in PATH: {source}")]
    NotInPath { name: String, source: which::Error },
    #[error("runtime {}: {source}", path.display())]
    Missing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("runtime {}: not an executable file", path.display())]
    NotExecutable { path: PathBuf },
}

impl RuntimeConfig {
    /// A bare name (`runc`) is looked up in PATH; anything with a `/` is a path,
    /// which must be an executable file (made absolute, so a later `chdir`
    /// does not change what runs).
    pub fn resolve(
        name_or_path: &str,
        global_args: Vec<String>,
        root: Option<PathBuf>,
    ) -> Result<RuntimeConfig, ResolveError> {
        if name_or_path.is_empty() {
            return Err(ResolveError::Empty);
        }
        let program = if name_or_path.contains('/') {
            let path = std::path::absolute(Path::new(name_or_path)).map_err(|source| {
                ResolveError::Missing {
                    path: name_or_path.into(),
                    source,
                }
            })?;
            let meta = std::fs::metadata(&path).map_err(|source| ResolveError::Missing {
                path: path.clone(),
                source,
            })?;
            if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                return Err(ResolveError::NotExecutable { path });
            }
            path
        } else {
            which::which(name_or_path).map_err(|source| ResolveError::NotInPath {
                name: name_or_path.to_string(),
                source,
            })?
        };
        Ok(RuntimeConfig {
            program,
            global_args,
            root,
        })
    }
}

/// The container's standard streams. runc, when the container has no terminal,
/// hands its own fds 0/1/2 to the container process ("pass-through"), so these
/// become the container's stdin/stdout/stderr. `None` is `/dev/null`.
#[derive(Debug, Default)]
pub struct Stdio3 {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// `create`'s options. Taken by value: the fds in `stdio` are handed over to
/// the runtime process and closed in podshim once it has been started.
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// `--pid-file`: the runtime writes the container's init pid there.
    pub pid_file: Option<PathBuf>,
    /// `--console-socket`, for containers with `process.terminal: true`.
    pub console_socket: Option<PathBuf>,
    /// `--no-pivot`: for rootfs on a ramdisk, where pivot_root fails.
    pub no_pivot: bool,
    pub stdio: Stdio3,
}

impl CreateOptions {
    pub fn flags(&self) -> args::CreateFlags<'_> {
        args::CreateFlags {
            pid_file: self.pid_file.as_deref(),
            console_socket: self.console_socket.as_deref(),
            no_pivot: self.no_pivot,
        }
    }
}

/// The runtime verbs podshim uses (runc's CLI, runtime-spec `runtime.md`
/// "Operations"). Behind a trait so that the supervisor's ordering and restart
/// logic can be tested with a fake (ARCHITECTURE.md rule 2).
/// What a runtime says it supports (its `features` verb, runtime-spec
/// features.md), as far as podshim asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeFeatures {
    /// `rro` is among its mount options: recursive read-only binds
    /// (mount_setattr(2), Linux >= 5.12), what `recursiveReadOnly` needs.
    pub recursive_read_only: bool,
}

impl RuntimeFeatures {
    /// Reads `features`' JSON; anything else says nothing is supported.
    pub fn parse(json: &[u8]) -> RuntimeFeatures {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Features {
            #[serde(default)]
            mount_options: Vec<String>,
        }
        let features: Option<Features> = serde_json::from_slice(json).ok();
        RuntimeFeatures {
            recursive_read_only: features
                .is_some_and(|f| f.mount_options.iter().any(|o| o == "rro")),
        }
    }

    /// What is left on a kernel of `release` (`uname -r`): runc lists `rro`
    /// whatever the kernel, and mount_setattr(2) came with Linux 5.12.
    pub fn on_kernel(self, release: &str) -> RuntimeFeatures {
        let mut parts = release.trim().split(['.', '-']);
        let mut num = || parts.next().and_then(|p| p.parse::<u32>().ok());
        let version = (num(), num());
        let new_enough = matches!(version, (Some(major), Some(minor)) if (major, minor) >= (5, 12));
        RuntimeFeatures {
            recursive_read_only: self.recursive_read_only && new_enough,
        }
    }
}

pub trait OciRuntime: Send + Sync {
    /// What the runtime supports. A runtime with no `features` verb (runc
    /// before 1.1), or one that fails it, supports nothing optional.
    fn features(&self) -> RuntimeFeatures {
        RuntimeFeatures::default()
    }
    /// Creates the container from `bundle` (runtime-spec "create"): its process
    /// is set up and waits, not yet running the user's program.
    fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<(), RuntimeError>;
    /// Runs the user's program in a created container.
    /// `run --detach`: create and start in one invocation (one process less per
    /// container than create + start).
    fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        opts: CreateOptions,
    ) -> Result<(), RuntimeError>;
    fn start(&self, id: &str) -> Result<(), RuntimeError>;
    fn state(&self, id: &str) -> Result<ContainerState, RuntimeError>;
    /// Sends `signal` (`SIGTERM`, `TERM` or `15`) to the container's init, or with
    /// `all` to every process in it.
    fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuntimeError>;
    /// Sets the cgroup limits of a running container from `resources` (a file of
    /// the runtime-spec's `linux.resources`).
    fn update(&self, id: &str, resources: &Path) -> Result<(), RuntimeError>;
    /// Deletes the container's runtime state; `force` kills it first if running.
    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError>;
    /// Every container in the runtime's state root.
    fn list(&self) -> Result<Vec<ContainerState>, RuntimeError>;
    /// Host pids of the container's processes.
    fn ps(&self, id: &str) -> Result<Vec<i32>, RuntimeError>;
    /// The `exec` command for an interactive process, which the caller runs
    /// itself with inherited stdio (it is no supervisor child). `env` is added
    /// to the container's; `cwd` overrides its working directory.
    fn exec_command(
        &self,
        id: &str,
        args: &[String],
        tty: bool,
        env: &[(String, String)],
        cwd: Option<&Path>,
    ) -> Command;
}
