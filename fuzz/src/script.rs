//! The structured input of the `assembler` target: role, limits, chunking and frames.
//!
//! Read from the raw bytes with [`arbitrary::Unstructured`], one field after another (a
//! missing byte reads as 0), so a seed is easy to write by hand (see `fuzz/make_seeds.py`):
//!
//! ```text
//! u8 flags            bit 0: client role; bit 1: explicit limits follow
//! [u16 max_frame, u16 max_message]   big-endian, only with bit 1
//! u8 count, then (count & 15) chunk sizes
//! frames, until the input ends:
//!   u8 kind           % 8: 0 text, 1 binary, 2 continuation, 3 ping, 4 pong, 5 close,
//!                     6 reserved opcode (one more u8 picks it), 7 bare header (last frame)
//!   u8 flags          bit 0: not FIN; bit 1: wrong masking for the role; bits 4-6: RSV
//!   [u8; 4] key
//!   body              u8 % 4: 0 bytes (u8 len, bytes); 1 close body (u16 code, u8 len,
//!                     reason); 2 listed valid close code (u8 index, u8 len, reason);
//!                     3 fill (u8 byte, u16 len, u8 size: len % 1024 unless bit 1,
//!                     plus 65536 if bit 0)
//!   bare header       u8 byte 0 (raw FIN/RSV/opcode), u8 flags (bit 1: wrong masking),
//!                     [u8; 4] key, u8 form % 3: 0 7-bit (u8 % 126), 1 16-bit (u16),
//!                     2 64-bit (u64) length; no payload follows
//! ```

use arbitrary::{Arbitrary, Unstructured};
use wsloop::protocol::frame::encode_frame;
use wsloop::protocol::{FrameHeader, Limits, OpCode, Role};

/// Close codes an endpoint may send (§7.4.1, §7.4.2; 1012–1014 from the IANA registry).
pub const VALID_CLOSE_CODES: [u16; 16] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
];

/// The reserved opcodes (§5.2: 0x3–0x7 data, 0xB–0xF control).
const RESERVED_OPCODES: [u8; 10] = [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF];

/// One frame as the model sees it: the header's fields, raw, and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// FIN.
    pub fin: bool,
    /// RSV1–RSV3 as they sit in byte 0.
    pub rsv: u8,
    /// The four opcode bits, reserved values included.
    pub opcode: u8,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The declared payload length.
    pub len: u64,
    /// The unmasked payload; `None` when only the header was sent (a bare last header).
    pub payload: Option<Vec<u8>>,
}

/// A whole `assembler` input.
#[derive(Debug, Clone)]
pub struct Script {
    /// The role of the session under test.
    pub role: Role,
    /// Its limits.
    pub limits: Limits,
    /// Chunk sizes for feeding `wire`.
    pub sizes: Vec<u8>,
    /// The frames, in order.
    pub frames: Vec<Frame>,
    /// The frames encoded, as the peer sends them.
    pub wire: Vec<u8>,
}

impl Script {
    /// Reads a script from raw fuzz input; never fails.
    pub fn parse(data: &[u8]) -> Self {
        let mut u = Unstructured::new(data);
        let flags = byte(&mut u);
        let role = if flags & 1 != 0 {
            Role::Client
        } else {
            Role::Server
        };
        let limits = if flags & 2 != 0 {
            Limits {
                max_frame: u64::from(u16_be(&mut u)),
                max_message: usize::from(u16_be(&mut u)),
            }
        } else {
            Limits::default()
        };
        let count = byte(&mut u) & 0x0F;
        let sizes = take(&mut u, usize::from(count));
        let mut script = Self {
            role,
            limits,
            sizes,
            frames: Vec::new(),
            wire: Vec::new(),
        };
        while !u.is_empty() {
            let kind = byte(&mut u) % 8;
            if kind == 7 {
                script.push_bare_header(&mut u);
                break;
            }
            script.push_frame(&mut u, kind);
        }
        script
    }

    /// Whether the peer of this role must mask (§5.1: clients mask, servers do not).
    fn peer_masks(&self) -> bool {
        self.role == Role::Server
    }

