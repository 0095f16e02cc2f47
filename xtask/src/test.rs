//! `cargo xtask test`: the single gate CI runs.

use anyhow::Result;

use crate::util::{cargo, has_cargo_subcommand, is_ci, step};

/// Flags of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip the interop suites.
    #[arg(long)]
    no_interop: bool,
    /// Skip fmt and clippy.
    #[arg(long)]
    no_lint: bool,
}

/// Runs tidy, fmt, clippy, every test, doc tests, then interop.
pub fn run_all(args: &Args) -> Result<()> {
    crate::tidy::run_checks()?;
    if !args.no_lint {
        step("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
        step(
            "clippy",
            cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
    }
    if has_cargo_subcommand("nextest") {
        step(
            "tests",
            cargo().args(["nextest", "run", "--workspace", "--no-fail-fast"]),
        )?;
        step("doctests", cargo().args(["test", "--workspace", "--doc"]))?;
    } else {
        step(
            "tests",
            cargo().args(["test", "--workspace", "--no-fail-fast"]),
        )?;
    }
    if !args.no_interop {
        crate::interop::run_suites(&crate::interop::Suite::all(), !is_ci())?;
    }
    eprintln!("xtask: test: all steps passed");
    Ok(())
}

/// Entry point.
pub fn run(args: Args) -> Result<()> {
    run_all(&args)
}
