//! Server API requests that wait for every node's part (clustered): the question goes out
//! on the bus, each node answers with its part, and the request is answered once every
//! live node has, or at [`GATHER_WAIT`] with the silent ones listed as `missing`.
//!
//! This node answers its own part at once, from its own tables, and ignores its question
//! when the bus brings it back. Parts from a node twice count once. At most
//! [`MAX_GATHERS`] requests wait at a time (503 beyond): a stuck bus cannot grow memory.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::server_api::{ApiCall, gathered, history_answer};
use super::state::HubState;
use crate::cluster::Command;
use crate::cluster::query::{self, Ask, Line, Part, Question, Reply};
use crate::hub::overview::HistoryPage;
use crate::hub::remote::Fetched;
use crate::protocol::http::Response;
use crate::server::ConnId;
use crate::server::Ctx;
use crate::server::after;

/// How long a request waits for the other nodes' parts.
pub(crate) const GATHER_WAIT: Duration = Duration::from_secs(1);
/// The most requests waiting at once.
pub(crate) const MAX_GATHERS: usize = 64;

/// One request waiting for parts.
#[derive(Debug)]
pub(crate) struct Gather {
    /// The API request.
    conn: ConnId,
    /// What it asked.
    ask: Ask,
    /// The parts so far, by node.
    parts: HashMap<String, Part>,
    /// The nodes alive when the question went out, once Redis said.
    expected: Option<Vec<String>>,
    /// When it is answered with whatever is in.
    deadline: Instant,
}

impl Gather {
    /// Whether every expected node has answered.
    fn complete(&self) -> bool {
        self.expected
            .as_ref()
            .is_some_and(|nodes| nodes.iter().all(|n| self.parts.contains_key(n)))
    }

    /// The expected nodes that have not answered, sorted.
    fn missing(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .expected
            .iter()
            .flatten()
            .filter(|n| !self.parts.contains_key(*n))
            .cloned()
            .collect();
        missing.sort_unstable();
        missing
    }
}

/// The requests waiting for parts, by question number.
#[derive(Debug, Default)]
pub(crate) struct Gathers {
    next: u64,
    pending: HashMap<u64, Gather>,
}

impl Gathers {
    /// Registers a request with this node's part; its question number, or `None` when
    /// [`MAX_GATHERS`] already wait.
    fn start(&mut self, conn: ConnId, ask: Ask, me: &str, part: Part, now: Instant) -> Option<u64> {
        // A request whose client went away is never answered, and its timer is ignored:
        // forget it a while after its deadline.
        let stale = now.checked_sub(GATHER_WAIT).unwrap_or(now);
        self.pending.retain(|_, g| g.deadline > stale);
        if self.pending.len() >= MAX_GATHERS {
            return None;
        }
        self.next += 1;
        let gather = Gather {
            conn,
            ask,
            parts: HashMap::from([(me.to_owned(), part)]),
            expected: None,
            deadline: after(now, GATHER_WAIT),
        };
        self.pending.insert(self.next, gather);
        Some(self.next)
    }

    /// Redis said which nodes are alive; the request if it is now complete.
    fn asked(&mut self, qid: u64, nodes: Vec<String>) -> Option<Gather> {
        let gather = self.pending.get_mut(&qid)?;
        gather.expected = Some(nodes);
        self.take_if_complete(qid)
    }

    /// A node's part; the request if it is now complete.
    fn answered(&mut self, reply: Reply) -> Option<Gather> {
        let gather = self.pending.get_mut(&reply.qid)?;
        gather.parts.entry(reply.node).or_insert(reply.part);
        self.take_if_complete(reply.qid)
    }

    fn take_if_complete(&mut self, qid: u64) -> Option<Gather> {
        if self.pending.get(&qid).is_some_and(Gather::complete) {
            return self.pending.remove(&qid);
        }
        None
    }

    /// Takes every request whose deadline has come.
    fn due(&mut self, now: Instant) -> Vec<Gather> {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, g)| g.deadline <= now)
            .map(|(qid, _)| *qid)
            .collect();
        due.iter()
            .filter_map(|qid| self.pending.remove(qid))
            .collect()
    }
}

impl HubState {
    /// Answers a read of the server API (in [`HubState::api_answers`]): at once alone, after
    /// the other nodes clustered.
    pub(crate) fn run_call(&mut self, ctx: &mut Ctx<'_>, id: ConnId, call: ApiCall, now: Instant) {
        match call {
            ApiCall::Ask(ask) => self.run_ask(ctx, id, ask, now),
            ApiCall::History { room, since, limit } => {
                self.read_history(ctx, id, room, since, limit);
            }
        }
    }

