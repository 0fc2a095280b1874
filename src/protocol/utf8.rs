//! Incremental UTF-8 validation for text messages (RFC 6455 §5.6, §8.1).
//!
//! "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is
//! not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_"
//! (§8.1). A text message may be split into fragments and a fragment into reads at any byte,
//! including inside a code point, so validation carries up to three bytes of an unfinished
//! code point from one chunk to the next. It fails at the first byte that can never be part of
//! valid UTF-8, without waiting for the end of the frame or message.

/// The state carried between chunks of one text message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The bytes of a code point that started in an earlier chunk.
    pending: [u8; 4],
    /// How many of `pending` are used (0–3).
    pending_len: u8,
}

/// The input is not, and cannot become, valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Self {
        Self {
            pending: [0; 4],
            pending_len: 0,
        }
    }

    /// Validates the next chunk of the message.
    ///
    /// Fails as soon as a byte makes the stream invalid; an incomplete code point at the end
    /// of `chunk` is remembered and checked against the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), InvalidUtf8> {
        count::add(chunk.len());
        let rest = self.finish_pending(chunk)?;
        match simdutf8::compat::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => self.remember(&rest[e.valid_up_to()..]),
        }
    }

    /// Validates the next chunk and appends it to `text`: each byte is validated once (the
    /// at most three bytes of a code point split between chunks are looked at again when
    /// it completes). An unfinished code point at the end waits for the next chunk.
    pub fn feed_into(&mut self, chunk: &[u8], text: &mut String) -> Result<(), InvalidUtf8> {
        count::add(chunk.len());
        let rest = self.complete_pending(chunk, text)?;
        let (head, tail) = rest.split_at(complete_prefix(rest));
        text.push_str(simdutf8::basic::from_utf8(head).map_err(|_| InvalidUtf8)?);
        match std::str::from_utf8(tail) {
            Ok(_) => Ok(()), // Empty.
            // A strict prefix of a code point that may still complete.
            Err(e) if e.error_len().is_none() => self.remember(tail),
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Bytes of an unfinished code point carried to the next chunk (0–3).
    pub fn pending_len(&self) -> usize {
        usize::from(self.pending_len)
    }

    /// Like [`Self::finish_pending`], appending the completed code point (and whatever else
    /// of the candidate bytes is whole) to `text`.
    fn complete_pending<'c>(
        &mut self,
        chunk: &'c [u8],
        text: &mut String,
    ) -> Result<&'c [u8], InvalidUtf8> {
        let have = usize::from(self.pending_len);
        match self.pending_with(chunk)? {
            Some((candidate, whole)) => {
                let done = std::str::from_utf8(&candidate[..whole]).map_err(|_| InvalidUtf8)?;
                text.push_str(done);
                Ok(&chunk[whole - have..])
            }
            None => Ok(&chunk[chunk.len()..]),
        }
    }

    /// Checks that the message ended on a code point boundary.
    pub fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.pending_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }

    /// Completes a pending code point with bytes from `chunk`; returns the unread remainder.
    ///
    /// The pending bytes are a strict prefix of one code point. Up to four bytes are tried:
    /// if they start with a whole code point, validation resumes right after the last whole
    /// code point among them; if they can never form one, the stream is invalid; otherwise the
    /// chunk was too short and everything is kept for the next one.
    fn finish_pending<'c>(&mut self, chunk: &'c [u8]) -> Result<&'c [u8], InvalidUtf8> {
        let have = usize::from(self.pending_len);
        match self.pending_with(chunk)? {
            Some((_, whole)) => Ok(&chunk[whole - have..]),
            None => Ok(&chunk[chunk.len()..]),
        }
    }

    /// The pending bytes followed by up to four of `chunk`: the candidate and how many of
    /// its bytes are whole code points (the pending ones are done with), or `None` when the
    /// chunk was too short to tell (everything is kept). Nothing pending: the empty
    /// candidate, 0 whole bytes.
    fn pending_with(&mut self, chunk: &[u8]) -> Result<Option<([u8; 4], usize)>, InvalidUtf8> {
        let have = usize::from(self.pending_len);
        if have == 0 {
            return Ok(Some(([0; 4], 0)));
        }
        let take = chunk.len().min(4 - have);
        let mut candidate = self.pending;
        candidate[have..have + take].copy_from_slice(&chunk[..take]);
        let whole = match std::str::from_utf8(&candidate[..have + take]) {
            Ok(_) => have + take,
            Err(e) if e.valid_up_to() > 0 => e.valid_up_to(),
            Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
            Err(_) => {
                self.pending = candidate;
                self.pending_len = u8::try_from(have + take).map_err(|_| InvalidUtf8)?;
                return Ok(None);
            }
        };
        self.pending_len = 0;
        Ok(Some((candidate, whole)))
    }

    /// Stores an unfinished code point (at most 3 bytes) for the next chunk.
    fn remember(&mut self, tail: &[u8]) -> Result<(), InvalidUtf8> {
        if tail.len() > 3 {
            return Err(InvalidUtf8);
        }
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = u8::try_from(tail.len()).map_err(|_| InvalidUtf8)?;
        Ok(())
    }
}

