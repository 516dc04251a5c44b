#!/usr/bin/python3
"""Writes the seed corpora of focal's fuzz targets into fuzz/corpus/<target>/.

    /usr/bin/python3 fuzz/make_corpus.py [--checkpoint-tool build-fuzz/fuzz/fuzz_checkpoint]

The binary targets (nms, matcher, coder, postprocess) read their input with fuzz/byte_reader.hpp;
the seeds here follow that layout so that they start as realistic cases (clusters of overlapping
boxes, anchor grids, a few pyramid levels) rather than zeros. coco_json gets the small files of
tests/data/coco_eval (ground truth, NUL, results) and a few hand-written ones; checkpoint gets
archives from np.savez and np.savez_compressed, .npy versions 1.0 to 3.0, every accepted dtype,
and, with --checkpoint-tool, real checkpoints written by the example's save_checkpoint (the fuzz
target writes them when FOCAL_FUZZ_WRITE_SEEDS is set). Deterministic: the same files every run.
"""

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest.mock
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


# ---- byte_reader layouts -------------------------------------------------------------------

def grid_box(rng, cluster=None):
    """read_box mode < 120: x, y, w, h bytes on the unit grid (x, y < 64, w, h < 48)."""
    if cluster is None:
        return [rng.randrange(120), rng.randrange(64), rng.randrange(64), 1 + rng.randrange(47), 1 + rng.randrange(47)]
    x, y, w, h = cluster
    j = lambda v, lim: max(0, min(lim - 1, v + rng.randrange(-2, 3)))
    return [rng.randrange(120), j(x, 64), j(y, 64), j(w, 48), j(h, 48)]


def edge_box(rng):
    """read_box mode >= 200: four byte_reader numbers (NaN 200, inf 201, -inf 202, -0 203, ...)."""
    return [200 + rng.randrange(56)] + [rng.choice([200, 201, 202, 203, 204, 206, 10, 40, 80]) for _ in range(4)]


def nms_seed(rng, type_byte, n, classes, special):
    out = [type_byte, 10, rng.choice([0, 0, 160 + n % 40]), rng.randrange(3), classes, n]
    centres = [(rng.randrange(50), rng.randrange(50), 8 + rng.randrange(20), 8 + rng.randrange(20)) for _ in range(3)]
    for i in range(n):
        out += edge_box(rng) if special and i % 5 == 4 else grid_box(rng, rng.choice(centres))
        out += rng.choice([[rng.randrange(200)], [240, 200]]) if special else [rng.randrange(200)]  # score ([240, 200]: NaN)
        out += [rng.randrange(256) for _ in range(8)] if classes >= 240 else [rng.randrange(256)]  # class (u64 when sparse)
    out += [rng.randrange(256), rng.randrange(256)]  # torchvision trick limit
    out += [rng.randrange(2), 100, 5, 100, 1]        # soft: decay, sigma, score threshold
    return out


