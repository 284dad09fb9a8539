//! The `guidebot` binary: parses the command line, sets up logging, runs the command on a tokio
//! runtime, and maps errors to an exit code. Everything else lives in the library.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = guidebot::cli::Cli::parse();
    if !cli.is_server() {
        guidebot::telemetry::init_for_cli();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let mut out = std::io::stdout();
    let result = runtime.block_on(guidebot::cli::run(cli, &env, &mut out));
    // Work still running on the blocking pool (a reload reading a huge corpus) must not keep the
    // process alive past its shutdown: the services have already stopped or timed out.
    runtime.shutdown_timeout(guidebot::serve::BLOCKING_WORK_TIMEOUT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `guidebot ... | head` closing the pipe early is not an error worth reporting.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
