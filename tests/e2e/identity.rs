//! Who a container runs as and what it owns (issue 11): fsGroup on the pod's
//! volumes, supplementalGroupsPolicy, the reported user; the Kubernetes
//! documentation's own examples ("Configure a Security Context for a Pod or
//! Container"), with real runc and youki.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::*;

/// The groups `id -G` printed on the log line that starts with `GROUPS`.
fn groups_of(log: &str) -> BTreeSet<u32> {
    let line = log
        .lines()
        .find_map(|l| l.strip_prefix("GROUPS "))
        .unwrap_or_else(|| panic!("no GROUPS line in {log:?}"));
    line.split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect()
}

/// The docs' fsGroup example (`security-context.yaml`): runAsUser 1000,
/// runAsGroup 3000, fsGroup 2000, an emptyDir at /data/demo; with a Secret
/// (defaultMode 0400) and a hostPath beside it.
#[test]
fn fs_group_owns_the_pods_volumes_and_joins_the_groups_but_not_a_host_path() {
    for rt in runtimes() {
        let mut pod = Pod::new("fsgroup", "security-context-demo");
        let host = pod.tmp.path().join("host-dir");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("f"), "x").unwrap();
        let yaml = format!(
            "apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: '{{ns}}'}}
stringData: {{pw: hunter2}}
---
apiVersion: v1
kind: Pod
metadata: {{name: '{{name}}', namespace: '{{ns}}'}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
  volumes:
  - name: sec-ctx-vol
    emptyDir: {{}}
  - name: mem
    emptyDir: {{medium: Memory}}
  - name: sec
    secret: {{secretName: creds, defaultMode: 0400}}
  - name: host
    hostPath: {{path: {host}, type: Directory}}
  containers:
  - name: sec-ctx-demo
    image: localhost/busybox:latest
    imagePullPolicy: Never
    securityContext: {{allowPrivilegeEscalation: false}}
    volumeMounts:
    - {{name: sec-ctx-vol, mountPath: /data/demo}}
    - {{name: mem, mountPath: /data/mem}}
    - {{name: sec, mountPath: /etc/sec}}
    - {{name: host, mountPath: /host}}
    command:
    - sh
    - -c
    - |
      echo ID $(id -u) $(id -g)
      echo GROUPS $(id -G)
      echo DEMO $(stat -c '%a %g' /data/demo)
      echo hello > /data/demo/testfile && echo TESTFILE $(stat -c '%u %g' /data/demo/testfile)
      echo MEM $(stat -c '%a %g' /data/mem)
      echo SECRET $(stat -L -c '%a %g' /etc/sec/pw) $(cat /etc/sec/pw)
      echo HOST $(stat -c '%g' /host)
      echo DONE
      sleep 3600
",
            host = host.display()
        );
        let log = run_until_done(&mut pod, &rt, &yaml, "sec-ctx-demo");
        assert!(log.contains("ID 1000 3000"), "{log}");
        // fsGroup joins; 50000 is the image's group of user 1000 (Merge).
        assert_eq!(
            groups_of(&log),
            BTreeSet::from([2000, 3000, 50000]),
            "{log}"
        );
        // drwxrwsrwx root 2000, as the docs show, and a new file gets group 2000.
        assert!(log.contains("DEMO 2777 2000"), "{log}");
        assert!(log.contains("TESTFILE 1000 2000"), "{log}");
        assert!(log.contains("MEM 2777 2000"), "{log}");
        // 0400 + group read: user 1000 reads the secret through group 2000.
        assert!(log.contains("SECRET 440 2000 hunter2"), "{log}");
        // hostPath: the host's files are left alone.
        assert!(log.contains("HOST 0"), "{log}");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(host.join("f")).unwrap().gid(), 0);
        let user = &pod.container("sec-ctx-demo")["user"];
        assert_eq!(user["uid"], 1000, "{user}");
        assert_eq!(user["gid"], 3000, "{user}");
        assert_eq!(pod.state()["qosClass"], "BestEffort");
        // Sorted, as containerd's mergeGids reports them.
        assert_eq!(
            user["supplementalGroups"],
            serde_json::json!([2000, 3000, 50000]),
            "{user}"
        );
        pod.down();
        pod.assert_nothing_left();
    }
}

