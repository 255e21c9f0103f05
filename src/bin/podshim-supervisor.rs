//! `podshim-supervisor POD_DIR`: the per-pod supervisor that `podshim up` starts
//! (detached, its stdout the report pipe, its stderr the pod's supervisor.log).
//! A binary of its own so that a supervisor costs little memory: it links the
//! lifecycle, the runtime client and the log writer, nothing of manifests,
//! registries or the CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    let level = match std::env::var("PODSHIM_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("info") => tracing::Level::INFO,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .init();
    let mut args = std::env::args_os().skip(1);
    let (Some(pod_dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: podshim-supervisor POD_DIR (started by podshim up)");
        return ExitCode::from(2);
    };
    match podshim::supervisor::supervise(std::path::Path::new(&pod_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("podshim-supervisor: {e:#}");
            ExitCode::FAILURE
        }
    }
}
