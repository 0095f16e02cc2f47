//! Conformance kit: checks any [`Store`] implementation against the behaviour the snapshot
//! service relies on. An implementation provides a [`Harness`] (fresh empty stores and a
//! setup step that creates data through its own admin path) and calls [`run`].
//!
//! Checks: listing order and filters agree with the meta snapshot; `NotFound` for unknown
//! database, retention policy and shard; backup tar shape (`<db>/<rp>/<id>/<file>`, regular
//! files only); `since` in the future yields an empty archive; an unbounded export is a
//! well-formed tar of the shard (or `Unsupported`); backup → import → restore into
//! a second store gives back the same files; a second import of the same database is a
//! `Conflict` that changes nothing; hostile tars (traversal, absolute names, links) are
//! refused, leave the shard as it was and write nothing outside the store.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::api::Store;
use crate::error::{Result, StoreError};
use crate::meta::Data;
use crate::types::{ImportRequest, ShardPath};

/// What the setup step created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// Database holding the data (must not be `_internal`).
    pub database: String,
    /// One of its retention policies.
    pub retention_policy: String,
    /// A shard of that policy holding at least one non-empty file.
    pub shard_with_data: u64,
}

/// How the kit obtains stores to test.
pub trait Harness {
    /// The implementation under test.
    type S: Store;
    /// A new, empty store.
    fn fresh(&mut self) -> Result<Self::S>;
    /// Creates data in `store` through the implementation's own means.
    fn populate(&mut self, store: &Self::S) -> Result<Fixture>;
    /// A directory that contains everything `store` may write; the kit checks that hostile
    /// restores leave no file beside it. `None` skips that part.
    fn sandbox(&self, store: &Self::S) -> Option<PathBuf>;
}

/// A failed conformance check.
#[derive(Debug, thiserror::Error)]
#[error("conformance check `{check}` failed: {detail}")]
pub struct KitFailure {
    /// Name of the check.
    pub check: &'static str,
    /// What was seen.
    pub detail: String,
}

/// What passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KitReport {
    /// Names of the checks that passed, in order.
    pub passed: Vec<&'static str>,
}

fn fail(check: &'static str, detail: impl Into<String>) -> KitFailure {
    KitFailure {
        check,
        detail: detail.into(),
    }
}

fn ok_or<T>(check: &'static str, r: Result<T>) -> Result<T, KitFailure> {
    r.map_err(|e| fail(check, format!("unexpected error: {e}")))
}

/// Files of a tar: name → content; also fails on non-regular entries.
pub fn tar_files(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    let entries = ar
        .entries()
        .map_err(|e| StoreError::Invalid(format!("tar: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| StoreError::Invalid(format!("tar: {e}")))?;
        if e.header().entry_type() != tar::EntryType::Regular {
            return Err(StoreError::Invalid(format!(
                "non-regular tar entry {:?}",
                e.header().entry_type()
            )));
        }
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data)
            .map_err(|e| StoreError::Invalid(format!("tar: {e}")))?;
        out.insert(name, data);
    }
    Ok(out)
}

/// Builds a tar from (name, data), renaming nothing; names are written raw (may be hostile).
pub fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_ustar();
        let bytes = name.as_bytes();
        let n = bytes.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&bytes[..n]);
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_size(0);
            let target = b"../../../../etc/passwd";
            h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        if !matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Rewrites a shard tar for another shard as `influxd restore` does (first three name
/// components replaced by `db/rp/id`).
pub fn rename_tar(bytes: &[u8], db: &str, rp: &str, id: u64) -> Result<Vec<u8>> {
    let files = tar_files(bytes)?;
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let rest: Vec<&str> = name.splitn(4, '/').collect();
        let Some(rest) = rest.get(3) else {
            return Err(StoreError::Invalid(format!("short tar name {name}")));
        };
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("{db}/{rp}/{id}/{rest}"), data.as_slice())
            .map_err(|e| StoreError::io("build tar", e))?;
    }
    b.into_inner().map_err(|e| StoreError::io("build tar", e))
}

fn backup(store: &dyn Store, id: u64, since: Option<SystemTime>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    store.backup_shard(id, since, &mut out)?;
    Ok(out)
}

