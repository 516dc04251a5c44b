// focal/nms/detail/checks.hpp: the input checks and small conversions shared by the NMS drivers.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include "../../core/checks.hpp"
#include "../../core/error.hpp"
#include "../../core/view.hpp"

namespace focal::detail {

template <class TB, class TS, class S>
void check_boxes_and_scores(const view<TB, 2, S>& boxes, const view<TS, 1, S>& scores, const char* where) {
    require_valid_extents(boxes, where, "boxes");
    require_extent(boxes, 1, 4, where, "boxes (N x 4, xyxy)");
    require_data(boxes, where, "boxes");
    const index_t n = boxes.extent(0);
    require(n <= std::numeric_limits<std::int32_t>::max(), where, "boxes", "at most 2147483647 rows", n);
    require(scores.extent(0) == n, where, "scores", "of extent N = " + std::to_string(n) + " (one per box)",
            shape_string(scores));
    require_data(scores, where, "scores");
}

// How many indices an NMS can write: every box, or max_detections (>= 0) of them.
inline index_t output_capacity(index_t n, index_t max_detections) noexcept {
    return max_detections >= 0 && max_detections < n ? max_detections : n;
}

// An output vector: at least `capacity` elements that do not share memory.
template <class T, class S>
void check_output(const view<T, 1, S>& out, index_t capacity, const char* where, const char* what) {
    require(out.extent(0) >= capacity, where, what,
            "of extent >= " + std::to_string(capacity) + " (one per box that may be kept)", shape_string(out));
    require_data(out, where, what);
    require_distinct(out, where, what);
}

// keep: integral, and able to hold every box index.
template <class TK, class S>
void check_keep(const view<TK, 1, S>& keep, index_t capacity, index_t n, const char* where) {
    check_output(keep, capacity, where, "keep");
    require(n == 0 || static_cast<std::uintmax_t>(n - 1) <= static_cast<std::uintmax_t>(std::numeric_limits<TK>::max()),
            where, "keep", "of an integer type that holds the largest box index " + std::to_string(n - 1),
            "a maximum of ", +std::numeric_limits<TK>::max());
}

inline void check_iou_threshold(double t, const char* where, std::string_view what = "iou_threshold") {
    require(t >= 0.0 && t <= 1.0, where, what, "in [0, 1]", t);  // NaN fails
}
inline void check_max_detections(index_t m, const char* where, std::string_view what = "max_detections") {
    require(m >= -1, where, what, ">= 0, or -1 for no limit", m);
}

// The largest T not above t: for an IoU x of type T, x > threshold_below<T>(t) exactly when
// double(x) > t, which is how torchvision compares its float IoU with its double threshold.
template <class T>
T threshold_below(double t) noexcept {
    T f = static_cast<T>(t);
    if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<T>::infinity());
    return f;
}

}  // namespace focal::detail
