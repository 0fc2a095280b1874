//! Publications held until the end of the loop's turn, then queued subscriber by
//! subscriber, each subscriber written as soon as its frames are queued.
//!
//! A message published to a topic is queued to every subscriber; the subscribers are
//! written when the turn's output is flushed. Queued at once, a publisher's run of
//! messages (16 of them to 100 subscribers: 1,600 queue entries) is all queued before the
//! first subscriber is written, and every subscriber waits for that. Held instead, the
//! run's frames are queued to the first subscriber and written, then to the second, and
//! so on: the first subscriber has its messages after 16 entries, and the kernel's work
//! of delivering them overlaps the queueing for the rest. uWebSockets' `TopicTree` drains
//! the same way, at the end of its loop's iteration.
//!
//! Holding them must not change what any connection sees, so they are queued (in the
//! order they were published) before anything else can reach a subscriber:
//!
//! - any [`Ctx`](super::Ctx) call that sends, closes, subscribes or unsubscribes
//!   (`Ctx::buffered_amount` counts what is held for the connection);
//! - the next socket event, ready connection or timer of the turn, and the end of a run
//!   of messages with more input after it (a control frame's answer follows the run's
//!   publications);
//! - the engine closing a connection (`close_conn`, the budget's 1013, the safety net's
//!   1011);
//! - a publish to another topic, or while the connection being read has failed (its
//!   close frame follows the run's answers).
//!
//! Only frames for one topic are held at a time. What is still held when the turn's
//! output is flushed is written there ([`Server::write_publications`]): to a subscriber
//! with nothing queued and no compression (the common case), straight from the shared
//! frames, gathered into one write, with only what its socket does not take queued
//! (`OutQueue::write_shared`); to any other, through its queue as before.

use std::time::Instant;

