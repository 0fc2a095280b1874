//! Between the loop and the Redis threads: bus requests, history fetches and catch-ups
//! out; acks, messages, fetch results and connection state in.
//!
//! A client's message is acked when Redis has it ([`Event::Done`]), not when it is queued.
//! A message Redis cannot take (the queue is full, Redis is away or does not answer in
//! time) is refused with `unavailable`, or, with `cluster.when_redis_down = "local"`,
//! delivered on this node only; it never silently becomes a local-only delivery.

use std::time::Instant;

use super::clock;
use super::state::HubState;
use crate::cluster::bus::BusMessage;
use crate::cluster::{Command, Event, Outgoing, Side, WhenDown};
use crate::cluster::{presence, query};
use crate::hub::presence::PresenceNote;
use crate::hub::remote::RemoteMessage;
use crate::hub::{Answer, BusRequest, CatchUp, FetchRequest, Origin, Outbox};
use crate::server::Ctx;
use crate::server::Health;

/// Events handled per wake-up before the loop serves sockets again.
const EVENTS_PER_TURN: usize = 4096;

/// What a refused sender is told to wait: Redis away, or the queue to it full.
const RETRY_AFTER_MS: u64 = 1000;

impl HubState {
    /// Sends the hub's presence changes and roster reads to Redis, its new messages to
    /// the bus, and its history reads to Redis. Roster reads go before history reads, so a
    /// join waiting for both gets its roster first (the publisher runs commands in order).
    pub(crate) fn route_to_bus(&mut self, ctx: &mut Ctx<'_>, outbox: &mut Outbox) {
        for change in std::mem::take(&mut outbox.presence) {
            self.submit(ctx, Command::Presence(change));
        }
        for room in std::mem::take(&mut outbox.rosters) {
            self.submit(ctx, Command::Roster { room });
        }
        for request in std::mem::take(&mut outbox.bus) {
            self.submit_message(ctx, request);
        }
        for FetchRequest { conn, room, since } in std::mem::take(&mut outbox.fetches) {
            self.submit(ctx, Command::Fetch { conn, room, since });
        }
        for CatchUp {
            room,
            since,
            position_only,
        } in std::mem::take(&mut outbox.catch_ups)
        {
            self.submit(
                ctx,
                Command::CatchUp {
                    room,
                    since,
                    position_only,
                },
            );
        }
    }

    fn submit_message(&mut self, ctx: &mut Ctx<'_>, request: BusRequest) {
        let message = RemoteMessage::from(&request);
        let Some(cluster) = self.cluster.as_ref() else {
            return self.fall_back(&message, request.origin.as_ref());
        };
        if cluster.when_down() == WhenDown::Local && !cluster.is_up() {
            return self.fall_back(&message, request.origin.as_ref());
        }
        let out = Outgoing {
            bus: BusMessage {
                node: cluster.node().to_owned(),
                message,
            },
            pid: request.pid,
            origin: request.origin,
        };
        self.submit(
            ctx,
            if request.history {
                Command::Append(out)
            } else {
                Command::Publish(out)
            },
        );
    }

    fn submit(&mut self, ctx: &mut Ctx<'_>, command: Command) {
        let result = match self.cluster.as_mut() {
            Some(cluster) => cluster.submit(command),
            None => Err(Box::new(command)),
        };
        if let Err(command) = result {
            self.on_failed(ctx, *command);
        }
    }

    /// Delivers a message on this node only (`when_redis_down = "local"`), and acks it so.
    fn fall_back(&mut self, message: &RemoteMessage, origin: Option<&Origin>) {
        self.counters.cluster_fallbacks += 1;
        let recipients = self.hub.deliver_locally(message, &mut self.outbox);
        if let Some(origin) = origin.filter(|o| o.api.is_some()) {
            self.api_outcome(origin, Ok(None), Some(recipients));
        } else if let Some(origin) = origin {
            self.hub
                .answer(origin, Answer::Delivered(recipients), &mut self.outbox);
        }
    }

