// focal/cuda/detail/reduce.cuh: the deterministic sums of the CUDA loss drivers.
//
//   block_sum(acc, shared)           the block's accumulators added by the fixed tree (thread 0 gets it)
//   finalize_kernel<<<1, 256>>>      per image: its partials added in a fixed order, times its scale;
//                                    writes per-image values and / or their sum (image order)
//   count_kernel                     per image: rows whose label satisfies a predicate (integer
//                                    atomics: exact, so the order does not matter)
// The order is the one described in focal/loss/detail/device_loss.hpp; all sums are in double and
// no floating-point atomics are used, so a run's bits depend on its inputs only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../../core/labels.hpp"
#include "../../core/view.hpp"
#include "../../loss/detail/device_loss.hpp"

namespace focal::cuda::detail {

using focal::detail::reduce_block;

// Adds every thread's acc (blockDim.x == reduce_block); the sum is valid in thread 0. shared holds
// reduce_block doubles. Ends with a barrier, so shared may be reused after it.
FOCAL_DEVICE FOCAL_INLINE double block_sum(double acc, double* shared) {
    const int t = static_cast<int>(threadIdx.x);
    shared[t] = acc;
    __syncthreads();
    for (int width = reduce_block / 2; width > 0; width /= 2) {
        focal::detail::tree_level(shared, t, width);
        __syncthreads();
    }
    const double total = shared[0];
    __syncthreads();
    return total;
}

// One block of reduce_block threads. partials: batch x blocks_per_image. For image b:
// value_b = (sum of its partials) * scale.at(b); values[b] = value_b when values != nullptr;
// total[0] = value_0 + value_1 + ... (in double, image order) when total != nullptr.
template <class Scale, class V>
__global__ void __launch_bounds__(reduce_block)
    finalize_kernel(const double* partials, index_t blocks_per_image, index_t batch, Scale scale, V* values, V* total) {
    __shared__ double shared[reduce_block];
    const index_t t = threadIdx.x;
    double sum_of_values = 0;
    for (index_t b = 0; b < batch; ++b) {
        const double* p = partials + b * blocks_per_image;
        double acc = 0;
        for (index_t i = t; i < blocks_per_image; i += reduce_block) acc += p[i];
        const double sum = block_sum(acc, shared);
        if (t == 0) {
            const double value = sum * scale.at(b);
            if (values != nullptr) values[b] = static_cast<V>(value);
            sum_of_values += value;
        }
    }
    if (t == 0 && total != nullptr) total[0] = static_cast<V>(sum_of_values);
}

// counts[b] += number of rows i of image b with pred(labels(b, i)); counts must be zeroed before.
// Grid: (blocks, batch) flattened as blockIdx.x = b * blocks + block.
template <class Label, class Pred>
__global__ void __launch_bounds__(reduce_block)
    count_kernel(view<const Label, 2, device_space> labels, index_t blocks, Pred pred, unsigned long long* counts) {
    __shared__ unsigned int shared[reduce_block];
    const index_t b = blockIdx.x / blocks, block = blockIdx.x % blocks;
    const index_t n = labels.extent(1);
    unsigned int c = 0;
    for (index_t i = block * reduce_block + threadIdx.x; i < n; i += blocks * reduce_block)
        c += pred(static_cast<std::int64_t>(labels(b, i))) ? 1u : 0u;
    const int t = static_cast<int>(threadIdx.x);
    shared[t] = c;
    __syncthreads();
    for (int width = reduce_block / 2; width > 0; width /= 2) {
        if (t < width) shared[t] += shared[t + width];
        __syncthreads();
    }
    if (t == 0 && shared[0] != 0) atomicAdd(counts + b, static_cast<unsigned long long>(shared[0]));
}

struct is_ignored {
    FOCAL_DEVICE FOCAL_INLINE bool operator()(std::int64_t label) const { return focal::detail::is_ignored_label(label); }
};
struct is_positive {
    FOCAL_DEVICE FOCAL_INLINE bool operator()(std::int64_t label) const { return focal::detail::is_positive_label(label); }
};

}  // namespace focal::cuda::detail
