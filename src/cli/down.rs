//! `podshim down POD|FILE`: stop a pod and remove it (its logs stay unless
//! `--rm-logs`). Works when the supervisor was killed or the pod's state is gone;
//! idempotent.

use anyhow::Result;

use super::Global;
use crate::outln;
use crate::pod::{self, StopOptions, StopReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pods (`NAME`, `NS/NAME`) or manifest files.
    #[arg(required = true)]
    pub pods: Vec<String>,
    /// Seconds each pod gets to stop before SIGKILL, instead of its own
    /// terminationGracePeriodSeconds (kubectl delete's --grace-period).
    #[arg(long, value_name = "SECONDS")]
    pub grace_period: Option<u64>,
    /// Remove the pod's logs too.
    #[arg(long)]
    pub rm_logs: bool,
    /// Where CNI plugins are, for a pod whose plan is gone (a wiped state root, a
    /// reboot); repeatable. Default: /opt/cni/bin, then /usr/lib/cni.
    #[arg(long, value_name = "DIR")]
    pub cni_bin_dir: Vec<std::path::PathBuf>,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    // Every name is parsed before anything is done to any pod.
    let keys = args
        .pods
        .iter()
        .map(|p| global.pod_key(p))
        .collect::<Result<Vec<_>>>()?;
    let store = global.store()?;
    let opts = StopOptions {
        grace: args.grace_period,
        runtime: Some(global.runtime()?),
        cni_bin_dirs: args.cni_bin_dir.clone(),
    };
    for key in keys {
        let log_dir = pod::read_pod(&paths, &key).ok().map(|(_, s)| s.log_dir);
        match pod::stop(&paths, &store, &key, &opts)? {
            StopReport::NotFound => outln!("pod {key} is not running"),
            StopReport::Stopped { .. } => outln!("pod {key} stopped and removed"),
            StopReport::StateLost { deleted, others } => {
                if !deleted.is_empty() {
                    outln!(
                        "pod {key}: its state was gone; stopped and deleted its containers found in the runtime: {}",
                        deleted.join(", ")
                    );
                }
                if !others.is_empty() {
                    outln!(
                        "pod {key}: left alone, not this pod's bundles: {}",
                        others.join("; ")
                    );
                }
                if deleted.is_empty() && others.is_empty() {
                    outln!("pod {key}: its state was gone; removed what it left on disk");
                }
            }
        }
        if args.rm_logs {
            pod::list::remove_logs(&paths, &key, log_dir)?;
        }
    }
    Ok(())
}
