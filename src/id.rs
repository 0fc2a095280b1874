//! Connection ids shared by the server (its slab) and the hub (its maps).

use std::fmt;

/// A slab index plus a generation, so a stale id never reaches the next connection that
/// reuses the slot (h2's ABA guard: "slab indices could be re-used").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// An id for slab slot `index` at `generation`.
    pub const fn new(index: u32, generation: u32) -> Self {
        Self { index, generation }
    }

    /// The slab slot.
    #[inline]
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The generation that tells apart successive tenants of a slot.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// A compact number for logs, the wire and the connection's `mio::Token`: generation
    /// in the high half, slot in the low.
    pub fn as_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The id [`ConnId::as_u64`] made this number from.
    pub fn from_u64(n: u64) -> Self {
        let low = u32::try_from(n & u64::from(u32::MAX)).unwrap_or(u32::MAX);
        let high = u32::try_from(n >> 32).unwrap_or(u32::MAX);
        Self::new(low, high)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u64())
    }
}
