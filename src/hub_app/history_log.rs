//! The history log on disk (`history.dir`): every room message, appended before anyone
//! receives it, so a restart, even after `kill -9`, loses nothing that was delivered or
//! acknowledged.
//!
//! One append-only file, `history.log`, of records
//! `C <room> <offset> <epoch> <at_ms> <length> <crc32>\n<json>\n` (length-prefixed, because
//! a payload may contain newlines; the CRC-32 covers the record up to it and the JSON).
//! At startup the file is read record by record (`history_read`: a torn or corrupt record
//! is skipped, never the ones after it); the newest `size` records of each room are kept
//! and rewritten to a fresh file (renamed over the old one, and the directory synced, so the
//! rename itself survives a power cut), which is then appended to. The same compaction runs
//! while serving whenever the file has grown to twice its compacted size (plus 8 MiB), so
//! the file stays within about twice what history keeps, at an amortised cost of one
//! rewrite per doubling (the loop pauses for it: reading and writing a few MiB).
//! A failed append is cut off again (the file is truncated to where it
//! began), and the server withdraws those messages: nobody gets them, their senders get
//! `unavailable`. The write happens in the loop (a `write(2)` into
//! the page cache: this is what survives a process crash); with `fsync = "interval"` a
//! background thread calls `fdatasync` every interval, bounding the loss on power failure.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::history_read::load;
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

/// How much the file may grow past twice its compacted size before it is compacted.
const COMPACT_SLACK: u64 = 8 << 20;

/// The open log.
#[derive(Debug)]
pub(crate) struct HistoryLog {
    file: File,
    /// The file's length after the last successful append.
    len: u64,
    /// Past this length the file is compacted.
    compact_at: u64,
    /// Growth allowed past twice the compacted size ([`COMPACT_SLACK`]; less in tests).
    slack: u64,
    /// Records kept per room.
    per_room: usize,
    dir: PathBuf,
    path: PathBuf,
    fsync_every: Option<Duration>,
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
        let mut log = Self {
            file: File::open(dir)?,
            len: 0,
            compact_at: 0,
            slack: COMPACT_SLACK,
            per_room,
            dir: dir.to_owned(),
            path: dir.join(FILE_NAME),
            fsync_every,
            stop_sync: None,
        };
        let records = log.compact()?;
        Ok((log, records))
    }

    /// Rewrites the file with the newest `per_room` records of each room (read as a stream)
    /// and reopens it for appending; returns the records kept.
    fn compact(&mut self) -> io::Result<Vec<Loaded>> {
        let records = match File::open(&self.path) {
            Ok(file) => load(io::BufReader::new(file), self.per_room)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
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
        fs::rename(&tmp, &self.path)?;
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.len = self.file.metadata()?.len();
        self.compact_at = self.len.saturating_mul(2).saturating_add(self.slack);
        if let Some(stop) = self.stop_sync.take() {
            stop.store(true, Ordering::Relaxed);
        }
        self.stop_sync = self
            .fsync_every
            .map(|every| spawn_sync(&self.file, every))
            .transpose()?;
        Ok(records)
    }

    /// The file's length now.
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.len
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
                if self.len > self.compact_at
                    && let Err(e) = self.compact()
                {
                    // The appended records are safe; only the file's size is not bounded
                    // until a later compaction succeeds.
                    log::error!("history log: compaction failed: {e}");
                    self.compact_at = self.len.saturating_mul(2).saturating_add(self.slack);
                }
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

pub(crate) fn encode(
    room: &str,
    offset: u64,
    epoch: &str,
    at_ms: u64,
    json: &[u8],
    out: &mut Vec<u8>,
) {
    let head = format!("{room} {offset} {epoch} {at_ms} {}", json.len());
    let crc = crc32(&[head.as_bytes(), json]);
    let _ = writeln!(out, "C {head} {crc:08x}");
    out.extend_from_slice(json);
    out.push(b'\n');
}

/// CRC-32 (IEEE 802.3, the one zlib and Ethernet use) of the parts, one after the other.
pub(crate) fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::super::history_read::{keep_newest, parse};
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
    fn the_file_is_compacted_while_serving() {
        let dir = temp_dir("compact");
        let (mut log, _) = HistoryLog::open(&dir, 2, None).unwrap();
        log.slack = 4096;
        log.compact_at = log.len.saturating_mul(2).saturating_add(log.slack);
        let mut largest = 0;
        for n in 1..=2000 {
            log.append(&[persist(
                &format!("r{}", n % 3),
                n,
                "{\"pad\":\"0123456789\"}",
            )])
            .unwrap();
            largest = largest.max(log.len());
        }
        let on_disk = fs::metadata(dir.join(FILE_NAME)).unwrap().len();
        assert!(largest < 3 * 4096, "grew to {largest} bytes");
        assert_eq!(on_disk, log.len());
        drop(log);
        let (_log, loaded) = HistoryLog::open(&dir, 2, None).unwrap();
        let kept: Vec<(String, u64)> = loaded.iter().map(|r| (r.room.clone(), r.offset)).collect();
        assert_eq!(
            kept,
            [
                ("r0".into(), 1995),
                ("r1".into(), 1996),
                ("r2".into(), 1997),
                ("r0".into(), 1998),
                ("r1".into(), 1999),
                ("r2".into(), 2000)
            ]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_are_read_across_chunk_boundaries() {
        let mut bytes = Vec::new();
        let big = format!("{{\"x\":\"{}\"}}", "y".repeat(700_000));
        for n in 1..=5 {
            encode("r", n, "e", n, big.as_bytes(), &mut bytes);
        }
        let offsets: Vec<u64> = parse(&bytes).iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5]);
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        assert_eq!(parse(&flipped).len(), 4, "only the flipped record is lost");
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
