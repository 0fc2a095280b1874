//! The event loop (placeholder while the protocol compiles).
