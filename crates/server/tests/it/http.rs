//! The HTTP API: /ping, /write, /query, /metrics, over the store double.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use snapshotd_server::http::{HttpState, serve_http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::memstore::MemStore;

async fn start(store: Arc<MemStore>) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let render: snapshotd_server::http::MetricsRender = Arc::new(|| "# metrics page\n".to_string());
    let state = HttpState::new(store, Some(render));
    tokio::spawn(serve_http(l, state, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// Minimal HTTP/1.1 client: returns (status, body).
async fn call(
    addr: SocketAddr,
    method: &str,
    target: &str,
    ctype: &str,
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let status: u16 = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn query(addr: SocketAddr, q: &str) -> (u16, Value) {
    let enc: String = form_encode(q);
    let (st, body) = call(addr, "GET", &format!("/query?q={enc}"), "text/plain", b"").await;
    (st, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn ping_write_and_metrics() {
    let store = Arc::new(MemStore::new());
    let (addr, _stop) = start(store.clone()).await;
    assert_eq!(call(addr, "GET", "/ping", "text/plain", b"").await.0, 204);
    let (st, body) = call(addr, "POST", "/write?db=db1", "text/plain", b"cpu v=1 1\n").await;
    assert_eq!(st, 404, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": "database not found: \"db1\""})
    );
    let (st, body) = call(addr, "POST", "/write", "text/plain", b"cpu v=1 1\n").await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"error\""));
    assert_eq!(query(addr, "CREATE DATABASE db1").await.0, 200);
    let (st, body) = call(
        addr,
        "POST",
        "/write?db=db1&precision=s",
        "text/plain",
        b"cpu v=1 1\ncpu v=2 2\n",
    )
    .await;
    assert_eq!(st, 204, "{body}");
    assert_eq!(store.points(), 2);
    let (st, body) = call(addr, "POST", "/write?db=db1", "text/plain", b"garbage\n").await;
    assert_eq!(st, 400, "{body}");
    let (st, _) = call(
        addr,
        "POST",
        "/write?db=db1&precision=fortnight",
        "text/plain",
        b"cpu v=1 1\n",
    )
    .await;
    assert_eq!(st, 400);
    let (st, body) = call(addr, "GET", "/metrics", "text/plain", b"").await;
    assert_eq!(st, 200);
    assert_eq!(body, "# metrics page\n");
}

#[tokio::test]
async fn query_statements_in_influx_shapes() {
    let store = Arc::new(MemStore::new());
    let (addr, _stop) = start(store.clone()).await;
    let (st, v) = query(addr, "CREATE DATABASE db1; CREATE DATABASE db2").await;
    assert_eq!(st, 200);
    assert_eq!(
        v,
        json!({"results": [{"statement_id": 0}, {"statement_id": 1}]})
    );
    let (_, v) = query(
        addr,
        "CREATE RETENTION POLICY rp2 ON db2 DURATION 520w REPLICATION 1 SHARD DURATION 1d DEFAULT",
    )
    .await;
    assert_eq!(v, json!({"results": [{"statement_id": 0}]}));
    let (_, v) = query(addr, "SHOW DATABASES").await;
    assert_eq!(
        v,
        json!({"results": [{"statement_id": 0, "series": [{"name": "databases", "columns": ["name"], "values": [["db1"], ["db2"]]}]}]})
    );
    // Key order as influx writes it (clients that stream-parse rely on it).
    let (_, raw) = call(addr, "GET", "/query?q=SHOW+DATABASES", "text/plain", b"").await;
    assert!(
        raw.starts_with(r#"{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":"#),
        "{raw}"
    );
    let (_, v) = query(addr, "SHOW RETENTION POLICIES ON db2").await;
    assert_eq!(
        v["results"][0]["series"][0]["values"],
        json!([
            ["autogen", "0s", "168h0m0s", 1, false],
            ["rp2", "87360h0m0s", "24h0m0s", 1, true]
        ])
    );
    let (_, v) = query(addr, "SHOW RETENTION POLICIES ON nope").await;
    assert_eq!(
        v,
        json!({"results": [{"statement_id": 0, "error": "database not found: nope"}]})
    );
    // POST with a form body, as the influx CLI sends it.
    let (st, body) = call(
        addr,
        "POST",
        "/query",
        "application/x-www-form-urlencoded",
        b"q=DROP+DATABASE+db1",
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (_, v) = query(addr, "SHOW DATABASES").await;
    assert_eq!(v["results"][0]["series"][0]["values"], json!([["db2"]]));
    let (_, v) = query(addr, "SHOW SHARDS").await;
    assert_eq!(v["results"][0]["series"][0]["name"], json!("db2"));
    let (st, v) = query(addr, "SELECT count(*) FROM cpu").await;
    assert_eq!(st, 400);
    assert_eq!(
        v,
        json!({"error": "error parsing query: found SELECT, expected CREATE, DROP, SHOW at line 1, char 1"})
    );
    let (st, body) = call(addr, "GET", "/query", "text/plain", b"").await;
    assert_eq!(st, 400);
    assert!(body.contains("missing required parameter"));
}
