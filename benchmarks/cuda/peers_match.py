#!/usr/bin/env python3
"""torchvision on CUDA for the cases of benchmarks/cuda/bench_match.cu (same names):

  match/120000x50         box_iou(gt, anchors) + det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
  pairwise_iou/120000x50  box_iou(anchors, gt)
  decode/201600           det_utils.BoxCoder((1, 1, 1, 1)).decode_single(deltas, anchors)

Anchors are torchvision's AnchorGenerator pyramid for an 800 x 1344 image (the first 120,000
for the matcher, all 201,600 for decode) when it can be built, else random boxes of that count;
gt boxes are random. Times: median of 20 after warm-up, torch.cuda.Event, synchronized.
Prints one JSON object {"rows": [{"name": ..., "ms": ...}, ...]}; {"rows": []} without torch/CUDA.
"""
import json
import sys

from peer_common import cuda_torch, median_ms


def main():
    torch = cuda_torch("peers_match.py", "torchvision.ops", "torchvision.models.detection._utils")
    if torch is None:
        return 0
    from torchvision.models.detection import _utils as det_utils
    from torchvision.ops import box_iou
    dev = torch.device("cuda")
    torch.manual_seed(0)

    def pyramid():
        try:
            from torchvision.models.detection.anchor_utils import AnchorGenerator
            from torchvision.models.detection.image_list import ImageList
            sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [32, 64, 128, 256, 512])
            gen = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
            images = ImageList(torch.zeros(1, 3, 800, 1344, device=dev), [(800, 1344)])
            feats = [torch.zeros(1, 1, (800 + s - 1) // s, (1344 + s - 1) // s, device=dev) for s in (8, 16, 32, 64, 128)]
            return gen(images, feats)[0]
        except Exception as e:  # noqa: BLE001
            print(f"peers_match.py: random anchors ({e})", file=sys.stderr)
            xy = torch.rand(201600, 2, device=dev) * torch.tensor([1344.0, 800.0], device=dev)
            wh = torch.rand(201600, 2, device=dev) * 400 + 16
            return torch.cat([xy - wh / 2, xy + wh / 2], dim=1)

    def random_gt(n):
        xy = torch.rand(n, 2, device=dev) * torch.tensor([1344.0, 800.0], device=dev)
        wh = torch.rand(n, 2, device=dev) * 384 + 16
        return torch.cat([xy - wh / 2, xy + wh / 2], dim=1)

    all_anchors = pyramid().float().contiguous()
    anchors = all_anchors[:120000].contiguous()
    gt = random_gt(50)
    matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
    coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    deltas = (torch.rand(all_anchors.shape[0], 4, device=dev) * 2 - 1).contiguous()
    n = all_anchors.shape[0]
    rows = [
        {"name": f"match/{anchors.shape[0]}x50", "ms": median_ms(torch, lambda: matcher(box_iou(gt, anchors)))},
        {"name": f"pairwise_iou/{anchors.shape[0]}x50", "ms": median_ms(torch, lambda: box_iou(anchors, gt))},
        {"name": f"decode/{n}", "ms": median_ms(torch, lambda: coder.decode_single(deltas, all_anchors))},
    ]
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
