// focal/cuda/match.cuh: pairwise IoU and the max-IoU anchor matcher on the device.
//
//   pairwise_iou(a /*M x 4*/, b /*N x 4*/, out /*M x N*/, stream)
//       out(i, j) = IoU(a_i, b_j) computed in out's type, torchvision's box_iou layout; the bits of
//       the host focal::pairwise_iou (no FMA contraction: box/overlap.hpp's unfused_iou).
//   std::size_t match_anchors_workspace_size(A, G, C = 0)
//   match_anchors(matcher, anchors /*A x 4*/, gt_boxes /*G x 4*/, [crowd_boxes /*C x 4, or {}*/,]
//                 match_output{matches /*A, signed integers*/[, max_iou /*A*/]}, ws, stream)
//       the codes of the host focal::match_anchors (assign/match.hpp), code for code: gt index,
//       background_label (-1), ignored_label (-2); torch.max's first-index ties; low-quality
//       matches with ties, the zero-IoU guard and low_quality_iou_threshold; crowd regions
//       (crowd_iof_threshold); non-finite anchors -> -2; no gt -> every anchor -1 (crowd and
//       non-finite anchors still -2). max_iou as the host's out.max_iou.
//   std::size_t match_anchors_batched_workspace_size(B, A, Gmax, Cmax = 0)
//   match_anchors_batched(matcher, anchors /*A x 4, shared*/, gt_boxes /*B x Gmax x 4*/,
//                         gt_counts /*B or {}*/, crowd_boxes /*B x Cmax x 4 or {}*/,
//                         crowd_counts /*B or {}*/, batch_match_output{matches /*B x A*/[, max_iou /*B x A*/]},
//                         ws, stream)         (or without the crowd_boxes and crowd_counts)
//       image b uses its first gt_counts[b] gt rows (all Gmax with {}; a count outside [0, Gmax]
//       is clamped into it) and first crowd_counts[b] crowd rows: row b of matches is
//       match_anchors(matcher, anchors, gt_boxes[b, :count], crowd_boxes[b, :ccount]). One launch
//       per pass for the whole batch (B <= 65535). Counts are any integer type, in device memory.
//
// How (IoU never stored): pass 1, one thread per anchor (256 per block, a "tile"), gt staged
// through shared memory 256 at a time: best IoU and first argmax, threshold code, crowd test,
// max_iou; with low-quality matches each tile's highest IoU per gt goes to the workspace, reduced
// as integer keys (IoU > 0 as bits; warp max, then shared atomicMax: order-independent). Pass 2:
// each gt's highest IoU = max over tiles. Pass 3 visits only the tiles holding some promoting gt's
// maximum, recomputes the same IoUs (bit-identical) and promotes anchors equal to it to their own
// argmax. Grids depend on the shapes only; the result does not depend on the GPU.
//
// Checks: shapes, the matcher (validate), the workspace; the host also requires finite gt and crowd
// boxes, which live in device memory here and are not read: a NaN gt box then has IoU NaN, is
// never matched and promotes nothing (codes stay in [-2, G)). Numerics: IoU in
// common_type(anchors, gt) (float for float inputs) with every operation rounded separately.
// The rules (threshold, crowd, finiteness, promotion) are max_iou_matcher's members and the
// overlaps box/overlap.hpp's unfused_area / unfused_iou / unfused_iof: the host's definitions,
// called here with plain values (the host's SIMD driver calls them with packets).
#pragma once

#include <cuda_runtime.h>

#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "../assign/detail/match_anchor.hpp"
#include "../assign/match_output.hpp"
#include "../assign/max_iou_matcher.hpp"
#include "../box/box4.hpp"
#include "../box/overlap.hpp"
#include "../core/checks.hpp"
#include "../core/labels.hpp"
#include "launch.cuh"
#include "view.cuh"
#include "workspace.cuh"

