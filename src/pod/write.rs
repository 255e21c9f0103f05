//! Writing a pod: translate it, take its images' lease, write its bundles (their
//! mounts included) and the files beside them: plan.json, run.sh, stop.sh,
//! README.md. Shared by `generate` (into `-o DIR`) and `up` (into the pod's state
//! directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{PodError, PodImages, io_err};
use crate::bundle::{self, HostPaths, SystemMounter};
use crate::image::Store;
use crate::model::Pod;
use crate::paths::{Paths, PodPaths};
use crate::run_plan::{self, PLAN_FILE, PodNetwork, RunPlan};
use crate::runtime::OciRuntime;
use crate::translate::{self, PlanInput};
use crate::{host, howto};

/// Refuses to write into a non-empty directory that is not a previous output, or
/// into one whose bundles are in use: a pod `up --from` started from it, or
/// containers of `runtime` (its `run.sh`) that run them. Otherwise clears the
/// previous output (unmounting its rootfs overlays first, dropping its lease).
/// `runtime` is `None` when the runtime is not installed: then nothing runs
/// under it.
pub fn prepare_output(
    dir: &Path,
    store: &Store,
    paths: &Paths,
    runtime: Option<&dyn OciRuntime>,
) -> Result<(), PodError> {
    if check_output(dir, paths, runtime)? {
        clear_output(dir, store)?;
    }
    Ok(())
}

/// Whether `dir` holds a previous output that may be cleared (false: nothing
/// there); refused as [`prepare_output`] says.
fn check_output(
    dir: &Path,
    paths: &Paths,
    runtime: Option<&dyn OciRuntime>,
) -> Result<bool, PodError> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return Ok(false);
    };
    if entries.next().is_none() {
        return Ok(false);
    }
    if !crate::paths::plan_file(dir).exists() {
        return Err(PodError::ForeignOutput(dir.to_path_buf()));
    }
    let in_use = |by: String| PodError::OutputInUse {
        dir: dir.to_path_buf(),
        by,
    };
    // Compared as the kernel resolves them: `up --from ../out`, a symlinked
    // path, the runtime's own record of a bundle all name the same directory.
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let dir_real = real(dir);
    if let Some((_, pod)) = super::all_pods(paths)
        .into_iter()
        .find(|(_, pod)| real(&pod.bundle_dir) == dir_real)
    {
        let key = format!("{}/{}", pod.namespace, pod.name);
        return Err(in_use(format!(
            "pod {key} runs it (podshim down {key} first)"
        )));
    }
    if let Some(runtime) = runtime {
        let ids: Vec<String> = runtime
            .list()?
            .into_iter()
            .filter(|c| real(&c.bundle).starts_with(&dir_real))
            .map(|c| c.id)
            .collect();
        if !ids.is_empty() {
            return Err(in_use(format!(
                "the runtime has containers of its bundles: {} ({} first)",
                ids.join(", "),
                dir.join("stop.sh").display()
            )));
        }
    }
    Ok(true)
}

/// Clears a previous output [`check_output`] let through.
fn clear_output(dir: &Path, store: &Store) -> Result<(), PodError> {
    bundle::remove(dir, &SystemMounter)?;
    crate::userns::release(dir);
    Ok(store.release(dir)?)
}

/// What lists the pods of a `generate` of several: `<DIR>/pods.json`, each
/// pod's output in `<DIR>/<ns>_<name>/`.
pub const POD_LIST: &str = "pods.json";

/// The pod outputs `dir/pods.json` lists (each one path component).
pub fn read_pod_list(dir: &Path) -> Option<Vec<String>> {
    let bytes = crate::fsutil::read_regular(&dir.join(POD_LIST), 1 << 20).ok()?;
    let names: Vec<String> = serde_json::from_slice(&bytes).ok()?;
    names
        .iter()
        .all(|n| {
            let p = Path::new(n);
            p.components().count() == 1
                && matches!(p.components().next(), Some(std::path::Component::Normal(_)))
        })
        .then_some(names)
}

