//! Command-line parsing (by hand: a dozen flags do not justify clap's compile
//! time on a shared two-core machine).
//!
//! Flags take their value as the next argument or after `=`. Counts accept the
//! decimal suffixes `k`/`m` (`1m` = 1,000,000), sizes the binary ones
//! (`1k` = 1024), durations `ms`/`s`/`m` (a bare number is seconds).

use std::time::Duration;

/// The help text.
pub const USAGE: &str = "\
zk-bench: load generator for any ZooKeeper-compatible server (real wire protocol)

USAGE:
  zk-bench run  [OPTIONS]   timed or counted load: create / set / get / mixed
  zk-bench load [OPTIONS]   create --znodes znodes of --payload bytes as fast as possible
  zk-bench wait [OPTIONS]   poll until getData(--path) succeeds; prints the time it took

COMMON OPTIONS (run, load):
  --server HOST:PORT     server address; a comma-separated list (an ensemble) deals
                         the measured run's sessions round-robin over the servers
                         (set-up and clean-up go through the first)  [127.0.0.1:2181]
  --sessions N           concurrent sessions (connections)   [16]
  --in-flight M          pipelined requests per session      [32]
  --threads T            client event-loop threads           [1]
  --payload BYTES        znode data size (1k = 1024)         [100]
  --prefix PATH          root of every znode the tool uses   [/zk-bench | /zk-bench-load]
  --session-timeout MS   requested session timeout           [30000]
  --json                 print the result as one JSON object on stdout
  --quiet                no progress line on stderr

RUN OPTIONS:
  --op KIND              create | set | get | mixed           [mixed]
  --read-ratio R         share of getData in mixed (0..1)    [0.9]
  --keys K               key space for set/get/mixed         [10000]
  --duration D           measured time (10s, 500ms, 2m)      [10s]
  --ops N                stop after N ops issued after the warm-up, instead of a duration
  --warmup D             ops during this first period are not measured [1s]
  --rate R               fixed-rate (open-loop) load instead of closed loop: R ops/s in total
                         over all sessions (2000, 50k, 1.5m). Op k of the run is due at
                         start + k/R, dealt round-robin to the sessions (each sends R/sessions
                         per second). An op goes out when it is due and its session has a free
                         --in-flight slot; if none is free it waits (never dropped). Latency is
                         measured from the op's SCHEDULED time, not from when it was sent, so a
                         stalled server is charged for the queueing it causes (no coordinated
                         omission). Reports the offered rate and the achieved ops/s, and warns
                         (stderr; JSON \"rate_shortfall\": true) if achieved falls more than 5%
                         short; --sessions x --in-flight must cover R x latency. [off]
  --no-setup             do not create the prefix and the K keys first
  --cleanup              --op create only: afterwards, delete every znode the run created
                         (unmeasured, same sessions x in flight; reports cleanup_s and
                         cleanup_deleted), so the tree is as it was before the run;
                         announced on stderr (\"zk-bench: cleanup: ...\") even with --quiet

LOAD OPTIONS:
  --znodes K             how many znodes to create (1m = 1,000,000) [1m]
  --fanout F             children per parent: PREFIX/pJ/nI    [1000]

WAIT OPTIONS:
  --server HOST:PORT, --path PATH [/], --timeout D [60s]

Keys: run uses PREFIX/k/<i> for set/get and PREFIX/c/<run>-<session>-<n> for create;
load uses PREFIX/p<i/F>/n<i>. Existing znodes (NODEEXISTS) are counted, not errors;
so are znodes the clean-up finds already gone (NONODE, \"missing\").
";

/// What the `run` command sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OpMix {
    /// create of fresh znodes.
    Create,
    /// setData on random keys.
    SetData,
    /// getData on random keys.
    GetData,
    /// getData with probability `read_ratio`, else setData.
    Mixed {
        /// Share of reads, 0..=1.
        read_ratio: f64,
    },
}

impl OpMix {
    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            OpMix::Create => "create",
            OpMix::SetData => "set",
            OpMix::GetData => "get",
            OpMix::Mixed { .. } => "mixed",
        }
    }
}

