//! Writing a container's stdout/stderr as CRI log lines, with inline rotation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::time::{format_rfc3339_nano, format_rotation_suffix};
use super::{MAX_LINE_BYTES, Stream, Tag, log_file, rotated_files, with_path};

/// When to rotate a container's log, like the kubelet's `containerLogMaxSize` and
/// `containerLogMaxFiles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotateLimits {
    /// A line that would make the live file larger than this starts a new file.
    /// `0` disables rotation.
    pub max_bytes: u64,
    /// Files kept per container log, the live one included (the kubelet's
    /// `MaxFiles`); at least 1.
    pub max_files: u32,
}

impl Default for RotateLimits {
    /// The kubelet's defaults: `containerLogMaxSize: 10Mi`, `containerLogMaxFiles: 5`.
    fn default() -> Self {
        RotateLimits {
            max_bytes: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

/// One container's log file `<dir>/<restart>.log`. Thread-safe: stdout and
/// stderr are pumped into it from two threads, and every line is one write
/// under a mutex, so lines never interleave.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    limits: RotateLimits,
    inner: Mutex<Live>,
}

#[derive(Debug)]
struct Live {
    file: File,
    size: u64,
}

/// Container output may carry secrets: not world-readable.
const LOG_MODE: u32 = 0o640;

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(path)
        .map_err(|e| with_path(e, "open log file", path))
}

impl LogWriter {
    /// Opens (appending to) `<dir>/<restart>.log`, creating `dir` if needed.
    pub fn open(dir: &Path, restart: u32, limits: RotateLimits) -> io::Result<Arc<LogWriter>> {
        if limits.max_files == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "log rotation: max_files must be at least 1",
            ));
        }
        fs::create_dir_all(dir).map_err(|e| with_path(e, "create log directory", dir))?;
        let path = log_file(dir, restart);
        let file = open_append(&path)?;
        let size = file
            .metadata()
            .map_err(|e| with_path(e, "stat log file", &path))?
            .len();
        Ok(Arc::new(LogWriter {
            path,
            limits,
            inner: Mutex::new(Live { file, size }),
        }))
    }

    /// The live log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one CRI line `<ts> <stream> <tag> <msg>\n`. `msg` must not contain
    /// a newline (the [`copy_stream`] splitter guarantees it).
    pub fn write_line(
        &self,
        stream: Stream,
        tag: Tag,
        msg: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        let ts = format_rfc3339_nano(now);
        let mut line = Vec::with_capacity(ts.len() + msg.len() + 12);
        line.extend_from_slice(ts.as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.as_str().as_bytes());
        line.push(b' ');
        line.extend_from_slice(tag.as_str().as_bytes());
        line.push(b' ');
        line.extend_from_slice(msg);
        line.push(b'\n');

        // A poisoned lock only means another writer panicked mid-write; the file
        // handle is still fine, and losing the container's logs would be worse.
        let mut live = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let max = self.limits.max_bytes;
        if max > 0 && live.size > 0 && live.size + line.len() as u64 > max {
            if let Err(e) = self.rotate(&mut live, now) {
                // Keep writing to the file we have rather than drop the line.
                tracing::warn!(path = %self.path.display(), error = %e, "log rotation failed");
            }
        }
        let res = live.file.write_all(&line);
        live.size += line.len() as u64;
        res.map_err(|e| with_path(e, "write log file", &self.path))
    }

    /// The kubelet's rotation (pkg/kubelet/logs/container_log_manager.go
    /// `rotateLog`), done inline because podshim writes the file itself: drop the
    /// oldest rotated files so that at most `max_files - 1` remain after this one,
    /// rename the live file to `<restart>.log.<YYYYmmdd-HHMMSS>`, open a fresh one.
    /// The kubelet also gzips older rotated files; podshim does not (the reader
    /// reads `.gz` anyway).
    fn rotate(&self, live: &mut Live, now: SystemTime) -> io::Result<()> {
        let rotated = rotated_files(&self.path)?;
        let keep = self.limits.max_files.saturating_sub(2) as usize;
        for old in &rotated[..rotated.len().saturating_sub(keep)] {
            match fs::remove_file(old) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(with_path(e, "remove old rotated log", old));
                }
                _ => {}
            }
        }
        if self.limits.max_files <= 1 {
            // No rotated file may be kept: start over.
            fs::remove_file(&self.path).map_err(|e| with_path(e, "remove log file", &self.path))?;
        } else {
            let target = self.rotation_target(now);
            fs::rename(&self.path, &target)
                .map_err(|e| with_path(e, "rotate log file", &self.path))?;
        }
        live.file = open_append(&self.path)?;
        live.size = 0;
        Ok(())
    }

    /// `<restart>.log.<stamp>`; the kubelet rotates at most once per monitoring
    /// period, podshim may rotate twice in a second, so a clash gets `-001`, `-002`...
    /// which still sorts after the bare name and before the next second.
    fn rotation_target(&self, now: SystemTime) -> PathBuf {
        let base = format!("{}.{}", self.path.display(), format_rotation_suffix(now));
        let mut target = PathBuf::from(&base);
        let mut n = 1;
        while target.exists() && n < 1000 {
            target = PathBuf::from(format!("{base}-{n:03}"));
            n += 1;
        }
        target
    }
}

