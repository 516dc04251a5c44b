#!/usr/bin/env python3
"""Runs bench_postprocess and its torchvision peer in one go; prints images/s and the ratios.
Usage: python3 benchmarks/compare_postprocess.py [build/benchmarks/bench_postprocess] [--python /usr/bin/python3]"""
import argparse, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_common import default_python, run_gbench, run_peer_lines  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("binary", nargs="?", default="build/benchmarks/bench_postprocess")
ap.add_argument("--python", default=default_python())
ap.add_argument("--min-time", default="1")
args = ap.parse_args()

_, rows = run_gbench(args.binary, None, args.min_time, 1)
focal = {name: b["items_per_second"] for name, b in rows.items()}
lines, error = run_peer_lines(args.python, os.path.join(HERE, "peers_postprocess.py"), need_available=False)
peer = {row["threads"]: row["images_per_second"] for row in lines or [] if "images_per_second" in row}
tv1 = peer.get(1)
print(f"{'benchmark':58} {'images/s':>10} {'x torchvision 1T':>17}")
for name, rate in focal.items():
    print(f"{name:58} {rate:10.1f} {rate / tv1 if tv1 else float('nan'):17.1f}")
for t, rate in sorted(peer.items()):
    print(f"{'torchvision postprocess_detections, threads:' + str(t):58} {rate:10.2f} {rate / tv1:17.2f}")
if not peer:
    print("torchvision peer unavailable: " + (error or "no images_per_second in its output"))
