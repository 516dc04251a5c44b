"""What the torchvision peers of the CUDA benchmarks share (benchmarks/cuda/peers_*.py).

Each peer prints one JSON object {"rows": [{"name": case, "ms": median}]} for
tests/cuda/gpu_check_table.py, and {"rows": []} (exit 0) where torch, torchvision or a GPU is
missing, so the GPU check still prints focal's figures.
"""
import importlib
import json
import sys


def cuda_torch(script, *modules):
    """torch, after importing `modules` (e.g. "torchvision.ops"); None, having printed the empty
    result and the reason on stderr, when one is missing or no CUDA device is present."""
    try:
        import torch
        for module in modules:
            importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure means "no peer figures"
        print(f"{script}: torch/torchvision unavailable: {e}", file=sys.stderr)
        print(json.dumps({"rows": []}))
        return None
    if not torch.cuda.is_available():
        print(f"{script}: no CUDA device", file=sys.stderr)
        print(json.dumps({"rows": []}))
        return None
    return torch


def median_ms(torch, fn, repeats=20, warmup=3):
    """Median over `repeats` calls of fn, timed with CUDA events after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]
