//! Benchmarks: encryption throughput and checkpoint flush overhead.
#![allow(clippy::expect_used)] // bench setup: a failure must abort the run loudly

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use snapshotd_checkpoint::{
    Checkpoint, CheckpointOptions, DecryptingReader, Destination, EncryptingWriter, MasterKey,
    UnitRecord,
};

const MIB: usize = 1 << 20;

fn encryption(c: &mut Criterion) {
    let key = MasterKey::generate();
    let plain: Vec<u8> = (0..16 * MIB).map(|i| (i % 251) as u8).collect();
    let mut g = c.benchmark_group("encryption");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.sample_size(10);
    g.bench_function("encrypt_16MiB", |b| {
        b.iter(|| {
            let mut w = EncryptingWriter::new(Vec::with_capacity(plain.len() + 4096), &key, "f")
                .expect("writer");
            for part in plain.chunks(64 * 1024) {
                w.write_all(part).expect("write");
            }
            black_box(w.finish().expect("finish"))
        })
    });
    let mut w = EncryptingWriter::new(Vec::new(), &key, "f").expect("writer");
    w.write_all(&plain).expect("write");
    let enc = w.finish().expect("finish");
    g.bench_function("decrypt_16MiB", |b| {
        b.iter(|| {
            let mut r = DecryptingReader::new(enc.as_slice(), &key, "f").expect("reader");
            let mut out = Vec::with_capacity(plain.len());
            r.read_to_end(&mut out).expect("read");
            black_box(out)
        })
    });
    g.finish();
}

fn flush(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("flush");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut dests = vec![("local", Destination::local(dir.path()).expect("dest"))];
    if let Some(s3) = s3_dest() {
        dests.push(("s3", s3));
    }
    for (backend, base) in &dests {
        for (name, key) in [("plain", None), ("encrypted", Some(MasterKey::generate()))] {
            for batch in [1usize, 100] {
                let dest = base.child(&format!("{name}-{batch}-{}", std::process::id()));
                let opts = CheckpointOptions {
                    key: key.clone(),
                    flush_interval: Duration::from_secs(3600),
                    ..CheckpointOptions::default()
                };
                let cp = rt.block_on(Checkpoint::open(&dest, opts)).expect("open");
                let mut n = 0u64;
                g.throughput(Throughput::Elements(batch as u64));
                g.bench_with_input(
                    BenchmarkId::new(format!("{backend}_{name}"), batch),
                    &batch,
                    |b, &batch| {
                        b.iter(|| {
                            rt.block_on(async {
                                for _ in 0..batch {
                                    n += 1;
                                    let r =
                                        UnitRecord::new(format!("shard/{n}"), n, "ab".repeat(32));
                                    cp.record(r).await.expect("record");
                                }
                                cp.flush().await.expect("flush");
                            })
                        })
                    },
                );
                rt.block_on(cp.finish_and_remove()).expect("finish");
            }
        }
    }
    g.finish();
}

/// An S3 destination when SNAPSHOTD_S3_ENDPOINT / SNAPSHOTD_S3_BUCKET are set (moto).
fn s3_dest() -> Option<Destination> {
    let endpoint = std::env::var("SNAPSHOTD_S3_ENDPOINT").ok()?;
    let bucket = std::env::var("SNAPSHOTD_S3_BUCKET").ok()?;
    let mut opts = snapshotd_checkpoint::S3Options::from_lookup(|k| std::env::var(k).ok());
    opts.endpoint = Some(endpoint);
    Destination::open(&format!("s3://{bucket}/bench"), &opts).ok()
}

criterion_group!(benches, encryption, flush);
criterion_main!(benches);
