//! The Lua scripts the publisher runs: an idempotent append to a room's history stream
//! (which also publishes), and an idempotent publish for messages without history.
//!
//! **Idempotent.** Each message carries a publish id; the first run stores its outcome
//! under `<prefix>:d:<id>` for [`DEDUPE_WINDOW`], and a second run with the same id (a retry
//! after a dropped connection or a timeout, or a client resending its request with the same
//! `id`) returns that outcome without publishing again.
//!
//! **Epochs.** A room's offsets are only trusted to continue under its epoch when Redis can
//! prove it: the epoch key holds `<epoch> <incarnation>`, and a new epoch starts (the
//! counter and stream start afresh) when the epoch or the counter is missing, the stream
//! is gone, the counter is behind the stream's last entry, or the incarnation changed. The
//! incarnation is `aof` when Redis runs with AOF (its restarts keep every acknowledged
//! write), else Redis's `run_id`, which changes at every restart: a restart from an RDB
//! snapshot may have lost the newest offsets, and must not hand them out again under the
//! same epoch.

use std::time::Duration;

use redis::{Connection, Script};

use super::bus::BusMessage;
use super::redis_io::RedisSettings;

/// How long the publish id of a client's request (or an API request's `Idempotency-Key`) is
/// remembered: a request resent with the same `id` within this window gets the first
/// outcome and is not published again.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(120);

/// How long a random publish id (a message without a request id) is remembered: only the
/// publisher's own retries ever repeat it, within a few seconds. Short, so a busy cluster
/// does not keep a key per message for two minutes.
pub const RETRY_WINDOW: Duration = Duration::from_secs(15);

/// KEYS: counter, stream, epoch, dedupe. ARGV: candidate epoch, max length, TTL (ms),
/// head without position, payload, channel, dedupe window (ms), incarnation.
/// Returns `"<offset> <epoch>"`.
const APPEND_LUA: &str = r"
local done = redis.call('GET', KEYS[4])
if done then return done end
local epoch = nil
local state = redis.call('GET', KEYS[3])
local counter = tonumber(redis.call('GET', KEYS[1]) or '')
if state and counter then
  local e, inc = string.match(state, '^(%S+) (%S+)$')
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if e and inc == ARGV[8] and #top > 0 then
    local last = tonumber(string.match(top[1][1], '^0%-(%d+)$'))
    if last and counter >= last then epoch = e end
  end
end
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[2])
end
redis.call('SET', KEYS[3], epoch .. ' ' .. ARGV[8])
local offset = redis.call('INCR', KEYS[1])
local msg = ARGV[4] .. ' ' .. offset .. ' ' .. epoch .. '\n' .. ARGV[5]
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. offset, 'd', msg)
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
redis.call('PUBLISH', ARGV[6], msg)
local result = offset .. ' ' .. epoch
redis.call('SET', KEYS[4], result, 'PX', ARGV[7])
return result
";

/// KEYS: dedupe. ARGV: dedupe window (ms), channel, message.
const PUBLISH_LUA: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return 1
";

/// Both scripts, loaded once per thread (`EVALSHA`, falling back to `EVAL`).
pub(super) struct Scripts {
    append: Script,
    publish: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            append: Script::new(APPEND_LUA),
            publish: Script::new(PUBLISH_LUA),
        }
    }

    /// Appends a room message and publishes it (once per `pid`); its (offset, epoch).
    pub(super) fn append(
        &self,
        conn: &mut Connection,
        settings: &RedisSettings,
        room: &str,
        message: &BusMessage,
        pid: &str,
        incarnation: &str,
    ) -> redis::RedisResult<(u64, String)> {
        let [offset_key, stream_key, epoch_key] = settings.keys(room);
        let ttl_ms = u64::try_from(settings.history_ttl.as_millis()).unwrap_or(u64::MAX);
        let result: String = self
            .append
            .key(offset_key)
            .key(stream_key)
            .key(epoch_key)
            .key(settings.dedupe_key(pid))
            .arg(crate::hub::history::new_epoch().to_string())
            .arg(settings.history_size.max(1))
            .arg(ttl_ms)
            .arg(message.head_without_position())
            .arg(&message.message.payload)
            .arg(settings.channel())
            .arg(window_ms(pid))
            .arg(incarnation)
            .invoke(conn)?;
        let parsed = result
            .split_once(' ')
            .and_then(|(o, e)| Some((o.parse().ok()?, e.to_owned())));
        parsed.ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "append script answer",
                result,
            ))
        })
    }

    /// Publishes a message without history (once per `pid`).
    pub(super) fn publish(
        &self,
        conn: &mut Connection,
        settings: &RedisSettings,
        message: &BusMessage,
        pid: &str,
    ) -> redis::RedisResult<()> {
        self.publish
            .key(settings.dedupe_key(pid))
            .arg(window_ms(pid))
            .arg(settings.channel())
            .arg(message.encode())
            .invoke::<i64>(conn)
            .map(|_| ())
    }
}

/// The dedupe window of `pid`: ids derived from a request id start with `u`.
fn window_ms(pid: &str) -> u64 {
    let window = if pid.starts_with('u') {
        DEDUPE_WINDOW
    } else {
        RETRY_WINDOW
    };
    u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
}

/// This Redis's incarnation (see the module docs): `aof`, or its `run_id`.
pub(super) fn incarnation(conn: &mut Connection) -> redis::RedisResult<String> {
    let info: String = redis::cmd("INFO").arg("persistence").query(conn)?;
    if info.lines().any(|l| l.trim() == "aof_enabled:1") {
        return Ok("aof".into());
    }
    let info: String = redis::cmd("INFO").arg("server").query(conn)?;
    let run_id = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("run_id:"))
        .unwrap_or("unknown");
    Ok(run_id.to_owned())
}

/// The epoch in an epoch key's value (`<epoch> <incarnation>`).
pub(super) fn epoch_of(state: &str) -> &str {
    state.split(' ').next().unwrap_or_default()
}