/// The length of `bytes` without a trailing code point that is cut short: the last lead
/// byte among the final three, when the sequence it starts is longer than what follows it.
/// Structural only; validating the two parts says whether they are UTF-8.
fn complete_prefix(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(3) {
        let b = bytes[len - back];
        if b & 0xC0 == 0x80 {
            continue; // A continuation byte: look further back.
        }
        let needed = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        return if back < needed { len - back } else { len };
    }
    len
}

/// Validates a whole message in one call.
pub fn validate(bytes: &[u8]) -> Result<&str, InvalidUtf8> {
    count::add(bytes.len());
    simdutf8::basic::from_utf8(bytes).map_err(|_| InvalidUtf8)
}

/// Test builds only: how many bytes this thread has validated, so tests can show each
/// message is validated once.
pub(crate) mod count {
    #[cfg(test)]
    thread_local!(static VALIDATED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });

    /// Counts `n` bytes validated (nothing outside tests).
    #[inline(always)]
    pub(crate) fn add(n: usize) {
        #[cfg(test)]
        VALIDATED.with(|v| v.set(v.get() + n));
        #[cfg(not(test))]
        let _ = n;
    }

    /// Bytes validated on this thread so far.
    #[cfg(test)]
    pub(crate) fn get() -> usize {
        VALIDATED.with(std::cell::Cell::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_split(bytes: &[u8], splits: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &s in splits {
            let s = s.clamp(start, bytes.len());
            v.feed(&bytes[start..s])?;
            start = s;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    #[test]
    fn a_code_point_split_across_chunks_is_accepted() {
        let text = "κόσμε € 𝄞".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert_eq!(feed_split(text, &[a, b]), Ok(()), "splits {a} {b}");
            }
        }
    }

    #[test]
    fn one_byte_chunks_are_accepted() {
        let text = "Hello-µ@ßöäüàá-UTF-8!! 𝄞".as_bytes();
        let splits: Vec<usize> = (1..text.len()).collect();
        assert_eq!(feed_split(text, &splits), Ok(()));
    }

    #[test]
    fn truncated_message_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xF0, 0x9D]), Ok(()));
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }

    /// Fail fast: 0xF4 0x90 starts a code point above U+10FFFF; it is refused before the
    /// rest of the sequence arrives (Autobahn 6.4.1).
    #[test]
    fn fails_at_the_first_impossible_byte() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("κόσμε".as_bytes()), Ok(()));
        assert_eq!(v.feed(&[0xF4]), Ok(()));
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn invalid_sequences_are_refused() {
        for bad in [
            &[0xFF][..],
            &[0xC0, 0x80],             // overlong NUL
            &[0xED, 0xA0, 0x80],       // UTF-16 surrogate
            &[0xF8, 0x88, 0x80, 0x80], // 5-byte form
            &[0x80],                   // lone continuation
        ] {
            assert_eq!(feed_split(bad, &[]), Err(InvalidUtf8), "{bad:x?}");
            for cut in 1..bad.len() {
                assert_eq!(
                    feed_split(bad, &[cut]),
                    Err(InvalidUtf8),
                    "{bad:x?} cut {cut}"
                );
            }
        }
    }

    proptest! {
        /// Any split of any byte string gives the same verdict as validating it whole.
        #[test]
        fn chunked_verdict_equals_whole_verdict(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            splits in proptest::collection::vec(0usize..64, 0..6),
        ) {
            let mut splits = splits;
            splits.sort_unstable();
            let whole = std::str::from_utf8(&bytes).is_ok();
            prop_assert_eq!(feed_split(&bytes, &splits).is_ok(), whole);
        }

        #[test]
        fn chunked_valid_text_is_accepted(
            text in "\\PC{0,40}",
            splits in proptest::collection::vec(0usize..160, 0..6),
        ) {
            let mut splits = splits;
            splits.sort_unstable();
            prop_assert_eq!(feed_split(text.as_bytes(), &splits), Ok(()));
        }

        /// `feed_into` agrees with `feed` on every split, fails no later, and rebuilds the
        /// text exactly.
        #[test]
        fn feed_into_agrees_and_rebuilds_the_text(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            text in "\\PC{0,20}",
            splits in proptest::collection::vec(0usize..80, 0..6),
        ) {
            let mut splits = splits;
            splits.sort_unstable();
            for input in [&bytes[..], text.as_bytes()] {
                let (mut v, mut w, mut out) = (Utf8Validator::new(), Utf8Validator::new(), String::new());
                let mut start = 0;
                let mut verdict = Ok(());
                for &s in splits.iter().chain([&input.len()]) {
                    let s = s.clamp(start, input.len());
                    let (a, b) = (v.feed(&input[start..s]), w.feed_into(&input[start..s], &mut out));
                    prop_assert_eq!(a, b);
                    verdict = a;
                    start = s;
                    if verdict.is_err() {
                        break;
                    }
                }
                let verdict = verdict.and_then(|()| w.finish());
                prop_assert_eq!(verdict.is_ok(), std::str::from_utf8(input).is_ok());
                if verdict.is_ok() {
                    prop_assert_eq!(out.as_bytes(), input);
                }
            }
        }
    }
}
