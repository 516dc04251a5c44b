// focal/cuda/nms.cuh: greedy and class-aware (batched) NMS on the GPU, result for result the host's
// nms/greedy.hpp and nms/batched.hpp.
//
//   std::size_t bytes = focal::cuda::nms_workspace_size(n);          // host only
//   focal::cuda::nms(focal::greedy_nms{.iou_threshold = 0.5}, boxes /*N x 4 xyxy*/, scores /*N*/,
//                    keep /*int32, >= N (or max_detections)*/, keep_count /*int32, 1*/, ws, stream);
//   std::size_t bytes = focal::cuda::batched_nms_workspace_size(n);
//   focal::cuda::nms(focal::batched_nms{...}, boxes, scores, classes /*N, integer*/, keep, keep_count, ws, stream);
//
// keep[0 .. *keep_count) receives the kept indices in the host's order; *keep_count is written on
// the device (no host round trip, no synchronization). Boxes and scores are float (device).
//
// How: (1) sort (score_sort_key, index) pairs with CUB's stable radix sort: score descending, equal
// scores in index order, -0 as +0, NaN last and never kept (the host's score_order); (2) a bitmask
// of N x ceil(N / 64) 64-bit words, one thread per (row, word), row r's bit c set when sorted box r
// suppresses sorted box c > r (nms/detail/bitmask.hpp: the host's IoU, bit for bit, and its
// "active" rule); (3) one block per problem walks the words in order (resolve_word) and ORs each
// kept row into the later words. Deterministic: no atomics, grids from N only.
//
// batched_nms: per_class mode = the same walk with suppression only between equal class ids (the
// greedy order across classes is the global score order, which is per-class greedy). torchvision
// mode: N <= torchvision_trick_max_boxes runs its coordinate trick (boxes shifted by
// float(class) * (max coordinate + 1), one rounding each, as the host); larger N runs per_class,
// then orders the kept boxes by score descending with ties in index order, where the host
// reproduces torch's unstable std::sort: the kept SET is the host's, the order differs only among
// kept boxes of exactly equal score (documented difference).
//
// Memory: the mask is N * ceil(N / 64) * 8 bytes: 20k boxes 50 MB, 100k boxes 1.25 GB (fine on an
// H100, but quadratic); N is limited to 64 * 65535 = 4,194,240 boxes (the mask grid's y extent).
#pragma once

#include <cuda_runtime.h>

#include <cub/cub.cuh>

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "../core/checks.hpp"
#include "../core/error.hpp"
#include "../nms/batched.hpp"
#include "../nms/detail/bitmask.hpp"
#include "../nms/detail/checks.hpp"
#include "../nms/greedy.hpp"
#include "detail/nms_kernels.cuh"
#include "launch.cuh"
#include "view.cuh"
#include "workspace.cuh"

namespace focal::cuda {

namespace detail {

struct nms_layout {
    std::size_t keys_in = 0, keys_out = 0, order_in = 0, order_out = 0, sorted = 0, classes = 0, step = 0, mask = 0,
                removed = 0, cub = 0, cub_bytes = 0, bytes = 0;
};

inline nms_layout plan_nms(index_t n, bool with_classes) {
    focal::detail::require(n >= 0 && n <= nms_max_boxes, "focal::cuda::nms_workspace_size", "n",
                           "in [0, " + std::to_string(nms_max_boxes) + "]", n);
    nms_layout l;
    workspace_plan p;
    const index_t words = focal::detail::mask_words(n);
    l.keys_in = p.reserve<std::uint32_t>(n);
    l.keys_out = p.reserve<std::uint32_t>(n);
    l.order_in = p.reserve<std::int32_t>(n);
    l.order_out = p.reserve<std::int32_t>(n);
    l.sorted = p.reserve<box4<float>>(n);
    l.classes = p.reserve<std::int64_t>(with_classes ? n : 0);
    l.step = p.reserve<float>(1);
    l.mask = p.reserve_bytes(static_cast<std::size_t>(n) * static_cast<std::size_t>(words) * sizeof(std::uint64_t));
    l.removed = p.reserve<std::uint64_t>(words);
    if (n > 0) {
        // CUB's size query (a runtime query, no device work).
        FOCAL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, l.cub_bytes, static_cast<const std::uint32_t*>(nullptr),
                                                         static_cast<std::uint32_t*>(nullptr),
                                                         static_cast<const std::int32_t*>(nullptr),
                                                         static_cast<std::int32_t*>(nullptr), static_cast<int>(n)));
    }
    l.cub = p.reserve_bytes(l.cub_bytes);
    l.bytes = p.bytes();
    return l;
}

