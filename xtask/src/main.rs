//! Project automation for snapshotd: `cargo xtask test | interop | fuzz | bench | tidy | chaos`.

mod bench;
mod chaos;
mod fuzz;
mod interop;
mod slowfs;
mod test;
mod tidy;
mod util;

use clap::{Parser, Subcommand};

/// Command line of `cargo xtask`.
#[derive(Debug, Parser)]
#[command(name = "xtask", about = "snapshotd project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// fmt --check, clippy -D warnings, every test, then the interop suites whose peers exist.
    Test(test::Args),
    /// Interop suites against real peers (etcd, influxd, an S3-API server).
    Interop(interop::Args),
    /// Run a cargo-fuzz target on the stable toolchain (`-s none`).
    Fuzz(fuzz::Args),
    /// Benchmarks, side by side with the peer measured in the same run.
    Bench(bench::Args),
    /// Architecture invariants: allowed dependency edges, no env/print/exit in libraries,
    /// files named by docs/architecture.md exist, no "spec §" citations.
    Tidy(tidy::Args),
    /// Seeded fault campaign on loopback (proxy and S3 faults, signals, full / read-only / EIO
    /// disks, hostile load) over influxd, snapshotd serve, moto and etcd.
    Chaos(chaos::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Test(a) => test::run(a),
        Cmd::Interop(a) => interop::run(a),
        Cmd::Fuzz(a) => fuzz::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Tidy(a) => tidy::run(a),
        Cmd::Chaos(a) => chaos::run(a),
    }
}
