#!/usr/bin/env python3
"""Side-by-side comparison: Apache ZooKeeper 3.8 vs our zk-server, same machine, same disk.

Both servers get the same zoo.cfg (forceSync left at its default, on), a fresh data
directory in one temp dir, and the same zk-bench loads, run in alternation
(Apache, ours, Apache, ours, ...) so that a noisy neighbour hurts both alike.
Prints every figure and the ratio ours/Apache:

  * throughput and p50 / p99 / p99.9 latency of each workload (create, set, get, mixed),
    plus the server's CPU time per op (from /proc/<pid>/stat);
  * latency at the SAME offered load (set@20k): the closed-loop workloads run each server at
    its own maximum throughput, so their latencies are taken at different loads (the faster
    server under more load). A workload with @RATE runs zk-bench --rate: a fixed schedule of
    RATE ops/s in total (open loop), latency measured from each op's scheduled time, so a
    stall is charged for the queueing it causes. The round lines show the offered and the
    achieved rate of each server; a server that falls more than 5% short is flagged
    (SHORTFALL), and its latencies then include the growing backlog;
  * bulk load of --znodes znodes of --payload bytes: znodes/s, RSS after the load
    (VmRSS, the JVM included), data directory size (du: allocated and apparent);
  * restart-to-serving: SIGKILL, start again on the same data dir, time until a getData
    of the last loaded znode succeeds; RSS after the restart.

Every workload must see the same tree on both servers. The create workload adds fresh
znodes (PREFIX/c/<run>-<session>-<n>) as fast as the server takes them, so a faster server
would otherwise end a create run with more znodes than the slower one (3x more was seen:
1.5M vs 0.5M) and run set/get/mixed and every later round on a bigger tree (bigger
snapshots, more memory traffic) than the other. So every create run, the pre-warm one
included, uses zk-bench --cleanup: once the measured run is over (its figures final),
zk-bench deletes every znode it created, unmeasured, and each server is back to the set-up
tree (PREFIX, PREFIX/k/0..keys-1, PREFIX/c) before the next workload. The log line of each
create run shows the clean-up time, and every run's log line the server's zk_znode_count
(mntr) afterwards, which must match between the servers. The server CPU of a create run is
sampled when zk-bench announces the clean-up, so the deletes are not charged to the creates.

If our server is missing or does not start, says so and prints Apache's figures alone.

Usage (from the repository root):
  python3 scripts/compare.py                       # 10 s runs, 2 rounds, 1M znodes
  python3 scripts/compare.py --duration 3 --rounds 1 --znodes 100k   # quick look
  python3 scripts/compare.py --apache-only         # validate the harness without our server
  python3 scripts/compare.py --json /tmp/compare.json   # also write every raw figure
  python3 scripts/compare.py --workloads set@30k,mixed:16x32@50k --skip-load   # fixed rates only
Needs: java + Debian's zookeeper package (apt-get install -y zookeeper zookeeper-bin), cargo.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ZK_JAR = "/usr/share/java/zookeeper.jar"
SLF4J = "/usr/share/java/slf4j-simple.jar"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def parse_count(s):
    s = s.strip().lower()
    mult = {"k": 1000, "m": 1000_000}.get(s[-1:], 1)
    return int(s[:-1] if mult > 1 else s) * mult


def parse_rate(s):
    """An ops/s figure as zk-bench --rate takes it: 2000, 20k, 1.5m (above 0)."""
    t = s.strip().lower()
    mult = {"k": 1e3, "m": 1e6, "g": 1e9}.get(t[-1:], 1.0)
    num = t[:-1] if mult != 1.0 else t
    if not num or num == "." or num.count(".") > 1 or not all(c.isdigit() or c == "." for c in num):
        raise ValueError(f"invalid rate {s!r} (e.g. 2000, 20k, 1.5m)")
    v = float(num) * mult
    if v <= 0:
        raise ValueError(f"invalid rate {s!r}: must be above 0")
    return v


def parse_workload(wl):
    """OP[:SESSIONSxIN_FLIGHT][@RATE] -> (op, (sessions, in_flight) or None, rate text or None).
    set:1x1 = one session, one in flight; set@20k = the default shape at 20,000 ops/s offered."""
    spec, at, rate = wl.partition("@")
    op, colon, shape = spec.partition(":")
    if not op or (colon and not shape) or (at and not rate):
        raise ValueError(f"invalid workload {wl!r}: OP[:SESSIONSxIN_FLIGHT][@RATE]")
    sizes = None
    if shape:
        try:
            sess, infl = shape.split("x")
            sizes = (int(sess), int(infl))
        except ValueError:
            raise ValueError(f"invalid workload {wl!r}: the shape is SESSIONSxIN_FLIGHT, e.g. 1x1") from None
        if min(sizes) < 1:
            raise ValueError(f"invalid workload {wl!r}: sessions and in-flight must be at least 1")
    if rate:
        parse_rate(rate)
        rate = rate.strip()
    return op, sizes, rate or None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, key):
    """A kB figure from /proc/<pid>/status (VmRSS, VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def proc_cpu_s(pid):
    """User + system CPU seconds of a process (all its threads)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def dir_files(path):
    """(file name, lstat) of every file below path (files that vanish meanwhile are skipped)."""
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                yield f, os.lstat(os.path.join(root, f))
            except OSError:
                continue


def dir_size_mib(path):
    """(allocated, apparent) size of a directory tree in MiB, like du and du -b."""
    alloc = apparent = 0
    for _name, st in dir_files(path):
        alloc += st.st_blocks * 512
        apparent += st.st_size
    return alloc / 2**20, apparent / 2**20


def dir_breakdown(path):
    """{kind: [files, allocated MiB]} where kind is a file name up to its first dot (log, snapshot, ...)."""
    kinds = {}
    for name, st in dir_files(path):
        k = kinds.setdefault(name.split(".")[0], [0, 0.0])
        k[0] += 1
        k[1] += st.st_blocks * 512 / 2**20
    return kinds


def git_describe():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "zk-server", "zk-tree", "zk-txnlog",
                                "zk-jute"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "?"


class Server:
    """One server process with its own data dir and port."""

    def __init__(self, name, workdir, bench):
        self.name = name
        self.dir = Path(workdir) / name
        self.bench = bench
        self.proc = None
        self.port = None
        self.logf = None
        self.starts = 0

    def fresh(self):
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "data").mkdir(parents=True)
        self.port = free_port()
        cfg = self.dir / "zoo.cfg"
        cfg.write_text(
            "tickTime=2000\n"
            f"dataDir={self.dir / 'data'}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            "maxClientCnxns=0\n"
            "4lw.commands.whitelist=*\n"
            "admin.enableServer=false\n"
        )
        return cfg

    def command(self, cfg):
        raise NotImplementedError

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def start(self, probe_path="/", timeout=120.0):
        """Starts the process and waits until getData(probe_path) succeeds.
        Returns the seconds from spawn to serving; raises RuntimeError if it does not serve."""
        cfg = self.dir / "zoo.cfg"
        self.starts += 1
        self.logf = open(self.dir / f"server-{self.starts}.log", "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(cfg), stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        waiter = subprocess.Popen([self.bench, "wait", "--server", self.addr, "--path", probe_path,
                                   "--timeout", f"{timeout}s"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while True:
            if waiter.poll() is not None:
                break
            if self.proc.poll() is not None:
                waiter.kill()
                waiter.wait()
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before serving; "
                                   f"log tail:\n{self.log_tail()}")
            time.sleep(0.002)
        elapsed = time.monotonic() - t0
        if waiter.returncode != 0:
            err = waiter.stderr.read().strip()
            self.stop()
            raise RuntimeError(f"{self.name} did not serve: {err}\nlog tail:\n{self.log_tail()}")
        return elapsed

    def log_tail(self, n=15):
        try:
            lines = sorted(self.dir.glob("server-*.log"))[-1].read_text(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except (OSError, IndexError):
            return "(no log)"

    def rss(self):
        return proc_status(self.proc.pid, "VmRSS")

    def hwm(self):
        return proc_status(self.proc.pid, "VmHWM")

    def cpu(self):
        return proc_cpu_s(self.proc.pid)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Apache(Server):
    def __init__(self, workdir, bench, jvm_opts):
        super().__init__("apache", workdir, bench)
        self.jvm_opts = jvm_opts

    def command(self, cfg):
        return (["java"] + self.jvm_opts.split()
                + ["-cp", f"{ZK_JAR}:{SLF4J}", "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg)])


class Ours(Server):
    def __init__(self, workdir, bench, binary):
        super().__init__("ours", workdir, bench)
        self.binary = binary

    def command(self, cfg):
        return [str(self.binary), str(cfg)]


def cargo_target():
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def build(packages):
    """cargo build --release -p ...; returns None or the error text."""
    cmd = ["cargo", "build", "--release", "--quiet"]
    for p in packages:
        cmd += ["-p", p]
    log(" ".join(cmd))
    r = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return None if r.returncode == 0 else r.stdout[-3000:]


CLEANUP_MARK = "zk-bench: cleanup:"


def bench_json(bench, args, on_cleanup=None):
    """Runs zk-bench with --json --quiet and returns its JSON. on_cleanup(), if given, is called
    when zk-bench announces its clean-up on stderr (the measured load is over by then)."""
    p = subprocess.Popen([bench] + args + ["--json", "--quiet"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    err = []
    for line in p.stderr:  # the JSON on stdout is one short line: no pipe deadlock
        if on_cleanup is not None and line.startswith(CLEANUP_MARK):
            on_cleanup()
        else:
            err.append(line)
    out = p.stdout.read()
    p.wait()
    if p.returncode != 0:
        raise RuntimeError(f"zk-bench {' '.join(args)} failed ({p.returncode}): {''.join(err).strip()}")
    return json.loads(out.strip().splitlines()[-1])


def znode_count(addr):
    """zk_znode_count from the mntr four-letter word (both configs whitelist it); None if unanswered."""
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=10) as c:
            c.sendall(b"mntr")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
    except OSError:
        return None
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("zk_znode_count"):
            return int(line.split()[1])
    return None


def cleanup_args(op):
    """--cleanup for every create run: each workload must see the same tree on both servers."""
    return ["--cleanup"] if op == "create" else []


def machine_info(workdir):
    info = {"cpus": os.cpu_count(), "kernel": platform.release()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["mem_gib"] = round(int(mem) / 2**20, 1)
    except OSError:
        pass
    try:
        df = subprocess.run(["df", "-T", str(workdir)], capture_output=True, text=True).stdout.splitlines()[-1].split()
        info["disk"] = f"{df[0]} ({df[1]})"
    except (OSError, IndexError):
        pass
    try:
        info["java"] = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except (OSError, IndexError):
        pass
    return info


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_ticks():
    """The machine's aggregate CPU counters from /proc/stat: (busy, steal, total) jiffies; None
    where unreadable. busy excludes idle, iowait and steal."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal, sum(f)


def cpu_share(t0, t1):
    """(busy %, steal %) of all CPUs between two cpu_ticks() samples. Steal is time a vCPU wanted
    to run and the host ran something else: on a VM it is the visible part of the host stalls."""
    if t0 is None or t1 is None or t1[2] <= t0[2]:
        return None, None
    total = t1[2] - t0[2]
    return 100.0 * (t1[0] - t0[0]) / total, 100.0 * (t1[1] - t0[1]) / total


PROBE_RECORD = 150  # bytes per probe write: about one small txn


def fsync_probe(workdir, seconds):
    """The machine's own write-latency floor: pwrite PROBE_RECORD bytes + fdatasync in a loop on
    a preallocated file in workdir (the servers' disk), as a txn log does with one write in
    flight. Returns (n, p50_ms, p99_ms, p999_ms, max_ms)."""
    path = Path(workdir) / "fsync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        block = b"\0" * (1 << 20)
        for _ in range(64):  # 64 MiB written and synced first: no allocation on the timed path
            os.write(fd, block)
        os.fsync(fd)
        rec, off, lat = b"x" * PROBE_RECORD, 0, []
        end = time.monotonic() + seconds
        while time.monotonic() < end and off + PROBE_RECORD < (64 << 20):
            t = time.perf_counter()
            os.pwrite(fd, rec, off)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
            off += PROBE_RECORD
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    lat.sort()
    n = len(lat)
    pct = lambda q: lat[min(n - 1, int(n * q))] * 1e3
    return n, pct(0.5), pct(0.99), pct(0.999), lat[-1] * 1e3


def machine_probe(workdir, seconds, per_cpu=False):
    """fsync_probe alone, then beside one busy CPU (a spinning process): the second is the floor
    any server's p99.9 sits on while a loaded run keeps the CPUs busy. On a VM whose host
    preempts busy vCPUs (seen on Firecracker: 0.2 ms alone, 5-15 ms beside one busy CPU) that
    floor, not the server, sets the p99.9 under load. per_cpu adds the probe pinned to each CPU
    in turn (idle machine otherwise): on a VM, the CPU that takes the disk's interrupts answers
    in microseconds, another one must first be woken from halt by the host (milliseconds now
    and then)."""
    out = {}
    cases = [("alone", None)]
    if per_cpu and hasattr(os, "sched_setaffinity"):
        cases += [(f"pinned_cpu{c}", c) for c in sorted(os.sched_getaffinity(0))]
    cases.append(("one_cpu_busy", None))
    mask = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    for label, cpu in cases:
        burner = None
        if label == "one_cpu_busy":
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.3)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        t0 = cpu_ticks()
        try:
            n, p50, p99, p999, mx = fsync_probe(workdir, seconds)
        finally:
            if cpu is not None:
                os.sched_setaffinity(0, mask)
            if burner is not None:
                burner.kill()
                burner.wait()
        busy, steal = cpu_share(t0, cpu_ticks())
        out[label] = {"syncs": n, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "max_ms": mx,
                      "cpu_busy_pct": busy, "steal_pct": steal}
        log(f"machine probe ({label}): {n} x ({PROBE_RECORD} B pwrite + fdatasync): p50 {p50:.3f} ms"
            f"  p99 {p99:.3f} ms  p99.9 {p999:.3f} ms  max {mx:.1f} ms  (steal {fmt_pct(steal)})")
    return out


