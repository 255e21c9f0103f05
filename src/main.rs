//! The podshim binary: parse the command line, set up logging, map errors to exit
//! codes (2: invalid input, as kubectl does; 1: anything else). A closed stdout
//! (`podshim ps | head -1`) ends it quietly.

use std::process::ExitCode;

use clap::Parser;
use podshim::cli::{self, Cli};
use podshim::manifest::ManifestError;
use podshim::model::PodKeyError;
use podshim::pod::PodError;
use podshim::translate::TranslateError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.global.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) if cli::out::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("podshim: {}", cli::out::render_error(&err));
            let invalid_input = err.chain().any(|e| {
                matches!(
                    e.downcast_ref::<ManifestError>(),
                    Some(ManifestError::Invalid { .. })
                ) || e.downcast_ref::<TranslateError>().is_some()
                    || e.downcast_ref::<PodKeyError>().is_some()
                    || e.downcast_ref::<PodError>()
                        .is_some_and(PodError::is_invalid_input)
            });
            if invalid_input {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
