// The example RetinaNet: structure (torchvision's names and shapes), initialization, and the
// gradient of the whole loss (focal's RetinaNet loss on the model's outputs) against central
// finite differences in double.
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <doctest/doctest.h>
#include <focal/retinanet/loss.hpp>

#include "model/retinanet_model.hpp"
#include "support/fixtures.hpp"

using namespace retinanet;

namespace {

cpu::tensor<double> random_images(int n, int size, std::mt19937& rng) {
    cpu::tensor<double> x(3, n, size, size);
    std::normal_distribution<double> d(0.0, 1.0);
    for (auto& v : x.data) v = d(rng);
    return x;
}

}  // namespace

TEST_CASE("torchvision_v1 configuration has exactly torchvision's state-dict names and shapes") {
    std::ifstream in(focal_test::data_dir() / "retinanet" / "torchvision_v1_keys.txt");
    REQUIRE(in.good());
    std::map<std::string, std::vector<std::size_t>> expected;
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string key;
        fields >> key;
        std::vector<std::size_t> shape;
        for (std::size_t d; fields >> d;) shape.push_back(d);
        expected[key] = shape;
    }
    REQUIRE(expected.size() == 301);
    model::retinanet_model<float> net(model::torchvision_v1_config(91));
    std::map<std::string, std::vector<std::size_t>> ours;
    for (auto* p : net.parameters()) ours[p->name] = p->shape;
    for (const auto& entry : expected) {
        const std::string& key = entry.first;  // not a structured binding: clang 14 cannot capture those (INFO)
        INFO(key);
        REQUIRE(ours.count(key) == 1);
        CHECK(ours[key] == entry.second);
    }
    CHECK(ours.size() == expected.size());
}

TEST_CASE("initialization: class outputs start at the prior, box outputs near zero") {
    model::retinanet_model<float> net(model::demo_config(10));
    net.initialize(7);
    cpu::set_grad_enabled(false);
    std::mt19937 rng(1);
    cpu::tensor<float> x(3, 2, 128, 128);
    std::normal_distribution<float> d(0.f, 1.f);
    for (auto& v : x.data) v = d(rng);
    const auto out = net.forward(x);
    cpu::set_grad_enabled(true);
    // 16x16 + 8x8 + 4x4 + 2x2 + 1x1 cells, 9 anchors each.
    CHECK(out.anchors == (256 + 64 + 16 + 4 + 1) * 9);
    double mean_p = 0, box_sq = 0;
    for (float l : out.cls_logits) mean_p += 1.0 / (1.0 + std::exp(-l));
    for (float b : out.bbox_regression) box_sq += static_cast<double>(b) * b;
    mean_p /= static_cast<double>(out.cls_logits.size());
    CHECK(mean_p == doctest::Approx(0.01).epsilon(0.05));
    // N(0, 0.01) output weights over 9 x 64 GroupNorm-ReLU inputs: deltas of ~0.15 rms.
    CHECK(std::sqrt(box_sq / static_cast<double>(out.bbox_regression.size())) < 0.3);
    const auto anchors = net.anchors({128, 128}, out.grids);
    CHECK(anchors.size() == static_cast<std::size_t>(out.anchors) * 4);
}

