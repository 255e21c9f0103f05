//! `podshim rm POD`: remove the logs of a pod that is down.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::Global;
use super::pods;
use crate::paths::Paths;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pods (`NAME` or `NS/NAME`).
    #[arg(required = true)]
    pub pods: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
}

pub fn remove_logs(paths: &Paths, ns: &str, name: &str, known: Option<PathBuf>) -> Result<()> {
    let dirs: Vec<PathBuf> = known
        .into_iter()
        .chain(pods::log_dirs(paths, ns, name))
        .collect();
    for dir in dirs {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    Ok(())
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    for arg in &args.pods {
        let (ns, name) = pods::pod_key(arg, args.namespace.as_deref())?;
        if pods::read_pod(&paths, &ns, &name).is_ok() {
            bail!("pod {ns}/{name} still exists: `podshim down {ns}/{name}` first");
        }
        remove_logs(&paths, &ns, &name, None)?;
        println!("pod {ns}/{name}: logs removed");
    }
    Ok(())
}
