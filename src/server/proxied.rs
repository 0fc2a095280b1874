//! Learning the client's address from a trusted proxy, before the request is answered.
//!
//! A connection from a trusted proxy is admitted at accept time against `max_connections`
//! only; the per-IP limits wait until the proxy has named the client, in its PROXY header
//! (read here, before the request head, under the same `handshake_timeout` and byte-rate
//! floor) or in the request head's forwarding headers. Then the client is admitted, or
//! refused with 429, exactly as a direct client would have been at accept.

use std::net::IpAddr;
use std::time::Instant;

use super::client_addr::Pending;
use super::conn::{ConnId, conn_mut};
use super::event_loop::Server;
use crate::protocol::Decoded;
use crate::protocol::handshake::RequestHead;
use crate::protocol::proxy_header::{self, ProxyError, ProxyHeader};

impl Server {
    /// Reads the PROXY header at the front of `scratch[..len]`. Returns the length of what
    /// follows it, moved to the front of `scratch`; `None` while the header is incomplete
    /// (saved in `pending`), when it is malformed or oversized (the connection is dropped)
    /// or when the client it names is refused. Bytes that do not start like a header are
    /// the proxy's own request: its forwarding headers, if any, name the client.
    pub(super) fn read_proxy_header(
        &mut self,
        id: ConnId,
        len: usize,
        now: Instant,
    ) -> Option<usize> {
        let conn = conn_mut(&mut self.conns, id)?;
        match proxy_header::parse(&self.scratch[..len]) {
            Ok(Decoded::Partial) => {
                conn.pending = self.scratch[..len].to_vec();
                None
            }
            Ok(Decoded::Complete(header, used)) => {
                let client = match header {
                    ProxyHeader::Proxied { source, .. } => source.ip().to_canonical(),
                    ProxyHeader::Local => conn.peer.ip(),
                };
                conn.pending = Vec::new();
                if !self.admit_client(id, client, now) {
                    return None;
                }
                self.scratch.copy_within(used..len, 0);
                Some(len - used)
            }
            // No header: the proxy speaks for itself (a health check, an operator's curl on
            // the proxy host), or forwards headers as any trusted proxy may.
            Err(ProxyError::NotProxy) => {
                conn.client_pending = Pending::Forwarded;
                Some(len)
            }
            Err(e) => {
                log::debug!("{id}: from {}: {e}", conn.peer);
                self.stats.proxy_header_errors += 1;
                self.remove(id);
                None
            }
        }
    }

    /// For a connection from a trusted proxy without the PROXY protocol: takes the client
    /// from the forwarding headers of its request head and admits it. Returns whether the
    /// request goes on (false: refused with 429).
    pub(super) fn resolve_forwarded(
        &mut self,
        id: ConnId,
        head: &RequestHead,
        now: Instant,
    ) -> bool {
        let Some(conn) = self.get(id) else {
            return false;
        };
        if conn.client_pending != Pending::Forwarded {
            return true;
        }
        let client = self.config.trusted_proxies.client_of(conn.peer.ip(), head);
        self.admit_client(id, client, now)
    }

    /// Admits `client` against the per-IP limits, or refuses it (429 with `Retry-After`).
    fn admit_client(&mut self, id: ConnId, client: IpAddr, now: Instant) -> bool {
        let verdict = self.admission_per_ip(client, now);
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return false;
        };
        conn.client = client;
        conn.client_pending = Pending::Known;
        match verdict {
            Ok(()) => {
                conn.counted_ip = Some(client);
                self.count_ip(client);
                true
            }
            Err(refusal) => {
                self.refuse(id, &refusal);
                false
            }
        }
    }
}
