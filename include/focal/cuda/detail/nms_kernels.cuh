// focal/cuda/detail/nms_kernels.cuh: the kernels of the bitmask greedy NMS (cuda/nms.cuh) and of
// RetinaNet post-processing (cuda/postprocess.cuh). The per-pair and per-word logic is
// nms/detail/bitmask.hpp's, shared with the host tests.
//
// Every kernel may run on a batch of independent problems ("images"): blockIdx.z (mask) or
// blockIdx.x (walk) picks the image; image i owns rows [i * stride, i * stride + n_i).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../../box/box4.hpp"
#include "../../core/view.hpp"
#include "../../nms/detail/bitmask.hpp"
#include "../launch.cuh"

namespace focal::cuda::detail {

inline constexpr int nms_block_rows = focal::detail::mask_word_bits;  // rows (and columns) per mask tile
inline constexpr int nms_walk_threads = 256;
// The mask grid has one block per (row word, column word): at most 65535 row words.
inline constexpr index_t nms_max_boxes = index_t(nms_block_rows) * 65535;

// keys[i] = score_sort_key(scores[i]), order[i] = i.
template <class TS>
__global__ void nms_keys_kernel(const TS* scores, index_t stride, index_t n, std::uint32_t* keys, std::int32_t* order) {
    for (index_t i = thread_index(); i < n; i += grid_stride()) {
        keys[i] = focal::detail::score_sort_key(static_cast<float>(scores[i * stride]));
        order[i] = static_cast<std::int32_t>(i);
    }
}

// The largest coordinate of every box (NaN if any is NaN), -inf for no box; one block.
template <class TB>
__global__ void nms_max_coordinate_kernel(const TB* boxes, index_t s0, index_t s1, index_t n, float* step) {
    __shared__ float partial[nms_walk_threads];
    float m = -__int_as_float(0x7f800000);
    for (index_t i = threadIdx.x; i < n; i += blockDim.x)
        for (int c = 0; c < 4; ++c) m = focal::detail::max_coordinate_combine(m, static_cast<float>(boxes[i * s0 + c * s1]));
    partial[threadIdx.x] = m;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half)
            partial[threadIdx.x] = focal::detail::max_coordinate_combine(partial[threadIdx.x], partial[threadIdx.x + half]);
        __syncthreads();
    }
    if (threadIdx.x == 0) *step = __fadd_rn(partial[0], 1.0f);  // max + 1
}

// sorted[r] = boxes[order[r]] (shifted by class * *step when step is given), sorted_class[r] =
// classes[order[r]] (when classes is given; 0 when shifted: the trick is class-agnostic).
template <class TB, class TC>
__global__ void nms_sorted_boxes_kernel(const TB* boxes, index_t s0, index_t s1, const TC* classes, index_t cs,
                                        const std::int32_t* order, index_t n, const float* step, box4<float>* sorted,
                                        std::int64_t* sorted_class) {
    for (index_t r = thread_index(); r < n; r += grid_stride()) {
        const index_t i = order[r];
        box4<float> b{{static_cast<float>(boxes[i * s0]), static_cast<float>(boxes[i * s0 + s1]),
                       static_cast<float>(boxes[i * s0 + 2 * s1]), static_cast<float>(boxes[i * s0 + 3 * s1])}};
        const std::int64_t c = classes != nullptr ? static_cast<std::int64_t>(classes[i * cs]) : 0;
        if (step != nullptr) b = focal::detail::offset_box(b, classes[i * cs], *step);  // trick: classes given
        sorted[r] = b;
        if (sorted_class != nullptr) sorted_class[r] = step != nullptr ? 0 : c;
    }
}

// mask[image][r][w] for the tile (row word blockIdx.y, column word blockIdx.x) of image
// blockIdx.z; tiles below the diagonal are never read and not written. 64 threads.
// counts: rows per image (nullptr: n for every image).
static __global__ void nms_mask_kernel(const box4<float>* sorted, const std::int64_t* sorted_class, index_t image_stride,
                                index_t n, const std::int32_t* counts, index_t words, float t, std::uint64_t* mask) {
    const index_t image = blockIdx.z, row_word = blockIdx.y, col_word = blockIdx.x;
    if (col_word < row_word) return;
    const index_t rows = counts != nullptr ? static_cast<index_t>(counts[image]) : n;
    const index_t row0 = row_word * nms_block_rows, col0 = col_word * nms_block_rows;
    if (row0 >= rows || col0 >= rows) return;
    __shared__ box4<float> cols[nms_block_rows];
    __shared__ std::int64_t col_class[nms_block_rows];
    const box4<float>* boxes = sorted + image * image_stride;
    const std::int64_t* classes = sorted_class != nullptr ? sorted_class + image * image_stride : nullptr;
    const int count = static_cast<int>(rows - col0 < nms_block_rows ? rows - col0 : nms_block_rows);
    if (static_cast<int>(threadIdx.x) < count) {
        cols[threadIdx.x] = boxes[col0 + threadIdx.x];
        col_class[threadIdx.x] = classes != nullptr ? classes[col0 + threadIdx.x] : 0;
    }
    __syncthreads();
    const index_t row = row0 + threadIdx.x;
    if (row >= rows) return;
    const std::int64_t row_class = classes != nullptr ? classes[row] : 0;
    mask[(image * image_stride + row) * words + col_word] =
        focal::detail::mask_word(row, boxes[row], row_class, col0, count, cols, classes != nullptr ? col_class : nullptr, t);
}

