#!/usr/bin/env python3
"""torchvision peers of benchmarks/cuda/bench_nms.cu: torchvision.ops.nms on 20k / 100k boxes and
RetinaNet.postprocess_detections (batch 8, 800x1344, 91 classes, P3-P7 x 9 anchors), on CUDA.
Prints {"rows": [{"name": ..., "ms": ...}]}; {"rows": []} when torch / CUDA is unavailable."""
import json
import sys

from peer_common import cuda_torch, median_ms


def main():
    torch = cuda_torch("peers_nms.py", "torchvision", "torchvision.models.detection")
    if torch is None:
        return 0
    import torchvision
    from torchvision.models.detection import retinanet_resnet50_fpn
    from torchvision.models.detection.image_list import ImageList
    dev = torch.device("cuda")
    rows = []
    g = torch.Generator(device="cpu").manual_seed(1)
    for n in (20000, 100000):
        xy = torch.rand(n, 2, generator=g) * 1000
        wh = torch.rand(n, 2, generator=g) * 90 + 10
        boxes = torch.cat([xy, xy + wh], 1).to(dev)
        scores = torch.rand(n, generator=g).to(dev)
        rows.append({"name": f"nms/{n}", "ms": median_ms(torch, lambda: torchvision.ops.nms(boxes, scores, 0.5))})

    model = retinanet_resnet50_fpn(num_classes=91, weights=None, weights_backbone=None).to(dev).eval()
    batch, h, w = 8, 800, 1344
    images = ImageList(torch.zeros(batch, 3, h, w, device=dev), [(h, w)] * batch)
    strides = (8, 16, 32, 64, 128)
    feats = [torch.zeros(batch, 256, -(-h // s), -(-w // s), device=dev) for s in strides]
    with torch.no_grad():
        anchors = model.anchor_generator(images, feats)
    num_anchors_per_level = [f.shape[2] * f.shape[3] * 9 for f in feats]
    total = sum(num_anchors_per_level)
    cls = (torch.randn(batch, total, 91, generator=g) * 1.5 - 4.0).to(dev)
    reg = (torch.rand(batch, total, 4, generator=g) * 2 - 1).to(dev)
    # torchvision's forward: split the head outputs per level, then postprocess_detections.
    split_cls = list(cls.split(num_anchors_per_level, dim=1))
    split_reg = list(reg.split(num_anchors_per_level, dim=1))
    split_anchors = [list(a.split(num_anchors_per_level)) for a in anchors]
    head = {"cls_logits": split_cls, "bbox_regression": split_reg}

    def post():
        with torch.no_grad():
            return model.postprocess_detections(head, split_anchors, images.image_sizes)

    rows.append({"name": "postprocess/8x800x1344x91", "ms": median_ms(torch, post)})
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
