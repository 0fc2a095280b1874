//! Fuzz target: the PROXY protocol header, v1 and v2 (`protocol::proxy_header::parse`).
//!
//! Oracle: nothing panics; the header fed in arbitrary chunks (each call with the grown
//! buffer, as the server does) gives the same result as fed whole; a Complete header claims
//! at most the input and at most the size limit, and every shorter prefix of it is Partial
//! (nothing is decided before the header is in); a v2 TCP header re-encoded parses to the
//! same addresses. Input layout: `wsloop_fuzz::input`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::protocol::Decoded;
use wsloop::protocol::proxy_header::{
    ProxyError, ProxyHeader, V1_MAX_LEN, V2_MAX_LEN, V2_SIGNATURE, encode_v2, parse,
};
use wsloop_fuzz::input::Framed;

fuzz_target!(|data: &[u8]| {
    let input = Framed::parse(data);
    let whole = parse(input.stream);
    assert_eq!(chunked(&input), whole, "chunked and whole parses differ");
    let Ok(Decoded::Complete(header, len)) = whole else {
        return;
    };
    assert!(len <= input.stream.len(), "claimed {len} of {}", input.stream.len());
    assert!(len <= V1_MAX_LEN.max(V2_MAX_LEN), "{len} bytes over the limit");
    for end in 0..len {
        assert_eq!(parse(&input.stream[..end]), Ok(Decoded::Partial), "prefix {end} of {len}");
    }
    let v2 = input.stream.starts_with(&V2_SIGNATURE);
    if let (true, ProxyHeader::Proxied { source, destination }) = (v2, header) {
        let mut again = Vec::new();
        encode_v2(source, destination, &mut again);
        assert_eq!(parse(&again), Ok(Decoded::Complete(header, again.len())), "round trip");
    }
});

/// Parses as the server does: the buffer grows by one piece per call.
fn chunked(input: &Framed<'_>) -> Result<Decoded<ProxyHeader>, ProxyError> {
    let mut end = 0;
    for piece in input.pieces() {
        end += piece.len();
        let result = parse(&input.stream[..end]);
        if result != Ok(Decoded::Partial) {
            return result;
        }
    }
    Ok(Decoded::Partial)
}
