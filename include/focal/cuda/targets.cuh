// focal/cuda/targets.cuh: per-anchor labels and box-regression targets on the device.
//
//   std::size_t build_targets_workspace_size(A, B = 1)
//   build_targets(coder, matches /*A*/, anchors /*A x 4*/, gt_boxes /*G x 4*/, gt_labels /*G*/,
//                 labels /*A, out*/, box_targets /*A x 4, out*/, num_positives /*1, out*/, ws, stream)
//   build_targets_batched(coder, matches /*B x A*/, anchors /*A x 4*/, gt_boxes /*B x Gmax x 4*/,
//                         gt_counts /*B or {}*/, gt_labels /*B x Gmax*/, labels /*B x A*/,
//                         box_targets /*B x A x 4*/, num_positives /*B*/, ws, stream)
//   std::size_t assign_targets_workspace_size(A, G, C = 0)
//   assign_targets(matcher, coder, anchors, gt_boxes, crowd_boxes /*or {}*/, gt_labels, labels,
//                  box_targets, num_positives, ws, stream)        = match_anchors, then build_targets
//   std::size_t assign_targets_batched_workspace_size(B, A, Gmax, Cmax = 0)
//   assign_targets_batched(matcher, coder, anchors, gt_boxes, gt_counts, crowd_boxes, crowd_counts,
//                          gt_labels, labels, box_targets, num_positives, ws, stream)
// As the host focal::build_targets (assign/targets.hpp): labels[i] = gt_labels[matches[i]] for a
// positive, else matches[i] (background_label -1, ignored_label -2); box_targets[i] =
// coder.encode(gt_boxes[matches[i]], anchors[i]) in box_targets' type for a positive, 0 elsewhere;
// num_positives (any integer type, device memory) = the number of positives, summed per block then
// over blocks (deterministic). labels may be the matches' own memory (each thread reads its code
// before writing). Encoding agrees with the host within float rounding (see coder.cuh); labels and
// counts are exact. Data checks the host makes but the device cannot (the codes and labels live in
// device memory): a code outside [-2, G) is written as ignored_label with zero targets and not
// counted (the host throws); gt labels are copied as they are (the host requires >= 0). In the
// batched form image b's codes are checked against gt_counts[b] (clamped to [0, Gmax]).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "../assign/detail/match_anchor.hpp"
#include "../assign/max_iou_matcher.hpp"
#include "../box/box4.hpp"
#include "../core/checks.hpp"
#include "../core/labels.hpp"
#include "launch.cuh"
#include "match.cuh"
#include "view.cuh"
#include "workspace.cuh"