/// Writes `dir/pods.json`.
pub fn write_pod_list(dir: &Path, names: &[String]) -> Result<(), PodError> {
    let path = dir.join(POD_LIST);
    let text = serde_json::to_vec_pretty(names).map_err(|e| io_err(&path, "encode")(e.into()))?;
    crate::fsutil::write_atomic(&path, &text, 0o644).map_err(io_err(&path, "write"))
}

/// As [`prepare_output`] for a `generate` of several pods: `dir` is empty,
/// or a previous such output (its `pods.json` lists everything in it), each of
/// whose pod outputs is cleared as [`prepare_output`] clears one and removed:
/// all or none, each checked before any is cleared (refused while one's
/// bundles run).
pub fn prepare_outputs(
    dir: &Path,
    store: &Store,
    paths: &Paths,
    runtime: Option<&dyn OciRuntime>,
) -> Result<(), PodError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let names: Vec<std::ffi::OsString> = entries.flatten().map(|e| e.file_name()).collect();
    if names.is_empty() {
        return Ok(());
    }
    let Some(listed) = read_pod_list(dir) else {
        return Err(PodError::ForeignOutput(dir.to_path_buf()));
    };
    if names
        .iter()
        .any(|n| n != POD_LIST && !listed.iter().any(|l| std::ffi::OsStr::new(l) == n))
    {
        return Err(PodError::ForeignOutput(dir.to_path_buf()));
    }
    let mut subs = Vec::new();
    for name in &listed {
        let sub = dir.join(name);
        // A directory of the list's, never through a link.
        match std::fs::symlink_metadata(&sub) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(PodError::ForeignOutput(sub)),
            Err(_) => continue,
        }
        let full = check_output(&sub, paths, runtime)?;
        subs.push((sub, full));
    }
    for (sub, full) in subs {
        if full {
            clear_output(&sub, store)?;
        }
        if sub.exists() {
            std::fs::remove_dir(&sub).map_err(io_err(&sub, "remove"))?;
        }
    }
    let list = dir.join(POD_LIST);
    std::fs::remove_file(&list).map_err(io_err(&list, "remove"))
}

/// The range of host ids `holder` holds, else a free one leased to it.
pub fn lease_ids(holder: &Path) -> Result<crate::userns::IdRange, PodError> {
    let pool = crate::userns::Pool::from_host()?;
    Ok(crate::userns::lease(
        &pool,
        Path::new(crate::userns::LEASE_DIR),
        holder,
    )?)
}

