//! The async snapshotter client: one connection per request, as the protocol requires.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use snapshotd_wire::{
    ErrorCode, GoTime, Limits, Request, RequestType, StreamStart, StreamStartCodec, WireError,
    into_raw_stream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::backup::RetryPolicy;
use crate::error::{ClientError, Result};
use crate::proto;
use crate::timeout_io::IdleTimeout;

/// A connection whose every read and write fails after a period without progress.
pub type Conn = IdleTimeout<TcpStream>;

/// A shard's tar stream: the bytes read while telling it from an error reply, then the rest
/// of the connection.
pub type ShardStream = tokio::io::Chain<std::io::Cursor<bytes::BytesMut>, Conn>;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of the snapshotter service (influxd's `bind-address`).
    pub addr: String,
    /// Limit for establishing a TCP connection.
    pub connect_timeout: Duration,
    /// Limit for any single read or write making no progress (servers flush caches and take
    /// snapshots before the first byte of a shard, so keep this generous).
    pub io_timeout: Duration,
    /// Size limits for everything read from the server.
    pub limits: Limits,
    /// Ask for snapshotd's in-band error replies on metastore and info requests, so that a
    /// busy or failing snapshotd server says why (influxd ignores the request key).
    pub error_replies: bool,
    /// Retries of the metastore and info requests while the server is busy, resets the
    /// connection or does not accept it in time.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// Defaults for `addr`: 10 s to connect, 5 min idle limit, the wire crate's limits,
    /// in-band errors on, 6 attempts 0.25 s to 4 s apart (about 8 s in all).
    pub fn new(addr: impl Into<String>) -> Self {
        ClientConfig {
            addr: addr.into(),
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(300),
            limits: Limits::default(),
            error_replies: true,
            retry: RetryPolicy {
                attempts: 6,
                base_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(4),
            },
        }
    }
}

/// A shard as listed by an info request: `db/rp/id` (parsed by the wire crate).
pub use snapshotd_wire::ShardPath;

/// Which files of a shard to request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    /// Every file (type 0 with zero `Since`).
    #[default]
    Full,
    /// Files modified after the instant (type 0).
    Since(GoTime),
    /// Data in a time range (type 5); a zero bound is open.
    Export {
        /// Lower bound.
        start: GoTime,
        /// Upper bound.
        end: GoTime,
    },
}

/// Whether a failed metastore/info attempt is worth repeating.
fn transient(e: &ClientError, no_data_is_transient: bool) -> bool {
    use std::io::ErrorKind;
    match e {
        ClientError::Remote { code, .. } => {
            matches!(code, ErrorCode::Busy | ErrorCode::Unavailable)
        }
        ClientError::Timeout { what, .. } => what.ends_with(": connect"),
        ClientError::Io { source, .. } => matches!(
            source.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
        ),
        ClientError::NoData { .. } => no_data_is_transient,
        _ => false,
    }
}

/// The old → new shard-ID pairs returned by a metastore update.
pub type IdMap = Vec<(u64, u64)>;

/// An async client for every snapshotter request type.
#[derive(Debug, Clone)]
pub struct Client {
    cfg: ClientConfig,
}

impl Client {
    /// A client for `cfg.addr`.
    pub fn new(cfg: ClientConfig) -> Self {
        Client { cfg }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// Opens a connection and writes `bytes` (mux byte, type byte, request) in one write.
    pub async fn open(&self, bytes: &[u8], what: &str) -> Result<Conn> {
        let addr = &self.cfg.addr;
        let stream = tokio::time::timeout(self.cfg.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                what: format!("{what}: connect"),
                addr: addr.clone(),
                after: self.cfg.connect_timeout,
            })?
            .map_err(|source| ClientError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut conn = IdleTimeout::new(stream, self.cfg.io_timeout);
        conn.write_all(bytes)
            .await
            .map_err(|e| self.io_error(format!("{what}: send request to {addr}"), e))?;
        Ok(conn)
    }

    /// An I/O error on the connection; the idle limit expiring is a [`ClientError::Timeout`].
    fn io_error(&self, what: String, e: std::io::Error) -> ClientError {
        if e.kind() == std::io::ErrorKind::TimedOut {
            return ClientError::Timeout {
                what: format!("{what}: no progress"),
                addr: self.cfg.addr.clone(),
                after: self.cfg.io_timeout,
            };
        }
        ClientError::io(what, e)
    }

    /// Runs `op` until it succeeds, fails for good, or the retry policy is used up. Retried:
    /// an in-band busy/unavailable reply, a connection reset or cut short, a connect timeout,
    /// and (when `no_data_is_transient`) a silent close. A server still busy at the end is
    /// [`ClientError::ServerBusy`].
    async fn with_retry<T, F, Fut>(
        &self,
        what: &str,
        no_data_is_transient: bool,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let policy = self.cfg.retry;
        let attempts = policy.attempts.max(1);
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let e = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if attempt >= attempts || !transient(&e, no_data_is_transient) {
                return Err(self.final_error(what, e, attempt, started.elapsed()));
            }
            tracing::warn!(request = what, attempt, error = %e, "retrying");
            tokio::time::sleep(policy.delay(attempt)).await;
            attempt += 1;
        }
    }

