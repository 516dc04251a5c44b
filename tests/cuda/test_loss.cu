// focal::cuda::classification_loss and box_regression_loss against the host drivers.
//
// Tolerances (derived, not tuned):
//   values: elements are non-negative, so a sum's relative error is at most the largest relative
//   error of an element plus the summation error. The host (compiled by nvcc: scalar, no xsimd)
//   adds a row's up to min(K, 256) values in float before double: <= (min(K, 256) - 1) u,
//   u = 2^-24. The device adds groups of <= 4 in float (3 u), then double. An element's value
//   differs between CUDA's expf / log1pf (<= 2 ulp) and glibc's (<= 1 ulp) through the policy's
//   few operations: budget 32 u. So rel = (min(K, 256) + 40) u.
//   gradients: the same policy code in float on both sides, libm differences only; gamma = 1.5
//   computes q^gamma as exp(-gamma softplus(z)), which multiplies the log's relative error by
//   |gamma softplus(z)| <= ~13 for |x| <= 8: rel 64 u (~4e-6) covers it. Ignored elements are
//   exactly 0 on both sides.
//   boxes: per-row values in float, summed in double on both sides: rel 64 u.
#include <focal/core/labels.hpp>
#include <focal/cuda/loss.cuh>
#include <focal/loss/binary_cross_entropy.hpp>
#include <focal/loss/box_regression_loss.hpp>
#include <focal/loss/classification_loss.hpp>
#include <focal/loss/giou.hpp>
#include <focal/loss/loss_output.hpp>
#include <focal/loss/sigmoid_focal.hpp>
#include <focal/loss/smooth_l1.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "harness.cuh"
#include "support/random_labels.hpp"

namespace {

using focal::index_t;
using focal::reduction;
namespace fc = focal::cuda;

constexpr double u = 1.0 / (1 << 24);
double sum_rel(index_t k) { return (static_cast<double>(std::min<index_t>(k, 256)) + 40) * u; }
constexpr double grad_rel = 64 * u;

struct device_workspace {
    fc::device_buffer<unsigned char> buffer;
    explicit device_workspace(std::size_t bytes) : buffer(bytes) {}
    fc::workspace get() const { return {buffer.data(), buffer.size()}; }
};

using focal_test_support::random_labels;

template <class T>
T read_one(const fc::device_buffer<T>& b) {
    return b.to_host()[0];
}
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Host reference with labels: value and gradient.
template <class Loss>
double host_labels(const Loss& loss, const std::vector<float>& x, const std::vector<std::int64_t>& labels, index_t n,
                   index_t k, reduction r, std::vector<float>& grad) {
    grad.assign(x.size(), -1.0f);
    focal::loss_output<float> out;
    out.grad = focal::make_view(grad.data(), n, k);
    return focal::classification_loss(loss, focal::make_view(x.data(), n, k), focal::make_view(labels.data(), n), r, out);
}

// Device run with labels on a contiguous logits buffer: value (double) and gradient.
template <class Loss>
double device_labels(const Loss& loss, const std::vector<float>& x, const std::vector<std::int64_t>& labels, index_t n,
                     index_t k, reduction r, std::vector<float>& grad) {
    fc::device_buffer<float> dx(x), dg(x.size());
    fc::device_buffer<std::int64_t> dl(labels);
    fc::device_buffer<double> value(1);
    device_workspace ws(fc::classification_loss_workspace_size(n, k));
    fc::loss_output<float, double> out{value.data(), dg.view(n, k), {}};
    fc::classification_loss(loss, fc::device_matrix_view<const float>(dx.view(n, k)), dl.view(), r, out, ws.get(), nullptr);
    fc::synchronize(nullptr);
    grad = dg.to_host();
    return read_one(value);
}

}  // namespace

