//! TLS with client-certificate authentication on the snapshot port and the HTTP API.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use snapshotd_server::SnapshotServer;
use snapshotd_server::http::{HttpState, serve_https};
use snapshotd_server::tls::{TlsConfig, TlsFiles};
use snapshotd_wire::{Request, RequestType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{be, frame, test_config};
use crate::memstore::MemStore;

struct Pki {
    ca: CertificateDer<'static>,
    server: (CertificateDer<'static>, KeyPair),
    client: (CertificateDer<'static>, KeyPair),
    rogue_client: (CertificateDer<'static>, KeyPair),
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    san: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (CertificateDer<'static>, KeyPair) {
    let mut p = CertificateParams::new(vec![san.to_string()]).unwrap();
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.der().clone(), key)
}

fn pki() -> Pki {
    let ca1 = ca("snapshotd test ca");
    let ca2 = ca("someone else");
    Pki {
        ca: ca1.der().clone(),
        server: leaf(&ca1, "localhost", ExtendedKeyUsagePurpose::ServerAuth),
        client: leaf(&ca1, "backup-client", ExtendedKeyUsagePurpose::ClientAuth),
        rogue_client: leaf(&ca2, "rogue", ExtendedKeyUsagePurpose::ClientAuth),
    }
}

fn key_der(k: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der()))
}

fn pem(tag: &str, der: &[u8]) -> String {
    // Minimal PEM writer (base64 of the DER in 64-column lines).
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for c in der.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                b64.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "-----BEGIN {tag}-----\n{}\n-----END {tag}-----\n",
        lines.join("\n")
    )
}

/// A client that trusts `ca` and presents `cert` if given.
fn connector(
    ca: &CertificateDer<'static>,
    cert: Option<&(CertificateDer<'static>, KeyPair)>,
) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some((c, k)) => b
            .with_client_auth_cert(vec![c.clone()], key_der(k))
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn client(
    addr: std::net::SocketAddr,
    ca: &CertificateDer<'static>,
    cert: Option<&(CertificateDer<'static>, KeyPair)>,
) -> std::io::Result<Vec<u8>> {
    let tcp = TcpStream::connect(addr).await?;
    let mut s = connector(ca, cert)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let req = frame(
        RequestType::MetastoreBackup,
        Request::new(RequestType::MetastoreBackup),
    );
    s.write_all(&req).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok(out)
}

/// Writes the server certificate, key and (if `client_auth`) the CA as PEM files in `dir`.
fn write_files(dir: &std::path::Path, pki: &Pki, client_auth: bool) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: client_auth.then(|| dir.join("ca.pem")),
    };
    std::fs::write(&files.cert, pem("CERTIFICATE", &pki.server.0)).unwrap();
    std::fs::write(
        &files.key,
        pem("PRIVATE KEY", &pki.server.1.serialize_der()),
    )
    .unwrap();
    if let Some(ca) = &files.client_ca {
        std::fs::write(ca, pem("CERTIFICATE", &pki.ca)).unwrap();
    }
    files
}

#[tokio::test]
async fn mutual_tls_serves_certified_clients_only() {
    let pki = pki();
    let dir = snapshotd_testutil::temp_dir();
    let files = write_files(dir.path(), &pki, true);
    let tls = TlsConfig::load(&files).unwrap();
    assert!(tls.authenticates_clients());

    let store = Arc::new(MemStore::new());
    store.set_meta(b"\x08\x07".to_vec());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = SnapshotServer::new(store, test_config()).with_tls(tls);
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = rx.await;
    }));

    let ok = client(addr, &pki.ca, Some(&pki.client)).await.unwrap();
    assert_eq!(
        be(&ok, 0),
        0x5959_0101,
        "certified client gets the meta frame"
    );
    assert_eq!(&ok[16..18], b"\x08\x07");

    let anonymous = client(addr, &pki.ca, None).await;
    assert!(
        anonymous.as_ref().map_or(true, |b| b.is_empty()),
        "client without certificate must not be served: {anonymous:?}"
    );
    let rogue = client(addr, &pki.ca, Some(&pki.rogue_client)).await;
    assert!(
        rogue.as_ref().map_or(true, |b| b.is_empty()),
        "client with a foreign certificate must not be served: {rogue:?}"
    );
    // A plain influx-style client gets nothing either.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(&frame(
            RequestType::MetastoreBackup,
            Request::new(RequestType::MetastoreBackup),
        ))
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out).await;
    assert!(
        out.len() < 8 || be(&out, 0) != 0x5959_0101,
        "plain client was served"
    );

    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

#[test]
fn bad_tls_files_are_reported_with_their_path() {
    let dir = snapshotd_testutil::temp_dir();
    let missing = TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
        client_ca: None,
    };
    let e = TlsConfig::load(&missing).unwrap_err().to_string();
    assert!(e.contains("nope.pem"), "{e}");
    std::fs::write(dir.path().join("empty.pem"), "not pem").unwrap();
    let empty = TlsFiles {
        cert: dir.path().join("empty.pem"),
        ..missing
    };
    let e = TlsConfig::load(&empty).unwrap_err().to_string();
    assert!(e.contains("empty.pem"), "{e}");
}

