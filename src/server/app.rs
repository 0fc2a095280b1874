//! The application API: what an embedder implements to run its own protocol on the engine.
//!
//! An [`App`] is routed a request path with [`super::ServerBuilder::route`]; the engine does the
//! HTTP upgrade, RFC 6455 (and permessage-deflate), buffering, backpressure, timeouts and
//! limits, and calls the app on the loop's thread with whole messages. The app answers
//! through a [`Ctx`]: send to a connection, close it, read how much it has buffered,
//! subscribe connections to topics and publish to them (each message encoded once, queued
//! to every subscriber by reference), and arm timers. Nothing here blocks, locks or
//! crosses a thread.
//!
//! ```no_run
//! use wsloop::server::{App, ConnId, Ctx, Message, Server, ServerConfig};
//!
//! /// Every message goes back as it came.
//! struct Echo;
//!
//! impl App for Echo {
//!     fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
//!         ctx.send(conn, message);
//!     }
//! }
//!
//! let mut server = Server::builder(ServerConfig::default()).route("/*", Echo).bind()?;
//! server.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::net::IpAddr;
use std::time::Duration;

use crate::auth::Identity;
use crate::protocol::Limits;
use crate::protocol::handshake::RequestHead;
use crate::protocol::http::Response;

use super::app_ctx::Ctx;
use super::app_metrics::AppMetrics;
use super::app_run::Run;
use super::conn::ConnId;