/// The docs' supplementalGroupsPolicy example: the image's user 1000 is a
/// member of group 50000 in its /etc/group. Merge (the default) keeps that
/// group, Strict has only the pod's; `ps -o json` reports what the process got.
#[test]
fn supplemental_groups_policy_merges_the_images_groups_or_keeps_only_the_pods() {
    for rt in runtimes() {
        for (policy, want) in [
            ("Merge", BTreeSet::from([3000, 4000, 50000])),
            ("Strict", BTreeSet::from([3000, 4000])),
        ] {
            let mut pod = Pod::new("sgpolicy", "security-context-demo");
            let yaml = format!(
                "apiVersion: v1
kind: Pod
metadata: {{name: '{{name}}', namespace: '{{ns}}'}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    supplementalGroups: [4000]
    supplementalGroupsPolicy: {policy}
  containers:
  - name: ctr
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo GROUPS $(id -G); echo DONE; sleep 3600']
"
            );
            let log = run_until_done(&mut pod, &rt, &yaml, "ctr");
            assert_eq!(groups_of(&log), want, "{policy}: {log}");
            let user = &pod.container("ctr")["user"];
            let reported: Vec<u32> = user["supplementalGroups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_u64().unwrap() as u32)
                .collect();
            // In order: containerd's mergeGids sorts them.
            assert_eq!(
                reported,
                want.into_iter().collect::<Vec<_>>(),
                "{policy}: {user}"
            );
            pod.down();
            pod.assert_nothing_left();
        }
    }
}

/// runAsUser alone takes the uid's /etc/passwd group, as containerd's
/// WithUserID does (uid 33 is www-data:33 in the test image), not group 0.
#[test]
fn a_uid_without_a_group_takes_its_passwd_group_as_containerd_does() {
    let mut pod = Pod::new("pwgroup", "p");
    let yaml = busybox_pod(
        "",
        "by-uid",
        "    securityContext: {runAsUser: 33}\n",
        "echo ID $(id -u) $(id -g); echo GROUPS $(id -G)",
    );
    let log = run_until_done(&mut pod, &None, &yaml, "by-uid");
    assert!(log.contains("ID 33 33"), "{log}");
    assert_eq!(groups_of(&log), BTreeSet::from([33]), "{log}");
    pod.down();
    pod.assert_nothing_left();
}

/// Memory-backed and disk-backed emptyDirs are 0777 inside the container, as
/// the kubelet makes them, so a non-root container can write to them (the
/// tmpfs's root was once chmod'ed to 0755 again at the start).
#[test]
fn a_non_root_container_writes_to_memory_and_disk_empty_dirs() {
    let mut pod = Pod::new("emptydir", "p");
    let yaml = busybox_pod(
        "  securityContext: {runAsUser: 1000}\n  volumes:\n  - {name: mem, emptyDir: {medium: Memory}}\n  - {name: disk, emptyDir: {}}\n",
        "c",
        "    volumeMounts: [{name: mem, mountPath: /mem}, {name: disk, mountPath: /disk}]\n",
        "echo MODES $(stat -c %a /mem /disk); touch /mem/f /disk/f && echo WROTE",
    );
    let log = run_until_done(&mut pod, &None, &yaml, "c");
    assert!(log.contains("MODES 777 777"), "{log}");
    assert!(log.contains("WROTE"), "{log}");
    pod.down();
    pod.assert_nothing_left();
}

/// The docs' SELinux example (`seLinuxOptions.level: "s0:c123,c456"`) and a
/// Windows pod's options run on this host without SELinux, as a Linux kubelet
/// runs them, and `up` says which fields it ignored.
#[test]
fn se_linux_and_windows_options_run_with_a_warning_naming_each_field() {
    let pod = Pod::new("selinux", "p");
    let yaml = busybox_pod(
        "  securityContext:\n    seLinuxOptions: {level: \"s0:c123,c456\"}\n",
        "c",
        "    securityContext:\n      windowsOptions: {runAsUserName: ContainerUser}\n",
        "true",
    );
    let out = pod.up(&yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "spec.securityContext.seLinuxOptions: ignored: podshim sets no SELinux labels"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.containers[0].securityContext.windowsOptions: ignored: Windows-only options"
        ),
        "{err}"
    );
    pod.wait_until("c", Duration::from_secs(20), |p| {
        p.logs("c").contains("DONE")
    });
    pod.down();
    pod.assert_nothing_left();
}

/// A tmpfs mounted under a test directory, unmounted (by its own path) when
/// dropped.
struct Submount(std::path::PathBuf);

impl Drop for Submount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The docs' recursiveReadOnly example ("Recursive read-only mounts"): a
/// hostPath with a tmpfs below it, mounted three times. Under runc (whose
/// `features` lists `rro`) the Enabled mount is read-only down to the tmpfs;
/// the plain read-only one is not. youki 0.7 lists no `rro`: Enabled is
/// refused naming the mount, IfPossible falls back to a plain read-only bind.
#[test]
fn recursive_read_only_makes_submounts_read_only_where_the_runtime_can() {
    for rt in runtimes() {
        let mut pod = Pod::new("rro", "rro");
        // Outside the pod's directory, whose mounts must all be gone after down.
        let host = tempfile::tempdir().unwrap();
        let mnt = host.path().join("mnt");
        let sub = mnt.join("tmpfs");
        std::fs::create_dir_all(&sub).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &sub,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        let _submount = Submount(sub.clone());
        let yaml = |mode: &str| {
            format!(
                "apiVersion: v1
kind: Pod
metadata: {{name: '{{name}}', namespace: '{{ns}}'}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  volumes:
  - name: mnt
    hostPath: {{path: {mnt}}}
  containers:
  - name: busybox
    image: localhost/busybox:latest
    imagePullPolicy: Never
    volumeMounts:
    - {{name: mnt, mountPath: /mnt-rro, readOnly: true, mountPropagation: None, recursiveReadOnly: {mode}}}
    - {{name: mnt, mountPath: /mnt-ro, readOnly: true}}
    - {{name: mnt, mountPath: /mnt-rw}}
    command:
    - sh
    - -c
    - |
      for m in rro ro rw; do touch /mnt-$m/tmpfs/f-$m 2>/dev/null && echo WRITABLE $m || echo READONLY $m; done
      echo DONE
      sleep 3600
",
                mnt = mnt.display()
            )
        };
        if rt.is_none() {
            // Where the runtime can, IfPossible is recursive too.
            for mode in ["Enabled", "IfPossible"] {
                let log = run_until_done(&mut pod, &rt, &yaml(mode), "busybox");
                assert!(log.contains("READONLY rro"), "{mode}: {log}");
                assert!(log.contains("WRITABLE ro"), "{mode}: {log}");
                assert!(log.contains("WRITABLE rw"), "{mode}: {log}");
                pod.down();
                pod.assert_nothing_left();
            }
            continue;
        }
        pod.runtime = rt.clone();
        let out = pod.up(&yaml("Enabled"), &[]);
        assert!(!out.status.success(), "Enabled under youki ran");
        let err = stderr(&out);
        assert!(
            err.contains("spec.containers[0].volumeMounts[0].recursiveReadOnly: Forbidden: Enabled, but the runtime cannot"),
            "{err}"
        );
        pod.assert_nothing_left();
        let log = run_until_done(&mut pod, &rt, &yaml("IfPossible"), "busybox");
        assert!(log.contains("WRITABLE rro"), "{log}");
        assert!(log.contains("WRITABLE ro"), "{log}");
        pod.down();
        pod.assert_nothing_left();
    }
}

/// The docs' DNS example ("Pod's setHostnameAsFQDN field"): hostname
/// busybox-1, subdomain busybox-subdomain, setHostnameAsFQDN: the kernel
/// hostname, /etc/hostname and HOSTNAME are the FQDN; a second pod's
/// hostnameOverride is its whole name. The downward API reads the service
/// account name.
#[test]
fn set_hostname_as_fqdn_and_hostname_override_name_the_pod_as_the_kubelet_does() {
    let mut pod = Pod::new("fqdn", "busybox1");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: '{name}', namespace: '{ns}'}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  hostname: busybox-1
  subdomain: busybox-subdomain
  setHostnameAsFQDN: true
  serviceAccountName: builder
  containers:
  - name: busybox
    image: localhost/busybox:latest
    imagePullPolicy: Never
    env:
    - {name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    command: [sh, -c, 'echo UNAME $(hostname); echo FILE $(cat /etc/hostname); echo ENV $HOSTNAME; echo SA $SA; grep busybox-1 /etc/hosts; echo DONE; sleep 3600']
";
    let log = run_until_done(&mut pod, &None, yaml, "busybox");
    let fqdn = format!("busybox-1.busybox-subdomain.{}.svc.cluster.local", pod.ns);
    for line in ["UNAME", "FILE", "ENV"] {
        assert!(log.contains(&format!("{line} {fqdn}\n")), "{line}: {log}");
    }
    assert!(log.contains("SA builder\n"), "{log}");
    assert!(log.contains(&format!("\t{fqdn}\tbusybox-1")), "{log}");
    pod.down();
    pod.assert_nothing_left();

    let mut pod = Pod::new("override", "web");
    let yaml = busybox_pod(
        "  hostnameOverride: db.example.internal\n",
        "c",
        "",
        "echo UNAME $(hostname); echo ENV $HOSTNAME",
    );
    let log = run_until_done(&mut pod, &None, &yaml, "c");
    assert!(log.contains("UNAME db.example.internal\n"), "{log}");
    assert!(log.contains("ENV db.example.internal\n"), "{log}");
    pod.down();
    pod.assert_nothing_left();
}

/// The docs' extended resource example ("Assign Extended Resources to a
/// Container", example.com/dongle: 3): accepted with a cluster-only warning,
/// as nodeSelector is, and the pod runs.
#[test]
fn an_extended_resource_runs_with_a_cluster_only_warning() {
    let pod = Pod::new("extres", "extended-resource-demo");
    let yaml = busybox_pod(
        "",
        "extended-resource-demo-ctr",
        "    resources:\n      requests:\n        example.com/dongle: 3\n      limits:\n        example.com/dongle: 3\n        cpu: 100m\n        memory: 64Mi\n",
        "true",
    );
    let out = pod.up(&yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "spec.containers[0].resources.limits.example.com/dongle: scheduled by a cluster: podshim gives devices only where a CDI spec names the resource"
        ),
        "{}",
        stderr(&out)
    );
    pod.wait_until("the container", Duration::from_secs(20), |p| {
        p.logs("extended-resource-demo-ctr").contains("DONE")
    });
    // Limits alone default the requests: Guaranteed, as GetPodQOS says.
    assert_eq!(pod.state()["qosClass"], "Guaranteed");
    let describe = stdout(&pod.run(&["describe", &pod.key()]));
    assert!(
        describe.contains("QoS Class:                   Guaranteed\n"),
        "{describe}"
    );
    pod.down();
    pod.assert_nothing_left();
}

/// KEP-3721's example ("Support for env files"): an init container writes an
/// env file (a comment, a quoted value) into an emptyDir, the app reads CONFIG_VAR from it through
/// fileKeyRef; an optional key that is missing leaves its variable unset, and a
/// `$(CONFIG_VAR)` in a later value and in the arguments expands to the file's
/// value. A required file that does not exist fails the start, naming the
/// variable.
#[test]
fn file_key_ref_reads_the_env_file_an_init_container_wrote() {
    let mut pod = Pod::new("envfile", "test-pod");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: '{name}', namespace: '{ns}'}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: data, emptyDir: {}}
  initContainers:
  - name: setup-envfile
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: ['sh', '-c', 'echo ''# written by init'' > /etc/config/config.env; echo ''CONFIG_VAR=\"HELLO\"'' >> /etc/config/config.env']
    volumeMounts: [{name: data, mountPath: /etc/config}]
  containers:
  - name: use-envfile
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: ['sh', '-c', 'echo VAR=$CONFIG_VAR; echo OPT=${OPT-unset}; echo ARG=$0 SAY=$SAY; echo DONE; sleep 3600']
    args: ['$(CONFIG_VAR)']
    env:
    - name: CONFIG_VAR
      valueFrom: {fileKeyRef: {path: config.env, volumeName: data, key: CONFIG_VAR}}
    - name: OPT
      valueFrom: {fileKeyRef: {path: config.env, volumeName: data, key: NOT_THERE, optional: true}}
    - name: SAY
      value: 'say $(CONFIG_VAR)'