    /// A command the Redis threads could not run (or that could not be queued).
    fn on_failed(&mut self, ctx: &mut Ctx<'_>, command: Command) {
        match command {
            Command::Publish(out) | Command::Append(out) => {
                if self.cluster.as_ref().map(|c| c.when_down()) == Some(WhenDown::Local) {
                    return self.fall_back(&out.bus.message, out.origin.as_ref());
                }
                self.counters.cluster_refusals += 1;
                match &out.origin {
                    Some(origin) if origin.api.is_some() => self.api_outcome(origin, Err(()), None),
                    Some(origin) => {
                        let refused = Answer::Unavailable {
                            retry_after_ms: RETRY_AFTER_MS,
                            why: "the cluster cannot take messages right now; retry with the \
                                  same id",
                        };
                        self.hub.answer(origin, refused, &mut self.outbox);
                    }
                    None => log::warn!("a message could not be put in Redis: dropped"),
                }
            }
            Command::Fetch { conn, room, since } => {
                self.hub
                    .finish_fetch(conn, &room, &since, None, &mut self.outbox);
            }
            Command::CatchUp { room, since, .. } => {
                self.hub
                    .finish_catch_up(&room, &since, None, &mut self.outbox);
            }
            Command::Presence(_) | Command::PresenceSync(_) => {
                if let Some(cluster) = self.cluster.as_mut() {
                    cluster.mark_presence_stale();
                }
            }
            Command::Roster { room } => {
                // The node answers with what it knows.
                self.hub
                    .finish_roster(&room, None, clock(ctx), &mut self.outbox);
            }
            Command::Ask { qid, .. } => self.on_ask_failed(qid),
            // The asker lists this node as missing.
            Command::Note(_) => log::warn!("server API: an answer to another node was lost"),
            Command::ReadHistory { conn, room, .. } => {
                let message =
                    format!("Redis did not answer: the history of `{room}` cannot be read");
                let refusal =
                    super::api::json_error(503, "unavailable", &message).header("Retry-After", "1");
                self.api_respond(conn, refusal);
            }
        }
    }

    /// Handles what the Redis threads reported since the last wake-up, at most
    /// [`EVENTS_PER_TURN`]; returns whether more may be waiting (then wake again, so the
    /// loop serves sockets in between).
    pub(crate) fn drain_cluster(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(cluster) = self.cluster.as_mut() else {
            return false;
        };
        let events = cluster.drain(EVENTS_PER_TURN);
        let more = events.len() == EVENTS_PER_TURN;
        for event in events {
            // A panic drops that event's work, and the others go on.
            if ctx.contained("cluster event", |ctx| self.on_cluster_event(ctx, event)) {
                self.outbox = Outbox::default();
            }
        }
        if ctx.contained("cluster delivery", |ctx| self.apply_outbox(ctx)) {
            self.outbox = Outbox::default();
        }
        more
    }

