//! The history log on disk (`history.dir`): every room message, appended before anyone
//! receives it, so a restart, even after `kill -9`, loses nothing that was delivered or
//! acknowledged.
//!
//! One append-only file, `history.log`, of records
//! `C <room> <offset> <epoch> <at_ms> <length> <crc32>\n<json>\n` (length-prefixed, because
//! a payload may contain newlines; the CRC-32 covers the record up to it and the JSON).
//! At startup the file is read: a torn or corrupt record is skipped (the reader resumes at
//! the next record that checks out), so one bad record never hides the ones after it;
//! `R` records of older versions, without a checksum, are still read. The newest `size`
//! records of each room are kept and rewritten to a fresh file (renamed over the old one,
//! and the directory synced, so the rename itself survives a power cut), which is then
//! appended to. A failed append is cut off again (the file is truncated to where it
//! began), and the server withdraws those messages: nobody gets them, their senders get
//! `unavailable`. The write happens in the loop (a `write(2)` into
//! the page cache: this is what survives a process crash); with `fsync = "interval"` a
//! background thread calls `fdatasync` every interval, bounding the loss on power failure.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::hub::Persist;
use crate::protocol::Decoded;
use crate::protocol::frame::FrameHeader;

/// The log file's name inside `history.dir`.
const FILE_NAME: &str = "history.log";

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub(crate) room: String,
    pub(crate) offset: u64,
    pub(crate) epoch: String,
    pub(crate) at_ms: u64,
    pub(crate) json: String,
}

/// The open log.
#[derive(Debug)]
pub(crate) struct HistoryLog {
    file: File,
    /// The file's length after the last successful append.
    len: u64,
    path: PathBuf,
    stop_sync: Option<Arc<AtomicBool>>,
}

impl HistoryLog {
    /// Reads `dir/history.log`, keeps the newest `per_room` records of each room, rewrites
    /// the file with them and opens it for appending; `fsync_every` starts the sync thread.
    pub(crate) fn open(
        dir: &Path,
        per_room: usize,
        fsync_every: Option<Duration>,
    ) -> io::Result<(Self, Vec<Loaded>)> {
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let records = match fs::read(&path) {
            Ok(bytes) => keep_newest(parse(&bytes), per_room),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let mut out = Vec::new();
        for r in &records {
            encode(
                &r.room,
                r.offset,
                &r.epoch,
                r.at_ms,
                r.json.as_bytes(),
                &mut out,
            );
        }
        let mut fresh = File::create(&tmp)?;
        fresh.write_all(&out)?;
        fresh.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()?;
        let file = OpenOptions::new().append(true).open(&path)?;
        let len = file.metadata()?.len();
        let stop_sync = fsync_every
            .map(|every| spawn_sync(&file, every))
            .transpose()?;
        Ok((
            Self {
                file,
                len,
                path,
                stop_sync,
            },
            records,
        ))
    }

    /// Appends `records` in one write. On failure nothing of them stays in the file (a
    /// partial write is truncated away, as far as the file system lets us).
    pub(crate) fn append(&mut self, records: &[Persist]) -> io::Result<()> {
        let mut out = Vec::with_capacity(records.len() * 256);
        for r in records {
            let json = payload_of(&r.frame);
            encode(&r.room, r.offset, &r.epoch, r.at_ms, json, &mut out);
        }
        match self.file.write_all(&out) {
            Ok(()) => {
                self.len += out.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Err(t) = self.file.set_len(self.len) {
                    log::error!("history log: cannot cut off a failed write: {t}");
                }
                Err(e)
            }
        }
    }

    /// The file's path, for logs.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HistoryLog {
    fn drop(&mut self) {
        if let Some(stop) = &self.stop_sync {
            stop.store(true, Ordering::Relaxed);
        }
        let _ = self.file.sync_data();
    }
}

/// Starts the thread that fsyncs the log every `every`; returns its stop flag.
fn spawn_sync(file: &File, every: Duration) -> io::Result<Arc<AtomicBool>> {
    let clone = file.try_clone()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("wsloop-fsync".into())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                if let Err(e) = clone.sync_data() {
                    log::error!("history log fsync failed: {e}");
                }
            }
        })?;
    Ok(stop)
}

/// The JSON text inside an encoded (unmasked) text frame.
fn payload_of(frame: &[u8]) -> &[u8] {
    match FrameHeader::decode(frame) {
        Ok(Decoded::Complete(_, n)) => &frame[n..],
        _ => &[],
    }
}

fn encode(room: &str, offset: u64, epoch: &str, at_ms: u64, json: &[u8], out: &mut Vec<u8>) {
    let head = format!("{room} {offset} {epoch} {at_ms} {}", json.len());
    let crc = crc32(&[head.as_bytes(), json]);
    let _ = writeln!(out, "C {head} {crc:08x}");
    out.extend_from_slice(json);
    out.push(b'\n');
}

/// CRC-32 (IEEE 802.3, the one zlib and Ethernet use) of the parts, one after the other.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Parses every record that checks out; a torn or corrupt one is skipped, resuming at the
/// next checksummed record that checks out (a torn record has no newline of its own, so
/// the next one may start mid-line).
fn parse(mut bytes: &[u8]) -> Vec<Loaded> {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        if let Some((record, rest)) = parse_one(bytes) {
            records.push(record);
            bytes = rest;
            continue;
        }
        log::warn!("history log: skipped a torn or corrupt record");
        let next = (1..bytes.len())
            .find(|&i| bytes[i..].starts_with(b"C ") && parse_one(&bytes[i..]).is_some());
        let Some(next) = next else { break };
        bytes = &bytes[next..];
    }
    records
}

