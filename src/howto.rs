//! The how-to-run that `generate` writes beside the bundles: `run.sh` and `stop.sh`
//! (plain runc, in Kubernetes order) and a README a person can follow by hand.
//! Pure text from the plan, so it is golden-tested with the bundles.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::model::ContainerKind;
use crate::translate::PodPlan;

/// What the bundle writer did that the scripts must be able to redo or undo.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Setup {
    /// (target, options) overlay mounts.
    pub overlays: Vec<(PathBuf, String)>,
    /// (target, options) tmpfs mounts.
    pub tmpfs: Vec<(PathBuf, String)>,
    /// hostPath entries to create: (path, is_dir).
    pub host_paths: Vec<(PathBuf, bool)>,
}

/// Single-quotes `s` for sh.
fn q(s: impl AsRef<str>) -> String {
    format!("'{}'", s.as_ref().replace('\'', r"'\''"))
}

fn qp(p: &Path) -> String {
    q(p.display().to_string())
}

fn kind_label(kind: ContainerKind) -> &'static str {
    match kind {
        ContainerKind::Infra => "infra (pause)",
        ContainerKind::Init => "init container",
        ContainerKind::Sidecar => "sidecar (init, restartPolicy: Always)",
        ContainerKind::App => "app container",
    }
}

pub fn run_script(plan: &PodPlan, dir: &Path, ns_link: &Path, setup: &Setup) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh");
    let _ = writeln!(
        s,
        "# Runs pod {}/{} with plain runc, in Kubernetes order. Written by `podshim generate`.",
        plan.namespace, plan.name
    );
    let _ = writeln!(
        s,
        "# Another runc-compatible runtime: RUNC=/path/to/youki ./run.sh"
    );
    let _ = writeln!(s, "set -eu");
    let _ = writeln!(s, "RUNC=\"${{RUNC:-runc}}\"");
    let _ = writeln!(s, "DIR={}", qp(dir));
    let _ = writeln!(s, "mkdir -p \"$DIR/logs\"");
    let _ = writeln!(
        s,
        "\n# 1. Mounts (already made by generate; redone after a reboot)."
    );
    for (target, options) in &setup.tmpfs {
        let _ = writeln!(
            s,
            "mountpoint -q {t} || mount -t tmpfs -o {o} tmpfs {t}",
            t = qp(target),
            o = q(options)
        );
    }
    for (target, options) in &setup.overlays {
        let _ = writeln!(
            s,
            "mountpoint -q {t} || mount -t overlay -o {o} overlay {t}",
            t = qp(target),
            o = q(options)
        );
    }
    if !setup.host_paths.is_empty() {
        let _ = writeln!(
            s,
            "\n# hostPath volumes of type DirectoryOrCreate / FileOrCreate."
        );
        for (path, is_dir) in &setup.host_paths {
            if *is_dir {
                let _ = writeln!(s, "[ -e {p} ] || mkdir -p -m 0755 {p}", p = qp(path));
            } else {
                let _ = writeln!(
                    s,
                    "[ -e {p} ] || install -m 0644 /dev/null {p}",
                    p = qp(path)
                );
            }
        }
    }
    let infra = &plan.infra;
    let _ = writeln!(
        s,
        "\n# 2. The infra container creates the pod's namespaces."
    );
    let _ = writeln!(
        s,
        "\"$RUNC\" create --bundle \"$DIR/bundles/{id}\" {qid} </dev/null >\"$DIR/logs/POD.log\" 2>&1",
        id = infra.id,
        qid = q(&infra.id)
    );
    let _ = writeln!(s, "\"$RUNC\" start {}", q(&infra.id));
    let _ = writeln!(
        s,
        "pid=$(\"$RUNC\" state {} | sed -n 's/^ *\"pid\": *\\([0-9]*\\).*/\\1/p')",
        q(&infra.id)
    );
    let _ = writeln!(
        s,
        "# Every other bundle joins the namespaces through this link."
    );
    let _ = writeln!(s, "ln -sfn \"/proc/$pid/ns\" {}", qp(ns_link));
    let _ = writeln!(
        s,
        "# runc brings lo up in a new network namespace, other runtimes may not: do it here."
    );
    let _ = writeln!(
        s,
        "if command -v nsenter >/dev/null && command -v ip >/dev/null; then nsenter --net=\"/proc/$pid/ns/net\" ip link set lo up; fi"
    );
    let _ = writeln!(
        s,
        "\n# 3. Init containers, one at a time; each must exit 0. Sidecars start in their place."
    );
    let mut apps_started = false;
    for c in &plan.containers {
        let log = format!("\"$DIR/logs/{}.log\"", c.name);
        match c.kind {
            ContainerKind::Init => {
                let _ = writeln!(
                    s,
                    "rc=0; \"$RUNC\" run --bundle \"$DIR/bundles/{id}\" {qid} </dev/null >{log} 2>&1 || rc=$?",
                    id = c.id,
                    qid = q(&c.id)
                );
                let _ = writeln!(
                    s,
                    "\"$RUNC\" delete -f {} >/dev/null 2>&1 || true",
                    q(&c.id)
                );
                let _ = writeln!(
                    s,
                    "if [ \"$rc\" != 0 ]; then echo \"init container {} exited $rc; see {}\" >&2; exit 1; fi",
                    c.name,
                    log.replace('"', "")
                );
            }
            ContainerKind::Sidecar | ContainerKind::App => {
                if c.kind == ContainerKind::App && !apps_started {
                    apps_started = true;
                    let _ = writeln!(s, "\n# 4. App containers, detached.");
                }
                let _ = writeln!(
                    s,
                    "\"$RUNC\" run -d --bundle \"$DIR/bundles/{id}\" {qid} </dev/null >{log} 2>&1",
                    id = c.id,
                    qid = q(&c.id)
                );
            }
            ContainerKind::Infra => {}
        }
    }
    let _ = writeln!(
        s,
        "\necho \"pod {}/{} is running; logs in $DIR/logs; stop it with $DIR/stop.sh\"",
        plan.namespace, plan.name
    );
    s
}

