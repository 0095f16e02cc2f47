//! The restored member's WAL: archived entries up to the target (after the base, when
//! there is one, behind a snapshot record for the base's index) and a hard state
//! committing the target, under the metadata of a member that existed at the target.

use std::path::Path;

use snapshotd_checkpoint::Destination;
use snapshotd_wal::{Entry, HardState, Snapshot, Wal, WalOptions};

use crate::catalog::{BaseRecord, Catalog, ChunkRecord};
use crate::error::{Error, Result};
use crate::membership::Membership;
use crate::pb::{Metadata, encode_metadata};
use crate::plan::Plan;
use crate::restore::{RestoreOptions, RestoreReport, Written};
use crate::store::{self, Stored};

/// Reads the chunks the plan needs and writes the WAL into `dir`; `force` is the member to
/// name in the metadata when a first attempt picked one that left before the target.
pub(crate) async fn write_wal(
    dest: &Destination,
    opts: &RestoreOptions,
    cat: &Catalog,
    plan: &Plan,
    force: Option<u64>,
    dir: &Path,
) -> Result<Written> {
    let n = plan.index;
    let mut writer = RestoreWriter {
        force,
        cluster: cat
            .chunks
            .first()
            .map_or(0, |c| parse_hex(&c.info.cluster_id)),
        ..RestoreWriter::default()
    };
    // From a base at C: the chunk holding C gives C's term; entries up to C are skipped.
    let from = match &plan.base {
        Some(b) => {
            writer.start_at_base(b, parse_hex(&b.info.cluster_id));
            b.info.index
        }
        None => 1,
    };
    let chunks: Vec<&ChunkRecord> = cat
        .chunks
        .iter()
        .filter(|c| c.info.last >= from && c.info.first <= n)
        .collect();
    for c in &chunks {
        if c.info.first == from + 1 && c.info.prev_term != 0 && writer.base.is_some() {
            writer.base_term.get_or_insert(c.info.prev_term);
        }
        let stored = Stored {
            object: c.info.object.clone(),
            size: c.size,
            sha256: c.sha256.clone(),
        };
        let bytes = store::get(dest, opts.key.as_ref(), &stored).await?;
        let (obj, first, last) = (c.info.object.clone(), c.info.first, c.info.last);
        let decoded =
            tokio::task::spawn_blocking(move || crate::chunk::decode(&obj, &bytes, first, last))
                .await
                .map_err(|e| Error::io("decode chunk", dir)(std::io::Error::other(e)))??;
        writer.add(dir, decoded, n, opts.name.as_deref())?;
    }
    writer.finish(dir, n, opts, chunks.len() as u64)
}

fn parse_hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or(0)
}

/// Writes entries to the new WAL as chunks arrive; the WAL is created once the membership
/// (hence the member id) and, from a base, the base's term are known.
#[derive(Default)]
struct RestoreWriter {
    wal: Option<Wal>,
    members: Membership,
    pending: Vec<Entry>,
    last: (u64, u64),
    entries: u64,
    cluster: u64,
    chosen: Option<(u64, String)>,
    force: Option<u64>,
    /// Index of the base the WAL starts after.
    base: Option<u64>,
    /// Term of the entry at the base's index.
    base_term: Option<u64>,
    /// The term the member reported when the base was taken.
    fallback_term: u64,
}

impl RestoreWriter {
    fn start_at_base(&mut self, b: &BaseRecord, cluster: u64) {
        let index = b.info.index;
        self.base = Some(index);
        self.fallback_term = b.info.raft_term;
        self.last = (index, 0);
        for m in &b.info.members {
            self.members.members.insert(m.id, m.clone());
        }
        if cluster != 0 {
            self.cluster = cluster;
        }
    }