def nms_denormal_seed():
    """A regression: boxes of denormal area (2^-75 units), where the chunk pruning's limit once
    rounded up and let an IoU of 2/3 go unsuppressed (nms/detail/box_chunks.hpp, overlap_limit).
    p = [13, 0, 16, 2] units (score 1), 62 unit squares left of it (0.5), b = [13, 0, 15, 2] (0.25)
    in the next chunk, and one ordinary box far away so that all the tiny ones share a cell."""
    scaled = lambda x, y, w, h: [170, 82, 0, x, y, w, h]  # read_box mode 170..199, exponent -157 + 82
    out = [0, 10, 0, 0, 0, 224, 65, 0]  # float, IoU 0.5, no limit, row-major, one class, 65 boxes
    out += scaled(13, 0, 3, 2) + [32, 0]
    for k in range(62):
        out += scaled(k % 13, 2 * (k // 13), 1, 2) + [16, 0]  # area 2^-149, the smallest denormal
    out += scaled(13, 0, 2, 2) + [8, 0]
    out += [0, 63, 63, 47, 47] + [1, 0]
    out += [0, 0, 100, 5, 100, 1]
    return out


def matcher_seed(rng, type_byte, preset, grid, n_extra, n_gt, crowd):
    out = [type_byte, preset]
    if preset >= 160:  # thresholds 0.6 / 0.4, low-quality matches with the guard, crowd 0.5, no +1
        out += [0, 12, 0, 8, 1, 1, 0, 0, 10, 0]
    out += [rng.randrange(3), 200 if crowd else 0, 200]
    if grid:  # 9 x 9 cells, stride 9, three shapes
        out += [1, 8, 8, 8, 2] + [rng.randrange(32) for _ in range(6)]
    else:
        out += [0]
    out.append(n_extra)
    for _ in range(n_extra):
        out += grid_box(rng)
    out.append(n_gt)
    for _ in range(n_gt):
        out += grid_box(rng)
    if crowd:
        out.append(2)
        out += grid_box(rng) + grid_box(rng)
    for _ in range(n_gt):
        out += [0, rng.randrange(5)]  # labels
    return out


def coder_seed(rng, type_byte, coder_mode, n):
    out = [type_byte, coder_mode]
    if coder_mode >= 120:
        out += [0, 8, 0, 8, 0, 20, 0, 12, 0, 8, rng.randrange(3), 0, 20]
    out += [rng.randrange(3), rng.randrange(3), n]
    for i in range(n):
        box = grid_box(rng)
        out += box
        if i % 4 == 0:
            out += [0]  # the box on its own anchor
        else:
            out += [255] + grid_box(rng, tuple(box[1:]))
        for _ in range(4):
            out += [0, rng.randrange(256)]  # small deltas
    return out


def postprocess_seed(rng, classes, levels, per_level, torchvision):
    out = [0 if torchvision else 255, 0, 1, 0, 8, 10, 0, 10, 255, 255, 255, rng.randrange(3)]
    out += [0, classes, levels - 1]  # one image
    for count in per_level:
        out += [0, count]
    out.append(255)  # counts that do sum to the anchors
    batch = 1
    for _ in range(batch):
        out += [0, 32, 0, 32]  # 128 x 128
    anchors = sum(per_level)
    for _ in range(anchors):
        out += grid_box(rng)
    for _ in range(batch * anchors * classes):
        out += [0, rng.randrange(256)]  # logits in [-16, 16)
    for _ in range(batch * anchors * 4):
        out += [0, rng.randrange(256)]
    return out


# ---- coco_json ---------------------------------------------------------------------------

def coco_seeds():
    base = os.path.join(ROOT, "tests", "data", "coco_eval")
    for name in ["basic", "crowd", "area_boundaries", "no_detections", "ties_duplicates"]:
        with open(os.path.join(base, name, "gt.json"), "rb") as f:
            gt = f.read()
        with open(os.path.join(base, name, "results.json"), "rb") as f:
            results = f.read()
        write("coco_json", f"{name}.bin", gt + b"\0" + results)
    small_gt = {"images": [{"id": 1, "width": 64, "height": 48}, {"id": 2}],
                "categories": [{"id": 3, "name": "a"}, {"id": 7}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 30, 20], "area": 600, "iscrowd": 0},
                                {"id": 2, "image_id": 2, "category_id": 7, "bbox": [0, 0, 10.5, 10], "area": 105, "iscrowd": True},
                                {"id": 0, "image_id": 2, "category_id": 3, "bbox": [5, 5, 40, 40], "area": 1024, "iscrowd": False}]}
    small_results = [{"image_id": 1, "category_id": 3, "bbox": [1, 2, 30, 21], "score": 0.9},
                     {"image_id": 2, "category_id": 3, "bbox": [4, 5, 40, 40], "score": 0.9},
                     {"image_id": 2, "category_id": 7, "bbox": [0, 0, 5, 5], "score": 1e-3},
                     {"image_id": 1, "category_id": 7, "bbox": [0, 0, 0, 0], "score": 0}]
    text = lambda v: json.dumps(v, separators=(",", ":")).encode()
    write("coco_json", "small.bin", text(small_gt) + b"\0" + text(small_results))
    write("coco_json", "small_gt_only.json", text(small_gt))
    write("coco_json", "small_results_only.json", text(small_results))
    edge_gt = {"images": [{"id": -9223372036854775808}, {"id": 9223372036854775807}], "categories": [{"id": 0}],
               "annotations": [{"id": 5, "image_id": 9223372036854775807, "category_id": 0,
                                "bbox": [1e300, -1e300, 1e300, 1e-300], "area": 1e10, "iscrowd": 1}]}
    edge_results = [{"image_id": -9223372036854775808, "category_id": 0, "bbox": [-0.0, 0, 1e308, 1e308], "score": -1}]
    write("coco_json", "edge.bin", text(edge_gt) + b"\0" + text(edge_results))


# ---- checkpoint --------------------------------------------------------------------------

def npz_bytes(arrays, compressed=False):
    f = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return f.getvalue()


def npy_bytes(array, version):
    f = io.BytesIO()
    np.lib.format.write_array(f, array, version=version)
    return f.getvalue()


