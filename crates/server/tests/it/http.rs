//! The HTTP API: /ping, /write, /query, /metrics, over the store double.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use snapshotd_server::http::{HttpState, serve_http};
use snapshotd_store::{AdminStore, BuiltinStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::memstore::MemStore;

async fn start(store: Arc<MemStore>) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_with(store, None).await
}

/// Serves `store`, with body limit `max_body` (the default when `None`).
async fn start_with(
    store: Arc<dyn AdminStore>,
    max_body: Option<usize>,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let render: snapshotd_server::http::MetricsRender = Arc::new(|| "# metrics page\n".to_string());
    let mut state = HttpState::new(store, Some(render));
    if let Some(n) = max_body {
        state = state.with_max_body(n);
    }
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
    call_with(addr, method, target, ctype, "", body).await
}

/// [`call`] with extra header lines (each ending in CRLF).
async fn call_with(
    addr: SocketAddr,
    method: &str,
    target: &str,
    ctype: &str,
    extra_headers: &str,
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ctype}\r\n{extra_headers}Content-Length: {}\r\n\r\n",
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
    // The store's typed line error reaches the client as influx words it: no category
    // prefix, the line, the problem and the database.
    let msg = serde_json::from_str::<Value>(&body).unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.starts_with("line 1: unable to parse 'garbage'"),
        "{msg}"
    );
    assert!(msg.contains("database db1"), "{msg}");
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
    let (st, v) = query(addr, "INSERT cpu v=1").await;
    assert_eq!(st, 400);
    assert_eq!(
        v,
        json!({"error": "error parsing query: found INSERT, expected CREATE, DROP, SELECT, SHOW at line 1, char 1"})
    );
    let (st, v) = query(addr, "SELECT count(*) FROM cpu").await;
    assert_eq!(st, 200);
    assert_eq!(
        v,
        json!({"results": [{"statement_id": 0, "error": "database name required"}]})
    );
    // A store that keeps no queryable values says so.
    let (_, v) = query(addr, "SELECT count(*) FROM db2..cpu").await;
    assert!(v["results"][0]["error"].is_string(), "{v}");
    let (st, body) = call(addr, "GET", "/query", "text/plain", b"").await;
    assert_eq!(st, 400);
    assert!(body.contains("missing required parameter"));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// `POST /write` of `body` with `Content-Encoding: {encoding}`.
async fn write_encoded(
    addr: SocketAddr,
    target: &str,
    encoding: &str,
    body: &[u8],
) -> (u16, String) {
    let header = format!("Content-Encoding: {encoding}\r\n");
    call_with(addr, "POST", target, "text/plain", &header, body).await
}

const LINES: &[u8] = b"cpu,host=a usage=1.5,idle=98i 1609459200
cpu,host=b usage=2.5,idle=97i 1609459201
mem,host=a used=1024i,free=2048i 1609459200
disk,host=a,path=/ used=0.25,ro=false 1609459202
net,host=a,if=eth0 rx=10i,tx=\"up\" 1609459203
";

