//! systemd integration: the service units `podshim generate systemd` writes, and
//! the readiness notification (sd_notify(3)) `podshim up --wait` sends under
//! them. No libsystemd: the unit is text and the notification one datagram.
//!
//! A service started with `Type=notify` has `$NOTIFY_SOCKET` in its environment,
//! and runc acts on it too: `runc start` then waits for the *container* to send
//! READY=1 (runc's notify-socket proxy), which a pod's containers never do. So
//! every command that starts the runtime or the supervisor must drop
//! [`NOTIFY_SOCKET`] from its environment (`Command::env_remove`).

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

/// The variable systemd names its notification socket in (sd_notify(3)).
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// How long systemd waits for READY=1: `up`'s default `--timeout` (300 s, which
/// covers the pulls and the containers' start) plus slack for what `up` does
/// before and after it (the network, `--replace` stopping the old pod).
const TIMEOUT_START_SEC: u32 = 330;
/// How long ExecStop (`down`) and then the SIGTERM to `up --wait` each get
/// (systemd.service(5) TimeoutStopSec=): a pod's default grace period (30 s)
/// with room for the teardown.
const TIMEOUT_STOP_SEC: u32 = 90;
/// Between a failure and the restart: systemd's default of 100 ms would spin a
/// pod that cannot start (an image that does not pull) into the start limit.
const RESTART_SEC: u32 = 10;
/// Where podshim's state is when no `--root` is given (its default is
/// /run/podshim): RequiresMountsFor= then orders the unit after that mount.
const DEFAULT_STATE_MOUNT: &str = "/run";

/// What `podshim generate systemd FILE` renders a unit from.
#[derive(Debug, Clone)]
pub struct UnitOptions {
    /// The podshim binary, absolute.
    pub podshim: PathBuf,
    /// The manifest, absolute: systemd runs commands from `/`.
    pub manifest: PathBuf,
    /// Global options repeated on every command line (`["--root", "/run/x"]`),
    /// since the unit sees none of the caller's environment (`PODSHIM_ROOT`).
    /// Paths in them should be absolute, for the same reason as `manifest`.
    pub global_args: Vec<String>,
    /// Options of `up` alone (`["--network", "none"]`), after the verb.
    pub up_args: Vec<String>,
    /// The unit's Description= (control characters become spaces); empty: one
    /// naming the manifest.
    pub description: String,
}

/// What the template `podshim@.service` is rendered from.
#[derive(Debug, Clone)]
pub struct TemplateOptions {
    /// The podshim binary, absolute.
    pub podshim: PathBuf,
    /// The directory of the manifests the instances name, absolute.
    pub dir: PathBuf,
    /// As [`UnitOptions::global_args`].
    pub global_args: Vec<String>,
    /// As [`UnitOptions::up_args`].
    pub up_args: Vec<String>,
}

