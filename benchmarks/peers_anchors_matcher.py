#!/usr/bin/env python3
"""The torchvision peers of bench_anchors_matcher: anchors, IoU + matcher, box coder on CPU.

Run with a Python that has torch and torchvision (on Debian 12: /usr/bin/python3 with
python3-torch and python3-torchvision). Without them it prints a message and exits 0.

What is timed, per iteration (the same problem as bench_anchors_matcher.cpp):
  anchors/800x1344      AnchorGenerator(sizes (x, int(x 2^(1/3)), int(x 2^(2/3))) for x = 32..512,
                        ratios (0.5, 1, 2)) called on an ImageList of one 800 x 1344 image and five
                        feature maps of 100x168, 50x84, 25x42, 13x21, 7x11 (201,600 anchors)
  matcher/201600x20     Matcher(0.5, 0.4, allow_low_quality_matches=True)(box_iou(gt, anchors)),
                        20 gt boxes (centre uniform, width U[16, 300], height = width x U[0.5, 2])
  coder/encode/201600   BoxCoder((1, 1, 1, 1)).encode_single(matched gt boxes, anchors)
  coder/decode/201600   BoxCoder((1, 1, 1, 1)).decode_single(deltas ~ N(0, 1), anchors)
The random boxes come from torch's generator, not bit-identical to the C++ benchmark's; only
their statistics match, which is all the timing depends on.

Output: one JSON object per line on stdout, e.g.
  {"name": "torchvision/matcher/201600x20/threads:1", "op": "matcher/201600x20", "threads": 1,
   "items": 201600, "seconds": 0.155, "items_per_second": 1.3e6, ...}
"seconds" is the median over the timed repeats; "seconds_min" the fastest. items = anchors (boxes)
per call, as in the C++ benchmark. Progress goes to stderr; a missing torch gives
{"name": "torchvision", "available": false, ...}.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import peer_unavailable  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed iterations per op and thread count (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--threads", default="1,all", help="comma-separated thread counts; 'all' = os.cpu_count()")
    parser.add_argument("--seed", type=int, default=20170807)
    parser.add_argument("--ops", default="anchors,matcher,encode,decode", help="which ops to time")
    args = parser.parse_args()

    try:
        import torch
        import torchvision
        from torchvision.models.detection import _utils as det_utils
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.image_list import ImageList
        from torchvision.ops import box_iou
    except Exception as e:  # ImportError, or a broken install raising something else
        peer_unavailable("torchvision", "torch/torchvision", e)
        return 0

    H, W, M = 800, 1344, 20
    all_threads = os.cpu_count() or 1
    counts = []
    for t in args.threads.split(","):
        t = t.strip()
        c = all_threads if t == "all" else int(t)
        if c not in counts:
            counts.append(c)

    sizes = tuple((s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in (32, 64, 128, 256, 512))
    gen = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * 5)
    images = ImageList(torch.zeros(1, 3, H, W), [(H, W)])
    feats = [torch.zeros(1, 1, math.ceil(H / 2**l), math.ceil(W / 2**l)) for l in range(3, 8)]
    with torch.no_grad():
        anchors = gen(images, feats)[0]
    n = anchors.shape[0]
    assert n == 201600, n

    g = torch.Generator().manual_seed(args.seed)
    cx = torch.rand(M, generator=g) * W
    cy = torch.rand(M, generator=g) * H
    w = 16 + torch.rand(M, generator=g) * (300 - 16)
    h = w * (0.5 + torch.rand(M, generator=g) * 1.5)
    gt = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
    coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    with torch.no_grad():
        matches = matcher(box_iou(gt, anchors))
    matched_gt = gt[matches.clamp(min=0)]
    deltas = torch.randn(n, 4, generator=g)

    def run_anchors():
        return gen(images, feats)

    def run_matcher():
        return matcher(box_iou(gt, anchors))

    def run_encode():
        return coder.encode_single(matched_gt, anchors)

    def run_decode():
        return coder.decode_single(deltas, anchors)

    ops = {
        "anchors": ("anchors/800x1344", run_anchors),
        "matcher": ("matcher/201600x20", run_matcher),
        "encode": ("coder/encode/201600", run_encode),
        "decode": ("coder/decode/201600", run_decode),
    }
    wanted = [o.strip() for o in args.ops.split(",") if o.strip()]
    with torch.no_grad():
        for threads in counts:
            torch.set_num_threads(threads)
            for key in wanted:
                op, fn = ops[key]
                for _ in range(args.warmup):
                    fn()
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                med = statistics.median(times)
                row = {
                    "name": f"torchvision/{op}/threads:{threads}",
                    "available": True,
                    "op": op,
                    "threads": threads,
                    "all_threads": threads == all_threads,
                    "items": n,
                    "repeats": len(times),
                    "seconds": med,
                    "seconds_min": min(times),
                    "items_per_second": n / med,
                    "positives": int((matches >= 0).sum()),
                    "torch": torch.__version__,
                    "torchvision": torchvision.__version__,
                    "torch_get_num_threads": torch.get_num_threads(),
                }
                print(json.dumps(row), flush=True)
                print(f"{row['name']}: {med * 1e3:.3f} ms", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
