// focal/loss/giou.hpp: the generalized IoU loss (Rezatofighi et al. 2019) on xyxy boxes as a policy.
//
// Contract, for a predicted box b and a target box g (x1, y1, x2, y2, with x2 >= x1, y2 >= y1):
//   I = intersection area (0 when the boxes do not overlap), U = area(b) + area(g) - I,
//   C = area of the smallest box enclosing both,
//   value = 1 - I / (U + eps) + (C - U) / (C + eps)          in [0, 2] for valid boxes
// (box_regression_loss rejects inverted predictions and targets; called directly, an inverted
// prediction gives a meaningless, possibly negative value, as in torchvision).
// exactly as torchvision.ops.generalized_box_iou_loss (eps = 1e-7), so two empty boxes give 1,
// never NaN. The gradient is the closed form of that expression with respect to b; where min/max
// tie (a coordinate shared by both boxes) it splits evenly, as torch's maximum/minimum backward does.
#pragma once

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/math.hpp"
#include "value_grad.hpp"

namespace focal {

struct giou_loss {
    float eps = 1e-7f;
    static constexpr bool xyxy_targets = true;  // the box driver checks targets are valid boxes

    template <class T>
    FOCAL_HD FOCAL_INLINE box_value_grad<T> value_and_grad(const box4<T>& b, const box4<T>& g) const noexcept {
        const T zero(0), half(0.5f), one(1), e(eps);
        // d max(a, c) / da and d min(a, c) / da with ties split evenly.
        auto dmax = [&](T a, T c) { return math::select(a > c, one, math::select(a == c, half, zero)); };
        auto dmin = [&](T a, T c) { return math::select(a < c, one, math::select(a == c, half, zero)); };

        const T ix1 = math::max(b[0], g[0]), iy1 = math::max(b[1], g[1]);
        const T ix2 = math::min(b[2], g[2]), iy2 = math::min(b[3], g[3]);
        const T iw = ix2 - ix1, ih = iy2 - iy1;
        const auto overlap = (iw > zero) & (ih > zero);
        const T inter = math::select(overlap, iw * ih, zero);
        const T bw = b[2] - b[0], bh = b[3] - b[1];
        const T uni = bw * bh + (g[2] - g[0]) * (g[3] - g[1]) - inter;
        const T cx1 = math::min(b[0], g[0]), cy1 = math::min(b[1], g[1]);
        const T cx2 = math::max(b[2], g[2]), cy2 = math::max(b[3], g[3]);
        const T cw = cx2 - cx1, ch = cy2 - cy1;
        const T enclosing = cw * ch;
        const T ue = uni + e, ce = enclosing + e;
        const T value = one - inter / ue + (enclosing - uni) / ce;

        // L = 1 - I/(U+eps) + (C-U)/(C+eps), U = A_b + A_g - I
        const T dl_du = inter / (ue * ue) - one / ce;
        const T dl_di = -one / ue - dl_du;  // through I directly and through U
        const T dl_dc = ue / (ce * ce);
        const T gi_w = math::select(overlap, dl_di * ih, zero);  // dL/dI * dI/d(iw)
        const T gi_h = math::select(overlap, dl_di * iw, zero);
        box_value_grad<T> out{value, {}};
        out.grad[0] = -gi_w * dmax(b[0], g[0]) - dl_du * bh - dl_dc * ch * dmin(b[0], g[0]);
        out.grad[1] = -gi_h * dmax(b[1], g[1]) - dl_du * bw - dl_dc * cw * dmin(b[1], g[1]);
        out.grad[2] = gi_w * dmin(b[2], g[2]) + dl_du * bh + dl_dc * ch * dmax(b[2], g[2]);
        out.grad[3] = gi_h * dmin(b[3], g[3]) + dl_du * bw + dl_dc * cw * dmax(b[3], g[3]);
        return out;
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T value(const box4<T>& b, const box4<T>& g) const noexcept {
        return value_and_grad(b, g).value;
    }
};

inline void validate(const giou_loss& loss, const char* where = "focal::giou_loss") {
    detail::require(loss.eps > 0.0f && loss.eps < 1.0f, where, "eps", "in (0, 1)", loss.eps);
}

}  // namespace focal