namespace focal::cuda {

namespace detail::match {

inline constexpr int tile = 256;  // anchors per block pass = blockDim.x; gt are staged 256 at a time

template <class T, std::size_t R, class S>
void check_boxes(const view<T, R, S>& boxes, const char* where, const char* what) {
    focal::detail::require_valid_extents(boxes, where, what);
    focal::detail::require_extent(boxes, R - 1, 4, where, what);
    focal::detail::require_data(boxes, where, what);
}

// Output rows of a [B x A] view that do not share elements.
template <class T>
void check_output(const device_matrix_view<T>& v, index_t images, index_t anchors, const char* where,
                  const char* what, const char* shape) {
    focal::detail::require_valid_extents(v, where, what);
    focal::detail::require(v.extent(0) == images && v.extent(1) == anchors, where, what,
                           std::string("of shape ") + shape + " = [" + std::to_string(images) + " x " +
                               std::to_string(anchors) + "]",
                           focal::detail::shape_string(v));
    focal::detail::require_data(v, where, what);
    focal::detail::require_non_overlapping(v, where, what);
}

template <class TN>
void check_counts(const device_vector_view<TN>& counts, index_t images, const char* where, const char* what) {
    if (counts.is_null()) return;
    focal::detail::require_valid_extents(counts, where, what);
    focal::detail::require_extent(counts, 0, images, where, what);
    focal::detail::require_data(counts, where, what);
}

// Rank-3 [1 x rows x 4] and rank-2 [1 x n] views of a single image's inputs and outputs (a null
// view stays null: no data, no elements).
template <class T>
device_tensor3_view<T> as_batch(const device_matrix_view<T>& v) {
    return device_tensor3_view<T>(v.data_handle(), {1, v.extent(0), v.extent(1)}, {0, v.stride(0), v.stride(1)});
}
template <class T>
device_matrix_view<T> as_batch(const device_vector_view<T>& v) {
    return device_matrix_view<T>(v.data_handle(), {1, v.extent(0)}, {0, v.stride(0)});
}

// The rows image b uses: counts[b] clamped to [0, rows], or all rows without counts.
template <class TN>
FOCAL_DEVICE FOCAL_INLINE index_t rows_of(const device_vector_view<TN>& counts, index_t b, index_t rows) {
    if (counts.is_null()) return rows;
    const auto c = static_cast<long long>(counts(b));
    return c < 0 ? 0 : (c > rows ? rows : static_cast<index_t>(c));
}

template <class TA, class TG, class TNG, class TC, class TNC, class TM, class TI>
struct match_args {
    max_iou_matcher matcher;
    device_matrix_view<TA> anchors;      // A x 4
    device_tensor3_view<TG> gt;          // B x G x 4
    device_vector_view<TNG> gt_counts;   // B or null
    device_tensor3_view<TC> crowd;       // B x C x 4 or null
    device_vector_view<TNC> crowd_counts;
    device_matrix_view<TM> matches;      // B x A
    device_matrix_view<TI> max_iou;      // B x A or null
    void* block_max;                     // keys, B x tiles x G
    void* gt_max;                        // keys, B x G
    index_t tiles;
};

struct match_plan {
    std::size_t block_max, gt_max, bytes;
};
inline index_t tiles_of(index_t anchors) { return (anchors + tile - 1) / tile; }
// Keys are reserved as 64-bit (double IoU) whatever the type: one size for every input type.
inline match_plan plan_match(index_t images, index_t anchors, index_t gt) {
    workspace_plan p;
    const std::size_t block_max = p.reserve<std::uint64_t>(images * tiles_of(anchors) * gt);
    const std::size_t gt_max = p.reserve<std::uint64_t>(images * gt);
    return {block_max, gt_max, p.bytes()};
}

// Maximum over the warp (every lane calls it).
template <class K>
FOCAL_DEVICE FOCAL_INLINE K warp_max(K k) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if constexpr (sizeof(K) == 4) {
        return __reduce_max_sync(0xffffffffu, k);
    } else
#endif
    {
        for (int offset = 16; offset > 0; offset >>= 1) {
            const K other = __shfl_xor_sync(0xffffffffu, k, offset);
            k = other > k ? other : k;
        }
        return k;
    }
}

template <class T, class TB>
FOCAL_DEVICE FOCAL_INLINE box4<T> load_box(const device_matrix_view<TB>& v, index_t i) {
    return {{static_cast<T>(v(i, 0)), static_cast<T>(v(i, 1)), static_cast<T>(v(i, 2)), static_cast<T>(v(i, 3))}};
}
template <class T, class TB>
FOCAL_DEVICE FOCAL_INLINE box4<T> load_box(const device_tensor3_view<TB>& v, index_t b, index_t i) {
    return {{static_cast<T>(v(b, i, 0)), static_cast<T>(v(b, i, 1)), static_cast<T>(v(b, i, 2)),
             static_cast<T>(v(b, i, 3))}};
}

// Boxes staged in shared memory with their areas (and, in pass 3, a target IoU).
template <class T>
struct staged_boxes {
    T x1[tile], y1[tile], x2[tile], y2[tile], area[tile], target[tile];
    FOCAL_DEVICE FOCAL_INLINE box4<T> box(int q) const { return {{x1[q], y1[q], x2[q], y2[q]}}; }
    FOCAL_DEVICE FOCAL_INLINE void put(int q, const box4<T>& b, T a) {
        x1[q] = b[0];
        y1[q] = b[1];
        x2[q] = b[2];
        y2[q] = b[3];
        area[q] = a;
    }
};

// Pass 1: codes, max_iou and (low-quality matches) each tile's highest IoU per gt.
template <bool PlusOne, class T, class Args>
__global__ void __launch_bounds__(tile) match_pass1(Args p) {
    using namespace focal::detail::assign_impl;
    using focal::detail::finite_box;
    using focal::detail::unfused_area;
    using focal::detail::unfused_iof;
    using focal::detail::unfused_iou;
    using K = key_t<T>;
    __shared__ staged_boxes<T> s;
    __shared__ K keys[tile];
    const index_t b = blockIdx.y, n = p.anchors.extent(0), g_rows = p.gt.extent(1);
    const index_t m = rows_of(p.gt_counts, b, g_rows);
    const index_t mc = rows_of(p.crowd_counts, b, p.crowd.extent(1));
    const bool low_quality = p.matcher.allow_low_quality_matches;
    K* block_max = static_cast<K*>(p.block_max) + b * p.tiles * g_rows;
    const int lane = static_cast<int>(threadIdx.x % 32);
    for (index_t t = blockIdx.x; t < p.tiles; t += gridDim.x) {
        const index_t i = t * tile + threadIdx.x;
        const bool valid = i < n;
        const box4<T> a = load_box<T>(p.anchors, valid ? i : n - 1);  // spare threads: a copy, no output
        const T area_a = unfused_area<PlusOne>(a);
        const bool finite = finite_box(a);
        best_match<T> best;
        for (index_t g0 = 0; g0 < m; g0 += tile) {
            const int count = static_cast<int>(m - g0 < tile ? m - g0 : tile);
            __syncthreads();  // the previous chunk is read
            if (static_cast<int>(threadIdx.x) < count) {
                const box4<T> g = load_box<T>(p.gt, b, g0 + threadIdx.x);
                s.put(threadIdx.x, g, unfused_area<PlusOne>(g));
            }
            if (low_quality) keys[threadIdx.x] = 0;
            __syncthreads();
            for (int q = 0; q < count; ++q) {
                const T iou = unfused_iou<PlusOne>(a, s.box(q), area_a, s.area[q]);
                best.consider(iou, static_cast<int>(g0 + q));
                if (low_quality) {
                    const K k = warp_max(valid ? max_key(iou) : K(0));
                    if (lane == 0 && k != 0) atomicMax(&keys[q], k);
                }
            }
            if (low_quality) {
                __syncthreads();
                if (static_cast<int>(threadIdx.x) < count) block_max[t * g_rows + g0 + threadIdx.x] = keys[threadIdx.x];
            }
        }
        // Crowd regions matter for anchors the threshold rule makes negative.
        const T argmax = static_cast<T>(best.argmax);
        const bool negative = m == 0 || p.matcher.threshold_code(best.best, argmax) == T(background_label);
        bool near = false;
        for (index_t c0 = 0; c0 < mc; c0 += tile) {
            const int count = static_cast<int>(mc - c0 < tile ? mc - c0 : tile);
            __syncthreads();
            if (static_cast<int>(threadIdx.x) < count) {
                const box4<T> c = load_box<T>(p.crowd, b, c0 + threadIdx.x);
                s.put(threadIdx.x, c, T(0));
            }
            __syncthreads();
            if (negative)
                for (int q = 0; q < count && !near; ++q)
                    near = p.matcher.near_crowd(unfused_iof<PlusOne>(a, s.box(q), area_a));
        }
        if (valid) {
            // Codes are exact small integers in T (gt indices < 2^24, -1, -2).
            p.matches(b, i) = static_cast<std::remove_cvref_t<decltype(p.matches(b, i))>>(
                static_cast<int>(p.matcher.anchor_code(m > 0, best.best, argmax, near, finite)));
            if (!p.max_iou.is_null())
                p.max_iou(b, i) = static_cast<std::remove_cvref_t<decltype(p.max_iou(b, i))>>(
                    finite ? best.best : quiet_nan<T>());
        }
    }
}

// Pass 2: gt_max(b, j) = max over tiles of block_max(b, t, j).
template <class T, class Args>
__global__ void __launch_bounds__(tile) match_pass2(Args p) {
    using K = focal::detail::assign_impl::key_t<T>;
    const index_t b = blockIdx.y, g_rows = p.gt.extent(1);
    const index_t m = rows_of(p.gt_counts, b, g_rows);
    const K* block_max = static_cast<const K*>(p.block_max) + b * p.tiles * g_rows;
    K* gt_max = static_cast<K*>(p.gt_max) + b * g_rows;
    for (index_t j = thread_index(); j < m; j += grid_stride()) {
        K v = 0;
        for (index_t t = 0; t < p.tiles; ++t) {
            const K k = block_max[t * g_rows + j];
            v = k > v ? k : v;
        }
        gt_max[j] = v;
    }
}

// Pass 3: in the tiles holding a promoting gt's highest IoU, anchors whose IoU equals it take
// their own argmax (when finite and best >= low_quality_iou_threshold).
template <bool PlusOne, class T, class Args>
__global__ void __launch_bounds__(tile) match_pass3(Args p) {
    using namespace focal::detail::assign_impl;
    using focal::detail::finite_box;
    using focal::detail::unfused_area;
    using focal::detail::unfused_iou;
    using K = key_t<T>;
    __shared__ staged_boxes<T> s;
    const index_t b = blockIdx.y, n = p.anchors.extent(0), g_rows = p.gt.extent(1);
    const index_t m = rows_of(p.gt_counts, b, g_rows);
    const K* block_max = static_cast<const K*>(p.block_max) + b * p.tiles * g_rows;
    const K* gt_max = static_cast<const K*>(p.gt_max) + b * g_rows;
    // gt j is a target in tile t: it promotes and t holds its maximum (NaN otherwise: equals nothing).
    auto target = [&](index_t t, index_t j) {
        const K k = gt_max[j];
        return p.matcher.gt_promotes(from_key<T>(k)) && block_max[t * g_rows + j] == k
                   ? from_key<T>(k)
                   : quiet_nan<T>();
    };
    for (index_t t = blockIdx.x; t < p.tiles; t += gridDim.x) {
        bool mine = false;
        for (index_t j = threadIdx.x; j < m; j += tile) {
            const T v = target(t, j);
            mine = mine || v == v;
        }
        if (!__syncthreads_or(mine)) continue;  // block-uniform
        const index_t i = t * tile + threadIdx.x;
        const bool valid = i < n;
        const box4<T> a = load_box<T>(p.anchors, valid ? i : n - 1);
        const T area_a = unfused_area<PlusOne>(a);
        const bool finite = finite_box(a);
        best_match<T> best;
        bool equals = false;
        for (index_t g0 = 0; g0 < m; g0 += tile) {
            const int count = static_cast<int>(m - g0 < tile ? m - g0 : tile);
            __syncthreads();
            if (static_cast<int>(threadIdx.x) < count) {
                const box4<T> g = load_box<T>(p.gt, b, g0 + threadIdx.x);
                s.put(threadIdx.x, g, unfused_area<PlusOne>(g));
                s.target[threadIdx.x] = target(t, g0 + threadIdx.x);
            }
            __syncthreads();
            for (int q = 0; q < count; ++q) {
                const T iou = unfused_iou<PlusOne>(a, s.box(q), area_a, s.area[q]);
                best.consider(iou, static_cast<int>(g0 + q));
                equals = equals || iou == s.target[q];
            }
        }
        if (valid && p.matcher.promotes(best.best, equals, finite))
            p.matches(b, i) = static_cast<std::remove_cvref_t<decltype(p.matches(b, i))>>(best.argmax);
        __syncthreads();  // s is restaged by the next tile
    }
}

template <class Args>
void run_match(const Args& p, index_t images, cudaStream_t stream, const char* where) {
    using T = std::common_type_t<std::remove_const_t<typename decltype(p.anchors)::element_type>,
                                 std::remove_const_t<typename decltype(p.gt)::element_type>>;
    const index_t n = p.anchors.extent(0), g = p.gt.extent(1);
    if (n == 0 || images == 0) return;
    const dim3 grid(grid_size(n, tile), static_cast<unsigned>(images));
    auto go = [&](auto kernel, dim3 gr) {
        if (gr.x == 0 || gr.y == 0) return;
        kernel<<<gr, tile, 0, stream>>>(p);
        const cudaError_t status = cudaGetLastError();
        if (status != cudaSuccess)
            throw runtime_error(status, std::string(where) + ": kernel launch failed: " + cudaGetErrorName(status) +
                                            " (" + cudaGetErrorString(status) + ")");
    };
    const bool low_quality = p.matcher.allow_low_quality_matches && g > 0;
    if (p.matcher.plus_one) {
        go(match_pass1<true, T, Args>, grid);
        if (low_quality) {
            go(match_pass2<T, Args>, dim3(grid_size(g, tile), static_cast<unsigned>(images)));
            go(match_pass3<true, T, Args>, grid);
        }
    } else {
        go(match_pass1<false, T, Args>, grid);
        if (low_quality) {
            go(match_pass2<T, Args>, dim3(grid_size(g, tile), static_cast<unsigned>(images)));
            go(match_pass3<false, T, Args>, grid);
        }
    }
}

}  // namespace detail::match

