// fuzz/reference.hpp: brute-force references and helpers shared by the fuzz targets.
//
// The references are written from the libraries' documented contracts, one pair at a time with
// focal's scalar box functions (box/iou.hpp), so that they agree with the optimized drivers
// exactly, and are slow on purpose: nothing is pruned, sorted cleverly or vectorized.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <focal/box/box4.hpp>
#include <focal/box/iou.hpp>
#include <focal/core/execution.hpp>
#include <focal/core/thread_pool.hpp>
#include <focal/core/view.hpp>

namespace focal_fuzz {

using focal::index_t;

// exec::parallel on two threads (one pool worker plus the caller) and no size threshold, so that
// even the fuzzers' small inputs take the threaded paths.
inline focal::exec::parallel_policy parallel() {
    static focal::thread_pool pool(1);
    return {.threads = 2, .pool = &pool, .min_elements = 0};
}

// A rows x cols matrix (given row-major) in one of three layouts, so that the drivers' packed
// and strided paths both run: 0 row-major, 1 column-major, 2 rows padded with NaN.
template <class T>
class strided_matrix {
public:
    strided_matrix(const std::vector<T>& row_major, index_t rows, index_t cols, int layout) {
        if (layout == 1) {
            storage_.resize(static_cast<std::size_t>(rows * cols));
            for (index_t r = 0; r < rows; ++r)
                for (index_t c = 0; c < cols; ++c) storage_[c * rows + r] = row_major[r * cols + c];
            view_ = focal::matrix_view<T>(storage_.data(), {rows, cols}, {1, rows});
        } else if (layout == 2) {
            const index_t stride = cols + 3;
            storage_.assign(static_cast<std::size_t>(rows * stride), std::numeric_limits<T>::quiet_NaN());
            for (index_t r = 0; r < rows; ++r)
                for (index_t c = 0; c < cols; ++c) storage_[r * stride + c] = row_major[r * cols + c];
            view_ = focal::matrix_view<T>(storage_.data(), {rows, cols}, {stride, 1});
        } else {
            storage_ = row_major;
            view_ = focal::make_view(storage_.data(), rows, cols);
        }
    }
    strided_matrix(const strided_matrix&) = delete;  // the view points into storage_
    strided_matrix& operator=(const strided_matrix&) = delete;

    const focal::matrix_view<T>& view() const { return view_; }
    focal::matrix_view<const T> const_view() const { return view_; }
    T at(index_t r, index_t c) const { return view_(r, c); }

private:
    std::vector<T> storage_;
    focal::matrix_view<T> view_;
};

template <class T>
focal::box4<T> box_at(const std::vector<T>& boxes, std::int64_t i) {
    const auto k = static_cast<std::size_t>(4 * i);
    return {{boxes[k], boxes[k + 1], boxes[k + 2], boxes[k + 3]}};
}

// The candidates of an NMS: indices whose score is not NaN, score descending, ties by index.
template <class S>
std::vector<std::int64_t> score_order(const std::vector<S>& scores) {
    std::vector<std::int64_t> order;
    for (std::size_t i = 0; i < scores.size(); ++i)
        if (!std::isnan(scores[i])) order.push_back(static_cast<std::int64_t>(i));
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
        return scores[static_cast<std::size_t>(a)] > scores[static_cast<std::size_t>(b)];
    });
    return order;
}

// "IoU > threshold" as torchvision decides it: the IoU in the boxes' type, compared in double.
template <class T>
bool iou_above(const focal::box4<T>& a, const focal::box4<T>& b, double threshold) {
    return static_cast<double>(focal::iou(a, b)) > threshold;
}

// Greedy NMS over `order`: a box is kept unless an earlier kept box (of the same group, when
// groups are given) has IoU > threshold with it; at most max_detections kept (-1: no limit).
template <class T>
std::vector<std::int64_t> greedy_reference(const std::vector<T>& boxes, const std::vector<std::int64_t>& order,
                                           double threshold, const std::vector<std::int64_t>* groups,
                                           std::int64_t max_detections) {
    std::vector<std::int64_t> kept;
    for (const std::int64_t i : order) {
        if (max_detections >= 0 && static_cast<std::int64_t>(kept.size()) == max_detections) break;
        bool suppressed = false;
        for (const std::int64_t k : kept) {
            if (groups && (*groups)[static_cast<std::size_t>(k)] != (*groups)[static_cast<std::size_t>(i)]) continue;
            if (iou_above(box_at(boxes, k), box_at(boxes, i), threshold)) {
                suppressed = true;
                break;
            }
        }
        if (!suppressed) kept.push_back(i);
    }
    return kept;
}

// torchvision's _batched_nms_coordinate_trick, restated: every box + class * (max coordinate + 1),
// in T; any NaN coordinate makes the maximum (and so every shift) NaN.
template <class T>
std::vector<T> torchvision_shifted(const std::vector<T>& boxes, const std::vector<std::int64_t>& classes) {
    T max_coordinate = -std::numeric_limits<T>::infinity();
    for (const T v : boxes) {
        if (std::isnan(v) || std::isnan(max_coordinate)) max_coordinate = std::numeric_limits<T>::quiet_NaN();
        else max_coordinate = std::max(max_coordinate, v);
    }
    std::vector<T> shifted(boxes.size());
    for (std::size_t i = 0; i < classes.size(); ++i) {
        const T offset = static_cast<T>(classes[i]) * (max_coordinate + T(1));
        for (std::size_t c = 0; c < 4; ++c) shifted[4 * i + c] = boxes[4 * i + c] + offset;
    }
    return shifted;
}

// The largest T not above t (nms/detail/checks.hpp's threshold_below, restated).
template <class T>
T float_threshold_below(double t) {
    T f = static_cast<T>(t);
    if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<T>::infinity());
    return f;
}

}  // namespace focal_fuzz
