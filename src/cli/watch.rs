//! `podshim watch DIR`: the kubelet's static pods (`--pod-manifest-path`). The
//! directory logic is [`crate::watch`]; this applies a file as `up FILE` does,
//! takes down what `up` made from a file that went (by the path each pod's
//! state keeps), and says whether a file's pods are all there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::Global;
use super::up::NetworkArgs;
use crate::pod;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory of manifests (`.yaml`, `.yml`, `.json`; dotfiles are ignored).
    pub dir: PathBuf,
    /// How often DIR is listed again whatever the events said, and each file's
    /// pods checked (the kubelet's --file-check-frequency).
    #[arg(long, default_value = "20", value_name = "SECONDS")]
    pub period: u64,
    /// How long each apply may take (pulls included), as `up --timeout`.
    #[arg(long, default_value = "300", value_name = "SECONDS")]
    pub timeout: u64,
    #[command(flatten)]
    pub network: NetworkArgs,
}

struct Static<'a> {
    args: &'a Args,
    global: &'a Global,
}

impl Static<'_> {
    fn stop_options(&self) -> pod::StopOptions {
        pod::StopOptions {
            runtime: self.global.runtime().ok(),
            cni_bin_dirs: self.args.network.cni_bin_dir.clone(),
            ..Default::default()
        }
    }

    fn up_args(&self, file: &Path) -> super::up::Args {
        super::up::Args {
            file: Some(file.to_path_buf()),
            from: None,
            replace: false,
            skip_unsupported_kinds: false,
            keep: false,
            wait: false,
            wait_ready: false,
            timeout: self.args.timeout,
            network: self.args.network.clone(),
            quiet: true,
        }
    }
}

impl crate::watch::Applier for Static<'_> {
    fn apply(&mut self, file: &Path) -> Result<(), String> {
        super::up::run_file(&self.up_args(file), file, self.global)
            .map_err(|e| super::out::render_error(&e))?;
        // What the file no longer holds goes, as the kubelet's file source
        // sends the whole set.
        let set = read_set(file).map_err(|e| e.to_string())?;
        let paths = self.global.paths();
        let store = self.global.store().map_err(|e| e.to_string())?;
        let opts = self.stop_options();
        let mut errors = Vec::new();
        for (dir, record, _) in pod::job::all_jobs(&paths) {
            let kept = set.workloads.iter().any(|w| w.uid == record.uid);
            if record.manifest.as_deref() == Some(file)
                && !kept
                && let Err(e) = pod::job::remove(&paths, &store, &dir, &opts)
            {
                errors.push(e.to_string());
            }
        }
        let gone = pod::apply::pruned(&paths, &set, file);
        for (key, report) in gone
            .iter()
            .zip(pod::apply::stop_all(&paths, &store, &gone, &opts))
        {
            match report {
                Ok(_) => crate::outln!(
                    "pod {key} stopped and removed ({} no longer has it)",
                    file.display()
                ),
                Err(e) => errors.push(e.to_string()),
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(errors.join("\n")),
        }
    }

    fn remove(&mut self, file: &Path) -> Result<(), String> {
        let paths = self.global.paths();
        let store = self.global.store().map_err(|e| e.to_string())?;
        let opts = self.stop_options();
        let mut errors = Vec::new();
        for (dir, record, _) in pod::job::all_jobs(&paths) {
            if record.manifest.as_deref() == Some(file)
                && let Err(e) = pod::job::remove(&paths, &store, &dir, &opts)
            {
                errors.push(e.to_string());
            }
        }
        let keys = pod::apply::pods_from(&paths, file);
        for (key, report) in keys
            .iter()
            .zip(pod::apply::stop_all(&paths, &store, &keys, &opts))
        {
            match report {
                Ok(_) => {
                    crate::outln!("pod {key} stopped and removed ({} is gone)", file.display())
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(errors.join("\n")),
        }
    }

    fn present(&mut self, file: &Path) -> bool {
        let Ok(set) = read_set(file) else {
            // Unreadable or invalid: applying it again would fail the same way
            // (reported when it was applied).
            return true;
        };
        let paths = self.global.paths();
        let pods = set
            .pods
            .iter()
            .all(|p| pod::read_pod(&paths, &p.key).is_ok());
        // A Job's record gone (a wiped state root) makes the file missing,
        // unless its ttlSecondsAfterFinished removed it, by design (applied
        // again, it would run again); so does one whose controller died
        // before its end (applied again, a controller takes it up).
        let jobs = set.workloads.iter().filter(|w| w.job.is_some()).all(|w| {
            let key = crate::model::PodKey {
                namespace: w.namespace.clone(),
                name: w.name.clone(),
            };
            let dir = pod::job::job_dir(&paths, &key);
            if pod::job::read_record(&dir).is_none() {
                return w
                    .job
                    .as_ref()
                    .is_some_and(|j| j.ttl_seconds_after_finished.is_some());
            }
            let running = || pod::job::controller_running(&dir).unwrap_or(true);
            let ended = pod::job::read_status(&dir).is_some_and(|s| s.condition.is_some());
            // An ended Job with a TTL to wait out has its controller.
            let waits =
                pod::job::read_record(&dir).is_some_and(|r| r.ttl_seconds_after_finished.is_some());
            match ended {
                true => !waits || running(),
                false => running(),
            }
        });
        pods && jobs
    }
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let dir = std::path::absolute(&args.dir)?;
    let opts = crate::watch::WatchOptions {
        period: Duration::from_secs(args.period),
        ..Default::default()
    };
    let stop = super::logs::interrupted();
    let mut applier = Static {
        args: &args,
        global,
    };
    let runtime = global.runtime()?;
    for warning in
        crate::runtime::advisories::check(&runtime.program, &global.paths().runtime_checks())
    {
        eprintln!("warning: {warning}");
    }
    eprintln!("watching {} (every {} s)", dir.display(), args.period);
    crate::watch::run(&dir, &opts, &mut applier, &stop)
        .with_context(|| format!("watch {}", dir.display()))?;
    eprintln!("stopped watching {}; its pods keep running", dir.display());
    Ok(())
}

/// A file of the directory, read without following a link (its entries are
/// anyone's to swap).
fn read_set(file: &Path) -> Result<crate::manifest::ManifestSet, crate::manifest::ManifestError> {
    let (text, name) = crate::manifest::read_input_with(file, false)?;
    crate::manifest::parse_set(&text, &name, Default::default())
}