/// Splits a byte stream into CRI messages exactly as containerd's
/// `redirectLogs` (internal/cri/io/logger.go) does:
/// - a line ends at `\n`; a `\r` right before it is dropped too (its `readLine`
///   drops `\r\n`), any other `\r` stays in the message;
/// - a line longer than `max` is cut into `P` chunks of exactly `max` bytes, the
///   last piece is `F` (a line of exactly `max` bytes is one `F`);
/// - at end of stream, an unterminated remainder is written as `P` ("readLine only
///   returns error when the message doesn't end with a newline, in that case it
///   should be treated as a partial line"); nothing is written if there is none.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter {
            pending: Vec::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn feed(&mut self, mut data: &[u8], emit: &mut dyn FnMut(Tag, &[u8])) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&data[..i]);
            data = &data[i + 1..];
            let mut line = self.pending.as_slice();
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            while line.len() > self.max {
                emit(Tag::Partial, &line[..self.max]);
                line = &line[self.max..];
            }
            emit(Tag::Full, line);
            self.pending.clear();
        }
        self.pending.extend_from_slice(data);
        // containerd only cuts once it has seen more than `max` bytes of the line;
        // a trailing `\r` does not count yet, since a `\n` may follow and drop it
        // (its readLine unreads a `\r` at the end of a full buffer).
        let counted = |p: &[u8]| p.len() - usize::from(p.last() == Some(&b'\r'));
        let mut start = 0;
        while counted(&self.pending[start..]) > self.max {
            emit(Tag::Partial, &self.pending[start..start + self.max]);
            start += self.max;
        }
        self.pending.drain(..start);
    }

    pub(crate) fn finish(&mut self, emit: &mut dyn FnMut(Tag, &[u8])) {
        for chunk in self.pending.chunks(self.max) {
            emit(Tag::Partial, chunk);
        }
        self.pending.clear();
    }
}

/// One stream of a container (its stdout or stderr pipe) turned into CRI lines of
/// `writer`, fed as data arrives (see [`LineSplitter`] for the exact rules, which
/// follow containerd). Each line is stamped when it is written.
///
/// Write errors do not stop the pump: like containerd it keeps draining the pipe
/// so the container never blocks on a full pipe, and reports the first write error
/// at the end.
#[derive(Debug)]
pub struct StreamPump {
    splitter: LineSplitter,
    stream: Stream,
    first_err: Option<io::Error>,
}

