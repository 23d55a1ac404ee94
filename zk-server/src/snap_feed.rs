//! A SNAP body handed from the quorum thread to the sequencer while it
//! arrives, so that the learner loads the tree (and writes it to disk as
//! its snapshot) during the transfer instead of after it: 205 MB for 1M
//! znodes cross the loopback in ~0.45 s, which the load (~1.2 s) now
//! hides.
//!
//! The quorum thread scans the body to find where it ends (quorum.md §4)
//! and sends what it scanned in pieces ([`SnapSender`]); the sequencer
//! reads them as one stream ([`SnapReader`], a `BufRead` with no copy) and
//! passes each piece on to the thread writing the snapshot. The body is
//! complete only when the sender says so ([`SnapSender::end`]): a sender
//! dropped before that (the connection to the leader lost mid-body) or no
//! piece for a whole initLimit (Apache's socket timeout while syncing) is
//! an error for the reader, and the load fails as a truncated body would.

use std::io::{self, BufRead, Read};
use std::time::Duration;

use bytes::{Buf, Bytes};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

enum Piece {
    Data(Bytes),
    End,
}

/// The quorum thread's end of a SNAP body's feed.
pub(crate) struct SnapSender {
    tx: Sender<Piece>,
}

impl SnapSender {
    /// Sends the next bytes of the body (the reader may be gone: a load
    /// that failed reads no more).
    pub(crate) fn send(&self, piece: Bytes) {
        if !piece.is_empty() {
            let _ = self.tx.send(Piece::Data(piece));
        }
    }

    /// The body is complete.
    pub(crate) fn end(self) {
        let _ = self.tx.send(Piece::End);
    }
}

/// The sequencer's end of a SNAP body's feed (what [`QuorumIn::Snap`]
/// carries).
///
/// [`QuorumIn::Snap`]: crate::msg::QuorumIn::Snap
pub(crate) struct SnapFeed {
    rx: Receiver<Piece>,
    stall: Duration,
}

impl std::fmt::Debug for SnapFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapFeed")
            .field("queued", &self.rx.len())
            .finish()
    }
}

/// A feed whose reader fails when no piece came for `stall`.
pub(crate) fn snap_feed(stall: Duration) -> (SnapSender, SnapFeed) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (SnapSender { tx }, SnapFeed { rx, stall })
}

impl SnapFeed {
    /// A feed of a body already whole, in the leader's pieces (the
    /// simulator's router).
    #[cfg(test)]
    pub(crate) fn whole(body: Vec<Bytes>) -> Self {
        let (tx, feed) = snap_feed(Duration::from_secs(1));
        for piece in body {
            tx.send(piece);
        }
        tx.end();
        feed
    }

    /// Reads the body; every piece read is also sent to `copy` (while it
    /// takes them).
    pub(crate) fn reader(self, copy: Option<Sender<Bytes>>) -> SnapReader {
        SnapReader {
            feed: self,
            cur: Bytes::new(),
            ended: false,
            copy,
            len: 0,
        }
    }
}

/// A SNAP body as one stream, read as it arrives.
pub(crate) struct SnapReader {
    feed: SnapFeed,
    cur: Bytes,
    ended: bool,
    copy: Option<Sender<Bytes>>,
    len: u64,
}

impl SnapReader {
    /// Reads what is left of the body (passing it on to the copy); its
    /// whole length. The copy's end is dropped: it has everything.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        loop {
            let n = self.fill_buf()?.len();
            if n == 0 {
                self.copy = None;
                return Ok(self.len);
            }
            self.consume(n);
        }
    }

    fn next_piece(&mut self) -> io::Result<()> {
        match self.feed.rx.recv_timeout(self.feed.stall) {
            Ok(Piece::Data(b)) => {
                self.len += b.len() as u64;
                if let Some(c) = &self.copy
                    && c.send(b.clone()).is_err()
                {
                    // The writer stopped (its error comes when it is joined).
                    self.copy = None;
                }
                self.cur = b;
                Ok(())
            }
            Ok(Piece::End) => {
                self.ended = true;
                Ok(())
            }
            Err(RecvTimeoutError::Disconnected) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the connection to the leader closed after {} bytes of the SNAP body",
                    self.len
                ),
            )),
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no SNAP body bytes from the leader for {} ms (initLimit) after {} bytes",
                    self.feed.stall.as_millis(),
                    self.len
                ),
            )),
        }
    }
}

impl BufRead for SnapReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.cur.is_empty() && !self.ended {
            self.next_piece()?;
        }
        Ok(&self.cur[..])
    }

    fn consume(&mut self, amt: usize) {
        self.cur.advance(amt.min(self.cur.len()));
    }
}

impl Read for SnapReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(tx: &SnapSender, body: &[u8], size: usize) {
        for c in body.chunks(size) {
            tx.send(Bytes::copy_from_slice(c));
        }
    }

    #[test]
    fn reads_the_pieces_as_one_stream_and_copies_them() {
        let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let (tx, feed) = snap_feed(Duration::from_secs(5));
        let (ctx, crx) = crossbeam_channel::unbounded();
        let sender = std::thread::spawn({
            let body = body.clone();
            move || {
                pieces(&tx, &body, 333);
                tx.end();
            }
        });
        let mut r = feed.reader(Some(ctx));
        let mut head = vec![0u8; 4000];
        r.read_exact(&mut head).unwrap();
        assert_eq!(head, body[..4000]);
        // What the reader did not consume is still read (and copied).
        assert_eq!(r.finish().unwrap(), body.len() as u64);
        sender.join().unwrap();
        let copied: Vec<u8> = crx.iter().flat_map(|b| b.to_vec()).collect();
        assert_eq!(copied, body);
    }

    #[test]
    fn a_sender_gone_before_the_end_is_an_error() {
        let (tx, feed) = snap_feed(Duration::from_secs(5));
        pieces(&tx, b"abcdef", 2);
        drop(tx);
        let mut r = feed.reader(None);
        let mut all = Vec::new();
        let e = r.read_to_end(&mut all).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("after 6 bytes"), "{e}");
    }

    #[test]
    fn a_stalled_sender_is_an_error_after_the_limit() {
        let (tx, feed) = snap_feed(Duration::from_millis(20));
        pieces(&tx, b"abc", 3);
        let mut r = feed.reader(None);
        let mut all = Vec::new();
        let e = r.read_to_end(&mut all).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(tx);
    }
}