/// When a `run` stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// After this long (measured, after the warm-up).
    Duration(Duration),
    /// After this many ops (warm-up included).
    Ops(u64),
}

/// Options shared by `run` and `load`.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    /// Server address, `host:port`, or several, comma-separated (run: the
    /// sessions are dealt over them).
    pub server: String,
    /// Number of sessions.
    pub sessions: usize,
    /// Requests in flight per session.
    pub in_flight: usize,
    /// Event-loop threads.
    pub threads: usize,
    /// Data size in bytes.
    pub payload: usize,
    /// Root path.
    pub prefix: String,
    /// Requested session timeout, ms.
    pub session_timeout_ms: i32,
    /// JSON output.
    pub json: bool,
    /// No progress line.
    pub quiet: bool,
}

/// `zk-bench run`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunArgs {
    /// Shared options.
    pub common: Common,
    /// The op mix.
    pub mix: OpMix,
    /// Key space for set/get.
    pub keys: u64,
    /// When to stop.
    pub limit: Limit,
    /// Unmeasured warm-up.
    pub warmup: Duration,
    /// Whether to create the prefix and keys first.
    pub setup: bool,
    /// `--op create` only: delete the run's znodes afterwards (unmeasured).
    pub cleanup: bool,
    /// Fixed-rate (open-loop) load: ops per second over all sessions (None: closed loop).
    pub rate: Option<f64>,
}

/// `zk-bench load`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadArgs {
    /// Shared options.
    pub common: Common,
    /// How many znodes.
    pub znodes: u64,
    /// Children per parent.
    pub fanout: u64,
}

/// `zk-bench wait`.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitArgs {
    /// Server address.
    pub server: String,
    /// The znode to read.
    pub path: String,
    /// Give up after this long.
    pub timeout: Duration,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Timed / counted load.
    Run(RunArgs),
    /// Bulk create.
    Load(LoadArgs),
    /// Wait until serving.
    Wait(WaitArgs),
    /// Print the usage.
    Help,
}

/// Parses a count: digits with an optional `k` (10^3), `m` (10^6) or `g` (10^9).
pub fn parse_count(s: &str) -> Result<u64, String> {
    parse_scaled(s, 1000).map_err(|()| format!("invalid count {s:?} (e.g. 5000, 10k, 1m)"))
}

/// Parses an op rate (ops per second): a positive number, fractions allowed,
/// with an optional `k` (10^3), `m` (10^6) or `g` (10^9): `2000`, `50k`, `1.5m`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let err = || format!("invalid rate {s:?}: ops per second above 0 (e.g. 2000, 50k, 1.5m)");
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        Some((i, 'g' | 'G')) => (&t[..i], 1e9),
        _ => (t, 1.0),
    };
    // Digits and at most one point only: no sign, exponent, "inf" or "NaN".
    if num.is_empty()
        || !num.chars().all(|c| c.is_ascii_digit() || c == '.')
        || num.matches('.').count() > 1
        || num == "."
    {
        return Err(err());
    }
    let v = num.parse::<f64>().map_err(|_| err())? * mult;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(err())
    }
}

/// Parses a size in bytes: digits with an optional `k` (1024) or `m` (1024^2).
pub fn parse_size(s: &str) -> Result<u64, String> {
    parse_scaled(s.trim_end_matches(['b', 'B']), 1024)
        .map_err(|()| format!("invalid size {s:?} (e.g. 100, 1k)"))
}

fn parse_scaled(s: &str, base: u64) -> Result<u64, ()> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], base),
        Some((i, 'm' | 'M')) => (&s[..i], base * base),
        Some((i, 'g' | 'G')) => (&s[..i], base * base * base),
        _ => (s, 1),
    };
    let n: u64 = digits.parse().map_err(|_| ())?;
    n.checked_mul(mult).ok_or(())
}

