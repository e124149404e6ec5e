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
    let cli = cli::Cli::parse();
    // A server must outlive clients that hang up, and a Ballista client or process must see a
    // peer that hung up as an error, not die of it (gRPC writes with writev, which raises
    // SIGPIPE): they keep SIGPIPE ignored (Rust's default). The `ballista` key set only in a
    // configuration file is not seen here; set it with --ballista or DBOPT_BALLISTA.
    let talks_to_peers = matches!(
        cli.command,
        cli::Command::Serve(_) | cli::Command::Cluster(_)
    ) || cli.global.ballista.is_some()
        || std::env::var_os("DBOPT_BALLISTA").is_some();
    if !talks_to_peers {
        restore_default_sigpipe();
    }
    logging::init(cli.global.verbose, cli.global.quiet);
    if matches!(
        cli.command,
        cli::Command::MigrationWorker(_) | cli::Command::Autopilot(_) | cli::Command::Serve(_)
    ) {
        bound_allocator_retention();
    }
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

/// Keeps glibc's allocator from holding freed memory that a rewrite no longer uses, so a
/// rewrite's resident memory stays near `memory_limit` plus a fixed overhead (README,
/// Migration, "Memory"). By default glibc gives each thread that contends an arena of its
/// own (up to 8 per core) and raises its mmap threshold to 32 MiB after large frees, so the
/// sort's and the Parquet writer's large buffers land in arenas that keep them after they are
/// freed: measured on a 1.6M-row sort at a 32 MiB limit, peak RSS 247 MiB with the defaults,
/// 153 MiB with two arenas and a fixed 1 MiB mmap/trim threshold, at the same speed.
/// Called before the runtime starts its threads; a no-op off glibc.
#[allow(unsafe_code)]
fn bound_allocator_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

/// Dies quietly like other Unix tools when stdout is a closed pipe (`dbopt ... | head`),
/// instead of panicking in println!.
#[allow(unsafe_code)]
fn restore_default_sigpipe() {
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The facade's error decides (2 when the input is at fault, 1 when the machine is); an
/// error raised by the CLI itself is about its arguments, so 2.
fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<dbopt::DbError>()
        .map_or(2, dbopt::DbError::exit_code)
}