";
    let log = run_until_done(&mut pod, &None, yaml, "use-envfile");
    assert!(log.contains("VAR=HELLO\n"), "{log}");
    assert!(log.contains("OPT=unset\n"), "{log}");
    assert!(log.contains("ARG=HELLO SAY=say HELLO\n"), "{log}");
    pod.down();
    pod.assert_nothing_left();

    let missing = busybox_pod(
        "  volumes: [{name: data, emptyDir: {}}]\n",
        "c",
        "    env: [{name: CONFIG_VAR, valueFrom: {fileKeyRef: {path: none.env, volumeName: data, key: K}}}]\n",
        "true",
    );
    let pod = Pod::new("envfile", "missing");
    let out = pod.up(&missing, &[]);
    assert!(!out.status.success(), "a missing env file ran");
    let err = stderr(&out);
    assert!(
        err.contains("container \"c\": env CONFIG_VAR: env file \"none.env\" does not exist"),
        "{err}"
    );
    pod.assert_nothing_left();
}

/// The kubelet's CreateContainerConfigError: the app removes the env file its
/// variable is read from and exits; its restart cannot be made, so it waits as
/// CreateContainerConfigError (in `ps` and `describe`), the warning saying why,
/// and the pod stays up.
#[test]
fn a_restart_whose_env_file_is_gone_waits_in_create_container_config_error() {
    let pod = Pod::new("envfile", "gone");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: '{name}', namespace: '{ns}'}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: data, emptyDir: {}}
  initContainers:
  - name: setup
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: ['sh', '-c', 'echo K=1 > /data/k.env']
    volumeMounts: [{name: data, mountPath: /data}]
  containers:
  - name: c
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: ['sh', '-c', 'echo K=$K; rm /data/k.env; exit 1']
    volumeMounts: [{name: data, mountPath: /data}]
    env: [{name: K, valueFrom: {fileKeyRef: {path: k.env, volumeName: data, key: K}}}]
