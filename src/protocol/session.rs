//! One WebSocket connection after the handshake, without any I/O (RFC 6455 §5, §7).
//!
//! A [`Session`] turns received bytes into [`Event`]s and writes the frames it must send into
//! a `Vec<u8>` the caller hands it; it never touches a socket or a clock. The caller:
//!
//! 1. reads bytes into a buffer and calls [`Session::read`] until it returns no event,
//!    keeping the unconsumed bytes for next time;
//! 2. sends whatever `read` wrote into `out` (pongs and close replies come out of the reader
//!    as data to send, so they cannot be forgotten);
//! 3. sends its own messages with [`Session::send`] and closes with [`Session::close`].
//!
//! Payloads are unmasked in place. A message that arrives whole in one read is handed out as
//! a slice of the caller's buffer, with no copy; one that is fragmented or split across reads
//! is collected by the [`Assembler`], whose buffer is freed once the message is delivered.
//! Only a partial header or a partial control frame (at most 139 bytes) is ever left over.
//!
//! With permessage-deflate agreed ([`Session::with_deflate`]), a message whose first frame
//! has RSV1 is inflated into the assembler as its frames arrive, its inflated size held to
//! `max_message`; [`Session::send`] compresses what is worth compressing.

use super::assembler::{Assembler, Message, MessageKind};
use super::close::CloseFrame;
use super::close_state::{CloseAction, CloseInput, CloseState};
use super::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate};
use super::error::ProtocolError;
use super::frame::{Decoded, FIN_BIT, FrameHeader, LEN_MARKER_16, LEN7_BITS, MASK_BIT, RSV1};
use super::mask::apply_mask;
use super::opcode::OpCode;
use super::rules::{FrameRules, Role};
use super::utf8;

/// The first byte of a final text or binary frame with no RSV bit set (§5.2), the frames
/// [`Session::read`] takes on its short path.
const FIN_TEXT: u8 = FIN_BIT | OpCode::Text.bits();
const FIN_BINARY: u8 = FIN_BIT | OpCode::Binary.bits();
/// A masked frame's header with a 7-bit length: two bytes and the masking key (§5.2).
const SHORT_MASKED_HEADER: usize = 6;

/// Size limits for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest payload a single frame may declare; over it the connection is closed with
    /// 1009. Default: 16 MiB.
    pub max_frame: u64,
    /// The largest message (all fragments together); over it, 1009. Default: 16 MiB, enough
    /// for the largest Autobahn cases.
    pub max_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: 16 << 20,
            max_message: 16 << 20,
        }
    }
}

/// Something the peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message, valid UTF-8.
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A ping; the pong with the same payload is already in `out` (§5.5.2).
    Ping(&'a [u8]),
    /// A pong, solicited or not (§5.5.3: "A Pong frame MAY be sent unsolicited").
    Pong(&'a [u8]),
    /// The peer's close frame; the reply, if one was due, is already in `out` (§5.5.1).
    Close(CloseFrame<'a>),
}

/// The result of one [`Session::read`] call.
#[derive(Debug, PartialEq, Eq)]
pub struct Read<'a> {
    /// How many bytes of the input were used; keep the rest for the next call.
    pub consumed: usize,
    /// The event found, or `None` when more input is needed.
    pub event: Option<Event<'a>>,
}

/// Where the reader is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    /// Waiting for a frame header.
    Header,
    /// Inside a data frame's payload that arrives over several reads.
    Payload {
        /// The frame ends its message.
        fin: bool,
        /// The frame's masking key.
        mask: Option<[u8; 4]>,
        /// Payload bytes not read yet.
        remaining: u64,
        /// Payload bytes already read, modulo 4 (the masking key's phase).
        phase: usize,
    },
    /// A protocol error failed the connection; further input is ignored (§7.1.7).
    Failed,
}

/// Where the bytes of a found event are, so it can be borrowed after the reader is done.
#[derive(Debug, Clone, Copy)]
enum Found {
    /// Nothing yet.
    Nothing,
    /// A data message or control frame whose payload is `input[start..end]`.
    InInput {
        opcode: OpCode,
        start: usize,
        end: usize,
    },
    /// A data message in the assembler's buffer.
    Assembled,
}

