//! Loopback tests of the two policies beside the room rules: who may send a global
//! broadcast (`hub.broadcast`), and who may send private messages to whom
//! (`hub.private_messages`: `anyone`, `shared_room`, `nobody`). A refusal is a `forbidden`
//! error echoing the request id; the recipients get nothing; the publish API is never
//! bound by either policy.

mod common;

use common::TestServer;
use common::api::{KEY, assert_nothing_else, publish};
use common::authz::{connect_as, jwt_auth};
use common::guard::scrape;
use common::hub::{HubClient, str_field};
use serde_json::{Value, json};
use wsloop::hub::PrivatePolicy;
use wsloop::hub::rules::Access;

/// A server (auth off: user ids from `?user_id=`) with `configure` applied to its hub.
fn server(configure: impl FnOnce(&mut wsloop::hub::HubConfig)) -> TestServer {
    TestServer::start_with(|c| {
        c.api.keys = vec![KEY.to_owned()];
        c.hub.rate_limit_enabled = false;
        configure(&mut c.hub);
    })
}

/// Sends a private message with an id; returns the ack.
fn private_ok(from: &mut HubClient, to: &str, payload: &Value) -> Value {
    from.send_json(&json!({"type": "private", "recipient_id": to, "payload": payload, "id": 1}));
    let ack = from.next_skipping(&["presence"]);
    assert_eq!(
        (&ack["type"], &ack["id"]),
        (&json!("ack"), &json!(1)),
        "{ack}"
    );
    ack
}

/// Sends a private message with an id; expects `forbidden`; returns the error's message.
fn private_refused(from: &mut HubClient, to: &str) -> String {
    from.send_json(&json!({"type": "private", "recipient_id": to, "payload": "no", "id": 2}));
    let error = from.next_skipping(&["presence"]);
    assert_eq!(
        (&error["type"], &error["code"], &error["id"]),
        (&json!("error"), &json!("forbidden"), &json!(2)),
        "{}: {error}",
        from.user_id
    );
    str_field(&error, "message").to_owned()
}

/// The next message of `to` must be the private message `payload` from `from`.
fn expect_private(to: &mut HubClient, from: &str, payload: &Value) {
    let message = to.next_skipping(&["presence"]);
    assert_eq!(
        (&message["type"], &message["sender_id"], &message["payload"]),
        (&json!("private"), &json!(from), payload),
        "{}: {message}",
        to.user_id
    );
    assert_eq!(message["recipient_id"], to.user_id.as_str(), "{message}");
}

#[test]
fn private_messages_to_anyone_by_default() {
    let server = server(|_| {});
    let mut a = HubClient::connect(&server, "a");
    let mut b = HubClient::connect(&server, "b");
    a.join("only-a");
    assert_eq!(private_ok(&mut a, "b", &json!("hi"))["delivered"], 1);
    expect_private(&mut b, "a", &json!("hi"));
}

#[test]
fn shared_room_admits_only_users_sharing_a_room() {
    let server = server(|h| h.private_messages = PrivatePolicy::SharedRoom);
    let mut a = HubClient::connect(&server, "a");
    let mut a_other_tab = HubClient::connect(&server, "a");
    let mut b = HubClient::connect(&server, "b");
    let mut c = HubClient::connect(&server, "c");
    a.join("x");
    c.join("y");

    let message = private_refused(&mut a, "b");
    assert!(message.contains("`b`"), "names the recipient: {message}");
    b.join("x");
    private_ok(&mut a, "b", &json!(1));
    expect_private(&mut b, "a", &json!(1));
    private_ok(&mut b, "a", &json!(2));
    expect_private(&mut a, "b", &json!(2));
    expect_private(&mut a_other_tab, "b", &json!(2));
    // The policy is between users: a's other tab, in no room itself, still shares `x`
    // with b through a's first tab.
    private_ok(&mut a_other_tab, "b", &json!(3));
    expect_private(&mut b, "a", &json!(3));
    // c shares nothing with a; and a room shared with oneself does not count.
    private_refused(&mut c, "a");
    private_refused(&mut a, "c");

    b.leave("x");
    private_refused(&mut a, "b");
    private_refused(&mut b, "a");
    let mut everyone = [&mut a, &mut a_other_tab, &mut b, &mut c];
    assert_nothing_else(server.addr, 1, &mut everyone);
    let metrics = scrape(&server);
    assert_eq!(
        metrics.get("wsloop_hub_errors_total{code=\"forbidden\"}"),
        5.0
    );
}

