"""What a new user does first with kazoo (sample-configs.md), with every
result checked. Usage: python3 first_steps.py HOST:PORT

Exits non-zero (with a traceback on stderr) on the first wrong result.
"""

import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, NotEmptyError
from kazoo.protocol.states import EventType

hosts = sys.argv[1]
zk = KazooClient(hosts=hosts, timeout=10.0)
zk.start(timeout=15)

# create with makepath, then read it back with its ZnodeStat
path = zk.create("/abc/JQK/XYZ/0001", b"this is my house", makepath=True)
assert path == "/abc/JQK/XYZ/0001", path
assert sorted(zk.get_children("/")) == ["abc", "zookeeper"], zk.get_children("/")
data, stat = zk.get("/abc/JQK/XYZ/0001")
assert data == b"this is my house", data
assert stat.version == 0 and stat.dataLength == 16 and stat.numChildren == 0, stat
assert stat.czxid == stat.mzxid and stat.czxid > 0, stat
assert stat.ephemeralOwner == 0, stat

# set, then get sees version 1 and the new length
stat2 = zk.set("/abc/JQK/XYZ/0001", b"this is my horse!")
assert stat2.version == 1 and stat2.dataLength == 17, stat2
assert stat2.mzxid > stat.mzxid and stat2.czxid == stat.czxid, (stat, stat2)
data, stat3 = zk.get("/abc/JQK/XYZ/0001")
assert data == b"this is my horse!" and stat3 == stat2, (data, stat3, stat2)
try:
    zk.set("/abc/JQK/XYZ/0001", b"x", version=0)
    raise AssertionError("set with a stale version must fail")
except BadVersionError:
    pass

# parents created by makepath are persistent and empty
data, pstat = zk.get("/abc/JQK")
assert data == b"" and pstat.numChildren == 1, (data, pstat)
try:
    zk.create("/abc", b"")
    raise AssertionError("create of an existing node must fail")
except NodeExistsError:
    pass
try:
    zk.delete("/abc")
    raise AssertionError("delete of a node with children must fail")
except NotEmptyError:
    pass

# ephemeral and sequential creates
eph = zk.create("/abc/eph", b"e", ephemeral=True)
_, estat = zk.get(eph)
assert estat.ephemeralOwner == zk.client_id[0], (estat, zk.client_id)
seq1 = zk.create("/abc/seq-", b"", sequence=True)
seq2 = zk.create("/abc/seq-", b"", sequence=True)
assert seq1 == "/abc/seq-0000000002" and seq2 == "/abc/seq-0000000003", (seq1, seq2)
assert sorted(zk.get_children("/abc")) == ["JQK", "eph", "seq-0000000002", "seq-0000000003"]

# a data watch and a child watch, fired by a second session
fired = []
got_data = threading.Event()
got_child = threading.Event()


def data_watch(event):
    fired.append(("data", event.type, event.path))
    got_data.set()


def child_watch(event):
    fired.append(("child", event.type, event.path))
    got_child.set()


zk.get("/abc/JQK/XYZ/0001", watch=data_watch)
zk.get_children("/abc", watch=child_watch)
other = KazooClient(hosts=hosts, timeout=10.0)
other.start(timeout=15)
other.set("/abc/JQK/XYZ/0001", b"changed")
other.create("/abc/newchild", b"")
assert got_data.wait(10) and got_child.wait(10), fired
assert ("data", EventType.CHANGED, "/abc/JQK/XYZ/0001") in fired, fired
assert ("child", EventType.CHILD, "/abc") in fired, fired

# the ephemeral goes away with its session, seen by the other session
assert other.exists("/abc/eph") is not None
zk.stop()
zk.close()
assert other.exists("/abc/eph") is None
zk = other

# a transaction: all-or-nothing
t = zk.transaction()
t.create("/abc/t1", b"one")
t.set_data("/abc/newchild", b"two", version=0)
t.check("/abc/JQK", 0)
results = t.commit()
assert results[0] == "/abc/t1" and results[2] is True, results
assert zk.get("/abc/newchild")[0] == b"two"
t = zk.transaction()
t.create("/abc/t2", b"")
t.delete("/abc/nothere")
results = t.commit()
assert isinstance(results[1], NoNodeError), results
assert zk.exists("/abc/t2") is None, "a failed transaction must not apply"

# recursive delete
zk.delete("/abc", recursive=True)
assert zk.exists("/abc") is None
assert zk.get_children("/") == ["zookeeper"], zk.get_children("/")
try:
    zk.get("/abc/JQK/XYZ/0001")
    raise AssertionError("get of a deleted node must fail")
except NoNodeError:
    pass
zk.stop()
zk.close()
print("kazoo first steps: ok")
