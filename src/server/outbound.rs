//! A connection's queue of bytes to send, flushed with as few writes as it takes.
//!
//! Frames are queued as [`Chunk`]s: bytes this connection owns (its echoes, pongs, acks),
//! appended into one growing buffer so that many small frames go out in one write, and
//! bytes shared with other connections (a broadcast encoded once, reference-counted). A
//! flush writes a single chunk as it is; several chunks holding at most [`CORK_MAX`] bytes
//! are gathered into the loop's one cork buffer and written as one slice, as uWebSockets
//! corks a socket's output (a subscriber's turn of small broadcasts is one copy for the
//! kernel, not one iovec per frame); more go out with `writev`, up to [`MAX_IOVECS`]
//! chunks per call. A partial write resumes where it stopped. Owned buffers and emptied
//! chunk queues come from, and go back to, a [`BufPool`], so a connection with nothing to
//! send holds no memory for it at all.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use crate::protocol::OpCode;
use crate::protocol::frame::{FrameHeader, encode_frame};

/// The most chunks handed to one `writev` call (Linux allows 1024; 64 covers a burst).
pub(super) const MAX_IOVECS: usize = 64;

/// Owned buffers above this capacity are freed rather than pooled.
const POOL_MAX_CAPACITY: usize = 64 * 1024;
/// The most buffers the pool keeps (and the most chunk queues).
const POOL_MAX_BUFFERS: usize = 256;
/// Chunk queues with room for more than this many chunks are freed rather than pooled.
const POOL_MAX_QUEUE_CHUNKS: usize = 64;
/// An owned chunk this long takes no more appends: the next frame starts a new chunk.
const OWNED_CHUNK_FULL: usize = 16 * 1024;
/// A fresh owned buffer's capacity.
const NEW_BUFFER_CAPACITY: usize = 4 * 1024;
/// Queued bytes up to this many, in several chunks, are copied into the loop's one cork
/// buffer and written as one slice ([`OutQueue::flush`]).
const CORK_MAX: usize = 16 * 1024;

pub use crate::protocol::frame::SharedFrame;

/// One piece of the queue.
#[derive(Debug)]
enum Chunk {
    /// Bytes only this connection sends; more frames may be appended.
    Owned(Vec<u8>),
    /// A frame shared with other connections.
    Shared(SharedFrame),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Owned(v) => v,
            Self::Shared(s) => s,
        }
    }
}

/// Reusable owned buffers, and the storage of emptied chunk queues, owned by the event
/// loop: a connection that gets a few frames every turn (a subscriber) takes both from
/// here and gives them back when its queue drains, instead of allocating them each turn.
#[derive(Debug, Default)]
pub(super) struct BufPool {
    free: Vec<Vec<u8>>,
    queues: Vec<VecDeque<Chunk>>,
    /// The one buffer a connection's small chunks are gathered in to be written as one
    /// slice (at most [`CORK_MAX`] bytes, for the whole loop).
    cork: Vec<u8>,
}

impl BufPool {
    /// An empty buffer, reused if one is free.
    pub(super) fn take(&mut self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(NEW_BUFFER_CAPACITY))
    }

    /// Returns a buffer; large ones are freed, to bound what the pool holds.
    pub(super) fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= POOL_MAX_CAPACITY && self.free.len() < POOL_MAX_BUFFERS {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// An empty chunk queue, with room if a pooled one is free.
    fn take_queue(&mut self) -> VecDeque<Chunk> {
        self.queues.pop().unwrap_or_default()
    }

    /// Returns an empty chunk queue's storage; large ones are freed.
    fn give_queue(&mut self, queue: VecDeque<Chunk>) {
        let pooled = queue.capacity() <= POOL_MAX_QUEUE_CHUNKS;
        if queue.is_empty() && pooled && self.queues.len() < POOL_MAX_BUFFERS {
            self.queues.push(queue);
        }
    }
}

/// What a flush achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flushed {
    /// Everything queued was written.
    All,
    /// The socket would block; WRITABLE interest is needed.
    Blocked,
}

/// The bytes waiting to be written to one connection.
#[derive(Debug, Default)]
pub(super) struct OutQueue {
    /// Chunks in send order.
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    /// Unwritten bytes in total.
    len: usize,
}