/// Translates `pod` and writes everything into `dir`, after taking the images'
/// lease (holder: `dir`). On failure the mounts are undone, `dir` removed and the
/// lease dropped. `source` names the manifest in the generated README;
/// `seccomp_profiles` are the Localhost profiles [`super::seccomp_profiles`] read.
/// `network` is the pod's attachment, made before ([`super::network::attach`]):
/// its first address is the pod IP the bundles carry, its namespace the infra's.
#[allow(clippy::too_many_arguments)]
pub fn write(
    pod: &Pod,
    images: &PodImages,
    seccomp_profiles: &BTreeMap<String, String>,
    store: &Store,
    dir: &Path,
    host_paths: HostPaths,
    source: &str,
    network: Option<&PodNetwork>,
    runtime: Option<&dyn crate::runtime::OciRuntime>,
    cgroup: &crate::translate::pod_cgroup::CgroupConfig,
    cdi_dirs: &[PathBuf],
    node_pods: Option<&Path>,
) -> Result<RunPlan, PodError> {
    let paths = PodPaths::new(dir);
    let host = host::read();
    // `features` runs the runtime once more: only for a pod that needs to know.
    let asks_rro = pod.spec.containers.iter().any(|c| {
        c.mounts
            .iter()
            .any(|m| m.recursive_read_only != crate::model::RecursiveReadOnly::Disabled)
    });
    let features = match runtime {
        Some(r) if asks_rro => r.features(),
        _ => Default::default(),
    };
    // CDI specs are read only for a pod that asks for an extended resource.
    let cdi = if pod
        .spec
        .containers
        .iter()
        .any(|c| !c.extended_resources.is_empty())
    {
        let mut warnings = Vec::new();
        let registry = crate::cdi::Registry::load(cdi_dirs, &mut warnings);
        for w in warnings {
            tracing::warn!("{w}");
        }
        crate::cdi::allocate(&registry, &pod.spec.containers)?
    } else {
        BTreeMap::new()
    };
    // `hostUsers: false`: the pod's host ids, leased to `dir` (the same range
    // again for a holder that has one: `up` leased it before the network).
    let userns = match pod.spec.host_users {
        true => None,
        false => Some(lease_ids(dir)?),
    };
    // Held until the plan is written: `volume rm` sees this pod as a user.
    let (claims, _claim_locks) = claim_volumes(store, pod, dir, host_paths)?;
    let planned = translate::plan(&PlanInput {
        pod,
        images: &images.infos,
        paths: &paths,
        host: &host,
        pod_ip: network.and_then(|n| n.ips.first()).map(String::as_str),
        netns: network.map(|n| n.netns.as_path()),
        seccomp_profiles,
        runtime: &features,
        cgroup,
        cdi: &cdi,
        userns,
        claims: &claims,
        node_pods,
    })
    .map_err(PodError::from)
    .and_then(|plan| {
        let layout = bundle::layout(&plan, &images.stored, dir)?;
        Ok((plan, layout))
    });
    let (plan, layout) = planned.inspect_err(|_| {
        if userns.is_some() {
            crate::userns::release(dir);
        }
    })?;
    // On failure the attachment goes first, while its namespace is pinned (the
    // bridge plugin finds its NAT chain through the pod's interface).
    let undo = || {
        // A DEL that fails leaves the directory (its pin, its cache entry) for the
        // next `up` or `down` of the pod, which detach it from the cache.
        if let Some(n) = network
            && let Err(e) = super::network::detach(n)
        {
            tracing::error!("{e}");
            return;
        }
        let _ = bundle::remove(dir, &SystemMounter);
        let _ = store.release(dir);
        crate::userns::release(dir);
    };
    // The lease before any layer is mounted: a prune from now on keeps them.
    crate::fsutil::mkdir_mode(dir, 0o700).map_err(io_err(dir, "create directory"))?;
    let used: Vec<(String, String)> = layout
        .images
        .iter()
        .map(|i| (i.name.clone(), i.manifest_digest.clone()))
        .collect();
    if let Err(e) = store.lease(dir, &used) {
        undo();
        return Err(e.into());
    }
    let run = match bundle::write(&plan, layout, &SystemMounter, host_paths) {
        Ok(run) => RunPlan {
            network: network.cloned(),
            ..run
        },
        Err(err) => {
            // bundle::write undid its mounts; the half-written directory goes too.
            undo();
            return Err(err.into());
        }
    };
    let result = write_files(&run, source);
    if result.is_err() {
        undo();
    }
    result.map(|()| run)
}

fn write_files(plan: &RunPlan, source: &str) -> Result<(), PodError> {
    let dir = &plan.base;
    let write = |name: &str, text: String, mode: u32| -> Result<(), PodError> {
        let path = dir.join(name);
        crate::fsutil::write_atomic(&path, text.as_bytes(), mode).map_err(io_err(&path, "write"))
    };
    let exe = std::env::current_exe().map_err(io_err(Path::new("/proc/self/exe"), "read"))?;
    write("run.sh", howto::run_script(plan, &exe), 0o755)?;
    write("stop.sh", howto::stop_script(plan), 0o755)?;
    write("README.md", howto::readme(plan, source), 0o644)?;
    // Written last: its presence marks a complete output.
    write(PLAN_FILE, run_plan::render(plan), 0o644)
}

