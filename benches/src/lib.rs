//! Shared helpers for the workspace's Criterion benchmarks (`benches/*.rs`).
//!
//! The benches themselves live in `benches/`; run them with
//! `cargo bench -p zk-benches`, or `cargo bench -p zk-benches -- --test` to only
//! check that each runs once (as the test entry point does).
//!
//! * [`client`]: the workspace's raw synchronous client ([`zk_client`]), for
//!   the end-to-end benches against a real server: one request at a time with
//!   [`Client::call_ok`](zk_client::Client::call_ok), `TCP_NODELAY` set, so a
//!   call's latency is the server's round trip plus loopback.
//! * [`durable_dir`] / [`fs_type`]: where benches that fsync put their files
//!   (never tmpfs), and what file system that is.

#![forbid(unsafe_code)]

mod disk;

pub use zk_client as client;

pub use disk::{durable_dir, fs_type};

use bytes::Bytes;
use zk_jute::{Acl, Stat};

/// The ACL most clients send: all permissions to `world:anyone`.
pub fn world_anyone() -> Vec<Acl> {
    zk_client::open_acl()
}

/// A persistent create of `path` with `data`, open to everyone.
pub fn create_request(path: &str, data: Option<Bytes>) -> zk_jute::Request {
    zk_jute::Request::Create(zk_jute::CreateRequest {
        path: path.into(),
        data,
        acl: world_anyone(),
        flags: 0,
    })
}

/// `len` bytes of data with a repeating, non-zero pattern.
pub fn data(len: usize) -> Bytes {
    (0..len)
        .map(|i| b'a' + u8::try_from(i % 26).unwrap_or(0))
        .collect::<Vec<u8>>()
        .into()
}

/// A plausible stat of a znode holding `data_len` bytes.
pub fn stat(data_len: i32) -> Stat {
    Stat {
        czxid: 0x1_0000_0002,
        mzxid: 0x1_0000_0042,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_100_000,
        version: 7,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: data_len,
        num_children: 0,
        pzxid: 0x1_0000_0002,
    }
}
