// focal/retinanet/detail/candidates.hpp: the per-candidate pieces of RetinaNet post-processing
// that the CUDA kernels (cuda/top_candidates.cuh, cuda/postprocess.cuh) and the host tests share.
//
// A candidate (logit x at flat index f = anchor * K + class within its level) gets the 64-bit key
//   candidate_key(x, f) = score_sort_key(x) << 32 | f,
// so ascending keys are top_candidates.hpp's order (larger logit first, then smaller flat index),
// and every key is unique: the order after a radix sort does not depend on the order the keys were
// gathered in. candidate_bin(x) is the top 12 bits of that key: bins ascend as logits descend, so
// the k best lie in the bins up to the first whose running count reaches k.
#pragma once

#include <cstdint>

#include "../../box/box4.hpp"
#include "../../config.hpp"
#include "../../nms/detail/bitmask.hpp"

namespace focal::detail {

inline constexpr int candidate_bin_bits = 12;
inline constexpr int candidate_bins = 1 << candidate_bin_bits;

FOCAL_HD FOCAL_INLINE std::uint64_t candidate_key(float logit, std::uint32_t flat) noexcept {
    return (std::uint64_t(score_sort_key(logit)) << 32) | flat;
}
FOCAL_HD FOCAL_INLINE int candidate_bin(float logit) noexcept {
    return static_cast<int>(score_sort_key(logit) >> (32 - candidate_bin_bits));
}
FOCAL_HD FOCAL_INLINE std::uint32_t candidate_flat(std::uint64_t key) noexcept { return static_cast<std::uint32_t>(key); }
FOCAL_HD FOCAL_INLINE float candidate_logit(std::uint64_t key) noexcept {
    return score_from_key(static_cast<std::uint32_t>(key >> 32));
}

// Whether a logit is a candidate at all: logit > logit_min (NaN never is).
FOCAL_HD FOCAL_INLINE bool is_candidate(float logit, float logit_min) noexcept { return logit > logit_min; }

// torchvision's clip_boxes_to_image as the host writes it: std::min(std::max(v, 0), limit), so a
// NaN coordinate stays NaN.
FOCAL_HD FOCAL_INLINE float clip_coordinate(float v, float limit) noexcept {
    const float lo = v < 0.0f ? 0.0f : v;  // std::max(v, 0): v unless v < 0
    return limit < lo ? limit : lo;        // std::min(lo, limit): lo unless limit < lo
}
FOCAL_HD FOCAL_INLINE box4<float> clip_box(const box4<float>& b, float width, float height) noexcept {
    return {{clip_coordinate(b[0], width), clip_coordinate(b[1], height), clip_coordinate(b[2], width),
             clip_coordinate(b[3], height)}};
}

}  // namespace focal::detail
