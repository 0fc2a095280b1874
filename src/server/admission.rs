//! Who gets in at accept time: the connection cap (503), connections per IP and the
//! handshake rate per IP (429), and the minimum handshake byte rate (slowloris).
//!
//! Refused clients still get an HTTP answer with `Retry-After`, so a browser or load
//! balancer sees why; the per-IP state is bounded (idle buckets are swept every minute).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::conn::{ConnId, Phase};
use super::event_loop::Server;
use super::timers::TimerKind;
use crate::protocol::http::Response;
use crate::ratelimit::TokenBucket;

/// How often idle per-IP buckets are forgotten.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The handshake byte-rate check runs this often while a handshake is in progress.
const RATE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The address a client is counted by: IPv4 as it is, an IPv4-mapped IPv6 address as its
/// IPv4 address, and any other IPv6 address by its /64 (the host bits zeroed), since one
/// IPv6 client commonly holds a whole /64 and could otherwise pick a fresh address for each
/// connection.
pub(super) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Per-IP state (by [`client_key`]): open connections and the handshake bucket.
#[derive(Debug, Default)]
pub(super) struct PerIp {
    /// Admitted connections per address.
    pub(super) connections: HashMap<IpAddr, u32>,
    /// Handshake token buckets per address.
    pub(super) buckets: HashMap<IpAddr, TokenBucket>,
}

/// Why a new connection is turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `max_connections` reached: 503.
    Full,
    /// `max_connections_per_ip` reached: 429.
    TooManyFromIp,
    /// Handshake rate per IP exceeded: 429, retry after the given seconds.
    HandshakeRate(u64),
}

impl Refusal {
    fn response(&self) -> Response {
        match self {
            Self::Full => {
                Response::text(503, "server at connection limit").header("Retry-After", "5")
            }
            Self::TooManyFromIp => Response::text(429, "too many connections from your address")
                .header("Retry-After", "5"),
            Self::HandshakeRate(secs) => {
                Response::text(429, "too many handshakes from your address")
                    .header("Retry-After", secs.to_string())
            }
        }
    }
}

impl Server {
    /// Decides whether a new connection from `ip` is admitted.
    pub(super) fn admission(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        self.capacity()?;
        self.admission_per_ip(ip, now)
    }

    /// Whether `max_connections` leaves room for one more.
    pub(super) fn capacity(&self) -> Result<(), Refusal> {
        if self.admitted >= self.config.max_connections {
            return Err(Refusal::Full);
        }
        Ok(())
    }

    /// The per-IP limits: connections from `ip`, and its handshake rate.
    pub(super) fn admission_per_ip(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let ip = client_key(ip);
        let max_per_ip = self.config.max_connections_per_ip;
        if max_per_ip > 0
            && self
                .per_ip
                .connections
                .get(&ip)
                .is_some_and(|n| *n as usize >= max_per_ip)
        {
            return Err(Refusal::TooManyFromIp);
        }
        if let Some(rate) = self.config.handshake_rate {
            let bucket = self
                .per_ip
                .buckets
                .entry(ip)
                .or_insert_with(|| TokenBucket::full(rate, now));
            if let Err(wait) = bucket.try_take(rate, now) {
                return Err(Refusal::HandshakeRate(wait.as_secs().saturating_add(1)));
            }
        }
        Ok(())
    }

    /// Counts an admitted connection against its address.
    pub(super) fn count_ip(&mut self, ip: IpAddr) {
        let ip = client_key(ip);
        *self.per_ip.connections.entry(ip).or_insert(0) += 1;
        self.stats.client_addresses = self.per_ip.connections.len();
    }

    /// Releases an admitted connection's count.
    pub(super) fn uncount_ip(&mut self, ip: IpAddr) {
        let ip = client_key(ip);
        if let Some(n) = self.per_ip.connections.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.connections.remove(&ip);
            }
        }
        self.stats.client_addresses = self.per_ip.connections.len();
    }

    /// Answers a refused connection and closes it once the answer is out.
    pub(super) fn refuse(&mut self, id: ConnId, refusal: &Refusal) {
        let response = refusal.response();
        self.stats.rejected(response.status);
        log::debug!("{id}: refused at accept: {refusal:?}");
        self.respond(id, response);
    }

    /// Arms the first handshake byte-rate check for a new connection.
    pub(super) fn arm_rate_check(&mut self, id: ConnId, now: Instant) {
        if self.config.min_handshake_bytes_per_sec > 0 {
            self.timers
                .arm(now + RATE_CHECK_EVERY, id, TimerKind::HandshakeRate);
        }
    }

    /// Drops a handshake that is sending too slowly; re-arms the check otherwise.
    pub(super) fn check_handshake_rate(&mut self, id: ConnId, now: Instant) {
        let min = self.config.min_handshake_bytes_per_sec;
        let Some(conn) = self.get(id) else { return };
        if !matches!(conn.phase, Phase::Handshaking(_) | Phase::Body(_)) {
            return;
        }
        let elapsed = now.saturating_duration_since(conn.opened).as_secs_f64();
        let expected = (elapsed - RATE_CHECK_EVERY.as_secs_f64()).max(0.0) * min as f64;
        // TLS handshake bytes count like request-head bytes.
        let received = conn.pending.len() + conn.socket.handshake_bytes();
        if (received as f64) < expected {
            log::debug!("{id}: handshake too slow ({received} bytes in {elapsed:.1}s)");
            self.stats.slow_handshakes += 1;
            return self.remove(id);
        }
        self.timers
            .arm(now + RATE_CHECK_EVERY, id, TimerKind::HandshakeRate);
    }

    /// Forgets per-IP buckets that have refilled (they hold nothing worth keeping).
    pub(super) fn sweep_buckets(&mut self, now: Instant) {
        if let Some(rate) = self.config.handshake_rate {
            self.per_ip
                .buckets
                .retain(|_, bucket| !bucket.is_full(rate, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::server::ServerConfig;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    /// A bound (not running) server allowing one connection per client address.
    fn one_per_ip() -> Server {
        Server::bind(ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections_per_ip: 1,
            handshake_rate: None,
            ..ServerConfig::default()
        })
        .expect("bind")
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let mut server = one_per_ip();
        let now = Instant::now();
        let first = ip("2001:db8:1:2::1");
        assert_eq!(server.admission(first, now), Ok(()));
        server.count_ip(first);
        let same_64 = ip("2001:db8:1:2:ffff:ffff:ffff:ffff");
        assert_eq!(server.admission(same_64, now), Err(Refusal::TooManyFromIp));
        assert_eq!(server.admission(ip("2001:db8:1:3::1"), now), Ok(()));
        assert_eq!(server.admission(ip("192.0.2.1"), now), Ok(()));
        server.uncount_ip(same_64);
        assert_eq!(server.admission(first, now), Ok(()), "released by its /64");
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let mut server = one_per_ip();
        server.count_ip(ip("192.0.2.7"));
        let mapped = ip("::ffff:192.0.2.7");
        assert_eq!(
            server.admission(mapped, Instant::now()),
            Err(Refusal::TooManyFromIp)
        );
    }
}