def checkpoint_seeds(tool):
    small = {"head.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
             "head.bias": np.array([-1.0, 0.5, 2.0], dtype=np.float32)}
    full = dict(small)
    full.update({"optimizer.head.weight": np.zeros((2, 3), np.float32),
                 "optimizer.head.bias": np.ones(3, np.float32),
                 "run.iteration": np.array(7, np.int64),
                 "run.total_iterations": np.array(100, np.int64),
                 "run.loss_normalizer": np.array(42.5, np.float64),
                 "run.config_name": np.frombuffer(b"tiny", np.uint8).astype(np.int64)})
    write("checkpoint", "small_params.npz", npz_bytes(small))
    write("checkpoint", "small_full_compressed.npz", npz_bytes(full, compressed=True))
    write("checkpoint", "small_full_wrong_dtype.npz",
          npz_bytes(dict(full, **{"head.bias": small["head.bias"].astype(np.float64)})))
    dtypes = {name: np.arange(6).astype(name).reshape(2, 3)
              for name in ["<f4", "<f8", "<i8", "<i4", "<i2", "i1", "<u4", "<u2", "u1", "?"]}
    dtypes.update({"scalar": np.array(3.5, np.float32), "empty": np.zeros((0, 3), np.float32),
                   "cube": np.ones((2, 1, 2), np.float64)})
    write("checkpoint", "dtypes.npz", npz_bytes(dtypes))
    write("checkpoint", "dtypes_compressed.npz", npz_bytes(dtypes, compressed=True))
    # .npy versions 2.0 and 3.0 (4-byte header length), stored and deflated.
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("v2.npy", npy_bytes(np.arange(4, dtype=np.float32), (2, 0)))
        z.writestr("v3.npy", npy_bytes(np.arange(3, dtype=np.int64), (3, 0)))
    write("checkpoint", "npy_versions.npz", f.getvalue())
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("head.weight.npy", npy_bytes(small["head.weight"], (1, 0)))
        z.writestr("head.bias.npy", npy_bytes(small["head.bias"], (2, 0)))
    write("checkpoint", "small_deflated_v2.npz", f.getvalue())
    if tool:
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, FOCAL_FUZZ_WRITE_SEEDS=d, ASAN_OPTIONS="detect_leaks=0")
            subprocess.run([tool], env=env, check=True)
            for name in sorted(os.listdir(d)):
                shutil.copy(os.path.join(d, name), os.path.join(CORPUS, "checkpoint", name))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-tool", help="a built fuzz_checkpoint, to add real save_checkpoint files")
    args = parser.parse_args()
    rng = random.Random(20240607)

    for target in ["nms", "matcher", "coder", "postprocess", "coco_json", "checkpoint"]:
        d = os.path.join(CORPUS, target)
        if not os.path.isdir(d) or (target == "checkpoint" and not args.checkpoint_tool):
            continue  # (keeps the save_checkpoint seeds made earlier)
        for name in os.listdir(d):
            if not name.startswith("regression_"):  # inputs that once failed, added by hand
                os.remove(os.path.join(d, name))

    for i, (type_byte, n, classes, special) in enumerate(
            [(0, 12, 0, False), (1, 30, 3, False), (2, 20, 203, True), (3, 40, 250, True), (0, 6, 1, True)]):
        write("nms", f"seed_{i}.bin", nms_seed(rng, type_byte, n, classes, special))
    write("nms", "denormal_pruning.bin", nms_denormal_seed())
    for i, (type_byte, preset, grid, n_extra, n_gt, crowd) in enumerate(
            [(0, 0, True, 4, 5, False), (1, 70, True, 0, 6, True), (2, 130, False, 12, 3, False),
             (3, 200, True, 6, 6, True), (0, 70, False, 10, 0, False)]):
        write("matcher", f"seed_{i}.bin", matcher_seed(rng, type_byte, preset, grid, n_extra, n_gt, crowd))
    for i, (type_byte, mode, n) in enumerate([(0, 0, 10), (1, 100, 16), (2, 200, 12), (0, 200, 24)]):
        write("coder", f"seed_{i}.bin", coder_seed(rng, type_byte, mode, n))
    for i, (classes, per_level, tv) in enumerate([(3, [8, 4, 2], False), (2, [8], True), (5, [6, 0, 3, 1], False)]):
        write("postprocess", f"seed_{i}.bin", postprocess_seed(rng, classes, len(per_level), per_level, tv))
    coco_seeds()
    # zipfile stamps members with the current time: a fixed clock keeps the archives' bytes stable.
    with unittest.mock.patch("time.time", return_value=1000000000.0):
        checkpoint_seeds(args.checkpoint_tool)

    total = 0
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        total += size
        print(f"{target}: {len(files)} files, {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
