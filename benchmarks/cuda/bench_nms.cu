// CUDA greedy NMS and RetinaNet post-processing (peers: benchmarks/cuda/peers_nms.py).
#include <cstdint>
#include <random>
#include <vector>

#include <focal/anchor/generate.hpp>
#include <focal/anchor/grid.hpp>
#include <focal/anchor/presets.hpp>
#include <focal/cuda/nms.cuh>
#include <focal/cuda/postprocess.cuh>

#include "harness.cuh"

namespace {

using focal::index_t;

std::vector<float> bench_boxes(index_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> c(0.0f, 1000.0f), s(10.0f, 100.0f);
    std::vector<float> b;
    for (index_t i = 0; i < n; ++i) {
        const float x = c(rng), y = c(rng);
        b.insert(b.end(), {x, y, x + s(rng), y + s(rng)});
    }
    return b;
}

void bench_nms(index_t n) {
    const auto boxes = bench_boxes(n, 1);
    std::vector<float> scores(static_cast<std::size_t>(n));
    std::mt19937 rng(2);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (auto& s : scores) s = u(rng);
    focal::cuda::device_buffer<float> db(boxes), ds(scores);
    focal::cuda::device_buffer<std::int32_t> keep(static_cast<std::size_t>(n)), count(1);
    focal::cuda::device_buffer<unsigned char> ws(focal::cuda::nms_workspace_size(n));
    const double ms = focal_bench::time_ms(nullptr, [&] {
        focal::cuda::nms(focal::greedy_nms{.iou_threshold = 0.5}, db.view(n, 4), ds.view(), keep.view(), count.view(),
                         focal::cuda::workspace{ws.data(), ws.size()}, nullptr);
    });
    focal_bench::report({"nms/" + std::to_string(n), ms, static_cast<double>(n), static_cast<double>(n) * 20.0});
}

}  // namespace

FOCAL_CUDA_BENCHMARK(nms_20000) { bench_nms(20000); }
FOCAL_CUDA_BENCHMARK(nms_100000) { bench_nms(100000); }

FOCAL_CUDA_BENCHMARK(postprocess_8x800x1344x91) {
    const index_t batch = 8, classes = 91;
    const focal::size2d image{800, 1344};
    const auto spec = focal::anchor_presets::torchvision();  // P3-P7, 9 anchors per cell
    const auto anchors = focal::make_anchors(spec, image);
    const auto a = static_cast<index_t>(anchors.size() / 4);
    std::vector<index_t> per_level;
    for (const auto& l : focal::anchor_layout(spec, image)) per_level.push_back(l.count);
    const std::size_t n = static_cast<std::size_t>(batch * a * classes);
    std::vector<float> logits(n);
    std::mt19937 rng(3);
    std::normal_distribution<float> d(-4.0f, 1.5f);
    for (auto& x : logits) x = d(rng);
    std::vector<float> deltas(static_cast<std::size_t>(batch * a * 4));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto& x : deltas) x = u(rng);
    const std::vector<focal::image_size> sizes(static_cast<std::size_t>(batch), focal::image_size{800, 1344});
    const focal::retinanet_postprocess p = focal::retinanet_postprocess::torchvision();
    const index_t det = p.capacity();
    focal::cuda::device_buffer<float> dl(logits), dd(deltas), da(anchors), ob(static_cast<std::size_t>(batch * det * 4)),
        os(static_cast<std::size_t>(batch * det));
    focal::cuda::device_buffer<std::int64_t> ol(static_cast<std::size_t>(batch * det));
    focal::cuda::device_buffer<std::int32_t> oc(static_cast<std::size_t>(batch));
    focal::cuda::device_buffer<unsigned char> ws(focal::cuda::postprocess_workspace_size(p, batch, a, classes, per_level));
    const double ms = focal_bench::time_ms(nullptr, [&] {
        focal::cuda::postprocess(p, focal::make_device_view<const float>(dl.data(), batch, a, classes),
                                 focal::make_device_view<const float>(dd.data(), batch, a, index_t(4)),
                                 focal::make_device_view<const float>(da.data(), a, index_t(4)),
                                 std::span<const index_t>(per_level), std::span<const focal::image_size>(sizes),
                                 focal::batch_detections_output{focal::make_device_view(ob.data(), batch, det, index_t(4)),
                                                                focal::make_device_view(os.data(), batch, det),
                                                                focal::make_device_view(ol.data(), batch, det), oc.view()},
                                 focal::cuda::workspace{ws.data(), ws.size()}, nullptr);
    });
    focal_bench::report({"postprocess/8x800x1344x91", ms, static_cast<double>(n), static_cast<double>(n) * 4.0});
}
