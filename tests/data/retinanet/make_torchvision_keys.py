# Writes torchvision_v1_keys.txt: every state-dict entry of torchvision 0.14's
# retinanet_resnet50_fpn (91 classes) with its shape, the names focal's example must import.
# Run with /usr/bin/python3 (Debian's python3-torchvision).
import torchvision

model = torchvision.models.detection.retinanet_resnet50_fpn(weights=None, weights_backbone=None)
with open("torchvision_v1_keys.txt", "w") as out:
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        out.write(key + " " + " ".join(str(d) for d in value.shape) + "\n")
