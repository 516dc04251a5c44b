#!/usr/bin/env python3
"""Runs bench_anchors_matcher and the torchvision peers in one go and prints a ratio table.

Builds nothing. Usage (from the repository root, after building the bench_anchors_matcher target):
    python3 benchmarks/compare_anchors_matcher.py [path/to/bench_anchors_matcher] [options] [-- benchmark flags]
Default binary: build/benchmarks/bench_anchors_matcher. This script needs only the standard
library; peers_anchors_matcher.py runs under --python (default /usr/bin/python3 when it exists,
since Debian's python3-torch lives there, else this interpreter).

Columns:
  thr         threads the benchmark ran with
  time        wall-clock milliseconds per call (median over repetitions with --repetitions > 1)
  rate        Mitems/s, items = anchors (boxes) per call: 201,600
  x tv 1T     torchvision's time for the same op with torch.set_num_threads(1) / focal's time
  x tv allT   the same against torchvision on all threads
The op of a focal benchmark is its name without "/scalar", "/parallel" and "/real_time".
targets/201600x20 (match + build targets) is compared with torchvision's matcher + encode_single
times added (what RetinaNet.compute_loss runs per image to get its targets).
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_common import (  # noqa: E402
    add_gbench_arguments, add_torch_peer_arguments, binary_missing, parse_passthrough, problem_line, real_seconds,
    run_gbench, run_torch_peer, torch_peer_line, write_json_out,
)


def op_of(name):
    parts = [p for p in name.split("/") if p not in ("scalar", "parallel", "real_time")]
    return "/".join(parts)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_gbench_arguments(p, "build/benchmarks/bench_anchors_matcher", "0.3")
    add_torch_peer_arguments(p, "peers_anchors_matcher.py", 7, "timed torchvision calls per op and thread count",
                             "peers")
    a, extra = parse_passthrough(p)  # after "--": to the binary, e.g. -- --benchmark_filter=matcher
    if binary_missing(a.binary, "bench_anchors_matcher"):
        return 2
    context, focal = run_gbench(a.binary, "^(anchors|matcher|targets|coder)/", a.min_time, a.repetitions, extra)
    tv, tv_error = run_torch_peer(a, "peers_anchors_matcher.py")

    # torchvision seconds per op, at 1 thread and at all threads.
    tv1, tvall = {}, {}
    if tv:
        most = max(r["threads"] for r in tv)
        for r in tv:
            if r["threads"] == 1:
                tv1[r["op"]] = r["seconds"]
            if r.get("all_threads") or r["threads"] == most:
                tvall[r["op"]] = r["seconds"]
        for table in (tv1, tvall):
            if "matcher/201600x20" in table and "coder/encode/201600" in table:
                table["targets/201600x20"] = table["matcher/201600x20"] + table["coder/encode/201600"]

    items = int(context.get("focal_anchors_N", 201600))

    def ratio(tv_seconds, seconds):
        return f"{tv_seconds / seconds:8.1f}x" if tv_seconds and seconds else "       -"

    header = f"{'benchmark':<44} {'thr':>3} {'time':>11} {'rate':>16} {'x tv 1T':>9} {'x tv allT':>9}"
    lines = [header, "-" * len(header)]
    for name, b in focal.items():
        seconds = real_seconds(b)
        rate = items / seconds if seconds else 0.0  # every benchmark handles N anchors per call
        op = op_of(name)
        t = int(round(b.get("focal_threads", 1)))
        lines.append(f"{name:<44} {t:>3} {seconds * 1e3:>8.3f} ms {rate / 1e6:>8.1f} Mitem/s"
                     f" {ratio(tv1.get(op), seconds):>9} {ratio(tvall.get(op), seconds):>9}")
    if tv:
        for r in tv:
            lines.append(f"{r['name']:<44} {r['threads']:>3} {r['seconds'] * 1e3:>8.3f} ms"
                         f" {r['items_per_second'] / 1e6:>8.1f} Mitem/s {ratio(tv1.get(r['op']), r['seconds']):>9}"
                         f" {ratio(tvall.get(r['op']), r['seconds']):>9}")
    print("\n".join(lines))
    print()
    keys = ("focal_anchors_N", "focal_gt_M", "focal_image", "focal_simd_arch")
    print(problem_line(context, keys))
    print("focal times are wall-clock (real_time) medians; rates are anchors per wall-clock second")
    print(torch_peer_line(tv, tv_error, a.python,
                          f"median of {tv[0]['repeats'] if tv else 0} calls per op and thread count"))
    write_json_out(a.json_out, {"focal_context": context, "focal": focal, "torchvision": tv,
                                "torchvision_error": tv_error})
    return 0


if __name__ == "__main__":
    sys.exit(main())