impl StreamPump {
    pub fn new(stream: Stream) -> StreamPump {
        StreamPump {
            splitter: LineSplitter::new(MAX_LINE_BYTES),
            stream,
            first_err: None,
        }
    }

    fn emitter<'a>(
        stream: Stream,
        first_err: &'a mut Option<io::Error>,
        writer: &'a LogWriter,
        clock: &'a dyn Fn() -> SystemTime,
    ) -> impl FnMut(Tag, &[u8]) + 'a {
        move |tag: Tag, msg: &[u8]| {
            if let Err(e) = writer.write_line(stream, tag, msg, clock())
                && first_err.is_none()
            {
                tracing::warn!(path = %writer.path().display(), stream = stream.as_str(), error = %e, "cannot write container log; still draining the stream");
                *first_err = Some(e);
            }
        }
    }

    /// Writes the complete lines of `data` (and cut pieces of overlong ones).
    pub fn feed(&mut self, data: &[u8], writer: &LogWriter, clock: &dyn Fn() -> SystemTime) {
        let mut emit = Self::emitter(self.stream, &mut self.first_err, writer, clock);
        self.splitter.feed(data, &mut emit);
    }

    /// At end of stream: writes an unterminated remainder as `P`; returns the first
    /// write error, if any.
    pub fn finish(
        mut self,
        writer: &LogWriter,
        clock: &dyn Fn() -> SystemTime,
    ) -> Option<io::Error> {
        {
            let mut emit = Self::emitter(self.stream, &mut self.first_err, writer, clock);
            self.splitter.finish(&mut emit);
        }
        self.first_err
    }
}

