//! The hub's WebSocket (`/ws`) and API (`/api/*`) as an application on the App API: the
//! engine reads its connections' messages, tells it of opens and closes, and knows nothing
//! of rooms. Its state ([`crate::hub::Hub`], the outbox, the history log, the cluster link)
//! is [`HubState`], reached by the engine through nothing but the callbacks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::api::{self, ApiWait};
use super::clock;
use super::gather::GATHER_WAIT;
use super::server_api::{self, Parsed, decode_disconnect, parse_call};
use super::state::{HubParts, HubState};
use crate::auth::time_left;
use crate::auth::user_id::{UserIdError, check_user_id, new_guest_id};
use crate::hub::Credentials;
use crate::protocol::Limits;
use crate::protocol::http::Response;
use crate::server::AppMetrics;
use crate::server::ConnId;
use crate::server::Ctx;
use crate::server::Health;
use crate::server::after;
use crate::server::inject_panic;
use crate::server::{ApiConfig, ServerConfig};
use crate::server::{
    App, Closed, HttpHead, HttpReply, HttpRequest, HttpTicket, Message, Refusal, Request,
};

/// Close code for a connection whose token expired (README, "Close codes"): 4000–4499 are
/// terminal, so a client must get a fresh token before reconnecting.
const TOKEN_EXPIRED: u16 = 4001;

/// The longest a token-expiry timer sleeps before it looks at the wall clock again: a far
/// `exp` never becomes a far (or overflowing) deadline, and a step of the wall clock is
/// noticed within this.
const TOKEN_RECHECK: Duration = Duration::from_secs(3600);

/// The token of the hub's connection timers: a token-expiry check.
const TOKEN_CHECK: u64 = 1;

/// The token of the hub's tick that expires old history.
const HISTORY_EXPIRY: u64 = 1;

/// How often history past its TTL is dropped.
const HISTORY_EXPIRY_EVERY: Duration = Duration::from_secs(60);

/// The path the hub is routed at, unless an embedder's route takes it first.
pub(crate) const HUB_PATH: &str = "/ws";

/// The hub's HTTP API, for operators: publish, and the server API.
pub(crate) const API_PATHS: &str = "/api/*";

/// The publish API's path.
const PUBLISH_PATH: &str = "/api/publish";

/// The token of the tick that answers server API requests whose wait for the other nodes
/// is over.
const GATHERS_DUE: u64 = 2;

/// The hub at `/ws`.
#[derive(Debug)]
pub(crate) struct HubApp {
    /// Frame and message limits of its connections (`server.hub_limits`).
    limits: Limits,
    /// Anonymous clients are guests (`auth.anonymous = "guest"`): none may name itself.
    anonymous_is_guest: bool,
    /// The API's key and limits, for checking a request's head.
    api: ApiConfig,
    /// Seconds past `exp` a token is still accepted at a handshake (`auth`'s leeway).
    leeway: u64,
    /// Connections one user may have open (`server.max_connections_per_user`, 0: any).
    max_per_user: usize,
    /// The rooms and members, the outbox, history, the link to Redis.
    state: HubState,
    /// When each connection's live token-expiry check fires: timers armed for an earlier
    /// deadline and superseded since are stale and ignored, so each connection has one
    /// live check however often it refreshes.
    token_checks: HashMap<ConnId, Instant>,
    /// Clustered publish requests waiting for Redis's outcome of each of their messages
    /// (the Redis threads report one for every message they are given, at the latest
    /// when their retries run out).
    publishing: HashMap<HttpTicket, ApiWait>,
}

impl HubApp {
    /// The hub as `config` sets it up, with its history file and Redis threads.
    pub(crate) fn new(config: &ServerConfig, parts: HubParts) -> Self {
        Self {
            limits: config.hub_limits,
            anonymous_is_guest: config.auth.anonymous_is_guest(),
            api: config.api.clone(),
            leeway: config.auth.leeway_secs(),
            max_per_user: config.max_connections_per_user,
            state: HubState::new(config, parts),
            token_checks: HashMap::new(),
            publishing: HashMap::new(),
        }
    }

