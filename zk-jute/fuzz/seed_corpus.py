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


if __name__ == "__main__":
    main()
