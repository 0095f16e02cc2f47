//! `restore`: checksums first, then the metastore import, then parallel shard uploads.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read, Write};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio_util::io::SyncIoBridge;

use crate::backup::{Hooks, TransferStats};
use crate::conn::{Client, Conn, IdMap, RenameNames};
use crate::error::{ClientError, Result};
use crate::filecheck::{check_file, read_meta_blob, verify_archive};
use crate::hashio::{HashingReader, MeteredWriter};
use crate::installed::{Watch, Watcher};
use crate::layout::{self, FileRecord, ShardChain};
use crate::limiter::RateLimiter;
use crate::loadable::ShardFileKind;
use crate::proto;
use crate::storage::Storage;
use crate::upload_gate::Gate;

mod chain;
mod phases;

const IO_BUFFER: usize = 256 * 1024;

/// What to restore and under which names.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Only this database of the backup (all but `_internal` when `None`).
    pub db: Option<String>,
    /// Its new name (needs `db`).
    pub new_db: Option<String>,
    /// Only this retention policy.
    pub rp: Option<String>,
    /// Its new name (needs `rp`).
    pub new_rp: Option<String>,
    /// Only this shard (source ID).
    pub shard: Option<u64>,
    /// Shards uploaded at once (≥ 1).
    pub jobs: usize,
    /// Cap on the combined upload rate, bytes per second.
    pub rate_limit: Option<u64>,
    /// Ask the server to acknowledge every shard upload (snapshotd extension `0x87`): a
    /// failed restore of a shard is then reported instead of passing silently. influxd does
    /// not support it.
    pub acknowledged: bool,
    /// Continue an interrupted restore of the same manifest into the same server.
    pub resume: Option<RestoreResume>,
    /// The restore point: an id (`TS`) or an RFC 3339 time (the newest point at or before
    /// it); `None` = the newest.
    pub at: Option<String>,
    /// Send shard files influxd does not load (e.g. `.wal` segments of older snapshotd
    /// backups) instead of refusing the shard; implied by `acknowledged` (snapshotd serve
    /// loads them).
    pub force: bool,
    /// Record the intent of the metastore import before sending it (through
    /// [`crate::UnitSink::import_intent`]) and recover `pending_import` instead of importing
    /// again: for runs whose sink keeps a checkpoint.
    pub guard_import: bool,
    /// An import an interrupted run recorded the intent of, but not the result.
    pub pending_import: Option<crate::reimport::ImportIntent>,
}

/// What an interrupted restore finished.
#[derive(Debug, Clone, Default)]
pub struct RestoreResume {
    /// The manifest whose metastore the server imported.
    pub manifest: String,
    /// The old → new shard-ID map the server returned then.
    pub id_map: IdMap,
    /// Backup shard IDs already uploaded.
    pub done: BTreeSet<u64>,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// The manifest whose meta was imported.
    pub manifest: String,
    /// The server's old → new shard-ID map.
    pub id_map: IdMap,
    /// Shards uploaded: (source ID, new ID).
    pub restored: Vec<(u64, u64)>,
    /// Selected shards the server did not map (not uploaded).
    pub unmapped: Vec<u64>,
    /// Whether every file was checked against a manifest checksum.
    pub checksums_verified: bool,
    /// The restored shards whose data comes from more than one archive, by source ID.
    pub stacked: Vec<Stacked>,
}

/// A shard restored from a chain of archives (see [`layout::ShardChain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stacked {
    /// Source shard ID.
    pub shard: u64,
    /// The point (`TS`) of the chain's first archive.
    pub base: String,
    /// Whether that archive holds the whole shard (a full run).
    pub base_whole: bool,
    /// Archives of later points applied over it.
    pub later: usize,
}

