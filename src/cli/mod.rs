//! Command-line interface: clap types here, one file per verb. A verb parses its
//! arguments, calls one operation of [`crate::pod`] or [`crate::image`], and
//! prints; the domain work lives there.

mod attach;
mod describe;
mod down;
mod exec;
mod generate;
mod images;
mod job;
mod logs;
mod man;
pub mod out;
mod ps;
pub mod pull;
mod resize;
mod rm;
mod up;
mod volumes;
mod watch;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use crate::model::PodKey;
use crate::paths::{DEFAULT_LOGS, DEFAULT_ROOT, DEFAULT_STORE, Paths};
use crate::runtime::RuntimeConfig;

#[derive(Debug, Parser)]
#[command(
    name = "podshim",
    version,
    about = "Run a Kubernetes Pod on one Linux machine with runc: no kubelet, no containerd, no daemon"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The global options, declared once: they go before or after the verb, and
/// `podshim --help` lists them once.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The namespace of pods named without one (`NAME` rather than `NS/NAME`).
    #[arg(
        short,
        long,
        global = true,
        env = "PODSHIM_NAMESPACE",
        value_name = "NS"
    )]
    pub namespace: Option<String>,
    /// Pod state directory.
    #[arg(long, global = true, default_value = DEFAULT_ROOT, env = "PODSHIM_ROOT")]
    pub root: PathBuf,
    /// Image store directory.
    #[arg(long, global = true, default_value = DEFAULT_STORE, env = "PODSHIM_STORE")]
    pub store: PathBuf,
    /// Container log directory.
    #[arg(long, global = true, default_value = DEFAULT_LOGS, env = "PODSHIM_LOGS")]
    pub logs: PathBuf,
    /// registries.conf (v2) for pulls: mirrors, rewrites, blocks, short names;
    /// its drop-ins are read from registries.conf.d/ beside it.
    /// [default: /etc/containers/registries.conf]
    #[arg(
        long,
        global = true,
        env = "CONTAINERS_REGISTRIES_CONF",
        value_name = "FILE"
    )]
    pub registries_conf: Option<PathBuf>,
    /// The OCI runtime: `runc`, `youki`, `crun`, or a path to any runc-compatible
    /// CLI. A pod keeps the one it was started with.
    #[arg(long, global = true, default_value = "runc", env = "PODSHIM_RUNTIME")]
    pub runtime: String,
    /// An extra global flag for the runtime (repeatable), e.g. `--runtime-arg=--debug`.
    #[arg(
        long = "runtime-arg",
        global = true,
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub runtime_args: Vec<String>,
    /// The runtime's state directory (its `--root`), when not its default.
    #[arg(long, global = true, value_name = "DIR")]
    pub runtime_root: Option<PathBuf>,
    /// Where `seccompProfile.localhostProfile` (and `localhost/` annotations) are
    /// found, as the kubelet's `--root-dir`/seccomp; a profile is never read from
    /// outside it.
    #[arg(
        long,
        global = true,
        default_value = crate::pod::DEFAULT_SECCOMP_ROOT,
        env = "PODSHIM_SECCOMP_PROFILE_ROOT",
        value_name = "DIR"
    )]
    pub seccomp_profile_root: PathBuf,
    /// Where pod cgroups go, as the kubelet's `--cgroup-root`: each pod in
    /// `<parent>/kubepods/[burstable|besteffort/]pod<uid>`, an absolute cgroup path.
    /// [default: /podshim for the default --root, /podshim-<hash of the root>
    /// for another: each state root is a node of its own]
    #[arg(
        long,
        global = true,
        env = "PODSHIM_CGROUP_PARENT",
        value_name = "PATH",
        value_parser = crate::translate::pod_cgroup::CgroupParent::parse
    )]
    pub cgroup_parent: Option<crate::translate::pod_cgroup::CgroupParent>,
    /// The most processes (pids.max) a pod's cgroup may hold, as the kubelet's
    /// `podPidsLimit`. Unlimited when not given.
    #[arg(
        long,
        global = true,
        env = "PODSHIM_POD_PIDS_LIMIT",
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub pod_pids_limit: Option<u64>,
    /// Where CDI specs are (repeatable; later directories win), as containerd's
    /// `cdi_spec_dirs`: an extended resource named by a spec's kind gets its
    /// devices.
    #[arg(
        long = "cdi-spec-dir",
        global = true,
        value_name = "DIR",
        default_values = crate::cdi::DEFAULT_DIRS
    )]
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// Log verbosity (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn", env = "PODSHIM_LOG")]
    pub log_level: String,
}

