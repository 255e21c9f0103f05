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
use crate::pod;

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
    let container = super::running_container(&state, &key, args.container.as_deref())?;
    let mut stream = crate::attach::connect(&crate::attach::dir(&pod_dir), &container.name)
        .with_context(|| format!("attach to container {:?} of pod {key}", container.name))?;
    let hello = read_hello(&mut stream).context("attach")?;
    if let Some(why) = &hello.refused {
        bail!(
            "attach to container {:?} of pod {key}: {why}",
            container.name
        );
    }
    if args.stdin && !hello.stdin {
        bail!(
            "container {:?} of pod {key} does not take stdin (it needs `stdin: true`, and `stdinOnce` closes it after the first attach)",
            container.name
        );
    }
    // kubectl's rules: -t on a container without a terminal is dropped with
    // its words; a container with one gets a terminal whatever -t says.
    if args.tty && !hello.tty {
        eprintln!(
            "error: Unable to use a TTY - container {} did not allocate one",
            container.name
        );
    }
    let tty = hello.tty;
    let raw = (tty && args.stdin)
        .then(|| RawTerminal::new(io::stdin()))
        .flatten();
    if raw.is_some() {
        eprintln!("If you don't see a command prompt, try pressing enter.");
    }
    let done = Arc::new(AtomicBool::new(false));
    if args.stdin {
        let mut to = stream.try_clone().context("attach")?;
        let done = Arc::clone(&done);
        std::thread::spawn(move || send_input(&mut to, tty, &done));
    }
    // The size follows this terminal only when it is the container's.
    if raw.is_some()
        && let Ok(mut to) = stream.try_clone()
    {
        std::thread::spawn(move || follow_size(&mut to));
    }
    let (mut out, mut err) = (io::stdout(), io::stderr());
    loop {
        let frame = match crate::attach::read_output(&mut stream) {
            Ok(Some(frame)) => frame,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The end of the run, or shut down by the input thread: detached.
            Ok(None) | Err(_) => break,
        };
        let to: &mut dyn Write = match frame.0 {
            crate::logs::Stream::Stdout => &mut out,
            crate::logs::Stream::Stderr => &mut err,
        };
        if to.write_all(&frame.1).and_then(|()| to.flush()).is_err() {
            break;
        }
        if done.load(Ordering::SeqCst) {
            break;
        }
    }
    let was_raw = raw.is_some();
    drop(raw);
    if done.load(Ordering::SeqCst) {
        eprintln!("\r\nread escape sequence");
    } else if was_raw && state.restart_policy == crate::model::RestartPolicy::Always {
        // kubectl's words once the container it drove ended.
        eprintln!(
            "Session ended, resume using 'podshim attach {key} -c {} -i -t' command when the pod is running",
            container.name
        );
    }
    Ok(())
}

/// Copies this process's stdin to the container in frames (an empty one
/// first: attached with stdin, which `stdinOnce` counts); with a terminal,
/// Ctrl-P Ctrl-Q detaches: a Ctrl-P is held back until the next byte shows
/// whether it begins them. At the end of stdin the connection's write side is
/// shut (the supervisor closes a `stdinOnce` stdin then).
fn send_input(to: &mut std::os::unix::net::UnixStream, tty: bool, done: &AtomicBool) {
    if write_frame(to, &Frame::Input(Vec::new())).is_err() {
        return;
    }
    let mut stdin = io::stdin();
    let mut buf = [0u8; 4096];
    let mut held = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut data = Vec::with_capacity(n + 1);
        if held {
            data.push(DETACH[0]);
            held = false;
        }
        data.extend_from_slice(&buf[..n]);
        if tty {
            if let Some(i) = data.windows(2).position(|w| w == DETACH) {
                // What came before the keys still goes.
                let _ = write_frame(to, &Frame::Input(data[..i].to_vec()));
                done.store(true, Ordering::SeqCst);
                let _ = to.shutdown(std::net::Shutdown::Both);
                return;
            }
            if data.last() == Some(&DETACH[0]) {
                data.pop();
                held = true;
            }
        }
        if !data.is_empty() && write_frame(to, &Frame::Input(data)).is_err() {
            return;
        }
    }
    if held {
        let _ = write_frame(to, &Frame::Input(vec![DETACH[0]]));
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

/// The terminal's settings before raw mode, for a signal handler to put back.
static SAVED: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();

/// Puts the terminal back, then dies of the signal as it would have.
extern "C" fn restore_and_die(signal: libc::c_int) {
    // SAFETY: tcsetattr, signal and raise are async-signal-safe (signal-safety(7));
    // SAVED is set before the handler is installed.
    unsafe {
        if let Some(t) = SAVED.get() {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
        }
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

impl RawTerminal {
    fn new(stdin: io::Stdin) -> Option<RawTerminal> {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let _ = SAVED.set(saved.clone().into());
        // A terminal left raw by a killed attach is unusable: put it back
        // whatever ends this process.
        let action = SigAction::new(
            SigHandler::Handler(restore_and_die),
            SaFlags::empty(),
            SigSet::empty(),
        );
        for signal in [
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGINT,
            Signal::SIGQUIT,
        ] {
            // SAFETY: the handler makes only async-signal-safe calls.
            let _ = unsafe { sigaction(signal, &action) };
        }
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