/// The sans-IO state of one WebSocket connection.
#[derive(Debug)]
pub struct Session {
    /// Masking, RSV and frame-size rules.
    rules: FrameRules,
    /// Where the reader is.
    read: ReadState,
    /// The fragmented message in progress.
    assembler: Assembler,
    /// The closing handshake.
    close: CloseState,
    /// The client's source of masking keys (§5.3); `None` for a server.
    mask_keys: Option<fn() -> [u8; 4]>,
    /// The assembler holds a delivered message to free on the next read.
    delivered: bool,
    /// permessage-deflate, when agreed (RFC 7692).
    deflate: Option<Box<PerMessageDeflate>>,
    /// The message being read is compressed (its first frame had RSV1).
    inflating: bool,
}

impl Session {
    /// A server-side session: receives masked frames, sends unmasked ones.
    pub fn server(limits: Limits) -> Self {
        Self::new(Role::Server, limits, None)
    }

    /// A client-side session: masks every frame it sends with a key from `mask_keys`.
    ///
    /// §5.3: the key "MUST be derived from a strong source of entropy", so `mask_keys` should
    /// draw from the OS (the client module uses `getrandom`); tests may pass a fixed key.
    pub fn client(limits: Limits, mask_keys: fn() -> [u8; 4]) -> Self {
        Self::new(Role::Client, limits, Some(mask_keys))
    }

    fn new(role: Role, limits: Limits, mask_keys: Option<fn() -> [u8; 4]>) -> Self {
        Self {
            rules: FrameRules {
                role,
                allowed_rsv: 0,
                max_frame: limits.max_frame,
            },
            read: ReadState::Header,
            assembler: Assembler::new(limits.max_message),
            close: CloseState::Open,
            mask_keys,
            delivered: false,
            deflate: None,
            inflating: false,
        }
    }

    /// Turns permessage-deflate on with the agreed `params`; `config` gives the compression
    /// level and the smallest message worth compressing. RSV1 is allowed from now on
    /// (RFC 7692 §6). Call right after the handshake, before any frame.
    pub fn with_deflate(mut self, params: DeflateParams, config: &DeflateConfig) -> Self {
        self.rules.allowed_rsv |= RSV1;
        let state = PerMessageDeflate::new(self.rules.role, params, config);
        self.deflate = Some(Box::new(state));
        self
    }

    /// The permessage-deflate state, if the extension was agreed.
    #[inline]
    pub fn deflate(&self) -> Option<&PerMessageDeflate> {
        self.deflate.as_deref()
    }

    /// Which side this session is.
    pub fn role(&self) -> Role {
        self.rules.role
    }

    /// Where the closing handshake stands.
    pub fn close_state(&self) -> CloseState {
        self.close
    }

    /// Whether data may still be sent (no close frame sent or received).
    #[inline]
    pub fn can_send(&self) -> bool {
        self.close.is_open()
    }

    /// Whether a protocol error failed the connection.
    pub fn has_failed(&self) -> bool {
        self.read == ReadState::Failed
    }

    /// Bytes held for a partly received message (see `Server`'s `max_buffered_bytes`).
    pub fn buffered_bytes(&self) -> usize {
        self.assembler.buffered_bytes()
    }

    /// Whether a partly received message or frame is pending.
    pub fn mid_message(&self) -> bool {
        self.assembler.in_progress() || matches!(self.read, ReadState::Payload { .. })
    }

