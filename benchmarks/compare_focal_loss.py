#!/usr/bin/env python3
"""Runs bench_focal_loss and the torchvision peer in one go and prints a comparison table.

Builds nothing. Usage (from the repository root, after building the bench_focal_loss target):
    python3 benchmarks/compare_focal_loss.py [path/to/bench_focal_loss] [options] [-- benchmark flags]
Default binary: build/benchmarks/bench_focal_loss. This script needs only the standard library;
the torchvision script runs under --python (default /usr/bin/python3 when it exists, since
Debian's python3-torch lives there, else this interpreter).

Columns:
  rate         Melem/s (logits elements N*K per second) for the losses, GB/s for the memory bound
  x tv 1T      focal elements/s / torchvision elements/s with torch.set_num_threads(1)
  x tv allT    the same against torchvision on all threads
  of BW bound  the loss's bytes/s (bytes the fused pass must move: see bench_focal_loss.cpp) /
               memory/bandwidth_bound's bytes/s at the same thread count
Google Benchmark appends "/real_time" to the names of the threaded (UseRealTime) benchmarks.
With --repetitions > 1 the medians are shown.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_focal(binary, min_time, repetitions, extra):
    cmd = [
        binary,
        "--benchmark_format=json",
        "--benchmark_filter=^(focal_loss|memory)/",
        f"--benchmark_min_time={min_time}",
    ]
    if repetitions > 1:
        cmd += [f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"]
    cmd += extra
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    doc = json.loads(out)
    rows = {}
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            print(f"{b['name']}: error: {b.get('error_message')}", file=sys.stderr)
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        rows[b.get("run_name", b["name"])] = b
    return doc.get("context", {}), rows


def run_torchvision(python, repeats):
    script = os.path.join(HERE, "torchvision_focal_loss.py")
    if not python or not os.path.exists(python):
        return None, f"python interpreter {python!r} not found"
    cmd = [python, script, f"--repeats={repeats}"]
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return None, f"{script} exited with {proc.returncode}"
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    if not rows or not rows[0].get("available", False):
        return None, rows[0].get("reason", "no output") if rows else "no output"
    return rows, None


def main():
    default_python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary", nargs="?", default="build/benchmarks/bench_focal_loss")
    p.add_argument("--min-time", default="0.5", help="--benchmark_min_time (Google Benchmark 1.7: seconds, no suffix)")
    p.add_argument("--repetitions", type=int, default=3, help="Google Benchmark repetitions (median shown)")
    p.add_argument("--python", default=default_python, help="interpreter for torchvision_focal_loss.py")
    p.add_argument("--torch-repeats", type=int, default=3, help="timed torchvision iterations per thread count")
    p.add_argument("--no-torch", action="store_true", help="skip the torchvision peer")
    p.add_argument("--json-out", help="write the raw results (both tools) to this file")
    argv = sys.argv[1:]
    extra = []  # everything after "--" goes to the binary, e.g. -- --benchmark_filter=simd
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    a = p.parse_args(argv)

    if not os.path.exists(a.binary):
        print(f"{a.binary} not found: build the bench_focal_loss target first", file=sys.stderr)
        return 2
    context, focal = run_focal(a.binary, a.min_time, a.repetitions, extra)
    if a.no_torch:
        tv, tv_error = None, "skipped (--no-torch)"
    else:
        tv, tv_error = run_torchvision(a.python, a.torch_repeats)

    tv1 = tvall = None
    if tv:
        tv1 = next((r for r in tv if r["threads"] == 1), None)
        tvall = next((r for r in tv if r.get("all_threads")), None) or max(tv, key=lambda r: r["threads"])

    # The memory bound per thread count: bench_focal_loss's "focal_threads" counter (Google
    # Benchmark's own "threads" is always 1 here).
    bound = {}
    for name, b in focal.items():
        if name.startswith("memory/"):
            t = int(round(b.get("focal_threads", 1)))
            bound.setdefault(t, b)

    def ratio(x, y):
        return f"{x / y:8.1f}x" if x and y else "       -"

    header = f"{'benchmark':<58} {'thr':>3} {'rate':>14} {'x tv 1T':>9} {'x tv allT':>9} {'of BW bound':>11}"
    lines = [header, "-" * len(header)]
    for name, b in focal.items():
        t = int(round(b.get("focal_threads", 1)))
        if name.startswith("focal_loss/"):
            eps = b.get("items_per_second", 0.0)
            bound_b = bound.get(t)
            frac = (
                f"{b['bytes_per_second'] / bound_b['bytes_per_second'] * 100:10.1f}%"
                if bound_b and b.get("bytes_per_second")
                else f"{'-':>11}"
            )
            lines.append(
                f"{name:<58} {t:>3} {eps / 1e6:>8.1f} Melem/s"
                + f" {ratio(eps, tv1 and tv1['elements_per_second']):>9}"
                + f" {ratio(eps, tvall and tvall['elements_per_second']):>9} {frac}"
            )
        else:
            lines.append(
                f"{name:<58} {t:>3} {b.get('bytes_per_second', 0.0) / 1e9:>9.1f} GB/s {'-':>9} {'-':>9} {'-':>11}"
            )
    if tv:
        for r in tv:
            eps = r["elements_per_second"]
            lines.append(
                f"{r['name']:<58} {r['threads']:>3} {eps / 1e6:>8.1f} Melem/s"
                + f" {ratio(eps, tv1 and tv1['elements_per_second']):>9}"
                + f" {ratio(eps, tvall and tvall['elements_per_second']):>9} {'-':>11}"
            )
    print("\n".join(lines))
    print()
    keys = ("focal_anchors_N", "focal_classes_K", "focal_positives", "focal_ignored", "focal_simd_arch")
    print("problem: " + ", ".join(f"{k.replace('focal_', '')}={context[k]}" for k in keys if k in context)
          + f"; host cpus={context.get('num_cpus')}; library_build_type={context.get('library_build_type')}")
    if tv:
        print(f"peer: torchvision {tv[0]['torchvision']} / torch {tv[0]['torch']} ({a.python}), "
              f"sigmoid_focal_loss(reduction='sum') + backward, dense one-hot targets, "
              f"median of {tv[0]['repeats']} iterations")
    else:
        print(f"peer: torchvision unavailable ({tv_error}); focal's numbers only")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"focal_context": context, "focal": focal, "torchvision": tv, "torchvision_error": tv_error},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