// ---------------------------------------------------------------------------------------------
// pairwise_iou

namespace detail::match {
template <class T, class TA, class TB, class TO>
__global__ void pairwise_iou_kernel(device_matrix_view<TA> a, device_matrix_view<TB> b, device_matrix_view<TO> out) {
    using focal::detail::unfused_area;
    using focal::detail::unfused_iou;
    const index_t n = b.extent(0), total = a.extent(0) * n;
    for (index_t e = thread_index(); e < total; e += grid_stride()) {
        const index_t i = e / n, j = e - i * n;
        const box4<T> x = load_box<T>(a, i), y = load_box<T>(b, j);
        out(i, j) = unfused_iou<false>(x, y, unfused_area<false>(x), unfused_area<false>(y));
    }
}
}  // namespace detail::match

template <class TA, class TB, class TO>
    requires std::floating_point<TO>
void pairwise_iou(device_matrix_view<TA> a, device_matrix_view<TB> b, device_matrix_view<TO> out,
                  cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::pairwise_iou";
    detail::match::check_boxes(a, where, "a (boxes, M x 4)");
    detail::match::check_boxes(b, where, "b (boxes, N x 4)");
    focal::detail::require_valid_extents(out, where, "out");
    focal::detail::require(out.extent(0) == a.extent(0) && out.extent(1) == b.extent(0), where, "out",
                           "of shape [M x N] = [" + std::to_string(a.extent(0)) + " x " +
                               std::to_string(b.extent(0)) + "]",
                           focal::detail::shape_string(out));
    focal::detail::require_data(out, where, "out");
    focal::detail::require_non_overlapping(out, where, "out");
    const index_t total = a.extent(0) * b.extent(0);
    if (total == 0) return;
    launch(where, detail::match::pairwise_iou_kernel<TO, TA, TB, TO>, grid_size(total, default_block_size, 4),
           default_block_size, 0, stream, a, b, out);
}

