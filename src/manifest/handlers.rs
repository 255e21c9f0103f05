//! Probes and lifecycle hooks: the API server's defaults (`SetDefaults_Probe`,
//! `SetDefaults_HTTPGetAction`) and checks (`validateProbe`, `validateHandler`,
//! `validateLifecycle`, the per-kind rules of `validateContainers`), with their
//! messages, lowered into [`model::Probes`] and [`model::Hooks`]. A child of
//! `validate`, whose `Errs` and port checks it shares.

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Errs, port_name, port_number};
use crate::model::{
    ContainerPort, Hook, Hooks, HttpGet, HttpHeader, HttpScheme, Probe, ProbeAction, ProbeKind,
    Probes, Signal,
};

/// The container's three probes.
pub(super) fn probes(
    errs: &mut Errs,
    base: &str,
    c: &k8s::Container,
    ports: &[ContainerPort],
) -> Probes {
    let mut one = |kind: ProbeKind, p: &Option<k8s::Probe>| {
        let field = match kind {
            ProbeKind::Startup => "startupProbe",
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Readiness => "readinessProbe",
        };
        p.as_ref()
            .and_then(|p| probe(errs, &format!("{base}.{field}"), kind, p, ports))
    };
    Probes {
        startup: one(ProbeKind::Startup, &c.startup_probe),
        liveness: one(ProbeKind::Liveness, &c.liveness_probe),
        readiness: one(ProbeKind::Readiness, &c.readiness_probe),
    }
}

/// `ValidateNonnegativeField`, then the default for 0 (or unset).
fn seconds(errs: &mut Errs, path: String, value: Option<i32>, default: u32) -> u32 {
    match value {
        Some(v) if v < 0 => {
            errs.invalid(path, v, "must be greater than or equal to 0");
            default
        }
        Some(v) if v > 0 => v as u32,
        _ => default,
    }
}

fn probe(
    errs: &mut Errs,
    base: &str,
    kind: ProbeKind,
    p: &k8s::Probe,
    ports: &[ContainerPort],
) -> Option<Probe> {
    let before = errs.0.len();
    let handlers = [
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
        p.grpc.is_some(),
    ];
    let action = one_handler(errs, base, &handlers)
        .then(|| action(errs, base, p, ports))
        .flatten();
    let initial_delay_seconds = seconds(
        errs,
        format!("{base}.initialDelaySeconds"),
        p.initial_delay_seconds,
        0,
    );
    let timeout_seconds = seconds(errs, format!("{base}.timeoutSeconds"), p.timeout_seconds, 1);
    let period_seconds = seconds(errs, format!("{base}.periodSeconds"), p.period_seconds, 10);
    let success_threshold = seconds(
        errs,
        format!("{base}.successThreshold"),
        p.success_threshold,
        1,
    );
    let failure_threshold = seconds(
        errs,
        format!("{base}.failureThreshold"),
        p.failure_threshold,
        3,
    );
    // A liveness or startup probe acts on its first success (validateContainers).
    if kind != ProbeKind::Readiness && success_threshold != 1 {
        errs.invalid(
            format!("{base}.successThreshold"),
            success_threshold,
            "must be 1",
        );
    }
    let mut termination_grace_period_seconds = None;
    if let Some(g) = p.termination_grace_period_seconds {
        let path = format!("{base}.terminationGracePeriodSeconds");
        if kind == ProbeKind::Readiness {
            // A readiness failure kills nothing.
            errs.invalid(path, g, "must not be set for readinessProbes");
        } else if g <= 0 {
            errs.invalid(path, g, "must be greater than 0");
        } else {
            termination_grace_period_seconds = Some(g as u64);
        }
    }
    if errs.0.len() != before {
        return None;
    }
    Some(Probe {
        action: action?,
        initial_delay_seconds,
        timeout_seconds,
        period_seconds,
        success_threshold,
        failure_threshold,
        termination_grace_period_seconds,
    })
}

