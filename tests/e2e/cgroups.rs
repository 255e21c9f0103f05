//! The pod's cgroup (issue 11): the kubelet's `kubepods/<qos>/pod<uid>` layout
//! under podshim's parent, sized from the containers' or the pod's own
//! `spec.resources`, with the node's pids limit; each container's cgroup under
//! it; all of it gone after `down`. Real runc and youki on this host's hybrid
//! v1/v2 cgroups.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// The parent a pod cgroup `<parent>/kubepods/...` is under.
fn parent_of(cgroup: &str) -> String {
    cgroup.split("/kubepods").next().unwrap().to_string()
}

/// The v1 hierarchy of `controller` holding cgroup `path`.
fn v1(controller: &str, path: &str) -> std::path::PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
}

/// The docs' pod-level resources example ("Assign Pod-level CPU and memory
/// resources"): the pod limits 1 CPU and 256Mi, one container asks 100m of it.
#[test]
fn a_pod_runs_in_its_kubepods_cgroup_sized_by_pod_level_resources() {
    for rt in runtimes() {
        let mut pod = Pod::new("cgroup-pod", "pod-resources");
        let yaml = busybox_pod(
            "  resources:\n    limits: {cpu: '1', memory: 256Mi}\n",
            "app",
            "    resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {cpu: 500m, memory: 128Mi}}\n",
            "cat /proc/self/cgroup",
        );
        let log = run_until_done(&mut pod, &rt, &yaml, "app");
        let state = pod.state();
        assert_eq!(state["qosClass"], "Burstable", "{state}");
        let cgroup = state["cgroup"]
            .as_str()
            .expect("cgroup in ps -o json")
            .to_string();
        // Under this state root's own parent (`/podshim-<hash>`: a private root).
        let parent = parent_of(&cgroup);
        assert!(parent.starts_with("/podshim-"), "{cgroup}");
        assert_eq!(
            cgroup,
            format!(
                "{parent}/kubepods/burstable/pod{}",
                state["uid"].as_str().unwrap()
            )
        );
        // The container's cgroup is its id under the pod's, in every controller.
        let own = format!("{cgroup}/{}", pod.id(Some("app")));
        for controller in ["cpu", "memory", "pids"] {
            assert!(
                log.lines()
                    .any(|l| l.ends_with(&format!(":{controller}:{own}"))),
                "{controller} not {own}: {log}"
            );
        }
        // ResourceConfigForPod: the pod-level limits cap it; its weight is the
        // containers' 100m request (defaultPodRequests).
        assert_eq!(read(&v1("cpu", &cgroup), "cpu.shares"), "102");
        assert_eq!(read(&v1("cpu", &cgroup), "cpu.cfs_quota_us"), "100000");
        assert_eq!(read(&v1("cpu", &cgroup), "cpu.cfs_period_us"), "100000");
        assert_eq!(
            read(&v1("memory", &cgroup), "memory.limit_in_bytes"),
            "268435456"
        );
        assert_eq!(read(&v1("pids", &cgroup), "pids.max"), "max");
        // The container keeps its own limits beneath.
        assert_eq!(
            read(&v1("memory", &own), "memory.limit_in_bytes"),
            "134217728"
        );
        let describe = stdout(&pod.run(&["describe", &pod.key()]));
        assert!(
            describe.contains(&format!("Cgroup:                      {cgroup}")),
            "{describe}"
        );
        for block in [
            "    Limits:\n      cpu:     500m\n      memory:  128Mi\n",
            "    Requests:\n      cpu:     100m\n      memory:  32Mi\n",
            "    User:           uid=0 gid=0 groups=0",
        ] {
            assert!(describe.contains(block), "{block:?} not in {describe}");
        }
        assert!(pod.down().status.success());
        assert_eq!(
            cgroup_dirs(&cgroup),
            Vec::<std::path::PathBuf>::new(),
            "pod cgroup left"
        );
        // The levels podshim made for the root's pods went with its last one.
        assert_eq!(
            cgroup_dirs(&parent),
            Vec::<std::path::PathBuf>::new(),
            "levels left"
        );
        pod.assert_nothing_left();
    }
}