impl std::fmt::Display for Stacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.later == 1 { "" } else { "s" };
        if self.base_whole {
            write!(
                f,
                "shard {}: full {} + {} incremental{s}",
                self.shard, self.base, self.later
            )
        } else {
            // No full run holds it: every archive of it is applied, from the oldest.
            write!(
                f,
                "shard {}: {} archives from {} on (no full run of it)",
                self.shard,
                self.later + 1,
                self.base
            )
        }
    }
}

/// The chains of `selected` that hold more than one archive.
fn stacked(selected: &[FileRecord], chains: &BTreeMap<u64, ShardChain>) -> Vec<Stacked> {
    selected
        .iter()
        .filter_map(|f| chains.get(&f.shard_id))
        .filter(|c| c.archives.len() > 1)
        .filter_map(|c| {
            Some(Stacked {
                shard: c.archives.first()?.shard_id,
                base: c.runs.first()?.trim_end_matches(".manifest").to_string(),
                base_whole: c.starts_whole,
                later: c.archives.len() - 1,
            })
        })
        .collect()
}

/// Restores the portable backup in `src` into the server behind `client`.
pub async fn restore(
    client: &Client,
    src: &Storage,
    opts: &RestoreOptions,
    hooks: &Hooks,
) -> Result<RestoreSummary> {
    let names = rename_names(opts)?;
    let plan = layout::restore_plan_at(src, opts.at.as_deref()).await?;
    let selected = phases::select(&plan, opts)?;
    // Nothing is sent before every file we will use is there with its size; archives with a
    // checksum are hashed on the upload pass itself (a mismatch aborts the shard before
    // influxd installs it), the others are checked whole first.
    let checksums_verified = precheck(src, &plan, &selected, opts.jobs.max(1)).await?;
    let blob = read_meta_blob(src, &plan, client.config().limits.max_meta_blob).await?;
    let prior = opts.resume.as_ref().filter(|r| r.manifest == plan.manifest);
    let id_map = phases::import(client, opts, hooks, &plan, &blob, &names, prior).await?;
    let mut stacked = stacked(&selected, &plan.chains);
    let parts = phases::partition(selected, &plan.chains, &id_map, prior, hooks);
    let ctx = Arc::new(UploadCtx {
        client: client.clone(),
        src: src.clone(),
        chains: plan.chains,
        new_db: opts.new_db.clone(),
        new_rp: opts.new_rp.clone().or_else(|| opts.rp.clone()),
        limiter: opts.rate_limit.map(|r| Arc::new(RateLimiter::new(r))),
        acknowledged: opts.acknowledged,
        force: opts.force || opts.acknowledged,
        hooks: hooks.clone(),
        cancel: hooks.cancel.clone(),
        watcher: match opts.acknowledged {
            true => None,
            false => Some(Watcher::open(client).await),
        },
    });
    let mut restored = phases::upload_all(ctx, parts.work, opts.jobs.max(1)).await?;
    restored.extend(parts.kept);
    restored.sort_unstable();
    stacked.retain(|c| restored.iter().any(|(old, _)| *old == c.shard));
    Ok(RestoreSummary {
        manifest: plan.manifest,
        id_map,
        restored,
        unmapped: parts.unmapped,
        checksums_verified,
        stacked,
    })
}

/// Upload order: largest first (by `size`, then by ID), so a big shard uploads while the
/// small ones go through the other slots instead of alone at the end.
fn largest_first(work: &mut [(FileRecord, u64)], size: impl Fn(&FileRecord) -> u64) {
    work.sort_by(|(a, _), (b, _)| size(b).cmp(&size(a)).then(a.shard_id.cmp(&b.shard_id)));
}

/// Uncompressed bytes of a shard's chain (its own archive's without a chain).
fn chain_size(chains: &BTreeMap<u64, ShardChain>, f: &FileRecord) -> u64 {
    chains.get(&f.shard_id).map_or(f.size, ShardChain::size)
}

