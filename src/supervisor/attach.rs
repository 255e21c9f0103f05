//! The supervisor's side of `podshim attach` (the kubelet's attach through the
//! CRI's streaming server): one [`Hub`] per container. Its listener thread
//! takes clients at `<pod>/attach/<name>`; what the container prints reaches
//! every client (the loop's log pumps pass it on); what a client sends goes to
//! the container's stdin: its terminal's master for `tty: true`, else the
//! write end of its stdin pipe. With `stdinOnce`, stdin closes when the first
//! client that could write to it leaves, until the next run.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::attach::{Frame, Hello};

pub struct Hub {
    tty: bool,
    stdin: bool,
    stdin_once: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Where input goes in this run: the terminal's master (a duplicate of
    /// the loop's) or the stdin pipe's write end; none between runs, or once
    /// `stdinOnce` closed it.
    input: Option<File>,
    /// Which run `input` is of: an error writing to an earlier run's stdin
    /// must not close a later one's.
    run: u64,
    clients: Vec<UnixStream>,
}

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

    /// A run began: its stdin (or terminal).
    pub fn set_input(&self, input: Option<File>) {
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
        for c in inner.clients.drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Passes output on to every client; one that cannot take it now (its
    /// socket is full: it does not read) is dropped rather than waited for.
    pub fn broadcast(&self, data: &[u8]) {
        use nix::sys::socket::{MsgFlags, send};
        let mut inner = self.lock();
        inner.clients.retain(|c| {
            let mut rest = data;
            while !rest.is_empty() {
                match send(
                    c.as_raw_fd(),
                    rest,
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                ) {
                    Ok(n) => rest = &rest[n..],
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        });
    }

    /// Takes clients at `listener`, each on a thread of its own, until the
    /// process ends.
    pub fn serve(self: &Arc<Self>, listener: UnixListener) -> io::Result<()> {
        let hub = Arc::clone(self);
        std::thread::Builder::new()
            .name("attach".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let hub = Arc::clone(&hub);
                    let _ = std::thread::Builder::new()
                        .name("attach-client".into())
                        .spawn(move || hub.session(stream));
                }
            })
            .map(drop)
    }

    fn session(&self, mut stream: UnixStream) {
        let (writable, first_run) = {
            let inner = self.lock();
            (self.stdin && inner.input.is_some(), inner.run)
        };
        let hello = Hello {
            tty: self.tty,
            stdin: writable,
        };
        if crate::attach::write_hello(&mut stream, &hello).is_err() {
            return;
        }
        let Ok(out) = stream.try_clone() else { return };
        self.lock().clients.push(out);
        let mut wrote = false;
        while let Ok(Some(frame)) = crate::attach::read_frame(&mut stream) {
            match frame {
                Frame::Input(data) if self.stdin => {
                    wrote = true;
                    // Written through a duplicate, outside the lock: a process
                    // that does not read its stdin blocks this session only,
                    // never the output (which the supervisor's loop passes on).
                    let (input, run) = {
                        let inner = self.lock();
                        let dup = inner.input.as_ref().and_then(|i| i.try_clone().ok());
                        (dup, inner.run)
                    };
                    if let Some(mut input) = input
                        && input.write_all(&data).is_err()
                    {
                        let mut inner = self.lock();
                        if inner.run == run {
                            inner.input = None;
                        }
                    }
                }
                Frame::Resize { rows, cols } if self.tty => {
                    if let Some(master) = &self.lock().input {
                        set_size(master, rows, cols);
                    }
                }
                _ => {}
            }
        }
        // The client's input ended; it still gets the output until it goes
        // or the run ends. stdinOnce: the first session that had stdin
        // closes it now.
        if self.stdin_once && writable && wrote {
            let mut inner = self.lock();
            if inner.run == first_run {
                inner.input = None;
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

    #[test]
    fn clients_get_the_output_and_the_first_stdin_once_session_closes_stdin() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("attach");
        let hub = Hub::new(false, true, true);
        let (r, w) = nix::unistd::pipe().unwrap();
        hub.set_input(Some(File::from(w)));
        hub.serve(crate::attach::bind(&dir, "c").unwrap()).unwrap();
        let mut a = crate::attach::connect(&dir, "c").unwrap();
        let hello = crate::attach::read_hello(&mut a).unwrap();
        assert_eq!(
            hello,
            Hello {
                tty: false,
                stdin: true
            }
        );
        crate::attach::write_frame(&mut a, &Frame::Input(b"abc\n".to_vec())).unwrap();
        let mut got = [0u8; 4];
        let mut r = File::from(r);
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abc\n");
        // Output reaches the client (once registered: retry until it is).
        let mut seen = Vec::new();
        a.set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        for _ in 0..100 {
            hub.broadcast(b"out");
            let mut b = [0u8; 3];
            if a.read_exact(&mut b).is_ok() {
                seen = b.to_vec();
                break;
            }
        }
        assert_eq!(seen, b"out");
        // The session ends: stdin closes, and the container reads its end.
        drop(a);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        let mut b = crate::attach::connect(&dir, "c").unwrap();
        assert_eq!(
            crate::attach::read_hello(&mut b).unwrap(),
            Hello {
                tty: false,
                stdin: false
            }
        );
    }
}
