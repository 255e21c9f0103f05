//! The supervisor's report to `up`: one JSON line on the pipe `up` gave it as
//! stdout, then the pipe is closed. No report before the pipe closes means the
//! supervisor died; `up` then says so with the end of its log.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};

use serde::{Deserialize, Serialize};

/// The largest report read (a failure message carries a few log lines).
const MAX_REPORT: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "report",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Report {
    /// The app containers run.
    Started,
    /// The pod did not start: why (the container, its exit code or the runtime's
    /// message, its last log lines). What it made is already undone, unless `--keep`.
    Failed { message: String },
}

impl Report {
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a report serializes") + "\n"
    }

    /// What `up` read from the pipe until it closed: a report, or `None`.
    pub fn parse(text: &str) -> Option<Report> {
        serde_json::from_str(text.lines().next()?).ok()
    }

    /// Reads the pipe to its end, bounded.
    pub fn read_from(pipe: impl Read) -> Option<Report> {
        let mut text = String::new();
        pipe.take(MAX_REPORT).read_to_string(&mut text).ok()?;
        Report::parse(&text)
    }
}

/// The supervisor's end of the pipe: taken off fd 1 at start (fd 1 becomes
/// /dev/null), so that neither the runtime nor a container inherits it.
pub struct StatusPipe(Option<std::fs::File>);

impl StatusPipe {
    pub fn take_stdout() -> StatusPipe {
        // CLOEXEC: runc and the containers must not inherit the pipe, or `up` would
        // wait for them to exit before it sees the end of the report.
        // SAFETY: fcntl on our own fd 1; the result is checked before it is owned.
        let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            return StatusPipe(None);
        }
        // SAFETY: `fd` is a fresh descriptor we own; fd 1 is then replaced by
        // /dev/null so that nothing else writes to the pipe or keeps it open.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            // SAFETY: dup2 onto our own stdout.
            unsafe { libc::dup2(null.as_raw_fd(), 1) };
        }
        StatusPipe(Some(file))
    }

    /// Sends `report` once and closes the pipe; later reports are dropped.
    pub fn send(&mut self, report: &Report) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(report.to_line().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_as_one_json_line() {
        for r in [
            Report::Started,
            Report::Failed {
                message: "init container \"x\" exited with code 1; its last log lines:\nboom"
                    .into(),
            },
        ] {
            let line = r.to_line();
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert_eq!(Report::parse(&line), Some(r));
        }
        assert_eq!(Report::Started.to_line(), "{\"report\":\"started\"}\n");
        // A supervisor that died printed nothing, or something else.
        assert_eq!(Report::parse(""), None);
        assert_eq!(Report::parse("thread 'main' panicked"), None);
    }
}
