// focal/nms/greedy.hpp: greedy non-maximum suppression (torchvision.ops.nms) as a policy and driver.
//
//   index_t count = focal::nms(focal::greedy_nms{.iou_threshold = 0.5}, boxes /*N x 4 xyxy*/,
//                              scores /*N*/, keep /*>= N indices*/, exec);
// Boxes are visited by score, highest first, equal scores in index order (a stable sort). A box is
// kept unless a kept box has IoU > iou_threshold with it (strict); keep[0 .. count) receives the
// kept indices in that order, at most max_detections of them (-1: all).
//
// Contract, for every input:
//   * a NaN score is never kept and suppresses nothing; +-inf scores sort as numbers;
//   * IoU is box/iou.hpp's, torchvision's arithmetic, and "IoU > t" is decided as torchvision
//     decides it (float IoU against the double threshold), so the kept list is torchvision's
//     whenever no score is NaN (torchvision sorts NaN scores first and keeps them);
//   * zero-area, inverted, NaN and infinite boxes have IoU 0 or NaN with every box: they are kept
//     (if their score is not NaN) and suppress nothing;
//   * threshold 0: any overlap of positive area suppresses; threshold 1: nothing is suppressed
//     (an IoU is never above 1);
//   * exec::scalar, exec::simd and exec::parallel give the same list (exec::parallel runs the SIMD
//     kernel on the calling thread: one greedy pass is sequential).
#pragma once

#include <concepts>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../box/box4.hpp"
#include "../core/error.hpp"
#include "../core/execution.hpp"
#include "../core/view.hpp"
#include "detail/checks.hpp"
#include "detail/greedy_run.hpp"
#include "detail/score_order.hpp"

namespace focal {

struct greedy_nms {
    double iou_threshold = 0.5;  // suppress IoU > iou_threshold, in [0, 1]; double, as torchvision's
    index_t max_detections = -1;     // keep at most this many, -1: no limit
};

inline void validate(const greedy_nms& p, const char* where = "focal::greedy_nms") {
    detail::check_iou_threshold(p.iou_threshold, where);
    detail::check_max_detections(p.max_detections, where);
}

namespace detail {

// Writes the kept boxes into keep in score order, at most max_detections; returns the count.
template <class TK>
index_t write_in_order(const std::vector<std::uint32_t>& order, const std::vector<std::uint8_t>& kept,
                       index_t max_detections, const vector_view<TK>& keep) {
    index_t count = 0;
    for (const std::uint32_t i : order) {
        if (count == max_detections) break;
        if (kept[i]) keep(count++) = static_cast<TK>(i);
    }
    return count;
}

template <class T, class TB>
auto box_reader(const matrix_view<TB>& boxes) {
    return [boxes](std::uint32_t i) {
        const auto r = static_cast<index_t>(i);
        return box4<T>{{T(boxes(r, 0)), T(boxes(r, 1)), T(boxes(r, 2)), T(boxes(r, 3))}};
    };
}

}  // namespace detail

template <class TB, class TS, class TK, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TB>> && std::floating_point<std::remove_const_t<TS>> &&
             std::integral<TK> && (!std::is_const_v<TK>) && exec::is_policy_v<Exec>
index_t nms(const greedy_nms& policy, matrix_view<TB> boxes, vector_view<TS> scores, vector_view<TK> keep,
            const Exec& exec = {}) {
    constexpr const char* where = "focal::nms";
    validate(policy, where);
    detail::check_boxes_and_scores(boxes, scores, where);
    const index_t n = boxes.extent(0);
    detail::check_keep(keep, detail::output_capacity(n, policy.max_detections), n, where);

    using T = std::remove_const_t<TB>;
    const std::vector<std::uint32_t> order = detail::score_order(scores);
    const auto kept = detail::greedy_keep<T>(exec, n, order, detail::box_reader<T>(boxes),
                                             [](std::uint32_t) { return std::uint32_t(0); }, 1,
                                             detail::threshold_below<T>(policy.iou_threshold), policy.max_detections);
    return detail::write_in_order(order, kept, policy.max_detections, keep);
}

}  // namespace focal
