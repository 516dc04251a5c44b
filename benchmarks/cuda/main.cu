// benchmarks/cuda/main.cu: runs the registered CUDA benchmarks (all, or those whose name contains
// the filter) and writes their rows as JSON for scripts/gpu_check.sh.
//   focal_cuda_bench [--json FILE] [FILTER]
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "harness.cuh"

int main(int argc, char** argv) {
    const char* json_path = nullptr;
    const char* filter = "";
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else filter = argv[i];
    }
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("focal CUDA benchmarks: no CUDA device\n");
        return 77;
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::printf("focal CUDA benchmarks on %s\n", prop.name);
    int failed = 0;
    for (const auto& b : focal_bench::registry()) {
        if (*filter && !std::strstr(b.name, filter)) continue;
        std::printf("%s\n", b.name);
        try {
            b.run();
        } catch (const std::exception& e) {
            std::printf("  FAILED: %s\n", e.what());
            ++failed;
        }
    }
    if (json_path) {
        FILE* f = std::fopen(json_path, "w");
        if (!f) {
            std::printf("cannot write %s\n", json_path);
            return 1;
        }
        std::fprintf(f, "{\"device\": \"%s\", \"rows\": [\n", prop.name);
        const auto& rows = focal_bench::rows();
        for (std::size_t i = 0; i < rows.size(); ++i)
            std::fprintf(f, "  {\"name\": \"%s\", \"ms\": %.6g, \"items\": %.6g, \"bytes\": %.6g}%s\n", rows[i].name.c_str(),
                         rows[i].ms, rows[i].items, rows[i].bytes, i + 1 < rows.size() ? "," : "");
        std::fprintf(f, "]}\n");
        std::fclose(f);
    }
    return failed ? 1 : 0;
}
