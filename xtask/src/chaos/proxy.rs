//! A loopback TCP proxy that injects network faults into both directions (delay only into
//! replies):
//! delay, throttle, reset, half-close and blackhole (no FIN) after a number of bytes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to connections opened while the mode is set (cuts count the bytes of
/// each direction separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward as is.
    Pass,
    /// Hold every chunk this many ms.
    Delay(u64),
    /// At most this many bytes per second.
    Throttle(u64),
    /// Forward this many bytes, then reset the client connection (RST).
    Reset(u64),
    /// Forward this many bytes, then close the client's read side with a FIN.
    HalfClose(u64),
    /// Forward this many bytes, then forward nothing and send no FIN (for at most 60 s).
    Blackhole(u64),
    /// HTTP: every request goes on its own connection (`Connection: close` added); a
    /// seeded `per_mille` of them is answered by the proxy with this status (500 or 503
    /// SlowDown, S3's XML error body) instead of reaching the server.
    HttpError {
        /// 500 or 503.
        status: u16,
        /// Requests failed, out of 1000.
        per_mille: u64,
        /// Seed of which requests fail.
        seed: u64,
    },
}

/// Longest a blackholed connection is held open.
const BLACKHOLE_HOLD: Duration = Duration::from_secs(60);

/// A running proxy: connect to `addr`, traffic goes to the target.
#[derive(Debug)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    cuts: Arc<AtomicU64>,
    epoch: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    /// Starts a proxy on a loopback port in front of `target` (loopback too).
    pub fn start(target: SocketAddr) -> Result<Proxy> {
        anyhow::ensure!(
            target.ip().is_loopback(),
            "chaos proxies only loopback addresses"
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let m = Arc::clone(&mode);
        let cuts = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&cuts);
        let epoch = Arc::new(AtomicU64::new(0));
        let ep = Arc::clone(&epoch);
        let requests = Arc::new(AtomicU64::new(0));
        let rq = Arc::clone(&requests);
        rt.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let now = *m.lock().unwrap_or_else(PoisonError::into_inner);
                let fault = Fault {
                    mode: now,
                    cuts: Arc::clone(&c),
                    epoch: Arc::clone(&ep),
                    current: Arc::clone(&m),
                };
                if let Mode::HttpError { .. } = now {
                    tokio::spawn(super::http_fault::serve(
                        client,
                        target,
                        now,
                        Arc::clone(&rq),
                        fault.cuts,
                    ));
                } else {
                    tokio::spawn(pipe(client, target, fault));
                }
            }
        });
        Ok(Proxy {
            addr,
            mode,
            cuts,
            epoch,
            requests,
            _rt: rt,
        })
    }

    /// HTTP requests seen in [`Mode::HttpError`] so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Connections cut (reset, half-closed, blackholed or answered with an HTTP error) so far.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }

    /// Sets the mode for connections opened from now on.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
        // Ends the holds of connections blackholed under the previous mode.
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }
}

/// How one direction of a proxied connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The sender closed (or an error): passed on as a FIN.
    Eof,
    /// The fault cut it.
    Cut,
}

/// A connection's mode, the proxy's cut counter, its mode epoch and its current mode.
#[derive(Debug, Clone)]
pub(super) struct Fault {
    pub(super) mode: Mode,
    pub(super) cuts: Arc<AtomicU64>,
    pub(super) epoch: Arc<AtomicU64>,
    pub(super) current: Arc<Mutex<Mode>>,
}

impl Fault {
    /// Returns once the proxy switched to a mode that cuts or fails connections (a
    /// connection opened while passing meets a fault that begins later: it is closed then,
    /// so a client's pooled connections do not outlive the fault's start).
    async fn switched_to_fault(&self) {
        let start = self.epoch.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = *self.current.lock().unwrap_or_else(PoisonError::into_inner);
            let cutting = matches!(
                now,
                Mode::Reset(_) | Mode::HalfClose(_) | Mode::Blackhole(_) | Mode::HttpError { .. }
            );
            if cutting && self.epoch.load(Ordering::Relaxed) != start {
                return;
            }
        }
    }
}

/// Proxies one connection under `fault` (a pass-through when its mode is `Pass`).
pub(super) async fn pipe(client: TcpStream, target: SocketAddr, fault: Fault) {
    let mode = fault.mode;
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    if matches!(mode, Mode::Reset(_)) {
        // Closing with a zero linger time sends RST instead of FIN.
        let _ = client.set_zero_linger();
    }
    // `io::split` halves never shut down on drop, so a reset is a bare RST.
    let (cr, cw) = tokio::io::split(client);
    let (sr, sw) = tokio::io::split(server);
    let mut up = Box::pin(forward(cr, sw, fault.clone(), false));
    let mut down = Box::pin(forward(sr, cw, fault.clone(), true));
    let (mut up_done, mut down_done) = (false, false);
    let passing = mode == Mode::Pass;
    let switched = fault.switched_to_fault();
    tokio::pin!(switched);
    while !(up_done && down_done) {
        let end = tokio::select! {
            e = &mut up, if !up_done => { up_done = true; e }
            e = &mut down, if !down_done => { down_done = true; e }
            () = &mut switched, if passing => End::Cut,
        };
        if end == End::Cut {
            fault.cuts.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
}

/// Copies `r` to `w`, applying `mode` (delays only to replies, `reply`); at the cut it sends
/// the bytes before it, then half-closes, holds (blackhole) or returns for the reset.
async fn forward<R, W>(mut r: R, mut w: W, fault: Fault, reply: bool) -> End
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mode = fault.mode;
    let mut sent = 0u64;
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let cut = match mode {
            Mode::Reset(at) | Mode::HalfClose(at) | Mode::Blackhole(at) => at.checked_sub(sent),
            _ => None,
        };
        if let Some(left) = cut.filter(|l| *l < n as u64) {
            let left = usize::try_from(left).unwrap_or(0);
            let _ = w.write_all(&buf[..left]).await;
            match mode {
                Mode::HalfClose(_) => {
                    let _ = w.shutdown().await;
                }
                Mode::Blackhole(_) => hold(&fault.epoch).await,
                _ => {}
            }
            return End::Cut;
        }
        match mode {
            Mode::Delay(ms) if reply => tokio::time::sleep(Duration::from_millis(ms)).await,
            Mode::Throttle(bps) => {
                let ms = (n as u64).saturating_mul(1000) / bps.max(1);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            _ => {}
        }
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = w.shutdown().await;
    End::Eof
}

/// Holds a blackholed connection until the proxy's mode changes or [`BLACKHOLE_HOLD`] passes.
async fn hold(epoch: &AtomicU64) {
    let start = epoch.load(Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + BLACKHOLE_HOLD;
    while epoch.load(Ordering::Relaxed) == start && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
