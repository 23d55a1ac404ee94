//! A standalone ZooKeeper-compatible server on a durable log.
//!
//! [`Server::start`] recovers the state in the configured directories
//! (zk-txnlog's snapshot and log, applied to a zk-tree), binds the client port
//! and serves every ZooKeeper client unchanged. The binary `zk-server` wraps
//! it: `zk-server [zoo.cfg]`.
//!
//! * `server`: the composition root (threads, start, shutdown); nothing
//!   imports it. `msg` (the messages between threads), `shared` (what every
//!   thread sees), `control` (mode, serving, last zxid, outstanding), `frames`,
//!   `reads` and `error` are leaves the threads share.
//! * [`config`]: zoo.cfg (the keys of the ZooKeeper admin guide) and `myid`.
//! * `net`: mio event loops for the connections (framing, handshake checks,
//!   4lw, local reads, output back-pressure).
//! * `sequencer`: the core thread: sessions, prep, zxids, the log, commit, apply,
//!   watch events, replies in order (per-session order in `session_order`,
//!   snapshot policy in `snapshots`).
//! * `sessions` / [`expiry`]: session ids, passwords and the tick-bucketed expiry.
//! * `fourlw`: the four-letter words; `figures` gathers what they, the
//!   AdminServer (`admin`) and Prometheus' `/metrics` (`metrics`) report;
//!   `http` is the small bounded HTTP server under the last two.
//! * `storage`: log record format, recovery, snapshots, autopurge.
//!
//! ```no_run
//! use zk_server::{Config, Server};
//! let dir = std::path::PathBuf::from("/tmp/zk-example");
//! let server = Server::start(Config::standalone(dir, 0)).unwrap();
//! println!("listening on {}", server.local_addr());
//! server.shutdown();
//! ```

#![deny(unsafe_code)] // allowed in one module only: `sched` (two libc calls)

mod admin;
pub mod config;
mod control;
mod dynamic_config;
mod epoch_files;
mod error;
pub mod expiry;
pub mod failpoint;
mod figures;
mod fourlw;
mod frames;
mod http;
mod inbox;
mod java_random;
mod keystore;
mod metrics;
mod msg;
mod net;
mod quorum;
mod reads;
mod sasl;
mod sched;
mod sequencer;
mod server;
mod sessions;
mod shared;
mod snap_feed;
mod stages;
mod stats;
mod storage;
mod takeover;
pub mod tls;

pub use config::{AdminConfig, Config, ConfigError, MetricsConfig, Whitelist};
pub use error::StartError;
pub use figures::VERSION;
pub use server::{Server, ShutdownHandle};
pub use sessions::password as session_password;