    fn final_error(
        &self,
        what: &str,
        e: ClientError,
        attempts: u32,
        waited: Duration,
    ) -> ClientError {
        match e {
            ClientError::Remote {
                code: ErrorCode::Busy,
                message,
                ..
            } => ClientError::ServerBusy {
                what: what.to_string(),
                addr: self.cfg.addr.clone(),
                attempts,
                waited,
                message,
            },
            e => e,
        }
    }

    /// A read request (types 1, 3, 4) with the opt-in set as configured.
    fn read_request(&self, kind: RequestType) -> Request {
        let mut req = Request::new(kind);
        req.error_replies = self.cfg.error_replies;
        req
    }

    async fn request(&self, req: &Request, payload: &[u8], what: &str) -> Result<Conn> {
        let mut bytes = Vec::with_capacity(256 + payload.len());
        bytes.push(snapshotd_wire::MUX_HEADER);
        bytes.push(req.type_code);
        req.encode_json(&mut bytes)
            .map_err(|e| ClientError::protocol(what, e))?;
        // Influx 1.6 reads the payload with at most one extra read(), so everything goes out
        // in a single write.
        bytes.extend_from_slice(payload);
        self.open(&bytes, what).await
    }

    /// Reads the rest of the connection, failing past `limit` bytes.
    async fn read_to_end_bounded(
        &self,
        conn: &mut Conn,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut take = conn.take(limit.saturating_add(1));
        take.read_to_end(&mut out)
            .await
            .map_err(|e| self.io_error(format!("{what}: read reply"), e))?;
        if out.len() as u64 > limit {
            return Err(ClientError::protocol(
                what,
                format!("reply exceeds the limit of {limit} bytes"),
            ));
        }
        Ok(out)
    }

    /// Type 1: the whole metastore; returns the raw `meta.Data` blob. Retried per
    /// [`ClientConfig::retry`] while the server is busy or drops the connection.
    pub async fn metastore_backup(&self) -> Result<Bytes> {
        let what = "metastore backup (type 1)";
        self.with_retry(what, true, || self.metastore_backup_once(what))
            .await
    }

    async fn metastore_backup_once(&self, what: &str) -> Result<Bytes> {
        let req = self.read_request(RequestType::MetastoreBackup);
        let mut conn = self.request(&req, &[], what).await?;
        let limit = 32 + self.cfg.limits.max_meta_blob + self.cfg.limits.max_node_json;
        let raw = self.read_to_end_bounded(&mut conn, limit, what).await?;
        if raw.is_empty() {
            return Err(ClientError::NoData { what: what.into() });
        }
        proto::decode_meta_frame(&raw, &self.cfg.limits).map_err(|e| proto::reply_error(what, e))
    }

    /// Type 3: shards of one database, or of all databases when `db` is empty.
    pub async fn database_info(&self, db: &str) -> Result<Vec<ShardPath>> {
        let mut req = self.read_request(RequestType::DatabaseInfo);
        req.backup_database = db.to_string();
        self.info(&req, &format!("database info (type 3) for {db:?}"))
            .await
    }

    /// Type 4: shards of one retention policy.
    pub async fn retention_policy_info(&self, db: &str, rp: &str) -> Result<Vec<ShardPath>> {
        let mut req = self.read_request(RequestType::RetentionPolicyInfo);
        req.backup_database = db.to_string();
        req.backup_retention_policy = rp.to_string();
        self.info(
            &req,
            &format!("retention policy info (type 4) for {db}/{rp}"),
        )
        .await
    }

    /// An info request, retried like the metastore request (a silent close is influx's
    /// "no such database", so it is not retried).
    async fn info(&self, req: &Request, what: &str) -> Result<Vec<ShardPath>> {
        self.with_retry(what, false, || self.info_once(req, what))
            .await
    }

