//! `wss://` for the clients: which certificates to trust, and the rustls client settings.
//!
//! By default the server's certificate must chain to a root in the operating system's
//! trust store (read with `rustls-native-certs`: on Debian, `/etc/ssl/certs` from the
//! `ca-certificates` package), so an operator's own CA added there works too. `--ca FILE`
//! trusts the certificates in one PEM file instead (a test CA, a private CA). `--insecure`
//! accepts any certificate, only when asked for by name: the connection is then encrypted
//! but its peer unauthenticated. TLS 1.3 and 1.2 with the `ring` provider, ALPN `http/1.1`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::ClientError;

/// Which server certificates a `wss://` client accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsTrust {
    /// Certificates that chain to the operating system's roots, for the URL's host name.
    #[default]
    System,
    /// Certificates that chain to one of the CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Any certificate (`--insecure`): encrypted, but the server is not authenticated.
    Insecure,
}

/// The rustls client settings for `trust`; the error says which file or store failed.
pub fn client_config(trust: &TlsTrust) -> Result<Arc<ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    let mut config = match trust {
        TlsTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        _ => builder
            .with_root_certificates(roots(trust)?)
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The server name to verify: the URL's host (an IP address is checked against the
/// certificate's IP SANs).
pub fn server_name(host: &str) -> Result<ServerName<'static>, ClientError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| ClientError::Tls(format!("{host}: not a valid TLS server name: {e}")))
}

fn roots(trust: &TlsTrust) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    match trust {
        TlsTrust::CaFile(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect)
                .map_err(|e| ClientError::Tls(format!("--ca {}: {e}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                let shown = path.display();
                return Err(ClientError::Tls(format!(
                    "--ca {shown}: no CA certificate in it"
                )));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(ClientError::Tls(
                    "no root certificates in the system store (install ca-certificates, or \
                     pass --ca FILE)"
                        .into(),
                ));
            }
        }
    }
    Ok(roots)
}

/// `--insecure`: accepts every certificate, but still checks the handshake signatures (so
/// the session is at least bound to the key the server presented).
#[derive(Debug)]
struct AcceptAny(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
