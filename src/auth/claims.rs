//! The claims wsloop reads from a verified token (RFC 7519 §4.1), read once and the same way
//! for the handshake, `refresh` and the expiry timer.
//!
//! `jsonwebtoken` checks the signature and the algorithm only; every claim is checked here,
//! with the current time as an argument, so the rules are plain functions that a test or a
//! fuzz target can drive with any claim set and any clock:
//!
//! | claim | rule |
//! |---|---|
//! | `exp` | required; a whole number of seconds (a JSON integer) from 0 to [`MAX_TIMESTAMP`]; the token is refused from `exp + leeway` on |
//! | `nbf` | optional; same form; refused while `now + leeway < nbf` |
//! | `iss` | required when `auth.issuer` is set; a string equal to it |
//! | `aud` | required when `auth.audience` is set; a string equal to it, or an array holding it |
//! | user id | the configured claim (default `user_id`), else `sub`: a string or a number, checked by [`check_user_id`] |
//! | `rooms` | optional; the strings of an array (anything else grants nothing) |

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::user_id::{UserIdError, check_user_id};
use super::{AuthError, Identity};

/// The latest time a token may name: 9999-12-31T23:59:59Z. Anything later is refused, so
/// no deadline computed from a claim can overflow a clock.
pub const MAX_TIMESTAMP: u64 = 253_402_300_799;

/// What the claims of a verified token must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    /// Clock skew allowed on `exp` and `nbf`, seconds.
    pub(crate) leeway: u64,
    /// Required `iss`, if any.
    pub(crate) issuer: Option<String>,
    /// Required `aud`, if any.
    pub(crate) audience: Option<String>,
    /// The claim that holds the user id (`sub` is the fallback).
    pub(crate) user_claim: String,
    /// The id the server itself speaks as (the publish API's `sender_id`): reserved.
    pub(crate) server_id: String,
}

