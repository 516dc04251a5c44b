// focal/assign/targets.hpp: per-anchor class labels and box-regression targets from matches.
//
//   index_t build_targets(coder, matches /*N*/, anchors /*N x 4*/, gt_boxes /*M x 4*/,
//                         gt_labels /*M*/, labels /*N, out*/, box_targets /*N x 4, out*/, exec)
//   labels[i]      = gt_labels[matches[i]] for a positive (matches[i] >= 0), else matches[i]
//                    (-1 negative, -2 ignored): what classification_loss takes
//   box_targets[i] = coder.encode(gt_boxes[matches[i]], anchors[i]) for a positive, 0 elsewhere:
//                    box_regression_loss with the same labels reads positive rows only
//   returns        the number of positives, the paper's normalizer: divide_by(max(1, positives))
//   assign_targets(matcher, coder, anchors, gt_boxes, [crowd_boxes,] gt_labels, labels,
//                  box_targets, exec) = match_anchors, then build_targets.
// Encoding runs through the coder's packet code (SIMD over the positives), so a row equals
// encode_boxes(coder, ...) under the same execution policy.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../box/box4.hpp"
#include "../core/checks.hpp"
#include "../core/execution.hpp"
#include "../core/host_packet.hpp"
#include "../core/labels.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "match.hpp"
#include "max_iou_matcher.hpp"

