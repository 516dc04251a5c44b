// The CUDA backend (examples/retinanet/backend/cuda) run by the host loop executor: the same layers,
// ops, architecture and parameter store a GPU runs, checked here against the CPU backend without a
// GPU. What only a GPU can check (the CUDA executor's launches, cuBLAS and cuDNN calls, the training
// loop) is in tests/cuda/gpu_check.sh.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <focal/core/error.hpp>
#include <focal/retinanet/loss.hpp>

#include "apps/common.hpp"
#include "support/host_loop_executor.hpp"
#include "backend/cuda/cuda_training.hpp"
#include "backend/cuda/network.hpp"
#include "backend/cuda/optimizer.hpp"
#include "model/retinanet_model.hpp"
#include "train/optimizer.hpp"

using namespace retinanet;

namespace {

// Every parameter random (GroupNorm gains included: zero-initialized residual branches would hide
// half the network), running variances positive.
void randomize(model::retinanet_model<float>& net, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 0.3f);
    for (auto* p : net.parameters()) {
        const bool var = p->name.find("running_var") != std::string::npos;
        const bool gain = p->name.find(".bn") != std::string::npos || p->name.find("downsample.1") != std::string::npos ||
                          (p->shape.size() == 1 && p->name.find(".conv.") != std::string::npos && p->name.back() == 't' &&
                           p->name.find(".1.") != std::string::npos);
        for (auto& v : p->value) v = var ? 0.5f + std::abs(d(rng)) : (gain && p->name.ends_with("weight") ? 1.0f + d(rng) : d(rng));
    }
}

std::vector<float> random_values(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) m = std::max(m, static_cast<double>(std::abs(x)));
    return m;
}

// max |a - b| / max(max |a|, tiny): the error relative to the array's scale.
double relative_error(const std::vector<float>& a, const float* b) {
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
    return worst / std::max(max_abs(a), 1e-30);
}

model::model_config frozen_bottleneck_config() {
    // torchvision_v1's layout (FrozenBatchNorm, bottlenecks, stem max-pool, P6 from P5, plain
    // heads), at tiny widths.
    auto c = model::tiny_config(3);
    c.name = "tiny_frozen";
    c.backbone_norm = model::norm_kind::frozen_batch;
    c.head_norm = model::norm_kind::none;
    c.block = model::block_kind::bottleneck;
    c.stem_pool = true;
    c.p6_from_p5 = true;
    c.widths = {4, 4, 8, 8};
    return c;
}

// Forward and backward of the CPU model and of the CUDA network on the host loop executor, from the same
// parameters and images; every output and every parameter gradient compared.
void check_against_cpu(const model::model_config& config, int batch, int height, int width) {
    model::retinanet_model<float> cpu(config);
    randomize(cpu, 11);
    testing::host_loop_executor executor;
    cuda::network<testing::host_loop_executor> net(executor, cpu);

    const auto pixels = random_values(static_cast<std::size_t>(batch) * height * width * 3, 5);
    cpu::tensor<float> images(3, batch, height, width, cpu::uninitialized);
    std::copy(pixels.begin(), pixels.end(), images.data.begin());
    cuda::device_tensor device_images = net.ctx().tensor(3, batch, height, width);
    std::copy(pixels.begin(), pixels.end(), device_images.get());

    cpu::set_grad_enabled(true);
    cpu.zero_grad();
    const auto expected = cpu.forward(images);
    const auto got = net.forward(device_images);
    REQUIRE(got.anchors == expected.anchors);
    REQUIRE(got.grids.size() == expected.grids.size());
    for (std::size_t l = 0; l < got.grids.size(); ++l)
        CHECK((got.grids[l].height == expected.grids[l].height && got.grids[l].width == expected.grids[l].width));
    CHECK(relative_error(expected.cls_logits, got.cls_logits.get()) < 2e-5);
    CHECK(relative_error(expected.bbox_regression, got.bbox_regression.get()) < 2e-5);

    const auto d_cls = random_values(expected.cls_logits.size(), 7, 0.01f), d_box = random_values(expected.bbox_regression.size(), 8, 0.01f);
    cpu.backward(d_cls, d_box);
    std::vector<std::vector<float>> cpu_grads;
    for (auto* p : cpu.parameters()) cpu_grads.push_back(p->grad);
    net.zero_grad();
    net.backward(d_cls.data(), d_box.data());
    net.parameters().download_grads();
    int compared = 0;
    for (std::size_t i = 0; i < cpu.parameters().size(); ++i) {
        const auto* p = cpu.parameters()[i];
        const std::string name = p->name;
        INFO(name);
        if (!p->trainable) {
            CHECK(max_abs(p->grad) == 0.0);
            continue;
        }
        // GroupNorm's backward subtracts group means: near-cancelling sums, so a looser bound.
        CHECK(relative_error(cpu_grads[i], p->grad.data()) < 1e-4);
        ++compared;
    }
    CHECK(compared > 10);
}

}  // namespace