pub fn stop_script(plan: &PodPlan, dir: &Path, ns_link: &Path, setup: &Setup) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh");
    let _ = writeln!(
        s,
        "# Stops pod {}/{}: app containers, then sidecars in reverse, then infra; each gets",
        plan.namespace, plan.name
    );
    let _ = writeln!(
        s,
        "# its stop signal, then SIGKILL after terminationGracePeriodSeconds. Then unmounts."
    );
    let _ = writeln!(s, "set -u");
    let _ = writeln!(s, "RUNC=\"${{RUNC:-runc}}\"");
    let _ = writeln!(s, "DIR={}", qp(dir));
    let _ = writeln!(s, "GRACE={}", plan.termination_grace_period_seconds);
    let _ = writeln!(s, "stop() {{");
    let _ = writeln!(s, "  \"$RUNC\" state \"$1\" >/dev/null 2>&1 || return 0");
    let _ = writeln!(s, "  \"$RUNC\" kill \"$1\" \"$2\" 2>/dev/null");
    let _ = writeln!(s, "  i=0");
    let _ = writeln!(
        s,
        "  while [ $i -lt $((GRACE * 10)) ] && \"$RUNC\" state \"$1\" 2>/dev/null | grep -q '\"running\"'; do sleep 0.1; i=$((i + 1)); done"
    );
    let _ = writeln!(s, "  \"$RUNC\" delete -f \"$1\" >/dev/null 2>&1 || true");
    let _ = writeln!(s, "}}");
    // App containers stop together, as the kubelet stops them; sidecars then stop one
    // by one in reverse order (KEP-753), then the infra.
    for c in plan
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::App)
    {
        let _ = writeln!(s, "stop {} {} &", q(&c.id), c.stop_signal);
    }
    let _ = writeln!(s, "wait");
    let sidecars = plan
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::Sidecar)
        .rev();
    let inits = plan
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::Init);
    for c in sidecars.chain(inits) {
        let _ = writeln!(s, "stop {} {}", q(&c.id), c.stop_signal);
    }
    let _ = writeln!(s, "stop {} {}", q(&plan.infra.id), plan.infra.stop_signal);
    let _ = writeln!(s, "rm -f {}", qp(ns_link));
    for (target, _) in setup.overlays.iter().rev().chain(setup.tmpfs.iter().rev()) {
        let _ = writeln!(s, "! mountpoint -q {t} || umount {t}", t = qp(target));
    }
    let _ = writeln!(s, "exit 0");
    s
}

/// The README written into the output directory.
pub fn readme(plan: &PodPlan, source: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Pod {}/{} as OCI bundles\n", plan.namespace, plan.name);
    let _ = writeln!(
        s,
        "Written by `podshim generate {source}`. Every directory under `bundles/` is an OCI"
    );
    let _ = writeln!(
        s,
        "bundle (`config.json` + `rootfs/`, an overlay of the image's layers) that runc runs.\n"
    );
    let _ = writeln!(s, "## Start order\n");
    let _ = writeln!(
        s,
        "| # | container | kind | runtime id | joins the infra's namespaces |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (i, c) in plan.all().enumerate() {
        let joins = if c.joins.is_empty() {
            "— (creates them)".to_string()
        } else {
            c.joins.join(", ")
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | `{}` | {} |",
            i + 1,
            c.name,
            kind_label(c.kind),
            c.id,
            joins
        );
    }
    let _ = writeln!(s, "\n## Run it by hand\n");
    let _ = writeln!(
        s,
        "`./run.sh` does exactly this (as root); `./stop.sh` undoes it.\n"
    );
    let _ = writeln!(
        s,
        "1. `runc create --bundle bundles/{id} {id} && runc start {id}`: the infra container.",
        id = plan.infra.id
    );
    let _ = writeln!(
        s,
        "2. `ln -sfn /proc/$(runc state {} | jq .pid)/ns infra-ns`: the other bundles' `config.json`",
        plan.infra.id
    );
    let _ = writeln!(
        s,
        "   name `infra-ns/net`, `infra-ns/ipc`, `infra-ns/uts` as namespace paths, since the infra pid is only known now."
    );
    let _ = writeln!(
        s,
        "3. Each init container in order: `runc run --bundle bundles/<id> <id>`; it must exit 0, then `runc delete <id>`."
    );
    let _ = writeln!(
        s,
        "4. Sidecars and app containers: `runc run -d --bundle bundles/<id> <id>`."
    );
    let _ = writeln!(
        s,
        "\n`plan.json` holds the same plan for programs. The rootfs overlays, the pod's `/dev/shm`"
    );
    let _ = writeln!(
        s,
        "and memory-backed volumes are mounts: `stop.sh` unmounts them."
    );
    s
}
