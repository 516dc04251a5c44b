// focal/box/box4.hpp: four coordinates of one box, in registers.
//
// The meaning of the four values is the caller's: x1, y1, x2, y2 (xyxy, focal's default), x, y,
// w, h (xywh), cx, cy, w, h (cxcywh) or encoded deltas dx, dy, dw, dh. T may be a float, a double,
// an xsimd batch (four batches: a structure of arrays) or a device float.
#pragma once

#include "../config.hpp"

namespace focal {

template <class T>
struct box4 {
    T v[4];
    FOCAL_HD constexpr T& operator[](int i) noexcept { return v[i]; }
    FOCAL_HD constexpr const T& operator[](int i) const noexcept { return v[i]; }
};

}  // namespace focal
