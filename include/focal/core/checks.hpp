// focal/core/checks.hpp: shape and value checks shared by the checked entry points.
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include "error.hpp"
#include "view.hpp"

namespace focal::detail {

// `what` (e.g. "out.grad") must have exactly the shape of `like` (e.g. "logits").
template <class T, class U, std::size_t R, class S>
void require_same_shape(const view<T, R, S>& v, const view<U, R, S>& like, const char* where, const char* what,
                        const char* like_name) {
    bool same = true;
    for (std::size_t r = 0; r < R; ++r) same = same && v.extent(r) == like.extent(r);
    require(same, where, what, std::string("of the shape of ") + like_name + " " + shape_string(like), shape_string(v));
}

template <class T, std::size_t R, class S>
void require_data(const view<T, R, S>& v, const char* where, const char* what) {
    require(v.data_handle() != nullptr || v.size() == 0, where, what, "a non-null pointer when not empty",
            "a null pointer with shape ", shape_string(v));
}

template <class T, std::size_t R, class S>
void require_extent(const view<T, R, S>& v, std::size_t r, index_t expected, const char* where, const char* what) {
    require(v.extent(r) == expected, where, what,
            "of extent " + std::to_string(expected) + " in dimension " + std::to_string(r), shape_string(v));
}

// Every extent >= 0 (a view built from a negative size is a caller bug, not an empty input), and
// the product of the non-zero extents fits index_t: no memory holds more, and sizes computed from
// the extents (v.size(), rows * cols) would wrap.
template <class T, std::size_t R, class S>
void require_valid_extents(const view<T, R, S>& v, const char* where, const char* what) {
    for (std::size_t r = 0; r < R; ++r)
        require(v.extent(r) >= 0, where, what, "of non-negative extents", shape_string(v));
    index_t n = 1;
    for (std::size_t r = 0; r < R; ++r) {
        const index_t e = v.extent(r);
        require(e == 0 || n <= std::numeric_limits<index_t>::max() / e, where, what,
                "of extents whose product fits focal::index_t", shape_string(v));
        if (e != 0) n *= e;
    }
}

// An output view whose elements do not share memory: a 0 stride, or strides that interleave rows,
// would make two results (possibly from two threads) land on the same element.
template <class T, class S>
void require_non_overlapping(const view<T, 2, S>& v, const char* where, const char* what) {
    const index_t n0 = v.extent(0), n1 = v.extent(1);
    if (v.size() == 0 || (n0 <= 1 && n1 <= 1)) return;
    const index_t s0 = v.stride(0) < 0 ? -v.stride(0) : v.stride(0);
    const index_t s1 = v.stride(1) < 0 ? -v.stride(1) : v.stride(1);
    // Disjoint when the inner dimension fits between two steps of the outer one (either order).
    const bool rows_outer = (n1 <= 1 || s1 >= 1) && (n0 <= 1 || s0 >= (n1 <= 1 ? 1 : n1 * s1));
    const bool cols_outer = (n0 <= 1 || s0 >= 1) && (n1 <= 1 || s1 >= (n0 <= 1 ? 1 : n0 * s0));
    require(rows_outer || cols_outer, where, what, "a view whose elements do not overlap",
            "strides [" + std::to_string(v.stride(0)) + ", " + std::to_string(v.stride(1)) + "] for shape " + shape_string(v));
}

// A vector output whose elements are distinct (a 0 stride would make rows share one element).
template <class T, class S>
void require_distinct(const view<T, 1, S>& v, const char* where, const char* what) {
    require(v.extent(0) <= 1 || v.stride(0) != 0, where, what, "a view whose elements do not overlap",
            "stride 0 for shape " + shape_string(v));
}

// A B x R x C output (host or device memory) whose images neither overlap each other nor
// themselves: each image's slice is disjoint from the next.
template <class T, class S>
void require_disjoint_images(const view<T, 3, S>& v, const char* where, const char* what) {
    require_data(v, where, what);
    const view<T, 2, S> first = slice(v, 0);
    require_non_overlapping(first, where, what);
    if (v.extent(0) <= 1 || first.size() == 0) return;
    const auto magnitude = [](index_t s) { return s < 0 ? -s : s; };
    const index_t span = (v.extent(1) - 1) * magnitude(v.stride(1)) + (v.extent(2) - 1) * magnitude(v.stride(2)) + 1;
    require(magnitude(v.stride(0)) >= span, where, what, "a view whose images do not overlap",
            "batch stride " + std::to_string(v.stride(0)) + " for images spanning " + std::to_string(span) + " elements");
}

// The factor 1 / count or 1 / normalizer must stay a finite, non-zero T, or every gradient would
// silently become inf or 0 (e.g. divide_by(1e-39) in float).
template <class T>
void require_representable_scale(double scale, const char* where) {
    const auto t = static_cast<T>(scale);
    require(scale == 0.0 || (std::isfinite(t) && t != T(0)), where, "the reduction's scale (1 / count or 1 / normalizer)",
            "representable in the value type", scale);
}

}  // namespace focal::detail
