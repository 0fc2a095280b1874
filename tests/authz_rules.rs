//! Loopback tests of the room rules with JWT authentication: each access level allowing
//! and refusing join and publish (`anyone`, `authenticated`, `claim` with rooms and
//! patterns from the token, `owner` for `user:{id}` rooms, `server` for rooms only the
//! publish API writes), first match winning, and the default rule. A refusal is an
//! `error` with code `forbidden` naming the room and echoing the request id; nothing is
//! delivered (not even presence), the connection stays open, and
//! `wsloop_hub_errors_total{code="forbidden"}` counts it.
//!
//! `authenticated` is only shown allowing: every connection on a server with JWT auth has
//! a verified token, and without auth every connection is trusted, so no connection exists
//! that `authenticated` would refuse (the hub's unit tests cover that case).

mod common;

use common::TestServer;
use common::api::{KEY, assert_nothing_else, publish};
use common::authz::{connect_as, jwt_auth, rule};
use common::guard::scrape;
use common::hub::{HubClient, str_field};
use serde_json::{Value, json};
use wsloop::hub::rules::{Access, RoomRule, RoomRules};

use Access::{Anyone, Authenticated, Claim, Owner, Server};

/// The rules of most tests: the example plus one rule per remaining combination.
fn rules() -> Vec<RoomRule> {
    vec![
        rule("team-red", Anyone, Anyone),
        rule("team-*", Server, Server),
        rule("public-*", Anyone, Authenticated),
        rule("open-*", Anyone, Anyone),
        rule("private-*", Claim, Claim),
        rule("board-*", Authenticated, Claim),
        rule("user:*", Owner, Server),
        rule("wall:*", Anyone, Owner),
        rule("announcements", Anyone, Server),
        rule("vault", Server, Server),
    ]
}

/// A JWT server with `rules`, `default` for unmatched rooms, and the publish API on.
fn server_with(rules: Vec<RoomRule>, default: (Access, Access)) -> TestServer {
    TestServer::start_with(|c| {
        c.auth = jwt_auth();
        c.api.keys = vec![KEY.to_owned()];
        c.hub.rate_limit_enabled = false;
        c.hub.rules = RoomRules { rules, default };
    })
}

fn server() -> TestServer {
    server_with(rules(), (Authenticated, Authenticated))
}

/// Asserts the next message (presence skipped) is a `forbidden` error for `request_id`
/// that names `room`.
fn expect_forbidden(client: &mut HubClient, room: &str, request_id: &str) {
    let error = client.next_skipping(&["presence"]);
    assert_eq!(
        (&error["type"], &error["code"], &error["id"]),
        (&json!("error"), &json!("forbidden"), &json!(request_id)),
        "{}: {error}",
        client.user_id
    );
    let message = str_field(&error, "message");
    assert!(
        message.contains(&format!("`{room}`")),
        "the error names the room: {message}"
    );
}

fn join_refused(client: &mut HubClient, room: &str) {
    client.send_json(&json!({"type": "join", "room": room, "id": "j"}));
    expect_forbidden(client, room, "j");
}

fn publish_refused(client: &mut HubClient, room: &str) {
    client.chat(Some(room), json!("refused"), Some(json!("p")));
    expect_forbidden(client, room, "p");
}

/// Publishes to `room` (the sender is a member and gets its own chat); returns the ack.
fn publish_ok(client: &mut HubClient, room: &str) -> Value {
    let payload = json!({"from": client.user_id});
    client.chat(Some(room), payload.clone(), Some(json!("ok")));
    let own = client.next_skipping(&["presence"]);
    assert_eq!(
        (&own["type"], &own["room"], &own["payload"]),
        (&json!("chat"), &json!(room), &payload),
        "{own}"
    );
    let ack = client.expect("ack");
    assert_eq!(ack["id"], "ok", "{ack}");
    ack
}

/// The forbidden errors counted so far.
fn forbidden_count(server: &TestServer) -> f64 {
    scrape(server).or_zero("wsloop_hub_errors_total{code=\"forbidden\"}")
}

#[test]
fn anyone_and_authenticated_admit_every_connection() {
    let server = server();
    let mut a = connect_as(&server, "a", &[]);
    let mut b = connect_as(&server, "b", &[]);
    for room in ["public-news", "open-chat", "lobby"] {
        a.join(room);
        b.join(room);
        assert_eq!(publish_ok(&mut a, room)["delivered"], 2);
        assert_eq!(b.next_skipping(&["presence"])["room"], room);
    }
    assert_eq!(forbidden_count(&server), 0.0);
}

#[test]
fn claim_admits_the_rooms_and_patterns_listed_in_the_token() {
    let server = server();
    let claims = ["private-1", "private-team-*", "board-7"];
    let mut insider = connect_as(&server, "insider", &claims);
    let mut outsider = connect_as(&server, "outsider", &[]);

    insider.join("private-1");
    insider.join("private-team-red");
    publish_ok(&mut insider, "private-1");
    publish_ok(&mut insider, "private-team-red");
    join_refused(&mut insider, "private-2");
    join_refused(&mut insider, "private-team");

    // A refused join tells the members nothing: no presence, no message.
    join_refused(&mut outsider, "private-1");
    join_refused(&mut outsider, "private-team-red");

    // `board-*`: anyone authenticated reads, only the claim writes.
    insider.join("board-7");
    outsider.join("board-7");
    publish_refused(&mut outsider, "board-7");
    publish_ok(&mut insider, "board-7");
    assert_eq!(outsider.next_skipping(&["presence"])["room"], "board-7");

    assert_nothing_else(server.addr, 1, &mut [&mut insider, &mut outsider]);
    assert_eq!(forbidden_count(&server), 5.0);
}

