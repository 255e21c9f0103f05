//! The how-to-run that `generate` writes beside the bundles: `run.sh` and `stop.sh`
//! (plain runc, in Kubernetes order) and a README a person can follow by hand.
//! Pure text from the run plan and the teardown plan, so the scripts do what the
//! supervisor does: the same setup steps, the same stop order and grace budget.
//!
//! Every value from the plan is single-quoted: names are parsed and signals are
//! numbers rendered back (`model`), and quoting is the second line of defence.

use std::fmt::Write as _;
use std::path::Path;

use crate::bundle::overlay;
use crate::model::{ContainerKind, HostPathType};
use crate::run_plan::{RunPlan, SetupStep};
use crate::teardown::{self, Step};
use crate::translate::pod_cgroup::PodCgroup;

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

/// How run.sh calls mount(8) for an overlay. util-linux 2.39 and later use the new
/// mount API and pass `lowerdir=a:b:...` as one fsconfig string, which the kernel
/// cuts at 256 bytes (EINVAL from about three store layers on; util-linux issues
/// 2287, 3171); `LIBMOUNT_FORCE_MOUNT2=always` keeps them on mount(2) and its page,
/// and older util-linux ignores it.
const MOUNT_OVERLAY: &str = "LIBMOUNT_FORCE_MOUNT2=always mount -t overlay";

/// A rootfs whose options exceed mount(2)'s page, as shell. util-linux's mount(8)
/// on Debian 12 (2.38) uses mount(2), which takes one page of options, and has no
/// way to pass `lowerdir+` one layer at a time; so, as Docker's overlay2 does with
/// its `l/` links and containerd's `mountAt`, the layers get short links `0`,
/// `1`, ... in one directory, and mount runs from inside it with relative lower
/// layers (overlayfs resolves them against the mounting process's working
/// directory). Up to overlayfs's 500 layers then fit; options that still do not
/// (a very long output path) make run.sh stop with a message, never mount wrong.
fn overlay_from_links(
    plan: &RunPlan,
    target: &Path,
    lower: &[std::path::PathBuf],
    upper: &Path,
    work: &Path,
) -> String {
    let mut s = String::new();
    let links = std::iter::once(&plan.infra)
        .chain(&plan.containers)
        .find(|c| c.rootfs() == target)
        .map(|c| crate::paths::layer_links_of(&c.bundle));
    let (Some(links), Some(options)) =
        (links, overlay::short_link_options(lower.len(), upper, work))
    else {
        let message = format!(
            "run.sh: {}: {} layers: their overlay options do not fit mount(2)'s page even as short links; run it with podshim up --from",
            target.display(),
            lower.len()
        );
        let _ = writeln!(
            s,
            "mountpoint -q {} || {{ echo {} >&2; exit 1; }}",
            qp(target),
            q(message)
        );
        return s;
    };
    let _ = writeln!(
        s,
        "# {} layers: their paths overflow mount(2)'s one page of options, so it is mounted from short links to them in {}",
        lower.len(),
        links.display()
    );
    let _ = writeln!(s, "mkdir -p {}", qp(&links));
    let _ = writeln!(
        s,
        "mountpoint -q {} || (cd {} && i=0 && for layer in \\",
        qp(target),
        qp(&links)
    );
    for layer in lower {
        let _ = writeln!(s, "    {} \\", qp(layer));
    }
    let _ = writeln!(
        s,
        "    ; do rm -f \"$i\" && ln -s \"$layer\" \"$i\" && i=$((i + 1)) || exit 1; done && {MOUNT_OVERLAY} -o {} overlay {})",
        q(options),
        qp(target)
    );
    s
}

