//! `podshim generate FILE -o DIR`: every bundle of a pod, a plan and a how-to-run.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::Global;
use crate::bundle::HostPaths;
use crate::outln;
use crate::pod;
use crate::runtime::{CliRuntime, OciRuntime, ResolveError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod manifest (YAML or JSON; `-` reads stdin).
    pub file: PathBuf,
    /// The output directory (created; a previous `generate` output there is replaced).
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let manifest = crate::manifest::load(&args.file)?;
    for warning in &manifest.warnings {
        eprintln!("warning: {warning}");
    }
    let store = global.store()?;
    let mut pull = crate::image::PullOptions::system(global.registries_conf.as_deref())?;
    pull.progress = Some(Arc::new(super::pull::Progress::new()));
    for field in pod::network::host_port_fields(&manifest.pod) {
        eprintln!("warning: {field}: not published: generated bundles are loopback-only");
    }
    let profiles = pod::seccomp_profiles(&manifest.pod, &global.seccomp_profile_root)?;
    let images = pod::prepare(&manifest.pod, &store, &pull)?;
    let dir = std::path::absolute(&args.output)?;
    // A runtime that is not installed runs nothing: generating needs none.
    let runtime = match global.runtime_config() {
        Ok(config) => Some(CliRuntime::direct(config)),
        Err(ResolveError::NotInPath { .. } | ResolveError::Missing { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    pod::write::prepare_output(
        &dir,
        &store,
        &global.paths(),
        runtime.as_ref().map(|r| r as &dyn OciRuntime),
    )?;
    let plan = pod::write(
        &manifest.pod,
        &images,
        &profiles,
        &store,
        &dir,
        HostPaths::Defer,
        &args.file.display().to_string(),
        // Bundles for any runc tooling: a loopback-only pod, no CNI attachment.
        None,
        runtime.as_ref().map(|r| r as &dyn OciRuntime),
        &global.cgroup(),
        &global.cdi_spec_dirs,
    )?;
    outln!(
        "pod {}/{}: {} bundles in {}; run them with {}/run.sh",
        plan.namespace,
        plan.name,
        plan.containers.len() + 1,
        dir.display(),
        dir.display()
    );
    Ok(())
}
