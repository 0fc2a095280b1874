//! `/echo`: every text and binary message goes back as it came. The Autobahn and benchmark
//! target, and an app on the API like any embedder's (`examples/echo_server.rs` is the
//! same app, routed on every path).

use super::app::{App, Message};
use super::app_ctx::Ctx;
use super::conn::ConnId;
use super::isolation::inject_panic;

/// The path the engine routes [`Echo`] at.
pub(super) const ECHO_PATH: &str = "/echo";

/// The echo app.
pub(super) struct Echo;

impl App for Echo {
    #[inline(always)]
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        inject_panic(message.as_bytes());
        ctx.send(conn, message);
    }
}
