//! Container logs in the CRI format the kubelet writes
//! (`<RFC3339Nano> <stdout|stderr> <P|F> <msg>`).
//!
//! One file per container restart, `<dir>/<restart>.log`, with `dir` =
//! `/var/log/podshim/pods/<ns>_<pod>_<uid>/<container>/` (see `ARCHITECTURE.md`), rotated
//! to `<restart>.log.<YYYYmmdd-HHMMSS>` like the kubelet's container log manager.
//! [`LogWriter`] + [`copy_stream`] write it (what containerd does for the kubelet);
//! [`read_log`] reads it back for `podshim logs` (what the kubelet does for
//! `kubectl logs`).

mod reader;
mod time;
mod writer;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use reader::{CriLine, ReadOptions, parse_line, read_log};
pub use time::{
    format_atomic_writer, format_rfc3339_nano, format_rfc3339_nano_fixed, parse_rfc3339,
};
pub use writer::{LogWriter, RotateLimits, StreamPump, copy_stream};

/// The longest message of one CRI line: containerd's default
/// `max_container_log_line_size` (16 KiB). Longer lines are cut into `P` chunks.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Which output stream of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The CRI log tag (cri-api `LogTag`): `P` for a partial line (cut at
/// [`MAX_LINE_BYTES`], or the stream ended without a newline), `F` for the last
/// (or only) piece of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    Partial,
    Full,
}

impl Tag {
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Partial => "P",
            Tag::Full => "F",
        }
    }
}

/// The live log file of a container restart: `<dir>/<restart>.log`.
pub fn log_file(dir: &Path, restart: u32) -> PathBuf {
    dir.join(format!("{restart}.log"))
}

/// The highest restart count `n` with a `<dir>/<n>.log` present, if any
/// (`--previous` reads `n - 1`).
pub fn latest_restart(dir: &Path) -> Option<u32> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_suffix(".log")?;
            // Only plain decimal numbers: "+1.log" or "01.log" are not ours.
            if n.is_empty()
                || !n.bytes().all(|b| b.is_ascii_digit())
                || (n.len() > 1 && n.starts_with('0'))
            {
                return None;
            }
            n.parse::<u32>().ok()
        })
        .max()
}

/// The rotated files of the live log `path`, oldest first: `<path>.*`, minus
/// temporary files (`.tmp`) and files that also exist compressed (`X` when
/// `X.gz` exists), as the kubelet's `GetAllLogs` (container_log_manager.go).
/// The timestamp suffix makes name order the age order.
pub fn rotated_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(with_path(e, "list log directory", dir)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| with_path(e, "list log directory", dir))?;
        if let Ok(n) = entry.file_name().into_string() {
            if n.len() > prefix.len() && n.starts_with(&prefix) && !n.ends_with(".tmp") {
                names.push(n);
            }
        }
    }
    let gz: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".gz"))
        .map(str::to_owned)
        .collect();
    names.retain(|n| !gz.contains(n));
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// Rule 4 of ARCHITECTURE.md: errors name the file involved.
pub(crate) fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_is_restart_dot_log() {
        assert_eq!(log_file(Path::new("/l/c"), 3), PathBuf::from("/l/c/3.log"));
    }

    #[test]
    fn latest_restart_picks_highest_plain_number() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(latest_restart(dir.path()), None);
        for f in [
            "0.log",
            "2.log",
            "10.log",
            "11.log.20261126-210452",
            "x.log",
            "012.log",
            "99.log.gz",
        ] {
            fs::write(dir.path().join(f), "").unwrap();
        }
        assert_eq!(latest_restart(dir.path()), Some(10));
        assert_eq!(latest_restart(&dir.path().join("missing")), None);
    }

    #[test]
    fn rotated_files_sorted_without_tmp_or_superseded() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "0.log",
            "0.log.20261126-210455",
            "0.log.20261126-210452.gz",
            "0.log.20261126-210452",
            "0.log.20261126-210453.tmp",
            "0.log.20261126-210454",
            "1.log.20261126-210451",
            "0.logx",
        ] {
            fs::write(dir.path().join(f), "").unwrap();
        }
        let got: Vec<String> = rotated_files(&dir.path().join("0.log"))
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            vec![
                "0.log.20261126-210452.gz",
                "0.log.20261126-210454",
                "0.log.20261126-210455"
            ]
        );
    }
}
