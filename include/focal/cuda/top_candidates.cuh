// focal/cuda/top_candidates.cuh: per-level threshold + top-k of RetinaNet logits on the GPU, the
// candidates of retinanet/detail/top_candidates.hpp (and retinanet/postprocess.hpp's level_candidates).
//
//   std::size_t bytes = focal::cuda::top_candidates_workspace_size(anchors, classes, levels, k);
//   focal::cuda::top_candidates(logits /*A x K*/, anchors_per_level /*host span*/, logit_threshold, k,
//                               flat /*int64, C*/, logit /*float, C*/, counts /*int32, L*/, ws, stream);
// Level l owns slots [c_l, c_l + min(k, A_l * K)) of flat and logit, c_l the sum of the earlier
// levels' min(k, A_l * K); counts[l] of them are written: the pairs with logit > logit_threshold,
// at most k, best first (larger logit, then smaller flat index a * K + c, a counted within the
// level): exactly the host's set and order. A NaN logit is never a candidate.
//
// How: (1) a 4096-bin histogram per level of the top 12 bits of candidate_key
// (retinanet/detail/candidates.hpp; bins ascend as logits descend), in shared memory, flushed
// with integer atomics; (2) per level, the first bin whose running count reaches k; (3) the
// candidates in the bins up to it are gathered (integer atomics: in any order) as 64-bit keys
// (logit key << 32 | flat), unique, so (4) CUB's segmented radix sort puts them in one order
// whatever the gather order was. Deterministic output.
//
// Memory: the gather can hold a whole level (all logits in one bin), so the workspace holds
// 8-byte keys, their sorted copy and CUB's alternate buffer (its non-DoubleBuffer SortKeys
// allocates num_items keys): 24 * A * K bytes per image (about 440 MB for 800 x 1344 and 91 classes).
// At most 16 levels; A * K < 2^31 per image.
#pragma once

#include <cuda_runtime.h>

#include <cub/cub.cuh>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>

#include "../core/checks.hpp"
#include "../core/error.hpp"
#include "../retinanet/detail/candidates.hpp"
#include "launch.cuh"
#include "view.cuh"
#include "workspace.cuh"

