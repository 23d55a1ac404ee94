//! Hostile peers on the quorum port (`hostile/mod.rs`, shared with the
//! `peer` fuzz target): random and mutated scripts of packets, fed to a
//! leader and to a learner among an honest runtime's events. No panic, the
//! cores' invariants after every step, no impossible append or apply.

#[path = "hostile/mod.rs"]
mod hostile;

/// xorshift64: the same inputs every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A script of up to 600 bytes; a third of them biased towards small
    /// values (the packet types, zxids and events the driver picks by
    /// `% n` see more of their low choices, and an honest-looking sync
    /// happens more often).
    fn script(&mut self) -> Vec<u8> {
        let n = (self.next() % 600) as usize;
        let small = self.next().is_multiple_of(3);
        (0..n)
            .map(|_| {
                let b = self.next() as u8;
                if small { b % 8 } else { b }
            })
            .collect()
    }
}

const SCRIPTS: usize = 4000;

/// Runs the scripts; (scripts that reached serving, txns applied, roles
/// ended, events fed).
fn run(seed: u64, drive: fn(&[u8]) -> hostile::Reached) -> (usize, usize, usize, usize) {
    let mut rng = Rng(seed);
    let mut totals = (0, 0, 0, 0);
    for i in 0..SCRIPTS {
        let script = rng.script();
        if std::env::var("ZK_HOSTILE_SCRIPT").is_ok_and(|s| s != i.to_string()) {
            continue;
        }
        let r = std::panic::catch_unwind(|| drive(&script)).unwrap_or_else(|_| {
            panic!("script {i} (ZK_HOSTILE_SCRIPT={i} ZK_HOSTILE_TRACE=1 to replay)")
        });
        totals.0 += usize::from(r.serving);
        totals.1 += r.applied;
        totals.2 += usize::from(r.ended);
        totals.3 += r.steps;
    }
    eprintln!("serving, applied, ended, steps: {totals:?}");
    totals
}

#[test]
fn a_leader_survives_hostile_learners() {
    let (serving, applied, _, _) = run(
        0x9E37_79B9_7F4A_7C15,
        hostile::leader_under_hostile_learners,
    );
    assert!(
        serving > 0 && applied > 0,
        "the scripts never got past the sync"
    );
}

#[test]
fn a_learner_survives_a_hostile_leader() {
    let (serving, applied, _, _) =
        run(0xD1B5_4A32_D192_ED03, hostile::learner_under_hostile_leader);
    assert!(
        serving > 0 && applied > 0,
        "the scripts never got past the sync"
    );
}

/// `ZK_HOSTILE_INPUT=<file>`: runs a fuzz input of the `peer` target (its
/// first byte picks the side, as there); with `ZK_HOSTILE_TRACE=1` every
/// event and command is printed.
#[test]
fn replay_a_fuzz_input() {
    let Some(path) = std::env::var_os("ZK_HOSTILE_INPUT") else {
        return;
    };
    let data = std::fs::read(path).expect("the input file");
    let Some((&which, script)) = data.split_first() else {
        return;
    };
    let r = if which % 2 == 0 {
        hostile::leader_under_hostile_learners(script)
    } else {
        hostile::learner_under_hostile_leader(script)
    };
    eprintln!("{r:?}");
}
