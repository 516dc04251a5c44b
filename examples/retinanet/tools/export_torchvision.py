#!/usr/bin/python3
"""Exports torchvision's RetinaNet (ResNet-50 FPN) state_dict to an npz archive for the C++ trainer.

  export_torchvision.py --out retinanet_resnet50_fpn.npz [--weights path.pth | --random-seed N]
                        [--num-classes 91]

Every state_dict entry -- parameters and the BatchNorm buffers running_mean / running_var, but not
num_batches_tracked -- becomes one float32 array named by its exact state_dict key (e.g.
"backbone.body.layer1.0.conv1.weight"), written with np.savez: read it with retinanet::io::read_npz.

This machine has no network: without --weights the model keeps torchvision's own random
initialisation, seeded by --random-seed (default 0), which is what the parity tests need. For the
COCO weights, download retinanet_resnet50_fpn_coco-eeacb38b.pth elsewhere and pass --weights.
"""
import argparse
import sys

import numpy as np
import torch
import torchvision


def load_state_dict(path):
    state = torch.load(path, map_location="cpu")
    # Training checkpoints often wrap the weights: {"model": state_dict, "optimizer": ...}.
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return state


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the .npz to write (the name is kept as given)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", help="a state_dict (.pth) to load into the model")
    source.add_argument("--random-seed", type=int, default=0, help="seed of the random init (default 0)")
    parser.add_argument("--num-classes", type=int, default=91, help="classes of the head (default 91, COCO)")
    args = parser.parse_args()

    torch.manual_seed(args.random_seed)
    model = torchvision.models.detection.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=args.num_classes)
    if args.weights:
        # Pretrained files use FrozenBatchNorm2d, which has no num_batches_tracked; anything
        # else missing or extra means the file is not this architecture.
        result = model.load_state_dict(load_state_dict(args.weights), strict=False)
        missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
        if missing or result.unexpected_keys:
            sys.exit(f"export_torchvision: {args.weights} does not match retinanet_resnet50_fpn("
                     f"num_classes={args.num_classes}): missing {missing[:5]}, "
                     f"unexpected {result.unexpected_keys[:5]}")
        print(f"loaded weights from {args.weights}")
    else:
        print(f"no --weights given: torchvision's random initialisation with seed {args.random_seed} "
              "(no network here for the pretrained COCO weights)")

    arrays = {key: value.detach().cpu().numpy().astype(np.float32)
              for key, value in model.state_dict().items() if not key.endswith("num_batches_tracked")}
    with open(args.out, "wb") as f:  # a file object, so np.savez does not append ".npz"
        np.savez(f, **arrays)

    parameters = sum(p.numel() for p in model.parameters())
    values = sum(a.size for a in arrays.values())
    print(f"wrote {args.out}: {len(arrays)} arrays, {values} values "
          f"({parameters} parameters, the rest BatchNorm running statistics)")


if __name__ == "__main__":
    main()
