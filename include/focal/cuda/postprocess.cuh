// focal/cuda/postprocess.cuh: RetinaNet post-processing of a batch on the GPU, detection for
// detection the host's batch focal::postprocess (retinanet/postprocess.hpp).
//
//   std::size_t bytes = focal::cuda::postprocess_workspace_size(p, batch, anchors, classes, anchors_per_level);
//   focal::cuda::postprocess(p, logits /*B x A x K*/, deltas /*B x A x 4*/, anchors /*A x 4*/,
//       anchors_per_level /*host*/, sizes /*host, B*/,
//       focal::batch_detections_output{boxes /*B x D x 4*/, scores /*B x D*/, labels /*B x D*/, counts /*B*/},
//       ws, stream);
// All tensors are device views (float logits, deltas, anchors and outputs): out is the host's
// batch_detections_output with Space = device_space. out.counts[b] and the first counts[b] rows of
// image b's outputs are written on the device, best first; D >= p.capacity().
//
// Per image, as the host: (1) per level the candidates of cuda/top_candidates.cuh (logit >
// logit_threshold(float(score_threshold)), at most max_candidates_per_level, best first); (2)
// score = 1 / (1 + exp(-logit)) (exp in double, rounded: the host's float std::exp within an ulp),
// kept when > float(score_threshold); decode (delta_xywh_coder::decode) and clip (clip_box,
// std::min/max's NaN behaviour); (3) class-aware NMS (p.nms: its iou_threshold and mode) as
// cuda/nms.cuh, with the candidates numbered in level order so that equal scores keep the host's
// order, torchvision mode's coordinate trick when at most nms.torchvision_trick_max_boxes
// candidates survive (max coordinate over the surviving boxes, as the host); (4) the first
// p.capacity() (max_detections, or nms.max_detections when smaller). Numerics: boxes are decoded
// in float on the device (the exp and possible fma contraction can move a coordinate by an ulp or
// two), so boxes agree to ~1e-6 relative and scores to an ulp; a decision of NMS or of the score
// threshold that sits within those ulps can differ. torchvision mode above the trick's limit:
// equal scores are ordered by candidate index, where the host mimics std::sort (see cuda/nms.cuh).
//
// Images run in passes of up to postprocess_images_per_pass (fewer when a pass would exceed 2^31
// logits, CUB's int count); the workspace holds one pass:
// 24 * A * K bytes per image for the candidate gather (cuda/top_candidates.cuh) plus
// C * ceil(C / 64) * 8 bytes of NMS mask, C = sum over levels of min(max_candidates_per_level, A_l * K).
#pragma once

#include <cuda_runtime.h>

#include <cub/cub.cuh>

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>

#include "../box/box4.hpp"
#include "../coder/delta_xywh.hpp"
#include "../core/checks.hpp"
#include "../core/error.hpp"
#include "../nms/detail/bitmask.hpp"
#include "../retinanet/detail/candidates.hpp"
#include "../retinanet/postprocess.hpp"
#include "detail/nms_kernels.cuh"
#include "launch.cuh"
#include "top_candidates.cuh"
#include "view.cuh"
#include "workspace.cuh"

