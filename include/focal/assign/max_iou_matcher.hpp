// focal/assign/max_iou_matcher.hpp: the max-IoU anchor matcher as a policy, and its presets.
//
// Per anchor, best = max over ground truth of IoU(anchor, gt), argmax = the first gt reaching it
// (torch.max's tie rule). Codes:
//   argmax (>= 0)  best >= high                     positive
//   -2 (ignored)   low <= best < high               (torchvision BETWEEN_THRESHOLDS)
//   -1 (negative)  best < low; every anchor when there is no ground truth
// Low-quality matches (allow_low_quality_matches): for each gt, every anchor whose IoU with it
// equals that gt's highest IoU (ties included) gets code = the anchor's OWN argmax, whatever
// its code was (torchvision: matches[pred_inds_to_update] = all_matches[pred_inds_to_update]).
//   zero_iou_guard        a gt whose highest IoU is 0 (zero area, inverted, outside every
//                         anchor) promotes nothing. Without it every anchor ties that 0 and
//                         torchvision makes all of them positive (mmdetection#8289). On by
//                         default, off in matcher_presets::torchvision() for parity.
//   low_quality_min_iou   a promoted anchor stays positive only if its own best IoU is >= this
//                         (Detectron: low, via its "max < 0.4 -> background" overwrite).
// Crowd / ignore regions (crowd boxes passed to match_anchors): an anchor coded -1 whose
// intersection-over-anchor-area with some crowd box is > crowd_threshold becomes -2 (mmdet's
// ignore_iof_thr, but positives stay positive). Applied before low-quality promotion.
// Non-finite input: gt and crowd boxes must be finite (checked; focal::error). An anchor with a
// NaN or infinite coordinate gets -2 and counts in no gt's highest IoU (torchvision would match
// a NaN IoU as positive). Degenerate gt boxes (zero area, inverted) have IoU 0 with everything.
#pragma once

#include <cmath>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/math.hpp"

namespace focal {

struct max_iou_matcher {
    static constexpr int negative = -1;  // torchvision Matcher.BELOW_LOW_THRESHOLD
    static constexpr int ignored = -2;   // torchvision Matcher.BETWEEN_THRESHOLDS

    float high = 0.5f;                     // positive when best IoU >= high
    float low = 0.4f;                      // negative when best IoU < low; 0 <= low <= high <= 1
    bool allow_low_quality_matches = true; // torchvision's and detectron2's RetinaNet
    bool zero_iou_guard = true;            // see above; false reproduces torchvision exactly
    float low_quality_min_iou = 0.0f;      // 0: every promoted anchor stays positive
    float crowd_threshold = 0.5f;          // intersection / anchor area > this: near a crowd box
    bool plus_one = false;                 // IoU with widths x2 - x1 + 1 (Detectron)

    // The threshold rule for one anchor (T: float, double or a packet of them): argmax if
    // best >= high, -2 if best >= low, else -1. A NaN best would keep argmax (torchvision's
    // comparisons do the same); the driver never passes one.
    template <class T>
    FOCAL_HD FOCAL_INLINE T threshold_code(T best, T argmax) const noexcept {
        return math::select(best >= T(high), argmax, math::select(best >= T(low), T(ignored), T(negative)));
    }
};

inline void validate(const max_iou_matcher& m, const char* where = "focal::max_iou_matcher") {
    auto unit = [&](float v, const char* name) {
        detail::require(v >= 0.0f && v <= 1.0f, where, name, "in [0, 1]", v);  // false for NaN
    };
    unit(m.low, "low");
    unit(m.high, "high");
    detail::require(m.low <= m.high, where, "low", "<= high (" + detail::concat(m.high) + ")", m.low);
    unit(m.low_quality_min_iou, "low_quality_min_iou");
    unit(m.crowd_threshold, "crowd_threshold");
}

namespace matcher_presets {

// torchvision.models.detection._utils.Matcher(0.5, 0.4, allow_low_quality_matches=True), code for code.
inline max_iou_matcher torchvision(float high = 0.5f, float low = 0.4f, bool allow_low_quality_matches = true) {
    return {.high = high, .low = low, .allow_low_quality_matches = allow_low_quality_matches, .zero_iou_guard = false};
}

// detectron2 Matcher([0.4, 0.5], [0, -1, 1], allow_low_quality_matches=True): the same codes
// (its label 0 is -1 here, -1 is -2, and a low-quality match keeps the argmax gt as here).
inline max_iou_matcher detectron2() { return torchvision(); }

// Detectron (caffe2) RetinaNet targets, the paper's code: +1 IoU, low-quality matches that
// keep IoU >= 0.4, everything else as torchvision.
inline max_iou_matcher detectron() {
    return {.high = 0.5f, .low = 0.4f, .allow_low_quality_matches = true, .zero_iou_guard = true,
            .low_quality_min_iou = 0.4f, .plus_one = true};
}
inline max_iou_matcher paper() { return detectron(); }

}  // namespace matcher_presets

}  // namespace focal
