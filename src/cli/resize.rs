//! `podshim resize POD -c NAME [--cpu Q] [--memory Q] [--cpu-request Q]
//! [--memory-request Q]`: a container's resources changed in place (KEP-1287),
//! as `kubectl patch pod --subresource resize` asks of the kubelet.

use anyhow::{Result, bail};

use super::Global;
use crate::model::Quantity;
use crate::outln;
use crate::pod;

fn quantity(s: &str) -> Result<Quantity, String> {
    Quantity::parse(s).map_err(|e| format!("{s:?}: {e}"))
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod (`NAME` or `NS/NAME`).
    pub pod: String,
    /// The container to resize.
    #[arg(short, long)]
    pub container: String,
    /// The new CPU limit (`500m`, `2`); a request that equalled the old limit
    /// follows it.
    #[arg(long, value_parser = quantity, value_name = "QUANTITY")]
    pub cpu: Option<Quantity>,
    /// The new memory limit (`128Mi`); a request that equalled the old limit
    /// follows it.
    #[arg(long, value_parser = quantity, value_name = "QUANTITY")]
    pub memory: Option<Quantity>,
    /// The new CPU request.
    #[arg(long, value_parser = quantity, value_name = "QUANTITY")]
    pub cpu_request: Option<Quantity>,
    /// The new memory request.
    #[arg(long, value_parser = quantity, value_name = "QUANTITY")]
    pub memory_request: Option<Quantity>,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    if [args.cpu, args.memory, args.cpu_request, args.memory_request]
        .iter()
        .all(Option::is_none)
    {
        bail!("resize: nothing to change: give --cpu, --memory, --cpu-request or --memory-request");
    }
    let key = global.pod_key(&args.pod)?;
    let done = pod::resize::resize(
        &global.paths(),
        &key,
        &pod::resize::Request {
            container: args.container.clone(),
            cpu_limit: args.cpu,
            cpu_request: args.cpu_request,
            memory_limit: args.memory,
            memory_request: args.memory_request,
        },
    )?;
    outln!(
        "pod {key}: container {} resized{}",
        args.container,
        if done.restarted {
            " (restarting: its resizePolicy is RestartContainer)"
        } else {
            ""
        }
    );
    Ok(())
}