namespace focal::cuda {

inline constexpr index_t postprocess_images_per_pass = 8;

namespace detail {

struct postprocess_layout {
    candidate_layout cand;
    std::size_t box = 0, score = 0, label = 0, key_in = 0, key_out = 0, order_in = 0, order_out = 0, offsets = 0, valid = 0,
                step = 0, trick = 0, sorted = 0, sorted_class = 0, mask = 0, removed = 0, cub = 0, cub_bytes = 0, bytes = 0;
    index_t images = 0, slots = 0;
};

// Images per pass: up to postprocess_images_per_pass, and few enough that one pass's candidate
// gather (images x A x K keys) stays within CUB's int item count (make_level_table allows one).
inline index_t pass_images(index_t batch, const level_table& t) {
    index_t images = batch < postprocess_images_per_pass ? batch : postprocess_images_per_pass;
    const index_t per_image = t.anchors * t.classes;
    if (per_image > 0 && images > std::numeric_limits<std::int32_t>::max() / per_image)
        images = std::numeric_limits<std::int32_t>::max() / per_image;
    return images;
}

inline postprocess_layout plan_postprocess(index_t images, const level_table& t, const char* where) {
    postprocess_layout l;
    workspace_plan p;
    l.images = images;
    l.slots = t.slot_begin[t.levels];
    // The NMS mask grid has one block row per 64 candidates (at most 65535), order is int32.
    focal::detail::require(l.slots <= nms_max_boxes, where, "max_candidates_per_level",
                           "at most " + std::to_string(nms_max_boxes) + " candidates per image over all levels", l.slots);
    l.cand = plan_candidates(p, images, t);
    const index_t all = images * l.slots, words = focal::detail::mask_words(l.slots);
    l.box = p.reserve<box4<float>>(all);
    l.score = p.reserve<float>(all);
    l.label = p.reserve<std::int64_t>(all);
    l.key_in = p.reserve<std::uint32_t>(all);
    l.key_out = p.reserve<std::uint32_t>(all);
    l.order_in = p.reserve<std::int32_t>(all);
    l.order_out = p.reserve<std::int32_t>(all);
    l.offsets = p.reserve<std::int64_t>(images + 1);
    l.valid = p.reserve<std::int32_t>(images);
    l.step = p.reserve<float>(images);
    l.trick = p.reserve<std::int32_t>(images);
    l.sorted = p.reserve<box4<float>>(all);
    l.sorted_class = p.reserve<std::int64_t>(all);
    l.mask = p.reserve_bytes(static_cast<std::size_t>(all) * static_cast<std::size_t>(words) * sizeof(std::uint64_t));
    l.removed = p.reserve<std::uint64_t>(images * words);
    if (all > 0)
        FOCAL_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairs(
            nullptr, l.cub_bytes, static_cast<const std::uint32_t*>(nullptr), static_cast<std::uint32_t*>(nullptr),
            static_cast<const std::int32_t*>(nullptr), static_cast<std::int32_t*>(nullptr), static_cast<std::int64_t>(all),
            static_cast<std::int64_t>(images), static_cast<const std::int64_t*>(nullptr),
            static_cast<const std::int64_t*>(nullptr)));
    l.cub = p.reserve_bytes(l.cub_bytes);
    l.bytes = p.bytes();
    return l;
}

struct image_sizes {
    float width[postprocess_images_per_pass] = {}, height[postprocess_images_per_pass] = {};
};

// The host's sigmoid_score, with exp in double (CUDA's expf is not correctly rounded).
__device__ FOCAL_INLINE float device_sigmoid_score(float x) {
    return __fdiv_rn(1.0f, __fadd_rn(1.0f, static_cast<float>(::exp(-static_cast<double>(x)))));
}

// One candidate slot per thread: score, decoded + clipped box, label, NMS sort key.
template <class TD, class TA>
__global__ void postprocess_candidates_kernel(level_table t, const std::int64_t* begin, const std::int32_t* selected,
                                              const std::uint64_t* sorted, const TD* deltas, index_t d0, index_t d1,
                                              index_t d2, const TA* anchors, index_t a0, index_t a1, index_t images,
                                              delta_xywh_coder coder, bool clip, float score_threshold,
                                              image_sizes sizes, box4<float>* box, float* score,
                                              std::int64_t* label, std::uint32_t* key, std::int32_t* order) {
    const index_t slots = t.slot_begin[t.levels];
    for (index_t g = thread_index(); g < images * slots; g += grid_stride()) {
        const index_t image = g / slots, j = g - image * slots;
        int level = 0;
        while (j >= t.slot_begin[level + 1]) ++level;
        const index_t pos = j - t.slot_begin[level], segment = image * t.levels + level;
        order[g] = static_cast<std::int32_t>(j);
        key[g] = focal::detail::nan_sort_key;
        score[g] = 0.0f;
        label[g] = 0;
        box[g] = box4<float>{{0.0f, 0.0f, 0.0f, 0.0f}};
        if (pos >= selected[segment] || pos >= t.capacity[level]) continue;
        const std::uint64_t k = sorted[begin[segment] + pos];
        const index_t flat = focal::detail::candidate_flat(k);
        const float s = device_sigmoid_score(focal::detail::candidate_logit(k));
        if (!(s > score_threshold)) continue;
        const index_t anchor = t.anchor_begin[level] + flat / t.classes;
        const TD* d = deltas + image * d0 + anchor * d1;
        const TA* an = anchors + anchor * a0;
        const box4<float> dv{{static_cast<float>(d[0]), static_cast<float>(d[d2]), static_cast<float>(d[2 * d2]),
                              static_cast<float>(d[3 * d2])}};
        const box4<float> av{{static_cast<float>(an[0]), static_cast<float>(an[a1]), static_cast<float>(an[2 * a1]),
                              static_cast<float>(an[3 * a1])}};
        box4<float> b = coder.decode(dv, av);
        if (clip) b = focal::detail::clip_box(b, sizes.width[image], sizes.height[image]);
        box[g] = b;
        score[g] = s;
        label[g] = flat % t.classes;
        key[g] = focal::detail::score_sort_key(s);
    }
}

// Per image (one block): surviving candidates, and torchvision's trick (max coordinate + 1).
static __global__ void postprocess_image_kernel(index_t slots, const std::uint32_t* key, const box4<float>* box, bool torchvision,
                                         index_t trick_max, std::int64_t* offsets, std::int32_t* valid, float* step,
                                         std::int32_t* trick) {
    __shared__ float partial_max[nms_walk_threads];
    __shared__ index_t partial_count[nms_walk_threads];
    const index_t image = blockIdx.x;
    float m = -__int_as_float(0x7f800000);
    index_t count = 0;
    for (index_t j = threadIdx.x; j < slots; j += blockDim.x) {
        const index_t g = image * slots + j;
        if (key[g] == focal::detail::nan_sort_key) continue;
        ++count;
        for (int c = 0; c < 4; ++c) m = focal::detail::max_coordinate_combine(m, box[g][c]);
    }
    partial_max[threadIdx.x] = m;
    partial_count[threadIdx.x] = count;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            partial_max[threadIdx.x] = focal::detail::max_coordinate_combine(partial_max[threadIdx.x], partial_max[threadIdx.x + half]);
            partial_count[threadIdx.x] += partial_count[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        valid[image] = static_cast<std::int32_t>(partial_count[0]);
        step[image] = __fadd_rn(partial_max[0], 1.0f);
        trick[image] = torchvision && partial_count[0] <= trick_max ? 1 : 0;
        offsets[image] = image * slots;
        if (image + 1 == gridDim.x) offsets[image + 1] = (image + 1) * slots;
    }
}

static __global__ void postprocess_sorted_kernel(index_t slots, index_t images, const std::int32_t* order, const box4<float>* box,
                                          const std::int64_t* label, const float* step, const std::int32_t* trick,
                                          box4<float>* sorted, std::int64_t* sorted_class) {
    for (index_t g = thread_index(); g < images * slots; g += grid_stride()) {
        const index_t image = g / slots, from = image * slots + order[g];
        if (trick[image]) {
            sorted[g] = focal::detail::offset_box(box[from], label[from], step[image]);
            sorted_class[g] = 0;
        } else {
            sorted[g] = box[from];
            sorted_class[g] = label[from];
        }
    }
}

template <class T, class L>
struct postprocess_emit {
    index_t slots;
    const std::int32_t* order;
    const box4<float>* box;
    const float* score;
    const std::int64_t* label;
    T* out_boxes;
    index_t b0, b1, b2;
    T* out_scores;
    index_t s0, s1;
    L* out_labels;
    index_t l0, l1;
    __device__ void operator()(index_t image, index_t position, index_t row) const {
        const index_t from = image * slots + order[image * slots + row];
        for (int c = 0; c < 4; ++c) out_boxes[image * b0 + position * b1 + c * b2] = static_cast<T>(box[from][c]);
        out_scores[image * s0 + position * s1] = static_cast<T>(score[from]);
        out_labels[image * l0 + position * l1] = static_cast<L>(label[from]);
    }
};
template <class TN>
struct postprocess_done {
    TN* counts;
    index_t stride;
    __device__ void operator()(index_t image, index_t total) const { counts[image * stride] = static_cast<TN>(total); }
};

}  // namespace detail

