#!/usr/bin/env python3
"""Seeds fuzz/corpus/frame_request from the golden captures (../tests/golden).

For every connection: its whole client stream (handshake then requests, as the
target reads it), and for every server frame after the handshake its body
after the 16-byte ReplyHeader (the target reads raw input as a reply body).
The corpus is not committed (.gitignore covers fuzz/corpus).
"""

import glob
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "frame_request")


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = []
    for path in sorted(glob.glob(os.path.join(HERE, "..", "tests", "golden", "*.jsonl"))):
        streams = {}
        for line in open(path):
            if not line.strip():
                continue
            o = json.loads(line)
            streams.setdefault((o["conn"], o["dir"]), []).append(bytes.fromhex(o["hex"]))
        for (_, d), frames in streams.items():
            if d == "c2s":
                seeds.append(b"".join(frames))
            else:
                seeds.extend(f[4 + 16:] for f in frames[1:] if len(f) > 20)
    for s in seeds:
        with open(os.path.join(OUT, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
    print(f"{len(seeds)} seeds in {OUT}")
    election_seeds()


def election_seeds():
    """corpus/election: event scripts for the `election` target (its header:
    last zxid and epoch as two big-endian longs, then ops of (op byte, arg
    byte, payload); op 8*sid + 0..2 carries a notification of `arg` bytes)."""
    import struct

    out = os.path.join(HERE, "corpus", "election")
    os.makedirs(out, exist_ok=True)
    cfg = b"server.1=127.0.0.1:2888:3888:participant\nversion=0"

    def notif(state, leader, zxid, ee, pe, version=2):
        b = struct.pack(">iqqqq", state, leader, zxid, ee, pe)
        if version is None:
            return b
        b += struct.pack(">i", version)
        return b + struct.pack(">i", len(cfg)) + cfg if version > 1 else b

    def op(sid, payload):
        return bytes([8 * sid, len(payload)]) + payload

    head = struct.pack(">qq", 0, 0)
    seeds = {
        "elect3": struct.pack(">qq", 5, 0) + op(1, notif(0, 3, 5, 1, 0)) + op(3, notif(0, 3, 5, 1, 0)) + bytes([4, 0]),
        "join": head + op(1, notif(1, 3, 7, 4, 1)) + op(3, notif(2, 3, 7, 4, 1)),
        "observer": head + op(4, notif(0, -(2**63), -(2**63), 1, -(2**63))) + bytes([3, 0, 5, 1]),
        "old28": head + op(1, notif(0, 1, 9, 1, 0, None)[:28]),
        "old40": head + op(3, notif(0, 3, 9, 2, 0, None) + b"\0\0\0\0"),
        "rounds": struct.pack(">qq", 1 << 32, 1) + bytes([6, 1]) + struct.pack(">q", 2 << 32)
        + op(1, notif(0, 1, 9, 9, 0)) + bytes([7, 0]) + struct.pack(">q", 3),
        "initial_v1": struct.pack(">qqi", -65536, 3, 14) + b"127.0.0.1:3888",
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {out}")


if __name__ == "__main__":
    main()