/// Parses a duration: a number (fractions allowed) with `ms`, `s`, `m` or no unit (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {s:?} (e.g. 10s, 500ms, 2m)");
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| err())?;
    if !v.is_finite() || v < 0.0 {
        return Err(err());
    }
    Duration::try_from_secs_f64(v * scale).map_err(|_| err())
}

fn parse_mix(s: &str) -> Result<OpMix, String> {
    Ok(match s {
        "create" => OpMix::Create,
        "set" | "setData" | "setdata" | "write" => OpMix::SetData,
        "get" | "getData" | "getdata" | "read" => OpMix::GetData,
        "mixed" | "mix" => OpMix::Mixed { read_ratio: 0.9 },
        _ => return Err(format!("unknown --op {s:?}: create, set, get or mixed")),
    })
}

fn check_path(p: &str) -> Result<String, String> {
    if !p.starts_with('/') || (p.len() > 1 && p.ends_with('/')) || p.contains("//") {
        return Err(format!("invalid znode path {p:?}"));
    }
    Ok(p.to_owned())
}

/// Splits `--flag=value` / `--flag value` pairs; flags without a value are listed in `switches`.
struct Flags<'a> {
    args: std::iter::Peekable<std::slice::Iter<'a, String>>,
}

impl<'a> Flags<'a> {
    /// The next `(flag, value)`; value is `None` for a switch.
    fn next(&mut self, switches: &[&str]) -> Result<Option<(String, Option<String>)>, String> {
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if !arg.starts_with("--") && arg != "-h" {
            return Err(format!("unexpected argument {arg:?}"));
        }
        if let Some((flag, value)) = arg.split_once('=') {
            return Ok(Some((flag.to_owned(), Some(value.to_owned()))));
        }
        if switches.contains(&arg.as_str()) {
            return Ok(Some((arg.clone(), None)));
        }
        match self.args.next() {
            Some(v) => Ok(Some((arg.clone(), Some(v.clone())))),
            None => Err(format!("{arg} needs a value")),
        }
    }
}

fn positive(flag: &str, n: u64) -> Result<u64, String> {
    if n == 0 {
        Err(format!("{flag} must be at least 1"))
    } else {
        Ok(n)
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err("missing command: run, load or wait (see --help)".into());
    };
    let cmd = cmd.as_str();
    if matches!(cmd, "-h" | "--help" | "help") {
        return Ok(Command::Help);
    }
    if !matches!(cmd, "run" | "load" | "wait") {
        return Err(format!("unknown command {cmd:?}: run, load or wait"));
    }
    let mut o = Opts::new(cmd);
    let mut flags = Flags {
        args: rest.iter().peekable(),
    };
    let switches = [
        "--json",
        "--quiet",
        "--no-setup",
        "--cleanup",
        "--help",
        "-h",
    ];
    while let Some((flag, value)) = flags.next(&switches)? {
        let v = value.unwrap_or_default();
        if matches!(flag.as_str(), "--help" | "-h") {
            return Ok(Command::Help);
        }
        if !o.common_flag(cmd, &flag, v.clone())? {
            o.command_flag(cmd, &flag, v)?;
        }
    }
    o.finish(cmd)
}

/// `flag` applies only to the commands `cmds`.
fn only(cmd: &str, flag: &str, cmds: &[&str]) -> Result<(), String> {
    if cmds.contains(&cmd) {
        Ok(())
    } else {
        Err(format!("{flag} does not apply to `{cmd}`"))
    }
}

/// The options read so far, before they become a [`Command`].
struct Opts {
    common: Common,
    mix: OpMix,
    read_ratio: Option<f64>,
    keys: u64,
    duration: Duration,
    ops: Option<u64>,
    warmup: Duration,
    setup: bool,
    cleanup: bool,
    rate: Option<f64>,
    znodes: u64,
    fanout: u64,
    path: String,
    timeout: Duration,
}

