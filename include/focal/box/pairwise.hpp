// focal/box/pairwise.hpp: the N x M similarity matrix of two sets of xyxy boxes.
//
//   pairwise_similarity(similarity, a /*N x 4*/, b /*M x 4*/, out /*N x M*/, exec)
//   pairwise_iou(a, b, out, exec)                          = pairwise_similarity(iou_similarity{}, ...)
// out(i, j) = similarity(a_i, b_j), torchvision's box_iou(a, b) layout. The columns (b) are
// staged once as a structure of arrays, then every row runs SIMD across them; work is split
// into column blocks, so 20 ground-truth boxes x 201,600 anchors spreads over all threads.
#pragma once

#include <algorithm>
#include <vector>

#include "../config.hpp"
#include "../core/checks.hpp"
#include "../core/execution.hpp"
#include "../core/host_packet.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "box4.hpp"
#include "format.hpp"
#include "iou.hpp"

namespace focal {

namespace detail {

// Boxes as five arrays (x1, y1, x2, y2, area), padded to a multiple of the packet width.
template <class T>
struct boxes_soa {
    std::vector<T> x1, y1, x2, y2, area;
    index_t size = 0;

    template <class B>
    boxes_soa(const matrix_view<B>& boxes, index_t pad_to) : size(boxes.extent(0)) {
        const index_t padded = (size + pad_to - 1) / pad_to * pad_to;
        for (auto* v : {&x1, &y1, &x2, &y2, &area}) v->assign(static_cast<std::size_t>(padded), T(0));
        for (index_t j = 0; j < size; ++j) {
            const box4<T> b{{T(boxes(j, 0)), T(boxes(j, 1)), T(boxes(j, 2)), T(boxes(j, 3))}};
            x1[j] = b[0];
            y1[j] = b[1];
            x2[j] = b[2];
            y2[j] = b[3];
            area[j] = focal::area(b);
        }
    }
    template <class P>
    FOCAL_INLINE box4<P> load(index_t j) const noexcept {
        using tr = packet_traits<P>;
        return {{tr::load(&x1[j]), tr::load(&y1[j]), tr::load(&x2[j]), tr::load(&y2[j])}};
    }
};

template <class T, class B>
void check_boxes(const matrix_view<B>& boxes, const char* where, const char* what) {
    require_valid_extents(boxes, where, what);
    require_extent(boxes, 1, 4, where, what);
    require_data(boxes, where, what);
}

}  // namespace detail

template <class Similarity, class TA, class TB, class TO, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TO>> && (!std::is_const_v<TO>) && exec::is_policy_v<Exec>
void pairwise_similarity(const Similarity& similarity, matrix_view<TA> a, matrix_view<TB> b, matrix_view<TO> out,
                         const Exec& exec = {}) {
    using T = TO;
    constexpr const char* where = "focal::pairwise_similarity";
    detail::check_boxes<T>(a, where, "a (boxes, N x 4)");
    detail::check_boxes<T>(b, where, "b (boxes, M x 4)");
    detail::require(out.extent(0) == a.extent(0) && out.extent(1) == b.extent(0), where, "out",
                    "of shape [N x M] = [" + std::to_string(a.extent(0)) + " x " + std::to_string(b.extent(0)) + "]",
                    detail::shape_string(out));
    detail::require_valid_extents(out, where, "out");  // N * M must not wrap
    detail::require_data(out, where, "out");
    detail::require_non_overlapping(out, where, "out");

    constexpr bool simd = !std::is_same_v<Exec, exec::scalar_policy>;
    using P = host_packet_t<T, simd>;
    using tr = packet_traits<P>;
    constexpr index_t width = tr::width;
    const detail::boxes_soa<T> cols(b, width);
    std::vector<box4<T>> rows(static_cast<std::size_t>(a.extent(0)));
    std::vector<T> row_area(rows.size());
    for (index_t i = 0; i < a.extent(0); ++i) {
        rows[i] = {{T(a(i, 0)), T(a(i, 1)), T(a(i, 2)), T(a(i, 3))}};
        row_area[i] = area(rows[i]);
    }
    const index_t m = b.extent(0);
    constexpr index_t block = 4096;  // columns per task: a multiple of every packet width
    detail::for_each_block(exec, (m + block - 1) / block, 1, block * std::max<index_t>(1, a.extent(0)),
                           [&](index_t blk, index_t) {
        const index_t j0 = blk * block, j1 = std::min(m, j0 + block);
        alignas(64) T staged[width];
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const box4<P> ai{{P(rows[i][0]), P(rows[i][1]), P(rows[i][2]), P(rows[i][3])}};
            const P area_i(row_area[i]);
            for (index_t j = j0; j < j1; j += width) {
                const P s = similarity(ai, cols.template load<P>(j), area_i, tr::load(&cols.area[j]));
                const index_t n = std::min(width, j1 - j);
                if (n == width && out.rows_contiguous()) {
                    tr::store(&out(static_cast<index_t>(i), j), s);
                } else {
                    tr::store(staged, s);
                    for (index_t k = 0; k < n; ++k) out(static_cast<index_t>(i), j + k) = staged[k];
                }
            }
        }
    });
}

template <class TA, class TB, class TO, class Exec = exec::default_policy>
void pairwise_iou(matrix_view<TA> a, matrix_view<TB> b, matrix_view<TO> out, const Exec& exec = {}) {
    pairwise_similarity(iou_similarity{}, a, b, out, exec);
}

}  // namespace focal
