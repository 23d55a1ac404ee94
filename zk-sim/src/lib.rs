//! Deterministic simulation of a ZooKeeper ensemble over the sans-I/O
//! protocol cores (test-only).
//!
//! A run is a seed: the seed draws the ensemble, the network's delays, the
//! faults and their timing, and the same seed replays the same run exactly
//! (a hash of the event trace checks it). [`election`] drives election cores
//! alone (with a stand-in for Zab's timeouts); [`ensemble`] drives whole
//! peers: election and Zab over a simulated network and disk.

#![forbid(unsafe_code)]

mod common;
pub mod election;
pub mod ensemble;
mod rng;

pub use rng::Rng;
