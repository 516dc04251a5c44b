#!/usr/bin/env python3
"""The pycocotools peer of bench_coco_eval, and the generator of the data both evaluate.

  python3 peers_coco_eval.py --generate DIR [--images 5000]   writes DIR/gt.json, DIR/results.json
  python3 peers_coco_eval.py --data DIR [--repeats 1]         times pycocotools on them

The generator needs only the standard library; timing needs numpy and pycocotools
(pip install pycocotools). Without them the timing mode prints {"available": false, ...} and exits 0.

Data (random.Random(seed), so the same files on every machine): N images (default 5000) with
sparse ids below 600,000, 640 x 480; COCO's 80 category ids (1..90 with gaps); per image 0..14
ground-truth boxes (7 on average) of 1..4 categories present in the image, COCO-like sizes (40%
small, 35% medium, 25% large), 1% crowd, "area" 55..100% of the box; exactly 100 detections per
image, like a RetinaNet head with detections_per_img = 100: 1..3 per ground truth (jittered, 90%
the right class, scores 0.3..0.95) and the rest false positives (half near a ground truth with any
class, half anywhere; scores 0.05..0.5), all scores with 6 decimals.

What is timed, per repeat (median reported): COCOeval(gt, dt, "bbox"); evaluate(); accumulate();
summarize() with pycocotools' printing captured. Loading (COCO(gt_file) and loadRes(results_file))
is timed separately, once. Wall time (perf_counter) and process CPU time (process_time) are both
reported; on a shared machine the CPU time is the steadier one. Output: one JSON object per line:
  {"name": "pycocotools/evaluate_accumulate_summarize", "images": 5000, "seconds": 41.2,
   "cpu_seconds": 40.9, "images_per_second": 121.4, "images_per_cpu_second": 122.2, "stats": [...], ...}
"""

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import peer_unavailable  # noqa: E402

COCO_CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
assert len(COCO_CATEGORY_IDS) == 80


def make_dataset(n_images=5000, seed=2017, dets_per_image=100):
    """COCO ground truth (dict) and results (list) with the statistics described above."""
    r = random.Random(seed)
    images = [{"id": i, "width": 640, "height": 480} for i in sorted(r.sample(range(1, 600000), n_images))]
    categories = [{"id": c, "name": f"class_{c}"} for c in COCO_CATEGORY_IDS]
    annotations, results = [], []

    def box(kind=None):
        kind = kind or r.choices(["small", "medium", "large"], [0.40, 0.35, 0.25])[0]
        lo, hi = {"small": (4, 31), "medium": (33, 95), "large": (97, 400)}[kind]
        s = r.uniform(lo, hi)
        a = r.uniform(0.5, 2.0)
        w, h = s * a ** 0.5, s / a ** 0.5
        return [round(r.uniform(0, 640 - min(w, 600)), 2), round(r.uniform(0, 480 - min(h, 440)), 2),
                round(w, 2), round(h, 2)]

    def jitter(b, amount):
        x, y, w, h = b
        return [round(x + r.uniform(-amount, amount) * w, 2), round(y + r.uniform(-amount, amount) * h, 2),
                round(max(w * (1 + r.uniform(-amount, amount)), 1.0), 2),
                round(max(h * (1 + r.uniform(-amount, amount)), 1.0), 2)]

    for img in images:
        iid = img["id"]
        present = r.sample(COCO_CATEGORY_IDS, r.randint(1, 4))
        gts = []
        for _ in range(r.randint(0, 14)):
            b = box()
            crowd = int(r.random() < 0.01)
            ann = {"id": len(annotations) + 1, "image_id": iid, "category_id": r.choice(present), "bbox": b,
                   "area": round(b[2] * b[3] * r.uniform(0.55, 1.0), 2), "iscrowd": crowd}
            annotations.append(ann)
            gts.append(ann)
        dets = []
        for g in gts:
            for _ in range(r.randint(1, 3)):
                c = g["category_id"] if r.random() < 0.9 else r.choice(present)
                dets.append((c, jitter(g["bbox"], r.choice([0.05, 0.1, 0.2])), round(r.uniform(0.3, 0.95), 6)))
        while len(dets) < dets_per_image:
            if gts and r.random() < 0.5:
                b = jitter(r.choice(gts)["bbox"], 0.5)
                c = r.choice(COCO_CATEGORY_IDS if r.random() < 0.5 else present)
            else:
                b = box()
                c = r.choice(COCO_CATEGORY_IDS)
            dets.append((c, b, round(r.uniform(0.05, 0.5), 6)))
        dets.sort(key=lambda d: -d[2])
        for c, b, s in dets[:dets_per_image]:
            results.append({"image_id": iid, "category_id": c, "bbox": b, "score": s})
    return {"images": images, "categories": categories, "annotations": annotations}, results


def generate(directory, n_images, seed):
    os.makedirs(directory, exist_ok=True)
    gt, results = make_dataset(n_images, seed)
    with open(os.path.join(directory, "gt.json"), "w") as f:
        json.dump(gt, f, separators=(",", ":"))
    with open(os.path.join(directory, "results.json"), "w") as f:
        json.dump(results, f, separators=(",", ":"))
    return gt, results


def time_pycocotools(directory, repeats):
    try:
        import numpy
        import pycocotools
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        from importlib.metadata import version
    except Exception as e:  # ImportError, or a broken install raising something else
        peer_unavailable("pycocotools", "pycocotools", e)
        return 0
    del pycocotools
    sink = io.StringIO()
    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(sink):
        gt = COCO(os.path.join(directory, "gt.json"))
        dt = gt.loadRes(os.path.join(directory, "results.json"))
    load, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    n_images = len(gt.getImgIds())
    common = {"available": True, "images": n_images, "annotations": len(gt.getAnnIds()),
              "detections": len(dt.getAnnIds()), "pycocotools": version("pycocotools"), "numpy": numpy.__version__,
              "python": sys.version.split()[0]}
    print(json.dumps(dict(common, name="pycocotools/load_json", seconds=load, cpu_seconds=load_cpu,
                          images_per_second=n_images / load, images_per_cpu_second=n_images / load_cpu)), flush=True)
    times, cpu_times, stats = [], [], None
    for i in range(repeats):
        print(f"pycocotools: evaluate + accumulate + summarize, repeat {i + 1}/{repeats}", file=sys.stderr, flush=True)
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(sink):
            e = COCOeval(gt, dt, "bbox")
            e.evaluate()
            e.accumulate()
            e.summarize()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        stats = [float(v) for v in e.stats]
    med, med_cpu = statistics.median(times), statistics.median(cpu_times)
    print(json.dumps(dict(common, name="pycocotools/evaluate_accumulate_summarize", seconds=med,
                          seconds_min=min(times), cpu_seconds=med_cpu, repeats=repeats,
                          images_per_second=n_images / med, images_per_cpu_second=n_images / med_cpu, stats=stats)))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--generate", metavar="DIR", help="write gt.json and results.json to DIR")
    p.add_argument("--data", metavar="DIR", help="time pycocotools on DIR/gt.json and DIR/results.json")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--seed", type=int, default=2017)
    p.add_argument("--repeats", type=int, default=1, help="timed evaluations (median reported)")
    a = p.parse_args()
    if not a.generate and not a.data:
        p.error("give --generate DIR and/or --data DIR")
    if a.generate:
        gt, results = generate(a.generate, a.images, a.seed)
        print(f"wrote {len(gt['images'])} images, {len(gt['annotations'])} annotations, {len(results)} detections "
              f"to {a.generate}", file=sys.stderr)
    if a.data:
        return time_pycocotools(a.data, a.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
