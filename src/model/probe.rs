//! A container's probes, defaulted and checked as the API server does
//! (`SetDefaults_Probe`, `validateProbe`): what the supervisor runs. They travel in
//! the run plan, since the supervisor reads nothing else of the pod.

use serde::{Deserialize, Serialize};

/// The three probes of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
}

impl Probes {
    pub fn is_empty(&self) -> bool {
        self.startup.is_none() && self.liveness.is_none() && self.readiness.is_none()
    }

    pub fn get(&self, kind: ProbeKind) -> Option<&Probe> {
        match kind {
            ProbeKind::Startup => self.startup.as_ref(),
            ProbeKind::Liveness => self.liveness.as_ref(),
            ProbeKind::Readiness => self.readiness.as_ref(),
        }
    }
}

/// Which probe (`pkg/kubelet/prober/results`' probe types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Startup,
        ProbeKind::Liveness,
        ProbeKind::Readiness,
    ];

    /// As the kubelet words its events ("Liveness probe failed: ...").
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

/// One probe with the API server's defaults applied: timeout 1 s, period 10 s,
/// success 1, failure 3 (a 0 in the manifest means the default, as there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    pub action: ProbeAction,
    pub initial_delay_seconds: u32,
    pub timeout_seconds: u32,
    pub period_seconds: u32,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// The probe's own grace period for the kill a failure causes (KEP-2238);
    /// the pod's otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u64>,
}

/// What a probe does. Named ports are already resolved against the container's
/// `ports` (the kubelet's `findPortByName`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ProbeAction {
    /// Run in the container; exit 0 is success.
    Exec { command: Vec<String> },
    /// An HTTP GET from the host side in the pod's network namespace; 200-399 is
    /// success.
    HttpGet(HttpGet),
    /// A TCP connection from the host side in the pod's network namespace.
    TcpSocket {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        port: u16,
    },
    /// `grpc.health.v1.Health/Check` on the pod IP, from the host side in the
    /// pod's network namespace; SERVING is success.
    Grpc {
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
    },
}

/// An `httpGet` handler of a probe or a lifecycle hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGet {
    pub scheme: HttpScheme,
    /// Defaults to the pod IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub port: u16,
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpScheme {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// A container's lifecycle hooks (`lifecycle.postStart`, `lifecycle.preStop`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_start: Option<Hook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.post_start.is_none() && self.pre_stop.is_none()
    }

    pub fn get(&self, kind: HookKind) -> Option<&Hook> {
        match kind {
            HookKind::PostStart => self.post_start.as_ref(),
            HookKind::PreStop => self.pre_stop.as_ref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HookKind {
    PostStart,
    PreStop,
}

impl HookKind {
    /// As in the kubelet's events (`FailedPostStartHook`).
    pub fn title(self) -> &'static str {
        match self {
            HookKind::PostStart => "PostStart",
            HookKind::PreStop => "PreStop",
        }
    }
}

/// What a lifecycle hook does (`LifecycleHandler`; its deprecated `tcpSocket`
/// is refused, as the kubelet fails it at run time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Hook {
    /// Run in the container; exit 0 is success.
    Exec { command: Vec<String> },
    /// An HTTP GET from the host side in the pod's network namespace: any
    /// answer is a success, only a failed request is not (the kubelet's
    /// `runHTTPHandler`).
    HttpGet(HttpGet),
    /// Wait (KEP-3960).
    Sleep { seconds: u64 },
}
