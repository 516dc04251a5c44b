// focal/retinanet.hpp: everything focal offers on the host, and the RetinaNet pipelines built from
// it (focal/retinanet/: the training loss and the inference post-processing).
// Each module has its umbrella header (<focal/core.hpp>, <focal/box.hpp>, <focal/anchor.hpp>,
// <focal/assign.hpp>, <focal/coder.hpp>, <focal/loss.hpp>, <focal/nms.hpp>, <focal/eval.hpp>).
// Opt-in headers with extra dependencies: <focal/adapt/eigen.hpp>, <focal/adapt/xtensor.hpp>,
// <focal/eval/coco_json.hpp> (nlohmann_json, target focal::json); CUDA: <focal/cuda.cuh>.
#pragma once

#include "anchor.hpp"
#include "assign.hpp"
#include "box.hpp"
#include "coder.hpp"
#include "core.hpp"
#include "eval.hpp"
#include "loss.hpp"
#include "nms.hpp"
#include "retinanet/loss.hpp"
#include "retinanet/normalizer.hpp"
#include "retinanet/postprocess.hpp"
