//! The opening handshake (RFC 6455 §4): parse the request, validate it, answer it.
//!
//! - [`request`]: the HTTP request head, parsed incrementally (Partial until the blank line).
//! - [`upgrade`]: the server's checks of §4.2.1 and the `101` answer of §4.2.2.
//! - [`accept`]: `Sec-WebSocket-Key` and `Sec-WebSocket-Accept`.

pub mod accept;
pub mod client;

pub mod request;
pub mod upgrade;

pub use accept::{accept_key, is_valid_key};
pub use request::{HeadError, HeadLimits, HeadParser, RequestHead, redact_query};
pub use upgrade::{Rejection, Upgrade, validate_upgrade, wants_upgrade, write_accept};
