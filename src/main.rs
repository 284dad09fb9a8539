//! The `guidebot` binary: parses the command line, sets up logging, runs the command, maps errors
//! to an exit code. Everything else lives in the library.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = guidebot::cli::Cli::parse();
    guidebot::telemetry::init_for_cli();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match guidebot::cli::run(cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
