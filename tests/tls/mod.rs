//! Test certificates, made in the test: a CA and a server certificate signed by it, for
//! `localhost` and `127.0.0.1`, with an ECDSA P-256, Ed25519 or RSA key (RSA keys come from
//! `openssl genpkey`, since `ring` cannot generate them). Nothing here is ever committed.

#![allow(dead_code)] // Each test crate uses a different subset of these helpers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ED25519, PKCS_RSA_SHA256, SignatureAlgorithm,
};

/// The key types a server certificate can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// ECDSA on P-256.
    Ecdsa,
    /// Ed25519.
    Ed25519,
    /// RSA 2048.
    Rsa,
}

fn key_pair(kind: KeyType, dir: &Path) -> KeyPair {
    let alg: &'static SignatureAlgorithm = match kind {
        KeyType::Ecdsa => &PKCS_ECDSA_P256_SHA256,
        KeyType::Ed25519 => &PKCS_ED25519,
        KeyType::Rsa => return rsa_key(dir),
    };
    KeyPair::generate_for(alg).expect("generate a key")
}

fn rsa_key(dir: &Path) -> KeyPair {
    let path = dir.join("rsa-key.pem");
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (Debian package openssl) makes the RSA test key");
    assert!(status.success(), "openssl genpkey failed");
    let pem = fs::read_to_string(&path).unwrap();
    KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256).expect("RSA key")
}

/// A test CA: its certificate in `ca.pem`, and what signs server certificates.
pub(crate) struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate (PEM file), for `--ca`.
    pub(crate) cert_file: PathBuf,
    /// The CA certificate, PEM.
    pub(crate) pem: String,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `dir/NAME-ca.pem`.
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("wsloop test CA {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_file = dir.join(format!("{name}-ca.pem"));
        fs::write(&cert_file, cert.pem()).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            cert_file,
            pem: cert.pem(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1 with a `kind` key, written to
    /// `dir/STEM-cert.pem` and `dir/STEM-key.pem`; returns (cert file, key file).
    pub(crate) fn server_cert(&self, dir: &Path, stem: &str, kind: KeyType) -> (PathBuf, PathBuf) {
        self.server_cert_for(dir, stem, kind, &["localhost", "127.0.0.1"])
    }

    /// [`TestCa::server_cert`] for the given names (DNS names or IP addresses).
    pub(crate) fn server_cert_for(
        &self,
        dir: &Path,
        stem: &str,
        kind: KeyType,
        names: &[&str],
    ) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = key_pair(kind, dir);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let cert_file = dir.join(format!("{stem}-cert.pem"));
        let key_file = dir.join(format!("{stem}-key.pem"));
        fs::write(&cert_file, cert.pem()).unwrap();
        fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

/// Client options that trust `ca` (and nothing else), with a short connect timeout.
pub(crate) fn trusting(ca: &TestCa) -> wsloop::client::ClientOptions {
    wsloop::client::ClientOptions {
        tls: wsloop::client::tls::TlsTrust::CaFile(ca.cert_file.clone()),
        connect_timeout: std::time::Duration::from_secs(5),
        ..wsloop::client::ClientOptions::default()
    }
}

/// Sends `text` and asserts it comes back as it went.
pub(crate) fn echo_once(client: &mut wsloop::client::Client, text: &str) {
    client.send_text(text).unwrap();
    assert_eq!(
        client.recv().unwrap(),
        wsloop::client::Message::Text(text.into())
    );
}
