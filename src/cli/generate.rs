//! `podshim generate FILE -o DIR`: every bundle of a pod, a plan and a how-to-run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::Global;
use super::prepare::{PodImages, resolve_images};
use crate::bundle::{self, HostPaths, SystemMounter};
use crate::howto::{self, Setup};
use crate::image::Store;
use crate::paths::PodPaths;
use crate::translate::{self, PlanInput, PodPlan};
use crate::{host, manifest};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod manifest (YAML or JSON; `-` reads stdin).
    pub file: PathBuf,
    /// The output directory (created; a previous `generate` output there is replaced).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// The file that marks a directory as `generate` output, safe to replace.
pub const PLAN_FILE: &str = "plan.json";

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
pub fn prepare_output(dir: &Path) -> Result<()> {
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
        .with_context(|| format!("removing the previous output in {}", dir.display()))
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let manifest = manifest::load(&args.file)?;
    for warning in &manifest.warnings {
        eprintln!("warning: {warning}");
    }
    let store = Store::open(&global.store)?;
    let images = resolve_images(&manifest.pod, &store, global.registries_conf.as_deref())?;
    let dir = absolute(&args.output)?;
    prepare_output(&dir)?;
    let plan = write_pod(
        &manifest,
        &images,
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

/// The file recording the mounts the bundles need (a serialized [`Setup`]).
pub const SETUP_FILE: &str = "mounts.json";

/// Translates the pod and writes everything into `dir`: the bundles (and their
/// mounts), plan.json, mounts.json, run.sh, stop.sh and README.md. On failure the
/// mounts are undone and `dir` removed. Shared by `generate` and `up`.
pub fn write_pod(
    manifest: &manifest::Manifest,
    images: &PodImages,
    dir: &Path,
    host_paths: HostPaths,
    source: &str,
) -> Result<PodPlan> {
    let paths = PodPaths::new(dir);
    let ns_link = paths.infra_ns_link();
    let host = host::read();
    let ns_dir = ns_link.display().to_string();
    let mut plan = translate::plan(&PlanInput {
        pod: &manifest.pod,
        images: &images.infos,
        paths: &paths,
        host: &host,
        infra_ns_dir: &ns_dir,
        pod_ip: None,
    })?;
    let written = match bundle::write(&mut plan, dir, &images.stored, &SystemMounter, host_paths) {
        Ok(written) => written,
        Err(err) => {
            // bundle::write undid its mounts; the half-written directory goes too.
            let _ = std::fs::remove_dir_all(dir);
            return Err(err).with_context(|| {
                format!(
                    "writing the bundles of pod {}/{}",
                    plan.namespace, plan.name
                )
            });
        }
    };
    let setup = Setup {
        overlays: written.overlays,
        tmpfs: written.tmpfs,
        host_paths: written.deferred_host_paths,
    };
    let result = write_files(&plan, dir, &ns_link, &setup, source);
    if result.is_err() {
        let _ = bundle::remove(dir, &SystemMounter);
    }
    result.map(|()| plan)
}

fn write_files(
    plan: &PodPlan,
    dir: &Path,
    ns_link: &Path,
    setup: &Setup,
    source: &str,
) -> Result<()> {
    let write = |name: &str, text: String, mode: u32| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", path.display()))
    };
    write(
        "run.sh",
        howto::run_script(plan, dir, ns_link, setup),
        0o755,
    )?;
    write(
        "stop.sh",
        howto::stop_script(plan, dir, ns_link, setup),
        0o755,
    )?;
    write("README.md", howto::readme(plan, source), 0o644)?;
    let setup_json = serde_json::to_string_pretty(setup).context("serializing the mounts")? + "\n";
    write(SETUP_FILE, setup_json, 0o644)?;
    // Written last: its presence marks a complete output.
    let plan_json = serde_json::to_string_pretty(plan).context("serializing the plan")? + "\n";
    write(PLAN_FILE, plan_json, 0o644)
}
