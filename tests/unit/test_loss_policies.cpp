// The loss policies on their own: gradients against central finite differences in double,
// extreme and non-finite logits, the documented special cases, and parameter validation.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <focal/retinanet.hpp>

#include "support/fixtures.hpp"

using focal_test::close;

namespace {

// Central difference of f at x with step h.
template <class F>
double central_difference(const F& f, double x, double h) {
    return (f(x + h) - f(x - h)) / (2 * h);
}

std::vector<double> sample_logits() {
    std::mt19937 rng(5);
    std::normal_distribution<double> normal(0.0, 4.0);
    std::vector<double> xs = {-20, -7.5, -2, -0.3, 0.2, 1.7, 6, 19};
    for (int i = 0; i < 64; ++i) xs.push_back(normal(rng));
    return xs;
}

const focal::sigmoid_focal_loss focal_variants[] = {
    {0.25f, 2.0f}, {0.25f, 0.0f}, {-1.0f, 0.0f}, {0.5f, 1.0f}, {0.75f, 0.5f}, {0.25f, 5.0f}, {-1.0f, 2.0f}, {0.0f, 1.5f}, {1.0f, 3.0f}};

}  // namespace

TEST_CASE("sigmoid_focal_loss gradient equals central finite differences (double)") {
    for (const auto& loss : focal_variants) {
        CAPTURE(loss.alpha);
        CAPTURE(loss.gamma);
        for (double t : {0.0, 1.0}) {
            for (double x : sample_logits()) {
                CAPTURE(t);
                CAPTURE(x);
                const double fd = central_difference([&](double v) { return loss.value(v, t); }, x, 1e-5);
                const double g = loss.grad(x, t);
                // FD truncation error is O(h^2 f''') and rounding O(eps |f| / h): ~1e-9 relative here.
                CHECK(close(g, fd, 1e-6, 1e-12));
            }
        }
    }
}

TEST_CASE("binary_cross_entropy gradient equals finite differences, soft targets and pos_weight") {
    for (float pos_weight : {1.0f, 3.0f, 0.5f}) {
        const focal::binary_cross_entropy loss{pos_weight};
        for (double t : {0.0, 0.1, 0.5, 0.9, 1.0})
            for (double x : sample_logits()) {
                CAPTURE(pos_weight);
                CAPTURE(t);
                CAPTURE(x);
                const double fd = central_difference([&](double v) { return loss.value(v, t); }, x, 1e-5);
                CHECK(close(loss.grad(x, t), fd, 1e-6, 1e-12));
                // Against the textbook definition in long double, where 1 - p does not cancel badly.
                if (std::abs(x) < 12) {
                    const long double p = 1 / (1 + std::exp(-static_cast<long double>(x)));
                    const long double want = -(pos_weight * t * std::log(p) + (1 - t) * std::log(1 - p));
                    CHECK(close(loss.value(x, t), static_cast<double>(want), 1e-12, 1e-15));
                }
            }
    }
}

TEST_CASE("smooth_l1_loss and l1_loss gradients equal finite differences away from the kinks") {
    for (float beta : {1.0f / 9.0f, 0.5f, 1.0f, 0.0f}) {
        const focal::smooth_l1_loss loss{beta};
        for (double target : {-0.7, 0.0, 1.3})
            for (double pred : {-3.0, -1.0, -0.31, -0.05, 0.04, 0.27, 0.8, 2.5}) {
                CAPTURE(beta);
                CAPTURE(pred);
                const double d = pred - target;
                if (std::abs(std::abs(d) - beta) < 1e-3 || std::abs(d) < 1e-3) continue;  // kinks
                const double fd = central_difference([&](double v) { return loss.value(v, target); }, pred, 1e-6);
                CHECK(close(loss.grad(pred, target), fd, 1e-7, 1e-9));
            }
    }
    const focal::l1_loss l1;
    CHECK(l1.value(2.5, 1.0) == 1.5);
    CHECK(l1.grad(2.5, 1.0) == 1.0);
    CHECK(l1.grad(-2.5, 1.0) == -1.0);
    CHECK(l1.grad(1.0, 1.0) == 0.0);  // torch's subgradient at 0
}

