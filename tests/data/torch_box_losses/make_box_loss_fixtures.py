"""Reference box losses and box IoU from torch / torchvision, for focal's box tests.
Usage: /usr/bin/python3 make_box_loss_fixtures.py [OUT_DIR] (default: this file's directory).
Writes OUT_DIR/<case>/<array>.npy and OUT_DIR/manifest.json. float64 throughout; gradients by
autograd of the summed loss with respect to the predictions."""
import json, os, sys
import numpy as np, torch, torchvision
from torchvision.ops import generalized_box_iou_loss

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
manifest = {"generator": f"torch {torch.__version__}, torchvision {torchvision.__version__}", "seed": 7, "cases": {}}

def save(case, params, **arrays):
    d = os.path.join(out, case); os.makedirs(d, exist_ok=True)
    for k, v in arrays.items():
        np.save(os.path.join(d, k + ".npy"), v.detach().numpy() if torch.is_tensor(v) else np.asarray(v))
    manifest["cases"][case] = {"params": params, "arrays": {k: list(np.shape(v)) for k, v in arrays.items()}}

def boxes(n, scale):
    xy = rng.uniform(0, scale, (n, 2)); wh = rng.uniform(1, scale / 2, (n, 2))
    return np.concatenate([xy, xy + wh], 1)

# smooth L1 and L1 on encoded deltas: elementwise values, gradient w.r.t. the prediction
# Parameters are passed as their float32 values: focal's policies store float parameters.
f32 = lambda v: float(np.float32(v))
for i, beta in enumerate([f32(1.0 / 9.0), 1.0, 0.5, 0.0]):
    pred = torch.tensor(rng.normal(0, 1, (256, 4)), dtype=torch.float64, requires_grad=True)
    target = torch.tensor(rng.normal(0, 1, (256, 4)), dtype=torch.float64)
    loss = torch.nn.functional.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    grad, = torch.autograd.grad(loss.sum(), pred)
    save(f"smoothl1_{i}", {"beta": beta, "note": "torch.nn.functional.smooth_l1_loss, reduction none; beta 0 is L1"},
         pred=pred, target=target, loss=loss, grad=grad)

# generalized IoU loss on xyxy boxes: overlapping, disjoint, nested, identical and empty pairs
n = 512
pred = boxes(n, 100.0); target = pred + rng.normal(0, 15, (n, 4))
target[:, 2:] = np.maximum(target[:, 2:], target[:, :2] + 0.5)
target[:32] = boxes(32, 400.0) + 200          # mostly disjoint
target[32:48] = pred[32:48]                    # identical
target[48:64, :2] = pred[48:64, :2] + 1; target[48:64, 2:] = pred[48:64, 2:] - 1   # nested
p = torch.tensor(pred, dtype=torch.float64, requires_grad=True); t = torch.tensor(target, dtype=torch.float64)
loss = generalized_box_iou_loss(p, t, reduction="none", eps=f32(1e-7))
grad, = torch.autograd.grad(loss.sum(), p)
save("giou_0", {"eps": f32(1e-7), "note": "torchvision.ops.generalized_box_iou_loss, reduction none; rows 32-47 identical boxes (min/max ties)"},
     pred=p, target=t, loss=loss, grad=grad)

# pairwise IoU and GIoU (torchvision.ops.box_iou / generalized_box_iou), float32, valid boxes
from torchvision.ops import box_iou, generalized_box_iou
a = torch.tensor(boxes(64, 200.0), dtype=torch.float32); b = torch.tensor(boxes(96, 200.0), dtype=torch.float32)
b[:8] = a[:8]                                   # identical pairs
save("pairwise_0", {"note": "torchvision.ops.box_iou(a, b) and generalized_box_iou(a, b), float32"},
     a=a, b=b, iou=box_iou(a, b), giou=generalized_box_iou(a, b))

with open(os.path.join(out, "manifest.json"), "w") as f: json.dump(manifest, f, indent=1)
print("wrote", len(manifest["cases"]), "cases to", out)
