//! Privileged pods, capabilities, seccomp and AppArmor (issue 8), each with real
//! runc and youki.

use std::time::Duration;

use crate::support::*;

/// A pod of busybox containers; `containers` is YAML indented to fit under
/// `containers:`, `extra` pod-level lines (indented 2) before it.
fn pod_yaml(extra: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{name}}\n  namespace: {{ns}}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n{extra}  containers:\n{containers}"
    )
}

/// One container `name` that runs `script` and then sleeps.
fn container(name: &str, security: &str, script: &str) -> String {
    format!(
        "  - name: {name}\n    image: localhost/busybox:latest\n    imagePullPolicy: Never\n    securityContext: {security}\n    command: [sh, -c, '{script}; echo DONE; sleep 3600']\n"
    )
}

fn label(rt: &Option<String>) -> &str {
    rt.as_deref().unwrap_or("runc")
}

/// `yaml` as the seccomp tests run it under `rt`. youki 0.7 installs the filter
/// after dropping capabilities, which the kernel allows only with no_new_privs (or
/// CAP_SYS_ADMIN): without `allowPrivilegeEscalation: false` it fails every
/// filtered container with "failed to load seccomp context". runc installs it
/// before dropping them when no_new_privs is off, so runc runs the pods as written
/// (the Kubernetes default); under youki they run as the restricted Pod Security
/// Standard writes them (allowPrivilegeEscalation false and a seccomp profile).
fn seccomp_pod_for(yaml: &str, rt: &Option<String>) -> String {
    match rt {
        None => yaml.to_string(),
        Some(_) => yaml
            .replace(
                "    securityContext: {}",
                "    securityContext: {allowPrivilegeEscalation: false}",
            )
            .replace(
                "    securityContext: {s",
                "    securityContext: {allowPrivilegeEscalation: false, s",
            ),
    }
}

/// Starts `yaml` under `runtime` with `extra` arguments, waits for each of
/// `containers` to print DONE, and returns their logs.
fn run_and_log(
    pod: &mut Pod,
    runtime: &Option<String>,
    yaml: &str,
    extra: &[&str],
    containers: &[&str],
) -> Vec<String> {
    pod.runtime = runtime.clone();
    let out = pod.up(yaml, extra);
    assert!(
        out.status.success(),
        "up with {}: {}{}",
        label(runtime),
        stdout(&out),
        stderr(&out)
    );
    let logs = containers
        .iter()
        .map(|c| {
            pod.wait_until(
                &format!("{c}'s log under {}", label(runtime)),
                Duration::from_secs(20),
                |p| p.logs(c).contains("DONE"),
            );
            pod.logs(c)
        })
        .collect();
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success(), "down: {}", stderr(&out));
    pod.assert_nothing_left();
    logs
}

/// This process's `CapBnd:` (podshim runs as this test does).
fn host_cap_bnd() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_privileged_pod_runs_with_the_hosts_capabilities_devices_and_a_writable_sysfs() {
    let bnd = host_cap_bnd();
    // The pod asks for RuntimeDefault: a privileged container gets no filter
    // anyway (containerd).
    let script = "grep -E \"^(CapBnd|Seccomp):\" /proc/self/status; ls /dev/loop-control /dev/kmsg; grep \" /sys sysfs \" /proc/mounts";
    let yaml = pod_yaml(
        "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n",
        &[
            container("priv", "{privileged: true}", script),
            container("plain", "{}", script),
        ]
        .concat(),
    );
    for rt in runtimes() {
        let mut pod = Pod::new("priv", "privileged");
        let yaml = seccomp_pod_for(&yaml, &rt);
        let logs = run_and_log(&mut pod, &rt, &yaml, &[], &["priv", "plain"]);
        let (privileged, plain) = (&logs[0], &logs[1]);
        let rt = label(&rt);
        assert!(
            privileged.contains(&format!("CapBnd:\t{bnd}")),
            "{rt}: {privileged}"
        );
        assert!(privileged.contains("Seccomp:\t0"), "{rt}: {privileged}");
        // The host's device nodes, which a plain container does not have.
        assert!(
            privileged.contains("/dev/loop-control") && !privileged.contains("No such file"),
            "{rt}: {privileged}"
        );
        assert!(plain.contains("No such file"), "{rt}: {plain}");
        // sysfs is read-write, and nothing is masked.
        assert!(
            privileged.contains("sysfs /sys sysfs rw,"),
            "{rt}: {privileged}"
        );
        assert!(plain.contains("sysfs /sys sysfs ro,"), "{rt}: {plain}");
        assert!(plain.contains("Seccomp:\t2"), "{rt}: {plain}");
    }
}