template <class TK>
struct nms_emit_keep {
    TK* keep;
    index_t stride;
    const std::int32_t* order;
    __device__ void operator()(index_t, index_t position, index_t row) const {
        keep[position * stride] = static_cast<TK>(order[row]);
    }
};
struct nms_done_count {
    std::int32_t* count;
    __device__ void operator()(index_t, index_t total) const { *count = static_cast<std::int32_t>(total); }
};

template <class TK>
void check_keep_count(const device_vector_view<TK>& keep_count, const char* where) {
    focal::detail::require(keep_count.extent(0) >= 1, where, "keep_count", "of extent >= 1",
                           focal::detail::shape_string(keep_count));
    focal::detail::require_data(keep_count, where, "keep_count");
}

// The shared driver: classes == nullptr for greedy NMS.
template <class TB, class TS, class TC, class TK>
void run_nms(const char* where, device_matrix_view<TB> boxes, device_vector_view<TS> scores, const TC* classes,
             index_t class_stride, bool trick, float t, index_t max_detections, device_vector_view<TK> keep,
             device_vector_view<std::int32_t> keep_count, const workspace& ws, cudaStream_t stream) {
    const index_t n = boxes.extent(0);
    const nms_layout l = plan_nms(n, classes != nullptr);
    require_workspace(ws, l.bytes, where);
    if (n == 0 || max_detections == 0) {
        FOCAL_CUDA_CHECK(cudaMemsetAsync(keep_count.data_handle(), 0, sizeof(std::int32_t), stream));
        return;
    }
    auto* keys_in = workspace_at<std::uint32_t>(ws, l.keys_in);
    auto* keys_out = workspace_at<std::uint32_t>(ws, l.keys_out);
    auto* order_in = workspace_at<std::int32_t>(ws, l.order_in);
    auto* order_out = workspace_at<std::int32_t>(ws, l.order_out);
    auto* sorted = workspace_at<box4<float>>(ws, l.sorted);
    auto* sorted_class = classes != nullptr ? workspace_at<std::int64_t>(ws, l.classes) : nullptr;
    auto* step = workspace_at<float>(ws, l.step);
    auto* mask = workspace_at<std::uint64_t>(ws, l.mask);
    auto* removed = workspace_at<std::uint64_t>(ws, l.removed);
    const TB* b = boxes.data_handle();
    launch(where, nms_keys_kernel<TS>, grid_size(n), default_block_size, 0, stream, scores.data_handle(),
           scores.stride(0), n, keys_in, order_in);
    std::size_t cub_bytes = l.cub_bytes;
    FOCAL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(workspace_at<void>(ws, l.cub), cub_bytes, keys_in, keys_out, order_in,
                                                     order_out, static_cast<int>(n), 0, 32, stream));
    if (trick)
        launch(where, nms_max_coordinate_kernel<TB>, 1, nms_walk_threads, 0, stream, b, boxes.stride(0), boxes.stride(1),
               n, step);
    launch(where, nms_sorted_boxes_kernel<TB, TC>, grid_size(n), default_block_size, 0, stream, b, boxes.stride(0),
           boxes.stride(1), classes, class_stride, static_cast<const std::int32_t*>(order_out), n,
           static_cast<const float*>(trick ? step : nullptr), sorted, sorted_class);
    launch_nms_mask(where, sorted, sorted_class, n, n, nullptr, 1, t, mask, stream);
    launch(where, nms_walk_kernel<nms_emit_keep<TK>, nms_done_count>, 1, nms_walk_threads, 0, stream,
           static_cast<const std::uint64_t*>(mask), static_cast<const std::uint32_t*>(keys_out), n, n,
           static_cast<const std::int32_t*>(nullptr), focal::detail::mask_words(n), max_detections, removed,
           nms_emit_keep<TK>{keep.data_handle(), keep.stride(0), order_out}, nms_done_count{keep_count.data_handle()});
}

