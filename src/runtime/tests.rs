//! Unit tests: argv builders, log and state parsing, error text, resolve, and
//! the client against a fake spawner. No runtime is run here (see real_tests).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::{Arc, Mutex};

use super::args::*;
use super::error::{failure_message, is_not_found_message};
use super::*;

fn config() -> RuntimeConfig {
    RuntimeConfig {
        program: "/usr/sbin/runc".into(),
        global_args: vec![],
        root: None,
    }
}

fn strs(a: Vec<OsString>) -> Vec<String> {
    a.into_iter()
        .map(|s| s.into_string().expect("utf-8"))
        .collect()
}

const LOG: &str = "/tmp/log.json";
fn log() -> Option<&'static Path> {
    Some(Path::new(LOG))
}

// ---- argv builders ----

#[test]
fn global_args_are_root_then_extra_flags_then_json_log() {
    let cfg = RuntimeConfig {
        root: Some("/run/podshim/runc".into()),
        global_args: vec!["--systemd-cgroup".into(), "--debug".into()],
        ..config()
    };
    assert_eq!(
        strs(global_args(&cfg, log())),
        [
            "--root",
            "/run/podshim/runc",
            "--systemd-cgroup",
            "--debug",
            "--log",
            LOG,
            "--log-format",
            "json"
        ]
    );
}

#[test]
fn global_args_are_empty_without_root_extra_flags_or_log() {
    assert!(global_args(&config(), None).is_empty());
}

#[test]
fn create_args_name_bundle_then_id_last() {
    assert_eq!(
        strs(create_args(
            &config(),
            None,
            "default_web",
            Path::new("/b/default_web"),
            CreateFlags::default()
        )),
        ["create", "--bundle", "/b/default_web", "default_web"]
    );
}

#[test]
fn create_args_carry_pid_file_console_socket_and_no_pivot() {
    let flags = CreateFlags {
        pid_file: Some(Path::new("/s/web.pid")),
        console_socket: Some(Path::new("/s/console.sock")),
        no_pivot: true,
    };
    assert_eq!(
        strs(create_args(
            &config(),
            log(),
            "ns_p_c",
            Path::new("/b"),
            flags
        )),
        [
            "--log",
            LOG,
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/s/web.pid",
            "--console-socket",
            "/s/console.sock",
            "--no-pivot",
            "ns_p_c"
        ]
    );
}

#[test]
fn create_options_flags_borrow_their_paths() {
    let opts = CreateOptions {
        pid_file: Some("/p".into()),
        no_pivot: true,
        ..Default::default()
    };
    let f = opts.flags();
    assert_eq!(f.pid_file, Some(Path::new("/p")));
    assert_eq!(f.console_socket, None);
    assert!(f.no_pivot);
}

#[test]
fn create_args_with_root_put_root_before_the_verb() {
    let cfg = RuntimeConfig {
        root: Some("/r".into()),
        ..config()
    };
    let a = strs(create_args(
        &cfg,
        None,
        "x",
        Path::new("/b"),
        CreateFlags::default(),
    ));
    assert_eq!(a, ["--root", "/r", "create", "--bundle", "/b", "x"]);
}

#[test]
fn start_state_args_are_verb_then_id() {
    assert_eq!(strs(start_args(&config(), None, "a")), ["start", "a"]);
    assert_eq!(strs(state_args(&config(), None, "a")), ["state", "a"]);
}

#[test]
fn kill_args_pass_signal_as_given_after_id() {
    for sig in ["SIGTERM", "TERM", "15"] {
        assert_eq!(
            strs(kill_args(&config(), None, "a", sig, false)),
            ["kill", "a", sig]
        );
    }
}

#[test]
fn kill_args_with_all_flag_before_id() {
    assert_eq!(
        strs(kill_args(&config(), None, "a", "SIGKILL", true)),
        ["kill", "--all", "a", "SIGKILL"]
    );
}

#[test]
fn delete_args_with_and_without_force() {
    assert_eq!(
        strs(delete_args(&config(), None, "a", false)),
        ["delete", "a"]
    );
    assert_eq!(
        strs(delete_args(&config(), None, "a", true)),
        ["delete", "--force", "a"]
    );
}

#[test]
fn list_and_ps_args_ask_for_json() {
    assert_eq!(
        strs(list_args(&config(), None)),
        ["list", "--format", "json"]
    );
    assert_eq!(
        strs(ps_args(&config(), None, "a")),
        ["ps", "--format", "json", "a"]
    );
}

