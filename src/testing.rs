//! For tests only: a test that cannot run here (not root, a tool missing) fails
//! loudly instead of passing silently: always in CI (`CI` set), and elsewhere unless
//! the developer asked for skips with `PODSHIM_ALLOW_SKIP=1`.

/// Call when the test cannot run; returns only when skipping is allowed (then the
/// caller returns), saying so on stderr.
pub fn cannot_run(reason: &str) {
    let ci = std::env::var_os("CI").is_some();
    let allowed = std::env::var("PODSHIM_ALLOW_SKIP").is_ok_and(|v| v == "1");
    if ci || !allowed {
        panic!(
            "this test cannot run: {reason}{}",
            if ci {
                " (CI runs every test: scripts/setup installs what they need)"
            } else {
                " (install it, or set PODSHIM_ALLOW_SKIP=1 to skip such tests)"
            }
        );
    }
    eprintln!("SKIPPED: {reason}");
}
