#!/usr/bin/env python3
"""Runs bench_nms and its peers (peers_nms.py) on the same inputs and prints a comparison table.

Builds nothing. Usage (from the repository root, after building the bench_nms target):
    python3 benchmarks/compare_nms.py [path/to/bench_nms] [options] [-- benchmark flags]
Default binary: build/benchmarks/bench_nms. The peers run under --python (default /usr/bin/python3
when it exists: Debian's python3-torch and python3-opencv live there). peers_nms.py writes the
inputs (.npy) to a temporary directory and times torchvision and OpenCV on them; bench_nms then
reads the very same arrays (FOCAL_NMS_INPUTS), so kept counts can be compared one to one.

Columns:
  focal         wall time per call (Google Benchmark's real_time; the median with --repetitions > 1)
  boxes/s       N / that time
  kept          boxes kept by focal (greedy and batched must equal torchvision's: marked "=tv")
  torchvision   torchvision 0.14 on one thread (torch.set_num_threads(1)), and focal's speed-up
  opencv        cv2.dnn on one thread, and focal's speed-up (soft: integer Rects, see peers_nms.py)
Rows nms/greedy_scalar, nms/batched_parallel and nms/batched_torchvision are compared with the
peers of nms/greedy and nms/batched of the same N.
"""

import argparse
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_common import default_python, real_seconds, run_gbench, run_peer_json  # noqa: E402


def peer_key(name):
    m = re.match(r"nms/(\w+)/(\d+)$", name)
    if not m:
        return name
    kind = {"greedy_scalar": "greedy", "batched_parallel": "batched", "batched_torchvision": "batched"}.get(m[1], m[1])
    return f"nms/{kind}/{m[2]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", nargs="?", default=os.path.join("build", "benchmarks", "bench_nms"))
    ap.add_argument("--python", default=default_python())
    ap.add_argument("--repeats", type=int, default=7, help="peer calls per measurement (median)")
    ap.add_argument("--min-time", default="0.5", help="--benchmark_min_time for bench_nms")
    ap.add_argument("--repetitions", type=int, default=1, help="bench_nms repetitions (median shown)")
    ap.add_argument("--sizes", default="5000,20000,100000")
    ap.add_argument("--soft-sizes", default="5000,20000")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="-- flags passed to bench_nms")
    args = ap.parse_args()
    extra = [a for a in args.extra if a != "--"]

    with tempfile.TemporaryDirectory(prefix="focal_nms_") as tmp:
        peers = run_peer_json(args.python, os.path.join(HERE, "peers_nms.py"),
                              ["--out", tmp, f"--repeats={args.repeats}", f"--sizes={args.sizes}",
                               f"--soft-sizes={args.soft_sizes}"])
        ctx, rows = run_gbench(args.binary, None, args.min_time, args.repetitions, extra,
                               env={"FOCAL_NMS_INPUTS": tmp})
    rows = {name.replace("/real_time", ""): b for name, b in rows.items()}

    pc = peers.get("context", {})
    print(f"focal: {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, {ctx.get('date', '')}")
    print(f"peers: torch {pc.get('torch', '-')}, torchvision {pc.get('torchvision', '-')}, OpenCV {pc.get('opencv', '-')}, "
          "one thread each")
    print()
    print("| benchmark | focal | boxes/s | kept | torchvision 1T | x tv | OpenCV 1T | x cv2 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, b in rows.items():
        t = real_seconds(b)
        kept = int(b.get("kept", 0))
        peer = peers.get("results", {}).get(peer_key(name), {})
        tv, cv = peer.get("torchvision"), peer.get("opencv")
        kept_s = str(kept)
        if tv and not name.startswith("nms/soft"):
            kept_s += " =tv" if tv["kept"] == kept else f" (tv {tv['kept']})"
        n = int(name.rsplit("/", 1)[1])
        cells = [f"`{name}`", f"{t * 1e3:.3f} ms", f"{n / t / 1e6:.2f} M", kept_s]
        for p in (tv, cv):
            cells += [f"{p['seconds'] * 1e3:.2f} ms", f"{p['seconds'] / t:.1f}x"] if p else ["-", "-"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
