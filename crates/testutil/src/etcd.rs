//! Command lines for the real etcd 3.4 the interop tests and benches start.

/// `--name NAME --data-dir DIR` plus client and peer URLs listened on and advertised (the
/// flags every loopback etcd member of the tests needs; add cluster flags after them).
pub fn member_args(name: &str, data_dir: &str, client_url: &str, peer_url: &str) -> Vec<String> {
    [
        "--name",
        name,
        "--data-dir",
        data_dir,
        "--listen-client-urls",
        client_url,
        "--advertise-client-urls",
        client_url,
        "--listen-peer-urls",
        peer_url,
        "--initial-advertise-peer-urls",
        peer_url,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}
