//! Cluster-wide presence as one node sees it: for each room with members on this node,
//! which users are in it on any node.
//!
//! A user is present in a room while any of their connections on any node is a member.
//! Each [`Roster`] counts, per user, the *places* they are present in: this node counts
//! once (however many local connections), each other node once. A user arrives when the
//! count goes from 0 to 1 and leaves when it goes back to 0, so a second node, or a node
//! that leaves while another still has the user, announces nothing.
//!
//! What other nodes hold comes from a snapshot read from Redis, then from their notes on
//! the bus. A note and a snapshot may cross (the note published after the read, but seen
//! first): while a read is in flight the roster remembers which (node, user) pairs notes
//! changed, and the snapshot does not overwrite those. Plain data, no I/O: the hub drives
//! it, and tests drive it directly.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The most (room, node, user) entries about other nodes one node mirrors, over all
/// rooms: past it, further remote users are not mirrored (their rooms' counts are low)
/// and [`Rosters::overflowed`] says so. About 100 MiB at most.
pub(super) const MAX_REMOTE_ENTRIES: usize = 1 << 20;

/// A user who arrived in (`true`) or left (`false`) a room, cluster-wide.
pub(super) type Crossing = (Rc<str>, bool);

/// One room's users, cluster-wide.
#[derive(Debug, Default)]
struct Roster {
    /// Users and in how many places (this node, other nodes) each is present.
    present: HashMap<Rc<str>, u32>,
    /// Other nodes' users in this room.
    remote: HashMap<Rc<str>, HashSet<Rc<str>>>,
    /// Snapshot reads in flight.
    reads: u32,
    /// (node, user) pairs changed by notes while a read was in flight.
    touched: HashSet<(Rc<str>, Rc<str>)>,
    /// Nodes declared dead while a read was in flight (the read may predate it).
    dropped: HashSet<Rc<str>>,
}

impl Roster {
    /// One more place for `user`; whether they arrived.
    fn add(&mut self, user: &Rc<str>) -> bool {
        let count = self.present.entry(user.clone()).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// One place fewer for `user`; whether they left.
    fn remove(&mut self, user: &str) -> bool {
        let Some(count) = self.present.get_mut(user) else {
            return false;
        };
        *count = count.saturating_sub(1);
        if *count > 0 {
            return false;
        }
        self.present.remove(user);
        true
    }

    /// Whether `node` has `user` here.
    fn has_remote(&self, node: &str, user: &str) -> bool {
        self.remote
            .get(node)
            .is_some_and(|users| users.contains(user))
    }
}

/// Every mirrored room's roster (only rooms with members on this node).
#[derive(Debug, Default)]
pub(super) struct Rosters {
    rooms: HashMap<Rc<str>, Roster>,
    /// Entries about other nodes, over all rooms.
    remote_entries: usize,
    /// Remote entries refused because of [`MAX_REMOTE_ENTRIES`].
    overflowed: u64,
}

impl Rosters {
    /// Starts mirroring `room` (its first local member is joining); true if it was not
    /// mirrored yet, and the caller must read its snapshot (a read is then in flight).
    pub(super) fn open(&mut self, room: &Rc<str>) -> bool {
        if self.rooms.contains_key(room) {
            return false;
        }
        let roster = Roster {
            reads: 1,
            ..Roster::default()
        };
        self.rooms.insert(room.clone(), roster);
        true
    }

    /// Stops mirroring `room` (its last local member left).
    pub(super) fn close(&mut self, room: &str) {
        if let Some(roster) = self.rooms.remove(room) {
            let entries: usize = roster.remote.values().map(HashSet::len).sum();
            self.remote_entries = self.remote_entries.saturating_sub(entries);
        }
    }

    /// The names of the mirrored rooms.
    pub(super) fn names(&self) -> Vec<Rc<str>> {
        self.rooms.keys().cloned().collect()
    }

    /// A local user arrived in (`present`) or left `room` on this node; whether that
    /// makes them arrive in or leave the room cluster-wide. False if `room` is not mirrored.
    pub(super) fn here(&mut self, room: &str, user: &Rc<str>, present: bool) -> bool {
        match self.rooms.get_mut(room) {
            Some(roster) if present => roster.add(user),
            Some(roster) => roster.remove(user),
            None => false,
        }
    }

    /// Another node says `user` arrived in or left `room` there; whether they arrived in
    /// or left the room cluster-wide. Ignored for rooms not mirrored here.
    pub(super) fn note(&mut self, room: &str, node: &str, user: &str, present: bool) -> bool {
        let Some(roster) = self.rooms.get_mut(room) else {
            return false;
        };
        if roster.reads > 0 && roster.touched.len() < MAX_REMOTE_ENTRIES {
            roster.touched.insert((Rc::from(node), Rc::from(user)));
        }
        let (node, user): (Rc<str>, Rc<str>) = (node.into(), user.into());
        set_remote(
            roster,
            &mut self.remote_entries,
            &mut self.overflowed,
            &node,
            &user,
            present,
        )
    }

