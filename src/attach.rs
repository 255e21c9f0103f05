//! `podshim attach` and the supervisor that serves it: one Unix socket per
//! container under `<pod>/attach/`, owner-only, speaking a small protocol.
//!
//! The server first sends a [`Hello`] line (JSON) saying whether the
//! container has a terminal and an open stdin; then everything the container
//! prints (its terminal, or stdout and stderr), in output frames tagged with
//! the stream, as it comes. The client sends [`Frame`]s: input for the
//! container's stdin (an empty one says it attached with stdin), and its
//! terminal's size.
//!
//! Socket paths are bound and connected through `/proc/self/fd/<dir>/<name>`,
//! so that a pod directory deeper than sun_path's 108 bytes still works.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The largest input frame (a paste, a pipe's worth).
pub const MAX_FRAME: usize = 64 << 10;
/// The largest hello line.
const MAX_HELLO: u64 = 1024;

/// What the server says first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hello {
    pub tty: bool,
    /// Its stdin takes input now (`stdin: true`, and not closed by `stdinOnce`).
    pub stdin: bool,
    /// Why the session is refused (too many clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// What the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Input(Vec<u8>),
    Resize { rows: u16, cols: u16 },
}

const INPUT: u8 = 0;
const RESIZE: u8 = 1;

pub fn write_frame(w: &mut impl Write, frame: &Frame) -> io::Result<()> {
    let (kind, payload) = match frame {
        Frame::Input(data) => (INPUT, data.clone()),
        Frame::Resize { rows, cols } => {
            let mut p = rows.to_be_bytes().to_vec();
            p.extend(cols.to_be_bytes());
            (RESIZE, p)
        }
    };
    for chunk in payload
        .chunks(MAX_FRAME)
        .chain((payload.is_empty()).then_some(&[][..]))
    {
        let mut head = vec![kind];
        head.extend((chunk.len() as u32).to_be_bytes());
        w.write_all(&head)?;
        w.write_all(chunk)?;
    }
    w.flush()
}

/// The next frame, `None` at the end of the stream. A frame larger than
/// [`MAX_FRAME`] or of an unknown kind ends the session (the client is not
/// podshim's, or is broken).
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "a frame of {len} bytes (at most {MAX_FRAME})"
        )));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    match head[0] {
        INPUT => Ok(Some(Frame::Input(payload))),
        RESIZE if len == 4 => Ok(Some(Frame::Resize {
            rows: u16::from_be_bytes([payload[0], payload[1]]),
            cols: u16::from_be_bytes([payload[2], payload[3]]),
        })),
        kind => Err(io::Error::other(format!(
            "an unknown frame ({kind}, {len} bytes)"
        ))),
    }
}

/// Output, server to client: `[stream: 1 stdout, 2 stderr][len: u32][data]`
/// appended to `buf`, so that stdout and stderr stay apart (as kubectl keeps
/// them).
pub fn frame_output(buf: &mut Vec<u8>, stream: crate::logs::Stream, data: &[u8]) {
    buf.push(match stream {
        crate::logs::Stream::Stdout => 1,
        crate::logs::Stream::Stderr => 2,
    });
    buf.extend((data.len() as u32).to_be_bytes());
    buf.extend_from_slice(data);
}

/// The next output frame, `None` at the end.
pub fn read_output(r: &mut impl Read) -> io::Result<Option<(crate::logs::Stream, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let stream = match head[0] {
        1 => crate::logs::Stream::Stdout,
        2 => crate::logs::Stream::Stderr,
        s => return Err(io::Error::other(format!("an unknown stream {s}"))),
    };
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    // The supervisor sends what one read of a pipe gave: never more than this.
    if len > 1 << 20 {
        return Err(io::Error::other(format!("an output frame of {len} bytes")));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some((stream, data)))
}

pub fn write_hello(w: &mut impl Write, hello: &Hello) -> io::Result<()> {
    let mut line = serde_json::to_vec(hello).expect("a hello serializes");
    line.push(b'\n');
    w.write_all(&line)
}

/// Reads the hello line byte by byte (what follows is the container's output).
pub fn read_hello(r: &mut impl Read) -> io::Result<Hello> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if r.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the supervisor closed the connection",
            ));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() as u64 > MAX_HELLO {
            return Err(io::Error::other("the supervisor's greeting is too long"));
        }
    }
    serde_json::from_slice(&line).map_err(io::Error::other)
}