    /// The user a request is for: the token's, else (unless anonymous clients are guests)
    /// `?user_id=`; `None` for a guest, who gets an id of its own. A `user_id` that is not
    /// a valid id (or is the publish API's) is refused with 400.
    fn user_of(&self, request: &Request<'_>) -> Result<Option<String>, Refusal> {
        match (request.identity(), request.query_param("user_id")) {
            (Some(identity), _) => Ok(Some(identity.user_id.clone())),
            // An anonymous guest may not name itself: that would impersonate a user.
            (None, _) if self.anonymous_is_guest => Ok(None),
            (None, Some(user)) => match check_user_id(&user, &self.state.sender_id) {
                Ok(()) => Ok(Some(user)),
                Err(refused) => Err(Refusal::new(400, format!("user_id: {refused}"))),
            },
            (None, None) if request.head().has_query_key("user_id") => Err(Refusal::new(
                400,
                format!("user_id: {}", UserIdError::Malformed),
            )),
            (None, None) => Ok(None),
        }
    }

    /// Arms the expiry check for a token expiring at `expires_at` (Unix seconds); it
    /// becomes the live one. It fires when the token stops being accepted at a handshake
    /// (`exp` plus the verifier's leeway), or after [`TOKEN_RECHECK`], whichever is
    /// sooner. The arithmetic is checked: `exp` comes from outside.
    fn arm_token_check(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, expires_at: u64) {
        let left = time_left(expires_at, self.leeway, ctx.wall_clock());
        let delay = left.min(TOKEN_RECHECK);
        self.token_checks.insert(conn, after(ctx.now(), delay));
        ctx.timer(conn, delay, TOKEN_CHECK);
    }

    /// A `refresh` replaced the connection's token. A later expiry needs nothing yet (the
    /// live check re-arms when it fires); an earlier one gets its own check now.
    fn token_renewed(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(expires_at) = self.state.hub.token_expiry(conn) else {
            return;
        };
        let left = time_left(expires_at, self.leeway, ctx.wall_clock());
        let at = after(ctx.now(), left.min(TOKEN_RECHECK));
        if self.token_checks.get(&conn).is_none_or(|live| at < *live) {
            self.arm_token_check(ctx, conn, expires_at);
        }
    }

    /// A token check fired: close with 4001 unless a `refresh` moved the expiry later
    /// (then check again at the new one). A check superseded by an earlier one is stale.
    fn check_token(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        if self
            .token_checks
            .get(&conn)
            .is_none_or(|live| ctx.now() < *live)
        {
            return;
        }
        let Some(expires_at) = self.state.hub.token_expiry(conn) else {
            return;
        };
        if time_left(expires_at, self.leeway, ctx.wall_clock()).is_zero() {
            log::debug!("{conn}: token expired");
            ctx.close(conn, TOKEN_EXPIRED, "token expired");
        } else {
            self.arm_token_check(ctx, conn, expires_at);
        }
    }
}

impl HubApp {
    /// `POST /api/publish` with its body: delivers (alone: answers at once) or hands the
    /// messages to Redis (clustered: answers once Redis has them all, or has failed some).
    fn publish(&mut self, ctx: &mut Ctx<'_>, request: &HttpRequest<'_>) -> HttpReply {
        let ticket = request.ticket();
        // At most 128 bytes of an `Idempotency-Key` are used.
        let key: Option<String> = request
            .header("idempotency-key")
            .map(|k| k.chars().take(128).collect());
        let published = self
            .state
            .publish(ctx, ticket.conn(), request.body(), key.as_deref());
        let answer = match published {
            Ok(response) => Some(self.count_api(response)),
            Err(wait) => {
                self.publishing.insert(ticket, wait);
                None
            }
        };
        self.state.apply_outbox(ctx);
        // Redis may have refused at once (its queue full): then the answer is here.
        match answer.or_else(|| self.give_answers(ctx, Some(ticket))) {
            Some(response) => HttpReply::Respond(response),
            None => HttpReply::Later,
        }
    }

