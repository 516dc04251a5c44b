// focal/loss/logistic.hpp: sigmoid and softplus of a logit from one exp and one log1p.
//
// With e = exp(-|x|) (never overflows) and r = 1 / (1 + e):
//   sigmoid(x)  = r      if x >= 0, else e * r         (p)
//   sigmoid(-x) = e * r  if x >= 0, else r             (1 - p, without cancellation)
//   softplus(x) = max(x, 0) + log1p(e)  = -log(1 - p)
//   softplus(-x)= max(-x, 0) + log1p(e) = -log(p)
// All four are finite for finite x and exact to a few ulps at |x| = 1e4.
#pragma once

#include "../config.hpp"
#include "../core/math.hpp"

namespace focal {

template <class T>
struct logistic_parts {
    T p;            // sigmoid(x)
    T one_minus_p;  // sigmoid(-x)
    T neg_log_p;    // softplus(-x) = -log p
    T neg_log_1mp;  // softplus(x)  = -log(1 - p)
};

template <class T>
FOCAL_HD FOCAL_INLINE logistic_parts<T> logistic(T x) noexcept {
    const T zero(0), one(1);
    const T e = math::exp(-math::abs(x));
    const T l = math::log1p(e);
    const T r = one / (one + e);
    const auto non_negative = x >= zero;
    const T er = e * r;
    return {math::select(non_negative, r, er), math::select(non_negative, er, r),
            math::max(-x, zero) + l, math::max(x, zero) + l};
}

}  // namespace focal

#if FOCAL_HAS_XSIMD
#include "../simd/logistic.hpp"  // float batches: one division for sigmoid and log1p
#endif
