// focal/assign/detail/match_anchor.hpp: the per-anchor pieces of the max-IoU matcher, FOCAL_HD,
// shared by the CUDA kernels (focal/cuda/match.cuh, targets.cuh) and tested against the host
// match_anchors / build_targets on the CPU (tests/cuda_host/test_cuda_match_host.cpp).
//
//   The matcher's rules themselves (threshold, crowd, finiteness, promotion) are members of
//   max_iou_matcher; the overlaps and finite_box are box/overlap.hpp's. What is here is the
//   device's bookkeeping around them:
//   best_match<T>             running max over gt: strict `>`, so the first gt keeps a tie (torch.max)
//   max_key(iou) / from_key   IoU > 0 as an unsigned integer of its bits (positive floats order as
//                             their bits; NaN, 0 and -0 give key 0): a block's per-gt maximum
//                             by integer max, order-independent and deterministic
//   quiet_nan<T>()            NaN in host and device code
//   target_code(code, m)      a match code as build_targets reads it on the device
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../../box/box4.hpp"
#include "../../config.hpp"
#include "../../core/math.hpp"
#include "../../core/view.hpp"
#include "../../box/overlap.hpp"
#include "../../core/labels.hpp"
#include "../max_iou_matcher.hpp"

namespace focal::detail::assign_impl {

// Best IoU over the gt seen so far and the first gt reaching it (starts at (0, gt 0)).
template <class T>
struct best_match {
    T best = T(0);
    int argmax = 0;
    FOCAL_HD FOCAL_INLINE void consider(T iou, int j) noexcept {
        if (iou > best) {  // strict: the first gt keeps a tie; NaN never wins
            best = iou;
            argmax = j;
        }
    }
};

template <class T>
using key_t = std::conditional_t<sizeof(T) == 4, unsigned int, unsigned long long>;  // CUDA's atomicMax types

// IoU > 0 as its bits; 0 for 0, -0 and NaN (which never raise a maximum that starts at 0).
template <class T>
FOCAL_HD FOCAL_INLINE key_t<T> max_key(T iou) noexcept {
    if (!(iou > T(0))) return 0;
#if FOCAL_DEVICE_PASS
    if constexpr (sizeof(T) == 4) return __float_as_uint(iou);
    else return static_cast<unsigned long long>(__double_as_longlong(iou));
#else
    key_t<T> k;
    std::memcpy(&k, &iou, sizeof(T));
    return k;
#endif
}
template <class T>
FOCAL_HD FOCAL_INLINE T from_key(key_t<T> k) noexcept {
#if FOCAL_DEVICE_PASS
    if constexpr (sizeof(T) == 4) return __uint_as_float(k);
    else return __longlong_as_double(static_cast<long long>(k));
#else
    T v;
    std::memcpy(&v, &k, sizeof(T));
    return v;
#endif
}

// A quiet NaN in host and device code (std::numeric_limits is host-only under nvcc).
template <class T>
FOCAL_HD FOCAL_INLINE T quiet_nan() noexcept {
#if FOCAL_DEVICE_PASS
    if constexpr (sizeof(T) == 4) return __uint_as_float(0x7fc00000u);
    else return __longlong_as_double(0x7ff8000000000000ll);
#else
    return std::numeric_limits<T>::quiet_NaN();
#endif
}

// A match code as the device build_targets reads it: codes outside [-2, num_gt) (the host
// throws for them) are treated as ignored, so no gt row is read out of bounds.
FOCAL_HD FOCAL_INLINE std::int64_t target_code(std::int64_t code, index_t num_gt) noexcept {
    return code < ignored_label || code >= static_cast<std::int64_t>(num_gt) ? std::int64_t(ignored_label) : code;
}

}  // namespace focal::detail::assign_impl
