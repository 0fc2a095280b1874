//! JWT verification (and minting, for development) with `jsonwebtoken`.
//!
//! The algorithm is pinned by configuration: the token's header must name exactly that
//! algorithm, so `alg: none` and algorithm confusion (an RS256 public key used as an HS256
//! secret) are refused. `jsonwebtoken` checks the signature only; the claims (`exp`, `nbf`,
//! `iss`, `aud`, the user id) are checked by the private `claims` module
//! (`src/auth/claims.rs`), once, with the time given.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::claims::ClaimRules;
use super::{AuthError, Identity};

/// How tokens are checked.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    rules: ClaimRules,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Where the verification key comes from.
#[derive(Debug, Clone)]
pub enum KeySource<'a> {
    /// An HS256 shared secret.
    Secret(&'a [u8]),
    /// A PEM public key for RS256, ES256 or EdDSA.
    PublicPem(&'a [u8]),
}

/// Verification settings.
#[derive(Debug, Clone)]
pub struct JwtSettings<'a> {
    /// The one accepted algorithm name: `HS256`, `RS256`, `ES256` or `EdDSA`.
    pub alg: &'a str,
    /// The key.
    pub key: KeySource<'a>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Required issuer, if any.
    pub issuer: Option<&'a str>,
    /// Required audience, if any.
    pub audience: Option<&'a str>,
    /// The claim that holds the user id.
    pub user_claim: &'a str,
    /// The id the server speaks as (the publish API's `sender_id`), which no token may claim.
    pub server_id: &'a str,
}

/// Parses an algorithm name, allowing only the ones wsloop supports.
pub fn parse_algorithm(alg: &str) -> Result<Algorithm, String> {
    match alg {
        "HS256" => Ok(Algorithm::HS256),
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(format!(
            "unsupported JWT algorithm `{other}` (use HS256, RS256, ES256 or EdDSA)"
        )),
    }
}

impl JwtVerifier {
    /// Builds a verifier; fails on an unknown algorithm or a key that does not fit it.
    pub fn new(settings: &JwtSettings<'_>) -> Result<Self, String> {
        let alg = parse_algorithm(settings.alg)?;
        let key = match (alg, &settings.key) {
            (Algorithm::HS256, KeySource::Secret(secret)) if !secret.is_empty() => {
                DecodingKey::from_secret(secret)
            }
            (Algorithm::HS256, _) => return Err("HS256 needs a non-empty shared secret".into()),
            (Algorithm::RS256, KeySource::PublicPem(pem)) => {
                DecodingKey::from_rsa_pem(pem).map_err(|e| format!("RS256 public key: {e}"))?
            }
            (Algorithm::ES256, KeySource::PublicPem(pem)) => {
                DecodingKey::from_ec_pem(pem).map_err(|e| format!("ES256 public key: {e}"))?
            }
            (Algorithm::EdDSA, KeySource::PublicPem(pem)) => {
                DecodingKey::from_ed_pem(pem).map_err(|e| format!("EdDSA public key: {e}"))?
            }
            (alg, _) => return Err(format!("{alg:?} needs a PEM public key file")),
        };
        // The signature and the algorithm only: every claim is checked by `ClaimRules`, so
        // that a claim is read one way for the handshake, `refresh` and the expiry timer.
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let rules = ClaimRules {
            leeway: settings.leeway.as_secs(),
            issuer: settings.issuer.map(str::to_owned),
            audience: settings.audience.map(str::to_owned),
            user_claim: settings.user_claim.to_owned(),
            server_id: settings.server_id.to_owned(),
        };
        Ok(Self {
            key,
            validation,
            rules,
        })
    }

    /// The clock skew allowed on `exp` and `nbf`, in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.rules.leeway
    }

    /// Verifies `token` at `now` and reads the identity it carries.
    pub fn verify_at(&self, token: &str, now: SystemTime) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| classify(e.kind()))?;
        self.rules.check(&data.claims, unix_secs(now))
    }

    /// Verifies `token` now (the system clock); see [`JwtVerifier::verify_at`].
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.verify_at(token, SystemTime::now())
    }
}

/// Seconds since the Unix epoch (0 for a clock set before it).
pub(crate) fn unix_secs(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Maps `jsonwebtoken`'s error to the reason the client is told.
fn classify(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => AuthError::WrongAlgorithm,
        _ => AuthError::Malformed,
    }
}

/// What to put in a development token.
#[derive(Debug, Clone)]
pub struct MintRequest<'a> {
    /// The user id (written to `user_id` and `sub`).
    pub user: &'a str,
    /// How long the token is valid.
    pub ttl: Duration,
    /// Algorithm name.
    pub alg: &'a str,
    /// HS256 secret, or PEM private key for the other algorithms.
    pub key: &'a [u8],
    /// Rooms the token grants (`rooms` claim), if any.
    pub rooms: &'a [String],
    /// `aud`, if any.
    pub audience: Option<&'a str>,
    /// `iss`, if any.
    pub issuer: Option<&'a str>,
}

/// Signs a token (`wsloop token`).
pub fn mint(req: &MintRequest<'_>, now: SystemTime) -> Result<String, String> {
    let alg = parse_algorithm(req.alg)?;
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(req.key),
        Algorithm::RS256 => {
            EncodingKey::from_rsa_pem(req.key).map_err(|e| format!("RS256 private key: {e}"))?
        }
        Algorithm::ES256 => {
            EncodingKey::from_ec_pem(req.key).map_err(|e| format!("ES256 private key: {e}"))?
        }
        _ => EncodingKey::from_ed_pem(req.key).map_err(|e| format!("EdDSA private key: {e}"))?,
    };
    let iat = unix_secs(now);
    let mut claims = Map::new();
    claims.insert("user_id".into(), Value::String(req.user.into()));
    claims.insert("sub".into(), Value::String(req.user.into()));
    claims.insert("iat".into(), iat.into());
    claims.insert("exp".into(), iat.saturating_add(req.ttl.as_secs()).into());
    if !req.rooms.is_empty() {
        claims.insert(
            "rooms".into(),
            req.rooms.iter().cloned().map(Value::String).collect(),
        );
    }
    if let Some(aud) = req.audience {
        claims.insert("aud".into(), aud.into());
    }
    if let Some(iss) = req.issuer {
        claims.insert("iss".into(), iss.into());
    }
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).map_err(|e| e.to_string())
}
