// benchmarks/bench_coco_eval.cpp: COCO bbox evaluation (pycocotools' evaluate + accumulate +
// summarize) of a val2017-sized result set.
//
// Data: with FOCAL_COCO_EVAL_DATA=<dir>, <dir>/gt.json and <dir>/results.json (written by
// benchmarks/peers_coco_eval.py --generate, so that focal and pycocotools evaluate the very same
// files); without it, drawn here with std::mt19937_64 (seed 2017) from the same recipe: 5,000
// images, COCO's 80 category ids, 0..14 ground-truth boxes per image (7 on average, 1% crowd),
// exactly 100 detections per image (1..3 per ground truth, the rest false positives).
//
// Benchmark names (stable; compare_coco_eval.py matches on them), <n> = the number of images:
//   coco_eval/<n>_images                        focal::coco_evaluate, exec::simd (one thread)
//   coco_eval/<n>_images/parallel/real_time     the same with exec::parallel (all hardware threads)
//   coco_eval/<n>_images/read_json              read_coco_ground_truth + read_coco_results from
//                                               the files' text in memory (parsing only)
// Evaluation is timed from the C++ structures (as pycocotools' is timed from its loaded COCO
// objects): grouping, IoU, matching, accumulation and the 12 stats. items/s = images per second.
// Every benchmark has a "focal_threads" counter. The context records the data source, its sizes,
// and "focal_stats": the 12 stats with 17 digits, for compare_coco_eval.py to check against
// pycocotools.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <focal/core/execution.hpp>
#include <focal/eval/coco_eval.hpp>
#include <focal/eval/coco_json.hpp>