FOCAL_CUDA_TEST(classification_labels_match_host_focal_gammas_and_reductions) {
    const float gammas[] = {2.0f, 0.0f, 1.5f};
    const reduction reductions[] = {reduction::sum(), reduction::mean(), reduction::divide_by(37.0)};
    const index_t shapes[][2] = {{1000, 80}, {1001, 7}, {3, 1}, {5, 3}};
    unsigned seed = 1;
    for (const auto& shape : shapes) {
        const index_t n = shape[0], k = shape[1];
        const auto x = focal_test::uniform(static_cast<std::size_t>(n * k), -8.0f, 8.0f, seed++);
        const auto labels = random_labels(static_cast<std::size_t>(n), k, seed++);
        for (float gamma : gammas)
            for (const reduction& r : reductions) {
                const focal::sigmoid_focal_loss loss{0.25f, gamma};
                std::vector<float> hg, dg;
                const double expected = host_labels(loss, x, labels, n, k, r, hg);
                const double actual = device_labels(loss, x, labels, n, k, r, dg);
                CHECK_CLOSE(std::vector<double>{actual}, std::vector<double>{expected}, sum_rel(k), 0.0);
                CHECK_CLOSE(dg, hg, grad_rel, 1e-30);
            }
    }
}

FOCAL_CUDA_TEST(classification_bce_labels_and_float_value) {
    const index_t n = 777, k = 13;
    const auto x = focal_test::uniform(static_cast<std::size_t>(n * k), -6.0f, 6.0f, 11);
    const auto labels = random_labels(static_cast<std::size_t>(n), k, 12);
    const focal::binary_cross_entropy loss{2.0f};
    std::vector<float> hg;
    const double expected = host_labels(loss, x, labels, n, k, reduction::mean(), hg);
    fc::device_buffer<float> dx(x), dg(x.size());
    fc::device_buffer<std::int64_t> dl(labels);
    fc::device_buffer<float> value(1);
    device_workspace ws(fc::classification_loss_workspace_size(n, k));
    fc::loss_output<float, float> out{value.data(), dg.view(n, k), {}};
    fc::classification_loss(loss, dx.view(n, k), dl.view(), reduction::mean(), out, ws.get(), nullptr);
    CHECK_CLOSE(std::vector<float>{read_one(value)}, std::vector<double>{expected}, sum_rel(k) + u, 0.0);
    CHECK_CLOSE(dg.to_host(), hg, grad_rel, 1e-30);
}

FOCAL_CUDA_TEST(classification_dense_targets_sum_mean_none) {
    const index_t n = 301, k = 11;  // 3311 elements: not a multiple of 4
    const auto x = focal_test::uniform(static_cast<std::size_t>(n * k), -8.0f, 8.0f, 21);
    auto t = focal_test::uniform(static_cast<std::size_t>(n * k), 0.0f, 1.0f, 22);
    std::vector<float> binary(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) binary[i] = t[i] < 0.1f ? 1.0f : 0.0f;
    const reduction reductions[] = {reduction::sum(), reduction::mean(), reduction::none(), reduction::divide_by(5.5)};
    auto run = [&](const auto& loss, const std::vector<float>& targets) {
        for (const reduction& r : reductions) {
            std::vector<float> hg(x.size()), hv(x.size());
            focal::loss_output<float> hout{focal::make_view(hg.data(), n, k), focal::make_view(hv.data(), n, k)};
            const double expected = focal::classification_loss(loss, focal::make_view(x.data(), n, k),
                                                               focal::make_view(targets.data(), n, k), r, hout);
            fc::device_buffer<float> dx(x), dt(targets), dg(x.size()), dv(x.size());
            fc::device_buffer<double> value(1);
            device_workspace ws(fc::classification_loss_workspace_size(n, k));
            fc::loss_output<float, double> out{value.data(), dg.view(n, k), dv.view(n, k)};
            fc::classification_loss(loss, fc::device_matrix_view<const float>(dx.view(n, k)),
                                    fc::device_matrix_view<const float>(dt.view(n, k)), r, out, ws.get(), nullptr);
            CHECK_CLOSE(std::vector<double>{read_one(value)}, std::vector<double>{expected}, sum_rel(k), 0.0);
            CHECK_CLOSE(dg.to_host(), hg, grad_rel, 1e-30);
            CHECK_CLOSE(dv.to_host(), hv, 32 * u, 1e-30);
        }
    };
    run(focal::sigmoid_focal_loss{0.25f, 2.0f}, binary);
    run(focal::binary_cross_entropy{}, t);  // soft targets in [0, 1]
}

