//! `Ctx::publish` holds a turn's publications and queues them subscriber by subscriber
//! when the turn's output is flushed (each subscriber written as soon as its frames are
//! queued: the first is not kept waiting while the rest are queued). That must not change
//! what anyone sees: a publication reaches a subscriber before anything the app or the
//! engine sends it afterwards, a connection that subscribes afterwards does not get it,
//! one that unsubscribes afterwards does, a subscriber of two topics gets them in the
//! order they were published, the buffered amount counts it, what a callback published
//! before it panicked goes out before the 1011, and a goodbye published as the server
//! shuts down goes out before the 1001. Each test sends the app one script,
//! so every step of it runs in one callback, in one turn.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestServer;
use wsloop::client::{Client, ClientError, Message as Received};
use wsloop::server::{App, ConnId, Ctx, Message, Request};

/// Connections are named by their path (`/sub-1` is "sub-1"); one that opens
/// `/on/<topic>` is also subscribed to that topic, and a connection's text is a script of
/// `;`-separated steps it runs in order:
///
/// - `pub TOPIC TEXT`: publishes TEXT to TOPIC;
/// - `pubn TOPIC N`: publishes N bytes of `x` to TOPIC;
/// - `send NAME TEXT`: sends TEXT to the connection named NAME;
/// - `close NAME`: closes it with 4000;
/// - `sub NAME TOPIC`, `unsub NAME TOPIC`: (un)subscribes it;
/// - `buffered NAME…`: sends the script's sender those connections' buffered amounts.
#[derive(Default)]
struct Scripted {
    names: HashMap<String, ConnId>,
}

impl App for Scripted {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        let path = request.path().trim_start_matches('/');
        let name = match path.split_once("/on/") {
            Some((name, topics)) => {
                for topic in topics.split(',') {
                    ctx.subscribe(conn, topic);
                }
                name
            }
            None => path,
        };
        self.names.insert(name.to_owned(), conn);
        ctx.send(conn, Message::Text("ready"));
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        let Message::Text(script) = message else {
            return;
        };
        for step in script.split(';') {
            let words: Vec<&str> = step.splitn(3, ' ').collect();
            let named = |name: &str| self.names.get(name).copied().expect("a named connection");
            match words.as_slice() {
                ["pub", topic, text] => {
                    ctx.publish(topic, Message::Text(text));
                }
                ["pubn", topic, n] => {
                    let text = "x".repeat(n.parse().expect("a length"));
                    ctx.publish(topic, Message::Text(&text));
                }
                ["send", name, text] => {
                    ctx.send(named(name), Message::Text(text));
                }
                ["close", name] => ctx.close(named(name), 4000, "scripted"),
                ["sub", name, topic] => {
                    ctx.subscribe(named(name), topic);
                }
                ["unsub", name, topic] => {
                    ctx.unsubscribe(named(name), topic);
                }
                ["buffered", names @ ..] => {
                    let amounts: Vec<String> = names
                        .iter()
                        .flat_map(|names| names.split(' '))
                        .map(|name| ctx.buffered_amount(named(name)).to_string())
                        .collect();
                    ctx.send(conn, Message::Text(&amounts.join(" ")));
                }
                _ => panic!("a step the test app does not know: {step:?}"),
            }
        }
    }
}

fn start() -> TestServer {
    TestServer::start_apps(|_| {}, |b| b.route("/*", Scripted::default()))
}

/// A connection at `path`, its "ready" read.
fn open(server: &TestServer, path: &str) -> Client {
    let mut client = server.ws(path);
    assert_eq!(
        client.recv().expect("ready"),
        Received::Text("ready".into())
    );
    client
}

/// The texts `client` receives until it has `n` of them.
fn texts(client: &mut Client, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| match client.recv().expect("a message") {
            Received::Text(text) => text,
            other => panic!("not a text: {other:?}"),
        })
        .collect()
}

