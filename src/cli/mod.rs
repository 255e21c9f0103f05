//! Command-line interface: clap types here, one file per verb.

mod down;
mod exec;
pub mod generate;
mod images;
mod logs;
pub mod pods;
pub mod prepare;
mod ps;
pub mod pull;
mod rm;
mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::paths::{DEFAULT_LOGS, DEFAULT_ROOT, DEFAULT_STORE, Paths};

#[derive(Debug, Parser)]
#[command(
    name = "podshim",
    version,
    about = "Run a Kubernetes Pod on one Linux machine with runc: no kubelet, no containerd, no daemon"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct Global {
    /// Pod state directory.
    #[arg(long, global = true, default_value = DEFAULT_ROOT, env = "PODSHIM_ROOT")]
    pub root: PathBuf,
    /// Image store directory.
    #[arg(long, global = true, default_value = DEFAULT_STORE, env = "PODSHIM_STORE")]
    pub store: PathBuf,
    /// Container log directory.
    #[arg(long, global = true, default_value = DEFAULT_LOGS, env = "PODSHIM_LOGS")]
    pub logs: PathBuf,
    /// registries.conf (v2) for pulls: mirrors, rewrites, blocks, short names;
    /// its drop-ins are read from registries.conf.d/ beside it.
    /// [default: /etc/containers/registries.conf]
    #[arg(
        long,
        global = true,
        env = "CONTAINERS_REGISTRIES_CONF",
        value_name = "FILE"
    )]
    pub registries_conf: Option<PathBuf>,
    /// Log verbosity (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn", env = "PODSHIM_LOG")]
    pub log_level: String,
}

impl Global {
    pub fn paths(&self) -> Paths {
        Paths {
            root: self.root.clone(),
            store: self.store.clone(),
            logs: self.logs.clone(),
        }
    }
}

/// Which runc-compatible runtime runs the containers.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// `runc` (default), `youki`, `crun`, or a path to any runc-compatible CLI.
    #[arg(long, default_value = "runc", env = "PODSHIM_RUNTIME")]
    pub runtime: String,
    /// An extra global flag for the runtime (repeatable), e.g. `--runtime-arg=--debug`.
    #[arg(long = "runtime-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub runtime_args: Vec<String>,
    /// The runtime's state directory (its `--root`), when not its default.
    #[arg(long)]
    pub runtime_root: Option<PathBuf>,
}

impl RuntimeArgs {
    pub fn resolve(&self) -> anyhow::Result<crate::runtime::RuntimeConfig> {
        Ok(crate::runtime::RuntimeConfig::resolve(
            &self.runtime,
            self.runtime_args.clone(),
            self.runtime_root.clone(),
        )?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a pod (returns once its app containers run).
    Up(up::Args),
    /// Stop a pod and remove it.
    Down(down::Args),
    /// List pods and their containers.
    Ps(ps::Args),
    /// Print a container's logs.
    Logs(logs::Args),
    /// Run a command in a container of a pod.
    Exec(exec::Args),
    /// Remove the logs of a pod that is down.
    Rm(rm::Args),
    /// Write every bundle of a pod (config.json + rootfs), a plan and a how-to-run into DIR.
    Generate(generate::Args),
    /// Make an image from a root filesystem (a tar or a directory), like `podman import`.
    Import(images::ImportArgs),
    /// Load an OCI image layout (a directory or a tar), as skopeo's oci:/oci-archive: write them.
    Load(images::LoadArgs),
    /// Pull an image from a registry into the store.
    Pull(pull::Args),
    /// Remove blobs and unpacked layers that no image references.
    Prune(pull::PruneArgs),
    /// List the images in the store.
    Images(images::ListArgs),
    /// Remove images from the store.
    Rmi(images::RmiArgs),
    /// Binds a container's subPath mounts (run.sh calls it before each start).
    #[command(hide = true, name = "bind-subpaths")]
    BindSubpaths {
        /// A `podshim generate` output.
        dir: PathBuf,
        /// The container.
        container: String,
    },
}

fn bind_subpaths(dir: &std::path::Path, container: &str) -> anyhow::Result<()> {
    let plan = crate::run_plan::read(dir)?;
    let c = plan
        .container(container)
        .ok_or_else(|| anyhow::anyhow!("{}: no container {container:?}", dir.display()))?;
    Ok(crate::bundle::subpath::bind_all(
        c,
        &crate::bundle::SystemMounter,
    )?)
}

pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let ok = |r: anyhow::Result<()>| r.map(|()| std::process::ExitCode::SUCCESS);
    match cli.command {
        Command::Up(args) => ok(up::run(args, &cli.global)),
        Command::Down(args) => ok(down::run(args, &cli.global)),
        Command::Ps(args) => ok(ps::run(args, &cli.global)),
        Command::Logs(args) => ok(logs::run(args, &cli.global)),
        Command::Exec(args) => exec::run(args, &cli.global),
        Command::Rm(args) => ok(rm::run(args, &cli.global)),
        Command::BindSubpaths { dir, container } => ok(bind_subpaths(&dir, &container)),
        Command::Generate(args) => ok(generate::run(args, &cli.global)),
        Command::Import(args) => ok(images::import(args, &cli.global)),
        Command::Load(args) => ok(images::load(args, &cli.global)),
        Command::Pull(args) => ok(pull::run(args, &cli.global)),
        Command::Prune(args) => ok(pull::prune(args, &cli.global)),
        Command::Images(args) => ok(images::list(args, &cli.global)),
        Command::Rmi(args) => ok(images::rmi(args, &cli.global)),
    }
}
