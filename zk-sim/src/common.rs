//! What both simulators share: the connection state between two servers and
//! the trace (a rolling log of events and the hash that proves a replay).

use std::collections::BTreeMap;

use zk_election::Sid;

/// The connection between two servers (one TCP connection per pair, as
/// QuorumCnxManager keeps).
#[derive(Debug, Clone, Default)]
pub(crate) struct Pair {
    /// The connection is established.
    pub up: bool,
    /// A dial is in flight.
    pub connecting: bool,
    /// Bumped at every break: deliveries of an older generation are lost.
    pub generation: u64,
    /// A partition separates the two: no connection can form.
    pub blocked: bool,
}

/// Every pair's connection, keyed by the unordered pair.
#[derive(Debug, Default)]
pub(crate) struct Pairs(BTreeMap<(Sid, Sid), Pair>);

impl Pairs {
    /// A copy of the pair's state.
    pub fn get(&mut self, a: Sid, b: Sid) -> Pair {
        self.get_mut(a, b).clone()
    }

    /// The pair's state.
    pub fn get_mut(&mut self, a: Sid, b: Sid) -> &mut Pair {
        self.0.entry((a.min(b), a.max(b))).or_default()
    }

    /// Ends every partition.
    pub fn unblock_all(&mut self) {
        for p in self.0.values_mut() {
            p.blocked = false;
        }
    }
}

/// The events of a run: an FNV-1a hash of all of them (two runs of one seed
/// must agree) and the last few thousand lines for a failure report.
#[derive(Debug)]
pub(crate) struct Trace {
    hash: u64,
    lines: Vec<String>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            lines: Vec::new(),
        }
    }
}

impl Trace {
    /// Records one line.
    pub fn note(&mut self, line: String) {
        for b in line.bytes() {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        if self.lines.len() > 4000 {
            self.lines.drain(..2000);
        }
        self.lines.push(line);
    }

    /// The hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The last `n` lines kept, joined (all of them with `ZK_SIM_TRACE` set).
    pub fn tail(&self, n: usize) -> String {
        if std::env::var_os("ZK_SIM_TRACE").is_some() {
            return self.all();
        }
        let start = self.lines.len().saturating_sub(n);
        self.lines[start..].join("\n")
    }

    /// Every line kept, joined.
    pub fn all(&self) -> String {
        self.lines.join("\n")
    }
}