/// The close `client` receives next (after `texts`, nothing else may come first).
fn close_of(client: &mut Client) -> (u16, String) {
    match client.recv() {
        Err(ClientError::Closed { code, reason }) => (code, reason),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[test]
fn a_publication_reaches_a_subscriber_before_what_is_sent_to_it_afterwards() {
    let server = start();
    let mut sub = open(&server, "/sub/on/news");
    let mut publisher = open(&server, "/publisher");
    publisher
        .send_text("pub news first;send sub direct;pub news second")
        .expect("script");
    assert_eq!(texts(&mut sub, 3), ["first", "direct", "second"]);
}

#[test]
fn a_publication_reaches_a_subscriber_before_its_close_frame() {
    let server = start();
    let mut sub = open(&server, "/sub/on/news");
    let mut publisher = open(&server, "/publisher");
    publisher
        .send_text("pub news goodbye;close sub")
        .expect("script");
    assert_eq!(texts(&mut sub, 1), ["goodbye"]);
    assert_eq!(close_of(&mut sub), (4000, "scripted".into()));
}

#[test]
fn only_subscribers_at_the_time_of_a_publication_get_it() {
    let server = start();
    let mut leaving = open(&server, "/leaving/on/news");
    let mut joining = open(&server, "/joining");
    let mut publisher = open(&server, "/publisher");
    publisher
        .send_text(
            "pub news one;unsub leaving news;sub joining news;pub news two;\
             send leaving end;send joining end",
        )
        .expect("script");
    assert_eq!(texts(&mut leaving, 2), ["one", "end"]);
    assert_eq!(texts(&mut joining, 2), ["two", "end"]);
}

#[test]
fn a_subscriber_of_two_topics_gets_them_in_the_order_they_were_published() {
    let server = start();
    let mut both = open(&server, "/both/on/a,b");
    let mut publisher = open(&server, "/publisher");
    publisher
        .send_text("pub a 1;pub b 2;pub a 3;pub a 4;pub b 5")
        .expect("script");
    assert_eq!(texts(&mut both, 5), ["1", "2", "3", "4", "5"]);
}

#[test]
fn the_buffered_amount_counts_a_publication_not_yet_written() {
    let server = start();
    let mut sub = open(&server, "/sub/on/news");
    let mut publisher = open(&server, "/publisher");
    publisher
        .send_text("pubn news 5000;buffered sub publisher")
        .expect("script");
    let amounts = texts(&mut publisher, 1);
    let (to_sub, to_publisher) = amounts[0].split_once(' ').expect("two amounts");
    let to_sub: usize = to_sub.parse().expect("a number");
    assert!(to_sub >= 5000, "5,000 bytes published to it: {to_sub}");
    assert_eq!(to_publisher, "0", "the publisher is not subscribed");
    assert_eq!(texts(&mut sub, 1)[0].len(), 5000);
}

#[test]
fn what_a_callback_published_before_it_panicked_precedes_its_1011() {
    let server = start();
    let mut sub = open(&server, "/sub/on/news");
    // Subscribed itself: its copy must go out before the close the panic causes.
    let mut publisher = open(&server, "/publisher/on/news");
    publisher
        .send_text("pub news last words;no such step")
        .expect("script");
    assert_eq!(texts(&mut publisher, 1), ["last words"]);
    assert_eq!(close_of(&mut publisher).0, 1011);
    assert_eq!(texts(&mut sub, 1), ["last words"]);
}

/// Publishes "goodbye" to "news" from `on_shutdown`.
struct Farewell;

impl App for Farewell {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &Request<'_>) {
        ctx.subscribe(conn, "news");
        ctx.send(conn, Message::Text("ready"));
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {}

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        ctx.publish("news", Message::Text("goodbye"));
    }
}

#[test]
fn a_goodbye_published_at_shutdown_goes_out_before_the_1001() {
    let server = TestServer::start_apps(
        |c| c.drain_timeout = Duration::from_secs(5),
        |b| b.route("/*", Farewell),
    );
    let mut subs: Vec<Client> = (0..3).map(|_| open(&server, "/")).collect();
    server.shutdown();
    for sub in &mut subs {
        assert_eq!(texts(sub, 1), ["goodbye"]);
        assert_eq!(close_of(sub).0, 1001);
    }
}
