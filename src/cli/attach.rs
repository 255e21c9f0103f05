//! `podshim attach POD [-c CTR] [-i] [-t]`: `kubectl attach`. Prints what the
//! container's main process prints, and with `-i` sends this terminal's input
//! to its stdin (`stdin: true`); with `-t` and a container with `tty: true`,
//! this terminal is raw and its size follows. Ctrl-P Ctrl-Q detaches (Docker's
//! and podman's keys), leaving the container running.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Global;
use crate::attach::{Frame, read_hello, write_frame};
use crate::model::ContainerKind;
use crate::pod;
use crate::state::ContainerState;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod (`NAME` or `NS/NAME`).
    pub pod: String,
    /// The container (default: the first app container).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Send stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Use this terminal as the container's (raw, its size passed on).
    #[arg(short, long)]
    pub tty: bool,
}

/// Ctrl-P, Ctrl-Q.
const DETACH: [u8; 2] = [0x10, 0x11];

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    let key = global.pod_key(&args.pod)?;
    let (pod_dir, state) = pod::read_pod(&paths, &key)?;
    let container = match &args.container {
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
    if !matches!(container.state, ContainerState::Running { .. }) {
        bail!("container {:?} of pod {key} is not running", container.name);
    }
    let mut stream = crate::attach::connect(&crate::attach::dir(&pod_dir), &container.name)
        .with_context(|| format!("attach to container {:?} of pod {key}", container.name))?;
    let hello = read_hello(&mut stream).context("attach")?;
    if args.stdin && !hello.stdin {
        bail!(
            "container {:?} of pod {key} does not take stdin (it needs `stdin: true`, and `stdinOnce` closes it after the first attach)",
            container.name
        );
    }
    // kubectl's words for -t on a container without a terminal.
    let tty = args.tty && hello.tty;
    if args.tty && !hello.tty {
        eprintln!(
            "Unable to use a TTY - container {} did not allocate one",
            container.name
        );
    }
    let raw = (tty && args.stdin)
        .then(|| RawTerminal::new(io::stdin()))
        .flatten();
    let done = Arc::new(AtomicBool::new(false));
    if args.stdin {
        let mut to = stream.try_clone().context("attach")?;
        let done = Arc::clone(&done);
        std::thread::spawn(move || send_input(&mut to, tty, &done));
    }
    if tty && let Ok(mut to) = stream.try_clone() {
        std::thread::spawn(move || follow_size(&mut to));
    }
    let mut out = io::stdout();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Shut down by the input thread: detached.
            Err(_) => break,
        }
        if done.load(Ordering::SeqCst) {
            break;
        }
    }
    drop(raw);
    if done.load(Ordering::SeqCst) {
        eprintln!("\r\nread escape sequence");
    }
    Ok(())
}

/// Copies this process's stdin to the container in frames; with a terminal,
/// Ctrl-P Ctrl-Q detaches. At the end of stdin the connection's write side is
/// shut (the supervisor closes a `stdinOnce` stdin then).
fn send_input(to: &mut std::os::unix::net::UnixStream, tty: bool, done: &AtomicBool) {
    let mut stdin = io::stdin();
    let mut buf = [0u8; 4096];
    let mut prev = 0u8;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut data = &buf[..n];
        if tty {
            // The detach keys, split across reads or not.
            let mut at = None;
            for (i, &b) in data.iter().enumerate() {
                let before = if i == 0 { prev } else { data[i - 1] };
                if before == DETACH[0] && b == DETACH[1] {
                    at = Some(i);
                    break;
                }
            }
            prev = data[n - 1];
            if let Some(i) = at {
                // What came before the keys (less the Ctrl-P) still goes.
                data = &data[..i.saturating_sub(1)];
                let _ = write_frame(to, &Frame::Input(data.to_vec()));
                done.store(true, Ordering::SeqCst);
                let _ = to.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
        if write_frame(to, &Frame::Input(data.to_vec())).is_err() {
            return;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// Sends this terminal's size now and whenever it changes.
fn follow_size(to: &mut std::os::unix::net::UnixStream) {
    let mut last = None;
    loop {
        if let Some(size) = terminal_size() {
            if last != Some(size) {
                let (rows, cols) = size;
                if write_frame(to, &Frame::Resize { rows, cols }).is_err() {
                    return;
                }
                last = Some(size);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn terminal_size() -> Option<(u16, u16)> {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer.
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (r == 0 && size.ws_row > 0).then_some((size.ws_row, size.ws_col))
}

/// This terminal in raw mode until dropped (none when stdin is no terminal).
struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    fn new(stdin: io::Stdin) -> Option<RawTerminal> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            io::stdin().as_fd(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}
