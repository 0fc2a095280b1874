//! Fuzz target: the cluster bus message parser (what arrives from Redis).
//!
//! Oracles: arbitrary bytes never panic the parser; whatever parses re-encodes to bytes
//! that parse to the same message (a fixed point after one round).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::cluster::bus::BusMessage;

fuzz_target!(|data: &[u8]| {
    if let Some(message) = BusMessage::parse(data) {
        let again = BusMessage::parse(&message.encode()).expect("an encoded message parses");
        assert_eq!(again, message, "encode -> parse round trip");
    }
});
