//! User ids: which strings may name a user, and which ids the server keeps for itself.
//!
//! One rule wherever an id comes from outside (`?user_id=`, a token's user claim): 1–64
//! printable ASCII characters, no space or control character. Ids the server hands out
//! itself are reserved: the publish API's `sender_id` (default `server`) and every id that
//! starts with [`GUEST_PREFIX`], so nobody can speak as the server or read a guest's private
//! messages by naming themselves after it.

use std::fmt;

/// The longest user id accepted from `?user_id=` or a token.
pub const MAX_USER_ID_LEN: usize = 64;

/// The prefix of the ids given to anonymous clients (`guest-` and 16 random hex digits).
pub const GUEST_PREFIX: &str = "guest-";

/// Why a user id from outside is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserIdError {
    /// Empty, longer than [`MAX_USER_ID_LEN`], or a character outside printable ASCII.
    Malformed,
    /// An id the server uses itself (the API's sender id, or a guest id).
    Reserved,
}

impl UserIdError {
    /// The reason given with the refusal.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "user id must be 1-64 printable ASCII characters without spaces",
            Self::Reserved => "user id is reserved by the server",
        }
    }
}

impl fmt::Display for UserIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for UserIdError {}

/// Whether `id` has the form of a user id: 1–64 printable, non-space ASCII characters.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_USER_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Checks an id that a client claims: its form, and that it is not `server_id` (the
/// publish API's sender) or a guest id.
pub fn check_user_id(id: &str, server_id: &str) -> Result<(), UserIdError> {
    if !valid_user_id(id) {
        return Err(UserIdError::Malformed);
    }
    if id == server_id || id.starts_with(GUEST_PREFIX) {
        return Err(UserIdError::Reserved);
    }
    Ok(())
}

/// A fresh guest id: [`GUEST_PREFIX`] and 64 random bits in hex, unique across nodes and
/// restarts (a per-process counter would make `guest-1` on two nodes one user).
pub fn new_guest_id() -> String {
    let bytes = crate::client::random::nonce();
    let mut id = String::with_capacity(GUEST_PREFIX.len() + 16);
    id.push_str(GUEST_PREFIX);
    for b in &bytes[..8] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_reservation() {
        for ok in ["alice", "42", "a.b-c_d@e", "Guest-1", &"x".repeat(64)] {
            assert_eq!(check_user_id(ok, "server"), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "tab\t",
            "nl\n",
            "nul\0",
            "ümlaut",
            &"x".repeat(65),
        ] {
            assert_eq!(
                check_user_id(bad, "server"),
                Err(UserIdError::Malformed),
                "{bad:?}"
            );
        }
        for reserved in ["server", "guest-1", "guest-0123456789abcdef", "guest-"] {
            assert_eq!(
                check_user_id(reserved, "server"),
                Err(UserIdError::Reserved)
            );
        }
        assert_eq!(check_user_id("server", "backend"), Ok(()));
        assert_eq!(
            check_user_id("backend", "backend"),
            Err(UserIdError::Reserved)
        );
    }

    #[test]
    fn guest_ids_are_random_and_well_formed() {
        let a = new_guest_id();
        let b = new_guest_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), GUEST_PREFIX.len() + 16);
        assert!(valid_user_id(&a));
        assert_eq!(check_user_id(&a, "server"), Err(UserIdError::Reserved));
    }
}