/// GetPodQOS places each pod: Guaranteed directly under kubepods, BestEffort
/// under besteffort with the least weight.
#[test]
fn each_qos_class_gets_the_kubelets_level() {
    let pod = Pod::new("cgroup-qos", "guaranteed");
    let yaml = busybox_pod(
        "",
        "app",
        "    resources: {limits: {cpu: 250m, memory: 64Mi}}\n",
        "true",
    );
    assert!(pod.up(&yaml, &[]).status.success());
    let state = pod.state();
    assert_eq!(state["qosClass"], "Guaranteed");
    let cgroup = state["cgroup"].as_str().unwrap().to_string();
    assert_eq!(
        cgroup,
        format!(
            "{}/kubepods/pod{}",
            parent_of(&cgroup),
            state["uid"].as_str().unwrap()
        )
    );
    assert_eq!(read(&v1("cpu", &cgroup), "cpu.shares"), "256");
    assert_eq!(read(&v1("cpu", &cgroup), "cpu.cfs_quota_us"), "25000");
    assert_eq!(
        read(&v1("memory", &cgroup), "memory.limit_in_bytes"),
        "67108864"
    );
    assert!(pod.down().status.success());
    assert!(cgroup_dirs(&cgroup).is_empty());

    let pod = Pod::new("cgroup-qos", "best-effort");
    assert!(
        pod.up(&busybox_pod("", "app", "", "true"), &[])
            .status
            .success()
    );
    let cgroup = pod.state()["cgroup"].as_str().unwrap().to_string();
    let level = format!("{}/kubepods/besteffort", parent_of(&cgroup));
    assert!(cgroup.starts_with(&format!("{level}/pod")), "{cgroup}");
    assert_eq!(read(&v1("cpu", &cgroup), "cpu.shares"), "2");
    assert_eq!(read(&v1("cpu", &level), "cpu.shares"), "2");
    assert_eq!(read(&v1("cpu", &cgroup), "cpu.cfs_quota_us"), "-1");
    assert!(pod.down().status.success());
    assert!(cgroup_dirs(&cgroup).is_empty());
    pod.assert_nothing_left();
}

