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
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_common import (  # noqa: E402
    add_gbench_arguments, add_torch_peer_arguments, binary_missing, parse_passthrough, problem_line, run_gbench,
    run_torch_peer, torch_peer_line, write_json_out,
)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_gbench_arguments(p, "build/benchmarks/bench_focal_loss", "0.5")
    add_torch_peer_arguments(p, "torchvision_focal_loss.py", 3, "timed torchvision iterations per thread count", "peer")
    a, extra = parse_passthrough(p)  # after "--": to the binary, e.g. -- --benchmark_filter=simd
    if binary_missing(a.binary, "bench_focal_loss"):
        return 2
    context, focal = run_gbench(a.binary, "^(focal_loss|memory)/", a.min_time, a.repetitions, extra)
    tv, tv_error = run_torch_peer(a, "torchvision_focal_loss.py")

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
    print(problem_line(context, keys))
    print(torch_peer_line(tv, tv_error, a.python, "sigmoid_focal_loss(reduction='sum') + backward, dense one-hot "
                          f"targets, median of {tv[0]['repeats'] if tv else 0} iterations"))
    write_json_out(a.json_out, {"focal_context": context, "focal": focal, "torchvision": tv,
                                "torchvision_error": tv_error})
    return 0


if __name__ == "__main__":
    sys.exit(main())
