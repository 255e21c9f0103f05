//! `Store::pull`: images from OCI distribution registries (Docker Hub, quay,
//! a local `docker-registry`, ...), into the store.
//!
//! Every request is podshim's own, made with reqwest ([`super::http`]): the
//! GETs of manifests, configs and layers and the bearer token exchange
//! ([`super::token`]: the challenge of `GET /v2/` or of any later 401, the
//! token server the registry names, the token renewed before it expires). It used oci-client (the ORAS project's client) before,
//! which buffers manifests, error bodies and token answers whole: now every
//! body is bounded before it is buffered. It is async; a pull runs on a small
//! current-thread tokio runtime of its own, so the rest of podshim stays
//! synchronous.
//!
//! What podshim adds on top, and why:
//! - bounds: manifests 4 MiB, configs their descriptor's size, token answers
//!   1 MiB, layers streamed;
//! - retries with back-off of what a registry did not mean ([`super::retry`]:
//!   resets, 5xx, 429), a layer cut off mid-way resumed with a Range request,
//!   and a deadline for the whole pull ([`PullOptions::deadline`]);
//! - an image config that execve would refuse is refused ([`super::exec_limits`]);
//! - registries.conf (mirrors, rewrites, blocks) and auth files: [`super::registries`], [`super::auth`];
//! - an image index is resolved to linux/[`super::host_arch`] with the same
//!   rule as `load` (arm64 prefers variant v8);
//! - every blob is written by the store's own verified path
//!   (`Store::put_blob`: a temp file in `<store>/tmp`, size and sha256 checked,
//!   then renamed into `blobs/`), streamed through a bounded channel from the
//!   download to a blocking thread, never held whole in memory; the layer is
//!   unpacked on that thread as soon as its blob is in (diff_id checked), so
//!   downloads and unpacking overlap, and layers go in parallel;
//! - blobs already in the store are not fetched again, so an interrupted pull
//!   (its temp files are invisible and swept by prune) completes on a rerun;
//! - the name is written to index.json last, under `names.lock`: until then
//!   nothing names the image. A pull holds the store lock shared, so pulls run
//!   side by side (same blob: same content, renamed atomically) and rmi/prune
//!   wait for them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use reqwest::header::HeaderValue;

use super::auth::{AuthFiles, Credential};
use super::http::{HttpError, MAX_MANIFEST, Repo};
use super::layout::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, pick_platform};
use super::registries::{Endpoint, RegistriesConf};
use super::retry::{Backoff, with_retries};
use super::store::{Compression, StopReader};
use super::token::{Challenge, RealmUse, realm_use, scope_for, token_from_body, token_url};
use super::{Digest, ImageError, ImageRef, PullFailure, Store, StoredImage, host_arch};

/// How a pull finds and authenticates to registries, and reports progress.
#[derive(Clone)]
pub struct PullOptions {
    pub registries: RegistriesConf,
    pub auth: AuthFiles,
    pub progress: Option<Arc<dyn PullProgress>>,
    /// Layers of one image downloaded at once.
    pub max_concurrent_downloads: usize,
    /// A pull still running then fails as [`PullFailure::TimedOut`] (`up
    /// --timeout` covers image resolution too).
    pub deadline: Option<std::time::Instant>,
    /// Tries of each registry request that fails transiently.
    pub backoff: Backoff,
}

impl Default for PullOptions {
    /// No registries.conf, credentials from the standard auth files.
    fn default() -> Self {
        PullOptions {
            registries: RegistriesConf::default(),
            auth: AuthFiles::from_env(),
            progress: None,
            max_concurrent_downloads: 4,
            deadline: None,
            backoff: Backoff::REGISTRY,
        }
    }
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("registries", &self.registries)
            .field("auth", &self.auth)
            .field("progress", &self.progress.is_some())
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl PullOptions {
    /// registries.conf from `registries_conf` (else the system's), auth files
    /// from the environment.
    pub fn system(registries_conf: Option<&Path>) -> Result<PullOptions, ImageError> {
        Ok(PullOptions {
            registries: RegistriesConf::load(registries_conf)?,
            ..PullOptions::default()
        })
    }
}

/// What happens to one layer of a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// Already in the store: not fetched.
    Present { size: u64 },
    /// Download starts.
    Start { size: u64 },
    /// Bytes received.
    Bytes(u64),
    /// Downloaded and verified; being unpacked.
    Unpacking,
    /// Stored and unpacked.
    Done,
}