/// A path or argument a unit file cannot carry exactly.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// A unit file is line-based (systemd.syntax(7)): a newline would end the
    /// setting, and NUL cannot be in an argv at all. systemd could spell the
    /// others as C escapes, but such a name is almost always a mistake and would
    /// read as something else in `systemctl status`, so it is refused.
    #[error(
        "{what} {path:?} has a newline, NUL or other control character, which a unit file cannot hold"
    )]
    ControlCharacter { what: &'static str, path: PathBuf },
    /// Unit files are UTF-8 text (systemd.syntax(7)).
    #[error("{what} {path:?} is not valid UTF-8, which a unit file must be")]
    NotUtf8 { what: &'static str, path: PathBuf },
    /// systemd starts services in `/` (systemd.exec(5) WorkingDirectory=) and
    /// wants absolute paths in RequiresMountsFor=.
    #[error("{what} {path:?} is not an absolute path (systemd runs the unit's commands from /)")]
    NotAbsolute { what: &'static str, path: PathBuf },
    /// systemd.service(5) "COMMAND LINES": the executable path may not contain
    /// quotes, backslashes or control characters, and may not name a directory;
    /// and it is also the command's argv[0], which gets `$` expansion while the
    /// path does not, so a `$` cannot be spelled right for both.
    #[error("podshim binary path {path:?} cannot be a unit's executable: {reason}")]
    Executable { path: PathBuf, reason: &'static str },
}

/// The service unit that runs the pods of `opts.manifest`: `up --wait` in the
/// foreground as the main process, READY=1 once the pods run, `down` to stop.
pub fn unit(opts: &UnitOptions) -> Result<String, UnitError> {
    let exe = executable(&opts.podshim)?;
    let manifest = absolute_text("manifest", &opts.manifest)?;
    let global = words("global argument", &opts.global_args)?;
    let up = words("up argument", &opts.up_args)?;
    let mounts = state_mount(&opts.global_args)?;
    let description = if opts.description.is_empty() {
        format!("podshim pods of {manifest}")
    } else {
        opts.description.clone()
    };
    let target = exec_word(manifest);
    Ok(render(&Render {
        header: "# Generated by `podshim generate systemd`.\n".to_string(),
        description: description_text(&description),
        mounts: format!("{} {}", path_word(mounts), path_word(manifest)),
        exe: &exe,
        global: &global,
        up: &up,
        target: &target,
    }))
}

/// The template `podshim@.service`: the instance is a manifest's file name in
/// `opts.dir`, unescaped by `%I` (systemd.unit(5) "SPECIFIERS").
pub fn template_unit(opts: &TemplateOptions) -> Result<String, UnitError> {
    let exe = executable(&opts.podshim)?;
    let dir = absolute_text("manifest directory", &opts.dir)?;
    let global = words("global argument", &opts.global_args)?;
    let up = words("up argument", &opts.up_args)?;
    let mounts = state_mount(&opts.global_args)?;
    // The directory's own `%` and `$` are doubled; the `%I` appended after that
    // is the one specifier systemd expands, after unquoting, so an instance
    // name with spaces stays one argument.
    let trimmed = dir.trim_end_matches('/');
    let target = quote(&format!("{}/%I", escape_exec(trimmed)));
    let header = format!(
        "# Generated by `podshim generate systemd`: a template whose instance is the file\n\
         # name of a manifest in {dir}, escaped as a unit name (systemd-escape(1)),\n\
         # which %I turns back (an unescaped \"-\" would become \"/\"):\n\
         #\n\
         #   systemctl enable --now podshim@$(systemd-escape web.yaml).service\n"
    );
    Ok(render(&Render {
        header,
        description: format!("podshim pods of {}/%I", description_text(trimmed)),
        mounts: format!("{} {}", path_word(mounts), path_word(dir)),
        exe: &exe,
        global: &global,
        up: &up,
        target: &target,
    }))
}

/// The pieces of a unit, each already escaped.
struct Render<'a> {
    header: String,
    description: String,
    mounts: String,
    exe: &'a str,
    global: &'a str,
    up: &'a str,
    target: &'a str,
}

// Why these settings, against systemd.service(5) and systemd.kill(5):
// - Type=notify / NotifyAccess=main: `up --wait` is the main process and sends
//   READY=1 itself once the pods run; nothing else in the cgroup (the
//   supervisor, runc, a container) may speak for it.
// - Restart=on-failure: `up --wait` ending non-zero (the pods failed, podshim
//   crashed) restarts it; a clean stop does not.
// - KillMode=mixed: ExecStop (`down`) runs first anyway; after it the default
//   (control-group) would SIGTERM every process of the unit at once, racing the
//   supervisor's own orderly stop, while mixed sends SIGTERM to the main process
//   only (`up --wait` then takes down what is left) and keeps the final SIGKILL
//   of whatever remains in the cgroup, which none/process would give up.
// - WantedBy=default.target, as podman's generated units and its kube template
//   have: it is the target the system boots into (multi-user or graphical) and
//   also exists in a user manager, which has no multi-user.target; naming
//   multi-user.target as well would add nothing.
fn render(r: &Render) -> String {
    let Render {
        header,
        description,
        mounts,
        exe,
        global,
        up,
        target,
    } = r;
    format!(
        "{header}\
[Unit]
Description={description}
Documentation=man:podshim(1)
Wants=network-online.target
After=network-online.target
RequiresMountsFor={mounts}
# A file that fails again and again (a Job that failed, an image that never
# pulls) stops being restarted after 5 tries in 5 minutes.
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStart={exe}{global} up --wait --replace{up} {target}
ExecStop={exe}{global} down {target}
# Also after a start that failed (no ExecStop then): nothing of the file is
# left without its supervisors.
ExecStopPost={exe}{global} down {target}
Restart=on-failure
RestartSec={RESTART_SEC}
# Up to up's default --timeout for READY=1 (pulls included).
TimeoutStartSec={TIMEOUT_START_SEC}
TimeoutStopSec={TIMEOUT_STOP_SEC}
# ExecStop (down) runs first; then SIGTERM goes to `up --wait` alone, which stops
# what is left in order, and only what outlives it is SIGKILLed.
KillMode=mixed

[Install]
WantedBy=default.target
"
    )
}

/// Description= is free text on one line with specifiers (systemd.unit(5)):
/// control characters become spaces, `%` is doubled.
fn description_text(s: &str) -> String {
    // A control character would end the line; a backslash at its end would
    // continue it into the next setting (systemd.syntax(7)).
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() || c == '\\' { ' ' } else { c })
        .collect();
    escape_specifiers(&one_line)
}

/// The executable word of a command line (systemd.service(5) "COMMAND LINES"):
/// absolute, none of what systemd refuses there, specifiers doubled. No `$$`:
/// the path gets no variable expansion (see [`UnitError::Executable`]).
fn executable(path: &Path) -> Result<String, UnitError> {
    let s = absolute_text("podshim binary", path)?;
    let reason = if s.contains(['"', '\'', '\\']) {
        Some("systemd refuses quotes and backslashes in an executable path")
    } else if s.contains('$') {
        Some("a `$` would be expanded in its argv[0] but not in the path")
    } else if s.ends_with('/') {
        Some("it names a directory")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(UnitError::Executable {
            path: path.into(),
            reason,
        }),
        None => Ok(path_word(s)),
    }
}

/// Arguments as command-line words, each after a space.
fn words(what: &'static str, args: &[String]) -> Result<String, UnitError> {
    let mut out = String::new();
    for a in args {
        text(what, Path::new(a))?;
        out.push(' ');
        out.push_str(&exec_word(a));
    }
    Ok(out)
}

/// The state root the global arguments give (`--root DIR` or `--root=DIR`, the
/// last one winning as with clap), else [`DEFAULT_STATE_MOUNT`].
fn state_mount(args: &[String]) -> Result<&str, UnitError> {
    let mut root = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--root" {
            root = it.next().map(String::as_str);
        } else if let Some(v) = a.strip_prefix("--root=") {
            root = Some(v);
        }
    }
    match root {
        Some(r) => absolute_text("--root", Path::new(r)),
        None => Ok(DEFAULT_STATE_MOUNT),
    }
}

