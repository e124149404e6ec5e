//! The `dbopt` binary: argument parsing, configuration resolution and one file per command.
//!
//! Exit codes: 0 success, 1 an internal or machine failure (IO, SQLite), 2 a bad input
//! (a name, SQL, a path, a file, a configuration value) that the user can fix.

mod cli;
mod commands;
mod logging;
mod output;
mod progress;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Die quietly like other Unix tools when stdout is a closed pipe (`dbopt ... | head`),
    // instead of panicking in println!.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    logging::init(cli.global.verbose, cli.global.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(commands::dispatch(cli));
    // A query cancelled by statement_timeout may still hold a worker inside one long
    // DataFusion poll; dropping the runtime would wait for it, so give workers a moment only.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// 2 when the input is at fault, 1 when the machine is.
fn exit_code(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<dbopt::DbError>() {
        Some(e) if !e.is_user_error() => 1,
        _ => 2,
    }
}
