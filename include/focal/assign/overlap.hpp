// focal/assign/overlap.hpp: the overlaps a matcher needs, in either pixel convention.
//
//   overlap<false>  widths x2 - x1: box/iou.hpp's functions, bit-identical to torchvision's box_iou
//   overlap<true>   widths x2 - x1 + 1 (Detectron, odtk): w = min(x2) - max(x1) + 1, clamped at 0
// area() is 0 for an inverted box, so it intersects nothing and has IoU 0 with everything.
#pragma once

#include "../box/box4.hpp"
#include "../box/format.hpp"
#include "../box/iou.hpp"
#include "../config.hpp"
#include "../core/math.hpp"

namespace focal::detail::assign_impl {

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
};

}  // namespace focal::detail::assign_impl
