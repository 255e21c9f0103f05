//! `podshim up FILE` / `podshim up --from DIR`: start a pod under its supervisor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::Global;
use crate::model::PodKey;
use crate::outln;
use crate::pod::{self, Source, StartOptions};
use crate::workload::apply::Change;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod manifest (YAML or JSON; `-` reads stdin).
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub file: Option<PathBuf>,
    /// Run a bundle set written by `podshim generate` instead of a manifest.
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// Replace the file's bare Pods that already run, changed or not, and take
    /// over pods another manifest started (without it, `up` of the same
    /// manifest replaces only what changed and refuses another's pods).
    #[arg(long)]
    pub replace: bool,
    /// Skip kinds a single node cannot serve (Service, Ingress, ...) with a
    /// warning, instead of refusing the file.
    #[arg(long)]
    pub skip_unsupported_kinds: bool,
    /// Keep what a failed start leaves (containers, mounts, state) for debugging.
    #[arg(long)]
    pub keep: bool,
    /// Stay in the foreground streaming the logs; Ctrl-C (or SIGTERM) stops the
    /// pods. With Jobs: wait for them to finish and exit with their outcome (0:
    /// every Job complete; 1: one failed). Under systemd (Type=notify), READY=1 is
    /// sent once the pods run.
    #[arg(long)]
    pub wait: bool,
    /// Return once every container is ready (its readiness probe passed), not
    /// only running; fail with the probes' last messages at --timeout.
    #[arg(long)]
    pub wait_ready: bool,
    /// How long to wait for the images (pulls included) and the app containers to
    /// run (and with --wait-ready, to be ready).
    #[arg(long, default_value = "300", value_name = "SECONDS")]
    pub timeout: u64,
    #[command(flatten)]
    pub network: NetworkArgs,
    /// No pod table after the changes, no link followed to the file (`watch`
    /// applies a directory's files this way).
    #[arg(skip)]
    pub quiet: bool,
}

/// The pod network, as containerd's CRI configures it.
#[derive(Debug, Clone, clap::Args)]
pub struct NetworkArgs {
    /// The CNI network to attach pods to: a network name in --cni-conf-dir, or
    /// `none` for a loopback-only pod. Default: the first configuration there, or
    /// the built-in `podshim` network when there is none.
    #[arg(long, value_name = "NAME|none", env = "PODSHIM_NETWORK")]
    pub network: Option<String>,
    /// Where CNI network configurations are.
    #[arg(long, default_value = crate::cni::DEFAULT_CONF_DIR, value_name = "DIR")]
    pub cni_conf_dir: PathBuf,
    /// Where CNI plugins are (repeatable; default /opt/cni/bin, then /usr/lib/cni).
    #[arg(long, value_name = "DIR")]
    pub cni_bin_dir: Vec<PathBuf>,
    /// The built-in network's subnet.
    #[arg(long, default_value = crate::cni::config::DEFAULT_SUBNET, value_name = "CIDR")]
    pub pod_subnet: String,
    /// The built-in network's bridge.
    #[arg(long, default_value = crate::cni::config::DEFAULT_BRIDGE, value_name = "NAME")]
    pub pod_bridge: String,
}

impl NetworkArgs {
    /// These options as `up` arguments, those that differ from the defaults
    /// only, paths absolute: what a generated unit's `up` is given, since it
    /// sees none of the caller's environment (`PODSHIM_NETWORK`).
    pub fn to_args(&self) -> Vec<String> {
        let defaults = NetworkArgs {
            network: None,
            cni_conf_dir: crate::cni::DEFAULT_CONF_DIR.into(),
            cni_bin_dir: Vec::new(),
            pod_subnet: crate::cni::config::DEFAULT_SUBNET.into(),
            pod_bridge: crate::cni::config::DEFAULT_BRIDGE.into(),
        };
        let absolute = |p: &PathBuf| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        };
        let mut out = Vec::new();
        if let Some(n) = &self.network {
            out.extend(["--network".to_string(), n.clone()]);
        }
        if self.cni_conf_dir != defaults.cni_conf_dir {
            out.extend(["--cni-conf-dir".to_string(), absolute(&self.cni_conf_dir)]);
        }
        for d in &self.cni_bin_dir {
            out.extend(["--cni-bin-dir".to_string(), absolute(d)]);
        }
        if self.pod_subnet != defaults.pod_subnet {
            out.extend(["--pod-subnet".to_string(), self.pod_subnet.clone()]);
        }
        if self.pod_bridge != defaults.pod_bridge {
            out.extend(["--pod-bridge".to_string(), self.pod_bridge.clone()]);
        }
        out
    }

    pub fn options(&self) -> pod::network::NetworkOptions {
        let defaults = pod::network::NetworkOptions::default();
        pod::network::NetworkOptions {
            none: self.network.as_deref() == Some("none"),
            name: self.network.clone().filter(|n| n != "none"),
            conf_dir: self.cni_conf_dir.clone(),
            bin_dirs: if self.cni_bin_dir.is_empty() {
                defaults.bin_dirs
            } else {
                self.cni_bin_dir.clone()
            },
            cache_dir: defaults.cache_dir,
            subnet: self.pod_subnet.clone(),
            bridge: self.pod_bridge.clone(),
            timeout: defaults.timeout,
        }
    }
}

