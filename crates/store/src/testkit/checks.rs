//! The conformance checks [`super::run`] applies, one function per property.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{
    Fixture, KitFailure, backup, fail, listing as dir_listing, ok_or, raw_tar, rename_tar, strip,
    tar_files,
};
use crate::api::Store;
use crate::error::{Result, StoreError};
use crate::meta::Data;
use crate::types::{ImportRequest, ShardPath};

type Files = BTreeMap<String, Vec<u8>>;

/// Listing order and filters agree with the meta snapshot; every shard has sane info.
pub(super) fn listing(a: &dyn Store, fx: &Fixture, meta: &[u8]) -> Result<(), KitFailure> {
    let data = ok_or("meta_snapshot", Data::decode_blob(meta))?;
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
    Ok(())
}

/// Unknown databases, policies and shards are `NotFound` everywhere.
pub(super) fn not_found(a: &dyn Store, fx: &Fixture) -> Result<(), KitFailure> {
    let nf = |r: &Result<()>| matches!(r, Err(StoreError::NotFound { .. }));
    let missing = u64::MAX - 7;
    if !nf(&a.list_shards(Some("kit-no-such-db"), None).map(|_| ()))
        || !nf(&a
            .list_shards(Some(&fx.database), Some("kit-no-such-rp"))
            .map(|_| ()))
        || !nf(&a.shard_info(missing).map(|_| ()))
        || !nf(&backup(a, missing, None).map(|_| ()))
        || !nf(&a.restore_shard(missing, &mut &raw_tar(&[])[..]).map(|_| ()))
    {
        return Err(fail("not_found", "an unknown db/rp/shard was not NotFound"));
    }
    Ok(())
}

/// A backup ships the shard's files under `db/rp/id/`; `since` in the future ships none.
pub(super) fn backup_shape(a: &dyn Store, fx: &Fixture) -> Result<Vec<u8>, KitFailure> {
    let tar_a = ok_or("backup", backup(a, fx.shard_with_data, None))?;
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
    let tar_since = ok_or("backup since", backup(a, fx.shard_with_data, Some(later)))?;
    if !ok_or("backup since", tar_files(&tar_since))?.is_empty() {
        return Err(fail(
            "backup since",
            "files newer than now + 1h were shipped",
        ));
    }
    Ok(tar_a)
}

/// Export over all time: a well-formed tar of the shard's files, or `Unsupported`.
pub(super) fn export(a: &dyn Store, fx: &Fixture) -> Result<(), KitFailure> {
    let prefix = format!(
        "{}/{}/{}/",
        fx.database, fx.retention_policy, fx.shard_with_data
    );
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
    Ok(())
}

/// The backup restores into a second store (after a meta import) with the same files;
/// returns the shard's new id and the backup's files.
pub(super) fn round_trip(
    b: &dyn Store,
    fx: &Fixture,
    meta: &[u8],
    tar_a: &[u8],
) -> Result<(u64, Files), KitFailure> {
    let files_a = ok_or("backup", tar_files(tar_a))?;
    let req = ImportRequest {
        backup_database: Some(fx.database.clone()),
        ..Default::default()
    };
    let map = ok_or("import", b.import_meta(meta, &req))?;
    let new_id = map
        .0
        .iter()
        .find(|(old, _)| *old == fx.shard_with_data)
        .map(|(_, new)| *new)
        .ok_or_else(|| fail("import", format!("shard not in map {map:?}")))?;
    let renamed = ok_or(
        "round trip",
        rename_tar(tar_a, &fx.database, &fx.retention_policy, new_id),
    )?;
    let stats = ok_or("restore", b.restore_shard(new_id, &mut renamed.as_slice()))?;
    if stats.files != files_a.len() as u64 {
        return Err(fail(
            "restore",
            format!("{stats:?} for {} files", files_a.len()),
        ));
    }
    let tar_b = ok_or("round trip", backup(b, new_id, None))?;
    let files_b = ok_or("round trip", tar_files(&tar_b))?;
    if strip(files_b) != strip(files_a.clone()) {
        return Err(fail("round trip", "restored shard differs from the backup"));
    }
    Ok((new_id, files_a))
}

/// A conflicting import is refused and changes nothing.
pub(super) fn conflict(b: &dyn Store, fx: &Fixture, meta: &[u8]) -> Result<(), KitFailure> {
    let req = ImportRequest {
        backup_database: Some(fx.database.clone()),
        ..Default::default()
    };
    let before = ok_or("conflict", b.meta_snapshot())?;
    match b.import_meta(meta, &req) {
        Err(StoreError::Conflict(_)) => {}
        other => return Err(fail("conflict", format!("got {other:?}"))),
    }
    if ok_or("conflict", b.meta_snapshot())? != before {
        return Err(fail("conflict", "meta changed by a refused import"));
    }
    Ok(())
}

/// Tars escaping the shard (`..`, absolute paths, links) are refused and change nothing,
/// inside or beside the store.
pub(super) fn hostile_tars(
    b: &dyn Store,
    fx: &Fixture,
    new_id: u64,
    files_a: &Files,
    sandbox: Option<&Path>,
) -> Result<(), KitFailure> {
    let outside = sandbox.and_then(|s| s.parent().map(dir_listing));
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
        let now = ok_or("hostile tar", backup(b, new_id, None))?;
        if strip(ok_or("hostile tar", tar_files(&now))?) != strip(files_a.clone()) {
            return Err(fail(
                "hostile tar",
                format!("shard changed by refused {name:?}"),
            ));
        }
    }
    if let (Some(s), Some(before)) = (sandbox, outside) {
        let after = s.parent().map(dir_listing).unwrap_or_default();
        if after != before {
            return Err(fail("hostile tar", "a file appeared beside the store"));
        }
    }
    if std::path::Path::new("/tmp/kit-escape-abs.tsm").exists() {
        return Err(fail("hostile tar", "absolute path written"));
    }
    Ok(())
}