    /// A request of the server API (`/api/info`, rooms, presence, history, disconnect),
    /// its head checked already: answered at once alone; clustered, once the other nodes
    /// (or Redis) have answered, or at the gather deadline.
    fn server_api(&mut self, ctx: &mut Ctx<'_>, request: &HttpRequest<'_>) -> HttpReply {
        let ticket = request.ticket();
        let now = ctx.now();
        let state = &mut self.state;
        match parse_call(request.head(), state.hub.config()) {
            Ok(Parsed::Call(call)) => state.run_call(ctx, ticket.conn(), call, now),
            Ok(Parsed::Disconnect) => match decode_disconnect(request.body()) {
                Ok(ask) => state.run_ask(ctx, ticket.conn(), ask, now),
                Err(refusal) => state.api_respond(ticket.conn(), refusal),
            },
            Err(refusal) => state.api_respond(ticket.conn(), refusal),
        }
        match self.give_answers(ctx, Some(ticket)) {
            Some(response) => HttpReply::Respond(response),
            None => {
                // Past it, the gathered parts are answered with the silent nodes missing.
                ctx.tick(GATHER_WAIT, GATHERS_DUE);
                HttpReply::Later
            }
        }
    }

    /// Gives the server API's answers that are ready, and the publish requests' that are
    /// complete; `asking`'s answer is returned instead, for the caller to give.
    fn give_answers(&mut self, ctx: &mut Ctx<'_>, asking: Option<HttpTicket>) -> Option<Response> {
        self.complete_publishes();
        let mut own = None;
        for (conn, response) in std::mem::take(&mut self.state.api_answers) {
            let ticket = HttpTicket::of(conn);
            let response = self.count_api(response);
            if Some(ticket) == asking {
                own = Some(response);
            } else if !ctx.respond(ticket, response) {
                log::debug!("{conn}: an API answer came after its client left");
            }
        }
        own
    }

    /// Records Redis's outcomes for waiting publish requests; the answer of each request
    /// now complete joins the others ready to give.
    fn complete_publishes(&mut self) {
        for outcome in std::mem::take(&mut self.state.api_outcomes) {
            let conn = outcome.conn;
            let ticket = HttpTicket::of(conn);
            let Some(wait) = self.publishing.get_mut(&ticket) else {
                continue;
            };
            if let Some(response) = wait.record(outcome) {
                self.publishing.remove(&ticket);
                self.state.api_answers.push((conn, response));
            }
        }
    }

    /// Counts an answer of the hub's API by its status (`api_requests`).
    fn count_api(&mut self, response: Response) -> Response {
        let counts = &mut self.state.counters.api_requests;
        *counts.entry(response.status).or_default() += 1;
        response
    }
}

impl App for HubApp {
    /// An `/api/` request's key, method, path and length are checked before its body is
    /// read.
    fn on_http_head(&mut self, _: &mut Ctx<'_>, request: &HttpHead<'_>) -> Result<(), Response> {
        let api = &self.api;
        let checked = match request.path() {
            HUB_PATH => return Ok(()),
            PUBLISH_PATH => api::check_head(api, request.head()),
            _ => server_api::check_head(api, self.state.hub.config(), request.head()).map(|_| ()),
        };
        checked.map_err(|refusal| self.count_api(refusal))
    }

    /// `/api/`; `/ws` without an upgrade is declined (426).
    fn on_http(&mut self, ctx: &mut Ctx<'_>, request: &HttpRequest<'_>) -> HttpReply {
        match request.path() {
            HUB_PATH => HttpReply::Decline,
            PUBLISH_PATH => self.publish(ctx, request),
            _ => self.server_api(ctx, request),
        }
    }

    fn limits(&self) -> Option<Limits> {
        Some(self.limits)
    }

    /// Refuses a bad `user_id` (400), and a user with `max_connections_per_user` open
    /// already (429, `Retry-After`).
    fn on_upgrade(&mut self, request: &Request<'_>) -> Result<(), Refusal> {
        let max = self.max_per_user;
        if let Some(user) = self.user_of(request)?
            && max > 0
            && self.state.hub.connections_of(&user) >= max
        {
            let reason = format!("user already has {max} connections");
            return Err(Refusal::new(429, reason).header("Retry-After", "5"));
        }
        Ok(())
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.tick(HISTORY_EXPIRY_EVERY, HISTORY_EXPIRY);
    }

