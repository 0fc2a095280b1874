//! Table tests for the PROXY header parser: the spec's examples, every refusal, every
//! prefix Partial, and an encode → parse round trip.

use super::*;

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::from(a), port)
}

fn proxied(source: SocketAddr, destination: SocketAddr) -> ProxyHeader {
    ProxyHeader::Proxied {
        source,
        destination,
    }
}

#[test]
fn v1_tcp4_and_tcp6() {
    let line = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET /";
    let want = proxied(v4([192, 0, 2, 1], 56324), v4([198, 51, 100, 1], 443));
    assert_eq!(parse(line), Ok(Decoded::Complete(want, line.len() - 5)));
    let line = b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
    let src = SocketAddr::new("2001:db8::1".parse().unwrap(), 1);
    let dst = SocketAddr::new("::1".parse().unwrap(), 65535);
    assert_eq!(
        parse(line),
        Ok(Decoded::Complete(proxied(src, dst), line.len()))
    );
}

#[test]
fn v1_unknown_means_the_real_peer() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
    ] {
        assert_eq!(
            parse(line),
            Ok(Decoded::Complete(ProxyHeader::Local, line.len()))
        );
    }
}

#[test]
fn v1_refusals() {
    for line in [
        &b"PROXY TCP4 192.0.2.1 198.51.100.1 56324\r\n"[..], // a field missing
        b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443 9\r\n", // one too many
        b"PROXY TCP4  192.0.2.1 198.51.100.1 1 2\r\n",       // two spaces
        b"PROXY TCP4 ::1 ::1 1 2\r\n",                       // family mismatch
        b"PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 65536 443\r\n", // port range
        b"PROXY TCP4 192.0.2.1 198.51.100.1 +1 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 080 443\r\n",
        b"PROXY UDP4 192.0.2.1 198.51.100.1 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 1 2\n", // LF without CR
        b"PROXY TCP4 300.0.2.1 198.51.100.1 1 2\r\n",
    ] {
        assert_eq!(
            parse(line),
            Err(ProxyError::BadLine),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn v1_without_crlf_in_107_bytes_is_too_long() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX_LEN - 1, b'x');
    assert_eq!(parse(&line), Ok(Decoded::Partial));
    line.push(b'x');
    assert_eq!(parse(&line), Err(ProxyError::TooLong));
    // 107 bytes including the CRLF is the longest accepted.
    line.truncate(V1_MAX_LEN - 2);
    line.extend_from_slice(b"\r\n");
    assert_eq!(
        parse(&line),
        Ok(Decoded::Complete(ProxyHeader::Local, V1_MAX_LEN))
    );
}

#[test]
fn every_prefix_is_partial() {
    let mut v2 = Vec::new();
    encode_v2(v4([10, 0, 0, 1], 5000), v4([10, 0, 0, 2], 80), &mut v2);
    let v1 = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n";
    for header in [&v2[..], &v1[..]] {
        for end in 0..header.len() {
            assert_eq!(parse(&header[..end]), Ok(Decoded::Partial), "prefix {end}");
        }
    }
}

#[test]
fn not_a_proxy_header() {
    for buf in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x16\x03\x01",
        b"PROXZ",
        b"\r\n\r\n\0\r\nQUIX",
    ] {
        assert_eq!(parse(buf), Err(ProxyError::NotProxy), "{buf:?}");
    }
}

#[test]
fn v2_round_trips_ipv4_and_ipv6() {
    let pairs = [
        (v4([192, 0, 2, 1], 56324), v4([198, 51, 100, 1], 443)),
        (
            SocketAddr::new("2001:db8::7".parse().unwrap(), 9),
            SocketAddr::new("2001:db8::1".parse().unwrap(), 443),
        ),
    ];
    for (src, dst) in pairs {
        let mut buf = Vec::new();
        encode_v2(src, dst, &mut buf);
        let len = buf.len();
        buf.extend_from_slice(b"GET /");
        assert_eq!(parse(&buf), Ok(Decoded::Complete(proxied(src, dst), len)));
    }
}

/// HAProxy's `send-proxy-v2` as captured on the wire: TCP4 172.19.0.1:42578 → 172.19.0.3:80.
#[test]
fn v2_as_haproxy_sends_it() {
    let mut buf = V2_SIGNATURE.to_vec();
    buf.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c, 172, 19, 0, 1, 172, 19, 0, 3]);
    buf.extend_from_slice(&[0xa6, 0x52, 0x00, 0x50]);
    let want = proxied(v4([172, 19, 0, 1], 0xa652), v4([172, 19, 0, 3], 80));
    assert_eq!(parse(&buf), Ok(Decoded::Complete(want, 28)));
}

#[test]
fn v2_local_unspec_and_tlvs() {
    let mut local = V2_SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    assert_eq!(parse(&local), Ok(Decoded::Complete(ProxyHeader::Local, 16)));
    // A PROXY command for AF_UNIX: accepted, the real peer is used.
    let mut unix = V2_SIGNATURE.to_vec();
    unix.extend_from_slice(&[0x21, 0x31, 0x00, 0xd8]);
    unix.resize(16 + 216, 0);
    assert_eq!(parse(&unix), Ok(Decoded::Complete(ProxyHeader::Local, 232)));
    // TLVs after the addresses are skipped.
    let mut tlv = V2_SIGNATURE.to_vec();
    tlv.extend_from_slice(&[0x21, 0x11, 0x00, 12 + 7, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
    tlv.extend_from_slice(&[0x05, 0x00, 0x04, b'a', b'b', b'c', b'd']);
    let want = proxied(v4([1, 2, 3, 4], 1), v4([5, 6, 7, 8], 2));
    assert_eq!(parse(&tlv), Ok(Decoded::Complete(want, tlv.len())));
}

#[test]
fn v2_refusals() {
    let header = |ver_cmd: u8, family: u8, len: u16| {
        let mut b = V2_SIGNATURE.to_vec();
        b.extend_from_slice(&[ver_cmd, family]);
        b.extend_from_slice(&len.to_be_bytes());
        b
    };
    assert_eq!(parse(&header(0x11, 0x11, 12)), Err(ProxyError::BadVersion));
    // The version is refused as soon as its byte arrives.
    assert_eq!(
        parse(&header(0x31, 0, 0)[..13]),
        Err(ProxyError::BadVersion)
    );
    assert_eq!(parse(&header(0x22, 0x11, 12)), Err(ProxyError::BadCommand));
    let mut short = header(0x21, 0x11, 8);
    short.resize(16 + 8, 0);
    assert_eq!(parse(&short), Err(ProxyError::ShortAddress));
    let mut short6 = header(0x21, 0x21, 12);
    short6.resize(16 + 12, 0);
    assert_eq!(parse(&short6), Err(ProxyError::ShortAddress));
    let too_long = u16::try_from(V2_MAX_LEN - 16 + 1).unwrap();
    assert_eq!(
        parse(&header(0x21, 0x11, too_long)),
        Err(ProxyError::TooLong)
    );
    assert_eq!(
        parse(&header(0x21, 0x11, u16::MAX)),
        Err(ProxyError::TooLong)
    );
}
