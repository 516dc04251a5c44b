#!/usr/bin/env python3
"""The torchvision peer of bench_retinanet: the example RetinaNet's `demo` and `paper` architectures
built from torchvision parts, timed on the same cases.

Run with /usr/bin/python3 (Debian's python3-torch 1.13, python3-torchvision 0.14).

Architectures (examples/retinanet/model/config.cpp and the model files):
  demo   ResNet-style basic blocks [1, 1, 1, 1] of widths 16, 32, 64, 128; stem 3x3/2 conv (16 ch,
         no bias) + GroupNorm + ReLU, no max-pool (so layer1 has stride 2); 64-channel FPN on C3-C5
         (no norm), P6 = 3x3/2 conv of C5, P7 = 3x3/2 conv of ReLU(P6) (LastLevelP6P7(128, 64));
         heads of 2 x (3x3 conv without bias + GroupNorm + ReLU) + the output conv; 9 anchors per
         cell (sizes 16 * 2^l x 2^(k/3), ratios 0.5, 1, 2); 10 classes
  paper  ResNet-50 (bottleneck [3, 4, 6, 3], stride on the 3x3), stem 7x7/2 + max-pool; 256-channel
         FPN, P6 from C5 (LastLevelP6P7(2048, 256)); heads of 4 GroupNorm convs; detectron2
         anchors (32 * 2^l x 2^(k/3)); 80 classes
GroupNorm everywhere in backbone and heads, with the largest group count <= norm_groups (8 demo,
32 paper) that divides the channels (model/building_blocks.cpp's make_norm). torchvision's
RetinaNet head has 4 convs hard-coded: its .conv is replaced by a Sequential of the wanted count.

Cases (as bench_retinanet.cpp; synthetic images uniform in [0, 1], 3 boxes per image):
  train_step/demo/128x128/batch:8, train_step/paper/512x512/batch:2: model.train(), losses of
    model(images, targets) summed (torchvision's own focal loss + L1 box loss), backward, SGD step
  inference/paper/800x1344/batch:1: model.eval(), torch.no_grad(), model([image]) (transform,
    forward, postprocess_detections)
The transform keeps the given size (min_size=(H,), max_size=max(H, W)); "size" reports the size
actually fed to the network. One warm-up call, then --repeats timed calls (demo: at least 10).

Prints one JSON line per case: {"name", "case", "threads", "seconds" (median), "min_seconds" (the
best call: the robust figure on a shared machine), "repeats", "images_per_second" (from the
median), "parameters", "size"}, after a first line {"name": "torchvision", "available": true, "torch",
"torchvision", "parameters": {config: count}}. --count-only prints just that first line.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torchvision
    from torch import nn
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.retinanet import RetinaNet, RetinaNetHead
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import Conv2dNormActivation
except ImportError as e:  # the compare script reports the peer as unavailable
    if __name__ == "__main__":
        print(json.dumps({"name": "torchvision", "available": False, "reason": repr(e)}))
        sys.exit(0)
    raise

CONFIGS = {
    "demo": dict(block="basic", blocks=[1, 1, 1, 1], widths=[16, 32, 64, 128], stem_channels=16, stem_kernel=3,
                 stem_pool=False, groups=8, fpn=64, head_convs=2, base_size=16, classes=10),
    "paper": dict(block="bottleneck", blocks=[3, 4, 6, 3], widths=[64, 128, 256, 512], stem_channels=64, stem_kernel=7,
                  stem_pool=True, groups=32, fpn=256, head_convs=4, base_size=32, classes=80),
}


def group_norm(groups):
    """make_norm's GroupNorm: the largest group count <= groups dividing the channels."""
    def make(channels):
        g = min(groups, channels)
        while channels % g:
            g -= 1
        return nn.GroupNorm(g, channels)
    return make


def build_backbone(c):
    """A torchvision ResNet with the configuration's stem, blocks and widths (layer2-4 -> C3-C5)."""
    block = BasicBlock if c["block"] == "basic" else Bottleneck
    norm = group_norm(c["groups"])
    net = ResNet(block, c["blocks"], norm_layer=norm)  # 64-wide stem and 64..512 stages; rebuilt below
    net.conv1 = nn.Conv2d(3, c["stem_channels"], c["stem_kernel"], stride=2, padding=c["stem_kernel"] // 2, bias=False)
    net.bn1 = norm(c["stem_channels"])
    if not c["stem_pool"]:
        net.maxpool = nn.Identity()
    net.inplanes = c["stem_channels"]
    for s, (width, count) in enumerate(zip(c["widths"], c["blocks"])):
        stride = 1 if s == 0 and c["stem_pool"] else 2
        setattr(net, f"layer{s + 1}", net._make_layer(block, width, count, stride=stride))
    for m in net.modules():  # torchvision's own ResNet init, on the rebuilt layers
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


def build_model(name, image_size=None, max_size=None, **retinanet_kwargs):
    """The example's `name` configuration as a torchvision RetinaNet."""
    c = CONFIGS[name]
    body = build_backbone(c)
    expansion = 4 if c["block"] == "bottleneck" else 1
    c_channels = [w * expansion for w in c["widths"]]
    backbone = BackboneWithFPN(body, return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
                               in_channels_list=c_channels[1:], out_channels=c["fpn"],
                               extra_blocks=LastLevelP6P7(c_channels[3], c["fpn"]))
    base = c["base_size"]
    sizes = tuple(tuple(base * 2 ** l * 2 ** (k / 3) for k in range(3)) for l in range(5))
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * 5)
    num_anchors = anchors.num_anchors_per_location()[0]
    head = RetinaNetHead(c["fpn"], num_anchors, c["classes"], norm_layer=group_norm(c["groups"]))
    for sub in (head.classification_head, head.regression_head):
        sub.conv = nn.Sequential(*[Conv2dNormActivation(c["fpn"], c["fpn"], norm_layer=group_norm(c["groups"]))
                                   for _ in range(c["head_convs"])])
        for m in sub.conv.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
    size = image_size or 800
    model = RetinaNet(backbone, c["classes"], min_size=size, max_size=max_size or max(size, 1333),
                      anchor_generator=anchors, head=head, **retinanet_kwargs)
    return model