    /// Drops every user of `node` (declared dead); the users who left each room.
    pub(super) fn node_gone(&mut self, node: &str) -> Vec<(Rc<str>, Vec<Rc<str>>)> {
        let mut departures = Vec::new();
        for (room, roster) in &mut self.rooms {
            if roster.reads > 0 {
                roster.dropped.insert(Rc::from(node));
            }
            let Some(users) = roster.remote.remove(node) else {
                continue;
            };
            self.remote_entries = self.remote_entries.saturating_sub(users.len());
            let left: Vec<Rc<str>> = users.into_iter().filter(|u| roster.remove(u)).collect();
            if !left.is_empty() {
                departures.push((room.clone(), left));
            }
        }
        departures
    }

    /// A new snapshot read of `room` is about to be sent; false if `room` is not mirrored.
    pub(super) fn begin_read(&mut self, room: &str) -> bool {
        let Some(roster) = self.rooms.get_mut(room) else {
            return false;
        };
        roster.reads += 1;
        true
    }

    /// A snapshot read of `room` failed: the roster keeps what it knows.
    pub(super) fn abandon_read(&mut self, room: &str) {
        if let Some(roster) = self.rooms.get_mut(room) {
            end_read(roster);
        }
    }

    /// Takes what Redis holds for `room`, other nodes' users by node, as the truth about
    /// other nodes, except for pairs notes changed since the read was sent (they are
    /// newer). Returns the users who arrived or left because of it.
    pub(super) fn apply(
        &mut self,
        room: &str,
        snapshot: &[(String, Vec<String>)],
    ) -> Vec<Crossing> {
        let Some(roster) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        let mut wanted: HashSet<(Rc<str>, Rc<str>)> = HashSet::new();
        for (node, users) in snapshot {
            let node: Rc<str> = node.as_str().into();
            if roster.dropped.contains(&node) {
                continue;
            }
            wanted.extend(users.iter().map(|u| (node.clone(), Rc::from(u.as_str()))));
        }
        let current: Vec<(Rc<str>, Rc<str>)> = roster
            .remote
            .iter()
            .flat_map(|(n, users)| users.iter().map(move |u| (n.clone(), u.clone())))
            .collect();
        let mut crossings = Vec::new();
        for pair in current.iter().filter(|p| !wanted.contains(*p)) {
            if roster.touched.contains(pair) {
                continue;
            }
            let (node, user) = pair;
            if set_remote(
                roster,
                &mut self.remote_entries,
                &mut self.overflowed,
                node,
                user,
                false,
            ) {
                crossings.push((user.clone(), false));
            }
        }
        for pair in &wanted {
            let (node, user) = pair;
            if roster.touched.contains(pair) || roster.has_remote(node, user) {
                continue;
            }
            if set_remote(
                roster,
                &mut self.remote_entries,
                &mut self.overflowed,
                node,
                user,
                true,
            ) {
                crossings.push((user.clone(), true));
            }
        }
        end_read(roster);
        crossings
    }

    /// Distinct users in `room` cluster-wide; `None` if it is not mirrored.
    pub(super) fn count(&self, room: &str) -> Option<usize> {
        self.rooms.get(room).map(|r| r.present.len())
    }

    /// Up to `limit` of `room`'s users, sorted (any `limit` of them, as
    /// [`super::rooms::Room::some_users`]); `None` if it is not mirrored.
    pub(super) fn some(&self, room: &str, limit: usize) -> Option<Vec<&str>> {
        let roster = self.rooms.get(room)?;
        let mut users: Vec<&str> = roster.present.keys().take(limit).map(|u| &**u).collect();
        users.sort_unstable();
        Some(users)
    }

    /// Whether `user` is in `room` on any node; `None` if it is not mirrored.
    pub(super) fn has(&self, room: &str, user: &str) -> Option<bool> {
        self.rooms.get(room).map(|r| r.present.contains_key(user))
    }

    /// Remote entries refused so far because of [`MAX_REMOTE_ENTRIES`].
    pub(super) fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

/// A read came back: once none is in flight, notes no longer need remembering.
fn end_read(roster: &mut Roster) {
    roster.reads = roster.reads.saturating_sub(1);
    if roster.reads == 0 {
        roster.touched.clear();
        roster.dropped.clear();
    }
}

/// Sets whether `node` has `user` in `roster`, within [`MAX_REMOTE_ENTRIES`]; whether the
/// user arrived or left cluster-wide.
fn set_remote(
    roster: &mut Roster,
    entries: &mut usize,
    overflowed: &mut u64,
    node: &Rc<str>,
    user: &Rc<str>,
    present: bool,
) -> bool {
    if present {
        if roster.has_remote(node, user) {
            return false;
        }
        if *entries >= MAX_REMOTE_ENTRIES {
            *overflowed += 1;
            return false;
        }
        roster
            .remote
            .entry(node.clone())
            .or_default()
            .insert(user.clone());
        *entries += 1;
        return roster.add(user);
    }
    let Some(users) = roster.remote.get_mut(node) else {
        return false;
    };
    if !users.remove(user) {
        return false;
    }
    if users.is_empty() {
        roster.remote.remove(node);
    }
    *entries = entries.saturating_sub(1);
    roster.remove(user)
}

#[cfg(test)]
#[path = "roster_tests.rs"]
mod tests;