TEST_CASE("smooth_l1_loss: beta 0 is L1 exactly and small beta tends to L1") {
    const focal::smooth_l1_loss zero{0.0f}, tiny{1e-6f};
    const focal::l1_loss l1;
    for (double d : {-4.0, -0.5, -1e-3, 0.0, 2e-4, 0.75, 3.0}) {
        CAPTURE(d);
        CHECK(zero.value(d, 0.0) == l1.value(d, 0.0));
        CHECK(zero.grad(d, 0.0) == l1.grad(d, 0.0));
        CHECK(std::abs(tiny.value(d, 0.0) - l1.value(d, 0.0)) <= 1e-6);
    }
    // Quadratic zone: 0.5 d^2 / beta; linear zone: |d| - beta / 2.
    const focal::smooth_l1_loss one{1.0f};
    CHECK(one.value(0.5, 0.0) == doctest::Approx(0.125));
    CHECK(one.value(3.0, 1.0) == doctest::Approx(1.5));
    CHECK(one.grad(0.5, 0.0) == doctest::Approx(0.5));
}

TEST_CASE("giou_loss gradient equals finite differences on overlapping, disjoint and nested boxes") {
    const focal::giou_loss loss;
    const focal::box4<double> pairs[][2] = {
        {{{10, 12, 50, 60}}, {{20, 5, 70, 40}}},    // overlapping
        {{{0, 0, 10, 10}}, {{30, 40, 55, 90}}},     // disjoint
        {{{5, 5, 100, 90}}, {{20, 30, 40, 50}}},    // target inside prediction
        {{{20, 30, 40, 50}}, {{5, 5, 100, 90}}},    // prediction inside target
        {{{-3.5, 2, 7.25, 11}}, {{1, -6, 4, 30}}},  // a cross
    };
    for (const auto& pair : pairs) {
        const auto r = loss.value_and_grad(pair[0], pair[1]);
        for (int k = 0; k < 4; ++k) {
            CAPTURE(k);
            const double fd = central_difference(
                [&](double v) {
                    auto b = pair[0];
                    b[k] = v;
                    return loss.value(b, pair[1]);
                },
                pair[0][k], 1e-5);
            CHECK(close(r.grad[k], fd, 1e-6, 1e-10));
        }
    }
}

TEST_CASE("giou_loss values: identical 0, two empty boxes 1 (not NaN), far apart tends to 2") {
    const focal::giou_loss loss;
    CHECK(loss.value(focal::box4<double>{{1, 2, 5, 9}}, focal::box4<double>{{1, 2, 5, 9}}) == doctest::Approx(0.0).epsilon(1e-6));
    const double empty = loss.value(focal::box4<double>{{3, 3, 3, 3}}, focal::box4<double>{{3, 3, 3, 3}});
    CHECK(empty == 1.0);
    const auto r = loss.value_and_grad(focal::box4<float>{{0, 0, 0, 0}}, focal::box4<float>{{5, 5, 5, 5}});
    CHECK(std::isfinite(r.value));
    for (int k = 0; k < 4; ++k) CHECK(std::isfinite(r.grad[k]));
    const double far = loss.value(focal::box4<double>{{0, 0, 1, 1}}, focal::box4<double>{{1000, 1000, 1001, 1001}});
    CHECK(far > 1.99);
    CHECK(far <= 2.0);
    // Hand-computed: I = 1, U = 7, C = 9  ->  1 - 1/7 + 2/9.
    CHECK(loss.value(focal::box4<double>{{0, 0, 2, 2}}, focal::box4<double>{{1, 1, 3, 3}}) ==
          doctest::Approx(1.0 - 1.0 / 7.0 + 2.0 / 9.0).epsilon(1e-6));
}

TEST_CASE("focal loss special cases: gamma = 0 is (alpha-balanced) BCE, alpha < 0 is unweighted") {
    const focal::binary_cross_entropy bce;
    for (double x : sample_logits())
        for (double t : {0.0, 1.0}) {
            CAPTURE(x);
            CAPTURE(t);
            // gamma = 0, alpha < 0: exactly BCE, bit for bit.
            const auto f = focal::sigmoid_focal_loss{-1.0f, 0.0f}.value_and_grad(x, t);
            const auto b = bce.value_and_grad(x, t);
            CHECK(f.value == b.value);
            CHECK(f.grad == b.grad);
            // gamma = 0, alpha = 0.25: BCE weighted by alpha_t.
            const double alpha_t = t == 1.0 ? 0.25 : 0.75;
            const auto fa = focal::sigmoid_focal_loss{0.25f, 0.0f}.value_and_grad(x, t);
            CHECK(fa.value == doctest::Approx(alpha_t * b.value).epsilon(1e-15));
            CHECK(fa.grad == doctest::Approx(alpha_t * b.grad).epsilon(1e-15));
            // alpha < 0 equals alpha = 0.5 times 2 (both classes weighted equally).
            for (float gamma : {0.5f, 2.0f, 3.0f}) {
                const auto u = focal::sigmoid_focal_loss{-1.0f, gamma}.value_and_grad(x, t);
                const auto h = focal::sigmoid_focal_loss{0.5f, gamma}.value_and_grad(x, t);
                CHECK(u.value == doctest::Approx(2 * h.value).epsilon(1e-15));
                CHECK(u.grad == doctest::Approx(2 * h.grad).epsilon(1e-15));
            }
        }
}

