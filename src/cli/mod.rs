//! Command-line interface: clap types here, one file per verb.

mod generate;
mod images;
pub mod prepare;

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write every bundle of a pod (config.json + rootfs), a plan and a how-to-run into DIR.
    Generate(generate::Args),
    /// Make an image from a root filesystem (a tar or a directory), like `podman import`.
    Import(images::ImportArgs),
    /// Load an OCI image layout (a directory or a tar), as skopeo's oci:/oci-archive: write them.
    Load(images::LoadArgs),
    /// List the images in the store.
    Images(images::ListArgs),
    /// Remove images from the store.
    Rmi(images::RmiArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(args) => generate::run(args, &cli.global),
        Command::Import(args) => images::import(args, &cli.global),
        Command::Load(args) => images::load(args, &cli.global),
        Command::Images(args) => images::list(args, &cli.global),
        Command::Rmi(args) => images::rmi(args, &cli.global),
    }
}