use super::app_ctx::Topic;
use super::apps::AppId;
use super::conn::{ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::fan_out::Queued;
use super::outbound::SharedFrame;
use crate::protocol::CloseCode;

/// The frames published to one topic this turn and not yet queued.
#[derive(Debug, Default)]
pub(super) struct Publications {
    /// The app and topic the frames go to; `None` while nothing is held.
    topic: Option<(AppId, Topic)>,
    /// In the order they were published; empty exactly when `topic` is `None`.
    frames: Vec<SharedFrame>,
}

impl Publications {
    /// Whether nothing is held.
    #[inline(always)]
    pub(super) fn is_empty(&self) -> bool {
        self.topic.is_none()
    }

    /// Whether the held frames go to `topic` of `app` (`false` while nothing is held).
    #[inline]
    pub(super) fn holds(&self, app: AppId, topic: &str) -> bool {
        self.topic
            .as_ref()
            .is_some_and(|(a, t)| *a == app && &**t == topic)
    }

    /// Holds one more frame for `topic` of `app`: after the ones held, which must be for
    /// the same topic (see [`Publications::holds`]), or none.
    pub(super) fn hold(&mut self, app: AppId, topic: &Topic, frame: SharedFrame) {
        debug_assert!(self.is_empty() || self.holds(app, topic));
        if self.topic.is_none() {
            self.topic = Some((app, topic.clone()));
        }
        self.frames.push(frame);
    }

    /// Bytes held for a subscriber of the held topic.
    pub(super) fn held_bytes(&self) -> usize {
        self.frames.iter().map(|frame| frame.len()).sum()
    }

    /// The app and topic held for, if any.
    pub(super) fn topic(&self) -> Option<(AppId, &str)> {
        self.topic.as_ref().map(|(app, topic)| (*app, &**topic))
    }
}

impl Server {
    /// Queues what is held before anything else reaches a subscriber (the points listed in
    /// this module's documentation). `current` is the connection being read, if any,
    /// `failing` whether it failed on input after the messages being handled (it still
    /// takes the answers to them, ahead of its close frame).
    #[inline(always)]
    pub(super) fn settle_publications(
        &mut self,
        current: Option<ConnId>,
        failing: bool,
        now: Instant,
    ) {
        if !self.publications.is_empty() {
            self.settle_held(current, failing, now);
        }
    }

    /// [`Server::settle_publications`] with something held: out of the hot paths it is
    /// checked on (every `Ctx::send`, every socket event).
    #[cold]
    #[inline(never)]
    fn settle_held(&mut self, current: Option<ConnId>, failing: bool, now: Instant) {
        self.queue_publications(current, failing, false, now);
    }

    /// Queues what is held, each subscriber written as soon as its frames are queued: the
    /// end of the turn's work, from [`Server::flush_dirty`].
    #[inline]
    pub(super) fn write_publications(&mut self, now: Instant) {
        if !self.publications.is_empty() {
            self.queue_publications(None, false, true, now);
        }
    }

    /// Queues the held frames to each subscriber in turn, writing it at once if `write`;
    /// then closes those that could not take them.
    fn queue_publications(
        &mut self,
        current: Option<ConnId>,
        failing: bool,
        write: bool,
        now: Instant,
    ) {
        let Some((app, topic)) = self.publications.topic.take() else {
            return;
        };
        let frames = std::mem::take(&mut self.publications.frames);
        let Some(subscribers) = self.apps.take_subscribers(app, &topic) else {
            return self.reuse_frames(frames);
        };
        let takes_failed = |to: ConnId| failing && current == Some(to);
        let mut refused = Vec::new();
        let total: usize = frames.iter().map(|frame| frame.len()).sum();
        for &to in &subscribers {
            if write && self.write_held(app, to, &frames, total, now) {
                continue;
            }
            let mut queued = false;
            for frame in &frames {
                match self.queue_shared(app, to, frame, || takes_failed(to)) {
                    Queued::Sent => queued = true,
                    Queued::Skipped => break,
                    outcome => {
                        refused.push((to, outcome));
                        break;
                    }
                }
            }
            if write && queued {
                self.write_now(to, now);
            }
        }
        // Closing a subscriber unsubscribes it: not while the list is taken out.
        self.apps.restore_subscribers(app, &topic, subscribers);
        self.reuse_frames(frames);
        for (to, outcome) in refused {
            self.refused_delivery(to, outcome, current, now);
        }
    }

    /// The common case of a turn's end: `to` has nothing queued and no compression, and
    /// takes the frames (`total` bytes) within its cap. They are written straight from the
    /// shared frames, what the socket does not take queued for the flush. `false`, with
    /// nothing done, if `to` is not that case.
    #[inline]
    fn write_held(
        &mut self,
        app: AppId,
        to: ConnId,
        frames: &[SharedFrame],
        total: usize,
        now: Instant,
    ) -> bool {
        let cap = self.config.max_outbound_bytes;
        let Some(conn) = conn_mut(&mut self.conns, to) else {
            return false;
        };
        let Phase::Open(open) = &conn.phase else {
            return false;
        };
        let plain = open.session.deflate().is_none() && open.session.can_send();
        if open.app != app || !plain || !conn.out.is_empty() || total > cap {
            return false;
        }
        let written = conn
            .out
            .write_shared(&mut conn.socket, &mut self.pool, frames);
        let flushed = conn.socket.flush_transport().is_ok();
        if written > 0 {
            conn.write_progress = now; // for the stall check (`track_stall`)
        }
        self.stats.bytes_out += written as u64;
        self.stats.messages_out += frames.len() as u64;
        if !conn.out.is_empty() || !flushed {
            // The flush arms writable, or meets the write error.
            self.dirty.push(to);
        }
        true
    }

    /// Puts the (emptied) frame list back, to hold the next turn's without allocating.
    fn reuse_frames(&mut self, mut frames: Vec<SharedFrame>) {
        frames.clear();
        if self.publications.frames.is_empty() {
            self.publications.frames = frames;
        }
    }

    /// Writes what `id` has queued, as far as the socket takes it, and nothing else: no
    /// app is called and nothing is closed here. The connection is in the turn's flush
    /// list (or, its socket full earlier, waiting for writable), and that flush does the
    /// rest: arming writable, acting on a write error, resuming reads.
    fn write_now(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let before = conn.out.len();
        if before == 0 {
            return;
        }
        // An error or a full socket is met again, and acted on, by the flush.
        let _ = conn.out.flush(&mut conn.socket, &mut self.pool);
        let _ = conn.socket.flush_transport();
        if conn.out.len() < before {
            conn.write_progress = now; // for the stall check (`track_stall`)
        }
        self.stats.bytes_out += (before - conn.out.len()) as u64;
    }

    /// A recipient that could not take a shared frame: over the cap (closed 1008), or its
    /// compressor failed (closed 1011; the connection being read moves on after its
    /// input, `after_input`).
    pub(super) fn refused_delivery(
        &mut self,
        to: ConnId,
        outcome: Queued,
        current: Option<ConnId>,
        now: Instant,
    ) {
        match outcome {
            Queued::TooSlow => self.close_slow_consumer(to, now),
            Queued::Failed if current == Some(to) => {
                self.stats.close_sent(CloseCode::INTERNAL_ERROR.0);
            }
            Queued::Failed => self.compressor_failed(to, now),
            Queued::Sent | Queued::Skipped => {}
        }
    }
}