TEST_CASE("focal loss is finite and correct at |logit| = 100 and 1e4, float and double") {
    // Limits: a confident right answer costs ~0 with gradient ~0; a confident wrong answer costs
    // alpha_t |x| with gradient -+alpha_t (gamma's factor (1 - p_t)^gamma -> 1).
    for (const auto& loss : focal_variants) {
        const double a1 = loss.alpha < 0 ? 1.0 : loss.alpha, a0 = loss.alpha < 0 ? 1.0 : 1.0 - loss.alpha;
        for (double x : {100.0, 1e4}) {
            CAPTURE(loss.alpha);
            CAPTURE(loss.gamma);
            CAPTURE(x);
            auto check = [&](auto xv) {
                using T = decltype(xv);
                const auto right_pos = loss.value_and_grad(T(xv), T(1));
                const auto right_neg = loss.value_and_grad(T(-xv), T(0));
                const auto wrong_pos = loss.value_and_grad(T(-xv), T(1));
                const auto wrong_neg = loss.value_and_grad(T(xv), T(0));
                for (auto r : {right_pos, right_neg, wrong_pos, wrong_neg}) {
                    CHECK(std::isfinite(r.value));
                    CHECK(std::isfinite(r.grad));
                }
                CHECK(right_pos.value >= 0);
                CHECK(right_pos.value < 1e-40);
                CHECK(std::abs(right_pos.grad) < 1e-40);
                CHECK(right_neg.value < 1e-40);
                CHECK(std::abs(right_neg.grad) < 1e-40);
                CHECK(wrong_pos.value == doctest::Approx(a1 * double(xv)).epsilon(1e-6));
                CHECK(wrong_pos.grad == doctest::Approx(-a1).epsilon(1e-6));
                CHECK(wrong_neg.value == doctest::Approx(a0 * double(xv)).epsilon(1e-6));
                CHECK(wrong_neg.grad == doctest::Approx(a0).epsilon(1e-6));
            };
            check(x);
            check(float(x));
        }
    }
}

TEST_CASE("NaN logits give NaN value and gradient; infinite logits give the limits") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    for (const auto& loss : focal_variants)
        for (double t : {0.0, 1.0}) {
            const auto r = loss.value_and_grad(nan, t);
            CHECK(std::isnan(r.value));
            CHECK(std::isnan(r.grad));
            const auto rf = loss.value_and_grad(float(nan), float(t));
            CHECK(std::isnan(rf.value));
            CHECK(std::isnan(rf.grad));
        }
    const auto bce = focal::binary_cross_entropy{}.value_and_grad(nan, 1.0);
    CHECK(std::isnan(bce.value));
    CHECK(std::isnan(bce.grad));
    CHECK(std::isnan(focal::smooth_l1_loss{}.value(nan, 0.0)));
    CHECK(std::isnan(focal::l1_loss{}.grad(nan, 0.0)));

    const focal::sigmoid_focal_loss loss{0.25f, 2.0f};
    const auto right = loss.value_and_grad(inf, 1.0);  // certain and right
    CHECK(right.value == 0.0);
    CHECK(right.grad == 0.0);
    const auto wrong = loss.value_and_grad(inf, 0.0);  // certain and wrong
    CHECK(wrong.value == inf);
    CHECK(wrong.grad == 0.75);
    const auto wrong_pos = loss.value_and_grad(-inf, 1.0);
    CHECK(wrong_pos.value == inf);
    CHECK(wrong_pos.grad == -0.25);
}

TEST_CASE("a term with weight 0 stays 0 at infinite logits: BCE, and the focal loss with alpha 0 or 1") {
    const double inf = std::numeric_limits<double>::infinity();
    const focal::binary_cross_entropy bce;
    CHECK(bce.value(inf, 1.0) == 0.0);   // certain and right
    CHECK(bce.value(-inf, 0.0) == 0.0);
    CHECK(bce.value(inf, 0.0) == inf);   // certain and wrong
    CHECK(bce.value(-inf, 1.0) == inf);
    CHECK(bce.grad(inf, 1.0) == 0.0);
    CHECK(bce.grad(inf, 0.0) == 1.0);
    CHECK(focal::binary_cross_entropy{0.0f}.value(-inf, 1.0) == 0.0);  // pos_weight 0 ignores positives
    // alpha = 1 gives negatives weight 0, alpha = 0 gives positives weight 0.
    CHECK(focal::sigmoid_focal_loss{1.0f, 2.0f}.value(inf, 0.0) == 0.0);
    CHECK(focal::sigmoid_focal_loss{0.0f, 2.0f}.value(-inf, 1.0) == 0.0);
    CHECK(focal::sigmoid_focal_loss{0.0f, 2.0f}.value(-inf, 0.0) == 0.0);
    CHECK(std::isnan(focal::sigmoid_focal_loss{0.0f, 2.0f}.value(std::nan(""), 1.0)));
    CHECK(std::isnan(bce.value(std::nan(""), 0.0)));
}

