// The FOCAL_HD pieces of focal/cuda/loss.cuh (focal/loss/detail/device_loss.hpp), run on the CPU
// against the host drivers: label -> target, the per-element value / scaled gradient, the
// reduction factors, and an emulation of the kernels' fixed summation order.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <focal/core/labels.hpp>
#include <focal/loss/binary_cross_entropy.hpp>
#include <focal/loss/box_regression_loss.hpp>
#include <focal/loss/classification_loss.hpp>
#include <focal/loss/detail/device_loss.hpp>
#include <focal/loss/giou.hpp>
#include <focal/loss/loss_output.hpp>
#include <focal/loss/sigmoid_focal.hpp>
#include <focal/loss/smooth_l1.hpp>

#include "support/random_labels.hpp"

namespace {

using focal::index_t;
using focal::reduction;
namespace d = focal::detail;

std::vector<float> uniform(std::size_t n, float lo, float hi, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

using focal_test_support::random_labels;

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The device's value for an image, summed in the kernels' order (device_loss.hpp, steps 1-4),
// with the device's per-element function.
template <class Policy>
double emulate_device_sum(const Policy& policy, const std::vector<float>& x, const std::vector<std::int64_t>& labels,
                          index_t rows, index_t cols, double scale) {
    using T = float;
    constexpr index_t W = d::group_width<T>;
    const index_t n = rows * cols, groups = d::group_count<T>(n), blocks = d::loss_blocks<T>(n);
    const index_t stride = blocks * d::reduce_block;
    std::vector<double> partials(static_cast<std::size_t>(blocks));
    std::vector<double> acc(d::reduce_block);
    auto tree = [&] {
        for (int width = d::reduce_block / 2; width > 0; width /= 2)
            for (int t = 0; t < d::reduce_block; ++t) d::tree_level(acc.data(), t, width);
        return acc[0];
    };
    for (index_t block = 0; block < blocks; ++block) {
        for (int t = 0; t < d::reduce_block; ++t) {
            acc[t] = 0;
            for (index_t grp = block * d::reduce_block + t; grp < groups; grp += stride) {
                const index_t e0 = grp * W, count = std::min(W, n - e0);
                d::element_position p = d::position_of<std::uint32_t>(e0, cols);
                T val[W];
                for (index_t j = 0; j < count; ++j) {
                    const auto target = d::label_target<T>(labels[static_cast<std::size_t>(p.row)], p.col);
                    val[j] = d::element_loss(policy, x[static_cast<std::size_t>(e0 + j)], target, static_cast<T>(scale)).value;
                    d::next_position(p, cols);
                }
                acc[t] += static_cast<double>(d::group_sum(val, count));
            }
        }
        partials[static_cast<std::size_t>(block)] = tree();
    }
    for (int t = 0; t < d::reduce_block; ++t) {
        acc[t] = 0;
        for (index_t i = t; i < blocks; i += d::reduce_block) acc[t] += partials[static_cast<std::size_t>(i)];
    }
    return tree() * scale;
}

}  // namespace

TEST_CASE("label_target: class column 1, others 0; -2 and below ignored; -1 and >= K match nothing") {
    for (std::int64_t label : {std::int64_t(-5), std::int64_t(-2), std::int64_t(-1), std::int64_t(0), std::int64_t(3),
                               std::int64_t(7), std::int64_t(100)})
        for (index_t k = 0; k < 8; ++k) {
            const auto t = d::label_target<float>(label, k);
            CHECK(t.ignored == (label <= focal::ignored_label));
            CHECK(t.target == (label == k ? 1.0f : 0.0f));
        }
    CHECK(d::is_positive_label(0));
    CHECK(!d::is_positive_label(focal::background_label));
    CHECK(!d::is_positive_label(focal::ignored_label));
    // An unsigned type's -1 reads as background, as on the host.
    CHECK(!d::is_ignored_label(static_cast<std::int64_t>(static_cast<std::int32_t>(static_cast<std::uint32_t>(-1)))));
}

TEST_CASE("element_loss gives the host driver's gradient bit for bit (labels, focal and BCE)") {
    const index_t n = 203, k = 9;
    const auto x = uniform(static_cast<std::size_t>(n * k), -12.0f, 12.0f, 1);
    const auto labels = random_labels(static_cast<std::size_t>(n), k, 2);
    index_t ignored = 0;
    for (auto l : labels) ignored += l == focal::ignored_label;
    auto check_policy = [&](const auto& policy) {
        for (const reduction r : {reduction::sum(), reduction::mean(), reduction::divide_by(13.0)}) {
            std::vector<float> grad(x.size()), values(x.size());
            focal::loss_output<float> out{focal::make_view(grad.data(), n, k), focal::make_view(values.data(), n, k)};
            const double host = focal::classification_loss(policy, focal::make_view(x.data(), n, k),
                                                           focal::make_view(labels.data(), n), r, out, focal::exec::scalar);
            const double scale = r.scale(static_cast<double>((n - ignored) * k));
            std::size_t bad = 0;
            for (index_t i = 0; i < n; ++i)
                for (index_t c = 0; c < k; ++c) {
                    const std::size_t e = static_cast<std::size_t>(i * k + c);
                    const auto vg = d::element_loss(policy, x[e], d::label_target<float>(labels[static_cast<std::size_t>(i)], c),
                                                    static_cast<float>(scale));
                    bad += !same_bits(vg.grad, grad[e]) || !same_bits(vg.value, values[e]);
                }
            CHECK(bad == 0);
            // The emulated device order agrees with the host's sum: both are within a few float
            // roundings of the exact sum of non-negative terms.
            const double device = emulate_device_sum(policy, x, labels, n, k, scale);
            CHECK(std::abs(device - host) <= (k + 8) * 0x1p-24 * std::abs(host));
        }
    };
    check_policy(focal::sigmoid_focal_loss{0.25f, 2.0f});
    check_policy(focal::sigmoid_focal_loss{0.25f, 0.0f});
    check_policy(focal::sigmoid_focal_loss{0.25f, 1.5f});
    check_policy(focal::binary_cross_entropy{});
}

TEST_CASE("the emulated device order at 201600 x 80 is within float rounding of an exact sum") {
    const index_t n = 201600, k = 80;
    const auto x = uniform(static_cast<std::size_t>(n * k), -10.0f, 10.0f, 3);
    const auto labels = random_labels(static_cast<std::size_t>(n), k, 4);
    const focal::sigmoid_focal_loss policy{};
    long double exact = 0;
    for (index_t i = 0; i < n; ++i)
        for (index_t c = 0; c < k; ++c)
            exact += d::element_loss(policy, x[static_cast<std::size_t>(i * k + c)],
                                     d::label_target<float>(labels[static_cast<std::size_t>(i)], c), 1.0f)
                         .value;
    const double device = emulate_device_sum(policy, x, labels, n, k, 1.0);
    // Groups of 4 in float (3 u), then double: 4 u covers it.
    CHECK(std::abs(static_cast<long double>(device) - exact) <= 4 * 0x1p-24 * exact);
    const double host = focal::classification_loss(policy, focal::make_view(x.data(), n, k), focal::make_view(labels.data(), n));
    CHECK(std::abs(device - host) <= (k + 8) * 0x1p-24 * host);
    CHECK(d::loss_blocks<float>(n * k) == (n * k / 4 + 1023) / 1024);
}

TEST_CASE("reduction factors: constant, counted on the device, device normalizer") {
    CHECK(d::constant_scale{0.25}.at(3) == 0.25);
    // mean with labels: (rows - ignored) * cols, as the host; none contributing gives 0.
    const unsigned long long counts[] = {3, 10, 0};
    const d::count_scale cls{reduction::mean(), counts, 10, 4, true};
    CHECK(cls.at(0) == reduction::mean().scale(28.0));
    CHECK(cls.at(1) == 0.0);
    CHECK(cls.at(2) == reduction::mean().scale(40.0));
    const d::count_scale box{reduction::mean(), counts, 0, 0, false};
    CHECK(box.at(0) == 1.0 / 3.0);
    CHECK(box.at(1) == 0.1);
    CHECK(box.at(2) == 0.0);  // no positives: mean over nothing is 0, as the host
    // torchvision per image: B * max(1, P_b).
    const std::int64_t positives[] = {0, 5, 2};
    const d::normalizer_scale<std::int64_t, float> per_image{positives, 3.0, 1.0, true};
    CHECK(per_image.at(0) == 1.0 / 3.0);
    CHECK(per_image.at(1) == 1.0 / 15.0);
    CHECK(per_image.at(2) == 1.0 / 6.0);
    const d::normalizer_scale<std::int64_t, float> shared{positives + 1, 1.0, 0.0, false};
    CHECK(shared.at(2) == 0.2);  // values[0] for every image
    // Invalid normalizers give NaN.
    const double bad[] = {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), 1e300};
    for (double v : bad) {
        const d::normalizer_scale<double, float> s{&v, 1.0, 0.0, false};
        CHECK(std::isnan(s.at(0)));
    }
    const double fine = 1e300;
    CHECK(d::normalizer_scale<double, double>{&fine, 1.0, 0.0, false}.at(0) == 1e-300);
}