// ---------------------------------------------------------------------------------------------
// match_anchors

inline std::size_t match_anchors_batched_workspace_size(index_t images, index_t anchors, index_t max_gt,
                                                         index_t max_crowd = 0) {
    (void)max_crowd;  // crowd boxes need no scratch memory
    return detail::match::plan_match(images < 0 ? 0 : images, anchors < 0 ? 0 : anchors, max_gt < 0 ? 0 : max_gt)
        .bytes;
}
inline std::size_t match_anchors_workspace_size(index_t anchors, index_t gt, index_t crowd = 0) {
    return match_anchors_batched_workspace_size(1, anchors, gt, crowd);
}

namespace detail::match {
template <class TA, class TG, class TNG, class TC, class TNC, class TM, class TI>
void checked_match(const max_iou_matcher& matcher, device_matrix_view<TA> anchors, device_tensor3_view<TG> gt,
                   device_vector_view<TNG> gt_counts, device_tensor3_view<TC> crowd,
                   device_vector_view<TNC> crowd_counts, device_matrix_view<TM> matches,
                   device_matrix_view<TI> max_iou, const workspace& ws, cudaStream_t stream, const char* where,
                   bool batched) {
    const index_t images = gt.extent(0), n = anchors.extent(0), g = gt.extent(1);
    focal::detail::require(images <= 65535, where, "gt_boxes", "at most 65535 images (a grid's y extent)", images);
    check_output(matches, images, n, where, "out.matches", batched ? "[B x A]" : "[A]");
    if (!max_iou.is_null()) check_output(max_iou, images, n, where, "out.max_iou", batched ? "[B x A]" : "[A]");
    focal::detail::require(g <= static_cast<index_t>(std::numeric_limits<TM>::max()) && g <= (index_t(1) << 24), where,
                           "gt_boxes", "at most min(2^24, the largest value of out.matches' type) rows", g);
    if (!crowd.is_null())
        focal::detail::require(crowd.extent(0) == images, where, "crowd_boxes",
                               "of one row block per image (B = " + std::to_string(images) + ")",
                               focal::detail::shape_string(crowd));
    check_counts(gt_counts, images, where, "gt_counts");
    check_counts(crowd_counts, images, where, "crowd_counts");
    const match_plan plan = plan_match(images, n, g);
    cuda::detail::require_workspace(ws, plan.bytes, where);
    const match_args<TA, TG, TNG, TC, TNC, TM, TI> args{matcher,
                                                        anchors,
                                                        gt,
                                                        gt_counts,
                                                        crowd,
                                                        crowd_counts,
                                                        matches,
                                                        max_iou,
                                                        workspace_at<void>(ws, plan.block_max),
                                                        workspace_at<void>(ws, plan.gt_max),
                                                        tiles_of(n)};
    run_match(args, images, stream, where);
}
}  // namespace detail::match

