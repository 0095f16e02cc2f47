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
use std::time::SystemTime;

use crate::api::Store;
use crate::error::{InvalidInput, Result, StoreError, TarProblem};
mod checks;

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

/// A refused tar stream (no shard: a store's own output under test).
fn bad_tar(entry: Option<String>, problem: TarProblem) -> StoreError {
    InvalidInput::Tar {
        shard: None,
        entry,
        problem,
    }
    .into()
}

/// A tar reader failure as a tar problem.
fn unreadable(e: std::io::Error) -> TarProblem {
    TarProblem::Unreadable {
        detail: e.to_string(),
    }
}

/// Files of a tar: name → content; also fails on non-regular entries.
pub fn tar_files(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    let entries = ar.entries().map_err(|e| bad_tar(None, unreadable(e)))?;
    for e in entries {
        let mut e = e.map_err(|e| bad_tar(None, unreadable(e)))?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if e.header().entry_type() != tar::EntryType::Regular {
            let kind = format!("{:?}", e.header().entry_type());
            return Err(bad_tar(Some(name), TarProblem::NotRegularFile { kind }));
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data)
            .map_err(|e| bad_tar(Some(name.clone()), unreadable(e)))?;
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
            return Err(bad_tar(Some(name), TarProblem::ShortName));
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
    let meta = ok_or("meta_snapshot", a.meta_snapshot())?;
    checks::listing(&a, &fx, &meta)?;
    report.passed.push("listing");
    checks::not_found(&a, &fx)?;
    report.passed.push("not_found");
    let tar_a = checks::backup_shape(&a, &fx)?;
    report.passed.push("backup");
    checks::export(&a, &fx)?;
    report.passed.push("export");
    let b = ok_or("round trip", h.fresh())?;
    let (new_id, files_a) = checks::round_trip(&b, &fx, &meta, &tar_a)?;
    report.passed.push("round_trip");
    checks::conflict(&b, &fx, &meta)?;
    report.passed.push("conflict");
    let sandbox = h.sandbox(&b);
    checks::hostile_tars(&b, &fx, new_id, &files_a, sandbox.as_deref())?;
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
