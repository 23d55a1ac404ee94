#!/usr/bin/env python3
"""Capture golden ZooKeeper wire frames from a real Apache ZooKeeper server.

A recording TCP proxy sits between real clients (kazoo, zkCli.sh, the C
client cli_mt) and a real ZooKeeper server.  Every whole frame (4-byte
big-endian length prefix included) is written, per scenario, to a JSON-lines
file:

    {"conn": <int>, "dir": "c2s"|"s2c", "hex": "<frame hex incl. length>"}

Per-direction order is exact.  Cross-direction order is causal: the proxy
records a frame *before* forwarding it, so a reply is always recorded after
the request that caused it.  Four-letter-word connections are forwarded but
not recorded.  Connection numbers start at 0 in every file.

Usage (see zk-jute/tests/golden/README.md):

    # start a private ZooKeeper from the Debian package and capture everything
    python3 scripts/capture-golden.py --start-server
    # or use an already running server
    python3 scripts/capture-golden.py --upstream 127.0.0.1:2181
    # decode / summarise existing fixture files
    python3 scripts/capture-golden.py --check zk-jute/tests/golden/*.jsonl
    python3 scripts/capture-golden.py --dump zk-jute/tests/golden/kazoo_basic.jsonl
"""

import argparse
import collections
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "zk-jute", "tests", "golden")

ZK_CLASSPATH = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"

OPCODES = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData",
    5: "setData", 6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync",
    11: "ping", 12: "getChildren2", 13: "check", 14: "multi", 15: "create2",
    16: "reconfig", 17: "checkWatches", 18: "removeWatches",
    19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl",
    103: "getEphemerals", 104: "getAllChildrenNumber", 105: "setWatches2",
    106: "addWatch", 107: "whoAmI", -10: "createSession", -11: "closeSession",
    -1: "error",
}
SPECIAL_XIDS = {-1: "notification(-1)", -2: "ping(-2)", -4: "auth(-4)",
                -8: "setWatches(-8)"}
ERRORS = {
    0: "OK", -1: "SYSTEMERROR", -2: "RUNTIMEINCONSISTENCY", -3: "DATAINCONSISTENCY",
    -4: "CONNECTIONLOSS", -5: "MARSHALLINGERROR", -6: "UNIMPLEMENTED",
    -7: "OPERATIONTIMEOUT", -8: "BADARGUMENTS", -13: "NEWCONFIGNOQUORUM",
    -14: "RECONFIGINPROGRESS", -100: "APIERROR", -101: "NONODE", -102: "NOAUTH",
    -103: "BADVERSION", -108: "NOCHILDRENFOREPHEMERALS", -110: "NODEEXISTS",
    -111: "NOTEMPTY", -112: "SESSIONEXPIRED", -113: "INVALIDCALLBACK",
    -114: "INVALIDACL", -115: "AUTHFAILED", -118: "SESSIONMOVED",
    -119: "NOTREADONLY", -120: "EPHEMERALONLOCALSESSION", -121: "NOWATCHER",
    -122: "REQUESTTIMEOUT", -123: "RECONFIGDISABLED", -124: "SESSIONCLOSEDREQUIRESASLAUTH",
    -125: "QUOTAEXCEEDED", -127: "THROTTLEDOP",
}