template <class TA, class TG, class TNG, class TC, class TNC, class TM, class TI>
    requires std::floating_point<std::remove_const_t<TA>> && std::floating_point<std::remove_const_t<TG>> &&
             std::signed_integral<TM> && std::floating_point<TI> && std::integral<std::remove_const_t<TNG>> &&
             std::integral<std::remove_const_t<TNC>>
void match_anchors_batched(const max_iou_matcher& matcher, device_matrix_view<TA> anchors,
                           device_tensor3_view<TG> gt_boxes, device_vector_view<TNG> gt_counts,
                           device_tensor3_view<TC> crowd_boxes, device_vector_view<TNC> crowd_counts,
                           const batch_match_output<TM, TI, device_space>& out, workspace ws, cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::match_anchors_batched";
    validate(matcher, where);
    detail::match::check_boxes(anchors, where, "anchors (A x 4)");
    detail::match::check_boxes(gt_boxes, where, "gt_boxes (B x Gmax x 4)");
    if (!crowd_boxes.is_null()) detail::match::check_boxes(crowd_boxes, where, "crowd_boxes (B x Cmax x 4)");
    detail::match::checked_match(matcher, anchors, gt_boxes, gt_counts, crowd_boxes, crowd_counts, out.matches,
                                 out.max_iou, ws, stream, where, true);
}

