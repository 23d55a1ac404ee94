#!/usr/bin/env python3
"""Ensembles side by side: N Apache ZooKeeper 3.8 servers (Debian package, forceSync on) and N of
ours, on this machine, same disk, loopback, in alternation (Apache, ours, Apache, ...), with the
ratio ours / Apache of every figure (issue 17). Shares its plumbing with scripts/compare.py.

Figures (each ensemble fresh, --servers of them, tickTime 2000 / initLimit 10 / syncLimit 5):
  * cold start: every server spawned at once -> the whole ensemble serving (one leader, the rest
    followers, every `srvr` answering);
  * throughput and p50 / p99 / p99.9 (zk-bench) of create and set with the sessions spread over
    every server (writes at followers are forwarded), of create through the leader alone, and of
    get spread over every server; and the CPU the ensemble spent per op (user + system time of
    every server process, all threads, from /proc/<pid>/stat, over the load with its warm-up,
    divided by every op completed then, the set-up's creates included; a create load's clean-up is
    left out; a fresh JVM's JIT compiles in the first load): where both
    ensembles saturate the machine's cores, throughput follows it;
  * failover, --failovers rounds: kill -9 of the leader -> a quorum of the survivors serving again
    (`srvr` polled every 2 ms: one leader, the others followers), and -> the first write that
    succeeds through a survivor (a client retrying every 2 ms); the old leader is restarted and
    rejoins between rounds;
  * rejoin: a follower killed, --rejoin-writes writes, restarted -> serving at the leader's zxid
    (a DIFF);
  * SNAP: the ensemble loaded with --znodes znodes, then a follower's data wiped (myid kept) and
    restarted -> serving at the leader's zxid (a SNAP of the whole tree);
  * RSS of every server holding the --znodes znodes (VmRSS; the JVM's heap included).

Usage (from the repository root):
  python3 scripts/compare_ensemble.py                          # 3 servers, 1M znodes
  python3 scripts/compare_ensemble.py --servers 5 --znodes 100k --duration 3
  python3 scripts/compare_ensemble.py --json /tmp/ensemble.json
Needs: java + Debian's zookeeper package, cargo (builds zk-server and zk-bench in release).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (the shared plumbing: zk-bench, machine info, formatting)
from compare import (SLF4J, ZK_JAR, bench_json, build, cargo_target, fmt, free_port, log,  # noqa: E402
                     loadavg, machine_info, med, parse_count, proc_cpu_s, proc_status, ratio)


def four(addr, cmd, timeout=1.0):
    """A four-letter word's answer ('' when nobody answers)."""
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as c:
            c.settimeout(timeout)
            c.sendall(cmd.encode())
            data = b""
            while chunk := c.recv(65536):
                data += chunk
        return data.decode(errors="replace")
    except OSError:
        return ""


def srvr(addr):
    """(mode, zxid) from `srvr`, or (None, None) when the server does not serve."""
    mode = zxid = None
    for line in four(addr, "srvr", timeout=0.5).splitlines():
        if line.startswith("Mode: "):
            mode = line[6:].strip()
        elif line.startswith("Zxid: "):
            zxid = int(line[6:].strip(), 16)
    return mode, zxid