    /// Runs `ask` here and, clustered, on every other node (the answer waits until they
    /// have answered, or until [`GATHER_WAIT`]: the caller calls [`HubState::gathers_due`]
    /// then).
    pub(crate) fn run_ask(&mut self, ctx: &mut Ctx<'_>, id: ConnId, ask: Ask, now: Instant) {
        let clustered = self.cluster.is_some();
        if clustered && !self.cluster.as_ref().is_some_and(|c| c.publisher_up()) {
            return self.api_respond(
                id,
                unavailable("Redis is unavailable: the other nodes cannot be asked"),
            );
        }
        let part = self.local_part(ctx, &ask, now);
        let me = self.node.clone();
        if !clustered {
            let info = self.node_info(ctx, now);
            return self.api_respond(id, gathered(&ask, &info, vec![part], Vec::new()));
        }
        let Some(qid) = self.gathers.start(id, ask.clone(), &me, part, now) else {
            return self.api_respond(
                id,
                unavailable("too many API requests are waiting for the other nodes"),
            );
        };
        let line = query::encode_question(&Question {
            asker: me,
            qid,
            ask,
        });
        let submitted = self
            .cluster
            .as_mut()
            .is_some_and(|c| c.submit(Command::Ask { qid, line }).is_ok());
        if !submitted {
            self.gathers.pending.remove(&qid);
            self.api_respond(id, unavailable("the cluster queue is full"));
        }
    }

    /// This node's part of `ask` (a disconnect closes the user's connections here).
    fn local_part(&mut self, ctx: &mut Ctx<'_>, ask: &Ask, now: Instant) -> Part {
        match ask {
            Ask::Info => Part::Info {
                info: self.node_info(ctx, now),
            },
            Ask::Rooms => Part::Rooms {
                rooms: self.hub.room_counts(),
            },
            Ask::Presence { room } => Part::Presence {
                users: self.hub.room_users(room),
            },
            Ask::Disconnect {
                user_id,
                code,
                reason,
            } => {
                let conns = self.hub.user_connections(user_id);
                for conn in &conns {
                    ctx.close(*conn, *code, reason);
                }
                self.apply_outbox(ctx);
                if !conns.is_empty() {
                    log::info!(
                        "server API: closed {} connection(s) of {user_id} ({code} {reason})",
                        conns.len()
                    );
                }
                Part::Disconnected {
                    connections: conns.len(),
                }
            }
        }
    }

    /// A question or answer from the bus.
    pub(crate) fn on_query_line(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8], now: Instant) {
        let Some(line) = query::parse(bytes) else {
            log::warn!(
                "malformed server API line on the bus: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            );
            return;
        };
        let me = self.node.clone();
        match line {
            Line::Question(question) if question.asker != me => {
                let part = self.local_part(ctx, &question.ask, now);
                let reply = query::encode_reply(&Reply {
                    asker: question.asker,
                    qid: question.qid,
                    node: me,
                    part,
                });
                if let Some(cluster) = self.cluster.as_mut()
                    && cluster.submit(Command::Note(reply)).is_err()
                {
                    log::warn!("server API: could not queue an answer for another node");
                }
            }
            Line::Question(_) => {} // Ours, answered when asked.
            Line::Reply(reply) if reply.asker == me => {
                if let Some(gather) = self.gathers.answered(reply) {
                    self.finish_gather(ctx, gather, now);
                }
            }
            Line::Reply(_) => {} // Another node's.
        }
    }

    /// Redis published a question; these nodes should answer.
    pub(crate) fn on_asked(
        &mut self,
        ctx: &mut Ctx<'_>,
        qid: u64,
        nodes: Vec<String>,
        now: Instant,
    ) {
        if let Some(gather) = self.gathers.asked(qid, nodes) {
            self.finish_gather(ctx, gather, now);
        }
    }

    /// A question could not be published.
    pub(crate) fn on_ask_failed(&mut self, qid: u64) {
        if let Some(gather) = self.gathers.pending.remove(&qid) {
            self.api_respond(gather.conn, unavailable("Redis did not take the question"));
        }
    }

    /// Answers every request whose gather deadline has come.
    pub(crate) fn gathers_due(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        for gather in self.gathers.due(now) {
            if gather.expected.is_none() {
                // Redis has not even said who is alive: the question may not be out.
                let refusal = unavailable("the other nodes did not answer in time");
                self.api_respond(gather.conn, refusal);
            } else {
                self.finish_gather(ctx, gather, now);
            }
        }
    }

    /// Answers a gathered request.
    fn finish_gather(&mut self, ctx: &mut Ctx<'_>, gather: Gather, now: Instant) {
        let missing = gather.missing();
        let info = self.node_info(ctx, now);
        let parts = gather.parts.into_values().collect();
        let response = gathered(&gather.ask, &info, parts, missing);
        self.api_respond(gather.conn, response);
    }

    /// Answers a history request: from this node's history alone, from Redis clustered.
    fn read_history(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: ConnId,
        room: String,
        since: u64,
        limit: usize,
    ) {
        if !self.hub.history_enabled() {
            let refusal = super::api::json_error(
                404,
                "history_off",
                "room history is off (history.size = 0)",
            );
            return self.api_respond(id, refusal);
        }
        let Some(cluster) = self.cluster.as_mut() else {
            let page = self.hub.history_page(
                &room,
                since,
                limit,
                crate::hub::time::unix_millis(ctx.wall_clock()),
            );
            return self.api_respond(id, history_answer(&room, page));
        };
        if !cluster.publisher_up() {
            return self.api_respond(
                id,
                unavailable("Redis is unavailable: history cannot be read"),
            );
        }
        let command = Command::ReadHistory {
            conn: id,
            room,
            since,
            limit,
        };
        if cluster.submit(command).is_err() {
            self.api_respond(id, unavailable("the cluster queue is full"));
        }
    }

    /// Redis answered a history read.
    pub(crate) fn on_history_read(&mut self, id: ConnId, room: &str, fetched: Option<Fetched>) {
        let page = fetched.map(|fetched| HistoryPage {
            room: room.to_owned(),
            epoch: fetched.epoch,
            last: fetched.last,
            messages: fetched
                .entries
                .iter()
                .filter_map(crate::hub::overview::client_json)
                .collect(),
        });
        self.api_respond(id, history_answer(room, page));
    }

    /// Leaves the answer to API request `id` for the hub app, which gives it.
    pub(crate) fn api_respond(&mut self, id: ConnId, response: Response) {
        self.api_answers.push((id, response));
    }
}

