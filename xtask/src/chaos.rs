//! `cargo xtask chaos`: a seeded fault campaign on loopback against the real binary,
//! influxd 1.6.7, moto (S3), etcd 3.4.23 and hostile load, with a table of what survived
//! (also as JSON).

mod eio;
mod eio_read;
mod env;
mod etcd;
mod extra;
mod fault;
mod http_fault;
mod load;
mod mounts;
mod proxy;
mod round;
mod s3;
mod store;
mod workload;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, step, target_dir, which};
use fault::{Fault, Workload};
use round::{Ctx, Outcome, Row};

/// Flags of `cargo xtask chaos`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seed of the fault placement and the random rounds.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Random rounds (one or two faults each) after the single-fault pass.
    #[arg(long, default_value_t = 12)]
    rounds: usize,
    /// About ten minutes: every single fault once plus five combinations, no random rounds.
    #[arg(long)]
    quick: bool,
    /// Also write the table as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Use a debug build of snapshotd instead of release (faster to build, slower to run).
    #[arg(long)]
    debug: bool,
    /// Run only the rounds whose workload or fault names contain this (e.g. `s3`, `etcd`).
    #[arg(long)]
    only: Option<String>,
}

/// splitmix64: a tiny seeded generator (no dependency).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// Runs the campaign.
pub fn run(args: Args) -> Result<()> {
    let bin = build(args.debug)?;
    let influxd = std::env::var_os("SNAPSHOTD_INFLUXD_BIN")
        .map(PathBuf::from)
        .or_else(|| which("influxd"))
        .context("influxd 1.6.7 not found (set SNAPSHOTD_INFLUXD_BIN)")?;
    let work = target_dir()
        .join("chaos")
        .join(format!("seed-{}", args.seed));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let mut ctx = setup(&bin, &influxd, &work)?;
    let mut rng = Rng(args.seed);
    let mut plan = plan(&args, &mut rng);
    if let Some(only) = &args.only {
        plan.retain(|(faults, w)| {
            w.name().contains(only.as_str())
                || faults.iter().any(|f| f.name().contains(only.as_str()))
        });
    }
    let mut rows = Vec::new();
    for (k, (faults, w)) in plan.iter().enumerate() {
        let row = round::round(&mut ctx, k, faults, *w, rng.next())?;
        eprintln!(
            "xtask chaos: round {k}: {} x {} -> {:?} ({})",
            row.faults, row.workload, row.outcome, row.detail
        );
        rows.push(row);
    }
    print_table(&rows, &ctx);
    if let Some(p) = &args.json {
        std::fs::write(p, json(&rows, &ctx, args.seed).to_string())?;
    }
    let bad = rows
        .iter()
        .filter(|r| {
            !matches!(
                r.outcome,
                Outcome::Survived | Outcome::Skipped | Outcome::NotTriggered
            )
        })
        .count();
    if bad > 0 {
        bail!(
            "{bad} round(s) did not survive (logs under {})",
            work.display()
        );
    }
    Ok(())
}

fn build(debug: bool) -> Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "-p", "snapshotd", "--bin", "snapshotd"]);
    if !debug {
        c.arg("--release");
    }
    step("build snapshotd", &mut c)?;
    Ok(target_dir()
        .join(if debug { "debug" } else { "release" })
        .join("snapshotd"))
}

/// Server with `chaos` data, influxd, proxies and a verified baseline backup.
fn setup(bin: &std::path::Path, influxd: &std::path::Path, work: &std::path::Path) -> Result<Ctx> {
    let server = env::Server::start(bin, &work.join("serve-data"), &work.join("serve.log"))?;
    let acked_serve = workload::ingest(server.http, "chaos", 20)?;
    // The /write flood goes to its own database.
    workload::ingest(server.http, "flood", 1)?;
    let influx = env::Influxd::start(influxd, &work.join("influxd"))?;
    let acked = workload::ingest(influx.http, "chaos", 20)?;
    let baseline = workload::fresh_dir(work, "baseline")?;
    let host = influx.bind.to_string();
    let r = workload::run(workload::backup(bin, &host, &baseline), |_| {})?;
    if !r.ok() {
        bail!("baseline backup failed: {}", r.stderr);
    }
    let moto = s3::Moto::start(&work.join("moto.log"))?;
    let s3_base = s3::url("base");
    let up = workload::backup(bin, &host, std::path::Path::new(&s3_base));
    let r = workload::run(s3::with_env(up, moto.addr), |_| {})?;
    if !r.ok() {
        bail!("baseline backup to S3 failed: {}", r.stderr);
    }
    Ok(Ctx {
        to_moto: proxy::Proxy::start(moto.addr)?,
        moto,
        s3_base,
        extra: extra::Extra::default(),
        bin: bin.to_path_buf(),
        work: work.to_path_buf(),
        to_server: proxy::Proxy::start(server.bind)?,
        to_influxd: proxy::Proxy::start(influx.bind)?,
        server,
        influxd: influx,
        acked,
        acked_serve,
        baseline,
        max_rss_kib: 0,
        injected: 0,
    })
}