fn absolute_text<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, UnitError> {
    let s = text(what, path)?;
    if !path.is_absolute() {
        return Err(UnitError::NotAbsolute {
            what,
            path: path.into(),
        });
    }
    Ok(s)
}

/// `path` as UTF-8 without control characters, or why not.
fn text<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, UnitError> {
    let s = path.to_str().ok_or_else(|| UnitError::NotUtf8 {
        what,
        path: path.into(),
    })?;
    if s.chars().any(char::is_control) {
        return Err(UnitError::ControlCharacter {
            what,
            path: path.into(),
        });
    }
    Ok(s)
}

/// One argument of ExecStart=/ExecStop=: systemd expands specifiers in each
/// word after unquoting it (`%%` is a `%`) and, when the command runs,
/// variables (`$$` is a `$`; systemd.service(5) "COMMAND LINES").
fn exec_word(s: &str) -> String {
    quote(&escape_exec(s))
}

fn escape_exec(s: &str) -> String {
    escape_specifiers(s).replace('$', "$$")
}

/// A path of RequiresMountsFor= or the executable: specifiers, no variables.
fn path_word(s: &str) -> String {
    quote(&escape_specifiers(s))
}

/// systemd.unit(5) "SPECIFIERS": `%%` resolves to a single `%`.
fn escape_specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// One word as systemd splits a setting into words (systemd.syntax(7)
/// "Quoting"): left bare when it has nothing but characters that are never
/// special there, else double-quoted, where only `\` and `"` need a backslash
/// (an unquoted `\` would start a C escape, whitespace split the word, a quote
/// start a quoted part, a lone `;` separate commands).
fn quote(s: &str) -> String {
    let bare = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%$".contains(&b));
    if bare {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Sends `state` to the service manager (sd_notify(3)): Ok(false) when there is
/// none to tell (`$NOTIFY_SOCKET` unset or empty, as outside a `Type=notify`
/// unit), Ok(true) once sent.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(socket) if !socket.is_empty() => notify_to(&socket, state).map(|()| true),
        _ => Ok(false),
    }
}

