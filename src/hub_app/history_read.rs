//! Reading the history log back: record by record from a stream, never the whole file at
//! once, keeping only the newest records of each room.
//!
//! A torn or corrupt record is skipped: the reader resumes at the next checksummed record
//! that checks out (a torn record has no newline of its own, so the next one may start
//! mid-line), so one bad record never hides the ones after it. Memory is bounded by what is
//! kept plus one read chunk and one record (at most [`MAX_RECORD`] bytes).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};

use super::history_log::{Loaded, crc32};

/// The largest record the reader waits for; a longer declared length is corruption.
pub(crate) const MAX_RECORD: usize = 64 << 20;
/// The longest record head line.
const MAX_HEAD: usize = 1024;
/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

/// One step of the parser over the bytes it has.
pub(crate) enum Step {
    /// A record that checks out, and the bytes it took.
    Record(Loaded, usize),
    /// The bytes so far could still become a record.
    NeedMore,
    /// Not a record (torn, flipped, or not ours).
    Corrupt,
}

/// Parses one record at the start of `bytes`.
pub(crate) fn step(bytes: &[u8]) -> Step {
    let Some(newline) = bytes.iter().take(MAX_HEAD).position(|&b| b == b'\n') else {
        return if bytes.len() < MAX_HEAD {
            Step::NeedMore
        } else {
            Step::Corrupt
        };
    };
    let Some((record, head, len, crc)) = head_of(&bytes[..newline]) else {
        return Step::Corrupt;
    };
    let end = newline + 1 + len;
    if bytes.len() <= end {
        return Step::NeedMore;
    }
    let body = &bytes[newline + 1..end];
    if bytes[end] != b'\n' || crc.is_some_and(|crc| crc != crc32(&[head.as_bytes(), body])) {
        return Step::Corrupt;
    }
    match String::from_utf8(body.to_vec()) {
        Ok(json) => Step::Record(Loaded { json, ..record }, end + 1),
        Err(_) => Step::Corrupt,
    }
}

/// The head line: the record without its JSON, the checksummed text, the JSON's length and
/// the checksum (`R` records of older versions have none).
fn head_of(line: &[u8]) -> Option<(Loaded, &str, usize, Option<u32>)> {
    let line = std::str::from_utf8(line).ok()?;
    let (tag, head) = line.split_once(' ')?;
    let (head, crc) = match tag {
        "R" => (head, None),
        "C" => {
            let (head, crc) = head.rsplit_once(' ')?;
            (head, Some(u32::from_str_radix(crc, 16).ok()?))
        }
        _ => return None,
    };
    let mut fields = head.split(' ');
    let record = Loaded {
        room: fields.next()?.to_owned(),
        offset: fields.next()?.parse().ok()?,
        epoch: fields.next()?.to_owned(),
        at_ms: fields.next()?.parse().ok()?,
        json: String::new(),
    };
    let len: usize = fields.next()?.parse().ok()?;
    if fields.next().is_some() || len > MAX_RECORD {
        return None;
    }
    Some((record, head, len, crc))
}

/// Reads every record of `source` that checks out, in order, into `each`.
pub(crate) fn read_records(mut source: impl Read, mut each: impl FnMut(Loaded)) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    let (mut pos, mut eof) = (0, false);
    loop {
        let rest = &buf[pos..];
        match step(rest) {
            Step::Record(record, used) => {
                each(record);
                pos += used;
                continue;
            }
            Step::NeedMore if eof => {
                if !rest.is_empty() {
                    log::warn!("history log: skipped a torn last record");
                }
                return Ok(());
            }
            Step::NeedMore => {}
            Step::Corrupt => {
                log::warn!("history log: skipped a torn or corrupt record");
                let next = (1..rest.len()).find(|&i| {
                    rest[i..].starts_with(b"C ") && !matches!(step(&rest[i..]), Step::Corrupt)
                });
                match next {
                    Some(i) => {
                        pos += i;
                        continue;
                    }
                    None if eof => return Ok(()),
                    // A candidate may begin in the last byte: keep it for the next chunk.
                    None => pos = (buf.len() - 1).max(pos + 1),
                }
            }
        }
        buf.drain(..pos);
        pos = 0;
        let n = source.read(&mut chunk)?;
        if n == 0 {
            eof = true;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Keeps the newest `per_room` records of each room (a new epoch drops the older ones).
#[derive(Debug)]
pub(crate) struct Keeper {
    per_room: usize,
    by_room: HashMap<String, VecDeque<(u64, Loaded)>>,
    seen: u64,
}

impl Keeper {
    pub(crate) fn new(per_room: usize) -> Self {
        Self {
            per_room,
            by_room: HashMap::new(),
            seen: 0,
        }
    }

    pub(crate) fn push(&mut self, record: Loaded) {
        self.seen += 1;
        let queue = self.by_room.entry(record.room.clone()).or_default();
        if queue
            .back()
            .is_some_and(|(_, last)| last.epoch != record.epoch)
        {
            queue.clear();
        }
        queue.push_back((self.seen, record));
        if queue.len() > self.per_room {
            queue.pop_front();
        }
    }

    /// What was kept, oldest first (by acceptance time, then file order).
    pub(crate) fn finish(self) -> Vec<Loaded> {
        let mut kept: Vec<(u64, Loaded)> = self.by_room.into_values().flatten().collect();
        kept.sort_by_key(|(seen, r)| (r.at_ms, *seen));
        kept.into_iter().map(|(_, r)| r).collect()
    }
}

/// The newest `per_room` records of each room in `source`.
pub(crate) fn load(source: impl Read, per_room: usize) -> io::Result<Vec<Loaded>> {
    let mut keeper = Keeper::new(per_room);
    read_records(source, |r| keeper.push(r))?;
    Ok(keeper.finish())
}

/// Every record of `bytes` that checks out (tests and the fuzz-like cut tests).
#[cfg(test)]
pub(crate) fn parse(bytes: &[u8]) -> Vec<Loaded> {
    let mut records = Vec::new();
    let _ = read_records(bytes, |r| records.push(r));
    records
}

/// [`Keeper`] over already parsed records.
#[cfg(test)]
pub(crate) fn keep_newest(records: Vec<Loaded>, per_room: usize) -> Vec<Loaded> {
    let mut keeper = Keeper::new(per_room);
    records.into_iter().for_each(|r| keeper.push(r));
    keeper.finish()
}
