//! The distribution API's GETs, as podshim makes them: every body a registry
//! sends is read with a bound *before* it is buffered.
//!
//! oci-client, which podshim used before, buffered manifests, error bodies and
//! the token server's answer whole (`Response::bytes`, `Response::text`), so a
//! registry serving an endless manifest made a pull use all the memory it
//! sent. podshim makes every request itself with reqwest, the token exchange
//! included ([`super::token`]).
//! The bounds follow containerd (`remotes/docker`: manifests read through a
//! limited reader of 4 MiB) and containers/image (`iolimits`: 4 MiB for
//! manifests and configs, 1 MiB for a token answer): [`MAX_MANIFEST`],
//! [`MAX_TOKEN_BODY`]. Blobs are streamed, bounded by their descriptor's size.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_RANGE, HeaderValue, RANGE, WWW_AUTHENTICATE};

use super::retry::transient_status;
use super::token::MAX_TOKEN_BODY;

/// The most a manifest or index may have: containerd's `maxManifestSize` and
/// containers/image's `MaxManifestBodySize`.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// An error body is for a message: a little of it is enough.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No (whole) answer: connect, TLS, reset, a body that broke off, a timeout.
    Transport { detail: String, timeout: bool },
    /// An error status, with the code of the registry's OCI error body if any.
    Status {
        status: u16,
        code: Option<String>,
        detail: String,
        /// A 401's `WWW-Authenticate` (RFC 9110 11.6.1): what to authenticate
        /// with before the request is sent again.
        challenge: Option<String>,
    },
    /// The body is larger than `cap`: `claimed` is its Content-Length when that
    /// said so (nothing was read), else reading stopped at `cap + 1` bytes.
    TooLarge { cap: u64, claimed: Option<u64> },
    /// An answer that breaks the protocol (a Content-Range for other bytes).
    Protocol(String),
}

impl HttpError {
    /// Worth another try: a broken connection or body (not a timeout: a
    /// registry that does not answer would only be waited for again), a 5xx, a 429.
    pub fn transient(&self) -> bool {
        match self {
            HttpError::Transport { timeout, .. } => !timeout,
            HttpError::Status { status, .. } => transient_status(*status),
            HttpError::TooLarge { .. } | HttpError::Protocol(_) => false,
        }
    }

    fn transport(e: &reqwest::Error) -> HttpError {
        HttpError::Transport {
            detail: super::pull::chain(e),
            timeout: e.is_timeout(),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Transport { detail, .. } => f.write_str(detail),
            HttpError::Status { detail, .. } => f.write_str(detail),
            HttpError::TooLarge {
                cap,
                claimed: Some(n),
            } => write!(
                f,
                "the registry says {n} bytes, more than the {cap} accepted"
            ),
            HttpError::TooLarge { cap, claimed: None } => {
                write!(
                    f,
                    "more than the {cap} bytes accepted (stopped reading there)"
                )
            }
            HttpError::Protocol(s) => f.write_str(s),
        }
    }
}

/// Reads a body of at most `cap` bytes: refused by its Content-Length before
/// any of it is read, else by reading no more than `cap + 1` bytes.
pub async fn read_capped<S, E>(
    body: S,
    content_length: Option<u64>,
    cap: u64,
) -> Result<Vec<u8>, HttpError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    if let Some(n) = content_length.filter(|n| *n > cap) {
        return Err(HttpError::TooLarge {
            cap,
            claimed: Some(n),
        });
    }
    let mut out = Vec::with_capacity(content_length.unwrap_or(0) as usize);
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| HttpError::Transport {
            detail: format!("reading the body: {e}"),
            timeout: false,
        })?;
        let room = (cap + 1 - out.len() as u64) as usize;
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() as u64 > cap {
            return Err(HttpError::TooLarge { cap, claimed: None });
        }
    }
    Ok(out)
}

/// How many bytes of an answer to `Range: bytes=<offset>-` to skip: none of a
/// 206 for exactly those bytes (RFC 9110 14.4), `offset` of a 200 (the
/// registry ignored the Range and sends the whole blob again).
pub fn resume_skip(
    status: u16,
    content_range: Option<&str>,
    offset: u64,
) -> Result<u64, HttpError> {
    match status {
        200 => Ok(offset),
        206 => {
            let start = content_range
                .and_then(|r| r.strip_prefix("bytes "))
                .and_then(|r| r.split_once('-'))
                .and_then(|(s, _)| s.trim().parse::<u64>().ok());
            match start {
                Some(s) if s == offset => Ok(0),
                _ => Err(HttpError::Protocol(format!(
                    "asked for bytes from {offset}, the registry sent Content-Range {content_range:?}"
                ))),
            }
        }
        s => Err(HttpError::Protocol(format!("unexpected status {s}"))),
    }
}

