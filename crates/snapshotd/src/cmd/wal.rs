//! `snapshotd wal dump|verify|repair`: inspect and fix etcd 3.4 WAL directories (ours or a
//! real etcd's `member/wal`). `dump --mode read` takes no locks, so it works on a live etcd.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use snapshotd_wal::{
    Entry, OpenMode, RepairOutcome, Snapshot, WalOptions, entry_type, read_like_etcd, try_repair,
    verify, verify_log,
};

/// `snapshotd wal …`
#[derive(Debug, clap::Args)]
pub struct WalArgs {
    #[command(subcommand)]
    command: WalCommand,
}

#[derive(Debug, Subcommand)]
enum WalCommand {
    /// Read the log like etcd's open + ReadAll and print it (a table, or the harness JSON).
    Dump(DumpArgs),
    /// Check the log: frames, CRCs, CRC chain, metadata, and the start snapshot if given.
    Verify(VerifyArgs),
    /// Cut a torn or partial last record off the last segment (keeps a `.broken` copy).
    Repair(RepairArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// etcd's OpenForRead: no locks, a partial last record is accepted.
    Read,
    /// etcd's Open: locks the segments, strict end of log, zeroes the tail.
    Write,
}

#[derive(Debug, clap::Args)]
struct DumpArgs {
    /// Print the JSON document of the etcd-wal-go harness's `read` subcommand.
    #[arg(long)]
    json: bool,
    /// Open mode.
    #[arg(long, value_enum, default_value = "read")]
    mode: Mode,
    /// Start snapshot index.
    #[arg(long, default_value_t = 0)]
    index: u64,
    /// Start snapshot term.
    #[arg(long, default_value_t = 0)]
    term: u64,
    /// The WAL directory (e.g. `<etcd data dir>/member/wal`).
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// Start snapshot index (with --term: run etcd's Verify from that snapshot).
    #[arg(long, requires = "term")]
    index: Option<u64>,
    /// Start snapshot term.
    #[arg(long, requires = "index")]
    term: Option<u64>,
    /// The WAL directory.
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct RepairArgs {
    /// The WAL directory.
    dir: PathBuf,
}

/// Runs `snapshotd wal …`.
pub fn run(args: WalArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        WalCommand::Dump(a) => dump(a),
        WalCommand::Verify(a) => run_verify(a),
        WalCommand::Repair(a) => repair(a),
    }
}

#[derive(Serialize)]
struct JsonSnap {
    index: u64,
    term: u64,
}

#[derive(Serialize)]
struct JsonHardState {
    term: u64,
    vote: u64,
    commit: u64,
}

#[derive(Serialize)]
struct JsonEntry {
    index: u64,
    term: u64,
    #[serde(rename = "type")]
    etype: i32,
    data_hex: Option<String>,
}

/// Field for field, in order, the harness's `readResult`.
#[derive(Serialize)]
struct ReadDoc {
    mode: &'static str,
    start: JsonSnap,
    open_error: Option<String>,
    read_error: Option<String>,
    metadata_hex: Option<String>,
    hardstate: JsonHardState,
    num_entries: usize,
    first_index: u64,
    last_index: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entries: Vec<JsonEntry>,
}

fn dump(a: DumpArgs) -> anyhow::Result<ExitCode> {
    let start = Snapshot::new(a.index, a.term);
    let (mode, mode_name) = match a.mode {
        Mode::Read => (OpenMode::Read, "read"),
        Mode::Write => (OpenMode::Write, "write"),
    };
    let out = read_like_etcd(&a.dir, start, mode, &WalOptions::default());
    let failed = out.open_error.is_some() || out.read_error.is_some();
    let c = &out.contents;
    let doc = ReadDoc {
        mode: mode_name,
        start: JsonSnap {
            index: a.index,
            term: a.term,
        },
        open_error: out.open_error.as_ref().map(ToString::to_string),
        read_error: out.read_error.as_ref().map(ToString::to_string),
        metadata_hex: c.metadata.as_ref().map(hex::encode),
        hardstate: JsonHardState {
            term: c.hardstate.term,
            vote: c.hardstate.vote,
            commit: c.hardstate.commit,
        },
        num_entries: c.entries.len(),
        first_index: c.entries.first().map_or(0, |e| e.index),
        last_index: c.entries.last().map_or(0, |e| e.index),
        entries: if a.json {
            c.entries
                .iter()
                .map(|e| JsonEntry {
                    index: e.index,
                    term: e.term,
                    etype: e.r#type,
                    data_hex: e.data.as_ref().map(hex::encode),
                })
                .collect()
        } else {
            Vec::new()
        },
    };
    let code = if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let printed = if a.json {
        serde_json::to_writer_pretty(&mut w, &doc)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(w))
    } else {
        print_table(&mut w, &doc, &c.entries)
    }
    .and_then(|()| w.flush());
    match printed {
        // `snapshotd wal dump DIR | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(e).context("write to stdout"),
        Ok(()) => Ok(code),
    }
}

