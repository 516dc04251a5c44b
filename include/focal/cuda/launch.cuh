// focal/cuda/launch.cuh: grid sizes, thread indices and a checked kernel launch.
//
// Grids depend on the problem size only (never on the device's SM count), so a kernel that
// reduces in block order gives the same bits on every GPU and every run.
// Kernels defined in focal's headers are templates or `static`: a non-template __global__ with
// external linkage would be defined again in every .cu file that includes the header.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "../core/view.hpp"
#include "runtime.cuh"

namespace focal::cuda {

inline constexpr int default_block_size = 256;
// Grid-stride loops cover what a grid of this many blocks does not.
inline constexpr index_t max_grid_size = 65535;

// ceil(n / (block * items_per_thread)) blocks, at least 1, at most max_grid_size.
inline unsigned grid_size(index_t n, int block = default_block_size, index_t items_per_thread = 1) {
    const index_t per_block = static_cast<index_t>(block) * items_per_thread;
    const index_t blocks = (std::max<index_t>(n, 1) + per_block - 1) / per_block;
    return static_cast<unsigned>(std::min(blocks, max_grid_size));
}

FOCAL_DEVICE FOCAL_INLINE index_t thread_index() {
    return static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
FOCAL_DEVICE FOCAL_INLINE index_t grid_stride() { return static_cast<index_t>(gridDim.x) * blockDim.x; }

// kernel<<<grid, block, shared_bytes, stream>>>(args...), then a check that the launch was
// accepted (it does not wait for the kernel). `where` names the entry point in the error.
template <class... Params, class... Args>
void launch(const char* where, void (*kernel)(Params...), unsigned grid, unsigned block, std::size_t shared_bytes,
            cudaStream_t stream, Args&&... args) {
    if (grid == 0) return;
    kernel<<<grid, block, shared_bytes, stream>>>(static_cast<Params>(args)...);
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess)
        throw runtime_error(status, std::string(where) + ": kernel launch failed: " + cudaGetErrorName(status) + " (" +
                                        cudaGetErrorString(status) + ")");
}

}  // namespace focal::cuda
