//! `podshim up FILE` / `podshim up --from DIR`: start a pod under its supervisor.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::Global;
use crate::outln;
use crate::pod::{self, Source, StartOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod manifest (YAML or JSON; `-` reads stdin).
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub file: Option<PathBuf>,
    /// Run a bundle set written by `podshim generate` instead of a manifest.
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// Replace a pod of the same name that already exists.
    #[arg(long)]
    pub replace: bool,
    /// Keep what a failed start leaves (containers, mounts, state) for debugging.
    #[arg(long)]
    pub keep: bool,
    /// Stay in the foreground streaming the logs; Ctrl-C stops the pod.
    #[arg(long)]
    pub wait: bool,
    /// How long to wait for the images (pulls included) and the app containers to run.
    #[arg(long, default_value = "300", value_name = "SECONDS")]
    pub timeout: u64,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    let store = global.store()?;
    let source = match (&args.file, &args.from) {
        (Some(file), _) => {
            let manifest = crate::manifest::load(file)?;
            for warning in &manifest.warnings {
                eprintln!("warning: {warning}");
            }
            let mut pull = crate::image::PullOptions::system(global.registries_conf.as_deref())?;
            pull.progress = Some(Arc::new(super::pull::Progress::new()));
            Source::Manifest {
                manifest: Box::new(manifest),
                file: file.display().to_string(),
                pull: Box::new(pull),
            }
        }
        (None, Some(dir)) => Source::Generated(std::path::absolute(dir)?),
        (None, None) => unreachable!("clap requires FILE or --from"),
    };
    let runtime = global.runtime()?;
    for warning in crate::runtime::advisories::check(&runtime.program, &paths.runtime_checks()) {
        eprintln!("warning: {warning}");
    }
    let opts = StartOptions {
        replace: args.replace,
        keep: args.keep,
        timeout: Duration::from_secs(args.timeout),
        runtime,
        seccomp_root: global.seccomp_profile_root.clone(),
    };
    let started = match pod::start(&paths, &store, source, &opts) {
        Ok(started) => started,
        Err(pod::PodError::StartFailed {
            pod,
            message,
            kept: true,
        }) => anyhow::bail!(
            "pod {pod} failed to start: {message}\n(kept for debugging: podshim down {pod} removes it)"
        ),
        Err(e) => return Err(e.into()),
    };
    let key = started.key;
    outln!(
        "pod {key} {}",
        format!("{:?}", started.state.phase).to_lowercase()
    );
    super::ps::print_pods(&[(started.pod_dir, started.state)], false);
    if args.wait {
        super::logs::follow_pod_until_interrupted(&paths, &key)?;
        eprintln!("stopping pod {key}");
        let stop = pod::StopOptions::default();
        pod::stop(&paths, &store, &key, &stop)?;
    }
    Ok(())
}