impl OutQueue {
    /// Unwritten bytes queued.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Lets `write` append bytes to the owned tail of the queue.
    ///
    /// Used for everything the connection itself produces (the session writes pongs, close
    /// replies and echoes straight into it). Consecutive calls fill the same buffer.
    #[inline]
    pub(super) fn append<R>(
        &mut self,
        pool: &mut BufPool,
        write: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> R {
        // Filled in place: an owned tail is never empty (see below), and appending leaves
        // the bytes already written from it (`front_written`) where they were. Past
        // OWNED_CHUNK_FULL a new chunk starts (at a frame boundary), so a slow consumer's
        // close waits behind at most one partly written chunk (`drop_unstarted`).
        if let Some(Chunk::Owned(tail)) = self.chunks.back_mut()
            && tail.len() < OWNED_CHUNK_FULL
        {
            let before = tail.len();
            let result = write(tail);
            self.len += tail.len() - before;
            return result;
        }
        self.append_new(pool, write)
    }

    /// Appends a final, unmasked data frame of `opcode` carrying `payload` (an echo, an
    /// app's reply). [`OutQueue::append`] with the frame's encoding written in place: the
    /// common case (room in the tail) inlined, with no closure call.
    #[inline]
    pub(super) fn append_frame(&mut self, pool: &mut BufPool, opcode: OpCode, payload: &[u8]) {
        let header = FrameHeader::single(opcode, payload.len(), None);
        if let Some(Chunk::Owned(tail)) = self.chunks.back_mut()
            && tail.len() < OWNED_CHUNK_FULL
        {
            let before = tail.len();
            encode_frame(&header, payload, tail);
            self.len += tail.len() - before;
            return;
        }
        self.append_new(pool, |buf| encode_frame(&header, payload, buf));
    }

    /// [`OutQueue::append`] into a new chunk from the pool: once per flushed queue, so
    /// kept out of line, off the path of the appends that fill the tail in place (which
    /// then need fewer registers saved).
    #[inline(never)]
    fn append_new<R>(&mut self, pool: &mut BufPool, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut tail = pool.take();
        let result = write(&mut tail);
        self.len += tail.len();
        if tail.is_empty() {
            pool.give(tail);
        } else {
            self.reserve_slot(pool);
            self.chunks.push_back(Chunk::Owned(tail));
        }
        result
    }

    /// Queues a frame shared with other connections, by reference: no bytes are copied
    /// (the queue's storage comes from the pool when it had none).
    pub(super) fn push_shared(&mut self, pool: &mut BufPool, frame: SharedFrame) {
        self.reserve_slot(pool);
        self.len += frame.len();
        self.chunks.push_back(Chunk::Shared(frame));
    }

    /// Writes `frames` from an empty queue in one write, gathered in the cork buffer, and
    /// queues what the socket did not take (resuming mid-frame): a subscriber's turn of
    /// publications without a queue entry per frame. Frames over [`CORK_MAX`] in all are
    /// queued whole, for the caller's flush. Returns the bytes written. A write error is
    /// not returned: everything stays queued, and the connection's flush meets the error.
    pub(super) fn write_shared(
        &mut self,
        socket: &mut impl Write,
        pool: &mut BufPool,
        frames: &[SharedFrame],
    ) -> usize {
        debug_assert!(self.is_empty());
        let total: usize = frames.iter().map(|frame| frame.len()).sum();
        let mut written = 0;
        if total <= CORK_MAX {
            let cork = &mut pool.cork;
            cork.clear();
            for frame in frames {
                cork.extend_from_slice(frame);
            }
            written = socket.write(cork).unwrap_or(0);
        }
        if written >= total {
            return total;
        }
        // The frames from the one the socket stopped in (that one started) to the last.
        let mut start = 0;
        for frame in frames {
            let end = start + frame.len();
            if end <= written {
                start = end;
                continue;
            }
            if self.chunks.is_empty() {
                self.front_written = written.saturating_sub(start);
            }
            self.push_shared(pool, frame.clone());
            start = end;
        }
        self.len = total - written;
        written
    }

    /// Writes as much as the socket takes, many chunks per call. (Inlined in both its
    /// callers, the turn's flush and a publication's write, as it was in the one.)
    #[inline(always)]
    pub(super) fn flush(
        &mut self,
        socket: &mut impl Write,
        pool: &mut BufPool,
    ) -> io::Result<Flushed> {
        while !self.is_empty() {
            let written = match self.write_once(socket, &mut pool.cork) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.consume(written, pool);
        }
        self.release(pool);
        Ok(Flushed::All)
    }

    /// One write: a plain one for a single chunk, or for several holding at most
    /// [`CORK_MAX`] bytes in all, copied into `cork` first, as uWebSockets corks a socket's
    /// output (a subscriber's turn of small broadcasts is one slice for the kernel to copy,
    /// not one iovec per frame); else one `writev` over the first [`MAX_IOVECS`] chunks.
    fn write_once(&self, socket: &mut impl Write, cork: &mut Vec<u8>) -> io::Result<usize> {
        if self.chunks.len() == 1
            && let Some(front) = self.chunks.front()
        {
            let bytes = front.bytes();
            return socket.write(&bytes[self.front_written.min(bytes.len())..]);
        }
        if self.len <= CORK_MAX {
            cork.clear();
            for (i, chunk) in self.chunks.iter().enumerate() {
                let bytes = chunk.bytes();
                let start = if i == 0 { self.front_written } else { 0 };
                cork.extend_from_slice(&bytes[start.min(bytes.len())..]);
            }
            return socket.write(cork);
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
            let bytes = chunk.bytes();
            let start = if i == 0 { self.front_written } else { 0 };
            slices[count] = IoSlice::new(&bytes[start.min(bytes.len())..]);
            count += 1;
        }
        socket.write_vectored(&slices[..count])
    }

    /// Drops `n` written bytes from the front of the queue.
    fn consume(&mut self, mut n: usize, pool: &mut BufPool) {
        if n >= self.len {
            // The common case (the socket took everything): no chunk's arithmetic.
            self.drop_all(pool);
            return;
        }
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.front_written;
            if n < left {
                self.front_written += n;
                return;
            }
            n -= left;
            self.front_written = 0;
            if let Some(Chunk::Owned(buf)) = self.chunks.pop_front() {
                pool.give(buf);
            }
        }
    }

