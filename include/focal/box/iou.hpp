// focal/box/iou.hpp: intersection over union and generalized IoU of two xyxy boxes.
//
//   iou(a, b)  = I / U,  I = intersection area, U = area(a) + area(b) - I     (torchvision's order)
//   giou(a, b) = iou - (C - U) / C,  C = area of the smallest enclosing box   (Rezatofighi 2019)
// Two empty boxes (U = 0) have IoU 0 and GIoU 0, never NaN; inverted boxes count as empty. A NaN
// coordinate gives NaN. For valid boxes the arithmetic is torchvision's box_iou, operation for
// operation, so float results are bit-identical to it.
#pragma once

#include "../config.hpp"
#include "../core/math.hpp"
#include "box4.hpp"
#include "format.hpp"

namespace focal {

template <class T>
FOCAL_HD FOCAL_INLINE T intersection_area(const box4<T>& a, const box4<T>& b) noexcept {
    const T zero(0);
    const T w = math::min(a[2], b[2]) - math::max(a[0], b[0]);
    const T h = math::min(a[3], b[3]) - math::max(a[1], b[1]);
    // clamp(min = 0) as torchvision; NaN stays NaN (NaN < 0 is false).
    return math::select(w < zero, zero, w) * math::select(h < zero, zero, h);
}

// IoU given the two areas (a pairwise loop computes each area once).
template <class T>
FOCAL_HD FOCAL_INLINE T iou_from_areas(const box4<T>& a, const box4<T>& b, T area_a, T area_b) noexcept {
    const T zero(0);
    const T inter = intersection_area(a, b);
    const T uni = area_a + area_b - inter;
    // uni >= max(area_a, area_b) >= 0, so uni = 0 only for two empty boxes.
    return math::select(uni == zero, zero, inter / uni);
}

template <class T>
FOCAL_HD FOCAL_INLINE T iou(const box4<T>& a, const box4<T>& b) noexcept {
    return iou_from_areas(a, b, area(a), area(b));
}

template <class T>
FOCAL_HD FOCAL_INLINE T giou(const box4<T>& a, const box4<T>& b) noexcept {
    const T zero(0);
    const T area_a = area(a), area_b = area(b);
    const T inter = intersection_area(a, b);
    const T uni = area_a + area_b - inter;
    const T enclosing = (math::max(a[2], b[2]) - math::min(a[0], b[0])) * (math::max(a[3], b[3]) - math::min(a[1], b[1]));
    const T iou_value = math::select(uni == zero, zero, inter / uni);
    const T penalty = math::select(enclosing > zero, (enclosing - uni) / enclosing, zero);
    return iou_value - penalty;
}

// Similarity policies for pairwise matrices and matchers.
struct iou_similarity {
    template <class T>
    FOCAL_HD FOCAL_INLINE T operator()(const box4<T>& a, const box4<T>& b, T area_a, T area_b) const noexcept {
        return iou_from_areas(a, b, area_a, area_b);
    }
};
struct giou_similarity {
    template <class T>
    FOCAL_HD FOCAL_INLINE T operator()(const box4<T>& a, const box4<T>& b, T, T) const noexcept {
        return giou(a, b);
    }
};

}  // namespace focal
