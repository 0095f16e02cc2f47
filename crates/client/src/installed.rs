//! Whether influxd installed an unacknowledged shard upload.
//!
//! influxd closes a type-7 connection only after it installed the shard (its TSM files
//! written, renamed into place and loaded), but a process killed *while* installing closes
//! it too, with the same clean FIN once it had read the whole archive; a restarted influxd
//! then lists the shard (its metastore has it) with none of the files. So a clean close
//! means "installed" only if the process that read the upload is still the one answering.
//! A *watch* connection, opened before the upload and left idle (influxd keeps it open as
//! long as it lives), tells: still open after a request the server answered = the same
//! process. When it is gone (restart, or a server that drops idle connections), the shard's
//! files are listed through a type-0 backup of the shard and compared with what was sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::io::SyncIoBridge;

use tokio_util::sync::CancellationToken;

use crate::conn::{Client, ShardPath, ShardStream, Window};
use crate::error::{ClientError, Result};
use crate::hashio::MeteredReader;
use crate::loadable::{ShardFileKind, classify};
use crate::progress::NoProgress;

/// An idle connection to the server's snapshotter; closed by the server only when it stops.
#[derive(Debug)]
pub(crate) struct Watch {
    stream: TcpStream,
}

impl Watch {
    /// Connects and sends only the mux byte (the snapshotter then waits for a request).
    async fn open(client: &Client) -> Option<Watch> {
        let cfg = client.config();
        let connect = TcpStream::connect(&cfg.addr);
        let mut stream = tokio::time::timeout(cfg.connect_timeout, connect)
            .await
            .ok()?
            .ok()?;
        stream.write_all(&[snapshotd_wire::MUX_HEADER]).await.ok()?;
        Some(Watch { stream })
    }

    /// Still open: nothing to read and no end of stream.
    fn alive(&self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// The current watch, replaced once it was found closed.
#[derive(Debug)]
pub(crate) struct Watcher {
    current: Mutex<Option<Arc<Watch>>>,
}

impl Watcher {
    /// Opens the first watch.
    pub(crate) async fn open(client: &Client) -> Watcher {
        Watcher {
            current: Mutex::new(Watch::open(client).await.map(Arc::new)),
        }
    }

    /// The watch to take before an upload starts.
    pub(crate) fn current(&self) -> Option<Arc<Watch>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `w` (taken before an upload) shows the same server process is still up.
    pub(crate) fn same_process(w: &Option<Arc<Watch>>) -> bool {
        w.as_ref().is_some_and(|w| w.alive())
    }

    /// Replaces `old` (found closed) with a fresh watch, unless another upload did already.
    pub(crate) async fn renew(&self, client: &Client, old: &Option<Arc<Watch>>) {
        let fresh = Watch::open(client).await.map(Arc::new);
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let same = match (&*cur, old) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            *cur = fresh;
        }
    }
}

/// The TSM files (name in the shard → size) the server holds for shard `id` of `db/rp`, as
/// its type-0 backup lists them.
pub(crate) async fn installed_tsm(
    client: &Client,
    db: &str,
    rp: &str,
    id: u64,
) -> Result<BTreeMap<String, u64>> {
    read_backup(client, db, rp, id, |mut archive| {
        let mut files = BTreeMap::new();
        for entry in archive.entries()? {
            let entry = entry?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if classify(&name) == ShardFileKind::Tsm
                && let Some((_, file)) = name.rsplit_once('/')
            {
                files.insert(file.to_string(), entry.size());
            }
        }
        Ok(files)
    })
    .await
}

/// Whether the server holds any TSM file for shard `id` of `db/rp`: reads its type-0 backup
/// only up to the first TSM entry's header, then drops the connection (a server that sends
/// no tar at all counts as holding them: it cannot be asked this way). An install that
/// failed inside a live influxd (an upload cut short reaches it as a clean end of stream;
/// it logs "unexpected EOF" and keeps nothing) leaves the new shard without any.
pub(crate) async fn holds_any_tsm(client: &Client, db: &str, rp: &str, id: u64) -> Result<bool> {
    read_backup(client, db, rp, id, |mut archive| {
        for entry in archive.entries()? {
            let name = String::from_utf8_lossy(&entry?.path_bytes()).into_owned();
            if classify(&name) == ShardFileKind::Tsm {
                return Ok(true);
            }
        }
        // A server that sent nothing at all (no tar, not even its end blocks) does not
        // list shards this way: it answered, which is all this probe can learn.
        Ok(archive.into_inner().count() == 0)
    })
    .await
}

/// A type-0 backup as it is walked: a tar over a reader that counts what arrived.
type Backup = tar::Archive<MeteredReader<SyncIoBridge<ShardStream>>>;

/// Requests the type-0 backup of shard `id` of `db/rp` and hands its tar to `walk` on a
/// blocking thread; the connection is dropped when `walk` returns.
async fn read_backup<T: Send + 'static>(
    client: &Client,
    db: &str,
    rp: &str,
    id: u64,
    walk: impl FnOnce(Backup) -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let path = ShardPath {
        db: db.to_string(),
        rp: rp.to_string(),
        id,
    };
    let conn = client.shard_stream(&path, Window::Full).await?;
    let handle = tokio::runtime::Handle::current();
    let task = format!("listing shard {id} of {db}/{rp}");
    let what = format!("{task} (type 0)");
    tokio::task::spawn_blocking(move || {
        let src = SyncIoBridge::new_with_handle(conn, handle);
        let counted = MeteredReader::new(src, None, Arc::new(NoProgress), CancellationToken::new());
        walk(tar::Archive::new(counted)).map_err(|e| ClientError::io(what, e))
    })
    .await
    .map_err(|e| ClientError::worker(task, e))?
}

/// The first TSM file of `sent` (name in the shard, size) the server does not hold as sent.
pub(crate) fn first_missing(
    sent: &[(String, u64)],
    have: &BTreeMap<String, u64>,
) -> Option<String> {
    sent.iter()
        .filter(|(name, _)| name.ends_with(".tsm"))
        .find_map(|(name, size)| match have.get(name) {
            Some(s) if s == size => None,
            Some(s) => Some(format!("{name} has {s} bytes, {size} were sent")),
            None => Some(format!("{name} is missing")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tsm_files_must_be_present_with_their_size() {
        let sent = vec![
            ("1-1.tsm".to_string(), 10),
            ("1-1.tombstone".to_string(), 3),
            ("2-1.tsm".to_string(), 20),
        ];
        let mut have = BTreeMap::from([("1-1.tsm".to_string(), 10), ("2-1.tsm".to_string(), 20)]);
        assert_eq!(first_missing(&sent, &have), None);
        have.insert("2-1.tsm".into(), 19);
        assert!(first_missing(&sent, &have).unwrap().contains("19 bytes"));
        have.remove("2-1.tsm");
        assert!(first_missing(&sent, &have).unwrap().contains("missing"));
    }
}
