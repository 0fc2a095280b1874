//! `auth.mode = "optional"`: clients without a token are anonymous guests, which is where
//! `anyone` and `authenticated` differ. A guest reads `anyone` rooms but cannot join or
//! publish where `authenticated` is required, and cannot name itself with `?user_id=`;
//! a client with a token is its user; a bad token is still refused with 401.

mod common;

use common::TestServer;
use common::authz::{connect_with_token, rule, token};
use common::hub::HubClient;
use serde_json::json;
use wsloop::auth::Authenticator;
use wsloop::hub::rules::{Access, RoomRules};

fn server() -> TestServer {
    TestServer::start_with(|config| {
        let Authenticator::Jwt(verifier) = common::authz::jwt_auth() else {
            unreachable!()
        };
        config.auth = Authenticator::OptionalJwt(verifier);
        config.hub.rate_limit_enabled = false;
        config.hub.rules = RoomRules {
            rules: vec![rule("public-*", Access::Anyone, Access::Authenticated)],
            default: (Access::Authenticated, Access::Authenticated),
        };
    })
}

#[test]
fn guests_read_public_rooms_only_and_members_write() {
    let server = server();
    let mut guest = HubClient::open(&server, "/ws?user_id=admin");
    assert!(
        guest.user_id.starts_with("guest-"),
        "a guest cannot name itself"
    );
    let mut member = connect_with_token(&server, "42", &token("42", &[]));
    assert_eq!(guest.join("public-news")["type"], "joined");
    guest.send_json(&json!({"type":"join","room":"lobby","id":1}));
    assert_eq!(guest.expect_error("forbidden")["id"], 1);
    guest.send_json(&json!({"type":"chat","room":"public-news","payload":"hi"}));
    guest.expect_error("forbidden");
    assert_eq!(member.join("public-news")["type"], "joined");
    member.chat(Some("public-news"), json!("from a member"), None);
    assert_eq!(guest.expect("presence")["user_id"], "42");
    assert_eq!(guest.expect("chat")["payload"], "from a member");
}

#[test]
fn a_bad_token_is_still_refused() {
    let server = server();
    let response = server.request(&common::Request::upgrade("/ws?token=not.a.token"));
    assert_eq!(response.status, 401);
}