namespace focal::cuda {

namespace detail {

inline constexpr int max_levels = 16;
inline constexpr int candidate_items_per_thread = 16;

// Per level: first anchor, candidate capacity min(k, A_l * K) and first candidate slot.
struct level_table {
    int levels = 0;
    index_t classes = 0;
    index_t anchors = 0;
    index_t anchor_begin[max_levels + 1] = {};
    index_t capacity[max_levels] = {};
    index_t slot_begin[max_levels + 1] = {};
};

inline level_table make_level_table(std::span<const index_t> anchors_per_level, index_t classes, index_t k,
                                    const char* where) {
    level_table t;
    focal::detail::require(anchors_per_level.size() <= static_cast<std::size_t>(max_levels), where, "anchors_per_level",
                           "at most " + std::to_string(max_levels) + " levels", anchors_per_level.size());
    t.levels = static_cast<int>(anchors_per_level.size());
    t.classes = classes;
    // CUB's segmented sort counts items and offsets in int, and the histogram and gather counters
    // are int32: an image holds at most 2^31 - 1 (anchor, class) pairs.
    constexpr index_t max_pairs = std::numeric_limits<std::int32_t>::max();
    for (int l = 0; l < t.levels; ++l) {
        const index_t a = anchors_per_level[static_cast<std::size_t>(l)];
        focal::detail::require(a >= 0, where, "anchors_per_level", "non-negative counts", a);
        // Compared before adding: huge counts (with no classes) could wrap the sum around.
        focal::detail::require(a <= std::numeric_limits<index_t>::max() - t.anchor_begin[l], where, "anchors_per_level",
                               "counts whose sum fits index_t", a);
        t.anchor_begin[l + 1] = t.anchor_begin[l] + a;
        focal::detail::require(classes == 0 || t.anchor_begin[l + 1] <= max_pairs / classes, where, "anchors_per_level",
                               "at most 2^31 - 1 (anchor, class) pairs per image", t.anchor_begin[l + 1], " anchors x ",
                               classes, " classes");
        t.capacity[l] = k < a * classes ? k : a * classes;
        if (t.capacity[l] < 0) t.capacity[l] = 0;
        t.slot_begin[l + 1] = t.slot_begin[l] + t.capacity[l];
    }
    t.anchors = t.anchor_begin[t.levels];
    return t;
}

struct candidate_layout {
    std::size_t hist = 0, cutoff = 0, selected = 0, begin = 0, end = 0, keys = 0, sorted = 0, cub = 0, cub_bytes = 0,
                bytes = 0;
};

// Scratch of the candidate stage for `images` images; appended to plan p.
inline candidate_layout plan_candidates(workspace_plan& p, index_t images, const level_table& t) {
    candidate_layout l;
    const index_t segments = images * t.levels, items = images * t.anchors * t.classes;
    // CUB's num_items is an int: the caller keeps images x A x K below 2^31 (postprocess passes).
    focal::detail::require(items <= std::numeric_limits<std::int32_t>::max(), "focal::cuda::top_candidates", "logits",
                           "at most 2^31 - 1 (image, anchor, class) triples per pass", items);
    l.hist = p.reserve<std::int32_t>(segments * focal::detail::candidate_bins);
    l.cutoff = p.reserve<std::int32_t>(segments);
    l.selected = p.reserve<std::int32_t>(segments);
    l.begin = p.reserve<std::int64_t>(segments);
    l.end = p.reserve<std::int64_t>(segments);
    l.keys = p.reserve<std::uint64_t>(items);
    l.sorted = p.reserve<std::uint64_t>(items);
    if (items > 0 && segments > 0)
        FOCAL_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortKeys(
            nullptr, l.cub_bytes, static_cast<const std::uint64_t*>(nullptr), static_cast<std::uint64_t*>(nullptr),
            static_cast<std::int64_t>(items), static_cast<std::int64_t>(segments),
            static_cast<const std::int64_t*>(nullptr), static_cast<const std::int64_t*>(nullptr)));
    l.cub = p.reserve_bytes(l.cub_bytes);
    return l;
}

template <class TL>
struct logits_ref {
    const TL* data;
    index_t s0, s1, s2;  // image, anchor, class strides
    __device__ TL at(index_t image, index_t anchor, index_t cls) const { return data[image * s0 + anchor * s1 + cls * s2]; }
};

// Histogram (pass 0) or gather (pass 1) over segment blockIdx.y = image * L + level.
template <class TL>
__global__ void candidate_scan_kernel(logits_ref<TL> logits, level_table t, float logit_min, int pass,
                                      std::int32_t* hist, const std::int32_t* cutoff, std::int32_t* selected,
                                      std::uint64_t* keys) {
    __shared__ std::int32_t local[focal::detail::candidate_bins];
    const index_t segment = blockIdx.y, image = segment / t.levels;
    const int level = static_cast<int>(segment % t.levels);
    const index_t pairs = (t.anchor_begin[level + 1] - t.anchor_begin[level]) * t.classes;
    const index_t per_block = index_t(blockDim.x) * candidate_items_per_thread;
    const index_t first = index_t(blockIdx.x) * per_block;
    if (first >= pairs || t.capacity[level] == 0) return;
    const index_t last = first + per_block < pairs ? first + per_block : pairs;
    if (pass == 0) {
        for (int b = threadIdx.x; b < focal::detail::candidate_bins; b += blockDim.x) local[b] = 0;
        __syncthreads();
    }
    const int cut = pass == 1 ? cutoff[segment] : 0;
    const index_t key_base = (image * t.anchors + t.anchor_begin[level]) * t.classes;
    for (index_t f = first + threadIdx.x; f < last; f += blockDim.x) {
        const index_t a = f / t.classes, c = f - a * t.classes;
        // The threshold compare in the logits' type, as the host's top_candidates (a double logit
        // just above a float threshold can round onto it); ranked by its float value, as the host.
        const TL raw = logits.at(image, t.anchor_begin[level] + a, c);
        if (!(raw > static_cast<TL>(logit_min))) continue;  // NaN never is
        const float x = static_cast<float>(raw);
        const int bin = focal::detail::candidate_bin(x);
        if (pass == 0) {
            atomicAdd(&local[bin], 1);
        } else if (bin <= cut) {
            const int at = atomicAdd(&selected[segment], 1);
            keys[key_base + at] = focal::detail::candidate_key(x, static_cast<std::uint32_t>(f));
        }
    }
    if (pass == 0) {
        __syncthreads();
        for (int b = threadIdx.x; b < focal::detail::candidate_bins; b += blockDim.x)
            if (local[b] != 0) atomicAdd(&hist[segment * focal::detail::candidate_bins + b], local[b]);
    }
}

// Per segment: the first bin whose running count reaches the level's capacity (all bins when
// fewer); -1 for a capacity of 0. Also the segment's key range start, and its selected count = 0.
inline constexpr int cutoff_threads = 256;
static __global__ void candidate_cutoff_kernel(level_table t, const std::int32_t* hist, std::int32_t* cutoff,
                                        std::int32_t* selected, std::int64_t* begin) {
    using scan = cub::BlockScan<std::int64_t, cutoff_threads>;
    __shared__ typename scan::TempStorage temp;
    constexpr int per_thread = focal::detail::candidate_bins / cutoff_threads;
    const index_t segment = blockIdx.x, image = segment / t.levels;
    const int level = static_cast<int>(segment % t.levels);
    const std::int32_t* h = hist + segment * focal::detail::candidate_bins;
    std::int64_t mine = 0;
    for (int i = 0; i < per_thread; ++i) mine += h[threadIdx.x * per_thread + i];
    std::int64_t before = 0, total = 0;
    scan(temp).ExclusiveSum(mine, before, total);
    const std::int64_t k = t.capacity[level];
    if (threadIdx.x == 0) {
        selected[segment] = 0;
        begin[segment] = (image * t.anchors + t.anchor_begin[level]) * t.classes;
        if (k == 0) cutoff[segment] = -1;
        else if (total < k) cutoff[segment] = focal::detail::candidate_bins - 1;
    }
    if (k > 0 && total >= k && before < k && before + mine >= k) {  // exactly one thread
        std::int64_t run = before;
        for (int i = 0; i < per_thread; ++i) {
            run += h[threadIdx.x * per_thread + i];
            if (run >= k) {
                cutoff[segment] = static_cast<std::int32_t>(threadIdx.x * per_thread + i);
                break;
            }
        }
    }
}

static __global__ void candidate_end_kernel(index_t segments, const std::int64_t* begin, const std::int32_t* selected,
                                     std::int64_t* end) {
    for (index_t s = thread_index(); s < segments; s += grid_stride()) end[s] = begin[s] + selected[s];
}

// Runs the candidate stage for `images` images starting at `image0` (logits offset by the
// caller); afterwards segment s = image * L + level holds min(selected[s], capacity) best keys,
// sorted, at sorted + begin[s].
template <class TL>
void run_candidates(const char* where, const logits_ref<TL>& logits, index_t images, const level_table& t,
                    float logit_min, const candidate_layout& l, const workspace& ws, cudaStream_t stream) {
    const index_t segments = images * t.levels, items = images * t.anchors * t.classes;
    if (segments == 0 || items == 0) return;
    auto* hist = workspace_at<std::int32_t>(ws, l.hist);
    auto* cutoff = workspace_at<std::int32_t>(ws, l.cutoff);
    auto* selected = workspace_at<std::int32_t>(ws, l.selected);
    auto* begin = workspace_at<std::int64_t>(ws, l.begin);
    auto* end = workspace_at<std::int64_t>(ws, l.end);
    auto* keys = workspace_at<std::uint64_t>(ws, l.keys);
    auto* sorted = workspace_at<std::uint64_t>(ws, l.sorted);
    index_t widest = 0;
    for (int v = 0; v < t.levels; ++v) {
        const index_t pairs = (t.anchor_begin[v + 1] - t.anchor_begin[v]) * t.classes;
        widest = pairs > widest ? pairs : widest;
    }
    const index_t per_block = index_t(default_block_size) * candidate_items_per_thread;
    const dim3 grid(static_cast<unsigned>((widest + per_block - 1) / per_block), static_cast<unsigned>(segments));
    focal::detail::require(grid.x <= 0x7fffffffu && segments <= 65535, where, "logits",
                           "a batch of at most 65535 (image, level) pairs per pass", segments);
    // After the checks: nothing is enqueued for arguments that throw.
    FOCAL_CUDA_CHECK(cudaMemsetAsync(hist, 0, static_cast<std::size_t>(segments) * focal::detail::candidate_bins *
                                                  sizeof(std::int32_t), stream));
    for (int pass = 0; pass < 2; ++pass) {
        if (grid.x > 0) {
            candidate_scan_kernel<TL><<<grid, default_block_size, 0, stream>>>(logits, t, logit_min, pass, hist, cutoff,
                                                                               selected, keys);
            FOCAL_CUDA_CHECK(cudaGetLastError());
        }
        if (pass == 0)
            launch(where, candidate_cutoff_kernel, static_cast<unsigned>(segments), cutoff_threads, 0, stream, t,
                   static_cast<const std::int32_t*>(hist), cutoff, selected, begin);
    }
    launch(where, candidate_end_kernel, grid_size(segments), default_block_size, 0, stream, segments,
           static_cast<const std::int64_t*>(begin), static_cast<const std::int32_t*>(selected), end);
    std::size_t cub_bytes = l.cub_bytes;
    FOCAL_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortKeys(workspace_at<void>(ws, l.cub), cub_bytes,
                                                             static_cast<const std::uint64_t*>(keys), sorted,
                                                             static_cast<std::int64_t>(items),
                                                             static_cast<std::int64_t>(segments),
                                                             static_cast<const std::int64_t*>(begin),
                                                             static_cast<const std::int64_t*>(end), 0, 64, stream));
}