/// A WebSocket application. Every method runs on the loop's thread and must not block: a
/// slow callback delays every connection. A panic in one closes that connection only.
pub trait App {
    /// The loop is starting, before its first poll: arm the app's first
    /// [`Ctx::tick`], start a producer thread with [`Ctx::waker`].
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx;
    }

    /// Decides an upgrade before the `101`: `Err` refuses it with that HTTP status and
    /// reason. The default accepts every request the engine found valid.
    fn on_upgrade(&mut self, request: &Request<'_>) -> Result<(), Refusal> {
        let _ = request;
        Ok(())
    }

    /// A connection is open (its `101` is queued).
    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        let _ = (ctx, conn, request);
    }

    /// A whole message arrived (fragments joined, decompressed, UTF-8 checked for text).
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>);

    /// The messages from `conn` that one read brought, in order: take them with
    /// [`Run::next`] until it says `None`. The default hands each to
    /// [`App::on_message`], which it calls directly (it is compiled for each app), so a
    /// busy connection costs one dynamic call per read rather than one per message;
    /// override it only to handle a run as a whole. If `next` stopped because a
    /// connection closed meanwhile, the engine tells the close and calls this again with
    /// the rest (unless `conn` itself closed); messages an override leaves untaken are
    /// dropped, as an `on_message` that ignores them would.
    #[inline]
    fn on_messages(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, run: &mut Run<'_>) {
        while let Some(message) = run.next(ctx) {
            self.on_message(ctx, conn, message);
        }
    }

    /// The run of messages from `conn` that the engine read in one pass has been handled,
    /// each by [`App::on_message`] (a run is what one read brought, up to a control
    /// frame). An app that gathers its answers to send them together (one fan-out for a
    /// run of requests) sends them here: they still go out before anything the engine
    /// queues after the run, such as the reply to the peer's close or the close frame of
    /// a protocol error that followed it.
    fn on_run_end(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let _ = (ctx, conn);
    }

    /// The connection is closing: the peer's close `code` and `reason`, the code the
    /// server closed with, or 1006 when the connection ended without a close frame.
    /// Called once; the connection can no longer be sent to.
    fn on_close(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, code: u16, reason: &str) {
        let _ = (ctx, conn, code, reason);
    }

    /// Several connections closed: every close of this app's connections queued since it
    /// was last told, in the order they happened (one at a time for a peer that left; a
    /// whole wave for closes caused together: a shutdown, a publish that closed slow
    /// subscribers, closes made from an earlier `on_closes`). The default tells each to
    /// [`App::on_close`]. An app that tells its other connections of a departure (a
    /// presence list) overrides this to send once per batch instead of once per leaver:
    /// for a room of N that is N frames where one per leaver would be N².
    ///
    /// Closes made from inside this call are told in the next batch, after it returns:
    /// a cascade is a loop of batches, never a recursion.
    fn on_closes(&mut self, ctx: &mut Ctx<'_>, closed: &[Closed<'_>]) {
        for close in closed {
            self.on_close(ctx, close.conn, close.code, close.reason);
        }
    }

    /// Whether the app can serve, for `GET /readyz` (load balancers and orchestrators ask
    /// it): [`Health::NotReady`] takes the node out of the pool (503), as while it has not
    /// reached a backend it needs; [`Health::Degraded`] keeps it in (200) and says why.
    /// The default is [`Health::Ready`]. Keep it cheap: it runs on the loop's thread.
    fn health(&self) -> Health {
        Health::Ready
    }

    /// Whether the app still has work in flight that must finish before the process
    /// exits (messages on their way to a database or a broker). A graceful shutdown,
    /// once every connection has closed, waits until no app has, up to
    /// `server.drain_timeout`. The default is `false`.
    fn has_work_in_flight(&self) -> bool {
        false
    }

    /// Frame and message size limits for this app's connections (over them: close 1009),
    /// asked once, when the app is routed. The default, `None`, keeps the server's
    /// (`ServerConfig::limits`).
    fn limits(&self) -> Option<Limits> {
        None
    }

    /// A timer armed with [`Ctx::timer`] is due.
    fn on_timer(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, token: u64) {
        let _ = (ctx, conn, token);
    }

    /// A tick armed with [`Ctx::tick`] is due.
    fn on_tick(&mut self, ctx: &mut Ctx<'_>, token: u64) {
        let _ = (ctx, token);
    }

    /// The app's figures for a scrape of `/metrics`, and for `/stats`, added to the
    /// engine's (see [`AppMetrics`]). Keep it cheap: it runs on the loop's thread.
    fn metrics(&self, out: &mut AppMetrics) {
        let _ = out;
    }

    /// The connection's buffered output, once past the high-water mark (1 MiB, where the
    /// engine stops reading from it), fell below the low-water mark: send more.
    fn on_drain(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let _ = (ctx, conn);
    }

    /// Another thread called [`super::AppWaker::wake`] for this app: take what it left in
    /// a queue of the app's own. Keep that queue bounded, so a producer that outruns the
    /// loop waits (or drops, as the app decides) instead of growing memory. Wakes that
    /// come before the loop gets to them are told once.
    fn on_wake(&mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx;
    }

    /// A plain HTTP request's head, before any byte of its body is read (or `100 Continue`
    /// sent): `Err` answers with that response and closes, so a request with a wrong key or
    /// method, or a body this endpoint would not take, costs no body. The default takes
    /// every request on to [`App::on_http`]. The engine then checks the body's framing
    /// (`Content-Length` at most `api.max_body_bytes`: 411, 413 or 400 otherwise).
    fn on_http_head(&mut self, ctx: &mut Ctx<'_>, request: &HttpHead<'_>) -> Result<(), Response> {
        let _ = (ctx, request);
        Ok(())
    }

    /// A plain HTTP request (no WebSocket upgrade) for a path routed to this app, its body
    /// read whole. The app answers now ([`HttpReply::Respond`]), later
    /// ([`HttpReply::Later`], then [`Ctx::respond`] with [`HttpRequest::ticket`]), or
    /// declines ([`HttpReply::Decline`], the default: 426, as for any non-upgrade request
    /// to a WebSocket path). A `HEAD` request is sent only the head of the response. The
    /// connection closes after the response. The app may act on its WebSocket connections
    /// meanwhile (a publish endpoint: [`Ctx::publish`]).
    fn on_http(&mut self, ctx: &mut Ctx<'_>, request: &HttpRequest<'_>) -> HttpReply {
        let _ = (ctx, request);
        HttpReply::Decline
    }

    /// One of this app's callbacks panicked. The engine contained it (the connection being
    /// served is closed with 1011, or its HTTP request answered 500, and the others go on)
    /// and will call the app again: drop what that callback may have left half-done, such
    /// as answers gathered for [`App::on_run_end`] (which the panic skipped) or a
    /// half-built fan-out, rather than send it to someone later.
    fn on_panicked(&mut self) {}

    /// A graceful shutdown has begun ([`super::ServerHandle::shutdown`], SIGTERM): the
    /// engine has stopped taking upgrades and, once this returns, closes every connection
    /// still open with 1001 "server shutting down". An app can say goodbye first: send a
    /// last message, or close with a code and reason of its own.
    fn on_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx;
    }
}

/// An app's answer to `GET /readyz` ([`App::health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Serving: 200 `ready` (unless another app says otherwise).
    Ready,
    /// Serving, with less than its whole service (a backend lost after it was reached):
    /// 200 `degraded: <why>`, so the node stays in its load balancer's pool.
    Degraded(String),
    /// Not serving yet: 503 `not ready: <why>` with `Retry-After`, so the load balancer
    /// sends clients elsewhere.
    NotReady(String),
}

/// A connection's close, as [`App::on_closes`] is told it: what [`App::on_close`] gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed<'a> {
    /// The connection; it can no longer be sent to.
    pub conn: ConnId,
    /// The peer's close code, the code the server closed with, or 1006 when the
    /// connection ended without a close frame.
    pub code: u16,
    /// The close reason that went with `code` (empty for 1006).
    pub reason: &'a str,
}

