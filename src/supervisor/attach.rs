//! The supervisor's side of `podshim attach` (the kubelet's attach through the
//! CRI's streaming server): one [`Hub`] per container. Its listener thread
//! takes clients at `<pod>/attach/<name>`; what the container prints reaches
//! every client, tagged with its stream (the loop's log pumps pass it on);
//! what a client sends goes to the container's stdin: its terminal's master
//! for `tty: true`, else the write end of its stdin pipe. With `stdinOnce`,
//! stdin closes when the first client that attached with stdin leaves, until
//! the next run.
//!
//! The loop must never wait on a client or on a container that does not read
//! its stdin: output is sent without blocking (a client that cannot take it is
//! let go), and input is written by the client's own thread, outside the lock,
//! to a non-blocking descriptor it waits on.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use crate::attach::{Frame, Hello};
use crate::logs::Stream;

/// The most clients one container takes at once.
pub const MAX_CLIENTS: usize = 16;

pub struct Hub {
    tty: bool,
    stdin: bool,
    stdin_once: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Where input goes in this run: the terminal's master (a duplicate of
    /// the loop's) or the stdin pipe's write end, both non-blocking; none
    /// between runs, or once `stdinOnce` closed it.
    input: Option<File>,
    /// Which run `input` is of: an error writing to an earlier run's stdin
    /// must not close a later one's.
    run: u64,
    clients: Vec<Client>,
    next: u64,
}

/// An attached client: its queue of output, which a thread of its own writes
/// out (a burst waits there; a client that lets [`QUEUE`] frames pile up is
/// let go), and its connection.
struct Client {
    id: u64,
    queue: mpsc::SyncSender<Vec<u8>>,
    stream: UnixStream,
}

/// How many output frames (a pipe read each, at most 16 KiB) wait for a slow
/// client.
const QUEUE: usize = 256;

