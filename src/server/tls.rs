//! The listener's TLS settings: the certificate chain and key from PEM files, reloaded on
//! SIGHUP.
//!
//! TLS 1.3 and 1.2 with rustls and the `ring` provider; RSA, ECDSA and Ed25519 keys (PKCS#8,
//! or the PKCS#1/SEC1 forms OpenSSL writes). ALPN answers `http/1.1`, the protocol a
//! WebSocket handshake rides on. A reload builds a whole new configuration first and swaps
//! it in only if that worked: a bad new file leaves the old certificate serving, and says
//! why in the log. Connections already open keep the configuration they started with.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

/// Where the listener's certificate chain and private key are (`[tls]`, `--tls-cert`,
/// `--tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key: RSA, ECDSA (P-256, P-384) or Ed25519.
    pub key: PathBuf,
}

/// The TLS configuration new connections use; replaced whole on reload.
pub(super) struct TlsAcceptor {
    files: TlsFiles,
    config: Arc<ServerConfig>,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Loads the files; the error names the file and what is wrong with it.
    pub(super) fn load(files: &TlsFiles) -> io::Result<Self> {
        let config = server_config(files).map_err(io::Error::other)?;
        Ok(Self {
            files: files.clone(),
            config: Arc::new(config),
        })
    }

    /// The rustls state of a new connection.
    pub(super) fn accept(&self) -> io::Result<ServerConnection> {
        ServerConnection::new(Arc::clone(&self.config)).map_err(io::Error::other)
    }

    /// Reads the files again; on any error keeps the configuration in use.
    pub(super) fn reload(&mut self) -> Result<(), String> {
        self.config = Arc::new(server_config(&self.files)?);
        Ok(())
    }
}

impl super::Server {
    /// SIGHUP: reloads the TLS files; new handshakes use them, open connections keep theirs.
    pub(super) fn reload_tls(&mut self) {
        let Some(tls) = &mut self.tls else {
            return log::info!("SIGHUP: no TLS configured, nothing to reload");
        };
        match tls.reload() {
            Ok(()) => log::info!(
                "SIGHUP: TLS certificate {} reloaded",
                tls.files.cert.display()
            ),
            Err(e) => log::error!("SIGHUP: {e}; still serving the previous certificate"),
        }
    }
}

/// Builds a rustls server configuration from the PEM files.
fn server_config(files: &TlsFiles) -> Result<ServerConfig, String> {
    let cert_name = files.cert.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect)
        .map_err(|e| format!("TLS certificate {cert_name}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate {cert_name}: no PEM CERTIFICATE block in it"
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "TLS key {}: {e} (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            files.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "TLS certificate {cert_name} with key {}: {e}",
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("wsloop-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let good_cert = write(&dir, "cert.pem", &cert.cert.pem());
        let good_key = write(&dir, "key.pem", &cert.signing_key.serialize_pem());
        let empty = write(&dir, "empty.pem", "");
        let junk = write(
            &dir,
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n",
        );
        let missing = dir.join("missing.pem");
        let files = |cert: &PathBuf, key: &PathBuf| TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        };
        assert!(TlsAcceptor::load(&files(&good_cert, &good_key)).is_ok());
        for (cert, key, needle) in [
            (&missing, &good_key, "missing.pem"),
            (&empty, &good_key, "no PEM CERTIFICATE"),
            (&junk, &good_key, "junk.pem"),
            (&good_cert, &empty, "empty.pem"),
            (&good_cert, &good_cert, "cert.pem"),
        ] {
            let error = TlsAcceptor::load(&files(cert, key))
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{needle:?} not in {error:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