/// Pumps one stream into `writer` until end of file ([`StreamPump`] over a
/// blocking reader). A read error flushes the buffered remainder as `P` and is
/// returned; else the first write error.
pub fn copy_stream(
    mut reader: impl Read,
    stream: Stream,
    writer: &LogWriter,
    clock: &dyn Fn() -> SystemTime,
) -> io::Result<()> {
    let mut pump = StreamPump::new(stream);
    let mut buf = vec![0u8; 8192];
    let read_err = loop {
        match reader.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => pump.feed(&buf[..n], writer, clock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    let write_err = pump.finish(writer, clock);
    match (read_err, write_err) {
        (Some(e), _) => Err(io::Error::new(
            e.kind(),
            format!("read container {}: {e}", stream.as_str()),
        )),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn split_all(input: &[&[u8]], max: usize) -> Vec<(Tag, Vec<u8>)> {
        let mut out = Vec::new();
        let mut s = LineSplitter::new(max);
        let mut emit = |t: Tag, m: &[u8]| out.push((t, m.to_vec()));
        for chunk in input {
            s.feed(chunk, &mut emit);
        }
        s.finish(&mut emit);
        out
    }

    fn full(m: &str) -> (Tag, Vec<u8>) {
        (Tag::Full, m.as_bytes().to_vec())
    }

    fn partial(m: &str) -> (Tag, Vec<u8>) {
        (Tag::Partial, m.as_bytes().to_vec())
    }

    #[test]
    fn splitter_full_lines_and_empty_line() {
        assert_eq!(
            split_all(&[b"hello\n\nworld\n"], 16),
            vec![full("hello"), full(""), full("world")]
        );
    }

    #[test]
    fn splitter_joins_reads_split_mid_line() {
        assert_eq!(
            split_all(&[b"hel", b"lo\nwor", b"ld\n"], 16),
            vec![full("hello"), full("world")]
        );
    }

    #[test]
    fn splitter_drops_crlf_but_keeps_other_cr_like_containerd() {
        assert_eq!(
            split_all(&[b"a\r\nb\rc\n", b"d\r", b"\n"], 16),
            vec![full("a"), full("b\rc"), full("d")]
        );
    }

    #[test]
    fn splitter_eof_without_newline_is_partial() {
        assert_eq!(
            split_all(&[b"one\ntwo"], 16),
            vec![full("one"), partial("two")]
        );
        assert_eq!(split_all(&[b"cr\r"], 16), vec![partial("cr\r")]);
        assert_eq!(split_all(&[b""], 16), vec![]);
    }

    #[test]
    fn splitter_cuts_long_lines_at_exactly_max() {
        assert_eq!(
            split_all(&[b"abcdefghij\n"], 4),
            vec![partial("abcd"), partial("efgh"), full("ij")]
        );
        // Exactly max: one F; exactly 2*max: P then F.
        assert_eq!(split_all(&[b"abcd\n"], 4), vec![full("abcd")]);
        assert_eq!(
            split_all(&[b"abcdefgh\n"], 4),
            vec![partial("abcd"), full("efgh")]
        );
        // Fed byte by byte: same result.
        let bytes: Vec<&[u8]> = b"abcdefghij\n".chunks(1).collect();
        assert_eq!(
            split_all(&bytes, 4),
            vec![partial("abcd"), partial("efgh"), full("ij")]
        );
    }

    #[test]
    fn splitter_crlf_straddling_the_cut_is_not_counted() {
        // "abcd\r" then "\n": containerd unreads the '\r', so this is one F "abcd".
        assert_eq!(split_all(&[b"abcd\r", b"\n"], 4), vec![full("abcd")]);
        // A long unterminated line at EOF: all P.
        assert_eq!(
            split_all(&[b"abcdefghij"], 4),
            vec![partial("abcd"), partial("efgh"), partial("ij")]
        );
    }

    fn clock() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_795_727_092, 123_456_789)
    }

    #[test]
    fn writes_a_full_line_in_cri_format() {
        let dir = tempfile::tempdir().unwrap();
        let w = LogWriter::open(dir.path(), 0, RotateLimits::default()).unwrap();
        copy_stream(&b"hello world\n"[..], Stream::Stdout, &w, &clock).unwrap();
        copy_stream(&b"oops\n"[..], Stream::Stderr, &w, &clock).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("0.log")).unwrap(),
            "2026-11-26T21:04:52.123456789Z stdout F hello world\n\
             2026-11-26T21:04:52.123456789Z stderr F oops\n"
        );
    }

    #[test]
    fn a_40k_line_becomes_p_p_f_of_16k_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let w = LogWriter::open(dir.path(), 0, RotateLimits::default()).unwrap();
        let mut input = vec![b'x'; 40 * 1024];
        input.push(b'\n');
        copy_stream(&input[..], Stream::Stdout, &w, &clock).unwrap();
        let text = fs::read_to_string(w.path()).unwrap();
        let lines: Vec<(&str, usize)> = text
            .lines()
            .map(|l| {
                let mut f = l.splitn(4, ' ');
                let (_, _, tag, msg) = (f.next(), f.next(), f.next().unwrap(), f.next().unwrap());
                (tag, msg.len())
            })
            .collect();
        assert_eq!(lines, vec![("P", 16384), ("P", 16384), ("F", 8192)]);
    }

    #[test]
    fn eof_without_newline_writes_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let w = LogWriter::open(dir.path(), 3, RotateLimits::default()).unwrap();
        copy_stream(&b"done\nno newline"[..], Stream::Stdout, &w, &clock).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("3.log")).unwrap(),
            "2026-11-26T21:04:52.123456789Z stdout F done\n\
             2026-11-26T21:04:52.123456789Z stdout P no newline\n"
        );
    }

    #[test]
    fn stdout_and_stderr_threads_never_interleave_mid_line() {
        let dir = tempfile::tempdir().unwrap();
        let w = LogWriter::open(dir.path(), 0, RotateLimits::default()).unwrap();
        let make = |c: u8| {
            let mut v = Vec::new();
            for _ in 0..500 {
                v.extend(std::iter::repeat_n(c, 3000));
                v.push(b'\n');
            }
            v
        };
        let (out, err) = (make(b'o'), make(b'e'));
        std::thread::scope(|s| {
            s.spawn(|| copy_stream(&out[..], Stream::Stdout, &w, &SystemTime::now).unwrap());
            s.spawn(|| copy_stream(&err[..], Stream::Stderr, &w, &SystemTime::now).unwrap());
        });
        let text = fs::read_to_string(w.path()).unwrap();
        let (mut o, mut e) = (0, 0);
        for line in text.lines() {
            let f: Vec<&str> = line.splitn(4, ' ').collect();
            let c = if f[1] == "stdout" { 'o' } else { 'e' };
            assert_eq!(f[2], "F");
            assert!(
                f[3].len() == 3000 && f[3].chars().all(|x| x == c),
                "{line:.80}"
            );
            if c == 'o' { o += 1 } else { e += 1 }
        }
        assert_eq!((o, e), (500, 500));
    }

    #[test]
    fn rotation_at_max_bytes_keeps_at_most_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let limits = RotateLimits {
            max_bytes: 200,
            max_files: 3,
        };
        let w = LogWriter::open(dir.path(), 1, limits).unwrap();
        // Each line is 30 (ts) + 1 + 6 + 3 + 60 + 1 = 101 bytes: one per file.
        for i in 0..7u64 {
            let now = UNIX_EPOCH + Duration::new(1_795_727_092 + i, 123_456_789);
            let msg = format!("{i:060}");
            w.write_line(Stream::Stdout, Tag::Full, msg.as_bytes(), now)
                .unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        // A file is stamped with the time it was rotated, as the kubelet does:
        // line 4 was rotated out when line 5 came, at T+5.
        assert_eq!(
            names,
            vec!["1.log", "1.log.20261126-210457", "1.log.20261126-210458"]
        );
        let rotated = fs::read_to_string(dir.path().join("1.log.20261126-210457")).unwrap();
        assert!(rotated.ends_with(&format!("{:060}\n", 4)), "{rotated}");
        let live = fs::read_to_string(dir.path().join("1.log")).unwrap();
        assert!(live.ends_with(&format!("{:060}\n", 6)), "{live}");
        for name in &names {
            assert!(fs::metadata(dir.path().join(name)).unwrap().len() <= 200);
        }
    }

    #[test]
    fn rotation_twice_in_one_second_does_not_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let limits = RotateLimits {
            max_bytes: 1,
            max_files: 10,
        };
        let w = LogWriter::open(dir.path(), 0, limits).unwrap();
        for m in ["a", "b", "c", "d"] {
            w.write_line(Stream::Stdout, Tag::Full, m.as_bytes(), clock())
                .unwrap();
        }
        let files = rotated_files(w.path()).unwrap();
        let contents: Vec<String> = files
            .iter()
            .chain([w.path().to_path_buf()].iter())
            .map(|p| fs::read_to_string(p).unwrap())
            .map(|s| s.rsplit(' ').next().unwrap().trim().to_string())
            .collect();
        assert_eq!(contents, vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn reopening_appends_and_counts_existing_size() {
        let dir = tempfile::tempdir().unwrap();
        let limits = RotateLimits {
            max_bytes: 100,
            max_files: 2,
        };
        let w = LogWriter::open(dir.path(), 0, limits).unwrap();
        w.write_line(Stream::Stdout, Tag::Full, b"first", clock())
            .unwrap();
        drop(w);
        let w = LogWriter::open(dir.path(), 0, limits).unwrap();
        w.write_line(Stream::Stdout, Tag::Full, &[b'y'; 60], clock())
            .unwrap();
        assert_eq!(rotated_files(w.path()).unwrap().len(), 1);
    }

    #[test]
    fn zero_max_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = LogWriter::open(
            dir.path(),
            0,
            RotateLimits {
                max_bytes: 1,
                max_files: 0,
            },
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
