//! The server's threads under Linux's `SCHED_BATCH` policy (`zkrs.schedBatch`).
//!
//! A write crosses several threads on each server (a loop, the sequencer,
//! `zk-quorum`, the log's sync thread) and, in an ensemble, three or five
//! servers. When those servers share a host's cores, each hand-off's
//! wake-up preempted whatever thread ran on that core, mid-batch, under the
//! default policy: on two cores with three servers, a third of the context
//! switches were such preemptions. A `SCHED_BATCH` thread woken waits for
//! the running one to block or use up its slice instead, so each stage
//! finishes its batch (README, "Where the time goes"). Setting it needs no
//! privilege. Only threads still under the default policy are switched: an
//! operator's `chrt` on the process is left alone.
//!
//! The only `unsafe` of the crate: two libc calls on the calling thread.

use std::io;

/// The calling thread under `SCHED_BATCH` while it lives, so that the
/// threads it spawns meanwhile inherit the policy; dropped, the calling
/// thread is back under the default policy (a library caller's thread is
/// not changed for good).
pub(crate) struct BatchSpawns {
    switched: bool,
}

impl BatchSpawns {
    /// Switches the calling thread if it runs under the default policy
    /// (`SCHED_OTHER`); `Ok` with nothing switched under any other policy,
    /// and on a system other than Linux.
    pub(crate) fn start() -> io::Result<BatchSpawns> {
        let switched = imp::current_is_default()? && {
            imp::set_batch(true)?;
            true
        };
        Ok(BatchSpawns { switched })
    }

    /// Whether the threads spawned from now on run under `SCHED_BATCH`.
    pub(crate) fn switched(&self) -> bool {
        self.switched
    }
}

impl Drop for BatchSpawns {
    fn drop(&mut self) {
        if self.switched {
            let _ = imp::set_batch(false);
        }
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod imp {
    use std::io;

    pub(super) fn current_is_default() -> io::Result<bool> {
        // SAFETY: sched_getscheduler(0) reads the calling thread's policy;
        // it takes no pointer.
        let policy = unsafe { libc::sched_getscheduler(0) };
        if policy < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(policy == libc::SCHED_OTHER)
    }

    /// The calling thread under `SCHED_BATCH`, or back under `SCHED_OTHER`.
    pub(super) fn set_batch(on: bool) -> io::Result<()> {
        let policy = if on {
            libc::SCHED_BATCH
        } else {
            libc::SCHED_OTHER
        };
        // Both policies take priority 0.
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param that outlives the call,
        // which only reads it; pid 0 is the calling thread.
        if unsafe { libc::sched_setscheduler(0, policy, &param) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    /// No policy to switch from: nothing is ever switched.
    pub(super) fn current_is_default() -> io::Result<bool> {
        Ok(false)
    }

    pub(super) fn set_batch(_: bool) -> io::Result<()> {
        Ok(())
    }
}

/// The scheduling policy a `/proc/.../stat` file shows (its field 41), for
/// the tests.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn policy_in(stat: &std::path::Path) -> i32 {
    let stat = std::fs::read_to_string(stat).unwrap();
    // Counted after the command's closing parenthesis, which ends field 2.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(38).unwrap().parse().unwrap()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy_of_this_thread() -> i32 {
        policy_in("/proc/thread-self/stat".as_ref())
    }

    fn policy_of_a_thread_spawned_now() -> i32 {
        std::thread::spawn(policy_of_this_thread).join().unwrap()
    }

    /// Runs `f` on a thread of its own (whose policy it changes), unless
    /// the tests run under another policy than SCHED_OTHER.
    fn on_a_default_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(|| {
            if policy_of_this_thread() != libc::SCHED_OTHER {
                eprintln!("skipped: the tests run under another policy than SCHED_OTHER");
                return;
            }
            f();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn threads_spawned_while_it_lives_are_batch_and_the_caller_is_restored() {
        on_a_default_thread(|| {
            let scope = BatchSpawns::start().unwrap();
            assert!(scope.switched());
            assert_eq!(policy_of_a_thread_spawned_now(), libc::SCHED_BATCH);
            drop(scope);
            assert_eq!(policy_of_this_thread(), libc::SCHED_OTHER);
            assert_eq!(policy_of_a_thread_spawned_now(), libc::SCHED_OTHER);
        });
    }

    #[test]
    fn a_thread_under_another_policy_is_left_alone() {
        on_a_default_thread(|| {
            let outer = BatchSpawns::start().unwrap();
            assert!(outer.switched());
            // Already SCHED_BATCH (an operator's chrt): not switched, not restored.
            let inner = BatchSpawns::start().unwrap();
            assert!(!inner.switched());
            drop(inner);
            assert_eq!(policy_of_this_thread(), libc::SCHED_BATCH);
        });
    }
}