// Scratch bytes for postprocess over `batch` images (one pass of up to
// postprocess_images_per_pass images is held).
inline std::size_t postprocess_workspace_size(const retinanet_postprocess& p, index_t batch, index_t anchors,
                                              index_t classes, std::span<const index_t> anchors_per_level) {
    constexpr const char* where = "focal::cuda::postprocess_workspace_size";
    validate(p, where);
    focal::detail::require(batch >= 0 && anchors >= 0 && classes >= 0, where, "batch, anchors and classes", "non-negative",
                           batch, ", ", anchors, ", ", classes);
    const detail::level_table t = detail::make_level_table(anchors_per_level, classes, p.max_candidates_per_level, where);
    return detail::plan_postprocess(detail::pass_images(batch, t), t, where).bytes;
}

template <class TL, class TD, class TA, class T, class L, class N>
    requires std::is_same_v<std::remove_const_t<TL>, float> && std::floating_point<std::remove_const_t<TD>> &&
             std::floating_point<std::remove_const_t<TA>> && std::floating_point<T> && std::integral<L> && std::integral<N>
void postprocess(const retinanet_postprocess& p, device_tensor3_view<TL> logits, device_tensor3_view<TD> deltas,
                 device_matrix_view<TA> anchors, std::span<const index_t> anchors_per_level,
                 std::span<const image_size> sizes, const batch_detections_output<T, L, N, device_space>& out,
                 const workspace& ws, cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::postprocess";
    validate(p, where);
    focal::detail::require_valid_extents(logits, where, "logits");
    const index_t batch = logits.extent(0), a = logits.extent(1), k = logits.extent(2), d = p.capacity();
    focal::detail::require(deltas.extent(0) == batch && static_cast<index_t>(sizes.size()) == batch &&
                               out.boxes.extent(0) == batch && out.scores.extent(0) == batch &&
                               out.labels.extent(0) == batch && out.counts.extent(0) == batch,
                           where, "deltas, sizes and out", "one entry per image (" + std::to_string(batch) + ")",
                           "deltas " + focal::detail::shape_string(deltas) + ", " + std::to_string(sizes.size()) +
                               " sizes, out.boxes " + focal::detail::shape_string(out.boxes) + ", out.counts " +
                               focal::detail::shape_string(out.counts));
    focal::detail::require(deltas.extent(1) == a && deltas.extent(2) == 4, where, "deltas",
                           "of shape [B x A x 4] with A = " + std::to_string(a), focal::detail::shape_string(deltas));
    focal::detail::require(anchors.extent(0) == a && anchors.extent(1) == 4, where, "anchors",
                           "of shape [A x 4] with A = " + std::to_string(a), focal::detail::shape_string(anchors));
    focal::detail::require(out.boxes.extent(1) >= d && out.boxes.extent(2) == 4, where, "out.boxes",
                           "[B x D x 4] with D >= max_detections = " + std::to_string(d),
                           focal::detail::shape_string(out.boxes));
    focal::detail::require(out.scores.extent(1) >= d && out.labels.extent(1) >= d, where, "out.scores and out.labels",
                           "of extent >= max_detections = " + std::to_string(d) + " per image",
                           focal::detail::shape_string(out.scores) + " and " + focal::detail::shape_string(out.labels));
    focal::detail::require(k == 0 || static_cast<std::uintmax_t>(k - 1) <= static_cast<std::uintmax_t>(std::numeric_limits<L>::max()),
                           where, "out.labels", "of an integer type that holds the largest class index " + std::to_string(k - 1),
                           "a maximum of ", +std::numeric_limits<L>::max());
    focal::detail::require(static_cast<std::uintmax_t>(p.max_detections) <=
                               static_cast<std::uintmax_t>(std::numeric_limits<N>::max()),
                           where, "out.counts",
                           "of an integer type that holds max_detections = " + std::to_string(p.max_detections),
                           "a maximum of ", +std::numeric_limits<N>::max());
    for (const image_size& s : sizes)
        focal::detail::require(s.height >= 0 && s.width >= 0, where, "image size", "non-negative",
                               std::to_string(s.height) + " x " + std::to_string(s.width));
    focal::detail::require_data(logits, where, "logits");
    focal::detail::require_data(deltas, where, "deltas");
    focal::detail::require_data(anchors, where, "anchors");
    focal::detail::require_data(out.boxes, where, "out.boxes");
    focal::detail::require_data(out.scores, where, "out.scores");
    focal::detail::require_data(out.labels, where, "out.labels");
    focal::detail::require_data(out.counts, where, "out.counts");
    const detail::level_table t = detail::make_level_table(anchors_per_level, k, p.max_candidates_per_level, where);
    focal::detail::require(t.anchors == a, where, "anchors_per_level",
                           "counts summing to the logits' rows " + std::to_string(a), t.anchors);
    const index_t pass_images = detail::pass_images(batch, t);
    const detail::postprocess_layout l = detail::plan_postprocess(pass_images, t, where);
    detail::require_workspace(ws, l.bytes, where);
    if (batch == 0) return;

    const index_t slots = l.slots, words = focal::detail::mask_words(slots);
    auto* box = workspace_at<box4<float>>(ws, l.box);
    auto* score = workspace_at<float>(ws, l.score);
    auto* label = workspace_at<std::int64_t>(ws, l.label);
    auto* key_in = workspace_at<std::uint32_t>(ws, l.key_in);
    auto* key_out = workspace_at<std::uint32_t>(ws, l.key_out);
    auto* order_in = workspace_at<std::int32_t>(ws, l.order_in);
    auto* order_out = workspace_at<std::int32_t>(ws, l.order_out);
    auto* offsets = workspace_at<std::int64_t>(ws, l.offsets);
    auto* valid = workspace_at<std::int32_t>(ws, l.valid);
    auto* step = workspace_at<float>(ws, l.step);
    auto* trick = workspace_at<std::int32_t>(ws, l.trick);
    auto* sorted = workspace_at<box4<float>>(ws, l.sorted);
    auto* sorted_class = workspace_at<std::int64_t>(ws, l.sorted_class);
    auto* mask = workspace_at<std::uint64_t>(ws, l.mask);
    auto* removed = workspace_at<std::uint64_t>(ws, l.removed);
    const float score_threshold = static_cast<float>(p.score_threshold);  // compared in float, as the host
    const float logit_min = focal::detail::logit_threshold(score_threshold);
    const float t_iou = focal::detail::threshold_below<float>(p.nms.iou_threshold);
    const bool torchvision = p.nms.mode == batched_mode::torchvision;

    for (index_t b0 = 0; b0 < batch; b0 += pass_images) {
        const index_t images = batch - b0 < pass_images ? batch - b0 : pass_images;
        if (slots == 0 || d == 0) {
            for (index_t i = 0; i < images; ++i)
                FOCAL_CUDA_CHECK(
                    cudaMemsetAsync(out.counts.data_handle() + (b0 + i) * out.counts.stride(0), 0, sizeof(N), stream));
            continue;
        }
        detail::image_sizes sz;
        for (index_t i = 0; i < images; ++i) {
            sz.width[i] = static_cast<float>(sizes[static_cast<std::size_t>(b0 + i)].width);
            sz.height[i] = static_cast<float>(sizes[static_cast<std::size_t>(b0 + i)].height);
        }
        const detail::logits_ref<float> ref{logits.data_handle() + b0 * logits.stride(0), logits.stride(0), logits.stride(1),
                                            logits.stride(2)};
        detail::run_candidates(where, ref, images, t, logit_min, l.cand, ws, stream);
        const index_t all = images * slots;
        launch(where, detail::postprocess_candidates_kernel<std::remove_const_t<TD>, std::remove_const_t<TA>>, grid_size(all),
               default_block_size, 0, stream, t, static_cast<const std::int64_t*>(workspace_at<std::int64_t>(ws, l.cand.begin)),
               static_cast<const std::int32_t*>(workspace_at<std::int32_t>(ws, l.cand.selected)),
               static_cast<const std::uint64_t*>(workspace_at<std::uint64_t>(ws, l.cand.sorted)),
               static_cast<const std::remove_const_t<TD>*>(deltas.data_handle() + b0 * deltas.stride(0)), deltas.stride(0),
               deltas.stride(1), deltas.stride(2), static_cast<const std::remove_const_t<TA>*>(anchors.data_handle()),
               anchors.stride(0), anchors.stride(1), images, p.coder, p.clip_to_image, score_threshold, sz, box, score,
               label, key_in, order_in);
        launch(where, detail::postprocess_image_kernel, static_cast<unsigned>(images), detail::nms_walk_threads, 0, stream,
               slots, static_cast<const std::uint32_t*>(key_in), static_cast<const box4<float>*>(box), torchvision,
               p.nms.torchvision_trick_max_boxes, offsets, valid, step, trick);
        std::size_t cub_bytes = l.cub_bytes;
        FOCAL_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairs(
            workspace_at<void>(ws, l.cub), cub_bytes, static_cast<const std::uint32_t*>(key_in), key_out,
            static_cast<const std::int32_t*>(order_in), order_out, static_cast<std::int64_t>(all),
            static_cast<std::int64_t>(images), static_cast<const std::int64_t*>(offsets),
            static_cast<const std::int64_t*>(offsets + 1), 0, 32, stream));
        launch(where, detail::postprocess_sorted_kernel, grid_size(all), default_block_size, 0, stream, slots, images,
               static_cast<const std::int32_t*>(order_out), static_cast<const box4<float>*>(box),
               static_cast<const std::int64_t*>(label), static_cast<const float*>(step),
               static_cast<const std::int32_t*>(trick), sorted, sorted_class);
        detail::launch_nms_mask(where, sorted, sorted_class, slots, slots, valid, images, t_iou, mask, stream);
        const detail::postprocess_emit<T, L> emit{slots, order_out, box, score, label,
                                                  out.boxes.data_handle() + b0 * out.boxes.stride(0), out.boxes.stride(0),
                                                  out.boxes.stride(1), out.boxes.stride(2),
                                                  out.scores.data_handle() + b0 * out.scores.stride(0), out.scores.stride(0),
                                                  out.scores.stride(1), out.labels.data_handle() + b0 * out.labels.stride(0),
                                                  out.labels.stride(0), out.labels.stride(1)};
        launch(where, detail::nms_walk_kernel<detail::postprocess_emit<T, L>, detail::postprocess_done<N>>,
               static_cast<unsigned>(images), detail::nms_walk_threads, 0, stream, static_cast<const std::uint64_t*>(mask),
               static_cast<const std::uint32_t*>(key_out), slots, slots, static_cast<const std::int32_t*>(valid), words, d,
               removed, emit,
               detail::postprocess_done<N>{out.counts.data_handle() + b0 * out.counts.stride(0), out.counts.stride(0)});
    }
}

}  // namespace focal::cuda