pub fn run(args: Args, global: &Global) -> Result<std::process::ExitCode> {
    match (&args.file, &args.from) {
        (Some(file), _) => run_file(&args, file, global),
        (None, Some(dir)) => {
            run_generated(&args, dir, global).map(|()| std::process::ExitCode::SUCCESS)
        }
        (None, None) => unreachable!("clap requires FILE or --from"),
    }
}

fn start_options(args: &Args, global: &Global) -> Result<StartOptions> {
    let paths = global.paths();
    let runtime = global.runtime()?;
    // `watch` applies files again and again: it warns once, not per file.
    if !args.quiet {
        for warning in crate::runtime::advisories::check(&runtime.program, &paths.runtime_checks())
        {
            eprintln!("warning: {warning}");
        }
    }
    Ok(StartOptions {
        replace: args.replace,
        keep: args.keep,
        timeout: Duration::from_secs(args.timeout),
        runtime,
        seccomp_root: global.seccomp_profile_root.clone(),
        network: args.network.options(),
        wait_ready: args.wait_ready,
        cgroup: global.cgroup(),
        cdi_dirs: global.cdi_spec_dirs.clone(),
        ids_checked: false,
    })
}

/// `up FILE`: every object of the file, applied.
pub(crate) fn run_file(
    args: &Args,
    file: &Path,
    global: &Global,
) -> Result<std::process::ExitCode> {
    let paths = global.paths();
    let store = global.store()?;
    let (text, source_name) = crate::manifest::read_input_with(file, !args.quiet)?;
    let set = crate::manifest::parse_set(
        &text,
        &source_name,
        crate::manifest::ParseOptions {
            skip_unsupported_kinds: args.skip_unsupported_kinds,
        },
    )?;
    for warning in &set.warnings {
        eprintln!("warning: {warning}");
    }
    if args.network.network.as_deref() == Some("none") {
        for pod in &set.pods {
            // Which pod, when the file has several.
            let which = match set.pods.len() {
                1 => String::new(),
                _ => format!("pod {}: ", pod.key),
            };
            for field in pod::network::host_port_fields(pod) {
                eprintln!(
                    "warning: {which}{field}: not published: the pod runs with --network none"
                );
            }
        }
    }
    let path = match file == Path::new("-") {
        true => None,
        false => Some(std::path::absolute(file)?),
    };
    // The claims the file declares, as it declares them (pods make the others
    // on first use).
    for claim in &set.claims {
        crate::workload::claims::ensure(store.root(), claim, true, path.as_deref())?;
    }
    let mut pull = crate::image::PullOptions::system(global.registries_conf.as_deref())?;
    pull.progress = Some(Arc::new(super::pull::Progress::new()));
    let mut ops = ops(args, global, &paths, &store, pull, file, path.clone())?;
    let changes = pod::apply::apply(&set, &mut ops, args.replace).map_err(start_error)?;
    let options = pod::job::ControllerOptions {
        paths: paths.clone(),
        start: ops.start.clone(),
        registries_conf: global.registries_conf.clone(),
    };
    let mut jobs =
        super::job::start_jobs(&set, &text, path.as_deref(), &paths, &options, args.wait)?;
    let mut shown: Vec<PodKey> = Vec::new();
    for change in &changes {
        let line = match change {
            Change::Started(key) => {
                let phase = ops
                    .started
                    .iter()
                    .find(|(_, s)| {
                        s.namespace == key.namespace.as_str() && s.name == key.name.as_str()
                    })
                    .map_or("started".to_string(), |(_, s)| {
                        format!("{:?}", s.phase).to_lowercase()
                    });
                format!("pod {key} {phase}")
            }
            Change::Replaced(key) => format!("pod {key} replaced"),
            Change::Stopped(key) => format!("pod {key} stopped and removed"),
            Change::Unchanged(key) => format!("pod {key} unchanged"),
        };
        outln!("{line}");
        if !matches!(change, Change::Stopped(_)) && !shown.contains(change.key()) {
            shown.push(change.key().clone());
        }
    }
    for claim in &ops.removed_claims {
        outln!("volume {claim} removed (its ordinal was scaled away; whenScaled: Delete)");
    }
    for warning in &ops.warnings {
        eprintln!("warning: {warning}");
    }
    for job in &jobs {
        match job.new {
            true => outln!("job {} started", job.key),
            false => outln!("job {} unchanged", job.key),
        }
    }
    let records: Vec<_> = shown
        .iter()
        .filter_map(|k| pod::read_pod(&paths, k).ok())
        .collect();
    if !records.is_empty() && !args.quiet {
        super::ps::print_pods(&records, false);
    }
    if args.wait {
        let status = format!("{} pods running", shown.len());
        if let Err(e) = crate::systemd::ready(&status) {
            eprintln!("warning: $NOTIFY_SOCKET: {e}");
        }
        let mut code = std::process::ExitCode::SUCCESS;
        if !jobs.is_empty() {
            code = super::job::wait_jobs(&mut jobs)?;
            // A file of Jobs alone ends with them; its other pods keep running
            // (and being followed) whatever the Jobs did.
            if shown.is_empty() {
                return Ok(code);
            }
        }
        let interrupted = super::logs::follow_pods_until_interrupted(&paths, &shown)?;
        // Pods taken down by `down` (the unit's ExecStop) leave no state: a
        // clean stop. Pods that ended by themselves left theirs.
        let ended = !interrupted && shown.iter().any(|k| pod::read_pod(&paths, k).is_ok());
        let _ = crate::systemd::stopping();
        eprintln!("stopping the pods of {}", file.display());
        let _ = crate::workload::apply::PodOps::stop(&mut ops, &shown);
        if let Some(e) = ops.error.take() {
            return Err(e.into());
        }
        if ended {
            // The pods ended by themselves: a failure for whoever waits (the
            // unit restarts on it).
            anyhow::bail!("the pods of {} ended", file.display());
        }
        return Ok(code);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// A start's error; a pod kept for debugging (`--keep`) says how to remove it.
fn start_error(e: pod::PodError) -> anyhow::Error {
    match e {
        pod::PodError::StartFailed {
            pod,
            message,
            kept: true,
        } => anyhow::anyhow!(
            "pod {pod} failed to start: {message}\n(kept for debugging: podshim down {pod} removes it)"
        ),
        e => e.into(),
    }
}

/// Starting and stopping pods with this command line's options.
fn ops<'a>(
    args: &Args,
    global: &Global,
    paths: &'a crate::paths::Paths,
    store: &'a crate::image::Store,
    pull: crate::image::PullOptions,
    file: &Path,
    path: Option<PathBuf>,
) -> Result<pod::apply::Ops<'a>> {
    let start = start_options(args, global)?;
    let stop = pod::StopOptions {
        runtime: Some(start.runtime.clone()),
        cni_bin_dirs: start.network.bin_dirs.clone(),
        ..Default::default()
    };
    Ok(pod::apply::Ops {
        paths,
        store,
        start,
        stop,
        pull,
        file: file.display().to_string(),
        path,
        started: Vec::new(),
        error: None,
        removed_claims: Vec::new(),
        warnings: Vec::new(),
    })
}