/// An HTTPS API over `store` on an ephemeral port; send on the sender to stop it.
async fn start_https(
    store: Arc<MemStore>,
    tls: TlsConfig,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = HttpState::new(store, None);
    let task = tokio::spawn(serve_https(listener, state, tls, async move {
        let _ = rx.await;
    }));
    (addr, tx, task)
}

/// One HTTP/1.1 request over TLS: `Ok((status, body))`, or the error that ended the exchange.
async fn https_call(
    addr: std::net::SocketAddr,
    ca: &CertificateDer<'static>,
    cert: Option<&(CertificateDer<'static>, KeyPair)>,
    method: &str,
    target: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let tcp = TcpStream::connect(addr).await?;
    let mut s = connector(ca, cert)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::test]
async fn https_serves_ping_write_and_query_to_certified_clients() {
    let pki = pki();
    let dir = snapshotd_testutil::temp_dir();
    let tls = TlsConfig::load(&write_files(dir.path(), &pki, true)).unwrap();
    let store = Arc::new(MemStore::new());
    let (addr, stop, task) = start_https(store.clone(), tls).await;
    let good = Some(&pki.client);

    let (st, _) = https_call(addr, &pki.ca, good, "GET", "/ping", b"")
        .await
        .unwrap();
    assert_eq!(st, 204);
    let (st, body) = https_call(
        addr,
        &pki.ca,
        good,
        "POST",
        "/query?q=CREATE+DATABASE+db1",
        b"",
    )
    .await
    .unwrap();
    assert_eq!(st, 200, "{body}");
    let (st, body) = https_call(
        addr,
        &pki.ca,
        good,
        "POST",
        "/write?db=db1&precision=s",
        b"cpu v=1 1\ncpu v=2 2\n",
    )
    .await
    .unwrap();
    assert_eq!(st, 204, "{body}");
    assert_eq!(store.points(), 2);
    let (st, body) = https_call(addr, &pki.ca, good, "GET", "/query?q=SHOW+DATABASES", b"")
        .await
        .unwrap();
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["results"][0]["series"][0]["values"],
        serde_json::json!([["db1"]])
    );

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn https_refuses_clients_without_a_certificate_from_the_ca() {
    let pki = pki();
    let dir = snapshotd_testutil::temp_dir();
    let tls = TlsConfig::load(&write_files(dir.path(), &pki, true)).unwrap();
    let store = Arc::new(MemStore::new());
    let (addr, stop, task) = start_https(store.clone(), tls).await;
    let (st, _) = https_call(
        addr,
        &pki.ca,
        Some(&pki.client),
        "POST",
        "/query?q=CREATE+DATABASE+db1",
        b"",
    )
    .await
    .unwrap();
    assert_eq!(st, 200);

    for (who, cert) in [
        ("no certificate", None),
        ("another CA's certificate", Some(&pki.rogue_client)),
    ] {
        for target in ["/ping", "/write?db=db1&precision=s"] {
            let r = https_call(addr, &pki.ca, cert, "POST", target, b"cpu v=1 1\n").await;
            // The server's alert (certificate required / unknown CA) ends the exchange.
            assert!(
                matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::InvalidData),
                "client with {who} was not refused by the handshake on {target}: {r:?}"
            );
        }
    }
    assert_eq!(store.points(), 0, "a refused client wrote points");
    // The server is still serving certified clients after the failed handshakes.
    let (st, _) = https_call(addr, &pki.ca, Some(&pki.client), "GET", "/ping", b"")
        .await
        .unwrap();
    assert_eq!(st, 204);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn plain_http_to_the_https_port_is_not_served() {
    let pki = pki();
    let dir = snapshotd_testutil::temp_dir();
    let tls = TlsConfig::load(&write_files(dir.path(), &pki, true)).unwrap();
    let store = Arc::new(MemStore::new());
    let (addr, stop, task) = start_https(store.clone(), tls).await;
    for req in [
        &b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        &b"POST /write?db=db1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
           Content-Length: 10\r\n\r\ncpu v=1 1\n"[..],
    ] {
        let mut plain = TcpStream::connect(addr).await.unwrap();
        let _ = plain.write_all(req).await;
        let mut out = Vec::new();
        let _ = plain.read_to_end(&mut out).await;
        assert!(
            !out.starts_with(b"HTTP/"),
            "plain HTTP was answered: {:?}",
            String::from_utf8_lossy(&out)
        );
    }
    assert_eq!(store.points(), 0);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn https_without_client_ca_serves_any_tls_client() {
    let pki = pki();
    let dir = snapshotd_testutil::temp_dir();
    let tls = TlsConfig::load(&write_files(dir.path(), &pki, false)).unwrap();
    assert!(!tls.authenticates_clients());
    let (addr, stop, task) = start_https(Arc::new(MemStore::new()), tls).await;
    let (st, _) = https_call(addr, &pki.ca, None, "GET", "/ping", b"")
        .await
        .unwrap();
    assert_eq!(st, 204);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
