//! Reading CRI logs back for `podshim logs`, like the kubelet's
//! pkg/kubelet/kuberuntime/logs/logs.go (`ReadLogs`, `parseCRILog`), plus what it
//! leaves out: rotated files, joining partial lines, `--tail` across files, and
//! following across a rotation.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, SystemTime};

use super::time::{format_rfc3339_nano_fixed, parse_rfc3339};
use super::{Stream, Tag, rotated_files, with_path};

/// How often `follow` looks for new data or a rotation when the file is idle.
const POLL: Duration = Duration::from_millis(150);

/// Options of `podshim logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Prefix each line with its RFC 3339 timestamp (nine fraction digits, as
    /// `kubectl logs --timestamps`).
    pub timestamps: bool,
    /// Only the last N whole lines (across rotated files), then (with `follow`)
    /// everything new.
    pub tail: Option<usize>,
    /// Keep reading appended data until `stop()` says so.
    pub follow: bool,
}

/// One parsed CRI log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLine<'a> {
    pub time: SystemTime,
    pub stream: Stream,
    pub tag: Tag,
    pub msg: &'a [u8],
}

/// Parses one CRI log line (with or without its `\n`), like the kubelet's
/// `parseCRILog`: `<timestamp> <stdout|stderr> <tags> <msg>`, where `tags` is
/// `:`-separated and only the first one matters (`P` is partial, anything else
/// full, for forward compatibility). `None` when the line is not CRI.
pub fn parse_line(line: &[u8]) -> Option<CriLine<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut fields = line.splitn(4, |&b| b == b' ');
    let ts = fields.next()?;
    let stream = match fields.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let tags = fields.next()?;
    // The kubelet requires the delimiter after the tag, even for an empty message.
    let msg = fields.next()?;
    let time = parse_rfc3339(std::str::from_utf8(ts).ok()?)?;
    let tag = match tags.split(|&b| b == b':').next() {
        Some(b"P") => Tag::Partial,
        _ => Tag::Full,
    };
    Some(CriLine {
        time,
        stream,
        tag,
        msg,
    })
}

/// Where whole lines go: straight out, or into the `--tail` ring first.
struct Sink<'a> {
    out: &'a mut dyn Write,
    ring: Option<(usize, VecDeque<Vec<u8>>)>,
}

impl Sink<'_> {
    fn line(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        match &mut self.ring {
            None => self.out.write_all(&bytes),
            Some((0, _)) => Ok(()),
            Some((n, q)) => {
                if q.len() == *n {
                    q.pop_front();
                }
                q.push_back(bytes);
                Ok(())
            }
        }
    }

    /// Writes the tail kept so far; from now on lines go straight out.
    fn release_tail(&mut self) -> io::Result<()> {
        if let Some((_, q)) = self.ring.take() {
            for l in q {
                self.out.write_all(&l)?;
            }
        }
        Ok(())
    }
}

/// Joins `P` chunks back into whole lines, per stream (stdout and stderr chunks
/// may interleave in the file).
struct Joiner {
    timestamps: bool,
    /// Pending partial line per stream, with the time of its first chunk.
    partial: [Option<(SystemTime, Vec<u8>)>; 2],
}

impl Joiner {
    fn new(timestamps: bool) -> Self {
        Joiner {
            timestamps,
            partial: [None, None],
        }
    }

    /// A whole line is stamped with the time of its first chunk: when it began.
    fn render(&self, time: SystemTime, msg: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(msg.len() + 32);
        if self.timestamps {
            v.extend_from_slice(format_rfc3339_nano_fixed(time).as_bytes());
            v.push(b' ');
        }
        v.extend_from_slice(msg);
        v.push(b'\n');
        v
    }

    /// One line of the file, without its `\n`.
    fn raw_line(&mut self, line: &[u8], sink: &mut Sink) -> io::Result<()> {
        let Some(l) = parse_line(line) else {
            // The kubelet skips lines it cannot parse; printing them raw loses nothing.
            let mut v = line.to_vec();
            v.push(b'\n');
            return sink.line(v);
        };
        let slot = &mut self.partial[l.stream as usize];
        match (l.tag, slot.as_mut()) {
            (Tag::Partial, Some((_, buf))) => buf.extend_from_slice(l.msg),
            (Tag::Partial, None) => *slot = Some((l.time, l.msg.to_vec())),
            (Tag::Full, _) => {
                let line = match slot.take() {
                    Some((t, mut buf)) => {
                        buf.extend_from_slice(l.msg);
                        self.render(t, &buf)
                    }
                    None => self.render(l.time, l.msg),
                };
                sink.line(line)?;
            }
        }
        Ok(())
    }

