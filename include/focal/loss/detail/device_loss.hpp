// focal/loss/detail/device_loss.hpp: the per-element and per-reduction pieces of the CUDA loss
// drivers (focal/cuda/loss.cuh), written FOCAL_HD so the host tests run them on the CPU.
//
//   element_target / label_target     a label -> (target, ignored) for column k
//   element_loss                      value and scale * gradient of one element (0, 0 if ignored)
//   box_row_loss                      value and double-scaled gradient of one positive box row
//   constant_scale, count_scale, normalizer_scale
//                                     the reduction factor of image b (host value, from a count
//                                     made on the device, or from a device normalizer)
//   group_width, group_sum, tree_level, reduce_block
//                                     the fixed summation order (see focal/cuda/detail/reduce.cuh)
//
// Summation order of a CUDA loss (the device and the host emulation in
// tests/cuda_host/test_cuda_loss_host.cpp follow it step by step):
//   1. an image's n = N * K elements are cut into groups of group_width<T> consecutive elements
//      (4 floats or 2 doubles: one 16-byte vector); a group's values are added in float / T, left
//      to right, starting from the first;
//   2. thread t of a grid of G blocks x reduce_block threads takes groups t, t + G * reduce_block,
//      ... and adds each group's sum to a double accumulator in that order;
//   3. a block adds its threads' accumulators with the fixed tree of tree_level (double) into one
//      partial per block;
//   4. one block adds an image's partials: thread t takes partials t, t + reduce_block, ... in order
//      (double), then the same tree; value = sum * scale (double).
// G depends on n only (never on the GPU or the layout), so the bits of the result depend on the
// inputs only; a strided view and a contiguous one give the same bits.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../../config.hpp"
#include "../../core/labels.hpp"
#include "../../core/view.hpp"
#include "../reduction.hpp"
#include "../value_grad.hpp"

