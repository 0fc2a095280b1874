//! What RFC 6455 requires of a receiver given a sequence of frames: the `assembler` oracle.
//!
//! Written from the RFC, not from `src/protocol/`. Each frame is judged in this order (the
//! peer's protocol errors first, then the receiver's limits, then the payload):
//!
//! 1. a reserved opcode, or a 64-bit length with its top bit set (§5.2): 1002;
//! 2. masking wrong for the role (§5.1), RSV bits with no extension (§5.2): 1002;
//! 3. a control frame without FIN or over 125 bytes (§5.5): 1002;
//! 4. a continuation with no message open, or a new message while one is open (§5.4): 1002;
//! 5. a data frame over `max_frame`, or a message over `max_message` (§10.4): 1009;
//! 6. text that cannot be UTF-8 so far, or ends inside a code point (§8.1): 1007;
//! 7. a close body of one byte or with a code not allowed on the wire (§5.5.1, §7.4): 1002;
//!    a close reason that is not UTF-8 (§5.5.1): 1007.
//!
//! A ping is answered by a pong with the same payload (§5.5.2); a close is answered by a
//! close echoing its code (§5.5.1), and everything after it is ignored. Control frames may sit
//! between the fragments of a message (§5.4), and a message is its fragments concatenated.

use wsloop::protocol::{OpCode, Role};

use crate::drive::{Seen, drive, session};
use crate::input::split;
use crate::script::{Frame, Script, VALID_CLOSE_CODES};
use crate::wire;

/// What a correct receiver does with a script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// The events it reports.
    pub seen: Vec<Seen>,
    /// The frames it sends back (pongs, the close reply), before any error close.
    pub replies: Vec<(OpCode, Vec<u8>)>,
    /// The close code it fails the connection with, if the script breaks a rule.
    pub error_code: Option<u16>,
}

/// The `assembler` target: a script fed in chunks must give exactly what the model expects.
pub fn check(data: &[u8]) {
    let script = Script::parse(data);
    let expected = expect(&script);
    let pieces = split(&script.wire, &script.sizes);
    let outcome = drive(&mut session(script.role, script.limits), &pieces);
    let error_code = outcome.error.map(|e| e.close_code().0);
    assert_eq!(
        error_code, expected.error_code,
        "close code ({:?})",
        outcome.error
    );
    assert_eq!(outcome.seen, expected.seen, "events");
    let mut frames = wire::frames(&outcome.out, script.role);
    if error_code.is_some() {
        // drive() checked that the last frame is the close with the error's code.
        frames.pop();
    }
    assert_eq!(frames, expected.replies, "frames sent back");
}

/// Runs the model over the script's frames.
pub fn expect(script: &Script) -> Expected {
    let mut model = Model {
        script,
        open: None,
        expected: Expected::default(),
    };
    for frame in &script.frames {
        match model.frame(frame) {
            Ok(Flow::Next) => {}
            Ok(Flow::Stop) => break,
            Err(code) => {
                model.expected.error_code = Some(code);
                break;
            }
        }
    }
    model.expected
}

/// Whether the model reads on after a frame.
enum Flow {
    /// Read the next frame.
    Next,
    /// The peer closed, or the last frame's payload never arrived.
    Stop,
}

/// The receiver's state between frames.
struct Model<'s> {
    script: &'s Script,
    /// The message being fragmented: whether it is text, and its bytes so far.
    open: Option<(bool, Vec<u8>)>,
    expected: Expected,
}

