//! zk-bench: a load generator for any ZooKeeper-compatible server, speaking the
//! real client wire protocol (zk-jute frames over TCP).
//!
//! * `run`: N sessions × M pipelined requests of create / setData / getData or
//!   a read/write mix, for a duration or an op count, after a set-up phase that
//!   creates the keys; throughput and p50 / p99 / p99.9 / max latency as a table
//!   or JSON, a progress line on stderr every second; `--cleanup` makes a create
//!   run delete every znode it created afterwards (unmeasured). Closed loop by
//!   default; `--rate R` offers a fixed R ops/s instead (open loop, latency from
//!   each op's scheduled time), so different servers can be compared at the
//!   same load.
//! * `load`: K znodes of B bytes as fast as pipelining allows (memory, disk and
//!   restart comparisons).
//! * `wait`: poll until a getData succeeds (restart-to-serving time).
//!
//! The binary is a thin wrapper over [`main_with_args`]; the modules are public
//! for the tests and for other tools.

#![deny(unsafe_code)] // allowed in one module only: the timerfd in engine.rs (libc calls)

pub mod args;
pub mod cmd;
pub mod engine;
pub mod hist;
pub mod report;
pub mod wire;
pub mod workload;

/// Parses `args` (without the program name), runs the command and returns the
/// process exit code: 0 success, 1 failure, 2 bad usage.
pub fn main_with_args(args: &[String]) -> i32 {
    let cmd = match args::parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zk-bench: {e}\n\n{}", args::USAGE);
            return 2;
        }
    };
    let result = match cmd {
        args::Command::Help => {
            print!("{}", args::USAGE);
            Ok(())
        }
        args::Command::Run(a) => cmd::run(&a),
        args::Command::Load(a) => cmd::load(&a),
        args::Command::Wait(a) => cmd::wait(&a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("zk-bench: {e}");
            1
        }
    }
}