TEST_CASE("the whole RetinaNet loss: backward equals finite differences (tiny model, double)") {
    auto config = model::tiny_config(3);
    config.zero_init_residual = false;  // every parameter receives gradient
    model::retinanet_model<double> net(config);
    net.initialize(3);
    std::mt19937 rng(5);
    // Perturb every parameter so no ReLU sits at a tie and the heads' outputs are not tiny.
    {
        std::normal_distribution<double> d(0.0, 0.05);
        for (auto* p : net.parameters())
            for (auto& v : p->value) v += d(rng);
    }
    const std::ptrdiff_t n = 2, size = 64;
    const auto images = random_images(static_cast<int>(n), static_cast<int>(size), rng);
    const std::vector<double> boxes0{4, 6, 30, 40, 20, 10, 60, 50}, boxes1{10, 12, 28, 26};
    const std::vector<std::int64_t> labels0{0, 2}, labels1{1};
    const std::vector<focal::ground_truth<double, std::int64_t>> targets{
        {focal::make_view(boxes0.data(), 2, 4), focal::make_view(labels0.data(), 2)},
        {focal::make_view(boxes1.data(), 1, 4), focal::make_view(labels1.data(), 1)}};
    auto loss = focal::retinanet_loss<focal::smooth_l1_loss>{};
    loss.box.beta = 0.1;

    auto evaluate = [&](bool backward) {
        const auto out = net.forward(images);
        const auto anchors = net.anchors({size, size}, out.grids);
        const auto a = out.anchors;
        std::vector<double> d_cls(out.cls_logits.size()), d_box(out.bbox_regression.size());
        focal::retinanet_gradients<double> grads;
        if (backward) grads = {focal::tensor3_view<double>(d_cls.data(), n, a, 3), focal::tensor3_view<double>(d_box.data(), n, a, 4)};
        const auto value = focal::compute_retinanet_loss(loss, focal::tensor3_view<const double>(out.cls_logits.data(), n, a, 3),
                                                         focal::tensor3_view<const double>(out.bbox_regression.data(), n, a, 4),
                                                         focal::make_view(anchors.data(), a, 4),
                                                         std::span<const focal::ground_truth<double, std::int64_t>>(targets), grads);
        REQUIRE(value.positives > 0);
        if (backward) net.backward(d_cls, d_box);
        return value.classification + value.box;
    };
    net.zero_grad();
    evaluate(true);
    cpu::set_grad_enabled(false);
    const double h = 1e-6;
    int checked = 0;
    for (auto* p : net.parameters()) {
        for (std::size_t i = 0; i < p->size(); i += 1 + p->size() / 3) {
            const double saved = p->value[i];
            p->value[i] = saved + h;
            const double up = evaluate(false);
            p->value[i] = saved - h;
            const double down = evaluate(false);
            p->value[i] = saved;
            const double numeric = (up - down) / (2 * h);
            INFO(p->name << "[" << i << "]: analytic " << p->grad[i] << ", numeric " << numeric);
            CHECK(std::abs(p->grad[i] - numeric) <= 1e-6 * (1 + std::abs(numeric)));
            ++checked;
        }
    }
    cpu::set_grad_enabled(true);
    CHECK(checked > 100);
}

TEST_CASE("configurations by name; unknown names and bad configurations are errors") {
    CHECK(model::config_by_name("paper", 80).fpn_channels == 256);
    CHECK(model::config_by_name("paper", 80).head_convs == 4);
    CHECK_THROWS_WITH_AS(model::config_by_name("huge", 80), doctest::Contains("one of paper, torchvision_v1, demo, tiny"), focal::error);
    auto bad = model::tiny_config(3);
    bad.num_classes = 0;
    CHECK_THROWS_AS(model::retinanet_model<float>{bad}, focal::error);
}

TEST_CASE("ResNet-18/34/50/101 backbones have torchvision's resnetN parameter counts (without its fc layer)") {
    // torchvision.models.resnetN().parameters() less fc.weight and fc.bias (BatchNorm's affine
    // parameters count as GroupNorm's do): 11,689,512 - 513,000; 21,797,672 - 513,000;
    // 25,557,032 - 2,049,000; 44,549,160 - 2,049,000.
    const std::map<int, std::size_t> torchvision{{18, 11176512}, {34, 21284672}, {50, 23508032}, {101, 42500160}};
    for (const auto& entry : torchvision) {
        const int depth = entry.first;  // not a structured binding: clang 14's INFO cannot capture one
        const std::size_t expected = entry.second;
        INFO("ResNet-" << depth);
        model::retinanet_model<float> net(model::with_resnet_depth(model::paper_config(80), depth));
        std::size_t backbone = 0;
        for (const auto* p : net.parameters())
            if (p->name.starts_with("backbone.body.")) backbone += p->size();
        CHECK(backbone == expected);
    }
    CHECK_THROWS_WITH_AS(model::with_resnet_depth(model::paper_config(80), 42), "with_resnet_depth: depth must be 18, 34, 50, 101 or 152, got 42",
                         focal::error);
}
