//! A synthetic etcd member WAL written with our etcd-compatible writer: etcd's metadata,
//! a bootstrap conf change at index 1, then normal entries; small segments so cuts and
//! purges happen within a few hundred entries.

use std::path::{Path, PathBuf};

use prost::Message;
use snapshotd_etcd::pb::{ConfChange, Metadata, encode_metadata};
use snapshotd_wal::{Entry, HardState, Wal, WalOptions, entry_type};

pub const NODE: u64 = 0x1111;
pub const CLUSTER: u64 = 0xc1c1;

pub struct FakeMember {
    pub data_dir: PathBuf,
    pub wal: Option<Wal>,
    pub term: u64,
    pub last: u64,
    pub commit: u64,
}

pub fn payload(i: u64, term: u64) -> Vec<u8> {
    format!("put k{i} term {term} {}", "x".repeat(200)).into_bytes()
}

fn conf_add(id: u64, name: &str) -> Entry {
    let ctx = format!(r#"{{"id":{id},"peerURLs":["http://127.0.0.1:1"],"name":"{name}"}}"#);
    let cc = ConfChange {
        id: 0,
        r#type: 0,
        node_id: id,
        context: Some(ctx.into_bytes()),
    };
    Entry {
        r#type: entry_type::CONF_CHANGE,
        term: 1,
        index: 1,
        data: Some(cc.encode_to_vec()),
    }
}

impl FakeMember {
    pub fn create(root: &Path) -> FakeMember {
        let data_dir = root.join("member-data");
        let wal_dir = data_dir.join("member").join("wal");
        std::fs::create_dir_all(data_dir.join("member")).expect("mkdir");
        let meta = encode_metadata(&Metadata {
            node_id: NODE,
            cluster_id: CLUSTER,
        });
        let opts = WalOptions::default().segment_size_bytes(16 * 1024);
        let mut wal = Wal::create_with(&wal_dir, &meta, &opts).expect("create wal");
        wal.save(&HardState::new(1, NODE, 1), &[conf_add(NODE, "alpha")])
            .expect("bootstrap");
        FakeMember {
            data_dir,
            wal: Some(wal),
            term: 1,
            last: 1,
            commit: 1,
        }
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.data_dir.join("member").join("wal")
    }

    /// Appends `n` entries of the current term in saves of 10 (so segments get cut),
    /// committing up to `last - uncommitted` at the end.
    pub fn append(&mut self, n: u64, uncommitted: u64) {
        let end = self.last + n;
        let commit = end - uncommitted;
        while self.last < end {
            let to = (self.last + 10).min(end);
            let ents: Vec<Entry> = (self.last + 1..=to)
                .map(|i| Entry::new(i, self.term, payload(i, self.term)))
                .collect();
            self.last = to;
            self.commit = self.commit.max(to.min(commit));
            let hs = HardState::new(self.term, NODE, self.commit);
            let wal = self.wal.as_mut().expect("open");
            wal.save(&hs, &ents).expect("save");
        }
    }

    /// A new leader replaces the uncommitted suffix from `from` with `n` entries.
    pub fn overwrite(&mut self, from: u64, n: u64) {
        assert!(from > self.commit);
        self.term += 1;
        self.last = from - 1;
        self.append(n, 0);
    }

    /// etcd's snapshot + purge: release segments before `index`, keep `keep` files.
    pub fn purge(&mut self, index: u64, keep: usize) -> usize {
        self.release(index);
        self.purge_only(keep)
    }

    /// etcd's `ReleaseLockTo` after a snapshot at `index`.
    pub fn release(&mut self, index: u64) {
        let wal = self.wal.as_mut().expect("open");
        wal.release_lock_to(index).expect("release");
    }

    /// etcd's purge loop: delete the oldest unlocked segments beyond `keep`.
    pub fn purge_only(&mut self, keep: usize) -> usize {
        snapshotd_wal::purge(self.wal_dir(), keep)
            .expect("purge")
            .len()
    }

    /// Closes the writer (as a stopped etcd).
    pub fn stop(&mut self) {
        if let Some(w) = self.wal.take() {
            w.close().expect("close");
        }
    }
}
