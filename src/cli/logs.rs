//! `podshim logs POD [-c CTR] [-f] [--previous] [--timestamps] [--tail N]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};

use super::Global;
use crate::logs::{self, ReadOptions};
use crate::model::{ContainerKind, PodKey};
use crate::paths::Paths;
use crate::pod;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod (`NAME` or `NS/NAME`).
    pub pod: String,
    /// The container (required when the pod has several).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Keep printing new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// The previous run of the container.
    #[arg(short, long)]
    pub previous: bool,
    /// Prefix each line with its RFC3339Nano time.
    #[arg(long)]
    pub timestamps: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    let key = global.pod_key(&args.pod)?;
    let (dir, containers) = pod::list::logs_of(&paths, &key)
        .with_context(|| format!("pod {key} not found, and no logs of it remain"))?;
    let container = match &args.container {
        Some(c) => {
            if !containers.iter().any(|(n, _, _)| n == c) {
                let names: Vec<_> = containers.iter().map(|(n, _, _)| n.as_str()).collect();
                bail!(
                    "container {c:?} is not valid for pod {key}: choose one of: [{}]",
                    names.join(" ")
                );
            }
            c.clone()
        }
        None => {
            // kubectl's rule: the one container, else the user must choose.
            let apps: Vec<_> = containers
                .iter()
                .filter(|(_, k, _)| *k == ContainerKind::App)
                .collect();
            match apps.as_slice() {
                [only] => only.0.clone(),
                _ => {
                    let names: Vec<_> = containers.iter().map(|(n, _, _)| n.as_str()).collect();
                    bail!(
                        "a container name must be specified for pod {key}, choose one of: [{}]",
                        names.join(" ")
                    );
                }
            }
        }
    };
    let cdir = dir.join(&container);
    let latest = logs::latest_restart(&cdir).unwrap_or(0);
    let restart = if args.previous {
        if latest == 0 {
            bail!("previous terminated container {container:?} in pod {key} not found");
        }
        latest - 1
    } else {
        latest
    };
    let opts = ReadOptions {
        timestamps: args.timestamps,
        tail: args.tail,
        follow: args.follow && !args.previous,
    };
    let stop = interrupted();
    let mut out = std::io::stdout().lock();
    logs::read_log(&logs::log_file(&cdir, restart), &opts, &mut out, &|| {
        stop.load(Ordering::SeqCst)
    })?;
    Ok(())
}

/// A flag set on SIGINT/SIGTERM, so `-f` ends cleanly.
pub(crate) fn interrupted() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let _ = signal_flag(sig, Arc::clone(&flag));
    }
    flag
}

static FLAGS: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    if let Some(f) = FLAGS.get() {
        f.store(true, Ordering::SeqCst);
    }
}

fn signal_flag(sig: libc::c_int, flag: Arc<AtomicBool>) -> std::io::Result<()> {
    let _ = FLAGS.set(flag);
    // SAFETY: the handler only stores to an atomic.
    let rc = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    if rc == libc::SIG_ERR {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `up --wait`: prints every container's log as `[name] line` (`[pod/name]`
/// for several pods) until Ctrl-C or every pod's supervisor ends. True when
/// interrupted (SIGINT, SIGTERM), false when the pods ended by themselves.
pub fn follow_pods_until_interrupted(paths: &Paths, keys: &[PodKey]) -> Result<bool> {
    let stop = interrupted();
    let mut handles = Vec::new();
    let mut supervisors = Vec::new();
    for key in keys {
        let (dir, containers) =
            pod::list::logs_of(paths, key).with_context(|| format!("pod {key} not found"))?;
        let (pod_dir, state) = pod::read_pod(paths, key)?;
        supervisors.push((state.supervisor_pid, pod_dir));
        for (container, _, restart) in containers {
            let path = logs::log_file(&dir.join(&container), restart);
            let stop = Arc::clone(&stop);
            let prefix = match keys.len() {
                1 => format!("[{container}] "),
                _ => format!("[{}/{container}] ", key.name),
            };
            handles.push(std::thread::spawn(move || {
                let mut out = Prefixed {
                    prefix,
                    at_line_start: true,
                };
                let opts = ReadOptions {
                    follow: true,
                    ..Default::default()
                };
                let _ = logs::read_log(&path, &opts, &mut out, &|| stop.load(Ordering::SeqCst));
            }));
        }
    }
    let mut ended = false;
    while !stop.load(Ordering::SeqCst) {
        // A pod with no supervisor (one that had ended already) is gone too.
        let all_gone = supervisors
            .iter()
            .all(|(pid, dir)| pid.is_none_or(|p| !pod::supervisor_alive(p, dir)));
        if all_gone {
            ended = true;
            stop.store(true, Ordering::SeqCst);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(!ended)
}

struct Prefixed {
    prefix: String,
    at_line_start: bool,
}

impl std::io::Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = std::io::stdout().lock();
        for line in buf.split_inclusive(|b| *b == b'\n') {
            if self.at_line_start {
                out.write_all(self.prefix.as_bytes())?;
            }
            out.write_all(line)?;
            self.at_line_start = line.ends_with(b"\n");
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}