class Member:
    """One server of an ensemble: its dir, ports and process."""

    def __init__(self, flavor, sid, root, binary, jvm_opts):
        self.flavor, self.sid, self.binary, self.jvm_opts = flavor, sid, binary, jvm_opts
        self.dir = Path(root) / f"{flavor}-{sid}"
        self.client, self.quorum, self.election = free_port(), free_port(), free_port()
        self.proc = None
        self.starts = 0

    @property
    def addr(self):
        return f"127.0.0.1:{self.client}"

    def write_config(self, servers_lines):
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "myid").write_text(f"{self.sid}\n")
        (self.dir / "zoo.cfg").write_text(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\n"
            f"dataDir={data}\nclientPort={self.client}\nclientPortAddress=127.0.0.1\n"
            "maxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\n" + servers_lines)

    def wipe(self):
        data = self.dir / "data"
        shutil.rmtree(data)
        data.mkdir()
        (data / "myid").write_text(f"{self.sid}\n")

    def start(self):
        self.starts += 1
        out = open(self.dir / f"server-{self.starts}.log", "wb")
        cfg = str(self.dir / "zoo.cfg")
        if self.flavor == "apache":
            cmd = (["java"] + self.jvm_opts.split()
                   + ["-cp", f"{ZK_JAR}:{SLF4J}", "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg])
        else:
            cmd = [str(self.binary), cfg]
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def rss_mib(self):
        return proc_status(self.proc.pid, "VmRSS") if self.proc else None


class Ensemble:
    def __init__(self, flavor, n, root, binary, jvm_opts):
        self.flavor = flavor
        self.members = [Member(flavor, sid, root, binary, jvm_opts) for sid in range(1, n + 1)]
        lines = "".join(f"server.{m.sid}=127.0.0.1:{m.quorum}:{m.election}\n" for m in self.members)
        for m in self.members:
            m.write_config(lines)

    def live(self):
        return [m for m in self.members if m.proc is not None]

    def serving(self, members=None):
        """The leader if `members` (default: the live ones) serve with one leader and the rest
        followers, else None."""
        members = self.live() if members is None else members
        modes = [(m, srvr(m.addr)[0]) for m in members]
        leaders = [m for m, md in modes if md == "leader"]
        if len(leaders) == 1 and all(md in ("leader", "follower") for _, md in modes):
            return leaders[0]
        return None

    def wait_serving(self, timeout=120.0, poll=0.002, members=None):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            leader = self.serving(members)
            if leader is not None:
                return leader, time.monotonic() - t0
            time.sleep(poll)
        raise RuntimeError(f"{self.flavor} ensemble not serving after {timeout} s")

    def wait_caught_up(self, m, timeout=300.0):
        """Seconds until `m` serves as a follower at the leader's zxid."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            mode, z = srvr(m.addr)
            leader = self.serving([x for x in self.live() if x is not m])
            if mode == "follower" and leader is not None and z is not None and z == srvr(leader.addr)[1]:
                return time.monotonic() - t0
            time.sleep(0.002)
        raise RuntimeError(f"{self.flavor} server {m.sid} did not catch up in {timeout} s")

    def cpu_s(self):
        """User + system CPU seconds of the live servers, all threads (None if one is unreadable)."""
        cpus = [proc_cpu_s(m.proc.pid) for m in self.live()]
        return None if None in cpus else sum(cpus)

    def stop(self):
        for m in self.members:
            m.kill()


def _frame(body):
    return struct.pack(">i", len(body)) + body


def _jstr(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def _read_frame(sock):
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise OSError("closed")
        head += chunk
    (n,) = struct.unpack(">i", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise OSError("closed")
        body += chunk
    return body


def write_once(addr, path, timeout=2.0):
    """One create of `path` through `addr` with a new session, on the raw wire protocol (a
    handshake, then create): True once the server acknowledged it. No process spawn, so the
    failover clock is not charged for one."""
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as c:
            c.settimeout(timeout)
            # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
            c.sendall(_frame(struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"))
            if len(_read_frame(c)) < 20:
                return False
            # RequestHeader(xid 1, create) + CreateRequest(path, data, [world:anyone ALL], flags 0).
            acl = struct.pack(">ii", 1, 31) + _jstr("world") + _jstr("anyone")
            c.sendall(_frame(struct.pack(">ii", 1, 1) + _jstr(path) + struct.pack(">i", 1) + b"x"
                             + acl + struct.pack(">i", 0)))
            reply = _read_frame(c)
            xid, _zxid, err = struct.unpack(">iqi", reply[:16])
            return xid == 1 and err == 0
    except (OSError, struct.error):
        return False


def first_write_after(survivors, tag):
    """Seconds until a create through one of `survivors` succeeds (retrying every 2 ms)."""
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 120:
        m = survivors[i % len(survivors)]
        if write_once(m.addr, f"/failover-{tag}-{i}"):
            return time.monotonic() - t0
        i += 1
        time.sleep(0.002)
    raise RuntimeError("no write succeeded within 120 s")


def failover_round(e, bench, tag):
    """kill -9 of the leader; returns (s to a quorum of survivors serving, s to the first write
    acknowledged through a survivor), both from the kill. The old leader rejoins afterwards."""
    leader = e.serving()
    survivors = [m for m in e.live() if m is not leader]
    box = {}
    writer = threading.Thread(target=lambda: box.update(w=first_write_after(survivors, tag)))
    t0 = time.monotonic()
    leader.kill()
    writer.start()
    e.wait_serving(members=survivors)
    serving = time.monotonic() - t0
    writer.join()
    leader.start()
    e.wait_caught_up(leader)
    return serving, box.get("w")


def run_flavor(flavor, args, root, bench, binary, results):
    e = Ensemble(flavor, args.servers, root, binary, args.jvm_opts)
    r = results.setdefault(flavor, {})
    try:
        t0 = time.monotonic()
        for m in e.members:
            m.start()
        leader, _ = e.wait_serving()
        r.setdefault("cold_start_s", []).append(time.monotonic() - t0)
        log(f"{flavor}: {args.servers} servers serving after {r['cold_start_s'][-1]:.2f} s, leader {leader.sid}")
        spread = ",".join(m.addr for m in e.members)
        base = ["--sessions", str(args.sessions), "--in-flight", str(args.in_flight), "--payload", "100",
                "--duration", f"{args.duration}s", "--warmup", "1s"]
        for name, server, op in [("create_spread", spread, "create"), ("set_spread", spread, "set"),
                                 ("create_leader", leader.addr, "create"), ("get_spread", spread, "get")]:
            extra = ["--cleanup"] if op == "create" else []
            cpu = {"start": e.cpu_s()}
            j = bench_json(bench, ["run", "--server", server, "--op", op] + base + extra,
                           on_cleanup=lambda: cpu.setdefault("end", e.cpu_s()))
            cpu.setdefault("end", e.cpu_s())
            a = j["all"]
            w = r.setdefault(name, {})
            if None not in cpu.values() and j.get("completed"):
                # The set-up's creates (the keys of set and get) ran in the window too.
                ops = j["completed"] + j.get("setup_created", 0)
                w.setdefault("cpu_us", []).append((cpu["end"] - cpu["start"]) * 1e6 / ops)
            w.setdefault("ops_per_s", []).append(a["ops_per_s"])
            for q in ("p50", "p99", "p999"):
                w.setdefault(q, []).append(a[f"{q}_us"] / 1000)
            log(f"{flavor}: {name}: {fmt(a['ops_per_s'])} ops/s  p50 {fmt(a['p50_us'] / 1000)} ms"
                f"  p99 {fmt(a['p99_us'] / 1000)} ms  p99.9 {fmt(a['p999_us'] / 1000)} ms"
                f"  errors {j.get('errors')}  CPU {fmt(w.get('cpu_us', [None])[-1])} us/op  [load {loadavg()}]")
        for i in range(args.failovers):
            s, w = failover_round(e, bench, f"{flavor}-{i}")
            r.setdefault("failover_serving_s", []).append(s)
            r.setdefault("failover_write_s", []).append(w)
            log(f"{flavor}: failover {i + 1}: quorum serving after {s * 1000:.0f} ms, first write after "
                f"{w * 1000:.0f} ms")
        leader = e.serving()
        f = next(m for m in e.members if m is not leader)
        f.kill()
        bench_json(bench, ["load", "--server", leader.addr, "--znodes", str(args.rejoin_writes),
                           "--prefix", "/rejoin", "--sessions", "4", "--in-flight", "32"])
        f.start()
        rj = e.wait_caught_up(f)
        r.setdefault("rejoin_s", []).append(rj)
        log(f"{flavor}: follower {f.sid} back after {args.rejoin_writes} writes: serving in {rj * 1000:.0f} ms")
        try:
            bench_json(bench, ["load", "--server", leader.addr, "--znodes", str(args.znodes), "--sessions", "16",
                               "--in-flight", "64"])
        except RuntimeError as err:
            # An ensemble that cannot take the load (Apache's with -Xmx1000m stalled once for 30 s near
            # 1M znodes) loses its RSS and SNAP figures, not the whole run.
            log(f"{flavor}: loading {args.znodes} znodes failed, no RSS or SNAP figure: {str(err)[:300]}")
            r.setdefault("failed", []).append(f"load of {args.znodes} znodes: {str(err)[:300]}")
            return
        time.sleep(args.settle)
        rss = {m.sid: m.rss_mib() for m in e.live()}
        r.setdefault("rss_mib", []).append(max(v for v in rss.values() if v is not None))
        log(f"{flavor}: RSS with {args.znodes} znodes: " + ", ".join(f"{k}: {fmt(v)} MiB" for k, v in rss.items()))
        f = next(m for m in e.members if m is not e.serving())
        f.kill()
        f.wipe()
        f.start()
        sn = e.wait_caught_up(f, timeout=args.snap_timeout)
        r.setdefault("snap_s", []).append(sn)
        log(f"{flavor}: empty follower {f.sid} synced {args.znodes} znodes (SNAP) in {sn:.2f} s")
    finally:
        e.stop()
        settle_after(e, args)


def settle_after(e, args):
    """The next ensemble starts on a quiet machine: this one's files (GBs after the 1M-znode load)
    are deleted (unless --keep) and the rest written back first. Otherwise their writeback ran
    under the next ensemble's fsyncs: ours measured 35-38k writes/s right after Apache's run and
    47-54k/s alone, on the same binary."""
    if not args.keep:
        for m in e.members:
            shutil.rmtree(m.dir, ignore_errors=True)
    os.sync()
    time.sleep(args.cooldown)


ROWS = [
    ("cold start to serving (s)", "cold_start_s", False),
    ("create spread ops/s", ("create_spread", "ops_per_s"), True),
    ("create spread p99 ms", ("create_spread", "p99"), False),
    ("set spread ops/s", ("set_spread", "ops_per_s"), True),
    ("set spread p99 ms", ("set_spread", "p99"), False),
    ("create via leader ops/s", ("create_leader", "ops_per_s"), True),
    ("get spread ops/s", ("get_spread", "ops_per_s"), True),
    ("get spread p99 ms", ("get_spread", "p99"), False),
    ("CPU per create spread (us)", ("create_spread", "cpu_us"), False),
    ("CPU per setData spread (us)", ("set_spread", "cpu_us"), False),
    ("CPU per create via leader (us)", ("create_leader", "cpu_us"), False),
    ("CPU per getData spread (us)", ("get_spread", "cpu_us"), False),
    ("failover: quorum serving (s)", "failover_serving_s", False),
    ("failover: first write (s)", "failover_write_s", False),
    ("rejoin by DIFF (s)", "rejoin_s", False),
    ("empty follower by SNAP (s)", "snap_s", False),
    ("max RSS with the znodes (MiB)", "rss_mib", False),
]


def value(results, flavor, key):
    r = results.get(flavor, {})
    if isinstance(key, tuple):
        return med(r.get(key[0], {}).get(key[1], []))
    return med(r.get(key, []))


def report(results, args, info):
    print()
    print(f"Ensembles of {args.servers}: Apache ZooKeeper 3.8 vs ours, medians of {args.rounds} round(s), "
          f"{args.failovers} failover(s) per round, {args.znodes} znodes")
    print(f"machine: {info.get('cpu')} x{info.get('cpus')}, {info.get('mem_gib')} GiB, {info.get('disk')}, "
          f"kernel {info.get('kernel')}, {info.get('java')}")
    print(f"{'':34} {'Apache':>12} {'ours':>12} {'ours/Apache':>12}")
    for label, key, _higher_better in ROWS:
        a, o = value(results, "apache", key), value(results, "ours", key)
        print(f"{label:34} {fmt(a):>12} {fmt(o):>12} {ratio(o, a):>12}")
    for flavor in ("apache", "ours"):
        for why in results.get(flavor, {}).get("failed", []):
            print(f"{flavor} failed: {why}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="alternation rounds [1]")
    ap.add_argument("--failovers", type=int, default=3, help="leader kills per round [3]")
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per load [5]")
    ap.add_argument("--sessions", type=int, default=24)
    ap.add_argument("--in-flight", type=int, default=32)
    ap.add_argument("--znodes", default="1m", help="znodes for RSS and SNAP [1m]")
    ap.add_argument("--rejoin-writes", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--cooldown", type=float, default=5.0,
                    help="seconds between one ensemble's end (files deleted, all written back) and the next [5]")
    ap.add_argument("--snap-timeout", type=float, default=600.0)
    ap.add_argument("--jvm-opts", default="-Xmx1000m")
    ap.add_argument("--workdir", default="/var/tmp")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json", help="also write every raw figure to this file")
    ap.add_argument("--flavors", default="apache,ours",
                    help="which ensembles to run, in order [apache,ours]; one alone for profiling")
    ap.add_argument("--keep", action="store_true", help="keep the servers' dirs and logs (printed)")
    args = ap.parse_args()
    # The servers' files go under --workdir: create it, as a user expects.
    os.makedirs(args.workdir, exist_ok=True)
    args.znodes = parse_count(args.znodes)
    if not args.no_build:
        err = build(["zk-server", "zk-bench"])
        if err:
            sys.exit(f"cargo build failed:\n{err}")
    binary = cargo_target() / "release" / "zk-server"
    bench = str(cargo_target() / "release" / "zk-bench")
    root = tempfile.mkdtemp(prefix="zk-ensembles-", dir=args.workdir)
    info = machine_info(root)
    results = {}
    try:
        for rnd in range(args.rounds):
            for flavor in args.flavors.split(","):
                log(f"round {rnd + 1}: {flavor}")
                run_flavor(flavor, args, Path(root) / f"r{rnd}", bench, binary, results)
        report(results, args, info)
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args), "results": results},
                                                  indent=2))
    finally:
        if args.keep:
            log(f"servers' dirs and logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    assert compare.REPO.exists()
    main()
