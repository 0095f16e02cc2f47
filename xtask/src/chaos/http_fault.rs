//! The HTTP-aware fault of the chaos proxy (in front of the S3 server): one request per
//! connection, and a seeded fraction of requests answered with S3's 500 InternalError or
//! 503 SlowDown without reaching the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::proxy::Mode;

/// Largest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;
/// Longest the proxy waits for a request head or for a failed request's body.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// Serves one client connection under [`Mode::HttpError`]; `requests` counts requests seen,
/// `failed` those answered with the error.
pub(super) async fn serve(
    mut client: TcpStream,
    target: SocketAddr,
    mode: Mode,
    requests: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) {
    let Mode::HttpError {
        status,
        per_mille,
        seed,
    } = mode
    else {
        return;
    };
    let Ok(Some((head, rest))) = tokio::time::timeout(READ_LIMIT, read_head(&mut client)).await
    else {
        return;
    };
    let n = requests.fetch_add(1, Ordering::Relaxed);
    let chunked = head_value(&head, "transfer-encoding").is_some();
    if !chunked && fails(seed, n, per_mille) {
        failed.fetch_add(1, Ordering::Relaxed);
        // The body is read first: closing with unread bytes would send a reset, not the reply.
        let len = head_value(&head, "content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let left = len.saturating_sub(rest.len() as u64);
        let _ = tokio::time::timeout(READ_LIMIT, drain(&mut client, left)).await;
        let _ = client.write_all(&error_reply(status)).await;
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    if server.write_all(&close_head(&head)).await.is_err() || server.write_all(&rest).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// Reads up to the end of the request head: (head including the blank line, bytes after it).
async fn read_head(c: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(p + 4);
            return Some((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        match c.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The value of header `name` (lower case) in a request head.
fn head_value(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
    })
}

/// The head with its `Connection` header replaced by `Connection: close`, so the next
/// request comes on a new connection and meets the fault again.
fn close_head(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let is_conn = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !is_conn {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

async fn drain(c: &mut TcpStream, mut left: u64) {
    let mut chunk = vec![0u8; 64 * 1024];
    while left > 0 {
        match c.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}

/// S3's reply for `status`: 503 SlowDown or 500 InternalError.
fn error_reply(status: u16) -> Vec<u8> {
    let (reason, code, msg) = if status == 503 {
        ("Slow Down", "SlowDown", "Please reduce your request rate.")
    } else {
        (
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{msg}</Message><RequestId>chaos</RequestId></Error>"
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Whether request `n` (counted from the proxy's start) is failed under `seed`.
fn fails(seed: u64, n: u64, per_mille: u64) -> bool {
    mix(seed ^ n.wrapping_mul(0x9E37)) % 1000 < per_mille
}

/// splitmix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_head_replaces_keep_alive_and_keeps_other_headers() {
        let head = b"PUT /chaos/x HTTP/1.1\r\nHost: h\r\nconnection: keep-alive\r\nContent-Length: 3\r\n\r\n";
        let out = String::from_utf8(close_head(head)).unwrap_or_default();
        assert_eq!(
            out,
            "PUT /chaos/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(head_value(head, "content-length").as_deref(), Some("3"));
        assert_eq!(head_value(head, "transfer-encoding"), None);
    }

    #[test]
    fn error_replies_are_s3_errors_with_exact_lengths() {
        for (status, code) in [(503, "SlowDown"), (500, "InternalError")] {
            let r = String::from_utf8(error_reply(status)).unwrap_or_default();
            assert!(r.starts_with(&format!("HTTP/1.1 {status} ")), "{r}");
            let (head, body) = r.split_once("\r\n\r\n").unwrap_or_default();
            assert!(body.contains(&format!("<Code>{code}</Code>")), "{body}");
            assert!(
                head.contains(&format!("Content-Length: {}", body.len())),
                "{head}"
            );
        }
    }

    #[test]
    fn about_the_asked_fraction_of_requests_fails() {
        let failed = (0..10_000u64).filter(|n| fails(7, *n, 300)).count();
        assert!((2_700..3_300).contains(&failed), "{failed}");
    }
}
