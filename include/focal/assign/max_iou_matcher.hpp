// focal/assign/max_iou_matcher.hpp: the max-IoU anchor matcher as a policy, and its presets.
//
// Per anchor, best = max over ground truth of IoU(anchor, gt), argmax = the first gt reaching it
// (torch.max's tie rule). Codes (core/labels.hpp):
//   argmax (>= 0)          best >= positive_iou_threshold                        positive
//   ignored_label (-2)     negative_iou_threshold <= best < positive_iou_threshold
//   background_label (-1)  best < negative_iou_threshold; every anchor when there is no ground truth
// Low-quality matches (allow_low_quality_matches): for each gt, every anchor whose IoU with it
// equals that gt's highest IoU (ties included) gets code = the anchor's OWN argmax, whatever
// its code was (torchvision: matches[pred_inds_to_update] = all_matches[pred_inds_to_update]).
//   zero_iou_guard              a gt whose highest IoU is 0 (zero area, inverted, outside every
//                               anchor) promotes nothing. Without it every anchor ties that 0 and
//                               torchvision makes all of them positive (mmdetection#8289). On by
//                               default, off in matcher_presets::torchvision() for parity.
//   low_quality_iou_threshold   a promoted anchor stays positive only if its own best IoU is >= this
//                               (Detectron: 0.4, via its "max < 0.4 -> background" overwrite).
// Crowd / ignore regions (crowd boxes passed to match_anchors): an anchor coded -1 whose
// intersection-over-anchor-area with some crowd box is > crowd_iof_threshold becomes -2 (mmdet's
// ignore_iof_thr, but positives stay positive). Applied before low-quality promotion.
// Non-finite input: gt and crowd boxes must be finite (checked; focal::error). An anchor with a
// NaN or infinite coordinate gets -2 and counts in no gt's highest IoU (torchvision would match
// a NaN IoU as positive). Degenerate gt boxes (zero area, inverted) have IoU 0 with everything.
//
// Thresholds are double, like every threshold in focal, and compared in the IoU's type (float
// IoUs against float(threshold)), as torchvision compares a float tensor with a Python number.
// The rules below are the matcher's only definition: the host SIMD driver (match.hpp) calls them
// with packets, the CUDA kernels (cuda/match.cuh) with plain values. T is float, double or a
// packet of them; M the matching mask (bool or a packet's lane mask).
#pragma once

#include <cmath>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/labels.hpp"
#include "../core/math.hpp"
#include "../core/packet.hpp"

namespace focal {

struct max_iou_matcher {
    static constexpr int negative = background_label;
    static constexpr int ignored = ignored_label;

    double positive_iou_threshold = 0.5;   // positive when best IoU >= this
    double negative_iou_threshold = 0.4;   // negative when best IoU < this; 0 <= negative <= positive <= 1
    bool allow_low_quality_matches = true; // torchvision's and detectron2's RetinaNet
    bool zero_iou_guard = true;            // see above; false reproduces torchvision exactly
    double low_quality_iou_threshold = 0;  // 0: every promoted anchor stays positive
    double crowd_iof_threshold = 0.5;      // intersection / anchor area > this: near a crowd box
    bool plus_one = false;                 // IoU with widths x2 - x1 + 1 (Detectron)

    // A threshold in the value type T (a packet broadcasts its scalar).
    template <class T>
    FOCAL_HD FOCAL_INLINE static T in(double threshold) noexcept {
        return T(static_cast<typename packet_traits<T>::scalar>(threshold));
    }

    // The threshold rule: argmax if best >= positive, -2 if best >= negative, else -1. A NaN best
    // would keep argmax (torchvision's comparisons do the same); the drivers never pass one.
    template <class T>
    FOCAL_HD FOCAL_INLINE T threshold_code(T best, T argmax) const noexcept {
        return math::select(best >= in<T>(positive_iou_threshold), argmax,
                            math::select(best >= in<T>(negative_iou_threshold), T(ignored), T(negative)));
    }