#[test]
fn nobody_refuses_every_private_message_but_not_the_api() {
    let server = server(|h| h.private_messages = PrivatePolicy::Nobody);
    let mut a = HubClient::connect(&server, "a");
    let mut b = HubClient::connect(&server, "b");
    a.join("x");
    b.join("x");
    let message = private_refused(&mut a, "b");
    assert!(message.contains("disabled"), "{message}");
    // An unknown recipient is still told apart from a refusal.
    a.send_json(&json!({"type": "private", "recipient_id": "ghost", "payload": 1}));
    a.expect_error("recipient_not_connected");

    let answer = publish(
        server.addr,
        &json!({"user_id": "b", "payload": "from the API"}),
    );
    assert_eq!(answer["delivered"], 1);
    let message = b.next_skipping(&["presence"]);
    assert_eq!(
        (&message["type"], &message["payload"]),
        (&json!("notification"), &json!("from the API"))
    );
    assert_nothing_else(server.addr, 1, &mut [&mut a, &mut b]);
}

#[test]
fn broadcasts_follow_the_broadcast_policy() {
    // Default (authenticated; auth off trusts every connection): a client broadcasts.
    let open = server(|_| {});
    let mut a = HubClient::connect(&open, "a");
    let mut b = HubClient::connect(&open, "b");
    a.chat(None, json!("all"), Some(json!(1)));
    assert_eq!(a.expect("chat")["payload"], "all");
    assert_eq!(a.expect("ack")["delivered"], 2);
    assert_eq!(b.expect("chat")["payload"], "all");

    // `server`: clients may not, the publish API still may.
    let closed = server(|h| h.broadcast = Access::Server);
    let mut a = HubClient::connect(&closed, "a");
    let mut b = HubClient::connect(&closed, "b");
    a.chat(None, json!("all"), Some(json!(1)));
    let error = a.expect_error("forbidden");
    assert_eq!(error["id"], 1, "{error}");
    assert!(
        str_field(&error, "message").contains("broadcast"),
        "{error}"
    );
    a.join("room");
    a.chat(Some("room"), json!("room chat is still fine"), None);
    a.expect("chat");
    assert_eq!(
        publish(closed.addr, &json!({"payload": "all"}))["delivered"],
        2
    );
    for client in [&mut a, &mut b] {
        assert_eq!(client.expect("notification")["payload"], "all");
    }
    assert_nothing_else(closed.addr, 1, &mut [&mut a, &mut b]);
}

#[test]
fn broadcast_anyone_and_authenticated_with_tokens() {
    for access in [Access::Anyone, Access::Authenticated] {
        let server = TestServer::start_with(|c| {
            c.auth = jwt_auth();
            c.hub.broadcast = access;
        });
        let mut a = connect_as(&server, "a", &[]);
        a.chat(None, json!(1), Some(json!(1)));
        a.expect("chat");
        assert_eq!(a.expect("ack")["delivered"], 1, "{access:?}");
    }
    // `claim` and `owner` have no room to match against: nobody broadcasts.
    for access in [Access::Claim, Access::Owner] {
        let server = TestServer::start_with(|c| {
            c.auth = jwt_auth();
            c.hub.broadcast = access;
        });
        let mut a = connect_as(&server, "a", &["*"]);
        a.chat(None, json!(1), None);
        a.expect_error("forbidden");
    }
}
