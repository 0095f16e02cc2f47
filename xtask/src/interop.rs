//! `cargo xtask interop [etcd|influx|s3|all]`: suites against real peers on loopback.
//!
//! Interop tests are `#[ignore]`d test targets; this verb prepares the peer (builds the Go
//! harness, finds `etcd`/`influxd`, starts an S3-API server), points the tests at it with
//! environment variables and runs them with `--ignored`. Every process it starts is stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, shared, step, target_dir, which};

/// A peer family.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Suite {
    /// etcd 3.4's Go wal package (harness) and a live etcd server.
    Etcd,
    /// influxd 1.6.7 and its backup/restore clients.
    Influx,
    /// An S3-API server (moto) for checkpoints and backups on `s3://`.
    S3,
    /// All of the above.
    All,
}

impl Suite {
    /// Every concrete suite.
    pub fn all() -> Vec<Suite> {
        vec![Suite::Etcd, Suite::Influx, Suite::S3]
    }

    /// Test target names (in any crate under `crates/`) that make up the suite.
    fn targets(self) -> &'static [&'static str] {
        match self {
            // `interop_go` checks our JSON against Go's encoding/json; it needs only `go`.
            Suite::Etcd => &["interop_etcd", "interop_go"],
            Suite::Influx => &["interop_influx", "interop_influx_merge"],
            Suite::S3 => &["interop_s3"],
            Suite::All => &[],
        }
    }
}

/// Flags of `cargo xtask interop`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which peers.
    #[arg(value_enum, default_value = "all")]
    suite: Suite,
}

/// Entry point.
pub fn run(args: Args) -> Result<()> {
    let suites = if args.suite == Suite::All {
        Suite::all()
    } else {
        vec![args.suite]
    };
    // An explicit request must find its peers.
    run_suites(&suites, false)
}

/// Runs the suites; with `allow_skip`, a missing peer is a loud SKIP instead of an error.
///
/// Peers of every suite are prepared first; the ready suites' test targets then run in one
/// `cargo test --workspace` invocation, so features unify exactly as in the main test build
/// and nothing is rebuilt.
pub fn run_suites(suites: &[Suite], allow_skip: bool) -> Result<()> {
    let mut envs = Vec::new();
    for &s in suites {
        match prepare(s) {
            Ok(env) => envs.push((s, env)),
            Err(e) if allow_skip => eprintln!("xtask: SKIP interop {s:?}: {e:#}"),
            Err(e) => return Err(e.context(format!("interop {s:?}: peer not available"))),
        }
    }
    let mut targets: Vec<&str> = Vec::new();
    for (s, _) in &envs {
        for &t in s.targets() {
            if crates_with_target(t).is_empty() {
                eprintln!("xtask: interop {s:?}: no crate has a `{t}` test target yet");
            } else {
                targets.push(t);
            }
        }
    }
    if targets.is_empty() {
        eprintln!("xtask: interop: no interop test targets to run");
        return Ok(());
    }
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"]);
    for t in &targets {
        cmd.args(["--test", t]);
    }
    cmd.args(["--", "--ignored"]);
    for (_, env) in &envs {
        for (k, v) in &env.vars {
            cmd.env(k, v);
        }
    }
    let names: Vec<String> = envs.iter().map(|(s, _)| format!("{s:?}")).collect();
    step(&format!("interop {}", names.join("+")), &mut cmd)?;
    drop(envs);
    Ok(())
}

/// Crate directories under `crates/` that have a test target named `target`.
fn crates_with_target(target: &str) -> Vec<String> {
    let Ok(dirs) = std::fs::read_dir(root().join("crates")) else {
        return Vec::new();
    };
    dirs.filter_map(|e| e.ok())
        .filter(|e| {
            let tests = e.path().join("tests");
            tests.join(format!("{target}.rs")).is_file()
                || tests.join(target).join("main.rs").is_file()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Environment for a suite's tests, plus processes to stop afterwards.
struct PeerEnv {
    vars: Vec<(String, String)>,
    children: Vec<Child>,
}

impl Drop for PeerEnv {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn prepare(s: Suite) -> Result<PeerEnv> {
    match s {
        Suite::Etcd => prepare_etcd(),
        Suite::Influx => prepare_influx(),
        Suite::S3 => prepare_s3(),
        Suite::All => bail!("`all` is not a single suite"),
    }
}

fn find(name: &str) -> Result<PathBuf> {
    which(name).with_context(|| format!("`{name}` not found on PATH"))
}

fn prepare_etcd() -> Result<PeerEnv> {
    let go = find("go")?;
    let etcd = find("etcd")?;
    let gopath = Path::new("/usr/share/gocode");
    if !gopath.join("src/go.etcd.io/etcd/wal").is_dir() {
        bail!("etcd's Go sources missing (apt-get install golang-etcd-server-dev)");
    }
    let out_dir = target_dir().join("interop");
    std::fs::create_dir_all(&out_dir)?;
    let harness = out_dir.join("etcd-wal-go");
    step(
        "build etcd-wal-go harness",
        Command::new(go)
            .current_dir(shared().join("interop").join("etcd-wal-go"))
            .env("GO111MODULE", "off")
            .env("GOPATH", gopath)
            .env("GOCACHE", out_dir.join("gocache"))
            .env("GOFLAGS", "")
            .args(["build", "-o"])
            .arg(&harness)
            .arg("."),
    )?;
    Ok(PeerEnv {
        vars: vec![
            (
                "SNAPSHOTD_ETCD_WAL_GO".into(),
                harness.display().to_string(),
            ),
            ("SNAPSHOTD_ETCD_BIN".into(), etcd.display().to_string()),
        ],
        children: vec![],
    })
}

fn prepare_influx() -> Result<PeerEnv> {
    let influxd = find("influxd")?;
    Ok(PeerEnv {
        vars: vec![(
            "SNAPSHOTD_INFLUXD_BIN".into(),
            influxd.display().to_string(),
        )],
        children: vec![],
    })
}

/// Installs moto into a venv under target/ (once); returns its `moto_server` script.
pub fn moto_server() -> Result<std::path::PathBuf> {
    let venv = target_dir().join("s3-venv");
    let moto = venv.join("bin").join("moto_server");
    if !moto.is_file() {
        let python3 = find("python3")?;
        step(
            "create s3 venv",
            Command::new(python3).args(["-m", "venv"]).arg(&venv),
        )?;
        step(
            "install moto",
            Command::new(venv.join("bin").join("pip")).args([
                "install",
                "--quiet",
                "moto[s3]==5.2.5",
                "flask",
                "flask-cors",
            ]),
        )?;
    }
    Ok(moto)
}

/// Installs moto into a venv under target/ (once), starts it on a free loopback port and
/// creates the test bucket. Also finds influxd: merges from `s3://` run against it.
fn prepare_s3() -> Result<PeerEnv> {
    let influx = prepare_influx()?;
    let moto = moto_server()?;
    let py = moto.with_file_name("python");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let child = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start moto_server")?;
    let env = PeerEnv {
        vars: vec![
            (
                "SNAPSHOTD_S3_ENDPOINT".into(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("SNAPSHOTD_S3_BUCKET".into(), "snapshotd-test".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ]
        .into_iter()
        .chain(influx.vars.clone())
        .collect(),
        children: vec![child],
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("moto_server did not listen on 127.0.0.1:{port} within 30s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = format!(
        "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', \
         aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\
         .create_bucket(Bucket='snapshotd-test')"
    );
    step("create s3 bucket", Command::new(py).args(["-c", &script]))?;
    Ok(env)
}
