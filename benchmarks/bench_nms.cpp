// benchmarks/bench_nms.cpp: greedy, class-aware and Soft-NMS on clustered boxes.
//
// Input: N boxes in N / 20 clusters, as tools/make_fixtures.py draws them (cluster boxes with
// centres uniform on a 1000 x 800 image, widths 16..300, aspect 0.5..2; members jittered by
// normal(0, 6) px per coordinate; x2 >= x1 + 1, y2 >= y1 + 1), scores uniform in [0, 1] rounded to
// 2 decimals (many exact ties), classes uniform in 0..4, float32 boxes and scores, int64 classes.
// With FOCAL_NMS_INPUTS=<dir> the arrays are read from <dir>/{boxes,scores,classes}_<N>.npy
// (written by benchmarks/peers_nms.py, so that focal and its peers see the very same boxes);
// without it they are drawn here with std::mt19937 (seed 1), the same distribution.
//
// Benchmark names (stable; compare_nms.py matches on them):
//   nms/greedy/<N>                 focal::nms(greedy_nms{0.5}), exec::simd, N = 5000, 20000, 100000
//   nms/greedy_scalar/<N>          the same with exec::scalar, N = 5000, 20000
//   nms/batched/<N>                batched_nms{0.5} per class (5 classes), exec::simd, N = 5000, 20000
//   nms/batched_parallel/<N>       the same, exec::parallel (classes on all threads)
//   nms/batched_torchvision/<N>    batched_mode::torchvision, exec::simd
//   nms/soft/<N>                   soft_nms Gaussian (sigma 0.5, score threshold 0.001), exec::simd,
//                                  N = 5000, 20000
//   nms/soft_linear/<N>            soft_nms linear (IoU threshold 0.3, score threshold 0.001)
// items/s = input boxes per second; the "kept" counter is the number of boxes kept.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <focal/nms.hpp>

namespace {

using focal::index_t;

struct input {
    index_t n = 0;
    std::vector<float> boxes, scores;
    std::vector<std::int64_t> classes;
};

// The array of a little-endian, C-order .npy file of dtype `descr` ('<f4' or '<i8').
template <class T>
std::vector<T> read_npy(const std::string& path, const char* descr) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    char magic[8];
    in.read(magic, 8);
    if (std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(path + ": not a .npy file");
    std::uint32_t header_len = 0;
    if (magic[6] == 1) {
        unsigned char b[2];
        in.read(reinterpret_cast<char*>(b), 2);
        header_len = b[0] | (b[1] << 8);
    } else {
        unsigned char b[4];
        in.read(reinterpret_cast<char*>(b), 4);
        header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (std::uint32_t(b[3]) << 24);
    }
    std::string header(header_len, ' ');
    in.read(header.data(), header_len);
    if (header.find(descr) == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
        throw std::runtime_error(path + ": expected dtype " + descr + " in C order, header " + header);
    const auto open = header.find('(', header.find("'shape'")), close = header.find(')', open);
    std::size_t count = 1;
    for (std::size_t p = open + 1; p < close;) {
        const std::size_t q = header.find_first_of(",)", p);
        const std::string dim = header.substr(p, q - p);
        if (dim.find_first_not_of(' ') != std::string::npos) count *= std::stoull(dim);
        p = q + 1;
    }
    std::vector<T> data(count);
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(count * sizeof(T)));
    if (!in) throw std::runtime_error(path + ": truncated");
    return data;
}

input generate(index_t n) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<double> u(0, 1);
    std::normal_distribution<double> jitter(0, 6);
    const index_t m = std::max<index_t>(1, n / 20);
    std::vector<float> centres(static_cast<std::size_t>(4 * m));
    for (index_t c = 0; c < m; ++c) {
        const double cx = 1000 * u(rng), cy = 800 * u(rng), w = 16 + 284 * u(rng), h = w * (0.5 + 1.5 * u(rng));
        centres[4 * c] = float(cx - w / 2), centres[4 * c + 1] = float(cy - h / 2);
        centres[4 * c + 2] = float(cx + w / 2), centres[4 * c + 3] = float(cy + h / 2);
    }
    input in;
    in.n = n;
    in.boxes.resize(static_cast<std::size_t>(4 * n));
    in.scores.resize(static_cast<std::size_t>(n));
    in.classes.resize(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) {
        const auto c = std::min<index_t>(m - 1, static_cast<index_t>(u(rng) * double(m)));
        float* b = &in.boxes[4 * i];
        for (int k = 0; k < 4; ++k) b[k] = centres[4 * c + k] + float(jitter(rng));
        b[2] = std::max(b[2], b[0] + 1);
        b[3] = std::max(b[3], b[1] + 1);
        in.scores[i] = float(std::round(u(rng) * 100) / 100);
    }
    for (index_t i = 0; i < n; ++i) in.classes[i] = std::min<std::int64_t>(4, std::int64_t(u(rng) * 5));
    return in;
}