def keep_size(model, height, width):
    """Sets the transform so an H x W input is not resized; returns the size the network sees."""
    model.transform.min_size = (min(height, width),)
    model.transform.max_size = max(height, width)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        images, _ = model.transform([torch.zeros(3, height, width)])
    model.train(was_training)
    return list(images.tensors.shape[-2:])


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def synthetic(batch, height, width, classes, gen):
    images = [torch.rand(3, height, width, generator=gen) for _ in range(batch)]
    targets = []
    side = min(height, width)
    for _ in range(batch):
        c = torch.rand(3, 2, generator=gen) * torch.tensor([width, height])
        wh = side / 8 + torch.rand(3, 2, generator=gen) * (side / 2 - side / 8)
        boxes = torch.cat([c - wh / 2, c + wh / 2], 1)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        targets.append({"boxes": boxes, "labels": torch.randint(0, classes, (3,), generator=gen)})
    return images, targets


DEVICE = torch.device("cpu")


def finish():
    """Waits for the device's queued work (a no-op on the CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def time_calls(fn, repeats):
    fn()  # warm-up (twice on a GPU: cuDNN's algorithm search, the caching allocator)
    if DEVICE.type == "cuda":
        fn()
    finish()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        finish()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def train_case(name, batch, height, width, threads, repeats):
    torch.manual_seed(20170807)
    model = build_model(name)
    size = keep_size(model, height, width)
    model.train()
    gen = torch.Generator().manual_seed(20170807)
    images, targets = synthetic(batch, height, width, CONFIGS[name]["classes"], gen)
    model.to(DEVICE)
    images = [i.to(DEVICE) for i in images]
    targets = [{k: v.to(DEVICE) for k, v in t.items()} for t in targets]
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def step():
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    s, best = time_calls(step, repeats)
    return {"name": f"torchvision/train_step/{name}/{height}x{width}/batch:{batch}/threads:{threads}",
            "case": f"train_step/{name}/{height}x{width}/batch:{batch}", "threads": threads, "device": str(DEVICE), "seconds": s,
            "min_seconds": best, "repeats": repeats,
            "images_per_second": batch / s, "parameters": parameter_count(model), "size": size}


def inference_case(name, height, width, threads, repeats):
    torch.manual_seed(20170807)
    model = build_model(name)
    size = keep_size(model, height, width)
    model.eval()
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(20170807))

    def run():
        with torch.no_grad():
            model([image])

    s, best = time_calls(run, repeats)
    return {"name": f"torchvision/inference/{name}/{height}x{width}/batch:1/threads:{threads}",
            "case": f"inference/{name}/{height}x{width}/batch:1", "threads": threads, "seconds": s,
            "min_seconds": best, "repeats": repeats,
            "images_per_second": 1.0 / s, "parameters": parameter_count(model), "size": size}


CASES = {
    "train_step/demo/128x128/batch:8": lambda t, r: train_case("demo", 8, 128, 128, t, r),
    "train_step/paper/512x512/batch:2": lambda t, r: train_case("paper", 2, 512, 512, t, r),
    "inference/paper/800x1344/batch:1": lambda t, r: inference_case("paper", 800, 1344, t, r),
    # The GPU check's case (--device cuda): the paper's training configuration.
    "train_step/paper/800x1344/batch:8": lambda t, r: train_case("paper", 8, 800, 1344, t, r),
}
DEFAULT_CASES = ["train_step/demo/128x128/batch:8", "train_step/paper/512x512/batch:2", "inference/paper/800x1344/batch:1"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per case, median (default 3)")
    ap.add_argument("--demo-repeats", type=int, default=None, help="timed calls of the demo case (default max(repeats, 10))")
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES), help="comma list of cases: " + ", ".join(CASES))
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: where torch runs the model")
    ap.add_argument("--count-only", action="store_true", help="print the parameter counts only")
    args = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.set_num_threads(args.threads)
    counts = {name: parameter_count(build_model(name)) for name in CONFIGS}
    print(json.dumps({"name": "torchvision", "available": True, "torch": torch.__version__,
                      "torchvision": torchvision.__version__, "threads": args.threads, "parameters": counts}), flush=True)
    if args.count_only:
        return
    for case in args.cases.split(","):
        repeats = args.repeats
        if "demo" in case:
            repeats = args.demo_repeats if args.demo_repeats is not None else max(args.repeats, 10)
        print(json.dumps(CASES[case](args.threads, repeats)), flush=True)


if __name__ == "__main__":
    main()
