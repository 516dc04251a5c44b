// focal/core/math.hpp: the math a policy may call, written once for every value type.
//
// Policies call focal::math::exp(x), math::select(c, a, b), ... with T = float, double, an xsimd
// batch (simd/math.hpp, included below when the SIMD backend is on) or a float in device code.
// Scalar overloads forward to <cmath> on the host and to CUDA's math library on the device.
#pragma once

#include <cmath>

#include "../config.hpp"

namespace focal::math {

// The device pass of nvcc calls CUDA's math library; everything else calls <cmath>.
#if FOCAL_DEVICE_PASS
#define FOCAL_MATH_CALL(std_name, device_name, x) ::device_name(x)
#else
#define FOCAL_MATH_CALL(std_name, device_name, x) std::std_name(x)
#endif
#define FOCAL_MATH_UNARY(name, device_float, device_double)                                               \
    FOCAL_HD FOCAL_INLINE float name(float x) noexcept { return FOCAL_MATH_CALL(name, device_float, x); }   \
    FOCAL_HD FOCAL_INLINE double name(double x) noexcept { return FOCAL_MATH_CALL(name, device_double, x); }

FOCAL_MATH_UNARY(exp, expf, exp)
FOCAL_MATH_UNARY(log, logf, log)
FOCAL_MATH_UNARY(log1p, log1pf, log1p)
FOCAL_MATH_UNARY(sqrt, sqrtf, sqrt)
#undef FOCAL_MATH_UNARY
#undef FOCAL_MATH_CALL

// abs, min, max and select by comparison so that NaN behaves the same on every backend:
// max(NaN, 0) and min(NaN, 0) return the first argument's NaN only where stated below.
template <class T>
FOCAL_HD FOCAL_INLINE constexpr T abs(T x) noexcept {
    return x < T(0) ? -x : x;
}
// max(a, b) = a > b ? a : b: with a NaN in either place the result is b (like x86 maxps).
template <class T>
FOCAL_HD FOCAL_INLINE constexpr T max(T a, T b) noexcept {
    return a > b ? a : b;
}
template <class T>
FOCAL_HD FOCAL_INLINE constexpr T min(T a, T b) noexcept {
    return a < b ? a : b;
}
template <class T>
FOCAL_HD FOCAL_INLINE constexpr T select(bool condition, T if_true, T if_false) noexcept {
    return condition ? if_true : if_false;
}
template <class T>
FOCAL_HD FOCAL_INLINE constexpr bool isnan(T x) noexcept {
    return x != x;
}
// any(m): some lane of a comparison result is set (a bool here; an xsimd batch_bool in simd/).
FOCAL_HD FOCAL_INLINE constexpr bool any(bool m) noexcept { return m; }

// sign(x) in {-1, 0, +1}; sign(NaN) is NaN (as torch.sign).
template <class T>
FOCAL_HD FOCAL_INLINE constexpr T sign(T x) noexcept {
    return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);
}

}  // namespace focal::math

#if FOCAL_HAS_XSIMD
#include "../simd/math.hpp"
#endif
