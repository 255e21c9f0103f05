//! Jobs under `up`: their controllers started (`start_jobs`), waited for under
//! `--wait` (`wait_jobs`), and the controller process itself (`up ...
//! --job-controller DIR`, `run_controller`).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::manifest::ManifestSet;
use crate::model::PodKey;
use crate::model::workload::WorkloadKind;
use crate::outln;
use crate::paths::Paths;
use crate::pod::job::{self, CONTROLLER_COMMAND, JobRecord};

/// A Job `up` started or found running: its key and directory.
pub struct StartedJob {
    pub key: PodKey,
    pub dir: PathBuf,
    /// Started now (false: it ran already and is left as it is).
    pub new: bool,
    /// When its controller was started by this `up`.
    pub spawned: Option<std::time::Instant>,
    /// Under `--wait`, held until its end is reported: ttlSecondsAfterFinished
    /// does not remove the Job before.
    waiting: Option<nix::fcntl::Flock<std::fs::File>>,
}

/// Makes each Job's directory and starts its controller, detached (its own
/// session, like a supervisor): `podshim job-controller DIR`, which runs the
/// pods with the options `up` had (kept in `job.json`).
pub fn start_jobs(
    set: &ManifestSet,
    text: &str,
    path: Option<&Path>,
    paths: &Paths,
    options: &job::ControllerOptions,
    wait: bool,
) -> Result<Vec<StartedJob>> {
    let mut out = Vec::new();
    for w in set.workloads.iter().filter(|w| w.kind == WorkloadKind::Job) {
        let key = PodKey {
            namespace: w.namespace.clone(),
            name: w.name.clone(),
        };
        let record = JobRecord {
            namespace: w.namespace.to_string(),
            name: w.name.to_string(),
            uid: w.uid.clone(),
            template_hash: w.template_hash.clone(),
            completions: w.job.as_ref().and_then(|j| j.completions),
            manifest: path.map(Path::to_path_buf),
            ttl_seconds_after_finished: w.job.as_ref().and_then(|j| j.ttl_seconds_after_finished),
            options: options.clone(),
        };
        // The waiters lock is taken before the controller starts, so that it
        // cannot remove the Job before this `up` has seen it end. A Job its TTL
        // removed meanwhile is made anew, as `kubectl apply` would.
        let mut tries = 0;
        let (dir, spawned, waiting) = loop {
            let (dir, new) = match job::create(paths, &key, &record, text)? {
                Some(dir) => (dir, true),
                None => (job::job_dir(paths, &key), false),
            };
            let waiting = match wait.then(|| job::wait_lock(&dir)) {
                None => None,
                Some(Ok(lock)) if job::read_record(&dir).is_some() => Some(lock),
                Some(_) if tries < 3 => {
                    tries += 1;
                    continue;
                }
                Some(Ok(_)) => {
                    anyhow::bail!("job {key}: removed again and again while starting it")
                }
                Some(Err(e)) => return Err(e.into()),
            };
            // The TTL of the Job as it was made, not as the file says now.
            let ttl = job::read_record(&dir).and_then(|r| r.ttl_seconds_after_finished);
            // A new Job gets its controller; so does one whose controller died
            // before it ended, or before its ttlSecondsAfterFinished removed
            // it (started again, it takes up where the other left), and one
            // whose controller never wrote its status (an `up` that died
            // before it started it). The start takes the controller's lock
            // first: none while one runs, whoever started it.
            let unended =
                job::read_status(&dir).is_none_or(|s| s.condition.is_none() || ttl.is_some());
            if !new && !unended {
                break (dir, false, waiting);
            }
            match spawn_controller(&key, &dir) {
                Ok(spawned) => break (dir, spawned, waiting),
                // Removed meanwhile (its TTL, a `down`): made anew.
                Err(_) if !dir.exists() && tries < 3 => tries += 1,
                Err(e) => return Err(e),
            }
        };
        out.push(StartedJob {
            key,
            dir,
            new: spawned,
            spawned: spawned.then(std::time::Instant::now),
            waiting,
        });
    }
    Ok(out)
}