/// Receives pull progress (called from the pull's threads).
pub trait PullProgress: Send + Sync {
    fn layer(&self, image: &str, layer: &Digest, event: LayerEvent);
}

/// Why one attempt (one endpoint) failed.
enum Fail {
    Pull {
        kind: PullFailure,
        detail: String,
        /// Connection-level: worth retrying over plain HTTP on an insecure registry.
        transport: bool,
    },
    /// The store itself failed (disk): no other endpoint would help.
    Store(ImageError),
}

impl Fail {
    fn new(kind: PullFailure, detail: impl Into<String>) -> Fail {
        Fail::Pull {
            kind,
            detail: one_line(&detail.into()),
            transport: false,
        }
    }
}

impl From<ImageError> for Fail {
    fn from(e: ImageError) -> Fail {
        match e {
            ImageError::Verify { blob, reason, .. } => Fail::new(
                PullFailure::DigestMismatch,
                format!("blob {blob}: {reason}"),
            ),
            ImageError::Invalid {
                source_name,
                reason,
            } if reason.contains("no manifest for") => Fail::new(
                PullFailure::NoMatchingPlatform,
                format!("{source_name}: {reason}"),
            ),
            e @ (ImageError::Invalid { .. }
            | ImageError::InvalidDigest { .. }
            | ImageError::UnsafeEntry { .. }) => Fail::new(PullFailure::Failed, e.to_string()),
            e => Fail::Store(e),
        }
    }
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An error and its sources, joined (reqwest's own text is terse).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    one_line(&s)
}

/// Reads what the download task sends; EOF when it stops sending.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// What a failed registry request means for the pull; `what` names what was asked for.
fn http_fail(e: HttpError, what: &str) -> Fail {
    use PullFailure::*;
    let kind = match &e {
        HttpError::Transport { .. } => Unreachable,
        HttpError::Status { status, code, .. } => match (code.as_deref(), status) {
            (Some("NAME_UNKNOWN"), _) => UnknownRepository,
            (Some("MANIFEST_UNKNOWN"), _) => UnknownManifest,
            (Some("UNAUTHORIZED" | "DENIED"), _) | (_, 401 | 403) => Unauthorized,
            (None, 404) => UnknownManifest,
            _ => Failed,
        },
        HttpError::TooLarge { .. } | HttpError::Protocol(_) => Failed,
    };
    Fail::Pull {
        kind,
        detail: one_line(&format!("{what}: {e}")),
        transport: matches!(e, HttpError::Transport { .. }),
    }
}

/// One pull from one endpoint over one scheme.
struct Attempt<'a> {
    store: &'a Store,
    image: String,
    reference: &'a ImageRef,
    /// The auth files' credentials for this registry and repository.
    credential: Option<Credential>,
    /// The registry's API, every body read with a bound.
    repo: Repo,
    /// Tries of the first request (a plain-HTTP fallback follows a failed
    /// HTTPS one at once, without retries).
    ping_backoff: Backoff,
    opts: &'a PullOptions,
    /// The Bearer challenge the current token answers, and when to renew it.
    renew: std::cell::RefCell<Option<(Challenge, std::time::Instant)>>,
    /// Set when the attempt is over: its blocking threads (blob writes,
    /// unpacking), which dropping their futures does not stop, stop soon.
    stop: Arc<AtomicBool>,
}

const MANIFEST_TYPES: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

async fn sleep(d: std::time::Duration) {
    tokio::time::sleep(d).await
}