    /// Drops history past its TTL; answers server API requests whose wait is over.
    fn on_tick(&mut self, ctx: &mut Ctx<'_>, token: u64) {
        let now = ctx.now();
        match token {
            HISTORY_EXPIRY => {
                self.state.hub.expire_history(clock(ctx));
                ctx.tick(HISTORY_EXPIRY_EVERY, HISTORY_EXPIRY);
            }
            GATHERS_DUE => {
                self.state.gathers_due(ctx, now);
                self.give_answers(ctx, None);
            }
            _ => {}
        }
    }

    /// The Redis threads reported something: messages for members here, acks, answers.
    fn on_wake(&mut self, ctx: &mut Ctx<'_>) {
        if self.state.drain_cluster(ctx) {
            let _ = ctx.waker().wake();
        }
        self.give_answers(ctx, None);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: u64) {
        self.check_token(ctx, conn);
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        let identity = request.identity();
        // Checked in `on_upgrade`: a bad `user_id` never gets here.
        let user = self.user_of(request).ok().flatten();
        let user = user.unwrap_or_else(new_guest_id);
        let credentials = match identity {
            Some(identity) => Credentials {
                authenticated: true,
                claims: identity.rooms.clone(),
                expires_at: Some(identity.expires_at),
            },
            None if self.anonymous_is_guest => Credentials::default(),
            None => Credentials::trusted(),
        };
        let expiry = credentials.expires_at;
        let state = &mut self.state;
        state
            .hub
            .connect_with(conn, &user, credentials, clock(ctx), &mut state.outbox);
        state.apply_outbox(ctx);
        if let Some(expiry) = expiry {
            log::debug!("{conn}: user {user}, token expires at {expiry}");
            self.arm_token_check(ctx, conn, expiry);
        }
    }

    /// The hub's answers go to the outbox, applied at the end of the run
    /// ([`HubApp::on_run_end`]): one pass for a run of requests.
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        let (state, wall) = (&mut self.state, clock(ctx));
        match message {
            Message::Text(text) => {
                inject_panic(text.as_bytes());
                state.hub.on_text(conn, text, wall, &mut state.outbox);
            }
            Message::Binary(_) => state.hub.on_binary(conn, wall, &mut state.outbox),
        }
        // A `refresh` answered here is the only source of renewed tokens.
        for renewed in std::mem::take(&mut self.state.outbox.renewed) {
            self.token_renewed(ctx, renewed);
        }
    }

    /// The run's answers go out, before the reply to a close or the close of a protocol
    /// error that followed it (the App API lets the connection whose run it was take
    /// them even then).
    fn on_run_end(&mut self, ctx: &mut Ctx<'_>, _: ConnId) {
        self.state.apply_outbox(ctx);
    }

    /// Every departure of the batch at once: one presence frame per remaining member per
    /// room, however many left (see [`super::settle`]).
    fn on_closes(&mut self, ctx: &mut Ctx<'_>, closed: &[Closed<'_>]) {
        let leaving: Vec<ConnId> = closed.iter().map(|c| c.conn).collect();
        for conn in &leaving {
            self.token_checks.remove(conn);
        }
        let state = &mut self.state;
        state
            .hub
            .disconnect_all(&leaving, clock(ctx), &mut state.outbox);
        state.apply_outbox(ctx);
    }

    /// `/readyz`: whether Redis is reached, when clustered.
    fn health(&self) -> Health {
        self.state.health()
    }

    /// Messages still on their way to Redis go out before a graceful shutdown ends.
    fn has_work_in_flight(&self) -> bool {
        !self.state.cluster_idle()
    }

    /// The hub's figures: its tables, its errors, its API, its link to Redis.
    fn metrics(&self, out: &mut AppMetrics) {
        self.state.metrics(out);
    }

    /// What the panicking callback left in the outbox (a fan-out that stopped midway)
    /// is dropped, not applied by the next one.
    fn on_panicked(&mut self) {
        let dropped = std::mem::take(&mut self.state.outbox);
        if !dropped.sends.is_empty() {
            log::error!(
                "hub: {} queued sends dropped after a panic",
                dropped.sends.len()
            );
        }
    }
}