";
    let out = pod.up(yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.wait_until("the config error", Duration::from_secs(20), |p| {
        p.container("c")["state"]["reason"] == "CreateContainerConfigError"
    });
    assert!(pod.logs("c").contains("K=1\n"), "{}", pod.logs("c"));
    let describe = stdout(&pod.run(&["describe", &pod.key()]));
    assert!(
        describe.contains("Reason:       CreateContainerConfigError"),
        "{describe}"
    );
    assert!(
        describe.contains("  Error: env K: env file \"k.env\" does not exist\n"),
        "{describe}"
    );
    assert_eq!(pod.state()["phase"], "Running");
    pod.down();
    pod.assert_nothing_left();
}

/// fsGroup survives the paths that set volumes up again: bundles generated,
/// their mounts undone by stop.sh (as after a reboot), then `up --from` mounts
/// the memory volume and checks the disk one anew, each with the group and
/// setgid.
#[test]
fn fs_group_is_given_again_when_generated_bundles_are_set_up_anew() {
    let pod = Pod::new("fsgen", "p");
    let yaml = busybox_pod(
        "  securityContext: {runAsUser: 1000, fsGroup: 2000}\n  volumes:\n  - {name: mem, emptyDir: {medium: Memory}}\n  - {name: disk, emptyDir: {}}\n",
        "c",
        "    volumeMounts: [{name: mem, mountPath: /mem}, {name: disk, mountPath: /disk}]\n",
        "echo MODES $(stat -c \"%a %g\" /mem /disk)",
    )
    .replace("{ns}", &pod.ns)
    .replace("{name}", &pod.name);
    let manifest = pod.tmp.path().join("pod.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let out_dir = pod.tmp.path().join("gen");
    let out = generate(pod.tmp.path(), &manifest, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = std::process::Command::new(out_dir.join("stop.sh")).output();
    let out = pod
        .cmd()
        .args(["up", "--timeout", "60", "--from"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "up --from: {}", stderr(&out));
    pod.wait_until("c", Duration::from_secs(20), |p| {
        p.logs("c").contains("DONE")
    });
    let log = pod.logs("c");
    assert!(log.contains("MODES 2777 2000 2777 2000"), "{log}");
    pod.down();
    pod.assert_nothing_left();
    assert_eq!(mounts_under(&out_dir), Vec::<std::path::PathBuf>::new());
}

/// The docs' dongle example with a CDI spec for `example.com/dongle` (two
/// devices backed by /dev/zero and /dev/null, an env var, a mount): the
/// container asking for 2 gets both device nodes (readable and writable through
/// the device cgroup), the spec's and the devices' edits; asking for 3 is
/// refused by name before anything runs.
#[test]
fn an_extended_resource_with_a_cdi_spec_gets_its_devices() {
    let pod = Pod::new("cdi", "dongle");
    let specs = pod.tmp.path().join("cdi");
    std::fs::create_dir_all(&specs).unwrap();
    let shared = pod.tmp.path().join("dongle-firmware");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("version"), "7\n").unwrap();
    std::fs::write(
        specs.join("dongle.yaml"),
        format!(
            "cdiVersion: 0.6.0
kind: example.com/dongle
containerEdits:
  env: [DONGLE_DRIVER=on]
  mounts: [{{hostPath: {}, containerPath: /opt/dongle, options: [bind, ro]}}]
devices:
- name: d0
  containerEdits:
    deviceNodes: [{{path: /dev/dongle0, hostPath: /dev/zero}}]
- name: d1
  containerEdits:
    deviceNodes: [{{path: /dev/dongle1, hostPath: /dev/null}}]
    env: [DONGLE_LAST=d1]
",
            shared.display()
        ),
    )
    .unwrap();
    let yaml = |n: u32| {
        busybox_pod(
            "",
            "app",
            &format!("    resources: {{limits: {{example.com/dongle: {n}}}}}\n"),
            "head -c 3 /dev/dongle0 | od -An -tx1; echo hi > /dev/dongle1 && echo WROTE; echo ENV $DONGLE_DRIVER $DONGLE_LAST; cat /opt/dongle/version",
        )
    };
    let dir = specs.display().to_string();
    let out = pod.up(&yaml(3), &["--cdi-spec-dir", &dir]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("container \"app\": example.com/dongle: 3 requested, the CDI specs give 2 device(s) of that kind"),
        "{}",
        stderr(&out)
    );
    pod.assert_nothing_left();
    let out = pod.up(&yaml(2), &["--cdi-spec-dir", &dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    pod.wait_until("the container", Duration::from_secs(20), |p| {
        p.logs("app").contains("DONE")
    });
    let log = pod.logs("app");
    for line in [" 00 00 00\n", "WROTE\n", "ENV on d1\n", "7\n"] {
        assert!(log.contains(line), "{line:?} not in {log}");
    }
    assert!(pod.down().status.success());
    pod.assert_nothing_left();
}
