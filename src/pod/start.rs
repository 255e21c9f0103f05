//! Starting a pod under its supervisor: the pod's lock, the ownership check, the
//! bundles (from a manifest) or a `generate` output, the initial state, then
//! `podshim-supervisor` and its report.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::{PodError, io_err, list, stop};
use crate::bundle::{self, HostPaths, SystemMounter};
use crate::image::{PullOptions, Store};
use crate::manifest::Manifest;
use crate::model::PodKey;
use crate::paths::Paths;
use crate::run_plan::{self, RunPlan};
use crate::runtime::{CliRuntime, ContainerState, RuntimeConfig};
use crate::state::{self, PodPhase, PodState, RuntimeRecord, rfc3339};
use crate::supervisor::handshake::Report;
use crate::translate::annotations;

/// What to run.
pub enum Source {
    /// A manifest: its images prepared per pull policy, its bundles written into
    /// the pod's state directory. `file` names it in the generated README.
    Manifest {
        manifest: Box<Manifest>,
        file: String,
        pull: Box<PullOptions>,
        /// The manifest's absolute path (none for stdin), kept in the pod's
        /// state for `down FILE`, apply and `watch`.
        path: Option<PathBuf>,
    },
    /// A `podshim generate` output directory.
    Generated(PathBuf),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StartOptions {
    /// Replace a pod of the same name that already exists.
    pub replace: bool,
    /// Keep what a failed start leaves, for debugging.
    pub keep: bool,
    /// How long to wait for the app containers to run.
    pub timeout: Duration,
    pub runtime: RuntimeConfig,
    /// Where Localhost seccomp profiles are (`--seccomp-profile-root`).
    pub seccomp_root: PathBuf,
    /// The pod network (`--network`, `--cni-*`).
    pub network: super::network::NetworkOptions,
    /// Return only once the pod is ready (`up --wait-ready`), within `timeout`.
    pub wait_ready: bool,
    /// Where the pod's cgroup goes, and the node's pids limit.
    pub cgroup: crate::translate::pod_cgroup::CgroupConfig,
    /// The CDI spec directories (`--cdi-spec-dir`).
    pub cdi_dirs: Vec<PathBuf>,
    /// The caller listed the runtime's containers for this pod's ids already
    /// (one listing for a batch of pods, not one per pod).
    #[serde(default)]
    pub ids_checked: bool,
}

/// A pod that runs: its directory and state.
pub struct Started {
    pub key: PodKey,
    pub pod_dir: PathBuf,
    pub state: PodState,
}

pub fn start(
    paths: &Paths,
    store: &Store,
    source: Source,
    opts: &StartOptions,
) -> Result<Started, PodError> {
    let deadline = crate::teardown::far_after(Instant::now(), opts.timeout);
    let (key, uid, ids, generated) = match &source {
        Source::Manifest { manifest, .. } => {
            let pod = &manifest.pod;
            (pod.key.clone(), pod.uid.to_string(), runtime_ids(pod), None)
        }
        Source::Generated(dir) => {
            let plan = run_plan::read(dir)?;
            let key = PodKey::parse(&plan.name, Some(&plan.namespace))?;
            let ids = plan.all().map(|c| c.id.clone()).collect();
            (key, plan.uid.clone(), ids, Some((dir.clone(), plan)))
        }
    };
    let origin = match &source {
        Source::Manifest { manifest, path, .. } => state::Origin {
            labels: manifest.pod.labels.clone(),
            owner_references: manifest.pod.owner_references.clone(),
            workload: manifest.pod.workload.clone(),
            manifest: path.clone(),
            template_hash: manifest.pod.template_hash.clone(),
        },
        Source::Generated(_) => state::Origin::default(),
    };
    // A user namespace only with a runtime whose exec enters it.
    let userns = match (&source, &generated) {
        (Source::Manifest { manifest, .. }, _) => !manifest.pod.spec.host_users,
        (_, Some((_, plan))) => plan.user_namespace().is_some(),
        _ => false,
    };
    if userns
        && let Some(why) = crate::runtime::advisories::check_user_namespace(
            &opts.runtime.program,
            &paths.runtime_checks(),
        )
    {
        return Err(PodError::Invalid(why));
    }
    let pod_dir = paths.pod_dir(&key.id());
    if state::read(&pod_dir).is_ok() {
        if !opts.replace {
            return Err(PodError::AlreadyExists(key));
        }
        stop::stop(paths, store, &key, &stop::StopOptions::default())?;
    }
    let lock = state::PodLock::try_acquire(&pod_dir)?;
    // Another `up` of the same name may have started it between the check above
    // and the lock: the check again, under the lock.
    if state::read(&pod_dir).is_ok() {
        return Err(PodError::AlreadyExists(key));
    }
    // Leftovers of a crashed `up` (no state was written): cleared, keeping our lock.
    if let Source::Manifest { manifest, .. } = &source {
        super::network::free_stale(&opts.network, &manifest.pod, &pod_dir);
    }
    clear_leftovers(&pod_dir, &key.id(), &opts.network.bin_dirs, store)?;
    let runtime = CliRuntime::direct(opts.runtime.clone());
    let checked = if opts.ids_checked {
        Ok(())
    } else {
        preflight(&runtime, &key, &ids)
    };
    if let Err(e) = checked {
        let _ = std::fs::remove_dir_all(&pod_dir);
        return Err(e);
    }

    // Held from the hostPort check until this pod's state is written: a pod
    // started meanwhile sees its ports.
    let mut host_ports_lock = None;
    let (bundle_dir, plan): (PathBuf, RunPlan) = match (source, generated) {
        (
            Source::Manifest {
                manifest,
                file,
                pull,
                ..
            },
            _,
        ) => {
            // `--timeout` is one budget: resolving the images spends from it.
            let mut pull = pull;
            pull.deadline = Some(deadline);
            // The profiles first: a bad one fails before anything is pulled.
            let written =
                super::seccomp_profiles(&manifest.pod, &opts.seccomp_root).and_then(|profiles| {
                    let images = super::prepare(&manifest.pod, store, &pull)?;
                    // ADD spends from the same budget.
                    let left = deadline.saturating_duration_since(Instant::now());
                    let net_opts = super::network::NetworkOptions {
                        timeout: opts.network.timeout.min(left.max(Duration::from_secs(1))),
                        ..opts.network.clone()
                    };
                    let network = attach(paths, &manifest.pod, &pod_dir, &net_opts)?;
                    let written = super::write(
                        &manifest.pod,
                        &images,
                        &profiles,
                        store,
                        &pod_dir,
                        HostPaths::Create,
                        &file,
                        network.as_ref().map(|(n, _)| n),
                        Some(&runtime),
                        &opts.cgroup,
                        &opts.cdi_dirs,
                        Some(&paths.pods()),
                    );
                    if written.is_err()
                        && let Some((n, _)) = &network
                    {
                        // Undone by write already if its bundles failed; again (a
                        // no-op then) for a translation that failed before them.
                        let _ = super::network::detach(n);
                    }
                    written.map(|plan| (plan, network.map(|(_, lock)| lock)))
                });
            match written {
                Ok((plan, ports_lock)) => {
                    host_ports_lock = ports_lock.flatten();
                    (pod_dir.clone(), plan)
                }
                Err(e) => {
                    // The pod's user namespace (`hostUsers: false`, made with
                    // its network) and its ids go.
                    let pin = crate::paths::PodPaths::new(&pod_dir).userns();
                    if let Err(e) = crate::cni::netns::unpin(&pin) {
                        tracing::error!("{}: {e}", pin.display());
                    }
                    crate::userns::release(&pod_dir);
                    // Unless a failed DEL left the pod's pin (and mounts) for the
                    // next `up` or `down`: never remove_dir_all over a mount.
                    if bundle::mounts_under(&pod_dir).is_ok_and(|m| m.is_empty()) {
                        let _ = std::fs::remove_dir_all(&pod_dir);
                    }
                    return Err(e);
                }
            }
        }
        (Source::Generated(_), Some((dir, plan))) => {
            // `generate` writes no attachment: a plan that names one is another
            // pod's state directory, whose network is not this pod's to detach.
            if let Some(net) = &plan.network {
                let _ = std::fs::remove_dir_all(&pod_dir);
                return Err(PodError::Network(format!(
                    "{}: names the CNI network {} of a pod that `up` started; `up --from` runs `generate` output only",
                    run_plan::RunPlan::file(&dir).display(),
                    net.name
                )));
            }
            (dir, plan)
        }
        (Source::Generated(_), None) => unreachable!("read above"),
    };
    let pod = PodState {
        pod_id: plan.pod_id.clone(),
        namespace: key.namespace.to_string(),
        name: key.name.to_string(),
        uid: uid.clone(),
        phase: PodPhase::Pending,
        message: None,
        reason: None,
        qos_class: plan.qos_class,
        cgroup: plan.cgroup().map(|c| c.path.clone()),
        user_namespace: plan.user_namespace(),
        created_at: rfc3339(SystemTime::now()),
        supervisor_pid: None,
        runtime: RuntimeRecord {
            program: opts.runtime.program.clone(),
            global_args: opts.runtime.global_args.clone(),
            root: opts.runtime.root.clone(),
        },
        restart_policy: plan.restart_policy,
        termination_grace_period_seconds: plan.termination_grace_period_seconds,
        log_dir: paths.pod_log_dir(&plan.pod_id, &uid),
        bundle_dir: bundle_dir.clone(),
        keep_on_failure: opts.keep,
        containers: PodState::initial_statuses(&plan),
        host_ip: Some(crate::host::host_ip()),
        pod_ip: None,
        pod_ips: Vec::new(),
        conditions: Vec::new(),
        events: Vec::new(),
        origin,
    };
    let mut pod = pod;
    if let Some(net) = &plan.network {
        pod.set_pod_ips(net.ips.clone());
    }
    // A new pod starts with new logs: those of a previous pod of the same name (kept
    // by `down` for `podshim logs`) would otherwise mix with its `0.log`.
    if pod.log_dir.exists() {
        std::fs::remove_dir_all(&pod.log_dir).map_err(io_err(&pod.log_dir, "remove"))?;
    }
    let written = state::write(&pod_dir, &pod);
    drop(host_ports_lock);
    let left = deadline.saturating_duration_since(Instant::now());
    let started = written
        .map_err(PodError::from)
        .and_then(|()| start_supervisor(&pod_dir, left));
    let (pid, result) = match started {
        Ok(started) => started,
        Err(e) => {
            // No supervisor to roll back what is made (bundles, mounts, the
            // network): the teardown without it.
            drop(lock);
            if !opts.keep {
                let stop_opts = stop::StopOptions {
                    cni_bin_dirs: opts.network.bin_dirs.clone(),
                    ..Default::default()
                };
                if let Err(undo) = stop::stop(paths, store, &key, &stop_opts) {
                    tracing::error!("undoing the start: {undo}");
                }
            }
            return Err(e);
        }
    };
    drop(lock);
    match result {
        Handshake::Yes => {
            let state = match opts.wait_ready {
                true => super::ready::wait_ready(&pod_dir, &key, deadline, opts.timeout.as_secs())?,
                false => state::read(&pod_dir)?,
            };
            Ok(Started {
                key,
                state,
                pod_dir,
            })
        }
        Handshake::Failed(message) => {
            wait_gone(pid, &pod_dir, Duration::from_secs(30));
            if !opts.keep && bundle_dir == pod_dir {
                // The supervisor removed what it made; the lease goes with it.
                let _ = store.release(&pod_dir);
            }
            Err(PodError::StartFailed {
                pod: key,
                message,
                kept: opts.keep,
            })
        }
        Handshake::Crashed => {
            let log =
                std::fs::read_to_string(crate::paths::supervisor_log(&pod_dir)).unwrap_or_default();
            if !opts.keep {
                let _ = stop::stop(paths, store, &key, &stop::StopOptions::default());
            }
            Err(PodError::SupervisorCrashed {
                pod: key,
                log: log.trim_end().to_string(),
            })
        }
        Handshake::TimedOut => Err(PodError::TimedOut {
            pod: key,
            seconds: opts.timeout.as_secs(),
        }),
    }
}

/// Who holds a runtime container, for messages: its bundle, status and the pod its
/// CRI annotations name.
pub fn describe(state: &ContainerState) -> String {
    let a = &state.annotations;
    let pod = match (
        a.get(annotations::SANDBOX_NAMESPACE),
        a.get(annotations::SANDBOX_NAME),
    ) {
        (Some(ns), Some(name)) => format!(
            ", pod {ns}/{name} uid {}",
            a.get(annotations::SANDBOX_UID).map_or("?", |u| u.as_str())
        ),
        _ => String::new(),
    };
    format!("{}, bundle {}{pod}", state.status, state.bundle.display())
}

/// The pod's network attachment (none with `--network none` or hostNetwork),
/// with the lock on the root's hostPorts when it publishes any (held until the
/// pod's state is written). A hostPort another pod of this root holds is
/// refused before anything is attached.
fn attach(
    paths: &Paths,
    pod: &crate::model::Pod,
    pod_dir: &Path,
    opts: &super::network::NetworkOptions,
) -> Result<Option<(crate::run_plan::PodNetwork, Option<state::PodLock>)>, PodError> {
    use super::network;
    if pod.spec.host_network {
        return Ok(None);
    }
    let Some(list) = opts.resolve(pod)? else {
        return Ok(None);
    };
    let wanted = network::port_mappings(pod);
    if !wanted.is_empty()
        && !list
            .plugins
            .iter()
            .any(|p| p.capabilities.contains("portMappings"))
    {
        for field in network::host_port_fields(pod) {
            tracing::warn!(
                "{field}: not published: no plugin of CNI network {} has the portMappings capability",
                list.name
            );
        }
    }
    let lock = if wanted.is_empty() {
        None
    } else {
        let lock = state::PodLock::acquire(&paths.root.join("hostports"))?;
        let others: Vec<(String, Vec<crate::cni::PortMapping>)> = super::all_pods(paths)
            .into_iter()
            .filter_map(|(_, s)| {
                let plan = run_plan::read(&s.bundle_dir).ok()?;
                let ports = plan.network?.port_mappings;
                Some((format!("{}/{}", s.namespace, s.name), ports))
            })
            .collect();
        network::check_host_ports(pod, &wanted, &others)?;
        Some(lock)
    };
    let net = network::attach(opts, &list, pod, pod_dir)?;
    Ok(Some((net, lock)))
}

/// podshim never kills or deletes a runtime container it did not create: a start
/// whose container ids are taken (another podshim root, a container left by hand)
/// is refused before anything is made, naming who holds the id. One `list` of the
/// runtime answers for every id.
/// The runtime ids of a pod's infra and app containers: what must not be
/// another's when it starts.
pub fn runtime_ids(pod: &crate::model::Pod) -> Vec<String> {
    let mut ids = vec![pod.key.id()];
    ids.extend(
        pod.spec
            .containers
            .iter()
            .map(|c| pod.key.container_id(&c.name)),
    );
    ids
}

/// Fails when the runtime has a container of one of `ids` (another's: ours
/// would have state).
pub fn preflight(runtime: &CliRuntime, key: &PodKey, ids: &[String]) -> Result<(), PodError> {
    let taken = runtime.list_matching(&|id| ids.iter().any(|i| i == id))?;
    match taken.iter().find(|s| ids.contains(&s.id)) {
        Some(state) => Err(PodError::IdInUse {
            pod: key.clone(),
            id: state.id.clone(),
            holder: describe(state),
        }),
        None => Ok(()),
    }
}

/// A pod directory without state: a crashed `up`. Its network attachment (found in
/// the CNI result cache by the pod's CNI id, which names this directory: ours, even
/// after a reboot took the pin), mounts, files and lease go; the lock file we hold
/// stays.
fn clear_leftovers(
    pod_dir: &Path,
    infra_id: &str,
    cni_bin_dirs: &[PathBuf],
    store: &Store,
) -> Result<(), PodError> {
    super::network::detach_lost(cni_bin_dirs, infra_id, pod_dir)?;
    bundle::unmount_all_under(pod_dir, &SystemMounter).map_err(io_err(pod_dir, "unmount"))?;
    for entry in std::fs::read_dir(pod_dir).map_err(io_err(pod_dir, "read"))? {
        let entry = entry.map_err(io_err(pod_dir, "read"))?;
        if entry.file_name() == state::LOCK_FILE {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().map_err(io_err(&path, "stat"))?.is_dir();
        if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .map_err(io_err(&path, "remove"))?;
    }
    Ok(store.release(pod_dir)?)
}

/// What the supervisor said (or did not).
enum Handshake {
    Yes,
    Failed(String),
    Crashed,
    TimedOut,
}

fn wait_gone(pid: i32, pod_dir: &Path, timeout: Duration) {
    let deadline = crate::teardown::far_after(Instant::now(), timeout);
    while list::supervisor_alive(pid, pod_dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The supervisor binary, beside this one.
fn supervisor_binary() -> Result<PathBuf, PodError> {
    let exe = std::env::current_exe().map_err(io_err(Path::new("/proc/self/exe"), "read"))?;
    let bin = exe
        .parent()
        .unwrap_or(Path::new("/"))
        .join(crate::supervisor::BINARY);
    if !bin.is_file() {
        return Err(PodError::Io {
            path: bin,
            action: "find the supervisor",
            err: std::io::Error::other(
                "missing: podshim's supervisor is installed beside podshim (cargo install installs both)",
            ),
        });
    }
    Ok(bin)
}

/// Starts `podshim-supervisor POD_DIR` detached (own session, no terminal), its
/// stdout a pipe on which it sends its report.
fn start_supervisor(pod_dir: &Path, timeout: Duration) -> Result<(i32, Handshake), PodError> {
    let exe = supervisor_binary()?;
    let log_path = crate::paths::supervisor_log(pod_dir);
    let log = std::fs::File::create(&log_path).map_err(io_err(&log_path, "create"))?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| io_err(pod_dir, "pipe")(e.into()))?;
    let mut cmd = Command::new(&exe);
    cmd.arg(list::supervisor_arg(pod_dir))
        // `up --wait` under systemd (Type=notify) is the one to notify: runc
        // given NOTIFY_SOCKET would wait for the container to send READY=1.
        .env_remove(crate::systemd::NOTIFY_SOCKET)
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
    let mut child = cmd.spawn().map_err(io_err(&exe, "start"))?;
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
        Err(_) => return Ok((pid, Handshake::TimedOut)),
    };
    let _ = child.try_wait();
    Ok((
        pid,
        match report {
            Some(Report::Started) => Handshake::Yes,
            Some(Report::Failed { message }) => Handshake::Failed(message),
            None => Handshake::Crashed,
        },
    ))
}
