// benchmarks/bench_anchors_matcher.cpp: anchors, IoU + matching, box coding at RetinaNet's size.
//
// Problem (fixed seed, built once): an 800 x 1344 batch through torchvision's anchor preset
// (P3-P7, 9 anchors per cell) gives N = 201,600 anchors. Ground truth: 20 boxes, centres uniform
// in the image, width uniform in [16, 300], height = width x uniform [0.5, 2] (the fixtures'
// rand_boxes). Matcher: matcher_presets::torchvision() = Matcher(0.5, 0.4, True). Coder:
// delta_xywh_coder{} (weights 1). encode: each anchor against the gt its row matches (gt 0 for
// unmatched rows, as torchvision's matched_gt_boxes); decode: deltas ~ normal(0, 1).
//
// Benchmark names are compared across time; keep them exactly:
//   anchors/800x1344                 generate_anchors, exec::simd, one thread
//   matcher/201600x20                match_anchors (IoU fused, low-quality matches), exec::simd
//   matcher/201600x20/scalar         the same, exec::scalar
//   targets/201600x20                match_anchors + build_targets (labels, encoded positives)
//   coder/encode/201600              encode_boxes, exec::simd
//   coder/decode/201600              decode_boxes, exec::simd
//   <each of the above but scalar>/parallel     exec::parallel on all hardware threads
// The parallel ones measure wall-clock time (UseRealTime): Google Benchmark appends
// "/real_time" to their names, e.g. "matcher/201600x20/parallel/real_time".
// items/s = anchors (boxes) per second: 201,600 per iteration for every benchmark. Every
// benchmark carries "focal_threads" (the thread count it ran with).
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include <algorithm>
#include <cstdint>
#include <focal/anchor/generate.hpp>
#include <focal/anchor/presets.hpp>
#include <focal/assign/match.hpp>
#include <focal/assign/max_iou_matcher.hpp>
#include <focal/assign/targets.hpp>
#include <focal/coder/box_coding.hpp>
#include <focal/coder/delta_xywh.hpp>
#include <focal/core/execution.hpp>
#include <focal/core/view.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using focal::index_t;

constexpr focal::size2d image{800, 1344};
constexpr index_t num_gt = 20;
constexpr std::uint64_t seed = 20170807;  // Lin et al., arXiv:1708.02002

struct problem {
    focal::anchor_spec spec = focal::anchor_presets::torchvision();
    std::vector<float> anchors = focal::make_anchors<float>(spec, image);
    index_t n = static_cast<index_t>(anchors.size() / 4);
    std::vector<float> gt;
    std::vector<std::int64_t> gt_labels;
    std::vector<std::int64_t> matches;
    std::vector<float> matched_gt, deltas;

    problem() {
        std::mt19937_64 rng(seed);
        std::uniform_real_distribution<float> cx(0, 1344), cy(0, 800), size(16, 300), aspect(0.5f, 2.0f);
        std::uniform_int_distribution<std::int64_t> label(0, 79);
        for (index_t j = 0; j < num_gt; ++j) {
            const float x = cx(rng), y = cy(rng), w = size(rng), h = w * aspect(rng);
            gt.insert(gt.end(), {x - w / 2, y - h / 2, x + w / 2, y + h / 2});
            gt_labels.push_back(label(rng));
        }
        matches.resize(static_cast<std::size_t>(n));
        focal::match_anchors(focal::matcher_presets::torchvision(), a(), g(), focal::match_output{focal::make_view(matches.data(), n)});
        matched_gt.resize(anchors.size());
        for (index_t i = 0; i < n; ++i)
            for (index_t c = 0; c < 4; ++c) matched_gt[i * 4 + c] = gt[std::max<std::int64_t>(matches[i], 0) * 4 + c];
        std::normal_distribution<float> normal(0.0f, 1.0f);
        deltas.resize(anchors.size());
        for (float& d : deltas) d = normal(rng);
    }
    focal::matrix_view<const float> a() const { return {anchors.data(), n, 4}; }
    focal::matrix_view<const float> g() const { return {gt.data(), num_gt, 4}; }

    static const problem& get() {
        static const problem p;
        return p;
    }
};

using focal_bench::hardware_threads;

void finish(benchmark::State& state, index_t items, std::size_t threads) {
    state.SetItemsProcessed(state.iterations() * items);
    state.counters["focal_threads"] = static_cast<double>(threads);
}

