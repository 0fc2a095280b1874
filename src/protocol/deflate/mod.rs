//! permessage-deflate (RFC 7692): compressed messages, agreed in the handshake.
//!
//! | RFC 7692 | what | module |
//! |---|---|---|
//! | RFC 6455 §9.1 | the `Sec-WebSocket-Extensions` header | [`header`] |
//! | §5, §7, §7.1 | offers, answers and the four parameters | [`negotiate`](mod@negotiate) |
//! | §6.1 | RSV1 marks a compressed message, on its first frame only | [`crate::protocol::rules`] |
//! | §7.2 | compressing and inflating a payload, the `00 00 ff ff` tail | [`codec`] |
//! | §7.1.1 | context takeover: what a connection keeps between messages | [`stream`] |
//!
//! The extension is off unless both sides agree. Once agreed, a [`Session`] given a
//! [`PerMessageDeflate`] accepts RSV1 on the first frame of a data message, inflates such a
//! message under the session's `max_message` limit (counted in inflated bytes: a
//! decompression bomb is closed with 1009 after at most `max_message` bytes plus one 16 KiB
//! step, whatever it would inflate to) and compresses what it sends when that is worth it.
//! Corrupt compressed data closes with 1007. Without the extension, RSV1 stays a protocol
//! error (1002).
//!
//! Memory per connection is described in [`stream`]: nothing between messages without
//! context takeover, about 46 KiB to receive and 250–370 KiB to send with it.
//!
//! [`Session`]: crate::protocol::Session

pub mod codec;
pub mod header;
pub mod negotiate;
pub mod stream;

pub use codec::{CompressError, Deflater, Inflater};
pub use header::{ExtensionItem, ExtensionParam, HeaderSyntaxError, parse_extensions};
pub use negotiate::{
    Agreement, DeflateConfig, DeflateParams, Direction, PERMESSAGE_DEFLATE, Refusal,
    accept_response, client_offer, negotiate,
};
pub use stream::{DeflaterPool, PerMessageDeflate};