/// Sends `state` as one datagram from an unbound socket to `socket`, a
/// `$NOTIFY_SOCKET` value (sd_notify(3)): a path starting with `/` is a socket
/// in the file system, one starting with `@` a Linux abstract socket (the `@`
/// standing for the leading NUL, unix(7)). Nothing else is taken.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let bytes = socket.as_bytes();
    let sock = UnixDatagram::unbound()?;
    let sent = match bytes.first() {
        Some(b'/') => sock.send_to(state.as_bytes(), Path::new(socket))?,
        Some(b'@') => {
            let addr = SocketAddr::from_abstract_name(&bytes[1..])?;
            sock.send_to_addr(state.as_bytes(), &addr)?
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "${NOTIFY_SOCKET} {socket:?} is neither an absolute path nor an abstract socket (@name)"
                ),
            ));
        }
    };
    // A datagram goes whole or not at all; a short count would be a kernel
    // surprise, and systemd would read a truncated state.
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes to {socket:?}", state.len()),
        ));
    }
    Ok(())
}

/// READY=1 with a one-line STATUS= (shown by `systemctl status`).
pub fn ready(status: &str) -> io::Result<bool> {
    notify(&ready_state(status))
}

/// STOPPING=1: the service is shutting down (sd_notify(3)).
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

