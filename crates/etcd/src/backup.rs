//! `etcd backup`: a base backup through the v3 Maintenance `Snapshot` RPC.
//!
//! The stream is the bbolt file of one consistent read transaction followed by 32 bytes,
//! the SHA-256 of everything before them; the digest is checked and stripped. The db's own
//! `consistent_index` is the exact raft index the base holds. The base is stored under
//! `DEST/bases/` and recorded through its own checkpoint (own lease, so a base can be taken
//! while an archiver holds the archive's lease).

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use etcd_client::{Client, ConnectOptions};
use serde::Serialize;
use sha2::{Digest, Sha256};
use snapshotd_checkpoint::{Checkpoint, Destination, MasterKey, UnitRecord};

use crate::catalog::{BaseInfo, Catalog};
use crate::connerr::Tls;
use crate::error::{Error, Result};
use crate::layout::{BASES, base_key, base_name};
use crate::store::{self, MAX_OBJECT_BYTES};

/// Value of the bases checkpoint's `job` setting.
pub const BASE_JOB: &str = "etcd-base";

/// How to reach etcd for a base backup.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Client URLs, tried in order until one answers.
    pub endpoints: Vec<String>,
    /// CA bundle (PEM) to verify the members' certificates (`https://` endpoints).
    pub cacert: Option<PathBuf>,
    /// Client certificate and key (PEM) for client-certificate authentication.
    pub cert_key: Option<(PathBuf, PathBuf)>,
    /// Encrypts the stored base and its records.
    pub key: Option<MasterKey>,
    /// Lease of the bases' lock.
    pub lock_ttl: Duration,
    /// Time allowed to connect and for the Status RPC.
    pub connect_timeout: Duration,
}

