//! Test certificates, made at test time with rcgen (never committed), and
//! a DNS-over-TLS client on rustls for the tests.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The name the server certificate carries (besides IP 127.0.0.1).
pub const SERVER_NAME: &str = "primary.test";

/// A CA, a server certificate for `primary.test` and 127.0.0.1, and a
/// client certificate, all signed by the CA, as PEM files in a temporary
/// folder (`ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`).
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: Certificate,
    ca_key: KeyPair,
}

impl Pki {
    pub fn new() -> Pki {
        // Each CA its own name, so a stranger's is an unknown issuer.
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(
            DnType::CommonName,
            format!(
                "tandem test CA {} {}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        );
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = params.self_signed(&ca_key).expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("ca.pem");
        let pki = Pki { dir, ca, ca_key };
        pki.issue("server", &[SERVER_NAME, "127.0.0.1"]);
        pki.issue("client", &["secondary.test"]);
        pki
    }

    /// (Re)issues `NAME.pem` and `NAME.key` with a fresh key for `names`
    /// (DNS names or IP addresses), put in place by rename as a renewal
    /// would be.
    pub fn issue(&self, name: &str, names: &[&str]) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("certificate");
        let d = self.dir.path();
        for (file, text) in [
            (format!("{name}.key"), key.serialize_pem()),
            (format!("{name}.pem"), cert.pem()),
        ] {
            let tmp = d.join(format!("{file}.new"));
            std::fs::write(&tmp, text).expect("write");
            std::fs::rename(&tmp, d.join(file)).expect("rename");
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn p(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }

    /// `[server]` lines for a TLS listener on `port` with this PKI's server
    /// certificate (and its CA for client certificates when `mutual`).
    pub fn server_lines(&self, port: u16, mutual: bool) -> String {
        let mut s = format!(
            "tls_listen = [\"127.0.0.1:{port}\"]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n",
            self.p("server.pem"),
            self.p("server.key")
        );
        if mutual {
            s += &format!("tls_client_ca = \"{}\"\n", self.p("ca.pem"));
        }
        s
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(&self.path("ca.pem")) {
            roots.add(c).expect("CA certificate");
        }
        roots
    }

    /// A DoT client config trusting this CA, offering `alpn`, showing the
    /// client certificate when `client_cert`.
    pub fn client_config(&self, alpn: &[&[u8]], client_cert: bool) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(self.roots());
        let mut c = if client_cert {
            use rustls_pki_types::pem::PemObject;
            let key = rustls_pki_types::PrivateKeyDer::from_pem_file(self.path("client.key"))
                .expect("client key");
            b.with_client_auth_cert(certs(&self.path("client.pem")), key)
                .expect("client cert")
        } else {
            b.with_no_client_auth()
        };
        c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Arc::new(c)
    }

    /// A TLS connection to `addr`, handshake done; Err with rustls's reason
    /// when the handshake fails.
    pub fn connect(
        &self,
        addr: SocketAddr,
        alpn: &[&[u8]],
        client_cert: bool,
    ) -> Result<TlsStream, String> {
        let cfg = self.client_config(alpn, client_cert);
        let name = rustls_pki_types::ServerName::try_from(SERVER_NAME).expect("name");
        let conn = rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
        }
        Ok(s)
    }
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

pub fn certs(path: &Path) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(path)
        .expect("pem file")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates")
}