def fmt_pct(v):
    return "-" if v is None else f"{v:.1f}%"


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}{unit}"
        if abs(v) >= 10:
            return f"{v:.1f}{unit}"
        return f"{v:.3f}{unit}"
    return f"{v}{unit}"


def ratio(ours, apache):
    if ours is None or apache in (None, 0):
        return "n/a"
    return f"{ours / apache:.2f}x"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def quiet(args):
    """Waits for the machine to be quiet before a measured phase: everything written so far (the
    previous run's log, a 1M-znode load's GBs) goes to the disk first, then `--cooldown` seconds
    pass. Without it the previous server's writeback ran under the next one's fsyncs (the ensemble
    comparison measured 35-38k writes/s right after Apache's run against 47-54k/s alone, with the
    same binary)."""
    os.sync()
    time.sleep(args.cooldown)


def run_workloads(servers, args, results):
    """Phase 1: the same timed loads against each server, in alternation."""
    base = ["--sessions", str(args.sessions), "--in-flight", str(args.in_flight),
            "--threads", str(args.threads), "--payload", str(args.payload), "--keys", str(args.keys)]
    live = [s for s in servers if s.proc is not None]
    def prepare(s, extra):
        try:
            return bench_json(s.bench, ["run", "--server", s.addr] + extra + base)
        except RuntimeError as e:
            if s.name != "ours":
                raise
            results["ours"]["errors"].append(f"set-up: {e}")
            log(f"ours: set-up failed: {e}")
            s.kill()
            return None

    for s in live:
        # Set-up once (prefix, PREFIX/k/0..keys, PREFIX/c); every measured run then skips it.
        prepare(s, ["--op", "get", "--ops", "1", "--warmup", "0"])
    base += ["--no-setup"]
    if args.prewarm > 0:
        # The JVM needs a while to JIT-compile its request path (round 1 was measured at half of
        # round 2 without this); every server gets the same unmeasured warm-up load.
        for s in live:
            for wl in ("mixed", "create"):
                if s.proc is not None:
                    j = prepare(s, ["--op", wl, "--duration", f"{args.prewarm}s", "--warmup", "0"]
                                + cleanup_args(wl))
                    if j is not None and j.get("cleanup"):
                        log(f"pre-warm create {s.name:<6} {j['completed']} znodes created,"
                            f" cleanup {j['cleanup_s']:.2f} s ({j['cleanup_deleted']} deleted);"
                            f" znodes now {znode_count(s.addr)}")
        log(f"pre-warmed every server with {args.prewarm} s of mixed and {args.prewarm} s of create")
    common = base + ["--duration", f"{args.duration}s", "--warmup", f"{args.warmup}s"]
    for rnd in range(1, args.rounds + 1):
        for wl in args.workloads:
            for s in servers:
                if s.proc is None:
                    continue
                quiet(args)
                cpu0 = s.cpu()
                ticks0 = cpu_ticks()
                at_cleanup = []  # the server's CPU when the measured load ended (create runs)
                try:
                    op, sizes, rate = parse_workload(wl)
                    extra = cleanup_args(op)
                    if sizes:
                        extra += ["--sessions", str(sizes[0]), "--in-flight", str(sizes[1])]
                    if rate:
                        extra += ["--rate", rate]
                    j = bench_json(s.bench, ["run", "--server", s.addr, "--op", op] + common + extra,
                                   on_cleanup=lambda: at_cleanup.append(s.cpu()))
                except RuntimeError as e:
                    log(f"{s.name} {wl} round {rnd}: {e}")
                    results[s.name]["errors"].append(f"{wl} round {rnd}: {e}")
                    continue
                cpu1 = at_cleanup[0] if at_cleanup else s.cpu()
                busy, steal = cpu_share(ticks0, cpu_ticks())
                znodes = znode_count(s.addr)
                # The CPU figure covers the whole run (warm-up included; the set-up was done
                # before), so divide by every request the run completed.
                total_ops = j["completed"]
                cpu_us = (cpu1 - cpu0) * 1e6 / total_ops if cpu0 is not None and cpu1 is not None and total_ops else None
                a = j["all"]
                rec = {"round": rnd, "ops_per_s": a["ops_per_s"], "p50_ms": a["p50_us"] / 1000,
                       "p99_ms": a["p99_us"] / 1000, "p999_ms": a["p999_us"] / 1000,
                       "max_ms": a["max_us"] / 1000, "errors": j["errors"], "cpu_us_per_op": cpu_us,
                       "client_cpu_us_per_op": j["client_cpu_s"] * 1e6 / total_ops if total_ops else None,
                       "loadavg": loadavg(), "znodes_after": znodes,
                       "machine_cpu_busy_pct": busy, "machine_steal_pct": steal}
                if rate:
                    rec.update({"offered_ops_per_s": j.get("offered_ops_per_s"),
                                "rate_shortfall": j.get("rate_shortfall"),
                                "send_lag_p99_ms": j.get("send_lag_p99_us", 0) / 1000})
                    thru = (f"offered {j.get('offered_ops_per_s') or 0:>8.0f} achieved {a['ops_per_s']:>8.0f} ops/s"
                            f"{' (SHORTFALL)' if j.get('rate_shortfall') else ''}")
                    lag = f"  client send lag p99 {rec['send_lag_p99_ms']:.2f} ms"
                else:
                    thru, lag = f"{a['ops_per_s']:>10.0f} ops/s", ""
                cleaned = ""
                if j.get("cleanup"):
                    rec["cleanup_s"], rec["cleanup_deleted"] = j["cleanup_s"], j["cleanup_deleted"]
                    cleaned = f"  cleanup {j['cleanup_s']:.2f} s ({j['cleanup_deleted']} deleted)"
                results[s.name]["runs"].setdefault(wl, []).append(rec)
                log(f"round {rnd} {wl:<6} {s.name:<6} {thru}  p50 {a['p50_us']/1000:.2f} ms"
                    f"  p99 {a['p99_us']/1000:.2f} ms  p99.9 {a['p999_us']/1000:.2f} ms  errors {j['errors']}"
                    f"{lag}{cleaned}  znodes {znodes}  (load {loadavg()}, CPUs busy {fmt_pct(busy)},"
                    f" steal {fmt_pct(steal)})")