impl Global {
    /// The directories, absolute: bundles name their rootfs and the runtime
    /// records bundles by these paths, which must mean the same from any working
    /// directory (the supervisor's, runc's).
    pub fn paths(&self) -> Paths {
        let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        Paths {
            root: absolute(&self.root),
            store: absolute(&self.store),
            logs: absolute(&self.logs),
        }
    }

    pub fn runtime(&self) -> anyhow::Result<RuntimeConfig> {
        Ok(self.runtime_config()?)
    }

    /// The runtime of `--runtime`, with its flags, or why it is not usable.
    pub fn runtime_config(&self) -> Result<RuntimeConfig, crate::runtime::ResolveError> {
        RuntimeConfig::resolve(
            &self.runtime,
            self.runtime_args.clone(),
            self.runtime_root.clone(),
        )
    }

    /// The node's pod cgroup settings.
    pub fn cgroup(&self) -> crate::translate::pod_cgroup::CgroupConfig {
        use crate::translate::pod_cgroup::CgroupParent;
        crate::translate::pod_cgroup::CgroupConfig {
            own_parent: self.cgroup_parent.is_none(),
            parent: self
                .cgroup_parent
                .clone()
                .unwrap_or_else(|| CgroupParent::for_root(&self.paths().root)),
            pod_pids_limit: self.pod_pids_limit,
        }
    }

    pub fn store(&self) -> anyhow::Result<crate::image::Store> {
        Ok(crate::image::Store::open(&self.paths().store)?)
    }

