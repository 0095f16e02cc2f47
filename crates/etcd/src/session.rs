//! One holder's tenure of DEST's lease: the checkpoint, the catalog and the passes.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use snapshotd_checkpoint::{Checkpoint, CheckpointOptions, JobConfig, LockOptions, UnitRecord};
use snapshotd_wal::Entry;

use crate::archive::{ArchiveEvent, ArchiveOptions};
use crate::catalog::{Catalog, ChunkInfo, GapInfo, SnapInfo};
use crate::error::{Error, Result};
use crate::layout::{chunk_key, chunk_name, gap_key, parse_snap_file, snap_key, snap_name};
use crate::source::{self, SourceRead};
use crate::store;

/// Value of the checkpoint's `job` setting for an etcd archive.
pub const JOB: &str = "etcd-archive";

/// Options of an etcd checkpoint: its `job` and `cluster_id` settings, the key, and a lease
/// of `ttl` whose holder is described by `hint`; no size-triggered flush, an hourly timed one.
pub(crate) fn checkpoint_options(
    job: &str,
    cluster: u64,
    key: Option<snapshotd_checkpoint::MasterKey>,
    ttl: Duration,
    hint: String,
) -> CheckpointOptions {
    CheckpointOptions {
        config: JobConfig::new()
            .with("job", job)
            .with("cluster_id", format!("{cluster:x}")),
        key,
        flush_interval: Duration::from_secs(3600),
        max_buffered: usize::MAX,
        lock: LockOptions {
            ttl,
            hint,
            ..LockOptions::default()
        },
        ..CheckpointOptions::default()
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    /// Chunks written.
    pub chunks: u64,
    /// Entries archived.
    pub entries: u64,
    /// Stored bytes written (chunks and `.snap` files).
    pub bytes: u64,
    /// `.snap` files archived.
    pub snaps: u64,
    /// Highest index archived (or recorded as a gap) after the pass.
    pub archived_through: u64,
    /// The member's commit index when it was read.
    pub member_commit: u64,
    /// A gap found in this pass.
    pub gap: Option<(u64, u64)>,
}

/// The active archiver's state.
pub struct Session {
    cp: Checkpoint,
    cat: Catalog,
    member: u64,
    cluster: u64,
    opts: ArchiveOptions,
}

impl Session {
    /// Takes DEST's lease (`Error::Locked` when another archiver holds it) and loads the
    /// trusted records.
    pub async fn open(
        dest: &snapshotd_checkpoint::Destination,
        opts: &ArchiveOptions,
        member: u64,
        cluster: u64,
    ) -> Result<Session> {
        let cp_opts = checkpoint_options(
            JOB,
            cluster,
            opts.key.clone(),
            opts.lock_ttl,
            format!("snapshotd etcd archive (member {member:x})"),
        );
        let cp = Checkpoint::open(dest, cp_opts)
            .await
            .map_err(Error::cp(format!("open archive {dest}")))?;
        let cat = Catalog::from_resume(cp.resume())?;
        Ok(Session {
            cp,
            cat,
            member,
            cluster,
            opts: opts.clone(),
        })
    }

    /// Highest index archived or recorded as a gap.
    pub fn archived_through(&self) -> u64 {
        self.cat.archived_through()
    }

    /// Our lock's owner id.
    pub fn owner(&self) -> String {
        self.cp.lock().info().owner
    }

    /// Our lock epoch.
    pub fn epoch(&self) -> u64 {
        self.cp.epoch()
    }

    /// Final flush and lease release.
    pub async fn finish(self) -> Result<()> {
        self.cp
            .finish()
            .await
            .map(|_| ())
            .map_err(Error::cp("finish archive session"))
    }

    /// Reads the member's committed entries after the archive's end, stores them, copies
    /// new `.snap` files and flushes the records. The new view replaces `held` first, so
    /// its locks stay even when storing fails.
    pub async fn pass(
        &mut self,
        held: &mut Option<SourceRead>,
        on_event: &mut (dyn FnMut(ArchiveEvent) + Send),
    ) -> Result<PassReport> {
        self.cp.health().map_err(Error::cp("archive lease"))?;
        let wal = self.opts.wal_dir();
        let (after, max) = (self.archived_through(), self.opts.pass_bytes);
        let mut read =
            tokio::task::spawn_blocking(move || source::read_committed(&wal, after, max))
                .await
                .map_err(|e| {
                    Error::io("read WAL", self.opts.wal_dir())(std::io::Error::other(e))
                })??;
        self.check_cluster(&read)?;
        let snap_dir = self.opts.data_dir.join("member").join("snap");
        let snaps = &self.cat.snaps;
        read.snap_locks = source::lock_snaps(&snap_dir, |f| snaps.iter().any(|s| s.file == f))?;
        let committed = std::mem::take(&mut read.committed);
        let (gap, commit) = (read.gap, read.commit);
        *held = Some(read);
        let mut report = PassReport {
            member_commit: commit,
            gap,
            ..PassReport::default()
        };
        if let Some((from, to)) = gap {
            on_event(ArchiveEvent::Gap(self.record_gap(from, to)?));
        }
        for piece in split(&committed, self.opts.chunk_bytes) {
            report.bytes += self.store_chunk(piece).await?;
            report.chunks += 1;
            report.entries += piece.len() as u64;
        }
        let (n, bytes) = self.store_snaps().await?;
        report.snaps = n;
        report.bytes += bytes;
        self.cp
            .flush()
            .await
            .map_err(Error::cp("flush archive records"))?;
        report.archived_through = self.archived_through();
        Ok(report)
    }

    fn check_cluster(&self, read: &SourceRead) -> Result<()> {
        let meta = crate::pb::decode_metadata(&read.metadata);
        match meta {
            Some(m) if m.cluster_id == self.cluster => Ok(()),
            _ => Err(Error::ClusterMismatch {
                archive: format!("{:x}", self.cluster),
                member: meta.map_or("unknown".into(), |m| format!("{:x}", m.cluster_id)),
                data_dir: self.opts.data_dir.clone(),
            }),
        }
    }

    fn record(&mut self, rec: UnitRecord) -> Result<()> {
        self.cat.add(&rec)?;
        self.cp
            .record_now(rec)
            .map_err(Error::cp("queue archive record"))
    }

    fn record_gap(&mut self, from: u64, to: u64) -> Result<GapInfo> {
        let info = GapInfo {
            from,
            to,
            detected_at: Utc::now(),
            member_id: format!("{:x}", self.member),
        };
        let payload = serde_json::to_value(&info).unwrap_or_default();
        self.record(UnitRecord::new(gap_key(from), 0, "").with_payload(payload))?;
        Ok(info)
    }

    async fn store_chunk(&mut self, entries: &[Entry]) -> Result<u64> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(0);
        };
        let prev = (first.index - 1, self.cat.last_term());
        let meta = crate::pb::encode_metadata(&crate::pb::Metadata {
            node_id: self.member,
            cluster_id: self.cluster,
        });
        let owned = entries.to_vec();
        let bytes = tokio::task::spawn_blocking(move || crate::chunk::encode(&meta, prev, &owned))
            .await
            .map_err(|e| Error::io("encode chunk", "chunk")(std::io::Error::other(e)))??;
        let name = chunk_name(first.index, last.index, self.cp.epoch());
        let dest = self.cp.destination().clone();
        let stored = store::put(&dest, self.opts.key.as_ref(), &name, bytes).await?;
        let info = ChunkInfo {
            first: first.index,
            last: last.index,
            prev_term: prev.1,
            last_term: last.term,
            object: stored.object.clone(),
            archived_at: Utc::now(),
            cluster_id: format!("{:x}", self.cluster),
            member_id: format!("{:x}", self.member),
        };
        let payload = serde_json::to_value(&info).unwrap_or_default();
        let rec = UnitRecord::new(chunk_key(first.index), stored.size, stored.sha256)
            .with_payload(payload);
        self.record(rec)?;
        Ok(stored.size)
    }

    /// Copies `.snap` files not archived yet; a file purged meanwhile is skipped.
    async fn store_snaps(&mut self) -> Result<(u64, u64)> {
        let dir = self.opts.data_dir.join("member").join("snap");
        let mut files = list_snap_files(&dir)?;
        files.retain(|f| !self.cat.snaps.iter().any(|s| &s.file == f));
        let (mut n, mut bytes) = (0, 0);
        for file in files {
            let Some((term, index)) = parse_snap_file(&file) else {
                continue;
            };
            let path = dir.join(&file);
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read", path)(e)),
            };
            let dest = self.cp.destination().clone();
            let stored = store::put(&dest, self.opts.key.as_ref(), &snap_name(&file), data).await?;
            let info = SnapInfo {
                file: file.clone(),
                term,
                index,
                object: stored.object.clone(),
                archived_at: Utc::now(),
                size: stored.size,
                sha256: stored.sha256.clone(),
            };
            let payload = serde_json::to_value(&info).unwrap_or_default();
            self.record(
                UnitRecord::new(snap_key(&file), stored.size, stored.sha256).with_payload(payload),
            )?;
            n += 1;
            bytes += stored.size;
        }
        Ok((n, bytes))
    }
}

fn list_snap_files(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", dir)(e)),
    };
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| parse_snap_file(n).is_some())
        .collect();
    out.sort();
    Ok(out)
}

/// Splits consecutive entries into pieces of about `max_bytes` of data each.
fn split(entries: &[Entry], max_bytes: u64) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, e) in entries.iter().enumerate() {
        bytes += e.data.as_ref().map_or(0, |d| d.len() as u64) + 32;
        if bytes >= max_bytes {
            out.push(&entries[start..=i]);
            start = i + 1;
            bytes = 0;
        }
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}