    // An anchor near a crowd box: its iof with the box > crowd_iof_threshold.
    template <class T>
    FOCAL_HD FOCAL_INLINE auto near_crowd(T iof) const noexcept {
        return iof > in<T>(crowd_iof_threshold);
    }

    // Pass 1's code of an anchor: the threshold rule (-1 for every anchor when there is no gt),
    // then a negative near a crowd box becomes -2, then a non-finite anchor is -2 whatever its code.
    template <class T, class M>
    FOCAL_HD FOCAL_INLINE T anchor_code(bool has_gt, T best, T argmax, M near_crowd_box, M finite) const noexcept {
        const T negative_code(negative), ignored_code(ignored);
        T code = has_gt ? threshold_code(best, argmax) : negative_code;
        code = math::select(M((code == negative_code) & near_crowd_box), ignored_code, code);
        return math::select(finite, code, ignored_code);
    }

    // A gt promotes anchors at all: its highest IoU is > 0, or the guard is off (torchvision).
    template <class T>
    FOCAL_HD FOCAL_INLINE bool gt_promotes(T gt_max) const noexcept {
        return !zero_iou_guard || gt_max > T(0);
    }

    // Low-quality promotion of an anchor whose IoU equals some promoting gt's highest IoU
    // (equals_target): it takes its own argmax if finite and its best IoU >= low_quality_iou_threshold.
    template <class T, class M>
    FOCAL_HD FOCAL_INLINE M promotes(T best, M equals_target, M finite) const noexcept {
        return M(equals_target & finite & M(best >= in<T>(low_quality_iou_threshold)));
    }
};

inline void validate(const max_iou_matcher& m, const char* where = "focal::max_iou_matcher") {
    auto unit = [&](double v, const char* name) {
        detail::require(v >= 0.0 && v <= 1.0, where, name, "in [0, 1]", v);  // false for NaN
    };
    unit(m.negative_iou_threshold, "negative_iou_threshold");
    unit(m.positive_iou_threshold, "positive_iou_threshold");
    detail::require(m.negative_iou_threshold <= m.positive_iou_threshold, where, "negative_iou_threshold",
                    "<= positive_iou_threshold (" + detail::concat(m.positive_iou_threshold) + ")", m.negative_iou_threshold);
    unit(m.low_quality_iou_threshold, "low_quality_iou_threshold");
    unit(m.crowd_iof_threshold, "crowd_iof_threshold");
}

namespace matcher_presets {

// torchvision.models.detection._utils.Matcher(0.5, 0.4, allow_low_quality_matches=True), code for code.
inline max_iou_matcher torchvision(double positive_iou_threshold = 0.5, double negative_iou_threshold = 0.4,
                                   bool allow_low_quality_matches = true) {
    return {.positive_iou_threshold = positive_iou_threshold,
            .negative_iou_threshold = negative_iou_threshold,
            .allow_low_quality_matches = allow_low_quality_matches,
            .zero_iou_guard = false};
}

// detectron2 Matcher([0.4, 0.5], [0, -1, 1], allow_low_quality_matches=True): the same codes
// (its label 0 is -1 here, -1 is -2, and a low-quality match keeps the argmax gt as here).
inline max_iou_matcher detectron2() { return torchvision(); }

// Detectron (caffe2) RetinaNet targets, the paper's code: +1 IoU, low-quality matches that
// keep IoU >= 0.4, everything else as torchvision.
inline max_iou_matcher detectron() {
    return {.positive_iou_threshold = 0.5, .negative_iou_threshold = 0.4, .allow_low_quality_matches = true,
            .zero_iou_guard = true, .low_quality_iou_threshold = 0.4, .plus_one = true};
}
inline max_iou_matcher paper() { return detectron(); }

}  // namespace matcher_presets

}  // namespace focal
