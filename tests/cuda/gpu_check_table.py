#!/usr/bin/env python3
"""Prints gpu_check.sh's table: focal's CUDA benchmark rows beside torchvision's for the same cases.

usage: gpu_check_table.py FOCAL_JSON [PEER_JSON...]
FOCAL_JSON is focal_cuda_bench --json output; each PEER_JSON is {"rows": [{"name", "ms"}]} from a
benchmarks/cuda/peers_*.py script. Bandwidth rows are also shown as a share of the measured
device-to-device copy bandwidth (the "copy/..." row).
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"(could not read {path}: {e})", file=sys.stderr)
        return {"rows": []}


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    focal = load(argv[1])
    peer = {}
    for path in argv[2:]:
        for row in load(path).get("rows", []):
            peer[row["name"]] = row["ms"]
    rows = focal.get("rows", [])
    copy_gbs = next((r["bytes"] / r["ms"] * 1e-6 for r in rows if r["name"].startswith("copy/") and r["ms"] > 0), None)
    print(f"GPU: {focal.get('device', '?')}")
    print()
    print("| case | focal ms | GB/s (% of copy) | torchvision ms | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        gbs = ""
        if r.get("bytes", 0) > 0 and r["ms"] > 0:
            g = r["bytes"] / r["ms"] * 1e-6
            gbs = f"{g:.0f}" + (f" ({100 * g / copy_gbs:.0f}%)" if copy_gbs and not r["name"].startswith("copy/") else "")
        p = peer.get(r["name"])
        ps = f"{p:.3f}" if p is not None else "-"
        speed = f"{p / r['ms']:.1f}x" if p is not None and r["ms"] > 0 else "-"
        print(f"| {r['name']} | {r['ms']:.3f} | {gbs} | {ps} | {speed} |")
    missing = sorted(set(peer) - {r["name"] for r in rows})
    if missing:
        print(f"\n(torchvision cases without a focal row: {', '.join(missing)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