impl ClaimRules {
    /// Checks `claims` at `now` (Unix seconds) and reads the identity they carry.
    pub(crate) fn check(
        &self,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<Identity, AuthError> {
        let expires_at =
            timestamp(claims.get("exp"), AuthError::BadExpiry)?.ok_or(AuthError::MissingExpiry)?;
        if now >= expires_at.saturating_add(self.leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = timestamp(claims.get("nbf"), AuthError::BadNotBefore)?
            && now.saturating_add(self.leeway) < nbf
        {
            return Err(AuthError::NotYetValid);
        }
        if let Some(issuer) = &self.issuer {
            match claims.get("iss") {
                None => return Err(AuthError::MissingIssuer),
                Some(Value::String(iss)) if iss == issuer => {}
                Some(_) => return Err(AuthError::WrongIssuer),
            }
        }
        if let Some(audience) = &self.audience {
            check_audience(claims.get("aud"), audience)?;
        }
        let user_id = user_claim(claims.get(&self.user_claim))
            .or_else(|| user_claim(claims.get("sub")))
            .ok_or(AuthError::MissingUserId)?;
        check_user_id(&user_id, &self.server_id).map_err(|e| match e {
            UserIdError::Reserved => AuthError::ReservedUserId,
            _ => AuthError::BadUserId,
        })?;
        Ok(Identity {
            user_id,
            expires_at,
            rooms: rooms(claims.get("rooms")),
        })
    }
}

/// How long from `now` until a token with `expires_at` stops being accepted (`exp` plus
/// `leeway`); zero once it has. Saturates instead of overflowing whatever the inputs, so the
/// expiry timer can be computed from any accepted claim.
pub(crate) fn time_left(expires_at: u64, leeway: u64, now: SystemTime) -> Duration {
    let end = expires_at.saturating_add(leeway);
    match UNIX_EPOCH.checked_add(Duration::from_secs(end)) {
        Some(at) => at.duration_since(now).unwrap_or_default(),
        None => Duration::MAX,
    }
}

/// A NumericDate claim (RFC 7519 §2): absent, or a JSON integer in `0..=MAX_TIMESTAMP`.
/// RFC 7519 allows fractions; wsloop refuses them rather than read `1.9e9` as "no expiry".
fn timestamp(value: Option<&Value>, bad: AuthError) -> Result<Option<u64>, AuthError> {
    match value {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(t) if t <= MAX_TIMESTAMP => Ok(Some(t)),
            _ => Err(bad),
        },
    }
}

/// RFC 7519 §4.1.3: `aud` is a string or an array of strings, and must name us.
fn check_audience(value: Option<&Value>, audience: &str) -> Result<(), AuthError> {
    match value {
        None => Err(AuthError::MissingAudience),
        Some(Value::String(aud)) if aud == audience => Ok(()),
        Some(Value::Array(auds)) if auds.iter().any(|a| a.as_str() == Some(audience)) => Ok(()),
        Some(_) => Err(AuthError::WrongAudience),
    }
}

/// A string or number claim as a user id (an empty string counts as absent).
fn user_claim(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The strings of the `rooms` array.
fn rooms(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn rules() -> ClaimRules {
        ClaimRules {
            leeway: 2,
            issuer: None,
            audience: None,
            user_claim: "user_id".into(),
            server_id: "server".into(),
        }
    }

    fn check(rules: &ClaimRules, claims: Value) -> Result<Identity, AuthError> {
        let Value::Object(map) = claims else {
            panic!("claims must be an object")
        };
        rules.check(&map, NOW)
    }

    #[test]
    fn exp_must_be_a_whole_number_in_range() {
        let r = rules();
        for bad in [
            json!(1.9e9),
            json!(1_900_000_000.0),
            json!(-1),
            json!("1900000000"),
            json!(null),
            json!(9_223_372_036_854_775_808u64),
            json!(u64::MAX),
            json!(MAX_TIMESTAMP + 1),
        ] {
            let got = check(&r, json!({"user_id": "a", "exp": bad}));
            assert_eq!(got, Err(AuthError::BadExpiry), "exp {bad}");
        }
        let at_max = check(&r, json!({"user_id": "a", "exp": MAX_TIMESTAMP})).unwrap();
        assert_eq!(at_max.expires_at, MAX_TIMESTAMP);
        assert_eq!(
            check(&r, json!({"user_id": "a"})),
            Err(AuthError::MissingExpiry)
        );
    }

    #[test]
    fn exp_and_nbf_with_leeway() {
        let r = rules();
        let at = |exp: u64| check(&r, json!({"user_id": "a", "exp": exp})).map(|i| i.expires_at);
        assert_eq!(at(NOW - 1), Ok(NOW - 1), "inside the leeway");
        assert_eq!(
            at(NOW - 2),
            Err(AuthError::Expired),
            "exp + leeway is the end"
        );
        let nbf = |nbf: Value| check(&r, json!({"user_id": "a", "exp": NOW + 60, "nbf": nbf}));
        assert!(nbf(json!(NOW + 2)).is_ok());
        assert_eq!(nbf(json!(NOW + 3)), Err(AuthError::NotYetValid));
        assert_eq!(nbf(json!(0.5)), Err(AuthError::BadNotBefore));
        assert_eq!(nbf(json!(u64::MAX)), Err(AuthError::BadNotBefore));
    }

    #[test]
    fn configured_issuer_and_audience_are_required() {
        let r = ClaimRules {
            issuer: Some("https://auth".into()),
            audience: Some("wsloop".into()),
            ..rules()
        };
        let exp = NOW + 60;
        let good = json!({"user_id": "a", "exp": exp, "iss": "https://auth", "aud": "wsloop"});
        assert!(check(&r, good).is_ok());
        let list =
            json!({"user_id": "a", "exp": exp, "iss": "https://auth", "aud": ["x", "wsloop"]});
        assert!(check(&r, list).is_ok());
        let cases = [
            (
                json!({"user_id": "a", "exp": exp, "aud": "wsloop"}),
                AuthError::MissingIssuer,
            ),
            (
                json!({"user_id": "a", "exp": exp, "iss": "https://auth"}),
                AuthError::MissingAudience,
            ),
            (
                json!({"user_id": "a", "exp": exp, "iss": ["https://auth"], "aud": "wsloop"}),
                AuthError::WrongIssuer,
            ),
            (
                json!({"user_id": "a", "exp": exp, "iss": "https://auth", "aud": ["x"]}),
                AuthError::WrongAudience,
            ),
            (
                json!({"user_id": "a", "exp": exp, "iss": "https://auth", "aud": 7}),
                AuthError::WrongAudience,
            ),
        ];
        for (claims, want) in cases {
            assert_eq!(check(&r, claims.clone()), Err(want), "{claims}");
        }
        // Unconfigured: neither claim is looked at.
        assert!(check(&rules(), json!({"user_id": "a", "exp": exp, "aud": 7})).is_ok());
    }

    #[test]
    fn user_ids_are_validated_and_reserved_ids_refused() {
        let r = rules();
        let exp = NOW + 60;
        for bad in [
            "has space",
            "tab\there",
            "new\nline",
            &"x".repeat(65),
            "ümlaut",
        ] {
            let got = check(&r, json!({"user_id": bad, "exp": exp}));
            assert_eq!(got, Err(AuthError::BadUserId), "{bad:?}");
        }
        for reserved in ["server", "guest-1", "guest-00ff00ff00ff00ff"] {
            let got = check(&r, json!({"user_id": reserved, "exp": exp}));
            assert_eq!(got, Err(AuthError::ReservedUserId), "{reserved}");
            let via_sub = check(&r, json!({"sub": reserved, "exp": exp}));
            assert_eq!(via_sub, Err(AuthError::ReservedUserId), "sub {reserved}");
        }
        let got = check(&r, json!({"user_id": "", "exp": exp}));
        assert_eq!(got, Err(AuthError::MissingUserId));
    }

    #[test]
    fn time_left_saturates() {
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(time_left(100, 2, at(90)), Duration::from_secs(12));
        assert_eq!(time_left(100, 2, at(102)), Duration::ZERO);
        assert_eq!(time_left(100, 2, at(500)), Duration::ZERO);
        assert!(time_left(u64::MAX, u64::MAX, at(0)) >= Duration::from_secs(u64::MAX / 2));
    }

    #[test]
    fn rooms_are_the_strings_of_an_array() {
        let r = rules();
        let id = check(
            &r,
            json!({"user_id": "a", "exp": NOW + 9, "rooms": ["x", 1, "y*"]}),
        );
        assert_eq!(id.unwrap().rooms, ["x", "y*"]);
        let id = check(&r, json!({"user_id": "a", "exp": NOW + 9, "rooms": "x"}));
        assert!(id.unwrap().rooms.is_empty());
    }

    /// Any JSON at all in the claims that matter, signed with the key the verifier trusts:
    /// validation and the expiry-timer arithmetic never panic, and what is accepted obeys
    /// the rules.
    mod signed_claims {
        use proptest::prelude::*;

        use super::super::super::{JwtSettings, JwtVerifier, KeySource};
        use super::*;

        const SECRET: &[u8] = b"claims-proptest-secret";

        fn json_leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(
                    |f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                ),
                (0..MAX_TIMESTAMP + 10).prop_map(Value::from),
                ".{0,70}".prop_map(Value::from),
                Just(Value::from("server")),
                Just(Value::from("wsloop")),
                Just(Value::from("https://auth")),
            ]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            json_leaf().prop_recursive(2, 8, 4, |inner| {
                prop::collection::vec(inner, 0..4).prop_map(Value::Array)
            })
        }

        fn claim_set() -> impl Strategy<Value = Map<String, Value>> {
            let names = prop_oneof![
                Just("exp"),
                Just("nbf"),
                Just("iss"),
                Just("aud"),
                Just("user_id"),
                Just("sub"),
                Just("rooms"),
                Just("iat"),
            ];
            // A valid set with a few claims replaced (or added), so that both acceptance and
            // every refusal are reached.
            let exp = 0..MAX_TIMESTAMP + 10;
            let overrides = prop::collection::vec((names, json_value()), 0..4);
            (exp, overrides).prop_map(|(exp, overrides)| {
                let mut claims = Map::new();
                claims.insert("exp".into(), exp.into());
                claims.insert("iss".into(), "https://auth".into());
                claims.insert("aud".into(), "wsloop".into());
                claims.insert("user_id".into(), "u".into());
                for (name, value) in overrides {
                    claims.insert(name.to_owned(), value);
                }
                claims
            })
        }

        proptest! {
            #[test]
            fn never_panics(
                claims in claim_set(),
                now in prop_oneof![0..MAX_TIMESTAMP * 2, Just(0)],
                leeway in prop_oneof![0..10u64, Just(u64::MAX)],
            ) {
                let verifier = JwtVerifier::new(&JwtSettings {
                    alg: "HS256",
                    key: KeySource::Secret(SECRET),
                    leeway: Duration::from_secs(leeway),
                    issuer: Some("https://auth"),
                    audience: Some("wsloop"),
                    user_claim: "user_id",
                    server_id: "server",
                })
                .unwrap();
                let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
                let header = jsonwebtoken::Header::default();
                let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
                let wall = UNIX_EPOCH + Duration::from_secs(now);
                if let Ok(identity) = verifier.verify_at(&token, wall) {
                    prop_assert!(identity.expires_at <= MAX_TIMESTAMP);
                    prop_assert!(now < identity.expires_at.saturating_add(leeway));
                    prop_assert!(check_user_id(&identity.user_id, "server").is_ok());
                    let left = time_left(identity.expires_at, leeway, wall);
                    prop_assert!(!left.is_zero());
                    let _ = std::time::Instant::now().checked_add(left);
                }
            }
        }
    }
}
