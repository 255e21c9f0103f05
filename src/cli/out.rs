//! Printing to stdout that survives a closed pipe: `podshim up x | head -1` (or
//! `ps | head`) must finish its work and exit quietly, never panic as `println!`
//! does on EPIPE.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout was found closed: later output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout; a closed stdout is remembered and ignored.
pub fn write(text: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    let result = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = result
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether an error is stdout having been closed by its reader.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes on one line, as `{:#}` prints them, but without a cause
/// whose text the message before it already holds (error types that put their
/// source in their own message, as most here do, would otherwise print it twice).
pub fn render_error(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

/// `println!` through [`write`].
#[macro_export]
macro_rules! outln {
    () => { $crate::cli::out::write("\n") };
    ($($arg:tt)*) => {
        $crate::cli::out::write(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Rows as columns padded to their widest cell, two spaces apart (the first
/// row is the header).
pub fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let parts: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        write(&format!("{}\n", parts.join("  ").trim_end()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_printed_again() {
        let io = std::io::Error::other("File exists");
        #[derive(Debug, thiserror::Error)]
        #[error("/x: create directory: {err}")]
        struct Wrapped {
            #[source]
            err: std::io::Error,
        }
        let e = anyhow::Error::new(Wrapped { err: io }).context("writing the bundles");
        assert_eq!(
            render_error(&e),
            "writing the bundles: /x: create directory: File exists"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render_error(&plain), "outer: inner");
    }
}