/// The pod's cgroup as shell, as [`crate::cgroup::create`] makes it: on cgroup v2
/// the controllers enabled down the path, then the limits; on v1 the cpu, memory
/// and pids hierarchies (at `/sys/fs/cgroup/<controller>`, where systemd and
/// Debian mount or link them).
fn cgroup_script(cg: &PodCgroup) -> String {
    use crate::translate::resources::PERIOD;
    let mut s = String::new();
    let path = q(cg.path.trim_start_matches('/'));
    let quota = |none: &str| cg.cpu_quota.map_or(none.to_string(), |v| v.to_string());
    let memory = |none: &str| cg.memory_limit.map_or(none.to_string(), |v| v.to_string());
    let pids = cg.pids_limit.map_or("max".to_string(), |v| v.to_string());
    let fail = q(format!(
        "run.sh: pod cgroup {}: cannot set its limits",
        cg.path
    ));
    let level = q(cg.qos_level().trim_start_matches('/'));
    let besteffort = cg.is_best_effort();
    let _ = writeln!(
        s,
        "# The pod's cgroup {} (the kubelet's layout) and its limits",
        cg.path
    );
    let _ = writeln!(s, "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then");
    // Each level hands cpu, memory and pids down to the next (the names are
    // checked cgroup names: quoting is the second line of defence).
    let _ = writeln!(
        s,
        r#"  enable() {{ c=; for x in cpu memory pids; do grep -qw "$x" "$1/cgroup.controllers" && c="$c +$x"; done; [ -z "$c" ] || echo $c > "$1/cgroup.subtree_control"; }}"#
    );
    let mut line = String::from("  d=/sys/fs/cgroup");
    for part in cg.path.trim_start_matches('/').split('/') {
        let _ = write!(
            line,
            r#" && enable "$d" && d="$d"/{} && mkdir -p "$d""#,
            q(part)
        );
    }
    let _ = writeln!(s, "{line} || {{ echo {fail} >&2; exit 1; }}");
    let _ = writeln!(
        s,
        r#"  echo {} > "$d/cpu.weight" && echo '{} {PERIOD}' > "$d/cpu.max" && echo {} > "$d/memory.max" && echo {pids} > "$d/pids.max" || {{ echo {fail} >&2; exit 1; }}"#,
        crate::cgroup::shares_to_weight(cg.cpu_shares),
        quota("max"),
        memory("max"),
    );
    if besteffort {
        let _ = writeln!(
            s,
            "  echo 1 > /sys/fs/cgroup/{level}/cpu.weight || {{ echo {fail} >&2; exit 1; }}"
        );
    }
    let _ = writeln!(s, "else");
    let _ = writeln!(
        s,
        "  mkdir -p /sys/fs/cgroup/cpu/{path} /sys/fs/cgroup/memory/{path} /sys/fs/cgroup/pids/{path} &&"
    );
    let _ = writeln!(
        s,
        "  echo {} > /sys/fs/cgroup/cpu/{path}/cpu.shares && echo {PERIOD} > /sys/fs/cgroup/cpu/{path}/cpu.cfs_period_us && echo {} > /sys/fs/cgroup/cpu/{path}/cpu.cfs_quota_us &&",
        cg.cpu_shares,
        quota("-1"),
    );
    let _ = writeln!(
        s,
        "  echo {} > /sys/fs/cgroup/memory/{path}/memory.limit_in_bytes && echo {pids} > /sys/fs/cgroup/pids/{path}/pids.max || {{ echo {fail} >&2; exit 1; }}",
        memory("-1"),
    );
    if besteffort {
        let _ = writeln!(
            s,
            "  echo 2 > /sys/fs/cgroup/cpu/{level}/cpu.shares || {{ echo {fail} >&2; exit 1; }}"
        );
    }
    let _ = writeln!(s, "fi");
    s
}

/// The pod's cgroup removed from every hierarchy, as [`crate::cgroup::remove`]
/// removes it (rmdir only: the kernel keeps one that is still in use).
fn remove_cgroup_script(cg: &PodCgroup, ids: &[String]) -> String {
    let mut s = String::new();
    let path = q(cg.path.trim_start_matches('/'));
    let _ = writeln!(s, "for h in /sys/fs/cgroup /sys/fs/cgroup/*; do");
    for id in ids {
        let _ = writeln!(
            s,
            r#"  [ ! -d "$h"/{path}/{id} ] || rmdir "$h"/{path}/{id}"#,
            id = q(id)
        );
    }
    let _ = writeln!(
        s,
        r#"  [ ! -d "$h"/{path} ] || rmdir "$h"/{path} || echo "stop.sh: $h/"{path}": still in use" >&2"#
    );
    // The levels podshim made for its pods, where no other pod is left.
    let mut level = cg.qos_level().to_string();
    while !cg.owned_from.is_empty() && level.starts_with(&cg.owned_from) {
        let _ = writeln!(
            s,
            r#"  rmdir "$h"/{} 2>/dev/null"#,
            q(level.trim_start_matches('/'))
        );
        match level.rsplit_once('/') {
            Some((up, _)) if !up.is_empty() => level = up.to_string(),
            _ => break,
        }
    }
    let _ = writeln!(s, "done");
    s
}

