//! The hub's error replies: a stable machine-readable code and a human message.
//!
//! Codes are part of the wire protocol (README, "Errors"): clients switch on them, so they
//! never change meaning. An error reply never closes the connection.

use std::fmt;

/// A stable error code sent in `{"type":"error","code":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The text frame is not a JSON object.
    InvalidJson,
    /// `type` names no request the server knows.
    UnknownType,
    /// A field is missing or has the wrong type or form.
    InvalidField,
    /// A room name is empty, too long, or uses characters outside the allowed set.
    InvalidRoom,
    /// The sender is not a member of the room it addressed.
    NotMember,
    /// No connection of the recipient user is connected.
    RecipientNotConnected,
    /// The request is larger than the hub's message limit.
    MessageTooLarge,
    /// A binary frame arrived on the JSON endpoint.
    BinaryNotSupported,
    /// A configured limit (rooms per connection, members per room) is reached.
    LimitExceeded,
    /// The per-user message rate limit dropped this message.
    RateLimited,
    /// The user may not do this (room rules).
    Forbidden,
    /// A token given with `refresh` did not verify.
    InvalidToken,
    /// The message could not be put in the cluster's shared history (Redis is away or
    /// behind); nothing was delivered. Retry after `retry_after_ms` with the same `id`.
    Unavailable,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::UnknownType => "unknown_type",
            Self::InvalidField => "invalid_field",
            Self::InvalidRoom => "invalid_room",
            Self::NotMember => "not_member",
            Self::RecipientNotConnected => "recipient_not_connected",
            Self::MessageTooLarge => "message_too_large",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::LimitExceeded => "limit_exceeded",
            Self::RateLimited => "rate_limited",
            Self::Forbidden => "forbidden",
            Self::InvalidToken => "invalid_token",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: the code and a message naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubError {
    /// The stable code.
    pub code: ErrorCode,
    /// A human explanation, e.g. "field `room` must be a string".
    pub message: String,
}

impl HubError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for HubError {}