template <class TF, class TV>
__global__ void top_candidates_write_kernel(level_table t, const std::int64_t* begin, const std::int32_t* selected,
                                            const std::uint64_t* sorted, TF* flat, index_t flat_stride, TV* logit,
                                            index_t logit_stride, std::int32_t* counts, index_t count_stride) {
    const index_t slots = t.slot_begin[t.levels];
    if (thread_index() < t.levels) {
        const int v = static_cast<int>(thread_index());
        counts[v * count_stride] = static_cast<std::int32_t>(selected[v] < t.capacity[v] ? selected[v] : t.capacity[v]);
    }
    for (index_t j = thread_index(); j < slots; j += grid_stride()) {
        int level = 0;
        while (j >= t.slot_begin[level + 1]) ++level;
        const index_t p = j - t.slot_begin[level];
        const index_t have = selected[level] < t.capacity[level] ? selected[level] : t.capacity[level];
        if (p >= have) continue;
        const std::uint64_t key = sorted[begin[level] + p];
        flat[j * flat_stride] = static_cast<TF>(focal::detail::candidate_flat(key));
        logit[j * logit_stride] = static_cast<TV>(focal::detail::candidate_logit(key));
    }
}

}  // namespace detail

// Scratch bytes for top_candidates.
inline std::size_t top_candidates_workspace_size(index_t anchors, index_t classes, std::span<const index_t> anchors_per_level,
                                                 index_t k) {
    constexpr const char* where = "focal::cuda::top_candidates_workspace_size";
    focal::detail::require(anchors >= 0 && classes >= 0 && k >= 0, where, "anchors, classes and k", "non-negative",
                           anchors, ", ", classes, ", ", k);
    const detail::level_table t = detail::make_level_table(anchors_per_level, classes, k, where);
    workspace_plan p;
    detail::plan_candidates(p, 1, t);
    return p.bytes();
}