fn parse_one(bytes: &[u8]) -> Option<(Loaded, &[u8])> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..newline]).ok()?;
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
    let room = fields.next()?.to_owned();
    let offset = fields.next()?.parse().ok()?;
    let epoch = fields.next()?.to_owned();
    let at_ms = fields.next()?.parse().ok()?;
    let len: usize = fields.next()?.parse().ok()?;
    if fields.next().is_some() {
        return None;
    }
    let body = bytes.get(newline + 1..newline.checked_add(1 + len)?)?;
    if bytes.get(newline + 1 + len) != Some(&b'\n') {
        return None;
    }
    if crc.is_some_and(|crc| crc != crc32(&[head.as_bytes(), body])) {
        return None;
    }
    let json = String::from_utf8(body.to_vec()).ok()?;
    Some((
        Loaded {
            room,
            offset,
            epoch,
            at_ms,
            json,
        },
        &bytes[newline + len + 2..],
    ))
}

/// The newest `per_room` records of each room, in file order.
fn keep_newest(records: Vec<Loaded>, per_room: usize) -> Vec<Loaded> {
    let mut by_room: HashMap<String, VecDeque<Loaded>> = HashMap::new();
    let mut order = Vec::new();
    for r in records {
        let queue = by_room.entry(r.room.clone()).or_default();
        if queue.back().is_some_and(|last| last.epoch != r.epoch) {
            queue.clear();
        }
        if queue.is_empty() && !order.contains(&r.room) {
            order.push(r.room.clone());
        }
        queue.push_back(r);
        if queue.len() > per_room {
            queue.pop_front();
        }
    }
    let mut kept: Vec<Loaded> = order
        .into_iter()
        .filter_map(|room| by_room.remove(&room))
        .flatten()
        .collect();
    kept.sort_by_key(|r| r.at_ms);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OpCode;
    use crate::protocol::frame::shared_frame;
    use std::rc::Rc;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wsloop-history-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn persist(room: &str, offset: u64, json: &str) -> Persist {
        Persist {
            room: Rc::from(room),
            epoch: Rc::from("e1"),
            offset,
            at_ms: offset,
            frame: shared_frame(OpCode::Text, json.as_bytes()),
            sender: None,
            ack: None,
        }
    }

    #[test]
    fn records_survive_reopening_and_are_trimmed_per_room() {
        let dir = temp_dir("reopen");
        let (mut log, loaded) = HistoryLog::open(&dir, 3, None).unwrap();
        assert!(loaded.is_empty());
        let records: Vec<Persist> = (1..=5)
            .map(|n| persist("r", n, &format!("{{\"n\":{n},\"s\":\"a\\nb\"}}")))
            .collect();
        log.append(&records).unwrap();
        log.append(&[persist("other", 1, "{}")]).unwrap();
        drop(log);
        let (_log, loaded) = HistoryLog::open(&dir, 3, None).unwrap();
        let offsets: Vec<(String, u64)> =
            loaded.iter().map(|r| (r.room.clone(), r.offset)).collect();
        assert_eq!(
            offsets,
            [
                ("other".into(), 1),
                ("r".into(), 3),
                ("r".into(), 4),
                ("r".into(), 5)
            ]
        );
        assert_eq!(loaded[3].json, "{\"n\":5,\"s\":\"a\\nb\"}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_last_record_is_ignored() {
        let mut bytes = Vec::new();
        encode("r", 1, "e", 1, b"{\"a\":1}", &mut bytes);
        encode("r", 2, "e", 2, b"{\"a\":2}", &mut bytes);
        let whole = parse(&bytes);
        assert_eq!(whole.len(), 2);
        for cut in 0..bytes.len() {
            let part = parse(&bytes[..cut]);
            assert!(
                part.len() <= 2 && part.iter().all(|r| r.json.starts_with('{')),
                "cut {cut}"
            );
        }
        assert!(parse(b"garbage\n").is_empty());
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_skipped_not_the_rest() {
        let mut bytes = Vec::new();
        encode("r", 1, "e", 1, b"{\"a\":1}", &mut bytes);
        let second = bytes.len();
        encode("r", 2, "e", 2, b"{\"a\":2}", &mut bytes);
        let third = bytes.len();
        encode("r", 3, "e", 3, b"{\"a\":3}", &mut bytes);
        // A flipped bit in the second record's payload: the checksum catches it.
        let mut flipped = bytes.clone();
        flipped[third - 3] ^= 0x01;
        let offsets: Vec<u64> = parse(&flipped).iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [1, 3]);
        // The second record torn (a crash mid-write, then more appended after it).
        let mut torn = bytes[..second + 10].to_vec();
        torn.extend_from_slice(&bytes[third..]);
        let offsets: Vec<u64> = parse(&torn).iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [1, 3]);
    }

    #[test]
    fn records_without_a_checksum_are_still_read() {
        let old = b"R r 1 e 5 7\n{\"a\":1}\n";
        let loaded = parse(old);
        assert_eq!((loaded.len(), loaded[0].at_ms), (1, 5));
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn a_new_epoch_drops_the_old_records() {
        let mut bytes = Vec::new();
        encode("r", 1, "old", 1, b"1", &mut bytes);
        encode("r", 1, "new", 2, b"2", &mut bytes);
        let kept = keep_newest(parse(&bytes), 10);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].epoch, "new");
    }
}