impl Hub {
    pub fn new(tty: bool, stdin: bool, stdin_once: bool) -> Arc<Hub> {
        Arc::new(Hub {
            tty,
            stdin,
            stdin_once,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A client thread that panicked leaves the state as it was: usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A run began: its stdin (or terminal), made non-blocking.
    pub fn set_input(&self, input: Option<File>) {
        if let Some(f) = &input {
            let _ = crate::supervisor::driver::set_nonblocking(f.as_fd());
        }
        let mut inner = self.lock();
        inner.input = input;
        inner.run += 1;
    }

    /// The run ended (its last output passed on): nothing takes input until
    /// the next one, and the attached clients are let go, as `kubectl attach`
    /// ends with the container.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.input = None;
        // Their writers send what is queued, then end the connection.
        inner.clients.clear();
    }

    /// Passes output on to every client's queue; one whose queue is full (it
    /// does not read) is let go rather than waited for.
    pub fn broadcast(&self, stream: Stream, data: &[u8]) {
        let mut inner = self.lock();
        if inner.clients.is_empty() {
            return;
        }
        let mut framed = Vec::with_capacity(data.len() + 5);
        crate::attach::frame_output(&mut framed, stream, data);
        inner
            .clients
            .retain(|c| match c.queue.try_send(framed.clone()) {
                Ok(()) => true,
                Err(_) => {
                    let _ = c.stream.shutdown(std::net::Shutdown::Both);
                    false
                }
            });
    }

    /// Takes clients at `listener`, each on a thread of its own, until the
    /// process ends.
    pub fn serve(self: &Arc<Self>, listener: UnixListener) -> io::Result<()> {
        let hub = Arc::clone(self);
        std::thread::Builder::new()
            .name("attach".into())
            .spawn(move || {
                loop {
                    let stream = match listener.accept() {
                        Ok((s, _)) => s,
                        // Out of descriptors, say: not a busy loop.
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                    };
                    let hub = Arc::clone(&hub);
                    let _ = std::thread::Builder::new()
                        .name("attach-client".into())
                        .spawn(move || hub.session(stream));
                }
            })
            .map(drop)
    }

    fn session(&self, mut stream: UnixStream) {
        let registered = {
            let mut inner = self.lock();
            let mut hello = Hello {
                tty: self.tty,
                stdin: self.stdin && inner.input.is_some(),
                refused: None,
            };
            if inner.clients.len() >= MAX_CLIENTS {
                hello.refused = Some(format!("{MAX_CLIENTS} clients are attached already"));
                let _ = crate::attach::write_hello(&mut stream, &hello);
                return;
            }
            if crate::attach::write_hello(&mut stream, &hello).is_err() {
                return;
            }
            let (Ok(mut out), Ok(control)) = (stream.try_clone(), stream.try_clone()) else {
                return;
            };
            let (queue, frames) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
            let writer = std::thread::Builder::new()
                .name("attach-output".into())
                .spawn(move || {
                    for frame in frames {
                        if out.write_all(&frame).is_err() {
                            break;
                        }
                    }
                    // The run ended (or the client was let go): the end.
                    let _ = out.shutdown(std::net::Shutdown::Both);
                });
            if writer.is_err() {
                return;
            }
            inner.next += 1;
            let id = inner.next;
            inner.clients.push(Client {
                id,
                queue,
                stream: control,
            });
            (id, inner.run, hello.stdin)
        };
        let (id, first_run, writable) = registered;
        // Any input frame, an empty one too: the client attached with stdin.
        let mut with_stdin = false;
        let ended = loop {
            match crate::attach::read_frame(&mut stream) {
                Ok(Some(Frame::Input(data))) if self.stdin => {
                    with_stdin = true;
                    self.write_input(&data);
                }
                Ok(Some(Frame::Resize { rows, cols })) if self.tty => {
                    if let Some(master) = &self.lock().input {
                        set_size(master, rows, cols);
                    }
                }
                Ok(Some(_)) => {}
                // The client's input ended; it may still read the output.
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        if self.stdin_once && writable && with_stdin {
            let mut inner = self.lock();
            if inner.run == first_run {
                inner.input = None;
            }
        }
        if ended {
            self.lock().clients.retain(|c| c.id != id);
        }
    }

    /// Writes `data` to the current run's stdin, waiting for it to take it
    /// (a full pipe or terminal is no reason to drop input) for as long as
    /// that run lasts.
    fn write_input(&self, data: &[u8]) {
        let (input, run) = {
            let inner = self.lock();
            let dup = inner.input.as_ref().and_then(|i| i.try_clone().ok());
            (dup, inner.run)
        };
        let Some(mut input) = input else { return };
        let mut rest = data;
        while !rest.is_empty() {
            match input.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.lock().run != run {
                        return;
                    }
                    let mut fds = [nix::poll::PollFd::new(
                        input.as_fd(),
                        nix::poll::PollFlags::POLLOUT,
                    )];
                    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(500u16));
                }
                Err(_) => {
                    let mut inner = self.lock();
                    if inner.run == run {
                        inner.input = None;
                    }
                    return;
                }
            }
        }
    }
}

/// TIOCSWINSZ on the terminal's master: the container sees the client's size.
fn set_size(master: &File, rows: u16, cols: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    unsafe {
        libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Reads from `r` on a thread, failing the test if nothing comes in time.
    fn read_within(mut r: File, n: usize) -> Vec<u8> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; n];
            let got = r.read_exact(&mut buf).map(|()| buf);
            let _ = tx.send((got, r));
        });
        let (got, _) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the read came in time");
        got.unwrap()
    }

    #[test]
    fn clients_get_tagged_output_and_the_first_stdin_once_session_closes_stdin() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("attach");
        let hub = Hub::new(false, true, true);
        let (r, w) = nix::unistd::pipe().unwrap();
        hub.set_input(Some(File::from(w)));
        hub.serve(crate::attach::bind(&dir, "c").unwrap()).unwrap();
        let mut a = crate::attach::connect(&dir, "c").unwrap();
        let hello = crate::attach::read_hello(&mut a).unwrap();
        assert_eq!((hello.tty, hello.stdin), (false, true));
        crate::attach::write_frame(&mut a, &Frame::Input(b"abc\n".to_vec())).unwrap();
        let r = File::from(r);
        assert_eq!(read_within(r.try_clone().unwrap(), 4), b"abc\n");
        // Output reaches the client with its stream (once registered).
        a.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut seen = None;
        for _ in 0..100 {
            hub.broadcast(Stream::Stderr, b"out");
            if let Ok(Some(o)) = crate::attach::read_output(&mut a) {
                seen = Some(o);
                break;
            }
        }
        assert_eq!(seen, Some((Stream::Stderr, b"out".to_vec())));
        // The session ends: stdin closes, and the container reads its end.
        drop(a);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut rest = Vec::new();
            let mut r = r;
            let _ = tx.send(r.read_to_end(&mut rest).map(|_| rest));
        });
        let rest = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("stdin closed");
        assert!(rest.unwrap().is_empty());
        let mut b = crate::attach::connect(&dir, "c").unwrap();
        let hello = crate::attach::read_hello(&mut b).unwrap();
        assert_eq!((hello.tty, hello.stdin), (false, false));
    }

    /// A container that never reads its stdin blocks only the session that
    /// writes to it: output still goes out, and the run's end frees the writer.
    #[test]
    fn a_stdin_nobody_reads_never_blocks_the_output() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("attach");
        let hub = Hub::new(false, true, false);
        let (_r, w) = nix::unistd::pipe().unwrap();
        hub.set_input(Some(File::from(w)));
        hub.serve(crate::attach::bind(&dir, "c").unwrap()).unwrap();
        let mut a = crate::attach::connect(&dir, "c").unwrap();
        crate::attach::read_hello(&mut a).unwrap();
        // More than a pipe holds.
        let big = vec![b'x'; 1 << 20];
        let mut writer = a.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = crate::attach::write_frame(&mut writer, &Frame::Input(big));
        });
        std::thread::sleep(Duration::from_millis(300));
        let (tx, rx) = std::sync::mpsc::channel();
        let h = Arc::clone(&hub);
        std::thread::spawn(move || {
            h.broadcast(Stream::Stdout, b"still here");
            h.clear();
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("broadcast and clear did not wait on the blocked stdin");
    }
}
