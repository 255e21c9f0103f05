//! An `httpGet` probe: one HTTP/1.1 GET per hop, as the kubelet's
//! `pkg/probe/http` does it: `User-Agent: kube-probe/<version>` and
//! `Accept: */*` unless the probe sets them, the probe's `Host` header as the
//! request's host, HTTPS without certificate verification, redirects followed
//! only to the same host name (at most 10), 200-399 a success (a redirect to
//! another host ends the probe with a warning, which counts as a success), and
//! at most 10 KiB of the body read.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Resolved, dial, errno_text, join_host_port, tls};
use crate::model::{HttpHeader, HttpScheme};

/// The kubelet reads at most this much of a probe's body (`maxRespBodyLength`).
const MAX_BODY: usize = 10 * 1024;
/// A response head larger than this is refused (Go's client allows 10 MB; a
/// probe target needs far less, and the supervisor's memory is the pod's cost).
const MAX_HEAD: usize = 64 * 1024;
/// Go's http.Client stops after 10 redirects.
const MAX_REDIRECTS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: HttpScheme,
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// The probe's URL (the kubelet's `formatURL`): a path without a leading `/`
    /// gets one.
    pub fn new(scheme: HttpScheme, host: &str, port: u16, path: &str) -> Url {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Url {
            scheme,
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port,
            path,
        }
    }

    fn authority(&self) -> String {
        join_host_port(&self.host, self.port)
    }

    /// The `Host` header Go sends: the port only when it is not the scheme's.
    fn host_header(&self) -> String {
        let default = match self.scheme {
            HttpScheme::Http => 80,
            HttpScheme::Https => 443,
        };
        if self.port == default {
            if self.host.contains(':') {
                format!("[{}]", self.host)
            } else {
                self.host.clone()
            }
        } else {
            self.authority()
        }
    }

    /// Where a `Location` header points, from this URL: absolute
    /// (`http://h:p/x`), scheme-relative (`//h/x`), absolute-path (`/x`) or
    /// relative to this path (`x`).
    pub fn join(&self, location: &str) -> Option<Url> {
        let location = location.trim();
        let (scheme, rest) = if let Some(r) = location.strip_prefix("http://") {
            (HttpScheme::Http, r)
        } else if let Some(r) = location.strip_prefix("https://") {
            (HttpScheme::Https, r)
        } else if let Some(r) = location.strip_prefix("//") {
            (self.scheme, r)
        } else if location.starts_with('/') {
            return Some(Url {
                path: location.into(),
                ..self.clone()
            });
        } else if location.contains("://") {
            return None;
        } else {
            let dir = match self.path.split('?').next().and_then(|p| p.rfind('/')) {
                Some(i) => &self.path[..=i],
                None => "/",
            };
            return Some(Url {
                path: format!("{dir}{location}"),
                ..self.clone()
            });
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let default = match scheme {
            HttpScheme::Http => 80,
            HttpScheme::Https => 443,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None if after.is_empty() => default,
                None => return None,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().ok()?),
                None => (authority.to_string(), default),
            }
        };
        if host.is_empty() {
            return None;
        }
        Some(Url {
            scheme,
            host,
            port,
            path,
        })
    }

    pub fn display(&self) -> String {
        let scheme = match self.scheme {
            HttpScheme::Http => "http",
            HttpScheme::Https => "https",
        };
        format!("{scheme}://{}{}", self.authority(), self.path)
    }
}

pub struct HttpRequest<'a> {
    pub url: Url,
    pub headers: &'a [HttpHeader],
    /// `kube-probe/<version>` or `kube-lifecycle/<version>`.
    pub user_agent: &'a str,
    /// The URL's host, resolved before the namespace was entered (redirects
    /// are followed to the same host only).
    pub names: &'a Resolved,
    /// Set when whoever waits for the answer no longer does.
    pub cancel: Option<&'a AtomicBool>,
}

/// How a GET ended.
#[derive(Debug)]
pub enum Answer {
    /// The last hop's status and (the start of) its body.
    Final { status: u16, body: String },
    /// A redirect to another host, which is not followed.
    RedirectedAway { body: String },
}

