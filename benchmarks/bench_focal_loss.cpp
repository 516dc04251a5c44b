// benchmarks/bench_focal_loss.cpp: the fused sigmoid focal loss on a RetinaNet-sized input.
//
// Problem (fixed seed, built once): an 800 x 1344 image through RetinaNet's P3..P7 (strides 8 to
// 128, 9 anchors per location) gives N = sum_l ceil(800 / 2^l) * ceil(1344 / 2^l) * 9 = 201600
// anchors; K = 80 classes. Logits ~ normal(-4, 2), float32, row-major N x K. Labels (int32, one per
// anchor): 200 positives with uniform random classes, 2% (N / 50 = 4032) ignored (-2), the rest
// background (-1), at random rows. Reduction: divide_by(number of positives). All buffers are
// 64-byte aligned (as a torch tensor's storage is).
//
// Benchmark names are compared across time; keep them exactly:
//   focal_loss/value_and_grad/scalar                  exec::scalar (the reference path)
//   focal_loss/value_and_grad/simd                    exec::simd, one thread
//   focal_loss/value/simd                             exec::simd, value only (no gradient written)
//   focal_loss/value_and_grad/parallel                exec::parallel, all hardware threads
//   focal_loss/value_and_grad/parallel/threads:<n>    exec::parallel{.threads = n}
//   memory/bandwidth_bound                            streaming b = a * c (+ labels), one thread
//   memory/bandwidth_bound/parallel                   the same on all hardware threads (focal's pool)
//   memory/bandwidth_bound/parallel/threads:<n>       the same on n threads
// Loss benchmarks report items/s = logits elements (N * K) per second and bytes/s = the bytes the
// fused pass must move (read N*K floats + N labels, write N*K gradient floats; the value-only pass
// writes none). The bandwidth bound moves the same bytes as value_and_grad with ordinary stores, so
// loss bytes/s divided by bound bytes/s is the fraction of the memory ceiling reached.
// Every benchmark carries a "focal_threads" counter (the thread count it ran with; not "threads",
// which Google Benchmark's JSON already uses for its own, always 1 here).
// The threaded benchmarks (all under .../parallel) measure wall-clock time (UseRealTime), and Google
// Benchmark then appends "/real_time" to their names: the names in its output (console and JSON
// "name" / "run_name") are e.g. "focal_loss/value_and_grad/parallel/real_time" and
// "focal_loss/value_and_grad/parallel/threads:2/real_time"; that suffix is part of the stable name.
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <new>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <focal/core/execution.hpp>
#include <focal/core/thread_pool.hpp>
#include <focal/core/view.hpp>
#include <focal/loss/classification_loss.hpp>
#include <focal/loss/reduction.hpp>
#include <focal/loss/sigmoid_focal.hpp>

namespace {

using focal::index_t;

// Anchors RetinaNet places on an h x w image: levels P3..P7, 9 anchors (3 scales x 3 ratios) each.
constexpr index_t retinanet_anchors(index_t h, index_t w) {
    index_t n = 0;
    for (int l = 3; l <= 7; ++l) {
        const index_t s = index_t(1) << l;
        n += ((h + s - 1) / s) * ((w + s - 1) / s) * 9;
    }
    return n;
}

constexpr index_t N = retinanet_anchors(800, 1344);
static_assert(N == 201600, "9 * (100*168 + 50*84 + 25*42 + 13*21 + 7*11)");
constexpr index_t K = 80;
constexpr index_t num_positives = 200;
constexpr index_t num_ignored = N / 50;  // 2%
constexpr std::uint64_t seed = 20170807;  // Lin et al., arXiv:1708.02002

constexpr std::int64_t elements = N * K;
constexpr std::int64_t label_bytes = N * static_cast<std::int64_t>(sizeof(std::int32_t));
constexpr std::int64_t float_bytes = elements * static_cast<std::int64_t>(sizeof(float));
constexpr std::int64_t bytes_value_and_grad = 2 * float_bytes + label_bytes;  // read x, labels; write grad
constexpr std::int64_t bytes_value = float_bytes + label_bytes;               // read x, labels

// A 64-byte aligned, zero-filled (so already faulted in) array.
template <class T>
struct aligned_array {
    struct free_deleter {
        void operator()(T* p) const noexcept { std::free(p); }
    };
    std::unique_ptr<T[], free_deleter> data;
    std::size_t size = 0;

