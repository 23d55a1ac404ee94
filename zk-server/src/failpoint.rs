//! Crash points for the fault tests (issue 16): windows that timing alone
//! cannot reach, such as a learner dying between "the synced txns are
//! durable", "currentEpoch is written" and "NEWLEADER is acked".
//!
//! `ZK_FAILPOINTS=name[,name...]` in the environment makes the process exit
//! at once with status [`EXIT_CODE`] when it reaches a named point, printing
//! `failpoint <name>: exiting` on stderr. Nothing is flushed or synced first:
//! for the disk it is a kill -9 at that instruction (what was written stays
//! in the page cache, nothing more is written). Compiled into debug builds
//! only, which the tests run; a release build ignores the variable.
//!
//! The points (each named after what has happened and what has not):
//!
//! | name | where |
//! |---|---|
//! | `learner-before-current-epoch` | a learner's synced txns are durable; currentEpoch not yet written |
//! | `learner-before-newleader-ack` | currentEpoch written; the ACK of NEWLEADER not yet sent |
//! | `learner-inside-trunc` | TRUNC: the log truncated; the tree not yet rebuilt |
//! | `learner-inside-snap-persist` | SNAP: its snapshot published; the old log not yet dropped |
//! | `leader-before-current-epoch` | a leader's epoch-ack quorum formed; its currentEpoch not yet written |
//!
//! Switches (the process goes on, behaving wrongly on purpose, to show that
//! a check catches it; [`armed`]):
//!
//! | name | what |
//! |---|---|
//! | `leader-wrong-digest` | a leader's proposals carry a tree digest off by one |

/// The exit status of a process stopped at a failpoint.
pub const EXIT_CODE: i32 = 86;

/// Whether `name` is in `ZK_FAILPOINTS`.
#[cfg(debug_assertions)]
pub(crate) fn armed(name: &str) -> bool {
    static ARMED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        std::env::var("ZK_FAILPOINTS")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    });
    armed.iter().any(|a| a == name)
}

/// Release builds have no failpoints.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn armed(_name: &str) -> bool {
    false
}

/// Stops the process here if `name` is armed.
#[cfg(debug_assertions)]
pub(crate) fn hit(name: &str) {
    if armed(name) {
        eprintln!("failpoint {name}: exiting");
        std::process::exit(EXIT_CODE);
    }
}

/// Release builds have no failpoints.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn hit(_name: &str) {}