    /// Drops every chunk not started yet, keeping the rest of a partly written front one
    /// (so no frame is cut); returns the bytes dropped. For a connection being closed as a
    /// slow consumer: its close frame then goes out next instead of after megabytes.
    pub(super) fn drop_unstarted(&mut self, pool: &mut BufPool) -> usize {
        let keep = usize::from(self.front_written > 0);
        let before = self.len;
        for chunk in self.chunks.drain(keep.min(self.chunks.len())..) {
            self.len -= chunk.bytes().len();
            if let Chunk::Owned(buf) = chunk {
                pool.give(buf);
            }
        }
        self.release(pool);
        before - self.len
    }

    /// Drops everything queued, returning owned buffers and the queue's storage to the
    /// pool.
    pub(super) fn clear(&mut self, pool: &mut BufPool) {
        self.drop_all(pool);
        self.release(pool);
    }

    /// Drops every chunk, owned buffers back to the pool; the queue keeps its storage.
    fn drop_all(&mut self, pool: &mut BufPool) {
        while let Some(chunk) = self.chunks.pop_front() {
            if let Chunk::Owned(buf) = chunk {
                pool.give(buf);
            }
        }
        self.front_written = 0;
        self.len = 0;
    }

    /// Gives the deque's own storage back to the pool once empty, so idle connections
    /// hold nothing.
    fn release(&mut self, pool: &mut BufPool) {
        if self.chunks.is_empty() && self.chunks.capacity() > 0 {
            pool.give_queue(std::mem::take(&mut self.chunks));
        }
    }

