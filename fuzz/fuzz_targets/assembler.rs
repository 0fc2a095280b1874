//! Fuzz target: structured frame sequences through a `Session` (RFC 6455 §5.4, §5.5, §8.1).
//!
//! The input is a script (`wsloop_fuzz::script`): role, limits, chunking and frames with any
//! opcode, FIN, RSV bits, masking and payload, encoded with `frame::encode_frame`. Oracle:
//! `wsloop_fuzz::model`: the messages delivered are the fragments concatenated, pings are
//! answered, and a broken rule fails the connection with the code the RFC implies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsloop_fuzz::model::check(data));