    /// The log ends: an unfinished line (its stream ended without a newline)
    /// is still a line.
    fn flush(&mut self, sink: &mut Sink) -> io::Result<()> {
        let mut pending: Vec<_> = self.partial.iter_mut().filter_map(Option::take).collect();
        pending.sort_by_key(|(t, _)| *t);
        for (t, buf) in pending {
            sink.line(self.render(t, &buf))?;
        }
        Ok(())
    }
}

/// Reads `r` to its current end, calling `f` for each complete line (without
/// `\n`); an incomplete last line stays in `carry` for the next call. Returns
/// the number of bytes read.
fn read_lines(
    r: &mut dyn Read,
    path: &Path,
    carry: &mut Vec<u8>,
    f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<usize> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(with_path(e, "read log file", path)),
        };
        total += n;
        carry.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(i) = carry[start..].iter().position(|&b| b == b'\n') {
            f(&carry[start..start + i])?;
            start += i + 1;
        }
        carry.drain(..start);
    }
}

type FileId = (u64, u64);

fn id_of(m: &fs::Metadata) -> FileId {
    (m.dev(), m.ino())
}

/// Opens the live log file; `None` if it does not exist (yet, or mid-rotation).
fn open_live(path: &Path) -> io::Result<Option<(File, FileId)>> {
    match File::open(path) {
        Ok(f) => {
            let id = id_of(
                &f.metadata()
                    .map_err(|e| with_path(e, "stat log file", path))?,
            );
            Ok(Some((f, id)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(with_path(e, "open log file", path)),
    }
}

/// Prints the log of one container restart whose live file is `path`
/// (see [`super::log_file`]): its rotated files oldest first (`.gz` ones too),
/// then the live file. CRI lines become their message, partial chunks joined
/// back into whole lines; lines that are not CRI are printed as they are.
///
/// With `follow`, it then keeps printing what is appended, polling every
/// 150 ms, and moves on to the new file when the writer rotates; it returns
/// once `stop()` is true and what was written so far has been printed. Without
/// `follow`, a missing log (no live and no rotated file) is a `NotFound` error.
pub fn read_log(
    path: &Path,
    opts: &ReadOptions,
    out: &mut dyn Write,
    stop: &dyn Fn() -> bool,
) -> io::Result<()> {
    let mut sink = Sink {
        out,
        ring: opts.tail.map(|n| (n, VecDeque::with_capacity(n.min(4096)))),
    };
    let mut joiner = Joiner::new(opts.timestamps);
    // Open the live file before listing rotated ones: if a rotation happens in
    // between, the file we hold shows up among the rotated ones and is skipped
    // there, and following notices the rename. Nothing is read twice or missed.
    let mut live = open_live(path)?;
    let rotated = rotated_files(path)?;
    if live.is_none() && rotated.is_empty() && !opts.follow {
        return Err(with_path(
            io::Error::from(io::ErrorKind::NotFound),
            "no log file",
            path,
        ));
    }
    for r in &rotated {
        let f = match File::open(r) {
            Ok(f) => f,
            // Removed by a rotation since we listed it: it was the oldest.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(with_path(e, "open log file", r)),
        };
        let id = id_of(&f.metadata().map_err(|e| with_path(e, "stat log file", r))?);
        if live.as_ref().is_some_and(|(_, live_id)| *live_id == id) {
            continue;
        }
        let mut reader: Box<dyn Read> = if r.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(f))
        } else {
            Box::new(f)
        };
        let mut carry = Vec::new();
        read_lines(&mut reader, r, &mut carry, &mut |l| {
            joiner.raw_line(l, &mut sink)
        })?;
        if !carry.is_empty() {
            joiner.raw_line(&carry, &mut sink)?;
        }
    }

    let mut carry = Vec::new();
    let drain = |live: &mut Option<(File, FileId)>,
                 carry: &mut Vec<u8>,
                 joiner: &mut Joiner,
                 sink: &mut Sink|
     -> io::Result<usize> {
        match live {
            Some((f, _)) => read_lines(f, path, carry, &mut |l| joiner.raw_line(l, sink)),
            None => Ok(0),
        }
    };
    // A file that does not end in a newline ends with a line all the same.
    let end_file = |carry: &mut Vec<u8>, joiner: &mut Joiner, sink: &mut Sink| {
        if carry.is_empty() {
            return Ok(());
        }
        let res = joiner.raw_line(carry, sink);
        carry.clear();
        res
    };

    drain(&mut live, &mut carry, &mut joiner, &mut sink)?;
    if !opts.follow {
        end_file(&mut carry, &mut joiner, &mut sink)?;
        joiner.flush(&mut sink)?;
        sink.release_tail()?;
        return sink.out.flush();
    }
    sink.release_tail()?;
    sink.out.flush()?;
    loop {
        if drain(&mut live, &mut carry, &mut joiner, &mut sink)? > 0 {
            sink.out.flush()?;
            continue;
        }
        // Asked before looking for a rotation, so that what was written before
        // the stop is printed even if it went to a new file.
        let stopping = stop();
        match fs::metadata(path) {
            Ok(m) if live.as_ref().map(|(_, id)| *id) != Some(id_of(&m)) => {
                // Rotated (or created): finish the old file, which gets no more
                // writes once renamed, then continue with the new one.
                drain(&mut live, &mut carry, &mut joiner, &mut sink)?;
                end_file(&mut carry, &mut joiner, &mut sink)?;
                live = open_live(path)?;
                continue;
            }
            Ok(_) => {}
            // Between the rename and the new file: keep the old one for now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(with_path(e, "stat log file", path)),
        }
        if stopping {
            drain(&mut live, &mut carry, &mut joiner, &mut sink)?;
            end_file(&mut carry, &mut joiner, &mut sink)?;
            joiner.flush(&mut sink)?;
            return sink.out.flush();
        }
        thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LogWriter, RotateLimits, log_file};
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Instant, UNIX_EPOCH};

    const TS: &str = "2026-11-26T21:04:52.123456789Z";

    fn read(path: &Path, opts: &ReadOptions) -> String {
        let mut out = Vec::new();
        read_log(path, opts, &mut out, &|| true).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn write_file(dir: &Path, name: &str, lines: &[&str]) -> std::path::PathBuf {
        let p = dir.join(name);
        let mut s = String::new();
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        fs::write(&p, s).unwrap();
        p
    }

    #[test]
    fn parses_cri_lines_like_the_kubelet() {
        let raw = format!("{TS} stderr P:x hello world\n");
        let l = parse_line(raw.as_bytes()).unwrap();
        assert_eq!(l.stream, Stream::Stderr);
        assert_eq!(l.tag, Tag::Partial);
        assert_eq!(l.msg, b"hello world");
        assert_eq!(
            l.time,
            UNIX_EPOCH + Duration::new(1_795_727_092, 123_456_789)
        );
        let empty = format!("{TS} stdout F ");
        assert_eq!(parse_line(empty.as_bytes()).unwrap().msg, b"");
        for bad in [
            "plain text".to_string(),
            format!("{TS} stdin F x"),
            format!("{TS} stdout F"),
            "yesterday stdout F x".to_string(),
        ] {
            assert!(parse_line(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn reader_joins_partials_per_stream() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(
            dir.path(),
            "0.log",
            &[
                &format!("{TS} stdout P hel"),
                &format!("{TS} stderr F error in between"),
                &format!("{TS} stdout P lo "),
                &format!("{TS} stdout F world"),
                &format!("{TS} stdout F "),
            ],
        );
        assert_eq!(
            read(&p, &ReadOptions::default()),
            "error in between\nhello world\n\n"
        );
    }

    #[test]
    fn reader_prints_malformed_lines_raw() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(
            dir.path(),
            "0.log",
            &["not a cri line", &format!("{TS} stdout F fine")],
        );
        assert_eq!(read(&p, &ReadOptions::default()), "not a cri line\nfine\n");
    }

    #[test]
    fn reader_ends_unfinished_partial_and_unterminated_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        fs::write(
            &p,
            format!("{TS} stdout F a\n{TS} stdout P no newline\n{TS} stderr F b"),
        )
        .unwrap();
        assert_eq!(read(&p, &ReadOptions::default()), "a\nb\nno newline\n");
    }

    #[test]
    fn timestamps_option_prints_fixed_nanos_of_first_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(
            dir.path(),
            "0.log",
            &[
                "2026-11-26T21:04:52.1Z stdout P one ",
                "2026-11-26T21:04:53Z stdout F two",
                "2026-11-26T22:04:54+01:00 stderr F three",
            ],
        );
        let opts = ReadOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            read(&p, &opts),
            "2026-11-26T21:04:52.100000000Z one two\n\
             2026-11-26T21:04:54.000000000Z three\n"
        );
    }

    fn small_writer(dir: &Path, max_bytes: u64) -> Arc<LogWriter> {
        LogWriter::open(
            dir,
            0,
            RotateLimits {
                max_bytes,
                max_files: 100,
            },
        )
        .unwrap()
    }

    fn line(w: &LogWriter, s: &str) {
        w.write_line(Stream::Stdout, Tag::Full, s.as_bytes(), SystemTime::now())
            .unwrap();
    }

    #[test]
    fn reads_rotated_files_in_order_then_live() {
        let dir = tempfile::tempdir().unwrap();
        let w = small_writer(dir.path(), 120);
        for i in 0..10 {
            line(&w, &format!("line {i}"));
        }
        assert!(rotated_files(w.path()).unwrap().len() >= 3);
        let want: String = (0..10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(read(w.path(), &ReadOptions::default()), want);
    }

    #[test]
    fn tail_counts_whole_lines_across_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let w = small_writer(dir.path(), 120);
        for i in 0..10 {
            line(&w, &format!("line {i}"));
        }
        // A joined line counts once.
        let now = SystemTime::now();
        w.write_line(Stream::Stdout, Tag::Partial, b"long ", now)
            .unwrap();
        w.write_line(Stream::Stdout, Tag::Full, b"line", now)
            .unwrap();
        let tail = |n| {
            read(
                w.path(),
                &ReadOptions {
                    tail: Some(n),
                    ..Default::default()
                },
            )
        };
        assert_eq!(tail(3), "line 8\nline 9\nlong line\n");
        assert_eq!(tail(0), "");
        assert_eq!(tail(100).lines().count(), 11);
    }

    #[test]
    fn reads_gzipped_rotated_files() {
        use flate2::{Compression, write::GzEncoder};
        let dir = tempfile::tempdir().unwrap();
        let mut gz = GzEncoder::new(
            File::create(dir.path().join("0.log.20261126-210452.gz")).unwrap(),
            Compression::default(),
        );
        writeln!(gz, "{TS} stdout F from gz").unwrap();
        gz.finish().unwrap();
        let p = write_file(dir.path(), "0.log", &[&format!("{TS} stdout F live")]);
        assert_eq!(read(&p, &ReadOptions::default()), "from gz\nlive\n");
    }

    #[test]
    fn missing_log_is_not_found_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = log_file(dir.path(), 7);
        let err = read_log(&p, &ReadOptions::default(), &mut Vec::new(), &|| true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("7.log"), "{err}");
    }

    /// Output shared with a following reader thread.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
        fn wait_for(&self, want: &str) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.text() != want {
                assert!(
                    Instant::now() < deadline,
                    "got {:?}, want {want:?}",
                    self.text()
                );
                thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn follow(
        path: &Path,
        opts: ReadOptions,
    ) -> (Shared, Arc<AtomicBool>, thread::JoinHandle<io::Result<()>>) {
        let out = Shared::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (path, mut o, s) = (path.to_path_buf(), out.clone(), stop.clone());
        let h = thread::spawn(move || {
            let opts = ReadOptions {
                follow: true,
                ..opts
            };
            read_log(&path, &opts, &mut o, &|| s.load(Ordering::SeqCst))
        });
        (out, stop, h)
    }

    #[test]
    fn follow_picks_up_appended_lines_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let w = small_writer(dir.path(), 0);
        line(&w, "old 1");
        line(&w, "old 2");
        let opts = ReadOptions {
            tail: Some(1),
            ..Default::default()
        };
        let (out, stop, h) = follow(w.path(), opts);
        out.wait_for("old 2\n");
        line(&w, "new 1");
        let now = SystemTime::now();
        w.write_line(Stream::Stderr, Tag::Partial, b"new ", now)
            .unwrap();
        w.write_line(Stream::Stderr, Tag::Full, b"2", now).unwrap();
        out.wait_for("old 2\nnew 1\nnew 2\n");
        // Written just before the stop: still printed.
        line(&w, "last");
        stop.store(true, Ordering::SeqCst);
        h.join().unwrap().unwrap();
        assert_eq!(out.text(), "old 2\nnew 1\nnew 2\nlast\n");
    }

    #[test]
    fn follow_continues_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let w = small_writer(dir.path(), 150);
        line(&w, "before");
        let (out, stop, h) = follow(w.path(), ReadOptions::default());
        out.wait_for("before\n");
        let mut want = String::from("before\n");
        for i in 0..20 {
            line(&w, &format!("after {i}"));
            want.push_str(&format!("after {i}\n"));
            if i % 3 == 0 {
                thread::sleep(Duration::from_millis(200));
            }
        }
        assert!(rotated_files(w.path()).unwrap().len() >= 5);
        out.wait_for(&want);
        stop.store(true, Ordering::SeqCst);
        h.join().unwrap().unwrap();
        assert_eq!(out.text(), want);
    }

    #[test]
    fn follow_waits_for_the_file_to_appear() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file(dir.path(), 0);
        let (out, stop, h) = follow(&path, ReadOptions::default());
        thread::sleep(Duration::from_millis(200));
        let w = small_writer(dir.path(), 0);
        line(&w, "hello");
        out.wait_for("hello\n");
        stop.store(true, Ordering::SeqCst);
        h.join().unwrap().unwrap();
    }
}
