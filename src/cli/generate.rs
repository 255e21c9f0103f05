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
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub what: Option<What>,
    /// The manifest (YAML or JSON; `-` reads stdin): one Pod's bundles go in
    /// DIR; several pods' (a Deployment's, a StatefulSet's) each in
    /// DIR/<ns>_<name>/, listed in DIR/pods.json.
    #[arg(required = true)]
    pub file: Option<PathBuf>,
    /// The output directory (created; a previous `generate` output there is replaced).
    #[arg(short, long, required = true)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// A systemd service that keeps the pods of FILE running from boot
    /// (Type=notify: `up --wait` sends READY=1 once they run; ExecStop runs
    /// `down`), or with --template a template unit for a manifest directory.
    Systemd(SystemdArgs),
}

#[derive(Debug, clap::Args)]
pub struct SystemdArgs {
    /// The manifest the unit runs.
    #[arg(required_unless_present = "template", conflicts_with = "template")]
    pub file: Option<PathBuf>,
    /// Write the template `podshim@.service` for the manifests in DIR instead
    /// (`systemctl enable --now podshim@$(systemd-escape web.yaml).service`).
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,
    /// Write the unit into DIR (as `podshim-<file>.service` or
    /// `podshim@.service`) instead of printing it.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The network the unit's pods get (as `up` takes it; `PODSHIM_NETWORK`
    /// is read now, since the unit sees none of this environment).
    #[command(flatten)]
    pub network: super::up::NetworkArgs,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    if let Some(What::Systemd(s)) = args.what {
        return systemd(s, global);
    }
    let (Some(file), Some(output)) = (args.file, args.output) else {
        anyhow::bail!("generate: FILE and -o DIR are required");
    };
    let set = crate::manifest::load_set(&file, Default::default())?;
    for warning in &set.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(job) = set.workloads.iter().find(|w| w.job.is_some()) {
        anyhow::bail!(
            "job {}/{}: a Job's pods are made by its controller as it runs; `podshim up {}` runs it",
            job.namespace,
            job.name,
            file.display()
        );
    }
    if set.pods.is_empty() {
        anyhow::bail!("{}: no pod to generate bundles for", file.display());
    }
    let store = global.store()?;
    let mut pull = crate::image::PullOptions::system(global.registries_conf.as_deref())?;
    pull.progress = Some(Arc::new(super::pull::Progress::new()));
    let dir = std::path::absolute(&output)?;
    // A runtime that is not installed runs nothing: generating needs none.
    let runtime = match global.runtime_config() {
        Ok(config) => Some(CliRuntime::direct(config)),
        Err(ResolveError::NotInPath { .. } | ResolveError::Missing { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let runtime = runtime.as_ref().map(|r| r as &dyn OciRuntime);
    let label = file.display().to_string();
    let one = |pod: &crate::model::Pod, dir: &std::path::Path| -> Result<()> {
        for field in pod::network::host_port_fields(pod) {
            eprintln!(
                "warning: pod {}: {field}: not published: generated bundles are loopback-only",
                pod.key
            );
        }
        let profiles = pod::seccomp_profiles(pod, &global.seccomp_profile_root)?;
        let images = pod::prepare(pod, &store, &pull)?;
        let plan = pod::write(
            pod,
            &images,
            &profiles,
            &store,
            dir,
            HostPaths::Defer,
            &label,
            // Bundles for any runc tooling: a loopback-only pod, no CNI attachment.
            None,
            runtime,
            &global.cgroup(),
            &global.cdi_spec_dirs,
            // The node's pods, which a start of these bundles (run.sh, up
            // --from) asks whether a claim is mounted already.
            Some(&global.paths().pods()),
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
    };
    // One bare Pod: its output is DIR itself.
    if set.pods.len() == 1 && set.workloads.is_empty() {
        pod::write::prepare_output(&dir, &store, &global.paths(), runtime)?;
        return one(&set.pods[0], &dir);
    }
    // Several (a controller's): DIR/<ns>_<name>/ each, listed in DIR/pods.json
    // before each is written, so that a failure leaves what the next run clears.
    pod::write::prepare_outputs(&dir, &store, &global.paths(), runtime)?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("{}: create directory: {e}", dir.display()))?;
    let mut listed = Vec::new();
    for p in &set.pods {
        let id = p.key.id();
        listed.push(id.clone());
        pod::write::write_pod_list(&dir, &listed)?;
        one(p, &dir.join(&id))?;
    }
    if set.workloads.iter().any(|w| w.ordered) {
        eprintln!(
            "note: each pod has its own run.sh; run a StatefulSet's in ordinal order, each ready before the next (OrderedReady)"
        );
    }
    Ok(())
}

/// `generate systemd`: the unit text, with this command's state, store, log and
/// runtime options repeated on its command lines (a unit sees none of the
/// caller's environment).
fn systemd(args: SystemdArgs, global: &Global) -> Result<()> {
    let podshim = std::env::current_exe()?;
    let paths = global.paths();
    let mut global_args = Vec::new();
    for (flag, path) in [
        ("--root", &paths.root),
        ("--store", &paths.store),
        ("--logs", &paths.logs),
    ] {
        global_args.push(flag.to_string());
        global_args.push(std::path::absolute(path)?.display().to_string());
    }
    if global.runtime != "runc" {
        global_args.push("--runtime".into());
        global_args.push(global.runtime.clone());
    }
    let (name, text) = match (&args.file, &args.template) {
        (Some(file), _) => {
            // The manifest must parse now, not at boot.
            crate::manifest::load_set(file, Default::default())?;
            let manifest = std::path::absolute(file)?;
            let stem = manifest
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "pods".into());
            let unit = crate::systemd::unit(&crate::systemd::UnitOptions {
                podshim,
                description: format!("podshim pods of {}", manifest.display()),
                manifest,
                global_args,
                up_args: args.network.to_args(),
            })?;
            (format!("podshim-{}.service", unit_name_part(&stem)), unit)
        }
        (None, Some(dir)) => {
            let unit = crate::systemd::template_unit(&crate::systemd::TemplateOptions {
                podshim,
                dir: std::path::absolute(dir)?,
                global_args,
                up_args: args.network.to_args(),
            })?;
            ("podshim@.service".to_string(), unit)
        }
        (None, None) => unreachable!("clap requires FILE or --template"),
    };
    match args.output {
        None => crate::cli::out::write(&text),
        Some(dir) => {
            let path = dir.join(&name);
            crate::fsutil::write_atomic(&path, text.as_bytes(), 0o644)
                .map_err(|e| anyhow::anyhow!("{}: write: {e}", path.display()))?;
            outln!("{}", path.display());
        }
    }
    Ok(())
}

/// A file stem as a unit name's part: what systemd-escape would keep, the rest
/// as `\xNN` (systemd.unit(5), "String Escaping for Inclusion in Unit Names").
fn unit_name_part(stem: &str) -> String {
    stem.bytes()
        .enumerate()
        .map(|(i, b)| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'_' => (b as char).to_string(),
            b'.' if i > 0 => ".".to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}