template <class TB, class TS, class TK>
void check_nms_args(const char* where, const device_matrix_view<TB>& boxes, const device_vector_view<TS>& scores,
                    index_t max_detections, const device_vector_view<TK>& keep,
                    const device_vector_view<std::int32_t>& keep_count) {
    focal::detail::check_boxes_and_scores(boxes, scores, where);
    const index_t n = boxes.extent(0);
    focal::detail::require(n <= nms_max_boxes, where, "boxes", "at most " + std::to_string(nms_max_boxes) + " rows", n);
    focal::detail::check_keep(keep, focal::detail::output_capacity(n, max_detections), n, where);
    check_keep_count(keep_count, where);
}

}  // namespace detail

// Scratch bytes for nms (greedy) of n boxes.
inline std::size_t nms_workspace_size(index_t n) { return detail::plan_nms(n, false).bytes; }
// Scratch bytes for class-aware nms of n boxes.
inline std::size_t batched_nms_workspace_size(index_t n) { return detail::plan_nms(n, true).bytes; }

// Greedy NMS (host: nms/greedy.hpp). keep: int32 (or wider) indices, extent >= min(N, max_detections).
template <class TB, class TS, class TK>
    requires std::is_same_v<std::remove_const_t<TB>, float> && std::is_same_v<std::remove_const_t<TS>, float> &&
             std::integral<TK> && (!std::is_const_v<TK>)
void nms(const greedy_nms& policy, device_matrix_view<TB> boxes, device_vector_view<TS> scores,
         device_vector_view<TK> keep, device_vector_view<std::int32_t> keep_count, const workspace& ws,
         cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::nms";
    validate(policy, where);
    detail::check_nms_args(where, boxes, scores, policy.max_detections, keep, keep_count);
    detail::run_nms(where, boxes, scores, static_cast<const std::int32_t*>(nullptr), 0, false,
                    focal::detail::threshold_below<float>(policy.iou_threshold), policy.max_detections, keep, keep_count, ws,
                    stream);
}

// Class-aware NMS (host: nms/batched.hpp), both modes; see the header comment for the order of
// equal scores in torchvision mode above torchvision_trick_max_boxes.
template <class TB, class TS, class TC, class TK>
    requires std::is_same_v<std::remove_const_t<TB>, float> && std::is_same_v<std::remove_const_t<TS>, float> &&
             std::integral<std::remove_const_t<TC>> && std::integral<TK> && (!std::is_const_v<TK>)
void nms(const batched_nms& policy, device_matrix_view<TB> boxes, device_vector_view<TS> scores,
         device_vector_view<TC> classes, device_vector_view<TK> keep, device_vector_view<std::int32_t> keep_count,
         const workspace& ws, cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::nms";
    validate(policy, where);
    detail::check_nms_args(where, boxes, scores, policy.max_detections, keep, keep_count);
    const index_t n = boxes.extent(0);
    focal::detail::require(classes.extent(0) == n, where, "classes",
                           "of extent N = " + std::to_string(n) + " (one per box)", focal::detail::shape_string(classes));
    focal::detail::require_data(classes, where, "classes");
    const bool trick = policy.mode == batched_mode::torchvision && n <= policy.torchvision_trick_max_boxes;
    detail::run_nms(where, boxes, scores, classes.data_handle(), classes.stride(0), trick,
                    focal::detail::threshold_below<float>(policy.iou_threshold), policy.max_detections, keep, keep_count, ws,
                    stream);
}

}  // namespace focal::cuda
