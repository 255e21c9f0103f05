//! `podshim rm POD`: remove the logs of a pod that is down.

use anyhow::{Result, bail};

use super::Global;
use crate::outln;
use crate::pod;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pods (`NAME` or `NS/NAME`).
    #[arg(required = true)]
    pub pods: Vec<String>,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    let keys = args
        .pods
        .iter()
        .map(|p| global.pod_key(p))
        .collect::<Result<Vec<_>>>()?;
    for key in keys {
        if pod::read_pod(&paths, &key).is_ok() {
            bail!("pod {key} still exists: `podshim down {key}` first");
        }
        pod::list::remove_logs(&paths, &key, None)?;
        outln!("pod {key}: logs removed");
    }
    Ok(())
}
