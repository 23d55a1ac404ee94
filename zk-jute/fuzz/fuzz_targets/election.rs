//! Feeds arbitrary bytes to the election's decoders and to an election core,
//! as a hostile peer on the election port would (ZOOKEEPER-3769: a malformed
//! notification killed Apache's receiver thread).
//!
//! * The whole input as a connection's initial message: whatever decodes must
//!   re-encode to bytes that decode to the same value.
//! * The input as a script of events for one `zk_election::Election` (server
//!   2 of voters {1, 2, 3}, observer 4): notifications decoded from slices of
//!   the input and attributed to sids 0..=5 (unknown ones included), timers,
//!   connections, new rounds with arbitrary zxids and epochs. The core must
//!   never panic, keep its invariants (`validate`, debug assertions are on)
//!   and only ever decide for a voter.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zk_election::{Command, Election, Event, Majority, Params, PeerState, Timer, Vote};
use zk_jute::quorum::{InitialMessage, Notification};

fn initial_message(data: &[u8]) {
    let Ok(m) = InitialMessage::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut out = BytesMut::new();
    m.write(&mut out);
    let again = InitialMessage::decode(out.freeze()).expect("re-encoded initial message decodes");
    assert_eq!(again, m);
}

fn i64_at(data: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    for (i, x) in b.iter_mut().enumerate() {
        *x = data.get(at + i).copied().unwrap_or(0);
    }
    i64::from_be_bytes(b)
}

fn election(data: &[u8]) {
    let mut e = Election::new(2, Majority::new([1, 2, 3]), Params::default());
    let mut out = Vec::new();
    e.step(
        Event::StartLooking {
            last_zxid: i64_at(data, 0),
            current_epoch: i64_at(data, 8),
        },
        &mut out,
    );
    let mut at = 16;
    while at + 2 <= data.len() {
        let op = data[at];
        let arg = data[at + 1];
        at += 2;
        let ev = match op % 8 {
            0..=2 => {
                let len = usize::from(arg).min(data.len() - at);
                let payload = Bytes::copy_from_slice(&data[at..at + len]);
                at += len;
                let Ok(n) = Notification::decode(payload) else {
                    continue;
                };
                let Some(state) = PeerState::from_wire(n.state) else {
                    continue;
                };
                Event::Received {
                    from: u64::from(op / 8 % 6),
                    msg: zk_election::Notification {
                        state,
                        vote: Vote {
                            leader: n.leader,
                            zxid: n.zxid,
                            peer_epoch: n.peer_epoch,
                        },
                        election_epoch: n.election_epoch,
                        version: n.version,
                    },
                }
            }
            3 => Event::Timer(Timer::Notify),
            4 => Event::Timer(Timer::Finalize),
            5 => Event::Connected(u64::from(arg % 6)),
            6 => {
                let ev = Event::StartLooking {
                    last_zxid: i64_at(data, at),
                    current_epoch: i64::from(arg),
                };
                at += 8;
                ev
            }
            _ => Event::EpochEstablished {
                peer_epoch: i64_at(data, at),
            },
        };
        out.clear();
        e.step(ev, &mut out);
        e.validate();
        for c in &out {
            if let Command::Decided(d) = c {
                assert!((1..=3).contains(&d.leader), "decided for a non-voter: {d:?}");
                assert_eq!(d.state == PeerState::Leading, d.leader == 2);
            }
            if let Command::Send { to, .. } = c {
                assert!(*to <= 5 && *to != 2, "sent to {to}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    initial_message(data);
    election(data);
});