TEST_CASE("CUDA network on the host loop executor: GroupNorm, basic blocks, P6 from C5 (tiny) give the CPU model's outputs and gradients") {
    check_against_cpu(model::tiny_config(3), 2, 64, 64);
}

TEST_CASE("CUDA network on the host loop executor: FrozenBatchNorm, bottlenecks, stem max-pool, plain heads give the CPU model's numbers") {
    check_against_cpu(frozen_bottleneck_config(), 2, 64, 64);
}

TEST_CASE("CUDA network on the host loop executor: a non-square image whose FPN upsampling is not an exact 2x") {
    // 72 x 40: C3 9 x 5, C4 5 x 3, C5 3 x 2, so the top-down pass upsamples 3 -> 5 and 5 -> 9.
    check_against_cpu(model::tiny_config(2), 1, 72, 40);
}

TEST_CASE("gpu network mirrors every named configuration's parameters (checkpoints are interchangeable)") {
    for (const std::string name : {"demo", "tiny", "paper", "torchvision_v1"}) {
        INFO(name);
        model::retinanet_model<float> cpu(model::config_by_name(name, name == "torchvision_v1" ? 91 : 10));
        testing::host_loop_executor executor;
        cuda::network<testing::host_loop_executor> net(executor, cpu);
        std::size_t total = 0;
        for (auto* p : cpu.parameters()) total += p->size();
        CHECK(static_cast<std::size_t>(net.parameters().size()) == total);
        // Round trip of values (conv weights are permuted on the way): unchanged bits.
        std::vector<std::vector<float>> before;
        for (auto* p : cpu.parameters()) before.push_back(p->value);
        for (auto* p : cpu.parameters()) std::fill(p->value.begin(), p->value.end(), -1.0f);
        net.parameters().download_values();
        bool same = true;
        for (std::size_t i = 0; i < before.size(); ++i) same = same && before[i] == cpu.parameters()[i]->value;
        CHECK(same);
    }
}

TEST_CASE("gpu network: a host model whose parameters differ is a focal::error naming the parameter") {
    model::retinanet_model<float> cpu(model::tiny_config(3));
    testing::host_loop_executor executor;
    cpu.parameters()[0]->name = "renamed";
    CHECK_THROWS_WITH_AS((cuda::network<testing::host_loop_executor>(executor, cpu)),
                         "cuda::parameter_store::add: parameter 'backbone.body.conv1.weight' must be one of the host model's parameters, "
                         "got no such name",
                         focal::error);
    model::retinanet_model<float> other(model::tiny_config(3));
    other.parameters()[1]->shape = {3};
    CHECK_THROWS_AS((cuda::network<testing::host_loop_executor>(executor, other)), focal::error);
}

TEST_CASE("gpu network: backward without a pending forward (none, or dropped by clear()) is a focal::error") {
    model::retinanet_model<float> cpu(model::tiny_config(3));
    testing::host_loop_executor executor;
    cuda::network<testing::host_loop_executor> net(executor, cpu);
    std::vector<float> none(1);
    CHECK_THROWS_AS(net.backward(none.data(), none.data()), focal::error);
    // clear() (after a failed step) drops what a forward left for backward.
    cuda::device_tensor images = net.ctx().tensor(3, 1, 64, 64);
    std::fill_n(images.get(), images.size(), 0.5f);
    const auto out = net.forward(images);
    net.clear();
    CHECK_THROWS_AS(net.backward(out.cls_logits.get(), out.bbox_regression.get()), focal::error);
    // and a fresh forward / backward works afterwards.
    const auto again = net.forward(images);
    CHECK_NOTHROW(net.backward(again.cls_logits.get(), again.bbox_regression.get()));
}

