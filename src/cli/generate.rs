//! `podshim generate FILE -o DIR`: every bundle of a pod, a plan and a how-to-run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::Global;
use super::prepare::{PodImages, resolve_images};
use crate::bundle::{self, HostPaths, SystemMounter};
use crate::howto;
use crate::image::Store;
use crate::paths::PodPaths;
use crate::run_plan::{self, PLAN_FILE, RunPlan};
use crate::translate::{self, PlanInput};
use crate::{host, manifest};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod manifest (YAML or JSON; `-` reads stdin).
    pub file: PathBuf,
    /// The output directory (created; a previous `generate` output there is replaced).
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("current directory")?
            .join(path)
    })
}

/// Refuses to write into a non-empty directory that is not a previous output, and
/// clears a previous output (unmounting its rootfs overlays first).
pub fn prepare_output(dir: &Path, store: &Store) -> Result<()> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    if entries.next().is_none() {
        return Ok(());
    }
    if !dir.join(PLAN_FILE).exists() {
        bail!(
            "output directory {} is not empty and holds no {PLAN_FILE}: refusing to overwrite it",
            dir.display()
        );
    }
    bundle::remove(dir, &SystemMounter)
        .with_context(|| format!("removing the previous output in {}", dir.display()))?;
    Ok(store.release(dir)?)
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let manifest = manifest::load(&args.file)?;
    for warning in &manifest.warnings {
        eprintln!("warning: {warning}");
    }
    let store = Store::open(&global.store)?;
    let images = resolve_images(&manifest.pod, &store, global.registries_conf.as_deref())?;
    let dir = absolute(&args.output)?;
    prepare_output(&dir, &store)?;
    let plan = write_pod(
        &manifest,
        &images,
        &store,
        &dir,
        HostPaths::Defer,
        &args.file.display().to_string(),
    )?;
    println!(
        "pod {}/{}: {} bundles in {}; run them with {}/run.sh",
        plan.namespace,
        plan.name,
        plan.containers.len() + 1,
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// Translates the pod and writes everything into `dir`: the bundles (and their
/// mounts), plan.json, run.sh, stop.sh and README.md, after taking the images'
/// lease in the store. On failure the mounts are undone, `dir` removed and the
/// lease dropped. Shared by `generate` and `up`.
pub fn write_pod(
    manifest: &manifest::Manifest,
    images: &PodImages,
    store: &Store,
    dir: &Path,
    host_paths: HostPaths,
    source: &str,
) -> Result<RunPlan> {
    let paths = PodPaths::new(dir);
    let host = host::read();
    let plan = translate::plan(&PlanInput {
        pod: &manifest.pod,
        images: &images.infos,
        paths: &paths,
        host: &host,
        pod_ip: None,
    })?;
    let layout = bundle::layout(&plan, &images.stored, dir)?;
    let undo = || {
        let _ = bundle::remove(dir, &SystemMounter);
        let _ = store.release(dir);
    };
    // The lease before any layer is mounted: a prune from now on keeps them.
    crate::fsutil::mkdir_mode(dir, 0o700).with_context(|| format!("creating {}", dir.display()))?;
    let used: Vec<(String, String)> = layout
        .images
        .iter()
        .map(|i| (i.name.clone(), i.manifest_digest.clone()))
        .collect();
    if let Err(e) = store.lease(dir, &used) {
        undo();
        return Err(e.into());
    }
    let run = match bundle::write(&plan, layout, &SystemMounter, host_paths) {
        Ok(run) => run,
        Err(err) => {
            // bundle::write undid its mounts; the half-written directory goes too.
            undo();
            return Err(err).with_context(|| {
                format!(
                    "writing the bundles of pod {}/{}",
                    plan.namespace, plan.name
                )
            });
        }
    };
    let result = write_files(&run, source);
    if result.is_err() {
        undo();
    }
    result.map(|()| run)
}

fn write_files(plan: &RunPlan, source: &str) -> Result<()> {
    let dir = &plan.base;
    let write = |name: &str, text: String, mode: u32| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", path.display()))
    };
    let exe = std::env::current_exe().context("finding the podshim binary")?;
    write("run.sh", howto::run_script(plan, &exe), 0o755)?;
    write("stop.sh", howto::stop_script(plan), 0o755)?;
    write("README.md", howto::readme(plan, source), 0o644)?;
    // Written last: its presence marks a complete output.
    write(PLAN_FILE, run_plan::render(plan), 0o644)
}
