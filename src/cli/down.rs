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
    // Every name and file is parsed before anything is done to any pod.
    let mut keys = Vec::new();
    let mut jobs = Vec::new();
    let mut claims = Vec::new();
    // StatefulSets whose claims go with them (whenDeleted: Delete).
    let mut deleting = Vec::new();
    for arg in &args.pods {
        if !super::is_manifest_arg(arg) {
            keys.push(global.pod_key(arg)?);
            continue;
        }
        let file = std::path::Path::new(arg);
        let set = crate::manifest::load_set(
            file,
            crate::manifest::ParseOptions {
                skip_unsupported_kinds: true,
            },
        )?;
        let path = match arg.as_str() {
            "-" => None,
            _ => Some(std::path::absolute(file)?),
        };
        // The file's Jobs, and the Jobs `up` of this path started (one the file
        // no longer names too), not another file's of the same name.
        for (dir, record, _) in pod::job::all_jobs(&paths) {
            let named = set.workloads.iter().any(|w| {
                w.job.is_some()
                    && w.uid == record.uid
                    && w.namespace.as_str() == record.namespace
                    && w.name.as_str() == record.name
            });
            let from_file = path.is_some() && record.manifest == path;
            let from_other = record.manifest.is_some() && !from_file;
            if from_file || (named && !from_other) {
                if let Ok(key) = crate::model::PodKey::parse(&record.name, Some(&record.namespace))
                {
                    jobs.push((key, dir));
                }
            } else if named {
                outln!(
                    "job {}/{} left alone: `up` of another file started it",
                    record.namespace,
                    record.name
                );
            }
        }
        let (mine, others) = pod::apply::pods_of_file(&paths, &set, path.as_deref());
        for key in mine {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for w in &set.workloads {
            // Not a set another file's `up` runs: its pods were left alone.
            let theirs = set.pods_of(w).any(|p| others.contains(&p.key));
            if w.claim_retention.delete_when_deleted && !theirs {
                deleting.push((w.clone(), path.clone()));
            }
        }
        for key in others {
            outln!(
                "pod {key} left alone: `up` of another file started it (podshim down {key} removes it)"
            );
        }
        claims.extend(
            set.claims
                .iter()
                .map(|c| format!("{}/{}", c.namespace, c.name)),
        );
    }
    let store = global.store()?;
    let opts = StopOptions {
        grace: args.grace_period,
        runtime: Some(global.runtime()?),
        cni_bin_dirs: args.cni_bin_dir.clone(),
    };
    // A Job's controller goes before its pods, so that it makes no more.
    for (key, dir) in jobs {
        let removed = pod::job::remove(&paths, &store, &dir, &opts)?;
        for pod in &removed {
            outln!("pod {pod} stopped and removed");
        }
        keys.retain(|k| !removed.contains(k));
        outln!("job {key} removed");
    }
    // Every pod stops at once (each has its own grace period); the reports
    // come in the order given, the first error after all are done.
    let log_dirs: Vec<_> = keys
        .iter()
        .map(|key| pod::read_pod(&paths, key).ok().map(|(_, s)| s.log_dir))
        .collect();
    let reports = pod::apply::stop_all(&paths, &store, &keys, &opts);
    let mut first_error = None;
    for ((key, report), log_dir) in keys.into_iter().zip(reports).zip(log_dirs) {
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                // The first is the command's error; the others are told here.
                match first_error {
                    None => first_error = Some(e),
                    Some(_) => eprintln!("podshim: pod {key}: {e}"),
                }
                continue;
            }
        };
        match report {
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
    // After the pods: each set's ordinals' claims, whatever ordinals made them
    // (`reported`: those whose fate is said).
    let mut reported = Vec::new();
    if first_error.is_none() {
        for (w, file) in &deleting {
            let names: Vec<String> = crate::workload::claims::list(store.root())
                .into_iter()
                .filter(|v| v.record.namespace == w.namespace.as_str())
                .filter(|v| w.owns_claim(&v.record.name).is_some())
                .map(|v| v.record.name)
                .collect();
            let (gone, others, error) = pod::apply::remove_claims(
                &paths,
                &store,
                &w.namespace,
                &names,
                &w.uid,
                file.as_deref(),
            );
            for claim in &gone {
                outln!(
                    "volume {claim} removed ({}: persistentVolumeClaimRetentionPolicy.whenDeleted: Delete)",
                    w.display()
                );
            }
            reported.extend(gone);
            for (claim, why) in others {
                outln!("volume {claim} kept: {why} (podshim volume rm {claim} removes it)");
                reported.push(claim);
            }
            if let Some(e) = error {
                first_error.get_or_insert(e);
            }
        }
    }
    for claim in claims.iter().filter(|c| !reported.contains(c)) {
        outln!("volume {claim} kept (podshim volume rm {claim} removes it)");
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
