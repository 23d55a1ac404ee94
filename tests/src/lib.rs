//! Integration-test harness for the ZooKeeper-compatible server.
//!
//! Every test in `tests/tests/` is written once as a function of a server
//! and runs against two servers:
//!
//! * [`ApacheZk`]: Apache ZooKeeper 3.8 from the Debian package (`apt-get
//!   install zookeeper zookeeper-bin`), started as
//!   `java -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
//!   org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg` in a temp dir
//!   on a free loopback port. It is the oracle: a test that fails against it
//!   is a wrong test.
//! * [`OurZk`]: our `zk-server` binary (built once per test process with
//!   `cargo build -p zk-server`, or taken from `$ZK_SERVER_BIN`), started
//!   as `zk-server zoo.cfg` with `clientPort=0`; the bound port is read from
//!   its output.
//!
//! Both are [`ZkServer`]s: killed on drop, `kill9()` and `restart()` on the
//! same dirs and port, output captured to files and printed when a test
//! panics. Start-up waits for `ruok` → `imok` with a deadline (no fixed
//! sleeps).
//!
//! [`Client`] is the workspace's raw synchronous client, [`zk_client`]
//! (re-exported here as [`client`]): any opcode, pipelined xids, replies
//! matched by xid, notifications kept in order.
//!
//! [`ensemble`] runs Zab ensembles of our server as real processes on
//! loopback, with iptables partitions ([`ensemble::Firewall`]).
//!
//! [`lincheck`] checks recorded client histories against ZooKeeper's
//! consistency contract (linearizable writes, per-session ordered reads).
//!
//! [`faults`] and [`workload`] are the fault harness (`tests/faults.rs`):
//! per-test network and mount namespaces, network, process, clock and
//! storage faults, and a recorded client workload with its checks.
//!
//! Missing java or Debian packages make tests fail with an install hint
//! ([`server::INSTALL_HINT`]); they are never skipped silently.

pub mod ensemble;
pub mod faults;
pub mod http;
pub mod lincheck;
pub mod rng;
pub mod server;
pub mod workload;
pub mod zkcli;

pub use zk_client as client;

pub use client::{Client, ClientError, ClientResult, ConnectOptions, Reply, acl, open_acl};
pub use rng::{Rng, seeds};
pub use server::{ApacheZk, Flavor, OurZk, ServerOptions, ZkServer, four_letter, start_server};

use std::time::{Duration, Instant};

/// Polls `cond` every 20 ms until it returns `Some`, or panics with `what`
/// after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads (and drops) what the peer sends on `s` until it closes the
/// connection (true), or until a read waits `timeout` with it still open
/// (false).
pub fn closed_by_peer(s: &mut std::net::TcpStream, timeout: Duration) -> bool {
    use std::io::Read;
    if s.set_read_timeout(Some(timeout)).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Whether our server should be tested: `zk-server` exists in the workspace.
pub fn ours_exists() -> bool {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../zk-server/Cargo.toml")
        .exists()
}