fn type_name(t: i32) -> String {
    match t {
        entry_type::NORMAL => "Normal".into(),
        entry_type::CONF_CHANGE => "ConfChange".into(),
        entry_type::CONF_CHANGE_V2 => "ConfChangeV2".into(),
        other => format!("type({other})"),
    }
}

fn print_table(w: &mut impl Write, d: &ReadDoc, entries: &[Entry]) -> std::io::Result<()> {
    writeln!(w, "mode:       {}", d.mode)?;
    writeln!(
        w,
        "start:      index={} term={}",
        d.start.index, d.start.term
    )?;
    if let Some(e) = &d.open_error {
        writeln!(w, "open error: {e}")?;
    }
    if let Some(e) = &d.read_error {
        writeln!(w, "read error: {e}")?;
    }
    writeln!(
        w,
        "metadata:   {}",
        d.metadata_hex.as_deref().unwrap_or("(none)")
    )?;
    writeln!(
        w,
        "hardstate:  term={} vote={} commit={}",
        d.hardstate.term, d.hardstate.vote, d.hardstate.commit
    )?;
    writeln!(
        w,
        "entries:    {} (first {}, last {})",
        d.num_entries, d.first_index, d.last_index
    )?;
    if entries.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(
        w,
        "{:>12} {:>8} {:<12} {:>9}  DATA",
        "INDEX", "TERM", "TYPE", "BYTES"
    )?;
    for e in entries {
        let (len, preview) = match &e.data {
            None => ("-".to_owned(), "(absent)".to_owned()),
            Some(d) => {
                let mut p = hex::encode(&d[..d.len().min(24)]);
                if d.len() > 24 {
                    p.push('…');
                }
                (d.len().to_string(), p)
            }
        };
        writeln!(
            w,
            "{:>12} {:>8} {:<12} {:>9}  {}",
            e.index,
            e.term,
            type_name(e.r#type),
            len,
            preview
        )?;
    }
    Ok(())
}

fn fail(reason: impl std::fmt::Display) -> ExitCode {
    eprintln!("snapshotd wal: {reason}");
    ExitCode::FAILURE
}

fn run_verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let (Some(index), Some(term)) = (a.index, a.term) {
        return Ok(match verify(&a.dir, Snapshot::new(index, term)) {
            Ok(()) => {
                println!(
                    "ok: {} verifies from snapshot index={index} term={term}",
                    a.dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("verify failed: {e}{}", context(&e))),
        });
    }
    Ok(match verify_log(&a.dir) {
        Ok(s) => {
            let torn = s.torn_tail.as_ref().map_or(String::new(), |(p, off)| {
                format!(
                    "; partial last record at {}:{off} (repairable)",
                    p.display()
                )
            });
            println!(
                "ok: {} segments, {} records, {} entries (last index {}), {} snapshots, hardstate term={} commit={}{torn}",
                s.segments,
                s.records,
                s.entry_records,
                s.last_entry_index,
                s.snapshots,
                s.hardstate.term,
                s.hardstate.commit
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("verify failed: {e}{}", context(&e))),
    })
}

/// Where an error happened, when the error knows.
fn context(e: &snapshotd_wal::Error) -> String {
    match e.location() {
        Some((path, Some(off))) => format!(" (at {}:{off})", path.display()),
        Some((path, None)) => format!(" ({})", path.display()),
        None => String::new(),
    }
}

fn repair(a: RepairArgs) -> anyhow::Result<ExitCode> {
    Ok(match try_repair(&a.dir) {
        Ok(RepairOutcome::Clean) => {
            println!("ok: {} ends cleanly; nothing to repair", a.dir.display());
            ExitCode::SUCCESS
        }
        Ok(RepairOutcome::Truncated {
            path,
            broken_copy,
            valid_len,
        }) => {
            println!(
                "repaired: truncated {} to {valid_len} bytes (original kept as {})",
                path.display(),
                broken_copy.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot repair: {e}{}", context(&e))),
    })
}
