#!/usr/bin/env python3
"""The torchvision peer of bench_postprocess: RetinaNet.postprocess_detections on one image.

Run with /usr/bin/python3 (Debian's python3-torch, python3-torchvision). Same problem as
bench_postprocess.cpp: 800 x 1344, 91 classes, torchvision's anchors, logits ~ normal(-4, 2),
deltas ~ normal(0, 0.3) (torch's generator: the same statistics, not the same numbers), the
model's defaults (score 0.05, top 1000 per level, NMS 0.5, 300 detections). Prints one JSON line
per thread count: {"name", "threads", "seconds", "images_per_second"}.
"""
import json, math, statistics, sys, time

try:
    import torch, torchvision
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.models.detection.image_list import ImageList
    from torchvision.models.detection.retinanet import RetinaNet
except ImportError as e:
    print(json.dumps({"name": "torchvision", "available": False, "reason": str(e)}))
    sys.exit(0)

H, W, K = 800, 1344, 91
torch.manual_seed(2017)
sizes = tuple((s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in [32, 64, 128, 256, 512])
gen = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * 5)
backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5, returned_layers=[2, 3, 4],
                               extra_blocks=torchvision.ops.feature_pyramid_network.LastLevelP6P7(256, 256))
model = RetinaNet(backbone, num_classes=K, anchor_generator=gen).eval()
feats = [torch.zeros(1, 1, math.ceil(H / 2 ** l), math.ceil(W / 2 ** l)) for l in range(3, 8)]
anchors = gen(ImageList(torch.zeros(1, 3, H, W), [(H, W)]), feats)
per_level = [9 * f.shape[2] * f.shape[3] for f in feats]
A = sum(per_level)
cls = torch.randn(1, A, K) * 2 - 4
reg = torch.randn(1, A, 4) * 0.3
heads = {"cls_logits": list(cls.split(per_level, 1)), "bbox_regression": list(reg.split(per_level, 1))}
anc = [list(a.split(per_level)) for a in anchors]

for threads in sorted({1, torch.get_num_threads()}):
    torch.set_num_threads(threads)
    with torch.no_grad():
        model.postprocess_detections(heads, anc, [(H, W)])  # warm-up
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            model.postprocess_detections(heads, anc, [(H, W)])
            times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    print(json.dumps({"name": f"torchvision/postprocess/threads:{threads}", "threads": threads, "seconds": s,
                      "images_per_second": 1.0 / s}), flush=True)
