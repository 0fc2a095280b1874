//! One client connection as the event loop sees it: socket, phase, buffers.
//!
//! A connection moves through [`Phase::Handshaking`] → [`Phase::Open`] → [`Phase::Lingering`]
//! and is then removed. The closing handshake itself (close sent, close received) is the
//! [`Session`]'s business; the loop only asks it whether the exchange is over.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::client_addr::Pending;
use super::listeners::Port;
use super::outbound::OutQueue;
pub use crate::id::ConnId;
use crate::protocol::Session;
use crate::protocol::handshake::HeadParser;
use crate::transport::Stream;

/// An upgraded connection.
#[derive(Debug)]
pub(super) struct OpenConn {
    /// The RFC 6455 state.
    pub session: Session,
    /// The app it was opened for (its messages go there, whatever else closes).
    pub app: super::apps::AppId,
}

/// Where a connection is in its life.
#[derive(Debug)]
pub(super) enum Phase {
    /// Reading the HTTP request head.
    Handshaking(HeadParser),
    /// A plain HTTP request whose body is being read (`POST /api/publish`), or an API
    /// request waiting for the cluster; the body collects in `pending`.
    Body(Box<BodyRequest>),
    /// Upgraded; frames flow until the closing handshake ends.
    Open(OpenConn),
    /// The last bytes (an HTTP answer, or the close exchange) are being flushed; then the
    /// write side is shut and the loop waits, bounded, for the peer's EOF, so the kernel
    /// never resets a connection whose final bytes are still in flight.
    Lingering {
        /// The write side has been shut down.
        shut: bool,
        /// The peer already closed its side: remove as soon as the output is out.
        peer_done: bool,
        /// When the wait ends whatever happens: the one `Linger` deadline that applies
        /// (one armed for an earlier phase, or an earlier entry into this one, does not).
        until: Instant,
    },
}

/// A plain request for an app's path, reading its body, then waiting for its answer.
#[derive(Debug)]
pub(crate) struct BodyRequest {
    /// The body length (`Content-Length`).
    pub(crate) length: usize,
    /// The app the request is for.
    pub(crate) app: super::apps::AppId,
    /// The request's head, which the app sees with the body.
    pub(crate) head: Box<crate::protocol::handshake::RequestHead>,
    /// The app has the request and will answer later ([`super::HttpReply::Later`]).
    pub(crate) answer_pending: bool,
}

/// A client connection.
#[derive(Debug)]
pub(super) struct Conn {
    /// Slot and generation.
    pub id: ConnId,
    /// The socket, plain or TLS.
    pub(super) socket: Stream,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The client's address: the peer's, or what a trusted proxy said (`client_addr`).
    /// Logs, per-IP limits and metrics use this one.
    pub(super) client: IpAddr,
    /// The address counted against the per-IP limits, once admitted by them.
    pub(super) counted_ip: Option<IpAddr>,
    /// What a trusted proxy has yet to tell about the client.
    pub(super) client_pending: Pending,
    /// The listener it came in on.
    pub(super) port: Port,
    /// Life-cycle phase.
    pub phase: Phase,
    /// Received bytes not consumed yet: a partial request head, frame header or control
    /// frame. Empty (and unallocated) most of the time.
    pub pending: Vec<u8>,
    /// Bytes to send.
    pub out: OutQueue,
    /// WRITABLE interest is registered (only while output is blocked).
    pub writable_armed: bool,
    /// Reading stopped because the outbound queue is over the high-water mark.
    pub read_paused: bool,
    /// When the connection was accepted.
    pub(super) opened: Instant,
    /// The last time the peer sent anything.
    pub last_seen: Instant,
    /// Counts towards `max_connections` (false for connections only here to be refused).
    pub admitted: bool,
    /// The app it was opened with, until that app has been told of its close.
    pub(super) app: Option<super::apps::AppId>,
    /// The last time the connection had nothing queued or a write made progress.
    pub(super) write_progress: Instant,
    /// When the live stall check fires (see [`super::stall`]); `None` while none is armed.
    pub(super) stall_check: Option<Instant>,
    /// Bytes of a partly received message charged to `max_buffered_bytes` (see
    /// [`super::budget`]).
    pub(super) buffered: usize,
}

impl Conn {
    /// Whether the connection is upgraded and may still send data.
    #[inline]
    pub(crate) fn can_send(&self) -> bool {
        matches!(&self.phase, Phase::Open(open) if open.session.can_send())
    }
}

/// The connection with this id in `conns`, if it still exists (same slot, same generation).
///
/// A free function over the slab so callers can borrow other fields of the loop alongside.
#[inline]
pub(super) fn conn_mut(conns: &mut slab::Slab<Conn>, id: ConnId) -> Option<&mut Conn> {
    conns.get_mut(id.index()).filter(|c| c.id == id)
}
