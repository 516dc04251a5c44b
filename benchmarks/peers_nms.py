#!/usr/bin/env python3
"""NMS peers: torchvision.ops.nms / batched_nms and OpenCV's cv2.dnn NMS on bench_nms's inputs.

Usage: python3 benchmarks/peers_nms.py --out DIR [--sizes 5000,20000,100000] [--repeats 7] [--seed 1]
Writes DIR/{boxes,scores,classes}_<N>.npy for every N (float32 N x 4 xyxy, float32 N, int64 N), the
inputs bench_nms reads when FOCAL_NMS_INPUTS=DIR, then times the peers on them and prints one JSON
object: {"context": {...}, "results": {benchmark name: {peer: {"seconds": median, "kept": n}}}}.
Benchmark names are bench_nms's (nms/greedy/<N>, nms/batched/<N>, nms/soft/<N>, nms/soft_linear/<N>).

Inputs, as tools/make_fixtures.py: N / 20 cluster boxes (centres uniform on 1000 x 800, widths
16..300, aspect 0.5..2), members jittered by normal(0, 6) px, x2 >= x1 + 1, y2 >= y1 + 1; scores
uniform rounded to 2 decimals; classes uniform in 0..4; numpy default_rng(seed + N).

Peers, one thread each (torch.set_num_threads(1), cv2.setNumThreads(1)):
  torchvision  nms(boxes, scores, 0.5); batched_nms(..., classes, 0.5) (N > 1000: its per-class loop)
  opencv       cv2.dnn.NMSBoxes(xywh, scores, 0.0, 0.5) (keeps score > 0 only: the 0.00 scores drop);
               batched: NMSBoxes per class (OpenCV 4.6's python has no NMSBoxesBatched);
               soft: cv2.dnn.softNMSBoxes on integer Rects (its only overload), Gaussian sigma 0.5
               or linear 0.3, score threshold 0.001
Times are the median of --repeats calls after one warm-up call; conversions to the peer's input
types (tensors, lists) are done once, outside the timing.
"""

import argparse
import json
import os
import sys
import time

import numpy as np


def make_inputs(n, seed):
    rng = np.random.default_rng(seed + n)
    m = max(n // 20, 1)
    cx = rng.uniform(0, 1000, m)
    cy = rng.uniform(0, 800, m)
    w = rng.uniform(16, 300, m)
    h = w * rng.uniform(0.5, 2, m)
    centres = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)
    idx = rng.integers(0, m, n)
    boxes = centres[idx] + rng.normal(0, 6, (n, 4)).astype(np.float32)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    scores = np.round(rng.uniform(0, 1, n), 2).astype(np.float32)
    classes = rng.integers(0, 5, n).astype(np.int64)
    return np.ascontiguousarray(boxes, dtype=np.float32), scores, classes


def median_time(fn, repeats):
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="directory for the input .npy files")
    ap.add_argument("--sizes", default="5000,20000,100000")
    ap.add_argument("--soft-sizes", default="5000,20000")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    soft_sizes = [int(s) for s in args.soft_sizes.split(",") if s]

    inputs = {}
    for n in sorted(set(sizes) | set(soft_sizes)):
        boxes, scores, classes = make_inputs(n, args.seed)
        np.save(os.path.join(args.out, f"boxes_{n}.npy"), boxes)
        np.save(os.path.join(args.out, f"scores_{n}.npy"), scores)
        np.save(os.path.join(args.out, f"classes_{n}.npy"), classes)
        inputs[n] = (boxes, scores, classes)

    results = {}
    context = {"seed": args.seed, "repeats": args.repeats, "threads": 1}

    def record(name, peer, seconds, kept):
        results.setdefault(name, {})[peer] = {"seconds": seconds, "kept": int(kept)}
        print(f"{name:28s} {peer:12s} {seconds * 1e3:10.3f} ms  kept {kept}", file=sys.stderr, flush=True)

    try:
        import torch
        import torchvision
        from torchvision.ops import batched_nms, nms

        torch.set_num_threads(1)
        context["torch"] = torch.__version__
        context["torchvision"] = torchvision.__version__
        for n in sizes:
            boxes, scores, classes = (torch.from_numpy(a) for a in inputs[n])
            t, keep = median_time(lambda: nms(boxes, scores, 0.5), args.repeats)
            record(f"nms/greedy/{n}", "torchvision", t, len(keep))
            if n <= 20000:
                t, keep = median_time(lambda: batched_nms(boxes, scores, classes, 0.5), args.repeats)
                record(f"nms/batched/{n}", "torchvision", t, len(keep))
    except ImportError as e:
        context["torchvision_error"] = str(e)

    try:
        import cv2

        cv2.setNumThreads(1)
        context["opencv"] = cv2.__version__
        for n in sizes:
            boxes, scores, classes = inputs[n]
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).astype(np.float64).tolist()
            sc = scores.tolist()
            t, keep = median_time(lambda: cv2.dnn.NMSBoxes(xywh, sc, 0.0, 0.5), args.repeats)
            record(f"nms/greedy/{n}", "opencv", t, len(keep))
            if n <= 20000:
                per_class = []
                for c in range(5):
                    sel = np.nonzero(classes == c)[0]
                    per_class.append(([xywh[i] for i in sel], [sc[i] for i in sel]))

                def batched():
                    return sum(len(cv2.dnn.NMSBoxes(b, s, 0.0, 0.5)) for b, s in per_class)

                t, kept = median_time(batched, args.repeats)
                record(f"nms/batched/{n}", "opencv", t, kept)
        for n in soft_sizes:
            boxes, scores, _ = inputs[n]
            rects = np.round(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)).astype(np.int32).tolist()
            sc = scores.tolist()
            reps = max(1, args.repeats // 2) if n > 5000 else args.repeats
            t, out = median_time(lambda: cv2.dnn.softNMSBoxes(rects, sc, 0.001, 0.3, 0, 0.5,
                                                              cv2.dnn.SOFT_NMSMETHOD_SOFTNMS_GAUSSIAN), reps)
            record(f"nms/soft/{n}", "opencv", t, len(out[1]))
            t, out = median_time(lambda: cv2.dnn.softNMSBoxes(rects, sc, 0.001, 0.3, 0, 0.5,
                                                              cv2.dnn.SOFT_NMSMETHOD_SOFTNMS_LINEAR), reps)
            record(f"nms/soft_linear/{n}", "opencv", t, len(out[1]))
    except ImportError as e:
        context["opencv_error"] = str(e)

    json.dump({"context": context, "results": results}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
