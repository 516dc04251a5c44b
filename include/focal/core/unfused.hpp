// focal/core/unfused.hpp: floating-point arithmetic that is one IEEE rounding per operation on
// the host and on the device alike.
//
// nvcc's device pass may contract a * b + c into an fma, which moves an IoU by an ulp; the host
// drivers (and torchvision) round every operation. unfused<T> (T float or double) makes each
// + - * / one rounding in device code too (__fadd_rn, __fmul_rn, ...); on the host it is the
// plain operators. A FOCAL_HD formula instantiated with unfused<T> therefore has the bits of the
// host's plain-T evaluation. Comparisons give an unfused_mask, a bool that | and & combine as
// packet masks do, so the same formula also runs on xsimd batches and plain floats.
#pragma once

#include <type_traits>

#include "../config.hpp"

namespace focal::detail {

// A comparison of unfused values: a bool that `|` and `&` combine without clang's
// -Wbitwise-instead-of-logical (the operands are calls), as the packet masks of the host do.
struct unfused_mask {
    bool value;
    FOCAL_HD constexpr operator bool() const noexcept { return value; }  // NOLINT: select takes a bool
    friend FOCAL_HD FOCAL_INLINE constexpr unfused_mask operator|(unfused_mask a, unfused_mask b) noexcept {
        return unfused_mask{a.value || b.value};
    }
    friend FOCAL_HD FOCAL_INLINE constexpr unfused_mask operator&(unfused_mask a, unfused_mask b) noexcept {
        return unfused_mask{a.value && b.value};
    }
};

// Unfused IEEE arithmetic (round to nearest even at every operation).
template <class T>
struct unfused {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "unfused<T>: float or double");
    T v;
    unfused() = default;
    FOCAL_HD constexpr unfused(T x) noexcept : v(x) {}  // NOLINT: implicit from T by design
    template <class U>
        requires(std::is_arithmetic_v<U> && !std::is_same_v<U, T>)
    FOCAL_HD constexpr explicit unfused(U x) noexcept : v(static_cast<T>(x)) {}

    friend FOCAL_HD FOCAL_INLINE unfused operator+(unfused a, unfused b) noexcept {
#if FOCAL_DEVICE_PASS
        if constexpr (std::is_same_v<T, float>) return unfused(__fadd_rn(a.v, b.v));
        else return unfused(__dadd_rn(a.v, b.v));
#else
        return unfused(a.v + b.v);
#endif
    }
    friend FOCAL_HD FOCAL_INLINE unfused operator-(unfused a, unfused b) noexcept {
#if FOCAL_DEVICE_PASS
        if constexpr (std::is_same_v<T, float>) return unfused(__fsub_rn(a.v, b.v));
        else return unfused(__dsub_rn(a.v, b.v));
#else
        return unfused(a.v - b.v);
#endif
    }
    friend FOCAL_HD FOCAL_INLINE unfused operator*(unfused a, unfused b) noexcept {
#if FOCAL_DEVICE_PASS
        if constexpr (std::is_same_v<T, float>) return unfused(__fmul_rn(a.v, b.v));
        else return unfused(__dmul_rn(a.v, b.v));
#else
        return unfused(a.v * b.v);
#endif
    }
    friend FOCAL_HD FOCAL_INLINE unfused operator/(unfused a, unfused b) noexcept {
#if FOCAL_DEVICE_PASS
        if constexpr (std::is_same_v<T, float>) return unfused(__fdiv_rn(a.v, b.v));
        else return unfused(__ddiv_rn(a.v, b.v));
#else
        return unfused(a.v / b.v);
#endif
    }
    friend FOCAL_HD FOCAL_INLINE constexpr unfused operator-(unfused a) noexcept { return unfused(-a.v); }
    friend FOCAL_HD FOCAL_INLINE constexpr unfused_mask operator<(unfused a, unfused b) noexcept { return unfused_mask{a.v < b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr unfused_mask operator>(unfused a, unfused b) noexcept { return unfused_mask{a.v > b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr unfused_mask operator<=(unfused a, unfused b) noexcept { return unfused_mask{a.v <= b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr unfused_mask operator>=(unfused a, unfused b) noexcept { return unfused_mask{a.v >= b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr unfused_mask operator==(unfused a, unfused b) noexcept { return unfused_mask{a.v == b.v}; }
    friend FOCAL_HD FOCAL_INLINE constexpr unfused_mask operator!=(unfused a, unfused b) noexcept { return unfused_mask{a.v != b.v}; }
};

}  // namespace focal::detail