    fn add(
        &mut self,
        dir: &Path,
        decoded: crate::chunk::Decoded,
        n: u64,
        name: Option<&str>,
    ) -> Result<()> {
        if let Some(m) = crate::pb::decode_metadata(&decoded.metadata) {
            self.cluster = m.cluster_id;
        }
        let floor = self.base.unwrap_or(0);
        for e in decoded.entries.into_iter().filter(|e| e.index <= n) {
            if e.index == floor && self.base.is_some() {
                self.base_term = Some(e.term);
                self.last = (e.index, e.term);
            }
            if e.index <= floor {
                continue;
            }
            self.members.apply(&e);
            self.last = (e.index, e.term);
            self.pending.push(e);
        }
        if self.wal.is_none() && !self.create(dir, name)? {
            return Ok(()); // no member yet: keep collecting
        }
        self.flush(dir)
    }

    /// Creates the WAL (with the base's snapshot record) once a member can be named.
    fn create(&mut self, dir: &Path, name: Option<&str>) -> Result<bool> {
        let picked = match self.force {
            Some(id) => self.members.members.get(&id),
            None => self.members.pick(name),
        };
        let Some(m) = picked else {
            return Ok(false);
        };
        self.chosen = Some((m.id, m.name.clone()));
        let meta = encode_metadata(&Metadata {
            node_id: m.id,
            cluster_id: self.cluster,
        });
        let mut wal = Wal::create_with(dir, &meta, &WalOptions::default())
            .map_err(Error::wal(format!("create {}", dir.display())))?;
        if let Some(index) = self.base {
            // Unknown from the archive: the term the member reported, but never above the
            // first entry after the base (terms never go down along the log).
            let first = self.pending.first().map_or(u64::MAX, |e| e.term);
            let term = *self
                .base_term
                .get_or_insert(self.fallback_term.min(first).max(1));
            if self.last.0 == index {
                self.last.1 = term;
            }
            wal.save_snapshot(&Snapshot::new(index, term))
                .map_err(Error::wal(format!("write {}", dir.display())))?;
        }
        self.wal = Some(wal);
        Ok(true)
    }

    fn flush(&mut self, dir: &Path) -> Result<()> {
        let Some(wal) = self.wal.as_mut() else {
            return Ok(());
        };
        let hs = HardState::new(self.last.1, 0, self.last.0);
        wal.save(&hs, &self.pending)
            .map_err(Error::wal(format!("write {}", dir.display())))?;
        self.entries += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn finish(mut self, dir: &Path, n: u64, opts: &RestoreOptions, chunks: u64) -> Result<Written> {
        if self.wal.is_none() {
            self.create(dir, opts.name.as_deref())?;
        }
        // Pick again now that the whole membership at N is known.
        let wanted = match self.force {
            Some(id) => self.members.members.get(&id),
            None => self.members.pick(opts.name.as_deref()),
        }
        .map(|m| (m.id, m.name.clone()));
        if let (Some((w, _)), Some((c, _))) = (&wanted, &self.chosen)
            && w != c
        {
            return Ok(Written::Repick(*w));
        }
        if self.last.0 != n || self.wal.is_none() || wanted.is_none() {
            return Err(Error::NotRestorable {
                target: opts.target.to_string(),
                reason: format!(
                    "the archive yielded entries up to {} with no member",
                    self.last.0
                ),
            });
        }
        self.flush(dir)?;
        let (id, name) = wanted.unwrap_or_default();
        if !opts.peer_urls.is_empty() {
            let e =
                crate::membership::update_peer_urls(n + 1, self.last.1, id, &name, &opts.peer_urls);
            self.last = (e.index, e.term);
            self.pending.push(e);
            self.flush(dir)?;
        }
        if let Some(wal) = self.wal.take() {
            wal.close()
                .map_err(Error::wal(format!("close {}", dir.display())))?;
        }
        let report = RestoreReport {
            index: n,
            raft_index: self.last.0,
            term: self.last.1,
            base_index: self.base,
            chunks,
            entries: self.entries,
            member_id: format!("{id:x}"),
            member_name: name,
            cluster_id: format!("{:x}", self.cluster),
            data_dir: opts.data_dir.clone(),
        };
        Ok(Written::Done((report, self.base_term)))
    }
}
