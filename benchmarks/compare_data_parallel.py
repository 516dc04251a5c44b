#!/usr/bin/env python3
"""Data-parallel training on one machine: retinanet_train as 1 rank x T threads against T ranks x
1 thread (mpiexec), the latter with the gradient allreduce overlapped with backward and without;
prints images/s, the ratios, the bytes reduced per step and the allreduce's share of the run, then
a cost model of scaling the paper configuration to many ranks from those figures.

Builds nothing. Usage (from the repository root, after building retinanet_train with MPI found):
    python3 benchmarks/compare_data_parallel.py [--build build] [--threads 2] [--rounds 2]
        [--configs demo,paper] [--json out.json]
Each case trains FMNIST-Det from the same seed for a fixed number of iterations (demo: 150 at batch
8; paper: 6 at batch 2, 800 x 800 images); images/s is the whole run's (first steps included, the
same for every mode). Modes run in alternating order each round; the table shows the median over
rounds and every round's ratio.

Cost model: a ring allreduce moves 2 (W - 1) / W x (bytes per step) per rank; at a link of B bit/s
it takes C = that x 8 / B. Of it, the fraction h hidden behind backward here (1 - exposed /
communicating, measured on the paper configuration) stays hidden up to the backward time (2/3 of
a step, the measured share of backward in docs/results.md's profile), so a step of T seconds on
one rank takes T + max(C - h x 2T/3, C (1 - h)) on W ranks and the scaling efficiency is T over
that. Latency, stragglers and the network's contention are not modelled: an upper bound.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

TRAINED = re.compile(r"trained (\d+) iterations in ([\d.]+) s \(([\d.]+) img/s\)")
REDUCED = re.compile(r"gradient allreduce: ([\d.]+) MB per step, ([\d.]+) s communicating, ([\d.]+) s of it not hidden")

CASES = {"demo": ["--config", "demo", "--batch", "8", "--iterations", "150"],
         "paper": ["--config", "paper", "--batch", "2", "--iterations", "6"]}


def run(cmd, env, batch):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    trained = TRAINED.search(out.stdout)
    if not trained:
        sys.exit(f"no 'trained' line in the output of {' '.join(cmd)}")
    # From the iterations and seconds: the printed img/s has one decimal (0.2 for the paper case).
    seconds = float(trained.group(2))
    r = {"images_per_second": int(trained.group(1)) * batch / seconds, "seconds": seconds}
    reduced = REDUCED.search(out.stdout)
    if reduced:
        r.update(mb_per_step=float(reduced.group(1)), communicating=float(reduced.group(2)), exposed=float(reduced.group(3)))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", type=int, default=2, help="threads of the 1-rank run = ranks of the others")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--configs", default="demo,paper")
    ap.add_argument("--mpiexec", default=shutil.which("mpiexec") or "mpiexec")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--from-json", help="print the tables of figures a --json run wrote, without running")
    ap.add_argument("--model-steps", default="0.5,0.1",
                    help="step times (s) of faster machines to model besides the measured one (default 0.5,0.1)")
    a = ap.parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            report(json.load(f), a)
        return
    train = os.path.join(a.build, "examples/retinanet/retinanet_train")
    if not os.path.exists(train):
        sys.exit(f"{train} not found: build the retinanet_train target first")
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    ranks = a.threads
    out_dir = tempfile.mkdtemp(prefix="focal_data_parallel_")
    common = ["--eval-data", "none", "--log-every", "100000", "--checkpoint-every", "0", "--output", out_dir]
    launcher = [a.mpiexec, "--oversubscribe", "-n", str(ranks)]
    modes = {
        f"1 rank x {a.threads} threads": lambda case: [train, *case, *common, "--threads", str(a.threads)],
        f"{ranks} ranks x 1 thread, overlapped": lambda case: [*launcher, train, *case, *common, "--threads", "1"],
        f"{ranks} ranks x 1 thread, after backward": lambda case: [*launcher, train, *case, *common, "--threads", "1", "--no-overlap"],
    }
    results = {"threads": a.threads}
    for config in a.configs.split(","):
        per_mode = {m: [] for m in modes}
        for rnd in range(a.rounds):
            order = list(modes) if rnd % 2 == 0 else list(reversed(modes))
            for m in order:
                case = CASES[config]
                per_mode[m].append(run(modes[m](case), env, int(case[case.index("--batch") + 1])))
                print(f"  {config} round {rnd + 1}: {m}: {per_mode[m][-1]['images_per_second']:.2f} img/s", file=sys.stderr)
        results[config] = per_mode
    shutil.rmtree(out_dir, ignore_errors=True)
    report(results, a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


def report(results, a):
    ranks = results.get("threads", a.threads)
    configs = {k: v for k, v in results.items() if k != "threads"}
    base_mode = f"1 rank x {ranks} threads"
    print(f"| case | mode | img/s (median) | vs 1 rank, each round | MB reduced per step | allreduce s / run s | not hidden |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for config, per_mode in configs.items():
        base = per_mode[base_mode]
        for m, runs in per_mode.items():
            ips = statistics.median(r["images_per_second"] for r in runs)
            ratios = ", ".join(f"{r['images_per_second'] / b['images_per_second']:.2f}x" for r, b in zip(runs, base))
            red = runs[-1]
            if "mb_per_step" in red:
                comm = statistics.median(r["communicating"] / r["seconds"] for r in runs)
                exposed = statistics.median(r["exposed"] / r["seconds"] for r in runs)
                extra = f"{red['mb_per_step']:.2f} | {100 * comm:.1f}% | {100 * exposed:.1f}% of the run"
            else:
                extra = "- | - | -"
            print(f"| {config} | {m} | {ips:.3g} | {ratios if m != base_mode else '1'} | {extra} |")

    if "paper" in configs:
        over = configs["paper"][f"{ranks} ranks x 1 thread, overlapped"]
        base = configs["paper"][base_mode]
        mb = over[-1]["mb_per_step"]
        comm = sum(r["communicating"] for r in over)
        hidden = max(0.0, 1.0 - sum(r["exposed"] for r in over) / comm) if comm > 0 else 0.0
        measured = 2.0 / statistics.median(r["images_per_second"] for r in base)  # paper: batch 2 per rank
        print(f"\nCost model (paper, {mb:.1f} MB reduced per step, {100 * hidden:.0f}% of the allreduce hidden here): "
              "scaling efficiency (allreduce time)")
        print("| step of batch 2 | ranks | 10 Gbit/s | 25 Gbit/s | 100 Gbit/s |")
        print("| --- | --- | --- | --- | --- |")
        steps = [(measured, f"{measured:.2f} s (this machine)")]
        steps += [(float(t), f"{float(t):g} s (modelled)") for t in a.model_steps.split(",") if t]
        for step, label in steps:
            for w in (8, 64, 256):
                cells = []
                for gbit in (10, 25, 100):
                    c = 2 * (w - 1) / w * mb * 1e6 * 8 / (gbit * 1e9)
                    exposed = max(c - hidden * step * 2 / 3, c * (1 - hidden))
                    cells.append(f"{100 * step / (step + exposed):.0f}% ({c:.2f} s)")
                print(f"| {label} | {w} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
