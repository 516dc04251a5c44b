// GroupNorm's element rules (Wu & He 2018), one definition for the CPU and the CUDA backend. Per
// image and group of C/G channels, over its count = C/G H W elements:
//   y = (x - mean) inv_std gamma_c + beta_c,  inv_std = 1 / sqrt(var + eps)
// with the biased variance (torch's) taken from centred squares, sum (x - mean)^2: a second pass,
// no cancellation. How the sums are reduced (chunks, threads, kernels) is each backend's own.
#pragma once

#include <focal/config.hpp>
#include <focal/core/math.hpp>

namespace retinanet::element_rules {

// A group's mean from the sum of its elements.
FOCAL_HD inline double group_mean(double sum, double count) { return sum / count; }

// A group's 1 / sqrt(var + eps) from the sum of its centred squares.
FOCAL_HD inline double group_inv_std(double centred_squares, double count, double eps) {
    return 1.0 / focal::math::sqrt(centred_squares / count + eps);
}

// The normalization of one (image, channel) as an affine map, y = x scale + shift:
// scale = inv_std gamma, shift = beta - mean scale.
template <class T>
struct channel_affine {
    T scale, shift;
};
template <class T>
FOCAL_HD channel_affine<T> group_norm_affine(T mean, T inv_std, T gamma, T beta) {
    const T scale = inv_std * gamma;
    return {scale, beta - mean * scale};
}

// y = x scale + shift.
template <class T>
FOCAL_HD T affine(T x, T scale, T shift) {
    return x * scale + shift;
}

// x hat = (x - mean) inv_std, which backward needs.
template <class T>
FOCAL_HD T group_norm_normalized(T x, T mean, T inv_std) {
    return (x - mean) * inv_std;
}

// Backward of one (image, channel) as dx = a dy + b + e x hat, with g = gamma dy:
//   dx = inv_std (g - mean_group(g) - x hat mean_group(g x hat))
//   a = inv_std gamma_c,  b = -inv_std sum_group(g) / count,  e = -inv_std sum_group(g x hat) / count
// (dy after the fused ReLU's mask, if any).
template <class T>
struct group_norm_gradient {
    T a, b, e;
    FOCAL_HD T dx(T dy, T x_hat) const { return a * dy + b + e * x_hat; }
};
template <class T>
FOCAL_HD group_norm_gradient<T> group_norm_backward(double inv_std, double gamma, double group_g_sum, double group_g_xhat_sum,
                                                    double count) {
    return {static_cast<T>(inv_std * gamma), static_cast<T>(-inv_std * group_g_sum / count),
            static_cast<T>(-inv_std * group_g_xhat_sum / count)};
}

}  // namespace retinanet::element_rules
