// The box-regression driver: positives only, reductions (none with out.values included), per-box
// values, gradients against finite differences, execution policies over several row blocks,
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
            labels[i] = i % 4 == 0 ? focal::background_label : (i % 9 == 0 ? focal::ignored_label : static_cast<std::int32_t>(i % 5));
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
    const double v = focal::box_regression_loss(loss, b.p(), b.t(), b.y(), r, {.grad = focal::make_view(grad.data(), b.n, 4)});
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
                                                {.grad = focal::make_view(g_signed.data(), b.n, 4)});
    const double u = focal::box_regression_loss(focal::smooth_l1_loss{}, b.p(), b.t(), focal::make_view(unsigned_labels.data(), b.n),
                                                focal::reduction::mean(), {.grad = focal::make_view(g_unsigned.data(), b.n, 4)});
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
              .find("out.values must be given for reduction::none") != std::string::npos);
    std::vector<double> short_values(11);
    CHECK(message([&] {
              focal::box_regression_loss(focal::l1_loss{}, b.p(), b.t(), b.y(), focal::reduction::none(),
                                         {.values = focal::make_view(short_values.data(), 11)});
          }).find("out.values (one per predictions row) must be of extent 12 in dimension 0, got [11]") != std::string::npos);
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

namespace {

// Per-box values and the reductions, for one loss.
template <class Loss>
void check_values(const Loss& loss) {
    const box_problem b(40);
    const index_t pos = b.positives();
    REQUIRE(pos > 0);
    std::vector<double> values(static_cast<std::size_t>(b.n), 9.0), grad(b.pred.size(), 9.0);
    const double v = focal::box_regression_loss(loss, b.p(), b.t(), b.y(), focal::reduction::divide_by(static_cast<double>(pos)),
                                                {.grad = focal::make_view(grad.data(), b.n, 4), .values = focal::make_view(values.data(), b.n)});
    double sum = 0;  // in row order, as the driver adds one block
    for (index_t i = 0; i < b.n; ++i) {
        CAPTURE(i);
        if (b.labels[i] < 0) {
            CHECK(values[i] == 0.0);  // not positive: 0
            continue;
        }
        focal::box4<double> p{}, t{};
        for (int c = 0; c < 4; ++c) {
            p[c] = b.pred[i * 4 + c];
            t[c] = b.target[i * 4 + c];
        }
        CHECK(values[i] == loss.value_and_grad(p, t).value);  // unscaled
        sum += values[i];
    }
    CHECK(v == sum * (1.0 / static_cast<double>(pos)));
    // The values do not depend on the reduction; none returns the sum, its gradient unscaled.
    std::vector<double> none_values(values.size(), 9.0), none_grad(grad.size(), 9.0);
    const double v_none = focal::box_regression_loss(loss, b.p(), b.t(), b.y(), focal::reduction::none(),
                                                     {.grad = focal::make_view(none_grad.data(), b.n, 4),
                                                      .values = focal::make_view(none_values.data(), b.n)});
    CHECK(v_none == sum);
    CHECK(none_values == values);
    for (std::size_t e = 0; e < grad.size(); ++e) CHECK(grad[e] == none_grad[e] * (1.0 / static_cast<double>(pos)));
    std::vector<double> sum_values(values.size(), 9.0), mean_values(values.size(), 9.0);
    CHECK(focal::box_regression_loss(loss, b.p(), b.t(), b.y(), focal::reduction::sum(), {.values = focal::make_view(sum_values.data(), b.n)}) == sum);
    CHECK(focal::box_regression_loss(loss, b.p(), b.t(), b.y(), focal::reduction::mean(),
                                     {.values = focal::make_view(mean_values.data(), b.n)}) == sum * (1.0 / static_cast<double>(pos)));
    CHECK(sum_values == values);
    CHECK(mean_values == values);
    // none with values only (no gradient) is enough
    std::vector<double> only(values.size(), 9.0);
    CHECK(focal::box_regression_loss(loss, b.p(), b.t(), b.y(), focal::reduction::none(), {.values = focal::make_view(only.data(), b.n)}) == sum);
    CHECK(only == values);
}

template <class T>
struct policy_result {
    double value;
    std::vector<T> grad, values;
};

template <class T, class Loss, class Exec>
policy_result<T> run_policy(const Loss& loss, const std::vector<T>& pred, const std::vector<T>& target,
                            const std::vector<std::int32_t>& labels, focal::reduction r, const Exec& exec) {
    const auto n = static_cast<index_t>(labels.size());
    policy_result<T> out{0.0, std::vector<T>(pred.size(), T(9)), std::vector<T>(labels.size(), T(9))};
    out.value = focal::box_regression_loss(loss, focal::make_view(pred.data(), n, 4), focal::make_view(target.data(), n, 4),
                                           focal::make_view(labels.data(), n), r,
                                           {.grad = focal::make_view(out.grad.data(), n, 4), .values = focal::make_view(out.values.data(), n)},
                                           exec);
    return out;
}

template <class T, class Loss>
void check_policies(const Loss& loss, const box_problem& b, focal::reduction r) {
    const std::vector<T> pred(b.pred.begin(), b.pred.end()), target(b.target.begin(), b.target.end());
    const policy_result<T> ref = run_policy(loss, pred, target, b.labels, r, focal::exec::scalar);
    // The plain definition: per-box values summed in double, scaled once.
    double naive = 0;
    for (index_t i = 0; i < b.n; ++i) naive += static_cast<double>(ref.values[i]);
    CHECK(close(ref.value, naive * r.scale(static_cast<double>(b.positives())), 1e-12));
    auto same = [&](const policy_result<T>& got) {
        CHECK(got.value == ref.value);  // bit for bit (no NaN here)
        CHECK(got.grad == ref.grad);
        CHECK(got.values == ref.values);
    };
    same(run_policy(loss, pred, target, b.labels, r, focal::exec::simd));
    same(run_policy(loss, pred, target, b.labels, r, focal::exec::parallel));
    for (std::size_t threads : {1u, 2u, 3u, 4u, 7u}) {
        CAPTURE(threads);
        same(run_policy(loss, pred, target, b.labels, r, focal::exec::parallel_policy{.threads = threads, .min_elements = 1}));
    }
}

}  // namespace

TEST_CASE("box_regression_loss: out.values gets the unscaled per-box losses (0 elsewhere); reduction::none returns their sum") {
    SUBCASE("l1") { check_values(focal::l1_loss{}); }
    SUBCASE("smooth l1") { check_values(focal::smooth_l1_loss{}); }
    SUBCASE("giou") { check_values(focal::giou_loss{}); }
}

TEST_CASE("box_regression_loss: scalar, SIMD and threaded give the same value and gradient bits over several 4096-row blocks") {
    const box_problem b(3 * 4096 + 1234, 11);  // four blocks, the last one partial
    REQUIRE(b.positives() > 4096);
    for (const focal::reduction r : {focal::reduction::sum(), focal::reduction::mean(), focal::reduction::divide_by(517.0), focal::reduction::none()}) {
        CAPTURE(static_cast<int>(r.how));
        check_policies<double>(focal::smooth_l1_loss{}, b, r);
        check_policies<float>(focal::smooth_l1_loss{}, b, r);
        check_policies<double>(focal::giou_loss{}, b, r);
        check_policies<float>(focal::l1_loss{}, b, r);
    }
    // Exactly one block, and one row over it.
    check_policies<float>(focal::giou_loss{}, box_problem(4096, 5), focal::reduction::mean());
    check_policies<float>(focal::giou_loss{}, box_problem(4097, 5), focal::reduction::mean());
}