#[test]
fn owner_rooms_admit_only_their_user() {
    let server = server();
    let mut owner = connect_as(&server, "42", &[]);
    let mut second_tab = connect_as(&server, "42", &[]);
    let mut other = connect_as(&server, "43", &[]);
    let mut prefix = connect_as(&server, "4", &[]);
    // Even a token claiming the room does not open another user's `user:` room.
    let mut claimer = connect_as(&server, "44", &["user:42", "user:*"]);

    owner.join("user:42");
    for intruder in [&mut other, &mut prefix, &mut claimer] {
        join_refused(intruder, "user:42");
    }
    join_refused(&mut owner, "user:43");
    // `user:*` rooms are written by the server only, not even by their owner.
    publish_refused(&mut owner, "user:42");
    let answer = publish(
        server.addr,
        &json!({"room": "user:42", "payload": "invoice"}),
    );
    assert_eq!(
        answer["delivered"], 1,
        "only the joined connection: {answer}"
    );
    let message = owner.expect("notification");
    assert_eq!(
        (&message["room"], &message["payload"]),
        (&json!("user:42"), &json!("invoice"))
    );

    // `wall:*`: anyone reads, only the owner writes.
    owner.join("wall:42");
    other.join("wall:42");
    publish_refused(&mut other, "wall:42");
    publish_ok(&mut owner, "wall:42");
    let chat = other.next_skipping(&["presence"]);
    assert_eq!(
        (&chat["room"], &chat["sender_id"]),
        (&json!("wall:42"), &json!("42"))
    );

    let mut everyone = [
        &mut owner,
        &mut second_tab,
        &mut other,
        &mut prefix,
        &mut claimer,
    ];
    assert_nothing_else(server.addr, 1, &mut everyone);
    assert_eq!(forbidden_count(&server), 6.0);
}

#[test]
fn server_rooms_refuse_every_client_and_take_the_publish_api() {
    let server = server();
    let mut reader = connect_as(&server, "reader", &["announcements", "vault"]);
    let mut other = connect_as(&server, "other", &[]);
    reader.join("announcements");
    other.join("announcements");
    publish_refused(&mut reader, "announcements");
    publish_refused(&mut other, "announcements");

    let answer = publish(
        server.addr,
        &json!({"room": "announcements", "type": "release", "payload": "v2"}),
    );
    assert_eq!(answer["delivered"], 2, "{answer}");
    for client in [&mut reader, &mut other] {
        let message = client.next_skipping(&["presence"]);
        assert_eq!(
            (&message["type"], &message["room"], &message["sender_id"]),
            (&json!("release"), &json!("announcements"), &json!("server")),
            "{message}"
        );
    }

    // join = server: nobody joins, whatever the token claims.
    join_refused(&mut reader, "vault");
    let empty = publish(server.addr, &json!({"room": "vault", "payload": 1}));
    assert_eq!(empty["delivered"], 0, "{empty}");
    assert_nothing_else(server.addr, 1, &mut [&mut reader, &mut other]);
    assert_eq!(forbidden_count(&server), 3.0);
}

#[test]
fn the_first_matching_rule_wins_not_the_most_specific() {
    let server = server();
    let mut client = connect_as(&server, "t", &["team-blue"]);
    client.join("team-red");
    publish_ok(&mut client, "team-red");
    join_refused(&mut client, "team-blue");

    // The same two rules the other way round: `team-*` now decides for `team-red` too.
    let reversed = server_with(
        vec![
            rule("team-*", Server, Server),
            rule("team-red", Anyone, Anyone),
        ],
        (Anyone, Anyone),
    );
    let mut client = connect_as(&reversed, "t", &[]);
    join_refused(&mut client, "team-red");
    join_refused(&mut client, "team-blue");
    client.join("elsewhere");
    assert_eq!(forbidden_count(&reversed), 2.0);
}

#[test]
fn the_default_rule_decides_for_rooms_no_pattern_matches() {
    let server = server_with(vec![rule("open-*", Anyone, Anyone)], (Claim, Server));
    let mut member = connect_as(&server, "m", &["lobby"]);
    let mut stranger = connect_as(&server, "s", &[]);
    member.join("open-1");
    stranger.join("open-1");
    publish_ok(&mut stranger, "open-1");
    member.next_skipping(&["presence"]);

    member.join("lobby");
    join_refused(&mut stranger, "lobby");
    publish_refused(&mut member, "lobby");
    let answer = publish(
        server.addr,
        &json!({"room": "lobby", "payload": "from the API"}),
    );
    assert_eq!(answer["delivered"], 1);
    assert_eq!(member.expect("notification")["payload"], "from the API");
    assert_nothing_else(server.addr, 1, &mut [&mut member, &mut stranger]);
    assert_eq!(forbidden_count(&server), 2.0);
}

#[test]
fn a_refusal_leaves_the_connection_usable() {
    let server = server();
    let mut client = connect_as(&server, "u", &[]);
    join_refused(&mut client, "private-x");
    // Membership is checked first: publishing to a room one is not in is `not_member`,
    // whatever the rules say.
    client.chat(Some("private-x"), json!(1), Some(json!("n")));
    assert_eq!(client.expect_error("not_member")["id"], "n");
    client.join("board-x");
    publish_refused(&mut client, "board-x");
    client.join("open-x");
    publish_ok(&mut client, "open-x");
    let metrics = scrape(&server);
    assert_eq!(
        metrics.get("wsloop_hub_errors_total{code=\"forbidden\"}"),
        2.0
    );
    assert_eq!(
        metrics.get("wsloop_hub_errors_total{code=\"not_member\"}"),
        1.0
    );
    client.close();
}