#[test]
fn exec_args_put_flags_before_id_and_command_after_without_double_dash() {
    let args = vec!["sh".to_string(), "-c".to_string(), "ls -l".to_string()];
    let env = vec![("A".to_string(), "1=2".to_string())];
    assert_eq!(
        strs(exec_args(
            &config(),
            None,
            "a",
            &args,
            true,
            &env,
            Some(Path::new("/w"))
        )),
        [
            "exec", "--tty", "--env", "A=1=2", "--cwd", "/w", "a", "sh", "-c", "ls -l"
        ]
    );
    assert_eq!(
        strs(exec_args(
            &config(),
            None,
            "a",
            &args[..1],
            false,
            &[],
            None
        )),
        ["exec", "a", "sh"]
    );
}

#[test]
fn exec_command_has_root_and_global_args_but_no_log() {
    let rt = CliRuntime::direct(RuntimeConfig {
        root: Some("/r".into()),
        global_args: vec!["--debug".into()],
        ..config()
    });
    let cmd = rt.exec_command("a", &["id".to_string()], false, &[], None);
    assert_eq!(cmd.get_program(), "/usr/sbin/runc");
    let a: Vec<_> = cmd.get_args().map(|s| s.to_str().unwrap()).collect();
    assert_eq!(a, ["--root", "/r", "--debug", "exec", "a", "id"]);
}

// ---- JSON log ----

#[test]
fn last_error_in_json_log_wins() {
    let log = br#"{"level":"warning","msg":"w","time":"t"}
{"level":"error","msg":"first","time":"t"}
{"level":"info","msg":"later info","time":"t"}
{"level":"error","msg":"second","time":"t"}
{"level":"debug","msg":"d","time":"t"}
"#;
    assert_eq!(last_log_error(log).as_deref(), Some("second"));
}

#[test]
fn fatal_level_counts_as_error() {
    let log = br#"{"level":"error","msg":"e","time":"t"}
{"level":"fatal","msg":"f","time":"t"}"#;
    assert_eq!(last_log_error(log).as_deref(), Some("f"));
}

#[test]
fn garbage_lines_in_log_are_skipped() {
    let log =
        b"not json\n{\"level\":\"error\",\"msg\":\"real\"}\n{truncated\n42\n\"str\"\n\xff\xfe\n";
    assert_eq!(last_log_error(log).as_deref(), Some("real"));
}

