//! Feeds a [`Session`] exactly as the server does, checking what every read must keep.
//!
//! The server appends each socket read to a buffer, calls [`Session::read`] until it returns
//! no event, and keeps the unconsumed bytes for next time. [`drive`] does the same over a list
//! of pieces and asserts, at every call:
//!
//! - `consumed` never exceeds the input, and an event always consumes something (or the
//!   server would spin);
//! - at most a header and a control payload (139 bytes) are left over after a read: the
//!   session buffers the rest itself, so the server's read buffer stays bounded;
//! - after an error or the peer's close, every read consumes all its input, yields nothing
//!   and writes nothing (§7.1.7, §5.5.1);
//! - everything written to `out` is well formed, at most one Close frame is ever written, and
//!   an error ends `out` with a Close frame carrying the error's close code.

use wsloop::protocol::frame::MAX_HEADER_LEN;
use wsloop::protocol::rules::MAX_CONTROL_PAYLOAD;
use wsloop::protocol::{CloseState, Event, Limits, OpCode, ProtocolError, Read, Role, Session};

use crate::input::Framed;
use crate::wire;

/// The most bytes a session may leave unconsumed: a whole header and a control payload.
pub const MAX_LEFTOVER: usize = MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD as usize;

/// The masking key of every client session the harness makes (the §5.7 example key).
pub const CLIENT_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Limits small enough that short fuzz inputs reach the 1009 paths.
pub const SMALL_LIMITS: Limits = Limits {
    max_frame: 100,
    max_message: 200,
};

/// What the peer sent, as the session reported it, owned so runs can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping's payload.
    Ping(Vec<u8>),
    /// A pong's payload.
    Pong(Vec<u8>),
    /// A close frame's code and reason.
    Close(Option<u16>, String),
}

/// Everything one run produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The events, in order.
    pub seen: Vec<Seen>,
    /// The error that failed the connection, if any.
    pub error: Option<ProtocolError>,
    /// The bytes the session wrote (pongs, close replies, its own close).
    pub out: Vec<u8>,
}

impl Outcome {
    /// The session failed or got the peer's close: all further input must be ignored.
    fn finished(&self) -> bool {
        self.error.is_some() || matches!(self.seen.last(), Some(Seen::Close(..)))
    }
}

/// A fresh session of `role`; a client masks with [`CLIENT_KEY`].
pub fn session(role: Role, limits: Limits) -> Session {
    match role {
        Role::Server => Session::server(limits),
        Role::Client => Session::client(limits, || CLIENT_KEY),
    }
}

/// The unstructured session targets: arbitrary bytes, chunked as the input's prefix says.
///
/// Oracle: the invariants of [`drive`], and the outcome does not depend on the chunking (the
/// same stream fed whole gives the same events, error and output).
pub fn check_stream(role: Role, data: &[u8]) {
    let input = Framed::parse(data);
    let limits = if input.small_limits {
        SMALL_LIMITS
    } else {
        Limits::default()
    };
    let chunked = drive(&mut session(role, limits), &input.pieces());
    let whole = drive(&mut session(role, limits), &[input.stream]);
    assert_eq!(
        chunked, whole,
        "the outcome depends on how the bytes were split"
    );
}

/// Feeds `pieces` to `session` one read at a time, as the server does.
pub fn drive(session: &mut Session, pieces: &[&[u8]]) -> Outcome {
    let mut outcome = Outcome::default();
    let mut pending = Vec::new();
    for piece in pieces {
        pending.extend_from_slice(piece);
        let used = read_until_idle(session, &mut pending, &mut outcome);
        pending.drain(..used);
        assert!(
            pending.len() <= MAX_LEFTOVER,
            "{} bytes left unconsumed",
            pending.len()
        );
    }
    check_end(session, &outcome);
    outcome
}

/// Calls `read` until it returns no event; returns how many bytes of `pending` were used.
fn read_until_idle(session: &mut Session, pending: &mut [u8], outcome: &mut Outcome) -> usize {
    let mut pos = 0;
    loop {
        let finished = outcome.finished();
        let written = outcome.out.len();
        let input = &mut pending[pos..];
        let len = input.len();
        let step = step(session, input, &mut outcome.out);
        if finished {
            assert_eq!(step, Ok((len, None)), "input after the end was not ignored");
            assert_eq!(outcome.out.len(), written, "output written after the end");
            return pending.len();
        }
        match step {
            Err(error) => outcome.error = Some(error),
            Ok((consumed, event)) => {
                assert!(consumed <= len, "consumed {consumed} of {len} bytes");
                pos += consumed;
                let Some(seen) = event else { return pos };
                assert!(consumed > 0, "{seen:?} delivered without consuming input");
                outcome.seen.push(seen);
            }
        }
    }
}

/// One `read`, its event copied out of the borrowed buffers.
fn step(
    session: &mut Session,
    input: &mut [u8],
    out: &mut Vec<u8>,
) -> Result<(usize, Option<Seen>), ProtocolError> {
    let Read { consumed, event } = session.read(input, out)?;
    Ok((consumed, event.map(own)))
}

fn own(event: Event<'_>) -> Seen {
    match event {
        Event::Text(text) => Seen::Text(text.to_owned()),
        Event::Binary(bytes) => Seen::Binary(bytes.to_vec()),
        Event::Ping(payload) => Seen::Ping(payload.to_vec()),
        Event::Pong(payload) => Seen::Pong(payload.to_vec()),
        Event::Close(close) => Seen::Close(close.code.map(|c| c.0), close.reason.to_owned()),
    }
}

/// The checks on the session's final state and on everything it wrote.
fn check_end(session: &Session, outcome: &Outcome) {
    let frames = wire::frames(&outcome.out, session.role());
    let closes = frames.iter().filter(|(op, _)| *op == OpCode::Close).count();
    assert!(closes <= 1, "{closes} close frames written");
    assert_eq!(
        session.has_failed(),
        outcome.error.is_some(),
        "has_failed() disagrees"
    );
    if let Some(error) = outcome.error {
        let code = frames
            .last()
            .and_then(|(op, p)| (*op == OpCode::Close).then_some(p));
        let code = code.and_then(|p| wire::close_code(p));
        assert_eq!(
            code,
            Some(error.close_code().0),
            "{error:?} did not end with its close"
        );
    }
    if matches!(outcome.seen.last(), Some(Seen::Close(..))) {
        assert_eq!(
            session.close_state(),
            CloseState::Closed,
            "close received, not Closed"
        );
    }
}
