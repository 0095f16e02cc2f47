//! Why a connection to an etcd endpoint failed, in the user's terms: TLS failures name the
//! certificate problem and the flag that fixes it instead of a transport error chain.

use std::error::Error as _;

/// How the client spoke to the endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tls {
    /// TLS was configured (`--cacert` or `--cert`/`--key`).
    pub on: bool,
    /// A client certificate was given.
    pub identity: bool,
}

/// One line for `e`: the innermost cause, with a fix when it is a TLS problem.
pub(crate) fn describe(e: &etcd_client::Error, tls: Tls) -> String {
    let cause = innermost(e);
    let hint = hint_for(&cause, tls);
    match hint {
        Some(hint) => format!("TLS handshake failed: {hint} ({cause})"),
        None => e.to_string(),
    }
}

/// The fix for `cause`; without a client certificate, a refusal or a close is most likely
/// about the missing one.
fn hint_for(cause: &str, tls: Tls) -> Option<&'static str> {
    let closed = closed_hint(cause, tls);
    if tls.on && !tls.identity && closed.is_some() {
        closed
    } else {
        tls_hint(cause).or(closed)
    }
}

/// With TLS 1.3 the server checks the client certificate after the client considers the
/// handshake done: a refused certificate shows up as the connection closing under the
/// first request.
fn closed_hint(cause: &str, tls: Tls) -> Option<&'static str> {
    let closed = [
        "broken pipe",
        "reset",
        "fatal alert",
        "connection closed",
        "eof",
    ]
    .iter()
    .any(|k| cause.to_ascii_lowercase().contains(k));
    match (closed, tls.on, tls.identity) {
        (true, true, false) => Some(
            "etcd closed the connection and no client certificate was given; if etcd runs \
             with --client-cert-auth, pass --cert and --key",
        ),
        (true, true, true) => Some(
            "etcd closed the connection after the handshake; it may have refused the client \
             certificate: pass --cert and --key signed by the CA in etcd's --trusted-ca-file",
        ),
        _ => None,
    }
}

/// The deepest message in the error's source chain (tonic nests the TLS error there).
fn innermost(e: &etcd_client::Error) -> String {
    let (mut msg, mut cur): (String, Option<&(dyn std::error::Error + 'static)>) = match e {
        etcd_client::Error::GRpcStatus(s) => (s.message().to_string(), s.source()),
        etcd_client::Error::TransportError(t) => (t.to_string(), t.source()),
        other => (other.to_string(), None),
    };
    while let Some(c) = cur {
        msg = c.to_string();
        cur = c.source();
    }
    msg
}

/// The fix for a TLS failure described by `cause`, if it is one.
fn tls_hint(cause: &str) -> Option<&'static str> {
    let has = |k: &str| cause.contains(k);
    if has("UnknownIssuer") || has("BadSignature") {
        Some(
            "the member's certificate is not signed by the CA given with --cacert; \
             pass the CA that signed etcd's --cert-file",
        )
    } else if has("NotValidForName") {
        Some(
            "the member's certificate does not name the endpoint's host; use a host name or \
             IP address its certificate lists",
        )
    } else if has("Expired") || has("NotValidYet") {
        Some("the member's certificate is outside its validity period; check clocks or renew it")
    } else if has("CertificateRequired") || has("BadCertificate") || has("UnknownCA") {
        Some(
            "etcd refused the client certificate; pass --cert and --key signed by the CA in \
             etcd's --trusted-ca-file",
        )
    } else if has("InvalidContentType") || has("CorruptMessage") {
        Some("the endpoint does not speak TLS; use an http:// endpoint")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{Tls, closed_hint, tls_hint};

    #[test]
    fn tls_causes_get_their_fix() {
        let ca = tls_hint("invalid peer certificate: UnknownIssuer").unwrap();
        assert!(ca.contains("--cacert"));
        let client = tls_hint("received fatal alert: CertificateRequired").unwrap();
        assert!(client.contains("--cert"));
        assert!(tls_hint("received fatal alert: BadCertificate").is_some());
        assert!(tls_hint("invalid peer certificate: NotValidForName").is_some());
        assert!(tls_hint("connection refused").is_none());
        let (plain, anon, with_id) = (
            Tls {
                on: false,
                identity: false,
            },
            Tls {
                on: true,
                identity: false,
            },
            Tls {
                on: true,
                identity: true,
            },
        );
        assert!(closed_hint("broken pipe", plain).is_none());
        assert!(
            closed_hint("stream closed because of a broken pipe", anon)
                .unwrap()
                .contains("no client certificate")
        );
        assert!(
            closed_hint("connection reset by peer", with_id)
                .unwrap()
                .contains("--trusted-ca-file")
        );
        assert!(closed_hint("connection refused", anon).is_none());
        let alert = "received fatal alert: BadCertificate";
        let no_cert = super::hint_for(alert, anon).unwrap();
        assert!(no_cert.contains("no client certificate"));
        let refused = super::hint_for(alert, with_id).unwrap();
        assert!(refused.contains("refused the client certificate"));
        assert!(super::hint_for("connection refused", with_id).is_none());
    }
}
