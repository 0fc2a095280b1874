//! Fuzz target: a server `Session` reading arbitrary bytes, split at arbitrary points.
//!
//! Oracle: the invariants of `wsloop_fuzz::drive` (no overrun, bounded leftovers, input
//! ignored after an error or a close, one close frame at most, the error's close code on the
//! wire) and the same outcome whatever the chunking. Input layout: `wsloop_fuzz::input`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::protocol::Role;

fuzz_target!(|data: &[u8]| wsloop_fuzz::drive::check_stream(Role::Server, data));
