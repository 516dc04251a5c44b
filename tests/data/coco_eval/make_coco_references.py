"""COCO bbox evaluation references from pycocotools, for focal's COCO evaluator tests.

Usage: python3 make_coco_references.py [OUT_DIR]   (default: this file's directory)
Needs numpy and pycocotools (pip install pycocotools). Writes, for every case,
OUT_DIR/<case>/gt.json (COCO ground truth) and OUT_DIR/<case>/results.json (COCO results), and
OUT_DIR/expected.json with pycocotools' numbers:
  iou_thresholds, recall_thresholds   Params().iouThrs / recThrs exactly (numpy linspace values)
  cases.<case>.stats                  COCOeval.stats after evaluate(), accumulate(), summarize()
  cases.<case>.summary                what summarize() prints
  cases.<case>.recall                 eval['recall'] flattened, shape [T, K, A, M] (C order)
  cases.<case>.precision_samples      [t, r, k, a, m, value] for a fixed sample of eval['precision']
  cases.<case>.precision_curves       [t, k, a, m, [101 values]] for a few whole curves
  cases.<case>.category_ap            mean of precision[:, :, k, 0 (all), 2 (100)] over entries > -1
  iou_pairs                           maskUtils.iou(dt, gt, iscrowd) on random non-integer boxes
The cases are built with Python's random module (fixed seeds), so the inputs are the same on every
machine; only the pycocotools / numpy versions recorded in expected.json could change the numbers.

pycocotools' loadRes cannot load an empty results list (it reads anns[0]); the no_detections case
therefore builds the detections COCO object by hand. Its evaluator handles that case normally.
"""
import contextlib
import io
import json
import os
import random
import sys

import numpy as np
import pycocotools
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def rnd(v, digits):
    return round(v, digits) if digits is not None else v


