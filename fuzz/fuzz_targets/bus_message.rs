//! Fuzz target: the cluster bus parsers (what arrives from Redis): messages and presence
//! notes share the channel.
//!
//! Oracles: arbitrary bytes never panic either parser; whatever parses re-encodes to bytes
//! that parse to the same message or note (a fixed point after one round).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::cluster::bus::BusMessage;
use wsloop::cluster::presence;

fuzz_target!(|data: &[u8]| {
    if let Some(note) = presence::parse(data) {
        let again =
            presence::parse(presence::encode(&note).as_bytes()).expect("an encoded note parses");
        assert_eq!(again, note, "encode -> parse round trip");
    }
    if let Some(message) = BusMessage::parse(data) {
        let again = BusMessage::parse(&message.encode()).expect("an encoded message parses");
        assert_eq!(again, message, "encode -> parse round trip");
    }
});
