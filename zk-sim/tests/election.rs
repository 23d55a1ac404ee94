//! The election simulator's seeds: safety after every step, liveness after
//! the heal, and exact replay. `ZK_SIM_SEEDS=N` runs N seeds per ensemble
//! size (default 20000, about 10 s on 2 cores); `ZK_SIM_SEED=S` replays one seed with its trace.

use zk_election::Params;
use zk_sim::election::{Options, describe, run};

fn seeds() -> u64 {
    std::env::var("ZK_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn sweep(first: u64, count: u64) {
    let started = std::time::Instant::now();
    let mut events = 0;
    for seed in first..first + count {
        match run(seed, &Options::swarm(seed)) {
            Ok(r) => events += r.events,
            Err(f) => panic!("{f}"),
        }
    }
    eprintln!(
        "{count} seeds from {first}: {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn swarm_seeds_a() {
    sweep(0, seeds() / 2);
}

#[test]
fn swarm_seeds_b() {
    let n = seeds();
    sweep(1_000_000, n - n / 2);
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [7, 4242, 99_999] {
        let a = run(seed, &Options::swarm(seed)).unwrap();
        let b = run(seed, &Options::swarm(seed)).unwrap();
        assert_eq!(a, b, "seed {seed} did not replay");
    }
}

#[test]
fn replay() {
    // ZK_SIM_SEED=S replays one seed and prints its outcome (or failure).
    let Some(seed) = std::env::var("ZK_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return;
    };
    let opts = Options::swarm(seed);
    eprintln!("{opts:?}");
    match run(seed, &opts) {
        Ok(r) => eprintln!("{}", describe(&r)),
        Err(f) => panic!("{f}"),
    }
}

#[test]
fn calm_starts_elect_the_best_server() {
    // Fresh servers started together, no faults: the highest sid leads,
    // and with data, the best (epoch, zxid, sid).
    for voters in [3, 5] {
        for seed in 0..50 {
            let r = run(seed, &Options::calm(voters, Params::default())).unwrap();
            assert_eq!(r.detours, 0, "{}", describe(&r));
            assert_eq!(r.leader, r.initial_best, "{}", describe(&r));
        }
    }
}
