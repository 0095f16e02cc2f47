//! Throughput figures (ignored; run with `cargo test --release -p snapshotd-store -- --ignored
//! perf --nocapture`). Prints numbers only: no timing assertions.

use std::time::Instant;

use snapshotd_store::testkit::rename_tar;
use snapshotd_store::{AdminStore, DatabaseSpec, ImportRequest, Precision, Store};

use crate::common::{TestResult, store};

#[test]
#[ignore = "prints throughput figures; run explicitly"]
fn perf_write_backup_restore() -> TestResult {
    let (_d, a) = store()?;
    a.create_database(&DatabaseSpec {
        name: "p".into(),
        retention_policy: None,
    })?;
    let (batches, per) = (40, 5_000);
    let t = Instant::now();
    for b in 0..batches {
        let body: String = (0..per)
            .map(|i| {
                let n = b * per + i;
                format!(
                    "cpu,host=h{},region=eu value={n}.5,n={n}i {}\n",
                    n % 16,
                    1_609_459_200 + n
                )
            })
            .collect();
        a.write_lines("p", None, Precision::Seconds, body.as_bytes())?;
    }
    let w = t.elapsed();
    let ids: Vec<u64> = a
        .list_shards(Some("p"), None)?
        .iter()
        .map(|p| p.shard_id)
        .collect();
    let t = Instant::now();
    let mut tars = Vec::new();
    for id in &ids {
        let mut out = Vec::new();
        a.backup_shard(*id, None, &mut out)?;
        tars.push((*id, out));
    }
    let bk = t.elapsed();
    let bytes: usize = tars.iter().map(|(_, t)| t.len()).sum();
    let (_d2, b) = store()?;
    let req = ImportRequest {
        backup_database: Some("p".into()),
        ..Default::default()
    };
    let map = b.import_meta(&a.meta_snapshot()?, &req)?;
    let t = Instant::now();
    for (old, new) in map.0 {
        let tar = tars
            .iter()
            .find(|(id, _)| *id == old)
            .map(|(_, t)| t)
            .ok_or("tar")?;
        b.restore_shard(new, &mut rename_tar(tar, "p", "autogen", new)?.as_slice())?;
    }
    let rs = t.elapsed();
    let t = Instant::now();
    let n = b.read_points("p", None)?.len();
    let rd = t.elapsed();
    assert_eq!(n, batches * per);
    println!(
        "points {n}: write {:.0} pts/s ({batches} fsynced batches); backup {bytes} B in {:?} \
         ({:.0} MB/s); restore {:?}; read back {:?}",
        n as f64 / w.as_secs_f64(),
        bk,
        bytes as f64 / bk.as_secs_f64() / 1e6,
        rs,
        rd
    );
    Ok(())
}