// Strided and column-major logits give the same bits as contiguous ones (the summation order
// does not depend on the layout); grad in place gives the same bits as a separate grad.
FOCAL_CUDA_TEST(classification_layouts_and_in_place_grad_give_the_same_bits) {
    const index_t n = 517, k = 9, pitch = 13;
    const auto x = focal_test::uniform(static_cast<std::size_t>(n * k), -8.0f, 8.0f, 31);
    const auto labels = random_labels(static_cast<std::size_t>(n), k, 32);
    const focal::sigmoid_focal_loss loss{};
    const reduction r = reduction::divide_by(17.0);
    std::vector<float> reference_grad, hg;
    const double reference = device_labels(loss, x, labels, n, k, r, reference_grad);
    const double expected = host_labels(loss, x, labels, n, k, r, hg);
    CHECK_CLOSE(std::vector<double>{reference}, std::vector<double>{expected}, sum_rel(k), 0.0);
    CHECK_CLOSE(reference_grad, hg, grad_rel, 1e-30);

    fc::device_buffer<std::int64_t> dl(labels);
    device_workspace ws(fc::classification_loss_workspace_size(n, k));
    fc::device_buffer<double> value(1);
    {  // rows with a pitch: x and grad inside n x pitch buffers
        std::vector<float> padded(static_cast<std::size_t>(n * pitch), 99.0f);
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < k; ++j) padded[i * pitch + j] = x[i * k + j];
        fc::device_buffer<float> dx(padded), dg(padded);
        const index_t ext[2] = {n, k}, str[2] = {pitch, 1};
        const fc::device_matrix_view<const float> xv(dx.data(), ext, str);
        fc::loss_output<float, double> out{value.data(), fc::device_matrix_view<float>(dg.data(), ext, str), {}};
        fc::classification_loss(loss, xv, dl.view(), r, out, ws.get(), nullptr);
        const auto g = dg.to_host();
        std::vector<float> got(x.size());
        bool padding_untouched = true;
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < pitch; ++j) {
                if (j < k) got[i * k + j] = g[i * pitch + j];
                else padding_untouched = padding_untouched && g[i * pitch + j] == 99.0f;
            }
        CHECK(padding_untouched);
        CHECK(same_bits(got, reference_grad));
        CHECK(same_bits(read_one(value), reference));
    }
    {  // column-major logits and grad
        std::vector<float> cm(x.size());
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < k; ++j) cm[j * n + i] = x[i * k + j];
        fc::device_buffer<float> dx(cm), dg(cm.size());
        const index_t ext[2] = {n, k}, str[2] = {1, n};
        fc::loss_output<float, double> out{value.data(), fc::device_matrix_view<float>(dg.data(), ext, str), {}};
        fc::classification_loss(loss, fc::device_matrix_view<const float>(dx.data(), ext, str), dl.view(), r, out, ws.get(),
                                nullptr);
        const auto g = dg.to_host();
        std::vector<float> got(x.size());
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < k; ++j) got[i * k + j] = g[j * n + i];
        CHECK(same_bits(got, reference_grad));
        CHECK(same_bits(read_one(value), reference));
    }
    {  // in place: grad overwrites the logits
        fc::device_buffer<float> dx(x);
        fc::loss_output<float, double> out{value.data(), dx.view(n, k), {}};
        fc::classification_loss(loss, dx.view(n, k), dl.view(), r, out, ws.get(), nullptr);
        CHECK(same_bits(dx.to_host(), reference_grad));
        CHECK(same_bits(read_one(value), reference));
    }
    {  // misaligned start (offset by one float): the scalar path, same bits
        std::vector<float> shifted(x.size() + 1, 0.0f);
        std::copy(x.begin(), x.end(), shifted.begin() + 1);
        fc::device_buffer<float> dx(shifted), dg(shifted.size());
        fc::loss_output<float, double> out{value.data(), fc::device_matrix_view<float>(dg.data() + 1, n, k), {}};
        fc::classification_loss(loss, fc::device_matrix_view<const float>(dx.data() + 1, n, k), dl.view(), r, out,
                                ws.get(), nullptr);
        auto g = dg.to_host();
        g.erase(g.begin());
        CHECK(same_bits(g, reference_grad));
        CHECK(same_bits(read_one(value), reference));
    }
}

