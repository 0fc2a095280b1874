//! Who may connect: JWT authentication and origin checks, both before the upgrade.
//!
//! A refused handshake never becomes a WebSocket: a missing or bad token gets `401` with a
//! short plain-text reason, a disallowed origin `403`. Tokens are read from `?token=` or
//! `Authorization: Bearer`, and never logged (query strings are redacted in logs).

mod claims;
pub mod jwt;
pub mod origin;
pub mod user_id;

use std::fmt;
use std::time::SystemTime;

use crate::protocol::handshake::RequestHead;
pub use claims::MAX_TIMESTAMP;
pub(crate) use claims::time_left;
pub use jwt::{JwtSettings, JwtVerifier, KeySource, MintRequest, mint};
pub use origin::{OriginError, OriginPolicy};

/// Who a verified client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id.
    pub user_id: String,
    /// When the token expires (`exp`, Unix seconds, at most [`MAX_TIMESTAMP`]): every
    /// accepted token has one.
    pub expires_at: u64,
    /// Rooms or room patterns the token grants (`rooms` claim).
    pub rooms: Vec<String>,
}

/// Why authentication failed; each is answered with 401 and [`AuthError::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No token in `?token=` or `Authorization: Bearer`.
    MissingToken,
    /// Not a well-formed JWT (or claims of the wrong type).
    Malformed,
    /// The signature does not verify with the configured key.
    BadSignature,
    /// The token's algorithm is not the configured one (including `none`).
    WrongAlgorithm,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `exp` is not a whole number of seconds up to [`MAX_TIMESTAMP`].
    BadExpiry,
    /// `nbf` is not a whole number of seconds up to [`MAX_TIMESTAMP`].
    BadNotBefore,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `aud` does not match.
    WrongAudience,
    /// `auth.audience` is configured and the token has no `aud`.
    MissingAudience,
    /// `iss` does not match.
    WrongIssuer,
    /// `auth.issuer` is configured and the token has no `iss`.
    MissingIssuer,
    /// The token has no `exp`.
    MissingExpiry,
    /// Neither the user claim nor `sub` holds a usable user id.
    MissingUserId,
    /// The user id is not 1–64 printable ASCII characters without spaces.
    BadUserId,
    /// The user id is one the server uses itself (the API's sender id, a guest id).
    ReservedUserId,
}

impl AuthError {
    /// The plain-text reason sent with the 401.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::MissingToken => "missing token",
            Self::Malformed => "malformed token",
            Self::BadSignature => "invalid token signature",
            Self::WrongAlgorithm => "token algorithm not accepted",
            Self::Expired => "token expired",
            Self::BadExpiry => "token exp must be a whole number of seconds up to 253402300799",
            Self::BadNotBefore => "token nbf must be a whole number of seconds up to 253402300799",
            Self::NotYetValid => "token not yet valid",
            Self::WrongAudience => "token audience not accepted",
            Self::MissingAudience => "token has no audience (aud)",
            Self::WrongIssuer => "token issuer not accepted",
            Self::MissingIssuer => "token has no issuer (iss)",
            Self::MissingExpiry => "token has no expiry",
            Self::MissingUserId => "token has no user id",
            Self::BadUserId => {
                "token user id must be 1-64 printable ASCII characters without spaces"
            }
            Self::ReservedUserId => "token user id is reserved by the server",
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for AuthError {}

/// How handshakes are authenticated.
#[derive(Debug, Clone, Default)]
pub enum Authenticator {
    /// No authentication: the user id comes from `?user_id=` or is assigned.
    #[default]
    None,
    /// A valid JWT is required.
    Jwt(Box<JwtVerifier>),
    /// A JWT is optional: with one, the client is its user (a bad one still gets 401);
    /// without, it is an anonymous guest, which room rules can tell apart
    /// (`authenticated` versus `anyone`).
    OptionalJwt(Box<JwtVerifier>),
}

impl Authenticator {
    /// Authenticates a request head at `now`. `Ok(None)` means no identity: authentication
    /// is off, or optional and no token was given.
    pub fn authenticate(
        &self,
        head: &RequestHead,
        now: SystemTime,
    ) -> Result<Option<Identity>, AuthError> {
        match self {
            Self::None => Ok(None),
            Self::Jwt(verifier) => {
                let token = token_of(head).ok_or(AuthError::MissingToken)?;
                verifier.verify_at(&token, now).map(Some)
            }
            Self::OptionalJwt(verifier) => match token_of(head) {
                Some(token) => verifier.verify_at(&token, now).map(Some),
                None => Ok(None),
            },
        }
    }

    /// Whether a client without a token is an anonymous guest (not trusted as any user).
    pub fn anonymous_is_guest(&self) -> bool {
        matches!(self, Self::OptionalJwt(_))
    }

    /// Verifies a token given outside the handshake (`refresh`) at `now`, by the same
    /// rules as at the handshake.
    pub fn verify_token(&self, token: &str, now: SystemTime) -> Result<Identity, AuthError> {
        match self {
            Self::None => Err(AuthError::MissingToken),
            Self::Jwt(verifier) | Self::OptionalJwt(verifier) => verifier.verify_at(token, now),
        }
    }

    /// The clock skew allowed on `exp`: a token is valid until `exp` plus this.
    pub fn leeway_secs(&self) -> u64 {
        match self {
            Self::None => 0,
            Self::Jwt(verifier) | Self::OptionalJwt(verifier) => verifier.leeway_secs(),
        }
    }

    /// Whether tokens are verified at all.
    pub fn is_on(&self) -> bool {
        !matches!(self, Self::None)
    }
}

/// The token from `Authorization: Bearer …` or `?token=…`.
pub fn token_of(head: &RequestHead) -> Option<String> {
    if let Some(value) = head.header("authorization") {
        let (scheme, token) = value.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
            return Some(token.trim().to_owned());
        }
    }
    head.query_param("token").filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests;