namespace focal::detail {

// ---- targets ---------------------------------------------------------------------------------

template <class T>
struct element_target {
    T target;      // 0 or 1 from a label; the caller's value for dense targets
    bool ignored;  // the anchor's row contributes nothing (value 0, gradient 0)
};

// Anchor label -> the target of column k, by core/labels.hpp's rules (the host's): labels are read
// as signed 64-bit integers (an unsigned type's -1 is background, as on the host); one_hot_target
// gives 1 where k == label, any other column 0 (background_label matches no column);
// is_ignored_label marks ignored_label. The host drivers reject labels outside [-2, K); the device
// cannot throw, so there a label < -2 counts as ignored and a label >= K as background (documented
// in loss.cuh). A box row takes part in the box loss when is_positive_label(label).
template <class T>
FOCAL_HD FOCAL_INLINE element_target<T> label_target(std::int64_t label, index_t k) noexcept {
    return {one_hot_target<T>(static_cast<std::int64_t>(k), label), is_ignored_label(label)};
}

// ---- one element ------------------------------------------------------------------------------

// value = policy value, grad = policy grad * scale (in T, as the host's loss_tile: grad * scale_t);
// an ignored element gives (0, 0) without evaluating the policy.
template <class Policy, class T>
FOCAL_HD FOCAL_INLINE value_grad<T> element_loss(const Policy& policy, T x, element_target<T> t, T scale) noexcept {
    if (t.ignored) return {T(0), T(0)};
    const value_grad<T> r = policy.value_and_grad(x, t.target);
    return {r.value, r.grad * scale};
}

// One positive row of a box loss: value, and grad = T(double(policy grad) * scale) as the host
// box_regression_loss (which multiplies by the double scale before rounding).
template <class Policy, class T>
FOCAL_HD FOCAL_INLINE box_value_grad<T> box_row_loss(const Policy& policy, const box4<T>& pred, const box4<T>& target,
                                                     double scale) noexcept {
    box_value_grad<T> r = policy.value_and_grad(pred, target);
    for (int c = 0; c < 4; ++c) r.grad[c] = static_cast<T>(static_cast<double>(r.grad[c]) * scale);
    return r;
}

// ---- reduction factors (at(b): the factor of image b) -----------------------------------------

// Known on the host: sum, divide_by(n), or mean with dense targets (count N * K).
struct constant_scale {
    double scale;
    FOCAL_HD FOCAL_INLINE double at(index_t) const noexcept { return scale; }
};

// reduction r (mean) with a count made on the device (reduction::scale gives 1 / count, 0 for none):
//   classification, subtract: count = (rows - counts[b]) * cols, counts = ignored rows;
//   box, !subtract:           count = counts[b], counts = positive rows.
struct count_scale {
    reduction r;
    const unsigned long long* counts;  // one per image, written by the count kernel
    index_t rows, cols;
    bool subtract;  // count = (rows - counts[b]) * cols when true, counts[b] otherwise
    FOCAL_HD FOCAL_INLINE double count(index_t b) const noexcept {
        const double c = static_cast<double>(counts[b]);
        return subtract ? (static_cast<double>(rows) - c) * static_cast<double>(cols) : c;
    }
    FOCAL_HD FOCAL_INLINE double at(index_t b) const noexcept { return r.scale(count(b)); }
};

// A normalizer in device memory: n_b = multiplier * max(minimum, values[b]) (values[0] for every
// image when per_image is false), scale = 1 / n_b. The device cannot throw, so a normalizer that
// is not finite and > 0 (or whose inverse is 0 or inf in T) gives a NaN scale: NaN loss and
// gradient, never a silently wrong finite number.
template <class N, class T>
struct normalizer_scale {
    const N* values;
    double multiplier, minimum;
    bool per_image;
    FOCAL_HD FOCAL_INLINE double normalizer(index_t b) const noexcept {
        const double v = static_cast<double>(values[per_image ? b : 0]);
        // max(minimum, v) keeps a NaN v: v < minimum is false for NaN.
        return multiplier * (v < minimum ? minimum : v);
    }
    FOCAL_HD FOCAL_INLINE double at(index_t b) const noexcept {
        const double n = normalizer(b);
        const double s = 1.0 / n;
        const T st = static_cast<T>(s);
        const bool ok = n > 0 && n - n == 0.0 && st != T(0) && st - st == T(0);  // finite, > 0, representable
        return ok ? s : nan_value();
    }
    FOCAL_HD FOCAL_INLINE static double nan_value() noexcept {
        const double zero = 0.0;
        return zero / zero;
    }
};

// ---- summation order --------------------------------------------------------------------------

inline constexpr int reduce_block = 256;  // threads per block of every reducing loss kernel

// Elements per group: one 16-byte vector.
template <class T>
inline constexpr index_t group_width = static_cast<index_t>(16 / sizeof(T));

// Number of groups of an image of n elements.
template <class T>
FOCAL_HD FOCAL_INLINE constexpr index_t group_count(index_t n) noexcept {
    return (n + group_width<T> - 1) / group_width<T>;
}

// Blocks per image: groups_per_thread groups per thread, at least 1 block, at most 65535.
inline constexpr index_t groups_per_thread = 4;
inline constexpr index_t max_blocks_per_image = 65535;
template <class T>
constexpr index_t loss_blocks(index_t n) noexcept {
    const index_t per_block = reduce_block * groups_per_thread;
    const index_t g = group_count<T>(n < 0 ? 0 : n);
    const index_t b = (g + per_block - 1) / per_block;
    return b < 1 ? 1 : (b > max_blocks_per_image ? max_blocks_per_image : b);
}
// Box kernels: one row per thread step, rows_per_thread rows per thread.
inline constexpr index_t rows_per_thread = 4;
constexpr index_t box_blocks(index_t rows) noexcept {
    const index_t per_block = reduce_block * rows_per_thread;
    const index_t b = ((rows < 0 ? 0 : rows) + per_block - 1) / per_block;
    return b < 1 ? 1 : (b > max_blocks_per_image ? max_blocks_per_image : b);
}

// A group's values added in T, left to right.
template <class T>
FOCAL_HD FOCAL_INLINE T group_sum(const T* v, index_t count) noexcept {
    T s = v[0];
    for (index_t j = 1; j < count; ++j) s += v[j];
    return s;
}

// One level of the block tree: s[t] += s[t + width] for t < width; widths reduce_block / 2, ..., 1.
FOCAL_HD FOCAL_INLINE void tree_level(double* s, int t, int width) noexcept {
    if (t < width) s[t] += s[t + width];
}

// (row, column) of element e of an image with `cols` columns, and the step to the next element.
struct element_position {
    index_t row, col;
};
template <class Index>
FOCAL_HD FOCAL_INLINE element_position position_of(index_t e, index_t cols) noexcept {
    const Index row = static_cast<Index>(e) / static_cast<Index>(cols);
    return {static_cast<index_t>(row), e - static_cast<index_t>(row) * cols};
}
FOCAL_HD FOCAL_INLINE void next_position(element_position& p, index_t cols) noexcept {
    if (++p.col == cols) {
        p.col = 0;
        ++p.row;
    }
}

}  // namespace focal::detail
