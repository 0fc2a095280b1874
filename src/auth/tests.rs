//! Authentication tests: every way a token can be refused, and each algorithm accepted.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;
use crate::protocol::handshake::RequestHead;

const SECRET: &[u8] = b"test-secret-please-change";
const RS_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/jwt/rs256-private.pem");
const RS_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt/rs256-public.pem");
const ES_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/jwt/es256-private.pem");
const ES_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt/es256-public.pem");
const ED_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/jwt/eddsa-private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt/eddsa-public.pem");

fn settings<'a>(alg: &'a str, key: KeySource<'a>) -> JwtSettings<'a> {
    JwtSettings {
        alg,
        key,
        leeway: Duration::from_secs(2),
        issuer: None,
        audience: None,
        user_claim: "user_id",
        server_id: "server",
    }
}

fn hs256() -> JwtVerifier {
    JwtVerifier::new(&settings("HS256", KeySource::Secret(SECRET))).unwrap()
}

fn token(alg: &str, key: &[u8], user: &str, ttl: Duration) -> String {
    let req = MintRequest {
        user,
        ttl,
        alg,
        key,
        rooms: &[],
        audience: None,
        issuer: None,
    };
    mint(&req, SystemTime::now()).unwrap()
}

/// A token with arbitrary header and claims, signed (or not) by nobody.
fn forged(header: &str, claims: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token with custom claims, properly signed.
fn hs_claims(claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[test]
fn each_algorithm_verifies_its_own_tokens() {
    let hour = Duration::from_secs(3600);
    let cases: [(&str, &[u8], KeySource<'_>); 4] = [
        ("HS256", SECRET, KeySource::Secret(SECRET)),
        ("RS256", RS_PRIVATE, KeySource::PublicPem(RS_PUBLIC)),
        ("ES256", ES_PRIVATE, KeySource::PublicPem(ES_PUBLIC)),
        ("EdDSA", ED_PRIVATE, KeySource::PublicPem(ED_PUBLIC)),
    ];
    for (alg, private, public) in cases {
        let verifier = JwtVerifier::new(&settings(alg, public)).unwrap();
        let identity = verifier.verify(&token(alg, private, "42", hour)).unwrap();
        assert_eq!(identity.user_id, "42", "{alg}");
        assert!(identity.expires_at > now_secs());
    }
}

#[test]
fn refusals_say_why() {
    let v = hs256();
    let hour = Duration::from_secs(3600);
    assert_eq!(v.verify("not-a-jwt"), Err(AuthError::Malformed));
    assert_eq!(
        v.verify(&token("HS256", b"another-secret", "42", hour)),
        Err(AuthError::BadSignature)
    );
    let expired = hs_claims(serde_json::json!({"user_id": "42", "exp": now_secs() - 60}));
    assert_eq!(v.verify(&expired), Err(AuthError::Expired));
    let future = hs_claims(
        serde_json::json!({"user_id": "42", "exp": now_secs() + 600, "nbf": now_secs() + 300}),
    );
    assert_eq!(v.verify(&future), Err(AuthError::NotYetValid));
    let no_exp = hs_claims(serde_json::json!({"user_id": "42"}));
    assert_eq!(v.verify(&no_exp), Err(AuthError::MissingExpiry));
    let no_user = hs_claims(serde_json::json!({"exp": now_secs() + 600}));
    assert_eq!(v.verify(&no_user), Err(AuthError::MissingUserId));
}

#[test]
fn leeway_tolerates_small_skew() {
    let just_expired = hs_claims(serde_json::json!({"user_id": "42", "exp": now_secs() - 1}));
    assert!(hs256().verify(&just_expired).is_ok());
}

#[test]
fn alg_none_is_refused() {
    let claims = format!(r#"{{"user_id":"42","exp":{}}}"#, now_secs() + 600);
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"NONE"}"#,
    ] {
        let err = hs256().verify(&forged(header, &claims, "")).unwrap_err();
        assert!(
            matches!(err, AuthError::WrongAlgorithm | AuthError::Malformed),
            "{header}: {err:?}"
        );
    }
}

/// Algorithm confusion: an HS256 token whose "secret" is the RS256 public key.
#[test]
fn hs256_token_against_rs256_config_is_refused() {
    let rs = JwtVerifier::new(&settings("RS256", KeySource::PublicPem(RS_PUBLIC))).unwrap();
    let confused = token("HS256", RS_PUBLIC, "42", Duration::from_secs(600));
    assert_eq!(rs.verify(&confused), Err(AuthError::WrongAlgorithm));
}

#[test]
fn audience_and_issuer_are_checked_when_configured() {
    let s = JwtSettings {
        audience: Some("wsloop"),
        issuer: Some("https://auth.example.com"),
        ..settings("HS256", KeySource::Secret(SECRET))
    };
    let v = JwtVerifier::new(&s).unwrap();
    let exp = now_secs() + 600;
    let good = hs_claims(
        serde_json::json!({"user_id": "1", "exp": exp, "aud": "wsloop", "iss": "https://auth.example.com"}),
    );
    assert!(v.verify(&good).is_ok());
    let wrong_aud = hs_claims(
        serde_json::json!({"user_id": "1", "exp": exp, "aud": "other", "iss": "https://auth.example.com"}),
    );
    assert_eq!(v.verify(&wrong_aud), Err(AuthError::WrongAudience));
    let wrong_iss = hs_claims(
        serde_json::json!({"user_id": "1", "exp": exp, "aud": "wsloop", "iss": "https://evil"}),
    );
    assert_eq!(v.verify(&wrong_iss), Err(AuthError::WrongIssuer));
}

#[test]
fn user_id_claim_may_be_a_number_or_come_from_sub() {
    let exp = now_secs() + 600;
    assert_eq!(
        hs256()
            .verify(&hs_claims(serde_json::json!({"user_id": 42, "exp": exp})))
            .unwrap()
            .user_id,
        "42"
    );
    assert_eq!(
        hs256()
            .verify(&hs_claims(serde_json::json!({"sub": "alice", "exp": exp})))
            .unwrap()
            .user_id,
        "alice"
    );
    let custom = JwtVerifier::new(&JwtSettings {
        user_claim: "uid",
        server_id: "server",
        ..settings("HS256", KeySource::Secret(SECRET))
    })
    .unwrap();
    assert_eq!(
        custom
            .verify(&hs_claims(
                serde_json::json!({"uid": "u7", "sub": "x", "exp": exp})
            ))
            .unwrap()
            .user_id,
        "u7"
    );
}

#[test]
fn rooms_claim_is_read() {
    let exp = now_secs() + 600;
    let id = hs256()
        .verify(&hs_claims(
            serde_json::json!({"user_id": "1", "exp": exp, "rooms": ["private-1", "team-*"]}),
        ))
        .unwrap();
    assert_eq!(id.rooms, ["private-1", "team-*"]);
}

#[test]
fn bad_configuration_is_refused() {
    assert!(JwtVerifier::new(&settings("HS256", KeySource::Secret(b""))).is_err());
    assert!(JwtVerifier::new(&settings("RS256", KeySource::Secret(SECRET))).is_err());
    assert!(JwtVerifier::new(&settings("RS256", KeySource::PublicPem(b"not pem"))).is_err());
    assert!(JwtVerifier::new(&settings("none", KeySource::Secret(SECRET))).is_err());
    assert!(JwtVerifier::new(&settings("HS512", KeySource::Secret(SECRET))).is_err());
}

fn head(headers: &[(&str, &str)], query: Option<&str>) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        path: "/ws".into(),
        query: query.map(str::to_owned),
        minor_version: 1,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

#[test]
fn token_from_bearer_or_query() {
    assert_eq!(
        token_of(&head(&[("authorization", "Bearer abc.def.ghi")], None)).as_deref(),
        Some("abc.def.ghi")
    );
    assert_eq!(
        token_of(&head(&[("authorization", "bearer  x ")], None)).as_deref(),
        Some("x")
    );
    assert_eq!(
        token_of(&head(&[], Some("a=1&token=t%2Eu"))).as_deref(),
        Some("t.u")
    );
    assert_eq!(
        token_of(&head(&[("authorization", "Basic Zm9v")], None)),
        None
    );
    assert_eq!(token_of(&head(&[], Some("token="))), None);
}

#[test]
fn authenticator_modes() {
    let none = Authenticator::None.authenticate(&head(&[], None), SystemTime::now());
    assert_eq!(none, Ok(None));
    let jwt = Authenticator::Jwt(Box::new(hs256()));
    assert_eq!(
        jwt.authenticate(&head(&[], None), SystemTime::now()),
        Err(AuthError::MissingToken)
    );
    let t = token("HS256", SECRET, "7", Duration::from_secs(60));
    let query = format!("token={t}");
    assert_eq!(
        jwt.authenticate(&head(&[], Some(&query)), SystemTime::now())
            .unwrap()
            .map(|i| i.user_id),
        Some("7".into())
    );
}