/// Every applicable single fault for each workload, some combinations, then random rounds.
fn plan(args: &Args, rng: &mut Rng) -> Vec<(Vec<Fault>, Workload)> {
    use load::Load;
    let mut plan = Vec::new();
    for f in fault::all() {
        for w in Workload::ALL {
            if f.applies(w) {
                plan.push((vec![f], w));
            }
        }
    }
    plan.push((
        vec![Fault::Delay, Fault::Load(Load::Slowloris)],
        Workload::Serve,
    ));
    plan.push((vec![Fault::Throttle, Fault::KillServer], Workload::Serve));
    let hostile = vec![Fault::Load(Load::Churn), Fault::Load(Load::Malformed)];
    plan.push((hostile, Workload::Serve));
    plan.push((vec![Fault::SlowDown, Fault::KillClient], Workload::S3Backup));
    plan.push((vec![Fault::KillEtcd, Fault::KillClient], Workload::Etcd));
    if args.quick {
        return plan;
    }
    let all = fault::all();
    for _ in 0..args.rounds {
        let w = rng.pick(&Workload::ALL);
        let pool: Vec<Fault> = all.iter().copied().filter(|f| f.applies(w)).collect();
        let a = rng.pick(&pool);
        let b = rng.pick(&pool);
        // At most one proxy mode and one fault filesystem per round.
        let both = |f: fn(Fault) -> bool| f(a) && f(b);
        let (a, b) = if a == Fault::None { (b, a) } else { (a, b) };
        // EIO on the server's reads is a round of its own (eio_read.rs applies no other fault).
        let serve_read = w == Workload::Serve && (a == Fault::EioRead || b == Fault::EioRead);
        let (a, b) = if serve_read {
            (Fault::EioRead, Fault::None)
        } else {
            (a, b)
        };
        let single = a == b || b == Fault::None;
        let faults = if single || both(|f| f.proxy(0).is_some()) || both(Fault::filesystem) {
            vec![a]
        } else {
            vec![a, b]
        };
        plan.push((faults, w));
    }
    plan
}

fn print_table(rows: &[Row], ctx: &Ctx) {
    println!("| # | faults | workload | outcome | secs | detail |");
    println!("|---|---|---|---|---|---|");
    for (i, r) in rows.iter().enumerate() {
        println!(
            "| {i} | {} | {} | {:?} | {:.1} | {} |",
            r.faults,
            r.workload,
            r.outcome,
            r.secs,
            r.detail.replace('|', "/")
        );
    }
    let count = |o: Outcome| rows.iter().filter(|r| r.outcome == o).count();
    println!(
        "\nrounds {}, faults injected {}, survived {}, data lost {}, wrong message {}, hung {}, rerun failed {}, server unhealthy {}, not triggered {}, skipped {}; server max RSS {} KiB",
        rows.len(),
        ctx.injected,
        count(Outcome::Survived),
        count(Outcome::DataLost),
        count(Outcome::WrongMessage),
        count(Outcome::Hung),
        count(Outcome::RerunFailed),
        count(Outcome::ServerUnhealthy),
        count(Outcome::NotTriggered),
        count(Outcome::Skipped),
        ctx.max_rss_kib
    );
}

fn json(rows: &[Row], ctx: &Ctx, seed: u64) -> serde_json::Value {
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "faults": r.faults, "workload": r.workload,
                "outcome": format!("{:?}", r.outcome), "detail": r.detail, "secs": r.secs,
            })
        })
        .collect();
    serde_json::json!({
        "seed": seed, "faults_injected": ctx.injected, "acked_points": ctx.acked,
        "acked_points_serve": ctx.acked_serve,
        "server_max_rss_kib": ctx.max_rss_kib, "rounds": list,
    })
}
