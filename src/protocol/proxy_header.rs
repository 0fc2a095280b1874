//! The PROXY protocol header (HAProxy's `send-proxy` and `send-proxy-v2`), versions 1 and 2.
//!
//! A proxy in front of the server writes one header before the client's bytes, naming the
//! client's address and port. Version 1 is a line of text, version 2 a binary block; both
//! are parsed here from the start of a buffer, without I/O: [`parse`] answers
//! `Complete(header, length)`, `Partial` (nothing consumed) or an error, and never panics.
//! The caller decides whom to believe: the header is only read from trusted proxies.
//!
//! Quotes are from "The PROXY protocol, Versions 1 & 2" (haproxy `doc/proxy-protocol.txt`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::frame::Decoded;

/// The v2 signature: "\x0D \x0A \x0D \x0A \x00 \x0D \x0A \x51 \x55 \x49 \x54 \x0A" (§2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix: "a string identifying the protocol : "PROXY" ( \x50 \x52 \x4F \x58 \x59 )"
/// followed by "exactly one space" (§2.1).
const V1_PREFIX: &[u8] = b"PROXY ";
/// §2.1: "The maximum line lengths the receiver must support including the CRLF are [...]
/// worst case [...] 107 chars"; a line longer than that is refused.
pub const V1_MAX_LEN: usize = 107;
/// The fixed part of a v2 header: signature, version/command, family, length.
const V2_FIXED: usize = 16;
/// The longest v2 header accepted, fixed part included. Addresses take at most 216 bytes
/// (AF_UNIX); the rest is room for TLVs (HAProxy's unique-id, ALPN, authority, SSL info).
pub const V2_MAX_LEN: usize = 1024;

/// Offsets in a v2 header (§2.2).
const V2_VER_CMD: usize = 12;
const V2_FAMILY: usize = 13;
const V2_LEN: usize = 14;

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A proxied TCP connection: the client's address and the address it connected to.
    Proxied {
        /// The client (the source of the proxied connection).
        source: SocketAddr,
        /// The address the client connected to (the proxy's frontend).
        destination: SocketAddr,
    },
    /// No client address: a v2 `LOCAL` command (the proxy's own health check), v1
    /// `UNKNOWN`, or a family other than TCP over IPv4/IPv6. Use the TCP peer's address.
    Local,
}

/// Why a header was refused. Each one is the peer's fault: drop the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    /// The bytes start like neither a v1 nor a v2 header.
    NotProxy,
    /// A v1 line with no CRLF within 107 bytes, or a v2 header longer than [`V2_MAX_LEN`].
    TooLong,
    /// A v1 line that does not follow the grammar (fields, addresses, ports).
    BadLine,
    /// A v2 version other than 2.
    BadVersion,
    /// A v2 command other than LOCAL or PROXY.
    BadCommand,
    /// A v2 address block shorter than its family needs.
    ShortAddress,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotProxy => "no PROXY protocol header",
            Self::TooLong => "PROXY header too long",
            Self::BadLine => "malformed PROXY v1 line",
            Self::BadVersion => "PROXY v2 header with a version other than 2",
            Self::BadCommand => "PROXY v2 header with an unknown command",
            Self::ShortAddress => "PROXY v2 address block too short for its family",
        })
    }
}

impl std::error::Error for ProxyError {}

/// Parses a v1 or v2 header at the start of `buf`, which holds everything received so far.
///
/// Returns the header and its length once complete; `Partial` while `buf` is a prefix of a
/// header that may still be valid (call again with the grown buffer). At most 107 bytes are
/// examined for v1 and [`V2_MAX_LEN`] for v2, whatever `buf` holds.
pub fn parse(buf: &[u8]) -> Result<Decoded<ProxyHeader>, ProxyError> {
    if is_prefix(buf, &V2_SIGNATURE) {
        return parse_v2(buf);
    }
    if is_prefix(buf, V1_PREFIX) {
        return parse_v1(buf);
    }
    Err(ProxyError::NotProxy)
}

/// Whether `buf` and `expected` agree on their common length.
fn is_prefix(buf: &[u8], expected: &[u8]) -> bool {
    let n = buf.len().min(expected.len());
    buf[..n] == expected[..n]
}

/// Version 1: `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n` (§2.1).
fn parse_v1(buf: &[u8]) -> Result<Decoded<ProxyHeader>, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(cr) = window.windows(2).position(|w| w == b"\r\n") else {
        // Nothing is decoded before the CRLF is in; a lone LF or a byte that cannot be in
        // the line (v1 is printable US-ASCII) is wrong already, however long the line.
        if !window.iter().all(|&b| v1_byte(b)) {
            return Err(ProxyError::BadLine);
        }
        if window.len() >= V1_MAX_LEN {
            return Err(ProxyError::TooLong);
        }
        return Ok(Decoded::Partial);
    };
    if !window[..cr].iter().all(|&b| v1_byte(b)) {
        return Err(ProxyError::BadLine);
    }
    let line = std::str::from_utf8(&window[..cr]).map_err(|_| ProxyError::BadLine)?;
    let header = v1_fields(line).ok_or(ProxyError::BadLine)?;
    Ok(Decoded::Complete(header, cr + 2))
}

/// Whether `b` may appear in a v1 line before its CRLF: printable US-ASCII, or a CR (which
/// may turn out to start the CRLF).
fn v1_byte(b: u8) -> bool {
    b == b'\r' || (0x20..0x7F).contains(&b)
}

