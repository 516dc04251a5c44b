#!/usr/bin/python3
"""Writes the fixture of tests/retinanet/test_torchvision_import.cpp (run once with /usr/bin/python3,
Debian's torch 1.13 / torchvision 0.14; the outputs are committed):

  import_image.png      a 136 x 100 RGB image (seeded shapes on a gradient, with noise)
  import_boxes.npy      torchvision's detections on it: D x 4 float32 (x1 y1 x2 y2)
  import_scores.npy     D float32
  import_labels.npy     D int64
  import_head_cls.npy   raw head outputs of the first 8 anchors of every level: 5 x 8 x 91 float32
  import_head_box.npy   5 x 8 x 4 float32

The model is torchvision's retinanet_resnet50_fpn (91 classes) with FrozenBatchNorm2d, as the
pretrained COCO model, and every state-dict entry set by the formula below (the 130 MB of real
weights cannot be committed; the C++ test computes the same formula, tests/retinanet/formula_weights.hpp):

  h   = FNV-1a 64 of the entry's name (UTF-8 bytes)
  z_i = splitmix64(h + (i + 1) * 0x9E3779B97F4A7C15 mod 2^64)     i = row-major element index
  r_i = (2 (z_i >> 40) + 1) / 2^24 - 1                            uniform in (-1, 1), 25 bits
  value_i = float32(center + s * r_i)   with s rounded to float32 first, so s r_i is exact in
                                        double and no rounding depends on FMA or libm
  by entry (checked in this order):
    *.running_var                       float32(1 + 0.5 r^2)
    *.running_mean                      center 0,    s 0.1
    backbone.body.*.bn3.weight          center 0.25, s 0.05   (damped residual branches keep
                                                               ResNet-50's activations O(1))
    other backbone.body 1-D .weight     center 1,    s 0.1    (BatchNorm gamma)
    backbone.body 1-D .bias             center 0,    s 0.1    (BatchNorm beta)
    4-D weights (convs)                 center 0,    s sqrt(g / fan_in), fan_in = C_in k k, g:
                                          6     backbone.body and the head towers (He: a ReLU follows)
                                          3     FPN (inner and layer blocks)
                                          12    fpn.layer_blocks.2 (P5, and so P6 and P7)
                                          90    fpn.extra_blocks.p6
                                          1200  fpn.extra_blocks.p7
                                          3     cls_logits
                                          0.03  bbox_reg
    *.cls_logits.bias                   center -8.5, s 1.5
    other 1-D (conv biases)             center 0,    s 0.02
The extra gains on P5-P7 offset the head's zero padding on their 4 x 5, 2 x 3 and 1 x 2 maps, so
every level's logits spread alike and every level contributes detections; the class bias puts
567 (anchor, class) scores above 0.05 (fewer than 1000 on every level), 304 survive NMS and
the 300 best are kept (the cap cuts at a logit gap of 3e-3). IMAGE_SEED was picked among seeded
images for margins well above float32 noise (C++ vs torch: logits ~1e-5 apart):
consecutive detections >= 4.7e-5 apart in logit, every candidate's logit >= 7.5e-4 from the
threshold's, every NMS decision's IoU >= 5.7e-4 from 0.5 (--stats prints these). 7 of the
detections are empty boxes (anchors clipped away entirely; IoU 0/0 never suppresses).
Independent pseudo-random values per entry: a name mapped to the wrong entry, a transposed
layout or a wrong shape changes the detections. (A smooth formula such as sin(a i + phase) would
make every conv's C_out x (C_in k k) matrix rank 2, collapsing the features.)

The transform keeps the image's size (min_size = its height, max_size large: scale 1, checked),
normalizes with ImageNet's mean and std on 0..1 pixels (= the example's pixel_mean / pixel_std on
0..255) and pads to 128 x 160 (size_divisibility 32), so torchvision's padded // grid strides are
exercised (P6 is 2 x 3 cells: stride 64 x 53).

  --npz FILE   also writes the whole formula state dict (np.savez, state-dict key names) for a
               manual check of the npz import path (train::load_checkpoint); about 140 MB.
  --stats      prints activation statistics and the margins of the result (near-ties).
"""
import argparse
import os

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.ops.misc import FrozenBatchNorm2d

