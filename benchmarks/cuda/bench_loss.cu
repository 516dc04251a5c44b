// The RetinaNet classification loss on the GPU: sigmoid focal loss, value + gradient, labels,
// normalized by the number of positives (torchvision's RetinaNet). Bytes: logits read + gradient
// written (4 bytes each per element) + labels read (8 bytes per anchor); the workspace partials
// (a few KB) are not counted. Compare with copy/201600x80 (bench_copy.cu): the target is >= 70%
// of its bandwidth.
#include <focal/cuda/loss.cuh>
#include <focal/loss/sigmoid_focal.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "harness.cuh"
#include "support/random_labels.hpp"

namespace {

using focal::index_t;
namespace fc = focal::cuda;

// RetinaNet-like: ~1% ignored, ~0.1% positive.
std::vector<std::int64_t> retinanet_labels(std::size_t n, index_t k, unsigned seed) {
    return focal_test_support::random_labels(n, k, seed, 0.01, 0.001);
}

std::vector<float> logits(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(-4.0f, 2.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

}  // namespace

FOCAL_CUDA_BENCHMARK(focal_loss_single_image) {
    const index_t n = 201600, k = 80;
    const auto labels = retinanet_labels(static_cast<std::size_t>(n), k, 1);
    index_t positives = 0;
    for (auto l : labels) positives += l >= 0;
    fc::device_buffer<float> x(logits(static_cast<std::size_t>(n * k), 2)), grad(static_cast<std::size_t>(n * k));
    fc::device_buffer<std::int64_t> dl(labels);
    fc::device_buffer<double> value(1);
    fc::device_buffer<unsigned char> ws(fc::classification_loss_workspace_size(n, k));
    const fc::device_matrix_view<const float> xv = x.view(n, k);
    const fc::device_vector_view<const std::int64_t> lv = dl.view();
    const fc::loss_output<float, double> out{value.data(), grad.view(n, k), {}};
    const auto r = focal::reduction::divide_by(static_cast<double>(std::max<index_t>(1, positives)));
    const double ms = focal_bench::time_ms(nullptr, [&] {
        fc::classification_loss(focal::sigmoid_focal_loss{}, xv, lv, r, out, fc::workspace{ws.data(), ws.size()}, nullptr);
    });
    const double elements = static_cast<double>(n * k);
    focal_bench::report({"focal_loss/201600x80", ms, elements, elements * 8.0 + static_cast<double>(n) * 8.0});
}

FOCAL_CUDA_BENCHMARK(focal_loss_batch) {
    const index_t b = 16, n = 201600, k = 80;
    const auto labels = retinanet_labels(static_cast<std::size_t>(b * n), k, 3);
    std::vector<std::int64_t> positives(static_cast<std::size_t>(b), 0);
    for (index_t i = 0; i < b * n; ++i) positives[static_cast<std::size_t>(i / n)] += labels[static_cast<std::size_t>(i)] >= 0;
    fc::device_buffer<float> x(logits(static_cast<std::size_t>(b * n * k), 4)), grad(static_cast<std::size_t>(b * n * k));
    fc::device_buffer<std::int64_t> dl(labels), dp(positives);
    fc::device_buffer<double> values(static_cast<std::size_t>(b)), total(1);
    fc::device_buffer<unsigned char> ws(fc::classification_loss_workspace_size(b, n, k));
    const auto xv = focal::make_device_view(static_cast<const float*>(x.data()), b, n, k);
    const auto lv = focal::make_device_view(static_cast<const std::int64_t*>(dl.data()), b, n);
    const fc::batch_loss_output<float, double> out{values.data(), total.data(), focal::make_device_view(grad.data(), b, n, k)};
    // torchvision's per-image normalizer B * max(1, P_b), read on the device.
    const fc::device_normalizer<std::int64_t> norm{dp.data(), static_cast<double>(b), 1.0};
    const double ms = focal_bench::time_ms(nullptr, [&] {
        fc::classification_loss(focal::sigmoid_focal_loss{}, xv, lv, norm, out, fc::workspace{ws.data(), ws.size()}, nullptr);
    });
    const double elements = static_cast<double>(b * n * k);
    focal_bench::report({"focal_loss/16x201600x80", ms, elements, elements * 8.0 + static_cast<double>(b * n) * 8.0});
}
