// focal/core/labels.hpp: the per-anchor label codes every stage shares.
//
// A label (or a matcher's code) k >= 0 is class k (a matcher's code: ground-truth box k);
// background_label (-1) is a negative anchor, all of whose class targets are 0; ignored_label (-2)
// contributes nothing to any loss (gradient 0). classification_loss, box_regression_loss,
// build_targets and the CUDA drivers read labels of any integer type as signed 64-bit values, so an
// unsigned type's -1 is background too.
#pragma once

#include <cstdint>

#include "../config.hpp"
#include "math.hpp"

namespace focal {

inline constexpr int background_label = -1;  // torchvision Matcher.BELOW_LOW_THRESHOLD
inline constexpr int ignored_label = -2;     // torchvision Matcher.BETWEEN_THRESHOLDS

namespace detail {

// The host drivers reject labels below -2; the device cannot throw and reads them as ignored.
FOCAL_HD FOCAL_INLINE constexpr bool is_ignored_label(std::int64_t label) noexcept { return label <= ignored_label; }
// Positive: takes part in the box loss and has a class target of 1.
FOCAL_HD FOCAL_INLINE constexpr bool is_positive_label(std::int64_t label) noexcept { return label >= 0; }

// The 0/1 classification target of `column` for an anchor of `label`: 1 where they are equal
// (background matches no column). T is the value type, I the comparison type: int64 and float in
// device code, one packet for both in the host's SIMD loop.
template <class T, class I>
FOCAL_HD FOCAL_INLINE T one_hot_target(const I& column, const I& label) noexcept {
    return math::select(column == label, T(1), T(0));
}

}  // namespace detail

}  // namespace focal