/// The directory of a pod's attach sockets.
pub fn dir(pod_dir: &Path) -> PathBuf {
    pod_dir.join("attach")
}

/// `/proc/<process>/fd/<dir>/<name>` for `dir` open as `fd` in `process`
/// (`self`, or this process's pid for another process to resolve).
fn through(process: impl std::fmt::Display, fd: &File, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{process}/fd/{}/{name}", fd.as_raw_fd()))
}

fn open_dir(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
}

/// Listens at `dir/name` (replacing a socket a previous supervisor left).
pub fn bind(dir: &Path, name: &str) -> io::Result<UnixListener> {
    bind_for_others(dir, name).map(|(_, l)| l)
}

/// Connects to `dir/name`.
pub fn connect(dir: &Path, name: &str) -> io::Result<UnixStream> {
    let d = open_dir(dir)?;
    UnixStream::connect(through("self", &d, name))
}

/// A path another process (the runtime) can connect to for `dir/name` while
/// `dir_fd` stays open: through this process's fd table.
pub fn path_for_others(dir_fd: &File, name: &str) -> PathBuf {
    through(std::process::id(), dir_fd, name)
}

/// [`bind`], and the directory it opened, for [`path_for_others`].
pub fn bind_for_others(dir: &Path, name: &str) -> io::Result<(File, UnixListener)> {
    crate::fsutil::mkdir_mode(dir, 0o700)?;
    let d = open_dir(dir)?;
    match std::fs::symlink_metadata(dir.join(name)) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            std::fs::remove_file(dir.join(name))?
        }
        _ => {}
    }
    let listener = UnixListener::bind(through("self", &d, name))?;
    Ok((d, listener))
}

/// The one descriptor the runtime sends over its `--console-socket`
/// (runtime-spec's console socket: the terminal's master, SCM_RIGHTS).
pub fn recv_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut got = None;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel just gave this process the descriptor.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    got.ok_or_else(|| io::Error::other("the runtime sent no terminal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_the_hello_go_through_and_an_oversized_frame_is_refused() {
        let mut buf = Vec::new();
        let hello = Hello {
            tty: true,
            stdin: false,
            refused: None,
        };
        write_hello(&mut buf, &hello).unwrap();
        write_frame(&mut buf, &Frame::Input(b"ls\n".to_vec())).unwrap();
        write_frame(&mut buf, &Frame::Resize { rows: 24, cols: 80 }).unwrap();
        let big = vec![7u8; MAX_FRAME + 3];
        write_frame(&mut buf, &Frame::Input(big.clone())).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_hello(&mut r).unwrap(), hello);
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some(Frame::Input(b"ls\n".to_vec()))
        );
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some(Frame::Resize { rows: 24, cols: 80 })
        );
        // A large input is sent in frames of at most MAX_FRAME.
        let mut got = Vec::new();
        while let Some(Frame::Input(d)) = read_frame(&mut r).unwrap() {
            got.extend(d);
        }
        assert_eq!(got, big);
        let mut bad = vec![INPUT];
        bad.extend(((MAX_FRAME + 1) as u32).to_be_bytes());
        assert!(read_frame(&mut &bad[..]).is_err());
        assert!(read_frame(&mut &[9u8, 0, 0, 0, 0][..]).is_err());
        // Output frames keep their stream.
        let mut out = Vec::new();
        frame_output(&mut out, crate::logs::Stream::Stderr, b"e");
        frame_output(&mut out, crate::logs::Stream::Stdout, b"o");
        let mut r = &out[..];
        assert_eq!(
            read_output(&mut r).unwrap(),
            Some((crate::logs::Stream::Stderr, b"e".to_vec()))
        );
        assert_eq!(
            read_output(&mut r).unwrap(),
            Some((crate::logs::Stream::Stdout, b"o".to_vec()))
        );
        assert_eq!(read_output(&mut r).unwrap(), None);
    }

    #[test]
    fn a_socket_deeper_than_sun_path_is_bound_and_reached() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("d".repeat(100)).join("e".repeat(100));
        let listener = bind(&deep, "c").unwrap();
        let mut client = connect(&deep, "c").unwrap();
        let (mut served, _) = listener.accept().unwrap();
        client.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        served.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
        // A socket left by a previous supervisor is replaced.
        drop(listener);
        assert!(bind(&deep, "c").is_ok());
    }
}
