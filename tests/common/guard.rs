//! Shared pieces of the `guard_*` tests (auth, origins, limits, shutdown, metrics, config):
//! JWTs made with the test key pairs and hub replies read as JSON (this file), a parser of
//! the `/metrics` text ([`metrics`]), and the real `wsloop` binary run as a child process
//! that is always killed ([`process`]).
//!
//! Tokens are minted with the library's own [`wsloop::auth::mint`] whenever it can express
//! them; the few it cannot (an `nbf` in the future, an HS256 token keyed with a PEM public
//! key, `alg: none`) are assembled here from JSON, base64url and `jsonwebtoken`'s signer
//! (both regular dependencies of the crate, so visible to its tests).

mod metrics;
mod process;

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use wsloop::auth::{Authenticator, JwtSettings, JwtVerifier, KeySource, MintRequest, mint};
use wsloop::protocol::OpCode;

use super::{Client, HttpResponse, Request};

#[allow(unused_imports)] // Not every test crate names every helper.
pub(crate) use metrics::{Metrics, scrape};
#[allow(unused_imports)]
pub(crate) use process::{
    Finished, PROCESS_TIMEOUT, Served, TempFile, run_wsloop, run_wsloop_stdin, run_wsloop_within,
    temp_path,
};

/// The HS256 secret of the in-process servers.
pub(crate) const SECRET: &[u8] = b"guard-tests-shared-secret-7f3a9c";
/// The audience the in-process HS256 servers require.
pub(crate) const AUDIENCE: &str = "wsloop-guard-tests";

/// The bytes of a file in `tests/fixtures/jwt/`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The path of a file in `tests/fixtures/jwt/`.
pub(crate) fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A token from `wsloop::auth::mint`, issued at `issued` and valid for `ttl`.
pub(crate) fn mint_at(
    alg: &str,
    key: &[u8],
    user: &str,
    audience: Option<&str>,
    issued: SystemTime,
    ttl: Duration,
) -> String {
    let request = MintRequest {
        user,
        ttl,
        alg,
        key,
        rooms: &[],
        audience,
        issuer: None,
    };
    mint(&request, issued).expect("mint a test token")
}

/// A valid one-hour HS256 token for `user`, with the tests' audience and secret.
pub(crate) fn hs256_token(user: &str) -> String {
    mint_at(
        "HS256",
        SECRET,
        user,
        Some(AUDIENCE),
        SystemTime::now(),
        Duration::from_secs(3600),
    )
}

/// Base64url without padding (RFC 7515 §2), as JWTs use it.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.claims.` with an empty signature: what an `alg: none` token looks like.
pub(crate) fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

/// Any claims, signed HS256 with `key` (which may be anything, even a PEM public key).
pub(crate) fn sign_hs256(claims: &Value, key: &[u8]) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(key);
    jsonwebtoken::encode(&header, claims, &key).expect("sign HS256")
}

/// Claims that are valid now for `user` (one hour, the tests' audience).
pub(crate) fn valid_claims(user: &str) -> Value {
    let now = now_secs();
    serde_json::json!({
        "user_id": user, "sub": user, "aud": AUDIENCE,
        "iat": now, "nbf": now, "exp": now + 3600,
    })
}

/// JWT auth with the tests' HS256 secret and audience, a 5 s leeway.
pub(crate) fn hs256_auth() -> Authenticator {
    let settings = JwtSettings {
        alg: "HS256",
        key: KeySource::Secret(SECRET),
        leeway: Duration::from_secs(5),
        issuer: None,
        audience: Some(AUDIENCE),
        user_claim: "user_id",
        server_id: "server",
    };
    Authenticator::Jwt(Box::new(
        JwtVerifier::new(&settings).expect("HS256 verifier"),
    ))
}

/// JWT auth with `alg` and a public key fixture (no audience required).
pub(crate) fn public_key_auth(alg: &str, public_pem: &str) -> Authenticator {
    let pem = fixture(public_pem);
    let settings = JwtSettings {
        alg,
        key: KeySource::PublicPem(&pem),
        leeway: Duration::from_secs(5),
        issuer: None,
        audience: None,
        user_claim: "user_id",
        server_id: "server",
    };
    Authenticator::Jwt(Box::new(JwtVerifier::new(&settings).expect("PEM verifier")))
}

/// Asserts `response` is `status` with exactly `body` as its plain-text reason.
pub(crate) fn assert_status(response: &HttpResponse, status: u16, body: &str) {
    let text = String::from_utf8_lossy(&response.body);
    assert_eq!(
        (response.status, text.trim()),
        (status, body),
        "{response:?}"
    );
}

/// Sends `request` on a fresh connection to `addr`, reads the answer up to EOF.
pub(crate) fn request_at(addr: SocketAddr, request: &Request) -> HttpResponse {
    let mut client = Client::connect(addr);
    client.send(&request.to_bytes());
    let response = client.read_response();
    client.expect_eof();
    response
}

/// Opens `/ws` (or any hub target) with extra headers; asserts the 101.
pub(crate) fn open_with(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Client {
    let key = super::fresh_key();
    let mut request = Request::upgrade(target).set("Sec-WebSocket-Key", &key);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let mut client = Client::connect(addr);
    client.send(&request.to_bytes());
    let response = client.read_response();
    super::assert_switching_protocols(&response, &key);
    client
}

/// Reads the next frame, which must be a text frame holding a JSON object.
pub(crate) fn read_json(client: &mut Client) -> Value {
    let frame = client.read_frame();
    assert_eq!(
        frame.opcode,
        OpCode::Text,
        "expected a JSON text frame: {frame:?}"
    );
    serde_json::from_slice(&frame.payload).expect("hub replies are JSON")
}

/// Reads the `welcome` every `/ws` connection gets first; returns its `user_id`.
pub(crate) fn expect_welcome(client: &mut Client) -> String {
    let welcome = read_json(client);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    welcome["user_id"]
        .as_str()
        .unwrap_or_else(|| panic!("welcome without a string user_id: {welcome}"))
        .to_owned()
}

/// Sends a JSON request as one text frame.
pub(crate) fn send_json(client: &mut Client, request: &Value) {
    client.send_text(&request.to_string());
}

/// Reads frames up to the server's close; returns the JSON messages before it, the close
/// code and its reason. Pings and pongs are skipped.
pub(crate) fn read_until_close(client: &mut Client) -> (Vec<Value>, Option<u16>, String) {
    let mut messages = Vec::new();
    loop {
        let frame = client.read_frame();
        match frame.opcode {
            OpCode::Text => {
                messages.push(serde_json::from_slice(&frame.payload).expect("JSON text"));
            }
            OpCode::Close => {
                let reason = String::from_utf8_lossy(frame.payload.get(2..).unwrap_or_default());
                return (messages, frame.close_code(), reason.into_owned());
            }
            OpCode::Ping | OpCode::Pong => {}
            other => panic!("unexpected {other:?} frame before the close"),
        }
    }
}
