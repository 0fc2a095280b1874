//! The hub's WebSocket (`/ws`) as an application on the App API: the engine reads its
//! connections' messages, tells it of opens and closes, and knows nothing of rooms.
//!
//! Its state ([`crate::hub::Hub`], the outbox, the history log, the cluster link) still
//! lives in [`Server`], reached through the [`Ctx`] it is lent: the step before the
//! state moves into this struct (see the table in [`super`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::auth::time_left;
use crate::auth::user_id::{UserIdError, check_user_id, new_guest_id};
use crate::hub::Credentials;
use crate::protocol::Limits;
use crate::server::app::{App, Closed, Message, Refusal, Request};
use crate::server::app_ctx::Ctx;
use crate::server::config::ServerConfig;
use crate::server::conn::ConnId;
use crate::server::event_loop::Server;
use crate::server::isolation::inject_panic;
use crate::server::timers::after;

/// Close code for a connection whose token expired (README, "Close codes"): 4000–4499 are
/// terminal, so a client must get a fresh token before reconnecting.
const TOKEN_EXPIRED: u16 = 4001;

/// The longest a token-expiry timer sleeps before it looks at the wall clock again: a far
/// `exp` never becomes a far (or overflowing) deadline, and a step of the wall clock is
/// noticed within this.
const TOKEN_RECHECK: Duration = Duration::from_secs(3600);

/// The token of the hub's connection timers: a token-expiry check.
const TOKEN_CHECK: u64 = 1;

/// The token of the hub's tick: expiring old history.
const HISTORY_EXPIRY: u64 = 1;

/// How often history past its TTL is dropped.
const HISTORY_EXPIRY_EVERY: Duration = Duration::from_secs(60);

/// The path the hub is routed at, unless an embedder's route takes it first.
pub(in crate::server) const HUB_PATH: &str = "/ws";

/// The hub at `/ws`.
#[derive(Debug)]
pub(in crate::server) struct HubApp {
    /// Frame and message limits of its connections (`server.hub_limits`).
    limits: Limits,
    /// Anonymous clients are guests (`auth.anonymous = "guest"`): none may name itself.
    anonymous_is_guest: bool,
    /// The id the publish API sends as, which no client may take.
    sender_id: String,
    /// Connections one user may have open (`server.max_connections_per_user`, 0: any).
    max_per_user: usize,
    /// Each open connection's user.
    users: HashMap<ConnId, String>,
    /// Open connections by user.
    per_user: HashMap<String, usize>,
    /// When each connection's live token-expiry check fires: timers armed for an earlier
    /// deadline and superseded since are stale and ignored, so each connection has one
    /// live check however often it refreshes.
    token_checks: HashMap<ConnId, Instant>,
}