FOCAL_CUDA_TEST(classification_empty_inputs_write_zero) {
    const focal::sigmoid_focal_loss loss{};
    fc::device_buffer<double> value(std::vector<double>{42.0});
    device_workspace ws(fc::classification_loss_workspace_size(0, 80));
    fc::loss_output<float, double> out{value.data(), {}, {}};
    const fc::device_matrix_view<const float> x(nullptr, index_t(0), index_t(80));
    const fc::device_vector_view<const std::int64_t> labels(nullptr, index_t(0));
    fc::classification_loss(loss, x, labels, reduction::mean(), out, ws.get(), nullptr);
    CHECK_EQ(read_one(value), 0.0);
    value.copy_from({42.0});
    fc::classification_loss(loss, x, x, reduction::sum(), out, ws.get(), nullptr);
    CHECK_EQ(read_one(value), 0.0);
    // Every row ignored: mean over nothing is 0 (as the host), gradient 0.
    fc::device_buffer<float> dx(std::vector<float>(12, 1.0f)), dg(12);
    fc::device_buffer<std::int64_t> dl(std::vector<std::int64_t>(3, focal::ignored_label));
    value.copy_from({42.0});
    fc::loss_output<float, double> out2{value.data(), dg.view(3, 4), {}};
    fc::classification_loss(loss, dx.view(3, 4), dl.view(), reduction::mean(), out2, ws.get(), nullptr);
    CHECK_EQ(read_one(value), 0.0);
    CHECK(same_bits(dg.to_host(), std::vector<float>(12, 0.0f)));
}

// The benchmark's shape: 201,600 anchors x 80 classes, normalized by the positives; twice, same bits.
FOCAL_CUDA_TEST(classification_retinanet_size_matches_host_and_is_deterministic) {
    const index_t n = 201600, k = 80;
    const auto x = focal_test::uniform(static_cast<std::size_t>(n * k), -10.0f, 10.0f, 41);
    const auto labels = random_labels(static_cast<std::size_t>(n), k, 42, 0.05, 0.001);
    index_t positives = 0;
    for (auto l : labels) positives += l >= 0;
    const reduction r = reduction::divide_by(static_cast<double>(std::max<index_t>(1, positives)));
    const focal::sigmoid_focal_loss loss{};
    std::vector<float> hg, g1, g2;
    const double expected = host_labels(loss, x, labels, n, k, r, hg);
    const double v1 = device_labels(loss, x, labels, n, k, r, g1);
    const double v2 = device_labels(loss, x, labels, n, k, r, g2);
    CHECK_CLOSE(std::vector<double>{v1}, std::vector<double>{expected}, sum_rel(k), 0.0);
    CHECK_CLOSE(g1, hg, grad_rel, 1e-30);
    CHECK(same_bits(v1, v2));
    CHECK(same_bits(g1, g2));
}

