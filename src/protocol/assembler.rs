//! Message reassembly from fragments (RFC 6455 §5.4) under a size limit (§10.4).
//!
//! "A fragmented message consists of a single frame with the FIN bit clear and an opcode
//! other than 0, followed by zero or more frames with the FIN bit clear and the opcode set to
//! 0, and terminated by a single frame with the FIN bit set and an opcode of 0." The
//! [`Assembler`] collects the payload of such a message (and of a single frame whose payload
//! arrives over several reads), validates text incrementally so an invalid byte fails at once
//! (§8.1), and refuses to grow past `max_message` before it copies a byte (§10.4: "an
//! implementation SHOULD impose a limit on frame sizes and the total message size").
//!
//! Its buffer grows with the bytes that actually arrive, never with a length the peer
//! declared, and never past `max_message` (it doubles as a `Vec` does, but stops at the
//! limit); it is freed after each message so an idle connection holds no buffer.

use super::error::ProtocolError;
use super::utf8::Utf8Validator;

/// Buffers up to this size are reserved up front when a frame declares a longer payload;
/// beyond it the buffer grows as bytes arrive.
const RESERVE_HINT: usize = 64 * 1024;

/// The type of a data message (§5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// A finished message, borrowed from the assembler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Text, validated once as it arrived.
    Text(&'a str),
    /// Bytes.
    Binary(&'a [u8]),
}

/// The payload so far: text is kept as a `String` built from the pieces the validator
/// checked, so the finished message is a `&str` without validating it a second time.
#[derive(Debug)]
enum Buffer {
    /// A binary message (and the empty buffer between messages).
    Binary(Vec<u8>),
    /// A text message and the UTF-8 state between its chunks.
    Text(String, Utf8Validator),
}

impl Default for Buffer {
    fn default() -> Self {
        Self::Binary(Vec::new())
    }
}

impl Buffer {
    /// Bytes received: for text, the validated text and the bytes of an unfinished code
    /// point waiting for the next chunk.
    fn len(&self) -> usize {
        match self {
            Self::Binary(bytes) => bytes.len(),
            Self::Text(text, utf8) => text.len() + utf8.pending_len(),
        }
    }

    fn capacity(&self) -> usize {
        match self {
            Self::Binary(bytes) => bytes.capacity(),
            Self::Text(text, _) => text.capacity(),
        }
    }

    /// Grows the allocation to hold at least `capacity` bytes, exactly.
    fn reserve_to(&mut self, capacity: usize) {
        match self {
            Self::Binary(bytes) => bytes.reserve_exact(capacity.saturating_sub(bytes.len())),
            Self::Text(text, _) => text.reserve_exact(capacity.saturating_sub(text.len())),
        }
    }
}

/// Collects the fragments of one data message.
#[derive(Debug, Default)]
pub struct Assembler {
    /// A message is in progress (started and not finished).
    receiving: bool,
    /// The payload so far, unmasked; its variant is the message's kind.
    buf: Buffer,
    /// The largest message accepted, in bytes.
    max_message: usize,
}

impl Assembler {
    /// An empty assembler accepting messages up to `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            receiving: false,
            buf: Buffer::default(),
            max_message,
        }
    }

    /// Whether a message is in progress.
    pub fn in_progress(&self) -> bool {
        self.receiving
    }

    /// Bytes the buffer holds allocated (what a partial message costs in memory).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// The configured message size limit.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Fails if `more` further bytes would take the message past the limit.
    ///
    /// Called with each frame's declared length before its payload is read, so an oversized
    /// message is refused without reading (or allocating for) it.
    pub fn check_room(&self, more: u64) -> Result<(), ProtocolError> {
        let limit = self.max_message;
        let have = self.buf.len();
        let fits = usize::try_from(more).is_ok_and(|more| more <= limit.saturating_sub(have));
        if fits {
            Ok(())
        } else {
            Err(ProtocolError::MessageTooLarge { limit })
        }
    }

    /// Starts a message of `kind` whose first frame declares `declared` bytes.
    pub fn start(&mut self, kind: MessageKind, declared: u64) {
        debug_assert!(
            !self.receiving,
            "a message starts while another is in progress"
        );
        self.receiving = true;
        // Saturating: a length past usize is only a hint, capped below anyway.
        let hint = usize::try_from(declared)
            .unwrap_or(usize::MAX)
            .min(RESERVE_HINT)
            .min(self.max_message);
        self.buf = match kind {
            MessageKind::Binary => Buffer::Binary(Vec::with_capacity(hint)),
            MessageKind::Text => Buffer::Text(String::with_capacity(hint), Utf8Validator::new()),
        };
    }

    /// Makes room for `more` bytes: doubling, for amortised O(1) appends, but never
    /// reserving past `max_message` (§10.4), unless `more` itself takes it there.
    fn grow_for(&mut self, more: usize) {
        let needed = self.buf.len().saturating_add(more);
        if needed <= self.buf.capacity() {
            return;
        }
        let doubled = self.buf.capacity().saturating_mul(2);
        self.buf
            .reserve_to(doubled.min(self.max_message).max(needed));
    }

    /// Appends unmasked payload bytes; text is validated as it arrives (each byte once).
    pub fn extend(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        debug_assert!(self.receiving, "payload without a message in progress");
        self.grow_for(chunk.len());
        match &mut self.buf {
            Buffer::Binary(bytes) => bytes.extend_from_slice(chunk),
            Buffer::Text(text, utf8) => utf8
                .feed_into(chunk, text)
                .map_err(|_| ProtocolError::InvalidUtf8)?,
        }
        Ok(())
    }

    /// Ends the message; text must end on a code point boundary.
    ///
    /// The message stays readable through [`Assembler::message`] until
    /// [`Assembler::release`].
    pub fn finish(&mut self) -> Result<MessageKind, ProtocolError> {
        debug_assert!(self.receiving, "a message finishes that never started");
        self.receiving = false;
        match &self.buf {
            Buffer::Binary(_) => Ok(MessageKind::Binary),
            Buffer::Text(_, utf8) => utf8
                .finish()
                .map(|()| MessageKind::Text)
                .map_err(|_| ProtocolError::InvalidUtf8),
        }
    }

    /// The message finished last.
    pub fn message(&self) -> Message<'_> {
        match &self.buf {
            Buffer::Binary(bytes) => Message::Binary(bytes),
            Buffer::Text(text, _) => Message::Text(text),
        }
    }

    /// The bytes of the message finished last.
    pub fn payload(&self) -> &[u8] {
        match self.message() {
            Message::Binary(bytes) => bytes,
            Message::Text(text) => text.as_bytes(),
        }
    }

    /// Frees the buffer of a delivered message.
    pub fn release(&mut self) {
        self.buf = Buffer::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_joined() {
        let mut a = Assembler::new(100);
        a.start(MessageKind::Text, 3);
        a.extend(b"Hel").unwrap();
        assert!(a.in_progress());
        a.extend(b"lo").unwrap();
        assert_eq!(a.finish(), Ok(MessageKind::Text));
        assert_eq!(a.payload(), b"Hello");
        assert!(!a.in_progress());
        a.release();
        assert_eq!(a.payload(), b"");
    }

    #[test]
    fn limit_counts_every_fragment() {
        let mut a = Assembler::new(10);
        assert_eq!(a.check_room(10), Ok(()));
        assert_eq!(
            a.check_room(11),
            Err(ProtocolError::MessageTooLarge { limit: 10 })
        );
        a.start(MessageKind::Binary, 6);
        a.extend(&[0; 6]).unwrap();
        assert_eq!(a.check_room(4), Ok(()));
        assert_eq!(
            a.check_room(5),
            Err(ProtocolError::MessageTooLarge { limit: 10 })
        );
        assert!(a.check_room(u64::MAX).is_err());
    }

    #[test]
    fn invalid_text_fails_at_the_fragment_that_breaks_it() {
        let mut a = Assembler::new(100);
        a.start(MessageKind::Text, 2);
        a.extend("κό".as_bytes()).unwrap();
        assert_eq!(a.extend(&[0xF4, 0x90]), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn code_point_split_across_fragments_is_accepted() {
        let mut a = Assembler::new(100);
        let euro = "€".as_bytes();
        a.start(MessageKind::Text, 1);
        a.extend(&euro[..1]).unwrap();
        a.extend(&euro[1..2]).unwrap();
        a.extend(&euro[2..]).unwrap();
        assert_eq!(a.finish(), Ok(MessageKind::Text));
    }

    #[test]
    fn text_ending_mid_code_point_is_invalid() {
        let mut a = Assembler::new(100);
        a.start(MessageKind::Text, 1);
        a.extend(&"€".as_bytes()[..2]).unwrap();
        assert_eq!(a.finish(), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn binary_is_not_validated() {
        let mut a = Assembler::new(100);
        a.start(MessageKind::Binary, 1);
        a.extend(&[0xFF, 0xFE]).unwrap();
        assert_eq!(a.finish(), Ok(MessageKind::Binary));
    }

    #[test]
    fn huge_declared_length_reserves_only_the_hint() {
        let mut a = Assembler::new(usize::MAX);
        a.start(MessageKind::Binary, u64::MAX >> 1);
        assert!(a.buf.capacity() <= RESERVE_HINT * 2);
    }

    /// §10.4: the buffer never holds more than `max_message`, even while growing (plain
    /// doubling would reserve up to twice the limit for a message just under it).
    #[test]
    fn the_buffer_never_grows_past_the_limit() {
        for limit in [10_000, 100_001] {
            let mut a = Assembler::new(limit);
            a.start(MessageKind::Binary, 1000);
            let chunk = [7u8; 1000];
            while a.check_room(1000).is_ok() {
                a.extend(&chunk).unwrap();
                assert!(a.buf.capacity() <= limit, "{} > {limit}", a.buf.capacity());
            }
            let rest = limit - a.payload().len();
            a.extend(&chunk[..rest]).unwrap();
            assert_eq!(a.payload().len(), limit);
            assert!(a.buf.capacity() <= limit, "{} > {limit}", a.buf.capacity());
        }
    }
}
