//! The `wsloop` binary.
fn main() {}
