// focal/retinanet.hpp: everything focal offers on the host. Opt-in headers with extra
// dependencies: <focal/adapt/eigen.hpp>, <focal/adapt/xtensor.hpp>, <focal/eval/coco_json.hpp>
// (nlohmann_json, target focal::json).
#pragma once

#include "anchor/generate.hpp"
#include "anchor/presets.hpp"
#include "assign/targets.hpp"
#include "box/format.hpp"
#include "box/iou.hpp"
#include "box/pairwise.hpp"
#include "coder/box_coding.hpp"
#include "core.hpp"
#include "eval/coco_eval.hpp"
#include "loss.hpp"
#include "loss/retinanet_loss.hpp"
#include "nms/nms.hpp"
#include "postprocess/retinanet_postprocess.hpp"
