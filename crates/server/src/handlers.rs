//! Serves one decoded request against the store, writing influx-compatible replies.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use bytes::Bytes;
use snapshotd_store::{ImportRequest, ShardIdMap, ShardPath, Store, StoreError};

use crate::bridge;
use crate::config::ServerConfig;
use crate::error::RequestError;
use crate::reply;
use crate::request::Request;

/// What a handler reports on success, for the request's log line.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Bytes sent to the client.
    pub(crate) sent: u64,
    /// Bytes received after the header (payload or tar).
    pub(crate) received: u64,
    /// Files streamed or installed.
    pub(crate) files: u64,
}

/// Serves `req` on `io`.
pub(crate) async fn dispatch<IO>(
    io: &mut IO,
    store: &Arc<dyn Store>,
    config: &ServerConfig,
    req: Request,
    error_replies: bool,
) -> Result<Outcome, RequestError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match req {
        Request::Metastore => {
            let blob = blocking(store, "meta snapshot", |s| s.meta_snapshot()).await?;
            let frame = reply::meta_frame(blob);
            write_all(io, &frame, config).await?;
            Ok(Outcome {
                sent: frame.len() as u64,
                ..Outcome::default()
            })
        }
        Request::DatabaseInfo { database } => {
            let paths = blocking(store, "list shards of database", move |s| {
                s.list_shards(database.as_deref(), None)
            })
            .await?;
            send_paths(io, config, &paths).await
        }
        Request::RetentionPolicyInfo {
            database,
            retention_policy,
        } => {
            let paths = blocking(store, "list shards of retention policy", move |s| {
                s.list_shards(Some(&database), Some(&retention_policy))
            })
            .await?;
            send_paths(io, config, &paths).await
        }
        Request::ShardBackup { shard_id, since } => {
            stream_shard(io, store, config, "shard backup", move |s, w| {
                s.backup_shard(shard_id, since, w)
            })
            .await
        }
        Request::ShardExport { shard_id, range } => {
            stream_shard(io, store, config, "shard export", move |s, w| {
                s.export_shard(shard_id, range, w)
            })
            .await
        }
        Request::MetaUpdate { import, blob } => {
            meta_update(io, store, config, import, blob, error_replies).await
        }
        Request::ShardUpload {
            shard_id,
            prefix,
            acknowledged,
        } => shard_upload(io, store, config, shard_id, prefix, acknowledged).await,
        Request::SeriesFile => Err(RequestError::Unsupported(2)),
        Request::Unknown(t) => Err(RequestError::Unsupported(t)),
    }
}

/// Answers a shard listing with influx's JSON list of shard paths.
async fn send_paths<IO>(
    io: &mut IO,
    config: &ServerConfig,
    paths: &[ShardPath],
) -> Result<Outcome, RequestError>
where
    IO: AsyncWrite + Unpin,
{
    let body = reply::paths_json(paths)?;
    write_all(io, &body, config).await?;
    Ok(Outcome {
        sent: body.len() as u64,
        files: paths.len() as u64,
        ..Outcome::default()
    })
}

/// Imports a metastore blob and answers the shard id map; a refused import gets influx's
/// empty map unless the client opted in to in-band errors.
async fn meta_update<IO>(
    io: &mut IO,
    store: &Arc<dyn Store>,
    config: &ServerConfig,
    import: ImportRequest,
    blob: Bytes,
    error_replies: bool,
) -> Result<Outcome, RequestError>
where
    IO: AsyncWrite + Unpin,
{
    let received = blob.len() as u64;
    let result = blocking(store, "import meta", move |s| s.import_meta(&blob, &import)).await;
    let map = match result {
        Ok(map) => map,
        // influx: decode/import failure ⇒ the 16-byte empty map, store failure ⇒ 0 bytes.
        Err(RequestError::Store { op, source }) if !error_replies && is_import_refusal(&source) => {
            write_all(io, &reply::id_map(&ShardIdMap::default()), config).await?;
            return Err(RequestError::Store { op, source });
        }
        Err(e) => return Err(e),
    };
    let body = reply::id_map(&map);
    write_all(io, &body, config).await?;
    Ok(Outcome {
        sent: body.len() as u64,
        received,
        files: map.0.len() as u64,
    })
}

/// Installs an uploaded shard tar (read after `prefix`) and, when asked, acknowledges it.
async fn shard_upload<IO>(
    io: &mut IO,
    store: &Arc<dyn Store>,
    config: &ServerConfig,
    shard_id: u64,
    prefix: Bytes,
    acknowledged: bool,
) -> Result<Outcome, RequestError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let s = Arc::clone(store);
    let (stats, received) = bridge::stream_in(
        prefix,
        io,
        config.timeouts.upload_idle,
        config.chunk_size,
        config.chunk_queue,
        move |r| s.restore_shard(shard_id, r),
    )
    .await
    .map_err(|source| RequestError::Bridge {
        op: "shard upload",
        source,
    })?;
    let mut sent = 0;
    if acknowledged {
        let ack = reply::upload_ack(stats.files);
        write_all(io, &ack, config).await?;
        sent = ack.len() as u64;
    }
    Ok(Outcome {
        sent,
        received,
        files: stats.files,
    })
}

/// Store errors that influx answers with the empty id map rather than a bare close.
/// Streams a shard tar that `produce` writes (on a blocking thread) to `io`.
async fn stream_shard<IO, F>(
    io: &mut IO,
    store: &Arc<dyn Store>,
    config: &ServerConfig,
    op: &'static str,
    produce: F,
) -> Result<Outcome, RequestError>
where
    IO: AsyncWrite + Unpin,
    F: FnOnce(
            &dyn Store,
            &mut dyn std::io::Write,
        ) -> Result<snapshotd_store::BackupStats, StoreError>
        + Send
        + 'static,
{
    let s = Arc::clone(store);
    let (stats, sent) = bridge::stream_out(
        io,
        config.timeouts.write_idle,
        config.chunk_size,
        config.chunk_queue,
        move |w| produce(s.as_ref(), w),
    )
    .await
    .map_err(|source| RequestError::Bridge { op, source })?;
    Ok(Outcome {
        sent,
        files: stats.files,
        ..Outcome::default()
    })
}

fn is_import_refusal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::NotFound { .. }
            | StoreError::Conflict(_)
            | StoreError::Invalid(_)
            | StoreError::LimitExceeded { .. }
            | StoreError::Unsupported(_)
    )
}

/// Runs a store call on the blocking pool.
async fn blocking<T, F>(store: &Arc<dyn Store>, op: &'static str, f: F) -> Result<T, RequestError>
where
    F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let s = Arc::clone(store);
    match tokio::task::spawn_blocking(move || f(s.as_ref())).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(RequestError::Store { op, source }),
        Err(e) => Err(RequestError::Io {
            op,
            source: std::io::Error::other(format!("store task failed: {e}")),
        }),
    }
}

/// Writes a whole reply under the write deadline.
pub(crate) async fn write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    data: &[u8],
    config: &ServerConfig,
) -> Result<(), RequestError> {
    match tokio::time::timeout(config.timeouts.write_idle, async {
        io.write_all(data).await?;
        io.flush().await
    })
    .await
    {
        Ok(Ok(())) => {
            crate::metrics::sent(data.len() as u64);
            Ok(())
        }
        Ok(Err(source)) => Err(RequestError::Io {
            op: "write reply",
            source,
        }),
        Err(_) => Err(RequestError::Timeout("client to accept the reply")),
    }
}