// Batched: B images, per-image normalizers on the device (torchvision's B * max(1, P_b)), and a
// reduction applied per image; compared with the host driver run image by image.
FOCAL_CUDA_TEST(classification_batched_matches_host_per_image) {
    const index_t b = 3, n = 450, k = 10;
    const auto x = focal_test::uniform(static_cast<std::size_t>(b * n * k), -8.0f, 8.0f, 51);
    auto labels = random_labels(static_cast<std::size_t>(b * n), k, 52);
    for (index_t i = 0; i < n; ++i)  // image 2: no positives
        labels[static_cast<std::size_t>(2 * n + i)] = i % 2 ? focal::background_label : focal::ignored_label;
    std::vector<std::int64_t> positives(static_cast<std::size_t>(b), 0);
    for (index_t i = 0; i < b * n; ++i) positives[static_cast<std::size_t>(i / n)] += labels[static_cast<std::size_t>(i)] >= 0;
    const focal::sigmoid_focal_loss loss{};
    fc::device_buffer<float> dx(x), dg(x.size());
    fc::device_buffer<std::int64_t> dl(labels), dp(positives);
    fc::device_buffer<double> values(static_cast<std::size_t>(b)), total(1);
    device_workspace ws(fc::classification_loss_workspace_size(b, n, k));
    const auto xv = focal::make_device_view(static_cast<const float*>(dx.data()), b, n, k);
    const auto lv = focal::make_device_view(static_cast<const std::int64_t*>(dl.data()), b, n);
    fc::batch_loss_output<float, double> out{values.data(), total.data(), focal::make_device_view(dg.data(), b, n, k)};

    auto host_image = [&](index_t i, reduction r, std::vector<float>& grad) {
        std::vector<float> xi(x.begin() + i * n * k, x.begin() + (i + 1) * n * k);
        std::vector<std::int64_t> li(labels.begin() + i * n, labels.begin() + (i + 1) * n);
        std::vector<float> gi;
        const double v = host_labels(loss, xi, li, n, k, r, gi);
        std::copy(gi.begin(), gi.end(), grad.begin() + i * n * k);
        return v;
    };
    {  // device normalizer: n_b = B * max(1, positives_b)
        fc::classification_loss(loss, xv, lv, fc::device_normalizer<std::int64_t>{dp.data(), double(b), 1.0}, out, ws.get(), nullptr);
        std::vector<float> hg(x.size());
        std::vector<double> hv(static_cast<std::size_t>(b));
        double htotal = 0;
        for (index_t i = 0; i < b; ++i) {
            hv[i] = host_image(i, reduction::divide_by(double(b) * std::max<std::int64_t>(1, positives[i])), hg);
            htotal += hv[i];
        }
        CHECK_CLOSE(values.to_host(), hv, sum_rel(k), 0.0);
        CHECK_CLOSE(total.to_host(), std::vector<double>{htotal}, sum_rel(k), 0.0);
        CHECK_CLOSE(dg.to_host(), hg, grad_rel, 1e-30);
    }
    {  // reduction::mean per image (each image counts its own non-ignored rows)
        fc::classification_loss(loss, xv, lv, reduction::mean(), out, ws.get(), nullptr);
        std::vector<float> hg(x.size());
        std::vector<double> hv(static_cast<std::size_t>(b));
        for (index_t i = 0; i < b; ++i) hv[i] = host_image(i, reduction::mean(), hg);
        CHECK_CLOSE(values.to_host(), hv, sum_rel(k), 0.0);
        CHECK_CLOSE(dg.to_host(), hg, grad_rel, 1e-30);
    }
    {  // single image with a device normalizer equals divide_by
        fc::device_buffer<double> norm(std::vector<double>{2.5}), value(1);
        fc::device_buffer<float> g1(static_cast<std::size_t>(n * k));
        fc::loss_output<float, double> o{value.data(), g1.view(n, k), {}};
        const fc::device_matrix_view<const float> x0(dx.data(), n, k);
        const fc::device_vector_view<const std::int64_t> l0(dl.data(), n);
        fc::classification_loss(loss, x0, l0, fc::device_normalizer<double>{norm.data()}, o, ws.get(), nullptr);
        const double a = read_one(value);
        const auto ga = g1.to_host();
        fc::classification_loss(loss, x0, l0, reduction::divide_by(2.5), o, ws.get(), nullptr);
        CHECK(same_bits(a, read_one(value)));
        CHECK(same_bits(ga, g1.to_host()));
        norm.copy_from({0.0});  // invalid normalizer: NaN, not a finite wrong answer
        fc::classification_loss(loss, x0, l0, fc::device_normalizer<double>{norm.data()}, o, ws.get(), nullptr);
        CHECK(std::isnan(read_one(value)));
    }
}

