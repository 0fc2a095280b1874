//! Shared pieces of the `authz_*` tests: JWT authentication with a small leeway, tokens
//! with a `rooms` claim and an exact `exp`, room rules, and connecting with a token.

use std::time::{Duration, UNIX_EPOCH};

use wsloop::auth::{Authenticator, JwtSettings, JwtVerifier, KeySource, MintRequest, mint};
use wsloop::hub::rules::{Access, RoomRule};

use super::TestServer;
use super::guard::now_secs;
use super::hub::HubClient;

/// The HS256 secret of the authorization tests.
pub(crate) const SECRET: &[u8] = b"authz-tests-secret-91c2d8";
/// The clock skew allowed on `exp`: tokens work until `exp + LEEWAY_SECS`.
pub(crate) const LEEWAY_SECS: u64 = 1;

/// HS256 authentication with [`SECRET`] and a [`LEEWAY_SECS`] leeway.
pub(crate) fn jwt_auth() -> Authenticator {
    let settings = JwtSettings {
        alg: "HS256",
        key: KeySource::Secret(SECRET),
        leeway: Duration::from_secs(LEEWAY_SECS),
        issuer: None,
        audience: None,
        user_claim: "user_id",
        server_id: "server",
    };
    Authenticator::Jwt(Box::new(JwtVerifier::new(&settings).expect("verifier")))
}

/// A token for `user` expiring `ttl_secs` after the current whole second, granting
/// `rooms`; returns it with its `exp`.
pub(crate) fn token_with(user: &str, ttl_secs: u64, rooms: &[&str], key: &[u8]) -> (String, u64) {
    let issued = now_secs();
    let rooms: Vec<String> = rooms.iter().map(|r| (*r).to_owned()).collect();
    let request = MintRequest {
        user,
        ttl: Duration::from_secs(ttl_secs),
        alg: "HS256",
        key,
        rooms: &rooms,
        audience: None,
        issuer: None,
    };
    let token = mint(&request, UNIX_EPOCH + Duration::from_secs(issued)).expect("mint");
    (token, issued + ttl_secs)
}

/// A one-hour token for `user` granting `rooms`.
pub(crate) fn token(user: &str, rooms: &[&str]) -> String {
    token_with(user, 3600, rooms, SECRET).0
}

/// Connects to `/ws` with `token`; the welcome must name `user`.
pub(crate) fn connect_with_token(server: &TestServer, user: &str, token: &str) -> HubClient {
    let client = HubClient::open(server, &format!("/ws?token={token}"));
    assert_eq!(client.user_id, user, "the token's user is welcomed");
    client
}

/// Connects as `user` with a one-hour token granting `rooms`.
pub(crate) fn connect_as(server: &TestServer, user: &str, rooms: &[&str]) -> HubClient {
    connect_with_token(server, user, &token(user, rooms))
}

/// A rule: `pattern` with its join and publish access.
pub(crate) fn rule(pattern: &str, join: Access, publish: Access) -> RoomRule {
    RoomRule {
        pattern: pattern.into(),
        join,
        publish,
    }
}