/// The head of a response, and the start of its body.
#[derive(Debug)]
struct Response {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// Runs the probe before `deadline`: 200-399 is a success, a redirect to
/// another host a warning (a success).
pub fn probe(req: &HttpRequest<'_>, deadline: Instant) -> Result<String, String> {
    match fetch(req, deadline)? {
        Answer::RedirectedAway { body } => {
            Ok(format!("Probe terminated redirects, Response body: {body}"))
        }
        Answer::Final { status, body } if (200..400).contains(&status) => Ok(body),
        Answer::Final { status, .. } => Err(format!("HTTP probe failed with statuscode: {status}")),
    }
}

/// GETs the request's URL before `deadline`, following redirects to the same
/// host.
pub fn fetch(req: &HttpRequest<'_>, deadline: Instant) -> Result<Answer, String> {
    let mut url = req.url.clone();
    let first_host = url.host.clone();
    let mut host_override = header(req.headers, "Host").map(str::to_string);
    for hop in 0..=MAX_REDIRECTS {
        let res = get(&url, req, host_override.as_deref(), deadline)
            .map_err(|e| format!("Get \"{}\": {e}", url.display()))?;
        let body = String::from_utf8_lossy(&res.body).into_owned();
        let redirect = matches!(res.status, 301 | 302 | 303 | 307 | 308);
        match (redirect, res.location.as_deref()) {
            (true, Some(location)) => {
                let Some(next) = url.join(location) else {
                    return Err(format!(
                        "Get \"{}\": bad redirect location {location:?}",
                        url.display()
                    ));
                };
                // The kubelet follows redirects only to the same host name; the
                // redirect response itself is then the result (a warning).
                if next.host != first_host {
                    return Ok(Answer::RedirectedAway { body });
                }
                if hop == MAX_REDIRECTS {
                    return Err(format!(
                        "Get \"{}\": stopped after {MAX_REDIRECTS} redirects",
                        next.display()
                    ));
                }
                // Go keeps a custom Host header through a relative redirect only.
                if location.contains("//") {
                    host_override = None;
                }
                url = next;
            }
            _ => {
                return Ok(Answer::Final {
                    status: res.status,
                    body,
                });
            }
        }
    }
    unreachable!("the loop returns by its last hop")
}

fn header<'a>(headers: &'a [HttpHeader], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .rev()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The request's bytes. The probe's own headers come last but replace the
/// defaults of the same name; `Host` is the request's host, not a header line
/// of its own; an empty `Accept` removes it (the kubelet's rules).
fn request_bytes(
    url: &Url,
    headers: &[HttpHeader],
    host: Option<&str>,
    user_agent: &str,
) -> Vec<u8> {
    let mut out = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n",
        url.path,
        host.map(str::to_string)
            .unwrap_or_else(|| url.host_header())
    );
    if header(headers, "User-Agent").is_none() {
        out.push_str(&format!("User-Agent: {user_agent}\r\n"));
    }
    if header(headers, "Accept").is_none() {
        out.push_str("Accept: */*\r\n");
    }
    for h in headers {
        if h.name.eq_ignore_ascii_case("Host")
            || (h.name.eq_ignore_ascii_case("Accept") && h.value.is_empty())
        {
            continue;
        }
        out.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn get(
    url: &Url,
    req: &HttpRequest<'_>,
    host: Option<&str>,
    deadline: Instant,
) -> Result<Response, String> {
    let tcp = dial(req.names, url.port, deadline)?;
    let socket = tcp.try_clone().map_err(|e| e.to_string())?;
    let request = request_bytes(url, req.headers, host, req.user_agent);
    let live = Live {
        deadline,
        cancel: req.cancel,
        socket: &socket,
    };
    live.step()?;
    match url.scheme {
        HttpScheme::Http => exchange(tcp, &request, &live),
        HttpScheme::Https => {
            let mut stream = tls::connect(tcp, &url.host)?;
            // The handshake in short steps too, so that a server that stays
            // silent (or trickles) is given up at the deadline or a cancel.
            while stream.conn.is_handshaking() {
                if let Some(why) = live.over() {
                    return Err(why);
                }
                live.step()?;
                match stream.conn.complete_io(&mut stream.sock) {
                    Ok(_) => {}
                    Err(e) if waits(&e) => {}
                    Err(e) => return Err(io_text(e)),
                }
            }
            exchange(stream, &request, &live)
        }
    }
}

/// When an exchange must end, and the socket whose timeouts make it end then.
struct Live<'a> {
    deadline: Instant,
    cancel: Option<&'a AtomicBool>,
    socket: &'a TcpStream,
}

/// How long one blocking read or write may wait before the loop looks at the
/// deadline and the cancel flag again.
const STEP: Duration = Duration::from_millis(500);

impl Live<'_> {
    fn over(&self) -> Option<String> {
        if self.cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Some("cancelled: the container's run ended".into());
        }
        (Instant::now() >= self.deadline).then(timeout_text)
    }

    /// Sets the socket's timeouts to the next step, never past the deadline
    /// (nor zero, which would mean none).
    fn step(&self) -> Result<(), String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout_text());
        }
        let step = Some(left.min(STEP));
        self.socket
            .set_read_timeout(step)
            .and_then(|()| self.socket.set_write_timeout(step))
            .map_err(|e| e.to_string())
    }
}

/// A socket timeout, not an error.
fn waits(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

/// One read, waiting out short timeouts until the exchange is over.
fn read_some(s: &mut impl Read, buf: &mut [u8], live: &Live<'_>) -> Result<usize, String> {
    loop {
        if let Some(why) = live.over() {
            return Err(why);
        }
        live.step()?;
        match s.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if waits(&e) => {}
            Err(e) => return Err(io_text(e)),
        }
    }
}

fn timeout_text() -> String {
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into()
}

fn io_text(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => timeout_text(),
        _ => errno_text(&e),
    }
}

