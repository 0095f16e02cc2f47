//! TLS with client-certificate authentication on the snapshot port.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use snapshotd_server::SnapshotServer;
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

async fn client(
    addr: std::net::SocketAddr,
    ca: &CertificateDer<'static>,
    cert: Option<&(CertificateDer<'static>, KeyPair)>,
) -> std::io::Result<Vec<u8>> {
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
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let mut s = connector
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

#[tokio::test]
async fn mutual_tls_serves_certified_clients_only() {
    let pki = pki();
    let dir = snapshotd_testutil::temp_dir();
    let files = TlsFiles {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        client_ca: Some(dir.path().join("ca.pem")),
    };
    std::fs::write(&files.cert, pem("CERTIFICATE", &pki.server.0)).unwrap();
    std::fs::write(
        &files.key,
        pem("PRIVATE KEY", &pki.server.1.serialize_der()),
    )
    .unwrap();
    std::fs::write(
        files.client_ca.as_ref().unwrap(),
        pem("CERTIFICATE", &pki.ca),
    )
    .unwrap();
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
