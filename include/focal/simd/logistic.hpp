// focal/simd/logistic.hpp: logistic() for float batches with one division instead of three.
//
// The generic logistic() calls log1p(e) and 1 / (1 + e); xsimd's log1p divides by 1 + e itself.
// Here e = exp(-|x|) is in (0, 1], so u = 1 + e is in (1, 2] and one reciprocal r = 1 / u serves
// both the sigmoid and log1p:
//   log1p(e) = log(u) + (e - (u - 1)) * r          (the second term restores the bits of e lost
//                                                   in rounding 1 + e; u - 1 is exact)
//   log(u)   = k ln 2 + log1p(f),  f = m - 1,  u = m 2^k, m in [sqrt(1/2), sqrt(2)]
//   log1p(f) = f - f^2 / 2 + f^3 P(f)               (Cephes' minimax polynomial for logf)
// Accuracy: within a few float ulps of log1p and sigmoid on every x, as the parity tests check.
// NaN propagates through e; |x| = inf gives e = 0 and the exact limits.
#pragma once

#include <xsimd/xsimd.hpp>

#include "../config.hpp"
#include "math.hpp"

namespace focal {

template <class T>
struct logistic_parts;

template <class A>
FOCAL_INLINE logistic_parts<xsimd::batch<float, A>> logistic(const xsimd::batch<float, A>& x) noexcept {
    using B = xsimd::batch<float, A>;
    const B zero(0.0f), one(1.0f);
    const B e = xsimd::exp(-xsimd::abs(x));
    const B u = one + e;
    const B r = one / u;
    // log(u) for u in (1, 2]: halve above sqrt(2) so that f = m - 1 is in (-0.293, 0.415].
    const auto high = u > B(1.41421356237f);
    const B m = xsimd::select(high, u * B(0.5f), u);
    const B k = xsimd::select(high, one, zero);
    const B f = m - one;
    const B f2 = f * f;
    B p(7.0376836292e-2f);
    p = xsimd::fma(p, f, B(-1.1514610310e-1f));
    p = xsimd::fma(p, f, B(1.1676998740e-1f));
    p = xsimd::fma(p, f, B(-1.2420140846e-1f));
    p = xsimd::fma(p, f, B(1.4249322787e-1f));
    p = xsimd::fma(p, f, B(-1.6668057665e-1f));
    p = xsimd::fma(p, f, B(2.0000714765e-1f));
    p = xsimd::fma(p, f, B(-2.4999993993e-1f));
    p = xsimd::fma(p, f, B(3.3333331174e-1f));
    // ln 2 split in two parts so that k * ln2_hi is exact.
    const B log_u = xsimd::fma(k, B(0.693359375f), f + xsimd::fma(k, B(-2.12194440e-4f), xsimd::fma(p * f, f2, B(-0.5f) * f2)));
    const B l = log_u + (e - (u - one)) * r;
    const auto non_negative = x >= zero;
    const B er = e * r;
    return {xsimd::select(non_negative, r, er), xsimd::select(non_negative, er, r), math::max(-x, zero) + l,
            math::max(x, zero) + l};
}

}  // namespace focal
