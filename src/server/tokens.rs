//! The `mio::Token` of a connection: its slab slot *and* its generation.
//!
//! One `poll` returns a batch of events, and handling one event can close a connection and
//! accept another into the same slot (the slab reuses the lowest free one). An event still
//! in the batch for the closed connection must then be dropped, not applied to the new
//! tenant: its token names the old generation, which no longer matches the slot's
//! [`ConnId`] (h2's ABA guard, carried all the way to the poller).

use mio::Token;
use slab::Slab;

use super::conn::ConnId;

// A token carries a 32-bit slot and a 32-bit generation.
const _: () = assert!(
    usize::BITS >= 64,
    "wsloop needs a 64-bit usize for its mio tokens"
);

/// Slots at or above this are never used, so no connection's token can equal one of the
/// loop's own (listener, waker, signals: `usize::MAX - 1` and below). The slab would need
/// four billion entries to get there.
const FIRST_RESERVED_SLOT: u32 = u32::MAX - 15;

/// The slot index as a `ConnId` field, or `None` when the slab has grown into the
/// reserved range (refuse the connection).
pub(super) fn slot_index(key: usize) -> Option<u32> {
    u32::try_from(key).ok().filter(|i| *i < FIRST_RESERVED_SLOT)
}

/// The token a connection registers its socket with.
pub(super) fn token_of(id: ConnId) -> Token {
    Token(usize::try_from(id.as_u64()).unwrap_or(usize::MAX))
}

/// The connection a readiness event names, if that very connection (same slot, same
/// generation) is still in `slots`; `None` for a stale or unknown token.
pub(super) fn live<T>(
    slots: &Slab<T>,
    token: Token,
    id_of: impl Fn(&T) -> ConnId,
) -> Option<ConnId> {
    let id = ConnId::from_u64(u64::try_from(token.0).ok()?);
    slots.get(id.index()).map(id_of).filter(|live| *live == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_slot_and_generation() {
        for id in [
            ConnId::new(0, 1),
            ConnId::new(7, u32::MAX),
            ConnId::new(FIRST_RESERVED_SLOT - 1, u32::MAX),
        ] {
            let token = token_of(id);
            assert_eq!(ConnId::from_u64(u64::try_from(token.0).unwrap()), id);
            assert!(
                token.0 < usize::MAX - 15,
                "{id:?} collides with a loop token"
            );
        }
        assert_ne!(token_of(ConnId::new(3, 1)), token_of(ConnId::new(3, 2)));
    }

    #[test]
    fn an_event_for_a_closed_connection_never_reaches_its_slots_next_tenant() {
        let mut slots: Slab<ConnId> = Slab::new();
        let old = ConnId::new(0, 1);
        assert_eq!(slots.insert(old), 0);
        let stale = token_of(old);
        assert_eq!(live(&slots, stale, |c| *c), Some(old));

        slots.remove(0);
        assert_eq!(live(&slots, stale, |c| *c), None);
        let new = ConnId::new(0, 2);
        assert_eq!(slots.insert(new), 0, "the slot is reused");
        assert_eq!(live(&slots, stale, |c| *c), None);
        assert_eq!(live(&slots, token_of(new), |c| *c), Some(new));
    }

    #[test]
    fn reserved_slots_are_refused() {
        assert_eq!(slot_index(5), Some(5));
        assert_eq!(slot_index(FIRST_RESERVED_SLOT as usize), None);
        assert_eq!(slot_index(usize::MAX), None);
    }
}