/// The fields of a v1 line without its CRLF.
fn v1_fields(line: &str) -> Option<ProxyHeader> {
    let rest = line.strip_prefix("PROXY ")?;
    // §2.1: "If the announced transport protocol is "UNKNOWN", then the receiver knows that
    // the sender speaks the correct PROXY protocol [...] and SHOULD accept the connection and
    // use the real connection's parameters"; the rest of the line is to be ignored.
    if rest == "UNKNOWN" || rest.starts_with("UNKNOWN ") {
        return Some(ProxyHeader::Local);
    }
    // "a single space" separates every field: split on one space, so doubled spaces fail.
    let mut fields = rest.split(' ');
    let family = fields.next()?;
    let (src, dst) = (fields.next()?, fields.next()?);
    let (sport, dport) = (port(fields.next()?)?, port(fields.next()?)?);
    if fields.next().is_some() {
        return None;
    }
    let (source, destination): (IpAddr, IpAddr) = match family {
        "TCP4" => (
            src.parse::<Ipv4Addr>().ok()?.into(),
            dst.parse::<Ipv4Addr>().ok()?.into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().ok()?.into(),
            dst.parse::<Ipv6Addr>().ok()?.into(),
        ),
        _ => return None,
    };
    Some(ProxyHeader::Proxied {
        source: SocketAddr::new(source, sport),
        destination: SocketAddr::new(destination, dport),
    })
}

/// A v1 port: a decimal number from 0 to 65535; digits only (no sign) and no leading zero,
/// so each port has one spelling.
fn port(field: &str) -> Option<u16> {
    let digits = !field.is_empty() && field.len() <= 5 && field.bytes().all(|b| b.is_ascii_digit());
    if !digits || (field.len() > 1 && field.starts_with('0')) {
        return None;
    }
    field.parse().ok()
}

/// Version 2: the signature, then version/command, family/transport, a big-endian length,
/// the address block and TLVs (§2.2).
fn parse_v2(buf: &[u8]) -> Result<Decoded<ProxyHeader>, ProxyError> {
    if buf.len() > V2_VER_CMD {
        check_ver_cmd(buf[V2_VER_CMD])?;
    }
    if buf.len() < V2_FIXED {
        return Ok(Decoded::Partial);
    }
    let len = usize::from(u16::from_be_bytes([buf[V2_LEN], buf[V2_LEN + 1]]));
    let total = V2_FIXED + len;
    if total > V2_MAX_LEN {
        return Err(ProxyError::TooLong);
    }
    let Some(block) = buf.get(V2_FIXED..total) else {
        return Ok(Decoded::Partial);
    };
    // §2.2: "\x0 : LOCAL : [...] The receiver must accept this connection as valid and must
    // use the real connection endpoints and discard the protocol block including the
    // family which is ignored."
    if buf[V2_VER_CMD] & 0x0F == 0 {
        return Ok(Decoded::Complete(ProxyHeader::Local, total));
    }
    v2_addresses(buf[V2_FAMILY], block).map(|h| Decoded::Complete(h, total))
}

/// §2.2: "The highest four bits contains the version. [...] it must always be sent as \x2
/// and the receiver must only accept this value." "The lowest four bits represents the
/// command [...] other values are unassigned and must not be emitted by senders. Receivers
/// must drop connections presenting unexpected values here."
fn check_ver_cmd(byte: u8) -> Result<(), ProxyError> {
    if byte >> 4 != 2 {
        return Err(ProxyError::BadVersion);
    }
    if byte & 0x0F > 1 {
        return Err(ProxyError::BadCommand);
    }
    Ok(())
}

/// The address block of a PROXY command. `\x11` is TCP over IPv4 (4 + 4 + 2 + 2 bytes),
/// `\x21` TCP over IPv6 (16 + 16 + 2 + 2). §2.2: for other families "the receiver is free
/// to accept the connection anyway and use the real endpoint addresses".
fn v2_addresses(family: u8, block: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let (ip_len, make): (usize, fn(&[u8]) -> IpAddr) = match family {
        0x11 => (4, |b| {
            IpAddr::from(<[u8; 4]>::try_from(b).unwrap_or_default())
        }),
        0x21 => (16, |b| {
            IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or_default())
        }),
        _ => return Ok(ProxyHeader::Local),
    };
    // "the address length [...] may be larger than the address block [...] the receiver
    // must skip the extra bytes", but never shorter than the family's addresses.
    let Some(addrs) = block.get(..2 * ip_len + 4) else {
        return Err(ProxyError::ShortAddress);
    };
    let (src, rest) = addrs.split_at(ip_len);
    let (dst, ports) = rest.split_at(ip_len);
    let sport = u16::from_be_bytes([ports[0], ports[1]]);
    let dport = u16::from_be_bytes([ports[2], ports[3]]);
    Ok(ProxyHeader::Proxied {
        source: SocketAddr::new(make(src), sport),
        destination: SocketAddr::new(make(dst), dport),
    })
}

/// Encodes a v2 PROXY header for TCP (a test and fuzz helper, and what a client behind a
/// proxy would see sent on its behalf). Mixed families encode as `LOCAL`.
pub fn encode_v2(source: SocketAddr, destination: SocketAddr, out: &mut Vec<u8>) {
    out.extend_from_slice(&V2_SIGNATURE);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&[0x21, 0x11, 0, 12]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            out.extend_from_slice(&[0x21, 0x21, 0, 36]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        _ => return out.extend_from_slice(&[0x20, 0x00, 0, 0]),
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
}

#[cfg(test)]
#[path = "proxy_header_tests.rs"]
mod tests;
