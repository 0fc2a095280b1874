//! Cluster-wide presence in Redis, run by the publisher thread: who is in each room on
//! each node, and which nodes are alive.
//!
//! Keys (`<p>` is the cluster prefix; node ids, rooms and users hold no spaces):
//!
//! - `<p>:pu:<node> <room>`: set of the node's users in the room;
//! - `<p>:pm:<room>`: set of nodes with users in the room;
//! - `<p>:pr:<node>`: set of rooms where the node has users;
//! - `<p>:pn`: set of nodes that ever wrote presence;
//! - `<p>:pa:<node>`: the node's liveness key, set for [`EXPIRY`] by every heartbeat
//!   ([`HEARTBEAT`]).
//!
//! Each script changes the keys and publishes its note (see [`super::presence`]) at once,
//! so a node that reads a room's roster and then follows the bus misses nothing. A
//! heartbeat refreshes its node's liveness key and removes every node whose key expired
//! (its keys deleted, a `gone` note published): a node killed with `kill -9` leaves the
//! rooms within [`EXPIRY`] plus one heartbeat of a surviving node.

use std::time::Duration;

use redis::{Connection, Script, Value};

use super::presence::{encode, gone_template, sync_head};
use super::redis_io::RedisSettings;
use crate::hub::presence::PresenceNote;

/// How often the publisher thread refreshes its node's liveness key (and looks for dead
/// nodes). It may run up to 0.5 s late when the thread is idle.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a liveness key lives without a heartbeat: 3 heartbeats. A node that cannot
/// reach Redis (or is stopped) for this long is declared dead; it rewrites its presence
/// when it comes back.
pub const EXPIRY: Duration = Duration::from_secs(3);

/// ARGV: prefix, node, room, user, "1" (arrived) or "0" (left), channel, note.
const CHANGE_LUA: &str = r"
local p, node, room, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local users = p .. ':pu:' .. node .. ' ' .. room
if ARGV[5] == '1' then
  redis.call('SADD', users, user)
  redis.call('SADD', p .. ':pr:' .. node, room)
  redis.call('SADD', p .. ':pm:' .. room, node)
  redis.call('SADD', p .. ':pn', node)
else
  redis.call('SREM', users, user)
  if redis.call('SCARD', users) == 0 then
    redis.call('SREM', p .. ':pr:' .. node, room)
    redis.call('SREM', p .. ':pm:' .. room, node)
  end
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
";

/// ARGV: prefix, node, room, channel, note, users… Replaces the node's users of the room.
const SYNC_LUA: &str = r"
local p, node, room = ARGV[1], ARGV[2], ARGV[3]
local users = p .. ':pu:' .. node .. ' ' .. room
redis.call('DEL', users)
if #ARGV > 5 then
  for i = 6, #ARGV do redis.call('SADD', users, ARGV[i]) end
  redis.call('SADD', p .. ':pr:' .. node, room)
  redis.call('SADD', p .. ':pm:' .. room, node)
  redis.call('SADD', p .. ':pn', node)
else
  redis.call('SREM', p .. ':pr:' .. node, room)
  redis.call('SREM', p .. ':pm:' .. room, node)
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

/// ARGV: prefix, node, channel, sync note head (`WSP1 <node> sync `), rooms to keep…
/// Removes the node's users of every other room.
const PRUNE_LUA: &str = r"
local p, node = ARGV[1], ARGV[2]
local keep = {}
for i = 5, #ARGV do keep[ARGV[i]] = true end
for _, room in ipairs(redis.call('SMEMBERS', p .. ':pr:' .. node)) do
  if not keep[room] then
    redis.call('DEL', p .. ':pu:' .. node .. ' ' .. room)
    redis.call('SREM', p .. ':pm:' .. room, node)
    redis.call('SREM', p .. ':pr:' .. node, room)
    redis.call('PUBLISH', ARGV[3], ARGV[4] .. room)
  end
end
return 1
";

/// ARGV: prefix, room. Returns `[node, [users…], …]` for the live nodes in the room.
const ROSTER_LUA: &str = r"
local p, room = ARGV[1], ARGV[2]
local out = {}
for _, n in ipairs(redis.call('SMEMBERS', p .. ':pm:' .. room)) do
  if redis.call('EXISTS', p .. ':pa:' .. n) == 1 then
    table.insert(out, n)
    table.insert(out, redis.call('SMEMBERS', p .. ':pu:' .. n .. ' ' .. room))
  end
end
return out
";

/// ARGV: prefix, node, expiry (ms), channel, gone note head, gone note tail. Returns 1 if
/// the node's liveness key was still there (0: Redis lost it, or declared the node dead).
const HEARTBEAT_LUA: &str = r"
local p, me = ARGV[1], ARGV[2]
local had = redis.call('EXISTS', p .. ':pa:' .. me)
redis.call('SET', p .. ':pa:' .. me, '1', 'PX', ARGV[3])
redis.call('SADD', p .. ':pn', me)
for _, n in ipairs(redis.call('SMEMBERS', p .. ':pn')) do
  if redis.call('EXISTS', p .. ':pa:' .. n) == 0 then
    for _, room in ipairs(redis.call('SMEMBERS', p .. ':pr:' .. n)) do
      redis.call('DEL', p .. ':pu:' .. n .. ' ' .. room)
      redis.call('SREM', p .. ':pm:' .. room, n)
    end
    redis.call('DEL', p .. ':pr:' .. n)
    redis.call('SREM', p .. ':pn', n)
    redis.call('PUBLISH', ARGV[4], ARGV[5] .. n .. ARGV[6])
  end
end
return had
";