impl HubApp {
    /// The hub as `config` sets it up.
    pub(in crate::server) fn new(config: &ServerConfig) -> Self {
        Self {
            limits: config.hub_limits,
            anonymous_is_guest: config.auth.anonymous_is_guest(),
            sender_id: config.api.sender_id.clone(),
            max_per_user: config.max_connections_per_user,
            users: HashMap::new(),
            per_user: HashMap::new(),
            token_checks: HashMap::new(),
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
            (None, Some(user)) => match check_user_id(&user, &self.sender_id) {
                Ok(()) => Ok(Some(user)),
                Err(refused) => Err(Refusal::new(400, format!("user_id: {refused}"))),
            },
            (None, None) if request.head.has_query_key("user_id") => Err(Refusal::new(
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
        let leeway = ctx.server.config.auth.leeway_secs();
        let left = time_left(expires_at, leeway, ctx.server.wall_now.wall);
        let delay = left.min(TOKEN_RECHECK);
        self.token_checks.insert(conn, after(ctx.now(), delay));
        ctx.timer(conn, delay, TOKEN_CHECK);
    }

    /// A `refresh` replaced the connection's token. A later expiry needs nothing yet (the
    /// live check re-arms when it fires); an earlier one gets its own check now.
    fn token_renewed(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(expires_at) = ctx.server.hub.token_expiry(conn) else {
            return;
        };
        let leeway = ctx.server.config.auth.leeway_secs();
        let left = time_left(expires_at, leeway, ctx.server.wall_now.wall);
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
        let Some(expires_at) = ctx.server.hub.token_expiry(conn) else {
            return;
        };
        let leeway = ctx.server.config.auth.leeway_secs();
        if time_left(expires_at, leeway, ctx.server.wall_now.wall).is_zero() {
            log::debug!("{conn}: token expired");
            ctx.close(conn, TOKEN_EXPIRED, "token expired");
        } else {
            self.arm_token_check(ctx, conn, expires_at);
        }
    }
}

impl App for HubApp {
    fn limits(&self) -> Option<Limits> {
        Some(self.limits)
    }

    /// Refuses a bad `user_id` (400), and a user with `max_connections_per_user` open
    /// already (429, `Retry-After`).
    fn on_upgrade(&mut self, request: &Request<'_>) -> Result<(), Refusal> {
        let max = self.max_per_user;
        if let Some(user) = self.user_of(request)?
            && max > 0
            && self.per_user.get(&user).copied().unwrap_or(0) >= max
        {
            let reason = format!("user already has {max} connections");
            return Err(Refusal::new(429, reason).header("Retry-After", "5"));
        }
        Ok(())
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.tick(HISTORY_EXPIRY_EVERY, HISTORY_EXPIRY);
    }

    /// Drops history past its TTL.
    fn on_tick(&mut self, ctx: &mut Ctx<'_>, _: u64) {
        ctx.tick(HISTORY_EXPIRY_EVERY, HISTORY_EXPIRY);
        let server = &mut *ctx.server;
        server.hub.expire_history(server.wall_now);
    }

    /// The Redis threads reported something: messages for members here, acks, answers.
    fn on_wake(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if ctx.server.drain_cluster(now) {
            let _ = ctx.waker().wake();
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: u64) {
        self.check_token(ctx, conn);
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        let now = ctx.now();
        let server = &mut *ctx.server;
        let identity = request.identity();
        // Checked in `on_upgrade`: a bad `user_id` never gets here.
        let user = self.user_of(request).ok().flatten();
        let user = user.unwrap_or_else(new_guest_id);
        *self.per_user.entry(user.clone()).or_default() += 1;
        self.users.insert(conn, user.clone());
        let credentials = match identity {
            Some(identity) => Credentials {
                authenticated: true,
                claims: identity.rooms.clone(),
                expires_at: Some(identity.expires_at),
            },
            None if server.config.auth.anonymous_is_guest() => Credentials::default(),
            None => Credentials::trusted(),
        };
        let expiry = credentials.expires_at;
        server.hub.connect_with(
            conn,
            &user,
            credentials,
            server.wall_now,
            &mut server.outbox,
        );
        server.apply_outbox(now);
        if let Some(expiry) = expiry {
            log::debug!("{conn}: user {user}, token expires at {expiry}");
            self.arm_token_check(ctx, conn, expiry);
        }
    }

    /// The hub's answers go to the outbox, which the engine applies once the whole input
    /// is read (`read_conn`): one pass for a run of requests.
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        let server = &mut *ctx.server;
        match message {
            Message::Text(text) => {
                inject_panic(text.as_bytes());
                server
                    .hub
                    .on_text(conn, text, server.wall_now, &mut server.outbox);
            }
            Message::Binary(_) => server
                .hub
                .on_binary(conn, server.wall_now, &mut server.outbox),
        }
        // A `refresh` answered here is the only source of renewed tokens.
        for renewed in std::mem::take(&mut server.outbox.renewed) {
            self.token_renewed(ctx, renewed);
        }
    }

    /// Every departure of the batch at once: one presence frame per remaining member per
    /// room, however many left (see [`super::settle`]).
    fn on_closes(&mut self, ctx: &mut Ctx<'_>, closed: &[Closed<'_>]) {
        let now = ctx.now();
        let leaving: Vec<ConnId> = closed.iter().map(|c| c.conn).collect();
        for conn in &leaving {
            self.token_checks.remove(conn);
            if let Some(user) = self.users.remove(conn)
                && let Some(count) = self.per_user.get_mut(&user)
            {
                *count -= 1;
                if *count == 0 {
                    self.per_user.remove(&user);
                }
            }
        }
        depart(ctx.server, &leaving, now);
    }
}

/// Tells the hub of departures and applies what it answers.
fn depart(server: &mut Server, leaving: &[ConnId], now: Instant) {
    server
        .hub
        .disconnect_all(leaving, server.wall_now, &mut server.outbox);
    server.apply_outbox(now);
}
