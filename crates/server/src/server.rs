//! The accept loop: connection limit, per-connection tasks, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use snapshotd_store::Store;

use crate::admission::{Admission, Admit, BusySlot, Slot};
use crate::busy;
use crate::config::ServerConfig;
use crate::conn;
use crate::tls::TlsConfig;

/// The snapshot service (influx port-8088 protocol) over a [`Store`].
#[derive(Clone)]
pub struct SnapshotServer {
    store: Arc<dyn Store>,
    config: Arc<ServerConfig>,
    tls: Option<TlsConfig>,
}

impl std::fmt::Debug for SnapshotServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotServer")
            .field("config", &self.config)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl SnapshotServer {
    /// A server over `store` with `config`.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        SnapshotServer {
            store,
            config: Arc::new(config),
            tls: None,
        }
    }

    /// Serves TLS (optionally with client-certificate authentication) instead of plain TCP.
    /// influxd's own clients cannot speak TLS; use it for snapshotd clients across hosts.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Serves connections from `listener` until `shutdown` resolves, then stops accepting,
    /// closes connections still waiting for a request, lets running streams finish for up
    /// to `shutdown_grace` and aborts the rest.
    pub async fn serve<S>(self, listener: TcpListener, shutdown: S) -> std::io::Result<()>
    where
        S: Future<Output = ()> + Send,
    {
        let local = listener.local_addr()?;
        info!(
            %local,
            max_connections = self.config.max_connections,
            tls = self.tls.is_some(),
            client_auth = self.tls.as_ref().is_some_and(TlsConfig::authenticates_clients),
            "snapshot service listening"
        );
        let admission = Admission::new(
            self.config.max_connections,
            self.config.max_connections_per_peer,
        );
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            while tasks.try_join_next().is_some() {}
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: log and keep serving after a short pause.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            match admission.admit(peer.ip()) {
                Admit::Slot(slot) => {
                    let span = info_span!("snapshot_conn", %peer, request = tracing::field::Empty);
                    tasks.spawn(
                        self.clone()
                            .serve_conn(stream, slot, cancel.child_token())
                            .instrument(span),
                    );
                }
                Admit::Busy(busy) => {
                    metrics::counter!(crate::metrics::REJECTED_CONNECTIONS).increment(1);
                    let span = info_span!("snapshot_refused", %peer);
                    tasks.spawn(
                        self.clone()
                            .refuse_conn(stream, busy, cancel.child_token())
                            .instrument(span),
                    );
                }
                Admit::Refused => {
                    metrics::counter!(crate::metrics::REJECTED_CONNECTIONS).increment(1);
                    debug!(%peer, "connection limit reached and too many refusals pending, closing");
                    drop(stream);
                }
            }
        }
        drop(listener);
        shutdown_tasks(&mut tasks, &cancel, &self.config, local).await;
        Ok(())
    }

    /// One admitted connection: TLS handshake if configured, then the request.
    async fn serve_conn(self, stream: TcpStream, slot: Slot, token: CancellationToken) {
        let _active = crate::metrics::ActiveGuard::new();
        let config = self.config;
        let Some(tls) = self.tls else {
            return conn::handle(stream, self.store, config, token, &slot).await;
        };
        let handshake = tokio::select! {
            () = token.cancelled() => return,
            () = slot.evicted().cancelled() => return,
            r = tokio::time::timeout(config.timeouts.mux, tls.accept(stream)) => r,
        };
        match handshake {
            Ok(Ok(s)) => conn::handle(s, self.store, config, token, &slot).await,
            Ok(Err(e)) => {
                crate::metrics::error("none", "tls");
                warn!(error = %e, "TLS handshake failed");
            }
            Err(_) => {
                crate::metrics::error("none", "timeout");
                info!("TLS handshake timed out");
            }
        }
    }

    /// One refused connection: told "busy" if it opted in to error replies, else closed.
    async fn refuse_conn(self, stream: TcpStream, busy: BusySlot, token: CancellationToken) {
        let config = self.config;
        let refusal = async {
            match self.tls {
                None => busy::refuse(stream, config, busy).await,
                Some(tls) => {
                    let hs = tokio::time::timeout(busy::BUSY_READ, tls.accept(stream)).await;
                    if let Ok(Ok(s)) = hs {
                        busy::refuse(s, config, busy).await;
                    }
                }
            }
        };
        tokio::select! {
            () = token.cancelled() => {}
            () = refusal => {}
        }
    }
}

async fn shutdown_tasks(
    tasks: &mut JoinSet<()>,
    cancel: &CancellationToken,
    config: &ServerConfig,
    local: SocketAddr,
) {
    info!(%local, running = tasks.len(), "snapshot service stopping: no longer accepting");
    cancel.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(config.shutdown_grace, drain)
        .await
        .is_err()
    {
        warn!(
            aborted = tasks.len(),
            grace = ?config.shutdown_grace,
            "streams still running after the shutdown grace period, aborting them"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    info!(%local, "snapshot service stopped");
}
