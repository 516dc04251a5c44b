#!/usr/bin/env python3
"""The torchvision peer of bench_focal_loss: sigmoid focal loss value + backward on CPU.

Run with a Python that has torch and torchvision (on Debian 12: /usr/bin/python3 with
python3-torch and python3-torchvision). Without them it prints a message and exits 0.

What is timed, per iteration (the same shape as bench_focal_loss):
    loss = torchvision.ops.sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2, reduction="sum")
    loss.backward()
  logits:  201600 x 80 float32 leaf tensor (requires_grad), ~ normal(-4, 2), fixed seed
  targets: 201600 x 80 float32 dense one-hot, built outside the timed region from int labels of
           the same kind as bench_focal_loss (200 positives with random classes, 2% ignored, the rest
           background). torchvision has no "ignore" label, so ignored rows are timed as background
           rows (all-zero targets): every one of the N*K elements is evaluated, as focal evaluates
           all but the 2% ignored rows. No normalisation by the positive count is timed (focal's
           divide_by folds it into the gradient scale for free; torch would add one scalar op).
  logits.grad is reset to None before each iteration, so backward allocates the gradient as
  in a training step.
The labels come from torch's generator, not bit-identical to bench_focal_loss's std::mt19937_64
ones; only the statistics match, which is all the throughput depends on.

Output: one JSON object per line on stdout, e.g.
  {"name": "torchvision/value_and_grad/threads:1", "threads": 1, "elements": 16128000,
   "seconds": 2.31, "elements_per_second": 6.98e6, ...}
"seconds" is the median over the timed repeats; "seconds_min" is the fastest. Progress and
messages go to stderr; a missing torch gives {"name": "torchvision", "available": false, ...}.
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


def anchors(h, w):
    # RetinaNet P3..P7, 9 anchors per location.
    return sum(math.ceil(h / 2**l) * math.ceil(w / 2**l) * 9 for l in range(3, 8))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations per thread count (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument(
        "--threads",
        default="1,all",
        help="comma-separated thread counts to time; 'all' = os.cpu_count() (default: 1,all)",
    )
    parser.add_argument("--seed", type=int, default=20170807)
    args = parser.parse_args()

    try:
        import torch
        import torchvision
        from torchvision.ops import sigmoid_focal_loss
    except Exception as e:  # ImportError, or a broken install raising something else
        peer_unavailable("torchvision", "torch/torchvision", e)
        return 0

    n, k = anchors(800, 1344), 80
    assert n == 201600
    num_pos, num_ignored = 200, n // 50
    all_threads = os.cpu_count() or 1
    counts = []
    for t in args.threads.split(","):
        t = t.strip()
        c = all_threads if t == "all" else int(t)
        if c not in counts:
            counts.append(c)

    g = torch.Generator().manual_seed(args.seed)
    logits_data = torch.randn(n, k, generator=g) * 2.0 - 4.0
    labels = torch.full((n,), -1, dtype=torch.int64)
    rows = torch.randperm(n, generator=g)
    labels[rows[:num_pos]] = torch.randint(0, k, (num_pos,), generator=g)
    labels[rows[num_pos : num_pos + num_ignored]] = -2
    targets = torch.zeros(n, k, dtype=torch.float32)
    pos = labels >= 0
    targets[pos.nonzero().squeeze(1), labels[pos]] = 1.0

    logits = logits_data.clone().requires_grad_(True)

    def step():
        logits.grad = None
        loss = sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2, reduction="sum")
        loss.backward()
        return loss

    for threads in counts:
        torch.set_num_threads(threads)
        for _ in range(args.warmup):
            step()
        times = []
        loss = None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            loss = step()
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        row = {
            "name": f"torchvision/value_and_grad/threads:{threads}",
            "available": True,
            "threads": threads,
            "all_threads": threads == all_threads,
            "N": n,
            "K": k,
            "elements": n * k,
            "repeats": len(times),
            "seconds": med,
            "seconds_min": min(times),
            "elements_per_second": n * k / med,
            "loss_sum": float(loss.detach()),
            "loss_divided_by_positives": float(loss.detach()) / num_pos,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "torch_get_num_threads": torch.get_num_threads(),
        }
        print(json.dumps(row), flush=True)
        print(f"{row['name']}: {med * 1e3:.1f} ms, {row['elements_per_second'] / 1e6:.2f} Melem/s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
