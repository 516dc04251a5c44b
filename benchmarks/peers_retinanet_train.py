#!/usr/bin/env python3
"""Trains torchvision's RetinaNet in the example's `demo` architecture on FMNIST-Det for a time
budget, then evaluates it on FMNIST-Det's test split: the peer of `retinanet_train --config demo`.

Run with /usr/bin/python3 (torch 1.13 / torchvision 0.14), from the repository root:
    /usr/bin/python3 benchmarks/peers_retinanet_train.py --minutes 10 \\
        --dataset-tool build/examples/retinanet/retinanet_dataset

Data: the very samples retinanet_train --seed S trains on, read from
`retinanet_dataset stream --seed S --augment` (the same flips and scale jitter; --no-augment for
the raw stream) through a pipe, on a reader thread. Record format: see apps/dataset_main.cpp.
Model: peers_retinanet.build_model("demo") (764,526 parameters, as the example's), transform kept at
128 x 128, torchvision's own loss (RetinaNetHead.compute_loss: focal loss + L1 box loss),
score_thresh 0.05, detections_per_img 100.
Schedule (retinanet_train's defaults): batch 16, SGD lr 0.02, momentum 0.9, weight decay 1e-4 (not
on GroupNorm parameters, as the example), linear warmup over 300 iterations from lr/3, x0.1 at 80%
of the run, whose length is set from the first 10 steps' speed (data included) and --minutes.
torch threads: --threads (default 2).
Evaluation: `retinanet_dataset export --split test --count 500 --seed S` to a temporary folder,
its PNGs through the model in eval mode, COCO results (category_id = label + 1, bbox x y w h)
scored by `retinanet_dataset evaluate` (focal::coco_evaluate). Prints the progress, the AP line,
and a final JSON line {"iterations", "seconds", "images_per_second", "results", ...}.
"""
import argparse
import json
import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from peers_retinanet import build_model, keep_size, parameter_count  # noqa: E402

BOX_RECORD = np.dtype([("box", "<f4", (4,)), ("label", "<i4")])


def default_tool():
    for build in ("build", "build-bench"):
        path = os.path.join(ROOT, build, "examples", "retinanet", "retinanet_dataset")
        if os.path.exists(path):
            return path
    return os.path.join(ROOT, "build", "examples", "retinanet", "retinanet_dataset")


def read_exact(pipe, n):
    data = pipe.read(n)
    if data is None or len(data) != n:
        raise EOFError("retinanet_dataset stream ended")
    return data


def read_sample(pipe):
    """One stream record: (image float [3, H, W] in [0, 1], {"boxes": [G, 4], "labels": [G]})."""
    w, h, n = struct.unpack("<iii", read_exact(pipe, 12))
    rgb = np.frombuffer(read_exact(pipe, w * h * 3), dtype=np.uint8).reshape(h, w, 3)
    boxes = np.frombuffer(read_exact(pipe, n * BOX_RECORD.itemsize), dtype=BOX_RECORD) if n else np.zeros(0, BOX_RECORD)
    image = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div_(255.0)
    target = {"boxes": torch.from_numpy(boxes["box"].astype(np.float32).reshape(-1, 4)),
              "labels": torch.from_numpy(boxes["label"].astype(np.int64))}
    return image, target


class stream_reader:
    """`retinanet_dataset stream` on a subprocess, read ahead by a thread into a bounded queue."""

    def __init__(self, tool, seed, augment, first=0, depth=256):
        cmd = [tool, "stream", "--seed", str(seed), "--first", str(first)] + (["--augment"] if augment else [])
        print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=1 << 20)
        self.queue = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                self.queue.put(read_sample(self.proc.stdout))
        except Exception as e:  # EOF or a closed pipe: the consumer sees it
            self.queue.put(e)

    def batch(self, size):
        images, targets = [], []
        for _ in range(size):
            item = self.queue.get()
            if isinstance(item, Exception):
                raise RuntimeError(f"reading the stream failed: {item!r}")
            images.append(item[0])
            targets.append(item[1])
        return images, targets

    def close(self):
        self.proc.kill()
        self.proc.wait()


def learning_rate(args, iteration, total):
    factor = 1.0
    if iteration < args.warmup:
        t = iteration / args.warmup
        factor = (1.0 / 3.0) * (1.0 - t) + t
    if total > 0 and iteration / total >= 0.8:
        factor *= 0.1
    return args.lr * factor


