//! Errors of the runtime CLI, carrying the runtime's own message (ARCHITECTURE.md
//! rule 4): runc and youki write it to their `--log` file (`--log-format json`),
//! so that is read first, then stderr, then the exit status.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;

use serde_json::Value;

/// Which runtime command failed: `runc create default_web`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The runtime's name (`runc`, `youki`), as [`super::CliRuntime::name`].
    pub program: String,
    pub verb: &'static str,
    /// The container, for every verb but `list`.
    pub id: Option<String>,
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.program, self.verb)?;
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime ran and failed; `message` is its own error text.
    #[error("{at}: {message}")]
    Failed {
        at: Invocation,
        message: String,
        status: ExitStatus,
    },
    /// The runtime could not be started (or waited for).
    #[error("{at}: cannot run {}: {source}", program.display())]
    Spawn {
        at: Invocation,
        program: PathBuf,
        source: std::io::Error,
    },
    /// The runtime succeeded but printed something that is not what the verb
    /// returns.
    #[error("{at}: cannot parse its output ({source}): {output}")]
    Parse {
        at: Invocation,
        output: String,
        source: serde_json::Error,
    },
    /// The temporary `--log` file could not be made or read.
    #[error("{at}: log file {}: {source}", path.display())]
    Log {
        at: Invocation,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// The command this error is about.
    pub fn invocation(&self) -> &Invocation {
        match self {
            RuntimeError::Failed { at, .. }
            | RuntimeError::Spawn { at, .. }
            | RuntimeError::Parse { at, .. }
            | RuntimeError::Log { at, .. } => at,
        }
    }

    /// The runtime's own message, when it ran and failed.
    pub fn runtime_message(&self) -> Option<&str> {
        match self {
            RuntimeError::Failed { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The container is unknown to the runtime: runc says `container does not
    /// exist`, youki `container <id> does not exist`. Lets delete and kill be
    /// idempotent.
    pub fn is_not_found(&self) -> bool {
        self.runtime_message().is_some_and(is_not_found_message)
    }

    /// The container exists but has no running process to signal (runc:
    /// `container not running`), e.g. a kill racing the container's exit.
    pub fn is_not_running(&self) -> bool {
        self.runtime_message()
            .is_some_and(|m| m.to_ascii_lowercase().contains("not running"))
    }

    /// The runtime read a container's state file while another runtime process
    /// was rewriting it. youki 0.7 saves `state.json` by truncating and writing in
    /// place (runc writes a temporary file and renames it), so a `state` or `list`
    /// concurrent with a `kill`, `start` or `delete` of the same container can see
    /// it empty or half-written: "failed to parse container state file".
    pub fn is_torn_state(&self) -> bool {
        self.runtime_message()
            .is_some_and(|m| m.contains("failed to parse container state"))
    }

    /// `list` met a container deleted while it listed: runc 1.1 reads its state
    /// directory, then stats each entry, and fails the whole list with "stat
    /// /run/runc/<id>: no such file or directory" for one removed in between.
    pub fn is_list_race(&self) -> bool {
        self.invocation().verb == "list"
            && self
                .runtime_message()
                .is_some_and(|m| m.contains("stat ") && m.contains("no such file or directory"))
    }
}

pub(crate) fn is_not_found_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("does not exist") || m.contains("container not found")
}

/// The last `error` or `fatal` message of a `--log-format json` log. Lines that
/// are not JSON objects, and other levels, are skipped. runc writes
/// `{"level":"error","msg":"...","time":"..."}`; youki (tracing's JSON) writes
/// `{"level":"ERROR","fields":{"message":"..."},...}`, so both shapes are read.
pub fn last_log_error(log: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(log);
    let mut last = None;
    for line in text.lines() {
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let level = obj.get("level").and_then(Value::as_str).unwrap_or_default();
        if !matches!(
            level.to_ascii_lowercase().as_str(),
            "error" | "fatal" | "panic"
        ) {
            continue;
        }
        let msg = obj
            .get("msg")
            .or_else(|| obj.get("message"))
            .or_else(|| obj.get("fields").and_then(|f| f.get("message")))
            .and_then(Value::as_str);
        if let Some(msg) = msg.map(tidy).filter(|m| !m.is_empty()) {
            last = Some(msg.to_string());
        }
    }
    last
}

/// The message for a failed run: the log's last error, else stderr (its last
/// lines, enough to hold a message), else the exit status. A redundant
/// `<program> <verb> failed: ` prefix (runc 1.1 adds one) is dropped, since the
/// error names the verb already.
/// youki's messages are anyhow reports: `error in executing command: <msg>`,
/// followed by a `Stack backtrace:` of `<unknown>` frames when RUST_BACKTRACE
/// is set. Keep the message.
fn tidy(msg: &str) -> &str {
    let msg = msg.split("\n\nStack backtrace:").next().unwrap_or(msg);
    let msg = msg.trim();
    msg.strip_prefix("error in executing command: ")
        .unwrap_or(msg)
        .trim()
}

pub(crate) fn failure_message(
    at: &Invocation,
    log: &[u8],
    stderr: &[u8],
    status: ExitStatus,
) -> String {
    let raw = last_log_error(log)
        .or_else(|| stderr_message(stderr))
        .unwrap_or_else(|| status_message(status));
    let prefix = format!("{} {} failed: ", at.program, at.verb);
    match raw.strip_prefix(&prefix) {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => raw,
    }
}

const STDERR_LINES: usize = 20;

fn stderr_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let start = lines.len().saturating_sub(STDERR_LINES);
    Some(lines[start..].join("\n"))
}

fn status_message(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code} and no error message"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("failed ({status})"),
    }
}
