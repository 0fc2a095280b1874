//! What an open connection's events turn into: echoes on `/echo`, hub requests on `/ws`.

use crate::hub::Now;

use super::conn::{ConnId, OpenConn};
use super::outbound::{BufPool, OutQueue};
use super::routes::Endpoint;
use super::stats::Stats;
use crate::hub::{Hub, Outbox};
use crate::protocol::frame::{FrameHeader, encode_frame};
use crate::protocol::{Event, OpCode, Read};

/// What frame processing needs from the loop, borrowed field by field.
pub(super) struct FrameCtx<'a> {
    pub(super) id: ConnId,
    pub(super) stats: &'a mut Stats,
    pub(super) pool: &'a mut BufPool,
    pub(super) hub: &'a mut Hub,
    pub(super) outbox: &'a mut Outbox,
    pub(super) wall_now: Now,
    /// Scratch space for the control frames a read produces (pong, close reply).
    pub(super) ctrl: &'a mut Vec<u8>,
}

/// Reads every complete event in `input` and acts on it; returns the bytes consumed.
///
/// Replies the protocol requires (pong, close reply) and echoes go straight into `out`;
/// hub output goes to the outbox, which the loop applies once the input is done.
pub(super) fn read_frames(
    open: &mut OpenConn,
    out: &mut OutQueue,
    input: &mut [u8],
    ctx: &mut FrameCtx<'_>,
) -> usize {
    let mut pos = 0;
    let endpoint = open.endpoint;
    loop {
        let session = &mut open.session;
        let was_open = session.can_send();
        ctx.ctrl.clear();
        match session.read(&mut input[pos..], ctx.ctrl) {
            Ok(Read { consumed, event }) => {
                pos += consumed;
                let Some(event) = event else {
                    send_ctrl(out, ctx);
                    return pos;
                };
                count_event(&event, was_open, ctx.stats);
                if let Event::Close(_) = event {
                    take_own_replies(out, ctx);
                }
                send_ctrl(out, ctx);
                match endpoint {
                    Endpoint::Echo => echo(event, out, ctx.pool, ctx.stats),
                    Endpoint::Hub => to_hub(event, ctx),
                }
            }
            Err(error) => {
                log::debug!("{}: protocol error: {error}", ctx.id);
                ctx.stats.protocol_error(error.reason());
                if was_open {
                    ctx.stats.close_sent(error.close_code().0);
                }
                take_own_replies(out, ctx);
                send_ctrl(out, ctx);
                return input.len();
            }
        }
    }
}

/// Queues what the session wrote (a pong, or the close frame) after everything before it.
fn send_ctrl(out: &mut OutQueue, ctx: &mut FrameCtx<'_>) {
    if !ctx.ctrl.is_empty() {
        let ctrl = &*ctx.ctrl;
        out.append(ctx.pool, |buf| buf.extend_from_slice(ctrl));
    }
}

/// Moves the hub's pending replies to this connection ahead of its close frame, so answers
/// to requests that arrived with the close are not lost.
fn take_own_replies(out: &mut OutQueue, ctx: &mut FrameCtx<'_>) {
    let id = ctx.id;
    let stats = &mut *ctx.stats;
    ctx.outbox.sends.retain(|(to, frame)| {
        if *to != id {
            return true;
        }
        out.push_shared(frame.clone());
        stats.messages_out += 1;
        false
    });
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

/// The `/echo` endpoint: every data message goes back as it came.
fn echo(event: Event<'_>, out: &mut OutQueue, pool: &mut BufPool, stats: &mut Stats) {
    let (opcode, payload) = match event {
        Event::Text(text) => (OpCode::Text, text.as_bytes()),
        Event::Binary(bytes) => (OpCode::Binary, bytes),
        _ => return,
    };
    stats.messages_out += 1;
    let header = FrameHeader::single(opcode, payload.len(), None);
    out.append(pool, |buf| encode_frame(&header, payload, buf));
}

/// The `/ws` endpoint: data messages are hub requests.
fn to_hub(event: Event<'_>, ctx: &mut FrameCtx<'_>) {
    match event {
        Event::Text(text) => ctx.hub.on_text(ctx.id, text, ctx.wall_now, ctx.outbox),
        Event::Binary(_) => ctx.hub.on_binary(ctx.id, ctx.wall_now, ctx.outbox),
        _ => {}
    }
}
