//! `snapshotd`: the thin binary composing the snapshotd crates.

mod cmd;

use clap::Parser;

/// Command-line interface of `snapshotd`.
#[derive(Debug, Parser)]
#[command(
    name = "snapshotd",
    version,
    about = "Backup and restore for storage nodes"
)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> std::process::ExitCode {
    cmd::init_logging();
    let cli = Cli::parse();
    match cmd::run(cli.command) {
        Ok(code) => code,
        Err(err) => cmd::fail(&err),
    }
}