/// validateHandler's count: exactly one of the handlers (`set`) is given.
fn one_handler(errs: &mut Errs, base: &str, set: &[bool]) -> bool {
    match set.iter().filter(|s| **s).count() {
        0 => errs.required_because(base, "must specify a handler type"),
        1 => return true,
        _ => errs.forbidden(base, "may not specify more than 1 handler type"),
    }
    false
}

/// An `exec` handler's command (validateExecAction: required).
fn exec_command(errs: &mut Errs, base: &str, exec: &k8s::ExecAction) -> Option<Vec<String>> {
    let command = exec.command.clone().unwrap_or_default();
    if command.is_empty() {
        errs.required(format!("{base}.exec.command"));
        return None;
    }
    Some(command)
}

/// The one handler.
fn action(
    errs: &mut Errs,
    base: &str,
    p: &k8s::Probe,
    ports: &[ContainerPort],
) -> Option<ProbeAction> {
    if let Some(exec) = &p.exec {
        return exec_command(errs, base, exec).map(|command| ProbeAction::Exec { command });
    }
    if let Some(h) = &p.http_get {
        return http_get(errs, &format!("{base}.httpGet"), h, ports).map(ProbeAction::HttpGet);
    }
    if let Some(g) = &p.grpc {
        let port = port_number(errs, &format!("{base}.grpc.port"), g.port);
        return Some(ProbeAction::Grpc {
            port: port?,
            service: g.service.clone().filter(|s| !s.is_empty()),
        });
    }
    if let Some(t) = &p.tcp_socket {
        let b = format!("{base}.tcpSocket");
        let port = port_of(errs, &format!("{b}.port"), &t.port, ports);
        let host = host(errs, &format!("{b}.host"), t.host.as_deref());
        return Some(ProbeAction::TcpSocket { host, port: port? });
    }
    None
}

/// A host to connect to: unset (the pod IP) or a name or address, which becomes
/// part of a request line and a `Host` header.
fn host(errs: &mut Errs, path: &str, host: Option<&str>) -> Option<String> {
    let host = host.filter(|h| !h.is_empty())?;
    if !host
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-.:[]%_".contains(&c))
    {
        errs.invalid_str(path, host, "must be a host name or an IP address");
        return None;
    }
    Some(host.to_string())
}

/// `ValidatePortNumOrName`; a name is resolved against the container's ports, as
/// the kubelet does before each probe (podshim refuses a name that matches none
/// rather than failing the probe forever).
fn port_of(
    errs: &mut Errs,
    path: &str,
    port: &IntOrString,
    ports: &[ContainerPort],
) -> Option<u16> {
    match port {
        IntOrString::Int(n) => port_number(errs, path, *n),
        IntOrString::String(name) => {
            let before = errs.0.len();
            port_name(errs, path, name);
            if errs.0.len() != before {
                return None;
            }
            match ports.iter().find(|p| p.name.as_deref() == Some(name)) {
                Some(p) => Some(p.container_port),
                None => {
                    errs.invalid_str(path, name, "must name one of the container's ports");
                    None
                }
            }
        }
    }
}

/// An `httpGet` handler (`validateHTTPGetAction`, with the defaults path `/` and
/// scheme HTTP).
fn http_get(
    errs: &mut Errs,
    b: &str,
    h: &k8s::HTTPGetAction,
    ports: &[ContainerPort],
) -> Option<HttpGet> {
    let scheme = match h.scheme.as_deref() {
        None | Some("") | Some("HTTP") => Some(HttpScheme::Http),
        Some("HTTPS") => Some(HttpScheme::Https),
        Some(other) => {
            errs.unsupported(format!("{b}.scheme"), other, &["HTTP", "HTTPS"]);
            None
        }
    };
    let port = port_of(errs, &format!("{b}.port"), &h.port, ports);
    let mut headers = Vec::new();
    for (i, header) in h.http_headers.iter().flatten().enumerate() {
        // IsHTTPHeaderName.
        if header.name.is_empty()
            || !header
                .name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        {
            errs.invalid_str(
                format!("{b}.httpHeaders[{i}].name"),
                &header.name,
                "a valid HTTP header must consist of alphanumeric characters or '-' \
                 (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
            );
        }
        // A value is sent as one header line: no line breaks in it.
        if header.value.contains(['\r', '\n', '\0']) {
            errs.invalid_str(
                format!("{b}.httpHeaders[{i}].value"),
                &header.value,
                "must not contain line breaks or NUL",
            );
        }
        headers.push(HttpHeader {
            name: header.name.clone(),
            value: header.value.clone(),
        });
    }
    let path = match h.path.as_deref() {
        None | Some("") => "/".to_string(),
        Some(p) => p.to_string(),
    };
    if path.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control()) {
        errs.invalid_str(
            format!("{b}.path"),
            &path,
            "must not contain spaces or control characters",
        );
    }
    let host = host(errs, &format!("{b}.host"), h.host.as_deref());
    Some(HttpGet {
        scheme: scheme?,
        host,
        port: port?,
        path,
        headers,
    })
}

