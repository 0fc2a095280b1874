//! Who the client is behind a proxy: `server.trusted_proxies` and the forwarded address.
//!
//! Only when the TCP peer is a trusted proxy does the server believe what it says about the
//! client: the PROXY protocol header (`server.proxy_protocol`), or else `X-Forwarded-For`
//! (the right-most address that is not itself a trusted proxy) or `X-Real-IP`. From anyone
//! else those are ignored, so a client cannot pick its own address to dodge per-IP limits.
//!
//! Address blocks are parsed by hand: `std` parses the addresses, and a prefix match is a
//! shift and a compare; no crate is worth it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::protocol::handshake::RequestHead;

/// An address block: `192.0.2.0/24`, `2001:db8::/32`, or one address (`10.0.0.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    addr: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(net.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the top `prefix` of `bits` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits - prefix.min(bits));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

impl FromStr for IpBlock {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}`: not an IP address or CIDR block"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would take `+8`.
            Some(p) => Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `server.trusted_proxies`: the peers whose word about the client is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    blocks: Vec<IpBlock>,
}

impl TrustedProxies {
    /// Parses a list of addresses and CIDR blocks; the error names the bad entry.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, String> {
        let blocks = list
            .iter()
            .map(|s| s.as_ref().trim().parse())
            .collect::<Result<_, _>>()?;
        Ok(Self { blocks })
    }

    /// Whether no proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }

    /// The client's address for a request that came from the trusted proxy `peer`.
    ///
    /// `X-Forwarded-For` lists every hop, the client first; each proxy appends the address
    /// it received the request from. The right-most entry that is not itself a trusted
    /// proxy is the client as far as trusted parties can vouch: anything left of it was
    /// written by someone untrusted (possibly the client itself). An entry that is not an
    /// address ends the walk at the last trusted hop. Without the header, `X-Real-IP`;
    /// without either, the peer.
    pub fn client_of(&self, peer: IpAddr, head: &RequestHead) -> IpAddr {
        let hops: Vec<&str> = head.header_list("x-forwarded-for").collect();
        if hops.is_empty() {
            return head.header("x-real-ip").and_then(parse_hop).unwrap_or(peer);
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// What is still to be learnt about a connection's client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    /// Nothing: the address is known (the peer's, or a trusted proxy's word) and counted.
    Known,
    /// A trusted proxy with `server.proxy_protocol`: its PROXY header comes first (or, if
    /// the first bytes are not one, its request's forwarding headers will say).
    ProxyHeader,
    /// A trusted proxy: the request head's `X-Forwarded-For` / `X-Real-IP` will say.
    Forwarded,
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:5000`,
/// `[2001:db8::1]:5000`), as some proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: "/".into(),
            query: None,
            minor_version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_match_by_prefix() {
        let b: IpBlock = "10.1.0.0/16".parse().unwrap();
        assert!(b.contains(ip("10.1.255.3")));
        assert!(!b.contains(ip("10.2.0.1")));
        assert!(
            b.contains(ip("::ffff:10.1.0.9")),
            "IPv4-mapped counts as IPv4"
        );
        let b: IpBlock = "2001:db8::/32".parse().unwrap();
        assert!(b.contains(ip("2001:db8:1::5")));
        assert!(!b.contains(ip("2001:db9::1")));
        assert!(!b.contains(ip("10.1.0.1")));
        let one: IpBlock = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all: IpBlock = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!("::/0".parse::<IpBlock>().unwrap().contains(ip("::1")));
    }

    #[test]
    fn bad_blocks_are_refused() {
        for s in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "host",
            "1.2.3/8",
        ] {
            assert!(s.parse::<IpBlock>().is_err(), "{s}");
        }
    }

    #[test]
    fn right_most_untrusted_forwarded_address() {
        let t = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let peer = ip("127.0.0.1");
        let h = head(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.2")]);
        assert_eq!(
            t.client_of(peer, &h),
            ip("203.0.113.5"),
            "the spoofed one is left"
        );
        let two = head(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.1:4000, 10.9.9.9"),
        ]);
        assert_eq!(t.client_of(peer, &two), ip("198.51.100.1"));
        let all_trusted = head(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
        assert_eq!(t.client_of(peer, &all_trusted), ip("10.0.0.1"));
        let garbage = head(&[("x-forwarded-for", "203.0.113.5, junk, 10.0.0.3")]);
        assert_eq!(t.client_of(peer, &garbage), ip("10.0.0.3"));
        let real = head(&[("x-real-ip", "2001:db8::9")]);
        assert_eq!(t.client_of(peer, &real), ip("2001:db8::9"));
        assert_eq!(t.client_of(peer, &head(&[])), peer);
    }
}
