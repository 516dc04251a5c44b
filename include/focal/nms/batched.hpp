// focal/nms/batched.hpp: class-aware ("batched") greedy NMS: boxes of different classes never
// suppress each other.
//
//   index_t count = focal::nms(focal::batched_nms{.iou_threshold = 0.5}, boxes, scores,
//                              classes /*N, any integer type*/, keep, exec);
// Two modes:
//   batched_mode::per_class (default): greedy_nms (greedy.hpp) within each class, on the boxes as
//     given. Output by score descending, equal scores in index order. Classes run in parallel
//     under exec::parallel; the result does not depend on the policy.
//   batched_mode::torchvision: torchvision 0.14's batched_nms on the CPU, result for result:
//     * N <= 1000 (boxes.numel() <= 4000): its coordinate trick. Every coordinate is shifted by
//       T(class) * (max coordinate + 1), in the box type T, and one greedy NMS runs on the shifted
//       boxes. The shift rounds the coordinates, so an IoU near the threshold can decide
//       differently from per_class, and boxes with negative coordinates can overlap a shifted
//       box of another class; any NaN coordinate makes every shift NaN and keeps every box.
//     * N > 1000: its per-class loop (the per_class sets), then its final order: torch's
//       sort(descending=True), which is not stable; focal reproduces it with std::sort on the same
//       sequence (exact when the standard library is libstdc++, as torch's on Linux).
//   Both modes drop NaN scores (torchvision would keep them); otherwise the lists are torchvision's.
// max_detections truncates the ordered list.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../box/box4.hpp"
#include "../core/error.hpp"
#include "../core/execution.hpp"
#include "../core/view.hpp"
#include "detail/checks.hpp"
#include "detail/greedy_run.hpp"
#include "detail/group_order.hpp"
#include "detail/score_order.hpp"
#include "greedy.hpp"

namespace focal {

enum class batched_mode { per_class, torchvision };

struct batched_nms {
    double iou_threshold = 0.5;  // suppress IoU > iou_threshold within a class, in [0, 1]
    index_t max_detections = -1;     // keep at most this many in all, -1: no limit
    batched_mode mode = batched_mode::per_class;
    index_t torchvision_trick_max_boxes = 1000;  // torchvision mode: coordinate trick up to this N (its CPU rule)
};

// prefix names the policy inside another ("nms." in retinanet_postprocess's errors).
inline void validate(const batched_nms& p, const char* where = "focal::batched_nms", const std::string& prefix = "") {
    detail::check_iou_threshold(p.iou_threshold, where, prefix + "iou_threshold");
    detail::check_max_detections(p.max_detections, where, prefix + "max_detections");
    detail::require(p.mode == batched_mode::per_class || p.mode == batched_mode::torchvision, where, prefix + "mode",
                    "per_class or torchvision", static_cast<int>(p.mode));
    detail::require(p.torchvision_trick_max_boxes >= 0, where, prefix + "torchvision_trick_max_boxes", ">= 0",
                    p.torchvision_trick_max_boxes);
}

namespace detail {

// torchvision's _batched_nms_coordinate_trick: boxes + (class * (max + 1)), in T, as torch does it
// (the offsets first, then one addition per coordinate).
template <class T, class TB, class TC>
std::vector<T> offset_boxes(const matrix_view<TB>& boxes, const vector_view<TC>& classes) {
    const index_t n = boxes.extent(0);
    T max_coordinate = -std::numeric_limits<T>::infinity();
    for (index_t i = 0; i < n; ++i)
        for (int c = 0; c < 4; ++c) {
            const T v = T(boxes(i, c));
            if (v != v || max_coordinate != max_coordinate) max_coordinate = std::numeric_limits<T>::quiet_NaN();
            else max_coordinate = std::max(max_coordinate, v);
        }
    const T step = max_coordinate + T(1);
    std::vector<T> offsets(static_cast<std::size_t>(n)), shifted(static_cast<std::size_t>(4 * n));
    for (index_t i = 0; i < n; ++i) offsets[i] = static_cast<T>(classes(i)) * step;
    for (index_t i = 0; i < n; ++i)
        for (int c = 0; c < 4; ++c) shifted[4 * i + c] = T(boxes(i, c)) + offsets[i];
    return shifted;
}

}  // namespace detail

template <class TB, class TS, class TC, class TK, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TB>> && std::floating_point<std::remove_const_t<TS>> &&
             std::integral<std::remove_const_t<TC>> && std::integral<TK> && (!std::is_const_v<TK>) &&
             exec::is_policy_v<Exec>
index_t nms(const batched_nms& policy, matrix_view<TB> boxes, vector_view<TS> scores, vector_view<TC> classes,
            vector_view<TK> keep, const Exec& exec = {}) {
    constexpr const char* where = "focal::nms";
    validate(policy, where);
    detail::check_boxes_and_scores(boxes, scores, where);
    const index_t n = boxes.extent(0);
    detail::require(classes.extent(0) == n, where, "classes", "of extent N = " + std::to_string(n) + " (one per box)",
                    detail::shape_string(classes));
    detail::require_data(classes, where, "classes");
    detail::check_keep(keep, detail::output_capacity(n, policy.max_detections), n, where);

    using T = std::remove_const_t<TB>;
    const T threshold = detail::threshold_below<T>(policy.iou_threshold);
    const std::vector<std::uint32_t> order = detail::score_order(scores);
    const bool torchvision = policy.mode == batched_mode::torchvision;

    if (torchvision && n <= policy.torchvision_trick_max_boxes) {
        const std::vector<T> shifted = detail::offset_boxes<T>(boxes, classes);
        const matrix_view<const T> view(shifted.data(), n, 4);
        const auto kept = detail::greedy_keep<T>(exec, n, order, detail::box_reader<T>(view),
                                                 [](std::uint32_t) { return std::uint32_t(0); }, 1, threshold,
                                                 policy.max_detections);
        return detail::write_in_order(order, kept, policy.max_detections, keep);
    }

    const detail::dense_classes dense = detail::make_dense_classes(classes);
    const auto group_of = [&dense](std::uint32_t i) { return dense.id[i]; };
    // Per class, at most max_detections can make the overall first max_detections.
    const auto kept = detail::greedy_keep<T>(exec, n, order, detail::box_reader<T>(boxes), group_of, dense.groups,
                                             threshold, torchvision ? -1 : policy.max_detections);
    if (!torchvision) return detail::write_in_order(order, kept, policy.max_detections, keep);

    // torchvision's vanilla path: keep_indices (ascending) sorted by scores[keep_indices] with
    // torch's unstable descending sort, i.e. std::sort on (score, index) pairs.
    using S = std::remove_const_t<TS>;
    std::vector<std::pair<S, std::int64_t>> ranked;
    for (index_t i = 0; i < n; ++i)
        if (kept[i]) ranked.emplace_back(scores(i), i);
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
        return (!std::isnan(a.first) && std::isnan(b.first)) || a.first > b.first;
    });
    const index_t count = detail::output_capacity(static_cast<index_t>(ranked.size()), policy.max_detections);
    for (index_t k = 0; k < count; ++k) keep(k) = static_cast<TK>(ranked[k].second);
    return count;
}

}  // namespace focal