/// A whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (valid UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The payload bytes.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }
}

/// What [`Request`], [`HttpHead`] and [`HttpRequest`] all tell of the request: its method,
/// path, query, headers and client address (each has `head` and `client` fields).
macro_rules! request_head_accessors {
    () => {
        /// The method, e.g. `POST` (`GET` for an upgrade).
        pub fn method(&self) -> &'a str {
            &self.head.method
        }

        /// The request path, e.g. `/rooms/7`.
        pub fn path(&self) -> &'a str {
            &self.head.path
        }

        /// The query string after `?`, not decoded.
        pub fn query(&self) -> Option<&'a str> {
            self.head.query.as_deref()
        }

        /// A query parameter, percent-decoded.
        pub fn query_param(&self, key: &str) -> Option<String> {
            self.head.query_param(key)
        }

        /// A header's value (the name in any case).
        pub fn header(&self, name: &str) -> Option<&'a str> {
            self.head.header(name)
        }

        /// The client's address (what a trusted proxy said, else the TCP peer's).
        pub fn client_addr(&self) -> IpAddr {
            self.client
        }

        /// The parsed head whole, for what the accessors above do not cover (every
        /// header in order, whether a query key is present without a value).
        pub fn head(&self) -> &'a RequestHead {
            self.head
        }
    };
}

/// The upgrade request as the app sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub(super) head: &'a RequestHead,
    pub(super) client: IpAddr,
    pub(super) identity: Option<&'a Identity>,
}

impl<'a> Request<'a> {
    request_head_accessors!();

    /// The verified token's contents, when authentication is on and one was presented.
    pub fn identity(&self) -> Option<&'a Identity> {
        self.identity
    }
}

/// What an app does with a plain HTTP request ([`App::on_http`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpReply {
    /// Send this response now.
    Respond(Response),
    /// The answer comes later, through [`Ctx::respond`] with the request's
    /// [`HttpRequest::ticket`] (from any callback, e.g. `on_wake` once another thread has
    /// the result). The server's `handshake_timeout`, counted from the connection's
    /// accept, bounds the wait: past it the client gets 504.
    Later,
    /// Not an HTTP endpoint: 426 Upgrade Required, as for any non-upgrade request to a
    /// WebSocket path.
    Decline,
}

/// Names a plain HTTP request whose answer an app gives later ([`HttpReply::Later`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpTicket(pub(super) ConnId);

impl HttpTicket {
    /// The ticket of the request on `conn` (the hub's Redis messages carry the id of the
    /// request they answer, not its ticket).
    pub(crate) fn of(conn: ConnId) -> Self {
        Self(conn)
    }

    /// The connection the request came on.
    pub(crate) fn conn(self) -> ConnId {
        self.0
    }
}

/// A plain HTTP request's head, before its body is read ([`App::on_http_head`]).
#[derive(Debug, Clone, Copy)]
pub struct HttpHead<'a> {
    pub(super) head: &'a RequestHead,
    pub(super) client: IpAddr,
}

impl<'a> HttpHead<'a> {
    request_head_accessors!();
}

/// A plain HTTP request as the app sees it ([`App::on_http`]).
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub(super) head: &'a RequestHead,
    pub(super) client: IpAddr,
    pub(super) body: &'a [u8],
    pub(super) ticket: HttpTicket,
}

impl<'a> HttpRequest<'a> {
    /// What names this request for an answer given later ([`HttpReply::Later`]).
    pub fn ticket(&self) -> HttpTicket {
        self.ticket
    }

    request_head_accessors!();

    /// The body (`Content-Length` bytes, at most `api.max_body_bytes`; empty without one).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// An app's refusal of an upgrade: the HTTP status, a plain-text reason, and any headers
/// the client should act on (`Retry-After` with a 429 or 503).
///
/// ```
/// use wsloop::server::Refusal;
///
/// let busy = Refusal::new(429, "user already has 8 connections").header("Retry-After", "5");
/// assert_eq!(busy.status, 429);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status, 400–599.
    pub status: u16,
    /// The reason, sent as the body.
    pub reason: String,
    /// Headers sent with it.
    headers: Vec<(&'static str, String)>,
}

impl Refusal {
    /// A refusal with `status` (clamped to 400–599) and `reason`.
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status: status.clamp(400, 599),
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header to the response (the engine's own, such as `Content-Length`, are not
    /// to be given here).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The HTTP response it is sent as.
    pub(super) fn into_response(self) -> Response {
        let response = Response::text(self.status, &self.reason);
        self.headers
            .into_iter()
            .fold(response, |response, (name, value)| {
                response.header(name, value)
            })
    }
}

/// The longest delay [`Ctx::timer`] accepts; longer ones are clamped.
pub const MAX_TIMER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
