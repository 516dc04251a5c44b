// benchmarks/bench_support.hpp: what every focal benchmark program shares: the host's thread count,
// the context lines that say which SIMD build ran, and main()'s Google Benchmark boilerplate.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <thread>

#include <focal/config.hpp>
#if FOCAL_HAS_XSIMD
#include <xsimd/xsimd.hpp>
#endif

namespace focal_bench {

inline std::size_t hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

// Runs Google Benchmark with focal's host context added; register_all() registers the benchmarks.
template <class Register>
int run(int argc, char** argv, const Register& register_all) {
    benchmark::AddCustomContext("focal_hardware_threads", std::to_string(hardware_threads()));
    benchmark::AddCustomContext("focal_simd", FOCAL_HAS_XSIMD ? "xsimd" : "none (scalar fallback)");
#if FOCAL_HAS_XSIMD
    benchmark::AddCustomContext("focal_simd_arch", xsimd::default_arch::name());
    benchmark::AddCustomContext("focal_simd_width", std::to_string(xsimd::batch<float>::size));
#endif
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

}  // namespace focal_bench
