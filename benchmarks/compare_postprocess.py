#!/usr/bin/env python3
"""Runs bench_postprocess and its torchvision peer in one go; prints images/s and the ratios.
Usage: python3 benchmarks/compare_postprocess.py [build/benchmarks/bench_postprocess] [--python /usr/bin/python3]"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("binary", nargs="?", default="build/benchmarks/bench_postprocess")
ap.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
ap.add_argument("--min-time", default="1")
args = ap.parse_args()

doc = json.loads(subprocess.run([args.binary, "--benchmark_format=json", f"--benchmark_min_time={args.min_time}"],
                                check=True, stdout=subprocess.PIPE, text=True).stdout)
focal = {b["name"]: b["items_per_second"] for b in doc["benchmarks"]}
peer = {}
proc = subprocess.run([args.python, os.path.join(HERE, "peers_postprocess.py")], stdout=subprocess.PIPE, text=True)
for line in proc.stdout.splitlines():
    row = json.loads(line)
    if "images_per_second" in row:
        peer[row["threads"]] = row["images_per_second"]
tv1 = peer.get(1)
print(f"{'benchmark':58} {'images/s':>10} {'x torchvision 1T':>17}")
for name, rate in focal.items():
    print(f"{name:58} {rate:10.1f} {rate / tv1 if tv1 else float('nan'):17.1f}")
for t, rate in sorted(peer.items()):
    print(f"{'torchvision postprocess_detections, threads:' + str(t):58} {rate:10.2f} {rate / tv1:17.2f}")
if not peer:
    print("torchvision peer unavailable: " + proc.stdout.strip())
