// focal/eval/coco_params.hpp: the parameters of COCO bbox evaluation (pycocotools' Params).
//
// Defaults are pycocotools' for iouType "bbox":
//   iou_thresholds     .50:.05:.95 (10)   numpy.linspace(.5, .95, 10): 0.8999999999999999, not .9
//   recall_thresholds  0:.01:1 (101)      numpy.linspace(0, 1, 101)
//   max_detections     1, 10, 100         per image and category
//   area_ranges        all [0, 1e10], small [0, 32^2], medium [32^2, 96^2], large [96^2, 1e10];
//                      both bounds inclusive (an area of exactly 1024 is small and medium)
#pragma once

#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "detail/numpy_arith.hpp"

namespace focal {

struct coco_area_range {
    std::string label;  // summarize() finds ranges by label: "all", "small", "medium", "large"
    double min_area = 0;
    double max_area = 0;
};

struct coco_eval_params {
    std::vector<double> iou_thresholds = detail::numpy_linspace(0.5, 0.95, 10);
    std::vector<double> recall_thresholds = detail::numpy_linspace(0.0, 1.0, 101);
    std::vector<index_t> max_detections = {1, 10, 100};
    std::vector<coco_area_range> area_ranges = {
        {"all", 0.0, 1e10}, {"small", 0.0, 1024.0}, {"medium", 1024.0, 9216.0}, {"large", 9216.0, 1e10}};
};

// At most 32 IoU thresholds: the evaluator keeps one bit per threshold for every detection.
inline constexpr std::size_t coco_max_iou_thresholds = 32;

inline void validate(const coco_eval_params& p, const char* where) {
    using detail::require;
    const std::size_t t = p.iou_thresholds.size();
    require(t >= 1 && t <= coco_max_iou_thresholds, where, "params.iou_thresholds", "1 to 32 values", t, " values");
    for (std::size_t i = 0; i < t; ++i)
        require(p.iou_thresholds[i] >= 0.0 && p.iou_thresholds[i] <= 1.0, where,
                "params.iou_thresholds[" + std::to_string(i) + "]", "in [0, 1]", p.iou_thresholds[i]);
    require(!p.recall_thresholds.empty(), where, "params.recall_thresholds", "non-empty", "none");
    for (std::size_t i = 0; i < p.recall_thresholds.size(); ++i) {
        const double r = p.recall_thresholds[i];
        require(r >= 0.0 && r <= 1.0, where, "params.recall_thresholds[" + std::to_string(i) + "]", "in [0, 1]", r);
        require(i == 0 || r >= p.recall_thresholds[i - 1], where, "params.recall_thresholds",
                "non-decreasing", r, " after ", i == 0 ? 0.0 : p.recall_thresholds[i - 1]);
    }
    require(!p.max_detections.empty(), where, "params.max_detections", "non-empty", "none");
    for (std::size_t i = 0; i < p.max_detections.size(); ++i) {
        const index_t m = p.max_detections[i];
        require(m >= 1 && m <= index_t(1) << 31, where, "params.max_detections[" + std::to_string(i) + "]",
                "in [1, 2^31]", m);
        require(i == 0 || m > p.max_detections[i - 1], where, "params.max_detections", "strictly increasing", m,
                " after ", i == 0 ? 0 : p.max_detections[i - 1]);
    }
    require(!p.area_ranges.empty(), where, "params.area_ranges", "non-empty", "none");
    for (std::size_t i = 0; i < p.area_ranges.size(); ++i) {
        const auto& a = p.area_ranges[i];
        require(a.min_area <= a.max_area, where, "params.area_ranges[" + std::to_string(i) + "]",
                "a range with min_area <= max_area (no NaN)", "[", a.min_area, ", ", a.max_area, "]");
        for (std::size_t j = 0; j < i; ++j)
            require(p.area_ranges[j].label != a.label, where, "params.area_ranges[" + std::to_string(i) + "].label",
                    "unique", "\"", a.label, "\" again");
    }
}

}  // namespace focal
