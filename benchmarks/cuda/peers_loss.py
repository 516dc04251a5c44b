#!/usr/bin/env python3
"""torchvision's sigmoid_focal_loss on CUDA, forward + backward, on the shapes of bench_loss.cu.

Prints one JSON object: {"rows": [{"name": "focal_loss/201600x80", "ms": ...}, ...]}, with the
median of 20 timed calls (torch.cuda.Event) after warm-up. torchvision needs dense one-hot targets
(built once, outside the timing), reduction='sum', then divided by max(1, positives) as RetinaNet
does; ignored anchors are removed by indexing as torchvision's RetinaNet.compute_loss does
(valid_idxs), which is part of the timed work. The batch case runs the per-image loop of
compute_loss (16 images). Exits 0 with {"rows": []} when torch / torchvision / CUDA is missing.
"""
import json
import sys

from peer_common import cuda_torch, median_ms


def main():
    torch = cuda_torch("peers_loss.py", "torchvision.ops")
    if torch is None:
        return 0
    from torchvision.ops import sigmoid_focal_loss

    dev = torch.device("cuda")
    n, k = 201600, 80
    gen = torch.Generator(device="cpu").manual_seed(0)

    def make_image():
        logits = (torch.randn(n, k, generator=gen) * 2.0 - 4.0).to(dev)
        r = torch.rand(n, generator=gen)
        labels = torch.full((n,), -1, dtype=torch.int64)
        labels[r < 0.01] = -2
        pos = (r >= 0.01) & (r < 0.011)
        labels[pos] = torch.randint(0, k, (int(pos.sum()),), generator=gen)
        labels = labels.to(dev)
        onehot = torch.zeros(n, k, device=dev)
        fg = labels >= 0
        onehot[fg, labels[fg]] = 1.0
        return logits, labels, onehot

    rows = []

    logits, labels, onehot = make_image()
    leaf = logits.clone().requires_grad_(True)

    def one_image(x, lab, oh, norm_factor):
        valid = lab != -2
        positives = (lab >= 0).sum()
        loss = sigmoid_focal_loss(x[valid], oh[valid], reduction="sum")
        return loss / (norm_factor * torch.clamp(positives, min=1))

    def single():
        leaf.grad = None
        one_image(leaf, labels, onehot, 1.0).backward()

    rows.append({"name": "focal_loss/201600x80", "ms": median_ms(torch, single)})

    b = 16
    images = [make_image() for _ in range(b)]
    x = torch.stack([im[0] for im in images]).requires_grad_(True)
    lab = torch.stack([im[1] for im in images])
    oh = torch.stack([im[2] for im in images])
    del images

    def batch():
        x.grad = None
        total = sum(one_image(x[i], lab[i], oh[i], float(b)) for i in range(b))
        total.backward()

    rows.append({"name": "focal_loss/16x201600x80", "ms": median_ms(torch, batch)})
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
