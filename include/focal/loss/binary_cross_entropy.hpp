// focal/loss/binary_cross_entropy.hpp: binary cross entropy on logits as a policy.
//
// Contract
//   value(x, t) = -(t log p + (1 - t) log(1 - p)),  p = sigmoid(x),  t in [0, 1] (soft targets allowed)
//               = t softplus(-x) + (1 - t) softplus(x)      (no log of 0, finite at |x| = 1e4)
//   grad(x, t)  = p - t
//   pos_weight multiplies the t log p term (torch's pos_weight); 1 is plain BCE.
// For t in {0, 1} and pos_weight = 1 this equals sigmoid_focal_loss{alpha < 0, gamma = 0} bit for bit.
// x = -+inf gives the limits: 0 for the right answer, inf for the wrong one; NaN gives NaN.
#pragma once

#include <cmath>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/math.hpp"
#include "logistic.hpp"
#include "value_grad.hpp"

namespace focal {

struct binary_cross_entropy {
    float pos_weight = 1.0f;

    template <class T>
    FOCAL_HD FOCAL_INLINE value_grad<T> value_and_grad(T x, T t) const noexcept {
        const T zero(0), one(1);
        const logistic_parts<T> s = logistic(x);
        const T wt = T(pos_weight) * t, wn = one - t;
        // A term whose weight is 0 is 0, even where its log is inf (x = -+inf): no 0 * inf = NaN.
        // (NaN weights or logs still give NaN: NaN == 0 is false.)
        const T value = math::select(wt == zero, zero, wt * s.neg_log_p) + math::select(wn == zero, zero, wn * s.neg_log_1mp);
        // d/dx [w t softplus(-x) + (1 - t) softplus(x)] = -w t (1 - p) + (1 - t) p
        return {value, wn * s.p - wt * s.one_minus_p};
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

inline void validate(const binary_cross_entropy& loss, const char* where = "focal::binary_cross_entropy") {
    detail::require(std::isfinite(loss.pos_weight) && loss.pos_weight >= 0.0f, where, "pos_weight", "finite and >= 0",
                    loss.pos_weight);
}

}  // namespace focal