// The candidates of every level of one image (see the header comment). counts: int32, one per level
// (a level without slots gets 0).
template <class TL, class TF, class TV>
    requires std::floating_point<std::remove_const_t<TL>> && std::integral<TF> && std::floating_point<TV>
void top_candidates(device_matrix_view<TL> logits, std::span<const index_t> anchors_per_level, float logit_threshold,
                    index_t k, device_vector_view<TF> flat, device_vector_view<TV> logit,
                    device_vector_view<std::int32_t> counts, const workspace& ws, cudaStream_t stream) {
    constexpr const char* where = "focal::cuda::top_candidates";
    focal::detail::require_valid_extents(logits, where, "logits");
    focal::detail::require_data(logits, where, "logits");
    focal::detail::require(k >= 0, where, "k", ">= 0", k);
    focal::detail::require(logit_threshold == logit_threshold, where, "logit_threshold", "not NaN", logit_threshold);
    const index_t classes = logits.extent(1);
    const detail::level_table t = detail::make_level_table(anchors_per_level, classes, k, where);
    focal::detail::require(t.anchors == logits.extent(0), where, "anchors_per_level",
                           "counts summing to the logits' rows " + std::to_string(logits.extent(0)), t.anchors);
    const index_t slots = t.slot_begin[t.levels];
    focal::detail::require(flat.extent(0) >= slots && logit.extent(0) >= slots, where, "flat and logit",
                           "of extent >= " + std::to_string(slots) + " (sum over levels of min(k, A_l * K))",
                           focal::detail::shape_string(flat) + " and " + focal::detail::shape_string(logit));
    focal::detail::require(counts.extent(0) >= t.levels, where, "counts", "one per level (" + std::to_string(t.levels) + ")",
                           focal::detail::shape_string(counts));
    // flat is an index within its level: a narrow TF would wrap it.
    index_t widest = 0;
    for (int v = 0; v < t.levels; ++v)
        if (t.capacity[v] > 0) widest = std::max(widest, (t.anchor_begin[v + 1] - t.anchor_begin[v]) * classes);
    focal::detail::require(widest == 0 || static_cast<std::uintmax_t>(widest - 1) <=
                                               static_cast<std::uintmax_t>(std::numeric_limits<TF>::max()),
                           where, "flat", "of an integer type that holds the largest flat index " + std::to_string(widest - 1),
                           "a maximum of ", +std::numeric_limits<TF>::max());
    focal::detail::require_data(flat, where, "flat");
    focal::detail::require_data(logit, where, "logit");
    focal::detail::require_data(counts, where, "counts");
    workspace_plan p;
    const detail::candidate_layout l = detail::plan_candidates(p, 1, t);
    detail::require_workspace(ws, p.bytes(), where);
    if (t.levels == 0) return;
    if (slots == 0) {
        for (int v = 0; v < t.levels; ++v)
            FOCAL_CUDA_CHECK(cudaMemsetAsync(counts.data_handle() + v * counts.stride(0), 0, sizeof(std::int32_t), stream));
        return;
    }
    const detail::logits_ref<std::remove_const_t<TL>> ref{logits.data_handle(), 0, logits.stride(0), logits.stride(1)};
    detail::run_candidates(where, ref, 1, t, logit_threshold, l, ws, stream);
    launch(where, detail::top_candidates_write_kernel<TF, TV>, grid_size(slots), default_block_size, 0, stream, t,
           static_cast<const std::int64_t*>(workspace_at<std::int64_t>(ws, l.begin)),
           static_cast<const std::int32_t*>(workspace_at<std::int32_t>(ws, l.selected)),
           static_cast<const std::uint64_t*>(workspace_at<std::uint64_t>(ws, l.sorted)), flat.data_handle(), flat.stride(0),
           logit.data_handle(), logit.stride(0), counts.data_handle(), counts.stride(0));
}

}  // namespace focal::cuda
