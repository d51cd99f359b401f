//! Test certificates, made at test time with the `openssl` command (never
//! committed), and a DNS-over-TLS client on rustls for the tests.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The name the server certificate carries (besides IP 127.0.0.1).
pub const SERVER_NAME: &str = "primary.test";

/// A CA, a server certificate for `primary.test` and 127.0.0.1, and a
/// client certificate, all signed by the CA, in a temporary folder.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (Debian package openssl) is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=tandem test CA",
            ],
        );
        let pki = Pki { dir };
        pki.issue("server", &format!("DNS:{SERVER_NAME},IP:127.0.0.1"));
        pki.issue("client", "DNS:secondary.test");
        pki
    }

    /// (Re)issues `NAME.pem` and `NAME.key` with a fresh key.
    pub fn issue(&self, name: &str, san: &str) {
        let d = self.dir.path();
        let (key, csr, pem, ext) = (
            format!("{name}.key.new"),
            format!("{name}.csr"),
            format!("{name}.pem.new"),
            format!("{name}.ext"),
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        std::fs::write(
            d.join(&ext),
            format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .expect("ext file");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        // Into place by rename, as a certificate renewal would do it.
        std::fs::rename(d.join(&key), d.join(format!("{name}.key"))).expect("rename key");
        std::fs::rename(d.join(&pem), d.join(format!("{name}.pem"))).expect("rename cert");
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