namespace focal::cuda {

namespace detail::targets {

inline constexpr int block = 256;

inline unsigned blocks_per_image(index_t anchors) { return grid_size(anchors, block); }

struct targets_plan {
    std::size_t partial, bytes;
};
inline targets_plan plan_targets(index_t images, index_t anchors) {
    workspace_plan p;
    const std::size_t partial = p.reserve<long long>(images * blocks_per_image(anchors));
    return {partial, p.bytes()};
}

template <class Coder, class TM, class TA, class TG, class TN, class TL, class TLO, class TB>
struct targets_args {
    Coder coder;
    device_matrix_view<TM> matches;       // B x A
    device_matrix_view<TA> anchors;       // A x 4
    device_tensor3_view<TG> gt;           // B x G x 4
    device_vector_view<TN> gt_counts;     // B or null
    device_matrix_view<TL> gt_labels;     // B x G
    device_matrix_view<TLO> labels;       // B x A
    device_tensor3_view<TB> box_targets;  // B x A x 4
    long long* partial;                   // B x gridDim.x
};

template <class Args>
__global__ void __launch_bounds__(block) targets_kernel(Args p) {
    using namespace focal::detail::assign_impl;
    using T = std::remove_cvref_t<decltype(p.box_targets(0, 0, 0))>;
    using TLO = std::remove_cvref_t<decltype(p.labels(0, 0))>;
    const index_t b = blockIdx.y, n = p.anchors.extent(0);
    const index_t m = match::rows_of(p.gt_counts, b, p.gt.extent(1));
    long long positives = 0;  // thread 0's running block total
    // Every thread runs the same number of iterations: __syncthreads_count is block-wide.
    for (index_t t0 = static_cast<index_t>(blockIdx.x) * block; t0 < n; t0 += static_cast<index_t>(gridDim.x) * block) {
        const index_t i = t0 + threadIdx.x;
        bool positive = false;
        if (i < n) {
            const std::int64_t code = target_code(static_cast<std::int64_t>(p.matches(b, i)), m);
            box4<T> d{{T(0), T(0), T(0), T(0)}};
            if (code >= 0) {
                positive = true;
                const auto label = p.gt_labels(b, code);
                d = p.coder.encode(match::load_box<T>(p.gt, b, code), match::load_box<T>(p.anchors, i));
                p.labels(b, i) = static_cast<TLO>(label);
            } else {
                p.labels(b, i) = static_cast<TLO>(code);
            }
            for (int c = 0; c < 4; ++c) p.box_targets(b, i, c) = d[c];
        }
        const int count = __syncthreads_count(positive);
        if (threadIdx.x == 0) positives += count;
    }
    if (threadIdx.x == 0) p.partial[b * gridDim.x + blockIdx.x] = positives;
}

// num_positives[b] = sum of image b's block totals (one block per image).
template <class TP>
__global__ void __launch_bounds__(block) sum_positives(const long long* partial, unsigned blocks,
                                                       device_vector_view<TP> num_positives) {
    __shared__ long long s[block];
    const index_t b = blockIdx.x;
    long long v = 0;
    for (unsigned k = threadIdx.x; k < blocks; k += block) v += partial[b * blocks + k];
    s[threadIdx.x] = v;
    __syncthreads();
    for (int half = block / 2; half > 0; half /= 2) {
        if (static_cast<int>(threadIdx.x) < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) num_positives(b) = static_cast<TP>(s[0]);
}

template <class Coder, class TM, class TA, class TG, class TN, class TL, class TLO, class TB, class TP>
void checked_targets(const Coder& coder, device_matrix_view<TM> matches, device_matrix_view<TA> anchors,
                     device_tensor3_view<TG> gt, device_vector_view<TN> gt_counts, device_matrix_view<TL> gt_labels,
                     device_matrix_view<TLO> labels, device_tensor3_view<TB> box_targets,
                     device_vector_view<TP> num_positives, const workspace& ws, cudaStream_t stream,
                     const char* where, bool batched, bool launch_kernels = true) {
    const index_t images = gt.extent(0), n = anchors.extent(0), g = gt.extent(1);
    focal::detail::require(images <= 65535, where, "gt_boxes", "at most 65535 images (a grid's y extent)", images);
    focal::detail::require_valid_extents(matches, where, "matches");
    focal::detail::require(matches.extent(0) == images && matches.extent(1) == n, where, "matches",
                           std::string(batched ? "of shape [B x A] = [" + std::to_string(images) + " x "
                                               : "of extent A = [") +
                               std::to_string(n) + "] (one per anchor)",
                           focal::detail::shape_string(matches));
    focal::detail::require_data(matches, where, "matches");
    focal::detail::require_valid_extents(gt_labels, where, "gt_labels");
    focal::detail::require(gt_labels.extent(0) == images && gt_labels.extent(1) == g, where, "gt_labels",
                           "one per gt box (" + std::to_string(g) + (batched ? " per image)" : ")"),
                           focal::detail::shape_string(gt_labels));
    focal::detail::require_data(gt_labels, where, "gt_labels");
    match::check_output(labels, images, n, where, "labels", batched ? "[B x A]" : "[A] (one per anchor)");
    {  // labels over the matches: the same elements (same size, same strides) or disjoint memory;
       // e.g. int64 labels over int32 codes would overwrite codes other threads still read
        const auto range = [](const auto& v) {
            using E = std::remove_cvref_t<decltype(*v.data_handle())>;
            std::intptr_t lo = 0, hi = 0;
            for (std::size_t r = 0; r < 2; ++r) {
                const auto step = static_cast<std::intptr_t>((v.extent(r) - 1) * v.stride(r)) * static_cast<std::intptr_t>(sizeof(E));
                (step < 0 ? lo : hi) += step;
            }
            const auto base = static_cast<std::intptr_t>(reinterpret_cast<std::uintptr_t>(v.data_handle()));
            return std::pair<std::intptr_t, std::intptr_t>{base + lo, base + hi + static_cast<std::intptr_t>(sizeof(E))};
        };
        bool same = sizeof(TM) == sizeof(TLO) &&
                    static_cast<const void*>(matches.data_handle()) == static_cast<const void*>(labels.data_handle());
        for (std::size_t r = 0; r < 2; ++r) same = same && (labels.extent(r) <= 1 || matches.stride(r) == labels.stride(r));
        if (!same && labels.size() != 0) {
            const auto a = range(labels), c = range(matches);
            focal::detail::require(a.second <= c.first || c.second <= a.first, where, "labels",
                                   "the matches' own elements (same type size and strides) or memory disjoint from them",
                                   "a view that partly overlaps matches");
        }
    }
    focal::detail::require_valid_extents(box_targets, where, "box_targets");
    focal::detail::require(box_targets.extent(0) == images && box_targets.extent(1) == n &&
                               box_targets.extent(2) == 4,
                           where, "box_targets",
                           batched ? "of shape [B x A x 4] = [" + std::to_string(images) + " x " + std::to_string(n) +
                                         " x 4]"
                                   : "of shape [A x 4] = [" + std::to_string(n) + " x 4]",
                           focal::detail::shape_string(box_targets));
    focal::detail::require_data(box_targets, where, "box_targets");
    // Each image's [A x 4] rows do not overlap, and images follow one another.
    focal::detail::require_non_overlapping(
        device_matrix_view<TB>(box_targets.data_handle(), {n, 4}, {box_targets.stride(1), box_targets.stride(2)}),
        where, "box_targets");
    // An image spans (A - 1) |stride(1)| + 3 |stride(2)| + 1 elements (stride(2) counts: a column-major
    // image with stride(0) = A would overlap the next one).
    const auto magnitude = [](index_t v) { return v < 0 ? -v : v; };
    const index_t span = n == 0 ? 0 : (n - 1) * magnitude(box_targets.stride(1)) + 3 * magnitude(box_targets.stride(2)) + 1;
    focal::detail::require(images <= 1 || n == 0 || magnitude(box_targets.stride(0)) >= span, where, "box_targets",
                           "a view whose images do not overlap (|stride(0)| >= " + std::to_string(span) + ")",
                           box_targets.stride(0));
    focal::detail::require_valid_extents(num_positives, where, "num_positives");
    focal::detail::require_extent(num_positives, 0, images, where,
                                  batched ? "num_positives (one per image)" : "num_positives (one element)");
    focal::detail::require_data(num_positives, where, "num_positives");
    // One count per image: a 0 stride would make several images' blocks write one element.
    focal::detail::require(images <= 1 || num_positives.stride(0) != 0, where, "num_positives",
                           "a view whose elements do not overlap", "stride 0");
    match::check_counts(gt_counts, images, where, "gt_counts");
    const targets_plan plan = plan_targets(images, n);
    cuda::detail::require_workspace(ws, plan.bytes, where);
    if (images == 0) return;
    const targets_args<Coder, TM, TA, TG, TN, TL, TLO, TB> args{
        coder, matches, anchors, gt, gt_counts, gt_labels, labels, box_targets, workspace_at<long long>(ws, plan.partial)};
    if (!launch_kernels) return;
    const unsigned blocks = blocks_per_image(n);  // >= 1: an image without anchors writes a 0 total
    const dim3 grid(blocks, static_cast<unsigned>(images));
    targets_kernel<<<grid, block, 0, stream>>>(args);
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess)
        throw runtime_error(status, std::string(where) + ": kernel launch failed: " + cudaGetErrorName(status) + " (" +
                                        cudaGetErrorString(status) + ")");
    launch(where, sum_positives<TP>, static_cast<unsigned>(images), block, 0, stream, args.partial, blocks,
           num_positives);
}

}  // namespace detail::targets

namespace detail::targets {
// The single-image checks, then the batched ones on [1 x ...] views (and the launch if asked).
template <class Coder, class TM, class TA, class TG, class TL, class TLO, class TB, class TP>
void checked_single(const Coder& coder, device_vector_view<TM> matches, device_matrix_view<TA> anchors,
                    device_matrix_view<TG> gt_boxes, device_vector_view<TL> gt_labels, device_vector_view<TLO> labels,
                    device_matrix_view<TB> box_targets, device_vector_view<TP> num_positives, const workspace& ws,
                    cudaStream_t stream, const char* where, bool launch_kernels) {
    validate(coder, where);
    match::check_boxes(anchors, where, "anchors (A x 4)");
    match::check_boxes(gt_boxes, where, "gt_boxes (G x 4)");
    focal::detail::require_valid_extents(matches, where, "matches");
    focal::detail::require_extent(matches, 0, anchors.extent(0), where, "matches (one per anchor)");
    focal::detail::require_valid_extents(labels, where, "labels");
    focal::detail::require_extent(labels, 0, anchors.extent(0), where, "labels (one per anchor)");
    focal::detail::require_valid_extents(gt_labels, where, "gt_labels");
    focal::detail::require_extent(gt_labels, 0, gt_boxes.extent(0), where, "gt_labels (one per gt box)");
    focal::detail::require_valid_extents(box_targets, where, "box_targets");
    focal::detail::require(box_targets.extent(0) == anchors.extent(0) && box_targets.extent(1) == 4, where,
                           "box_targets", "of shape [A x 4] = [" + std::to_string(anchors.extent(0)) + " x 4]",
                           focal::detail::shape_string(box_targets));
    focal::detail::require_valid_extents(num_positives, where, "num_positives");
    focal::detail::require_extent(num_positives, 0, 1, where, "num_positives (one element)");
    const device_tensor3_view<TB> targets3(box_targets.data_handle(), {1, box_targets.extent(0), 4},
                                           {0, box_targets.stride(0), box_targets.stride(1)});
    checked_targets(coder, match::as_batch(matches), anchors, match::as_batch(gt_boxes),
                    device_vector_view<const int>{}, match::as_batch(gt_labels), match::as_batch(labels), targets3,
                    num_positives, ws, stream, where, false, launch_kernels);
}
}  // namespace detail::targets

inline std::size_t build_targets_workspace_size(index_t anchors, index_t images = 1) {
    return detail::targets::plan_targets(images < 0 ? 0 : images, anchors < 0 ? 0 : anchors).bytes;
}

template <class Coder, class TM, class TA, class TG, class TN, class TL, class TLO, class TB, class TP>
    requires std::integral<std::remove_const_t<TM>> && std::integral<std::remove_const_t<TL>> &&
             std::signed_integral<TLO> && std::floating_point<TB> && std::integral<TP> &&
             std::integral<std::remove_const_t<TN>>
void build_targets_batched(const Coder& coder, device_matrix_view<TM> matches, device_matrix_view<TA> anchors,
                           device_tensor3_view<TG> gt_boxes, device_vector_view<TN> gt_counts,
                           device_matrix_view<TL> gt_labels, device_matrix_view<TLO> labels,
                           device_tensor3_view<TB> box_targets, device_vector_view<TP> num_positives, workspace ws,
                           cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::build_targets_batched";
    validate(coder, where);
    detail::match::check_boxes(anchors, where, "anchors (A x 4)");
    detail::match::check_boxes(gt_boxes, where, "gt_boxes (B x Gmax x 4)");
    detail::targets::checked_targets(coder, matches, anchors, gt_boxes, gt_counts, gt_labels, labels, box_targets,
                                     num_positives, ws, stream, where, true);
}

template <class Coder, class TM, class TA, class TG, class TL, class TLO, class TB, class TP>
    requires std::integral<std::remove_const_t<TM>> && std::integral<std::remove_const_t<TL>> &&
             std::signed_integral<TLO> && std::floating_point<TB> && std::integral<TP>
void build_targets(const Coder& coder, device_vector_view<TM> matches, device_matrix_view<TA> anchors,
                   device_matrix_view<TG> gt_boxes, device_vector_view<TL> gt_labels, device_vector_view<TLO> labels,
                   device_matrix_view<TB> box_targets, device_vector_view<TP> num_positives, workspace ws,
                   cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::build_targets";
    detail::targets::checked_single(coder, matches, anchors, gt_boxes, gt_labels, labels, box_targets, num_positives,
                                    ws, stream, where, true);
}

// ---- match, then build targets ----

namespace detail::targets {
struct assign_plan {
    std::size_t matches, match_ws, targets_ws, bytes, match_bytes, targets_bytes;
};
inline assign_plan plan_assign(index_t images, index_t anchors, index_t gt, index_t crowd) {
    workspace_plan p;
    const std::size_t matches = p.reserve<std::int32_t>(images * anchors);
    const std::size_t match_bytes = match_anchors_batched_workspace_size(images, anchors, gt, crowd);
    const std::size_t match_ws = p.reserve_bytes(match_bytes);
    const std::size_t targets_bytes = build_targets_workspace_size(anchors, images);
    const std::size_t targets_ws = p.reserve_bytes(targets_bytes);
    return {matches, match_ws, targets_ws, p.bytes(), match_bytes, targets_bytes};
}
inline workspace sub_workspace(const workspace& ws, std::size_t offset, std::size_t bytes) {
    return {bytes == 0 ? nullptr : workspace_at<char>(ws, offset), bytes};
}
}  // namespace detail::targets

inline std::size_t assign_targets_batched_workspace_size(index_t images, index_t anchors, index_t max_gt,
                                                          index_t max_crowd = 0) {
    return detail::targets::plan_assign(images < 0 ? 0 : images, anchors < 0 ? 0 : anchors, max_gt < 0 ? 0 : max_gt,
                                        max_crowd)
        .bytes;
}
inline std::size_t assign_targets_workspace_size(index_t anchors, index_t gt, index_t crowd = 0) {
    return assign_targets_batched_workspace_size(1, anchors, gt, crowd);
}

// The codes go through int32 scratch in the workspace (as the host's assign_targets).
template <class Coder, class TA, class TG, class TN, class TC, class TNC, class TL, class TLO, class TB, class TP>
void assign_targets_batched(const max_iou_matcher& matcher, const Coder& coder, device_matrix_view<TA> anchors,
                            device_tensor3_view<TG> gt_boxes, device_vector_view<TN> gt_counts,
                            device_tensor3_view<TC> crowd_boxes, device_vector_view<TNC> crowd_counts,
                            device_matrix_view<TL> gt_labels, device_matrix_view<TLO> labels,
                            device_tensor3_view<TB> box_targets, device_vector_view<TP> num_positives, workspace ws,
                            cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::assign_targets_batched";
    const index_t images = std::max<index_t>(0, gt_boxes.extent(0)), n = std::max<index_t>(0, anchors.extent(0));
    const auto plan = detail::targets::plan_assign(images, n, std::max<index_t>(0, gt_boxes.extent(1)),
                                                   std::max<index_t>(0, crowd_boxes.extent(1)));
    cuda::detail::require_workspace(ws, plan.bytes, where);
    const device_matrix_view<std::int32_t> matches(workspace_at<std::int32_t>(ws, plan.matches), images, n);
    // Every check of both steps before anything is launched (match_anchors_batched checks its own).
    validate(coder, where);
    detail::match::check_boxes(anchors, where, "anchors (A x 4)");
    detail::match::check_boxes(gt_boxes, where, "gt_boxes (B x Gmax x 4)");
    detail::targets::checked_targets(coder, device_matrix_view<const std::int32_t>(matches), anchors, gt_boxes,
                                     gt_counts, gt_labels, labels, box_targets, num_positives,
                                     detail::targets::sub_workspace(ws, plan.targets_ws, plan.targets_bytes), stream,
                                     where, true, false);
    match_anchors_batched(matcher, anchors, gt_boxes, gt_counts, crowd_boxes, crowd_counts, batch_match_output{matches},
                          detail::targets::sub_workspace(ws, plan.match_ws, plan.match_bytes), stream);
    build_targets_batched(coder, device_matrix_view<const std::int32_t>(matches), anchors, gt_boxes, gt_counts,
                          gt_labels, labels, box_targets, num_positives,
                          detail::targets::sub_workspace(ws, plan.targets_ws, plan.targets_bytes), stream);
}

template <class Coder, class TA, class TG, class TC, class TL, class TLO, class TB, class TP>
void assign_targets(const max_iou_matcher& matcher, const Coder& coder, device_matrix_view<TA> anchors,
                    device_matrix_view<TG> gt_boxes, device_matrix_view<TC> crowd_boxes,
                    device_vector_view<TL> gt_labels, device_vector_view<TLO> labels,
                    device_matrix_view<TB> box_targets, device_vector_view<TP> num_positives, workspace ws,
                    cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::assign_targets";
    const index_t n = std::max<index_t>(0, anchors.extent(0));
    const auto plan = detail::targets::plan_assign(1, n, std::max<index_t>(0, gt_boxes.extent(0)),
                                                   std::max<index_t>(0, crowd_boxes.extent(0)));
    cuda::detail::require_workspace(ws, plan.bytes, where);
    const device_vector_view<std::int32_t> matches(workspace_at<std::int32_t>(ws, plan.matches), n);
    detail::targets::checked_single(coder, device_vector_view<const std::int32_t>(matches), anchors, gt_boxes,
                                    gt_labels, labels, box_targets, num_positives,
                                    detail::targets::sub_workspace(ws, plan.targets_ws, plan.targets_bytes), stream,
                                    where, false);
    match_anchors(matcher, anchors, gt_boxes, crowd_boxes, match_output{matches},
                  detail::targets::sub_workspace(ws, plan.match_ws, plan.match_bytes), stream);
    build_targets(coder, device_vector_view<const std::int32_t>(matches), anchors, gt_boxes, gt_labels, labels,
                  box_targets, num_positives, detail::targets::sub_workspace(ws, plan.targets_ws, plan.targets_bytes),
                  stream);
}

}  // namespace focal::cuda