impl Model<'_> {
    fn frame(&mut self, frame: &Frame) -> Result<Flow, u16> {
        check_header(frame, self.script.role)?;
        if frame.opcode & 0x8 != 0 {
            self.control(frame)
        } else {
            self.data(frame)
        }
    }

    fn control(&mut self, frame: &Frame) -> Result<Flow, u16> {
        if !frame.fin || frame.len > 125 {
            return Err(1002);
        }
        let Some(payload) = &frame.payload else {
            return Ok(Flow::Stop);
        };
        match frame.opcode {
            0x9 => {
                self.expected.seen.push(Seen::Ping(payload.clone()));
                self.expected.replies.push((OpCode::Pong, payload.clone()));
                Ok(Flow::Next)
            }
            0xA => {
                self.expected.seen.push(Seen::Pong(payload.clone()));
                Ok(Flow::Next)
            }
            _ => self.close(payload),
        }
    }

    fn close(&mut self, body: &[u8]) -> Result<Flow, u16> {
        let (code, reason) = parse_close(body)?;
        self.expected
            .seen
            .push(Seen::Close(code, reason.to_owned()));
        let reply = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
        self.expected.replies.push((OpCode::Close, reply));
        Ok(Flow::Stop)
    }

    fn data(&mut self, frame: &Frame) -> Result<Flow, u16> {
        match (frame.opcode, self.open.is_some()) {
            (0x0, false) | (0x1 | 0x2, true) => return Err(1002),
            _ => {}
        }
        self.check_limits(frame)?;
        let Some(payload) = &frame.payload else {
            return Ok(Flow::Stop);
        };
        let (text, mut bytes) = self
            .open
            .take()
            .unwrap_or((frame.opcode == 0x1, Vec::new()));
        bytes.extend_from_slice(payload);
        if !frame.fin {
            if text {
                check_utf8_prefix(&bytes)?;
            }
            self.open = Some((text, bytes));
            return Ok(Flow::Next);
        }
        let message = if text {
            Seen::Text(String::from_utf8(bytes).map_err(|_| 1007_u16)?)
        } else {
            Seen::Binary(bytes)
        };
        self.expected.seen.push(message);
        Ok(Flow::Next)
    }

    /// §10.4: the frame and the message so far must fit the configured limits.
    fn check_limits(&self, frame: &Frame) -> Result<(), u16> {
        let limits = self.script.limits;
        let have = self.open.as_ref().map_or(0, |(_, bytes)| bytes.len());
        let room = limits.max_message.saturating_sub(have);
        let fits = usize::try_from(frame.len).is_ok_and(|len| len <= room);
        if frame.len > limits.max_frame || !fits {
            return Err(1009);
        }
        Ok(())
    }
}

/// Rules 1 and 2: what the header says about itself and about the peer's role.
fn check_header(frame: &Frame, role: Role) -> Result<(), u16> {
    let defined = matches!(frame.opcode, 0x0 | 0x1 | 0x2 | 0x8 | 0x9 | 0xA);
    let masked_right = frame.mask.is_some() == (role == Role::Server);
    if !defined || frame.len >> 63 != 0 || !masked_right || frame.rsv != 0 {
        return Err(1002);
    }
    Ok(())
}

/// §8.1, failing fast: the bytes so far must be UTF-8 or end inside a code point.
fn check_utf8_prefix(bytes: &[u8]) -> Result<(), u16> {
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_some() => Err(1007),
        _ => Ok(()),
    }
}

/// §5.5.1 and §7.4: an empty body, or a valid code and a UTF-8 reason.
fn parse_close(body: &[u8]) -> Result<(Option<u16>, &str), u16> {
    match body {
        [] => Ok((None, "")),
        [_] => Err(1002),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !VALID_CLOSE_CODES.contains(&code) && !(3000..=4999).contains(&code) {
                return Err(1002);
            }
            let reason = std::str::from_utf8(reason).map_err(|_| 1007_u16)?;
            Ok((Some(code), reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model's verdict on a committed seed, which must also pass the full check.
    fn seed(name: &str) -> Expected {
        let path = format!(
            "{}/corpus/assembler/seed-{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        check(&data);
        expect(&Script::parse(&data))
    }

    #[test]
    fn rfc_fragmented_message_with_interleaved_pings() {
        for name in [
            "rfc-fragmented-with-pings",
            "rfc-fragmented-with-pings-client",
        ] {
            let expected = seed(name);
            let ping = |p: &[u8]| Seen::Ping(p.to_vec());
            let seen = [ping(b"p1"), ping(b"p2"), Seen::Text("Hello".into())];
            assert_eq!(expected.seen, seen, "{name}");
            assert_eq!(expected.replies.len(), 2);
            assert_eq!(expected.error_code, None);
        }
    }

    #[test]
    fn close_is_answered_and_ends_the_script() {
        let expected = seed("conversation");
        assert_eq!(
            expected.seen.last(),
            Some(&Seen::Close(Some(1000), "bye".into()))
        );
        assert_eq!(
            expected.replies.last(),
            Some(&(OpCode::Close, vec![0x03, 0xE8]))
        );
        assert_eq!(
            seed("close-listed-code").seen,
            [Seen::Close(Some(1003), "ok".into())]
        );
    }

    #[test]
    fn each_broken_rule_has_its_code() {
        let cases = [
            ("utf8-split-across-fragments", None),
            ("binary-64k", None),
            ("invalid-utf8-fails-fast", Some(1007)),
            ("close-invalid-code", Some(1002)),
            ("small-limits-1009", Some(1009)),
            ("wrong-masking", Some(1002)),
            ("rsv-and-reserved-opcode", Some(1002)),
            ("bare-header-top-bit", Some(1002)),
            ("bare-header-16mib", Some(1009)),
            ("bare-header-control-126", Some(1002)),
        ];
        for (name, code) in cases {
            assert_eq!(seed(name).error_code, code, "{name}");
        }
    }
}