def log(*a):
    print("[capture]", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Recording proxy
# --------------------------------------------------------------------------

class Recorder:
    """Collects frames for one scenario (one output file)."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.lines = []
        self.next_conn = 0
        self.conns = []          # live Conn objects

    def new_conn_id(self):
        with self.lock:
            n = self.next_conn
            self.next_conn += 1
            return n

    def record(self, conn_id, direction, frame):
        with self.lock:
            self.lines.append({"conn": conn_id, "dir": direction, "hex": frame.hex()})

    def write(self, path):
        with open(path, "w") as f:
            for line in self.lines:
                f.write(json.dumps(line) + "\n")


def _is_4lw(prefix):
    return len(prefix) == 4 and all(97 <= b <= 122 for b in prefix)


class Conn:
    def __init__(self, proxy, recorder, client, upstream):
        self.proxy = proxy
        self.recorder = recorder
        self.client = client
        self.upstream = upstream
        self.id = None            # assigned on first c2s bytes unless 4lw
        self.skip = False         # four-letter-word connection
        self.decided = threading.Event()
        self.closed = threading.Event()
        self.pumps_left = 2
        self.lock = threading.Lock()

    def start(self):
        threading.Thread(target=self._pump, args=("c2s", self.client, self.upstream), daemon=True).start()
        threading.Thread(target=self._pump, args=("s2c", self.upstream, self.client), daemon=True).start()

    def kill(self):
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _pump(self, direction, src, dst):
        buf = bytearray()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf.extend(data)
                if direction == "c2s" and not self.decided.is_set():
                    if len(buf) < 4:
                        continue
                    if _is_4lw(bytes(buf[:4])):
                        self.skip = True
                    else:
                        self.id = self.recorder.new_conn_id()
                    self.decided.set()
                if direction == "s2c":
                    self.decided.wait(5)
                if not self.skip and self.id is not None:
                    while len(buf) >= 4:
                        (n,) = struct.unpack(">i", buf[:4])
                        if n < 0 or len(buf) < 4 + n:
                            break
                        self.recorder.record(self.id, direction, bytes(buf[:4 + n]))
                        del buf[:4 + n]
                else:
                    buf.clear()
                # forward only after recording => causal cross-direction order
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if buf and not self.skip:
                log(f"{self.recorder.name}: conn {self.id} {direction}: {len(buf)} trailing bytes not recorded (partial frame)")
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with self.lock:
                self.pumps_left -= 1
                done = self.pumps_left == 0
            if done:
                for s in (self.client, self.upstream):
                    try:
                        s.close()
                    except OSError:
                        pass
                self.closed.set()


class Proxy:
    def __init__(self, upstream, listen_port=0):
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", listen_port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.recorder = Recorder("unset")
        self.all_conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def hostport(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.upstream)
            except OSError as e:
                log("upstream connect failed:", e)
                c.close()
                continue
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(self, self.recorder, c, u)
            self.recorder.conns.append(conn)
            conn.start()

    def begin(self, name):
        self.recorder = Recorder(name)
        return self.recorder

    def kill_live(self, recorder=None):
        """Abruptly drop every live proxied connection (forces reconnects)."""
        rec = recorder or self.recorder
        n = 0
        for c in list(rec.conns):
            if not c.closed.is_set() and not c.skip:
                c.kill()
                n += 1
        log(f"killed {n} live connection(s)")

    def finish(self, path, timeout=15):
        rec = self.recorder
        deadline = time.time() + timeout
        for c in list(rec.conns):
            if not c.closed.wait(max(0.0, deadline - time.time())):
                log(f"{rec.name}: conn {c.id} still open at end of scenario; killing it")
                c.kill()
                c.closed.wait(2)
        time.sleep(0.2)
        rec.write(path)
        log(f"wrote {path}: {len(rec.lines)} frames, {rec.next_conn} connection(s)")
        self.recorder = Recorder("idle")


# --------------------------------------------------------------------------
# Real ZooKeeper server (Debian package)
# --------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def four_letter(hostport, cmd=b"ruok"):
    h, p = hostport
    try:
        with socket.create_connection((h, p), timeout=1) as s:
            s.sendall(cmd)
            out = b""
            while True:
                d = s.recv(4096)
                if not d:
                    return out
                out += d
    except OSError:
        return b""


class ZkServer:
    """Standalone ZooKeeper 3.8 from the Debian package, private dataDir."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="zk-golden-")
        self.proc = None
        with open(os.path.join(self.dir, "zoo.cfg"), "w") as f:
            f.write(
                "tickTime=2000\n"
                f"dataDir={self.dir}/data\n"
                f"clientPort={self.port}\n"
                "clientPortAddress=127.0.0.1\n"
                "4lw.commands.whitelist=*\n"
                "admin.enableServer=false\n"
            )

    def cmd(self):
        return ["java", "-Dzookeeper.extendedTypesEnabled=true",
                "-cp", ZK_CLASSPATH,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                os.path.join(self.dir, "zoo.cfg")]

    def start(self):
        t0 = time.time()
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(self.cmd(), stdout=self.log, stderr=subprocess.STDOUT)
        while time.time() - t0 < 60:
            if four_letter(("127.0.0.1", self.port)) == b"imok":
                log(f"ZooKeeper up on 127.0.0.1:{self.port} after {time.time() - t0:.2f}s (dir {self.dir})")
                return
            if self.proc.poll() is not None:
                raise RuntimeError("ZooKeeper exited; see " + self.dir + "/server.log")
            time.sleep(0.1)
        raise RuntimeError("ZooKeeper did not come up")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

def _kazoo(proxy, **kw):
    from kazoo.client import KazooClient
    kw.setdefault("timeout", 10.0)
    return KazooClient(hosts=proxy.hostport, **kw)


def _expect(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc:
        return
    raise AssertionError(f"expected {exc.__name__}")


def scenario_kazoo_basic(proxy, ctx):
    from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError
    # a four-letter word through the proxy: forwarded but never recorded
    assert four_letter(("127.0.0.1", proxy.port), b"ruok") == b"imok"
    zk = _kazoo(proxy)
    zk.start()
    zk.create("/kb/a/b", b"hello", makepath=True)          # NONODE then parents
    zk.create("/kb/eph", b"ephemeral", ephemeral=True)
    zk.create("/kb/seq-", b"sequential", sequence=True)
    zk.create("/kb/eseq-", b"", ephemeral=True, sequence=True)  # empty buffer
    zk.create("/kb/null", None)                              # null buffer (-1)
    zk.create("/kb/c2", b"create2", include_data=True)       # create2 -> Stat
    zk.get("/kb/a/b")
    zk.get("/kb/null")                                       # null data reply
    zk.exists("/kb/a/b")
    zk.exists("/kb/absent")
    _expect(NoNodeError, zk.get, "/kb/absent")
    _expect(NodeExistsError, zk.create, "/kb/a/b", b"dup")
    zk.set("/kb/a/b", b"world")
    _expect(BadVersionError, zk.set, "/kb/a/b", b"bad", version=42)
    zk.set("/kb/a/b", b"v2", version=1)
    zk.get_children("/kb")
    zk.get_children("/kb", include_data=True)
    zk.get_children("/kb/eph")                               # empty vector
    zk.sync("/kb")
    zk.delete("/kb", recursive=True)
    _expect(NoNodeError, zk.delete, "/kb/missing")
    zk.stop()
    zk.close()


def scenario_kazoo_watches(proxy, ctx):
    zk1 = _kazoo(proxy)
    zk2 = _kazoo(proxy)
    zk1.start()
    zk2.start()
    events = []
    got = threading.Event()

    def cb(ev):
        events.append(ev)
        got.set()

    def wait_event():
        if not got.wait(10):
            raise AssertionError("watch did not fire")
        got.clear()

    zk1.create("/kw", b"0")
    # data watch
    zk1.get("/kw", watch=cb)
    zk2.set("/kw", b"1")
    wait_event()
    # child watch
    zk1.get_children("/kw", watch=cb)
    zk2.create("/kw/child", b"c")
    wait_event()
    # getChildren2 watch + exists watch on an absent node
    zk1.get_children("/kw", watch=cb, include_data=True)
    zk1.exists("/kw/absent", watch=cb)
    zk2.create("/kw/absent", b"")
    wait_event()
    time.sleep(0.5)
    got.clear()
    # delete with data watch + exists watch on the same node
    zk1.exists("/kw/absent", watch=cb)
    zk1.get("/kw/child", watch=cb)
    zk2.delete("/kw/absent")
    zk2.delete("/kw/child")
    time.sleep(1)
    zk1.delete("/kw", recursive=True)
    zk2.stop(); zk2.close()
    zk1.stop(); zk1.close()
    ctx["kazoo_watches_events"] = [str(e) for e in events]


def scenario_kazoo_multi_acl(proxy, ctx):
    from kazoo.exceptions import NoAuthError, InvalidACLError, AuthFailedError
    from kazoo.security import make_digest_acl, make_acl, OPEN_ACL_UNSAFE
    zk = _kazoo(proxy)
    zk.start()
    zk.create("/km", b"")
    # successful multi: create, set_data, check, create, delete
    t = zk.transaction()
    t.create("/km/a", b"a")
    t.set_data("/km/a", b"b")
    t.check("/km/a", 1)
    t.create("/km/b", b"bb")
    t.delete("/km/b")
    res = t.commit()
    ctx["multi_ok"] = repr(res)
    # failing multi: 2nd op fails (BADVERSION) -> per-op ErrorResponse
    t = zk.transaction()
    t.create("/km/c", b"c")
    t.check("/km/a", 99)
    t.set_data("/km/a", b"never")
    t.delete("/km/a")
    res = t.commit()
    ctx["multi_fail"] = repr(res)
    # failing multi where the first op fails (NONODE)
    t = zk.transaction()
    t.delete("/km/missing")
    t.create("/km/d", b"d")
    ctx["multi_fail_first"] = repr(t.commit())
    # auth + digest ACL
    zk.add_auth("digest", "alice:secret")
    acl = make_digest_acl("alice", "secret", all=True)
    zk.create("/km/secure", b"top-secret", acl=[acl])
    zk.get_acls("/km/secure")
    zk.get_acls("/km")
    world_read = make_acl("world", "anyone", read=True)
    zk.set_acls("/km/secure", [acl, world_read])
    zk.create("/km/locked", b"x", acl=[acl])
    _expect(InvalidACLError, zk.create, "/km/badacl", b"", acl=[make_acl("ip", "not-an-ip", all=True)])
    # second client, no auth -> NOAUTH
    other = _kazoo(proxy)
    other.start()
    other.get("/km/secure")                       # world read OK now
    _expect(NoAuthError, other.get, "/km/locked")
    _expect(NoAuthError, other.set, "/km/secure", b"nope")
    other.stop(); other.close()
    zk.delete("/km", recursive=True)
    zk.stop(); zk.close()
    # unknown auth scheme -> AUTHFAILED (xid -4, err -115), server closes
    bad = _kazoo(proxy)
    bad.start()
    try:
        bad.add_auth("nosuchscheme", "whatever")
    except Exception as e:  # AuthFailedError
        ctx["authfailed"] = repr(e)
    try:
        bad.stop(); bad.close()
    except Exception:
        pass


def scenario_kazoo_reconnect(proxy, ctx):
    from kazoo.client import KazooClient
    zk = _kazoo(proxy, timeout=4.0)
    zk.start()
    zk.add_auth("digest", "bob:pw")
    zk.create("/kr", b"r")
    zk.create("/kr/child", b"c")
    fired = []
    ev = threading.Event()

    def cb(e):
        fired.append(e)
        ev.set()

    zk.get("/kr", watch=cb)                 # data watch
    zk.get_children("/kr", watch=cb)        # child watch
    zk.exists("/kr/absent", watch=cb)       # exist watch
    time.sleep(4.5)                         # idle -> pings (xid -2)
    proxy.kill_live()
    # wait for kazoo to reconnect (ConnectRequest with session id + passwd +
    # lastZxidSeen, then auth replay with xid -4).  NOTE: kazoo 2.11 does not
    # implement SetWatches: on connection loss it fires every watcher with a
    # NONE/CONNECTING event and forgets it, so no opcode 101 is sent here.
    # SetWatches/SetWatches2 come from zkCli.sh and cli_mt instead.
    deadline = time.time() + 15
    while time.time() < deadline and not (zk.connected and proxy.recorder.next_conn >= 2):
        time.sleep(0.1)
    time.sleep(1)
    zk.set("/kr", b"changed")               # fires the re-registered data watch
    ev.wait(5)
    time.sleep(3)                           # more pings on the new connection
    sid, pw = zk.client_id
    zk.delete("/kr", recursive=True)
    zk.stop(); zk.close()
    # resume the now-closed session -> server answers with an expired
    # ConnectResponse (timeOut 0, sessionId 0)
    old = KazooClient(hosts=proxy.hostport, timeout=4.0, client_id=(sid, pw),
                      connection_retry={"max_tries": 0})
    try:
        old.start(timeout=4)
    except Exception as e:
        ctx["expired"] = repr(e)
    try:
        old.stop(); old.close()
    except Exception:
        pass
    ctx["reconnect_events"] = [str(e) for e in fired]


def _feed(proc, steps):
    """steps: list of (delay_before, line or callable)."""
    for delay, item in steps:
        time.sleep(delay)
        if callable(item):
            item()
        else:
            proc.stdin.write((item + "\n").encode())
            proc.stdin.flush()


def _steps(items, first_delay, gap):
    """Turn a list of commands / floats (extra sleep) / callables into _feed steps."""
    steps = []
    pending = first_delay
    for it in items:
        if isinstance(it, float):
            pending += it
        elif callable(it):
            steps.append((pending, it))
            pending = 0.0
        else:
            steps.append((pending, it))
            pending = gap
    steps.append((pending, lambda: None))
    return steps


def scenario_zkcli(proxy, ctx):
    env = dict(os.environ)
    out = []
    # 1) one long interactive session fed on stdin (JLine is disabled when
    #    stdin is not a tty, so commands are read line by line)
    proc = subprocess.Popen([ZKCLI, "-timeout", "4000", "-server", proxy.hostport],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    cmds = [
        'create -e /firstNode "first"',
        "set /firstNode test",
        "get /firstNode",
        "get -s /firstNode",
        "ls /",
        "ls -s /",
        "stat /",
        "create /p",
        "create -s /p/seq x",
        "create -c /cont",
        "create -c /cont/kid k",
        "create -t 600000 /ttl ttldata",
        "create -s -t 600000 /p/ttlseq y",
        "create -e -s /p/eseq z",
        "getAllChildrenNumber /",
        "getEphemerals /",
        "getEphemerals",
        "whoami",
        "addWatch /p",
        "addWatch -m PERSISTENT /cont",
        "get -w /firstNode",
        "ls -w /p",
        "stat -w /nothere",
        "create /p/child c",
        "set /p/child d",
        "set /firstNode again",
        "ls -R /",
        "getAcl /p",
        "getAcl -s /p",
        "setAcl /p world:anyone:cdrwa",
        "addauth digest u:p",
        "create /authd data auth:u:p:cdrwa",
        "getAcl /authd",
        "whoami",
        "sync /",
        "config",
        "config -s",
        "get /zookeeper/config",
        "version",
    ]
    steps = [(1.5, c) for c in cmds[:1]] + [(0.3, c) for c in cmds[1:]]
    # idle long enough for pings, then drop the connection: the Java client
    # reconnects with session id/passwd and re-sends its watches (SetWatches2
    # because it holds persistent watches) and auth
    steps += [(0.3, "stat -w /ttl"), (3.5, lambda: None), (0.0, proxy.kill_live), (3.0, "ls /p"),
              (0.3, "set /cont/kid again"), (0.3, "create /p/afterreconnect r"),
              (0.3, "removewatches /p -a"), (0.3, "removewatches /cont -d"),
              (0.3, "removewatches /nosuchwatch"),
              (0.3, "delete /p/child"), (0.3, "delete -v 7 /p/afterreconnect"),
              (0.3, "delete /p"), (0.3, "deleteall /p"), (0.3, "delete /nonexistent"),
              (0.3, "deleteall /cont"), (0.3, "delete /ttl"), (0.3, "delete /authd"),
              (0.3, "close"), (0.3, "quit")]
    _feed(proc, steps)
    proc.stdin.close()
    out.append(proc.stdout.read().decode(errors="replace"))
    proc.wait(20)
    # 2) a second session holding only one-shot (standard) watches: on
    #    reconnect the Java client uses SetWatches (101), not SetWatches2 (105)
    proc = subprocess.Popen([ZKCLI, "-server", proxy.hostport],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    _feed(proc, _steps([
        "create /sw x", "create /sw/a 1", "get -w /sw", "ls -w /sw",
        "stat -w /sw/absent", "get -w /sw/a", 1.0, proxy.kill_live, 3.0,
        "set /sw y", "create /sw/absent", "deleteall /sw", "quit", 1.0,
    ], first_delay=1.5, gap=0.3))
    proc.stdin.close()
    out.append(proc.stdout.read().decode(errors="replace"))
    proc.wait(20)
    # 3) one-shot commands (one JVM/connection each)
    for c in (["ls", "-R", "/"], ["stat", "/"], ["getAllChildrenNumber", "/"],
              ["get", "-s", "/zookeeper/quota"], ["create", "/oneshot", "1"],
              ["delete", "/oneshot"]):
        r = subprocess.run([ZKCLI, "-server", proxy.hostport] + c,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        out.append(" ".join(c) + "\n" + r.stdout.decode(errors="replace"))
    ctx["zkcli_output"] = "\n".join(out)


def scenario_cli_mt(proxy, ctx):
    proc = subprocess.Popen([CLI_MT, "-h", proxy.hostport], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cmds = ["create /c", "create2 /c2", "get /c", "set /c x", "get /c",
            "ls /", "ls2 /", "exists /c", "wexists /c", "wexists /c/nothere",
            # drop the TCP connection: the C client reconnects with its
            # session id/passwd and re-sends its watches (SetWatches, xid -8)
            # and its auth data
            "addauth digest d:p", 3.0, proxy.kill_live, 3.0,
            "set /c y", "create /c/nothere", "delete /c/nothere",
            "exists /nope", "create +e /c/eph", "create +s /c/seq",
            "create +es /c/eseq", "create +c /ccont", "create +t=600000 /cttl",
            "create2 +c /ccont2", "create2 +t=600000 /cttl2",
            "sync /", "config", "get /nope",
            "delete /c/eph", "delete /c", "myid",
            "aget /c2", "als /", "delete /c2", "delete /ccont", "delete /ccont2",
            "delete /cttl", "delete /cttl2", "quit", 1.0]
    steps = _steps(cmds, first_delay=1.5, gap=0.3)
    _feed(proc, steps)
    try:
        proc.stdin.close()
    except OSError:
        pass
    ctx["cli_mt_output"] = proc.stdout.read().decode(errors="replace")
    proc.wait(20)


def wipe(upstream):
    """Remove everything but /zookeeper, talking to the server directly
    (not through the proxy, so nothing is recorded)."""
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=f"{upstream[0]}:{upstream[1]}", timeout=10.0)
    zk.start()
    for cred in ("alice:secret", "bob:pw", "u:p", "d:p"):   # identities used by the scenarios
        zk.add_auth("digest", cred)
    for child in zk.get_children("/"):
        if child != "zookeeper":
            zk.delete("/" + child, recursive=True)
    zk.stop()
    zk.close()


SCENARIOS = [
    ("kazoo_basic", scenario_kazoo_basic),
    ("kazoo_watches", scenario_kazoo_watches),
    ("kazoo_multi_acl", scenario_kazoo_multi_acl),
    ("kazoo_reconnect", scenario_kazoo_reconnect),
    ("zkcli_session", scenario_zkcli),
    ("cli_mt", scenario_cli_mt),
]


# --------------------------------------------------------------------------
# Decoder / checker
# --------------------------------------------------------------------------

class Reader:
    def __init__(self, b):
        self.b = b
        self.o = 0

    def left(self):
        return len(self.b) - self.o

    def int(self):
        (v,) = struct.unpack_from(">i", self.b, self.o)
        self.o += 4
        return v

    def long(self):
        (v,) = struct.unpack_from(">q", self.b, self.o)
        self.o += 8
        return v

    def buffer(self):
        n = self.int()
        if n < 0:
            return None
        v = self.b[self.o:self.o + n]
        if len(v) != n:
            raise ValueError("short buffer")
        self.o += n
        return v

    def byte(self):
        v = self.b[self.o]
        self.o += 1
        return v


def decode_frame(d, state):
    """Decode a frame's header.  Returns a dict describing it.
    state: per-connection dict (tracks first frames and pending xids)."""
    frame = bytes.fromhex(d["hex"])
    r = Reader(frame)
    n = r.int()
    if n != len(frame) - 4:
        raise ValueError(f"length prefix {n} != body {len(frame) - 4}")
    out = {"dir": d["dir"], "len": n}
    if d["dir"] == "c2s":
        if not state.get("c2s_seen"):
            state["c2s_seen"] = True
            out["kind"] = "ConnectRequest"
            out["protocolVersion"] = r.int()
            out["lastZxidSeen"] = r.long()
            out["timeOut"] = r.int()
            out["sessionId"] = r.long()
            pw = r.buffer()
            out["passwdLen"] = -1 if pw is None else len(pw)
            out["readOnly"] = r.byte() if r.left() == 1 else None
            if r.left():
                raise ValueError(f"{r.left()} unexpected trailing bytes in ConnectRequest")
            return out
        xid, typ = r.int(), r.int()
        out.update(kind="Request", xid=xid, type=typ, op=OPCODES.get(typ, f"op{typ}"))
        state.setdefault("pending", {})[xid] = typ
        return out
    # s2c
    if not state.get("s2c_seen"):
        state["s2c_seen"] = True
        out["kind"] = "ConnectResponse"
        out["protocolVersion"] = r.int()
        out["timeOut"] = r.int()
        out["sessionId"] = r.long()
        pw = r.buffer()
        out["passwdLen"] = -1 if pw is None else len(pw)
        out["readOnly"] = r.byte() if r.left() == 1 else None
        if r.left():
            raise ValueError(f"{r.left()} unexpected trailing bytes in ConnectResponse")
        return out
    xid, zxid, err = r.int(), r.long(), r.int()
    out.update(kind="Reply", xid=xid, zxid=zxid, err=err, errName=ERRORS.get(err, str(err)))
    if xid == -1:
        out["op"] = "notification"
        ev_type, ev_state = r.int(), r.int()
        path = r.buffer()
        out["event"] = (ev_type, ev_state, path.decode() if path is not None else None)
    else:
        typ = state.get("pending", {}).pop(xid, None)
        out["type"] = typ
        out["op"] = OPCODES.get(typ, "?") if typ is not None else "?"
    return out


def xid_kind(xid):
    if xid in SPECIAL_XIDS:
        return SPECIAL_XIDS[xid]
    return "positive" if xid > 0 else f"other({xid})"


def check_file(path, dump=False):
    per_conn = collections.defaultdict(dict)
    c2s_ops = collections.Counter()
    s2c_ops = collections.Counter()
    xids = collections.Counter()
    errs = collections.Counter()
    conns = {}
    nframes = 0
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            d = json.loads(line)
            assert set(d) == {"conn", "dir", "hex"}, d
            info = decode_frame(d, per_conn[d["conn"]])
            nframes += 1
            if dump:
                rest = bytes.fromhex(d["hex"])
                print(f"{lineno:4d} conn={d['conn']} {json.dumps(info, default=str)}")
                print("       " + rest.hex())
            if info["kind"] == "ConnectRequest":
                conns.setdefault(d["conn"], {})["req"] = info
                c2s_ops["<ConnectRequest>"] += 1
            elif info["kind"] == "ConnectResponse":
                conns.setdefault(d["conn"], {})["resp"] = info
                s2c_ops["<ConnectResponse>"] += 1
            elif info["kind"] == "Request":
                c2s_ops[f"{info['type']} {info['op']}"] += 1
                xids[("c2s", xid_kind(info["xid"]))] += 1
            else:
                key = "-1 notification" if info["xid"] == -1 else f"{info['type']} {info['op']}"
                s2c_ops[key] += 1
                xids[("s2c", xid_kind(info["xid"]))] += 1
                if info["err"]:
                    errs[f"{info['err']} {info['errName']} ({info['op']})"] += 1
    return dict(path=path, frames=nframes, conns=conns, c2s_ops=c2s_ops,
                s2c_ops=s2c_ops, xids=xids, errs=errs)


def summary_markdown(results):
    lines = []
    for res in results:
        name = os.path.basename(res["path"])
        lines.append(f"### `{name}`\n")
        lines.append(f"{res['frames']} frames, {len(res['conns'])} connection(s).\n")
        lines.append("| conn | ConnectRequest (proto, lastZxid, timeOut, sessionId, passwdLen, readOnly byte) | ConnectResponse (proto, timeOut, sessionId, passwdLen, readOnly byte) |")
        lines.append("|---|---|---|")
        for c, v in sorted(res["conns"].items()):
            q = v.get("req")
            s = v.get("resp")
            qs = (f"{q['protocolVersion']}, {q['lastZxidSeen']:#x}, {q['timeOut']}, {q['sessionId']:#x}, "
                  f"{q['passwdLen']}, {'absent' if q['readOnly'] is None else q['readOnly']}") if q else "-"
            ss = (f"{s['protocolVersion']}, {s['timeOut']}, {s['sessionId']:#x}, {s['passwdLen']}, "
                  f"{'absent' if s['readOnly'] is None else s['readOnly']}") if s else "-"
            lines.append(f"| {c} | {qs} | {ss} |")
        lines.append("")
        lines.append("| opcode | c2s requests | s2c replies |")
        lines.append("|---|---:|---:|")
        keys = sorted(set(res["c2s_ops"]) | set(res["s2c_ops"]),
                      key=lambda k: (k.startswith("<") is False, int(k.split()[0]) if not k.startswith("<") else -99))
        for k in keys:
            lines.append(f"| {k} | {res['c2s_ops'].get(k, 0)} | {res['s2c_ops'].get(k, 0)} |")
        lines.append("")
        lines.append("| xid kind | c2s | s2c |")
        lines.append("|---|---:|---:|")
        kinds = sorted({k for (_, k) in res["xids"]})
        for k in kinds:
            lines.append(f"| {k} | {res['xids'].get(('c2s', k), 0)} | {res['xids'].get(('s2c', k), 0)} |")
        lines.append("")
        if res["errs"]:
            lines.append("Non-zero reply errors: " + ", ".join(f"`{k}` x{v}" for k, v in sorted(res["errs"].items())))
            lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--upstream", help="host:port of a running ZooKeeper 3.8 "
                   "(must have -Dzookeeper.extendedTypesEnabled=true for TTL nodes)")
    g.add_argument("--start-server", action="store_true",
                   help="start a private ZooKeeper from the Debian package (default)")
    ap.add_argument("--listen-port", type=int, default=0, help="proxy port (default: ephemeral)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--check", nargs="*", metavar="FILE", help="decode files and print a summary")
    ap.add_argument("--dump", nargs="*", metavar="FILE", help="decode files frame by frame")
    ap.add_argument("--markdown", action="store_true", help="with --check: print markdown tables")
    ap.add_argument("--proxy-only", action="store_true",
                    help="just run the recording proxy into --out/proxy.jsonl until Ctrl-C")
    args = ap.parse_args()

    if args.dump is not None:
        for p in args.dump:
            print(f"== {p}")
            check_file(p, dump=True)
        return
    if args.check is not None:
        files = args.check or sorted(
            os.path.join(args.out, f) for f in os.listdir(args.out) if f.endswith(".jsonl"))
        results = [check_file(p) for p in files]
        if args.markdown:
            print(summary_markdown(results))
        else:
            for res in results:
                print(f"== {res['path']}: {res['frames']} frames, {len(res['conns'])} conns")
                for c, v in sorted(res["conns"].items()):
                    print(f"   conn {c}: req={v.get('req')} resp={v.get('resp')}")
                for k, v in sorted(res["c2s_ops"].items()):
                    print(f"   c2s {k}: {v}")
                for k, v in sorted(res["s2c_ops"].items()):
                    print(f"   s2c {k}: {v}")
                for k, v in sorted(res["xids"].items()):
                    print(f"   xid {k}: {v}")
                for k, v in sorted(res["errs"].items()):
                    print(f"   err {k}: {v}")
        return

    server = None
    if args.upstream:
        h, p = args.upstream.rsplit(":", 1)
        upstream = (h, int(p))
    else:
        server = ZkServer()
        server.start()
        upstream = ("127.0.0.1", server.port)
    proxy = Proxy(upstream, args.listen_port)
    log(f"proxy listening on {proxy.hostport} -> {upstream[0]}:{upstream[1]}")
    os.makedirs(args.out, exist_ok=True)
    ctx = {}
    try:
        if args.proxy_only:
            proxy.begin("proxy")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                proxy.finish(os.path.join(args.out, "proxy.jsonl"), timeout=1)
            return
        only = set(args.only.split(",")) if args.only else None
        for name, fn in SCENARIOS:
            if only and name not in only:
                continue
            log(f"--- scenario {name}")
            wipe(upstream)
            proxy.begin(name)
            fn(proxy, ctx)
            proxy.finish(os.path.join(args.out, name + ".jsonl"))
        with open(os.path.join(tempfile.gettempdir(), "capture-golden-ctx.json"), "w") as f:
            json.dump(ctx, f, indent=1, default=str)
        log("client-side notes written to", os.path.join(tempfile.gettempdir(), "capture-golden-ctx.json"))
    finally:
        if server:
            server.cleanup()


if __name__ == "__main__":
    main()
