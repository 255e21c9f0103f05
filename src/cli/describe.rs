//! `podshim describe POD`: a pod as `kubectl describe pod` shows it: status and
//! addresses, each container's state, last state, restarts, probes and their
//! last results, the pod's conditions, and its events.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::Global;
use crate::model::{HttpScheme, Probe, ProbeAction, ProbeKind};
use crate::outln;
use crate::pod;
use crate::run_plan::{RunContainer, RunPlan};
use crate::state::{ContainerState, ContainerStatus, PodState, parse_rfc3339};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pod (`NAME` or `NS/NAME`).
    pub pod: String,
}

/// Text a container wrote (termination messages, probe output) without the
/// characters that would drive or reorder the reader's terminal: control
/// characters and the bidirectional and invisible format characters (the
/// "Trojan Source" ones, CVE-2021-42574).
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            let format = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}');
            if (c.is_control() && c != '\n') || format {
                '?'
            } else {
                c
            }
        })
        .collect()
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    let (_, state) = pod::read_pod(&paths, &global.pod_key(&args.pod)?)?;
    // The probes' settings are in the run plan; without it (a pod directory
    // being removed) the rest is still worth showing.
    let plan = crate::run_plan::read(&state.bundle_dir).ok();
    outln!(
        "{}",
        printable(&render(&state, plan.as_ref(), SystemTime::now()))
    );
    Ok(())
}

/// kubectl's short durations: `45s`, `3m`, `2h`, `4d`.
fn short(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn since(t: &str, now: SystemTime) -> String {
    parse_rfc3339(t)
        .and_then(|t| now.duration_since(t).ok())
        .map(short)
        .unwrap_or_else(|| "<unknown>".into())
}

/// kubectl's DescribeProbe: `http-get http://:8080/healthz delay=0s timeout=1s
/// period=10s #success=1 #failure=3`.
fn probe_line(p: &Probe) -> String {
    let what = match &p.action {
        ProbeAction::Exec { command } => format!("exec [{}]", command.join(" ")),
        ProbeAction::HttpGet(get) => {
            let scheme = match get.scheme {
                HttpScheme::Http => "http",
                HttpScheme::Https => "https",
            };
            format!(
                "http-get {scheme}://{}:{}{}",
                get.host.as_deref().unwrap_or_default(),
                get.port,
                get.path
            )
        }
        ProbeAction::TcpSocket { host, port } => {
            format!("tcp-socket {}:{port}", host.as_deref().unwrap_or_default())
        }
        ProbeAction::Grpc { port, service } => {
            format!(
                "grpc <pod>:{port} {}",
                service.as_deref().unwrap_or_default()
            )
        }
    };
    format!(
        "{what} delay={}s timeout={}s period={}s #success={} #failure={}",
        p.initial_delay_seconds,
        p.timeout_seconds,
        p.period_seconds,
        p.success_threshold,
        p.failure_threshold
    )
}

fn state_lines(out: &mut String, label: &str, state: &ContainerState) {
    match state {
        ContainerState::Waiting { reason } => {
            let _ = writeln!(out, "    {label:<16}Waiting");
            let _ = writeln!(out, "      Reason:       {reason}");
        }
        ContainerState::Running { started_at, .. } => {
            let _ = writeln!(out, "    {label:<16}Running");
            let _ = writeln!(out, "      Started:      {started_at}");
        }
        ContainerState::Terminated {
            exit_code,
            reason,
            message,
            started_at,
            finished_at,
        } => {
            let _ = writeln!(out, "    {label:<16}Terminated");
            let _ = writeln!(out, "      Reason:       {reason}");
            if let Some(m) = message {
                let m = m.trim_end().replace('\n', "\n                    ");
                let _ = writeln!(out, "      Message:      {m}");
            }
            let _ = writeln!(out, "      Exit Code:    {exit_code}");
            let _ = writeln!(out, "      Started:      {started_at}");
            let _ = writeln!(out, "      Finished:     {finished_at}");
        }
    }
}

fn container(out: &mut String, pod: &PodState, c: &ContainerStatus, run: Option<&RunContainer>) {
    let runtime = pod
        .runtime
        .program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runc".into());
    let _ = writeln!(out, "  {}:", c.name);
    let _ = writeln!(out, "    Container ID:   {runtime}://{}", c.id);
    let _ = writeln!(
        out,
        "    Image:          {}",
        c.image.as_deref().unwrap_or_default()
    );
    state_lines(out, "State:", &c.state);
    if let Some(last) = &c.last_state {
        state_lines(out, "Last State:", last);
    }
    let _ = writeln!(out, "    Ready:          {}", title(c.ready));
    let _ = writeln!(out, "    Restart Count:  {}", c.restart_count);
    if let Some(started) = c.started {
        let _ = writeln!(out, "    Started:        {}", title(started));
    }
    let _ = writeln!(out, "    Stop Signal:    {}", c.stop_signal.name());
    if let Some(r) = &c.resources {
        resource_lines(out, "Limits:", r.cpu_limit_millis, r.memory_limit_bytes);
        resource_lines(
            out,
            "Requests:",
            r.cpu_request_millis,
            r.memory_request_bytes,
        );
    }
    if let Some(u) = &c.user {
        let groups: Vec<String> = u.supplemental_groups.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "    User:           uid={} gid={} groups={}",
            u.uid,
            u.gid,
            groups.join(",")
        );
    }
    for kind in ProbeKind::ALL {
        let Some(p) = run.and_then(|r| r.probes.get(kind)) else {
            continue;
        };
        let _ = writeln!(
            out,
            "    {:<16}{}",
            format!("{}:", kind.title()),
            probe_line(p)
        );
        match c.probes.iter().find(|r| r.probe == kind) {
            Some(r) if r.success => {
                let _ = writeln!(out, "      Last Result:  Success since {}", r.since);
            }
            Some(r) => {
                let _ = writeln!(
                    out,
                    "      Last Result:  Failure since {}: {}",
                    r.since,
                    r.message.trim_end()
                );
            }
            None => {
                let _ = writeln!(out, "      Last Result:  <none yet>");
            }
        }
    }
}