const input& problem(index_t n) {
    static std::map<index_t, input> cache;
    auto it = cache.find(n);
    if (it != cache.end()) return it->second;
    input in;
    if (const char* dir = std::getenv("FOCAL_NMS_INPUTS"); dir && *dir) {
        const std::string d(dir), s = "_" + std::to_string(n) + ".npy";
        in.n = n;
        in.boxes = read_npy<float>(d + "/boxes" + s, "<f4");
        in.scores = read_npy<float>(d + "/scores" + s, "<f4");
        in.classes = read_npy<std::int64_t>(d + "/classes" + s, "<i8");
        if (in.boxes.size() != std::size_t(4 * n) || in.scores.size() != std::size_t(n) || in.classes.size() != std::size_t(n))
            throw std::runtime_error("FOCAL_NMS_INPUTS: arrays of N = " + std::to_string(n) + " have the wrong sizes");
    } else {
        in = generate(n);
    }
    return cache.emplace(n, std::move(in)).first->second;
}


// The input of size n, or nullptr after reporting why it is missing (e.g. a FOCAL_NMS_INPUTS
// directory written for other sizes).
const input* problem_or_skip(benchmark::State& state, index_t n) {
    try {
        return &problem(n);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return nullptr;
    }
}

template <class Policy, class Exec>
void bench_greedy(benchmark::State& state, index_t n, Policy policy, Exec exec) {
    const input* p = problem_or_skip(state, n);
    if (!p) return;
    const input& in = *p;
    std::vector<index_t> keep(static_cast<std::size_t>(n));
    const auto boxes = focal::make_view(in.boxes.data(), n, 4);
    const auto scores = focal::make_view(in.scores.data(), n);
    index_t kept = 0;
    for (auto _ : state) {
        if constexpr (std::is_same_v<Policy, focal::batched_nms>)
            kept = focal::nms(policy, boxes, scores, focal::make_view(in.classes.data(), n),
                              focal::make_view(keep.data(), n), exec);
        else
            kept = focal::nms(policy, boxes, scores, focal::make_view(keep.data(), n), exec);
        benchmark::DoNotOptimize(keep.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n);
    state.counters["kept"] = static_cast<double>(kept);
}

void bench_soft(benchmark::State& state, index_t n, focal::soft_nms policy) {
    const input* p = problem_or_skip(state, n);
    if (!p) return;
    const input& in = *p;
    std::vector<index_t> keep(static_cast<std::size_t>(n));
    std::vector<float> kept_scores(static_cast<std::size_t>(n));
    index_t kept = 0;
    for (auto _ : state) {
        kept = focal::nms(policy, focal::make_view(in.boxes.data(), n, 4), focal::make_view(in.scores.data(), n),
                          focal::make_view(keep.data(), n), focal::make_view(kept_scores.data(), n), focal::exec::simd);
        benchmark::DoNotOptimize(keep.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n);
    state.counters["kept"] = static_cast<double>(kept);
}

void register_all() {
    for (index_t n : {5000, 20000, 100000})
        benchmark::RegisterBenchmark(("nms/greedy/" + std::to_string(n)).c_str(), [n](benchmark::State& s) {
            bench_greedy(s, n, focal::greedy_nms{.iou_threshold = 0.5}, focal::exec::simd);
        })->Unit(benchmark::kMillisecond);
    for (index_t n : {5000, 20000})
        benchmark::RegisterBenchmark(("nms/greedy_scalar/" + std::to_string(n)).c_str(), [n](benchmark::State& s) {
            bench_greedy(s, n, focal::greedy_nms{.iou_threshold = 0.5}, focal::exec::scalar);
        })->Unit(benchmark::kMillisecond);
    for (index_t n : {5000, 20000}) {
        benchmark::RegisterBenchmark(("nms/batched/" + std::to_string(n)).c_str(), [n](benchmark::State& s) {
            bench_greedy(s, n, focal::batched_nms{.iou_threshold = 0.5}, focal::exec::simd);
        })->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("nms/batched_parallel/" + std::to_string(n)).c_str(), [n](benchmark::State& s) {
            bench_greedy(s, n, focal::batched_nms{.iou_threshold = 0.5}, focal::exec::parallel);
        })->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("nms/batched_torchvision/" + std::to_string(n)).c_str(), [n](benchmark::State& s) {
            bench_greedy(s, n, focal::batched_nms{.iou_threshold = 0.5, .mode = focal::batched_mode::torchvision},
                         focal::exec::simd);
        })->Unit(benchmark::kMillisecond);
    }
    for (index_t n : {5000, 20000}) {
        benchmark::RegisterBenchmark(("nms/soft/" + std::to_string(n)).c_str(), [n](benchmark::State& s) {
            bench_soft(s, n, focal::soft_nms{.decay = focal::soft_decay::gaussian, .sigma = 0.5f, .score_threshold = 0.001f});
        })->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("nms/soft_linear/" + std::to_string(n)).c_str(), [n](benchmark::State& s) {
            bench_soft(s, n, focal::soft_nms{.decay = focal::soft_decay::linear, .iou_threshold = 0.3, .score_threshold = 0.001f});
        })->Unit(benchmark::kMillisecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
