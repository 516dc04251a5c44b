// focal/eval.hpp: COCO evaluation (pycocotools' COCOeval, number for number); JSON I/O is opt-in: <focal/eval/coco_json.hpp>.
#pragma once

#include "core.hpp"
#include "eval/coco_eval.hpp"
#include "eval/coco_iou.hpp"
#include "eval/coco_params.hpp"
#include "eval/coco_result.hpp"
#include "eval/coco_types.hpp"
