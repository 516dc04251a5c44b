// focal/eval/coco_iou.hpp: the IoU of a detection and a ground-truth box, as pycocotools computes it.
//
//   I = w * h,  w = min(xd + wd, xg + wg) - max(xd, xg),  h likewise;  I = 0 unless w > 0 and h > 0
//   U = wd * hd + wg * hg - I            for a regular ground truth
//   U = wd * hd                          for a crowd: I / U is the share of the detection inside it
// Boxes are xywh; every step is maskApi.c's bbIou in double, each product rounded, so the value is
// bit-identical to pycocotools' (touching boxes give 0).
#pragma once

#include <cmath>

#include "../config.hpp"
#include "coco_types.hpp"
#include "detail/rounded.hpp"

namespace focal {

inline double coco_iou(const coco_box& dt, const coco_box& gt, bool gt_is_crowd) noexcept {
    const double w = std::fmin(dt[2] + dt[0], gt[2] + gt[0]) - std::fmax(dt[0], gt[0]);
    if (w <= 0) return 0.0;
    const double h = std::fmin(dt[3] + dt[1], gt[3] + gt[1]) - std::fmax(dt[1], gt[1]);
    if (h <= 0) return 0.0;
    const double inter = detail::rounded(w * h);
    const double dt_area = detail::rounded(dt[2] * dt[3]);
    const double gt_area = detail::rounded(gt[2] * gt[3]);
    const double uni = gt_is_crowd ? dt_area : dt_area + gt_area - inter;
    return inter / uni;
}

}  // namespace focal