    /// Before a chunk is queued: an empty queue takes pooled storage.
    fn reserve_slot(&mut self, pool: &mut BufPool) {
        if self.chunks.capacity() == 0 {
            // The deque replaced is empty and holds no storage: forgetting it frees
            // nothing and skips a call to its destructor (~23 instructions per flushed
            // queue under callgrind).
            std::mem::forget(std::mem::replace(&mut self.chunks, pool.take_queue()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// A writer that takes at most `limit` bytes per call and records the calls.
    struct Trickle {
        data: Vec<u8>,
        limit: usize,
        calls: usize,
        block_after: Option<usize>,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.block_after == Some(self.calls) {
                self.block_after = None;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.limit - n);
                self.data.extend_from_slice(&b[..take]);
                n += take;
                if n == self.limit {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn shared(bytes: &[u8]) -> SharedFrame {
        SharedFrame::from(bytes)
    }

    #[test]
    fn shared_frames_written_whole_leave_nothing_queued() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        let frames = [shared(b"abc"), shared(b"defg"), shared(b"h")];
        let mut w = Trickle {
            data: vec![],
            limit: usize::MAX,
            calls: 0,
            block_after: None,
        };
        assert_eq!(q.write_shared(&mut w, &mut pool, &frames), 8);
        assert_eq!((w.calls, w.data.as_slice()), (1, &b"abcdefgh"[..]));
        assert!(q.is_empty());
        assert_eq!(q.chunks.capacity(), 0, "no queue storage taken");
    }

    #[test]
    fn shared_frames_the_socket_stops_in_are_queued_from_where_it_stopped() {
        let mut pool = BufPool::default();
        let frames = [shared(b"abc"), shared(b"defg"), shared(b"h")];
        for taken in 0..8 {
            let mut q = OutQueue::default();
            let mut w = Trickle {
                data: vec![],
                limit: taken,
                calls: 0,
                block_after: None,
            };
            assert_eq!(q.write_shared(&mut w, &mut pool, &frames), taken);
            assert_eq!(q.len(), 8 - taken, "after {taken} bytes");
            w.limit = usize::MAX;
            assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::All);
            assert_eq!(w.data, b"abcdefgh", "after {taken} bytes");
        }
    }

    #[test]
    fn shared_frames_a_blocked_socket_takes_none_of_are_all_queued() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        let frames = [shared(b"abc"), shared(b"defg")];
        let mut w = Trickle {
            data: vec![],
            limit: usize::MAX,
            calls: 0,
            block_after: Some(0),
        };
        assert_eq!(q.write_shared(&mut w, &mut pool, &frames), 0);
        assert_eq!((q.len(), q.chunks.len()), (7, 2));
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::All);
        assert_eq!(w.data, b"abcdefg");
    }

    #[test]
    fn shared_frames_over_the_cork_size_are_queued_for_the_flush() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        let big = vec![7u8; CORK_MAX];
        let frames = [shared(b"a"), shared(&big)];
        let mut w = Trickle {
            data: vec![],
            limit: usize::MAX,
            calls: 0,
            block_after: None,
        };
        assert_eq!(q.write_shared(&mut w, &mut pool, &frames), 0);
        assert_eq!((w.calls, q.len()), (0, CORK_MAX + 1));
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::All);
        assert_eq!(w.data.len(), CORK_MAX + 1);
    }

