//! Reading a room's history back from its Redis stream: for a recovering join, and for a
//! node catching up a gap in what the bus delivered to it.

use redis::{Connection, Value};

use super::bus::BusMessage;
use super::redis_io::RedisSettings;
use super::scripts::epoch_of;
use crate::hub::remote::{Fetched, RemoteMessage};
use crate::hub::request::Since;

/// What a read of a room's stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadFor {
    /// A recovering join: the messages after `since`, in `since`'s epoch only.
    Recovery,
    /// A node filling a gap: the messages after `since`, or the whole stream when the
    /// room's epoch is no longer `since`'s (the new epoch's offsets start afresh; an empty
    /// epoch in `since` means the room had none when this node asked).
    CatchUp,
    /// A node's first member joined: the room's position only.
    Position,
}

/// Reads the room's epoch, last offset and, unless only the position is wanted, the
/// messages `what` asks for.
pub(super) fn fetch(
    conn: &mut Connection,
    settings: &RedisSettings,
    room: &str,
    since: &Since,
    what: ReadFor,
) -> redis::RedisResult<Fetched> {
    let [offset_key, stream_key, epoch_key] = settings.keys(room);
    let state: Option<String> = redis::cmd("GET").arg(&epoch_key).query(conn)?;
    let epoch = state
        .as_deref()
        .map(epoch_of)
        .unwrap_or_default()
        .to_owned();
    let last: Option<u64> = redis::cmd("GET").arg(&offset_key).query(conn)?;
    if what == ReadFor::Position {
        return Ok(Fetched {
            epoch,
            last: last.unwrap_or(0),
            entries: Vec::new(),
        });
    }
    let start = if epoch != since.epoch && what == ReadFor::CatchUp {
        "-".to_owned()
    } else {
        format!("(0-{}", since.offset)
    };
    let entries = epoch_entries(conn, &stream_key, &start, settings.history_size, &epoch)?;
    Ok(Fetched {
        epoch,
        last: last.unwrap_or(0),
        entries,
    })
}

/// Up to `limit` messages of the room's current epoch after offset `since`, with the
/// room's epoch and last offset, for the server API; `None` when the room has no history.
pub(super) fn page(
    conn: &mut Connection,
    settings: &RedisSettings,
    room: &str,
    since: u64,
    limit: usize,
) -> redis::RedisResult<Option<Fetched>> {
    let [offset_key, stream_key, epoch_key] = settings.keys(room);
    let state: Option<String> = redis::cmd("GET").arg(&epoch_key).query(conn)?;
    let Some(state) = state else {
        return Ok(None);
    };
    let epoch = epoch_of(&state).to_owned();
    let last: Option<u64> = redis::cmd("GET").arg(&offset_key).query(conn)?;
    let entries = epoch_entries(conn, &stream_key, &format!("(0-{since}"), limit, &epoch)?;
    Ok(Some(Fetched {
        epoch,
        last: last.unwrap_or(0),
        entries,
    }))
}

/// Up to `count` messages of the stream from `start` on (an XRANGE start), those of
/// `epoch` only.
fn epoch_entries(
    conn: &mut Connection,
    stream_key: &str,
    start: &str,
    count: usize,
    epoch: &str,
) -> redis::RedisResult<Vec<RemoteMessage>> {
    let reply: Value = redis::cmd("XRANGE")
        .arg(stream_key)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(count.max(1))
        .query(conn)?;
    Ok(stream_payloads(reply)
        .iter()
        .filter_map(|bytes| BusMessage::parse(bytes))
        .map(|b| b.message)
        .filter(|m| m.position.as_ref().is_some_and(|(_, e)| *e == epoch))
        .collect())
}

/// The `d` field of each XRANGE entry.
fn stream_payloads(reply: Value) -> Vec<Vec<u8>> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let Value::Array(mut parts) = entry else {
                return None;
            };
            let Value::Array(fields) = parts.pop()? else {
                return None;
            };
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                if matches!(&name, Value::BulkString(n) if n == b"d")
                    && let Value::BulkString(bytes) = value
                {
                    return Some(bytes);
                }
            }
            None
        })
        .collect()
}