/// ARGV: prefix, channel, question line. Publishes the question and returns the nodes
/// whose liveness key is alive: the ones expected to answer.
const ASK_LUA: &str = r"
local p = ARGV[1]
local live = {}
for _, n in ipairs(redis.call('SMEMBERS', p .. ':pn')) do
  if redis.call('EXISTS', p .. ':pa:' .. n) == 1 then live[#live + 1] = n end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return live
";

/// The presence scripts, loaded once per thread (`EVALSHA`, falling back to `EVAL`).
pub(super) struct PresenceScripts {
    change: Script,
    sync: Script,
    prune: Script,
    roster: Script,
    heartbeat: Script,
    ask: Script,
}

impl PresenceScripts {
    pub(super) fn new() -> Self {
        Self {
            change: Script::new(CHANGE_LUA),
            sync: Script::new(SYNC_LUA),
            prune: Script::new(PRUNE_LUA),
            roster: Script::new(ROSTER_LUA),
            heartbeat: Script::new(HEARTBEAT_LUA),
            ask: Script::new(ASK_LUA),
        }
    }

    /// Records that `user` arrived in (`present`) or left `room` on this node, and
    /// publishes the note.
    pub(super) fn change(
        &self,
        conn: &mut Connection,
        settings: &RedisSettings,
        room: &str,
        user: &str,
        present: bool,
    ) -> redis::RedisResult<()> {
        let note = encode(&PresenceNote::Here {
            node: settings.node.clone(),
            room: room.to_owned(),
            user: user.to_owned(),
            present,
        });
        self.change
            .arg(&settings.prefix)
            .arg(&settings.node)
            .arg(room)
            .arg(user)
            .arg(if present { "1" } else { "0" })
            .arg(settings.channel())
            .arg(note)
            .invoke::<i64>(conn)
            .map(|_| ())
    }

    /// Rewrites this node's presence: exactly `rooms` (each with its local users), and
    /// nothing elsewhere; each room rewritten or removed is announced with `sync`.
    pub(super) fn sync(
        &self,
        conn: &mut Connection,
        settings: &RedisSettings,
        rooms: &[(String, Vec<String>)],
    ) -> redis::RedisResult<()> {
        for (room, users) in rooms {
            let note = encode(&PresenceNote::Sync {
                node: settings.node.clone(),
                room: room.clone(),
            });
            let mut invocation = self.sync.prepare_invoke();
            invocation
                .arg(&settings.prefix)
                .arg(&settings.node)
                .arg(room)
                .arg(settings.channel())
                .arg(note)
                .arg(users);
            invocation.invoke::<i64>(conn)?;
        }
        let head = sync_head(&settings.node);
        let names: Vec<&str> = rooms.iter().map(|(room, _)| room.as_str()).collect();
        let mut invocation = self.prune.prepare_invoke();
        invocation
            .arg(&settings.prefix)
            .arg(&settings.node)
            .arg(settings.channel())
            .arg(head)
            .arg(names);
        invocation.invoke::<i64>(conn).map(|_| ())
    }

    /// Publishes a question to every node (see [`super::query`]); the live nodes, which
    /// are expected to answer (this one included).
    pub(super) fn ask(
        &self,
        conn: &mut Connection,
        settings: &RedisSettings,
        line: &str,
    ) -> redis::RedisResult<Vec<String>> {
        self.ask
            .arg(&settings.prefix)
            .arg(settings.channel())
            .arg(line)
            .invoke(conn)
    }

    /// Every live node's users in `room` (this node's included), by node.
    pub(super) fn roster(
        &self,
        conn: &mut Connection,
        settings: &RedisSettings,
        room: &str,
    ) -> redis::RedisResult<Vec<(String, Vec<String>)>> {
        let reply: Value = self.roster.arg(&settings.prefix).arg(room).invoke(conn)?;
        Ok(parse_roster(reply))
    }

    /// Refreshes this node's liveness key and removes dead nodes; whether the key was
    /// still there.
    pub(super) fn heartbeat(
        &self,
        conn: &mut Connection,
        settings: &RedisSettings,
    ) -> redis::RedisResult<bool> {
        let (head, tail) = gone_template();
        let expiry_ms = u64::try_from(EXPIRY.as_millis()).unwrap_or(u64::MAX);
        let had: i64 = self
            .heartbeat
            .arg(&settings.prefix)
            .arg(&settings.node)
            .arg(expiry_ms)
            .arg(settings.channel())
            .arg(head)
            .arg(tail)
            .invoke(conn)?;
        Ok(had == 1)
    }
}

/// `[node, [users…], …]` as pairs; anything malformed is left out.
fn parse_roster(reply: Value) -> Vec<(String, Vec<String>)> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    let mut roster = Vec::new();
    let mut items = items.into_iter();
    while let (Some(node), Some(users)) = (items.next(), items.next()) {
        let (Some(node), Value::Array(users)) = (text(node), users) else {
            continue;
        };
        roster.push((node, users.into_iter().filter_map(text).collect()));
    }
    roster
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_roster_reply_is_read_by_node() {
        let reply = Value::Array(vec![
            bulk("a"),
            Value::Array(vec![bulk("alice"), bulk("bob")]),
            bulk("b"),
            Value::Array(vec![]),
        ]);
        assert_eq!(
            parse_roster(reply),
            vec![
                ("a".into(), vec!["alice".into(), "bob".into()]),
                ("b".into(), vec![])
            ]
        );
    }

    #[test]
    fn a_malformed_roster_reply_is_dropped_not_trusted() {
        assert!(parse_roster(Value::Nil).is_empty());
        let reply = Value::Array(vec![bulk("a"), bulk("not-a-list"), bulk("dangling")]);
        assert!(parse_roster(reply).is_empty());
    }
}
