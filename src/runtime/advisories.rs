//! Known vulnerabilities of the runtime podshim drives, checked once per runtime
//! binary: a runc older than the release that fixes a container breakout is named
//! with its CVEs when `up` runs, since every pod podshim starts depends on it.
//! (The figures are upstream's releases; a distribution may have backported the
//! fixes into an older version number, which the warning says.)

use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A `MAJOR.MINOR.PATCH[-rc.N]` version, ordered as releases are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    major: u32,
    minor: u32,
    patch: u32,
    /// A release candidate sorts before its release: `u32::MAX` is the release.
    rc: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
            rc: u32::MAX,
        }
    }

    pub const fn rc(major: u32, minor: u32, patch: u32, rc: u32) -> Version {
        Version {
            major,
            minor,
            patch,
            rc,
        }
    }

    /// `1.1.5`, `1.1.5+ds1` (a distribution's suffix), `1.2.0-rc.3`, `1.0.0-rc92`
    /// (runc 1.0's candidates), `1.1.7-0ubuntu1~22.04.2` (a distribution's
    /// revision of 1.1.7).
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.split('+').next()?;
        let (release, pre) = match text.split_once('-') {
            Some((r, p)) => (r, Some(p)),
            None => (text, None),
        };
        let mut parts = release.split('.').map(|p| p.parse::<u32>().ok());
        let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
        if parts.next().is_some() {
            return None;
        }
        let rc = match pre.and_then(|p| p.strip_prefix("rc")) {
            Some(n) => n.strip_prefix('.').unwrap_or(n).parse().ok()?,
            // No suffix, or a packager's revision of the release.
            None => u32::MAX,
        };
        Some(Version::rc(major, minor, patch, rc))
    }

    fn series(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.rc != u32::MAX {
            write!(f, "-rc.{}", self.rc)?;
        }
        Ok(())
    }
}

/// CVEs and the first fixed release of each maintained series.
struct Advisory {
    cves: &'static str,
    what: &'static str,
    fixed: &'static [Version],
}

const RUNC: &[Advisory] = &[
    Advisory {
        cves: "CVE-2024-21626",
        what: "a leaked host fd as the working directory lets a container reach the host filesystem",
        fixed: &[Version::new(1, 1, 12)],
    },
    Advisory {
        cves: "CVE-2024-45310",
        what: "a race with a shared volume lets a container create files on the host",
        fixed: &[Version::new(1, 1, 14), Version::rc(1, 2, 0, 3)],
    },
    Advisory {
        cves: "CVE-2025-31133, CVE-2025-52565, CVE-2025-52881",
        what: "races on /dev/null, /dev/console and procfs writes let a container escape its masks and LSM settings",
        fixed: &[
            Version::new(1, 2, 8),
            Version::new(1, 3, 3),
            Version::rc(1, 4, 0, 3),
        ],
    },
];

impl Advisory {
    /// Affected: older than the fix of its own series, or of a series before the
    /// first one fixed. A later series than any listed was released fixed.
    fn affects(&self, v: Version) -> bool {
        match self.fixed.iter().find(|f| f.series() == v.series()) {
            Some(fix) => v < *fix,
            None => self.fixed.iter().all(|f| v.series() < f.series()),
        }
    }
}

/// The advisories `<runtime> --version` is affected by, and the version it gave.
/// Only runc is known; other runtimes have their own lines of releases.
fn affected(version_output: &str) -> Option<(&str, Vec<&'static Advisory>)> {
    let first = version_output.lines().next()?;
    let written = first.strip_prefix("runc version ")?.trim();
    let v = Version::parse(written)?;
    let hits: Vec<&Advisory> = RUNC.iter().filter(|a| a.affects(v)).collect();
    (!hits.is_empty()).then_some((written, hits))
}

/// What `<runtime> --version` says, as one warning naming every CVE it predates.
pub fn warnings(version_output: &str) -> Vec<String> {
    let Some((written, hits)) = affected(version_output) else {
        return Vec::new();
    };
    let each: Vec<String> = hits
        .iter()
        .map(|a| {
            let fixes: Vec<String> = a.fixed.iter().map(|f| f.to_string()).collect();
            format!("{} (fixed in {}: {})", a.cves, fixes.join(", "), a.what)
        })
        .collect();
    vec![format!(
        "runc {written} is older than the releases that fix {}; upgrade runc, unless your distribution backported the fixes",
        each.join("; ")
    )]
}