    fn on_cluster_event(&mut self, ctx: &mut Ctx<'_>, event: Event) {
        match event {
            Event::Message(bytes) if presence::is_note(&bytes) => {
                self.on_presence_note(ctx, &bytes)
            }
            Event::Message(bytes) if query::is_query(&bytes) => {
                self.on_query_line(ctx, &bytes, Instant::now());
            }
            Event::Message(bytes) => match BusMessage::parse(&bytes) {
                Some(bus) => {
                    self.counters.bus_messages += 1;
                    self.hub.on_remote(&bus.message, &mut self.outbox);
                }
                None => log::warn!("dropped a malformed bus message ({} bytes)", bytes.len()),
            },
            Event::Done { origin, position } => {
                if let Some(origin) = origin.as_ref().filter(|o| o.api.is_some()) {
                    self.api_outcome(origin, Ok(position), None);
                } else if let Some(origin) = origin {
                    let position = position.as_ref().map(|(o, e)| (*o, e.as_str()));
                    self.hub
                        .answer(&origin, Answer::Published(position), &mut self.outbox);
                }
            }
            Event::Failed(command) => self.on_failed(ctx, command),
            Event::Fetched {
                conn,
                room,
                since,
                fetched,
            } => {
                self.hub
                    .finish_fetch(conn, &room, &since, fetched, &mut self.outbox);
            }
            Event::CaughtUp {
                room,
                since,
                fetched,
            } => {
                self.hub
                    .finish_catch_up(&room, &since, Some(fetched), &mut self.outbox);
            }
            Event::Rostered { room, mut roster } => {
                let node = self.cluster.as_ref().map(|c| c.node().to_owned());
                roster.retain(|(n, _)| Some(n) != node.as_ref());
                self.hub
                    .finish_roster(&room, Some(&roster), clock(ctx), &mut self.outbox);
            }
            Event::Beat { revived } => self.on_beat(ctx, revived),
            Event::Asked { qid, nodes } => self.on_asked(ctx, qid, nodes, Instant::now()),
            Event::HistoryRead {
                conn,
                room,
                fetched,
            } => self.on_history_read(conn, &room, fetched),
            Event::Up(side) => self.on_up(side),
            Event::Down(side, why) => {
                self.counters.redis_disconnects += 1;
                log::warn!("redis {}: {why}", side_name(side));
            }
        }
    }

    /// A presence note from the bus; this node's own notes are dropped (its hub knows).
    fn on_presence_note(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8]) {
        let Some(note) = presence::parse(bytes) else {
            log::warn!("dropped a malformed presence note ({} bytes)", bytes.len());
            return;
        };
        let node = match &note {
            PresenceNote::Here { node, .. }
            | PresenceNote::Sync { node, .. }
            | PresenceNote::Gone { node } => node,
        };
        if self.cluster.as_ref().is_some_and(|c| c.node() == node) {
            return;
        }
        self.hub.on_presence(&note, clock(ctx), &mut self.outbox);
    }

    /// A heartbeat: rewrites this node's presence in Redis when Redis lost it (or this
    /// node was declared dead, or a change could not be recorded).
    fn on_beat(&mut self, ctx: &mut Ctx<'_>, revived: bool) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if cluster.take_presence_stale() | revived {
            if revived {
                log::info!("presence: rewriting this node's rooms in Redis");
            }
            let rooms = self.hub.local_presence();
            self.submit(ctx, Command::PresenceSync(rooms));
        }
    }

    /// A connection is back: a new subscription catches up every room with members here
    /// (what was published meanwhile never reached this node) and reads their rosters
    /// again (presence notes were missed too); a new publisher retries the catch-ups that
    /// failed.
    fn on_up(&mut self, side: Side) {
        let up = self.cluster.as_ref().is_some_and(|c| c.is_up());
        log::info!(
            "redis {}: connected{}",
            side_name(side),
            if up { "; cluster delivery resumed" } else { "" }
        );
        match side {
            Side::Subscriber => {
                self.hub.catch_up_all(&mut self.outbox);
                self.hub.reread_rosters(&mut self.outbox);
            }
            Side::Publisher => self.hub.retry_gaps(&mut self.outbox),
        }
    }

    /// The hub's part of `/readyz`: not ready while clustered and Redis has not been
    /// reached since start (clients sent here could not reach the rest of the cluster),
    /// degraded while Redis is away after that.
    pub(crate) fn health(&self) -> Health {
        let Some(cluster) = self.cluster.as_ref() else {
            return Health::Ready;
        };
        if !cluster.was_up() {
            Health::NotReady("redis not reached yet".to_owned())
        } else if !cluster.is_up() {
            Health::Degraded(
                if cluster.when_down() == WhenDown::Local {
                    "redis unavailable, serving local clients only"
                } else {
                    "redis unavailable, refusing new messages"
                }
                .to_owned(),
            )
        } else {
            Health::Ready
        }
    }

    /// Whether the cluster has answered every command (or there is none).
    pub(crate) fn cluster_idle(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.idle())
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Publisher => "publisher",
        Side::Subscriber => "subscriber",
    }
}