TEST_CASE("device SGD: train::sgd's update (momentum, decay flags, frozen parameters, clipping, a non-finite norm skips)") {
    auto config = frozen_bottleneck_config();
    config.head_norm = model::norm_kind::group;  // GroupNorm parameters: no decay; FrozenBatchNorm's: not trained
    for (const double clip : {0.0, 0.5}) {
        for (const bool poisoned : {false, true}) {
            INFO("clip " << clip << ", NaN gradient " << poisoned);
            model::retinanet_model<float> cpu(config);
            randomize(cpu, 3);
            std::vector<std::vector<float>> velocity;
            std::uint32_t seed = 100;
            for (auto* p : cpu.parameters()) {
                p->grad = random_values(p->size(), seed++, 0.05f);
                velocity.push_back(random_values(p->size(), seed++, 0.01f));
            }
            if (poisoned) cpu.parameters().back()->grad[0] = std::nanf("");
            std::vector<std::vector<float>> values0, grads0;
            for (auto* p : cpu.parameters()) values0.push_back(p->value), grads0.push_back(p->grad);

            testing::host_loop_executor executor;
            cuda::network<testing::host_loop_executor> net(executor, cpu);
            net.parameters().upload_grads();
            net.parameters().upload_velocity(velocity);
            cuda::device_sgd<testing::host_loop_executor> device_optimizer(net.ctx());
            train::sgd options;
            options.clip_norm = clip;
            device_optimizer.step(options, 0.02);
            const double device_norm = *device_optimizer.norm();
            net.parameters().download_values();
            std::vector<std::vector<float>> device_values, device_velocity;
            for (auto* p : cpu.parameters()) device_values.push_back(p->value);
            net.parameters().download_velocity(device_velocity);

            for (std::size_t i = 0; i < values0.size(); ++i) cpu.parameters()[i]->value = values0[i];
            const double norm = options.step(cpu.parameters(), velocity, 0.02);
            if (poisoned) CHECK(std::isnan(device_norm));
            else CHECK(device_norm == doctest::Approx(norm).epsilon(1e-12));
            bool frozen_unchanged = true, changed = false;
            for (std::size_t i = 0; i < values0.size(); ++i) {
                const auto* p = cpu.parameters()[i];
                const std::string name = p->name;
                INFO(name);
                CHECK(relative_error(p->value, device_values[i].data()) < 1e-6);
                CHECK(relative_error(velocity[i], device_velocity[i].data()) < 1e-6);
                if (!p->trainable) frozen_unchanged = frozen_unchanged && device_values[i] == values0[i];
                changed = changed || device_values[i] != values0[i];
            }
            CHECK(frozen_unchanged);
            CHECK(changed == !poisoned);
        }
    }
}

TEST_CASE("device loss normalizer: focal's per_image, batch_ema and batch_plus_one") {
    const std::vector<std::int64_t> positives{0, 7, 2};
    double ema = 100.0;
    std::vector<double> out(3);
    testing::host_loop_executor executor;
    using kind = focal::loss_normalizer;
    executor.for_each(1, cuda::loss_normalizer_op{positives.data(), 3, kind::per_image, 0.9, &ema, out.data()});
    CHECK(out == std::vector<double>{3.0, 21.0, 6.0});
    executor.for_each(1, cuda::loss_normalizer_op{positives.data(), 3, kind::batch_ema, 0.9, &ema, out.data()});
    CHECK(ema == doctest::Approx(0.9 * 100.0 + 0.1 * 9.0));
    CHECK(out == std::vector<double>(3, ema));
    executor.for_each(1, cuda::loss_normalizer_op{positives.data(), 3, kind::batch_plus_one, 0.9, &ema, out.data()});
    CHECK(out == std::vector<double>(3, 12.0));
}

