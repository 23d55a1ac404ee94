//! Deterministic simulation of a ZooKeeper ensemble over the sans-I/O
//! protocol cores (test-only).
//!
//! A run is a seed: the seed draws the ensemble, the network's delays, the
//! faults and their timing, and the same seed replays the same run exactly
//! (a hash of the event trace checks it). Today it drives the election
//! ([`election`]); Zab's cores join it in the next part.

#![forbid(unsafe_code)]

pub mod election;
mod rng;

pub use rng::Rng;
