// focal/loss/smooth_l1.hpp: smooth L1 (Huber with a 1/beta scale) and L1 as policies.
//
// Contract, with d = prediction - target, elementwise:
//   smooth_l1: value = 0.5 d^2 / beta  if |d| < beta,  else |d| - 0.5 beta     (Fast R-CNN; torch)
//              grad  = d / beta        if |d| < beta,  else sign(d)
//              beta = 0 is L1 exactly (no division by zero), as torch special-cases it.
//   l1:        value = |d|,  grad = sign(d),  sign(0) = 0 (the subgradient torch uses).
// On a box (four coordinates) the value is the sum over coordinates and the gradient is per
// coordinate. NaN in gives NaN out.
#pragma once

#include <cmath>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/math.hpp"
#include "value_grad.hpp"

namespace focal {

namespace detail {
// Lifts an elementwise regression loss to four box coordinates: sum of values, per-coordinate grads.
template <class Policy, class T>
FOCAL_HD FOCAL_INLINE box_value_grad<T> sum_over_coordinates(const Policy& policy, const box4<T>& pred,
                                                             const box4<T>& target) noexcept {
    box_value_grad<T> out{T(0), {}};
    for (int c = 0; c < 4; ++c) {
        const value_grad<T> vg = policy.value_and_grad(pred[c], target[c]);
        out.value = out.value + vg.value;
        out.grad[c] = vg.grad;
    }
    return out;
}
}  // namespace detail

struct l1_loss {
    template <class T>
    FOCAL_HD FOCAL_INLINE value_grad<T> value_and_grad(T pred, T target) const noexcept {
        const T d = pred - target;
        return {math::abs(d), math::sign(d)};
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE box_value_grad<T> value_and_grad(const box4<T>& pred, const box4<T>& target) const noexcept {
        return detail::sum_over_coordinates(*this, pred, target);
    }
    template <class P>
    FOCAL_HD FOCAL_INLINE auto value(const P& pred, const P& target) const noexcept {
        return value_and_grad(pred, target).value;
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T grad(T pred, T target) const noexcept {
        return value_and_grad(pred, target).grad;
    }
};

struct smooth_l1_loss {
    float beta = 1.0f / 9.0f;  // Detectron's RetinaNet value; torchvision's RetinaNet uses L1 (beta = 0)

    template <class T>
    FOCAL_HD FOCAL_INLINE value_grad<T> value_and_grad(T pred, T target) const noexcept {
        const T d = pred - target;
        const T ad = math::abs(d);
        if (beta == 0.0f) return {ad, math::sign(d)};
        const T b(beta), half(0.5f);
        const auto quadratic = ad < b;
        return {math::select(quadratic, half * d * d / b, ad - half * b), math::select(quadratic, d / b, math::sign(d))};
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE box_value_grad<T> value_and_grad(const box4<T>& pred, const box4<T>& target) const noexcept {
        return detail::sum_over_coordinates(*this, pred, target);
    }
    template <class P>
    FOCAL_HD FOCAL_INLINE auto value(const P& pred, const P& target) const noexcept {
        return value_and_grad(pred, target).value;
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T grad(T pred, T target) const noexcept {
        return value_and_grad(pred, target).grad;
    }
};

inline void validate(const l1_loss&, const char* = "focal::l1_loss") {}
inline void validate(const smooth_l1_loss& loss, const char* where = "focal::smooth_l1_loss") {
    detail::require(std::isfinite(loss.beta) && loss.beta >= 0.0f, where, "beta", "finite and >= 0", loss.beta);
}

}  // namespace focal
