//! `podshim ps [POD] [-o wide|json]`: pods and their containers.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Result;

use super::Global;
use crate::model::ContainerKind;
use crate::outln;
use crate::pod;
use crate::state::{ContainerState, PodState, parse_rfc3339};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pod (`NAME` or `NS/NAME`); all pods when omitted.
    pub pod: Option<String>,
    /// Output format: `wide` adds ids and images; `json` prints the state records.
    #[arg(short, long, value_parser = ["wide", "json"])]
    pub output: Option<String>,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let paths = global.paths();
    let mut pods = match &args.pod {
        Some(p) => vec![pod::read_pod(&paths, &global.pod_key(p)?)?],
        None => pod::all_pods(&paths),
    };
    // Grouped by the workload that wants them, bare pods first.
    pods.sort_by_key(|(_, s)| {
        let owner = s
            .origin
            .workload
            .as_ref()
            .map(|w| (w.kind.clone(), w.name.clone()));
        (owner, s.namespace.clone(), s.name.clone())
    });
    match args.output.as_deref() {
        Some("json") => {
            let states: Vec<&PodState> = pods.iter().map(|(_, s)| s).collect();
            outln!("{}", serde_json::to_string_pretty(&states)?);
        }
        other => {
            print_pods(&pods, other == Some("wide"));
            if args.pod.is_none() {
                print_jobs(&paths);
            }
        }
    }
    Ok(())
}

fn age(since: &str) -> String {
    let Some(t) = parse_rfc3339(since) else {
        return "-".into();
    };
    let secs = SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Why the container's current or last run ended, when podshim or the
/// container said (a failed probe or hook, the termination message): its
/// first line, shortened, without control characters.
fn reason(c: &crate::state::ContainerStatus) -> String {
    let message = match (&c.state, &c.last_state) {
        (ContainerState::Terminated { message, .. }, _) => message.as_deref(),
        (_, Some(ContainerState::Terminated { message, .. })) => message.as_deref(),
        _ => None,
    };
    let Some(line) = message.and_then(|m| m.lines().find(|l| !l.trim().is_empty())) else {
        return "-".into();
    };
    let line = super::describe::printable(line.trim());
    if line.chars().count() > 60 {
        format!("{}...", line.chars().take(57).collect::<String>())
    } else {
        line
    }
}

pub fn print_pods(pods: &[(PathBuf, PodState)], wide: bool) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec![
        "POD",
        "OWNER",
        "CONTAINER",
        "KIND",
        "STATE",
        "READY",
        "RESTARTS",
        "EXIT",
        "AGE",
        "REASON",
    ];
    if wide {
        header.extend(["ID", "IMAGE", "IP"]);
    }
    for (dir, pod) in pods {
        let apps: Vec<_> = pod
            .containers
            .iter()
            .filter(|c| matches!(c.kind, ContainerKind::App | ContainerKind::Sidecar))
            .collect();
        let ready = apps.iter().filter(|c| c.ready).count();
        let restarts: u32 = pod.containers.iter().map(|c| c.restart_count).sum();
        let owner = pod.origin.workload.as_ref().map_or("-".to_string(), |w| {
            format!("{}/{}", w.kind.to_lowercase(), w.name)
        });
        let mut row = vec![
            format!("{}/{}", pod.namespace, pod.name),
            owner,
            "-".into(),
            "pod".into(),
            pod::list::phase(dir, pod),
            format!("{ready}/{}", apps.len()),
            restarts.to_string(),
            "-".into(),
            age(&pod.created_at),
            pod.reason.clone().unwrap_or_else(|| "-".into()),
        ];
        if wide {
            let ip = pod.pod_ip.clone().unwrap_or_else(|| "-".into());
            row.extend([pod.pod_id.clone(), "-".into(), ip]);
        }
        rows.push(row);
        for c in pod
            .containers
            .iter()
            .filter(|c| c.kind != ContainerKind::Infra)
        {
            let (state, exit, since) = match &c.state {
                ContainerState::Waiting { reason } => (
                    format!("Waiting ({reason})"),
                    "-".to_string(),
                    pod.created_at.clone(),
                ),
                ContainerState::Running { started_at, .. } => {
                    ("Running".into(), "-".into(), started_at.clone())
                }
                ContainerState::Terminated {
                    exit_code,
                    reason,
                    finished_at,
                    ..
                } => (
                    format!("Terminated ({reason})"),
                    exit_code.to_string(),
                    finished_at.clone(),
                ),
            };
            let exit = match (&c.state, &c.last_state) {
                (ContainerState::Terminated { .. }, _) => exit,
                (_, Some(ContainerState::Terminated { exit_code, .. })) => {
                    format!("{exit_code} (last)")
                }
                _ => exit,
            };
            let mut row = vec![
                format!("{}/{}", pod.namespace, pod.name),
                "-".into(),
                c.name.clone(),
                c.kind.as_str().into(),
                state,
                c.ready.to_string(),
                c.restart_count.to_string(),
                exit,
                age(&since),
                reason(c),
            ];
            if wide {
                row.extend([
                    c.id.clone(),
                    c.image.clone().unwrap_or_default(),
                    "-".into(),
                ]);
            }
            rows.push(row);
        }
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", parts.join("  ").trim_end());
    };
    line(header.clone());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// The Jobs under the state root, as `kubectl get jobs` shows them.
fn print_jobs(paths: &crate::paths::Paths) {
    let jobs = pod::job::all_jobs(paths);
    if jobs.is_empty() {
        return;
    }
    let mut rows = vec![vec![
        "JOB".to_string(),
        "COMPLETIONS".into(),
        "ACTIVE".into(),
        "FAILED".into(),
        "STATUS".into(),
        "AGE".into(),
    ]];
    for (_, record, status) in jobs {
        let c = &status.counts;
        let want = record
            .completions
            .map_or("-".to_string(), |n| n.to_string());
        let state = match &status.condition {
            Some(o) if o.complete() => "Complete".to_string(),
            Some(o) => format!("Failed ({})", o.reason.as_deref().unwrap_or("-")),
            None => "Running".into(),
        };
        rows.push(vec![
            format!("{}/{}", record.namespace, record.name),
            format!("{}/{want}", c.succeeded),
            c.active.to_string(),
            c.failed.to_string(),
            state,
            age(&status.start_time),
        ]);
    }
    outln!();
    super::out::print_table(&rows);
}