/// The kubelet's podPidsLimit: a pod that forks past it is refused more
/// processes. Of 12, the infra (pause), the shell and its subshell hold 3: 9
/// sleeps fit, the subshell's next fork fails and it exits, and the shell goes on
/// in the slot it freed.
#[test]
fn pod_pids_limit_caps_the_processes_of_the_whole_pod() {
    let pod = Pod::new("cgroup-pids", "pids");
    let yaml = busybox_pod(
        "",
        "app",
        "",
        "(for i in $(seq 30); do sleep 3 & echo $i > /tmp/forked; done); sleep 5; echo FORKED $(cat /tmp/forked)",
    );
    let out = pod.up(&yaml, &["--pod-pids-limit", "12"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cgroup = pod.state()["cgroup"].as_str().unwrap().to_string();
    assert_eq!(read(&v1("pids", &cgroup), "pids.max"), "12");
    pod.wait_until("the forks", Duration::from_secs(30), |p| {
        p.logs("app").contains("DONE")
    });
    let log = pod.logs("app");
    assert!(log.contains("can't fork"), "{log}");
    assert!(log.contains("FORKED 9\n"), "{log}");
    assert!(pod.down().status.success());
    assert!(cgroup_dirs(&cgroup).is_empty(), "pod cgroup left");
    pod.assert_nothing_left();
}

/// A pod-level memory limit caps a container that has none of its own: the
/// kernel kills it in the pod's cgroup, and its run is reported OOMKilled.
#[test]
fn a_pod_level_memory_limit_oom_kills_a_container_without_its_own() {
    let pod = Pod::new("cgroup-oom", "oom");
    let yaml = busybox_pod(
        "  resources: {limits: {memory: 16Mi}}\n",
        "hog",
        "",
        "exec dd if=/dev/zero of=/dev/null bs=64M count=1",
    );
    assert!(pod.up(&yaml, &[]).status.success());
    let cgroup = pod.state()["cgroup"].as_str().unwrap().to_string();
    assert_eq!(
        read(&v1("memory", &cgroup), "memory.limit_in_bytes"),
        "16777216"
    );
    pod.wait_until("the OOM kill", Duration::from_secs(30), |p| {
        p.container("hog")["state"]["reason"] == "OOMKilled"
    });
    assert!(pod.down().status.success());
    assert!(cgroup_dirs(&cgroup).is_empty(), "pod cgroup left");
    pod.assert_nothing_left();
}

/// `generate`: run.sh makes the pod's cgroup with its limits, stop.sh removes it.
#[test]
fn generated_run_sh_makes_the_pod_cgroup_and_stop_sh_removes_it() {
    let pod = Pod::new("cgroup-generate", "gen");
    let yaml = busybox_pod(
        "",
        "app",
        "    resources: {limits: {cpu: 200m, memory: 32Mi}}\n",
        "true",
    )
    .replace("{name}", &pod.name)
    .replace("{ns}", &pod.ns);
    let manifest = pod.tmp.path().join("pod.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let out_dir = pod.tmp.path().join("out");
    let out = podshim(pod.tmp.path())
        .args(["generate", "--pod-pids-limit", "64"])
        .arg(&manifest)
        .arg("-o")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("plan.json")).unwrap()).unwrap();
    let cgroup = plan["setup"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "podCgroup")
        .expect("a podCgroup step")["cgroup"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    // Not made by generate: it is run.sh's.
    assert!(cgroup_dirs(&cgroup).is_empty());
    let run = std::process::Command::new("sh")
        .arg(out_dir.join("run.sh"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(read(&v1("pids", &cgroup), "pids.max"), "64");
    assert_eq!(read(&v1("cpu", &cgroup), "cpu.cfs_quota_us"), "20000");
    assert_eq!(
        read(&v1("memory", &cgroup), "memory.limit_in_bytes"),
        "33554432"
    );
    assert_eq!(read(&v1("cpu", &cgroup), "cpu.shares"), "204");
    // The containers run in it.
    let app = plan["containers"][0]["id"].as_str().unwrap().to_string();
    let procs = read(&v1("pids", &format!("{cgroup}/{app}")), "cgroup.procs");
    assert!(!procs.is_empty(), "no process in {cgroup}/{app}");
    let stop = std::process::Command::new("sh")
        .arg(out_dir.join("stop.sh"))
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert_eq!(cgroup_dirs(&cgroup), Vec::<std::path::PathBuf>::new());
    assert!(cgroups_named(&format!("{}_", pod.ns)).is_empty());
    // And the levels podshim made for this root's pods.
    let parent = parent_of(&cgroup);
    assert!(parent.starts_with("/podshim-"), "{parent}");
    assert_eq!(cgroup_dirs(&parent), Vec::<std::path::PathBuf>::new());
}

/// In-place resize (KEP-1287): `NotRequired` updates the running container's
/// cgroup (and the pod's) through the runtime's `update`; `RestartContainer`
/// restarts it with the new values; a resize that would change the QoS class is
/// refused by name.
#[test]
fn resize_updates_a_running_container_or_restarts_it_as_its_resize_policy_says() {
    for rt in runtimes() {
        let mut pod = Pod::new("cgroup-resize", "resize");
        pod.runtime = rt.clone();
        let yaml = format!(
            "{}  - name: restarter\n    image: localhost/busybox:latest\n    imagePullPolicy: Never\n    command: [sh, -c, 'echo LIMIT $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); sleep 3600']\n    resources: {{limits: {{cpu: 500m, memory: 64Mi}}}}\n    resizePolicy: [{{resourceName: memory, restartPolicy: RestartContainer}}]\n",
            busybox_pod(
                "",
                "app",
                "    resources: {limits: {cpu: 500m, memory: 64Mi}}\n",
                "true"
            )
            .replace("restartPolicy: Never", "restartPolicy: Always")
        );
        let out = pod.up(&yaml, &[]);
        let name = rt.as_deref().unwrap_or("runc");
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        pod.wait_until("both running", Duration::from_secs(20), |p| {
            p.logs("app").contains("DONE") && p.logs("restarter").contains("LIMIT")
        });
        let cgroup = pod.state()["cgroup"].as_str().unwrap().to_string();
        let app = format!("{cgroup}/{}", pod.id(Some("app")));
        let out = pod.run(&[
            "resize",
            &pod.key(),
            "-c",
            "app",
            "--cpu",
            "1",
            "--memory",
            "128Mi",
        ]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(
            read(&v1("cpu", &app), "cpu.cfs_quota_us"),
            "100000",
            "{name}"
        );
        assert_eq!(
            read(&v1("memory", &app), "memory.limit_in_bytes"),
            "134217728",
            "{name}"
        );
        // The pod cgroup is the sum again: 1.5 CPU, 192Mi.
        assert_eq!(
            read(&v1("cpu", &cgroup), "cpu.cfs_quota_us"),
            "150000",
            "{name}"
        );
        assert_eq!(
            read(&v1("memory", &cgroup), "memory.limit_in_bytes"),
            "201326592",
            "{name}"
        );
        pod.wait_until("the status", Duration::from_secs(10), |p| {
            p.container("app")["resources"]["memoryLimitBytes"] == 134217728
        });
        assert_eq!(pod.container("app")["restartCount"], 0, "{name}");
        // The bundle keeps it for the next start.
        let config = pod.config("app");
        assert_eq!(
            config["linux"]["resources"]["memory"]["limit"], 134217728,
            "{name}"
        );

        let out = pod.run(&["resize", &pod.key(), "-c", "restarter", "--memory", "96Mi"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(stdout(&out).contains("restarting"), "{}", stdout(&out));
        pod.wait_until("the restart", Duration::from_secs(20), |p| {
            p.container("restarter")["restartCount"] == 1
                && p.logs("restarter").contains("LIMIT 100663296")
        });
        // Smaller, with a restart: the pod cgroup shrinks once the old run is
        // gone (128Mi + 48Mi), not before (a v1 parent below its child fails).
        let out = pod.run(&["resize", &pod.key(), "-c", "restarter", "--memory", "48Mi"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        pod.wait_until("the second restart", Duration::from_secs(20), |p| {
            p.container("restarter")["restartCount"] == 2
                && p.logs("restarter").contains("LIMIT 50331648")
        });
        assert_eq!(
            read(&v1("memory", &cgroup), "memory.limit_in_bytes"),
            "184549376",
            "{name}"
        );
        // Guaranteed stays Guaranteed.
        let out = pod.run(&["resize", &pod.key(), "-c", "app", "--cpu-request", "100m"]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(
            stderr(&out).contains("container \"app\": Pod QoS is immutable"),
            "{}",
            stderr(&out)
        );
        assert!(pod.down().status.success());
        assert!(cgroup_dirs(&cgroup).is_empty());
        pod.assert_nothing_left();
    }
}