def train(args, model):
    norm_params = [p for m in model.modules() if isinstance(m, torch.nn.GroupNorm) for p in m.parameters(recurse=False)]
    norm_ids = {id(p) for p in norm_params}
    other = [p for p in model.parameters() if id(p) not in norm_ids]
    opt = torch.optim.SGD([{"params": other, "weight_decay": args.weight_decay}, {"params": norm_params, "weight_decay": 0.0}],
                          lr=args.lr, momentum=args.momentum)
    reader = stream_reader(args.dataset_tool, args.seed, not args.no_augment)
    model.train()
    total, iteration = 0, 0
    start = time.perf_counter()
    window_start, window = start, {"loss": 0.0, "cls": 0.0, "box": 0.0, "steps": 0}
    try:
        while total == 0 or iteration < total:
            images, targets = reader.batch(args.batch)
            losses = model(images, targets)
            loss = losses["classification"] + losses["bbox_regression"]
            lr = learning_rate(args, iteration, max(total, 1))
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = loss.item()
            if not np.isfinite(value):
                raise RuntimeError(f"the loss is {value} at iteration {iteration}: training diverged")
            if total == 0 and iteration == 9:
                per_step = (time.perf_counter() - start) / 10.0
                total = max(iteration + 1, int(args.minutes * 60.0 / per_step))
                print(f"time budget {args.minutes} min at {per_step:.3f} s/step: {total} iterations", flush=True)
            iteration += 1
            window["loss"] += value
            window["cls"] += losses["classification"].item()
            window["box"] += losses["bbox_regression"].item()
            window["steps"] += 1
            if iteration % args.log_every == 0 or iteration == total:
                now = time.perf_counter()
                k = window["steps"]
                ips = k * args.batch / max(now - window_start, 1e-9)
                eta = (total - iteration) * (now - window_start) / k if total else 0.0
                print(f"iter {iteration:6d}/{total}  loss {window['loss'] / k:.4f} (cls {window['cls'] / k:.4f}, box "
                      f"{window['box'] / k:.4f})  lr {lr:.5f}  {ips:.1f} img/s  ETA {eta:.0f}s", flush=True)
                window_start, window = now, {"loss": 0.0, "cls": 0.0, "box": 0.0, "steps": 0}
    finally:
        reader.close()
    seconds = time.perf_counter() - start
    return iteration, seconds


def evaluate(args, model, folder):
    subprocess.run([args.dataset_tool, "export", "--split", "test", "--count", str(args.eval_count), "--seed", str(args.seed),
                    "--output", folder], check=True, stdout=sys.stderr)
    annotations = os.path.join(folder, "annotations.json")
    with open(annotations) as f:
        images = json.load(f)["images"]
    model.eval()
    results = []
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(images), args.batch):
            chunk = images[first:first + args.batch]
            batch = [torchvision.io.read_image(os.path.join(folder, "images", im["file_name"]),
                                               torchvision.io.ImageReadMode.RGB).float().div_(255.0) for im in chunk]
            for im, out in zip(chunk, model(batch)):
                for box, score, label in zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()):
                    results.append({"image_id": im["id"], "category_id": int(label) + 1,
                                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": score})
    seconds = time.perf_counter() - start
    detections = os.path.join(args.output or folder, "torchvision_detections.json")
    with open(detections, "w") as f:
        json.dump(results, f)
    ap = subprocess.run([args.dataset_tool, "evaluate", "--ground-truth", annotations, "--detections", detections],
                        check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    return ap, detections, len(images) / max(seconds, 1e-9)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training time budget (default 10)")
    ap.add_argument("--seed", type=int, default=1, help="retinanet_train's --seed: stream and test split (default 1)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--eval-count", type=int, default=500)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--no-augment", action="store_true", help="train on the raw stream (no flip / scale jitter)")
    ap.add_argument("--dataset-tool", default=default_tool(), help="the retinanet_dataset program")
    ap.add_argument("--output", help="folder for torchvision_detections.json and metrics.json (default: a temporary one)")
    args = ap.parse_args()
    if not os.path.exists(args.dataset_tool):
        sys.exit(f"{args.dataset_tool} not found: build the retinanet_dataset target (or pass --dataset-tool)")
    if args.output:
        os.makedirs(args.output, exist_ok=True)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_model("demo", score_thresh=0.05, detections_per_img=100)
    size = keep_size(model, 128, 128)
    print(f"training torchvision {torchvision.__version__} RetinaNet (demo architecture, {parameter_count(model)} parameters, "
          f"input {size[0]}x{size[1]}) with batch {args.batch} on {args.threads} threads", flush=True)
    iterations, seconds = train(args, model)
    ips = iterations * args.batch / max(seconds, 1e-9)
    print(f"trained {iterations} iterations in {seconds:.1f} s ({ips:.1f} img/s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="fmnist_test_") as folder:
        line, detections, eval_ips = evaluate(args, model, folder)
        print(line, flush=True)
        summary = {"name": "torchvision/train/demo", "minutes": args.minutes, "iterations": iterations, "seconds": seconds,
                   "images_per_second": ips, "eval_images_per_second": eval_ips, "results": line,
                   "torch": torch.__version__, "torchvision": torchvision.__version__, "threads": args.threads}
        if args.output:
            with open(os.path.join(args.output, "metrics.json"), "w") as f:
                json.dump(summary, f, indent=2)
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
