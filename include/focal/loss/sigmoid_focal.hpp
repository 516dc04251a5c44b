// focal/loss/sigmoid_focal.hpp: the sigmoid focal loss (Lin et al. 2017, eq. 5) as a policy.
//
// Contract
//   value(x, t)  = -alpha_t (1 - p_t)^gamma log(p_t),   p = sigmoid(x),
//                  p_t = p if t = 1 else 1 - p,  alpha_t = alpha if t = 1 else 1 - alpha.
//   grad(x, t)   = d value / d x.
//   t must be 0 or 1 (the drivers check dense targets; integer labels are binary by construction).
//   alpha in [0, 1], or < 0 to turn the weighting off (alpha_t = 1), as torchvision.
//   gamma >= 0; gamma = 0 is alpha-balanced binary cross entropy (no 0^0, no 0 * inf).
//
// Numerics. Write z = x if t = 1 else -x, so p_t = sigmoid(z) and q = 1 - p_t = sigmoid(-z):
//   -log p_t = softplus(-z),   q^gamma = exp(-gamma softplus(z))  (q*q for gamma = 2, q for 1)
//   d value / d z = -alpha_t q^gamma (gamma p_t softplus(-z) + q)        (paper, Appendix B)
// Every term is a product of finite, non-negative factors for finite x, so value and gradient are
// finite and accurate at |x| = 1e4; torchvision's 1 - p_t cancels for |x| > ~17 and ours does not.
// NaN logits give NaN value and gradient. x = +-inf gives the limits (0 or inf value, finite grad).
#pragma once

#include <cmath>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/math.hpp"
#include "logistic.hpp"
#include "value_grad.hpp"

namespace focal {

struct sigmoid_focal_loss {
    float alpha = 0.25f;  // weight of positives; 1 - alpha for negatives; < 0 disables
    float gamma = 2.0f;   // focusing parameter; 0 gives alpha-balanced BCE
    static constexpr bool binary_targets = true;

    template <class T>
    FOCAL_HD FOCAL_INLINE value_grad<T> value_and_grad(T x, T t) const noexcept {
        const T zero(0), one(1);
        const auto positive = t > T(0.5);
        const T z = math::select(positive, x, -x);
        const logistic_parts<T> s = logistic(z);  // s.p = p_t, s.one_minus_p = q
        const T ce = s.neg_log_p;                 // -log p_t
        const T q = s.one_minus_p;
        T q_gamma;  // (1 - p_t)^gamma; gamma is uniform across a call, so this branch is free
        if (gamma == 0.0f) q_gamma = one;
        else if (gamma == 1.0f) q_gamma = q;
        else if (gamma == 2.0f) q_gamma = q * q;
        else q_gamma = math::exp(T(-gamma) * s.neg_log_1mp);
        const T alpha_t = alpha < 0.0f ? one : math::select(positive, T(alpha), T(1.0f - alpha));
        const T weight = alpha_t * q_gamma;
        // p_t * softplus(-z) -> 0 as z -> -inf; the select keeps 0 * inf out at z = -inf.
        const T pt_ce = math::select(s.p > zero, s.p * ce, zero);
        const T focusing = gamma == 0.0f ? q : T(gamma) * pt_ce + q;
        const T grad_z = -(weight * focusing);
        // weight = 0 (alpha 0 or 1, or a certain right answer) gives 0 even where ce = inf.
        return {math::select(weight == zero, zero, weight * ce), math::select(positive, grad_z, -grad_z)};
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T value(T x, T t) const noexcept {
        return value_and_grad(x, t).value;
    }
    template <class T>
    FOCAL_HD FOCAL_INLINE T grad(T x, T t) const noexcept {
        return value_and_grad(x, t).grad;
    }
};

// Host-side check of the parameters; every checked entry point calls it.
inline void validate(const sigmoid_focal_loss& loss, const char* where = "focal::sigmoid_focal_loss") {
    detail::require(!std::isnan(loss.alpha) && loss.alpha <= 1.0f, where, "alpha", "in [0, 1] (or < 0 to disable the weighting)", loss.alpha);
    detail::require(std::isfinite(loss.gamma) && loss.gamma >= 0.0f, where, "gamma", "finite and >= 0", loss.gamma);
}

}  // namespace focal
