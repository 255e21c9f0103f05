//! `tty`, `stdin`, `stdinOnce` and `podshim attach` (kubectl attach), with
//! real runc and youki.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Runs `podshim attach` with `args`, writing `input` to its stdin line by line
/// (a pause between lines, as a person types), and returns its output.
fn attach(pod: &Pod, args: &[&str], input: &[&[u8]]) -> std::process::Output {
    use std::io::Read;
    let mut child = pod
        .cmd()
        .arg("attach")
        .arg(pod.key())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes, as a terminal would.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = r.read_to_end(&mut all);
            all
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let mut stdin = child.stdin.take().unwrap();
    for line in input {
        std::thread::sleep(Duration::from_millis(300));
        stdin.write_all(line).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "attach {args:?} did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: '{name}', namespace: '{ns}'}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: shell
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: [sh]
    tty: true
    stdin: true
  - name: reader
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo READY; cat; echo READ-ALL']
    stdin: true
    stdinOnce: true
  - name: console-1
    image: localhost/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'while true; do echo TICK; echo TOCK >&2; sleep 1; done']
";

/// A `tty: true, stdin: true` shell: attach -it runs commands in it on its
/// terminal (`tty` names a pty), the output reaches the attacher and the
/// container's log; Ctrl-P Ctrl-Q detaches and leaves it running; a second
/// attach finds it and `exit` ends it (Completed). A `stdinOnce` reader gets
/// its input and sees its end when the first session does; a container
/// without stdin streams its output and refuses `-i` by name.
#[test]
fn attach_drives_a_tty_shell_and_a_stdin_once_reader() {
    for rt in runtimes() {
        let mut pod = Pod::new("attach", "attach");
        pod.runtime = rt.clone();
        let out = pod.up(POD, &[]);
        assert!(out.status.success(), "{rt:?}: {}", stderr(&out));

        let out = attach(
            &pod,
            &["-c", "shell", "-i", "-t"],
            // The detach keys as typed: one at a time.
            &[b"echo hello-$((6*7)); tty\n", b"\x10", b"\x11"],
        );
        let shown = stdout(&out);
        assert!(out.status.success(), "{rt:?}: {shown}{}", stderr(&out));
        assert!(shown.contains("hello-42"), "{rt:?}: {shown}");
        assert!(shown.contains("/dev/pts/"), "{rt:?}: {shown}");
        assert!(
            stderr(&out).contains("read escape sequence"),
            "{}",
            stderr(&out)
        );
        assert_eq!(pod.container("shell")["state"]["state"], "running");

        let out = attach(&pod, &["-c", "shell", "-i", "-t"], &[b"exit 0\n"]);
        assert!(out.status.success(), "{rt:?}: {}", stderr(&out));
        pod.wait_until("the shell's end", Duration::from_secs(20), |p| {
            p.container("shell")["state"]["reason"] == "Completed"
        });
        let log = pod.logs("shell");
        assert!(log.contains("hello-42"), "the terminal is logged: {log}");

        pod.wait_until("the reader", Duration::from_secs(20), |p| {
            p.logs("reader").contains("READY")
        });
        // More than a pipe holds, before the lines: nothing is lost or stuck.
        let big = vec![b'x'; 300 << 10];
        let out = attach(
            &pod,
            &["-c", "reader", "-i"],
            &[&big, b"\n", b"line one\n", b"line two\n"],
        );
        assert_eq!(stdout(&out).matches('x').count(), 300 << 10, "echoed back");
        assert!(out.status.success(), "{rt:?}: {}", stderr(&out));
        pod.wait_until("the reader's end", Duration::from_secs(20), |p| {
            p.container("reader")["state"]["reason"] == "Completed"
        });
        let log = pod.logs("reader");
        assert!(
            log.contains("line one\nline two\nREAD-ALL\n"),
            "{rt:?}: {}",
            &log[log.len().saturating_sub(200)..]
        );
        assert_eq!(
            log.matches('x').count(),
            300 << 10,
            "{rt:?}: the large input, whole: {}",
            &log[..log.len().min(300)]
        );

        // A container named like a console socket is attached to as itself.
        let out = attach(&pod, &["-c", "console-1", "-i"], &[]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("container \"console-1\" of pod")
                && stderr(&out).contains("does not take stdin"),
            "{}",
            stderr(&out)
        );
        // Without -i: its output, stdout and stderr apart, until detached by
        // the end of this process.
        let mut child = pod
            .cmd()
            .args(["attach", &pod.key(), "-c", "console-1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(stdout(&out).contains("TICK\n"), "{}", stdout(&out));
        assert!(!stdout(&out).contains("TOCK"), "{}", stdout(&out));
        assert!(stderr(&out).contains("TOCK\n"), "{}", stderr(&out));

        pod.down();
        pod.assert_nothing_left();
    }
}

/// `exec -it` still gives a terminal of its own beside the main process's.
#[test]
fn exec_with_a_terminal_works_beside_a_tty_main_process() {
    let pod = Pod::new("attach", "exec");
    let out = pod.up(POD, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "{} exec {} -c shell -i -t -- tty",
            podshim_bin(),
            pod.key()
        ))
        .arg("/dev/null")
        .envs(pod.cmd().get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("/dev/pts/"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    pod.down();
    pod.assert_nothing_left();
}