HERE = os.path.dirname(os.path.abspath(__file__))
HEIGHT, WIDTH = 100, 136
IMAGE_SEED = 85
LOGIT_THRESHOLD = float(np.log(0.05 / 0.95))
M64 = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def uniform(name, n):
    """r_i in (-1, 1) for i < n, float64 (exact 25-bit values)."""
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(name)) + (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (2.0 * (z >> np.uint64(40)).astype(np.float64) + 1.0) / 2.0**24 - 1.0


CLS_BIAS = (-8.5, 1.5)
GAINS = {"cls_logits": 3.0, "bbox_reg": 0.03, "p5": 12.0, "p6": 90.0, "p7": 1200.0, "fpn": 3.0, "relu": 6.0}


def conv_gain(name):
    if name.endswith("cls_logits.weight"):
        return GAINS["cls_logits"]
    if name.endswith("bbox_reg.weight"):
        return GAINS["bbox_reg"]
    if name.startswith("backbone.fpn.layer_blocks.2."):
        return GAINS["p5"]
    if name.startswith("backbone.fpn.extra_blocks.p6."):
        return GAINS["p6"]
    if name.startswith("backbone.fpn.extra_blocks.p7."):
        return GAINS["p7"]
    if name.startswith("backbone.fpn."):
        return GAINS["fpn"]
    return GAINS["relu"]


def formula(name, shape):
    n = int(np.prod(shape))
    r = uniform(name, n)
    if name.endswith(".running_var"):
        return (1.0 + 0.5 * (r * r)).astype(np.float32).reshape(shape)
    if name.endswith(".running_mean"):
        center, s = 0.0, 0.1
    elif name.startswith("backbone.body.") and len(shape) == 1:
        if name.endswith(".bn3.weight"):
            center, s = 0.25, 0.05
        elif name.endswith(".weight"):
            center, s = 1.0, 0.1
        else:
            center, s = 0.0, 0.1
    elif len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        center, s = 0.0, np.sqrt(conv_gain(name) / fan_in)
    elif name.endswith("cls_logits.bias"):
        center, s = CLS_BIAS
    else:
        center, s = 0.0, 0.02
    s = float(np.float32(s))
    return (center + s * r).astype(np.float32).reshape(shape)


def fixture_image(seed=IMAGE_SEED):
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    img = np.stack([60 + 80 * x / WIDTH, 90 + 60 * y / HEIGHT, 150 - 50 * (x + y) / (WIDTH + HEIGHT)], axis=-1)
    for _ in range(7):  # rectangles and ellipses of random colours
        cx, cy = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        w, h = rng.uniform(10, 50), rng.uniform(10, 50)
        colour = rng.uniform(0, 255, size=3)
        if rng.rand() < 0.5:
            mask = (np.abs(x - cx) < w / 2) & (np.abs(y - cy) < h / 2)
        else:
            mask = ((x - cx) / (w / 2)) ** 2 + ((y - cy) / (h / 2)) ** 2 < 1
        img[mask] = colour
    img += rng.uniform(-12, 12, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def build_model():
    model = torchvision.models.detection.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91, min_size=HEIGHT, max_size=4000)

    def freeze(module):  # nn.BatchNorm2d -> FrozenBatchNorm2d, as the pretrained model
        for child_name, child in module.named_children():
            if isinstance(child, torch.nn.BatchNorm2d):
                setattr(module, child_name, FrozenBatchNorm2d(child.num_features, eps=child.eps))
            else:
                freeze(child)

    freeze(model)
    state = {k: torch.from_numpy(formula(k, tuple(v.shape))) for k, v in model.state_dict().items()}
    assert not any(k.endswith("num_batches_tracked") for k in state)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, state


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz", help="also write the formula state dict here")
    parser.add_argument("--out", default=HERE, help="output directory (default: this one)")
    parser.add_argument("--stats", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)

    img = fixture_image()
    model, state = build_model()
    assert len(state) == 301, len(state)
    if args.npz:
        with open(args.npz, "wb") as f:
            np.savez(f, **{k: v.numpy() for k, v in state.items()})

    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
    captured = {}
    model.head.register_forward_hook(lambda m, i, o: captured.update(head=o))
    batched_nms = torchvision.ops.boxes.batched_nms

    def recording_nms(boxes, scores, idxs, threshold):  # the postprocess's NMS input and output
        keep = batched_nms(boxes, scores, idxs, threshold)
        captured["nms"] = ((boxes, scores, idxs), keep)
        return keep

    torchvision.ops.boxes.batched_nms = recording_nms
    if args.stats:
        for name in ["backbone.body.layer1", "backbone.body.layer2", "backbone.body.layer3", "backbone.body.layer4"]:
            model.get_submodule(name).register_forward_hook(
                lambda m, i, o, name=name: print(f"{name}: mean {o.mean():.3f} std {o.std():.3f} max {o.abs().max():.3f}"))
        model.backbone.fpn.register_forward_hook(
            lambda m, i, o: print(", ".join(f"fpn {k} {tuple(v.shape[2:])} std {v.std():.3f}" for k, v in o.items())))
    with torch.no_grad():
        images, _ = model.transform([x])
        assert images.image_sizes == [(HEIGHT, WIDTH)], images.image_sizes
        assert tuple(images.tensors.shape) == (1, 3, 128, 160), images.tensors.shape
        mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
        std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
        assert torch.equal(images.tensors[0, :, :HEIGHT, :WIDTH], (x - mean) / std), "the transform resized"
        det = model([x])[0]

    cls, box = captured["head"]["cls_logits"][0], captured["head"]["bbox_regression"][0]
    grids = [(16, 20), (8, 10), (4, 5), (2, 3), (1, 2)]
    starts = np.cumsum([0] + [h * w * 9 for h, w in grids])[:-1]
    assert cls.shape[0] == sum(h * w * 9 for h, w in grids)
    head_cls = np.stack([cls[s:s + 8].numpy() for s in starts]).astype(np.float32)
    head_box = np.stack([box[s:s + 8].numpy() for s in starts]).astype(np.float32)

    boxes = det["boxes"].numpy().astype(np.float32)
    scores = det["scores"].numpy().astype(np.float32)
    labels = det["labels"].numpy().astype(np.int64)
    os.makedirs(args.out, exist_ok=True)
    Image.fromarray(img).save(os.path.join(args.out, "import_image.png"), optimize=True)
    np.save(os.path.join(args.out, "import_boxes.npy"), boxes)
    np.save(os.path.join(args.out, "import_scores.npy"), scores)
    np.save(os.path.join(args.out, "import_labels.npy"), labels)
    np.save(os.path.join(args.out, "import_head_cls.npy"), head_cls)
    np.save(os.path.join(args.out, "import_head_box.npy"), head_box)
    print(f"{len(scores)} detections, scores {scores.min():.4f}..{scores.max():.4f}, "
          f"{len(np.unique(labels))} labels")

    if args.stats:
        per_level = [int((cls[s:s + h * w * 9] > LOGIT_THRESHOLD).sum()) for s, (h, w) in zip(starts, grids)]
        nms_in, nms_out = captured["nms"]
        boxes_in, scores_in, labels_in = nms_in
        level_of = np.repeat(np.arange(5), per_level)  # candidates are concatenated level by level
        print(f"candidates above 0.05 per level {per_level}; kept by NMS {len(nms_out)} (cap 300); "
              f"detections per level {np.bincount(level_of[nms_out[:300].numpy()], minlength=5).tolist()}")
        logits = torch.logit(scores_in.double())
        kept = torch.logit(torch.from_numpy(scores).double())
        print(f"smallest logit gap: between consecutive detections {float((kept[:-1] - kept[1:]).min()):.3g}, "
              f"at the 300 cut {float(logits[nms_out[299]] - logits[nms_out[300]]) if len(nms_out) > 300 else None}, "
              f"of any candidate to the 0.05 threshold {float((cls - LOGIT_THRESHOLD).abs().min()):.3g}")
        # NMS decisions: a kept box against every lower-scoring candidate of its class.
        iou = torchvision.ops.box_iou(boxes_in, boxes_in)
        kept_mask = torch.zeros(len(scores_in), dtype=torch.bool)
        kept_mask[nms_out] = True
        decides = (labels_in[:, None] == labels_in[None, :]) & kept_mask[:, None] & (scores_in[:, None] > scores_in[None, :])
        print(f"smallest |IoU - 0.5| of a kept candidate with a lower one of its class {float(np.nanmin((iou[decides] - 0.5).abs().numpy())):.3g} "
              f"({int(decides.sum())} pairs; empty boxes, IoU 0/0, never suppress)")
        empty = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
        print(f"{int(empty.sum())} detections are empty boxes (anchors clipped away entirely)")
        print(f"head outputs: logit std per level {[round(float(cls[s:s + h * w * 9].std()), 2) for s, (h, w) in zip(starts, grids)]}, "
              f"box delta std {float(box.std()):.3f}")

if __name__ == "__main__":
    main()