/// The state `ready` sends: a newline in `status` would start another
/// assignment (sd_notify(3) is newline-separated), so it becomes a space.
fn ready_state(status: &str) -> String {
    format!("READY=1\nSTATUS={}", status.replace(['\n', '\r'], " "))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn opts(manifest: &str) -> UnitOptions {
        UnitOptions {
            podshim: PathBuf::from("/usr/local/bin/podshim"),
            manifest: PathBuf::from(manifest),
            global_args: vec![],
            up_args: vec![],
            description: String::new(),
        }
    }

    /// The value of the one `key=` line of `unit`.
    fn setting<'a>(unit: &'a str, key: &str) -> &'a str {
        let prefix = format!("{key}=");
        let mut values = unit.lines().filter_map(|l| l.strip_prefix(&prefix));
        let v = values
            .next()
            .unwrap_or_else(|| panic!("no {key}= in\n{unit}"));
        assert!(values.next().is_none(), "two {key}= in\n{unit}");
        v
    }

    /// A command line split as systemd does, written from systemd.syntax(7) and
    /// systemd.service(5) independently of `quote`: words split at whitespace,
    /// `"…"`/`'…'` quoting anywhere in a word, C escapes (`\\ \" \' \n \t \s`)
    /// in and out of quotes; then in each word `%%` → `%` and `%I` → `instance`
    /// (any other specifier fails the test), and in every word but the first
    /// `$$` → `$` (a `${` or a word starting with a lone `$` fails it: systemd
    /// would expand a variable there).
    fn systemd_argv(line: &str, instance: Option<&str>) -> Vec<String> {
        let mut words = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut w = String::new();
            let mut raw = String::new();
            let mut quote: Option<char> = None;
            while let Some(c) = chars.next() {
                raw.push(c);
                match (c, quote) {
                    ('\\', _) => w.push(match chars.next().expect("trailing backslash") {
                        'n' => '\n',
                        't' => '\t',
                        's' => ' ',
                        e @ ('\\' | '"' | '\'') => e,
                        e => panic!("unknown escape \\{e} in {line}"),
                    }),
                    (q @ ('"' | '\''), None) => quote = Some(q),
                    (c, Some(q)) if c == q => quote = None,
                    (c, None) if c.is_ascii_whitespace() => break,
                    (c, _) => w.push(c),
                }
            }
            assert!(quote.is_none(), "unbalanced quote in {line}");
            // systemd looks for the separator in the raw text, before unquoting.
            assert_ne!(
                raw.trim_end(),
                ";",
                "a lone ; would separate commands: {line}"
            );
            words.push(w);
        }
        words
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                let w = resolve_specifiers(&w, instance);
                if i == 0 { w } else { resolve_variables(&w) }
            })
            .collect()
    }

    fn resolve_specifiers(w: &str, instance: Option<&str>) -> String {
        let mut out = String::new();
        let mut chars = w.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match (chars.next(), instance) {
                (Some('%'), _) => out.push('%'),
                (Some('I'), Some(i)) => out.push_str(i),
                (s, _) => panic!("specifier %{s:?} would be expanded in {w:?}"),
            }
        }
        out
    }

    fn resolve_variables(w: &str) -> String {
        assert!(
            !w.starts_with('$') || w.starts_with("$$"),
            "{w:?} would be replaced by a variable's words"
        );
        let mut out = String::new();
        let mut chars = w.chars();
        while let Some(c) = chars.next() {
            if c != '$' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('$') => out.push('$'),
                Some('{') => panic!("${{ would expand a variable in {w:?}"),
                Some(o) => {
                    out.push('$');
                    out.push(o);
                }
                None => out.push('$'),
            }
        }
        out
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn plain_manifest_path_is_written_bare() {
        let u = unit(&opts("/etc/podshim/web.yaml")).unwrap();
        assert_eq!(
            setting(&u, "ExecStart"),
            "/usr/local/bin/podshim up --wait --replace /etc/podshim/web.yaml"
        );
        assert_eq!(
            setting(&u, "ExecStop"),
            "/usr/local/bin/podshim down /etc/podshim/web.yaml"
        );
    }

    #[test]
    fn special_characters_are_quoted_and_doubled() {
        let cases = [
            ("/srv/my pods/web.yaml", r#""/srv/my pods/web.yaml""#),
            ("/srv/100%/web.yaml", "/srv/100%%/web.yaml"),
            ("/srv/$HOME/web.yaml", "/srv/$$HOME/web.yaml"),
            ("/srv/a\"b'c.yaml", r#""/srv/a\"b'c.yaml""#),
            (r"/srv/back\slash.yaml", r#""/srv/back\\slash.yaml""#),
            (
                "/srv/%n ${X} \\ \"q\".yaml",
                r#""/srv/%%n $${X} \\ \"q\".yaml""#,
            ),
        ];
        for (path, word) in cases {
            let u = unit(&opts(path)).unwrap();
            assert_eq!(
                setting(&u, "ExecStart"),
                format!("/usr/local/bin/podshim up --wait --replace {word}"),
                "{path}"
            );
            assert_eq!(
                setting(&u, "ExecStop"),
                format!("/usr/local/bin/podshim down {word}"),
                "{path}"
            );
        }
    }

    #[test]
    fn exec_lines_parse_back_to_the_exact_argv() {
        let paths = [
            "/etc/podshim/web.yaml",
            "/srv/my pods/web.yaml",
            "/srv/100%/%n%%.yaml",
            "/srv/$HOME/${X}/$$/$",
            "/srv/a\"b'c.yaml",
            r"/srv/back\slash\\.yaml\",
            "/srv/;",
            "/srv/tab-free but  double  spaced ",
            "/srv/naïve ünïcode.yaml",
        ];
        let globals = [
            "--root",
            "/run/pod shim",
            "--log=info,x=%d",
            "$X",
            "",
            ";",
            "--runtime-arg=--debug \"x\"",
        ];
        let ups = ["--network", "none", "--cni-conf-dir", "/etc/cni/net 1.d%"];
        for path in paths {
            let o = UnitOptions {
                podshim: PathBuf::from("/opt/pod shim%/bin/podshim"),
                manifest: PathBuf::from(path),
                global_args: argv(&globals),
                up_args: argv(&ups),
                description: String::new(),
            };
            let u = unit(&o).unwrap();
            let mut start = argv(&["/opt/pod shim%/bin/podshim"]);
            start.extend(argv(&globals));
            let mut stop = start.clone();
            start.extend(argv(&["up", "--wait", "--replace"]));
            // `up`'s own options go to `up` alone: `down` takes none of them.
            start.extend(argv(&ups));
            start.push(path.to_string());
            stop.extend(argv(&["down", path]));
            assert_eq!(systemd_argv(setting(&u, "ExecStart"), None), start);
            assert_eq!(systemd_argv(setting(&u, "ExecStop"), None), stop);
        }
    }

    #[test]
    fn the_argv_parser_catches_unescaped_lines() {
        // The helper above is what the round trip rests on: it must reject what
        // systemd would read differently.
        for line in ["/p up /a%n", "/p up ${X}", "/p up $X", "/p up ;", "/p \"a"] {
            let r = std::panic::catch_unwind(|| systemd_argv(line, None));
            assert!(r.is_err(), "{line} parsed");
        }
        assert_eq!(
            systemd_argv(r#"/p a"b c"d 'e f' \"g"#, None),
            argv(&["/p", "ab cd", "e f", "\"g"])
        );
    }

    #[test]
    fn manifest_paths_with_a_newline_or_nul_are_refused() {
        for path in [
            "/etc/podshim/a\nb.yaml",
            "/etc/podshim/a\0b.yaml",
            "/x/a\rb",
        ] {
            let e = unit(&opts(path)).unwrap_err();
            assert!(matches!(
                e,
                UnitError::ControlCharacter {
                    what: "manifest",
                    ..
                }
            ));
            assert!(e.to_string().contains(&format!("{path:?}")), "{e}");
        }
        let o = TemplateOptions {
            podshim: PathBuf::from("/bin/podshim"),
            dir: PathBuf::from("/etc/pods\n"),
            global_args: vec![],
            up_args: vec![],
        };
        assert!(matches!(
            template_unit(&o),
            Err(UnitError::ControlCharacter { .. })
        ));
    }

    #[test]
    fn relative_and_non_utf8_paths_are_refused() {
        use std::os::unix::ffi::OsStringExt;
        assert!(matches!(
            unit(&opts("web.yaml")),
            Err(UnitError::NotAbsolute { .. })
        ));
        let mut o = opts("/etc/web.yaml");
        o.manifest = PathBuf::from(std::ffi::OsString::from_vec(b"/etc/\xff.yaml".to_vec()));
        assert!(matches!(unit(&o), Err(UnitError::NotUtf8 { .. })));
        let mut o = opts("/etc/web.yaml");
        o.global_args = argv(&["--root", "run/x"]);
        assert!(matches!(
            unit(&o),
            Err(UnitError::NotAbsolute { what: "--root", .. })
        ));
        o.global_args = argv(&["--log", "a\nb"]);
        assert!(matches!(
            unit(&o),
            Err(UnitError::ControlCharacter {
                what: "global argument",
                ..
            })
        ));
    }

    #[test]
    fn executable_paths_systemd_cannot_hold_are_refused() {
        for exe in [
            "/opt/a\"b/podshim",
            "/opt/a\\b/podshim",
            "/opt/$x/podshim",
            "/opt/",
        ] {
            let mut o = opts("/etc/web.yaml");
            o.podshim = PathBuf::from(exe);
            assert!(
                matches!(unit(&o), Err(UnitError::Executable { .. })),
                "{exe}"
            );
        }
        let mut o = opts("/etc/web.yaml");
        o.podshim = PathBuf::from("podshim");
        assert!(matches!(unit(&o), Err(UnitError::NotAbsolute { .. })));
    }

    #[test]
    fn service_is_notify_with_main_access_and_mixed_kill_mode() {
        let mut o = opts("/etc/podshim/web.yaml");
        o.description = "web: 100% up\nnow".into();
        let u = unit(&o).unwrap();
        for (key, value) in [
            ("Description", "web: 100%% up now"),
            ("Documentation", "man:podshim(1)"),
            ("Wants", "network-online.target"),
            ("After", "network-online.target"),
            ("RequiresMountsFor", "/run /etc/podshim/web.yaml"),
            ("Type", "notify"),
            ("NotifyAccess", "main"),
            ("Restart", "on-failure"),
            ("RestartSec", "10"),
            ("TimeoutStartSec", "330"),
            ("TimeoutStopSec", "90"),
            ("KillMode", "mixed"),
            ("WantedBy", "default.target"),
        ] {
            assert_eq!(setting(&u, key), value, "{key}");
        }
        assert!(!u.contains("Environment="));
        let sections: Vec<_> = u.lines().filter(|l| l.starts_with('[')).collect();
        assert_eq!(sections, ["[Unit]", "[Service]", "[Install]"]);
        let o = opts("/etc/podshim/web.yaml");
        assert_eq!(
            setting(&unit(&o).unwrap(), "Description"),
            "podshim pods of /etc/podshim/web.yaml"
        );
    }

    #[test]
    fn requires_mounts_for_the_state_root_given_by_root() {
        let mut o = opts("/srv/pods/web.yaml");
        o.global_args = argv(&["--root", "/var/run/a", "--root=/mnt/state 1%"]);
        let u = unit(&o).unwrap();
        assert_eq!(
            setting(&u, "RequiresMountsFor"),
            r#""/mnt/state 1%%" /srv/pods/web.yaml"#
        );
        assert_eq!(
            setting(&u, "ExecStop"),
            r#"/usr/local/bin/podshim --root /var/run/a "--root=/mnt/state 1%%" down /srv/pods/web.yaml"#
        );
        o.global_args = argv(&["--root", "/var/lib/podshim-run"]);
        let u = unit(&o).unwrap();
        assert_eq!(
            setting(&u, "RequiresMountsFor"),
            "/var/lib/podshim-run /srv/pods/web.yaml"
        );
    }

    fn template(dir: &str) -> String {
        template_unit(&TemplateOptions {
            podshim: PathBuf::from("/usr/bin/podshim"),
            dir: PathBuf::from(dir),
            global_args: argv(&["--root", "/run/p"]),
            up_args: vec![],
        })
        .unwrap()
    }

    #[test]
    fn template_runs_the_instance_manifest_of_its_directory() {
        let u = template("/etc/podshim/pods/");
        assert_eq!(
            setting(&u, "ExecStart"),
            "/usr/bin/podshim --root /run/p up --wait --replace /etc/podshim/pods/%I"
        );
        assert_eq!(
            setting(&u, "ExecStop"),
            "/usr/bin/podshim --root /run/p down /etc/podshim/pods/%I"
        );
        assert_eq!(
            setting(&u, "Description"),
            "podshim pods of /etc/podshim/pods/%I"
        );
        assert_eq!(
            setting(&u, "RequiresMountsFor"),
            "/run/p /etc/podshim/pods/"
        );
        let instance = "my web $X.yaml";
        assert_eq!(
            systemd_argv(setting(&u, "ExecStart"), Some(instance)),
            argv(&[
                "/usr/bin/podshim",
                "--root",
                "/run/p",
                "up",
                "--wait",
                "--replace",
                "/etc/podshim/pods/my web $X.yaml"
            ])
        );
    }

    #[test]
    fn template_doubles_percent_and_dollar_in_its_directory() {
        let u = template("/srv/100% $pods");
        assert_eq!(
            setting(&u, "ExecStop"),
            r#"/usr/bin/podshim --root /run/p down "/srv/100%% $$pods/%I""#
        );
        assert_eq!(
            systemd_argv(setting(&u, "ExecStop"), Some("a.yaml"))
                .last()
                .unwrap(),
            "/srv/100% $pods/a.yaml"
        );
        assert_eq!(
            setting(&u, "Description"),
            "podshim pods of /srv/100%% $pods/%I"
        );
        assert_eq!(
            template("/")
                .lines()
                .find(|l| l.starts_with("ExecStop"))
                .unwrap(),
            "ExecStop=/usr/bin/podshim --root /run/p down /%I"
        );
    }

    #[test]
    fn template_header_explains_systemd_escape() {
        let u = template("/etc/podshim/pods");
        let header: Vec<_> = u.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(
            header
                .iter()
                .any(|l| l
                    .contains("systemctl enable --now podshim@$(systemd-escape web.yaml).service")),
            "{u}"
        );
        assert!(header.iter().any(|l| l.contains("/etc/podshim/pods")));
        assert_eq!(u.lines().nth(header.len()), Some("[Unit]"));
    }

    fn receiver(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn notify_to_delivers_one_datagram_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1\nSTATUS=3 pods running").unwrap();
        assert_eq!(receiver(&sock), "READY=1\nSTATUS=3 pods running");
        notify_to(path.as_os_str(), "STOPPING=1").unwrap();
        assert_eq!(receiver(&sock), "STOPPING=1");
    }

    #[test]
    fn notify_to_delivers_to_an_abstract_socket() {
        let name = format!(
            "podshim-test-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(OsStr::new(&format!("@{name}")), "READY=1").unwrap();
        assert_eq!(receiver(&sock), "READY=1");
    }

    #[test]
    fn notify_to_refuses_a_relative_name() {
        for socket in ["run/notify", "notify", "", "vsock:2:1"] {
            let e = notify_to(OsStr::new(socket), "READY=1").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{socket}");
        }
    }

    #[test]
    fn notify_to_a_missing_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = notify_to(dir.path().join("absent").as_os_str(), "READY=1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn ready_state_keeps_status_on_one_line() {
        assert_eq!(
            ready_state("3 pods running"),
            "READY=1\nSTATUS=3 pods running"
        );
        assert_eq!(ready_state("a\nREADY=0\r"), "READY=1\nSTATUS=a READY=0 ");
    }
}
