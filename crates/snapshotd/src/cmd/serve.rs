//! `snapshotd serve`: the snapshot service (influx port-8088 protocol) and the HTTP API over
//! the built-in on-disk store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tokio::sync::watch;
use tracing::info;

use snapshotd_server::http::{HttpState, MetricsRender, serve_http, serve_https};
use snapshotd_server::tls::{TlsConfig, TlsFiles};
use snapshotd_server::{ServerConfig, SnapshotServer, Timeouts, bind::check_bind};
use snapshotd_store::{AdminStore, BuiltinStore, Store};

/// Flags of `snapshotd serve` (each overrides the same key of `--config`).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML file with the same settings (keys: data-dir, bind, http-bind, no-http, http-plain,
    /// insecure, tls-cert, tls-key, tls-client-ca, max-connections, shutdown-grace,
    /// max-meta-upload,
    /// [timeouts] mux/request/payload/upload-idle/write-idle as "30s"-style durations).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the built-in store [default: ./snapshotd-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Snapshot protocol address [default: 127.0.0.1:8088].
    #[arg(long, value_name = "ADDR")]
    bind: Option<SocketAddr>,
    /// HTTP API address (/write, /query, /ping, /metrics) [default: 127.0.0.1:8086].
    #[arg(long, value_name = "ADDR")]
    http_bind: Option<SocketAddr>,
    /// Do not start the HTTP API.
    #[arg(long)]
    no_http: bool,
    /// Keep the HTTP API in plain text when TLS is configured (it serves HTTPS with the same
    /// certificate, key and client CA otherwise); loopback --http-bind only, unless --insecure.
    #[arg(long)]
    http_plain: bool,
    /// Allow non-loopback binds without TLS client certificates (no authentication at all).
    #[arg(long)]
    insecure: bool,
    /// Serve the snapshot port and the HTTP API over TLS with this certificate chain (PEM).
    /// influxd's own backup/restore clients cannot speak TLS.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA bundle (PEM) on the snapshot port and on
    /// HTTPS; enables non-loopback --bind and --http-bind.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Snapshot connections served at once [default: 256].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    bind: Option<SocketAddr>,
    http_bind: Option<SocketAddr>,
    no_http: Option<bool>,
    http_plain: Option<bool>,
    insecure: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    max_connections: Option<usize>,
    #[serde(default, with = "opt_duration")]
    shutdown_grace: Option<Duration>,
    max_meta_upload: Option<u64>,
    #[serde(default)]
    timeouts: FileTimeouts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileTimeouts {
    #[serde(default, with = "opt_duration")]
    mux: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    request: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    payload: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    upload_idle: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    write_idle: Option<Duration>,
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Settings after merging defaults, file and flags.
#[derive(Debug)]
struct Settings {
    data_dir: PathBuf,
    bind: SocketAddr,
    http_bind: Option<SocketAddr>,
    server: ServerConfig,
    tls: Option<TlsConfig>,
    /// TLS of the HTTP API: `tls` unless --http-plain.
    http_tls: Option<TlsConfig>,
}

/// How the HTTP API is protected, for its bind policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpSecurity {
    /// No TLS configured: plain HTTP.
    Plain,
    /// TLS configured but --http-plain: plain HTTP by choice.
    PlainByChoice,
    /// HTTPS without client certificates.
    Https,
    /// HTTPS with client certificates signed by --tls-client-ca.
    HttpsClientAuth,
}

impl HttpSecurity {
    fn of(tls: Option<&TlsConfig>, http_plain: bool) -> Self {
        match tls {
            None => HttpSecurity::Plain,
            Some(_) if http_plain => HttpSecurity::PlainByChoice,
            Some(t) if t.authenticates_clients() => HttpSecurity::HttpsClientAuth,
            Some(_) => HttpSecurity::Https,
        }
    }
}

/// The bind policy of the snapshot port applied to the HTTP API: a non-loopback `addr` needs
/// HTTPS with client certificates, or `insecure`.
fn check_http_bind(addr: SocketAddr, security: HttpSecurity, insecure: bool) -> anyhow::Result<()> {
    let authenticated = security == HttpSecurity::HttpsClientAuth;
    if check_bind(addr, authenticated, insecure).is_ok() {
        return Ok(());
    }
    let (why, fix) = match security {
        HttpSecurity::Plain => (
            "without TLS, /write and /query have no encryption and no authentication",
            "configure --tls-cert/--tls-key/--tls-client-ca to serve HTTPS with client \
             certificates",
        ),
        HttpSecurity::PlainByChoice => (
            "--http-plain serves it without TLS or authentication",
            "drop --http-plain (with --tls-client-ca set) to serve HTTPS with client certificates",
        ),
        HttpSecurity::Https | HttpSecurity::HttpsClientAuth => (
            "HTTPS without --tls-client-ca does not authenticate clients",
            "add --tls-client-ca to require client certificates",
        ),
    };
    anyhow::bail!(
        "refusing to bind the HTTP API to {addr}: {why}; {fix}, bind a loopback --http-bind, \
         or pass --insecure to serve {addr} anyway"
    )
}