    /// Reads at most one event from `input`, unmasking payloads in place.
    ///
    /// Returns the bytes consumed and the event, if a whole one was found. Replies the RFC
    /// requires (pong, close reply) are appended to `out`. On a protocol error the close frame
    /// with the matching code is appended to `out` and the error returned; the session then
    /// ignores all further input, as it does everything after the peer's close (§5.5.1).
    pub fn read<'a>(
        &'a mut self,
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Read<'a>, ProtocolError> {
        if self.delivered {
            self.assembler.release();
            self.delivered = false;
        }
        if self.read == ReadState::Failed || self.close == CloseState::Closed {
            return Ok(Read {
                consumed: input.len(),
                event: None,
            });
        }
        if let Some(len) = self.short_message_len(input) {
            return self.read_short_message(input, len, out);
        }
        let (consumed, found) = match self.advance(input, out) {
            Ok(read) => read,
            Err(error) => {
                self.fail(error, out);
                return Err(error);
            }
        };
        let event = match found {
            Found::Nothing => None,
            Found::Assembled => Some(match self.assembler.message() {
                Message::Text(text) => Event::Text(text),
                Message::Binary(bytes) => Event::Binary(bytes),
            }),
            Found::InInput { opcode, start, end } => {
                let Some(payload) = input.get(start..end) else {
                    debug_assert!(false, "a found payload lies outside the input");
                    return Ok(Read {
                        consumed,
                        event: None,
                    });
                };
                match in_input_event(opcode, payload) {
                    Ok(event) => {
                        if let Event::Close(frame) = &event {
                            self.on_close_frame(frame, out);
                        }
                        Some(event)
                    }
                    Err(error) => {
                        self.fail(error, out);
                        return Err(error);
                    }
                }
            }
        };
        Ok(Read { consumed, event })
    }

    /// The frame a server reads most, if `input` starts with one: a whole message in one
    /// final text or binary frame, masked, with no RSV bit and a 7-bit length, all of it in
    /// `input`, while the session is open and no message is under way. Returns its payload
    /// length; `None` sends everything else through the general reader ([`Session::advance`]).
    ///
    /// These are the checks the general reader makes of such a frame, in short:
    /// `FrameHeader::decode` (a 7-bit length), `FrameRules::check` (§5.1: masked, as a
    /// server requires; §5.2: no RSV bit; §5.4: not inside a fragmented message;
    /// `max_frame`) and `Assembler::check_room` (`max_message`). A frame that fails one
    /// goes the general way and is refused there, with its own close code. The fuzz
    /// targets read every input whole and split at random points, which takes this path
    /// and the general one over the same frames, and require the same outcome.
    #[inline]
    fn short_message_len(&self, input: &[u8]) -> Option<usize> {
        let [first, second, ..] = *input else {
            return None;
        };
        let len = second & LEN7_BITS;
        let short = (first == FIN_TEXT || first == FIN_BINARY)
            && second & MASK_BIT != 0
            && len < LEN_MARKER_16
            && self.rules.role == Role::Server
            && self.read == ReadState::Header
            && self.close.is_open()
            && !self.inflating
            && !self.assembler.in_progress()
            && u64::from(len) <= self.rules.max_frame
            && self.assembler.check_room(u64::from(len)).is_ok();
        let len = usize::from(len);
        (short && input.len() >= SHORT_MASKED_HEADER + len).then_some(len)
    }

    /// Reads the frame [`Session::short_message_len`] found: unmasks its `len` payload
    /// bytes in place and hands them out (text checked as UTF-8, §8.1).
    fn read_short_message<'a>(
        &mut self,
        input: &'a mut [u8],
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<Read<'a>, ProtocolError> {
        let consumed = SHORT_MASKED_HEADER + len;
        let Some((head, rest)) = input.split_at_mut_checked(SHORT_MASKED_HEADER) else {
            debug_assert!(false, "short_message_len checked the length");
            return Ok(Read {
                consumed: 0,
                event: None,
            });
        };
        let [first, _, k0, k1, k2, k3] = *head else {
            return Ok(Read {
                consumed: 0,
                event: None,
            });
        };
        let Some(payload) = rest.get_mut(..len) else {
            debug_assert!(false, "short_message_len checked the length");
            return Ok(Read {
                consumed: 0,
                event: None,
            });
        };
        apply_mask(payload, [k0, k1, k2, k3], 0);
        let event = if first == FIN_TEXT {
            match utf8::validate(payload) {
                Ok(text) => Event::Text(text),
                Err(_) => {
                    self.fail(ProtocolError::InvalidUtf8, out);
                    return Err(ProtocolError::InvalidUtf8);
                }
            }
        } else {
            Event::Binary(payload)
        };
        Ok(Read {
            consumed,
            event: Some(event),
        })
    }

    /// Runs the reader over `input` until it finds an event or needs more bytes.
    fn advance(
        &mut self,
        input: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, Found), ProtocolError> {
        let mut pos = 0;
        loop {
            let found = match self.read {
                ReadState::Header => self.read_header(input, &mut pos, out)?,
                ReadState::Payload { .. } => self.read_payload(input, &mut pos)?,
                ReadState::Failed => return Ok((input.len(), Found::Nothing)),
            };
            match found {
                Some(Found::Nothing) => return Ok((pos, Found::Nothing)),
                Some(found) if self.close.is_open() || is_close(found) => return Ok((pos, found)),
                Some(found) if self.rules.role == Role::Client && is_data(found) => {
                    return Ok((pos, found));
                }
                // After our close, data (server side) and pings are read past but not
                // delivered.
                Some(Found::Assembled) => {
                    self.assembler.release();
                    self.delivered = false;
                }
                _ => {}
            }
        }
    }

    /// Reads one header, and the whole frame if it is a control frame or a complete message.
    ///
    /// `Some(Nothing)` means more input is needed; `None` means keep going.
    fn read_header(
        &mut self,
        input: &mut [u8],
        pos: &mut usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<Found>, ProtocolError> {
        let rest = &input[*pos..];
        let Decoded::Complete(header, head_len) = FrameHeader::decode(rest)? else {
            return Ok(Some(Found::Nothing));
        };
        self.rules.check(&header, self.assembler.in_progress())?;
        let available = (rest.len() - head_len) as u64;
        if header.opcode.is_control() {
            return self.read_control(input, pos, header, head_len, out);
        }
        if header.opcode != OpCode::Continuation {
            // RFC 7692 §6.1: RSV1 on the first frame marks the whole message as compressed
            // (rules.check refused it unless the extension is on).
            self.inflating = header.rsv & RSV1 != 0;
        }
        if !self.inflating {
            // A compressed message is held to the limit as it inflates.
            self.assembler.check_room(header.payload_len)?;
        }
        *pos += head_len;
        let whole = header.fin
            && !self.inflating
            && !self.assembler.in_progress()
            && header.payload_len <= available;
        if whole {
            return self.read_whole_message(input, pos, header).map(Some);
        }
        if let Some(kind) = message_kind(header.opcode) {
            self.assembler.start(kind, header.payload_len);
        }
        self.read = ReadState::Payload {
            fin: header.fin,
            mask: header.mask,
            remaining: header.payload_len,
            phase: 0,
        };
        Ok(None)
    }

    /// A single-frame message entirely in `input`: unmask and validate it where it lies.
    fn read_whole_message(
        &mut self,
        input: &mut [u8],
        pos: &mut usize,
        header: FrameHeader,
    ) -> Result<Found, ProtocolError> {
        let (start, end) = span(*pos, header.payload_len);
        let payload = &mut input[start..end];
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        // Text is validated once, as the event is made (`in_input_event`); a server reads
        // past data after its close without looking at it (§1.4).
        *pos = end;
        Ok(Found::InInput {
            opcode: header.opcode,
            start,
            end,
        })
    }

    /// A control frame is handled only once all of it (at most 139 bytes) is in `input`.
    fn read_control(
        &mut self,
        input: &mut [u8],
        pos: &mut usize,
        header: FrameHeader,
        head_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<Found>, ProtocolError> {
        let start = *pos + head_len;
        let (_, end) = span(start, header.payload_len);
        if end > input.len() {
            return Ok(Some(Found::Nothing));
        }
        let payload = &mut input[start..end];
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        *pos = end;
        // A close is parsed once, as its event is made, and answered then (`read`).
        if header.opcode == OpCode::Ping && self.close.is_open() {
            self.write_control(OpCode::Pong, payload, out);
        }
        Ok(Some(Found::InInput {
            opcode: header.opcode,
            start,
            end,
        }))
    }

    /// Reads as much of a data frame's payload as `input` holds into the assembler.
    fn read_payload(
        &mut self,
        input: &mut [u8],
        pos: &mut usize,
    ) -> Result<Option<Found>, ProtocolError> {
        let ReadState::Payload {
            fin,
            mask,
            remaining,
            phase,
        } = self.read
        else {
            return Ok(None);
        };
        let available = input.len() - *pos;
        let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
        if take == 0 && remaining > 0 {
            return Ok(Some(Found::Nothing));
        }
        let chunk = &mut input[*pos..*pos + take];
        if let Some(key) = mask {
            apply_mask(chunk, key, phase);
        }
        self.take_payload(chunk)?;
        *pos += take;
        let remaining = remaining - take as u64;
        if remaining > 0 {
            self.read = ReadState::Payload {
                fin,
                mask,
                remaining,
                phase: (phase + take) % 4,
            };
            return Ok(Some(Found::Nothing));
        }
        self.read = ReadState::Header;
        if !fin {
            return Ok(None);
        }
        if std::mem::take(&mut self.inflating) {
            let assembler = &mut self.assembler;
            let deflate = self
                .deflate
                .as_deref_mut()
                .ok_or(ProtocolError::ReservedBits(RSV1))?;
            deflate.finish(&mut |bytes| into_assembler(assembler, bytes))?;
        }
        self.assembler.finish()?;
        self.delivered = true;
        Ok(Some(Found::Assembled))
    }

    /// Adds payload bytes to the message: as they are, or inflated (RFC 7692 §7.2.2).
    fn take_payload(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        if !self.inflating {
            return self.assembler.extend(chunk);
        }
        let assembler = &mut self.assembler;
        let deflate = self
            .deflate
            .as_deref_mut()
            .ok_or(ProtocolError::ReservedBits(RSV1))?;
        deflate.inflate(chunk, &mut |bytes| into_assembler(assembler, bytes))
    }

    /// §5.5.1: answer the peer's (valid) close if we have not sent ours.
    fn on_close_frame(&mut self, frame: &CloseFrame<'_>, out: &mut Vec<u8>) {
        if self.close.on(CloseInput::Receive) == CloseAction::SendReply {
            // Echo the status code, without the reason; an empty close gets an empty reply.
            let mut reply = Vec::with_capacity(2);
            CloseFrame::encode_body(frame.code, "", &mut reply);
            self.write_control(OpCode::Close, &reply, out);
        }
    }

    /// §7.1.7: fail the connection: close with the error's code, then ignore the rest.
    fn fail(&mut self, error: ProtocolError, out: &mut Vec<u8>) {
        self.read = ReadState::Failed;
        self.close(error.close_code(), error.reason(), out);
    }
}

/// The event for a frame whose payload lies whole in the input: text is validated here, a
/// close frame parsed here, each once.
fn in_input_event(opcode: OpCode, payload: &[u8]) -> Result<Event<'_>, ProtocolError> {
    Ok(match opcode {
        OpCode::Text => {
            Event::Text(utf8::validate(payload).map_err(|_| ProtocolError::InvalidUtf8)?)
        }
        OpCode::Ping => Event::Ping(payload),
        OpCode::Pong => Event::Pong(payload),
        OpCode::Close => Event::Close(CloseFrame::parse(payload)?),
        OpCode::Binary | OpCode::Continuation => Event::Binary(payload),
    })
}