    fn push_frame(&mut self, u: &mut Unstructured<'_>, kind: u8) {
        let opcode = match kind {
            0 => 0x1,
            1 => 0x2,
            2 => 0x0,
            3 => 0x9,
            4 => 0xA,
            5 => 0x8,
            _ => RESERVED_OPCODES[usize::from(byte(u)) % RESERVED_OPCODES.len()],
        };
        let flags = byte(u);
        let key = key(u);
        let payload = body(u);
        let frame = Frame {
            fin: flags & 1 == 0,
            rsv: flags & 0x70,
            opcode,
            mask: (self.peer_masks() != (flags & 2 != 0)).then_some(key),
            len: u64::try_from(payload.len()).unwrap_or(u64::MAX),
            payload: Some(payload),
        };
        self.encode(&frame);
        self.frames.push(frame);
    }

    /// Encodes with the crate's encoder, then writes the opcode bits by hand (the encoder
    /// cannot express a reserved opcode).
    fn encode(&mut self, frame: &Frame) {
        let header = FrameHeader {
            fin: frame.fin,
            rsv: frame.rsv,
            opcode: OpCode::from_bits(frame.opcode).unwrap_or(OpCode::Binary),
            mask: frame.mask,
            payload_len: frame.len,
        };
        let start = self.wire.len();
        encode_frame(
            &header,
            frame.payload.as_deref().unwrap_or_default(),
            &mut self.wire,
        );
        self.wire[start] = (self.wire[start] & 0xF0) | frame.opcode;
    }

    /// A header alone, written byte by byte, with any length form and any length.
    fn push_bare_header(&mut self, u: &mut Unstructured<'_>) {
        let b0 = byte(u);
        let wrong_mask = byte(u) & 2 != 0;
        let key = key(u);
        let mask = (self.peer_masks() != wrong_mask).then_some(key);
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        let len = match byte(u) % 3 {
            0 => {
                let len = byte(u) % 126;
                self.wire.extend_from_slice(&[b0, mask_bit | len]);
                u64::from(len)
            }
            1 => {
                let len = u16_be(u);
                self.wire.extend_from_slice(&[b0, mask_bit | 126]);
                self.wire.extend_from_slice(&len.to_be_bytes());
                u64::from(len)
            }
            _ => {
                let len = u64::from_be_bytes(array(u));
                self.wire.extend_from_slice(&[b0, mask_bit | 127]);
                self.wire.extend_from_slice(&len.to_be_bytes());
                len
            }
        };
        if let Some(key) = mask {
            self.wire.extend_from_slice(&key);
        }
        self.frames.push(Frame {
            fin: b0 & 0x80 != 0,
            rsv: b0 & 0x70,
            opcode: b0 & 0x0F,
            mask,
            len,
            payload: (len == 0).then(Vec::new),
        });
    }
}

/// A frame's payload, as the body byte chooses.
fn body(u: &mut Unstructured<'_>) -> Vec<u8> {
    match byte(u) % 4 {
        0 => {
            let len = byte(u);
            take(u, usize::from(len))
        }
        1 => close_body(u16_be(u), u),
        2 => {
            let code = VALID_CLOSE_CODES[usize::from(byte(u)) % VALID_CLOSE_CODES.len()];
            close_body(code, u)
        }
        _ => {
            let fill = byte(u);
            vec![fill; fill_len(u16_be(u), byte(u))]
        }
    }
}

/// Most fills stay under 1 KiB (fast to run); `size` bit 1 keeps all 16 bits of `len`, and
/// bit 0 adds 64 KiB (the 64-bit length form).
fn fill_len(len: u16, size: u8) -> usize {
    let len = if size & 2 != 0 { len } else { len % 1024 };
    usize::from(len) + if size & 1 != 0 { 1 << 16 } else { 0 }
}

fn close_body(code: u16, u: &mut Unstructured<'_>) -> Vec<u8> {
    let len = byte(u);
    let mut body = code.to_be_bytes().to_vec();
    body.extend(take(u, usize::from(len)));
    body
}

fn byte(u: &mut Unstructured<'_>) -> u8 {
    u8::arbitrary(u).unwrap_or(0)
}

fn u16_be(u: &mut Unstructured<'_>) -> u16 {
    u16::from_be_bytes(array(u))
}

fn key(u: &mut Unstructured<'_>) -> [u8; 4] {
    array(u)
}

fn array<const N: usize>(u: &mut Unstructured<'_>) -> [u8; N] {
    std::array::from_fn(|_| byte(u))
}

/// Up to `len` bytes, fewer if the input runs out.
fn take(u: &mut Unstructured<'_>, len: usize) -> Vec<u8> {
    let len = len.min(u.len());
    u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default()
}