namespace focal {

template <class Coder, class TM, class TA, class TG, class TL, class TLO, class TB, class Exec = exec::default_policy>
    requires std::integral<std::remove_const_t<TM>> && std::integral<std::remove_const_t<TL>> &&
             std::signed_integral<TLO> && std::floating_point<TB> && exec::is_policy_v<Exec>
index_t build_targets(const Coder& coder, vector_view<TM> matches, matrix_view<TA> anchors, matrix_view<TG> gt_boxes,
                      vector_view<TL> gt_labels, vector_view<TLO> labels, matrix_view<TB> box_targets,
                      const Exec& exec = {}) {
    constexpr const char* where = "focal::build_targets";
    validate(coder, where);
    detail::require_valid_extents(matches, where, "matches");
    detail::require_data(matches, where, "matches");
    const index_t n = matches.extent(0);
    detail::assign_impl::check_match_boxes(anchors, where, "anchors (N x 4)");
    detail::require_extent(anchors, 0, n, where, "anchors (one per match)");
    detail::assign_impl::check_match_boxes(gt_boxes, where, "gt_boxes (M x 4)");
    const index_t m = gt_boxes.extent(0);
    detail::require_valid_extents(gt_labels, where, "gt_labels");
    detail::require_extent(gt_labels, 0, m, where, "gt_labels (one per gt box)");
    detail::require_data(gt_labels, where, "gt_labels");
    detail::require_valid_extents(labels, where, "labels");
    detail::require_extent(labels, 0, n, where, "labels (one per anchor)");
    detail::require_data(labels, where, "labels");
    detail::require_distinct(labels, where, "labels");
    detail::require_valid_extents(box_targets, where, "box_targets");
    detail::require(box_targets.extent(0) == n && box_targets.extent(1) == 4, where, "box_targets",
                    "of shape [N x 4] = [" + std::to_string(n) + " x 4]", detail::shape_string(box_targets));
    detail::require_data(box_targets, where, "box_targets");
    detail::require_non_overlapping(box_targets, where, "box_targets");
    for (index_t i = 0; i < n; ++i) {
        const auto code = static_cast<std::int64_t>(matches(i));
        if (code < ignored_label || code >= m)
            detail::fail(where, "matches", "in [-2, M) = [-2, " + std::to_string(m) + ")", code, " at anchor ", i);
    }
    for (index_t j = 0; j < m; ++j) {
        const auto label = static_cast<std::int64_t>(gt_labels(j));
        if (label < 0) detail::fail(where, "gt_labels", ">= 0 (class indices)", label, " at gt ", j);
        // A class that labels' type cannot hold would be written wrapped.
        if (static_cast<std::uintmax_t>(label) > static_cast<std::uintmax_t>(std::numeric_limits<TLO>::max()))
            detail::fail(where, "gt_labels", "at most the largest value of labels' type (" +
                         std::to_string(std::numeric_limits<TLO>::max()) + ")", label, " at gt ", j);
    }

    using T = TB;
    constexpr bool simd = !std::is_same_v<Exec, exec::scalar_policy>;
    using P = host_packet_t<T, simd>;
    using tr = packet_traits<P>;
    constexpr index_t width = tr::width;
    constexpr index_t block = 4096;
    std::vector<index_t> positives((static_cast<std::size_t>(n) + block - 1) / block, 0);
    detail::for_each_block(exec, n, block, 5, [&](index_t begin, index_t end) {
        // (anchor, gt) of each positive, read before labels(i) is written: labels may be the
        // matches' own memory (codes overwritten by classes in place).
        std::vector<std::pair<index_t, index_t>> pos;
        for (index_t i = begin; i < end; ++i) {
            const auto code = static_cast<index_t>(matches(i));
            if (code >= 0) {
                labels(i) = static_cast<TLO>(gt_labels(code));
                pos.emplace_back(i, code);
            } else {
                labels(i) = static_cast<TLO>(code);
                for (index_t c = 0; c < 4; ++c) box_targets(i, c) = T(0);
            }
        }
        alignas(64) T g[4][width], a[4][width], d[4][width];
        const auto np = static_cast<index_t>(pos.size());
        for (index_t p0 = 0; p0 < np; p0 += width) {
            const index_t lanes = std::min(width, np - p0);
            for (index_t k = 0; k < width; ++k) {  // pad with the last positive: no special lanes
                const auto [i, j] = pos[static_cast<std::size_t>(p0 + std::min(k, lanes - 1))];
                for (index_t c = 0; c < 4; ++c) {
                    g[c][k] = static_cast<T>(gt_boxes(j, c));
                    a[c][k] = static_cast<T>(anchors(i, c));
                }
            }
            const box4<P> e = coder.encode(box4<P>{{tr::load(g[0]), tr::load(g[1]), tr::load(g[2]), tr::load(g[3])}},
                                           box4<P>{{tr::load(a[0]), tr::load(a[1]), tr::load(a[2]), tr::load(a[3])}});
            for (int c = 0; c < 4; ++c) tr::store(d[c], e[c]);
            for (index_t k = 0; k < lanes; ++k)
                for (index_t c = 0; c < 4; ++c) box_targets(pos[static_cast<std::size_t>(p0 + k)].first, c) = d[c][k];
        }
        positives[static_cast<std::size_t>(begin / block)] = np;
    });
    index_t total = 0;
    for (index_t p : positives) total += p;
    return total;
}

// match_anchors then build_targets, with crowd / ignore regions (an empty view: none).
template <class Coder, class TA, class TG, class TC, class TL, class TLO, class TB, class Exec = exec::default_policy>
    requires exec::is_policy_v<Exec>
index_t assign_targets(const max_iou_matcher& matcher, const Coder& coder, matrix_view<TA> anchors,
                       matrix_view<TG> gt_boxes, matrix_view<TC> crowd_boxes, vector_view<TL> gt_labels,
                       vector_view<TLO> labels, matrix_view<TB> box_targets, const Exec& exec = {}) {
    const index_t n = std::max<index_t>(0, anchors.extent(0));
    std::vector<std::int32_t> matches(static_cast<std::size_t>(n));
    match_anchors(matcher, anchors, gt_boxes, crowd_boxes, match_output{make_view(matches.data(), n)}, exec);
    return build_targets(coder, vector_view<const std::int32_t>(matches.data(), n), anchors, gt_boxes, gt_labels,
                         labels, box_targets, exec);
}

template <class Coder, class TA, class TG, class TL, class TLO, class TB, class Exec = exec::default_policy>
    requires exec::is_policy_v<Exec>
index_t assign_targets(const max_iou_matcher& matcher, const Coder& coder, matrix_view<TA> anchors,
                       matrix_view<TG> gt_boxes, vector_view<TL> gt_labels, vector_view<TLO> labels,
                       matrix_view<TB> box_targets, const Exec& exec = {}) {
    return assign_targets(matcher, coder, anchors, gt_boxes, matrix_view<const float>{}, gt_labels, labels, box_targets,
                          exec);
}

}  // namespace focal