/// Ids of the plan's shards in `--db`/`--rp` (for a `--shard` that is not there).
fn shards_matching(shards: &[FileRecord], opts: &RestoreOptions) -> Vec<u64> {
    let in_scope = |f: &&FileRecord| {
        opts.db.as_ref().is_none_or(|d| *d == f.db) && opts.rp.as_ref().is_none_or(|r| *r == f.rp)
    };
    shards.iter().filter(in_scope).map(|f| f.shard_id).collect()
}

/// The checks before anything is sent: the meta file (size, sha256), the size of each
/// archive of the selected shards' chains, and archives without a checksum (influxd's)
/// gunzipped as one complete tar. Returns whether every file has a checksum.
async fn precheck(
    src: &Storage,
    plan: &layout::RestorePlan,
    selected: &[FileRecord],
    jobs: usize,
) -> Result<bool> {
    let meta = &plan.meta;
    check_file(src, &meta.file_name, meta.sha256.clone(), meta.bytes).await?;
    let archives: Vec<&FileRecord> = selected
        .iter()
        .flat_map(|f| match plan.chains.get(&f.shard_id) {
            Some(c) => c.archives.iter().collect(),
            None => vec![f],
        })
        .collect();
    let results: Vec<Result<()>> = futures::stream::iter(archives.iter().copied())
        .map(|f| async move {
            match &f.sha256 {
                Some(_) => check_file(src, &f.file_name, None, f.bytes).await,
                None => verify_archive(src, f).await,
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(meta.sha256.is_some() && archives.iter().all(|f| f.sha256.is_some()))
}

/// Influx's type-6 names, refusing the combinations that silently lose data.
pub fn rename_names(opts: &RestoreOptions) -> Result<RenameNames> {
    if opts.new_db.is_some() && opts.db.is_none() {
        return Err(ClientError::NewDbNeedsDb);
    }
    if opts.new_rp.is_some() && opts.rp.is_none() {
        return Err(ClientError::NewRpNeedsRp);
    }
    for n in [&opts.db, &opts.new_db, &opts.rp, &opts.new_rp]
        .into_iter()
        .flatten()
    {
        if n.is_empty() || n.contains(['/', '\\']) || n == "." || n == ".." {
            return Err(ClientError::InvalidName { name: n.clone() });
        }
    }
    Ok(RenameNames {
        db: opts.db.clone().unwrap_or_default(),
        new_db: opts.new_db.clone().unwrap_or_default(),
        rp: opts.rp.clone().unwrap_or_default(),
        new_rp: opts
            .new_rp
            .clone()
            .or_else(|| opts.rp.clone())
            .unwrap_or_default(),
    })
}

struct UploadCtx {
    client: Client,
    src: Storage,
    /// Each shard's archives (see [`layout::ShardChain`]).
    chains: BTreeMap<u64, ShardChain>,
    new_db: Option<String>,
    new_rp: Option<String>,
    limiter: Option<Arc<RateLimiter>>,
    acknowledged: bool,
    force: bool,
    hooks: Hooks,
    cancel: CancellationToken,
    /// Without acknowledgements: tells whether the server process stayed the same.
    watcher: Option<Watcher>,
}

/// A finished upload, not yet confirmed.
struct Sent {
    /// Bytes sent.
    bytes: u64,
    /// Each file's name in the shard and size.
    files: Vec<(String, u64)>,
    /// The watch taken before the upload started.
    watch: Option<Arc<Watch>>,
}

/// Sends one shard; the server closed the connection cleanly after it.
async fn upload(ctx: &UploadCtx, f: &FileRecord, new_id: u64) -> Result<Sent> {
    if ctx.cancel.is_cancelled() {
        return Err(ClientError::Cancelled);
    }
    ctx.hooks.progress.unit_started(&f.file_name);
    let chain = match ctx.chains.get(&f.shard_id) {
        Some(c) if !c.archives.is_empty() => c.archives.clone(),
        _ => vec![f.clone()],
    };
    let skips = chain::Skips::read(&ctx.src, &chain).await?;
    let watch = ctx.watcher.as_ref().and_then(Watcher::current);
    let reader = ctx.src.blocking_reader(&chain[0].file_name).await?;
    let conn = ctx
        .client
        .shard_upload_with(new_id, ctx.acknowledged)
        .await?;
    let job = UploadJob {
        file: f.clone(),
        chain,
        skips,
        src: ctx.src.clone(),
        new_id,
        target_db: ctx.new_db.clone().unwrap_or_else(|| f.db.clone()),
        target_rp: ctx.new_rp.clone().unwrap_or_else(|| f.rp.clone()),
        limiter: ctx.limiter.clone(),
        acknowledged: ctx.acknowledged,
        force: ctx.force,
        limits: ctx.client.config().limits,
        hooks: ctx.hooks.clone(),
        cancel: ctx.cancel.clone(),
    };
    let target = job.target();
    let handle = tokio::runtime::Handle::current();
    let sent = tokio::task::spawn_blocking(move || job.run(reader, conn, handle))
        .await
        .map_err(|e| {
            let task = format!("upload {} to shard {new_id} ({target})", f.file_name);
            ClientError::worker(task, e)
        })?;
    match sent {
        Ok((bytes, files)) => Ok(Sent {
            bytes,
            files,
            watch,
        }),
        // A transfer stopped by the token fails with an I/O error; the token says why.
        Err(_) if ctx.cancel.is_cancelled() => Err(ClientError::Cancelled),
        // The server went away mid-upload: nothing of the shard can be trusted.
        Err(ClientError::Io { what, source }) if !what.ends_with("read archive") => {
            Err(ClientError::UploadUnconfirmed {
                file: f.file_name.clone(),
                shard: new_id,
                target,
                detail: format!("the upload failed ({what}: {source})"),
            })
        }
        Err(e) => Err(e),
    }
}

/// Confirms an unacknowledged upload (see [`crate::installed`]), then records the shard
/// as restored.
async fn confirm(ctx: &UploadCtx, f: &FileRecord, new_id: u64, sent: Sent) -> Result<(u64, u64)> {
    if let Some(watcher) = &ctx.watcher {
        let target_db = ctx.new_db.clone().unwrap_or_else(|| f.db.clone());
        let target_rp = ctx.new_rp.clone().unwrap_or_else(|| f.rp.clone());
        let target = format!("{target_db}/{target_rp}");
        confirm_alive(ctx, f, new_id, &target, &target_db).await?;
        if !Watcher::same_process(&sent.watch) {
            confirm_installed(ctx, f, new_id, &target, &sent.files).await?;
            watcher.renew(&ctx.client, &sent.watch).await;
        } else {
            confirm_not_empty(ctx, f, new_id, &target, &sent.files).await?;
        }
    }
    TransferStats::add(&ctx.hooks.stats.bytes_transferred, sent.bytes);
    TransferStats::add(&ctx.hooks.stats.shards_done, 1);
    ctx.hooks.progress.unit_done(&f.file_name, sent.bytes);
    ctx.hooks.units.shard_restored(f.shard_id, new_id);
    Ok((f.shard_id, new_id))
}

/// Without acknowledgements (influxd) the only sign a shard was stored is the server still
/// answering afterwards and listing it: a server that died mid-restore fails the shard here.
async fn confirm_alive(
    ctx: &UploadCtx,
    f: &FileRecord,
    new_id: u64,
    target: &str,
    db: &str,
) -> Result<()> {
    let unconfirmed = |detail: String| ClientError::UploadUnconfirmed {
        file: f.file_name.clone(),
        shard: new_id,
        target: target.to_string(),
        detail,
    };
    let shards = match ctx.client.database_info(db).await {
        Ok(shards) => shards,
        Err(e @ (ClientError::Connect { .. } | ClientError::Timeout { .. })) => {
            return Err(unconfirmed(format!(
                "the server stopped answering after it ({e})"
            )));
        }
        // It answered, if not with a listing (a server without type 3 for this database):
        // alive, which is all this check can learn.
        Err(e) => {
            tracing::debug!(error = %e, "shard listing after the upload");
            return Ok(());
        }
    };
    if !shards.iter().any(|s| s.id == new_id) {
        return Err(unconfirmed(format!(
            "the server no longer lists shard {new_id} of database {db:?}"
        )));
    }
    Ok(())
}

/// The same server process read the upload, but its install may still have failed (a cut
/// stream reaches influxd as a clean end; it keeps nothing and closes as on success): a
/// shard that was sent TSM files must hold at least one. Only presence is checked, since
/// influxd may already be compacting (renaming) what it installed.
async fn confirm_not_empty(
    ctx: &UploadCtx,
    f: &FileRecord,
    new_id: u64,
    target: &str,
    files: &[(String, u64)],
) -> Result<()> {
    if !files.iter().any(|(name, _)| name.ends_with(".tsm")) {
        return Ok(());
    }
    let (db, rp) = target.split_once('/').unwrap_or((target, ""));
    if crate::installed::holds_any_tsm(&ctx.client, db, rp, new_id).await? {
        return Ok(());
    }
    Err(ClientError::NotInstalled {
        file: f.file_name.clone(),
        shard: new_id,
        target: target.to_string(),
        detail: "the server holds none of its TSM files (it kept nothing of the upload; \
                 its log says why, e.g. \"unexpected EOF\" for a stream cut short)"
            .into(),
    })
}

/// The server process that read the upload may have died while installing it: its files
/// must be listed by the server as they were sent.
async fn confirm_installed(
    ctx: &UploadCtx,
    f: &FileRecord,
    new_id: u64,
    target: &str,
    files: &[(String, u64)],
) -> Result<()> {
    let (db, rp) = target.split_once('/').unwrap_or((target, ""));
    let have = crate::installed::installed_tsm(&ctx.client, db, rp, new_id).await?;
    match crate::installed::first_missing(files, &have) {
        None => {
            tracing::debug!(file = %f.file_name, shard = new_id, "server restarted; shard files present");
            Ok(())
        }
        Some(missing) => Err(ClientError::NotInstalled {
            file: f.file_name.clone(),
            shard: new_id,
            target: target.to_string(),
            detail: format!("the server restarted while it installed the upload ({missing})"),
        }),
    }
}

struct UploadJob {
    /// The shard's newest archive (names the upload).
    file: FileRecord,
    /// The archives sent, oldest first (`file` alone for most shards).
    chain: Vec<FileRecord>,
    /// Which entries of an archive a later one of the chain replaces.
    skips: chain::Skips,
    src: Storage,
    new_id: u64,
    target_db: String,
    target_rp: String,
    limiter: Option<Arc<RateLimiter>>,
    acknowledged: bool,
    force: bool,
    limits: snapshotd_wire::Limits,
    hooks: Hooks,
    cancel: CancellationToken,
}

impl UploadJob {
    /// `db/rp` the shard goes to.
    fn target(&self) -> String {
        format!("{}/{}", self.target_db, self.target_rp)
    }

    /// Sends every entry of archive `i` of the chain renamed into the target shard, except
    /// those a later archive holds (no end marker yet); returns each file's name in the
    /// shard and size.
    fn send_entries<R: Read, W: Write>(
        &self,
        i: usize,
        archive: &mut tar::Archive<R>,
        builder: &mut tar::Builder<W>,
    ) -> Result<Vec<(String, u64)>> {
        let file = &self.chain[i];
        let name = &file.file_name;
        let io = |what: &str, e: std::io::Error| ClientError::io(format!("{name}: {what}"), e);
        let prefix = format!("{}/{}/{}/", self.target_db, self.target_rp, self.new_id);
        let mut files = Vec::new();
        for entry in archive.entries().map_err(|e| io("read archive", e))? {
            let mut entry = entry.map_err(|e| io("read archive", e))?;
            let entry_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(rest) = renamed_rest(file, &entry_name, entry.header().entry_type())? else {
                continue;
            };
            if self.skips.later_holds(i, &rest) {
                continue;
            }
            if !self.force && crate::loadable::classify(&entry_name) == ShardFileKind::Other {
                let names = [entry_name.as_str()];
                let detail = crate::loadable::warning(name, &names).unwrap_or_default();
                return Err(ClientError::Unloadable { detail });
            }
            files.push((rest.clone(), entry.size()));
            let mut header = entry.header().clone();
            builder
                .append_data(&mut header, format!("{prefix}{rest}"), &mut entry)
                .map_err(|e| io("send tar entry", e))?;
        }
        Ok(files)
    }

    /// Reads the rest of the stored archive and checks its size and sha256 against the
    /// manifest (the same pass as the upload: a mismatch aborts the shard before influxd
    /// can install it).
    fn check_source<R: Read>(
        file: &FileRecord,
        archive: tar::Archive<Tagged<flate2::read::MultiGzDecoder<BufReader<HashingReader<R>>>>>,
    ) -> Result<()> {
        let name = &file.file_name;
        let io = |e: std::io::Error| ClientError::io(format!("{name}: read archive"), e);
        let mut gz = archive.into_inner();
        std::io::copy(&mut gz, &mut std::io::sink()).map_err(io)?;
        let mut raw = gz.inner.into_inner();
        std::io::copy(&mut raw, &mut std::io::sink()).map_err(io)?;
        let (sha256, bytes) = raw.into_inner().finish();
        let bad = |detail: String| ClientError::Integrity {
            file: name.clone(),
            detail: format!("{detail}; the shard was not installed"),
        };
        if let Some(b) = file.bytes
            && b != bytes
        {
            return Err(bad(format!("size {bytes} bytes, manifest says {b}")));
        }
        match &file.sha256 {
            Some(want) if !want.eq_ignore_ascii_case(&sha256) => {
                Err(bad(format!("sha256 {sha256}, manifest says {want}")))
            }
            _ => Ok(()),
        }
    }

    /// A damaged source (its gunzip failed) is an integrity error of the backup file, not
    /// a failed upload: re-running would not help.
    fn source_error(
        file: &FileRecord,
        failed: &std::sync::Mutex<Option<String>>,
        e: ClientError,
    ) -> ClientError {
        let seen = failed.lock().unwrap_or_else(|p| p.into_inner()).take();
        match seen {
            Some(detail) => ClientError::Integrity {
                file: file.file_name.clone(),
                detail: format!(
                    "not a complete gzipped tar ({detail}); the shard was not installed"
                ),
            },
            None => e,
        }
    }

    /// Sends archive `i` of the chain (gunzip → tar, validated, renamed) and checks its
    /// size and sha256 once read.
    fn send_archive<W: Write>(
        &self,
        i: usize,
        reader: Box<dyn std::io::Read + Send>,
        builder: &mut tar::Builder<W>,
    ) -> Result<Vec<(String, u64)>> {
        let file = &self.chain[i];
        let src = BufReader::with_capacity(IO_BUFFER, HashingReader::new(reader));
        let failed = Arc::new(std::sync::Mutex::new(None));
        let gz = Tagged::new(flate2::read::MultiGzDecoder::new(src), Arc::clone(&failed));
        let mut archive = tar::Archive::new(gz);
        let files = self
            .send_entries(i, &mut archive, builder)
            .map_err(|e| Self::source_error(file, &failed, e))?;
        Self::check_source(file, archive).map_err(|e| Self::source_error(file, &failed, e))?;
        Ok(files)
    }

    /// Each archive of the chain → gunzip → tar (validated, renamed) → meter → socket, as
    /// one tar stream; then wait for close.
    fn run(
        self,
        reader: Box<dyn std::io::Read + Send>,
        conn: Conn,
        handle: tokio::runtime::Handle,
    ) -> Result<(u64, Vec<(String, u64)>)> {
        let name = self.file.file_name.clone();
        let io = |what: &str, e: std::io::Error| ClientError::io(format!("{name}: {what}"), e);
        let mut conn = conn;
        // A failed upload must end with a reset: a clean close would let influxd install it.
        conn.get_mut()
            .set_zero_linger()
            .map_err(|e| io("set up the upload", e))?;
        let sock = SyncIoBridge::new_with_handle(conn, handle.clone());
        let metered = MeteredWriter::new(
            sock,
            self.limiter.clone(),
            Arc::clone(&self.hooks.progress),
            self.cancel.clone(),
        );
        let gate = Gate::new(metered);
        let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(IO_BUFFER, gate));
        // Dropped before `builder`: any early return poisons the gate first.
        let mut abort = builder.get_ref().get_ref().abort_guard();
        let mut files = self.send_archive(0, reader, &mut builder)?;
        for i in 1..self.chain.len() {
            let name = &self.chain[i].file_name;
            let reader = handle.block_on(self.src.blocking_reader(name))?;
            files.extend(self.send_archive(i, reader, &mut builder)?);
        }
        abort.disarm();
        let bufw = builder.into_inner().map_err(|e| io("finish tar", e))?;
        let gate = bufw.into_inner().map_err(|e| io("send", e.into_error()))?;
        let metered = gate.into_inner();
        let sent = metered.count();
        let mut sock = metered.into_inner();
        sock.flush().map_err(|e| io("send", e))?;
        sock.shutdown().map_err(|e| io("close upload", e))?;
        // The server closes once it has consumed the archive (and, when asked, says how it
        // went first).
        let mut conn = sock.into_inner();
        let mut reply = Vec::new();
        let read = handle.block_on((&mut conn).take(64 * 1024).read_to_end(&mut reply));
        if self.acknowledged {
            read.map_err(|e| io("read the upload acknowledgement", e))?;
            if reply.is_empty() {
                return Err(ClientError::NoData {
                    what: format!(
                        "{name}: acknowledged upload to shard {} (influxd does not support \
                         acknowledgements; restore into influxd without --ack)",
                        self.new_id
                    ),
                });
            }
            let files = proto::decode_upload_ack(&reply, &self.limits).map_err(|e| {
                ClientError::protocol(format!("{name}: upload to shard {}", self.new_id), e)
            })?;
            tracing::debug!(file = %name, files, "upload acknowledged");
        } else if let Err(e) = read {
            // influxd closes with a FIN once it has stored the shard; a reset means it
            // dropped the upload (or died), so the shard must not count as restored.
            return Err(ClientError::UploadUnconfirmed {
                file: name,
                shard: self.new_id,
                target: format!("{}/{}", self.target_db, self.target_rp),
                detail: format!("the server reset the connection instead of closing it ({e})"),
            });
        }
        Ok((sent, files))
    }
}

/// A reader that keeps the message of its first read error (to tell a damaged source from a
/// failed send when the tar builder reports either as an I/O error).
struct Tagged<R> {
    inner: R,
    failed: Arc<std::sync::Mutex<Option<String>>>,
}

impl<R> Tagged<R> {
    fn new(inner: R, failed: Arc<std::sync::Mutex<Option<String>>>) -> Self {
        Tagged { inner, failed }
    }
}

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| e.to_string());
        })
    }
}

