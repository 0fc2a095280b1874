//! Shared harness for the fuzz targets in `fuzz_targets/`: what is too long for a target.
//!
//! - [`input`]: how a raw input's first bytes choose chunk sizes and limits.
//! - [`drive`]: feeds a [`wsloop::protocol::Session`] the way the server does and checks the
//!   invariants every read must keep.
//! - [`wire`]: reads back the frames a session wrote.
//! - [`script`]: the structured input of the `assembler` target (a sequence of frames).
//! - [`model`]: what RFC 6455 says a receiver must do with such a sequence (the oracle).

pub mod drive;
pub mod input;
pub mod model;
pub mod script;
pub mod wire;
