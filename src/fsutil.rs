//! File helpers for podshim's own files and for reading what it did not write:
//! bounded reads of regular files only (a symlink to /dev/zero or a FIFO must not
//! hang or exhaust memory), atomic writes with an exact mode.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// Larger than the bound.
    TooLarge,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => e.fmt(f),
            ReadError::TooLarge => f.write_str("too large"),
        }
    }
}

/// Reads the whole of `file` if it is a regular file of at most `max` bytes.
pub fn read_bounded(file: fs::File, max: u64) -> Result<Vec<u8>, ReadError> {
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::Io(not_regular()));
    }
    // The file may grow while it is read: the bound holds whatever stat said.
    let mut out = Vec::with_capacity(meta.len().min(max) as usize);
    file.take(max + 1)
        .read_to_end(&mut out)
        .map_err(ReadError::Io)?;
    if out.len() as u64 > max {
        return Err(ReadError::TooLarge);
    }
    Ok(out)
}

/// Opens `path` for reading only if it is a regular file: without following a
/// symlink at its last component (ELOOP), without blocking (a FIFO must not hang
/// podshim), never a device (InvalidInput "not a regular file"). For readers that
/// stream; [`read_regular`] reads it whole.
pub fn open_regular(path: &Path) -> io::Result<fs::File> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

/// [`open_regular`], then [`read_bounded`].
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    read_bounded(open_regular(path).map_err(ReadError::Io)?, max)
}

/// Creates `path` (and missing parents) and gives it exactly `mode`, whatever the
/// umask.
pub fn mkdir_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Writes `content` to `path` through a temporary file in the same directory, with
/// exactly `mode`, renamed into place: readers never see a partial file.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // A name per write: two threads or processes never share a temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(content)?;
        // SAFETY: fchmod on an fd we own.
        if unsafe { libc::fchmod(f.as_raw_fd(), mode) } != 0 {
            return Err(io::Error::last_os_error());
        }
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive flock(2) on `path` (created 0600, never through a link),
/// held until the guard drops. `wait` false: None when another holds it.
pub fn lock_file(path: &Path, wait: bool) -> io::Result<Option<nix::fcntl::Flock<fs::File>>> {
    let arg = match wait {
        true => nix::fcntl::FlockArg::LockExclusive,
        false => nix::fcntl::FlockArg::LockExclusiveNonblock,
    };
    lock_file_as(path, arg)
}

/// As [`lock_file`], shared and waiting: held by any number of readers, and
/// keeping out one that takes it exclusive.
pub fn lock_file_shared(path: &Path) -> io::Result<nix::fcntl::Flock<fs::File>> {
    lock_file_as(path, nix::fcntl::FlockArg::LockShared)?
        .ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))
}

/// A lock file opened (made 0600 if missing), never through a link.
pub fn open_lock_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn lock_file_as(
    path: &Path,
    arg: nix::fcntl::FlockArg,
) -> io::Result<Option<nix::fcntl::Flock<fs::File>>> {
    let file = open_lock_file(path)?;
    match nix::fcntl::Flock::lock(file, arg) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn bounded_reads_refuse_symlinks_devices_fifos_and_big_files() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "hello").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"hello");
        assert!(matches!(read_regular(&file, 4), Err(ReadError::TooLarge)));
        let link = tmp.path().join("zero");
        symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_regular(&link, 1 << 20),
            Err(ReadError::Io(_))
        ));
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Returns at once: the open does not wait for a writer.
        assert!(matches!(
            read_regular(&fifo, 1 << 20),
            Err(ReadError::Io(_))
        ));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 1 << 20),
            Err(ReadError::Io(_))
        ));
    }

    #[test]
    fn atomic_writes_have_the_exact_mode_and_leave_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x");
        write_atomic(&path, b"1", 0o640).unwrap();
        write_atomic(&path, b"2", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"2");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        let dir = tmp.path().join("a/b");
        mkdir_mode(&dir, 0o777).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o777
        );
    }
}