FOCAL_CUDA_TEST(classification_bad_input_throws_before_launching) {
    const focal::sigmoid_focal_loss loss{};
    const index_t n = 10, k = 4;
    fc::device_buffer<float> dx(static_cast<std::size_t>(n * k)), dg(static_cast<std::size_t>(n * k));
    fc::device_buffer<std::int64_t> dl(std::vector<std::int64_t>(static_cast<std::size_t>(n), focal::background_label));
    fc::device_buffer<double> value(std::vector<double>{42.0});
    device_workspace ws(fc::classification_loss_workspace_size(n, k));
    const fc::device_matrix_view<const float> x = dx.view(n, k);
    fc::loss_output<float, double> out{value.data(), dg.view(n, k), {}};
    // labels of the wrong length
    CHECK_THROWS_AS(fc::classification_loss(loss, x, fc::device_vector_view<const std::int64_t>(dl.data(), n - 1), reduction::sum(),
                                            out, ws.get(), nullptr),
                    focal::error);
    // grad of the wrong shape
    fc::loss_output<float, double> bad_grad{value.data(), dg.view(k, n), {}};
    CHECK_THROWS_AS(fc::classification_loss(loss, x, dl.view(), reduction::sum(), bad_grad, ws.get(), nullptr), focal::error);
    // workspace too small
    CHECK_THROWS_AS(fc::classification_loss(loss, x, dl.view(), reduction::sum(), out,
                                            fc::workspace{ws.buffer.data(), ws.buffer.size() - 1}, nullptr),
                    focal::error);
    // none without values, bad normalizer, bad policy
    CHECK_THROWS_AS(fc::classification_loss(loss, x, dl.view(), reduction::none(), out, ws.get(), nullptr), focal::error);
    CHECK_THROWS_AS(fc::classification_loss(loss, x, dl.view(), reduction::divide_by(0.0), out, ws.get(), nullptr), focal::error);
    CHECK_THROWS_AS(fc::classification_loss(loss, x, dl.view(), fc::device_normalizer<double>{}, out, ws.get(), nullptr),
                    focal::error);
    CHECK_THROWS_AS(fc::classification_loss(focal::sigmoid_focal_loss{0.25f, -1.0f}, x, dl.view(), reduction::sum(), out,
                                            ws.get(), nullptr),
                    focal::error);
    // dense targets of another shape
    CHECK_THROWS_AS(fc::classification_loss(loss, x, fc::device_matrix_view<const float>(dg.view(k, n)), reduction::sum(), out,
                                            ws.get(), nullptr),
                    focal::error);
    // grad sharing the logits' memory with another layout (shifted, transposed): threads would race
    const fc::device_matrix_view<const float> x_half(dx.data(), n / 2, k);
    const fc::device_vector_view<const std::int64_t> l_half(dl.data(), n / 2);
    fc::loss_output<float, double> shifted{value.data(), fc::device_matrix_view<float>(dx.data() + 1, n / 2, k), {}};
    CHECK_THROWS_AS(fc::classification_loss(loss, x_half, l_half, reduction::sum(), shifted, ws.get(), nullptr), focal::error);
    const index_t square[2] = {k, k}, transposed[2] = {1, k};
    fc::loss_output<float, double> crossed{value.data(), fc::device_matrix_view<float>(dx.data(), square, transposed), {}};
    CHECK_THROWS_AS(fc::classification_loss(loss, fc::device_matrix_view<const float>(dx.data(), k, k),
                                            fc::device_vector_view<const std::int64_t>(dl.data(), k), reduction::sum(), crossed,
                                            ws.get(), nullptr),
                    focal::error);
    // batched: labels of the wrong shape, overlapping grad images
    const auto xb = focal::make_device_view(static_cast<const float*>(dx.data()), index_t(2), index_t(5), k);
    const index_t ext[3] = {2, 5, k}, overlapping[3] = {k, k, 1};
    fc::batch_loss_output<float, double> bout{nullptr, value.data(), fc::device_tensor3_view<float>(dg.data(), ext, overlapping)};
    CHECK_THROWS_AS(fc::classification_loss(loss, xb, focal::make_device_view(static_cast<const std::int64_t*>(dl.data()), index_t(2), index_t(5)),
                                            reduction::sum(), bout, ws.get(), nullptr),
                    focal::error);
    CHECK_THROWS_AS(fc::classification_loss(loss, xb, focal::make_device_view(static_cast<const std::int64_t*>(dl.data()), index_t(2), index_t(4)),
                                            reduction::sum(), fc::batch_loss_output<float, double>{nullptr, value.data(), {}},
                                            ws.get(), nullptr),
                    focal::error);
    fc::synchronize(nullptr);
    CHECK_EQ(read_one(value), 42.0);  // nothing was launched
}