fn strip(files: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files
        .into_iter()
        .map(|(k, v)| (k.splitn(4, '/').nth(3).unwrap_or_default().to_string(), v))
        .collect()
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs every check; stops at the first failure.
pub fn run<H: Harness>(h: &mut H) -> Result<KitReport, KitFailure> {
    let mut report = KitReport::default();
    let a = ok_or("setup", h.fresh())?;
    let fx = ok_or("setup", h.populate(&a))?;

    // Listing order and filters agree with the meta snapshot.
    let meta = ok_or("meta_snapshot", a.meta_snapshot())?;
    let data = ok_or("meta_snapshot", Data::decode_blob(&meta))?;
    let mut meta_order = Vec::new();
    for db in &data.databases {
        for rp in &db.retention_policies {
            for g in rp.shard_groups.iter().filter(|g| !g.is_deleted()) {
                for s in &g.shards {
                    meta_order.push(ShardPath {
                        database: db.name.clone(),
                        retention_policy: rp.name.clone(),
                        shard_id: s.id,
                    });
                }
            }
        }
    }
    let all = ok_or("list_shards", a.list_shards(None, None))?;
    if all.is_empty() || all.iter().any(|p| !meta_order.contains(p)) {
        return Err(fail(
            "list_shards",
            format!("{all:?} vs meta {meta_order:?}"),
        ));
    }
    let pos = |p: &ShardPath| meta_order.iter().position(|m| m == p);
    if all.windows(2).any(|w| pos(&w[0]) >= pos(&w[1])) {
        return Err(fail("list_shards order", format!("{all:?}")));
    }
    let by_db = ok_or("list_shards db", a.list_shards(Some(&fx.database), None))?;
    let want: Vec<_> = all
        .iter()
        .filter(|p| p.database == fx.database)
        .cloned()
        .collect();
    if by_db != want {
        return Err(fail("list_shards db", format!("{by_db:?} != {want:?}")));
    }
    let by_rp = ok_or(
        "list_shards rp",
        a.list_shards(Some(&fx.database), Some(&fx.retention_policy)),
    )?;
    let want: Vec<_> = want
        .into_iter()
        .filter(|p| p.retention_policy == fx.retention_policy)
        .collect();
    if by_rp != want || !by_rp.iter().any(|p| p.shard_id == fx.shard_with_data) {
        return Err(fail("list_shards rp", format!("{by_rp:?} != {want:?}")));
    }
    for p in &all {
        let info = ok_or("shard_info", a.shard_info(p.shard_id))?;
        if &info.path != p || info.start_ns >= info.end_ns {
            return Err(fail("shard_info", format!("{info:?} for {p:?}")));
        }
    }
    report.passed.push("listing");

    // NotFound cases.
    let nf = |r: &Result<()>| matches!(r, Err(StoreError::NotFound { .. }));
    let missing = u64::MAX - 7;
    if !nf(&a.list_shards(Some("kit-no-such-db"), None).map(|_| ()))
        || !nf(&a
            .list_shards(Some(&fx.database), Some("kit-no-such-rp"))
            .map(|_| ()))
        || !nf(&a.shard_info(missing).map(|_| ()))
        || !nf(&backup(&a, missing, None).map(|_| ()))
        || !nf(&a.restore_shard(missing, &mut &raw_tar(&[])[..]).map(|_| ()))
    {
        return Err(fail("not_found", "an unknown db/rp/shard was not NotFound"));
    }
    report.passed.push("not_found");

    // Backup shape, and `since` in the future.
    let tar_a = ok_or("backup", backup(&a, fx.shard_with_data, None))?;
    let files_a = ok_or("backup", tar_files(&tar_a))?;
    let prefix = format!(
        "{}/{}/{}/",
        fx.database, fx.retention_policy, fx.shard_with_data
    );
    if files_a.is_empty()
        || files_a
            .iter()
            .any(|(k, v)| !k.starts_with(&prefix) || k.len() == prefix.len() || v.is_empty())
    {
        return Err(fail("backup shape", format!("{:?}", files_a.keys())));
    }
    let later = SystemTime::now() + Duration::from_secs(3600);
    let tar_since = ok_or("backup since", backup(&a, fx.shard_with_data, Some(later)))?;
    if !ok_or("backup since", tar_files(&tar_since))?.is_empty() {
        return Err(fail(
            "backup since",
            "files newer than now + 1h were shipped",
        ));
    }
    report.passed.push("backup");

    // Export over all time: a well-formed tar of the shard's files, or `Unsupported`.
    let mut exported = Vec::new();
    match a.export_shard(
        fx.shard_with_data,
        crate::types::TimeRange::default(),
        &mut exported,
    ) {
        Ok(_) => {
            let files = ok_or("export", tar_files(&exported))?;
            if files.is_empty() || files.keys().any(|k| !k.starts_with(&prefix)) {
                return Err(fail("export", format!("{:?}", files.keys())));
            }
        }
        Err(StoreError::Unsupported(_)) => {}
        Err(e) => return Err(fail("export", format!("unexpected error: {e}"))),
    }
    report.passed.push("export");

    // Round trip into a second store.
    let b = ok_or("round trip", h.fresh())?;
    let req = ImportRequest {
        backup_database: Some(fx.database.clone()),
        ..Default::default()
    };
    let map = ok_or("import", b.import_meta(&meta, &req))?;
    let new_id = map
        .0
        .iter()
        .find(|(old, _)| *old == fx.shard_with_data)
        .map(|(_, new)| *new)
        .ok_or_else(|| fail("import", format!("shard not in map {map:?}")))?;
    let renamed = ok_or(
        "round trip",
        rename_tar(&tar_a, &fx.database, &fx.retention_policy, new_id),
    )?;
    let stats = ok_or("restore", b.restore_shard(new_id, &mut renamed.as_slice()))?;
    if stats.files != files_a.len() as u64 {
        return Err(fail(
            "restore",
            format!("{stats:?} for {} files", files_a.len()),
        ));
    }
    let tar_b = ok_or("round trip", backup(&b, new_id, None))?;
    let files_b = ok_or("round trip", tar_files(&tar_b))?;
    if strip(files_b) != strip(files_a.clone()) {
        return Err(fail("round trip", "restored shard differs from the backup"));
    }
    report.passed.push("round_trip");

    // Import conflict changes nothing.
    let before = ok_or("conflict", b.meta_snapshot())?;
    match b.import_meta(&meta, &req) {
        Err(StoreError::Conflict(_)) => {}
        other => return Err(fail("conflict", format!("got {other:?}"))),
    }
    if ok_or("conflict", b.meta_snapshot())? != before {
        return Err(fail("conflict", "meta changed by a refused import"));
    }
    report.passed.push("conflict");

    // Hostile tars.
    let sandbox = h.sandbox(&b);
    let outside = sandbox.as_ref().and_then(|s| s.parent().map(listing));
    let p = format!("{}/{}/{new_id}", fx.database, fx.retention_policy);
    let cases: Vec<(String, tar::EntryType)> = vec![
        (
            format!("{p}/../../../../kit-escape.tsm"),
            tar::EntryType::Regular,
        ),
        (
            "/tmp/kit-escape-abs.tsm".to_string(),
            tar::EntryType::Regular,
        ),
        (format!("{p}/kit-link.tsm"), tar::EntryType::Symlink),
        (format!("{p}/kit-hard.tsm"), tar::EntryType::Link),
    ];
    for (name, kind) in &cases {
        let good = format!("{p}/000000009-000000001.tsm");
        let t = raw_tar(&[
            (good.as_str(), tar::EntryType::Regular, b"x"),
            (name.as_str(), *kind, b"evil"),
        ]);
        if b.restore_shard(new_id, &mut t.as_slice()).is_ok() {
            return Err(fail("hostile tar", format!("accepted {name:?} ({kind:?})")));
        }
        let now = ok_or("hostile tar", backup(&b, new_id, None))?;
        if strip(ok_or("hostile tar", tar_files(&now))?) != strip(files_a.clone()) {
            return Err(fail(
                "hostile tar",
                format!("shard changed by refused {name:?}"),
            ));
        }
    }
    if let (Some(s), Some(before)) = (&sandbox, outside) {
        let after = s.parent().map(listing).unwrap_or_default();
        if after != before {
            return Err(fail("hostile tar", "a file appeared beside the store"));
        }
    }
    if std::path::Path::new("/tmp/kit-escape-abs.tsm").exists() {
        return Err(fail("hostile tar", "absolute path written"));
    }
    report.passed.push("hostile_tar");
    Ok(report)
}

/// A [`Harness`] made of two closures (no sandbox check).
struct Closures<S, F, P> {
    fresh: F,
    populate: P,
    _store: std::marker::PhantomData<fn() -> S>,
}

impl<S, F, P> Harness for Closures<S, F, P>
where
    S: Store,
    F: FnMut() -> Result<S>,
    P: FnMut(&S) -> Result<Fixture>,
{
    type S = S;
    fn fresh(&mut self) -> Result<S> {
        (self.fresh)()
    }
    fn populate(&mut self, store: &S) -> Result<Fixture> {
        (self.populate)(store)
    }
    fn sandbox(&self, _store: &S) -> Option<PathBuf> {
        None
    }
}

/// Runs the kit with closures: `fresh` makes an empty store, `populate` creates data in one.
pub fn run_with<S: Store>(
    fresh: impl FnMut() -> Result<S>,
    populate: impl FnMut(&S) -> Result<Fixture>,
) -> Result<KitReport, KitFailure> {
    run(&mut Closures {
        fresh,
        populate,
        _store: std::marker::PhantomData,
    })
}