#[test]
fn log_without_errors_has_no_message() {
    assert_eq!(last_log_error(b""), None);
    assert_eq!(last_log_error(br#"{"level":"info","msg":"x"}"#), None);
    assert_eq!(last_log_error(br#"{"level":"error","msg":"  "}"#), None);
}

#[test]
fn youki_tracing_json_log_is_read() {
    let log = br#"{"timestamp":"t","level":"ERROR","fields":{"message":"container x does not exist"},"target":"youki"}"#;
    assert_eq!(
        last_log_error(log).as_deref(),
        Some("container x does not exist")
    );
}

fn at(verb: &'static str) -> Invocation {
    Invocation {
        program: "runc".into(),
        verb,
        id: Some("default_web".into()),
    }
}

#[test]
fn failure_message_prefers_log_then_stderr_then_status() {
    let st = ExitStatus::from_raw(1 << 8);
    let log = br#"{"level":"error","msg":"from log"}"#;
    assert_eq!(
        failure_message(&at("start"), log, b"from stderr", st),
        "from log"
    );
    assert_eq!(
        failure_message(&at("start"), b"junk", b"\nline1\nfrom stderr\n\n", st),
        "line1\nfrom stderr"
    );
    assert_eq!(
        failure_message(&at("start"), b"", b"  \n", st),
        "exited with status 1 and no error message"
    );
    assert_eq!(
        failure_message(&at("start"), b"", b"", ExitStatus::from_raw(9)),
        "killed by signal 9"
    );
}

#[test]
fn failure_message_drops_runcs_own_verb_failed_prefix() {
    let log = br#"{"level":"error","msg":"runc create failed: unable to start container process: exec: \"nope\": executable file not found in $PATH","time":"t"}"#;
    let m = failure_message(&at("create"), log, b"", ExitStatus::from_raw(1 << 8));
    assert_eq!(
        m,
        r#"unable to start container process: exec: "nope": executable file not found in $PATH"#
    );
    let err = RuntimeError::Failed {
        at: at("create"),
        message: m,
        status: ExitStatus::from_raw(1 << 8),
    };
    assert_eq!(
        err.to_string(),
        r#"runc create default_web: unable to start container process: exec: "nope": executable file not found in $PATH"#
    );
}

#[test]
fn list_error_names_no_container() {
    let at = Invocation {
        program: "youki".into(),
        verb: "list",
        id: None,
    };
    assert_eq!(at.to_string(), "youki list");
}

// ---- not found ----

#[test]
fn not_found_is_recognised_for_runc_and_youki() {
    assert!(is_not_found_message("container does not exist"));
    assert!(is_not_found_message("container default_web does not exist"));
    assert!(is_not_found_message("Container Does Not Exist"));
    assert!(!is_not_found_message("container not running"));
    let failed = |m: &str| RuntimeError::Failed {
        at: at("delete"),
        message: m.into(),
        status: ExitStatus::from_raw(1 << 8),
    };
    assert!(failed("container does not exist").is_not_found());
    assert!(!failed("container does not exist").is_not_running());
    assert!(failed("cannot kill container: container not running").is_not_running());
    let spawn = RuntimeError::Spawn {
        at: at("delete"),
        program: "/x/runc".into(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    assert!(
        !spawn.is_not_found(),
        "a missing runtime is not a missing container"
    );
}

// ---- state JSON ----

const RUNC_STATE: &str = r#"{
  "ociVersion": "1.0.2-dev",
  "id": "rtprobe",
  "pid": 9216,
  "status": "created",
  "bundle": "/tmp/rb",
  "rootfs": "/tmp/rb/rootfs",
  "created": "2026-11-26T21:07:53.997763488Z",
  "owner": ""
}"#;

#[test]
fn runc_state_json_parses_ignoring_unknown_fields() {
    let s = parse_state(RUNC_STATE.as_bytes()).unwrap();
    assert_eq!(s.oci_version, "1.0.2-dev");
    assert_eq!(s.id, "rtprobe");
    assert_eq!(s.pid, Some(9216));
    assert_eq!(s.status, Status::Created);
    assert_eq!(s.bundle, PathBuf::from("/tmp/rb"));
    assert!(s.annotations.is_empty());
}

#[test]
fn stopped_state_pid_zero_or_null_is_none() {
    let zero = RUNC_STATE
        .replace("9216", "0")
        .replace("created\"", "stopped\"");
    let s = parse_state(zero.as_bytes()).unwrap();
    assert_eq!((s.pid, s.status), (None, Status::Stopped));
    let null = RUNC_STATE.replace("9216", "null");
    assert_eq!(parse_state(null.as_bytes()).unwrap().pid, None);
    let absent = r#"{"ociVersion":"1.0.2","id":"a","status":"stopped","bundle":"/b"}"#;
    assert_eq!(parse_state(absent.as_bytes()).unwrap().pid, None);
}

#[test]
fn state_annotations_are_read() {
    let j = r#"{"ociVersion":"1.0.2","id":"a","pid":1,"status":"running","bundle":"/b",
        "annotations":{"io.kubernetes.cri.container-type":"sandbox"}}"#;
    let s = parse_state(j.as_bytes()).unwrap();
    assert_eq!(s.status, Status::Running);
    assert_eq!(s.annotations["io.kubernetes.cri.container-type"], "sandbox");
    let null = j.replace(r#"{"io.kubernetes.cri.container-type":"sandbox"}"#, "null");
    assert!(parse_state(null.as_bytes()).unwrap().annotations.is_empty());
}

#[test]
fn every_status_parses_and_unknown_status_is_an_error() {
    for (s, want) in [
        ("creating", Status::Creating),
        ("created", Status::Created),
        ("running", Status::Running),
        ("pausing", Status::Pausing),
        ("paused", Status::Paused),
        ("stopped", Status::Stopped),
    ] {
        let j = format!(r#"{{"id":"a","status":"{s}"}}"#);
        assert_eq!(parse_state(j.as_bytes()).unwrap().status, want);
        assert_eq!(want.to_string(), s);
    }
    let err = parse_state(br#"{"id":"a","status":"zombie"}"#).unwrap_err();
    assert!(err.to_string().contains("zombie"), "{err}");
}

#[test]
fn list_json_null_is_empty() {
    assert!(parse_list(b"null\n").unwrap().is_empty());
    assert!(parse_list(b"[]").unwrap().is_empty());
}

#[test]
fn list_json_array_parses_runc_shape() {
    let j = r#"[{"ociVersion":"1.0.2-dev","id":"rtprobe","pid":9216,"status":"created","bundle":"/tmp/rb","rootfs":"/tmp/rb/rootfs","created":"2026-11-26T21:07:53.997763488Z","owner":"root"},
{"ociVersion":"1.0.2-dev","id":"b","pid":0,"status":"stopped","bundle":"/tmp/b","rootfs":"/tmp/b/rootfs","created":"2026-11-26T21:07:53Z","owner":"root"}]"#;
    let l = parse_list(j.as_bytes()).unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!((l[0].id.as_str(), l[0].pid), ("rtprobe", Some(9216)));
    assert_eq!((l[1].status, l[1].pid), (Status::Stopped, None));
}

#[test]
fn ps_json_array_or_null() {
    assert_eq!(parse_pids(b"[9216,9300]\n").unwrap(), [9216, 9300]);
    assert!(parse_pids(b"null").unwrap().is_empty());
}

// ---- resolve ----

#[test]
fn resolve_bare_name_searches_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = RuntimeConfig::resolve("podshim-no-such-runtime", vec![], None).unwrap_err();
    assert!(
        err.to_string()
            .contains("`podshim-no-such-runtime` not found in PATH"),
        "{err}"
    );
    // `sh` is in PATH on every machine this runs on.
    let cfg =
        RuntimeConfig::resolve("sh", vec!["--debug".into()], Some(dir.path().into())).unwrap();
    assert!(
        cfg.program.is_absolute() && cfg.program.ends_with("sh"),
        "{cfg:?}"
    );
    assert_eq!(cfg.global_args, ["--debug"]);
    assert_eq!(cfg.root.as_deref(), Some(dir.path()));
}

#[test]
fn resolve_path_must_exist_and_be_executable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("runc");
    let err = RuntimeConfig::resolve(missing.to_str().unwrap(), vec![], None).unwrap_err();
    assert!(err.to_string().contains(missing.to_str().unwrap()), "{err}");

    std::fs::write(&missing, "#!/bin/sh\n").unwrap();
    let err = RuntimeConfig::resolve(missing.to_str().unwrap(), vec![], None).unwrap_err();
    assert!(err.to_string().contains("not an executable file"), "{err}");

    std::fs::set_permissions(&missing, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = RuntimeConfig::resolve(missing.to_str().unwrap(), vec![], None).unwrap();
    assert_eq!(cfg.program, missing);

    let err = RuntimeConfig::resolve(dir.path().to_str().unwrap(), vec![], None).unwrap_err();
    assert!(err.to_string().contains("not an executable file"), "{err}");
    assert!(matches!(
        RuntimeConfig::resolve("", vec![], None),
        Err(ResolveError::Empty)
    ));
}

#[test]
fn name_is_the_programs_file_name() {
    assert_eq!(CliRuntime::direct(config()).name(), "runc");
    let youki = RuntimeConfig {
        program: "/opt/podshim/youki/bin/youki".into(),
        ..config()
    };
    assert_eq!(CliRuntime::direct(youki).name(), "youki");
}

// ---- the client over a fake spawner ----

/// Records each command and answers with a canned exit status, stdout and
/// (for failures) a line in the `--log` file the command names.
struct FakeSpawner {
    seen: Mutex<Vec<Vec<String>>>,
    code: i32,
    stdout: &'static str,
    log_line: &'static str,
}

impl Spawner for FakeSpawner {
    fn output(&self, cmd: Command) -> std::io::Result<Output> {
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Some(i) = args.iter().position(|a| a == "--log") {
            std::fs::write(&args[i + 1], self.log_line)?;
        }
        self.seen.lock().unwrap().push(args);
        Ok(Output {
            status: ExitStatus::from_raw(self.code << 8),
            stdout: self.stdout.as_bytes().to_vec(),
            stderr: b"stderr text".to_vec(),
        })
    }
}

fn fake(code: i32, stdout: &'static str, log_line: &'static str) -> (CliRuntime, Arc<FakeSpawner>) {
    let sp = Arc::new(FakeSpawner {
        seen: Mutex::new(vec![]),
        code,
        stdout,
        log_line,
    });
    (CliRuntime::new(config(), sp.clone()), sp)
}

#[test]
fn client_runs_verbs_through_its_spawner_with_a_json_log() {
    let (rt, sp) = fake(0, "null", "");
    assert!(rt.list().unwrap().is_empty());
    rt.kill("a", "TERM", true).unwrap();
    let seen = sp.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let list = &seen[0];
    assert_eq!(list[0], "--log");
    assert_eq!(
        &list[2..],
        ["--log-format", "json", "list", "--format", "json"]
    );
    assert_eq!(&seen[1][4..], ["kill", "--all", "a", "TERM"]);
}

#[test]
fn client_failure_reports_the_runtimes_log_message() {
    let (rt, _) = fake(
        1,
        "",
        r#"{"level":"error","msg":"container does not exist"}"#,
    );
    let err = rt.delete("gone", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "runc delete gone: container does not exist"
    );
    assert!(err.is_not_found());
}

#[test]
fn client_falls_back_to_stderr_without_a_log_message() {
    let (rt, _) = fake(2, "", "");
    let err = rt.start("a").unwrap_err();
    assert_eq!(err.to_string(), "runc start a: stderr text");
}

#[test]
fn client_reports_unparsable_state_output() {
    let (rt, _) = fake(0, "not json", "");
    let err = rt.state("a").unwrap_err();
    assert!(matches!(err, RuntimeError::Parse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("runc state a: cannot parse its output"),
        "{msg}"
    );
    assert!(msg.ends_with("not json"), "{msg}");
}

#[test]
fn client_names_a_runtime_that_cannot_be_started() {
    let rt = CliRuntime::direct(RuntimeConfig {
        program: "/nonexistent/podshim-runc".into(),
        ..config()
    });
    let err = rt.start("a").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("podshim-runc start a: cannot run /nonexistent/podshim-runc:"),
        "{msg}"
    );
}

// ---- youki's shapes ----

#[test]
fn youki_anyhow_report_in_log_keeps_only_the_message() {
    let log = br#"{"timestamp":"t","level":"ERROR","message":"error in executing command: container nope-x does not exist.\n\nStack backtrace:\n   0: <unknown>\n   1: <unknown>","target":"youki"}"#;
    assert_eq!(
        last_log_error(log).as_deref(),
        Some("container nope-x does not exist.")
    );
}

#[test]
fn list_table_yields_ids_and_json_is_not_a_table() {
    use super::cli::table_ids;
    let table = b"ID                       PID    STATUS   BUNDLE           CREATED                    CREATOR\n\
podshim-rt-test-1-3  14278  Running  /tmp/.tmpSEWaT5  2026-11-26T21:09:18+00:00  root\n\
b  0  Stopped  /b  2026-11-26T21:09:18+00:00  root\n";
    assert_eq!(table_ids(table).unwrap(), ["podshim-rt-test-1-3", "b"]);
    assert!(
        table_ids(b"ID  PID  STATUS  BUNDLE  CREATED  CREATOR\n")
            .unwrap()
            .is_empty()
    );
    assert_eq!(table_ids(b"null\n"), None);
    assert_eq!(table_ids(b"[]"), None);
    assert_eq!(table_ids(b""), None);
}

#[test]
fn runtime_commands_turn_off_anyhow_backtraces() {
    let rt = CliRuntime::direct(config());
    let cmd = rt.exec_command("a", &["id".to_string()], false, &[], None);
    assert!(
        cmd.get_envs()
            .any(|(k, v)| k == "RUST_LIB_BACKTRACE" && v == Some("0".as_ref()))
    );
}

#[test]
fn run_detached_args_create_and_start_in_one_call() {
    let flags = CreateFlags {
        pid_file: Some(Path::new("/s/web.pid")),
        ..CreateFlags::default()
    };
    assert_eq!(
        strs(run_detached_args(
            &config(),
            None,
            "ns_p_web",
            Path::new("/b/web"),
            flags
        )),
        [
            "run",
            "--detach",
            "--bundle",
            "/b/web",
            "--pid-file",
            "/s/web.pid",
            "ns_p_web"
        ]
    );
}

/// Answers each command with the next (exit code, stdout, log line) of a script.
struct ScriptedSpawner {
    answers: Mutex<std::collections::VecDeque<(i32, &'static str, &'static str)>>,
    calls: Mutex<usize>,
}

impl Spawner for ScriptedSpawner {
    fn output(&self, cmd: Command) -> std::io::Result<Output> {
        *self.calls.lock().unwrap() += 1;
        let (code, stdout, log_line) = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("no more answers");
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Some(i) = args.iter().position(|a| a == "--log") {
            std::fs::write(&args[i + 1], log_line)?;
        }
        Ok(Output {
            status: ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        })
    }
}

fn scripted(answers: &[(i32, &'static str, &'static str)]) -> (CliRuntime, Arc<ScriptedSpawner>) {
    let sp = Arc::new(ScriptedSpawner {
        answers: Mutex::new(answers.iter().copied().collect()),
        calls: Mutex::new(0),
    });
    (CliRuntime::new(config(), sp.clone()), sp)
}

const TORN: &str = r#"{"level":"ERROR","fields":{"message":"failed to parse container state file \"/run/youki/a/state.json\""}}"#;
const STATE_A: &str =
    r#"{"ociVersion":"1.0.2","id":"a","status":"running","pid":42,"bundle":"/b","annotations":{}}"#;

#[test]
fn state_and_list_read_again_while_youki_rewrites_a_state_file() {
    let (rt, sp) = scripted(&[(1, "", TORN), (1, "", TORN), (0, STATE_A, "")]);
    let s = rt.state("a").unwrap();
    assert_eq!((s.id.as_str(), s.pid), ("a", Some(42)));
    assert_eq!(*sp.calls.lock().unwrap(), 3);

    let (rt, sp) = scripted(&[(1, "", TORN), (0, "null", "")]);
    assert!(rt.list().unwrap().is_empty());
    assert_eq!(*sp.calls.lock().unwrap(), 2);
}

#[test]
fn a_state_file_that_stays_torn_is_an_error_after_bounded_tries() {
    let (rt, sp) = scripted(&[(1, "", TORN); 8]);
    let err = rt.state("a").unwrap_err();
    assert!(err.is_torn_state(), "{err}");
    assert_eq!(*sp.calls.lock().unwrap(), 8);
}

#[test]
fn other_state_failures_are_not_read_again() {
    let (rt, sp) = scripted(&[(
        1,
        "",
        r#"{"level":"error","msg":"container does not exist"}"#,
    )]);
    assert!(rt.state("a").unwrap_err().is_not_found());
    assert_eq!(*sp.calls.lock().unwrap(), 1);
}

#[test]
fn a_youki_list_of_some_ids_asks_only_those_for_their_state() {
    let table = "ID  PID  STATUS  BUNDLE  CREATED  CREATOR\nother 1 Running /x 2026 root\na 42 Running /b 2026 root\n";
    let (rt, sp) = scripted(&[(0, table, ""), (0, STATE_A, "")]);
    let found = rt.list_matching(&|id| id == "a").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "a");
    assert_eq!(*sp.calls.lock().unwrap(), 2);
}

#[test]
fn a_runc_list_that_met_a_container_deleted_meanwhile_is_read_again() {
    const RACE: &str =
        r#"{"level":"error","msg":"stat /run/runc/ns_gone: no such file or directory"}"#;
    let (rt, sp) = scripted(&[(1, "", RACE), (0, "null", "")]);
    assert!(rt.list().unwrap().is_empty());
    assert_eq!(*sp.calls.lock().unwrap(), 2);
    // The same words from another verb are not a listing race.
    let (rt, sp) = scripted(&[(1, "", RACE)]);
    assert!(!rt.start("a").unwrap_err().is_list_race());
    assert_eq!(*sp.calls.lock().unwrap(), 1);
}

#[test]
fn rro_is_supported_when_features_lists_it_on_linux_5_12_or_later() {
    use crate::runtime::RuntimeFeatures;
    let runc = br#"{"ociVersionMin":"1.0.0","mountOptions":["ro","rro","rbind"]}"#;
    let youki = br#"{"ociVersionMin":"1.0.0","mountOptions":["ro","rbind"]}"#;
    assert!(RuntimeFeatures::parse(runc).recursive_read_only);
    assert!(!RuntimeFeatures::parse(youki).recursive_read_only);
    assert!(!RuntimeFeatures::parse(b"runc: unknown command features").recursive_read_only);
    for (release, ok) in [
        ("6.18.44-fc-v857", true),
        ("5.12.0", true),
        ("5.11.22-generic", false),
        ("4.19.0-27-amd64", false),
        ("", false),
    ] {
        assert_eq!(
            RuntimeFeatures::parse(runc)
                .on_kernel(release)
                .recursive_read_only,
            ok,
            "{release}"
        );
    }
}