    explicit aligned_array(std::size_t n) : size(n) {
        const std::size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
        T* p = static_cast<T*>(std::aligned_alloc(64, bytes));
        if (!p) throw std::bad_alloc();
        std::fill(p, p + n, T(0));
        data.reset(p);
    }
    T* get() const noexcept { return data.get(); }
};

struct problem {
    aligned_array<float> logits{static_cast<std::size_t>(elements)};
    aligned_array<std::int32_t> labels{static_cast<std::size_t>(N)};

    problem() {
        std::mt19937_64 rng(seed);
        std::normal_distribution<float> normal(-4.0f, 2.0f);
        for (std::size_t i = 0; i < logits.size; ++i) logits.get()[i] = normal(rng);
        std::vector<index_t> rows(static_cast<std::size_t>(N));
        std::iota(rows.begin(), rows.end(), index_t(0));
        std::shuffle(rows.begin(), rows.end(), rng);
        std::uniform_int_distribution<std::int32_t> cls(0, static_cast<std::int32_t>(K - 1));
        std::fill(labels.get(), labels.get() + N, std::int32_t(-1));
        for (index_t i = 0; i < num_positives; ++i) labels.get()[rows[static_cast<std::size_t>(i)]] = cls(rng);
        for (index_t i = num_positives; i < num_positives + num_ignored; ++i)
            labels.get()[rows[static_cast<std::size_t>(i)]] = -2;
    }
    focal::matrix_view<const float> x() const { return {logits.get(), N, K}; }
    focal::vector_view<const std::int32_t> y() const { return {labels.get(), N}; }

