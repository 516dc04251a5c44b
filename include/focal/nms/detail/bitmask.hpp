// focal/nms/detail/bitmask.hpp: the pieces of a bitmask greedy NMS that the CUDA kernels
// (cuda/nms.cuh, cuda/postprocess.cuh) and the host tests share.
//
// Candidates are sorted best first (score_sort_key: score descending, equal scores in index order,
// NaN last); row r of the mask holds, per 64-bit word w, bit j set when sorted box r suppresses
// sorted box c = 64 w + j, c > r (mask_word). A serial walk over the words (resolve_word, then OR
// the kept rows into the removed words after it) yields exactly the host greedy order:
//   * suppression is "both boxes active and IoU > t" (nms/detail/box_chunks.hpp: an inactive box,
//     one with area <= 0, inf or NaN, neither suppresses nor is suppressed);
//   * the IoU is box/iou.hpp's iou_from_areas, evaluated on unfused<float>, whose operations are
//     single IEEE roundings on the device too (no contraction into fma): bit-identical to the host;
//   * t is threshold_below<float>(iou_threshold) (nms/detail/checks.hpp), as on the host;
//   * class-aware (per_class) NMS is the same walk with suppression only within a class: greedy in
//     the global score order with class-restricted suppression is greedy per class.
#pragma once

#include <cstdint>
#include <cstring>

#include "../../box/box4.hpp"
#include "../../box/format.hpp"
#include "../../box/iou.hpp"
#include "../../box/overlap.hpp"
#include "../../config.hpp"

namespace focal::detail {

inline constexpr int mask_word_bits = 64;

// Words per mask row for n boxes.
FOCAL_HD constexpr std::int64_t mask_words(std::int64_t n) noexcept { return (n + mask_word_bits - 1) / mask_word_bits; }

FOCAL_HD FOCAL_INLINE std::uint32_t float_bits(float x) noexcept {
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}
FOCAL_HD FOCAL_INLINE float bits_float(std::uint32_t u) noexcept {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// The key that sorts scores best first when sorted ascending: radix_sort.hpp's descending_key
// (-0 ranks as +0), and NaN -> nan_sort_key, after every number (no number has that key).
inline constexpr std::uint32_t nan_sort_key = 0xffffffffu;
FOCAL_HD FOCAL_INLINE std::uint32_t score_sort_key(float x) noexcept {
    if (x != x) return nan_sort_key;
    const std::uint32_t u = float_bits(x + 0.0f);  // -0 + 0 = +0
    const std::uint32_t ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~ascending;
}
// The inverse for non-NaN keys (gives +0 for -0).
FOCAL_HD FOCAL_INLINE float score_from_key(std::uint32_t key) noexcept {
    const std::uint32_t ascending = ~key;
    return bits_float((ascending & 0x80000000u) ? (ascending & 0x7fffffffu) : ~ascending);
}

// box_chunks.hpp's is_active: finite positive area (a - a == 0 rules out inf and NaN).
FOCAL_HD FOCAL_INLINE bool nms_active(unfused<float> a) noexcept { return a > unfused<float>(0.0f) && (a - a) == unfused<float>(0.0f); }

// Box p (area pa) suppresses box q (area qa) at threshold t: both active and IoU > t.
FOCAL_HD FOCAL_INLINE bool nms_suppresses(const box4<unfused<float>>& p, unfused<float> pa, const box4<unfused<float>>& q, unfused<float> qa, float t) noexcept {
    return nms_active(pa) && nms_active(qa) && bool(iou_from_areas(p, q, pa, qa) > unfused<float>(t));
}

// One mask word: bit j set when sorted box `row` suppresses sorted box col0 + j, for j < count
// and col0 + j > row. cols / col_area / col_class point at the column block's first box (classes:
// nullptr when class-agnostic).
FOCAL_HD FOCAL_INLINE std::uint64_t mask_word(std::int64_t row, const box4<float>& row_box, std::int64_t row_class,
                                             std::int64_t col0, int count, const box4<float>* cols,
                                             const std::int64_t* col_class, float t) noexcept {
    const box4<unfused<float>> p = to_unfused(row_box);
    const unfused<float> pa = area(p);
    std::uint64_t word = 0;
    for (int j = 0; j < count; ++j) {
        if (col0 + j <= row) continue;
        if (col_class != nullptr && col_class[j] != row_class) continue;
        const box4<unfused<float>> q = to_unfused(cols[j]);
        if (nms_suppresses(p, pa, q, area(q), t)) word |= std::uint64_t(1) << j;
    }
    return word;
}

// The greedy walk through one word block: rows 64 w + j for j < rows, given the bits removed by
// earlier blocks and each row's diagonal word (diag[j] = mask of row 64 w + j, word w). Keeps at
// most max_new rows; writes their j to kept_j; returns how many.
FOCAL_HD FOCAL_INLINE int resolve_word(std::uint64_t removed, const std::uint64_t* diag, int rows, std::int64_t max_new,
                                       int* kept_j) noexcept {
    int kept = 0;
    for (int j = 0; j < rows && kept < max_new; ++j) {
        if ((removed >> j) & 1u) continue;
        kept_j[kept++] = j;
        removed |= diag[j];
    }
    return kept;
}

// torchvision's class-offset trick for one box: box + T(class) * step, each a single rounding
// (nms/batched.hpp offset_boxes: the offset first, then one addition per coordinate). The class
// converts to float from its own integer type, as the host's static_cast<T>(classes(i)) (via
// int64 a uint64 class of 2^63 or more would round differently).
template <class C>
FOCAL_HD FOCAL_INLINE box4<float> offset_box(const box4<float>& b, C cls, float step) noexcept {
    const unfused<float> off = unfused<float>(static_cast<float>(cls)) * unfused<float>(step);
    return {{(unfused<float>(b[0]) + off).v, (unfused<float>(b[1]) + off).v, (unfused<float>(b[2]) + off).v, (unfused<float>(b[3]) + off).v}};
}

// The running maximum coordinate of offset_boxes: NaN once any coordinate is NaN (an associative,
// commutative combine, so any reduction order gives the same value).
FOCAL_HD FOCAL_INLINE float max_coordinate_combine(float a, float b) noexcept {
    if (a != a || b != b) return a != a ? a : b;
    return a > b ? a : b;
}

}  // namespace focal::detail
