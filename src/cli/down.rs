//! `podshim down POD|FILE`: stop a pod and remove it (its logs stay unless
//! `--rm-logs`). Works when the supervisor was killed; idempotent.

use anyhow::Result;

use super::Global;
use super::pods;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pods (`NAME`, `NS/NAME`) or manifest files.
    #[arg(required = true)]
    pub pods: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Remove the pod's logs too.
    #[arg(long)]
    pub rm_logs: bool,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    for arg in &args.pods {
        let (ns, name) = pods::pod_key(arg, args.namespace.as_deref())?;
        let log_dir = pods::read_pod(&paths, &ns, &name)
            .ok()
            .map(|(_, s)| s.log_dir);
        if pods::stop_and_remove(&paths, &ns, &name)? {
            println!("pod {ns}/{name} stopped and removed");
        } else {
            println!("pod {ns}/{name} is not running");
        }
        if args.rm_logs {
            super::rm::remove_logs(&paths, &ns, &name, log_dir)?;
        }
    }
    Ok(())
}
