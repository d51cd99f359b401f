//! TLS for zone transfers (XoT, RFC 9103) and queries (DoT, RFC 7858):
//! the server's and the transfer client's rustls settings, built from PEM
//! files. TLS 1.3 only — every peer tried (BIND 9.18 and dig through
//! OpenSSL 3, kdig through GnuTLS, dnsperf) speaks it, and RFC 9103 §9
//! asks for 1.3. ALPN "dot" on both sides (RFC 9103 §7.1; BIND's client
//! insists on it). The crypto is ring, already in the build for TSIG.

use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;

/// The ALPN token of DNS over TLS and of XoT.
pub const ALPN_DOT: &[u8] = b"dot";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("{0}")]
    Settings(String),
}

fn file_error(path: &Path, why: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file (a chain: the leaf first).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

/// A root store of the CAs in `path`.
fn roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certificates(path)? {
        store.add(c).map_err(|e| file_error(path, e))?;
    }
    Ok(Arc::new(store))
}

/// The system's trusted CAs (for a primary's certificate when no `tls_ca`
/// is given).
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsError::Settings(
            "no system CA certificates found; set tls_ca".into(),
        ));
    }
    Ok(Arc::new(store))
}

/// The listener's settings. With `client_ca`, a client may present a
/// certificate from that CA (it must, to transfer a zone whose
/// `transfer_tls` is required); clients without one still get queries
/// answered.
pub fn server_config(
    certificate: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = certificates(certificate)?;
    let key = private_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Settings(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| file_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| file_error(certificate, format!("certificate and key: {e}")))?;
    cfg.alpn_protocols = vec![ALPN_DOT.to_vec()];
    Ok(Arc::new(cfg))
}

/// How a secondary reaches its TLS primaries: whom it trusts, which name
/// the primary's certificate must carry (else its address), and the
/// client certificate it shows for mutual TLS.
#[derive(Clone)]
pub struct Connector {
    pub config: Arc<ClientConfig>,
    pub name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("name", &self.name)
            .finish()
    }
}

impl Connector {
    pub fn new(
        ca: Option<&Path>,
        name: Option<&str>,
        certificate: Option<(&Path, &Path)>,
    ) -> Result<Connector, TlsError> {
        let roots = match ca {
            Some(p) => roots(p)?,
            None => system_roots()?,
        };
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TlsError::Settings(e.to_string()))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Settings(e.to_string()))?
            .with_webpki_verifier(verifier);
        let mut config = match certificate {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(certificates(cert)?, private_key(key)?)
                .map_err(|e| file_error(cert, format!("certificate and key: {e}")))?,
        };
        config.alpn_protocols = vec![ALPN_DOT.to_vec()];
        let name = name
            .map(|n| {
                ServerName::try_from(n.trim_end_matches('.').to_string())
                    .map_err(|e| TlsError::Settings(format!("\"{n}\": {e}")))
            })
            .transpose()?;
        Ok(Connector {
            config: Arc::new(config),
            name,
        })
    }

    /// The name to verify a primary at `addr` against.
    pub fn server_name(&self, addr: std::net::SocketAddr) -> ServerName<'static> {
        self.name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
    }
}
