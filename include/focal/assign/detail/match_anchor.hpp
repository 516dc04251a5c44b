// focal/assign/detail/match_anchor.hpp: the per-anchor pieces of the max-IoU matcher, FOCAL_HD,
// shared by the CUDA kernels (focal/cuda/match.cuh, targets.cuh) and tested against the host
// match_anchors / build_targets on the CPU (tests/cuda_host/test_cuda_match_host.cpp).
//
//   strict<T>                 a float / double whose + - * / are rounded one by one: under nvcc's
//                             device pass __fadd_rn, __fmul_rn, ... (never fused into an FMA),
//                             elsewhere the plain operators. overlap<PlusOne> (overlap.hpp)
//                             instantiated with it is the host's IoU formula, operation for
//                             operation, without contraction: the device IoU has the bits of the
//                             host's (and torchvision's) unfused float arithmetic.
//   strict_area / strict_iou / strict_iof     overlap<PlusOne> through strict<T>
//   finite_box(b)             x - x == 0 for all four coordinates (the host's finiteness test)
//   best_match<T>             running max over gt: strict `>`, so the first gt keeps a tie (torch.max)
//   anchor_code(...)          the pass-1 code: threshold rule, crowd ignore, non-finite anchor -> -2
//   promotes(...)             the low-quality rule for one anchor
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
#include "../max_iou_matcher.hpp"
#include "../overlap.hpp"

namespace focal::detail::assign_impl {

// A comparison of strict values: a bool that `|` and `&` combine without clang's
// -Wbitwise-instead-of-logical (the operands are calls), as the packet masks of the host do.
struct strict_mask {
    bool value;
    FOCAL_HD constexpr operator bool() const noexcept { return value; }  // NOLINT: select takes a bool
    friend FOCAL_HD FOCAL_INLINE constexpr strict_mask operator|(strict_mask a, strict_mask b) noexcept {
        return {a.value || b.value};
    }
    friend FOCAL_HD FOCAL_INLINE constexpr strict_mask operator&(strict_mask a, strict_mask b) noexcept {
        return {a.value && b.value};
    }
};

// Unfused IEEE arithmetic (round to nearest even at every operation).
template <class T>
struct strict {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "strict<T>: float or double");
    T v;
    strict() = default;
    FOCAL_HD constexpr strict(T x) noexcept : v(x) {}  // NOLINT: implicit from T by design
    template <class U>
        requires(std::is_arithmetic_v<U> && !std::is_same_v<U, T>)
    FOCAL_HD constexpr explicit strict(U x) noexcept : v(static_cast<T>(x)) {}