#[test]
fn capabilities_add_all_runs_with_the_hosts_capabilities() {
    let bnd = host_cap_bnd();
    let yaml = pod_yaml(
        "",
        &container(
            "all",
            "{capabilities: {add: [ALL]}}",
            "grep -E \"^Cap(Bnd|Eff):\" /proc/self/status",
        ),
    );
    for rt in runtimes() {
        let mut pod = Pod::new("capall", "add-all");
        let log = &run_and_log(&mut pod, &rt, &yaml, &[], &["all"])[0];
        assert!(
            log.contains(&format!("CapBnd:\t{bnd}")) && log.contains(&format!("CapEff:\t{bnd}")),
            "{}: host {bnd}: {log}",
            label(&rt)
        );
    }
}

/// `unshare -U` needs no capability (an unprivileged user may create a user
/// namespace), and containerd's default profile denies unshare(2) without
/// CAP_SYS_ADMIN: with the same capabilities, only the filter tells the two apart.
const UNSHARE: &str = "grep \"^Seccomp:\" /proc/self/status; unshare -U true && echo UNSHARE_OK || echo UNSHARE_DENIED";

#[test]
fn runtime_default_seccomp_blocks_unshare_and_unconfined_has_no_filter() {
    let yaml = pod_yaml(
        "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n",
        &[
            container("confined", "{}", UNSHARE),
            container("open", "{seccompProfile: {type: Unconfined}}", UNSHARE),
        ]
        .concat(),
    );
    for rt in runtimes() {
        let mut pod = Pod::new("seccomp", "runtime-default");
        let yaml = seccomp_pod_for(&yaml, &rt);
        let logs = run_and_log(&mut pod, &rt, &yaml, &[], &["confined", "open"]);
        let rt = label(&rt);
        assert!(logs[0].contains("Seccomp:\t2"), "{rt}: {}", logs[0]);
        assert!(
            logs[0].contains("Operation not permitted") && logs[0].contains("UNSHARE_DENIED"),
            "{rt}: {}",
            logs[0]
        );
        assert!(logs[1].contains("Seccomp:\t0"), "{rt}: {}", logs[1]);
        assert!(logs[1].contains("UNSHARE_OK"), "{rt}: {}", logs[1]);
    }
}

#[test]
fn the_legacy_seccomp_annotation_means_runtime_default_too() {
    let yaml = pod_yaml("", &container("c", "{}", UNSHARE)).replace(
        "  namespace: {ns}\n",
        "  namespace: {ns}\n  annotations:\n    seccomp.security.alpha.kubernetes.io/pod: runtime/default\n",
    );
    for rt in runtimes() {
        let mut pod = Pod::new("seccomp-ann", "annotated");
        let yaml = seccomp_pod_for(&yaml, &rt);
        let log = &run_and_log(&mut pod, &rt, &yaml, &[], &["c"])[0];
        assert!(
            log.contains("Seccomp:\t2") && log.contains("UNSHARE_DENIED"),
            "{}: {log}",
            label(&rt)
        );
    }
}

/// A seccomp profile root holding the Kubernetes docs' profiles.
fn profile_root(pod: &Pod) -> std::path::PathBuf {
    let root = pod.tmp.path().join("seccomp");
    std::fs::create_dir_all(root.join("profiles")).unwrap();
    // "Restrict a Container's Syscalls with seccomp": violation.json.
    std::fs::write(
        root.join("profiles/violation.json"),
        "{\n    \"defaultAction\": \"SCMP_ACT_ERRNO\"\n}\n",
    )
    .unwrap();
    // Everything allowed but unshare(2): that the file is the filter shows.
    // (Not the docs' audit.json: SCMP_ACT_LOG logs every syscall to the kernel
    // log, which slows a loaded test machine down.)
    std::fs::write(
        root.join("profiles/no-unshare.json"),
        "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"unshare\"], \"action\": \"SCMP_ACT_ERRNO\"}]}\n",
    )
    .unwrap();
    root
}

