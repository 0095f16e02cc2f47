//! One shard's upload: its chain of archives streamed as one tar, each archive's size and
//! sha256 checked as it is read, entries renamed into the target shard.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use tokio::io::AsyncReadExt;
use tokio_util::io::SyncIoBridge;

use crate::backup::Hooks;
use crate::conn::{Client, Conn};
use crate::error::{ClientError, Result};
use crate::hashio::{HashingReader, MeteredWriter};
use crate::installed::{Watch, Watcher};
use crate::layout::{FileRecord, ShardChain};
use crate::limiter::RateLimiter;
use crate::loadable::ShardFileKind;
use crate::proto;
use crate::storage::Storage;
use crate::upload_gate::Gate;

use super::IO_BUFFER;

/// What every shard upload of one restore shares.
pub(super) struct UploadCtx {
    pub(super) client: Client,
    pub(super) src: Storage,
    /// Each shard's archives (see [`crate::layout::ShardChain`]).
    pub(super) chains: BTreeMap<u64, ShardChain>,
    pub(super) new_db: Option<String>,
    pub(super) new_rp: Option<String>,
    pub(super) limiter: Option<Arc<RateLimiter>>,
    pub(super) acknowledged: bool,
    pub(super) force: bool,
    pub(super) hooks: Hooks,
    pub(super) cancel: CancellationToken,
    /// Without acknowledgements: tells whether the server process stayed the same.
    pub(super) watcher: Option<Watcher>,
}

/// A finished upload, not yet confirmed.
pub(super) struct Sent {
    /// Bytes sent.
    pub(super) bytes: u64,
    /// Each file's name in the shard and size.
    pub(super) files: Vec<(String, u64)>,
    /// The watch taken before the upload started.
    pub(super) watch: Option<Arc<Watch>>,
}

/// Sends one shard; the server closed the connection cleanly after it.
pub(super) async fn upload(ctx: &UploadCtx, f: &FileRecord, new_id: u64) -> Result<Sent> {
    if ctx.cancel.is_cancelled() {
        return Err(ClientError::Cancelled);
    }
    ctx.hooks.progress.unit_started(&f.file_name);
    let chain = match ctx.chains.get(&f.shard_id) {
        Some(c) if !c.archives.is_empty() => c.archives.clone(),
        _ => vec![f.clone()],
    };
    let skips = super::chain::Skips::read(&ctx.src, &chain).await?;
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

struct UploadJob {
    /// The shard's newest archive (names the upload).
    file: FileRecord,
    /// The archives sent, oldest first (`file` alone for most shards).
    chain: Vec<FileRecord>,
    /// Which entries of an archive a later one of the chain replaces.
    skips: super::chain::Skips,
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
pub(super) fn renamed_rest(
    file: &FileRecord,
    name: &str,
    kind: tar::EntryType,
) -> Result<Option<String>> {
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