/// 503 `unavailable` with `Retry-After`.
fn unavailable(message: &str) -> Response {
    super::api::json_error(503, "unavailable", message).header("Retry-After", "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(qid: u64, node: &str) -> Reply {
        Reply {
            asker: "a".into(),
            qid,
            node: node.into(),
            part: Part::Disconnected { connections: 1 },
        }
    }

    #[test]
    fn a_request_completes_when_every_live_node_answered() {
        let now = Instant::now();
        let mut gathers = Gathers::default();
        let conn = ConnId::new(1, 1);
        let part = Part::Disconnected { connections: 2 };
        let qid = gathers
            .start(conn, Ask::Rooms, "a", part, now)
            .expect("room for it");
        // An answer may come before Redis says who is alive.
        assert!(gathers.answered(reply(qid, "b")).is_none());
        assert!(
            gathers
                .asked(qid, vec!["a".into(), "b".into(), "c".into()])
                .is_none()
        );
        assert!(
            gathers.answered(reply(qid, "b")).is_none(),
            "b twice counts once"
        );
        assert!(
            gathers.answered(reply(qid + 1, "c")).is_none(),
            "another question"
        );
        let done = gathers.answered(reply(qid, "c")).expect("complete");
        assert_eq!(done.parts.len(), 3);
        assert!(done.missing().is_empty());
        assert!(gathers.pending.is_empty());
    }

    #[test]
    fn at_the_deadline_the_silent_nodes_are_missing() {
        let now = Instant::now();
        let mut gathers = Gathers::default();
        let conn = ConnId::new(2, 1);
        let part = Part::Disconnected { connections: 0 };
        let qid = gathers
            .start(conn, Ask::Info, "a", part, now)
            .expect("room");
        assert!(
            gathers
                .asked(qid, vec!["a".into(), "c".into(), "b".into()])
                .is_none()
        );
        assert!(gathers.due(now).is_empty(), "not yet");
        let due = gathers.due(now + GATHER_WAIT);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].conn, conn);
        assert_eq!(due[0].missing(), ["b", "c"]);
        assert!(gathers.pending.is_empty(), "taken");
    }

    #[test]
    fn waiting_requests_are_bounded() {
        let now = Instant::now();
        let mut gathers = Gathers::default();
        for i in 0..MAX_GATHERS {
            let conn = ConnId::new(u32::try_from(i).expect("small"), 1);
            let part = Part::Disconnected { connections: 0 };
            assert!(gathers.start(conn, Ask::Rooms, "a", part, now).is_some());
        }
        let part = Part::Disconnected { connections: 0 };
        assert!(
            gathers
                .start(ConnId::new(999, 1), Ask::Rooms, "a", part, now)
                .is_none()
        );
    }
}