#[test]
fn a_localhost_profile_is_applied_and_one_that_denies_everything_fails_the_container() {
    for rt in runtimes() {
        // A profile that allows everything but unshare: the container runs
        // filtered by it.
        let mut pod = Pod::new("localhost", "no-unshare");
        let root = profile_root(&pod);
        let root_arg = format!("--seccomp-profile-root={}", root.display());
        let yaml = pod_yaml(
            "",
            &container(
                "c",
                "{seccompProfile: {type: Localhost, localhostProfile: profiles/no-unshare.json}}",
                UNSHARE,
            ),
        );
        let yaml = seccomp_pod_for(&yaml, &rt);
        let log = &run_and_log(&mut pod, &rt, &yaml, &[&root_arg], &["c"])[0];
        assert!(
            log.contains("Seccomp:\t2") && log.contains("UNSHARE_DENIED"),
            "{}: {log}",
            label(&rt)
        );

        // The docs' violation pod: every syscall fails, so the container never
        // runs its command (the docs show it in CrashLoopBackOff; here `up`
        // fails, naming the container, and leaves nothing).
        let mut pod = Pod::new("violation", "violation-pod");
        pod.runtime = rt.clone();
        let root = profile_root(&pod);
        let root_arg = format!("--seccomp-profile-root={}", root.display());
        let yaml = pod_yaml(
            "",
            &container(
                "c",
                "{seccompProfile: {type: Localhost, localhostProfile: profiles/violation.json}}",
                "echo should not run",
            ),
        );
        let out = pod.up(&seccomp_pod_for(&yaml, &rt), &[&root_arg]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", label(&rt));
        assert!(
            err.contains("failed to start") && err.contains("\"c\""),
            "{}: {err}",
            label(&rt)
        );
        assert!(!pod.logs("c").contains("should not run"));
        pod.assert_nothing_left();
    }
}

#[test]
fn a_localhost_profile_outside_the_root_is_refused_naming_the_field() {
    for rt in runtimes() {
        let mut pod = Pod::new("escape", "escape");
        pod.runtime = rt.clone();
        let root = profile_root(&pod);
        std::fs::write(
            pod.tmp.path().join("outside.json"),
            "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}",
        )
        .unwrap();
        std::os::unix::fs::symlink("../../outside.json", root.join("profiles/out.json")).unwrap();
        let root_arg = format!("--seccomp-profile-root={}", root.display());
        let field = "spec.containers[0].securityContext.seccompProfile.localhostProfile";
        for (profile, why) in [
            ("../outside.json", "must not contain '..'"),
            ("/etc/passwd", "must be a relative path"),
            (
                "profiles/out.json",
                "symlink leading outside the seccomp profile root",
            ),
            ("profiles/missing.json", "does not exist"),
        ] {
            let yaml = pod_yaml(
                "",
                &container(
                    "c",
                    &format!(
                        "{{seccompProfile: {{type: Localhost, localhostProfile: \"{profile}\"}}}}"
                    ),
                    "true",
                ),
            );
            let out = pod.up(&yaml, &[&root_arg]);
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{}: {profile}: {err}",
                label(&rt)
            );
            assert!(err.contains(field) && err.contains(why), "{profile}: {err}");
            pod.assert_nothing_left();
        }
    }
}

#[test]
fn apparmor_on_a_host_without_it_is_refused_as_the_kubelet_does_and_unconfined_runs() {
    if std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
    {
        podshim::testing::cannot_run("this host has AppArmor; the test is for hosts without it");
        return;
    }
    for rt in runtimes() {
        let mut pod = Pod::new("apparmor", "apparmor");
        pod.runtime = rt.clone();
        for (security, field) in [
            (
                "{appArmorProfile: {type: RuntimeDefault}}",
                "spec.containers[0].securityContext.appArmorProfile",
            ),
            (
                "{appArmorProfile: {type: Localhost, localhostProfile: k8s-apparmor-example-deny-write}}",
                "spec.containers[0].securityContext.appArmorProfile",
            ),
        ] {
            let out = pod.up(&pod_yaml("", &container("c", security, "true")), &[]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{}: {err}", label(&rt));
            assert!(
                err.contains(&format!(
                    "{field}: Forbidden: Cannot enforce AppArmor: AppArmor is not enabled on the host"
                )),
                "{err}"
            );
            pod.assert_nothing_left();
        }
        // The legacy annotation is refused the same way.
        let yaml = pod_yaml("", &container("c", "{}", "true")).replace(
            "  namespace: {ns}\n",
            "  namespace: {ns}\n  annotations:\n    container.apparmor.security.beta.kubernetes.io/c: runtime/default\n",
        );
        let out = pod.up(&yaml, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("AppArmor is not enabled on the host"));
        pod.assert_nothing_left();
        // Unconfined asks nothing of the host.
        let yaml = pod_yaml(
            "",
            &container(
                "c",
                "{appArmorProfile: {type: Unconfined}}",
                "cat /proc/self/attr/current 2>&1 | head -1",
            ),
        );
        run_and_log(&mut pod, &rt, &yaml, &[], &["c"]);
    }
}