/// The OCI error code of an error body (distribution spec, "Error Codes").
fn error_code(body: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: String,
        #[serde(default)]
        message: String,
    }
    let e: Envelope = serde_json::from_slice(body).ok()?;
    e.errors.into_iter().next().map(|i| (i.code, i.message))
}

/// Sends `req` (for `url`): its response if 2xx, else the status and a
/// little of the error body as an [`HttpError::Status`].
async fn send(req: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response, HttpError> {
    let resp = req.send().await.map_err(|e| HttpError::transport(&e))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(resp);
    }
    let challenge = (status == 401)
        .then(|| resp.headers().get(WWW_AUTHENTICATE))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_capped(resp.bytes_stream(), None, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let code = error_code(&body);
    let detail = match &code {
        Some((c, m)) => format!("HTTP {status}: {c}: {m} ({url})"),
        None => format!(
            "HTTP {status}: {} ({url})",
            super::pull::one_line(&String::from_utf8_lossy(&body[..body.len().min(200)]))
        ),
    };
    Err(HttpError::Status {
        status,
        code: code.map(|(c, _)| c),
        detail,
        challenge,
    })
}

/// One repository of one registry, over one scheme.
pub struct Repo {
    client: reqwest::Client,
    /// `{scheme}://{host}/v2/`
    root: String,
    repository: String,
    /// Whether TLS goes unchecked (registries.conf `insecure`).
    insecure: bool,
    /// What every request is sent with; replaced when the registry asks
    /// again or a token runs out (a pull is one task: never borrowed across
    /// an await).
    auth: std::cell::RefCell<Option<HeaderValue>>,
}

impl Repo {
    pub fn new(
        scheme: &str,
        host: &str,
        repository: &str,
        insecure: bool,
    ) -> Result<Repo, HttpError> {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("podshim/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::transport(&e))?;
        Ok(Repo {
            client,
            root: format!("{scheme}://{host}/v2/"),
            repository: repository.to_string(),
            insecure,
            auth: std::cell::RefCell::new(None),
        })
    }

    /// The repository's name in the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `https` or `http`: how the registry is reached.
    pub fn scheme(&self) -> &str {
        self.root.split_once(':').map_or("", |(s, _)| s)
    }

    pub fn insecure(&self) -> bool {
        self.insecure
    }

    pub fn set_auth(&self, auth: Option<HeaderValue>) {
        *self.auth.borrow_mut() = auth;
    }

    async fn get(
        &self,
        url: &str,
        accept: Option<&str>,
        range_from: u64,
    ) -> Result<reqwest::Response, HttpError> {
        let mut req = self.client.get(url);
        if let Some(a) = accept {
            req = req.header(ACCEPT, a);
        }
        if let Some(a) = self.auth.borrow().clone() {
            req = req.header(AUTHORIZATION, a);
        }
        if range_from > 0 {
            req = req.header(RANGE, format!("bytes={range_from}-"));
        }
        send(req, url).await
    }

    /// A token from a token server (see [`super::token`]): `url` is the
    /// realm with its query, `basic` the credentials if there are any. The
    /// answer is read with [`MAX_TOKEN_BODY`] as its bound: the realm is any
    /// URL the registry's challenge names.
    pub async fn token(
        &self,
        url: &reqwest::Url,
        basic: Option<&HeaderValue>,
    ) -> Result<Vec<u8>, HttpError> {
        let mut req = self.client.get(url.clone());
        if let Some(b) = basic {
            req = req.header(AUTHORIZATION, b.clone());
        }
        // What errors quote: the URL without any user:password in it.
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let resp = send(req, shown.as_str()).await?;
        let len = resp.content_length();
        read_capped(resp.bytes_stream(), len, MAX_TOKEN_BODY).await
    }

    /// `GET /v2/`: the authentication challenge, if the registry makes one
    /// (its body is not read).
    pub async fn ping(&self) -> Result<Option<String>, HttpError> {
        let resp = self
            .client
            .get(&self.root)
            .send()
            .await
            .map_err(|e| HttpError::transport(&e))?;
        let status = resp.status().as_u16();
        if transient_status(status) {
            return Err(HttpError::Status {
                status,
                code: None,
                detail: format!("HTTP {status} ({})", self.root),
                challenge: None,
            });
        }
        // Some registries do not serve /v2/ at all (404): the real requests tell.
        Ok((status == 401)
            .then(|| resp.headers().get(WWW_AUTHENTICATE))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    /// A manifest or index by tag or digest, at most [`MAX_MANIFEST`] bytes.
    pub async fn manifest(&self, reference: &str, accept: &[&str]) -> Result<Vec<u8>, HttpError> {
        let url = format!("{}{}/manifests/{reference}", self.root, self.repository);
        let resp = self.get(&url, Some(&accept.join(", ")), 0).await?;
        let len = resp.content_length();
        read_capped(resp.bytes_stream(), len, MAX_MANIFEST).await
    }

    /// A blob from byte `offset` on (a Range request when > 0): the bytes to
    /// skip of the answer (see [`resume_skip`]) and its body.
    pub async fn blob(
        &self,
        digest: &str,
        offset: u64,
    ) -> Result<
        (
            u64,
            impl Stream<Item = Result<Bytes, HttpError>> + use<>,
            Option<u64>,
        ),
        HttpError,
    > {
        let url = format!("{}{}/blobs/{digest}", self.root, self.repository);
        let resp = self.get(&url, None, offset).await?;
        let skip = if offset == 0 {
            0
        } else {
            let cr = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            resume_skip(resp.status().as_u16(), cr, offset)?
        };
        let len = resp.content_length();
        let body = resp
            .bytes_stream()
            .map(|r| r.map_err(|e| HttpError::transport(&e)));
        Ok((skip, body, len))
    }

    /// `GET /v2/<name>/tags/list?n=1`, for whether the repository exists.
    pub async fn tags(&self) -> Result<(), HttpError> {
        let url = format!("{}{}/tags/list?n=1", self.root, self.repository);
        self.get(&url, None, 0).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{FutureExt, stream};
    use std::cell::Cell;

    fn chunks(n: usize, size: usize) -> Vec<Result<Bytes, std::io::Error>> {
        (0..n).map(|_| Ok(Bytes::from(vec![b' '; size]))).collect()
    }

    #[test]
    fn a_body_within_the_cap_is_read_whole() {
        let got = read_capped(stream::iter(chunks(4, 10)), Some(40), 40)
            .now_or_never()
            .unwrap();
        assert_eq!(got.unwrap().len(), 40);
    }

    #[test]
    fn a_content_length_over_the_cap_is_refused_before_reading() {
        let polled = Cell::new(0);
        let body = stream::iter(chunks(1, 10)).inspect(|_| polled.set(polled.get() + 1));
        let got = read_capped(body, Some(41), 40).now_or_never().unwrap();
        assert_eq!(
            got,
            Err(HttpError::TooLarge {
                cap: 40,
                claimed: Some(41)
            })
        );
        assert_eq!(polled.get(), 0);
    }

    #[test]
    fn an_endless_body_stops_being_read_past_the_cap() {
        let polled = Cell::new(0u64);
        let body = stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1000])))
            .inspect(|_| polled.set(polled.get() + 1));
        let got = read_capped(body, None, 4 << 20).now_or_never().unwrap();
        assert_eq!(
            got,
            Err(HttpError::TooLarge {
                cap: 4 << 20,
                claimed: None
            })
        );
        // 4 MiB + 1 byte is in the 4195th chunk of 1000 bytes: no more was read.
        assert_eq!(polled.get(), (4u64 << 20) / 1000 + 1);
    }

    #[test]
    fn a_resumed_download_uses_a_206_for_its_offset_and_skips_a_200s_prefix() {
        assert_eq!(resume_skip(206, Some("bytes 500-999/1000"), 500), Ok(0));
        assert_eq!(resume_skip(200, None, 500), Ok(500));
        assert!(matches!(
            resume_skip(206, Some("bytes 0-999/1000"), 500),
            Err(HttpError::Protocol(_))
        ));
        assert!(matches!(
            resume_skip(206, None, 500),
            Err(HttpError::Protocol(_))
        ));
    }

    #[test]
    fn only_broken_connections_5xx_and_429_are_transient() {
        let t = |timeout| HttpError::Transport {
            detail: String::new(),
            timeout,
        };
        let s = |status| HttpError::Status {
            status,
            code: None,
            detail: String::new(),
            challenge: None,
        };
        assert!(t(false).transient());
        assert!(!t(true).transient());
        assert!(s(503).transient() && s(500).transient() && s(429).transient());
        assert!(!s(401).transient() && !s(403).transient() && !s(404).transient());
        assert!(
            !HttpError::TooLarge {
                cap: 1,
                claimed: None
            }
            .transient()
        );
    }

    #[test]
    fn an_oci_error_body_gives_its_code() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"no such repo"}]}"#;
        assert_eq!(
            error_code(body),
            Some(("NAME_UNKNOWN".into(), "no such repo".into()))
        );
        assert_eq!(error_code(b"<html>"), None);
    }
}