    friend FOCAL_HD FOCAL_INLINE strict operator+(strict a, strict b) noexcept {
#if FOCAL_DEVICE_PASS
        if constexpr (std::is_same_v<T, float>) return strict(__fadd_rn(a.v, b.v));
        else return strict(__dadd_rn(a.v, b.v));
#else
        return strict(a.v + b.v);
#endif
    }
    friend FOCAL_HD FOCAL_INLINE strict operator-(strict a, strict b) noexcept {
#if FOCAL_DEVICE_PASS
        if constexpr (std::is_same_v<T, float>) return strict(__fsub_rn(a.v, b.v));
        else return strict(__dsub_rn(a.v, b.v));
#else
        return strict(a.v - b.v);
#endif
    }
    friend FOCAL_HD FOCAL_INLINE strict operator*(strict a, strict b) noexcept {
#if FOCAL_DEVICE_PASS
        if constexpr (std::is_same_v<T, float>) return strict(__fmul_rn(a.v, b.v));
        else return strict(__dmul_rn(a.v, b.v));
#else
        return strict(a.v * b.v);
#endif
    }
    friend FOCAL_HD FOCAL_INLINE strict operator/(strict a, strict b) noexcept {
#if FOCAL_DEVICE_PASS
        if constexpr (std::is_same_v<T, float>) return strict(__fdiv_rn(a.v, b.v));
        else return strict(__ddiv_rn(a.v, b.v));
#else
        return strict(a.v / b.v);
#endif
    }
    friend FOCAL_HD FOCAL_INLINE constexpr strict_mask operator<(strict a, strict b) noexcept { return {a.v < b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr strict_mask operator>(strict a, strict b) noexcept { return {a.v > b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr strict_mask operator<=(strict a, strict b) noexcept { return {a.v <= b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr strict_mask operator>=(strict a, strict b) noexcept { return {a.v >= b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr strict_mask operator==(strict a, strict b) noexcept { return {a.v == b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr strict_mask operator!=(strict a, strict b) noexcept { return {a.v != b.v}; }
};

template <class T>
FOCAL_HD FOCAL_INLINE box4<strict<T>> to_strict(const box4<T>& b) noexcept {
    return {{strict<T>(b[0]), strict<T>(b[1]), strict<T>(b[2]), strict<T>(b[3])}};
}

// overlap<PlusOne>'s area, intersection and IoU, unfused.
template <bool PlusOne, class T>
FOCAL_HD FOCAL_INLINE T strict_area(const box4<T>& b) noexcept {
    return overlap<PlusOne>{}.area(to_strict(b)).v;
}
template <bool PlusOne, class T>
FOCAL_HD FOCAL_INLINE T strict_iou(const box4<T>& a, const box4<T>& b, T area_a, T area_b) noexcept {
    return overlap<PlusOne>{}.iou(to_strict(a), to_strict(b), strict<T>(area_a), strict<T>(area_b)).v;
}
// Intersection over the anchor's area (0 for an empty anchor): the crowd test's measure.
template <bool PlusOne, class T>
FOCAL_HD FOCAL_INLINE T strict_iof(const box4<T>& anchor, const box4<T>& crowd, T area_anchor) noexcept {
    const strict<T> inter = overlap<PlusOne>{}.intersection(to_strict(anchor), to_strict(crowd));
    return area_anchor > T(0) ? (inter / strict<T>(area_anchor)).v : T(0);
}

// All four coordinates finite: x - x is 0 for a finite x, NaN for NaN and +-inf (as the host).
template <class T>
FOCAL_HD FOCAL_INLINE bool finite_box(const box4<T>& b) noexcept {
    const T zero(0);
    return (b[0] - b[0]) == zero && (b[1] - b[1]) == zero && (b[2] - b[2]) == zero && (b[3] - b[3]) == zero;
}

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

// Pass 1's code for one anchor: the threshold rule (-1 for every anchor without gt), then a
// negative near a crowd box becomes -2, then a non-finite anchor is -2 whatever its code.
template <class T>
FOCAL_HD FOCAL_INLINE int anchor_code(const max_iou_matcher& matcher, index_t num_gt, const best_match<T>& m,
                                      bool near_crowd, bool finite) noexcept {
    int code = max_iou_matcher::negative;
    if (num_gt > 0) code = static_cast<int>(matcher.threshold_code(m.best, static_cast<T>(m.argmax)));
    if (code == max_iou_matcher::negative && near_crowd) code = max_iou_matcher::ignored;
    return finite ? code : max_iou_matcher::ignored;
}

// Near a crowd box: intersection / anchor area > crowd_threshold (in T, as the host).
template <class T>
FOCAL_HD FOCAL_INLINE bool near_crowd(const max_iou_matcher& matcher, T iof) noexcept {
    return iof > static_cast<T>(matcher.crowd_threshold);
}

// Low-quality promotion of one anchor whose IoU equals some promoting gt's highest IoU
// (equals_target): it takes its own argmax if finite and its best IoU >= low_quality_min_iou.
template <class T>
FOCAL_HD FOCAL_INLINE bool promotes(const max_iou_matcher& matcher, const best_match<T>& m, bool equals_target,
                                    bool finite) noexcept {
    return equals_target && finite && m.best >= static_cast<T>(matcher.low_quality_min_iou);
}

// A gt promotes at all: its highest IoU is > 0, or the guard is off (torchvision).
template <class T>
FOCAL_HD FOCAL_INLINE bool gt_promotes(const max_iou_matcher& matcher, T gt_max) noexcept {
    return !matcher.zero_iou_guard || gt_max > T(0);
}

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
    return code < -2 || code >= static_cast<std::int64_t>(num_gt) ? std::int64_t(max_iou_matcher::ignored) : code;
}

}  // namespace focal::detail::assign_impl
