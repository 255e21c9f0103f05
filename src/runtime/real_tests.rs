//! The client against a real runtime: runc, and youki when
//! `PODSHIM_TEST_YOUKI=/path/to/youki` is set (scripts/install-youki prints
//! that path). Creating containers needs root: a test that cannot run fails
//! (`crate::testing::cannot_run`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn runc() -> Option<CliRuntime> {
    if !is_root() {
        crate::testing::cannot_run("creating containers with runc needs root");
        return None;
    }
    let config = RuntimeConfig::resolve("runc", vec![], None).expect("runc is installed");
    Some(CliRuntime::direct(config))
}

fn youki() -> Option<CliRuntime> {
    // scripts/test sets PODSHIM_TEST_YOUKI from scripts/install-youki, whose
    // default root this is.
    let path = std::env::var_os("PODSHIM_TEST_YOUKI")
        .unwrap_or_else(|| "/opt/podshim/youki/bin/youki".into());
    if !Path::new(&path).is_file() {
        crate::testing::cannot_run(&format!(
            "youki is not installed at {} (scripts/install-youki)",
            Path::new(&path).display()
        ));
        return None;
    }
    if !is_root() {
        crate::testing::cannot_run("creating containers with youki needs root");
        return None;
    }
    let config = RuntimeConfig::resolve(path.to_str().expect("utf-8 path"), vec![], None)
        .expect("PODSHIM_TEST_YOUKI names an executable");
    Some(CliRuntime::direct(config))
}

fn unique_id() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "podshim-rt-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Force-deletes the container however the test ends.
struct Cleanup {
    program: PathBuf,
    id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(&self.program)
            .args(["delete", "--force", &self.id])
            .output();
    }
}

fn cleanup(rt: &CliRuntime, id: &str) -> Cleanup {
    Cleanup {
        program: rt.config().program.clone(),
        id: id.to_string(),
    }
}

/// A bundle whose rootfs is static busybox as /bin/sh, running `args`.
fn bundle(args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    let out = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "runc spec: {out:?}");
    let path = dir.path().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = args.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    dir
}

fn wait_for_status(rt: &CliRuntime, id: &str, want: Status) -> ContainerState {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = rt.state(id).unwrap();
        if s.status == want || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// create (stdout on a pipe) → created → start → running, "hi" on the pipe →
/// ps, exec, list → kill SIGKILL → stopped → delete → gone.
fn lifecycle(rt: &CliRuntime) {
    let b = bundle(&["sh", "-c", "echo hi; sleep 30"]);
    let id = unique_id();
    let _guard = cleanup(rt, &id);
    let (read, write) = nix::unistd::pipe().unwrap();
    let pid_file = b.path().join("init.pid");
    rt.create(
        &id,
        b.path(),
        CreateOptions {
            pid_file: Some(pid_file.clone()),
            stdio: Stdio3 {
                stdout: Some(write),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();

    let created = rt.state(&id).unwrap();
    assert_eq!(created.status, Status::Created, "{created:?}");
    assert_eq!(created.id, id);
    assert_eq!(created.bundle, b.path());
    let pid = created
        .pid
        .expect("a created container has its init process");
    let written: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(written, pid, "--pid-file holds the init pid");

    // The read end goes to a thread so a broken runtime fails the test
    // instead of hanging it.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(std::fs::File::from(read)).read_line(&mut line);
        let _ = tx.send(line);
    });

    rt.start(&id).unwrap();
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the container writes to the pipe");
    assert_eq!(line, "hi\n");
    let running = rt.state(&id).unwrap();
    assert_eq!(running.status, Status::Running, "{running:?}");

    assert!(rt.ps(&id).unwrap().contains(&pid));

    // The CLI runs exec itself; here stdout is captured to check env and cwd
    // reach the process, and that `-c` after the id is the program's, not
    // the runtime's.
    let exec = rt
        .exec_command(
            &id,
            &["sh".into(), "-c".into(), "echo $PODSHIM_X; pwd".into()],
            false,
            &[("PODSHIM_X".into(), "from exec".into())],
            Some(Path::new("/bin")),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(exec.status.success(), "{exec:?}");
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "from exec\n/bin\n");
    let listed = rt.list().unwrap();
    assert!(
        listed.iter().any(|c| c.id == id && c.pid == Some(pid)),
        "{listed:?}"
    );

    rt.kill(&id, "SIGKILL", false).unwrap();
    let stopped = wait_for_status(rt, &id, Status::Stopped);
    assert_eq!(stopped.status, Status::Stopped, "{stopped:?}");

    rt.delete(&id, false).unwrap();
    let err = rt.state(&id).unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// A create whose program does not exist fails with the runtime's own words.
fn failing_create(rt: &CliRuntime, expected: &str) {
    let b = bundle(&["nope"]);
    let id = unique_id();
    let _guard = cleanup(rt, &id);
    let err = rt
        .create(&id, b.path(), CreateOptions::default())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{} create {id}: ", rt.name())),
        "{msg}"
    );
    eprintln!("failing create: {msg}");
    assert!(msg.contains(expected), "{msg}");
    assert!(!err.is_not_found(), "{msg}");
}

/// Verbs on an unknown container say so in a way is_not_found recognises.
fn missing_container(rt: &CliRuntime) {
    let id = unique_id();
    for err in [
        rt.delete(&id, false).unwrap_err(),
        rt.kill(&id, "SIGTERM", false).unwrap_err(),
        rt.state(&id).unwrap_err(),
    ] {
        eprintln!("missing container: {err}");
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains(&id), "{err}");
    }
}

#[test]
fn runc_create_start_kill_delete_with_stdout_on_a_pipe() {
    let Some(rt) = runc() else { return };
    lifecycle(&rt);
}

#[test]
fn runc_failing_create_reports_runcs_own_message() {
    let Some(rt) = runc() else { return };
    failing_create(&rt, "executable file not found");
}

#[test]
fn runc_verbs_on_a_missing_container_are_not_found() {
    let Some(rt) = runc() else { return };
    missing_container(&rt);
}

#[test]
fn youki_create_start_kill_delete_with_stdout_on_a_pipe() {
    let Some(rt) = youki() else { return };
    lifecycle(&rt);
}

#[test]
fn youki_failing_create_reports_youkis_own_message() {
    let Some(rt) = youki() else { return };
    failing_create(&rt, "executable 'nope' not found");
}

#[test]
fn youki_verbs_on_a_missing_container_are_not_found() {
    let Some(rt) = youki() else { return };
    missing_container(&rt);
}
