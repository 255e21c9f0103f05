//! What `execve(2)` accepts of an image's `Env`, `Entrypoint` and `Cmd`, checked
//! when the image is pulled or loaded: an image the kernel would refuse to start
//! (E2BIG) is refused then, with the field named, instead of `up` waiting for runc
//! to fail.
//!
//! The kernel's rules (fs/exec.c, `copy_strings` and `bprm_stack_limits`; see
//! execve(2) "Limits on size of arguments and environment"):
//! - each argument or environment string, its NUL included, is at most
//!   MAX_ARG_STRLEN = 32 pages (128 KiB with 4 KiB pages);
//! - all of them, NULs included, plus one pointer per string, fit in a quarter
//!   of the stack rlimit, capped at 6 MiB (3/4 of _STK_LIM) and at least
//!   ARG_MAX = 32 pages. [`arg_limit`] is that figure for this process (the
//!   container inherits podshim's stack rlimit: podshim sets none of its own).
//!
//! The pod's own `env`, `command` and `args` add to the image's at `up`; this
//! check is of what the image alone brings (`translate` checks the final argv
//! and environment of each container with the same rules).

/// Bytes of one string, NUL included (MAX_ARG_STRLEN, 32 pages).
pub fn max_arg_strlen() -> u64 {
    32 * page_size()
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// The total the kernel allows for argv and envp (strings and pointers) to a
/// process of ours: `sysconf(_SC_ARG_MAX)` (glibc: a quarter of the stack
/// rlimit, at least ARG_MAX), within the kernel's own bounds of ARG_MAX and 6 MiB.
pub fn arg_limit() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
    let v = if v > 0 { v as u64 } else { 0 };
    v.clamp(32 * page_size(), 6 << 20)
}

/// An image config the kernel would not exec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecTooBig {
    #[error(
        "config {field}[{index}] is {len} bytes, more than the {max} bytes execve accepts for one string (MAX_ARG_STRLEN)"
    )]
    String {
        field: &'static str,
        index: usize,
        len: u64,
        max: u64,
    },
    #[error(
        "config {fields} take {total} bytes (strings and pointers), more than the {limit} bytes execve accepts (ARG_MAX)"
    )]
    Total {
        fields: &'static str,
        total: u64,
        limit: u64,
    },
}

/// Bytes the kernel counts for `strings`: each one with its NUL, and a pointer.
pub fn counted(strings: &[String]) -> u64 {
    strings
        .iter()
        .map(|s| s.len() as u64 + 1 + std::mem::size_of::<usize>() as u64)
        .sum()
}

/// The first of `strings` longer than `max_string` with its NUL: its index and
/// that length.
pub fn first_too_long(strings: &[String], max_string: u64) -> Option<(usize, u64)> {
    strings
        .iter()
        .map(|s| s.len() as u64 + 1)
        .enumerate()
        .find(|(_, len)| *len > max_string)
}

/// Checks the image's `Env`, `Entrypoint` and `Cmd` against the limits: each
/// string against `max_string` (NUL included), all of them together against
/// `limit`. The argv is Entrypoint followed by Cmd (image-spec config.md).
pub fn check(
    env: &[String],
    entrypoint: &[String],
    cmd: &[String],
    max_string: u64,
    limit: u64,
) -> Result<(), ExecTooBig> {
    for (field, strings) in [("Env", env), ("Entrypoint", entrypoint), ("Cmd", cmd)] {
        if let Some((index, len)) = first_too_long(strings, max_string) {
            return Err(ExecTooBig::String {
                field,
                index,
                len,
                max: max_string,
            });
        }
    }
    let (e, p, c) = (counted(env), counted(entrypoint), counted(cmd));
    let total = e + p + c;
    if total <= limit {
        return Ok(());
    }
    // Name the field that is too big by itself, if one is.
    let fields = if e > limit {
        "Env"
    } else if p > limit {
        "Entrypoint"
    } else if c > limit {
        "Cmd"
    } else {
        "Env, Entrypoint and Cmd together"
    };
    Err(ExecTooBig::Total {
        fields,
        total,
        limit,
    })
}

/// [`check`] of an image config, against this host's limits.
pub fn check_config(config: &oci_spec::image::ImageConfiguration) -> Result<(), ExecTooBig> {
    let Some(c) = config.config() else {
        return Ok(());
    };
    let none = Vec::new();
    check(
        c.env().as_ref().unwrap_or(&none),
        c.entrypoint().as_ref().unwrap_or(&none),
        c.cmd().as_ref().unwrap_or(&none),
        max_arg_strlen(),
        arg_limit(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(n: usize, len: usize) -> Vec<String> {
        (0..n).map(|_| "x".repeat(len)).collect()
    }

    #[test]
    fn one_string_longer_than_max_arg_strlen_is_refused_naming_its_field() {
        let max = 128 << 10;
        let ok = strings(1, max as usize - 1);
        assert_eq!(check(&ok, &[], &[], max, 6 << 20), Ok(()));
        let big = strings(1, max as usize);
        let err = check(&[], &[], &big, max, 6 << 20).unwrap_err();
        assert!(matches!(
            err,
            ExecTooBig::String {
                field: "Cmd",
                index: 0,
                ..
            }
        ));
        assert!(err.to_string().contains("MAX_ARG_STRLEN"), "{err}");
        let err = check(&big, &[], &[], max, 6 << 20).unwrap_err();
        assert!(err.to_string().starts_with("config Env[0]"), "{err}");
    }

    #[test]
    fn the_total_counts_each_string_its_nul_and_a_pointer() {
        // 10 strings of 7 bytes: 10 * (7 + 1 + 8) = 160 bytes on 64-bit.
        let ten = strings(10, 7);
        let need = 10 * (8 + std::mem::size_of::<usize>() as u64);
        assert_eq!(check(&ten, &[], &[], 1 << 20, need), Ok(()));
        assert!(matches!(
            check(&ten, &[], &[], 1 << 20, need - 1),
            Err(ExecTooBig::Total { fields: "Env", .. })
        ));
    }

    #[test]
    fn fields_too_big_only_together_are_named_together() {
        let half = strings(10, 7);
        let limit = 15 * (8 + std::mem::size_of::<usize>() as u64);
        let err = check(&half, &[], &half, 1 << 20, limit).unwrap_err();
        assert!(
            err.to_string().contains("Env, Entrypoint and Cmd together"),
            "{err}"
        );
        let err = check(&[], &half, &[], 1 << 20, limit / 2).unwrap_err();
        assert!(err.to_string().starts_with("config Entrypoint "), "{err}");
    }

    #[test]
    fn this_hosts_figures_are_within_the_kernels_bounds() {
        assert!(max_arg_strlen() >= 128 << 10);
        let l = arg_limit();
        assert!((128 << 10..=6 << 20).contains(&l), "{l}");
    }
}
