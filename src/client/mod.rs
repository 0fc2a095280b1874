//! The client side of the protocol: the same sans-IO [`Session`](crate::protocol::Session)
//! in the client role, a blocking client, and the reconnection schedule.
//!
//! - [`Client`]: connect to `ws://…` or `wss://…`, send and receive messages, close.
//! - [`MioStream`]: a non-blocking `ws://` or `wss://` connection's bytes, for a caller's
//!   own `mio` loop of many connections (what `wsloop bench` runs on).
//! - [`tls`]: which certificates a `wss://` client trusts.
//! - [`Backoff`]: when to reconnect (exponential backoff with full jitter, a cap, an
//!   optional retry limit, reset after a healthy connection, no retry on 401/403/1008).
//! - [`random`]: masking keys and nonces from the OS.

mod backoff;
mod blocking;
mod error;
mod mio_stream;
pub mod random;
mod stream;
pub mod tls;
mod url;

pub use backoff::{Backoff, Decision, Disconnect};
pub use blocking::{Client, ClientOptions, Message};
pub use error::ClientError;
pub use mio_stream::MioStream;
pub use url::WsUrl;