/// The payload span `[start, start + len)`, saturating so it can never wrap.
fn span(start: usize, len: u64) -> (usize, usize) {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    (start, start.saturating_add(len))
}

/// Inflated bytes go into the message, within its limit (§10.4: the inflated size counts).
fn into_assembler(assembler: &mut Assembler, bytes: &[u8]) -> Result<(), ProtocolError> {
    assembler.check_room(u64::try_from(bytes.len()).unwrap_or(u64::MAX))?;
    assembler.extend(bytes)
}

fn message_kind(opcode: OpCode) -> Option<MessageKind> {
    match opcode {
        OpCode::Text => Some(MessageKind::Text),
        OpCode::Binary => Some(MessageKind::Binary),
        _ => None,
    }
}

/// Whether `found` is a data message.
///
/// §1.4: "after sending a control frame indicating the connection should be closed, a peer
/// does not send any further data; after receiving a control frame indicating the connection
/// should be closed, a peer discards any further data received." Only receiving a close
/// discards data: a client that closed still gets what the server sent before its reply
/// (the answers to its last requests). A server discards it: it has stopped serving.
fn is_data(found: Found) -> bool {
    match found {
        Found::Assembled => true,
        Found::InInput { opcode, .. } => !opcode.is_control(),
        Found::Nothing => false,
    }
}

fn is_close(found: Found) -> bool {
    matches!(
        found,
        Found::InInput {
            opcode: OpCode::Close,
            ..
        }
    )
}

#[path = "session_send.rs"]
mod send;

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "session_once_tests.rs"]
mod once_tests;

#[cfg(test)]
#[path = "session_short_tests.rs"]
mod short_tests;
