// focal/coder/delta_xywh.hpp: the R-CNN box coder (Girshick 2014; torchvision's BoxCoder) as a policy.
//
// For an anchor a (xyxy; width aw, height ah, centre ax, ay) and a box g:
//   encode:  dx = wx (gx - ax) / aw,  dy = wy (gy - ay) / ah,  dw = ww log(gw / aw),  dh = wh log(gh / ah)
//   decode:  the inverse, with dw / ww and dh / wh clamped to at most log(1000 / 16) first, so that
//            exp() cannot overflow (torchvision's bbox_xform_clip; clamp::symmetric also bounds
//            below, clamp::none turns it off).
// The arithmetic follows torchvision operation for operation, so float results agree with its
// BoxCoder to the last ulp or two (exp and log implementations differ by ulps).
// Degenerate boxes: widths and heights below min_size are raised to min_size when encoding, so a
// zero-width box or anchor gives a large finite delta instead of inf / NaN (torchvision: -inf).
#pragma once

#include <cmath>

#include "../box/box4.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/math.hpp"

namespace focal {

struct delta_xywh_coder {
    enum class clamp_mode { upper, symmetric, none };

    float wx = 1.0f, wy = 1.0f, ww = 1.0f, wh = 1.0f;  // torchvision RetinaNet: 1; Faster R-CNN: 10, 10, 5, 5
    float clamp = 4.135166556742356f;                   // log(1000 / 16)
    clamp_mode clamping = clamp_mode::upper;
    float min_size = 1e-6f;                             // encode's floor for widths and heights

    template <class T>
    FOCAL_HD FOCAL_INLINE box4<T> encode(const box4<T>& box, const box4<T>& anchor) const noexcept {
        const T half(0.5f), floor(min_size);
        // max(floor, w), not max(w, floor): math::max returns its second argument on NaN, and a
        // NaN width must stay NaN rather than become min_size.
        const T aw = math::max(floor, anchor[2] - anchor[0]), ah = math::max(floor, anchor[3] - anchor[1]);
        const T ax = anchor[0] + half * aw, ay = anchor[1] + half * ah;
        const T gw = math::max(floor, box[2] - box[0]), gh = math::max(floor, box[3] - box[1]);
        const T gx = box[0] + half * gw, gy = box[1] + half * gh;
        return {{T(wx) * (gx - ax) / aw, T(wy) * (gy - ay) / ah, T(ww) * math::log(gw / aw), T(wh) * math::log(gh / ah)}};
    }

    template <class T>
    FOCAL_HD FOCAL_INLINE box4<T> decode(const box4<T>& deltas, const box4<T>& anchor) const noexcept {
        const T half(0.5f);
        const T aw = anchor[2] - anchor[0], ah = anchor[3] - anchor[1];
        const T ax = anchor[0] + half * aw, ay = anchor[1] + half * ah;
        const T dx = deltas[0] / T(wx), dy = deltas[1] / T(wy);
        T dw = deltas[2] / T(ww), dh = deltas[3] / T(wh);
        if (clamping != clamp_mode::none) {
            const T c(clamp);  // select, not min: a NaN delta stays NaN (torch.clamp keeps NaN)
            dw = math::select(dw > c, c, dw);
            dh = math::select(dh > c, c, dh);
            if (clamping == clamp_mode::symmetric) {
                dw = math::select(dw < -c, -c, dw);
                dh = math::select(dh < -c, -c, dh);
            }
        }
        const T cx = dx * aw + ax, cy = dy * ah + ay;
        const T half_w = half * (math::exp(dw) * aw), half_h = half * (math::exp(dh) * ah);
        return {{cx - half_w, cy - half_h, cx + half_w, cy + half_h}};
    }
};

inline void validate(const delta_xywh_coder& c, const char* where = "focal::delta_xywh_coder") {
    for (float w : {c.wx, c.wy, c.ww, c.wh})
        detail::require(std::isfinite(w) && w > 0.0f, where, "weights (wx, wy, ww, wh)", "finite and > 0", w);
    detail::require(std::isfinite(c.clamp) && c.clamp > 0.0f, where, "clamp", "finite and > 0", c.clamp);
    detail::require(std::isfinite(c.min_size) && c.min_size > 0.0f, where, "min_size", "finite and > 0", c.min_size);
}

}  // namespace focal
