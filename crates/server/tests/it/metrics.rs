//! The service records its metrics through the `metrics` facade.

use std::sync::Arc;

use snapshotd_wire::{Request, RequestType};

use crate::common::{exchange, frame, start, test_config};
use crate::memstore::{Body, MemStore};

#[tokio::test]
async fn requests_errors_bytes_and_connections_are_counted() {
    // Global for the whole test binary; other tests only add to the same counters.
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("only this test installs a recorder");
    let s = Arc::new(MemStore::new());
    s.add_shard("db1", "autogen", 1, Body::Bytes(vec![3u8; 4096]));
    let srv = start(s, test_config()).await;
    let mut r = Request::new(RequestType::ShardBackup);
    r.shard_id = 1;
    assert_eq!(
        exchange(srv.addr, &frame(RequestType::ShardBackup, r.clone()))
            .await
            .len(),
        4096
    );
    r.shard_id = 2;
    assert!(
        exchange(srv.addr, &frame(RequestType::ShardBackup, r))
            .await
            .is_empty()
    );
    srv.shutdown().await;
    let page = handle.render();
    for want in [
        "snapshotd_requests_total{type=\"shard_backup\"}",
        "snapshotd_request_errors_total{type=\"shard_backup\",reason=\"not_found\"}",
        "snapshotd_bytes_sent_total",
        "snapshotd_active_connections",
    ] {
        assert!(page.contains(want), "{want} missing from:\n{page}");
    }
    let sent: f64 = page
        .lines()
        .find(|l| l.starts_with("snapshotd_bytes_sent_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(sent >= 4096.0, "bytes sent {sent}");
}
