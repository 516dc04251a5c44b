// focal/box/format.hpp: box formats, conversions and area.
//
//   xyxy    x1, y1, x2, y2   corners; focal's default, torchvision's and detectron2's
//   xywh    x1, y1, w, h     top-left and size; COCO's
//   cxcywh  cx, cy, w, h     centre and size; DETR-style heads
// Conversions are exact inverses up to rounding. area() of an inverted box (x2 < x1 or y2 < y1)
// is 0: such a box is empty, never negative.
#pragma once

#include "../config.hpp"
#include "../core/math.hpp"
#include "box4.hpp"

namespace focal {

enum class box_format { xyxy, xywh, cxcywh };

template <class T>
FOCAL_HD FOCAL_INLINE box4<T> to_xyxy(const box4<T>& b, box_format from) noexcept {
    const T half(0.5f);
    switch (from) {
        case box_format::xywh: return {{b[0], b[1], b[0] + b[2], b[1] + b[3]}};
        case box_format::cxcywh: return {{b[0] - half * b[2], b[1] - half * b[3], b[0] + half * b[2], b[1] + half * b[3]}};
        default: return b;
    }
}

template <class T>
FOCAL_HD FOCAL_INLINE box4<T> from_xyxy(const box4<T>& b, box_format to) noexcept {
    const T half(0.5f);
    const T w = b[2] - b[0], h = b[3] - b[1];
    switch (to) {
        case box_format::xywh: return {{b[0], b[1], w, h}};
        case box_format::cxcywh: return {{b[0] + half * w, b[1] + half * h, w, h}};
        default: return b;
    }
}

template <class T>
FOCAL_HD FOCAL_INLINE box4<T> convert(const box4<T>& b, box_format from, box_format to) noexcept {
    return from == to ? b : from_xyxy(to_xyxy(b, from), to);
}

// Width times height of an xyxy box, 0 for an inverted or empty one; NaN for NaN coordinates.
template <class T>
FOCAL_HD FOCAL_INLINE T area(const box4<T>& b) noexcept {
    const T zero(0);
    const T w = b[2] - b[0], h = b[3] - b[1];
    // Two selects, not (w < 0) | (h < 0): clang warns on | between bools in the scalar instance.
    return math::select(w < zero, zero, math::select(h < zero, zero, w * h));
}

}  // namespace focal
