//! The closing handshake as one state machine (RFC 6455 §5.5.1, §7.1).
//!
//! "If an endpoint receives a Close frame and did not previously send a Close frame, the
//! endpoint MUST send a Close frame in response … After sending a Close frame, the
//! application MUST NOT send any more data frames." Every close, sent or received, goes
//! through [`CloseState::on`], the one transition function, which says whether a frame must
//! go out. A second close is a no-op, so two Close frames never reach the wire.

/// Where a connection is in the closing handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloseState {
    /// Data flows both ways.
    #[default]
    Open,
    /// We sent a close frame and wait for the peer's; we send no more data.
    CloseSent,
    /// Both close frames have been exchanged; the TCP connection may be closed.
    Closed,
}

/// What happened to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseInput {
    /// This side wants to close (application request, shutdown, or a protocol failure).
    Send,
    /// A close frame arrived from the peer.
    Receive,
}

/// What the caller must put on the wire after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAction {
    /// Send our own close frame, with our code and reason.
    SendClose,
    /// Answer the peer's close frame (§5.5.1: typically echoing its status code).
    SendReply,
    /// Nothing to send.
    Nothing,
}

impl CloseState {
    /// The one transition function of the closing handshake.
    pub fn on(&mut self, input: CloseInput) -> CloseAction {
        let (next, action) = match (*self, input) {
            (Self::Open, CloseInput::Send) => (Self::CloseSent, CloseAction::SendClose),
            (Self::Open, CloseInput::Receive) => (Self::Closed, CloseAction::SendReply),
            (Self::CloseSent, CloseInput::Receive) => (Self::Closed, CloseAction::Nothing),
            (state, _) => (state, CloseAction::Nothing),
        };
        *self = next;
        action
    }

    /// Whether data frames may still be sent.
    #[inline]
    pub fn is_open(self) -> bool {
        self == Self::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn we_close_first() {
        let mut s = CloseState::Open;
        assert_eq!(s.on(CloseInput::Send), CloseAction::SendClose);
        assert_eq!(s, CloseState::CloseSent);
        assert_eq!(s.on(CloseInput::Receive), CloseAction::Nothing);
        assert_eq!(s, CloseState::Closed);
    }

    #[test]
    fn peer_closes_first_and_is_answered_once() {
        let mut s = CloseState::Open;
        assert_eq!(s.on(CloseInput::Receive), CloseAction::SendReply);
        assert_eq!(s, CloseState::Closed);
        assert_eq!(s.on(CloseInput::Send), CloseAction::Nothing);
        assert_eq!(s.on(CloseInput::Receive), CloseAction::Nothing);
    }

    /// The double-close bug (fastwebsockets tests/double_close.rs): never two Close frames.
    #[test]
    fn a_second_close_is_a_no_op() {
        let mut s = CloseState::Open;
        assert_eq!(s.on(CloseInput::Send), CloseAction::SendClose);
        assert_eq!(s.on(CloseInput::Send), CloseAction::Nothing);
        assert_eq!(s, CloseState::CloseSent);
    }

    #[test]
    fn only_open_allows_data() {
        assert!(CloseState::Open.is_open());
        assert!(!CloseState::CloseSent.is_open());
        assert!(!CloseState::Closed.is_open());
    }
}