    /// A pod named on the command line: `NAME`, `NS/NAME`, or a manifest FILE.
    /// Names are parsed as Kubernetes names before any path is built from them.
    pub fn pod_key(&self, arg: &str) -> anyhow::Result<PodKey> {
        let path = Path::new(arg);
        if is_manifest_arg(arg) {
            return Ok(crate::manifest::load(path)?.pod.key);
        }
        Ok(PodKey::parse(arg, self.namespace.as_deref())?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a pod (returns once its app containers run).
    Up(up::Args),
    /// Stop a pod and remove it.
    Down(down::Args),
    /// List pods and their containers.
    Ps(ps::Args),
    /// Show a pod in detail: containers, probes, conditions, events.
    Describe(describe::Args),
    /// Print a container's logs.
    Logs(logs::Args),
    /// Run a command in a container of a pod.
    Exec(exec::Args),
    /// Attach to a container's main process: its output, and with -i its
    /// stdin (Ctrl-P Ctrl-Q detaches).
    Attach(attach::Args),
    /// Change a container's CPU and memory in place (its resizePolicy decides
    /// whether it restarts).
    Resize(resize::Args),
    /// Remove the logs of a pod that is down.
    Rm(rm::Args),
    /// Write every bundle of a pod (config.json + rootfs), a plan and a how-to-run into DIR.
    Generate(generate::Args),
    /// Make an image from a root filesystem (a tar or a directory), like `podman import`.
    Import(images::ImportArgs),
    /// Load an OCI image layout (a directory or a tar), as skopeo's oci:/oci-archive: write them.
    Load(images::LoadArgs),
    /// Pull an image from a registry into the store.
    Pull(pull::Args),
    /// Remove blobs and unpacked layers that no image and no pod uses.
    Prune(pull::PruneArgs),
    /// List the images in the store.
    Images(images::ListArgs),
    /// Remove images from the store.
    Rmi(images::RmiArgs),
    /// List the local volumes of PersistentVolumeClaims, and who uses them.
    Volumes(volumes::ListArgs),
    /// Manage the local volumes of PersistentVolumeClaims.
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Keep the pods of the manifests in DIR running, as the kubelet's static
    /// pods (--pod-manifest-path): a new file starts its pods, a changed one is
    /// applied, a removed one taken down.
    Watch(watch::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (podshim.1, podshim-<verb>.1) into DIR.
    Man {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Runs the controller of the Job in DIR (how `up` starts one).
    #[command(hide = true, name = "job-controller")]
    JobController {
        /// The Job's directory under the state root.
        dir: PathBuf,
        /// The descriptor of the Job's controller.lock, locked by the `up`
        /// that started this controller and handed over to it.
        #[arg(long)]
        lock_fd: Option<i32>,
    },
    /// Binds a container's subPath mounts (run.sh calls it before each start).
    #[command(hide = true, name = "bind-subpaths")]
    BindSubpaths {
        /// A `podshim generate` output.
        dir: PathBuf,
        /// The container.
        container: String,
    },
    /// Makes one of a plan's setup steps (run.sh calls it for those the shell
    /// has no tool for: a user namespace to pin, a mount to id-map).
    #[command(hide = true, name = "setup-step")]
    SetupStep {
        /// A `podshim generate` output.
        dir: PathBuf,
        /// The step's index in plan.json's `setup`.
        index: usize,
    },
    /// Sets a container's fileKeyRef variables from their env files (run.sh
    /// calls it before each start).
    #[command(hide = true, name = "read-env-files")]
    ReadEnvFiles {
        /// A `podshim generate` output.
        dir: PathBuf,
        /// The container.
        container: String,
    },
}

/// The running container `name` of `state` (kubectl's default: the first app
/// container), for `exec` and `attach`.
pub(crate) fn running_container<'a>(
    state: &'a crate::state::PodState,
    key: &PodKey,
    name: Option<&str>,
) -> anyhow::Result<&'a crate::state::ContainerStatus> {
    use crate::model::ContainerKind;
    let container = match name {
        Some(c) => state
            .container(c)
            .filter(|c| c.kind != ContainerKind::Infra)
            .with_context(|| format!("container {c:?} not found in pod {key}"))?,
        None => state
            .containers
            .iter()
            .find(|c| c.kind == ContainerKind::App)
            .with_context(|| format!("pod {key} has no app container"))?,
    };
    if !matches!(
        container.state,
        crate::state::ContainerState::Running { .. }
    ) {
        anyhow::bail!("container {:?} of pod {key} is not running", container.name);
    }
    Ok(container)
}

fn bind_subpaths(dir: &Path, container: &str) -> anyhow::Result<()> {
    let plan = crate::run_plan::read(dir)?;
    let c = plan
        .container(container)
        .with_context(|| format!("{}: no container {container:?}", dir.display()))?;
    Ok(crate::bundle::subpath::bind_all(
        c,
        &crate::bundle::SystemMounter,
    )?)
}

fn read_env_files(dir: &Path, container: &str) -> anyhow::Result<()> {
    let plan = crate::run_plan::read(dir)?;
    let c = plan
        .container(container)
        .with_context(|| format!("{}: no container {container:?}", dir.display()))?;
    Ok(crate::bundle::envfile::apply(c)?)
}

fn setup_step(dir: &Path, index: usize) -> anyhow::Result<()> {
    let plan = crate::run_plan::read(dir)?;
    let step = plan
        .setup
        .get(index)
        .with_context(|| format!("{}: no setup step {index}", dir.display()))?;
    crate::bundle::ensure(
        std::slice::from_ref(step),
        &crate::bundle::SystemMounter,
        crate::bundle::HostPaths::Create,
        crate::bundle::When::Starting,
    )?;
    Ok(())
}

fn completion(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "podshim", &mut script);
    out::write(&String::from_utf8_lossy(&script));
    Ok(())
}

pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let ok = |r: anyhow::Result<()>| r.map(|()| std::process::ExitCode::SUCCESS);
    let g = &cli.global;
    match cli.command {
        Command::Up(args) => up::run(args, g),
        Command::Down(args) => ok(down::run(args, g)),
        Command::Ps(args) => ok(ps::run(args, g)),
        Command::Describe(args) => ok(describe::run(args, g)),
        Command::Logs(args) => ok(logs::run(args, g)),
        Command::Exec(args) => exec::run(args, g),
        Command::Attach(args) => ok(attach::run(args, g)),
        Command::Resize(args) => ok(resize::run(args, g)),
        Command::Rm(args) => ok(rm::run(args, g)),
        Command::Generate(args) => ok(generate::run(args, g)),
        Command::Import(args) => ok(images::import(args, g)),
        Command::Load(args) => ok(images::load(args, g)),
        Command::Pull(args) => ok(pull::run(args, g)),
        Command::Prune(args) => ok(pull::prune(args, g)),
        Command::Images(args) => ok(images::list(args, g)),
        Command::Rmi(args) => ok(images::rmi(args, g)),
        Command::Volumes(args) => ok(volumes::list(args, g)),
        Command::Volume(cmd) => ok(volumes::run(cmd, g)),
        Command::Watch(args) => ok(watch::run(args, g)),
        Command::Completion { shell } => ok(completion(shell)),
        Command::Man { dir } => ok(man::write_all(&dir)),
        Command::JobController { dir, lock_fd } => job::run_controller(&dir, lock_fd),
        Command::BindSubpaths { dir, container } => ok(bind_subpaths(&dir, &container)),
        Command::ReadEnvFiles { dir, container } => ok(read_env_files(&dir, &container)),
        Command::SetupStep { dir, index } => ok(setup_step(&dir, index)),
    }
}

/// A command-line argument that names a manifest (`-`, a `.yaml`/`.yml`/`.json`
/// name, or a file that exists) rather than a pod.
pub(crate) fn is_manifest_arg(arg: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| arg.ends_with(ext))
        || arg == "-"
        || Path::new(arg).is_file()
}
