//! Optional TLS for the snapshot port and the HTTP API (rustls, aws-lc-rs provider) with
//! client-certificate authentication: with a client CA configured, the handshake — and so any
//! request — fails for a client without a certificate signed by that CA.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

/// Files that configure TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA bundle (PEM) that client certificates must chain to; `None` = no client auth.
    pub client_ca: Option<PathBuf>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("reading {path}: {msg}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// The client CA bundle is unusable.
    #[error("client CA: {0}")]
    ClientCa(String),
    /// rustls refused the configuration (e.g. key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A ready TLS acceptor for [`crate::SnapshotServer::with_tls`] and [`crate::http::serve_https`].
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
    client_auth: bool,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

fn pem_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(pem_err(path, "no certificate found"));
    }
    Ok(certs)
}

impl TlsConfig {
    /// Loads certificate, key and optional client CA from PEM files.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let chain = certs(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pem_err(&files.key, e))?;
        let roots = files.client_ca.as_deref().map(certs).transpose()?;
        Self::from_der(chain, key, roots)
    }

    /// Builds the acceptor from DER values; `client_roots` enables client authentication.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_roots: Option<Vec<CertificateDer<'static>>>,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let client_auth = client_roots.is_some();
        let config = match client_roots {
            Some(roots) => {
                let mut store = rustls::RootCertStore::empty();
                for c in roots {
                    store
                        .add(c)
                        .map_err(|e| TlsError::ClientCa(e.to_string()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
                        .build()
                        .map_err(|e| TlsError::ClientCa(e.to_string()))?;
                builder
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(chain, key)?
            }
            None => builder.with_no_client_auth().with_single_cert(chain, key)?,
        };
        Ok(TlsConfig {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            client_auth,
        })
    }

    /// Whether clients must present a certificate signed by the configured CA.
    pub fn authenticates_clients(&self) -> bool {
        self.client_auth
    }

    /// Runs the server side of the handshake.
    pub(crate) async fn accept(
        &self,
        stream: tokio::net::TcpStream,
    ) -> io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
        self.acceptor.accept(stream).await
    }
}