// ---- boxes --------------------------------------------------------------------------------------

namespace {
std::vector<float> random_boxes(std::size_t n, unsigned seed) {
    const auto r = focal_test::uniform(4 * n, 0.0f, 100.0f, seed);
    std::vector<float> b(4 * n);
    for (std::size_t i = 0; i < n; ++i) {
        b[4 * i + 0] = std::min(r[4 * i], r[4 * i + 2]);
        b[4 * i + 2] = std::max(r[4 * i], r[4 * i + 2]) + 1.0f;
        b[4 * i + 1] = std::min(r[4 * i + 1], r[4 * i + 3]);
        b[4 * i + 3] = std::max(r[4 * i + 1], r[4 * i + 3]) + 1.0f;
    }
    return b;
}

template <class Loss>
void check_box_loss(const Loss& loss, const std::vector<float>& p, const std::vector<float>& t, index_t n, unsigned seed) {
    const auto labels = random_labels(static_cast<std::size_t>(n), 5, seed, 0.1, 0.2);
    const reduction reductions[] = {reduction::sum(), reduction::mean(), reduction::divide_by(7.0)};
    fc::device_buffer<float> dp(p), dt(t), dg(p.size());
    fc::device_buffer<std::int64_t> dl(labels);
    fc::device_buffer<double> value(1);
    device_workspace ws(fc::box_regression_loss_workspace_size(n));
    for (const reduction& r : reductions) {
        std::vector<float> hg(p.size(), -1.0f);
        const double expected = focal::box_regression_loss(loss, focal::make_view(p.data(), n, 4), focal::make_view(t.data(), n, 4),
                                                           focal::make_view(labels.data(), n), r,
                                                           focal::box_loss_output<float>{focal::make_view(hg.data(), n, 4)});
        fc::box_loss_output<float, double> out{value.data(), dg.view(n, 4)};
        fc::box_regression_loss(loss, fc::device_matrix_view<const float>(dp.view(n, 4)),
                                fc::device_matrix_view<const float>(dt.view(n, 4)), dl.view(), r, out, ws.get(), nullptr);
        CHECK_CLOSE(std::vector<double>{read_one(value)}, std::vector<double>{expected}, 64 * u, 0.0);
        CHECK_CLOSE(dg.to_host(), hg, 64 * u, 1e-30);
    }
}
}  // namespace