#[tokio::test]
async fn write_accepts_gzip_bodies() {
    // Points as stored by the built-in store, gzip body vs the same body sent plain.
    let dir = snapshotd_testutil::temp_dir();
    let store = Arc::new(BuiltinStore::open(dir.path()).unwrap());
    let (addr, _stop) = start_with(store.clone(), None).await;
    for db in ["plain", "gz", "gzupper", "xgz"] {
        assert_eq!(query(addr, &format!("CREATE DATABASE {db}")).await.0, 200);
    }
    let (st, body) = call(
        addr,
        "POST",
        "/write?db=plain&precision=s",
        "text/plain",
        LINES,
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let packed = gzip(LINES);
    for (db, encoding) in [("gz", "gzip"), ("gzupper", "GZIP"), ("xgz", "x-gzip")] {
        let target = format!("/write?db={db}&precision=s");
        let (st, body) = write_encoded(addr, &target, encoding, &packed).await;
        assert_eq!(st, 204, "{encoding}: {body}");
    }
    let plain = store.read_points("plain", None).unwrap();
    assert_eq!(plain.len(), 5);
    let (_, v) = query(addr, "SELECT count(*), last(rx) FROM gz..net").await;
    assert_eq!(
        v["results"][0]["series"][0],
        json!({"name": "net", "columns": ["time", "count_rx", "count_tx", "last"],
               "values": [["1970-01-01T00:00:00Z", 1, 1, 10]]}),
        "{v}"
    );
    for db in ["gz", "gzupper", "xgz"] {
        assert_eq!(store.read_points(db, None).unwrap(), plain, "{db}");
    }

    // The same through the counting double (the other /write tests' view).
    let mem = Arc::new(MemStore::new());
    let (addr, _stop2) = start(mem.clone()).await;
    assert_eq!(query(addr, "CREATE DATABASE db1").await.0, 200);
    let (st, body) = write_encoded(addr, "/write?db=db1&precision=s", "gzip", &packed).await;
    assert_eq!(st, 204, "{body}");
    assert_eq!(mem.points(), 5);
    // Several gzip members (as concatenated by some clients) are one body.
    let mut multi = gzip(&LINES[..LINES.len() / 2]);
    multi.extend(gzip(&LINES[LINES.len() / 2..]));
    let (st, body) = write_encoded(addr, "/write?db=db1&precision=s", "gzip", &multi).await;
    assert_eq!(st, 204, "{body}");
    assert_eq!(mem.points(), 10);
}

#[tokio::test]
async fn gzip_bomb_is_refused_with_413() {
    const LIMIT: usize = 1024 * 1024;
    let store = Arc::new(MemStore::new());
    let (addr, _stop) = start_with(store.clone(), Some(LIMIT)).await;
    assert_eq!(query(addr, "CREATE DATABASE db1").await.0, 200);
    // 64 MiB of zeros packs into ~64 KiB: under the limit as sent, far over it unpacked.
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..64 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < LIMIT, "{}", bomb.len());
    let started = std::time::Instant::now();
    let (st, body) = write_encoded(addr, "/write?db=db1", "gzip", &bomb).await;
    assert_eq!(st, 413, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains(&LIMIT.to_string()),
        "{body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(store.points(), 0);
    // Line protocol unpacking to exactly the limit still fits; one byte more does not.
    let line = b"cpu v=1 1\n";
    let mut exact = Vec::with_capacity(LIMIT);
    while exact.len() + line.len() <= LIMIT {
        exact.extend_from_slice(line);
    }
    exact.resize(LIMIT, b'\n');
    let (st, body) = write_encoded(addr, "/write?db=db1", "gzip", &gzip(&exact)).await;
    assert_eq!(st, 204, "{body}");
    let fitted = store.points();
    assert!(fitted > 0);
    exact.push(b'\n');
    let (st, body) = write_encoded(addr, "/write?db=db1", "gzip", &gzip(&exact)).await;
    assert_eq!(st, 413, "{body}");
    assert_eq!(store.points(), fitted);
    // A body over the limit as sent is refused before decompression.
    let (st, body) = write_encoded(addr, "/write?db=db1", "gzip", &vec![0u8; LIMIT + 1]).await;
    assert_eq!(st, 413, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": "Failed to buffer the request body: length limit exceeded"})
    );
    assert_eq!(store.points(), fitted);
    // The server is still answering.
    assert_eq!(call(addr, "GET", "/ping", "text/plain", b"").await.0, 204);
}

#[tokio::test]
async fn gigabyte_gzip_bomb_stops_at_the_default_limit() {
    let store = Arc::new(MemStore::new());
    let (addr, _stop) = start(store.clone()).await;
    assert_eq!(query(addr, "CREATE DATABASE db1").await.0, 200);
    // 1 GiB of zeros as 1024 gzip members of 1 MiB each: ~1 MiB on the wire.
    let member = gzip(&vec![0u8; 1024 * 1024]);
    let bomb = member.repeat(1024);
    assert!(bomb.len() < 2 * 1024 * 1024, "{}", bomb.len());
    let started = std::time::Instant::now();
    let (st, body) = write_encoded(addr, "/write?db=db1", "gzip", &bomb).await;
    assert_eq!(st, 413, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": format!("request body too large: decompressed body exceeds {} bytes", snapshotd_server::http::MAX_BODY)})
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(store.points(), 0);
    assert_eq!(call(addr, "GET", "/ping", "text/plain", b"").await.0, 204);
}

#[tokio::test]
async fn corrupt_gzip_is_refused_with_400() {
    let store = Arc::new(MemStore::new());
    let (addr, _stop) = start(store.clone()).await;
    assert_eq!(query(addr, "CREATE DATABASE db1").await.0, 200);
    let packed = gzip(LINES);
    let truncated = &packed[..packed.len() - 12];
    let mut flipped = packed.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let mut bad_crc = packed.clone();
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 0x01;
    for (what, body) in [
        ("truncated", truncated),
        ("flipped", &flipped[..]),
        ("bad crc", &bad_crc[..]),
        ("not gzip", LINES),
    ] {
        let (st, reply) = write_encoded(addr, "/write?db=db1&precision=s", "gzip", body).await;
        assert_eq!(st, 400, "{what}: {reply}");
        let v: Value = serde_json::from_str(&reply).unwrap();
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid gzip body"),
            "{what}: {reply}"
        );
    }
    assert_eq!(store.points(), 0);
}

#[tokio::test]
async fn unknown_content_encoding_is_refused_with_415() {
    let store = Arc::new(MemStore::new());
    let (addr, _stop) = start(store.clone()).await;
    assert_eq!(query(addr, "CREATE DATABASE db1").await.0, 200);
    for encoding in ["br", "deflate", "gzip, br"] {
        let (st, body) = write_encoded(addr, "/write?db=db1", encoding, LINES).await;
        assert_eq!(st, 415, "{encoding}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains("gzip") && msg.contains(encoding), "{body}");
    }
    assert_eq!(store.points(), 0);
    // identity is plain line protocol.
    let (st, body) = write_encoded(addr, "/write?db=db1&precision=s", "identity", LINES).await;
    assert_eq!(st, 204, "{body}");
    assert_eq!(store.points(), 5);
}