/// Sends the request and reads the head and up to [`MAX_BODY`] of the body,
/// each read waiting at most a step (see [`Live`]).
fn exchange(mut s: impl Read + Write, request: &[u8], live: &Live<'_>) -> Result<Response, String> {
    // A few hundred bytes: one write, within the deadline's timeout.
    live.step()?;
    s.write_all(request).map_err(io_text)?;
    s.flush().map_err(io_text)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, body_start) = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("response head larger than {MAX_HEAD} bytes"));
        }
        match read_some(&mut s, &mut chunk, live)? {
            0 => return Err("EOF before the response head ended".into()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status(status_line)
        .ok_or_else(|| format!("malformed HTTP response {status_line:?}"))?;
    let mut location = None;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("Location") {
            location = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("Content-Length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("Transfer-Encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut body = buf[body_start..].to_vec();
    let want = length.unwrap_or(usize::MAX).min(MAX_BODY);
    // The body is only the probe's message: what arrives in time, capped.
    while body.len() < want {
        match read_some(&mut s, &mut chunk, live) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    if chunked {
        body = dechunk(&body);
    }
    body.truncate(want.min(MAX_BODY));
    Ok(Response {
        status,
        location,
        body,
    })
}

/// Where the head ends (the empty line) and the body begins. Lines end in LF,
/// optionally after CR (RFC 9112 section 2.2, as Go's textproto reads them).
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    (0..buf.len()).find_map(|i| {
        if buf[i] != b'\n' {
            return None;
        }
        match buf.get(i + 1..) {
            Some([b'\n', ..]) => Some((i, i + 2)),
            Some([b'\r', b'\n', ..]) => Some((i, i + 3)),
            _ => None,
        }
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.x NNN reason`.
fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// The data of a chunked body, as far as it is complete.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = find(raw, b"\r\n") {
        let size = std::str::from_utf8(&raw[..i])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let Some(size) = size.filter(|s| *s > 0) else {
            break;
        };
        let data = &raw[i + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || data.len() < size + 2 {
            break;
        }
        raw = &data[size + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::KUBE_VERSION;

    fn url(path: &str) -> Url {
        Url::new(HttpScheme::Http, "10.0.0.5", 8080, path)
    }

    #[test]
    fn a_path_without_a_slash_gets_one() {
        assert_eq!(url("healthz").display(), "http://10.0.0.5:8080/healthz");
        assert_eq!(
            Url::new(HttpScheme::Https, "::1", 443, "/").display(),
            "https://[::1]:443/"
        );
    }

    #[test]
    fn redirect_locations_are_resolved_like_a_browser() {
        let u = url("/a/b?x=1");
        assert_eq!(u.join("/c").unwrap().display(), "http://10.0.0.5:8080/c");
        assert_eq!(u.join("c").unwrap().display(), "http://10.0.0.5:8080/a/c");
        assert_eq!(
            u.join("https://10.0.0.5/z").unwrap().display(),
            "https://10.0.0.5:443/z"
        );
        assert_eq!(
            u.join("//other:81?q").unwrap().display(),
            "http://other:81/?q"
        );
        assert_eq!(u.join("http://[::1]:9/").unwrap().host, "::1");
        assert_eq!(u.join("ftp://x/"), None);
        assert_eq!(u.join("http://:80/"), None);
    }

    #[test]
    fn the_request_has_the_kubelets_default_headers_unless_the_probe_sets_them() {
        let agent = format!("kube-probe/{KUBE_VERSION}");
        let req = String::from_utf8(request_bytes(&url("/h"), &[], None, &agent)).unwrap();
        assert_eq!(
            req,
            format!(
                "GET /h HTTP/1.1\r\nHost: 10.0.0.5:8080\r\nUser-Agent: kube-probe/{KUBE_VERSION}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            )
        );
        let headers = [
            HttpHeader {
                name: "Host".into(),
                value: "example.test".into(),
            },
            HttpHeader {
                name: "user-agent".into(),
                value: "mine".into(),
            },
            HttpHeader {
                name: "Accept".into(),
                value: "".into(),
            },
        ];
        let host = Some("example.test");
        let req = String::from_utf8(request_bytes(&url("/h"), &headers, host, &agent)).unwrap();
        assert_eq!(
            req,
            "GET /h HTTP/1.1\r\nHost: example.test\r\nuser-agent: mine\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn status_lines_are_parsed_strictly() {
        assert_eq!(parse_status("HTTP/1.1 204 No Content"), Some(204));
        assert_eq!(parse_status("HTTP/1.0 500"), Some(500));
        assert_eq!(parse_status("HTTP/2 200"), None);
        assert_eq!(parse_status("HTTP/1.1 20 x"), None);
        assert_eq!(parse_status("garbage"), None);
    }

    #[test]
    fn a_chunked_body_is_decoded_as_far_as_it_came() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
        assert_eq!(dechunk(b"5\r\nab"), b"ab");
        assert_eq!(dechunk(b"zz\r\n"), b"");
    }
}
