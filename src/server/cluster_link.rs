//! Between the loop and the Redis threads: bus requests and history fetches out, messages,
//! fetch results and connection state in. When Redis cannot take a message it is delivered
//! locally instead, so a node's own clients are always served.

use std::time::Instant;

use super::event_loop::Server;
use crate::cluster::bus::BusMessage;
use crate::cluster::{Command, Event, Side};
use crate::hub::remote::RemoteMessage;
use crate::hub::{BusRequest, FetchRequest};

/// Events handled per wake-up before the loop serves sockets again.
const EVENTS_PER_TURN: usize = 4096;

impl Server {
    /// Sends the hub's new messages to the bus, or delivers them here if Redis is away.
    pub(super) fn route_to_bus(&mut self, requests: Vec<BusRequest>, fetches: Vec<FetchRequest>) {
        for request in requests {
            let message = RemoteMessage::from(&request);
            let Some(cluster) = self.cluster.as_mut().filter(|c| c.is_up()) else {
                self.fall_back(&message);
                continue;
            };
            let bus = BusMessage {
                node: cluster.node().to_owned(),
                message,
            };
            let command = if request.history {
                Command::Append(bus)
            } else {
                Command::Publish(bus)
            };
            if let Err(command) = cluster.submit(command) {
                self.on_failed(*command);
            }
        }
        for FetchRequest { conn, room, since } in fetches {
            let command = Command::Fetch { conn, room, since };
            match self.cluster.as_mut().filter(|c| c.is_up()) {
                Some(cluster) => {
                    if let Err(command) = cluster.submit(command) {
                        self.on_failed(*command);
                    }
                }
                None => self.on_failed(command),
            }
        }
    }

    /// Delivers a message locally because the bus could not take it.
    fn fall_back(&mut self, message: &RemoteMessage) {
        self.stats.cluster_fallbacks += 1;
        self.hub.deliver_locally(message, &mut self.outbox);
    }

    /// A command the Redis threads could not run.
    fn on_failed(&mut self, command: Command) {
        match command {
            Command::Publish(bus) | Command::Append(bus) => self.fall_back(&bus.message),
            Command::Fetch { conn, room, since } => {
                self.hub
                    .finish_fetch(conn, &room, &since, None, &mut self.outbox);
            }
        }
    }

    /// Handles what the Redis threads reported since the last wake-up.
    pub(super) fn drain_cluster(&mut self, now: Instant) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let events = cluster.drain(EVENTS_PER_TURN);
        let more = events.len() == EVENTS_PER_TURN;
        for event in events {
            self.isolated_shared("cluster event", |s| s.on_cluster_event(event));
        }
        self.isolated_shared("cluster delivery", |s| s.apply_outbox(now));
        if more {
            let _ = self.handle().wake();
        }
    }

    fn on_cluster_event(&mut self, event: Event) {
        match event {
            Event::Message(bytes) => match BusMessage::parse(&bytes) {
                Some(bus) => {
                    self.stats.bus_messages += 1;
                    self.hub.on_remote(&bus.message, &mut self.outbox);
                }
                None => log::warn!("dropped a malformed bus message ({} bytes)", bytes.len()),
            },
            Event::Failed(command) => self.on_failed(command),
            Event::Fetched {
                conn,
                room,
                since,
                fetched,
            } => {
                self.hub
                    .finish_fetch(conn, &room, &since, fetched, &mut self.outbox);
            }
            Event::Up(side) => {
                let up = self.cluster.as_ref().is_some_and(|c| c.is_up());
                log::info!(
                    "redis {}: connected{}",
                    side_name(side),
                    if up { "; cluster delivery resumed" } else { "" }
                );
            }
            Event::Down(side, why) => {
                self.stats.redis_disconnects += 1;
                log::warn!(
                    "redis {}: {why}; serving local clients only until it is back",
                    side_name(side)
                );
            }
        }
    }

    /// Whether the node runs clustered but without Redis.
    pub(super) fn degraded(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| !c.is_up())
    }

    /// Whether the node runs clustered and has not reached Redis since it started: not
    /// ready yet, rather than degraded.
    pub(super) fn cluster_never_up(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| !c.was_up())
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Publisher => "publisher",
        Side::Subscriber => "subscriber",
    }
}
