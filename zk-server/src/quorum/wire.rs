//! The bytes of the election port, parsed incrementally from a connection's
//! buffer (quorum.md §1, §2.1).
//!
//! Every parser answers `Ok(None)` for "need more bytes", `Err(reason)` for
//! bytes that can never become valid (the connection is closed), and
//! otherwise the value and how many bytes it took. Nothing here panics on
//! any input.

use bytes::{BufMut, Bytes, BytesMut};
use zk_election::{NOTIFICATION_VERSION, Notification, PeerState, Vote};
use zk_jute::quorum::{
    INITIAL_MESSAGE_V1, INITIAL_MESSAGE_V2, InitialMessage, MAX_INITIAL_ADDRESS,
    Notification as WireNotification,
};

/// The largest notification frame accepted (`QuorumCnxManager.PACKETMAXSIZE`).
pub(crate) const MAX_NOTIFICATION: usize = 512 * 1024;
/// The largest initial message: version, sid, length and the address text.
pub(crate) const MAX_INITIAL: usize = 20 + MAX_INITIAL_ADDRESS;

fn i32_at(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// The initial message of an election connection (QCM `handleConnection`,
/// `InitialMessage.parse`): a legacy bare sid (>= 0), or V1/V2 with an
/// address text of 1..=2048 bytes. Unlike ZooKeeper, which reads the text
/// with one `read()` and rejects a message split across segments, this waits
/// for all of it (within the handshake timeout).
pub(crate) fn parse_initial(buf: &[u8]) -> Result<Option<(InitialMessage, usize)>, String> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let first = i64_at(buf, 0);
    if first >= 0 {
        let m = InitialMessage {
            protocol: 0,
            sid: first,
            addresses: String::new(),
        };
        return Ok(Some((m, 8)));
    }
    if first != INITIAL_MESSAGE_V1 && first != INITIAL_MESSAGE_V2 {
        return Err(format!("unknown initial message version {first}"));
    }
    if buf.len() < 20 {
        return Ok(None);
    }
    let n = i32_at(buf, 16);
    if n < 1 || n as usize > MAX_INITIAL_ADDRESS {
        return Err(format!(
            "initial message address length {n} is not in 1..={MAX_INITIAL_ADDRESS}"
        ));
    }
    let total = 20 + n as usize;
    if buf.len() < total {
        return Ok(None);
    }
    InitialMessage::decode(Bytes::copy_from_slice(&buf[..total]))
        .map(|m| Some((m, total)))
        .map_err(|e| format!("invalid initial message: {e}"))
}

/// Our initial message: V1, our sid and one `host:port` (quorum.md §1.1, §1.4).
pub(crate) fn initial_message(sid: u64, address: &str) -> Vec<u8> {
    let mut b = BytesMut::with_capacity(20 + address.len());
    InitialMessage {
        protocol: INITIAL_MESSAGE_V1,
        sid: sid as i64,
        addresses: address.to_string(),
    }
    .write(&mut b);
    b.to_vec()
}

/// One length-prefixed notification frame at the start of `buf`: the payload
/// range. A length <= 0 or above 512 KiB is an error (`RecvWorker.run`).
pub(crate) fn parse_frame(buf: &[u8]) -> Result<Option<std::ops::Range<usize>>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let n = i32_at(buf, 0);
    if n <= 0 || n as usize > MAX_NOTIFICATION {
        return Err(format!(
            "notification length {n} is not in 1..={MAX_NOTIFICATION}"
        ));
    }
    let end = 4 + n as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some(4..end))
}

/// A notification payload as the election core sees it, and the sender's
/// configuration text (empty from old senders); `Err` for a malformed one
/// and for an unknown state (both skipped, as `WorkerReceiver`).
pub(crate) fn decode_notification(payload: Bytes) -> Result<(Notification, Bytes), String> {
    let n =
        WireNotification::decode(payload).map_err(|e| format!("malformed notification: {e}"))?;
    let state = PeerState::from_wire(n.state)
        .ok_or_else(|| format!("notification with unknown state {}", n.state))?;
    let config = n.config;
    let n = Notification {
        state,
        vote: Vote {
            leader: n.leader,
            zxid: n.zxid,
            peer_epoch: n.peer_epoch,
        },
        election_epoch: n.election_epoch,
        version: n.version,
    };
    Ok((n, config))
}

