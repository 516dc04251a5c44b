// The box-regression driver: positives only, reductions, gradients against finite differences,
// target validation for GIoU, bad input.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <focal/retinanet.hpp>

#include "support/fixtures.hpp"

using focal::index_t;
using focal_test::close;

namespace {

struct box_problem {
    index_t n;
    std::vector<double> pred, target;
    std::vector<std::int32_t> labels;
    explicit box_problem(index_t rows, unsigned seed = 3) : n(rows), pred(rows * 4), target(rows * 4), labels(rows) {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<double> xy(0, 100), wh(5, 60), jitter(-8, 8);
        for (index_t i = 0; i < rows; ++i) {
            const double x = xy(rng), y = xy(rng), w = wh(rng), h = wh(rng);
            const double t[4] = {x, y, x + w, y + h};
            for (int c = 0; c < 4; ++c) {
                target[i * 4 + c] = t[c];
                pred[i * 4 + c] = t[c] + jitter(rng);
            }
            if (pred[i * 4 + 2] <= pred[i * 4]) pred[i * 4 + 2] = pred[i * 4] + 1;
            if (pred[i * 4 + 3] <= pred[i * 4 + 1]) pred[i * 4 + 3] = pred[i * 4 + 1] + 1;
            labels[i] = i % 4 == 0 ? -1 : (i % 9 == 0 ? -2 : static_cast<std::int32_t>(i % 5));
        }
    }
    focal::matrix_view<const double> p() const { return focal::make_view(pred.data(), n, 4); }
    focal::matrix_view<const double> t() const { return focal::make_view(target.data(), n, 4); }
    focal::vector_view<const std::int32_t> y() const { return focal::make_view(labels.data(), n); }
    index_t positives() const {
        index_t c = 0;
        for (auto l : labels) c += l >= 0;
        return c;
    }
};

template <class Loss>
void check_driver(const Loss& loss) {
    const box_problem b(40);
    const index_t pos = b.positives();
    REQUIRE(pos > 0);
    REQUIRE(pos < b.n);
    double want = 0;
    for (index_t i = 0; i < b.n; ++i) {
        if (b.labels[i] < 0) continue;
        focal::box4<double> p{}, t{};
        for (int c = 0; c < 4; ++c) {
            p[c] = b.pred[i * 4 + c];
            t[c] = b.target[i * 4 + c];
        }
        want += loss.value(p, t);
    }
    std::vector<double> grad(b.pred.size(), 9.0);
    const auto r = focal::reduction::divide_by(static_cast<double>(pos));
    const double v = focal::box_regression_loss(loss, b.p(), b.t(), b.y(), r, focal::make_view(grad.data(), b.n, 4));
    CHECK(close(v, want / pos, 1e-14));
    CHECK(close(focal::box_regression_loss(loss, b.p(), b.t(), b.y(), focal::reduction::mean()), want / pos, 1e-14));
    CHECK(close(focal::box_regression_loss(loss, b.p(), b.t(), b.y()), want, 1e-14));
    for (index_t i = 0; i < b.n; ++i) {
        if (b.labels[i] >= 0) continue;
        for (int c = 0; c < 4; ++c) CHECK(grad[i * 4 + c] == 0.0);
    }
    // Gradient of the reduced value against central differences (kinks avoided by the jitter scale).
    auto moved = b;
    for (index_t e = 0; e < b.n * 4; e += 5) {
        const double h = 1e-6, x0 = b.pred[e];
        moved.pred[e] = x0 + h;
        const double up = focal::box_regression_loss(loss, moved.p(), moved.t(), moved.y(), r);
        moved.pred[e] = x0 - h;
        const double down = focal::box_regression_loss(loss, moved.p(), moved.t(), moved.y(), r);
        moved.pred[e] = x0;
        CAPTURE(e);
        CHECK(close(grad[e], (up - down) / (2 * h), 1e-5, 10 * DBL_EPSILON * std::abs(up) / h));
    }
}

}  // namespace

TEST_CASE("box_regression_loss over positives: value, reductions, zero gradient elsewhere, finite differences") {
    SUBCASE("l1") { check_driver(focal::l1_loss{}); }
    SUBCASE("smooth l1, beta 1/9") { check_driver(focal::smooth_l1_loss{1.0f / 9.0f}); }
    SUBCASE("smooth l1, beta 4") { check_driver(focal::smooth_l1_loss{4.0f}); }
    SUBCASE("giou") { check_driver(focal::giou_loss{}); }
}

