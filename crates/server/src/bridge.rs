//! Bridges blocking `Store` streams to the async socket with a bounded chunk queue.
//!
//! The store runs on the blocking pool and sees a plain `std::io::Write` / `Read`; chunks of
//! at most `chunk_size` bytes travel through a channel of `chunk_queue` slots, so memory per
//! stream is bounded whatever the shard size. The socket side applies an idle deadline per
//! chunk; when the client goes away or stalls, the store's next write or read fails and it
//! unwinds on its own thread.

use std::io::{self, Read, Write};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use snapshotd_store::StoreError;

/// How a bridged stream ended badly.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BridgeError {
    /// The store reported an error (`sent` bytes had already reached the client).
    #[error("store failed after {sent} bytes sent: {source}")]
    Store {
        /// Bytes already written to the socket.
        sent: u64,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The socket failed or timed out.
    #[error("socket {op} failed after {bytes} bytes: {source}")]
    Socket {
        /// "write" or "read".
        op: &'static str,
        /// Bytes moved before the failure.
        bytes: u64,
        /// The I/O error (kind `TimedOut` for a deadline).
        #[source]
        source: io::Error,
    },
    /// The blocking task panicked or was cancelled.
    #[error("store task did not complete: {0}")]
    Join(String),
}

/// A `Write` that ships fixed-size chunks to the async side.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
    chunk: usize,
}

impl ChannelWriter {
    fn ship(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(self.chunk);
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client connection closed"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk.saturating_sub(self.buf.len()).max(1);
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.chunk {
            self.ship()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.ship()
    }
}

/// Runs `produce` on the blocking pool and copies what it writes to `out`.
///
/// Nothing reaches the socket before the first full chunk or the end of `produce`, so a store
/// that fails early (e.g. unknown shard) leaves the client with zero bytes, as influx does.
pub(crate) async fn stream_out<W, F, T>(
    out: &mut W,
    write_idle: Duration,
    chunk: usize,
    queue: usize,
    produce: F,
) -> Result<(T, u64), BridgeError>
where
    W: AsyncWrite + Unpin,
    F: FnOnce(&mut dyn Write) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let chunk = chunk.max(512);
    let (tx, mut rx) = mpsc::channel::<Bytes>(queue.max(1));
    let task = tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx,
            buf: BytesMut::with_capacity(chunk),
            chunk,
        };
        let out = produce(&mut w)?;
        w.ship()
            .map_err(|e| StoreError::io("sending final chunk", e))?;
        Ok::<T, StoreError>(out)
    });

    let mut sent = 0u64;
    let mut socket_err = None;
    while let Some(data) = rx.recv().await {
        match tokio::time::timeout(write_idle, out.write_all(&data)).await {
            Ok(Ok(())) => {
                sent += data.len() as u64;
                crate::metrics::sent(data.len() as u64);
            }
            Ok(Err(e)) => {
                socket_err = Some(e);
                break;
            }
            Err(_) => {
                socket_err = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("client did not accept data for {write_idle:?}"),
                ));
                break;
            }
        }
    }
    // Closing the queue makes the store's next write fail, so it stops promptly.
    drop(rx);
    let produced = task.await.map_err(|e| BridgeError::Join(e.to_string()))?;
    if let Some(source) = socket_err {
        return Err(BridgeError::Socket {
            op: "write",
            bytes: sent,
            source,
        });
    }
    if let Err(e) = tokio::time::timeout(write_idle, out.flush()).await {
        return Err(BridgeError::Socket {
            op: "flush",
            bytes: sent,
            source: io::Error::new(io::ErrorKind::TimedOut, e.to_string()),
        });
    }
    match produced {
        Ok(v) => Ok((v, sent)),
        Err(source) => Err(BridgeError::Store { sent, source }),
    }
}

/// A `Read` fed by the async side; an `Err` item is the socket's failure.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(b)) => self.cur = b,
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// Feeds `prefix` then everything read from `input` (until EOF) to `consume` on the blocking
/// pool; a read that stays silent for `idle` fails the stream with `TimedOut`.
pub(crate) async fn stream_in<R, F, T>(
    prefix: Bytes,
    input: &mut R,
    idle: Duration,
    chunk: usize,
    queue: usize,
    consume: F,
) -> Result<(T, u64), BridgeError>
where
    R: AsyncRead + Unpin,
    F: FnOnce(&mut dyn Read) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let chunk = chunk.max(512);
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(queue.max(1));
    let task = tokio::task::spawn_blocking(move || {
        let mut r = ChannelReader {
            rx,
            cur: Bytes::new(),
        };
        consume(&mut r)
    });

    let mut received = prefix.len() as u64;
    let mut socket_err: Option<io::Error> = None;
    let pump = async {
        if !prefix.is_empty() && tx.send(Ok(prefix)).await.is_err() {
            return;
        }
        loop {
            let mut buf = BytesMut::with_capacity(chunk);
            match tokio::time::timeout(idle, input.read_buf(&mut buf)).await {
                Ok(Ok(0)) => return,
                Ok(Ok(n)) => {
                    received += n as u64;
                    crate::metrics::received(n as u64);
                    if tx.send(Ok(buf.freeze())).await.is_err() {
                        return; // the store stopped reading (done or failed)
                    }
                }
                Ok(Err(e)) => {
                    let copy = io::Error::new(e.kind(), e.to_string());
                    socket_err = Some(e);
                    let _ = tx.send(Err(copy)).await;
                    return;
                }
                Err(_) => {
                    let e = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no upload data for {idle:?}"),
                    );
                    socket_err = Some(io::Error::new(e.kind(), e.to_string()));
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    };
    pump.await;
    drop(tx);
    let consumed = task.await.map_err(|e| BridgeError::Join(e.to_string()))?;
    match consumed {
        Ok(v) => Ok((v, received)),
        Err(source) => match socket_err {
            Some(source) => Err(BridgeError::Socket {
                op: "read",
                bytes: received,
                source,
            }),
            None => Err(BridgeError::Store { sent: 0, source }),
        },
    }
}