/// How long `--version` may take; a runtime that hangs is not waited for.
const VERSION_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_OUTPUT: u64 = 4096;

/// The warnings for `program`, running `program --version` only when this binary
/// (path, inode, size, mtime) was not checked before; the answer is kept in
/// `cache_dir`. Failures to run or cache it are not the pod's problem: no
/// warning, and it is tried again next time.
pub fn check(program: &Path, cache_dir: &Path) -> Vec<String> {
    version_of(program, cache_dir)
        .map(|o| warnings(&o))
        .unwrap_or_default()
}

/// Why `<runtime> --version` cannot run a pod in a user namespace of its own
/// (`hostUsers: false`) as Kubernetes means it, if it cannot: youki 0.7's
/// `exec` never enters the container's user namespace (libcontainer's tenant
/// builder joins the ipc, uts, net, pid, mnt, cgroup and time namespaces
/// only), so `podshim exec` and exec probes and hooks would run as the host's
/// root beside the pod's processes.
pub fn user_namespace_refusal(version_output: &str) -> Option<String> {
    let first = version_output.lines().next()?;
    // `youki version: 0.7.0` (and without the colon).
    let written = first.strip_prefix("youki version")?;
    let written = written.strip_prefix(':').unwrap_or(written).trim();
    let v = Version::parse(written)?;
    (v.series() <= (0, 7)).then(|| {
        format!(
            "spec.hostUsers: youki {written} runs `exec` outside a container's user namespace (its exec joins ipc, uts, net, pid, mnt, cgroup and time only), so exec probes, hooks and `podshim exec` would run as the host's root; run this pod with runc (--runtime runc)"
        )
    })
}

/// [`user_namespace_refusal`] for `program`, its `--version` cached as
/// [`check`] caches it.
pub fn check_user_namespace(program: &Path, cache_dir: &Path) -> Option<String> {
    user_namespace_refusal(&version_of(program, cache_dir)?)
}

