// focal/box/overlap.hpp: the overlaps of two boxes in either pixel convention, written once for
// plain floats, xsimd packets and unfused<T> (core/unfused.hpp: the device's exact arithmetic).
//
//   overlap<false>  widths x2 - x1: box/iou.hpp's functions, bit-identical to torchvision's box_iou
//   overlap<true>   widths x2 - x1 + 1 (Detectron, odtk): w = min(x2) - max(x1) + 1, clamped at 0
// area() is 0 for an inverted box, so it intersects nothing and has IoU 0 with everything.
// iof(a, b, area_a) is the intersection over a's area, 0 when a is empty (mmdetection's "iof",
// the crowd / ignore-region measure).
#pragma once

#include "../config.hpp"
#include "../core/math.hpp"
#include "../core/unfused.hpp"
#include "box4.hpp"
#include "format.hpp"
#include "iou.hpp"

namespace focal::detail {

template <bool PlusOne>
struct overlap;

template <>
struct overlap<false> {
    static constexpr double pixel = 0.0;
    template <class T>
    FOCAL_HD FOCAL_INLINE T area(const box4<T>& b) const noexcept {
        return focal::area(b);
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T intersection(const box4<T>& a, const box4<T>& b) const noexcept {
        return intersection_area(a, b);
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T iou(const box4<T>& a, const box4<T>& b, T area_a, T area_b) const noexcept {
        return iou_from_areas(a, b, area_a, area_b);
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T iof(const box4<T>& a, const box4<T>& b, T area_a) const noexcept {
        const T zero(0);
        return math::select(area_a > zero, intersection(a, b) / area_a, zero);
    }
};

template <>
struct overlap<true> {
    static constexpr double pixel = 1.0;
    template <class T>
    FOCAL_HD FOCAL_INLINE T area(const box4<T>& b) const noexcept {
        const T zero(0), one(1);
        const T w = b[2] - b[0] + one, h = b[3] - b[1] + one;
        return math::select((w < zero) | (h < zero), zero, w * h);
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T intersection(const box4<T>& a, const box4<T>& b) const noexcept {
        const T zero(0), one(1);
        const T w = math::min(a[2], b[2]) - math::max(a[0], b[0]) + one;
        const T h = math::min(a[3], b[3]) - math::max(a[1], b[1]) + one;
        return math::select(w < zero, zero, w) * math::select(h < zero, zero, h);
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T iou(const box4<T>& a, const box4<T>& b, T area_a, T area_b) const noexcept {
        const T zero(0);
        const T inter = intersection(a, b);
        const T uni = area_a + area_b - inter;
        return math::select(uni == zero, zero, inter / uni);
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T iof(const box4<T>& a, const box4<T>& b, T area_a) const noexcept {
        const T zero(0);
        return math::select(area_a > zero, intersection(a, b) / area_a, zero);
    }
};

// All four coordinates finite: x - x is 0 for a finite x, NaN for NaN and +-inf. A bool for plain
// values, a lane mask for packets.
template <class T>
FOCAL_HD FOCAL_INLINE auto finite_box(const box4<T>& b) noexcept {
    const T zero(0);
    const T d0 = b[0] - b[0], d1 = b[1] - b[1], d2 = b[2] - b[2], d3 = b[3] - b[3];
    using mask = decltype(d0 == zero);
    return mask((d0 == zero) & (d1 == zero) & (d2 == zero) & (d3 == zero));
}

template <class T>
FOCAL_HD FOCAL_INLINE box4<unfused<T>> to_unfused(const box4<T>& b) noexcept {
    return {{unfused<T>(b[0]), unfused<T>(b[1]), unfused<T>(b[2]), unfused<T>(b[3])}};
}

// overlap<PlusOne>'s area, IoU and iof in plain T, evaluated unfused (the device's entry points).
template <bool PlusOne, class T>
FOCAL_HD FOCAL_INLINE T unfused_area(const box4<T>& b) noexcept {
    return overlap<PlusOne>{}.area(to_unfused(b)).v;
}
template <bool PlusOne, class T>
FOCAL_HD FOCAL_INLINE T unfused_iou(const box4<T>& a, const box4<T>& b, T area_a, T area_b) noexcept {
    return overlap<PlusOne>{}.iou(to_unfused(a), to_unfused(b), unfused<T>(area_a), unfused<T>(area_b)).v;
}
template <bool PlusOne, class T>
FOCAL_HD FOCAL_INLINE T unfused_iof(const box4<T>& a, const box4<T>& b, T area_a) noexcept {
    return overlap<PlusOne>{}.iof(to_unfused(a), to_unfused(b), unfused<T>(area_a)).v;
}

}  // namespace focal::detail
