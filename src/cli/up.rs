//! `podshim up FILE` / `podshim up --from DIR`: start a pod under its supervisor.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use super::generate::{absolute, write_pod};
use super::pods::{self, stop_and_remove};
use super::prepare::resolve_images;
use super::{Global, RuntimeArgs};
use crate::bundle::HostPaths;
use crate::image::Store;
use crate::manifest;
use crate::state::{self, PodPhase, PodState, RuntimeRecord, rfc3339};
use crate::supervisor::handshake::Report;

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
    /// How long to wait for the app containers to run.
    #[arg(long, default_value = "300", value_name = "SECONDS")]
    pub timeout: u64,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    let runtime = args.runtime.resolve()?;
    // What to run: a manifest to translate, or a `generate` output read once here.
    let (namespace, name, uid, source) = match (&args.file, &args.from) {
        (Some(file), _) => {
            let m = manifest::load(file)?;
            for warning in &m.warnings {
                eprintln!("warning: {warning}");
            }
            (
                m.pod.namespace().to_string(),
                m.pod.name().to_string(),
                m.pod.uid.to_string(),
                Source::Manifest(Box::new(m)),
            )
        }
        (None, Some(dir)) => {
            let dir = absolute(dir)?;
            let plan = crate::run_plan::read(&dir)
                .with_context(|| format!("{} is not a `podshim generate` output", dir.display()))?;
            (
                plan.namespace.clone(),
                plan.name.clone(),
                plan.uid.clone(),
                Source::Generated(dir, Box::new(plan)),
            )
        }
        (None, None) => unreachable!("clap requires FILE or --from"),
    };
    let pod_dir = pods::pod_dir(&paths, &namespace, &name);
    if state::read(&pod_dir).is_ok() {
        if !args.replace {
            bail!(
                "pod {namespace}/{name} already exists: `podshim down {namespace}/{name}` first, or `up --replace`"
            );
        }
        stop_and_remove(&paths, &namespace, &name)?;
    }
    let lock = state::PodLock::try_acquire(&pod_dir)?;
    // Leftovers of a crashed `up` (no state was written): clear them, keeping the
    // lock we hold.
    clear_leftovers(&pod_dir)?;

    let (bundle_dir, plan) = match source {
        Source::Manifest(m) => {
            let store = Store::open(&global.store)?;
            let images = resolve_images(&m.pod, &store, global.registries_conf.as_deref())
                .inspect_err(|_| {
                    let _ = std::fs::remove_dir_all(&pod_dir);
                })?;
            let file = args
                .file
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_default();
            match write_pod(&m, &images, &store, &pod_dir, HostPaths::Create, &file) {
                Ok(plan) => (pod_dir.clone(), plan),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&pod_dir);
                    return Err(e);
                }
            }
        }
        Source::Generated(dir, plan) => (dir, *plan),
    };
    let pod = PodState {
        pod_id: plan.pod_id.clone(),
        namespace: namespace.clone(),
        name: name.clone(),
        uid: uid.clone(),
        phase: PodPhase::Pending,
        message: None,
        created_at: rfc3339(SystemTime::now()),
        supervisor_pid: None,
        runtime: RuntimeRecord {
            program: runtime.program.clone(),
            global_args: runtime.global_args.clone(),
            root: runtime.root.clone(),
        },
        restart_policy: plan.restart_policy,
        termination_grace_period_seconds: plan.termination_grace_period_seconds,
        log_dir: paths.pod_log_dir(&plan.pod_id, &uid),
        bundle_dir: bundle_dir.clone(),
        keep_on_failure: args.keep,
        containers: PodState::initial_statuses(&plan),
    };
    // A new pod starts with new logs: those of a previous pod of the same name (kept
    // by `down` for `podshim logs`) would otherwise mix with its `0.log`.
    if pod.log_dir.exists() {
        std::fs::remove_dir_all(&pod.log_dir).with_context(|| {
            format!(
                "removing the previous pod's logs in {}",
                pod.log_dir.display()
            )
        })?;
    }
    state::write(&pod_dir, &pod)?;

    let (pid, result) = start_supervisor(&pod_dir, Duration::from_secs(args.timeout))?;
    drop(lock);
    match result {
        Started::Yes => {}
        Started::Failed(message) => {
            wait_gone(pid, Duration::from_secs(30));
            if args.keep {
                bail!(
                    "pod {namespace}/{name} failed to start: {message}\n(kept for debugging: podshim down {namespace}/{name} removes it)"
                );
            }
            bail!("pod {namespace}/{name} failed to start: {message}");
        }
        Started::Crashed => {
            let log = std::fs::read_to_string(pod_dir.join("supervisor.log")).unwrap_or_default();
            if !args.keep {
                let _ = stop_and_remove(&paths, &namespace, &name);
            }
            bail!(
                "the supervisor of pod {namespace}/{name} exited while starting it:\n{}",
                log.trim_end()
            );
        }
        Started::TimedOut => {
            bail!(
                "pod {namespace}/{name} did not start within {} s; it is still starting (podshim ps {namespace}/{name}; podshim down {namespace}/{name})",
                args.timeout
            );
        }
    }
    let pod = state::read(&pod_dir)?;
    let phase = format!("{:?}", pod.phase);
    println!("pod {namespace}/{name} {}", phase.to_lowercase());
    super::ps::print_pods(&[(pod_dir.clone(), pod)], false)?;
    if args.wait {
        super::logs::follow_pod_until_interrupted(&paths, &namespace, &name)?;
        eprintln!("stopping pod {namespace}/{name}");
        stop_and_remove(&paths, &namespace, &name)?;
    }
    Ok(())
}

