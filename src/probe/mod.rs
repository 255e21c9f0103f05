//! The network probes (`httpGet`, `tcpSocket`) and httpGet lifecycle hooks, run
//! from the host side inside the pod's network namespace, as the kubelet's
//! `pkg/probe/{http,tcp}` and lifecycle handlers do them: the image needs no HTTP
//! client, and a loopback-only pod is probed like one with a pod IP. Each probe runs on a thread of its own that enters the namespace
//! (`setns(2)` affects only the calling thread), so its sockets are made there,
//! and ends within the probe's timeout.

mod grpc;
mod http;
mod tls;

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::model::{HttpGet, ProbeAction};

pub use http::{Answer, HttpRequest, Url};

/// The Kubernetes version whose API podshim implements: the kubelet's
/// `User-Agent` is `kube-probe/<major>.<minor>`.
pub const KUBE_VERSION: &str = "1.37";

/// A deadline so far away that it is none: the kubelet gives a postStart HTTP
/// hook no timeout of its own.
pub const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a probe found: `Ok` (its body or a warning) or `Err` (why it failed), as
/// the kubelet's probe results Success/Warning and Failure.
pub type Outcome = Result<String, String>;

/// A host name resolved before the thread enters the pod's namespace: the
/// kubelet resolves on the host, and the host's resolver may not be reachable
/// from inside the pod.
#[derive(Debug, Clone)]
pub struct Resolved {
    host: String,
    ips: Result<Vec<IpAddr>, String>,
}

impl Resolved {
    /// Resolves `host` (an IP literal needs no lookup).
    pub fn new(host: &str) -> Resolved {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ips = match bare.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![ip]),
            Err(_) => (bare, 0)
                .to_socket_addrs()
                .map(|a| a.map(|a| a.ip()).collect())
                .map_err(|e| format!("lookup {bare}: {e}")),
        };
        Resolved {
            host: bare.to_string(),
            ips,
        }
    }
}

/// Why a probe had no result at all (the kubelet throws such a result away):
/// the thread could not enter the pod's network namespace.
pub type Errored = String;

fn enter(netns: Option<&OwnedFd>) -> Result<(), Errored> {
    if let Some(ns) = netns {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("enter the pod's network namespace: {e}"))?;
    }
    Ok(())
}

/// Runs a network probe in `netns` (none: the supervisor's own, for a
/// hostNetwork pod). `pod_ip` is the default host. Blocks for at most `timeout`
/// (plus name resolution, done first, on the host); meant for a thread of its
/// own, which it moves into `netns`.
pub fn run_network(
    netns: Option<&OwnedFd>,
    action: &ProbeAction,
    pod_ip: &str,
    timeout: Duration,
) -> Result<Outcome, Errored> {
    let host = match action {
        ProbeAction::TcpSocket { host, .. } => host.as_deref().unwrap_or(pod_ip),
        ProbeAction::HttpGet(get) => get.host.as_deref().unwrap_or(pod_ip),
        ProbeAction::Grpc { .. } | ProbeAction::Exec { .. } => pod_ip,
    };
    let names = Resolved::new(host);
    enter(netns)?;
    let deadline = crate::teardown::far_after(Instant::now(), timeout);
    Ok(match action {
        ProbeAction::TcpSocket { port, .. } => dial(&names, *port, deadline).map(|_| String::new()),
        ProbeAction::HttpGet(get) => {
            let agent = format!("kube-probe/{KUBE_VERSION}");
            http::probe(&request(get, pod_ip, &agent, &names, None), deadline)
        }
        ProbeAction::Grpc { port, service } => grpc::check(
            &names,
            *port,
            service.as_deref().unwrap_or_default(),
            timeout,
        ),
        ProbeAction::Exec { .. } => Err("an exec probe runs in the container".into()),
    })
}

/// An httpGet lifecycle hook, run like [`run_network`]: any answer is a success
/// (the kubelet's `runHTTPHandler` fails only a request that fails). It gives up
/// once `cancel` is set (its container's run ended).
pub fn run_hook(
    netns: Option<&OwnedFd>,
    get: &HttpGet,
    pod_ip: &str,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<Outcome, Errored> {
    let names = Resolved::new(get.host.as_deref().unwrap_or(pod_ip));
    enter(netns)?;
    let agent = format!("kube-lifecycle/{KUBE_VERSION}");
    let deadline = crate::teardown::far_after(Instant::now(), timeout);
    Ok(http::fetch(
        &request(get, pod_ip, &agent, &names, Some(cancel)),
        deadline,
    )
    .map(|_| String::new()))
}

fn request<'a>(
    get: &'a HttpGet,
    pod_ip: &str,
    user_agent: &'a str,
    names: &'a Resolved,
    cancel: Option<&'a AtomicBool>,
) -> HttpRequest<'a> {
    let host = get.host.as_deref().unwrap_or(pod_ip);
    HttpRequest {
        url: Url::new(get.scheme, host, get.port, &get.path),
        headers: &get.headers,
        user_agent,
        names,
        cancel,
    }
}

/// `host:port`, with an IPv6 address in brackets (net.JoinHostPort).
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Connects to `names`' host on `port` before `deadline`, with Go's wording of
/// what went wrong (`dial tcp 10.88.0.5:80: connect: connection refused`).
pub(crate) fn dial(names: &Resolved, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let target = join_host_port(&names.host, port);
    let ips = names
        .ips
        .as_ref()
        .map_err(|e| format!("dial tcp {target}: {e}"))?;
    let mut last = None;
    for ip in ips {
        let addr = SocketAddr::new(*ip, port);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if e.kind() == io::ErrorKind::TimedOut => {
            format!("dial tcp {addr}: i/o timeout")
        }
        Some((addr, e)) => format!("dial tcp {addr}: connect: {}", errno_text(&e)),
        None => format!("dial tcp {target}: i/o timeout"),
    })
}

/// An I/O error as Go prints a syscall error: "connection refused", without
/// Rust's " (os error 111)".
pub(crate) fn errno_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    // Go lowercases strerror's first letter.
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
