//! The fan-out message format: what the publisher sends and what a subscriber reads back.
//!
//! The chat payload is a JSON string of exactly `size` bytes,
//! `SSSSSSSSSSSS:TTTTTTTTTTTTTTTTTTTxxx…`: a 12-digit sequence number, a colon, the send
//! time as 19 digits of nanoseconds since the run began, and `x` padding. The hub writes the
//! payload as the last field of each delivery (`…,"payload":"…"}`), so both numbers sit at
//! a fixed distance from the end of the frame and are read without parsing the JSON.

/// Width of the sequence number in the payload.
const SEQ_DIGITS: usize = 12;
/// Width of the timestamp in the payload.
const TIME_DIGITS: usize = 19;
/// The shortest payload: both numbers and the `:` between them.
pub(crate) const MIN_SIZE: usize = SEQ_DIGITS + 1 + TIME_DIGITS;

/// The `chat` request carrying message `seq`, sent `sent` ns into the run, padded to `size`.
pub(crate) fn chat_request(room: &str, seq: u64, sent: u64, size: usize) -> String {
    let mut body = format!("{seq:0SEQ_DIGITS$}:{sent:0TIME_DIGITS$}");
    body.extend(std::iter::repeat_n('x', size.saturating_sub(body.len())));
    format!(r#"{{"type":"chat","room":"{room}","payload":"{body}"}}"#)
}

/// The raw pub/sub payload of message `seq`, sent `sent` ns into the run: exactly `size`
/// bytes.
pub(crate) fn raw_payload(seq: u64, sent: u64, size: usize) -> String {
    let mut body = format!("{seq:0SEQ_DIGITS$}:{sent:0TIME_DIGITS$}");
    body.extend(std::iter::repeat_n('x', size.saturating_sub(body.len())));
    body
}

/// `(sequence, sent nanoseconds)` from a raw payload of `size` bytes.
pub(crate) fn parse_raw(payload: &[u8], size: usize) -> Option<(u64, u64)> {
    if payload.len() != size || payload.get(SEQ_DIGITS) != Some(&b':') {
        return None;
    }
    let seq = digits(&payload[..SEQ_DIGITS])?;
    let sent = digits(payload.get(SEQ_DIGITS + 1..MIN_SIZE)?)?;
    Some((seq, sent))
}

/// `(sequence, sent nanoseconds)` from a delivery ending in `"payload":"<size bytes>"}`.
pub(crate) fn parse_delivery(text: &[u8], size: usize) -> Option<(u64, u64)> {
    let end = text.len().checked_sub(2)?;
    let start = end.checked_sub(size)?;
    if &text[end..] != br#""}"# || start == 0 || text[start - 1] != b'"' {
        return None;
    }
    let body = &text[start..end];
    if body.get(SEQ_DIGITS) != Some(&b':') {
        return None;
    }
    let seq = digits(&body[..SEQ_DIGITS])?;
    let sent = digits(body.get(SEQ_DIGITS + 1..MIN_SIZE)?)?;
    Some((seq, sent))
}

/// ASCII digits as a number; `None` for anything else or on overflow.
fn digits(bytes: &[u8]) -> Option<u64> {
    bytes.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))?
    })
}

/// `target` with `user_id=user` added to its query, unless it names a user already.
pub(crate) fn with_user(target: &str, user: &str) -> String {
    if target.contains("user_id=") {
        return target.to_owned();
    }
    let joiner = if target.contains('?') { '&' } else { '?' };
    format!("{target}{joiner}user_id={user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_payload_reads_back_from_a_delivery() {
        let request = chat_request("r", 42, 123_456, 40);
        let (_, payload) = request.split_once(r#""payload":"#).unwrap();
        let payload = payload.trim_end_matches('}');
        assert_eq!(payload.len(), 40 + 2, "{payload}");
        let delivery = format!(
            r#"{{"type":"chat","room":"r","sender_id":"p","timestamp":"t","payload":{payload}}}"#
        );
        assert_eq!(parse_delivery(delivery.as_bytes(), 40), Some((42, 123_456)));
        let minimal = chat_request("r", 7, 9, MIN_SIZE);
        assert!(minimal.ends_with(r#""payload":"000000000007:0000000000000000009"}"#));
    }

    #[test]
    fn a_raw_payload_reads_back() {
        let payload = raw_payload(42, 123_456, 40);
        assert_eq!(payload.len(), 40);
        assert_eq!(parse_raw(payload.as_bytes(), 40), Some((42, 123_456)));
        assert_eq!(parse_raw(payload.as_bytes(), 41), None, "the size is exact");
        assert_eq!(parse_raw(b"not a payload at all, not at all", 32), None);
    }

    #[test]
    fn malformed_payloads_are_refused() {
        assert_eq!(parse_delivery(br#"{"payload":"12"}"#, 40), None);
        let body = format!("{:012}:{:019}", 7, 9);
        let text = format!(r#"{{"payload":"{body}"}}"#);
        assert_eq!(parse_delivery(text.as_bytes(), 32), Some((7, 9)));
        assert_eq!(parse_delivery(text.replace(':', ";").as_bytes(), 32), None);
        assert_eq!(parse_delivery(text.as_bytes(), 33), None, "wrong size");
        assert_eq!(digits(b"0012"), Some(12));
        assert_eq!(digits(b"00a2"), None);
        assert_eq!(digits(b"99999999999999999999"), None, "overflow");
    }

    #[test]
    fn the_user_goes_into_the_query() {
        assert_eq!(with_user("/ws", "u"), "/ws?user_id=u");
        assert_eq!(with_user("/ws?a=1", "u"), "/ws?a=1&user_id=u");
        assert_eq!(with_user("/ws?user_id=me", "u"), "/ws?user_id=me");
    }
}
