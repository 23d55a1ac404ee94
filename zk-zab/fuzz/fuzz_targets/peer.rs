//! A hostile peer on the quorum port (zk-zab/tests/hostile/mod.rs, which the
//! property test `hostile_peers` also runs): the input's first byte picks a
//! leader among hostile learners or a learner under a hostile leader, the
//! rest is the script. No panic, the cores' invariants after every step
//! (debug assertions are on), no impossible append or apply.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/mod.rs"]
mod hostile;

fuzz_target!(|data: &[u8]| {
    let Some((&which, script)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        hostile::leader_under_hostile_learners(script);
    } else {
        hostile::learner_under_hostile_leader(script);
    }
});