fn clear_leftovers(pod_dir: &Path) -> Result<()> {
    crate::bundle::unmount_all_under(pod_dir, &crate::bundle::SystemMounter)?;
    for entry in std::fs::read_dir(pod_dir)? {
        let entry = entry?;
        if entry.file_name() == state::LOCK_FILE {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

enum Source {
    Manifest(Box<manifest::Manifest>),
    /// A `generate` output directory and its plan.
    Generated(PathBuf, Box<crate::run_plan::RunPlan>),
}

enum Started {
    Yes,
    Failed(String),
    Crashed,
    TimedOut,
}

fn wait_gone(pid: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while pods::supervisor_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The supervisor binary, beside this one.
fn supervisor_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the podshim binary")?;
    let bin = exe
        .parent()
        .unwrap_or(Path::new("/"))
        .join(crate::supervisor::BINARY);
    if !bin.is_file() {
        bail!(
            "{} is missing: podshim's supervisor is installed beside podshim (cargo install installs both)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Starts `podshim-supervisor POD_DIR` detached (own session, no terminal), its
/// stdout a pipe on which it sends its report.
fn start_supervisor(pod_dir: &Path, timeout: Duration) -> Result<(i32, Started)> {
    let exe = supervisor_binary()?;
    let log = std::fs::File::create(pod_dir.join("supervisor.log")).context("supervisor.log")?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let mut cmd = Command::new(exe);
    cmd.arg(pod_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(log));
    // SAFETY: setsid is async-signal-safe; the supervisor must not die with this
    // terminal's session or receive its Ctrl-C.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd.spawn().context("starting the supervisor")?;
    let pid = child.id() as i32;
    // The supervisor is reparented to init when we exit; we never wait for it here
    // (it outlives us), so its zombie, if it dies first, is ours only briefly.
    drop(cmd);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Report::read_from(std::fs::File::from(read)));
    });
    let report = match rx.recv_timeout(timeout) {
        Ok(report) => report,
        Err(_) => return Ok((pid, Started::TimedOut)),
    };
    let mut child = child;
    let _ = child.try_wait();
    Ok((
        pid,
        match report {
            Some(Report::Started) => Started::Yes,
            Some(Report::Failed { message }) => Started::Failed(message),
            None => Started::Crashed,
        },
    ))
}