def load_and_restart(s, args, results):
    """Phase 2 for one server: fresh start, bulk load, RSS, du, SIGKILL, restart time."""
    r = results[s.name]["load"]
    s.fresh()
    s.start()
    log(f"{s.name}: loading {args.znodes} znodes of {args.payload} B")
    j = bench_json(s.bench, ["load", "--server", s.addr, "--znodes", str(args.znodes), "--payload",
                             str(args.payload), "--sessions", str(args.sessions), "--in-flight",
                             str(args.in_flight), "--threads", str(args.threads)])
    r.update({"znodes": j["znodes"], "secs": j["secs"], "znodes_per_s": j["znodes_per_s"],
              "create_p99_ms": j["write"]["p99_us"] / 1000})
    time.sleep(args.settle)
    r["rss_mib"], r["hwm_mib"] = s.rss(), s.hwm()
    r["disk_mib"], r["disk_apparent_mib"] = dir_size_mib(s.dir / "data")
    r["disk_files"] = dir_breakdown(s.dir / "data")
    log(f"{s.name}: {j['znodes_per_s']:.0f} znodes/s, RSS {r['rss_mib']:.0f} MiB, data {r['disk_mib']:.0f} MiB")
    s.kill()
    r["restart_s"] = s.start(probe_path=j["last_path"], timeout=args.restart_timeout)
    time.sleep(args.settle)
    r["rss_after_restart_mib"] = s.rss()
    log(f"{s.name}: restart to serving {j['last_path']}: {r['restart_s']:.2f} s,"
        f" RSS after restart {r['rss_after_restart_mib']:.0f} MiB")
    s.stop()