template <class Exec>
void bm_anchors(benchmark::State& state, const Exec& exec, std::size_t threads) {
    const problem& p = problem::get();
    std::vector<float> out(p.anchors.size());
    for (auto _ : state) {
        focal::generate_anchors(p.spec, image, focal::make_view(out.data(), p.n, index_t(4)), exec);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    if (out != p.anchors) state.SkipWithError("anchors differ from the reference run");
    finish(state, p.n, threads);
}

template <class Exec>
void bm_matcher(benchmark::State& state, const Exec& exec, std::size_t threads) {
    const problem& p = problem::get();
    std::vector<std::int64_t> out(static_cast<std::size_t>(p.n));
    const auto matcher = focal::matcher_presets::torchvision();
    for (auto _ : state) {
        focal::match_anchors(matcher, p.a(), p.g(), focal::match_output{focal::make_view(out.data(), p.n)}, exec);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    if (out != p.matches) state.SkipWithError("codes differ from the reference run");
    state.counters["positives"] =
        static_cast<double>(std::count_if(out.begin(), out.end(), [](auto c) { return c >= 0; }));
    finish(state, p.n, threads);
}

template <class Exec>
void bm_targets(benchmark::State& state, const Exec& exec, std::size_t threads) {
    const problem& p = problem::get();
    std::vector<std::int32_t> labels(static_cast<std::size_t>(p.n));
    std::vector<float> box(p.anchors.size());
    index_t positives = 0;
    for (auto _ : state) {
        positives =
            focal::assign_targets(focal::matcher_presets::torchvision(), focal::delta_xywh_coder{}, p.a(), p.g(),
                                  focal::vector_view<const std::int64_t>(p.gt_labels.data(), num_gt),
                                  focal::make_view(labels.data(), p.n), focal::make_view(box.data(), p.n, 4), exec);
        benchmark::DoNotOptimize(box.data());
        benchmark::ClobberMemory();
    }
    state.counters["positives"] = static_cast<double>(positives);
    finish(state, p.n, threads);
}

template <bool Encode, class Exec>
void bm_coder(benchmark::State& state, const Exec& exec, std::size_t threads) {
    const problem& p = problem::get();
    std::vector<float> out(p.anchors.size());
    const focal::matrix_view<const float> in(Encode ? p.matched_gt.data() : p.deltas.data(), p.n, 4);
    for (auto _ : state) {
        if constexpr (Encode)
            focal::encode_boxes(focal::delta_xywh_coder{}, in, p.a(), focal::make_view(out.data(), p.n, 4), exec);
        else
            focal::decode_boxes(focal::delta_xywh_coder{}, in, p.a(), focal::make_view(out.data(), p.n, 4), exec);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    finish(state, p.n, threads);
}

// name (one thread, exec::simd) and name + "/parallel" (all threads, wall-clock time).
template <class Fn>
void register_pair(const std::string& name, Fn fn) {
    const std::size_t hw = hardware_threads();
    benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& s) {
        fn(s, focal::exec::simd, 1);
    })->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((name + "/parallel").c_str(),
                                 [fn, hw](benchmark::State& s) { fn(s, focal::exec::parallel, hw); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

void register_all() {
    register_pair("anchors/800x1344", [](benchmark::State& s, const auto& e, std::size_t t) { bm_anchors(s, e, t); });
    register_pair("matcher/201600x20", [](benchmark::State& s, const auto& e, std::size_t t) { bm_matcher(s, e, t); });
    benchmark::RegisterBenchmark("matcher/201600x20/scalar", [](benchmark::State& s) {
        bm_matcher(s, focal::exec::scalar, 1);
    })->Unit(benchmark::kMillisecond);
    register_pair("targets/201600x20", [](benchmark::State& s, const auto& e, std::size_t t) { bm_targets(s, e, t); });
    register_pair("coder/encode/201600",
                  [](benchmark::State& s, const auto& e, std::size_t t) { bm_coder<true>(s, e, t); });
    register_pair("coder/decode/201600",
                  [](benchmark::State& s, const auto& e, std::size_t t) { bm_coder<false>(s, e, t); });
}

}  // namespace

int main(int argc, char** argv) {
    const problem& p = problem::get();
    benchmark::AddCustomContext("focal_anchors_N", std::to_string(p.n));
    benchmark::AddCustomContext("focal_gt_M", std::to_string(num_gt));
    benchmark::AddCustomContext("focal_image", "800x1344");
    benchmark::AddCustomContext("focal_seed", std::to_string(seed));
    return focal_bench::run(argc, argv, register_all);
}