/// `lifecycle`: the hooks, and `stopSignal` (which Kubernetes allows only with
/// `spec.os.name`, and on Linux only a Linux signal's `SIG` name).
pub(super) fn lifecycle(
    errs: &mut Errs,
    base: &str,
    c: &k8s::Container,
    ports: &[ContainerPort],
    os_linux: bool,
    grace: i64,
) -> (Hooks, Option<Signal>) {
    let Some(l) = &c.lifecycle else {
        return (Hooks::default(), None);
    };
    let b = format!("{base}.lifecycle");
    let hooks = Hooks {
        post_start: l
            .post_start
            .as_ref()
            .and_then(|h| hook(errs, &format!("{b}.postStart"), h, ports, grace)),
        pre_stop: l
            .pre_stop
            .as_ref()
            .and_then(|h| hook(errs, &format!("{b}.preStop"), h, ports, grace)),
    };
    let mut stop_signal = None;
    if let Some(name) = l.stop_signal.as_deref() {
        let path = format!("{b}.stopSignal");
        if !os_linux {
            errs.forbidden(
                path,
                "may not be set for containers with empty `spec.os.name`",
            );
        } else {
            match Signal::parse(name) {
                Ok(sig) if name.starts_with("SIG") => stop_signal = Some(sig),
                _ => errs.invalid_str(
                    path,
                    name,
                    "must be the name of a Linux signal, such as \"SIGTERM\" or \"SIGRTMIN+3\"",
                ),
            }
        }
    }
    (hooks, stop_signal)
}

fn hook(
    errs: &mut Errs,
    base: &str,
    h: &k8s::LifecycleHandler,
    ports: &[ContainerPort],
    grace: i64,
) -> Option<Hook> {
    let handlers = [
        h.exec.is_some(),
        h.http_get.is_some(),
        h.tcp_socket.is_some(),
        h.sleep.is_some(),
    ];
    if !one_handler(errs, base, &handlers) {
        return None;
    }
    if let Some(exec) = &h.exec {
        return exec_command(errs, base, exec).map(|command| Hook::Exec { command });
    }
    if let Some(g) = &h.http_get {
        return http_get(errs, &format!("{base}.httpGet"), g, ports).map(Hook::HttpGet);
    }
    if let Some(sleep) = &h.sleep {
        // validateSleepAction (with PodLifecycleSleepActionAllowZero): a sleep
        // may not outlast the pod's grace period.
        if sleep.seconds < 0 || sleep.seconds > grace {
            errs.invalid(
                format!("{base}.sleep"),
                sleep.seconds,
                &format!(
                    "must be non-negative and less than terminationGracePeriodSeconds ({grace})"
                ),
            );
            return None;
        }
        return Some(Hook::Sleep {
            seconds: sleep.seconds as u64,
        });
    }
    // A deprecated field the API keeps for compatibility: the kubelet fails
    // such a hook at run time; podshim says so before anything runs.
    errs.not_supported(
        format!("{base}.tcpSocket"),
        "tcpSocket is not a lifecycle handler (the kubelet fails it at run time)",
    );
    None
}