// Without crowd boxes.
template <class TA, class TG, class TNG, class TM, class TI>
void match_anchors_batched(const max_iou_matcher& matcher, device_matrix_view<TA> anchors,
                           device_tensor3_view<TG> gt_boxes, device_vector_view<TNG> gt_counts,
                           const batch_match_output<TM, TI, device_space>& out, workspace ws, cudaStream_t stream) {
    match_anchors_batched(matcher, anchors, gt_boxes, gt_counts, device_tensor3_view<const float>{},
                          device_vector_view<const int>{}, out, ws, stream);
}

template <class TA, class TG, class TC, class TM, class TI>
    requires std::floating_point<std::remove_const_t<TA>> && std::floating_point<std::remove_const_t<TG>> &&
             std::signed_integral<TM> && std::floating_point<TI>
void match_anchors(const max_iou_matcher& matcher, device_matrix_view<TA> anchors, device_matrix_view<TG> gt_boxes,
                   device_matrix_view<TC> crowd_boxes, const match_output<TM, TI, device_space>& out, workspace ws,
                   cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::match_anchors";
    const device_vector_view<TM> matches = out.matches;
    const device_vector_view<TI> max_iou = out.max_iou;
    validate(matcher, where);
    detail::match::check_boxes(anchors, where, "anchors (A x 4)");
    detail::match::check_boxes(gt_boxes, where, "gt_boxes (G x 4)");
    if (!crowd_boxes.is_null()) detail::match::check_boxes(crowd_boxes, where, "crowd_boxes (C x 4)");
    focal::detail::check_match_output(out, anchors.extent(0), where);
    detail::match::checked_match(matcher, anchors, detail::match::as_batch(gt_boxes),
                                 device_vector_view<const int>{}, detail::match::as_batch(crowd_boxes),
                                 device_vector_view<const int>{}, detail::match::as_batch(matches),
                                 detail::match::as_batch(max_iou), ws, stream, where, false);
}

// Without crowd boxes.
template <class TA, class TG, class TM, class TI>
void match_anchors(const max_iou_matcher& matcher, device_matrix_view<TA> anchors, device_matrix_view<TG> gt_boxes,
                   const match_output<TM, TI, device_space>& out, workspace ws, cudaStream_t stream) {
    match_anchors(matcher, anchors, gt_boxes, device_matrix_view<const float>{}, out, ws, stream);
}

}  // namespace focal::cuda