/// The setup steps as shell, as [`crate::bundle::ensure`] makes them before a start.
pub fn setup_script(plan: &RunPlan) -> String {
    let mut s = String::new();
    for (index, step) in plan.setup.iter().enumerate() {
        match step {
            SetupStep::Directory { path, mode, group } => {
                let _ = match group {
                    Some(gid) => writeln!(
                        s,
                        "mkdir -p {p} && chgrp {gid} {p} && chmod {mode:o} {p}",
                        p = qp(path)
                    ),
                    None => writeln!(s, "mkdir -p {p} && chmod {mode:o} {p}", p = qp(path)),
                };
            }
            SetupStep::Tmpfs {
                target,
                options,
                files,
            } => {
                let _ = writeln!(s, "mkdir -p {}", qp(target));
                if files.is_empty() {
                    let _ = writeln!(
                        s,
                        "mountpoint -q {t} || mount -t tmpfs -o {o} tmpfs {t}",
                        t = qp(target),
                        o = q(options)
                    );
                } else {
                    // Its files lived only in memory: gone once it was unmounted.
                    let _ = writeln!(
                        s,
                        "mountpoint -q {t} || {{ echo \"run.sh: {}: a memory-backed volume lost its files when it was unmounted; run podshim generate again\" >&2; exit 1; }}",
                        target
                            .display()
                            .to_string()
                            .replace(['"', '\\', '$', '`'], "_"),
                        t = qp(target)
                    );
                }
            }
            // A user namespace to pin, mounts to id-map: system calls the shell
            // has no tool for (util-linux's X-mount.idmap came with 2.39).
            SetupStep::UserNamespace { .. }
            | SetupStep::IdmapMount { .. }
            | SetupStep::VolumeOwnership { .. } => {
                let _ = writeln!(s, "\"$PODSHIM\" setup-step \"$DIR\" {index}");
            }
            SetupStep::Overlay {
                target,
                lower,
                upper,
                work,
                owner,
            } => {
                let _ = writeln!(s, "mkdir -p {} {} {}", qp(target), qp(upper), qp(work));
                if let Some(id) = owner {
                    let _ = writeln!(s, "chown {id}:{id} {} {}", qp(upper), qp(work));
                }
                if overlay::fits_one_page(lower, upper, work) {
                    let _ = writeln!(
                        s,
                        "mountpoint -q {t} || {MOUNT_OVERLAY} -o {o} overlay {t}",
                        t = qp(target),
                        o = q(SetupStep::overlay_options(lower, upper, work))
                    );
                } else {
                    s.push_str(&overlay_from_links(plan, target, lower, upper, work));
                }
            }
            SetupStep::PodCgroup { cgroup, .. } => s.push_str(&cgroup_script(cgroup)),
            SetupStep::HostPath { volume, path, kind } => {
                let p = qp(path);
                let fail = |what: &str| {
                    format!(
                        "{{ echo {} >&2; exit 1; }}",
                        q(format!(
                            "run.sh: volume {volume}: hostPath {}: {what}",
                            path.display()
                        ))
                    )
                };
                let line = match kind {
                    HostPathType::Unset => format!(
                        "[ -e {p} ] || mkdir -p -m 0{:o} {p}",
                        crate::bundle::HOST_DIR_MODE
                    ),
                    HostPathType::DirectoryOrCreate => format!(
                        "[ -e {p} ] || mkdir -p -m 0{:o} {p}; [ -d {p} ] || {}",
                        crate::bundle::HOST_DIR_MODE,
                        fail("exists but is not a directory")
                    ),
                    HostPathType::FileOrCreate => format!(
                        "[ -e {p} ] || install -m 0{:o} /dev/null {p}; [ -f {p} ] || {}",
                        crate::bundle::HOST_FILE_MODE,
                        fail("exists but is not a file")
                    ),
                    HostPathType::Directory => {
                        format!("[ -d {p} ] || {}", fail("is not a Directory"))
                    }
                    HostPathType::File => format!("[ -f {p} ] || {}", fail("is not a File")),
                    HostPathType::Socket => format!("[ -S {p} ] || {}", fail("is not a Socket")),
                    HostPathType::CharDevice => {
                        format!("[ -c {p} ] || {}", fail("is not a CharDevice"))
                    }
                    HostPathType::BlockDevice => {
                        format!("[ -b {p} ] || {}", fail("is not a BlockDevice"))
                    }
                };
                let _ = writeln!(s, "{line}");
            }
        }
    }
    s
}

