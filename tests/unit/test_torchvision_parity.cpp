// Parity with torchvision 0.14's sigmoid_focal_loss (float64 values and autograd gradients).
// Every focal_* case listed in the manifest is checked; FOCAL_FIXTURES swaps in another set.
//
// Tolerances. torchvision evaluates log(1 + e^-|x|) and 1 - p_t = 1 - sigmoid(z) directly, so its
// own relative error is about eps / (1 - p_t) where the prediction is confidently right
// (1e-3 at |x| = 30), and its gradient is NaN where 1 - p_t rounds to 0 with gamma < 1. So focal
// is held to (a) 1e-12 relative (float64) of torchvision plus that bound of torchvision's own
// error, and (b) 1e-12 relative of an independent long-double evaluation of the same definition,
// which also covers the elements where torchvision's gradient is NaN.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include <doctest/doctest.h>
#include <focal/retinanet.hpp>

#include "support/fixtures.hpp"

using focal_test::close;
using focal_test::fixture_set;

namespace {

struct reference_point {
    double value, grad, one_minus_pt;
};

// The focal loss definition evaluated in long double, term by term as the paper writes it.
reference_point long_double_focal(long double x, long double t, long double alpha, long double gamma) {
    const long double z = t > 0.5L ? x : -x;                 // p_t = sigmoid(z)
    const long double p_t = 1.0L / (1.0L + std::exp(-z));
    const long double q = 1.0L / (1.0L + std::exp(z));       // 1 - p_t, without cancellation
    const long double ce = std::log1p(std::exp(-std::fabs(z))) + std::max(-z, 0.0L);  // -log p_t
    const long double alpha_t = alpha < 0 ? 1.0L : (t > 0.5L ? alpha : 1.0L - alpha);
    const long double q_gamma = gamma == 0 ? 1.0L : std::pow(q, gamma);
    const long double value = alpha_t * q_gamma * ce;
    // d/dz [alpha_t q^g ce] with dq/dz = -q p_t and dce/dz = -q
    const long double pt_ce = p_t == 0 ? 0.0L : p_t * ce;
    const long double d_dz = -alpha_t * q_gamma * (gamma * pt_ce + q);
    return {static_cast<double>(value), static_cast<double>(t > 0.5L ? d_dz : -d_dz), static_cast<double>(q)};
}

// torchvision's own relative rounding error at this element (see the file comment).
double torchvision_error_bound(double one_minus_pt, double gamma) {
    return 4.0 * (1.0 + gamma) * DBL_EPSILON / std::max(one_minus_pt, 1e-300);
}

struct worst {
    double floor = 1e-200;  // below this the comparison is absolute
    double rel = 0;
    void see(double got, double want) {
        if (std::isfinite(want) && std::abs(want) > floor) rel = std::max(rel, std::abs(got - want) / std::abs(want));
    }
};

}  // namespace

