// focal/simd/math.hpp: focal's math overloads for xsimd batches (xsimd 8.1).
//
// Included by core/math.hpp when the SIMD backend is on, so a policy written against
// focal::math runs unchanged on xsimd::batch<float, A> and xsimd::batch<double, A>.
#pragma once

#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../config.hpp"

namespace focal::math {

template <class T, class A>
FOCAL_INLINE xsimd::batch<T, A> exp(const xsimd::batch<T, A>& x) noexcept {
    if constexpr (std::is_same_v<T, double>) {
        // xsimd 8.1 converts round(x / ln 2) to int64 before it selects 0 or inf for x out of
        // range; where that conversion is its scalar fallback (AVX-512BW, ...) a NaN, infinite or
        // huge x is undefined behaviour. exp is 0 below -1000 and inf above 1000 anyway: clamp
        // there, and give NaN back as NaN.
        const xsimd::batch<T, A> limit(T(1000)), zero(T(0));
        const auto nan = !(x == x);  // not x != x: xsimd's != is ordered (false for NaN) on AVX
        const auto safe = xsimd::select(nan, zero, xsimd::select(x < -limit, -limit, xsimd::select(x > limit, limit, x)));
        return xsimd::select(nan, x, xsimd::exp(safe));
    } else {
        return xsimd::exp(x);
    }
}
template <class T, class A>
FOCAL_INLINE xsimd::batch<T, A> log(const xsimd::batch<T, A>& x) noexcept {
    return xsimd::log(x);
}
template <class T, class A>
FOCAL_INLINE xsimd::batch<T, A> log1p(const xsimd::batch<T, A>& x) noexcept {
    return xsimd::log1p(x);
}
template <class T, class A>
FOCAL_INLINE xsimd::batch<T, A> sqrt(const xsimd::batch<T, A>& x) noexcept {
    return xsimd::sqrt(x);
}
template <class T, class A>
FOCAL_INLINE xsimd::batch<T, A> abs(const xsimd::batch<T, A>& x) noexcept {
    return xsimd::abs(x);
}
// Same NaN rule as the scalar overloads: max(a, b) = a > b ? a : b.
template <class T, class A>
FOCAL_INLINE xsimd::batch<T, A> max(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
    return xsimd::select(a > b, a, b);
}
template <class T, class A>
FOCAL_INLINE xsimd::batch<T, A> min(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
    return xsimd::select(a < b, a, b);
}
template <class T, class A>
FOCAL_INLINE xsimd::batch<T, A> select(const xsimd::batch_bool<T, A>& c, const xsimd::batch<T, A>& a,
                                       const xsimd::batch<T, A>& b) noexcept {
    return xsimd::select(c, a, b);
}
template <class T, class A>
FOCAL_INLINE xsimd::batch_bool<T, A> isnan(const xsimd::batch<T, A>& x) noexcept {
    return !(x == x);  // xsimd's != is an ordered compare on AVX / AVX-512: NaN != NaN is false there
}
template <class T, class A>
FOCAL_INLINE bool any(const xsimd::batch_bool<T, A>& m) noexcept {
    return xsimd::any(m);
}
template <class T, class A>
FOCAL_INLINE xsimd::batch<T, A> sign(const xsimd::batch<T, A>& x) noexcept {
    const xsimd::batch<T, A> zero(T(0)), one(T(1));
    return xsimd::select(x > zero, one, xsimd::select(x < zero, -one, x));
}

}  // namespace focal::math
