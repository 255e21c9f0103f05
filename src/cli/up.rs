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
}

/// The pod network, as containerd's CRI configures it.
#[derive(Debug, clap::Args)]
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

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    let store = global.store()?;
    let source = match (&args.file, &args.from) {
        (Some(file), _) => {
            let manifest = crate::manifest::load(file)?;
            for warning in &manifest.warnings {
                eprintln!("warning: {warning}");
            }
            if args.network.network.as_deref() == Some("none") {
                for field in pod::network::host_port_fields(&manifest.pod) {
                    eprintln!("warning: {field}: not published: the pod runs with --network none");
                }
            }
            let mut pull = crate::image::PullOptions::system(global.registries_conf.as_deref())?;
            pull.progress = Some(Arc::new(super::pull::Progress::new()));
            Source::Manifest {
                manifest: Box::new(manifest),
                file: file.display().to_string(),
                pull: Box::new(pull),
            }
        }
        (None, Some(dir)) => {
            if let Some(name) = args.network.network.as_deref().filter(|n| *n != "none") {
                // The bundles carry what `generate` wrote: no pod IP, a namespace
                // of the infra's own. Attaching them afterwards would leave the
                // downward API and /etc/hosts without the address.
                anyhow::bail!(
                    "--network {name}: `up --from` runs generated bundles as they are, loopback-only; run `podshim up MANIFEST` for a pod network"
                );
            }
            Source::Generated(std::path::absolute(dir)?)
        }
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
        network: args.network.options(),
        wait_ready: args.wait_ready,
        cgroup: global.cgroup(),
        cdi_dirs: global.cdi_spec_dirs.clone(),
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