/// `run.sh`: the setup steps, the infra, the infra's pid written into the joining
/// bundles, then the containers in Kubernetes order. `podshim` is the binary that
/// generated it, used only to bind subPath mounts safely.
pub fn run_script(plan: &RunPlan, podshim: &Path) -> String {
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
    // Quoted as a word of its own: inside "${PODSHIM:-...}" a `$(...)` or a `"`
    // in the path would be run or end the string.
    let _ = writeln!(s, "[ -n \"${{PODSHIM:-}}\" ] || PODSHIM={}", qp(podshim));
    let _ = writeln!(s, "DIR={}", qp(&plan.base));
    // `runc run -d` of a terminal needs a console socket and someone holding
    // the master (runtime-spec's console socket): the supervisor, not a script.
    for c in plan.all().filter(|c| c.stdio.stdin && !c.stdio.tty) {
        let _ = writeln!(
            s,
            "echo {} >&2",
            q(format!(
                "run.sh: warning: container {} has stdin: true; run.sh gives it /dev/null (its stdin stays open under the supervisor: podshim up --from {})",
                c.name,
                plan.base.display()
            ))
        );
    }
    for c in plan.all().filter(|c| c.stdio.tty) {
        let _ = writeln!(
            s,
            "echo {} >&2; exit 1",
            q(format!(
                "run.sh: container {} has tty: true; its terminal needs the supervisor: podshim up --from {}",
                c.name,
                plan.base.display()
            ))
        );
    }
    let _ = writeln!(s, "mkdir -p \"$DIR/logs\"");
    let _ = writeln!(
        s,
        "\n# 1. Mounts and volumes (made by generate; made again after a reboot or stop.sh)."
    );
    s.push_str(&setup_script(plan));
    let infra = &plan.infra;
    let _ = writeln!(
        s,
        "\n# 2. The infra container creates the pod's namespaces."
    );
    let _ = writeln!(
        s,
        "\"$RUNC\" create --bundle {b} {id} </dev/null >\"$DIR/logs/POD.log\" 2>&1",
        b = qp(&infra.bundle),
        id = q(&infra.id)
    );
    let _ = writeln!(s, "\"$RUNC\" start {}", q(&infra.id));
    let _ = writeln!(
        s,
        "pid=$(\"$RUNC\" state {} | sed -n 's/^ *\"pid\": *\\([0-9]*\\).*/\\1/p')",
        q(&infra.id)
    );
    let joining: Vec<_> = plan
        .containers
        .iter()
        .filter(|c| !c.joins.is_empty())
        .collect();
    if !joining.is_empty() {
        let _ = writeln!(
            s,
            "# The other bundles join /proc/<infra pid>/ns/*: write the pid into them."
        );
        for c in joining {
            let _ = writeln!(
                s,
                "sed -i -E 's#\"/proc/[^/\"]+/ns/#\"/proc/'\"$pid\"'/ns/#g' {}",
                qp(&c.config_file())
            );
        }
    }
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
        if c.kind == ContainerKind::App && !apps_started {
            apps_started = true;
            let _ = writeln!(s, "\n# 4. App containers, detached.");
        }
        if !c.sub_paths.is_empty() {
            // Resolved inside the volume without following a symlink out, and bound by
            // file descriptor (CVE-2017-1002101): not a job for the shell.
            let _ = writeln!(s, "\"$PODSHIM\" bind-subpaths \"$DIR\" {}", q(&c.name));
        }
        if !c.file_env.is_empty() {
            // fileKeyRef: the env file is a container's, parsed inside its volume
            // (KEP-3721), and read at the start, after the init containers ran.
            let _ = writeln!(s, "\"$PODSHIM\" read-env-files \"$DIR\" {}", q(&c.name));
        }
        match c.kind {
            ContainerKind::Init => {
                let _ = writeln!(
                    s,
                    "rc=0; \"$RUNC\" run --bundle {b} {id} </dev/null >{log} 2>&1 || rc=$?",
                    b = qp(&c.bundle),
                    id = q(&c.id)
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
                let _ = writeln!(
                    s,
                    "\"$RUNC\" run -d --bundle {b} {id} </dev/null >{log} 2>&1",
                    b = qp(&c.bundle),
                    id = q(&c.id)
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

/// `stop.sh`: the teardown plan of the bundles ([`teardown::plan`]) as shell, with
/// the pod's one grace budget. A container is only touched when the runtime says
/// it runs this pod's bundle.
pub fn stop_script(plan: &RunPlan) -> String {
    let all: Vec<_> = plan.all().collect();
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh");
    let _ = writeln!(
        s,
        "# Stops pod {}/{}: app containers together, then sidecars and init containers in",
        plan.namespace, plan.name
    );
    let _ = writeln!(
        s,
        "# reverse, then the infra; one grace budget of terminationGracePeriodSeconds for the"
    );
    let _ = writeln!(
        s,
        "# pod (each step at least {} s): stop signal, then SIGKILL. Then unmounts.",
        teardown::MIN_GRACE.as_secs()
    );
    let _ = writeln!(s, "set -u");
    let _ = writeln!(s, "RUNC=\"${{RUNC:-runc}}\"");
    let _ = writeln!(s, "DIR={}", qp(&plan.base));
    let _ = writeln!(
        s,
        "GRACE=\"${{GRACE:-{}}}\"",
        plan.termination_grace_period_seconds
    );
    let _ = writeln!(s, "START=$(date +%s)");
    let _ = writeln!(s, "step_grace() {{");
    let _ = writeln!(
        s,
        "  left=$((START + GRACE - $(date +%s))); min={}; [ \"$GRACE\" -lt $min ] && min=$GRACE",
        teardown::MIN_GRACE.as_secs()
    );
    let _ = writeln!(s, "  [ $left -gt $min ] && echo $left || echo $min");
    let _ = writeln!(s, "}}");
    let _ = writeln!(
        s,
        "ours() {{ # ID BUNDLE: the runtime's container $1 runs bundle $2"
    );
    let _ = writeln!(
        s,
        "  \"$RUNC\" state \"$1\" 2>/dev/null | grep -qF \"\\\"bundle\\\": \\\"$2\\\"\""
    );
    let _ = writeln!(s, "}}");
    let _ = writeln!(s, "stop() {{ # ID BUNDLE SIGNAL GRACE");
    let _ = writeln!(s, "  ours \"$1\" \"$2\" || return 0");
    let _ = writeln!(s, "  \"$RUNC\" kill \"$1\" \"$3\" 2>/dev/null");
    let _ = writeln!(s, "  i=0");
    let _ = writeln!(
        s,
        "  while [ $i -lt $(($4 * 10)) ] && \"$RUNC\" state \"$1\" 2>/dev/null | grep -q '\"running\"'; do sleep 0.1; i=$((i + 1)); done"
    );
    let _ = writeln!(s, "  \"$RUNC\" kill --all \"$1\" KILL 2>/dev/null");
    let _ = writeln!(s, "  \"$RUNC\" delete -f \"$1\" >/dev/null 2>&1 || true");
    let _ = writeln!(s, "}}");
    for step in teardown::plan(plan, &teardown::Scope::Bundles) {
        match step {
            Step::Stop(indices) => {
                let _ = writeln!(s, "g=$(step_grace)");
                let background = indices.len() > 1;
                for i in &indices {
                    let c = all[*i];
                    let _ = writeln!(
                        s,
                        "stop {} {} {} \"$g\"{}",
                        q(&c.id),
                        qp(&c.bundle),
                        q(c.stop_signal.runtime_arg()),
                        if background { " &" } else { "" }
                    );
                }
                if background {
                    let _ = writeln!(s, "wait");
                }
            }
            Step::Unmount(_) => {
                for c in plan.all() {
                    for b in &c.sub_paths {
                        let _ = writeln!(s, "! mountpoint -q {t} || umount {t}", t = qp(&b.target));
                    }
                }
                for step in plan.setup.iter().rev() {
                    if let SetupStep::Overlay { target, .. }
                    | SetupStep::Tmpfs { target, .. }
                    | SetupStep::IdmapMount { target, .. }
                    | SetupStep::UserNamespace { pin: target, .. } = step
                    {
                        let _ = writeln!(s, "! mountpoint -q {t} || umount {t}", t = qp(target));
                    }
                }
            }
            Step::RemoveCgroup { cgroup, ids } => s.push_str(&remove_cgroup_script(&cgroup, &ids)),
            Step::Detach(n) => {
                let _ = writeln!(
                    s,
                    "# CNI network {}: `podshim down` detaches it (DEL, with its result cache).",
                    n.name
                );
            }
            // Scope::Bundles: the files and the lease stay with the output.
            Step::DetachLost { .. } | Step::Release(_) | Step::Remove(_) => {}
        }
    }
    let _ = writeln!(s, "exit 0");
    s
}

/// The README written into the output directory.
pub fn readme(plan: &RunPlan, source: &str) -> String {
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
        "2. The other bundles' `config.json` name `/proc/INFRA_PID/ns/net` (and `ipc`, `uts`) as"
    );
    let _ = writeln!(
        s,
        "   namespace paths: write the infra's pid (`runc state {}`) in place of `INFRA_PID`.",
        plan.infra.id
    );
    let _ = writeln!(
        s,
        "3. Each init container in order: `runc run --bundle bundles/<id> <id>`; it must exit 0, then `runc delete <id>`."
    );
    let _ = writeln!(
        s,
        "4. Sidecars and app containers: `runc run -d --bundle bundles/<id> <id>`."
    );
    if plan.all().any(|c| !c.sub_paths.is_empty()) {
        let _ = writeln!(
            s,
            "\nBefore a container with a `subPath` mount starts, `podshim bind-subpaths DIR NAME`"
        );
        let _ = writeln!(
            s,
            "resolves each subPath inside its volume and binds it under `subpaths/` (run.sh does)."
        );
    }
    let supervised: Vec<&str> = plan
        .all()
        .filter(|c| !c.probes.is_empty() || !c.hooks.is_empty() || !c.restart_rules.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    if !supervised.is_empty()
        || plan.active_deadline_seconds.is_some()
        || !plan.volume_limits.is_empty()
    {
        let _ = writeln!(
            s,
            "\n`run.sh` starts each container once. Probes, lifecycle hooks, restarts, the active"
        );
        let _ = writeln!(
            s,
            "deadline and emptyDir size limits{} are the supervisor's: `podshim up --from DIR` runs them.",
            if supervised.is_empty() {
                String::new()
            } else {
                format!(" (of {})", supervised.join(", "))
            }
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_says_who_runs_probes_and_hooks() {
        let mut plan = crate::run_plan::fixture(
            crate::model::RestartPolicy::Always,
            30,
            &[("web", crate::model::ContainerKind::App)],
        );
        assert!(!readme(&plan, "pod.yaml").contains("Probes, lifecycle hooks"));
        plan.containers[0].probes.readiness = Some(crate::model::Probe {
            action: crate::model::ProbeAction::TcpSocket {
                host: None,
                port: 80,
            },
            initial_delay_seconds: 0,
            timeout_seconds: 1,
            period_seconds: 10,
            success_threshold: 1,
            failure_threshold: 3,
            termination_grace_period_seconds: None,
        });
        let text = readme(&plan, "pod.yaml");
        assert!(
            text.contains(
                "deadline and emptyDir size limits (of web) are the supervisor's: `podshim up --from DIR`"
            ),
            "{text}"
        );
        // A sized disk emptyDir alone is said too: run.sh never measures it.
        plan.containers[0].probes.readiness = None;
        assert!(!readme(&plan, "pod.yaml").contains("size limits"));
        plan.volume_limits.push(crate::run_plan::VolumeLimit {
            name: "cache".into(),
            path: "/out/volumes/cache".into(),
            bytes: 1 << 20,
            written: "1Mi".into(),
        });
        assert!(readme(&plan, "pod.yaml").contains("emptyDir size limits are the supervisor's"));
    }

    #[test]
    fn run_sh_refuses_a_terminal_it_cannot_hold() {
        let mut plan = crate::run_plan::fixture(
            crate::model::RestartPolicy::Never,
            1,
            &[("web", crate::model::ContainerKind::App)],
        );
        assert!(!run_script(&plan, Path::new("/p")).contains("tty: true"));
        plan.containers[0].stdio.tty = true;
        let script = run_script(&plan, Path::new("/p"));
        let refusal = script
            .find("run.sh: container web has tty: true; its terminal needs the supervisor")
            .unwrap_or_else(|| panic!("{script}"));
        assert!(refusal < script.find("mkdir -p \"$DIR/logs\"").unwrap());
        // stdin without a terminal runs, with a warning that it reads /dev/null.
        plan.containers[0].stdio.tty = false;
        plan.containers[0].stdio.stdin = true;
        let script = run_script(&plan, Path::new("/p"));
        assert!(
            script.contains(
                "run.sh: warning: container web has stdin: true; run.sh gives it /dev/null"
            ),
            "{script}"
        );
        assert!(!script.contains("has tty: true"), "{script}");
    }

    #[test]
    fn run_sh_reads_a_containers_env_files_before_it_starts() {
        let mut plan = crate::run_plan::fixture(
            crate::model::RestartPolicy::Never,
            1,
            &[("web", crate::model::ContainerKind::App)],
        );
        let script = run_script(&plan, Path::new("/usr/bin/podshim"));
        assert!(!script.contains("read-env-files"), "{script}");
        plan.containers[0].file_env.push(crate::run_plan::FileEnv {
            name: "CONFIG_VAR".into(),
            volume_path: "/out/volumes/data".into(),
            path: crate::model::RelPath::parse("config.env").unwrap(),
            key: "CONFIG_VAR".into(),
            optional: false,
        });
        let script = run_script(&plan, Path::new("/usr/bin/podshim"));
        let read = script
            .find("\"$PODSHIM\" read-env-files \"$DIR\" 'web'")
            .unwrap_or_else(|| panic!("{script}"));
        let run = script.rfind("run -d --bundle").unwrap();
        assert!(read < run, "{script}");
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(q("a'b"), r"'a'\''b'");
        assert_eq!(q("$(x)"), "'$(x)'");
    }

    #[test]
    fn run_sh_names_the_podshim_binary_as_one_word_whatever_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("ran");
        let path = format!("/opt/it's \"odd\"/$(touch {})/podshim", marker.display());
        let plan = crate::run_plan::fixture(crate::model::RestartPolicy::Always, 30, &[]);
        let script = run_script(&plan, Path::new(&path));
        let line = script
            .lines()
            .find(|l| l.contains("PODSHIM="))
            .unwrap()
            .to_string();
        let shown = |env: Option<&str>| {
            let mut sh = std::process::Command::new("sh");
            sh.arg("-c").arg(format!("{line}\nprintf %s \"$PODSHIM\""));
            sh.env_remove("PODSHIM");
            if let Some(v) = env {
                sh.env("PODSHIM", v);
            }
            let out = sh.output().unwrap();
            assert!(out.status.success(), "{line}");
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(shown(None), path);
        assert_eq!(shown(Some("/usr/bin/podshim")), "/usr/bin/podshim");
        assert!(!marker.exists(), "the path was run as a command");
    }

    /// run.sh's mount of a deep image, run by sh with `mount` and `mountpoint`
    /// replaced by recorders: it mounts from the links directory, by relative
    /// names within a page, and each name leads to its layer, topmost first.
    #[test]
    fn run_sh_mounts_a_deep_image_from_short_links_topmost_first() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("out");
        let paths = crate::paths::PodPaths::new(&base);
        let mut plan = crate::run_plan::fixture(
            crate::model::RestartPolicy::Always,
            30,
            &[("c", ContainerKind::App)],
        );
        plan.base = base.clone();
        plan.containers[0].bundle = paths.bundle("ns_p_c");
        let store = tmp
            .path()
            .join("a-store-with-a-realistic-path-length/layers");
        let lower: Vec<std::path::PathBuf> =
            (0..128).map(|i| store.join(format!("{i:064x}"))).collect();
        let (target, upper, work) = (
            paths.rootfs("ns_p_c"),
            paths.overlay_upper("ns_p_c"),
            paths.overlay_work("ns_p_c"),
        );
        assert!(!overlay::fits_one_page(&lower, &upper, &work));
        plan.setup = vec![SetupStep::Overlay {
            target: target.clone(),
            lower: lower.clone(),
            upper: upper.clone(),
            work: work.clone(),
            owner: None,
        }];
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let record = tmp.path().join("mount-call");
        for (name, body) in [
            ("mountpoint", "exit 1".to_string()),
            (
                "mount",
                format!(
                    "pwd > '{0}'; echo \"${{LIBMOUNT_FORCE_MOUNT2:-unset}}\" >> '{0}'; printf '%s\\n' \"$@\" >> '{0}'",
                    record.display()
                ),
            ),
        ] {
            let p = bin.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let script = format!("set -eu\n{}", setup_script(&plan));
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        let call = std::fs::read_to_string(&record).unwrap();
        let mut lines = call.lines();
        let cwd = lines.next().unwrap();
        let links = crate::paths::layer_links_of(&plan.containers[0].bundle);
        assert_eq!(Path::new(cwd), links);
        // util-linux >= 2.39 would pass the lowerdir list through fsconfig's
        // 256 bytes: run.sh keeps it on mount(2).
        assert_eq!(lines.next(), Some("always"));
        let args: Vec<&str> = lines.collect();
        assert_eq!(args[..3], ["-t", "overlay", "-o"]);
        assert_eq!(args[4..], ["overlay", target.to_str().unwrap()]);
        let options = args[3];
        assert!(
            options.len() <= overlay::MOUNT_DATA_MAX,
            "{}",
            options.len()
        );
        let dirs = options
            .strip_prefix("lowerdir=")
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        let resolved: Vec<std::path::PathBuf> = dirs
            .split(':')
            .map(|name| std::fs::read_link(links.join(name)).unwrap())
            .collect();
        let mut top_first = lower.clone();
        top_first.reverse();
        assert_eq!(resolved, top_first);
        assert!(options.ends_with(&format!(
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        )));
    }

    #[test]
    fn run_sh_refuses_a_deep_image_whose_options_exceed_a_page_even_by_links() {
        let long = std::path::PathBuf::from(format!("/{}", "o".repeat(2100)));
        let paths = crate::paths::PodPaths::new(&long);
        let mut plan = crate::run_plan::fixture(
            crate::model::RestartPolicy::Always,
            30,
            &[("c", ContainerKind::App)],
        );
        plan.base = long.clone();
        plan.containers[0].bundle = paths.bundle("ns_p_c");
        let lower: Vec<std::path::PathBuf> = (0..128)
            .map(|i| std::path::PathBuf::from(format!("/s/layers/{i:064x}")))
            .collect();
        let script = overlay_from_links(
            &plan,
            &paths.rootfs("ns_p_c"),
            &lower,
            &paths.overlay_upper("ns_p_c"),
            &paths.overlay_work("ns_p_c"),
        );
        assert!(
            script.contains("128 layers: their overlay options do not fit"),
            "{script}"
        );
        assert!(script.contains("exit 1"), "{script}");
        assert!(!script.contains("mount -t overlay"), "{script}");
    }
}
