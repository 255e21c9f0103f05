//! Stop signals: an image's STOPSIGNAL is untrusted text that ends up in runtime
//! arguments and in the generated `stop.sh`, so it is parsed into a number once
//! (docker's and containerd's rule, moby/sys/signal `ParseSignal`: a number, or a
//! name with or without `SIG`, any case, `RTMIN+n`/`RTMAX-n` included) and only
//! ever rendered back from that number.

use std::fmt;

/// Standard Linux signals, by the kernel's numbers for this architecture.
const NAMES: &[(&str, libc::c_int)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Other spellings moby accepts.
const ALIASES: &[(&str, libc::c_int)] = &[
    ("IOT", libc::SIGABRT),
    ("CLD", libc::SIGCHLD),
    ("POLL", libc::SIGIO),
];

/// The real-time range as userspace sees it (glibc keeps 32 and 33 for itself; moby's
/// table starts RTMIN at 34 too).
const RTMIN: libc::c_int = 34;
const RTMAX: libc::c_int = 64;

/// A signal, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(libc::c_int);

impl Signal {
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const KILL: Signal = Signal(libc::SIGKILL);

    pub fn parse(text: &str) -> Result<Signal, String> {
        let bad = || format!("invalid signal {text:?}");
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<libc::c_int>() {
                Ok(n) if (1..=RTMAX).contains(&n) && !(32..RTMIN).contains(&n) => Ok(Signal(n)),
                _ => Err(bad()),
            };
        }
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some((_, n)) = NAMES.iter().chain(ALIASES).find(|(n, _)| *n == name) {
            return Ok(Signal(*n));
        }
        let offset = |rest: &str| -> Option<libc::c_int> {
            (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
                .then(|| rest.parse().ok())
                .flatten()
        };
        let n = match name {
            "RTMIN" => Some(RTMIN),
            "RTMAX" => Some(RTMAX),
            _ => {
                if let Some(rest) = name.strip_prefix("RTMIN+") {
                    offset(rest).map(|o| RTMIN + o)
                } else if let Some(rest) = name.strip_prefix("RTMAX-") {
                    offset(rest).map(|o| RTMAX - o)
                } else {
                    None
                }
            }
        };
        match n {
            Some(n) if (RTMIN..=RTMAX).contains(&n) => Ok(Signal(n)),
            _ => Err(bad()),
        }
    }

    pub fn number(self) -> libc::c_int {
        self.0
    }

    /// The canonical name: `SIGTERM`, `SIGRTMIN+3`. Only `[A-Z0-9+]`, so it is safe
    /// in a shell word, yet quoted wherever podshim writes one.
    pub fn name(self) -> String {
        match NAMES.iter().find(|(_, n)| *n == self.0) {
            Some((name, _)) => format!("SIG{name}"),
            None if self.0 == RTMIN => "SIGRTMIN".into(),
            None => format!("SIGRTMIN+{}", self.0 - RTMIN),
        }
    }

    /// What runtimes are given: a standard name, or the number of a real-time
    /// signal (runc, youki and crun all take numbers).
    pub fn runtime_arg(self) -> String {
        if self.0 < 32 {
            self.name()
        } else {
            self.0.to_string()
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Signal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Signal, D::Error> {
        let text = String::deserialize(d)?;
        Signal::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_docker_and_render_canonically() {
        let cases = [
            ("SIGTERM", "SIGTERM"),
            ("TERM", "SIGTERM"),
            ("term", "SIGTERM"),
            ("15", "SIGTERM"),
            ("SIGQUIT", "SIGQUIT"),
            ("sigwinch", "SIGWINCH"),
            ("9", "SIGKILL"),
            ("IOT", "SIGABRT"),
            ("RTMIN", "SIGRTMIN"),
            ("SIGRTMIN+3", "SIGRTMIN+3"),
            ("RTMAX", "SIGRTMIN+30"),
            ("RTMAX-1", "SIGRTMIN+29"),
            ("37", "SIGRTMIN+3"),
        ];
        for (text, name) in cases {
            assert_eq!(
                Signal::parse(text).map(|s| s.name()),
                Ok(name.into()),
                "{text}"
            );
        }
        assert_eq!(Signal::parse("SIGRTMIN+3").unwrap().runtime_arg(), "37");
        assert_eq!(Signal::TERM.runtime_arg(), "SIGTERM");
    }

    #[test]
    fn hostile_or_unknown_signals_are_refused() {
        for text in [
            "",
            "0",
            "65",
            "32",
            "SIGTERM; rm -rf /",
            "TERM'",
            "$(reboot)",
            "SIGFOO",
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN+",
            "-1",
            "99999999999999999999",
        ] {
            assert!(Signal::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn signals_round_trip_through_serde() {
        let s = Signal::parse("SIGRTMIN+2").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"SIGRTMIN+2\"");
        assert_eq!(serde_json::from_str::<Signal>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Signal>("\"TERM;x\"").is_err());
    }
}