/// `up --wait` of Jobs: until each has ended; 0 when all completed.
pub fn wait_jobs(jobs: &mut [StartedJob]) -> Result<ExitCode> {
    let stop = super::logs::interrupted();
    let mut reported = vec![false; jobs.len()];
    let mut failed = false;
    loop {
        for (i, j) in jobs.iter_mut().enumerate() {
            if reported[i] {
                continue;
            }
            if !j.dir.exists() {
                // `down` took it before its end was seen here
                // (ttlSecondsAfterFinished waits for this `up`).
                reported[i] = true;
                failed = true;
                outln!("job {}: removed before its end was seen", j.key);
                continue;
            }
            let status = job::read_status(&j.dir).unwrap_or_default();
            let counts = &status.counts;
            if let Some(c) = &status.condition {
                reported[i] = true;
                // Its end is seen: the Job may go now.
                j.waiting = None;
                if c.complete() {
                    outln!("job {}: Complete ({} succeeded)", j.key, counts.succeeded);
                } else {
                    failed = true;
                    outln!(
                        "job {}: Failed: {}: {} ({} succeeded, {} failed)",
                        j.key,
                        c.reason.as_deref().unwrap_or("-"),
                        c.message.as_deref().unwrap_or("-"),
                        counts.succeeded,
                        counts.failed
                    );
                }
            } else if !job::controller_running(&j.dir).unwrap_or(false) && !j.new_starting() {
                reported[i] = true;
                failed = true;
                // A controller that takes up later may remove it.
                j.waiting = None;
                outln!(
                    "job {}: its controller ended before the job:\n{}",
                    j.key,
                    log_tail(&j.dir.join("controller.log"))
                );
            }
        }
        if reported.iter().all(|r| *r) {
            return Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        if stop.load(Ordering::SeqCst) {
            eprintln!("stopped waiting; the jobs keep running (podshim ps; podshim down FILE)");
            return Ok(ExitCode::from(130));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl StartedJob {
    /// A controller just spawned may not hold its lock yet.
    fn new_starting(&self) -> bool {
        self.spawned
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
    }
}

/// The controller process (`podshim job-controller DIR`): the Job of `dir`,
/// from the input and the options `up` kept there.
pub fn run_controller(dir: &Path, lock_fd: Option<i32>) -> Result<ExitCode> {
    let handed = match lock_fd {
        Some(fd) => {
            // SAFETY: F_GETFD only asks whether `fd` is open.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                anyhow::bail!("--lock-fd {fd}: not an open descriptor");
            }
            // SAFETY: the descriptor `up` handed this process (spawn_controller),
            // owned here from now on; close-on-exec again, so that the pods'
            // supervisors this controller starts do not hold the lock.
            let file = unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd)
            };
            Some(job::adopt_controller_lock(dir, file)?)
        }
        None => None,
    };
    let record =
        job::read_record(dir).with_context(|| format!("{}: no job.json", dir.display()))?;
    let opts = &record.options;
    let store = crate::image::Store::open(&opts.paths.store)?;
    let pull = crate::image::PullOptions::system(opts.registries_conf.as_deref())?;
    let stop = crate::pod::StopOptions {
        runtime: Some(opts.start.runtime.clone()),
        cni_bin_dirs: opts.start.network.bin_dirs.clone(),
        ..Default::default()
    };
    let file = record
        .manifest
        .clone()
        .unwrap_or_else(|| dir.join("manifest"));
    let mut ops = crate::pod::apply::Ops {
        paths: &opts.paths,
        store: &store,
        start: crate::pod::StartOptions {
            // Each attempt is a new pod: never another's, never kept.
            replace: false,
            ..opts.start.clone()
        },
        stop,
        pull,
        file: file.display().to_string(),
        path: record.manifest.clone(),
        started: Vec::new(),
        error: None,
        removed_claims: Vec::new(),
        warnings: Vec::new(),
    };
    let ops = &mut ops;
    // podshim's own copy, as bounded as `up` read it.
    let bytes = crate::fsutil::read_regular(&dir.join("manifest"), 16 << 20)
        .map_err(|e| anyhow::anyhow!("{}: read the manifest: {e}", dir.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: the manifest is not UTF-8", dir.display()))?;
    let set = crate::manifest::parse_set(
        &text,
        &dir.join("manifest").display().to_string(),
        crate::manifest::ParseOptions {
            skip_unsupported_kinds: true,
        },
    )?;
    let stop = super::logs::interrupted();
    let outcome = job::run_controller(dir, &set, ops, &stop, handed)?;
    eprintln!(
        "job ended: {}{}",
        outcome.kind,
        outcome.reason.map(|r| format!(": {r}")).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// The last lines of a log (at most 8 KiB of its end).
fn log_tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = crate::fsutil::open_regular(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8 << 10)));
    let mut buf = Vec::new();
    let _ = f.take(8 << 10).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim_end().to_string()
}

/// Starts a Job's controller, detached (its own session, like a supervisor),
/// handing it the controller's lock taken here: false (nothing started) while
/// a controller runs.
fn spawn_controller(key: &PodKey, dir: &Path) -> Result<bool> {
    let Some(lock) = job::lock_for_controller(dir)? else {
        return Ok(false);
    };
    // Made once the lock is held: never a running controller's log truncated.
    let log_path = dir.join("controller.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("{}: create", log_path.display()))?;
    let exe = std::env::current_exe().context("the podshim binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(CONTROLLER_COMMAND)
        .arg(dir)
        .arg("--lock-fd")
        .arg(job::HANDED_LOCK_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        // The controller is no service's main process: systemd's socket is
        // `up`'s alone.
        .env_remove(crate::systemd::NOTIFY_SOCKET);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&lock);
    // SAFETY: setsid, dup2 and fcntl are async-signal-safe. The controller
    // must outlive this terminal's session and not get its Ctrl-C, and it
    // gets the lock's open file at a known descriptor, without close-on-exec
    // (dup2's copy has none; the same number needs it cleared).
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            let target = job::HANDED_LOCK_FD;
            let r = if raw == target {
                libc::fcntl(raw, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, target)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("job {key}: start its controller"))?;
    // This copy closes; the lock stays with the controller's (flock(2) locks
    // belong to the open file, released when its last descriptor closes).
    drop(lock);
    Ok(true)
}