fn load(args: &ServeArgs) -> anyhow::Result<Settings> {
    let file = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading config {}", p.display()))?;
            toml::from_str::<FileConfig>(&text)
                .with_context(|| format!("parsing config {}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let defaults = ServerConfig::default();
    let t = Timeouts::default();
    let server = ServerConfig {
        timeouts: Timeouts {
            mux: file.timeouts.mux.unwrap_or(t.mux),
            request: file.timeouts.request.unwrap_or(t.request),
            payload: file.timeouts.payload.unwrap_or(t.payload),
            upload_idle: file.timeouts.upload_idle.unwrap_or(t.upload_idle),
            write_idle: file.timeouts.write_idle.unwrap_or(t.write_idle),
        },
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(defaults.max_connections),
        shutdown_grace: file.shutdown_grace.unwrap_or(defaults.shutdown_grace),
        limits: snapshotd_wire::Limits {
            max_upload_size: file
                .max_meta_upload
                .unwrap_or(defaults.limits.max_upload_size),
            ..defaults.limits
        },
        ..defaults
    };
    let insecure = args.insecure || file.insecure.unwrap_or(false);
    let bind = args
        .bind
        .or(file.bind)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8088)));
    let no_http = args.no_http || file.no_http.unwrap_or(false);
    let http_plain = args.http_plain || file.http_plain.unwrap_or(false);
    let http_bind = (!no_http).then(|| {
        args.http_bind
            .or(file.http_bind)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8086)))
    });
    let tls_files = match (
        args.tls_cert.clone().or(file.tls_cert),
        args.tls_key.clone().or(file.tls_key),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: args.tls_client_ca.clone().or(file.tls_client_ca),
        }),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate (tls-cert) and its key (tls-key)"),
    };
    let tls = tls_files
        .as_ref()
        .map(TlsConfig::load)
        .transpose()
        .context("loading TLS files")?;
    let authenticated = tls.as_ref().is_some_and(TlsConfig::authenticates_clients);
    check_bind(bind, authenticated, insecure)?;
    let http_tls = tls.clone().filter(|_| !http_plain);
    if let Some(h) = http_bind {
        check_http_bind(h, HttpSecurity::of(tls.as_ref(), http_plain), insecure)?;
    }
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("./snapshotd-data"));
    Ok(Settings {
        data_dir,
        bind,
        http_bind,
        server,
        tls,
        http_tls,
    })
}

fn open_store(dir: &Path) -> anyhow::Result<Arc<BuiltinStore>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let store =
        BuiltinStore::open(dir).with_context(|| format!("opening store {}", dir.display()))?;
    Ok(Arc::new(store))
}

/// Runs `snapshotd serve` until SIGINT/SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = load(&args)?;
    let store = open_store(&settings.data_dir)?;
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus metrics recorder")?;
    let render: MetricsRender = Arc::new(move || handle.render());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(serve(settings, store, render))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    settings: Settings,
    store: Arc<BuiltinStore>,
    render: MetricsRender,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("binding snapshot service to {}", settings.bind))?;
    let http_listener = match settings.http_bind {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding HTTP API to {addr}"))?,
        ),
        None => None,
    };
    info!(data_dir = %settings.data_dir.display(), "store opened");
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let snapshot_store: Arc<dyn Store> = store.clone();
    let mut server = SnapshotServer::new(snapshot_store, settings.server);
    if let Some(tls) = settings.tls {
        server = server.with_tls(tls);
    }
    let snap = tokio::spawn(server.serve(listener, stopped(stop_rx.clone())));
    let http = http_listener.map(|l| {
        let admin: Arc<dyn AdminStore> = store.clone();
        let state = HttpState::new(admin, Some(render));
        let stop = stopped(stop_rx.clone());
        match settings.http_tls {
            Some(tls) => tokio::spawn(serve_https(l, state, tls, stop)),
            None => tokio::spawn(serve_http(l, state, stop)),
        }
    });
    shutdown_signal().await;
    info!("shutdown requested");
    let _ = stop_tx.send(true);
    snap.await.context("snapshot service task")??;
    if let Some(h) = http {
        h.await.context("HTTP task")??;
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_bind_off_loopback_needs_https_with_client_certificates_or_insecure() {
        use HttpSecurity::*;
        let check =
            |addr: &str, sec, insecure| check_http_bind(addr.parse().unwrap(), sec, insecure);
        for sec in [Plain, PlainByChoice, Https, HttpsClientAuth] {
            assert!(check("127.0.0.1:8086", sec, false).is_ok(), "{sec:?}");
            assert!(check("[::1]:8086", sec, false).is_ok(), "{sec:?}");
            assert!(check("0.0.0.0:8086", sec, true).is_ok(), "{sec:?}");
        }
        assert!(check("0.0.0.0:8086", HttpsClientAuth, false).is_ok());
        assert!(check("[::]:8086", HttpsClientAuth, false).is_ok());
        for (sec, names) in [
            (Plain, &["--tls-client-ca", "--http-bind", "--insecure"][..]),
            (
                PlainByChoice,
                &["--http-plain", "--tls-client-ca", "--insecure"][..],
            ),
            (Https, &["--tls-client-ca", "--http-bind", "--insecure"][..]),
        ] {
            let e = check("10.1.2.3:8086", sec, false).unwrap_err().to_string();
            assert!(e.contains("10.1.2.3:8086"), "{e}");
            for n in names {
                assert!(e.contains(n), "{sec:?}: {e} does not name {n}");
            }
        }
    }

    #[test]
    fn http_security_follows_tls_and_http_plain() {
        assert_eq!(HttpSecurity::of(None, false), HttpSecurity::Plain);
        assert_eq!(HttpSecurity::of(None, true), HttpSecurity::Plain);
    }

    #[test]
    fn http_plain_is_a_config_key() {
        let f: FileConfig = toml::from_str("http-plain = true").unwrap();
        assert_eq!(f.http_plain, Some(true));
    }
}