// The greedy walk, one block per image: rows in sorted order, a row kept unless removed, its mask
// ORed into the removed words after its own; stops at the first NaN key, after max_out kept rows
// or at the image's row count. emit(image, position, row) receives the kept rows in order,
// done(image, count) the count. removed: words per image of scratch.
template <class Emit, class Done>
__global__ void nms_walk_kernel(const std::uint64_t* mask, const std::uint32_t* keys, index_t image_stride, index_t n,
                                const std::int32_t* counts, index_t words, index_t max_out, std::uint64_t* removed_all,
                                Emit emit, Done done) {
    const index_t image = blockIdx.x;
    const index_t rows = counts != nullptr ? static_cast<index_t>(counts[image]) : n;
    const std::uint64_t* m = mask + image * image_stride * words;
    const std::uint32_t* key = keys + image * image_stride;
    std::uint64_t* removed = removed_all + image * words;
    __shared__ std::uint64_t diag[nms_block_rows];
    __shared__ int kept_j[nms_block_rows];
    __shared__ int kept_in_word, live_rows;
    __shared__ index_t total;
    const index_t used_words = focal::detail::mask_words(rows);
    for (index_t w = threadIdx.x; w < used_words; w += blockDim.x) removed[w] = 0;
    if (threadIdx.x == 0) total = 0;
    __syncthreads();
    for (index_t w = 0; w < used_words; ++w) {
        const index_t row0 = w * nms_block_rows;
        const int in_word = static_cast<int>(rows - row0 < nms_block_rows ? rows - row0 : nms_block_rows);
        if (threadIdx.x == 0) live_rows = in_word;
        __syncthreads();
        if (static_cast<int>(threadIdx.x) < in_word) {
            const index_t r = row0 + threadIdx.x;
            diag[threadIdx.x] = m[r * words + w];
            // NaN keys sort last: the first one ends the walk.
            const bool nan = key[r] == focal::detail::nan_sort_key;
            const bool first_nan = nan && (threadIdx.x == 0 || key[r - 1] != focal::detail::nan_sort_key);
            if (first_nan) live_rows = static_cast<int>(threadIdx.x);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            const index_t left = max_out < 0 ? index_t(nms_block_rows) : max_out - total;
            kept_in_word = focal::detail::resolve_word(removed[w], diag, live_rows, left, kept_j);
            for (int k = 0; k < kept_in_word; ++k) emit(image, total + k, row0 + kept_j[k]);
            total += kept_in_word;
        }
        __syncthreads();
        const bool finished = live_rows < in_word || (max_out >= 0 && total >= max_out) || w + 1 == used_words;
        if (finished) break;
        for (index_t v = w + 1 + threadIdx.x; v < used_words; v += blockDim.x) {
            std::uint64_t acc = removed[v];
            for (int k = 0; k < kept_in_word; ++k) acc |= m[(row0 + kept_j[k]) * words + v];
            removed[v] = acc;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) done(image, total);
}

// Launches the mask kernel over images x words x words tiles.
inline void launch_nms_mask(const char* where, const box4<float>* sorted, const std::int64_t* sorted_class,
                            index_t image_stride, index_t n, const std::int32_t* counts, index_t images, float t,
                            std::uint64_t* mask, cudaStream_t stream) {
    const index_t words = focal::detail::mask_words(n);
    if (words == 0 || images == 0) return;
    const dim3 grid(static_cast<unsigned>(words), static_cast<unsigned>(words), static_cast<unsigned>(images));
    nms_mask_kernel<<<grid, nms_block_rows, 0, stream>>>(sorted, sorted_class, image_stride, n, counts, words, t, mask);
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess)
        throw runtime_error(status, std::string(where) + ": kernel launch failed: " + cudaGetErrorName(status) + " (" +
                                        cudaGetErrorString(status) + ")");
}

}  // namespace focal::cuda::detail