TEST_CASE("sigmoid_focal_loss matches torchvision and a long-double reference, every focal_* case") {
    const fixture_set fx(focal_test::torchvision_fixtures());
    const auto cases = fx.cases("focal");
    REQUIRE(!cases.empty());
    for (const auto& c : cases) {
        CAPTURE(c);
        const auto& params = fx.params(c);
        const focal::sigmoid_focal_loss loss{params.at("alpha").get<float>(), params.at("gamma").get<float>()};
        const double gamma = loss.gamma;
        const auto x = fx.array<double>(c, "logits");
        const auto t = fx.array<double>(c, "targets");
        const auto tv_value = fx.array<double>(c, "loss");
        const auto tv_grad = fx.array<double>(c, "grad");
        const auto n = static_cast<focal::index_t>(x.size());
        REQUIRE(n > 0);
        REQUIRE(t.size() == x.size());
        REQUIRE(tv_value.size() == x.size());
        REQUIRE(tv_grad.size() == x.size());

        // float64 through the driver (dense targets, reduction::none), scalar and SIMD: the
        // elementwise values and gradients, and the sum it returns.
        std::vector<double> value(x.size()), grad(x.size()), value_simd(x.size()), grad_simd(x.size());
        const double total = focal::classification_loss(
            loss, focal::make_view(x.data(), 1, n), focal::make_view(t.data(), 1, n), focal::reduction::none(),
            {.grad = focal::make_view(grad.data(), 1, n), .values = focal::make_view(value.data(), 1, n)},
            focal::exec::scalar);
        const double total_simd = focal::classification_loss(
            loss, focal::make_view(x.data(), 1, n), focal::make_view(t.data(), 1, n), focal::reduction::none(),
            {.grad = focal::make_view(grad_simd.data(), 1, n), .values = focal::make_view(value_simd.data(), 1, n)},
            focal::exec::simd);
        // float32 through the SIMD driver.
        std::vector<float> xf(x.begin(), x.end()), tf(t.begin(), t.end()), value_f(x.size()), grad_f(x.size());
        focal::classification_loss(loss, focal::make_view(xf.data(), 1, n), focal::make_view(tf.data(), 1, n),
                                   focal::reduction::none(),
                                   {.grad = focal::make_view(grad_f.data(), 1, n),
                                    .values = focal::make_view(value_f.data(), 1, n)},
                                   focal::exec::simd);

        worst vs_torchvision, vs_long_double, f32{1e-30};
        double tv_total = 0;
        int torchvision_nan_grads = 0;
        for (focal::index_t i = 0; i < n; ++i) {
            CAPTURE(i);
            CAPTURE(x(i));
            CAPTURE(t(i));
            const auto ref = long_double_focal(x(i), t(i), loss.alpha, gamma);
            const double tv_tol = 1e-12 + torchvision_error_bound(ref.one_minus_pt, gamma);
            // The policy called directly equals the scalar driver's output bit for bit.
            const auto direct = loss.value_and_grad(x(i), t(i));
            CHECK(direct.value == value[i]);
            CHECK(direct.grad == grad[i]);

            // torchvision's error bound is relative to the true value (the long-double one).
            CHECK(std::abs(value[i] - tv_value(i)) <= tv_tol * std::abs(ref.value));
            CHECK(close(value[i], ref.value, 1e-12, 1e-300));
            CHECK(close(grad[i], ref.grad, 1e-12, 1e-300));
            CHECK(close(value_simd[i], ref.value, 1e-12, 1e-300));
            CHECK(close(grad_simd[i], ref.grad, 1e-12, 1e-300));
            if (std::isnan(tv_grad(i))) {
                ++torchvision_nan_grads;  // torchvision: 0.5 * q^-0.5 * 0 at q = 0; focal stays finite
                CHECK(std::isfinite(grad[i]));
            } else {
                CHECK(std::abs(grad[i] - tv_grad(i)) <= tv_tol * std::abs(ref.grad));
            }
            // float32: 1e-5 relative; below float's range (|value| < 1e-30) only the absolute size counts.
            CHECK(close(value_f[i], ref.value, 1e-5, 1e-30));
            CHECK(close(grad_f[i], ref.grad, 1e-5, 1e-30));
            vs_torchvision.see(value[i], tv_value(i));
            vs_long_double.see(value[i], ref.value);
            vs_long_double.see(grad[i], ref.grad);
            f32.see(value_f[i], ref.value);
            tv_total += tv_value(i);
        }
        CHECK(close(total, tv_total, 1e-12));
        CHECK(close(total_simd, tv_total, 1e-12));
        MESSAGE(c << " (alpha " << loss.alpha << ", gamma " << gamma << "): worst relative difference float64 vs long double "
                  << vs_long_double.rel << ", vs torchvision " << vs_torchvision.rel << "; float32 " << f32.rel
                  << "; torchvision NaN gradients " << torchvision_nan_grads);
    }
}

// torch's smooth_l1_loss (beta 0 is L1) and torchvision's generalized_box_iou_loss, float64,
// from tests/data/torch_box_losses (make_box_loss_fixtures.py there regenerates them).
TEST_CASE("box losses match torch: smooth L1 / L1 elementwise and GIoU per box, every case") {
    const fixture_set fx(focal_test::data_dir() / "torch_box_losses");
    const auto smooth = fx.cases("smoothl1");
    const auto giou = fx.cases("giou");
    REQUIRE(!smooth.empty());
    REQUIRE(!giou.empty());
    for (const auto& c : smooth) {
        CAPTURE(c);
        const focal::smooth_l1_loss loss{fx.params(c).at("beta").get<float>()};
        const auto pred = fx.array<double>(c, "pred"), target = fx.array<double>(c, "target");
        const auto want = fx.array<double>(c, "loss"), want_grad = fx.array<double>(c, "grad");
        REQUIRE(pred.size() == want.size());
        for (std::size_t i = 0; i < pred.size(); ++i) {
            CAPTURE(i);
            const auto r = loss.value_and_grad(pred.flat(i), target.flat(i));
            CHECK(close(r.value, want.flat(i), 1e-12, 1e-300));
            CHECK(close(r.grad, want_grad.flat(i), 1e-12, 1e-300));
            if (loss.beta == 0.0f) {
                const auto l1 = focal::l1_loss{}.value_and_grad(pred.flat(i), target.flat(i));
                CHECK(l1.value == r.value);
                CHECK(l1.grad == r.grad);
            }
        }
    }
    for (const auto& c : giou) {
        CAPTURE(c);
        const focal::giou_loss loss{fx.params(c).at("eps").get<float>()};
        const auto pred = fx.array<double>(c, "pred"), target = fx.array<double>(c, "target");
        const auto want = fx.array<double>(c, "loss"), want_grad = fx.array<double>(c, "grad");
        REQUIRE(pred.shape(1) == 4);
        for (std::size_t i = 0; i < pred.shape(0); ++i) {
            CAPTURE(i);
            focal::box4<double> b{}, g{};
            for (int k = 0; k < 4; ++k) {
                b[k] = pred(i, k);
                g[k] = target(i, k);
            }
            const auto r = loss.value_and_grad(b, g);
            CHECK(close(r.value, want(i), 1e-12, 1e-15));
            for (int k = 0; k < 4; ++k) {
                CAPTURE(k);
                CHECK(close(r.grad[k], want_grad(i, k), 1e-12, 1e-15));
            }
        }
    }
}