FOCAL_CUDA_TEST(box_losses_match_host) {
    const index_t n = 3000;
    const auto deltas = focal_test::uniform(static_cast<std::size_t>(4 * n), -2.0f, 2.0f, 61);
    const auto delta_targets = focal_test::uniform(static_cast<std::size_t>(4 * n), -2.0f, 2.0f, 62);
    check_box_loss(focal::l1_loss{}, deltas, delta_targets, n, 63);
    check_box_loss(focal::smooth_l1_loss{1.0f / 9.0f}, deltas, delta_targets, n, 64);
    check_box_loss(focal::giou_loss{}, random_boxes(static_cast<std::size_t>(n), 65), random_boxes(static_cast<std::size_t>(n), 66), n, 67);
}

FOCAL_CUDA_TEST(box_loss_batched_and_bad_input) {
    const index_t b = 2, n = 700;
    const auto p = focal_test::uniform(static_cast<std::size_t>(b * n * 4), -2.0f, 2.0f, 71);
    const auto t = focal_test::uniform(static_cast<std::size_t>(b * n * 4), -2.0f, 2.0f, 72);
    const auto labels = random_labels(static_cast<std::size_t>(b * n), 5, 73, 0.1, 0.2);
    const std::vector<double> norms = {6.0, 10.0};
    const focal::l1_loss loss{};
    fc::device_buffer<float> dp(p), dt(t), dg(p.size());
    fc::device_buffer<std::int64_t> dl(labels);
    fc::device_buffer<double> dn(norms), values(static_cast<std::size_t>(b)), total(1);
    device_workspace ws(fc::box_regression_loss_workspace_size(b, n));
    fc::batch_loss_output<float, double> out{values.data(), total.data(), focal::make_device_view(dg.data(), b, n, index_t(4))};
    fc::box_regression_loss(loss, focal::make_device_view(static_cast<const float*>(dp.data()), b, n, index_t(4)),
                            focal::make_device_view(static_cast<const float*>(dt.data()), b, n, index_t(4)),
                            focal::make_device_view(static_cast<const std::int64_t*>(dl.data()), b, n),
                            fc::device_normalizer<double>{dn.data()}, out, ws.get(), nullptr);
    std::vector<float> hg(p.size());
    std::vector<double> hv(static_cast<std::size_t>(b));
    double htotal = 0;
    for (index_t i = 0; i < b; ++i) {
        hv[i] = focal::box_regression_loss(loss, focal::make_view(p.data() + i * n * 4, n, 4), focal::make_view(t.data() + i * n * 4, n, 4),
                                           focal::make_view(labels.data() + i * n, n), reduction::divide_by(norms[i]),
                                           focal::box_loss_output<float>{focal::make_view(hg.data() + i * n * 4, n, 4)});
        htotal += hv[i];
    }
    CHECK_CLOSE(values.to_host(), hv, 64 * u, 0.0);
    CHECK_CLOSE(total.to_host(), std::vector<double>{htotal}, 64 * u, 0.0);
    CHECK_CLOSE(dg.to_host(), hg, 64 * u, 1e-30);

    fc::device_buffer<double> value(std::vector<double>{42.0});
    fc::box_loss_output<float, double> o{value.data(), {}};
    const fc::device_matrix_view<const float> p0(dp.data(), n, 4);
    CHECK_THROWS_AS(fc::box_regression_loss(loss, p0, p0, fc::device_vector_view<const std::int64_t>(dl.data(), n), reduction::none(), o,
                                            ws.get(), nullptr),
                    focal::error);
    CHECK_THROWS_AS(fc::box_regression_loss(loss, fc::device_matrix_view<const float>(dp.data(), n, 2), fc::device_matrix_view<const float>(dp.data(), n, 2),
                                            fc::device_vector_view<const std::int64_t>(dl.data(), n), reduction::sum(), o, ws.get(), nullptr),
                    focal::error);
    CHECK_THROWS_AS(fc::box_regression_loss(loss, p0, p0, fc::device_vector_view<const std::int64_t>(dl.data(), n), reduction::sum(), o,
                                            fc::workspace{}, nullptr),
                    focal::error);
    CHECK_EQ(read_one(value), 42.0);
}
