// benchmarks/cuda/harness.cuh: timing for the CUDA benchmarks (no Google Benchmark on GPU machines).
//
//   FOCAL_CUDA_BENCHMARK(name) { ... report(...); }    registers a benchmark (run by main.cu)
//   double ms = time_ms(stream, [&] { launch...; });    median of repetitions, CUDA events
//   report({"case", ms, items, bytes});                 one row of the table / JSON
// A case's name is the key the torchvision script (peers_torchvision_cuda.py) uses for the same
// work, so scripts/gpu_check.sh can put the two figures side by side.
#pragma once

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <focal/cuda/view.cuh>

namespace focal_bench {

struct row {
    std::string name;  // the case, e.g. "focal_loss/201600x80"
    double ms;         // median time of one call
    double items;      // elements (or boxes, images) per call: items/s = items / ms * 1e3
    double bytes;      // bytes read + written per call (0: not a bandwidth case)
};
inline std::vector<row>& rows() {
    static std::vector<row> r;
    return r;
}
inline void report(const row& r) {
    rows().push_back(r);
    std::printf("  %-44s %10.4f ms  %10.3g items/s", r.name.c_str(), r.ms, r.items / r.ms * 1e3);
    if (r.bytes > 0) std::printf("  %8.1f GB/s", r.bytes / r.ms * 1e-6);
    std::printf("\n");
}

struct benchmark_case {
    const char* name;
    void (*run)();
};
inline std::vector<benchmark_case>& registry() {
    static std::vector<benchmark_case> b;
    return b;
}
struct registrar {
    registrar(const char* name, void (*run)()) { registry().push_back({name, run}); }
};

// Median over `repetitions` timed calls of fn (which enqueues work on `stream`), after warm-up.
inline double time_ms(cudaStream_t stream, const std::function<void()>& fn, int repetitions = 20, int warmup = 3) {
    for (int i = 0; i < warmup; ++i) fn();
    cudaEvent_t start, stop;
    FOCAL_CUDA_CHECK(cudaEventCreate(&start));
    FOCAL_CUDA_CHECK(cudaEventCreate(&stop));
    std::vector<double> times;
    for (int i = 0; i < repetitions; ++i) {
        FOCAL_CUDA_CHECK(cudaEventRecord(start, stream));
        fn();
        FOCAL_CUDA_CHECK(cudaEventRecord(stop, stream));
        FOCAL_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        FOCAL_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        times.push_back(ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

}  // namespace focal_bench

#define FOCAL_CUDA_BENCHMARK(name)                                                     \
    static void name();                                                                \
    static const ::focal_bench::registrar focal_bench_registrar_##name(#name, &name); \
    static void name()