    #[test]
    fn small_frames_share_one_buffer_and_one_write() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        for i in 0..100u8 {
            q.append(&mut pool, |out| out.extend_from_slice(&[i; 3]));
        }
        assert_eq!(q.chunks.len(), 1);
        let mut w = Trickle {
            data: vec![],
            limit: usize::MAX,
            calls: 0,
            block_after: None,
        };
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::All);
        assert_eq!(w.calls, 1);
        assert_eq!(w.data.len(), 300);
        assert_eq!(q.chunks.capacity(), 0, "an empty queue holds no storage");
        assert_eq!(pool.queues.len(), 1, "its storage went back to the pool");
        q.append(&mut pool, |out| out.push(1));
        assert!(pool.queues.is_empty(), "and is taken again");
    }

    #[test]
    fn partial_writes_resume_in_order() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        let shared: SharedFrame = Rc::from(&b"shared-frame"[..]);
        q.append(&mut pool, |out| out.extend_from_slice(b"own-1|"));
        q.push_shared(&mut pool, shared.clone());
        q.append(&mut pool, |out| out.extend_from_slice(b"|own-2"));
        q.push_shared(&mut pool, shared);
        assert_eq!(q.len(), 6 + 12 + 6 + 12);
        let mut w = Trickle {
            data: vec![],
            limit: 5,
            calls: 0,
            block_after: Some(3),
        };
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::Blocked);
        assert_eq!(q.len(), 36 - 15);
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::All);
        assert_eq!(w.data, b"own-1|shared-frame|own-2shared-frame");
        assert!(q.is_empty());
    }

    #[test]
    fn appending_to_a_partly_written_tail_keeps_every_byte_once() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        q.append(&mut pool, |out| out.extend_from_slice(b"0123456789"));
        let mut w = Trickle {
            data: vec![],
            limit: 4,
            calls: 0,
            block_after: Some(1),
        };
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::Blocked);
        // The tail being written is filled in place, behind the bytes already sent.
        q.append(&mut pool, |out| out.extend_from_slice(b"abc"));
        assert_eq!((q.chunks.len(), q.len()), (1, 6 + 3));
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::All);
        assert_eq!(w.data, b"0123456789abc");
    }

    #[test]
    fn a_backlog_is_dropped_but_for_the_chunk_being_written() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        for _ in 0..10_000 {
            q.append(&mut pool, |out| out.extend_from_slice(&[3u8; 100]));
        }
        let mut w = Trickle {
            data: vec![],
            limit: 50,
            calls: 0,
            block_after: Some(1),
        };
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::Blocked);
        q.drop_unstarted(&mut pool);
        // A close waits behind at most one partly written chunk of about 16 KiB.
        assert!(
            q.len() <= 16 * 1024 + 100,
            "{} bytes still ahead of a close",
            q.len()
        );
        assert_eq!(q.len() % 100, 50, "whole frames after the written part");
    }

    #[test]
    fn dropping_unstarted_chunks_keeps_a_partly_written_frame_whole() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        let shared: SharedFrame = Rc::from(&b"shared-frame"[..]);
        q.push_shared(&mut pool, shared.clone());
        q.append(&mut pool, |out| out.extend_from_slice(b"|own"));
        q.push_shared(&mut pool, shared);
        let mut w = Trickle {
            data: vec![],
            limit: 5,
            calls: 0,
            block_after: Some(1),
        };
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::Blocked);
        assert_eq!(q.drop_unstarted(&mut pool), 4 + 12);
        q.append(&mut pool, |out| out.extend_from_slice(b"|close"));
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::All);
        assert_eq!(w.data, b"shared-frame|close");
        let mut fresh = OutQueue::default();
        fresh.push_shared(&mut pool, Rc::from(&b"x"[..]));
        assert_eq!(fresh.drop_unstarted(&mut pool), 1);
        assert!(fresh.is_empty());
    }

    #[test]
    fn small_chunks_go_out_as_one_slice_large_ones_with_writev() {
        /// Records the calls: a plain write or a vectored one, and how many slices.
        #[derive(Default)]
        struct Calls {
            data: Vec<u8>,
            slices: Vec<usize>,
        }
        impl Write for Calls {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.slices.push(1);
                self.data.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                self.slices.push(bufs.len());
                bufs.iter().for_each(|b| self.data.extend_from_slice(b));
                Ok(bufs.iter().map(|b| b.len()).sum())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        let frame: SharedFrame = Rc::from(&[1u8; 34][..]);
        for _ in 0..16 {
            q.push_shared(&mut pool, frame.clone());
        }
        q.append(&mut pool, |out| out.push(2));
        let mut w = Calls::default();
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::All);
        assert_eq!(w.slices, vec![1], "17 chunks, one slice");
        let mut expected = vec![1u8; 16 * 34];
        expected.push(2);
        assert_eq!(w.data, expected);
        assert_eq!(Rc::strong_count(&frame), 1, "the references are dropped");

        let big: SharedFrame = Rc::from(&[3u8; CORK_MAX][..]);
        q.push_shared(&mut pool, frame.clone());
        q.push_shared(&mut pool, big);
        let mut w = Calls::default();
        assert_eq!(q.flush(&mut w, &mut pool).unwrap(), Flushed::All);
        assert_eq!(w.slices, vec![2], "past the cork's size: writev");
        assert_eq!(w.data.len(), 34 + CORK_MAX);
    }

    #[test]
    fn empty_append_leaves_no_chunk() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        q.append(&mut pool, |_| {});
        assert!(q.chunks.is_empty());
        assert_eq!(
            pool.free.len(),
            1,
            "the unused buffer went back to the pool"
        );
    }

    #[test]
    fn more_chunks_than_iovecs_take_several_writes() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        // Large enough that the cork does not take them: 64 per writev.
        let frame: SharedFrame = Rc::from(&[7u8; CORK_MAX / 32][..]);
        for _ in 0..(MAX_IOVECS * 2 + 1) {
            q.push_shared(&mut pool, frame.clone());
        }
        let mut w = Trickle {
            data: vec![],
            limit: usize::MAX,
            calls: 0,
            block_after: None,
        };
        q.flush(&mut w, &mut pool).unwrap();
        assert_eq!(w.calls, 3);
        assert_eq!(w.data.len(), (MAX_IOVECS * 2 + 1) * (CORK_MAX / 32));
    }

    #[test]
    fn pool_bounds_what_it_keeps() {
        let mut pool = BufPool::default();
        pool.give(Vec::with_capacity(POOL_MAX_CAPACITY * 2));
        assert!(pool.free.is_empty());
        for _ in 0..POOL_MAX_BUFFERS + 10 {
            pool.give(Vec::with_capacity(16));
        }
        assert_eq!(pool.free.len(), POOL_MAX_BUFFERS);
        pool.give_queue(VecDeque::with_capacity(POOL_MAX_QUEUE_CHUNKS * 2));
        assert!(pool.queues.is_empty(), "a large queue is freed");
    }
}