TEST_CASE("policy parameters are validated with a message naming the parameter") {
    auto message_of = [](auto&& f) {
        try {
            f();
        } catch (const focal::error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const std::string gamma = message_of([] { focal::validate(focal::sigmoid_focal_loss{0.25f, -1.0f}); });
    CHECK(gamma.find("gamma") != std::string::npos);
    CHECK(gamma.find(">= 0") != std::string::npos);
    CHECK(gamma.find("-1") != std::string::npos);
    const std::string alpha = message_of([] { focal::validate(focal::sigmoid_focal_loss{1.5f, 2.0f}); });
    CHECK(alpha.find("alpha") != std::string::npos);
    CHECK(alpha.find("1.5") != std::string::npos);
    CHECK_THROWS_AS(focal::validate(focal::sigmoid_focal_loss{0.25f, std::nanf("")}), focal::error);
    CHECK_THROWS_AS(focal::validate(focal::sigmoid_focal_loss{0.25f, INFINITY}), focal::error);
    CHECK_THROWS_AS(focal::validate(focal::smooth_l1_loss{-0.1f}), focal::error);
    CHECK_THROWS_AS(focal::validate(focal::binary_cross_entropy{-1.0f}), focal::error);
    CHECK_THROWS_AS(focal::validate(focal::giou_loss{0.0f}), focal::error);
    CHECK_NOTHROW(focal::validate(focal::sigmoid_focal_loss{-1.0f, 0.0f}));
    CHECK_NOTHROW(focal::validate(focal::sigmoid_focal_loss{1.0f, 5.0f}));
    // focal::error is a std::invalid_argument.
    CHECK_THROWS_AS(focal::validate(focal::sigmoid_focal_loss{2.0f, 2.0f}), std::invalid_argument);
}

#if FOCAL_HAS_XSIMD
TEST_CASE("SIMD logistic (float batches, one shared division) is within a few ulps of double") {
    using B = xsimd::batch<float>;
    constexpr std::size_t W = B::size;
    std::vector<float> xs;
    for (float x = -110.0f; x <= 110.0f; x += 0.00731f) xs.push_back(x);
    for (float x : {0.0f, -0.0f, 1e-8f, -1e-8f, 0.34657359f, -0.34657359f, 1e4f, -1e4f, 88.0f, -88.0f, 103.9f, -103.9f})
        xs.push_back(x);
    while (xs.size() % W) xs.push_back(1.0f);
    long long worst[4] = {0, 0, 0, 0};
    for (std::size_t i = 0; i < xs.size(); i += W) {
        const auto parts = focal::logistic(B::load_unaligned(xs.data() + i));
        float got[4][W];
        parts.p.store_unaligned(got[0]);
        parts.one_minus_p.store_unaligned(got[1]);
        parts.neg_log_p.store_unaligned(got[2]);
        parts.neg_log_1mp.store_unaligned(got[3]);
        for (std::size_t j = 0; j < W; ++j) {
            const auto want = focal::logistic(static_cast<double>(xs[i + j]));
            const double w[4] = {want.p, want.one_minus_p, want.neg_log_p, want.neg_log_1mp};
            for (int q = 0; q < 4; ++q) {
                CAPTURE(xs[i + j]);
                CAPTURE(q);
                const float wf = static_cast<float>(w[q]);
                // Below float's normal range (1.2e-38) only the absolute error counts.
                if (std::abs(w[q]) < 1e-37) {
                    CHECK(std::abs(double(got[q][j]) - w[q]) < 1.2e-38);  // xsimd flushes exp to 0 there
                    continue;
                }
                const long long d = focal_test::ulp_distance(got[q][j], wf);
                worst[q] = std::max(worst[q], d);
                CHECK(d <= 4);
            }
        }
    }
    MESSAGE("worst ulps: sigmoid " << worst[0] << ", 1 - sigmoid " << worst[1] << ", softplus(-x) " << worst[2]
                                   << ", softplus(x) " << worst[3]);
    const auto nan = focal::logistic(B(std::nanf("")));
    CHECK(xsimd::all(xsimd::isnan(nan.neg_log_p)));
    CHECK(xsimd::all(xsimd::isnan(nan.p)));
}
#endif