/// The local volume of each claim the pod names, made on first use (`up` made
/// those of the input's claim documents already, as the documents say), each
/// locked. A ReadWriteOncePod claim another pod of the state root uses is
/// refused (the one-pod guarantee of KEP-2485 holds node-wide here).
#[allow(clippy::type_complexity)]
pub fn claim_volumes(
    store: &Store,
    pod: &Pod,
    dir: &Path,
    host_paths: HostPaths,
) -> Result<
    (
        BTreeMap<String, PathBuf>,
        Vec<nix::fcntl::Flock<std::fs::File>>,
    ),
    PodError,
> {
    use crate::model::workload::AccessMode;
    let mut out = BTreeMap::new();
    let mut locks = Vec::new();
    // Each claim once, in name order: two volumes of one claim take its lock
    // once, and two pods starting together take their claims' locks in the
    // same order (no deadlock).
    let mut names: Vec<&crate::model::DnsSubdomain> = pod
        .spec
        .volumes
        .iter()
        .filter_map(|v| match &v.source {
            crate::model::VolumeSource::PersistentVolumeClaim { claim, .. } => Some(claim),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    for claim in names {
        {
            let c = crate::model::workload::Claim {
                namespace: pod.key.namespace.clone(),
                name: claim.clone(),
                access_modes: vec![crate::model::workload::AccessMode::ReadWriteOnce],
                storage: None,
                owner: None,
            };
            let data = crate::workload::claims::ensure(store.root(), &c, false, None)?;
            let claim_dir = data.parent().unwrap_or(&data).to_path_buf();
            locks.push(crate::workload::claims::lock(&claim_dir)?);
            let volume = crate::workload::claims::find(store.root(), &c.namespace, &c.name)?;
            // `up` writes under the state root's pods/; a `generate` output is
            // no pod of the node's. Every plan is read only for the claims
            // that serve one pod.
            let one_pod = volume
                .record
                .access_modes
                .contains(&AccessMode::ReadWriteOncePod);
            let others = match (host_paths, dir.parent()) {
                (HostPaths::Create, Some(pods_root)) if one_pod => {
                    crate::workload::claims::users(pods_root, &data, Some(dir), true)
                }
                _ => Vec::new(),
            };
            if !others.is_empty() {
                return Err(PodError::Invalid(format!(
                    "pod {}: persistentVolumeClaim {claim} is ReadWriteOncePod and in use by {}",
                    pod.key,
                    others.join(", ")
                )));
            }
            out.insert(claim.to_string(), data);
        }
    }
    Ok((out, locks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generate_of_several_is_cleared_all_or_none() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let paths = Paths {
            root: tmp.path().join("run"),
            store: tmp.path().join("store"),
            logs: tmp.path().join("logs"),
        };
        let out = tmp.path().join("out");
        // Two pod outputs as `generate` lists them; the second is not one
        // (something else was put there), which refuses the whole.
        for (name, plan) in [("default_a", true), ("default_b", false)] {
            let sub = out.join(name);
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join("kept"), "x").unwrap();
            if plan {
                std::fs::write(crate::paths::plan_file(&sub), "{}").unwrap();
            }
        }
        write_pod_list(&out, &["default_a".into(), "default_b".into()]).unwrap();
        let err = prepare_outputs(&out, &store, &paths, None).unwrap_err();
        assert!(
            matches!(&err, PodError::ForeignOutput(p) if p.ends_with("default_b")),
            "{err}"
        );
        assert!(out.join("default_a/kept").exists(), "the first was cleared");
        assert!(out.join(POD_LIST).exists());
        // Both outputs: cleared and removed, the list too.
        std::fs::write(crate::paths::plan_file(&out.join("default_b")), "{}").unwrap();
        prepare_outputs(&out, &store, &paths, None).unwrap();
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }
}