class Case:
    """A COCO ground truth and results list under construction."""

    def __init__(self, seed, categories, n_images, digits=2):
        self.r = random.Random(seed)
        self.digits = digits
        self.categories = [{"id": c, "name": f"class_{c}"} for c in categories]
        # Sparse image ids, listed in shuffled order: the evaluator must order images by id.
        ids = self.r.sample(range(1, 600000), n_images)
        self.images = [{"id": i, "width": 640, "height": 480} for i in ids]
        self.annotations = []
        self.next_id = 0  # annotation ids from 1 (pycocotools reads a matched id 0 as "unmatched")
        self.results = []

    def box(self, size_class=None):
        """A box of a given area class (small < 32^2 < medium < 96^2 < large), xywh."""
        r = self.r
        size_class = size_class or r.choice(["small", "medium", "large"])
        side = {"small": (2, 31), "medium": (33, 95), "large": (97, 400)}[size_class]
        s = r.uniform(*side)
        aspect = r.uniform(0.5, 2.0)
        w, h = s * aspect ** 0.5, s / aspect ** 0.5
        x, y = r.uniform(0, 640 - min(w, 600)), r.uniform(0, 480 - min(h, 440))
        return [rnd(x, self.digits), rnd(y, self.digits), rnd(w, self.digits), rnd(h, self.digits)]

    def gt(self, image_id, category_id, bbox, iscrowd=0, area=None, **extra):
        if area is None:
            # COCO's area is the segment's: a fraction of the box (sometimes the whole box).
            f = 1.0 if self.r.random() < 0.3 else self.r.uniform(0.55, 0.95)
            area = rnd(bbox[2] * bbox[3] * f, 2)
        self.next_id += 1
        ann = {"id": self.next_id, "image_id": image_id, "category_id": category_id,
               "bbox": bbox, "area": area, "iscrowd": iscrowd}
        ann.update(extra)
        self.annotations.append(ann)
        return ann

    def det(self, image_id, category_id, bbox, score):
        self.results.append({"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score})

    def jitter(self, bbox, amount):
        """bbox moved and rescaled by up to `amount` of its size (IoU from ~0.2 to 1)."""
        r = self.r
        x, y, w, h = bbox
        dx, dy = r.uniform(-amount, amount) * w, r.uniform(-amount, amount) * h
        sw, sh = 1 + r.uniform(-amount, amount), 1 + r.uniform(-amount, amount)
        return [rnd(x + dx, self.digits), rnd(y + dy, self.digits), rnd(max(w * sw, 0.5), self.digits),
                rnd(max(h * sh, 0.5), self.digits)]

    def score(self, digits=4):
        return round(self.r.random(), digits)

    def populate(self, gt_per_image=(0, 6), dets_per_gt=(0, 3), false_positives=(0, 6), score_digits=4,
                 empty_images=(), no_det_images=(), gt_categories=None):
        """Random GT per image, detections near them (some with a wrong class) and false positives."""
        r = self.r
        cats = [c["id"] for c in self.categories]
        gt_cats = gt_categories or cats
        for k, img in enumerate(self.images):
            iid = img["id"]
            if k in empty_images:
                continue
            for _ in range(r.randint(*gt_per_image)):
                cat = r.choice(gt_cats)
                g = self.gt(iid, cat, self.box())
                if k in no_det_images:
                    continue
                for _ in range(r.randint(*dets_per_gt)):
                    c = cat if r.random() < 0.85 else r.choice(cats)
                    self.det(iid, c, self.jitter(g["bbox"], r.choice([0.05, 0.15, 0.3])), self.score(score_digits))
            if k in no_det_images:
                continue
            for _ in range(r.randint(*false_positives)):
                self.det(iid, r.choice(cats), self.box(), self.score(score_digits))

    def write(self, name):
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        # Results in a shuffled order: grouping must not depend on it (except for score ties).
        with open(os.path.join(d, "gt.json"), "w") as f:
            json.dump({"images": self.images, "categories": self.categories, "annotations": self.annotations},
                      f, separators=(",", ":"))
        with open(os.path.join(d, "results.json"), "w") as f:
            json.dump(self.results, f, separators=(",", ":"))


def evaluate(name):
    d = os.path.join(OUT, name)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(os.path.join(d, "gt.json"))
        with open(os.path.join(d, "results.json")) as f:
            results = json.load(f)
        if results:
            dt = gt.loadRes(results)
        else:  # loadRes reads anns[0]: build the empty detections object directly
            dt = COCO()
            dt.dataset = {"images": gt.dataset["images"], "categories": gt.dataset["categories"], "annotations": []}
            dt.createIndex()
        e = COCOeval(gt, dt, "bbox")
        e.evaluate()
        e.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        e.summarize()
    prec, rec = e.eval["precision"], e.eval["recall"]
    T, R, K, A, M = prec.shape
    r = random.Random(sum(map(ord, name)))
    samples = []
    for _ in range(150):
        idx = (r.randrange(T), r.randrange(R), r.randrange(K), r.randrange(A), r.randrange(M))
        samples.append(list(idx) + [float(prec[idx])])
    curves = []
    for t, k, a, m in [(0, 0, 0, 2), (5, K - 1, 0, 2), (9, K // 2, 1, 2), (0, K // 2, 2, 1), (3, 0, 3, 0)]:
        curves.append([t, k, a, m, [float(v) for v in prec[t, :, k, a, m]]])
    category_ap = []
    for k in range(K):
        s = prec[:, :, k, 0, 2]
        category_ap.append(float(np.mean(s[s > -1])) if np.any(s > -1) else -1.0)
    return {
        "stats": [float(v) for v in e.stats],
        "summary": summary.getvalue(),
        "category_ids": [int(c) for c in e.params.catIds],
        "shape": [T, R, K, A, M],
        "recall": [float(v) for v in rec.ravel()],
        "precision_samples": samples,
        "precision_curves": curves,
        "category_ap": category_ap,
    }


def case_basic():
    # Non-contiguous category ids; category 8 has detections but no ground truth; 90 has neither.
    c = Case(11, [1, 3, 7, 8, 90], 14)
    c.populate(gt_categories=[1, 3, 7], empty_images={2, 9}, no_det_images={5})
    c.r.shuffle(c.results)
    return c


def case_crowd():
    c = Case(12, [1, 2, 3], 10)
    c.populate(gt_per_image=(1, 4))
    r = c.r
    ids = [img["id"] for img in c.images]
    # Crowd regions with many detections inside (crowd IoU = intersection / detection area, and a
    # crowd may be matched any number of times).
    for iid in ids[:6]:
        cat = r.choice([1, 2])
        crowd = c.gt(iid, cat, [100.0, 80.0, 300.0, 250.0], iscrowd=1, area=60000.0)
        for _ in range(r.randint(3, 12)):
            b = c.box(r.choice(["small", "medium"]))
            b[0], b[1] = crowd["bbox"][0] + r.uniform(-20, 280), crowd["bbox"][1] + r.uniform(-20, 230)
            c.det(iid, cat, [round(v, 2) for v in b], c.score())
    # A crowd-only image (no regular ground truth) with detections on it.
    lonely = c.images[6]["id"]
    c.annotations = [a for a in c.annotations if a["image_id"] != lonely]
    c.results = [d for d in c.results if d["image_id"] != lonely]
    c.gt(lonely, 3, [10.0, 10.0, 200.0, 200.0], iscrowd=1, area=30000.0)
    for _ in range(5):
        c.det(lonely, 3, c.jitter([40.0, 40.0, 60.0, 60.0], 0.3), c.score())
    # A crowd and a regular box overlapping the same detection (the regular one must win), and a
    # regular annotation carrying "ignore": 1 (pycocotools overwrites ignore with iscrowd).
    iid = ids[7]
    c.gt(iid, 1, [50.0, 50.0, 100.0, 100.0], iscrowd=1, area=10000.0)
    c.gt(iid, 1, [60.0, 60.0, 80.0, 80.0])
    c.det(iid, 1, [62.0, 58.0, 80.0, 84.0], 0.9)
    c.det(iid, 1, [55.0, 55.0, 90.0, 90.0], 0.8)
    c.gt(ids[8], 2, [200.0, 100.0, 50.0, 60.0], ignore=1)
    c.det(ids[8], 2, [202.0, 101.0, 49.0, 60.0], 0.7)
    c.r.shuffle(c.results)
    return c


def case_many_detections():
    # More than 100 detections for one (image, category) pair: pycocotools keeps the top 100 per
    # pair (maxDets counts per image and category), and AR@1 / AR@10 use the top 1 / 10.
    c = Case(13, [1, 2, 4], 4, digits=1)
    c.populate(gt_per_image=(3, 8), dets_per_gt=(1, 2), false_positives=(0, 3))
    r = c.r
    for k, iid in enumerate(img["id"] for img in c.images[:3]):
        gts = [a for a in c.annotations if a["image_id"] == iid and a["category_id"] == 1]
        if not gts:
            gts = [c.gt(iid, 1, c.box("medium"))]
        for _ in range(140 + 30 * k):
            if r.random() < 0.2:
                b = c.jitter(r.choice(gts)["bbox"], 0.1)
            else:
                b = c.box()
            c.det(iid, 1, b, round(r.random() * 0.5, 2))  # low scores, many ties
        # strong detections of the GTs near the end of the list (kept: they sort first)
        for g in gts:
            c.det(iid, 1, c.jitter(g["bbox"], 0.05), round(r.uniform(0.6, 1.0), 3))
    # One image with > 100 detections over several categories (no pair above 100).
    iid = c.images[3]["id"]
    for _ in range(130):
        c.det(iid, r.choice([2, 4]), c.box(), round(r.random(), 2))
    c.r.shuffle(c.results)
    return c


def case_ties_duplicates():
    # Scores quantized to 0.1 (ties within and across images), exact duplicate detections,
    # duplicate ground-truth boxes.
    c = Case(14, [5, 6], 8)
    c.populate(gt_per_image=(1, 5), dets_per_gt=(1, 3), false_positives=(1, 5), score_digits=1)
    r = c.r
    for d in list(c.results[:40]):
        if r.random() < 0.5:
            c.results.append(dict(d, bbox=list(d["bbox"])))  # exact duplicate
    for a in list(c.annotations[:6]):
        c.gt(a["image_id"], a["category_id"], list(a["bbox"]), area=a["area"])  # duplicate GT
        c.det(a["image_id"], a["category_id"], list(a["bbox"]), 0.5)
        c.det(a["image_id"], a["category_id"], list(a["bbox"]), 0.5)
    return c  # results not shuffled: ties keep file order within an image


def case_area_boundaries():
    # GT areas exactly on the range bounds (32^2, 96^2: both neighbouring ranges contain them),
    # area fields that disagree with the box, an area above 1e10 (ignored even in "all"), and
    # detections whose w*h sits exactly on a bound.
    c = Case(15, [1, 2], 6, digits=None)
    ids = [img["id"] for img in c.images]
    c.gt(ids[0], 1, [10, 10, 32, 32], area=1024)
    c.gt(ids[0], 1, [100, 100, 96, 96], area=9216)
    c.gt(ids[0], 2, [300, 50, 40, 40], area=1024)        # box medium, area small
    c.gt(ids[1], 1, [10, 10, 20, 20], area=9216.5)       # box small, area large
    c.gt(ids[1], 2, [50, 50, 200, 200], area=2e10)       # above "all"'s 1e10
    c.gt(ids[2], 1, [0, 0, 1023.999, 1], area=1023.999)
    c.gt(ids[2], 2, [5.5, 5.5, 31.75, 32.25], area=1024.0001)
    c.det(ids[0], 1, [10, 10, 32, 32], 0.9)
    c.det(ids[0], 1, [101, 101, 96, 96], 0.8)
    c.det(ids[0], 1, [400, 400, 32, 32], 0.85)            # FP, w*h = 1024 (small and medium)
    c.det(ids[0], 1, [400, 300, 96, 96], 0.3)             # FP, w*h = 9216
    c.det(ids[0], 2, [301, 51, 40, 40], 0.7)
    c.det(ids[1], 1, [11, 11, 20, 20], 0.6)
    c.det(ids[1], 2, [50, 50, 200, 200], 0.95)
    c.det(ids[2], 1, [0, 0, 1023.999, 1], 0.5)
    c.det(ids[2], 2, [5.5, 5.5, 31.75, 32.25], 0.4)
    c.det(ids[2], 2, [6, 6, 31, 31], 0.4)
    r = c.r
    for iid in ids[3:]:
        for _ in range(4):
            cat = r.choice([1, 2])
            g = c.gt(iid, cat, c.box())
            for _ in range(2):
                c.det(iid, cat, c.jitter(g["bbox"], 0.15), c.score())
    return c


def case_random():
    # A larger random case: 40 images, 8 categories, ~20 detections per image.
    c = Case(16, list(range(1, 9)), 40)
    c.populate(gt_per_image=(0, 8), dets_per_gt=(0, 3), false_positives=(2, 10), score_digits=3,
               empty_images={3, 17}, no_det_images={5, 22})
    c.r.shuffle(c.results)
    return c


def case_no_detections():
    c = Case(17, [1, 2, 3], 5)
    c.populate(gt_per_image=(0, 4), gt_categories=[1, 2])
    c.results = []
    return c


def iou_pairs():
    r = random.Random(18)

    def b():
        return [r.uniform(0, 100), r.uniform(0, 100), r.uniform(0.1, 60), r.uniform(0.1, 60)]

    dt = [b() for _ in range(24)]
    gt = [b() for _ in range(12)]
    for i in range(4):  # near-identical and touching pairs
        dt[i] = [gt[i][0] + 1e-9, gt[i][1], gt[i][2], gt[i][3] * (1 + 1e-12)]
    dt[4] = [gt[4][0] + gt[4][2], gt[4][1], 5.0, 5.0]
    iscrowd = [int(r.random() < 0.3) for _ in gt]
    iou = mask_utils.iou(dt, gt, iscrowd)
    return {"dt": dt, "gt": gt, "iscrowd": iscrowd, "iou": [[float(v) for v in row] for row in iou]}


def main():
    p = COCOeval(iouType="bbox").params
    expected = {
        "generator": f"pycocotools {pycocotools.__version__ if hasattr(pycocotools, '__version__') else ''}".strip(),
        "numpy": np.__version__,
        "iou_thresholds": [float(v) for v in p.iouThrs],
        "recall_thresholds": [float(v) for v in p.recThrs],
        "cases": {},
    }
    try:
        from importlib.metadata import version
        expected["generator"] = f"pycocotools {version('pycocotools')}"
    except Exception:
        pass
    for name, make in [("basic", case_basic), ("crowd", case_crowd), ("many_detections", case_many_detections),
                       ("ties_duplicates", case_ties_duplicates), ("area_boundaries", case_area_boundaries),
                       ("random", case_random), ("no_detections", case_no_detections)]:
        make().write(name)
        expected["cases"][name] = evaluate(name)
        print(name, " ".join(f"{v:.4f}" for v in expected["cases"][name]["stats"]))
    expected["iou_pairs"] = iou_pairs()
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"))
    print("wrote", len(expected["cases"]), "cases to", OUT)


if __name__ == "__main__":
    main()