def report(servers_by_name, results, args, info, ours_note):
    names = ["apache"] + (["ours"] if "ours" in servers_by_name else [])
    out = []
    p = out.append
    p("")
    p("== Apache ZooKeeper 3.8 vs ours ==")
    p(f"machine: {info.get('cpus')} CPUs ({info.get('cpu', '?')}), {info.get('mem_gib', '?')} GiB,"
      f" kernel {info.get('kernel')}, data on {info.get('disk', '?')}; shared and noisy: load avg at start"
      f" {info['load_start']}, at end {info['load_end']}")
    probe = info.get("probe")
    if probe:
        a, b = probe["alone"], probe["one_cpu_busy"]
        p(f"machine floor: {PROBE_RECORD} B pwrite + fdatasync on the same disk, p99.9 {a['p999_ms']:.2f} ms"
          f" alone, {b['p999_ms']:.2f} ms beside one busy CPU (steal {fmt_pct(b['steal_pct'])}): no server's"
          f" p99.9 under load can be lower than the second")
    p(f"apache: {info.get('java', 'java')}, {args.jvm_opts}, forceSync=yes (default); ours: {ours_note}")
    p(f"runs: {args.sessions} sessions x {args.in_flight} in flight, {args.threads} client thread(s), payload"
      f" {args.payload} B, {args.keys} keys, {args.duration} s measured after {args.warmup} s warm-up,"
      f" {args.rounds} round(s) in alternation; medians over rounds")
    hdr = f"{'workload':<8} {'metric':<16}" + "".join(f"{n:>12}" for n in names)
    if len(names) == 2:
        hdr += f"{'ours/apache':>13}"
    p(hdr)

    def row(wl, metric, vals, better=""):
        line = f"{wl:<8} {metric:<16}" + "".join(f"{fmt(v):>12}" for v in vals)
        if len(names) == 2:
            line += f"{ratio(vals[1], vals[0]):>13}"
            if better:
                line += f"  ({better} is better)"
        p(line)

    for wl in args.workloads:
        runs = {n: results[n]["runs"].get(wl, []) for n in names}
        if not any(runs.values()):
            continue
        _op, sizes, rate = parse_workload(wl)
        if rate:
            sess, infl = sizes or (args.sessions, args.in_flight)
            p(f"{wl:<8} (fixed rate: {parse_rate(rate):,.0f} ops/s offered to each server, {sess} session(s) x"
              f" {infl} in flight at most; latency from each op's scheduled time)")
        elif sizes:
            p(f"{wl:<8} ({sizes[0]} session(s) x {sizes[1]} in flight)")
        metrics = [("ops_per_s", "ops/s", "higher"), ("p50_ms", "p50 ms", "lower"),
                   ("p99_ms", "p99 ms", "lower"), ("p999_ms", "p99.9 ms", "lower"),
                   ("cpu_us_per_op", "server CPU us/op", "lower"),
                   ("client_cpu_us_per_op", "client CPU us/op", "")]
        if rate:
            # Both servers get the same offered load: achieving more than it is no merit.
            metrics[0:1] = [("offered_ops_per_s", "offered ops/s", ""), ("ops_per_s", "achieved ops/s", "")]
            metrics.append(("send_lag_p99_ms", "send lag p99 ms", ""))
        for key, label, better in metrics:
            row(wl, label, [med([r.get(key) for r in runs[n]]) for n in names], better)
        short = [f"{n} round {r['round']} ({r['ops_per_s']:.0f} ops/s)" for n in names for r in runs[n]
                 if r.get("rate_shortfall")]
        if short:
            p(f"{'':<8} (SHORTFALL: achieved more than 5% below the offered rate: {', '.join(short)};"
              f" those latencies include the growing backlog)")
        spread = "; ".join(f"{n} " + ", ".join(f"{r['ops_per_s']:.0f}" for r in runs[n]) for n in names)
        p(f"{'':<8} (ops/s per round: {spread})")
    if not args.skip_load:
        L = {n: results[n]["load"] for n in names}
        wl = f"{parse_count(args.znodes) // 1000}k" if parse_count(args.znodes) < 1000_000 else \
            f"{parse_count(args.znodes) / 1e6:g}M"
        row("load", f"{wl} znodes/s", [L[n].get("znodes_per_s") for n in names], "higher")
        row("load", "RSS MiB", [L[n].get("rss_mib") for n in names], "lower")
        row("load", "peak RSS MiB", [L[n].get("hwm_mib") for n in names], "lower")
        row("load", "data dir MiB", [L[n].get("disk_mib") for n in names], "lower")
        row("load", "apparent MiB", [L[n].get("disk_apparent_mib") for n in names], "lower")
        row("restart", "s to serving", [L[n].get("restart_s") for n in names], "lower")
        row("restart", "RSS MiB after", [L[n].get("rss_after_restart_mib") for n in names], "lower")
        for n in names:
            files = L[n].get("disk_files")
            if files:
                p(f"data dir of {n}: " + ", ".join(f"{k} {c} file(s) {m:.0f} MiB"
                                                     for k, (c, m) in sorted(files.items())))
    for n in names:
        for e in results[n]["errors"]:
            p(f"{n}: ERROR {e}")
    if ours_note.startswith("NOT RUN"):
        p(f"ours: {ours_note}")
    print("\n".join(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per run [10]")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run [1]")
    ap.add_argument("--rounds", type=int, default=2, help="alternation rounds [2]")
    ap.add_argument("--prewarm", type=float, default=5.0,
                    help="unmeasured seconds of mixed and of create load on each server first (JIT) [5]")
    ap.add_argument("--workloads", default="create,set,get,mixed,set:1x1,set@20k",
                    help="comma list of zk-bench --op values, each optionally :SESSIONSxIN_FLIGHT"
                         " (set:1x1 = unloaded write latency) and @RATE, a fixed offered load in ops/s"
                         " (zk-bench --rate: set@20k = 20,000 setData/s over the default sessions x"
                         " in flight, set:16x32@50k; latency from each op's scheduled time, so both"
                         " servers are compared at the same load) [create,set,get,mixed,set:1x1,set@20k]")
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--in-flight", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="zk-bench event-loop threads [1]")
    ap.add_argument("--payload", type=int, default=100, help="bytes per znode [100]")
    ap.add_argument("--keys", type=int, default=10000, help="key space of set/get/mixed [10000]")
    ap.add_argument("--znodes", default="1m", help="znodes for the load/RSS/restart phase (1m, 100k) [1m]")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS [2]")
    ap.add_argument("--cooldown", type=float, default=2.0,
                    help="seconds of quiet (after a sync of everything written) before each measured run"
                         " and each load phase [2]")
    ap.add_argument("--restart-timeout", type=float, default=300.0)
    ap.add_argument("--skip-load", action="store_true", help="only the timed workloads")
    ap.add_argument("--skip-runs", action="store_true", help="only the load/RSS/restart phase")
    ap.add_argument("--apache-only", action="store_true", help="do not try our server")
    ap.add_argument("--server-bin", help="our server binary [$CARGO_TARGET_DIR or target]/release/zk-server")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build")
    ap.add_argument("--jvm-opts", default="-Xmx1000m",
                    help="JVM flags for Apache ZooKeeper [-Xmx1000m, zkServer.sh's default heap]")
    ap.add_argument("--workdir", default="/var/tmp",
                    help="where the temp dir with both data dirs goes (same disk for both) [/var/tmp]")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    ap.add_argument("--probe", type=float, default=3.0,
                    help="seconds of each machine probe (fdatasync latency alone and beside one busy"
                         " CPU, on the servers' disk) before the runs; 0 skips it [3]")
    ap.add_argument("--probe-only", action="store_true",
                    help="only the machine probe, adding the probe pinned to each CPU in turn (is this"
                         " machine fit to measure tail latency?), then exit; needs no server")
    ap.add_argument("--json", help="also write every raw figure to this file")
    args = ap.parse_args()
    # The servers' files go under --workdir: create it, as a user expects.
    os.makedirs(args.workdir, exist_ok=True)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for wl in args.workloads:
        try:
            parse_workload(wl)
        except ValueError as e:
            ap.error(str(e))
    args.znodes = str(parse_count(args.znodes))

    if args.probe_only:
        workdir = Path(tempfile.mkdtemp(prefix="zk-probe-", dir=args.workdir))
        try:
            probe = machine_probe(workdir, args.probe or 3.0, per_cpu=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": machine_info(args.workdir),
                                                   "probe": probe}, indent=2))
        return

    if not Path(ZK_JAR).exists() or shutil.which("java") is None:
        sys.exit("compare: Apache ZooKeeper is not installed: apt-get install -y zookeeper zookeeper-bin")

    # Build.
    bench = cargo_target() / "release" / "zk-bench"
    ours_bin = Path(args.server_bin) if args.server_bin else cargo_target() / "release" / "zk-server"
    ours_note = "target/release/zk-server"
    want_ours = not args.apache_only
    if not args.no_build:
        err = build(["zk-bench"])
        if err:
            sys.exit(f"compare: cannot build zk-bench:\n{err}")
        if want_ours and not args.server_bin:
            if (REPO / "zk-server" / "src" / "main.rs").exists():
                err = build(["zk-server"])
                if err:
                    ours_note = "NOT RUN: cargo build --release -p zk-server failed: " + err.strip().splitlines()[-1]
                    want_ours = False
            else:
                ours_note = "NOT RUN: zk-server/src/main.rs does not exist yet"
                want_ours = False
    if not bench.exists():
        sys.exit(f"compare: {bench} is missing (build it: cargo build --release -p zk-bench)")
    if want_ours and not ours_bin.exists():
        ours_note = f"NOT RUN: {ours_bin} does not exist"
        want_ours = False
    if args.apache_only:
        ours_note = "NOT RUN (--apache-only)"
    if want_ours:
        ours_note = f"{ours_bin} (source {git_describe()})"

    workdir = Path(tempfile.mkdtemp(prefix="zk-compare-", dir=args.workdir))
    info = machine_info(workdir)
    info["load_start"] = loadavg()
    log(f"work dir {workdir}; load average {info['load_start']}")
    if args.probe > 0:
        info["probe"] = machine_probe(workdir, args.probe)
    apache = Apache(workdir, str(bench), args.jvm_opts)
    servers = [apache]
    results = {"apache": {"runs": {}, "load": {}, "errors": []}}
    if want_ours:
        servers.append(Ours(workdir, str(bench), ours_bin))
        results["ours"] = {"runs": {}, "load": {}, "errors": []}
    by_name = {s.name: s for s in servers}

    def drop_ours(why):
        nonlocal ours_note
        ours_note = f"NOT RUN: {why}"
        log(f"our server: {why} -- continuing with Apache ZooKeeper alone")
        o = by_name.pop("ours", None)
        if o:
            o.kill()
            servers.remove(o)
            results.pop("ours", None)

    try:
        if not args.skip_runs:
            for s in list(servers):
                s.fresh()
                try:
                    t = s.start()
                    log(f"{s.name} serving on {s.addr} after {t:.2f} s")
                except RuntimeError as e:
                    if s.name == "ours":
                        drop_ours(f"did not start: {e}")
                    else:
                        raise
            run_workloads(servers, args, results)
            if "ours" in by_name and not results["ours"]["runs"] and results["ours"]["errors"]:
                drop_ours("every run failed: " + results["ours"]["errors"][0])
            for s in servers:
                s.stop()
        if not args.skip_load:
            for s in list(servers):
                quiet(args)
                try:
                    load_and_restart(s, args, results)
                except RuntimeError as e:
                    s.kill()
                    if s.name == "ours":
                        results["ours"]["errors"].append(f"load/restart: {e}")
                        log(f"ours: load/restart failed: {e}")
                    else:
                        raise
        info["load_end"] = loadavg()
        report(by_name, results, args, info, ours_note)
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args), "ours": ours_note,
                                                   "results": results}, indent=2))
            log(f"raw figures in {args.json}")
    finally:
        for s in servers:
            s.kill()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
