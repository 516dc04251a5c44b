// focal/nms.hpp: every NMS: greedy (torchvision.ops.nms), class-aware (batched_nms, per class or
// torchvision's exact rules) and Soft-NMS (linear and Gaussian decay).
#pragma once

#include "nms/batched.hpp"
#include "nms/greedy.hpp"
#include "nms/soft.hpp"