    static const problem& get() {
        static const problem p;
        return p;
    }
};

const focal::sigmoid_focal_loss loss_policy{};  // alpha = 0.25, gamma = 2 (torchvision's defaults)
const focal::reduction reduce = focal::reduction::divide_by(static_cast<double>(num_positives));

using focal_bench::hardware_threads;

// 1, 2, 4, ... below the hardware thread count, then the hardware thread count.
std::vector<std::size_t> thread_counts() {
    std::vector<std::size_t> counts;
    for (std::size_t t = 1; t < hardware_threads(); t *= 2) counts.push_back(t);
    counts.push_back(hardware_threads());
    return counts;
}

void set_rates(benchmark::State& state, std::int64_t bytes_per_pass, std::size_t threads) {
    state.SetItemsProcessed(state.iterations() * elements);
    state.SetBytesProcessed(state.iterations() * bytes_per_pass);
    state.counters["focal_threads"] = static_cast<double>(threads);
}

template <bool Grad, class Exec>
void bm_focal_loss(benchmark::State& state, const Exec& exec, std::size_t threads) {
    const problem& p = problem::get();
    aligned_array<float> grad(Grad ? static_cast<std::size_t>(elements) : 0);
    focal::loss_output<float> out{};
    if constexpr (Grad) out.grad = focal::matrix_view<float>(grad.get(), N, K);
    double value = 0;
    for (auto _ : state) {
        value = focal::classification_loss(loss_policy, p.x(), p.y(), reduce, out, exec);
        benchmark::DoNotOptimize(value);
        benchmark::DoNotOptimize(grad.get());
        benchmark::ClobberMemory();
    }
    if (!std::isfinite(value)) state.SkipWithError("loss is not finite");
    state.counters["loss"] = value;
    set_rates(state, Grad ? bytes_value_and_grad : bytes_value, threads);
}

// The memory ceiling for the fused pass: per row read the label, then b = a * c over the row's K
// floats (c = 0 on ignored rows, as the loss writes a zero gradient there). Ordinary stores, as the
// loss uses; rows are cut into the same 16384-element blocks the drivers use.
constexpr index_t rows_per_block = std::max<index_t>(1, (index_t(1) << 14) / K);
constexpr index_t n_blocks = (N + rows_per_block - 1) / rows_per_block;

void stream_block(const float* __restrict a, float* __restrict b, const std::int32_t* __restrict labels, index_t block,
                  float c) {
    const index_t end = std::min(N, (block + 1) * rows_per_block);
    for (index_t row = block * rows_per_block; row < end; ++row) {
        const float f = labels[row] == -2 ? 0.0f : c;
        const float* ar = a + row * K;
        float* br = b + row * K;
        for (index_t k = 0; k < K; ++k) br[k] = ar[k] * f;
    }
}

void bm_bandwidth(benchmark::State& state, std::size_t threads) {
    const problem& p = problem::get();
    aligned_array<float> out(static_cast<std::size_t>(elements));
    const float c = 1.0f / static_cast<float>(num_positives);
    for (auto _ : state) {
        if (threads <= 1) {
            for (index_t b = 0; b < n_blocks; ++b) stream_block(p.logits.get(), out.get(), p.labels.get(), b, c);
        } else {
            focal::thread_pool::shared().parallel_for(static_cast<std::size_t>(n_blocks), threads, [&](std::size_t b) {
                stream_block(p.logits.get(), out.get(), p.labels.get(), static_cast<index_t>(b), c);
            });
        }
        benchmark::DoNotOptimize(out.get());
        benchmark::ClobberMemory();
    }
    set_rates(state, bytes_value_and_grad, threads);
}

void register_all() {
    using benchmark::kMillisecond;
    const std::size_t hw = hardware_threads();

    benchmark::RegisterBenchmark("focal_loss/value_and_grad/scalar",
                                 [](benchmark::State& s) { bm_focal_loss<true>(s, focal::exec::scalar, 1); })
        ->Unit(kMillisecond);
    benchmark::RegisterBenchmark("focal_loss/value_and_grad/simd",
                                 [](benchmark::State& s) { bm_focal_loss<true>(s, focal::exec::simd, 1); })
        ->Unit(kMillisecond);
    benchmark::RegisterBenchmark("focal_loss/value/simd",
                                 [](benchmark::State& s) { bm_focal_loss<false>(s, focal::exec::simd, 1); })
        ->Unit(kMillisecond);
    benchmark::RegisterBenchmark("focal_loss/value_and_grad/parallel",
                                 [hw](benchmark::State& s) { bm_focal_loss<true>(s, focal::exec::parallel, hw); })
        ->Unit(kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark("focal_loss/value_and_grad/parallel",
                                 [](benchmark::State& s) {
                                     const auto n = static_cast<std::size_t>(s.range(0));
                                     bm_focal_loss<true>(s, focal::exec::parallel_policy{.threads = n}, n);
                                 })
        ->ArgName("threads")
        ->Apply([](benchmark::internal::Benchmark* b) {
            for (std::size_t n : thread_counts()) b->Arg(static_cast<std::int64_t>(n));
        })
        ->Unit(kMillisecond)
        ->UseRealTime();

    benchmark::RegisterBenchmark("memory/bandwidth_bound", [](benchmark::State& s) { bm_bandwidth(s, 1); })
        ->Unit(kMillisecond);
    benchmark::RegisterBenchmark("memory/bandwidth_bound/parallel",
                                 [hw](benchmark::State& s) { bm_bandwidth(s, hw); })
        ->Unit(kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark("memory/bandwidth_bound/parallel",
                                 [](benchmark::State& s) { bm_bandwidth(s, static_cast<std::size_t>(s.range(0))); })
        ->ArgName("threads")
        ->Apply([](benchmark::internal::Benchmark* b) {
            for (std::size_t n : thread_counts()) b->Arg(static_cast<std::int64_t>(n));
        })
        ->Unit(kMillisecond)
        ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::AddCustomContext("focal_anchors_N", std::to_string(N));
    benchmark::AddCustomContext("focal_classes_K", std::to_string(K));
    benchmark::AddCustomContext("focal_elements", std::to_string(elements));
    benchmark::AddCustomContext("focal_positives", std::to_string(num_positives));
    benchmark::AddCustomContext("focal_ignored", std::to_string(num_ignored));
    benchmark::AddCustomContext("focal_seed", std::to_string(seed));
    return focal_bench::run(argc, argv, register_all);
}