impl Attempt<'_> {
    fn event(&self, layer: &Digest, e: LayerEvent) {
        if let Some(p) = &self.opts.progress {
            p.layer(&self.image, layer, e);
        }
    }

    /// Authenticates as `GET /v2/` asks, if it does (the requests that
    /// follow may still ask: see [`Attempt::request`]).
    async fn authorize(&self) -> Result<(), Fail> {
        let challenge = with_retries(self.ping_backoff, sleep, HttpError::transient, |_| {
            self.repo.ping()
        })
        .await
        .map_err(|e| http_fail(e, "GET /v2/"))?;
        match challenge {
            Some(c) => self.authenticate(&c, "GET /v2/").await,
            None => Ok(()),
        }
    }

    /// Answers the challenge `header` of a 401 to `what`: the Authorization
    /// header the registry asks for (distribution spec, "Token
    /// Authentication Specification"; docker's token flow), a bearer token
    /// from the token server it names or the credentials themselves for
    /// Basic. A token is renewed before it runs out ([`Attempt::request`]).
    async fn authenticate(&self, header: &str, what: &str) -> Result<(), Fail> {
        let challenge = Challenge::parse(header)
            .map_err(|e| Fail::new(PullFailure::Failed, format!("{what}: {e}")))?;
        let header = match &challenge {
            Challenge::Bearer { .. } => Some(self.bearer(&challenge).await?),
            Challenge::Basic => self.credential.as_ref().map(basic_auth).transpose()?,
            // The requests go anonymous; the registry's answers tell.
            Challenge::Other(_) => None,
        };
        self.repo.set_auth(header);
        Ok(())
    }

    /// A token for a Bearer challenge; remembers when to renew it.
    async fn bearer(&self, challenge: &Challenge) -> Result<HeaderValue, Fail> {
        let Challenge::Bearer {
            realm,
            service,
            scope,
        } = challenge
        else {
            unreachable!("only Bearer challenges have realms");
        };
        let what = format!("token from {}", realm.origin().ascii_serialization());
        // Checked for every challenge, a 401's as much as /v2/'s.
        let basic = match realm_use(self.repo.scheme(), self.repo.insecure(), realm)
            .map_err(|e| Fail::new(PullFailure::Failed, format!("{what}: {e}")))?
        {
            RealmUse::WithCredentials => self.credential.as_ref().map(basic_auth).transpose()?,
            RealmUse::Anonymous => None,
        };
        let scope = scope_for(scope.as_deref(), self.repo.repository());
        let url = token_url(realm, service.as_deref(), &scope);
        let body = with_retries(self.opts.backoff, sleep, HttpError::transient, |_| {
            self.repo.token(&url, basic.as_ref())
        })
        .await
        .map_err(|e| match http_fail(e, &what) {
            // The registry answered over this scheme: a token server
            // out of reach is no reason to try the registry over
            // plain HTTP.
            Fail::Pull { kind, detail, .. } => Fail::Pull {
                kind,
                detail,
                transport: false,
            },
            f => f,
        })?;
        let token = token_from_body(&body)
            .map_err(|e| Fail::new(PullFailure::Failed, format!("{what}: {e}")))?;
        let renew = std::time::Instant::now() + token.renew_after(std::time::SystemTime::now());
        *self.renew.borrow_mut() = Some((challenge.clone(), renew));
        let mut v = HeaderValue::from_str(&format!("Bearer {}", token.token)).map_err(|_| {
            Fail::new(
                PullFailure::Failed,
                format!("{what}: the token is not a header value"),
            )
        })?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// Runs a registry request, retrying what failed transiently. A token
    /// due for renewal is renewed first; a 401 that carries a challenge
    /// (the registry wants other or fresh credentials, for any request) is
    /// answered once and the request sent again, as containerd's docker
    /// authorizer and containers/image do; a second 401 is the answer. The
    /// outer error is the authentication's, the inner the request's.
    async fn request<T, Op, Fut>(&self, mut op: Op) -> Result<Result<T, HttpError>, Fail>
    where
        Op: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, HttpError>>,
    {
        let due = self
            .renew
            .borrow()
            .as_ref()
            .filter(|(_, at)| std::time::Instant::now() >= *at)
            .map(|(c, _)| c.clone());
        if let Some(c) = due {
            tracing::debug!(image = %self.image, "renewing the registry token");
            let header = self.bearer(&c).await?;
            self.repo.set_auth(Some(header));
        }
        let first = with_retries(self.opts.backoff, sleep, HttpError::transient, |_| op()).await;
        let challenge = match &first {
            Err(HttpError::Status {
                status: 401,
                challenge: Some(c),
                detail,
                ..
            }) => {
                tracing::debug!(image = %self.image, %detail, "the registry asks for authentication");
                c.clone()
            }
            _ => return Ok(first),
        };
        self.authenticate(&challenge, "HTTP 401").await?;
        Ok(with_retries(self.opts.backoff, sleep, HttpError::transient, |_| op()).await)
    }

    async fn manifest_raw(&self, reference: &str) -> Result<(Vec<u8>, Digest), Fail> {
        let body = self
            .request(|| self.repo.manifest(reference, MANIFEST_TYPES))
            .await?
            .map_err(|e| http_fail(e, &format!("manifest {reference}")))?;
        let d = Digest::of_bytes(&body);
        Ok((body, d))
    }

    /// Fetch a small blob (a config) into memory, verified; no more than its
    /// descriptor's size (at most [`MAX_MANIFEST`]) is read.
    async fn small_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, Fail> {
        let d = Digest::parse(desc.digest().as_ref())?;
        if desc.size() > MAX_MANIFEST {
            return Err(Fail::new(
                PullFailure::Failed,
                format!(
                    "config {d}: {} bytes, more than the {MAX_MANIFEST} accepted",
                    desc.size()
                ),
            ));
        }
        let ds = d.to_string();
        let buf = self
            .request(|| async {
                let (_, body, len) = self.repo.blob(&ds, 0).await?;
                super::http::read_capped(body, len, desc.size()).await
            })
            .await?
            .map_err(|e| match e {
                HttpError::TooLarge { .. } => Fail::new(
                    PullFailure::DigestMismatch,
                    format!(
                        "config {d}: longer than its descriptor's {} bytes",
                        desc.size()
                    ),
                ),
                e => http_fail(e, &format!("config {d}")),
            })?;
        let got = Digest::of_bytes(&buf);
        if buf.len() as u64 != desc.size() || got != d {
            return Err(Fail::new(
                PullFailure::DigestMismatch,
                format!(
                    "blob {d}: got {} bytes with digest {got}, descriptor says {} bytes",
                    buf.len(),
                    desc.size()
                ),
            ));
        }
        Ok(buf)
    }

    /// Streams blob `ld` from byte `sent` on into `tx`, until `size` bytes are
    /// sent. A retry resumes where the last try broke off: with a Range
    /// request, which a registry honours with a 206 (OCI distribution spec,
    /// "Pulling blobs"), or whose 200 is skipped up to there. Either way the
    /// store checks the digest over the whole blob.
    async fn blob_into(
        &self,
        ld: &Digest,
        size: u64,
        sent: &std::cell::Cell<u64>,
        tx: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<(), HttpError> {
        let (mut skip, body, _) = self.repo.blob(&ld.to_string(), sent.get()).await?;
        let mut body = std::pin::pin!(body);
        while sent.get() < size {
            let Some(b) = body.next().await else {
                return Err(HttpError::Transport {
                    detail: format!("the body ended after {} of {size} bytes", sent.get()),
                    timeout: false,
                });
            };
            let mut b = b?;
            if skip > 0 {
                let k = (skip as usize).min(b.len());
                b = b.slice(k..);
                skip -= k as u64;
            }
            // Exactly `size` bytes go to the store: a longer body cannot
            // change what it verifies.
            let room = (size - sent.get()) as usize;
            if b.len() > room {
                b = b.slice(..room);
            }
            if b.is_empty() {
                continue;
            }
            sent.set(sent.get() + b.len() as u64);
            self.event(ld, LayerEvent::Bytes(b.len() as u64));
            if tx.send(b).await.is_err() {
                // The store stopped reading: its error is the one to report.
                return Ok(());
            }
        }
        Ok(())
    }

    /// Download (unless stored), verify and unpack one layer.
    async fn layer(&self, desc: &Descriptor, diff_id: &str) -> Result<(), Fail> {
        let ld = Digest::parse(desc.digest().as_ref())?;
        let diff_id = Digest::parse(diff_id)?;
        let mt = desc.media_type().to_string();
        let compression = Compression::from_media_type(&mt).ok_or_else(|| {
            Fail::new(
                PullFailure::Failed,
                format!("layer {ld}: unsupported media type {mt:?}"),
            )
        })?;
        let size = desc.size();
        let store = self.store.clone();
        let image = self.image.clone();
        if store.has_blob(&ld) {
            self.event(&ld, LayerEvent::Present { size });
            if !store.layer_path(&diff_id).is_dir() {
                let (ld2, id2, stop) = (ld.clone(), diff_id.clone(), self.stop.clone());
                tokio::task::spawn_blocking(move || {
                    store.ensure_layer_until(&ld2, compression, &id2, &image, &stop)
                })
                .await
                .map_err(|e| Fail::new(PullFailure::Failed, e.to_string()))??;
            }
            return Ok(());
        }
        self.event(&ld, LayerEvent::Start { size });
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let progress = self.opts.progress.clone();
        let (ld2, id2, stop) = (ld.clone(), diff_id.clone(), self.stop.clone());
        let writer = tokio::task::spawn_blocking(move || {
            // The channel ends when the download's future is dropped; the
            // flag stops it too, wherever a read is.
            let mut r = StopReader {
                inner: ChannelReader {
                    rx,
                    cur: Bytes::new(),
                },
                stop: &stop,
            };
            store.put_blob(&mut r, Some((&ld2, size)), &image)?;
            drop(r);
            if let Some(p) = &progress {
                p.layer(&image, &ld2, LayerEvent::Unpacking);
            }
            store.ensure_layer_until(&ld2, compression, &id2, &image, &stop)
        });
        let sent = std::cell::Cell::new(0u64);
        let downloaded = self.request(|| self.blob_into(&ld, size, &sent, &tx)).await;
        drop(tx);
        let stored = writer
            .await
            .map_err(|e| Fail::new(PullFailure::Failed, e.to_string()))?;
        if let Err(e) = downloaded? {
            return Err(match e {
                HttpError::Transport { detail, .. } => Fail::Pull {
                    kind: PullFailure::Unreachable,
                    detail: one_line(&format!(
                        "layer {ld}: download broke off after {} bytes: {detail}",
                        sent.get()
                    )),
                    transport: false,
                },
                e => http_fail(e, &format!("layer {ld}")),
            });
        }
        stored?;
        self.event(&ld, LayerEvent::Done);
        Ok(())
    }

    /// The registry says MANIFEST_UNKNOWN: for a repository it does not have
    /// too, distribution 2.x among others. Its tag list tells which.
    async fn unknown_manifest(&self, detail: String, transport: bool) -> Fail {
        let kind = match self.repo.tags().await {
            Err(e) => match http_fail(e, "tags") {
                Fail::Pull {
                    kind: PullFailure::UnknownRepository,
                    ..
                } => PullFailure::UnknownRepository,
                _ => PullFailure::UnknownManifest,
            },
            Ok(_) => PullFailure::UnknownManifest,
        };
        Fail::Pull {
            kind,
            detail,
            transport,
        }
    }

    async fn run(self) -> Result<StoredImage, Fail> {
        self.authorize().await?;
        let image = &self.image;
        // The manifest, following an index to this host's platform.
        let top = match (&self.reference.digest, &self.reference.tag) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        };
        let (mut bytes, mut digest) = match self.manifest_raw(&top).await {
            Ok(found) => found,
            Err(Fail::Pull {
                kind: PullFailure::UnknownManifest,
                detail,
                transport,
            }) => return Err(self.unknown_manifest(detail, transport).await),
            Err(e) => return Err(e),
        };
        if let Some(want) = &self.reference.digest {
            if digest.to_string() != *want {
                return Err(Fail::new(
                    PullFailure::DigestMismatch,
                    format!("manifest is {digest}, the reference asks for {want}"),
                ));
            }
        }
        let mut media_type = media_type_of(&bytes)?;
        if media_type == OCI_INDEX || media_type == DOCKER_LIST {
            let index: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| Fail::new(PullFailure::Failed, format!("index {digest}: {e}")))?;
            let desc = pick_platform(&index, &format!("index {digest}")).map_err(|e| match e {
                ImageError::Invalid {
                    source_name,
                    reason,
                } => Fail::new(
                    PullFailure::NoMatchingPlatform,
                    format!("{source_name}: {reason}"),
                ),
                e => e.into(),
            })?;
            let want = Digest::parse(desc.digest().as_ref())?;
            let (b, d) = self.manifest_raw(&want.to_string()).await?;
            if d != want || b.len() as u64 != desc.size() {
                return Err(Fail::new(
                    PullFailure::DigestMismatch,
                    format!(
                        "manifest {want}: got {} bytes with digest {d}, the index says {} bytes",
                        b.len(),
                        desc.size()
                    ),
                ));
            }
            media_type = media_type_of(&b)?;
            if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
                return Err(Fail::new(
                    PullFailure::Failed,
                    format!("manifest {want}: the index points at a {media_type}"),
                ));
            }
            (bytes, digest) = (b, d);
        }
        let manifest: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Fail::new(PullFailure::Failed, format!("manifest {digest}: {e}")))?;
        // Before the config or any layer is fetched: a 4 MiB manifest can
        // list some 20 000 layers, which no rootfs could stack.
        super::check_layer_count(manifest.layers().len())
            .map_err(|e| Fail::new(PullFailure::Failed, format!("manifest {digest}: {e}")))?;
        let cbytes = self.small_blob(manifest.config()).await?;
        let config: ImageConfiguration = serde_json::from_slice(&cbytes).map_err(|e| {
            Fail::new(
                PullFailure::Failed,
                format!("config {}: {e}", manifest.config().digest()),
            )
        })?;
        super::exec_limits::check_config(&config)
            .map_err(|e| Fail::new(PullFailure::Failed, e.to_string()))?;
        if config.os().to_string() != "linux" {
            return Err(Fail::new(
                PullFailure::NoMatchingPlatform,
                format!("image is for os {}, not linux", config.os()),
            ));
        }
        if config.architecture().to_string() != host_arch() {
            tracing::warn!(image = %image, arch = %config.architecture(), host = host_arch(), "image is for another architecture");
        }
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(Fail::new(
                PullFailure::Failed,
                format!(
                    "config has {} rootfs.diff_ids for {} layers",
                    diff_ids.len(),
                    manifest.layers().len()
                ),
            ));
        }
        let jobs = manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(l, id)| self.layer(l, id));
        stream::iter(jobs)
            .buffer_unordered(self.opts.max_concurrent_downloads.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        // Config and manifest last, then the name.
        self.store.put_blob_bytes(&cbytes, image)?;
        self.store.put_blob_bytes(&bytes, image)?;
        let desc = super::import::descriptor(media_type, &digest, bytes.len() as u64)?;
        {
            let _names = self.store.lock_names()?;
            self.store.tag(self.reference, desc.clone())?;
        }
        Ok(self.store.stored(image, &desc)?)
    }
}

