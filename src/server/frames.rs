//! What an open connection's events turn into: replies the protocol requires (pong, close
//! reply), and runs of messages for its app.

use super::conn::{ConnId, OpenConn};
use super::outbound::{BufPool, OutQueue};
use super::stats::Stats;
use crate::protocol::frame::starts_control_frame;
use crate::protocol::{Event, Read};

/// What frame processing needs from the loop, borrowed field by field.
pub(super) struct FrameCtx<'a> {
    pub(super) id: ConnId,
    pub(super) stats: &'a mut Stats,
    pub(super) pool: &'a mut BufPool,
    /// Scratch space for the control frames a read produces (pong, close reply).
    pub(super) ctrl: &'a mut Vec<u8>,
    /// The messages for the connection's app found in this input.
    pub(super) app: &'a mut AppInput,
    /// The peer's close code and reason, once its close frame arrived.
    pub(super) peer_close: &'a mut Option<(u16, String)>,
}

/// The messages of one input for the connection's app, found by [`read_frames`]; the app
/// is called with each once the connection is no longer borrowed. A run of messages is
/// read before the first call (one `read_frames` per input, not per message); it ends
/// before a control frame, so a pong or close reply never overtakes the replies to the
/// messages before it.
#[derive(Debug, Default)]
pub(super) struct AppInput {
    /// The messages, in order.
    pub(super) batch: Vec<AppMessage>,
    /// The text messages, one after another (copied, so each stays a checked `str`).
    pub(super) text: String,
    /// Binary messages that were not in the input (reassembled or inflated), one after
    /// another.
    pub(super) binary: Vec<u8>,
    /// The close frame of a protocol error found after the batch's messages: queued once
    /// their replies are.
    pub(super) failure: Vec<u8>,
}

impl AppInput {
    /// Forgets the last input's messages (keeps the memory).
    pub(super) fn clear(&mut self) {
        self.batch.clear();
        self.text.clear();
        self.binary.clear();
        self.failure.clear();
    }
}

/// Where a message for the app is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppMessage {
    /// Text, at these offsets of [`AppInput::text`].
    Text(usize, usize),
    /// Binary, at these offsets of the input `read_frames` was given (no copy).
    BinaryInInput(usize, usize),
    /// Binary, at these offsets of [`AppInput::binary`].
    BinaryCopied(usize, usize),
}

/// Reads the complete events in `input` and acts on them; returns the bytes consumed and
/// whether it stopped early, after a run of messages for the connection's app
/// ([`AppInput`]), with more to read.
///
/// Replies the protocol requires (pong, close reply) go straight into `out`, after what
/// the app answered to the run before them.
pub(super) fn read_frames(
    open: &mut OpenConn,
    out: &mut OutQueue,
    input: &mut [u8],
    ctx: &mut FrameCtx<'_>,
) -> (usize, bool) {
    let mut pos = 0;
    let base = input.as_ptr() as usize;
    let len = input.len();
    // A compressing session gives its app one message per call: the app's reply goes
    // through the same session, which must not have read further.
    let compresses = open.session.deflate().is_some();
    loop {
        let was_open = open.session.can_send();
        ctx.ctrl.clear();
        // Whether a message for the app was added to the batch.
        let added = match open.session.read(&mut input[pos..], ctx.ctrl) {
            Ok(Read { consumed, event }) => {
                pos += consumed;
                let Some(event) = event else {
                    send_ctrl(out, ctx);
                    return (pos, false);
                };
                count_event(&event, was_open, ctx.stats);
                match event {
                    Event::Close(frame) => {
                        let code = frame.code.map_or(1005, |c| c.0);
                        *ctx.peer_close = Some((code, frame.reason.to_owned()));
                        false
                    }
                    event => for_app(event, base, len, ctx),
                }
            }
            Err(error) => {
                log::debug!("{}: protocol error: {error}", ctx.id);
                ctx.stats.protocol_error(error.reason());
                if was_open {
                    ctx.stats.close_sent(error.close_code().0);
                }
                if ctx.app.batch.is_empty() {
                    send_ctrl(out, ctx);
                } else {
                    ctx.app.failure.extend_from_slice(ctx.ctrl);
                }
                return (input.len(), false);
            }
        };
        // §5.4: control frames may come between a message's fragments, but a run ends at
        // one only at a message boundary, which is where this is.
        if added && (compresses || pos == len || starts_control_frame(&input[pos..])) {
            send_ctrl(out, ctx);
            return (pos, pos < len);
        }
        send_ctrl(out, ctx);
    }
}

/// Queues what the session wrote (a pong, or the close frame) after everything before it.
///
/// Called after every event, nearly always with nothing to queue: the check is inlined
/// and the queueing is not (a call per message cost ~18 instructions under callgrind).
#[inline(always)]
fn send_ctrl(out: &mut OutQueue, ctx: &mut FrameCtx<'_>) {
    if !ctx.ctrl.is_empty() {
        queue_ctrl(out, ctx);
    }
}

/// [`send_ctrl`] when the session wrote something.
#[cold]
#[inline(never)]
fn queue_ctrl(out: &mut OutQueue, ctx: &mut FrameCtx<'_>) {
    let ctrl = &*ctx.ctrl;
    out.append(ctx.pool, |buf| buf.extend_from_slice(ctrl));
}

/// Counts messages and closes received, and the close reply when the session sent one
/// (only if it had not sent its own close before).
fn count_event(event: &Event<'_>, was_open: bool, stats: &mut Stats) {
    match event {
        Event::Text(_) | Event::Binary(_) => stats.messages_in += 1,
        Event::Close(frame) => {
            let code = frame.code.map_or(1005, |c| c.0);
            stats.close_received(code);
            if was_open {
                stats.close_sent(code);
            }
        }
        Event::Ping(_) | Event::Pong(_) => {}
    }
}

/// A data message for an app: where the loop will find it once the session is no longer
/// borrowed. Binary payloads still in the input (the common case: one unfragmented,
/// uncompressed frame) are not copied; text is copied, so it stays a checked `str`.
fn for_app(event: Event<'_>, base: usize, len: usize, ctx: &mut FrameCtx<'_>) -> bool {
    let app = &mut *ctx.app;
    let message = match event {
        Event::Text(text) => {
            let from = app.text.len();
            app.text.push_str(text);
            AppMessage::Text(from, app.text.len())
        }
        Event::Binary(bytes) => {
            let at = (bytes.as_ptr() as usize).wrapping_sub(base);
            if at <= len && bytes.len() <= len - at {
                AppMessage::BinaryInInput(at, at + bytes.len())
            } else {
                let from = app.binary.len();
                app.binary.extend_from_slice(bytes);
                AppMessage::BinaryCopied(from, app.binary.len())
            }
        }
        _ => return false,
    };
    app.batch.push(message);
    true
}