/// `program --version`, run only when this binary (path, inode, size, mtime)
/// was not asked before; the answer is kept in `cache_dir`.
fn version_of(program: &Path, cache_dir: &Path) -> Option<String> {
    let Ok(meta) = std::fs::metadata(program) else {
        return None;
    };
    let identity = format!(
        "{}\n{} {} {} {}.{}\n",
        program.display(),
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    let cache = cache_file(cache_dir, program);
    if let Ok(bytes) = crate::fsutil::read_regular(&cache, MAX_OUTPUT * 2)
        && let Ok(text) = String::from_utf8(bytes)
        && let Some(output) = text.strip_prefix(&identity)
    {
        return Some(output.to_string());
    }
    let output = version_output(program)?;
    if std::fs::create_dir_all(cache_dir).is_ok() {
        let _ =
            crate::fsutil::write_atomic(&cache, format!("{identity}{output}").as_bytes(), 0o644);
    }
    Some(output)
}

fn cache_file(cache_dir: &Path, program: &Path) -> PathBuf {
    let digest = Sha256::digest(program.as_os_str().as_encoded_bytes());
    cache_dir.join(hex::encode(&digest[..16]))
}

fn version_output(program: &Path) -> Option<String> {
    let mut child = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    // The CLI has no other child waiter, so waiting on this one is safe
    // (ARCHITECTURE rule 3 is about the supervisor).
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child
        .stdout
        .take()?
        .take(MAX_OUTPUT)
        .read_to_string(&mut out)
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youki_up_to_0_7_is_refused_a_user_namespace_pod_and_runc_is_not() {
        let refusal = user_namespace_refusal("youki version: 0.7.0\ncommit: 0.7.0-0-g\n").unwrap();
        assert!(
            refusal.starts_with("spec.hostUsers: youki 0.7.0 runs `exec` outside"),
            "{refusal}"
        );
        assert!(user_namespace_refusal("youki version: 0.5.1\n").is_some());
        assert_eq!(user_namespace_refusal("youki version 0.8.0\n"), None);
        assert_eq!(user_namespace_refusal("runc version 1.1.5+ds1\n"), None);
    }

    fn cves(output: &str) -> Vec<&'static str> {
        affected(output).map_or_else(Vec::new, |(_, hits)| hits.iter().map(|a| a.cves).collect())
    }

    #[test]
    fn versions_parse_and_order_like_releases() {
        assert_eq!(Version::parse("1.1.5+ds1"), Some(Version::new(1, 1, 5)));
        assert_eq!(Version::parse("1.2.0-rc.3"), Some(Version::rc(1, 2, 0, 3)));
        assert_eq!(Version::parse("1.2"), None);
        assert_eq!(Version::parse("1.0.0-rc92"), Some(Version::rc(1, 0, 0, 92)));
        assert_eq!(
            Version::parse("1.1.7-0ubuntu1~22.04.2"),
            Some(Version::new(1, 1, 7))
        );
        assert_eq!(Version::parse("1.2.3-rcx"), None);
        assert!(Version::rc(1, 4, 0, 2) < Version::rc(1, 4, 0, 3));
        assert!(Version::rc(1, 4, 0, 3) < Version::new(1, 4, 0));
        assert!(Version::new(1, 1, 14) < Version::rc(1, 2, 0, 1));
    }

    #[test]
    fn each_runc_release_is_warned_of_the_cves_it_is_older_than_the_fix_of() {
        const ALL3: [&str; 3] = [
            "CVE-2024-21626",
            "CVE-2024-45310",
            "CVE-2025-31133, CVE-2025-52565, CVE-2025-52881",
        ];
        let rows: &[(&str, &[&str])] = &[
            ("runc version 1.1.5+ds1\ncommit: x\n", &ALL3),
            ("runc version 1.0.0-rc92\n", &ALL3),
            ("runc version 1.1.7-0ubuntu1~22.04.2\n", &ALL3),
            ("runc version 1.1.12\n", &ALL3[1..]),
            ("runc version 1.1.14\n", &ALL3[2..]),
            ("runc version 1.2.0-rc.2\n", &ALL3[1..]),
            ("runc version 1.2.7\n", &ALL3[2..]),
            ("runc version 1.2.8\n", &[]),
            ("runc version 1.3.2\n", &ALL3[2..]),
            ("runc version 1.3.3\n", &[]),
            ("runc version 1.4.0-rc.2\n", &ALL3[2..]),
            ("runc version 1.4.0\n", &[]),
            ("runc version 1.5.1\n", &[]),
            // Other runtimes and unreadable answers are not judged.
            ("youki version: 0.7.0\n", &[]),
            ("crun version 1.8\n", &[]),
            ("runc version banana\n", &[]),
            ("", &[]),
        ];
        for (output, want) in rows {
            assert_eq!(cves(output), *want, "{output}");
        }
        let w = warnings("runc version 1.1.13\n");
        assert_eq!(w.len(), 1, "one line for all: {w:?}");
        assert!(
            w[0].starts_with("runc 1.1.13 is older than the releases that fix CVE-2024-45310 (fixed in 1.1.14, 1.2.0-rc.3: "),
            "{w:?}"
        );
        assert!(w[0].contains("; CVE-2025-31133, CVE-2025-52565, CVE-2025-52881 (fixed in 1.2.8, 1.3.3, 1.4.0-rc.3: "), "{w:?}");
        assert!(
            w[0].ends_with("unless your distribution backported the fixes"),
            "{w:?}"
        );
        assert_eq!(warnings("runc version 1.3.3\n"), Vec::<String>::new());
    }

    #[test]
    fn a_runtime_is_asked_once_per_binary_and_again_when_it_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let program = tmp.path().join("runc");
        let calls = tmp.path().join("calls");
        let script = |version: &str| {
            format!(
                "#!/bin/sh\necho x >> {}\necho 'runc version {version}'\n",
                calls.display()
            )
        };
        crate::fsutil::write_atomic(&program, script("1.1.5").as_bytes(), 0o755).unwrap();
        let cache = tmp.path().join("cache");
        assert_eq!(check(&program, &cache).len(), 1);
        assert_eq!(check(&program, &cache).len(), 1);
        let count = || std::fs::read_to_string(&calls).unwrap().lines().count();
        assert_eq!(count(), 1, "asked once");
        // An upgrade replaces the binary (a new inode): asked again.
        crate::fsutil::write_atomic(&program, script("1.3.3").as_bytes(), 0o755).unwrap();
        assert_eq!(check(&program, &cache), Vec::<String>::new());
        assert_eq!(count(), 2);
    }

    #[test]
    fn a_runtime_that_hangs_on_version_is_not_waited_for() {
        let tmp = tempfile::tempdir().unwrap();
        let program = tmp.path().join("runc");
        crate::fsutil::write_atomic(&program, b"#!/bin/sh\nexec sleep 60\n", 0o755).unwrap();
        assert_eq!(
            check(&program, &tmp.path().join("cache")),
            Vec::<String>::new()
        );
    }
}
