//! Client errors, split by who is to blame.

use std::fmt;
use std::io;

use super::backoff::Disconnect;
use crate::protocol::handshake::client::ClientHandshakeError;
use crate::protocol::{ProtocolError, UsageError};

/// Why a client operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a `ws://` URL this client can use.
    Url(String),
    /// The network failed (refused, reset, timed out).
    Io(io::Error),
    /// The server refused or botched the opening handshake.
    Handshake(ClientHandshakeError),
    /// The server broke RFC 6455; the connection was failed with the matching close code.
    Protocol(ProtocolError),
    /// The connection is closed (the close frame's code, 1005 if none, 1006 if no frame).
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The caller's mistake, e.g. sending after closing.
    Usage(UsageError),
    /// The TLS settings could not be built (an unreadable `--ca` file, no system roots, a
    /// host that is not a valid server name). Failed certificate checks are `Io` errors.
    Tls(String),
}

impl ClientError {
    /// How this ended, for the reconnection schedule.
    pub fn disconnect(&self) -> Disconnect {
        match self {
            Self::Handshake(ClientHandshakeError::Status { status, .. }) => {
                Disconnect::Refused(*status)
            }
            Self::Closed { code, .. } => Disconnect::Closed(*code),
            _ => Disconnect::Network,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(e) => f.write_str(e),
            Self::Io(e) => write!(f, "network error: {e}"),
            Self::Handshake(e) => write!(f, "{e}"),
            Self::Protocol(e) => write!(f, "protocol error from the server: {e}"),
            Self::Closed { code, reason } if reason.is_empty() => {
                write!(f, "connection closed ({code})")
            }
            Self::Closed { code, reason } => write!(f, "connection closed ({code} {reason})"),
            Self::Usage(e) => write!(f, "{e}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}