/// A notification frame (length prefix included), version 2 with `config`.
pub(crate) fn notification_frame(n: &Notification, config: &Bytes) -> Bytes {
    let wire = WireNotification {
        state: n.state.to_wire(),
        leader: n.vote.leader,
        zxid: n.vote.zxid,
        election_epoch: n.election_epoch,
        peer_epoch: n.vote.peer_epoch,
        version: NOTIFICATION_VERSION,
        config: config.clone(),
    };
    let mut b = BytesMut::with_capacity(48 + config.len());
    b.put_i32(0);
    wire.write(&mut b);
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_messages_legacy_v1_v2_and_bad_ones() {
        let v1 = initial_message(3, "127.0.0.1:3888");
        assert_eq!(v1.len(), 20 + 14);
        for cut in 0..v1.len() {
            assert_eq!(parse_initial(&v1[..cut]), Ok(None), "cut at {cut}");
        }
        let (m, used) = parse_initial(&v1).unwrap().unwrap();
        assert_eq!(
            (m.sid, m.addresses.as_str(), used),
            (3, "127.0.0.1:3888", 34)
        );
        // Legacy: a bare non-negative sid.
        let (m, used) = parse_initial(&7i64.to_be_bytes()).unwrap().unwrap();
        assert_eq!((m.protocol, m.sid, used), (0, 7, 8));
        // V2 with two addresses, and bytes after the message left alone.
        let mut v2 = INITIAL_MESSAGE_V2.to_be_bytes().to_vec();
        v2.extend_from_slice(&5i64.to_be_bytes());
        let a = b"h1:1|h2:2";
        v2.extend_from_slice(&(a.len() as i32).to_be_bytes());
        v2.extend_from_slice(a);
        v2.extend_from_slice(&[0, 0, 0, 44]);
        let (m, used) = parse_initial(&v2).unwrap().unwrap();
        assert_eq!((m.sid, used), (5, 29));
        // Unknown negative version, N out of 1..=2048: errors at once.
        assert!(parse_initial(&(-3i64).to_be_bytes()).is_err());
        for n in [0i32, -1, 2049, i32::MAX] {
            let mut b = INITIAL_MESSAGE_V1.to_be_bytes().to_vec();
            b.extend_from_slice(&1i64.to_be_bytes());
            b.extend_from_slice(&n.to_be_bytes());
            assert!(parse_initial(&b).is_err(), "{n}");
        }
    }

    #[test]
    fn frames_are_bounded() {
        assert_eq!(parse_frame(&[0, 0, 0]), Ok(None));
        assert!(parse_frame(&0i32.to_be_bytes()).is_err());
        assert!(parse_frame(&(-5i32).to_be_bytes()).is_err());
        assert!(parse_frame(&((MAX_NOTIFICATION + 1) as i32).to_be_bytes()).is_err());
        let mut b = (MAX_NOTIFICATION as i32).to_be_bytes().to_vec();
        assert_eq!(parse_frame(&b), Ok(None));
        b.resize(4 + MAX_NOTIFICATION, 0);
        assert_eq!(parse_frame(&b), Ok(Some(4..4 + MAX_NOTIFICATION)));
    }

    #[test]
    fn notification_round_trip_and_unknown_state() {
        let n = Notification {
            state: PeerState::Leading,
            vote: Vote {
                leader: 3,
                zxid: 0x1_0000_0002,
                peer_epoch: 1,
            },
            election_epoch: 4,
            version: NOTIFICATION_VERSION,
        };
        let cfg = Bytes::from_static(b"server.1=127.0.0.1:2:3:participant\nversion=0");
        let f = notification_frame(&n, &cfg);
        let r = parse_frame(&f).unwrap().unwrap();
        assert_eq!(r.len(), 44 + cfg.len());
        assert_eq!(decode_notification(f.slice(r.clone())), Ok((n, cfg)));
        let mut bad = f.slice(r).to_vec();
        bad[3] = 9;
        assert!(decode_notification(Bytes::from(bad)).is_err());
        assert!(decode_notification(Bytes::from_static(&[0; 30])).is_err());
    }

    /// Random and mutated inputs: every parser answers (value, need more, or
    /// error) without panicking, and never claims more bytes than it has.
    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [
            initial_message(2, "127.0.0.1:3888"),
            notification_frame(
                &Notification {
                    state: PeerState::Following,
                    vote: Vote {
                        leader: 1,
                        zxid: 2,
                        peer_epoch: 3,
                    },
                    election_epoch: 4,
                    version: 2,
                },
                &Bytes::from_static(b"version=0"),
            )
            .to_vec(),
        ];
        for i in 0..200_000 {
            let mut b = if i % 2 == 0 {
                seeds[i % 2].clone()
            } else {
                let len = (next() % 64) as usize;
                (0..len).map(|_| next() as u8).collect()
            };
            if !b.is_empty() {
                for _ in 0..(next() % 4) {
                    let at = (next() as usize) % b.len();
                    b[at] = next() as u8;
                }
                b.truncate((next() as usize) % (b.len() + 1));
            }
            if let Ok(Some((_, used))) = parse_initial(&b) {
                assert!(used <= b.len());
            }
            if let Ok(Some(r)) = parse_frame(&b) {
                assert!(r.end <= b.len());
                let _ = decode_notification(Bytes::copy_from_slice(&b[r]));
            }
            let _ = decode_notification(Bytes::from(b));
        }
    }
}