namespace {

struct dataset {
    focal::coco_ground_truth gt;
    std::vector<focal::coco_detection> dets;
    std::string gt_text, results_text;  // the JSON, for the read benchmark
    std::string source;
};

dataset& data() {
    static dataset d;
    return d;
}

std::string read_text(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "bench_coco_eval: cannot read %s\n", file.c_str());
        std::exit(2);
    }
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// peers_coco_eval.py's make_dataset, drawn with std::mt19937_64 (same statistics, other numbers).
void generate(dataset& d, int n_images) {
    std::mt19937_64 rng(2017);
    const auto uniform = [&rng](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
    const auto integer = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const auto round_to = [](double v, double digits) { return std::round(v * digits) / digits; };
    std::vector<focal::coco_id> cats;
    for (int c = 1; c <= 90; ++c)
        if (c != 12 && c != 26 && c != 29 && c != 30 && c != 45 && c != 66 && c != 68 && c != 69 && c != 71 && c != 83)
            cats.push_back(c);
    for (const auto c : cats) d.gt.categories.push_back({c, "class_" + std::to_string(c)});
    std::vector<focal::coco_id> ids(600000);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<focal::coco_id>(i) + 1;
    std::shuffle(ids.begin(), ids.end(), rng);
    ids.resize(static_cast<std::size_t>(n_images));
    std::sort(ids.begin(), ids.end());
    const auto box = [&](int kind) -> focal::coco_box {
        const double lo[] = {4, 33, 97}, hi[] = {31, 95, 400};
        const double s = uniform(lo[kind], hi[kind]), a = uniform(0.5, 2.0);
        const double w = s * std::sqrt(a), h = s / std::sqrt(a);
        return {round_to(uniform(0, 640 - std::min(w, 600.0)), 100), round_to(uniform(0, 480 - std::min(h, 440.0)), 100),
                round_to(w, 100), round_to(h, 100)};
    };
    const auto any_kind = [&] {
        const double u = uniform(0, 1);
        return u < 0.40 ? 0 : (u < 0.75 ? 1 : 2);
    };
    const auto jitter = [&](const focal::coco_box& b, double amount) -> focal::coco_box {
        return {round_to(b[0] + uniform(-amount, amount) * b[2], 100), round_to(b[1] + uniform(-amount, amount) * b[3], 100),
                round_to(std::max(b[2] * (1 + uniform(-amount, amount)), 1.0), 100),
                round_to(std::max(b[3] * (1 + uniform(-amount, amount)), 1.0), 100)};
    };
    const double amounts[] = {0.05, 0.1, 0.2};
    for (const auto iid : ids) {
        d.gt.images.push_back({iid, 640, 480});
        std::vector<focal::coco_id> present = cats;
        std::shuffle(present.begin(), present.end(), rng);
        present.resize(static_cast<std::size_t>(integer(1, 4)));
        const std::size_t first_gt = d.gt.annotations.size();
        for (int g = integer(0, 14); g > 0; --g) {
            focal::coco_annotation a;
            a.id = static_cast<focal::coco_id>(d.gt.annotations.size()) + 1;
            a.image_id = iid;
            a.category_id = present[static_cast<std::size_t>(integer(0, static_cast<int>(present.size()) - 1))];
            a.bbox = box(any_kind());
            a.area = round_to(a.bbox[2] * a.bbox[3] * uniform(0.55, 1.0), 100);
            a.iscrowd = uniform(0, 1) < 0.01;
            d.gt.annotations.push_back(a);
        }
        std::vector<focal::coco_detection> dets;
        const std::size_t n_gt = d.gt.annotations.size() - first_gt;
        for (std::size_t g = first_gt; g < d.gt.annotations.size(); ++g) {
            const auto& a = d.gt.annotations[g];
            for (int k = integer(1, 3); k > 0; --k) {
                const auto c = uniform(0, 1) < 0.9 ? a.category_id
                                                    : present[static_cast<std::size_t>(integer(0, static_cast<int>(present.size()) - 1))];
                dets.push_back({iid, c, jitter(a.bbox, amounts[integer(0, 2)]), round_to(uniform(0.3, 0.95), 1e6)});
            }
        }
        while (dets.size() < 100) {
            focal::coco_box b;
            focal::coco_id c;
            if (n_gt > 0 && uniform(0, 1) < 0.5) {
                b = jitter(d.gt.annotations[first_gt + static_cast<std::size_t>(integer(0, static_cast<int>(n_gt) - 1))].bbox, 0.5);
                const auto& from = uniform(0, 1) < 0.5 ? cats : present;
                c = from[static_cast<std::size_t>(integer(0, static_cast<int>(from.size()) - 1))];
            } else {
                b = box(any_kind());
                c = cats[static_cast<std::size_t>(integer(0, 79))];
            }
            dets.push_back({iid, c, b, round_to(uniform(0.05, 0.5), 1e6)});
        }
        std::stable_sort(dets.begin(), dets.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
        d.dets.insert(d.dets.end(), dets.begin(), dets.begin() + 100);
    }
    std::ostringstream g, r;
    focal::write_coco_ground_truth(g, d.gt);
    focal::write_coco_results(r, d.dets);
    d.gt_text = g.str();
    d.results_text = r.str();
}

void load() {
    dataset& d = data();
    if (const char* dir = std::getenv("FOCAL_COCO_EVAL_DATA"); dir && *dir) {
        d.source = dir;
        d.gt_text = read_text(std::string(dir) + "/gt.json");
        d.results_text = read_text(std::string(dir) + "/results.json");
        std::istringstream g(d.gt_text), r(d.results_text);
        d.gt = focal::read_coco_ground_truth(g);
        d.dets = focal::read_coco_results(r);
    } else {
        d.source = "generated (std::mt19937_64, seed 2017)";
        generate(d, 5000);
    }
}

template <class Exec>
void bm_evaluate(benchmark::State& state, Exec exec, std::size_t threads) {
    const dataset& d = data();
    for (auto _ : state) {
        auto res = focal::coco_evaluate(d.gt, d.dets, {}, exec);
        benchmark::DoNotOptimize(res.stats.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(d.gt.images.size()));
    state.counters["focal_threads"] = static_cast<double>(threads);
}

void bm_read_json(benchmark::State& state) {
    const dataset& d = data();
    for (auto _ : state) {
        std::istringstream g(d.gt_text), r(d.results_text);
        auto gt = focal::read_coco_ground_truth(g);
        auto dets = focal::read_coco_results(r);
        benchmark::DoNotOptimize(gt.annotations.data());
        benchmark::DoNotOptimize(dets.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(d.gt.images.size()));
    state.counters["focal_threads"] = 1;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    load();
    const dataset& d = data();
    const auto stats = focal::coco_evaluate(d.gt, d.dets).stats;
    std::string s;
    char buf[40];
    for (std::size_t i = 0; i < stats.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s%.17g", i ? "," : "", stats[i]);
        s += buf;
    }
    benchmark::AddCustomContext("focal_data", d.source);
    benchmark::AddCustomContext("focal_images", std::to_string(d.gt.images.size()));
    benchmark::AddCustomContext("focal_annotations", std::to_string(d.gt.annotations.size()));
    benchmark::AddCustomContext("focal_detections", std::to_string(d.dets.size()));
    benchmark::AddCustomContext("focal_categories", std::to_string(d.gt.categories.size()));
    benchmark::AddCustomContext("focal_stats", s);

    const std::string base = "coco_eval/" + std::to_string(d.gt.images.size()) + "_images";
    const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
    benchmark::RegisterBenchmark(base.c_str(), [](benchmark::State& st) { bm_evaluate(st, focal::exec::simd, 1); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((base + "/parallel").c_str(),
                                 [hw](benchmark::State& st) { bm_evaluate(st, focal::exec::parallel, hw); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((base + "/read_json").c_str(), bm_read_json)->Unit(benchmark::kMillisecond);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