    async fn info_once(&self, req: &Request, what: &str) -> Result<Vec<ShardPath>> {
        let mut conn = self.request(req, &[], what).await?;
        let limit = self.cfg.limits.max_info_response as u64;
        let raw = self.read_to_end_bounded(&mut conn, limit, what).await?;
        if raw.is_empty() {
            return Err(ClientError::NoData { what: what.into() });
        }
        let paths =
            proto::decode_info(&raw, &self.cfg.limits).map_err(|e| proto::reply_error(what, e))?;
        paths
            .iter()
            .map(|p| ShardPath::parse(p).map_err(|e| ClientError::protocol("info response", e)))
            .collect()
    }

    /// Type 0 or 5: opens the shard's tar stream. The caller reads it to EOF. With in-band
    /// error replies on, a snapshotd server that fails before its first byte says why
    /// ([`ClientError::Remote`], e.g. the file it could not read) instead of closing silently.
    pub async fn shard_stream(&self, shard: &ShardPath, window: Window) -> Result<ShardStream> {
        let mut req = match window {
            Window::Full => Request::new(RequestType::ShardBackup),
            Window::Since(t) => {
                let mut r = Request::new(RequestType::ShardBackup);
                r.since = t;
                r
            }
            Window::Export { start, end } => {
                let mut r = Request::new(RequestType::ShardExport);
                r.export_start = start;
                r.export_end = end;
                r
            }
        };
        req.backup_database = shard.db.clone();
        req.backup_retention_policy = shard.rp.clone();
        req.shard_id = shard.id;
        req.error_replies = self.cfg.error_replies;
        let what = format!("shard {shard}");
        let conn = self.request(&req, &[], &what).await?;
        let mut framed = Framed::new(conn, StreamStartCodec::new(self.cfg.limits));
        match framed.next().await {
            Some(Ok(StreamStart::Data)) | None => Ok(into_raw_stream(framed)),
            Some(Err(WireError::Io(e))) => Err(self.io_error(format!("{what}: read reply"), e)),
            Some(Err(e)) => Err(proto::reply_error(&what, e)),
        }
    }

    /// Type 6: imports `blob` (a raw `meta.Data`) with influx's rename rules and returns the
    /// shard-ID map. An empty map (influx's 16-byte reply) is [`ClientError::NothingImported`].
    pub async fn metastore_update(&self, blob: &[u8], names: &RenameNames) -> Result<IdMap> {
        let what = "metastore update (type 6)";
        let mut req = Request::new(RequestType::MetaStoreUpdate);
        req.backup_database = names.db.clone();
        req.restore_database = names.new_db.clone();
        req.backup_retention_policy = names.rp.clone();
        req.restore_retention_policy = names.new_rp.clone();
        req.upload_size = i64::try_from(blob.len())
            .map_err(|_| ClientError::MetaBlobTooLarge { bytes: blob.len() })?;
        let mut conn = self.request(&req, blob, what).await?;
        let limit = 16 + 16 * self.cfg.limits.max_id_map_pairs;
        let raw = self.read_to_end_bounded(&mut conn, limit, what).await?;
        if raw.is_empty() {
            return Err(ClientError::NoData { what: what.into() });
        }
        let map = proto::decode_id_map(&raw, &self.cfg.limits)
            .map_err(|e| ClientError::protocol(what, e))?;
        if map.is_empty() {
            return Err(ClientError::NothingImported);
        }
        Ok(map)
    }

    /// Type 7: opens a shard upload to `new_id`. The caller writes a tar stream, shuts the
    /// write side down and waits for the server to close.
    pub async fn shard_upload(&self, new_id: u64) -> Result<Conn> {
        self.shard_upload_with(new_id, false).await
    }

    /// Type 7, or with `acknowledged` snapshotd's `0x87` variant whose server answers with an
    /// ack (or an error) after the tar; influx servers close such a connection with 0 bytes.
    pub async fn shard_upload_with(&self, new_id: u64, acknowledged: bool) -> Result<Conn> {
        let header = snapshotd_wire::UploadHeader {
            shard_id: new_id,
            acknowledged,
        };
        self.open(
            &header.to_bytes(),
            &format!("shard upload (type 7) to shard {new_id}"),
        )
        .await
    }
}

/// The four names of a type-6 request ("" = unset), as `influxd restore` sends them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenameNames {
    /// `BackupDatabase`: the database to import ("" = all).
    pub db: String,
    /// `RestoreDatabase`: its new name ("" = keep).
    pub new_db: String,
    /// `BackupRetentionPolicy`: the RP to import ("" = all).
    pub rp: String,
    /// `RestoreRetentionPolicy`: its new name ("" = keep).
    pub new_rp: String,
}