/// The manifest's media type: its `mediaType`, or by shape when absent.
fn media_type_of(bytes: &[u8]) -> Result<&'static str, Fail> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        schema_version: Option<i64>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let h: Head = serde_json::from_slice(bytes)
        .map_err(|e| Fail::new(PullFailure::Failed, format!("manifest is not JSON: {e}")))?;
    if h.schema_version != Some(2) {
        return Err(Fail::new(
            PullFailure::Failed,
            format!(
                "manifest schemaVersion {:?} is not supported (Docker schema 1 is deprecated; want schema 2 or OCI)",
                h.schema_version
            ),
        ));
    }
    Ok(match h.media_type.as_deref() {
        Some(OCI_MANIFEST) => OCI_MANIFEST,
        Some(DOCKER_MANIFEST) => DOCKER_MANIFEST,
        Some(OCI_INDEX) => OCI_INDEX,
        Some(DOCKER_LIST) => DOCKER_LIST,
        None if h.manifests.is_some() => OCI_INDEX,
        None => OCI_MANIFEST,
        Some(other) => {
            return Err(Fail::new(
                PullFailure::Failed,
                format!("unsupported manifest media type {other:?}"),
            ));
        }
    })
}

/// `Authorization: Basic base64(user:password)` (RFC 7617), marked
/// sensitive so that it is never logged.
fn basic_auth(c: &Credential) -> Result<HeaderValue, Fail> {
    use base64::Engine;
    let b =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    let mut v = HeaderValue::from_str(&format!("Basic {b}")).map_err(|_| {
        Fail::new(
            PullFailure::Unauthorized,
            "credentials are not a header value",
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The host that serves a registry's API: Docker Hub is named docker.io,
/// its API is at index.docker.io (what oci-client's `resolve_registry` gave
/// podshim before; docker itself uses registry-1.docker.io, the same API).
fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" => "index.docker.io",
        r => r,
    }
}

impl Store {
    /// Pull `reference` into the store: from the mirrors registries.conf
    /// gives it, in order, then from its (possibly rewritten) location.
    /// Returns the stored image, named `reference`.
    pub fn pull(
        &self,
        reference: &ImageRef,
        opts: &PullOptions,
    ) -> Result<StoredImage, ImageError> {
        let endpoints = opts.registries.endpoints(reference)?;
        // reqwest is built without a default rustls provider (no aws-lc):
        // ring is ours. Installing twice is harmless (the first one stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Taken before the runtime is made, so dropped after it: dropping a
        // runtime waits for its blocking threads, and one still unpacking a
        // layer (an attempt that ended at its deadline) writes
        // `layers/.tmp-*`, which prune must not sweep meanwhile.
        let _lock = self.lock_shared()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ImageError::Other(format!("pulling {reference}: tokio runtime: {e}")))?;
        let mut failures: Vec<(&Endpoint, PullFailure, String)> = Vec::new();
        for ep in &endpoints {
            match self.pull_endpoint(&rt, reference, ep, opts) {
                Ok(image) => return Ok(image),
                Err(Fail::Store(e)) => return Err(e),
                Err(Fail::Pull {
                    kind: PullFailure::TimedOut,
                    detail,
                    ..
                }) => {
                    // Out of time: no other endpoint gets any.
                    return Err(ImageError::Pull {
                        image: reference.to_string(),
                        registry: ep.registry.clone(),
                        kind: PullFailure::TimedOut,
                        detail,
                    });
                }
                Err(Fail::Pull { kind, detail, .. }) => {
                    tracing::debug!(image = %reference, registry = %ep, %kind, %detail, "pull attempt failed");
                    failures.push((ep, kind, detail));
                }
            }
        }
        let (ep, kind, mut detail) = failures.pop().expect("at least the location is tried");
        if !failures.is_empty() {
            let mirrors: Vec<String> = failures
                .iter()
                .map(|(e, k, d)| format!("{e}: {k}: {d}"))
                .collect();
            detail = format!("{detail} (mirrors tried first: {})", mirrors.join("; "));
        }
        let registry = if ep.registry == reference.registry {
            ep.registry.clone()
        } else {
            format!("{} (for {})", ep.registry, reference.registry)
        };
        Err(ImageError::Pull {
            image: reference.to_string(),
            registry,
            kind,
            detail,
        })
    }

    fn pull_endpoint(
        &self,
        rt: &tokio::runtime::Runtime,
        reference: &ImageRef,
        ep: &Endpoint,
        opts: &PullOptions,
    ) -> Result<StoredImage, Fail> {
        let credential = opts.auth.lookup(&ep.registry, &ep.repository)?;
        if let Some(c) = &credential {
            tracing::debug!(registry = %ep.registry, credential = ?c, "using credentials");
        }
        // containers/image's rule for insecure registries: HTTPS without
        // certificate checks first, plain HTTP when that cannot connect.
        let schemes: &[&str] = if ep.insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let n = schemes.len();
        let mut last = None;
        for (i, scheme) in schemes.iter().enumerate() {
            let stop = Arc::new(AtomicBool::new(false));
            let repo = Repo::new(scheme, api_host(&ep.registry), &ep.repository, ep.insecure)
                .map_err(|e| http_fail(e, "HTTP client"))?;
            let attempt = Attempt {
                store: self,
                image: reference.to_string(),
                reference,
                credential: credential.clone(),
                repo,
                ping_backoff: if i + 1 < n {
                    Backoff::NONE
                } else {
                    opts.backoff
                },
                opts,
                renew: std::cell::RefCell::new(None),
                stop: stop.clone(),
            };
            let run = async {
                match opts.deadline {
                    // The attempt is dropped at the deadline: its downloads
                    // stop, the store's writers see their input end and
                    // remove their temporary files.
                    Some(d) => tokio::time::timeout_at(d.into(), attempt.run())
                        .await
                        .unwrap_or_else(|_| {
                            Err(Fail::Pull {
                                kind: PullFailure::TimedOut,
                                detail: "the deadline passed before the pull finished".to_string(),
                                transport: false,
                            })
                        }),
                    None => attempt.run().await,
                }
            };
            let result = rt.block_on(run);
            // Over, whichever way: what still runs of it is for nothing.
            stop.store(true, Ordering::Relaxed);
            match result {
                Err(Fail::Pull {
                    transport: true, ..
                }) if i + 1 < n => continue,
                r => {
                    last = Some(r);
                    break;
                }
            }
        }
        last.expect("one protocol at least")
    }

    /// Pull an image as a manifest writes it: a short name (`nginx`) goes
    /// through registries.conf's aliases and unqualified-search registries,
    /// in order; the first that has it wins.
    pub fn pull_name(&self, written: &str, opts: &PullOptions) -> Result<StoredImage, ImageError> {
        let candidates = opts.registries.candidates(written)?;
        let mut errors = Vec::new();
        for c in &candidates {
            match self.pull(c, opts) {
                Ok(image) => return Ok(image),
                Err(e) => errors.push(e),
            }
        }
        if errors.len() == 1 {
            return Err(errors.pop().expect("one error"));
        }
        // Several search registries failed: report every one of them.
        let kinds: Vec<PullFailure> = errors
            .iter()
            .filter_map(|e| match e {
                ImageError::Pull { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect();
        let kind = match kinds.first() {
            Some(k) if kinds.iter().all(|x| x == k) => *k,
            _ => PullFailure::Failed,
        };
        Err(ImageError::Pull {
            image: written.to_string(),
            registry: opts.registries.unqualified_search.join(", "),
            kind,
            detail: errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    /// The stored image a manifest's name means: the first of its
    /// candidates (see [`Store::pull_name`]) that is in the store.
    pub fn get_name(
        &self,
        written: &str,
        registries: &RegistriesConf,
    ) -> Result<StoredImage, ImageError> {
        let candidates = registries.candidates(written)?;
        for c in &candidates {
            match self.get(c) {
                Ok(image) => return Ok(image),
                Err(ImageError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ImageError::NotFound(
            candidates
                .first()
                .map_or_else(|| written.to_string(), |c| c.to_string()),
        ))
    }
}
