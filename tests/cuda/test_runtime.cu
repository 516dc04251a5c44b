// The CUDA plumbing every entry point relies on: workspace layout and checks, device buffers,
// launch errors.
#include <focal/cuda.cuh>

#include "harness.cuh"

namespace {
__global__ void fill_kernel(focal::cuda::device_vector_view<int> out, int value) {
    for (focal::index_t i = focal::cuda::thread_index(); i < out.extent(0); i += focal::cuda::grid_stride())
        out(i) = value + static_cast<int>(i);
}
}  // namespace

FOCAL_CUDA_TEST(workspace_plan_aligns_every_array) {
    focal::cuda::workspace_plan plan;
    CHECK_EQ(plan.reserve<float>(3), 0u);
    CHECK_EQ(plan.reserve<double>(1), 256u);
    CHECK_EQ(plan.reserve_bytes(1), 512u);
    CHECK_EQ(plan.bytes(), 513u);
    focal::cuda::workspace ws{nullptr, 10};
    CHECK_THROWS_AS(focal::cuda::detail::require_workspace(ws, 11, "test"), focal::error);
    CHECK_THROWS_AS(focal::cuda::detail::require_workspace(ws, 5, "test"), focal::error);  // null data
}

FOCAL_CUDA_TEST(device_buffer_round_trip_and_grid_stride_launch) {
    const std::size_t n = 70000 * 300;  // more than one grid of 65535 blocks x 256 threads
    focal::cuda::device_buffer<int> buffer(n);
    focal::cuda::launch("test", fill_kernel, focal::cuda::grid_size(static_cast<focal::index_t>(n)), 256, 0, nullptr,
                        buffer.view(), 7);
    const std::vector<int> host = buffer.to_host();
    bool all = true;
    for (std::size_t i = 0; i < n; ++i) all = all && host[i] == 7 + static_cast<int>(i);
    CHECK(all);
    CHECK_THROWS_AS(buffer.view(3, 5), focal::error);
}

FOCAL_CUDA_TEST(bad_launch_throws_runtime_error) {
    focal::cuda::device_buffer<int> buffer(4);
    // 2048 threads per block exceeds every GPU's limit of 1024.
    CHECK_THROWS_AS(focal::cuda::launch("test", fill_kernel, 1, 2048, 0, nullptr, buffer.view(), 0),
                    focal::cuda::runtime_error);
}