/// Validates one archive entry and returns what follows `db/rp/id/` in its name, or `None`
/// for entries that carry no data (directories).
fn renamed_rest(file: &FileRecord, name: &str, kind: tar::EntryType) -> Result<Option<String>> {
    let unsafe_entry = |reason: &str| ClientError::UnsafeEntry {
        file: file.file_name.clone(),
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if kind.is_dir() {
        return Ok(None);
    }
    if !(kind.is_file() || kind == tar::EntryType::Continuous) {
        return Err(unsafe_entry("not a regular file"));
    }
    if name.starts_with('/') || name.contains('\\') {
        return Err(unsafe_entry("absolute path or backslash"));
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(unsafe_entry("empty, '.' or '..' path component"));
    }
    let [db, rp, id, rest @ ..] = parts.as_slice() else {
        return Err(unsafe_entry("expected db/rp/id/file"));
    };
    if rest.is_empty() {
        return Err(unsafe_entry("expected db/rp/id/file"));
    }
    if *db != file.db || *rp != file.rp || *id != file.shard_id.to_string() {
        return Err(unsafe_entry(&format!(
            "belongs to another shard than {}/{}/{}",
            file.db, file.rp, file.shard_id
        )));
    }
    Ok(Some(rest.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> FileRecord {
        FileRecord {
            db: "db2".into(),
            rp: "rp2".into(),
            shard_id: 5,
            file_name: "x.s5.tar.gz".into(),
            size: 0,
            sha256: None,
            bytes: None,
        }
    }

    #[test]
    fn entry_names_are_validated_and_split() {
        let f = rec();
        let reg = tar::EntryType::Regular;
        assert_eq!(
            renamed_rest(&f, "db2/rp2/5/000000001-000000001.tsm", reg).unwrap(),
            Some("000000001-000000001.tsm".into())
        );
        for bad in [
            "/db2/rp2/5/a.tsm",
            "db2/rp2/5/../../x",
            "db2/rp2/5",
            "db2/rp2/6/a.tsm",
            "db2//5/a.tsm",
            "other/rp2/5/a.tsm",
            "db2\\rp2\\5\\a.tsm",
        ] {
            assert!(renamed_rest(&f, bad, reg).is_err(), "{bad} accepted");
        }
        assert!(renamed_rest(&f, "db2/rp2/5/a", tar::EntryType::Symlink).is_err());
        assert_eq!(
            renamed_rest(&f, "db2/rp2/5/", tar::EntryType::Directory).unwrap(),
            None
        );
    }

    #[test]
    fn stacked_shards_say_what_they_were_built_from() {
        let mut c = Stacked {
            shard: 3,
            base: "20261206T020000Z".into(),
            base_whole: true,
            later: 1,
        };
        assert_eq!(
            c.to_string(),
            "shard 3: full 20261206T020000Z + 1 incremental"
        );
        c.later = 2;
        assert_eq!(
            c.to_string(),
            "shard 3: full 20261206T020000Z + 2 incrementals"
        );
        c.base_whole = false;
        assert_eq!(
            c.to_string(),
            "shard 3: 3 archives from 20261206T020000Z on (no full run of it)"
        );
    }

    #[test]
    fn uploads_start_with_the_largest_shard() {
        let shard = |id, size| {
            let mut f = rec();
            f.shard_id = id;
            f.size = size;
            (f, id + 100)
        };
        let mut work = vec![shard(1, 10), shard(2, 5000), shard(3, 10), shard(4, 70)];
        largest_first(&mut work, |f| f.size);
        let order: Vec<u64> = work.iter().map(|(f, _)| f.shard_id).collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[test]
    fn newdb_without_db_is_refused() {
        let o = RestoreOptions {
            new_db: Some("x".into()),
            ..Default::default()
        };
        assert!(rename_names(&o).is_err());
        let o = RestoreOptions {
            new_rp: Some("x".into()),
            ..Default::default()
        };
        assert!(rename_names(&o).is_err());
        let o = RestoreOptions {
            db: Some("db2".into()),
            new_db: Some("db2copy".into()),
            rp: Some("rp2".into()),
            ..Default::default()
        };
        let n = rename_names(&o).unwrap();
        assert_eq!(
            n,
            RenameNames {
                db: "db2".into(),
                new_db: "db2copy".into(),
                rp: "rp2".into(),
                new_rp: "rp2".into()
            }
        );
    }
}