/// kubectl's Limits/Requests block: CPU in cores or millicores, memory in the
/// largest binary unit that divides it.
fn resource_lines(out: &mut String, title: &str, cpu: Option<u64>, memory: Option<u64>) {
    if cpu.is_none() && memory.is_none() {
        return;
    }
    let _ = writeln!(out, "    {title}");
    if let Some(m) = cpu {
        let shown = if m % 1000 == 0 {
            (m / 1000).to_string()
        } else {
            format!("{m}m")
        };
        let _ = writeln!(out, "      cpu:     {shown}");
    }
    if let Some(b) = memory {
        let shown = crate::model::binary_si(b);
        let _ = writeln!(out, "      memory:  {shown}");
    }
}

fn title(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The whole description.
pub fn render(pod: &PodState, plan: Option<&RunPlan>, now: SystemTime) -> String {
    use crate::model::ContainerKind;
    let mut out = String::new();
    let _ = writeln!(out, "Name:             {}", pod.name);
    let _ = writeln!(out, "Namespace:        {}", pod.namespace);
    let _ = writeln!(out, "UID:              {}", pod.uid);
    let _ = writeln!(out, "Start Time:       {}", pod.created_at);
    let _ = writeln!(out, "Status:           {:?}", pod.phase);
    if let Some(r) = &pod.reason {
        let _ = writeln!(out, "Reason:           {r}");
    }
    if let Some(m) = &pod.message {
        let m = m.trim_end().replace('\n', "\n                  ");
        let _ = writeln!(out, "Message:          {m}");
    }
    let _ = writeln!(
        out,
        "IP:               {}",
        pod.pod_ip.as_deref().unwrap_or("")
    );
    if !pod.pod_ips.is_empty() {
        let _ = writeln!(out, "IPs:");
        for ip in &pod.pod_ips {
            let _ = writeln!(out, "  IP:  {}", ip.ip);
        }
    }
    let run_of = |c: &ContainerStatus| plan.and_then(|p| p.all().find(|r| r.id == c.id));
    let inits: Vec<&ContainerStatus> = pod
        .containers
        .iter()
        .filter(|c| matches!(c.kind, ContainerKind::Init | ContainerKind::Sidecar))
        .collect();
    if !inits.is_empty() {
        let _ = writeln!(out, "Init Containers:");
        for c in inits {
            container(&mut out, pod, c, run_of(c));
        }
    }
    let _ = writeln!(out, "Containers:");
    for c in pod
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::App)
    {
        container(&mut out, pod, c, run_of(c));
    }
    let _ = writeln!(out, "Conditions:");
    let _ = writeln!(out, "  Type                        Status");
    for c in &pod.conditions {
        let _ = writeln!(out, "  {:<28}{}", c.kind, c.status);
    }
    if let Some(qos) = pod.qos_class {
        let _ = writeln!(out, "QoS Class:                   {qos:?}");
    }
    if let Some(cgroup) = &pod.cgroup {
        let _ = writeln!(out, "Cgroup:                      {cgroup}");
    }
    if let Some(u) = &pod.user_namespace {
        let _ = writeln!(
            out,
            "User Namespace:              host ids {}-{} (root inside is {})",
            u.host_id,
            u64::from(u.host_id) + u64::from(u.size) - 1,
            u.host_id
        );
    }
    if pod.events.is_empty() {
        let _ = write!(out, "Events:           <none>");
        return out;
    }
    let _ = writeln!(out, "Events:");
    let rows: Vec<[String; 5]> = pod
        .events
        .iter()
        .map(|e| {
            let age = if e.count > 1 {
                format!(
                    "{} (x{} over {})",
                    since(&e.last_timestamp, now),
                    e.count,
                    since(&e.first_timestamp, now)
                )
            } else {
                since(&e.last_timestamp, now)
            };
            let from = match &e.container {
                Some(c) => format!("podshim ({c})"),
                None => "podshim".into(),
            };
            [
                e.kind.clone(),
                e.reason.clone(),
                age,
                from,
                e.message.clone(),
            ]
        })
        .collect();
    let header = ["Type", "Reason", "Age", "From", "Message"];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5], out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", parts.join("  ").trim_end());
    };
    line(header, &mut out);
    let dashes: Vec<String> = header.iter().map(|h| "-".repeat(h.len())).collect();
    line(
        [&dashes[0], &dashes[1], &dashes[2], &dashes[3], &dashes[4]],
        &mut out,
    );
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]], &mut out);
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HttpGet, Probe};

    #[test]
    fn probes_are_described_as_kubectl_does() {
        let p = |action| Probe {
            action,
            initial_delay_seconds: 5,
            timeout_seconds: 1,
            period_seconds: 10,
            success_threshold: 1,
            failure_threshold: 3,
            termination_grace_period_seconds: None,
        };
        assert_eq!(
            probe_line(&p(ProbeAction::HttpGet(HttpGet {
                scheme: HttpScheme::Http,
                host: None,
                port: 8080,
                path: "/healthz".into(),
                headers: vec![],
            }))),
            "http-get http://:8080/healthz delay=5s timeout=1s period=10s #success=1 #failure=3"
        );
        assert_eq!(
            probe_line(&p(ProbeAction::TcpSocket {
                host: None,
                port: 5432
            })),
            "tcp-socket :5432 delay=5s timeout=1s period=10s #success=1 #failure=3"
        );
        assert_eq!(
            probe_line(&p(ProbeAction::Exec {
                command: vec!["cat".into(), "/ready".into()]
            })),
            "exec [cat /ready] delay=5s timeout=1s period=10s #success=1 #failure=3"
        );
    }

    #[test]
    fn resources_are_described_in_kubectls_units() {
        let mut out = String::new();
        resource_lines(&mut out, "Limits:", Some(1500), Some(128 << 20));
        resource_lines(&mut out, "Requests:", Some(2000), Some(1000));
        resource_lines(&mut out, "Limits:", None, None);
        assert_eq!(
            out,
            "    Limits:\n      cpu:     1500m\n      memory:  128Mi\n    Requests:\n      cpu:     2\n      memory:  1000\n"
        );
    }

    #[test]
    fn what_containers_wrote_cannot_drive_the_terminal() {
        assert_eq!(printable("ok\n\x1b[2Jgone\r"), "ok\n?[2Jgone?");
        assert_eq!(printable("a\u{202e}b\u{2066}c"), "a?b?c");
    }

    #[test]
    fn ages_are_kubectls_short_durations() {
        assert_eq!(short(Duration::from_secs(45)), "45s");
        assert_eq!(short(Duration::from_secs(600)), "10m");
        assert_eq!(short(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(short(Duration::from_secs(5 * 86_400)), "5d");
    }
}
