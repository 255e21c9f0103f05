//! `podshim exec POD [-c CTR] [-it] -- CMD...`: `runc exec` in a pod's container,
//! returning the command's exit status.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::Global;
use crate::pod;
use crate::runtime::{CliRuntime, OciRuntime, RuntimeConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod (`NAME` or `NS/NAME`).
    pub pod: String,
    /// The container (default: the first app container).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Pass stdin to the command.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

pub fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let paths = global.paths();
    let key = global.pod_key(&args.pod)?;
    let (_, state) = pod::read_pod(&paths, &key)?;
    let container = super::running_container(&state, &key, args.container.as_deref())?;
    let runtime = CliRuntime::direct(RuntimeConfig {
        program: state.runtime.program.clone(),
        global_args: state.runtime.global_args.clone(),
        root: state.runtime.root.clone(),
    });
    let mut cmd = runtime.exec_command(&container.id, &args.command, args.tty, &[], None);
    if !args.interactive && !args.tty {
        cmd.stdin(std::process::Stdio::null());
    }
    let status = cmd
        .status()
        .with_context(|| format!("running {} exec", runtime.name()))?;
    // The command's own exit status (128 + signal when it was killed), like kubectl.
    let code = status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    });
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
