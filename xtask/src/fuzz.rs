//! `cargo xtask fuzz <target> --time N`: cargo-fuzz on stable with `-s none`.

use anyhow::{Context, Result, bail};

use crate::util::{has_cargo_subcommand, root, step};

/// Flags of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fuzz target name (`list` prints them, `all` runs each).
    target: String,
    /// Seconds to run each target.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Use the nightly toolchain with AddressSanitizer (needs a nightly toolchain).
    #[arg(long)]
    asan: bool,
}

fn targets() -> Result<Vec<String>> {
    let dir = root().join("fuzz").join("fuzz_targets");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "rs")
            && let Some(s) = p.file_stem().and_then(|s| s.to_str())
        {
            names.push(s.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Entry point.
pub fn run(args: Args) -> Result<()> {
    let all = targets()?;
    if args.target == "list" {
        for t in &all {
            println!("{t}");
        }
        return Ok(());
    }
    let chosen: Vec<String> = if args.target == "all" {
        all.clone()
    } else if all.contains(&args.target) {
        vec![args.target.clone()]
    } else {
        bail!(
            "unknown fuzz target {:?}; known: {}",
            args.target,
            all.join(", ")
        );
    };
    if !has_cargo_subcommand("fuzz") {
        step(
            "install cargo-fuzz",
            std::process::Command::new("cargo").args([
                "install",
                "cargo-fuzz",
                "--version",
                "0.13.2",
                "--locked",
            ]),
        )?;
    }
    for t in chosen {
        // New inputs go to the first directory (under target/); the committed seed corpus
        // is read only, so a fuzz run leaves the working tree clean.
        let corpus = crate::util::target_dir().join("fuzz-corpus").join(&t);
        let seeds = root().join("fuzz").join("corpus").join(&t);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&seeds)?;
        let mut cmd = std::process::Command::new("cargo");
        cmd.current_dir(root().join("fuzz"));
        if args.asan {
            cmd.arg("+nightly");
        }
        cmd.args(["fuzz", "run"]);
        if !args.asan {
            cmd.args(["-s", "none"]);
        }
        cmd.arg(&t)
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={}", args.time))
            .arg("-rss_limit_mb=2048");
        step(&format!("fuzz {t} for {}s", args.time), &mut cmd)?;
        eprintln!(
            "xtask: fuzz {t}: no crash in {}s; new inputs in {} (seeds in fuzz/corpus)",
            args.time,
            corpus.display()
        );
    }
    Ok(())
}
