#!/usr/bin/env python3
"""Runs bench_coco_eval and the pycocotools peer on the same COCO files and prints a comparison.

Builds nothing. Usage (from the repository root, after building the bench_coco_eval target):
    python3 benchmarks/compare_coco_eval.py [path/to/bench_coco_eval] [options] [-- benchmark flags]
Default binary: build/benchmarks/bench_coco_eval. The data (5,000 images, ~7 ground-truth boxes and
exactly 100 detections per image, COCO's 80 categories: see peers_coco_eval.py) is generated once
with this interpreter into a temporary folder (or --data DIR, kept), and both tools read the same
gt.json / results.json: bench_coco_eval through FOCAL_COCO_EVAL_DATA, peers_coco_eval.py (run with
--python, default this interpreter, which needs numpy and pycocotools) through --data.

Columns:
  time          per evaluation: images / (images/s)
  images/s      images evaluated per second (focal: Google Benchmark's items/s, from CPU time for
                one thread and from wall time for the ".../real_time" one; pycocotools: process CPU
                time, median; it runs on one thread)
  x pycocotools images/s over pycocotools' evaluate + accumulate + summarize (for read_json: over
                pycocotools' COCO() + loadRes())
The last lines compare focal's 12 stats with pycocotools' (the largest absolute difference).
"""

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peers_coco_eval  # noqa: E402  (the data generator: standard library only)
from bench_common import (  # noqa: E402
    binary_missing, host_line, parse_passthrough, run_gbench, run_peer_lines, write_json_out,
)

STAT_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def run_peer(python, data, repeats):
    rows, error = run_peer_lines(python, os.path.join(HERE, "peers_coco_eval.py"),
                                 ["--data", data, f"--repeats={repeats}"],
                                 note="   (pycocotools takes about a minute)")
    return ({r["name"]: r for r in rows}, None) if rows else (None, error)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary", nargs="?", default="build/benchmarks/bench_coco_eval")
    p.add_argument("--data", help="folder for gt.json / results.json (generated there if missing; default: a temp dir)")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--min-time", default="1", help="--benchmark_min_time (Google Benchmark 1.7: seconds, no suffix)")
    p.add_argument("--repetitions", type=int, default=3, help="Google Benchmark repetitions (median shown)")
    p.add_argument("--python", default=sys.executable, help="interpreter with pycocotools for peers_coco_eval.py")
    p.add_argument("--peer-repeats", type=int, default=1, help="timed pycocotools evaluations (median)")
    p.add_argument("--no-peer", action="store_true", help="skip pycocotools")
    p.add_argument("--json-out", help="write the raw results (both tools) to this file")
    a, extra = parse_passthrough(p)  # after "--": to the binary
    if binary_missing(a.binary, "bench_coco_eval"):
        return 2

    with tempfile.TemporaryDirectory(prefix="focal_coco_eval_") as tmp:
        data = a.data or tmp
        if not (os.path.exists(os.path.join(data, "gt.json")) and os.path.exists(os.path.join(data, "results.json"))):
            print(f"generating {a.images} images into {data}", file=sys.stderr, flush=True)
            peers_coco_eval.generate(data, a.images, 2017)
        context, focal = run_gbench(a.binary, "^coco_eval/", a.min_time, a.repetitions, extra,
                                    env={"FOCAL_COCO_EVAL_DATA": data})
        peer, peer_error = (None, "skipped (--no-peer)") if a.no_peer else run_peer(a.python, data, a.peer_repeats)

    images = int(context.get("focal_images", a.images))
    base_eval = peer and peer.get("pycocotools/evaluate_accumulate_summarize")
    base_load = peer and peer.get("pycocotools/load_json")

    def peer_rate(r):  # CPU time: pycocotools is single-threaded, and CPU time ignores other load
        return r.get("images_per_cpu_second", r["images_per_second"])

    def ratio(rate, base):
        return f"{rate / peer_rate(base):>11.0f}x" if base else f"{'-':>12}"

    header = f"{'benchmark':<48} {'thr':>3} {'time':>11} {'images/s':>11} {'x pycocotools':>13}"
    lines = [header, "-" * len(header)]
    for name, b in focal.items():
        # Google Benchmark's items/s: from CPU time, or wall time for ".../real_time" (threaded).
        rate = b["items_per_second"]
        seconds = images / rate
        base = base_load if name.endswith("/read_json") else base_eval
        lines.append(f"{name:<48} {int(b.get('focal_threads', 1)):>3} {seconds * 1e3:>8.1f} ms {rate:>11.0f} "
                     f"{ratio(rate, base)}")
    if peer:
        for name in ("pycocotools/evaluate_accumulate_summarize", "pycocotools/load_json"):
            r = peer[name]
            base = base_load if name.endswith("load_json") else base_eval
            rate = peer_rate(r)
            lines.append(f"{name:<48} {1:>3} {images / rate * 1e3:>8.0f} ms {rate:>11.0f} {ratio(rate, base)}")
    print("\n".join(lines))
    print()
    print(f"data: {images} images, {context.get('focal_annotations')} annotations, "
          f"{context.get('focal_detections')} detections, {context.get('focal_categories')} categories; "
          + host_line(context))
    if peer:
        r = base_eval
        print(f"peer: pycocotools {r['pycocotools']} / numpy {r['numpy']} / python {r['python']} ({a.python}), "
              f"COCOeval(gt, dt, 'bbox') evaluate + accumulate + summarize, median of {r['repeats']} "
              f"({r['seconds']:.1f} s wall, {r.get('cpu_seconds', r['seconds']):.1f} s CPU)")
        ours = [float(v) for v in context.get("focal_stats", "").split(",") if v]
        if len(ours) == 12 and r.get("stats"):
            diffs = [abs(x - y) for x, y in zip(ours, r["stats"])]
            worst = max(range(12), key=lambda i: diffs[i])
            same = "bit-identical" if max(diffs) == 0 else f"largest difference {diffs[worst]:.3g} ({STAT_NAMES[worst]})"
            print(f"stats: {same}; AP {ours[0]:.6f} / pycocotools {r['stats'][0]:.6f}")
    else:
        print(f"peer: pycocotools unavailable ({peer_error}); focal's numbers only")
    write_json_out(a.json_out, {"focal_context": context, "focal": focal, "pycocotools": peer,
                                "peer_error": peer_error})
    return 0


if __name__ == "__main__":
    sys.exit(main())
