// Matching and box coding on the device, the cases peers_match.py times with torchvision:
//   match/120000x50         match_anchors (default matcher: low-quality matches on), 120,000 anchors
//                           (the first 120,000 of torchvision's 800 x 1344 pyramid) x 50 gt boxes
//   pairwise_iou/120000x50  the 120,000 x 50 IoU matrix written out (what box_iou materializes)
//   decode/201600           decode_boxes, torchvision RetinaNet's coder, the full 800 x 1344 pyramid
#include <focal/anchor/generate.hpp>
#include <focal/anchor/presets.hpp>
#include <focal/assign/max_iou_matcher.hpp>
#include <focal/coder/delta_xywh.hpp>
#include <focal/cuda/coder.cuh>
#include <focal/cuda/match.cuh>

#include <cstdint>
#include <random>
#include <vector>

#include "harness.cuh"

namespace {
std::vector<float> random_gt(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> ux(0, 1344), uy(0, 800), us(16, 400);
    std::vector<float> b;
    for (std::size_t i = 0; i < n; ++i) {
        const float cx = ux(rng), cy = uy(rng), w = us(rng), h = us(rng);
        b.insert(b.end(), {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2});
    }
    return b;
}
std::vector<float> pyramid() {
    return focal::make_anchors<float>(focal::anchor_presets::torchvision(), focal::size2d{800, 1344});
}
}  // namespace

FOCAL_CUDA_BENCHMARK(match_anchors_120000x50) {
    auto anchors = pyramid();
    anchors.resize(120000 * 4);
    const focal::index_t n = 120000, g = 50;
    focal::cuda::device_buffer<float> da(anchors), dg(random_gt(g, 1));
    focal::cuda::device_buffer<std::int64_t> matches(n);
    focal::cuda::device_buffer<unsigned char> ws(focal::cuda::match_anchors_workspace_size(n, g));
    const auto av = focal::make_device_view<const float>(da.data(), n, 4);
    const auto gv = focal::make_device_view<const float>(dg.data(), g, 4);
    const double ms = focal_bench::time_ms(nullptr, [&] {
        focal::cuda::match_anchors(focal::max_iou_matcher{}, av, gv, focal::match_output{matches.view()},
                                   focal::cuda::workspace{ws.data(), ws.size()}, nullptr);
    });
    focal_bench::report({"match/120000x50", ms, static_cast<double>(n), 0});

    focal::cuda::device_buffer<float> iou(static_cast<std::size_t>(n * g));
    const double ms_iou =
        focal_bench::time_ms(nullptr, [&] { focal::cuda::pairwise_iou(av, gv, iou.view(n, g), nullptr); });
    focal_bench::report({"pairwise_iou/120000x50", ms_iou, static_cast<double>(n * g), 4.0 * n * g});
}

FOCAL_CUDA_BENCHMARK(decode_201600) {
    const auto anchors = pyramid();
    const auto n = static_cast<focal::index_t>(anchors.size() / 4);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> ud(-1, 1);
    std::vector<float> deltas(anchors.size());
    for (auto& d : deltas) d = ud(rng);
    focal::cuda::device_buffer<float> da(anchors), dd(deltas), out(anchors.size());
    const double ms = focal_bench::time_ms(nullptr, [&] {
        focal::cuda::decode_boxes(focal::delta_xywh_coder{}, focal::make_device_view<const float>(dd.data(), n, 4),
                                  focal::make_device_view<const float>(da.data(), n, 4), out.view(n, 4), nullptr);
    });
    focal_bench::report({"decode/" + std::to_string(n), ms, static_cast<double>(n), 3.0 * 16 * n});
}
