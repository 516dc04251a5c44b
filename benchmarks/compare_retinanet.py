#!/usr/bin/env python3
"""Runs bench_retinanet and its torchvision peer (peers_retinanet.py) on the same cases and thread
count; prints a table: case, focal ms, torchvision ms, ratio (torchvision / focal: > 1 means focal
is faster).

Builds nothing. Usage (from the repository root, after building the bench_retinanet target, which
needs the examples: -DFOCAL_BUILD_EXAMPLES=ON):
    python3 benchmarks/compare_retinanet.py [path/to/bench_retinanet] [--threads 2] [--rounds 3] [-- benchmark flags]
Default binary: build/benchmarks/bench_retinanet. The peer runs under --python (default
/usr/bin/python3 when it exists: Debian's python3-torch and python3-torchvision live there).

Cases: train_step/demo/128x128/batch:8, train_step/paper/512x512/batch:2 (forward, loss, backward,
SGD step) and inference/paper/800x1344/batch:1 (forward and post-processing); see
bench_retinanet.cpp and peers_retinanet.py. Both sides run --threads threads (cpu::set_threads /
torch.set_num_threads). Times are wall-clock per step (per image for inference): the best
repetition of each side (Google Benchmark's "min" aggregate; the peer's fastest call), the robust
figure on a shared machine; the medians follow in brackets. The parameter counts of both models are
checked to be equal (the architectures match).

A run takes a few minutes on 2 cores: the paper cases are seconds per step on either side.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_common import (default_python, parse_passthrough, run_peer_lines, torch_peer_line,  # noqa: E402
                          write_json_out)

UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def run_bench(binary, threads, extra):
    """{case: {"min": s, "median": s, "parameters": n}} from bench_retinanet's aggregates."""
    cmd = [binary, "--benchmark_format=json", *extra]
    env = dict(os.environ, FOCAL_RETINANET_THREADS=str(threads))
    print(f"running: FOCAL_RETINANET_THREADS={threads} " + " ".join(cmd), file=sys.stderr, flush=True)
    doc = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env).stdout)
    cases = {}
    for b in doc["benchmarks"]:
        if b.get("error_occurred") or b.get("run_type") != "aggregate":
            continue
        name = b.get("run_name", b["name"])  # retinanet/<case>/threads:T/...
        parts = name.split("/")
        case = "/".join(parts[1:parts.index(next(p for p in parts if p.startswith("threads:")))])
        seconds = b["real_time"] * UNIT_SECONDS[b.get("time_unit", "ns")]
        row = cases.setdefault(case, {"parameters": int(b.get("parameters", 0))})
        if b.get("aggregate_name") in ("min", "median"):
            row[b["aggregate_name"]] = seconds
    return doc.get("context", {}), cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", nargs="?", default=os.path.join("build", "benchmarks", "bench_retinanet"))
    ap.add_argument("--threads", type=int, default=2, help="threads of both sides (default 2)")
    ap.add_argument("--python", default=default_python(), help="interpreter for peers_retinanet.py")
    ap.add_argument("--torch-repeats", type=int, default=3, help="timed peer calls of the paper cases (demo: 10)")
    ap.add_argument("--no-torch", action="store_true", help="skip the torchvision peer")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run both sides this many times, alternating (focal, torchvision, focal, ...); each side's best "
                         "over the rounds is compared, so a slow phase of a shared machine hits both sides alike (default 1)")
    ap.add_argument("--json-out", help="write the raw results (both tools) to this file")
    args, extra = parse_passthrough(ap)
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: build the bench_retinanet target first (needs -DFOCAL_BUILD_EXAMPLES=ON)")

    rounds = []  # (focal cases, torchvision rows by case) per round
    for r in range(max(1, args.rounds)):
        if args.rounds > 1:
            print(f"round {r + 1} of {args.rounds}", file=sys.stderr, flush=True)
        ctx, focal = run_bench(args.binary, args.threads, extra)
        peer, error = (None, "skipped (--no-torch)") if args.no_torch else run_peer_lines(
            args.python, os.path.join(HERE, "peers_retinanet.py"), [f"--threads={args.threads}", f"--repeats={args.torch_repeats}"])
        rounds.append((focal, {row["case"]: row for row in (peer or []) if "case" in row}))
    # each side's best over the rounds; the median cell: the median of the rounds' medians
    focal, tv = {}, {}
    for f_round, tv_round in rounds:
        for case, row in f_round.items():
            best = focal.setdefault(case, dict(row, medians=[]))
            best["min"] = min(best["min"], row["min"])
            best["medians"].append(row["median"])
        for case, row in tv_round.items():
            best = tv.setdefault(case, dict(row, medians=[]))
            best["min_seconds"] = min(best["min_seconds"], row["min_seconds"])
            best["medians"].append(row["seconds"])
    for row in focal.values():
        row["median"] = statistics.median(row.pop("medians"))
    for row in tv.values():
        row["seconds"] = statistics.median(row.pop("medians"))

    print(f"focal: {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, {ctx.get('date', '')}; "
          f"{args.threads} threads on both sides; {len(rounds)} round(s)")
    print(torch_peer_line(peer, error, args.python, f"torch.set_num_threads({args.threads})"))
    print()
    print("| case | focal ms | torchvision ms | ratio (tv / focal) |")
    print("| --- | --- | --- | --- |")
    for case, f in focal.items():
        t = tv.get(case)
        focal_cell = f"{f['min'] * 1e3:.1f} ({f['median'] * 1e3:.1f})"
        if t:
            tv_cell = f"{t['min_seconds'] * 1e3:.1f} ({t['seconds'] * 1e3:.1f})"
            ratio = f"{t['min_seconds'] / f['min']:.2f}x"
        else:
            tv_cell, ratio = "-", "-"
        print(f"| `{case}` | {focal_cell} | {tv_cell} | {ratio} |")
    print("\nbest repetition (median in brackets); per step, or per image for inference")
    if len(rounds) > 1:
        for case in focal:
            per_round = [f"{t[case]['min_seconds'] / f[case]['min']:.2f}x" for f, t in rounds if case in f and case in t]
            print(f"ratio per round, {case}: {', '.join(per_round)}")
    if peer:
        counts = peer[0].get("parameters", {})
        for config in ("demo", "paper"):
            ours = next((f["parameters"] for c, f in focal.items() if f"/{config}/" in f"/{c}/"), None)
            theirs = counts.get(config)
            verdict = "equal" if ours == theirs else "DIFFERENT"
            print(f"parameters {config}: focal {ours}, torchvision {theirs} ({verdict})")
    write_json_out(args.json_out, {"context": ctx, "focal": focal, "torchvision": peer,
                                   "rounds": [{"focal": f, "torchvision": t} for f, t in rounds]})


if __name__ == "__main__":
    main()
