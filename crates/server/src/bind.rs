//! The bind-address policy: the snapshot protocol has no authentication, so only loopback
//! addresses are allowed unless the operator explicitly accepts the risk.

use std::net::SocketAddr;

/// A bind address refused by the policy.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to bind {addr}: without TLS client certificates the snapshot protocol has no \
     authentication and the meta backup carries password hashes; bind a loopback address, \
     configure --tls-cert/--tls-key/--tls-client-ca, or pass --insecure to serve {addr} anyway"
)]
pub struct BindRefused {
    /// The refused address.
    pub addr: SocketAddr,
}

/// Allows `addr` if it is a loopback address, or `authenticated` (TLS with client
/// certificates) or `insecure` (the operator's explicit override) is set.
pub fn check_bind(
    addr: SocketAddr,
    authenticated: bool,
    insecure: bool,
) -> Result<(), BindRefused> {
    if insecure || authenticated || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(BindRefused { addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_without_insecure() {
        let ok = |s: &str, a, i| check_bind(s.parse().unwrap(), a, i).is_ok();
        assert!(ok("127.0.0.1:8088", false, false));
        assert!(ok("[::1]:8088", false, false));
        assert!(!ok("0.0.0.0:8088", false, false));
        assert!(!ok("[::]:8088", false, false));
        assert!(!ok("10.1.2.3:8088", false, false));
        assert!(ok("0.0.0.0:8088", true, false));
        assert!(ok("0.0.0.0:8088", false, true));
    }
}
