// benchmarks/bench_postprocess.cpp: RetinaNet post-processing of one 800 x 1344 image, 91 classes.
//
// Problem (fixed seed): torchvision's anchors for 800 x 1344 (201,600 on P3-P7), head outputs as
// in the reference fixtures: logits ~ normal(-4, 2), box deltas ~ normal(0, 0.3). That puts ~30%
// of the 18.3M (anchor, class) pairs above the 0.05 score threshold: the top-k selection is
// exercised for real. Settings: retinanet_postprocess::torchvision() (top 1000 per level, NMS 0.5,
// 300 detections).
// Names (stable): postprocess/retinanet/800x1344x91/simd, .../parallel (all threads, real time).
// items/s = images per second.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include <focal/anchor/generate.hpp>
#include <focal/anchor/presets.hpp>
#include <focal/retinanet/postprocess.hpp>

namespace {

using focal::index_t;

struct problem {
    static constexpr index_t height = 800, width = 1344, classes = 91;
    std::vector<float> anchors, logits, deltas;
    std::vector<index_t> per_level;
    index_t n = 0;
    problem() {
        const auto spec = focal::anchor_presets::torchvision();
        anchors = focal::make_anchors(spec, focal::size2d{height, width});
        for (const auto& level : focal::anchor_layout(spec, focal::size2d{height, width})) per_level.push_back(level.count);
        n = static_cast<index_t>(anchors.size() / 4);
        std::mt19937 rng(2017);
        std::normal_distribution<float> logit(-4.0f, 2.0f), delta(0.0f, 0.3f);
        logits.resize(static_cast<std::size_t>(n * classes));
        deltas.resize(static_cast<std::size_t>(n * 4));
        for (auto& x : logits) x = logit(rng);
        for (auto& d : deltas) d = delta(rng);
    }
};

const problem& shared_problem() {
    static const problem p;
    return p;
}

template <class Exec>
void run(benchmark::State& state, const Exec& exec) {
    const auto& p = shared_problem();
    const auto settings = focal::retinanet_postprocess::torchvision();
    std::vector<float> boxes(300 * 4), scores(300);
    std::vector<std::int64_t> labels(300);
    const focal::detections_output<float, std::int64_t> out{focal::make_view(boxes.data(), 300, 4), focal::make_view(scores.data(), 300),
                                                            focal::make_view(labels.data(), 300)};
    index_t kept = 0;
    for (auto _ : state) {
        kept = focal::postprocess(settings, focal::make_view(p.logits.data(), p.n, problem::classes), focal::make_view(p.deltas.data(), p.n, 4),
                                  focal::make_view(p.anchors.data(), p.n, 4), std::span<const index_t>(p.per_level),
                                  focal::image_size{problem::height, problem::width}, out, exec);
        benchmark::DoNotOptimize(kept);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["detections"] = static_cast<double>(kept);
}

void simd(benchmark::State& state) { run(state, focal::exec::simd); }
void parallel(benchmark::State& state) { run(state, focal::exec::parallel); }

}  // namespace

BENCHMARK(simd)->Name("postprocess/retinanet/800x1344x91/simd")->Unit(benchmark::kMillisecond);
BENCHMARK(parallel)->Name("postprocess/retinanet/800x1344x91/parallel")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
