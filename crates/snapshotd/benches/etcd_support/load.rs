//! Load for the etcd bench: puts through etcd's JSON gateway over keep-alive HTTP/1.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64(data: &[u8]) -> String {
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One POST on a keep-alive connection; returns the JSON body.
fn post(conn: &mut BufReader<TcpStream>, path: &str, body: &str) -> serde_json::Value {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(req.as_bytes()).unwrap();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut buf = vec![0; len];
    conn.read_exact(&mut buf).unwrap();
    serde_json::from_slice(&buf).unwrap_or_default()
}

fn connect(port: u16) -> Option<BufReader<TcpStream>> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_nodelay(true).ok()?;
    Some(BufReader::new(s))
}

/// (raft index, revision) from the maintenance status, or None when not serving.
pub fn status(port: u16) -> Option<(u64, u64)> {
    let mut c = connect(port)?;
    let v = post(&mut c, "/v3/maintenance/status", "{}");
    let idx = v["raftIndex"].as_str()?.parse().ok()?;
    let rev = v["header"]["revision"].as_str()?.parse().ok()?;
    Some((idx, rev))
}

/// `total` puts from `conns` connections (paced to `rate` puts/s in all when given).
/// Returns (ack time, raft index) per put; the index is derived from the revision, which
/// moves in step with the raft index while only these puts are written.
pub fn run(port: u16, conns: u64, rate: Option<u64>, total: u64, tag: &str) -> Vec<(Instant, u64)> {
    let (index0, rev0) = status(port).unwrap();
    let offset = index0 as i64 - rev0 as i64;
    let start = Instant::now();
    let per = total / conns;
    let handles: Vec<_> = (0..conns)
        .map(|t| {
            let tag = tag.to_string();
            std::thread::spawn(move || {
                let mut c = connect(port).unwrap();
                let mut acks = Vec::with_capacity(per as usize);
                for i in 0..per {
                    if let Some(r) = rate {
                        let due =
                            start + Duration::from_secs_f64((i * conns + t) as f64 / r as f64);
                        if let Some(d) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(d);
                        }
                    }
                    let key = b64(format!("bench/{tag}/{t}/{i:08}").as_bytes());
                    let val = b64(format!("value-{i:08}-{}", "x".repeat(64)).as_bytes());
                    let v = post(
                        &mut c,
                        "/v3/kv/put",
                        &format!(r#"{{"key":"{key}","value":"{val}"}}"#),
                    );
                    let rev: i64 = v["header"]["revision"].as_str().unwrap().parse().unwrap();
                    acks.push((Instant::now(), (rev + offset) as u64));
                }
                acks
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}