TEST_CASE("position_of / next_position walk a row-major image") {
    for (index_t cols : {index_t(1), index_t(3), index_t(4), index_t(80)}) {
        bool ok = true;
        for (index_t e0 = 0; e0 < 400; e0 += 4) {
            d::element_position p = d::position_of<std::uint32_t>(e0, cols);
            const d::element_position q = d::position_of<index_t>(e0, cols);
            ok = ok && p.row == q.row && p.col == q.col;
            for (index_t j = 0; j < 4; ++j) {
                ok = ok && p.row == (e0 + j) / cols && p.col == (e0 + j) % cols;
                d::next_position(p, cols);
            }
        }
        CHECK(ok);
    }
}

TEST_CASE("box_row_loss gives the host driver's gradient bit for bit") {
    const index_t n = 300;
    const auto p = uniform(4 * n, -2.0f, 2.0f, 5), t = uniform(4 * n, -2.0f, 2.0f, 6);
    std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i)
        labels[static_cast<std::size_t>(i)] = i % 3 == 0 ? 1 : (i % 3 == 1 ? focal::background_label : focal::ignored_label);
    auto check_policy = [&](const auto& policy) {
        for (const reduction r : {reduction::sum(), reduction::mean(), reduction::divide_by(7.0)}) {
            std::vector<float> grad(p.size());
            const double host = focal::box_regression_loss(policy, focal::make_view(p.data(), n, 4), focal::make_view(t.data(), n, 4),
                                                           focal::make_view(labels.data(), n), r,
                                                           focal::box_loss_output<float>{focal::make_view(grad.data(), n, 4)});
            const double scale = r.scale(static_cast<double>(n / 3));
            std::size_t bad = 0;
            double total = 0;
            for (index_t i = 0; i < n; ++i) {
                const std::size_t e = static_cast<std::size_t>(4 * i);
                if (!d::is_positive_label(labels[static_cast<std::size_t>(i)])) {
                    for (int c = 0; c < 4; ++c) bad += grad[e + c] != 0.0f;
                    continue;
                }
                const focal::box4<float> pb{{p[e], p[e + 1], p[e + 2], p[e + 3]}}, tb{{t[e], t[e + 1], t[e + 2], t[e + 3]}};
                const auto vg = d::box_row_loss(policy, pb, tb, scale);
                total += vg.value;
                for (int c = 0; c < 4; ++c) bad += !same_bits(vg.grad[c], grad[e + c]);
            }
            CHECK(bad == 0);
            CHECK(total * scale == doctest::Approx(host).epsilon(1e-12));
        }
    };
    check_policy(focal::l1_loss{});
    check_policy(focal::smooth_l1_loss{});
}