/// `up --from DIR`: a `generate` output.
fn run_generated(args: &Args, dir: &Path, global: &Global) -> Result<()> {
    let paths = global.paths();
    let store = global.store()?;
    if let Some(name) = args.network.network.as_deref().filter(|n| *n != "none") {
        // The bundles carry what `generate` wrote: no pod IP, a namespace
        // of the infra's own. Attaching them afterwards would leave the
        // downward API and /etc/hosts without the address.
        anyhow::bail!(
            "--network {name}: `up --from` runs generated bundles as they are, loopback-only; run `podshim up MANIFEST` for a pod network"
        );
    }
    let source = Source::Generated(std::path::absolute(dir)?);
    let opts = start_options(args, global)?;
    let started = pod::start(&paths, &store, source, &opts).map_err(start_error)?;
    let key = started.key;
    outln!(
        "pod {key} {}",
        format!("{:?}", started.state.phase).to_lowercase()
    );
    super::ps::print_pods(&[(started.pod_dir, started.state)], false);
    if args.wait {
        if let Err(e) = crate::systemd::ready("1 pod running") {
            eprintln!("warning: $NOTIFY_SOCKET: {e}");
        }
        let interrupted =
            super::logs::follow_pods_until_interrupted(&paths, std::slice::from_ref(&key))?;
        let ended = !interrupted && pod::read_pod(&paths, &key).is_ok();
        let _ = crate::systemd::stopping();
        eprintln!("stopping pod {key}");
        let stop = pod::StopOptions::default();
        pod::stop(&paths, &store, &key, &stop)?;
        if ended {
            anyhow::bail!("pod {key} ended");
        }
    }
    Ok(())
}