// The CUDA engine on several ranks: batch_counts_op gives this rank's {positives, images} for
// NCCL's sum, and loss_normalizer_op with the sums divides the whole batch's normalizer by the
// ranks, as focal::compute_retinanet_loss with retinanet_loss_state::sum_counts.
TEST_CASE("device loss normalizer on several ranks: the summed counts' normalizer over the ranks") {
    testing::host_loop_executor executor;
    using kind = focal::loss_normalizer;
    const std::vector<std::int64_t> mine{0, 7}, theirs{2, 5};  // two ranks of two images
    std::int64_t counts[2] = {}, other[2] = {};
    executor.for_each(1, cuda::batch_counts_op{mine.data(), 2, counts});
    executor.for_each(1, cuda::batch_counts_op{theirs.data(), 2, other});
    CHECK(counts[0] == 7);
    CHECK(counts[1] == 2);
    const std::int64_t summed[2] = {counts[0] + other[0], counts[1] + other[1]};  // what ncclAllReduce leaves
    std::vector<double> out(2);
    double ema = 100.0;
    executor.for_each(1, cuda::loss_normalizer_op{mine.data(), 2, kind::batch_plus_one, 0.9, &ema, out.data(), summed, 2.0});
    CHECK(out == std::vector<double>(2, (14.0 + 4.0) / 2.0));  // (P + B) of the whole batch, over 2 ranks
    executor.for_each(1, cuda::loss_normalizer_op{mine.data(), 2, kind::per_image, 0.9, &ema, out.data(), summed, 2.0});
    CHECK(out == std::vector<double>{4.0 * 1.0 / 2.0, 4.0 * 7.0 / 2.0});  // B max(1, P_i) with B = 4, over 2
    executor.for_each(1, cuda::loss_normalizer_op{mine.data(), 2, kind::batch_ema, 0.9, &ema, out.data(), summed, 2.0});
    CHECK(ema == doctest::Approx(0.9 * 100.0 + 0.1 * 14.0));  // the whole batch's positives
    CHECK(out == std::vector<double>(2, ema / 2.0));
}

TEST_CASE("--device, --precision, --conv: cpu, cuda, cuda:N; anything else, or cuda without a usable GPU, is a focal::error saying why") {
    const auto cpu = apps::parse_device("prog", "cpu", "tf32", "auto");
    CHECK(!cpu.cuda);
    CHECK_THROWS_WITH_AS(apps::parse_device("prog", "gpu", "tf32", "auto"), "prog: --device must be cpu, cuda or cuda:N, got 'gpu'",
                         focal::error);
    for (const char* bad : {"cuda:x", "cuda:", "cuda:-1", "cuda:1x"}) {
        INFO(bad);
        CHECK_THROWS_WITH_AS(apps::parse_device("prog", bad, "tf32", "auto"),
                             ("prog: --device must be cpu, cuda or cuda:N, got '" + std::string(bad) + "'").c_str(), focal::error);
    }
    CHECK_THROWS_WITH_AS(apps::parse_device("prog", "cpu", "fp16", "auto"), "prog: --precision must be tf32 or fp32, got 'fp16'", focal::error);
    CHECK_THROWS_WITH_AS(apps::parse_device("prog", "cpu", "tf32", "winograd"), "prog: --conv must be auto, cudnn or gemm, got 'winograd'",
                         focal::error);
    if (!cuda::cudnn_built())
        CHECK_THROWS_WITH_AS(apps::parse_device("prog", "cpu", "tf32", "cudnn"),
                             "prog: --conv must be cudnn in a build with cuDNN, got a build without it (use auto or gemm)", focal::error);
    CHECK(apps::parse_device("prog", "cpu", "tf32", "auto").gpu.cudnn == cuda::cudnn_built());
    CHECK(!apps::parse_device("prog", "cpu", "fp32", "gemm").gpu.cudnn);
    std::string why;
    if (cuda::cuda_available(&why)) {
        const auto d = apps::parse_device("prog", "cuda:0", "fp32", "gemm");
        CHECK((d.cuda && d.gpu.device == 0 && !d.gpu.tf32 && !d.gpu.cudnn));
        CHECK_THROWS_AS(apps::parse_device("prog", "cuda:" + std::to_string(cuda::cuda_device_count()), "tf32", "auto"), focal::error);
    } else {
        INFO(why);
        CHECK(!why.empty());
        CHECK(cuda::cuda_device_count() == 0);
        CHECK_THROWS_WITH_AS(apps::parse_device("prog", "cuda", "tf32", "auto"),
                             ("prog: --device must be a usable CUDA device for 'cuda', got " + why).c_str(), focal::error);
        model::retinanet_model<float> net(model::tiny_config(3));
        train::train_options o;
        CHECK_THROWS_AS(cuda::make_cuda_engine(net, o), focal::error);
        CHECK_THROWS_AS(cuda::make_cuda_detector(net, {}), focal::error);
    }
}
