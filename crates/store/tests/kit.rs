//! The conformance kit run against the built-in store, populated two ways: line-protocol
//! writes (WAL shards) and a real influx backup (opaque TSM shards).

use std::path::PathBuf;

use snapshotd_store::testkit::{Fixture, Harness, run};
use snapshotd_store::{AdminStore, BuiltinStore, DatabaseSpec, Precision, Result, Store};

struct Builtin {
    dirs: Vec<tempfile::TempDir>,
    via_influx: bool,
}

impl Harness for Builtin {
    type S = BuiltinStore;

    fn fresh(&mut self) -> Result<BuiltinStore> {
        let dir = snapshotd_testutil::temp_dir();
        let s = BuiltinStore::open(dir.path().join("store"))?;
        self.dirs.push(dir);
        Ok(s)
    }

    fn populate(&mut self, s: &BuiltinStore) -> Result<Fixture> {
        if self.via_influx {
            let blob = crate::common::meta_blob(crate::common::A1)
                .map_err(|e| snapshotd_store::StoreError::Backend(e.to_string().into()))?;
            s.import_meta(&blob, &Default::default())?;
            for id in 1..=6 {
                let tar = crate::common::shard_tar(crate::common::A1, id)
                    .map_err(|e| snapshotd_store::StoreError::Backend(e.to_string().into()))?;
                s.restore_shard(id, &mut tar.as_slice())?;
            }
            return Ok(Fixture {
                database: "db2".into(),
                retention_policy: "rp2".into(),
                shard_with_data: 6,
            });
        }
        s.create_database(&DatabaseSpec {
            name: "other".into(),
            retention_policy: None,
        })?;
        s.create_database(&DatabaseSpec {
            name: "kit".into(),
            retention_policy: None,
        })?;
        s.write_lines("other", None, Precision::Seconds, b"m v=1 1609459200\n")?;
        s.write_lines(
            "kit",
            None,
            Precision::Seconds,
            b"cpu,host=a v=1 1609459200\ncpu,host=b v=2 1610000000\ncpu v=3 1612000000\n",
        )?;
        let shard = s
            .list_shards(Some("kit"), None)?
            .first()
            .map(|p| p.shard_id)
            .unwrap_or_default();
        Ok(Fixture {
            database: "kit".into(),
            retention_policy: "autogen".into(),
            shard_with_data: shard,
        })
    }

    fn sandbox(&self, s: &BuiltinStore) -> Option<PathBuf> {
        Some(s.root().to_path_buf())
    }
}

#[test]
fn conformance_kit_passes_on_wal_shards() {
    let mut h = Builtin {
        dirs: vec![],
        via_influx: false,
    };
    let report = run(&mut h);
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.map(|r| r.passed.len()).unwrap_or(0), 7);
}

#[test]
fn conformance_kit_passes_on_influx_tsm_shards() {
    let mut h = Builtin {
        dirs: vec![],
        via_influx: true,
    };
    let report = run(&mut h);
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn closure_form_runs_the_same_checks() {
    let dirs = std::cell::RefCell::new(Vec::new());
    let report = snapshotd_store::testkit::run_with(
        || {
            let dir = snapshotd_testutil::temp_dir();
            let s = BuiltinStore::open(dir.path())?;
            dirs.borrow_mut().push(dir);
            Ok(s)
        },
        |s| {
            Builtin {
                dirs: vec![],
                via_influx: false,
            }
            .populate(s)
        },
    );
    assert!(report.is_ok(), "{report:?}");
}