TEST_CASE("unsigned labels: -1 read as background in both the count and the sum") {
    const box_problem b(24);
    std::vector<std::size_t> unsigned_labels(b.labels.begin(), b.labels.end());  // -1 -> SIZE_MAX, -2 -> SIZE_MAX - 1
    std::vector<double> g_signed(b.pred.size()), g_unsigned(b.pred.size());
    const double s = focal::box_regression_loss(focal::smooth_l1_loss{}, b.p(), b.t(), b.y(), focal::reduction::mean(),
                                                focal::make_view(g_signed.data(), b.n, 4));
    const double u = focal::box_regression_loss(focal::smooth_l1_loss{}, b.p(), b.t(), focal::make_view(unsigned_labels.data(), b.n),
                                                focal::reduction::mean(), focal::make_view(g_unsigned.data(), b.n, 4));
    CHECK(u == s);
    CHECK(g_unsigned == g_signed);
}

TEST_CASE("box_regression_loss: no positives gives 0; float works; bad input is reported") {
    box_problem b(12);
    std::vector<std::int32_t> negatives(12, -1);
    CHECK(focal::box_regression_loss(focal::l1_loss{}, b.p(), b.t(), focal::make_view(negatives.data(), 12), focal::reduction::mean()) == 0.0);

    std::vector<float> pf(b.pred.begin(), b.pred.end()), tf(b.target.begin(), b.target.end());
    const double vf = focal::box_regression_loss(focal::giou_loss{}, focal::make_view(pf.data(), 12, 4), focal::make_view(tf.data(), 12, 4), b.y());
    CHECK(close(vf, focal::box_regression_loss(focal::giou_loss{}, b.p(), b.t(), b.y()), 1e-5));

    auto message = [](auto&& f) -> std::string {
        try {
            f();
        } catch (const focal::error& e) {
            return e.what();
        }
        return "no error";
    };
    std::vector<double> three(12 * 3);
    CHECK(message([&] { focal::box_regression_loss(focal::l1_loss{}, focal::make_view(three.data(), 12, 3), b.t(), b.y()); })
              .find("predictions") != std::string::npos);
    CHECK(message([&] { focal::box_regression_loss(focal::l1_loss{}, b.p(), b.t(), focal::make_view(b.labels.data(), 11)); })
              .find("labels") != std::string::npos);
    CHECK(message([&] { focal::box_regression_loss(focal::l1_loss{}, b.p(), b.t(), b.y(), focal::reduction::none()); })
              .find("reduction") != std::string::npos);
    b.labels[5] = -3;
    CHECK(message([&] { focal::box_regression_loss(focal::l1_loss{}, b.p(), b.t(), b.y()); }).find("got -3 at anchor 5") != std::string::npos);
    b.labels[5] = 2;
    std::swap(b.target[5 * 4 + 0], b.target[5 * 4 + 2]);  // inverted target box
    const std::string inverted = message([&] { focal::box_regression_loss(focal::giou_loss{}, b.p(), b.t(), b.y()); });
    CHECK(inverted.find("x2 >= x1") != std::string::npos);
    CHECK(inverted.find("anchor 5") != std::string::npos);
    // L1 on deltas does not treat targets as boxes: the same numbers are fine there.
    CHECK_NOTHROW(focal::box_regression_loss(focal::l1_loss{}, b.p(), b.t(), b.y()));
    std::swap(b.target[5 * 4 + 0], b.target[5 * 4 + 2]);
    // An inverted prediction would make GIoU negative: rejected too. NaN predictions pass (NaN out).
    std::swap(b.pred[5 * 4 + 1], b.pred[5 * 4 + 3]);
    CHECK(message([&] { focal::box_regression_loss(focal::giou_loss{}, b.p(), b.t(), b.y()); }).find("predictions") != std::string::npos);
    std::swap(b.pred[5 * 4 + 1], b.pred[5 * 4 + 3]);
    b.pred[5 * 4 + 2] = std::nan("");
    CHECK(std::isnan(focal::box_regression_loss(focal::giou_loss{}, b.p(), b.t(), b.y())));
}
