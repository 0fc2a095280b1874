//! Fuzz target: a client `Session` reading arbitrary bytes, split at arbitrary points.
//!
//! Oracle: the invariants of `wsloop_fuzz::drive` (no overrun, bounded leftovers, input
//! ignored after an error or a close, one close frame at most, every frame it writes masked)
//! and the same outcome whatever the chunking. Input layout: `wsloop_fuzz::input`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::protocol::Role;

fuzz_target!(|data: &[u8]| wsloop_fuzz::drive::check_stream(Role::Client, data));
