//! Streaming one large shard from the snapshot service to a client over loopback
//! (compression off), against the disk's sequential read rate measured in the same run, with
//! the server's peak RSS. Run: `cargo bench -p snapshotd-server --bench backup_stream`
//! (`SNAPSHOTD_BENCH_QUICK=1` for a 128 MiB smoke run). The server runs in a child process
//! (this binary re-executed) so its peak RSS is its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use snapshotd_server::{ServerConfig, SnapshotServer};
use snapshotd_store::{
    BackupStats, ImportRequest, RestoreStats, ShardIdMap, ShardInfo, ShardPath, Store, StoreError,
    TimeRange, Unsupported,
};
use snapshotd_wire::{Request, RequestFrame, RequestType};

/// A store with one shard whose single file is `path`, tarred on the fly.
struct FileStore {
    path: PathBuf,
}

impl Store for FileStore {
    fn meta_snapshot(&self) -> Result<Vec<u8>, StoreError> {
        Ok(Vec::new())
    }
    fn list_shards(&self, _: Option<&str>, _: Option<&str>) -> Result<Vec<ShardPath>, StoreError> {
        Ok(vec![ShardPath {
            database: "bench".into(),
            retention_policy: "autogen".into(),
            shard_id: 1,
        }])
    }
    fn shard_info(&self, _: u64) -> Result<ShardInfo, StoreError> {
        Err(Unsupported::ShardInfo.into())
    }
    fn backup_shard(
        &self,
        shard_id: u64,
        _since: Option<SystemTime>,
        out: &mut dyn Write,
    ) -> Result<BackupStats, StoreError> {
        if shard_id != 1 {
            return Err(StoreError::NotFound {
                what: "shard",
                name: shard_id.to_string(),
            });
        }
        let io = |e| StoreError::io("bench tar", e);
        let mut f = File::open(&self.path).map_err(io)?;
        let mut tar = tar::Builder::new(out);
        tar.append_file("bench/autogen/1/000000001-000000001.tsm", &mut f)
            .map_err(io)?;
        tar.finish().map_err(io)?;
        Ok(BackupStats::default())
    }
    fn export_shard(
        &self,
        _: u64,
        _: TimeRange,
        _: &mut dyn Write,
    ) -> Result<BackupStats, StoreError> {
        Err(Unsupported::ShardExport.into())
    }
    fn import_meta(&self, _: &[u8], _: &ImportRequest) -> Result<ShardIdMap, StoreError> {
        Err(Unsupported::MetaImport.into())
    }
    fn restore_shard(&self, _: u64, _: &mut dyn Read) -> Result<RestoreStats, StoreError> {
        Err(Unsupported::ShardRestore.into())
    }
}

fn serve_child(file: &Path, port_file: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        std::fs::write(port_file, l.local_addr().unwrap().to_string()).unwrap();
        let store = Arc::new(FileStore {
            path: file.to_path_buf(),
        });
        SnapshotServer::new(store, ServerConfig::default())
            .serve(l, std::future::pending())
            .await
            .unwrap();
    });
}

fn drop_caches() -> bool {
    std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok()
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-child") {
        serve_child(Path::new(&args[2]), Path::new(&args[3]));
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` runs bench targets without `--bench`: no 1 GiB run there.
        println!("backup_stream: run via `cargo bench` (skipped)");
        return;
    }
    let quick = std::env::var_os("SNAPSHOTD_BENCH_QUICK").is_some();
    let size: u64 = if quick { 128 << 20 } else { 1 << 30 };
    let dir = tempfile::Builder::new()
        .prefix("snapshotd-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let file = dir.path().join("shard.tsm");
    {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&file).unwrap());
        let mut block = vec![0u8; 1 << 20];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for chunk in 0..size >> 20 {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            block[0] = chunk as u8;
            w.write_all(&block).unwrap();
        }
        w.into_inner().unwrap().sync_all().unwrap();
    }

    // 1. The disk's sequential read rate, cold cache when we may drop it.
    let cold = drop_caches();
    let t = Instant::now();
    let mut f = File::open(&file).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    let disk = t.elapsed();
    assert_eq!(n, size);

    // 2. The same file streamed as a shard tar by the server (child process) to this client.
    let port_file = dir.path().join("port");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--serve-child"])
        .arg(&file)
        .arg(&port_file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = snapshotd_testutil::ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr: SocketAddr = loop {
        if let Ok(s) = std::fs::read_to_string(&port_file)
            && let Ok(a) = s.parse()
        {
            break a;
        }
        assert!(Instant::now() < deadline, "server child did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop_caches();
    let mut req = Request::new(RequestType::ShardBackup);
    req.backup_database = "bench".into();
    req.backup_retention_policy = "autogen".into();
    req.shard_id = 1;
    let mut frame = bytes::BytesMut::new();
    RequestFrame::request(RequestType::ShardBackup, req)
        .encode(&mut frame)
        .unwrap();
    let t = Instant::now();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.write_all(&frame).unwrap();
    let mut got = 0u64;
    loop {
        let k = sock.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        got += k as u64;
    }
    let stream = t.elapsed();
    let rss = peak_rss_kib(child.0.id());
    let _ = child.0.kill();
    assert!(got >= size + 1536, "short stream: {got} bytes");

    let d = mib_s(size, disk);
    let s = mib_s(size, stream);
    println!(
        "backup_stream: {} MiB shard, page cache {}",
        size >> 20,
        if cold {
            "dropped"
        } else {
            "WARM (could not drop)"
        }
    );
    println!("| shard | disk seq read | server → client | ratio | server peak RSS |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} MiB | {d:.0} MiB/s | {s:.0} MiB/s | {:.0} % | {} |",
        size >> 20,
        100.0 * s / d,
        rss.map_or("n/a".to_string(), |k| format!(
            "{:.1} MiB",
            k as f64 / 1024.0
        ))
    );
}
