//! Base backup over TLS: a real etcd serving client TLS with client-certificate auth
//! (certificates made here with rcgen). The right CA, certificate and key give a base whose
//! raft index and revision match `etcdctl endpoint status`; a CA that did not sign the
//! member's certificate, or no client certificate, fails naming the cause, and stores nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use snapshotd_testutil::free_port;

use super::cluster::{ctl, s, snapshotd, spawn_etcd};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// Writes `NAME.pem` and `NAME-key.pem` signed by `issuer` into `dir`.
fn leaf(
    dir: &Path,
    name: &str,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    usages: &[ExtendedKeyUsagePurpose],
) {
    let sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = usages.to_vec();
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
}

/// `etcdctl` global flags for the test's client identity.
fn tls_flags(pki: &Path) -> [String; 6] {
    let p = |n: &str| s(&pki.join(n)).to_string();
    [
        "--cacert".into(),
        p("ca.pem"),
        "--cert".into(),
        p("client.pem"),
        "--key".into(),
        p("client-key.pem"),
    ]
}

/// `(raft index, revision)` the member reports over TLS.
fn index_and_revision(client: &str, pki: &Path) -> (u64, i64) {
    let mut args: Vec<String> = tls_flags(pki).to_vec();
    args.extend(["endpoint", "status", "-w", "json"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = ctl(client, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let st = &v[0]["Status"];
    (
        st["raftIndex"].as_u64().expect("raftIndex"),
        st["header"]["revision"].as_i64().expect("revision"),
    )
}

fn backup(dest: &Path, client: &str, pki: &Path, ca: &str, who: &str) -> std::process::Output {
    let p = |n: &str| s(&pki.join(n)).to_string();
    snapshotd(&[
        "etcd",
        "backup",
        "--endpoints",
        client,
        "--cacert",
        &p(ca),
        "--cert",
        &p(&format!("{who}.pem")),
        "--key",
        &p(&format!("{who}-key.pem")),
        s(dest),
        "--json",
    ])
}

#[test]
#[ignore = "interop: run via cargo xtask interop etcd"]
fn tls_base_backup_with_client_certificates() {
    let tmp = snapshotd_testutil::temp_dir();
    let pki = tmp.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    let (ours, other) = (ca("snapshotd test ca"), ca("someone else"));
    std::fs::write(pki.join("ca.pem"), ours.pem()).unwrap();
    std::fs::write(pki.join("other-ca.pem"), other.pem()).unwrap();
    // etcd's gateway dials its own gRPC server with the server certificate: both usages.
    let both = [
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf(&pki, "server", &ours, &both);
    leaf(
        &pki,
        "rogue",
        &other,
        &[ExtendedKeyUsagePurpose::ClientAuth],
    );
    leaf(
        &pki,
        "client",
        &ours,
        &[ExtendedKeyUsagePurpose::ClientAuth],
    );

    let (cp, pp) = (free_port(), free_port());
    let client = format!("https://127.0.0.1:{cp}");
    let peer = format!("http://127.0.0.1:{pp}");
    let data = tmp.path().join("m0");
    let mut args = snapshotd_testutil::etcd::member_args("m0", s(&data), &client, &peer);
    let p = |n: &str| s(&pki.join(n)).to_string();
    args.extend([
        "--initial-cluster".into(),
        format!("m0={peer}"),
        "--cert-file".into(),
        p("server.pem"),
        "--key-file".into(),
        p("server-key.pem"),
        "--client-cert-auth".into(),
        "--trusted-ca-file".into(),
        p("ca.pem"),
    ]);
    let _etcd = spawn_etcd(&args, &tmp.path().join("m0.log"));
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut health: Vec<String> = tls_flags(&pki).to_vec();
    health.extend(["endpoint", "health"].map(String::from));
    let health: Vec<&str> = health.iter().map(String::as_str).collect();
    while !ctl(&client, &health).status.success() {
        assert!(Instant::now() < deadline, "etcd over TLS did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
    for i in 0..30 {
        let mut put: Vec<String> = tls_flags(&pki).to_vec();
        put.extend(["put".into(), format!("tls/k{i:02}"), format!("v{i}")]);
        let put: Vec<&str> = put.iter().map(String::as_str).collect();
        assert!(ctl(&client, &put).status.success(), "put {i}");
    }

    // Right CA, certificate and key: the base holds what the member reports.
    let dest = tmp.path().join("archive");
    let (live_index, live_rev) = index_and_revision(&client, &pki);
    let o = backup(&dest, &client, &pki, "ca.pem", "client");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["status"], "ok", "{b}");
    assert_eq!(b["raft_index"].as_u64(), Some(live_index), "{b}");
    assert_eq!(b["revision"].as_i64(), Some(live_rev), "{b}");
    let st = super::cluster::status(&dest);
    assert_eq!(st["bases"].as_array().map(Vec::len), Some(1), "{st}");
    assert_eq!(st["bases"][0]["index"].as_u64(), Some(live_index), "{st}");

    // A CA that did not sign the member's certificate: refused, naming the certificate.
    let wrong = tmp.path().join("wrong");
    let o = backup(&wrong, &client, &pki, "other-ca.pem", "client");
    assert_eq!(o.status.code(), Some(1), "wrong CA must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("wrong CA: {err}");
    assert!(
        err.contains(&client) && err.contains("certificate") && err.contains("--cacert"),
        "{err}"
    );
    assert!(!wrong.exists(), "a failed backup created its DEST");

    // No client certificate: etcd refuses the handshake; the error says so.
    let o = snapshotd(&[
        "etcd",
        "backup",
        "--endpoints",
        &client,
        "--cacert",
        &p("ca.pem"),
        s(&wrong),
    ]);
    assert!(!o.status.success(), "no client certificate must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("no client certificate: {err}");
    assert!(
        err.contains(&client) && err.contains("no client certificate") && err.contains("--cert"),
        "{err}"
    );
    assert!(!wrong.exists(), "a failed backup created its DEST");

    // A client certificate etcd does not trust: refused, pointing at --cert/--key.
    let o = backup(&wrong, &client, &pki, "ca.pem", "rogue");
    assert!(
        !o.status.success(),
        "an untrusted client certificate must fail"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("untrusted client certificate: {err}");
    assert!(
        err.contains(&client) && err.contains("client certificate") && err.contains("--cert"),
        "{err}"
    );
    assert!(!wrong.exists(), "a failed backup created its DEST");
}
