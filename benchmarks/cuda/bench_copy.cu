// Device-to-device copy bandwidth: the roofline the elementwise kernels (focal loss) are held to.
#include "harness.cuh"

FOCAL_CUDA_BENCHMARK(device_copy) {
    // The focal loss case's traffic: 201,600 x 80 float logits read, gradient written.
    const std::size_t n = 201600ull * 80;
    focal::cuda::device_buffer<float> a(n), b(n);
    FOCAL_CUDA_CHECK(cudaMemset(a.data(), 0, n * sizeof(float)));
    const double ms = focal_bench::time_ms(nullptr, [&] {
        FOCAL_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), n * sizeof(float), cudaMemcpyDeviceToDevice, nullptr));
    });
    focal_bench::report({"copy/201600x80", ms, static_cast<double>(n), 2.0 * n * sizeof(float)});
}
