//! RFC 6455 without I/O: handshake, frames, masking, messages, close.
//!
//! Everything here takes bytes (`&[u8]`, or `&mut [u8]` to unmask in place) and returns
//! parsed items, or writes bytes into a `Vec<u8>` the caller provides. Nothing touches a
//! socket, a clock or a thread, and no input can make it panic; this is what the fuzz targets
//! and most tests drive. Each rule of the RFC lives in one place:
//!
//! | RFC 6455 | module |
//! |---|---|
//! | §4 opening handshake | [`handshake`] |
//! | §5.2 base framing | [`frame`], [`opcode`], [`rules`] |
//! | §5.3 masking | [`mask`] |
//! | §5.4 fragmentation, §10.4 limits | [`assembler`] |
//! | §5.5.1 close, §7.4 status codes | [`close`], [`close_state`] |
//! | §8.1 UTF-8 | [`utf8`] |
//! | reading and writing a connection | [`session`] |
//! | RFC 7692 permessage-deflate | [`deflate`] |
//! | the PROXY protocol v1/v2 (HAProxy), before the handshake | [`proxy_header`] |

pub mod assembler;
pub mod body_framing;
pub mod close;
pub mod close_state;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod mask;
pub mod opcode;
pub mod proxy_header;
pub mod rules;
pub mod session;
pub mod utf8;

pub use assembler::MessageKind;
pub use close::{CloseCode, CloseFrame};
pub use close_state::CloseState;
pub use error::{ProtocolError, UsageError};
pub use frame::{Decoded, FrameHeader};
pub use opcode::OpCode;
pub use rules::Role;
pub use session::{Event, Limits, Read, Session};