impl BackupOptions {
    /// Defaults: no TLS, no encryption, 60 s lease, 10 s connect timeout.
    pub fn new(endpoints: Vec<String>) -> Self {
        BackupOptions {
            endpoints,
            cacert: None,
            cert_key: None,
            key: None,
            lock_ttl: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// What a base backup stored.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The base as recorded.
    #[serde(flatten)]
    pub base: BaseInfo,
    /// Raft index the base holds (same as `base.index`).
    pub raft_index: u64,
    /// Size of the db (without etcd's digest).
    pub db_bytes: u64,
    /// Stored size.
    pub size: u64,
    /// SHA-256 (hex) of the stored object.
    pub sha256: String,
}

/// A snapshot read from one member (digest checked and stripped), not stored yet.
#[derive(Debug)]
pub struct FetchedBase {
    /// The endpoint that served it.
    pub endpoint: String,
    /// The member's Status answer just before the snapshot.
    status: etcd_client::StatusResponse,
    /// When the snapshot was taken.
    pub taken_at: chrono::DateTime<Utc>,
    /// The bbolt db.
    db: Vec<u8>,
}

/// Takes a base backup from the first endpoint that answers and records it at `dest`.
pub async fn backup(dest: &Destination, opts: &BackupOptions) -> Result<BackupReport> {
    let fetched = fetch_base(opts).await?;
    store_base(dest, opts, fetched).await
}

/// Reads a snapshot from the first endpoint that answers; touches no destination, so a
/// member that cannot be reached (or refuses the TLS handshake) leaves nothing behind.
pub async fn fetch_base(opts: &BackupOptions) -> Result<FetchedBase> {
    let (endpoint, mut client, status) = connect(opts).await?;
    let db = fetch(&endpoint, &mut client, tls_of(opts)).await?;
    Ok(FetchedBase {
        endpoint,
        status,
        taken_at: Utc::now(),
        db,
    })
}

/// Stores a fetched snapshot under `dest` and records it with its raft index and revision.
pub async fn store_base(
    dest: &Destination,
    opts: &BackupOptions,
    f: FetchedBase,
) -> Result<BackupReport> {
    let hdr = f.status.header();
    let (cluster, member) = (
        hdr.map_or(0, |h| h.cluster_id()),
        hdr.map_or(0, |h| h.member_id()),
    );
    check_cluster(dest, opts, &f.endpoint, cluster).await?;
    let name = format!("snapshot from {}", f.endpoint);
    let db = f.db;
    let info =
        tokio::task::spawn_blocking(move || crate::dbinfo::read(&db, &name).map(|i| (i, db)))
            .await
            .map_err(|e| Error::io("read snapshot", "db")(std::io::Error::other(e)))?;
    let (info, db) = info?;
    let db_bytes = db.len() as u64;
    let bases = dest.child(BASES);
    let cp = open_checkpoint(&bases, opts, cluster).await?;
    let object = base_name(info.consistent_index, cp.epoch());
    let stored = store::put(&bases, opts.key.as_ref(), &object, db).await?;
    let base = BaseInfo {
        index: info.consistent_index,
        revision: info.revision,
        raft_term: f.status.raft_term(),
        status_raft_index: f.status.raft_index(),
        object: stored.object.clone(),
        taken_at: f.taken_at,
        cluster_id: format!("{cluster:x}"),
        member_id: format!("{member:x}"),
        endpoint: f.endpoint,
        members: info.members,
    };
    let payload = serde_json::to_value(&base).unwrap_or_default();
    let rec = UnitRecord::new(base_key(base.index), stored.size, stored.sha256.clone())
        .with_payload(payload);
    cp.record_now(rec).map_err(Error::cp("queue base record"))?;
    cp.finish()
        .await
        .map_err(Error::cp(format!("record base at {bases}")))?;
    Ok(BackupReport {
        raft_index: base.index,
        base,
        db_bytes,
        size: stored.size,
        sha256: stored.sha256,
    })
}

/// Refuses a base of another cluster than the archive's.
async fn check_cluster(
    dest: &Destination,
    opts: &BackupOptions,
    endpoint: &str,
    cluster: u64,
) -> Result<()> {
    let cat = Catalog::load(dest, opts.key.as_ref()).await?;
    let theirs = cat
        .chunks
        .first()
        .map(|c| c.info.cluster_id.clone())
        .or_else(|| cat.bases.first().map(|b| b.info.cluster_id.clone()));
    match theirs {
        Some(c) if c != format!("{cluster:x}") => Err(Error::Etcd {
            endpoint: endpoint.to_string(),
            reason: format!(
                "belongs to cluster {cluster:x} but {dest} holds cluster {c}; \
                 back this cluster up into a new DEST"
            ),
        }),
        _ => Ok(()),
    }
}

async fn open_checkpoint(
    bases: &Destination,
    opts: &BackupOptions,
    cluster: u64,
) -> Result<Checkpoint> {
    let cp_opts = crate::session::checkpoint_options(
        BASE_JOB,
        cluster,
        opts.key.clone(),
        opts.lock_ttl,
        "snapshotd etcd backup".into(),
    );
    Checkpoint::open(bases, cp_opts)
        .await
        .map_err(Error::cp(format!("open base records at {bases}")))
}

/// Connects to each endpoint in turn (one at a time, so the Status and the Snapshot come
/// from the same member) and returns the first that answers Status.
async fn connect(opts: &BackupOptions) -> Result<(String, Client, etcd_client::StatusResponse)> {
    let mut last = None;
    for ep in &opts.endpoints {
        let attempt = async {
            let mut c = Client::connect([ep.as_str()], Some(connect_options(opts)?)).await?;
            let st = c.status().await?;
            Ok::<_, etcd_client::Error>((c, st))
        };
        match tokio::time::timeout(opts.connect_timeout, attempt).await {
            Ok(Ok((c, st))) => return Ok((ep.clone(), c, st)),
            Ok(Err(e)) => {
                last = Some(Error::Etcd {
                    endpoint: ep.clone(),
                    reason: crate::connerr::describe(&e, tls_of(opts)),
                })
            }
            Err(_) => {
                last = Some(Error::Etcd {
                    endpoint: ep.clone(),
                    reason: format!("no answer within {:?}", opts.connect_timeout),
                })
            }
        }
    }
    Err(last.unwrap_or(Error::Etcd {
        endpoint: String::new(),
        reason: "no endpoint given".into(),
    }))
}

/// Whether TLS and a client certificate are configured.
fn tls_of(opts: &BackupOptions) -> Tls {
    Tls {
        on: opts.cacert.is_some() || opts.cert_key.is_some(),
        identity: opts.cert_key.is_some(),
    }
}

fn connect_options(
    opts: &BackupOptions,
) -> std::result::Result<ConnectOptions, etcd_client::Error> {
    let mut o = ConnectOptions::new().with_connect_timeout(opts.connect_timeout);
    if opts.cacert.is_none() && opts.cert_key.is_none() {
        return Ok(o);
    }
    let read = |p: &PathBuf| {
        std::fs::read(p)
            .map_err(|e| etcd_client::Error::InvalidArgs(format!("read {}: {e}", p.display())))
    };
    let mut tls = etcd_client::TlsOptions::new();
    if let Some(ca) = &opts.cacert {
        tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
    }
    if let Some((cert, key)) = &opts.cert_key {
        tls = tls.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
    }
    o = o.with_tls(tls);
    Ok(o)
}

/// Streams the snapshot (bounded), checks and strips etcd's trailing SHA-256.
async fn fetch(endpoint: &str, client: &mut Client, tls: Tls) -> Result<Vec<u8>> {
    let rpc = |e: etcd_client::Error| Error::Etcd {
        endpoint: endpoint.to_string(),
        reason: format!("snapshot: {}", crate::connerr::describe(&e, tls)),
    };
    let mut stream = client.snapshot().await.map_err(rpc)?;
    let mut data = Vec::new();
    while let Some(msg) = stream.message().await.map_err(rpc)? {
        if (data.len() + msg.blob().len()) as u64 > MAX_OBJECT_BYTES + 32 {
            return Err(Error::Etcd {
                endpoint: endpoint.to_string(),
                reason: format!("snapshot larger than {MAX_OBJECT_BYTES} bytes"),
            });
        }
        data.extend_from_slice(msg.blob());
    }
    split_digest(&mut data).map_err(|reason| Error::Corrupt {
        name: format!("snapshot stream from {endpoint}"),
        reason,
    })?;
    Ok(data)
}

/// Checks that the last 32 bytes are the SHA-256 of what precedes them, and drops them.
pub fn split_digest(data: &mut Vec<u8>) -> std::result::Result<(), String> {
    let Some(body) = data.len().checked_sub(32) else {
        return Err(format!("{} bytes, shorter than its digest", data.len()));
    };
    let want = Sha256::digest(&data[..body]);
    if want.as_slice() != &data[body..] {
        return Err(format!(
            "sha256 of {body} bytes is {}, the stream says {}",
            hex::encode(want),
            hex::encode(&data[body..])
        ));
    }
    data.truncate(body);
    Ok(())
}

/// Reads a stored base (size and digest checked), checks it is a bbolt file holding the
/// recorded raft index, and returns the db.
pub(crate) async fn read_base(
    dest: &Destination,
    key: Option<&MasterKey>,
    b: &crate::catalog::BaseRecord,
) -> Result<Vec<u8>> {
    let stored = store::Stored {
        object: b.info.object.clone(),
        size: b.size,
        sha256: b.sha256.clone(),
    };
    let bases = dest.child(BASES);
    let db = store::get(&bases, key, &stored).await?;
    let name = format!("{bases}/{}", b.info.object);
    let info = crate::dbinfo::read(&db, &name)?;
    if info.consistent_index != b.info.index {
        return Err(Error::Corrupt {
            name,
            reason: format!(
                "holds raft index {}, recorded {}",
                info.consistent_index, b.info.index
            ),
        });
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_trailer_is_checked_and_stripped() {
        let body = b"bolt bytes".to_vec();
        let mut data = body.clone();
        data.extend_from_slice(&Sha256::digest(&body));
        let mut good = data.clone();
        split_digest(&mut good).unwrap();
        assert_eq!(good, body);
        let mut bad = data.clone();
        bad[0] ^= 1;
        assert!(split_digest(&mut bad).unwrap_err().contains("sha256"));
        assert_eq!(bad.len(), data.len(), "a refused stream is left as it was");
        assert!(split_digest(&mut vec![0; 31]).is_err());
    }
}
