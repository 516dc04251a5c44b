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
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def run_focal(binary, min_time, repetitions, extra):
    cmd = [
        binary,
        "--benchmark_format=json",
        "--benchmark_filter=^(anchors|matcher|targets|coder)/",
        f"--benchmark_min_time={min_time}",
    ]
    if repetitions > 1:
        cmd += [f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"]
    cmd += extra
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    doc = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
    rows = {}
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            print(f"{b['name']}: error: {b.get('error_message')}", file=sys.stderr)
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        rows[b.get("run_name", b["name"])] = b
    return doc.get("context", {}), rows


def run_peers(python, repeats):
    script = os.path.join(HERE, "peers_anchors_matcher.py")
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


def op_of(name):
    parts = [p for p in name.split("/") if p not in ("scalar", "parallel", "real_time")]
    return "/".join(parts)


def main():
    default_python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary", nargs="?", default="build/benchmarks/bench_anchors_matcher")
    p.add_argument("--min-time", default="0.3", help="--benchmark_min_time (Google Benchmark 1.7: seconds, no suffix)")
    p.add_argument("--repetitions", type=int, default=3, help="Google Benchmark repetitions (median shown)")
    p.add_argument("--python", default=default_python, help="interpreter for peers_anchors_matcher.py")
    p.add_argument("--torch-repeats", type=int, default=7, help="timed torchvision calls per op and thread count")
    p.add_argument("--no-torch", action="store_true", help="skip the torchvision peers")
    p.add_argument("--json-out", help="write the raw results (both tools) to this file")
    argv = sys.argv[1:]
    extra = []  # everything after "--" goes to the binary, e.g. -- --benchmark_filter=matcher
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    a = p.parse_args(argv)

    if not os.path.exists(a.binary):
        print(f"{a.binary} not found: build the bench_anchors_matcher target first", file=sys.stderr)
        return 2
    context, focal = run_focal(a.binary, a.min_time, a.repetitions, extra)
    if a.no_torch:
        tv, tv_error = None, "skipped (--no-torch)"
    else:
        tv, tv_error = run_peers(a.python, a.torch_repeats)

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
        seconds = b["real_time"] * UNIT_SECONDS[b.get("time_unit", "ns")]
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
    print("problem: " + ", ".join(f"{k.replace('focal_', '')}={context[k]}" for k in keys if k in context)
          + f"; host cpus={context.get('num_cpus')}; library_build_type={context.get('library_build_type')}")
    print("focal times are wall-clock (real_time) medians; rates are anchors per wall-clock second")
    if tv:
        print(f"peer: torchvision {tv[0]['torchvision']} / torch {tv[0]['torch']} ({a.python}), "
              f"median of {tv[0]['repeats']} calls per op and thread count")
    else:
        print(f"peer: torchvision unavailable ({tv_error}); focal's numbers only")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"focal_context": context, "focal": focal, "torchvision": tv, "torchvision_error": tv_error},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