impl Opts {
    /// The defaults of `cmd`.
    fn new(cmd: &str) -> Opts {
        Opts {
            common: Common {
                server: "127.0.0.1:2181".into(),
                sessions: 16,
                in_flight: 32,
                threads: 1,
                payload: 100,
                prefix: if cmd == "load" {
                    "/zk-bench-load".into()
                } else {
                    "/zk-bench".into()
                },
                session_timeout_ms: 30_000,
                json: false,
                quiet: false,
            },
            mix: OpMix::Mixed { read_ratio: 0.9 },
            read_ratio: None,
            keys: 10_000,
            duration: Duration::from_secs(10),
            ops: None,
            warmup: Duration::from_secs(1),
            setup: true,
            cleanup: false,
            rate: None,
            znodes: 1_000_000,
            fanout: 1000,
            path: "/".to_owned(),
            timeout: Duration::from_secs(60),
        }
    }

    /// The options every command takes: false if `flag` is not one.
    fn common_flag(&mut self, cmd: &str, flag: &str, v: String) -> Result<bool, String> {
        match flag {
            "--server" => self.common.server = v,
            "--sessions" => {
                only(cmd, flag, &["run", "load"])?;
                self.common.sessions = positive(flag, parse_count(&v)?)? as usize;
            }
            "--in-flight" => {
                only(cmd, flag, &["run", "load"])?;
                self.common.in_flight = positive(flag, parse_count(&v)?)? as usize;
            }
            "--threads" => {
                only(cmd, flag, &["run", "load"])?;
                self.common.threads = positive(flag, parse_count(&v)?)? as usize;
            }
            "--payload" => {
                only(cmd, flag, &["run", "load"])?;
                let n = parse_size(&v)?;
                if n > zk_jute::DEFAULT_MAX_PACKET as u64 - 1024 {
                    return Err(format!("--payload {n} exceeds jute.maxbuffer"));
                }
                self.common.payload = n as usize;
            }
            "--prefix" => {
                only(cmd, flag, &["run", "load"])?;
                self.common.prefix = check_path(&v)?;
                if self.common.prefix == "/" {
                    return Err("--prefix must not be /".into());
                }
            }
            "--session-timeout" => {
                only(cmd, flag, &["run", "load"])?;
                self.common.session_timeout_ms = i32::try_from(parse_count(&v)?)
                    .map_err(|_| format!("--session-self.timeout {v} is too large"))?;
            }
            "--json" => {
                only(cmd, flag, &["run", "load"])?;
                self.common.json = true;
            }
            "--quiet" => self.common.quiet = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The options of `run`, `load` and `wait`.
    fn command_flag(&mut self, cmd: &str, flag: &str, v: String) -> Result<(), String> {
        match flag {
            "--op" => {
                only(cmd, flag, &["run"])?;
                self.mix = parse_mix(&v)?;
            }
            "--read-ratio" => {
                only(cmd, flag, &["run"])?;
                let r: f64 = v
                    .parse()
                    .map_err(|_| format!("invalid --read-ratio {v:?}"))?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("--read-ratio {r} is not within 0..1"));
                }
                self.read_ratio = Some(r);
            }
            "--keys" => {
                only(cmd, flag, &["run"])?;
                self.keys = positive(flag, parse_count(&v)?)?;
            }
            "--duration" => {
                only(cmd, flag, &["run"])?;
                self.duration = parse_duration(&v)?;
            }
            "--ops" => {
                only(cmd, flag, &["run"])?;
                self.ops = Some(positive(flag, parse_count(&v)?)?);
            }
            "--warmup" => {
                only(cmd, flag, &["run"])?;
                self.warmup = parse_duration(&v)?;
            }
            "--no-setup" => {
                only(cmd, flag, &["run"])?;
                self.setup = false;
            }
            "--cleanup" => {
                only(cmd, flag, &["run"])?;
                self.cleanup = true;
            }
            "--rate" => {
                only(cmd, flag, &["run"])?;
                self.rate = Some(parse_rate(&v)?);
            }
            "--znodes" => {
                only(cmd, flag, &["load"])?;
                self.znodes = positive(flag, parse_count(&v)?)?;
            }
            "--fanout" => {
                only(cmd, flag, &["load"])?;
                self.fanout = positive(flag, parse_count(&v)?)?;
            }
            "--path" => {
                only(cmd, flag, &["wait"])?;
                self.path = check_path(&v)?;
            }
            "--timeout" => {
                only(cmd, flag, &["wait"])?;
                self.timeout = parse_duration(&v)?;
            }
            _ => return Err(format!("unknown option {flag:?} (see --help)")),
        }
        Ok(())
    }

