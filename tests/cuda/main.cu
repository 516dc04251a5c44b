// tests/cuda/main.cu: runs the registered CUDA tests (all, or those whose name contains argv[1]).
// Exit status: 0 all passed, 1 a test failed, 77 no CUDA device (ctest reports the test skipped).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>

#include <focal/cuda.cuh>  // every CUDA header in a second translation unit: no multiple definitions

#include "harness.cuh"

int main(int argc, char** argv) {
    int devices = 0;
    const cudaError_t status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess || devices == 0) {
        std::printf("focal CUDA tests: no CUDA device (%s), skipped\n",
                    status != cudaSuccess ? cudaGetErrorString(status) : "0 devices");
        return 77;
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::printf("focal CUDA tests on %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);

    const char* filter = argc > 1 ? argv[1] : "";
    int run = 0, failed_tests = 0;
    for (const auto& test : focal_test::registry()) {
        if (*filter && !std::strstr(test.name, filter)) continue;
        ++run;
        const int before = focal_test::failures();
        const auto start = std::chrono::steady_clock::now();
        try {
            test.run();
            FOCAL_CUDA_CHECK(cudaDeviceSynchronize());
        } catch (const focal_test::require_failed&) {
        } catch (const std::exception& e) {
            focal_test::fail(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        const bool ok = focal_test::failures() == before;
        failed_tests += !ok;
        std::printf("  %-4s %-56s %8.1f ms\n", ok ? "ok" : "FAIL", test.name, ms);
    }
    std::printf("focal CUDA tests: %d run, %d failed, %d failed checks\n", run, failed_tests, focal_test::failures());
    return failed_tests ? 1 : 0;
}