    /// The command, once every option is read.
    fn finish(mut self, cmd: &str) -> Result<Command, String> {
        if let Some(r) = self.read_ratio {
            match self.mix {
                OpMix::Mixed { .. } => self.mix = OpMix::Mixed { read_ratio: r },
                _ => return Err("--read-ratio applies only to --op mixed".into()),
            }
        }
        if self.cleanup && self.mix != OpMix::Create {
            return Err(format!(
                "--cleanup applies only to --op create (it deletes the znodes the run created; \
             --op {} creates none)",
                self.mix.name()
            ));
        }
        let Opts {
            common,
            mix,
            cleanup,
            keys,
            duration,
            ops,
            warmup,
            setup,
            rate,
            znodes,
            fanout,
            path,
            timeout,
            ..
        } = self;
        Ok(match cmd {
            "run" => Command::Run(RunArgs {
                common,
                mix,
                keys,
                limit: match ops {
                    Some(n) => Limit::Ops(n),
                    None => Limit::Duration(duration),
                },
                warmup,
                setup,
                cleanup,
                rate,
            }),
            "load" => Command::Load(LoadArgs {
                common,
                znodes,
                fanout,
            }),
            _ => Command::Wait(WaitArgs {
                server: common.server,
                path,
                timeout,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, String> {
        let v: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        parse(&v)
    }

    #[test]
    fn run_defaults() {
        let Command::Run(r) = p("run").unwrap() else {
            panic!()
        };
        assert_eq!(r.common.server, "127.0.0.1:2181");
        assert_eq!((r.common.sessions, r.common.in_flight), (16, 32));
        assert_eq!(r.common.prefix, "/zk-bench");
        assert_eq!(r.mix, OpMix::Mixed { read_ratio: 0.9 });
        assert_eq!(r.limit, Limit::Duration(Duration::from_secs(10)));
        assert_eq!(r.warmup, Duration::from_secs(1));
        assert!(r.setup && !r.common.json && !r.cleanup);
        assert_eq!(r.rate, None, "closed loop unless --rate is given");
    }

    #[test]
    fn rate() {
        for (arg, want) in [
            ("2000", 2000.0),
            ("50k", 50_000.0),
            ("50K", 50_000.0),
            ("1.5m", 1_500_000.0),
            ("2.5k", 2500.0),
            ("0.5", 0.5),
            ("1g", 1e9),
        ] {
            assert_eq!(parse_rate(arg), Ok(want), "{arg}");
            let Command::Run(r) = p(&format!("run --op set --rate {arg}")).unwrap() else {
                panic!()
            };
            assert_eq!(r.rate, Some(want), "{arg}");
            let Command::Run(r) = p(&format!("run --rate={arg} --sessions 4")).unwrap() else {
                panic!()
            };
            assert_eq!((r.rate, r.common.sessions), (Some(want), 4));
        }
        for bad in [
            "0", "0k", "0.0", "-5", "-1k", "", "k", ".", "1.2.3", "abc", "inf", "NaN", "1e3",
            "10x", "1kk", "+5",
        ] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("invalid rate"), "{bad:?}: {e}");
            assert!(p(&format!("run --rate={bad}")).is_err(), "{bad:?}");
        }
        assert!(p("run --rate").unwrap_err().contains("needs a value"));
        assert!(p("load --rate 1k").unwrap_err().contains("does not apply"));
        assert!(p("wait --rate 1k").is_err());
        // With an op count or a duration, and with --cleanup.
        let Command::Run(r) = p("run --op create --rate 20k --ops 1k --cleanup").unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.rate, r.limit, r.cleanup),
            (Some(20e3), Limit::Ops(1000), true)
        );
        assert!(USAGE.contains("--rate R") && USAGE.contains("SCHEDULED"));
    }

    #[test]
    fn cleanup_only_with_create() {
        for ok in [
            "run --op create --cleanup",
            "run --cleanup --op create --duration 2s",
            "run --op=create --cleanup --no-setup --ops 10 --json",
        ] {
            let Command::Run(r) = p(ok).unwrap() else {
                panic!()
            };
            assert!(r.cleanup && r.mix == OpMix::Create, "{ok}");
        }
        let Command::Run(r) = p("run --op create").unwrap() else {
            panic!()
        };
        assert!(!r.cleanup);
        for op in ["set", "get", "mixed"] {
            let e = p(&format!("run --op {op} --cleanup")).unwrap_err();
            assert!(
                e.contains("--cleanup applies only to --op create") && e.contains(op),
                "{e}"
            );
        }
        // The default op is mixed.
        assert!(
            p("run --cleanup")
                .unwrap_err()
                .contains("only to --op create")
        );
        assert!(p("load --cleanup").unwrap_err().contains("does not apply"));
        assert!(p("wait --cleanup").is_err());
        assert!(USAGE.contains("--cleanup"));
    }

    #[test]
    fn run_full() {
        let Command::Run(r) = p("run --server=localhost:2182 --sessions 4 --in-flight 1k \
             --op mixed --read-ratio 0.5 --payload 1k --keys 10k --ops 2m --warmup 0 \
             --no-setup --json --threads 2 --prefix /b/x")
        .unwrap() else {
            panic!()
        };
        assert_eq!(r.common.server, "localhost:2182");
        assert_eq!((r.common.sessions, r.common.in_flight), (4, 1000));
        assert_eq!((r.common.payload, r.common.threads), (1024, 2));
        assert_eq!(r.mix, OpMix::Mixed { read_ratio: 0.5 });
        assert_eq!((r.keys, r.limit), (10_000, Limit::Ops(2_000_000)));
        assert_eq!(r.warmup, Duration::ZERO);
        assert!(!r.setup && r.common.json);
        assert_eq!(r.common.prefix, "/b/x");
    }

    #[test]
    fn load_and_wait() {
        let Command::Load(l) = p("load --znodes 1m --payload 100 --fanout 500").unwrap() else {
            panic!()
        };
        assert_eq!(
            (l.znodes, l.fanout, l.common.payload),
            (1_000_000, 500, 100)
        );
        assert_eq!(l.common.prefix, "/zk-bench-load");
        let Command::Wait(w) = p("wait --server h:1 --path /a/b --timeout 500ms").unwrap() else {
            panic!()
        };
        assert_eq!(w.path, "/a/b");
        assert_eq!(w.timeout, Duration::from_millis(500));
        assert_eq!(p("--help").unwrap(), Command::Help);
        assert_eq!(p("run -h").unwrap(), Command::Help);
    }

    #[test]
    fn op_names() {
        for (s, m) in [
            ("create", OpMix::Create),
            ("set", OpMix::SetData),
            ("setData", OpMix::SetData),
            ("get", OpMix::GetData),
            ("getData", OpMix::GetData),
        ] {
            let Command::Run(r) = p(&format!("run --op {s}")).unwrap() else {
                panic!()
            };
            assert_eq!(r.mix, m);
        }
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "bench",
            "run --sessions",
            "run --sessions 0",
            "run --sessions x",
            "run --op delete",
            "run --op get --read-ratio 0.5",
            "run --read-ratio 1.5",
            "run --duration 10h",
            "run --prefix nope",
            "run --prefix /",
            "run --prefix /a/",
            "run --znodes 5",
            "load --op get",
            "wait --sessions 3",
            "run --payload 2m",
            "run --bogus 1",
            "run stray",
        ] {
            assert!(p(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn units() {
        assert_eq!(parse_count("10k"), Ok(10_000));
        assert_eq!(parse_count("1M"), Ok(1_000_000));
        assert_eq!(parse_count("7"), Ok(7));
        assert!(parse_count("1.5k").is_err());
        assert!(parse_count("99999999999999999999g").is_err());
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
