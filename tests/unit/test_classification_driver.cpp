// The classification driver: labels and dense targets, reductions, ignored anchors, scalar /
// SIMD / threaded agreement, any layout, the gradient of the reduced value, and bad input.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>
#include <focal/retinanet.hpp>

#include "support/fixtures.hpp"

using focal::index_t;
using focal_test::close;

namespace {

template <class T>
struct problem {
    index_t n, k;
    std::vector<T> logits;
    std::vector<std::int32_t> labels;
    std::vector<T> onehot;  // dense targets equal to the labels (ignored rows: all 0)

    problem(index_t rows, index_t cols, unsigned seed, double ignored_fraction = 0.05) : n(rows), k(cols) {
        std::mt19937 rng(seed);
        std::normal_distribution<double> normal(-3.0, 2.5);
        std::uniform_real_distribution<double> u(0, 1);
        std::uniform_int_distribution<int> cls(0, static_cast<int>(cols) - 1);
        logits.resize(static_cast<std::size_t>(rows * cols));
        for (auto& x : logits) x = static_cast<T>(normal(rng));
        labels.resize(static_cast<std::size_t>(rows));
        onehot.assign(logits.size(), T(0));
        for (index_t i = 0; i < rows; ++i) {
            const double r = u(rng);
            labels[i] = r < ignored_fraction ? focal::ignored_label : (r < 0.3 ? cls(rng) : focal::background_label);
            if (labels[i] >= 0) onehot[static_cast<std::size_t>(i * cols + labels[i])] = T(1);
        }
    }
    focal::matrix_view<const T> x() const { return focal::make_view(logits.data(), n, k); }
    focal::vector_view<const std::int32_t> y() const { return focal::make_view(labels.data(), n); }
    focal::matrix_view<const T> t() const { return focal::make_view(onehot.data(), n, k); }
};

template <class F>
std::string error_message(F&& f) {
    try {
        f();
    } catch (const focal::error& e) {
        return e.what();
    }
    return "no error";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const focal::sigmoid_focal_loss focal_loss{0.25f, 2.0f};

// Wrong kinds of arguments are rejected by the drivers' constraints (clean errors, no deep
// template instantiation): a non-policy execution argument, a box loss as a classification loss.
template <class Exec, class Loss = focal::sigmoid_focal_loss>
concept classification_call_compiles = requires(focal::matrix_view<const float> x, focal::vector_view<const int> y, Exec e) {
    focal::classification_loss(Loss{}, x, y, focal::reduction::sum(), {}, e);
};
static_assert(classification_call_compiles<focal::exec::simd_policy>);
static_assert(classification_call_compiles<focal::exec::parallel_policy>);
static_assert(!classification_call_compiles<int>);
static_assert(!classification_call_compiles<focal::exec::simd_policy, focal::giou_loss>);
template <class Loss>
concept box_call_compiles = requires(focal::matrix_view<const float> b, focal::vector_view<const int> y) {
    focal::box_regression_loss(Loss{}, b, b, y);
};
static_assert(box_call_compiles<focal::giou_loss>);
static_assert(box_call_compiles<focal::smooth_l1_loss>);
static_assert(!box_call_compiles<focal::sigmoid_focal_loss>);
template <class Exec>
concept box_exec_compiles = requires(focal::matrix_view<const float> b, focal::vector_view<const int> y, Exec e) {
    focal::box_regression_loss(focal::smooth_l1_loss{}, b, b, y, focal::reduction::sum(), {}, e);
};
static_assert(box_exec_compiles<focal::exec::scalar_policy>);
static_assert(box_exec_compiles<focal::exec::simd_policy>);
static_assert(box_exec_compiles<focal::exec::parallel_policy>);
static_assert(!box_exec_compiles<int>);

}  // namespace

TEST_CASE("label codes: background_label, ignored_label, is_ignored_label, is_positive_label, one_hot_target") {
    static_assert(focal::background_label == -1);
    static_assert(focal::ignored_label == -2);
    static_assert(std::is_same_v<decltype(focal::background_label), const int>);
    // Ignored: -2, and (for the device, which cannot throw) anything below it.
    static_assert(focal::detail::is_ignored_label(focal::ignored_label));
    static_assert(focal::detail::is_ignored_label(-3));
    static_assert(focal::detail::is_ignored_label(std::numeric_limits<std::int64_t>::min()));
    static_assert(!focal::detail::is_ignored_label(focal::background_label));
    static_assert(!focal::detail::is_ignored_label(0));
    static_assert(!focal::detail::is_ignored_label(7));
    // Positive: every class index, never background or ignored.
    static_assert(focal::detail::is_positive_label(0));
    static_assert(focal::detail::is_positive_label(std::numeric_limits<std::int64_t>::max()));
    static_assert(!focal::detail::is_positive_label(focal::background_label));
    static_assert(!focal::detail::is_positive_label(focal::ignored_label));
    // An unsigned type's -1 / -2, read as signed 64-bit, are background / ignored.
    CHECK(static_cast<std::int64_t>(std::numeric_limits<std::uint64_t>::max()) == focal::background_label);
    CHECK(focal::detail::is_ignored_label(static_cast<std::int64_t>(std::numeric_limits<std::uint64_t>::max() - 1)));

    // one_hot_target<T>(column, label): 1 where they are equal. Background matches no column.
    for (std::int64_t column = 0; column < 4; ++column) {
        CAPTURE(column);
        CHECK(focal::detail::one_hot_target<float, std::int64_t>(column, 2) == (column == 2 ? 1.0f : 0.0f));
        CHECK(focal::detail::one_hot_target<double, std::int64_t>(column, focal::background_label) == 0.0);
        // float comparison type (the device's float column index)
        CHECK(focal::detail::one_hot_target<double, float>(static_cast<float>(column), 1.0f) == (column == 1 ? 1.0 : 0.0));
    }
    // One packet for both (the host's SIMD loop): lane l is column first + l.
    using P = focal::host_packet_t<float, true>;
    using tr = focal::packet_traits<P>;
    for (const float first : {0.0f, 16.0f}) {
        const P column = tr::lane_index() + P(first);
        for (const float label : {0.0f, 3.0f, 17.0f, float(focal::background_label)}) {
            CAPTURE(first);
            CAPTURE(label);
            std::vector<float> lanes(static_cast<std::size_t>(tr::width));
            tr::store(lanes.data(), focal::detail::one_hot_target<P>(column, P(label)));
            for (int l = 0; l < tr::width; ++l) CHECK(lanes[static_cast<std::size_t>(l)] == (first + float(l) == label ? 1.0f : 0.0f));
        }
    }
}

TEST_CASE("labels equal one-hot dense targets; ignored anchors contribute nothing and get gradient 0") {
    const problem<double> p(300, 13, 1);
    std::vector<double> g_labels(p.logits.size(), 99.0), g_dense(p.logits.size()), v(p.logits.size());
    const double with_labels = focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(),
                                                          {.grad = focal::make_view(g_labels.data(), p.n, p.k)});
    focal::classification_loss(focal_loss, p.x(), p.t(), focal::reduction::none(),
                               {.grad = focal::make_view(g_dense.data(), p.n, p.k), .values = focal::make_view(v.data(), p.n, p.k)});
    double want = 0;
    for (index_t i = 0; i < p.n; ++i)
        for (index_t c = 0; c < p.k; ++c) {
            const auto e = static_cast<std::size_t>(i * p.k + c);
            if (p.labels[i] == -2) {
                CHECK(g_labels[e] == 0.0);
                continue;
            }
            want += v[e];
            CHECK(g_labels[e] == g_dense[e]);
        }
    CHECK(close(with_labels, want, 1e-13));

    // Changing the logits of ignored anchors, even to NaN, changes nothing.
    auto changed = p;
    for (index_t i = 0; i < p.n; ++i)
        if (p.labels[i] == -2)
            for (index_t c = 0; c < p.k; ++c) changed.logits[i * p.k + c] = c % 2 ? std::nan("") : 1e4;
    CHECK(focal::classification_loss(focal_loss, changed.x(), changed.y()) == with_labels);
}

TEST_CASE("reductions: sum, mean over contributing elements, divide_by, none; the gradient follows") {
    const problem<double> p(257, 9, 2);
    index_t ignored = 0;
    for (auto l : p.labels) ignored += l == -2;
    REQUIRE(ignored > 0);
    const double count = static_cast<double>((p.n - ignored) * p.k);
    std::vector<double> g_sum(p.logits.size()), g_mean(p.logits.size()), g_norm(p.logits.size()), values(p.logits.size());
    const double sum = focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(),
                                                  {.grad = focal::make_view(g_sum.data(), p.n, p.k)});
    const double mean = focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::mean(),
                                                   {.grad = focal::make_view(g_mean.data(), p.n, p.k)});
    const double norm = focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::divide_by(37.0),
                                                   {.grad = focal::make_view(g_norm.data(), p.n, p.k)});
    const double none = focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::none(),
                                                   {.values = focal::make_view(values.data(), p.n, p.k)});
    CHECK(close(mean, sum / count, 1e-14));
    CHECK(close(norm, sum / 37.0, 1e-14));
    CHECK(none == sum);
    double values_sum = 0;
    for (double v : values) values_sum += v;
    CHECK(close(values_sum, sum, 1e-13));
    for (std::size_t e = 0; e < g_sum.size(); ++e) {
        CHECK(close(g_mean[e], g_sum[e] / count, 1e-14, 1e-300));
        CHECK(close(g_norm[e], g_sum[e] / 37.0, 1e-14, 1e-300));
    }
    // Nothing contributes: the mean is 0, not NaN.
    std::vector<std::int32_t> all_ignored(static_cast<std::size_t>(p.n), -2);
    CHECK(focal::classification_loss(focal_loss, p.x(), focal::make_view(all_ignored.data(), p.n), focal::reduction::mean()) == 0.0);
}

TEST_CASE("the driver's gradient equals finite differences of its reduced value (double)") {
    const problem<double> p(23, 7, 3, 0.2);
    for (auto r : {focal::reduction::sum(), focal::reduction::mean(), focal::reduction::divide_by(4.0)}) {
        std::vector<double> grad(p.logits.size());
        focal::classification_loss(focal_loss, p.x(), p.y(), r, {.grad = focal::make_view(grad.data(), p.n, p.k)});
        auto moved = p;
        for (std::size_t e = 0; e < p.logits.size(); e += 3) {
            const double h = 1e-5, x0 = p.logits[e];
            moved.logits[e] = x0 + h;
            const double up = focal::classification_loss(focal_loss, moved.x(), moved.y(), r);
            moved.logits[e] = x0 - h;
            const double down = focal::classification_loss(focal_loss, moved.x(), moved.y(), r);
            moved.logits[e] = x0;
            CAPTURE(e);
            CAPTURE(grad[e]);
            CAPTURE((up - down) / (2 * h));
            // central differences: truncation ~h^2 relative, rounding ~eps |value| / h absolute
            CHECK(close(grad[e], (up - down) / (2 * h), 1e-6, 10 * DBL_EPSILON * std::abs(up) / h));
        }
    }
}

TEST_CASE("scalar, SIMD and threaded drivers agree; SIMD and threaded are bit-identical for any thread count") {
    const problem<float> p(20011, 80, 4);  // 1.6M elements: several blocks, a ragged last block
    std::vector<float> g_scalar(p.logits.size()), g_simd(p.logits.size()), g_par(p.logits.size());
    const auto r = focal::reduction::divide_by(123.0);
    const double scalar = focal::classification_loss(focal_loss, p.x(), p.y(), r,
                                                     {.grad = focal::make_view(g_scalar.data(), p.n, p.k)}, focal::exec::scalar);
    const double simd = focal::classification_loss(focal_loss, p.x(), p.y(), r,
                                                   {.grad = focal::make_view(g_simd.data(), p.n, p.k)}, focal::exec::simd);
    // Sums accumulate per tile in float, then in double: scalar and SIMD differ by float rounding only.
    CHECK(focal_test::ulp_distance(static_cast<float>(scalar), static_cast<float>(simd)) <= 4);
    MESSAGE("scalar " << scalar << " simd " << simd << " ulps "
                      << focal_test::ulp_distance(static_cast<float>(scalar), static_cast<float>(simd)));
    double worst = 0;
    for (std::size_t e = 0; e < g_scalar.size(); ++e) {
        const double d = std::abs(double(g_scalar[e]) - double(g_simd[e]));
        worst = std::max(worst, d / std::max(1e-30, std::abs(double(g_scalar[e]))));
    }
    CHECK(worst < 1e-5);  // xsimd's exp/log1p and libm's differ by a few ulps
    for (std::size_t threads : {1u, 2u, 3u, 4u, 7u}) {
        CAPTURE(threads);
        focal::exec::parallel_policy par{.threads = threads, .min_elements = 0};
        const double par_value = focal::classification_loss(focal_loss, p.x(), p.y(), r,
                                                            {.grad = focal::make_view(g_par.data(), p.n, p.k)}, par);
        CHECK(par_value == simd);
        CHECK(g_par == g_simd);
    }
}

TEST_CASE("any layout: column-major, strided sub-matrices and mixed output layouts give the raw result") {
    const problem<float> p(211, 17, 5);
    std::vector<float> g_ref(p.logits.size()), v_ref(p.logits.size());
    const double ref = focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(),
                                                  {.grad = focal::make_view(g_ref.data(), p.n, p.k),
                                                   .values = focal::make_view(v_ref.data(), p.n, p.k)});
    // Column-major copies of logits and one-hot targets; outputs column-major too.
    std::vector<float> xc(p.logits.size()), tc(p.logits.size()), gc(p.logits.size()), vc(p.logits.size());
    for (index_t i = 0; i < p.n; ++i)
        for (index_t c = 0; c < p.k; ++c) {
            xc[c * p.n + i] = p.logits[i * p.k + c];
            tc[c * p.n + i] = p.onehot[i * p.k + c];
        }
    auto col_major = [&](std::vector<float>& v) { return focal::matrix_view<float>(v.data(), {p.n, p.k}, {1, p.n}); };
    const double col = focal::classification_loss(focal_loss, col_major(xc), p.y(), focal::reduction::sum(),
                                                  {.grad = col_major(gc), .values = col_major(vc)});
    CHECK(close(col, ref, 1e-12));
    for (index_t i = 0; i < p.n; ++i)
        for (index_t c = 0; c < p.k; ++c) {
            CHECK(gc[c * p.n + i] == g_ref[i * p.k + c]);
            CHECK(vc[c * p.n + i] == v_ref[i * p.k + c]);
        }
    // Dense targets, everything column-major (processed as the transpose).
    std::fill(gc.begin(), gc.end(), 0.0f);
    auto dense_problem = p;
    for (index_t i = 0; i < p.n; ++i)  // dense targets cannot ignore: compare on a label set without -2
        if (dense_problem.labels[i] == -2) dense_problem.labels[i] = -1;
    const double dense_ref = focal::classification_loss(focal_loss, p.x(), dense_problem.y());
    const double dense_col = focal::classification_loss(focal_loss, col_major(xc), col_major(tc), focal::reduction::sum(),
                                                        {.grad = col_major(gc)});
    CHECK(close(dense_col, dense_ref, 1e-6));  // transposed: float tiles sum in another order
    for (index_t i = 0; i < p.n; ++i)
        for (index_t c = 0; c < p.k; ++c)
            if (p.labels[i] != -2) CHECK(gc[c * p.n + i] == g_ref[i * p.k + c]);
    // A strided window: rows 10..10+n of a wider, padded buffer (outer stride 25 > 17).
    const index_t ld = 25;
    std::vector<float> padded(static_cast<std::size_t>((p.n + 20) * ld), std::nanf("")), gp(padded.size(), -7.0f);
    for (index_t i = 0; i < p.n; ++i)
        for (index_t c = 0; c < p.k; ++c) padded[(i + 10) * ld + 3 + c] = p.logits[i * p.k + c];
    const focal::matrix_view<float> window(padded.data() + 10 * ld + 3, {p.n, p.k}, {ld, 1});
    const focal::matrix_view<float> gwindow(gp.data() + 10 * ld + 3, {p.n, p.k}, {ld, 1});
    CHECK(focal::classification_loss(focal_loss, window, p.y(), focal::reduction::sum(), {.grad = gwindow}) == ref);
    for (index_t i = 0; i < p.n; ++i)
        for (index_t c = 0; c < p.k; ++c) CHECK(gp[(i + 10) * ld + 3 + c] == g_ref[i * p.k + c]);
    CHECK(gp[0] == -7.0f);  // outside the window untouched
    // Fully strided (every other element in both directions) goes through the row buffer.
    std::vector<float> sparse(static_cast<std::size_t>(p.n * p.k * 4));
    for (index_t i = 0; i < p.n; ++i)
        for (index_t c = 0; c < p.k; ++c) sparse[i * 2 * (2 * p.k) + 2 * c] = p.logits[i * p.k + c];
    const focal::matrix_view<float> strided(sparse.data(), {p.n, p.k}, {4 * p.k, 2});
    CHECK(focal::classification_loss(focal_loss, strided, p.y()) == ref);
}

TEST_CASE("the gradient may overwrite the logits in place") {
    problem<float> p(100, 20, 6);
    std::vector<float> g(p.logits.size());
    const double ref = focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(),
                                                  {.grad = focal::make_view(g.data(), p.n, p.k)});
    const auto in_place = focal::make_view(p.logits.data(), p.n, p.k);
    CHECK(focal::classification_loss(focal_loss, in_place, p.y(), focal::reduction::sum(), {.grad = in_place}) == ref);
    CHECK(p.logits == g);
}

TEST_CASE("NaN logits make the sum NaN without crashing; empty inputs give 0") {
    problem<float> p(64, 10, 7, 0.0);
    p.logits[5 * 10 + 3] = std::nanf("");
    std::vector<float> g(p.logits.size());
    const double v = focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(),
                                                {.grad = focal::make_view(g.data(), p.n, p.k)});
    CHECK(std::isnan(v));
    CHECK(std::isnan(g[5 * 10 + 3]));
    CHECK(std::isfinite(g[5 * 10 + 4]));
    std::vector<float> none;
    std::vector<std::int32_t> no_labels;
    CHECK(focal::classification_loss(focal_loss, focal::make_view(none.data(), 0, 80), focal::make_view(no_labels.data(), 0)) == 0.0);
    std::vector<std::int32_t> labels(5, -1);
    CHECK(focal::classification_loss(focal_loss, focal::make_view(none.data(), 5, 0), focal::make_view(labels.data(), 5)) == 0.0);
}

TEST_CASE("int64 labels, float and double, BCE with soft dense targets") {
    const problem<double> p(50, 6, 8);
    std::vector<std::int64_t> wide(p.labels.begin(), p.labels.end());
    CHECK(focal::classification_loss(focal_loss, p.x(), focal::make_view(wide.data(), p.n)) ==
          focal::classification_loss(focal_loss, p.x(), p.y()));
    std::vector<double> soft(p.logits.size());
    for (std::size_t e = 0; e < soft.size(); ++e) soft[e] = (e % 10) / 9.0;
    const focal::binary_cross_entropy bce;
    double want = 0;
    for (std::size_t e = 0; e < soft.size(); ++e) want += bce.value(p.logits[e], soft[e]);
    CHECK(close(focal::classification_loss(bce, p.x(), focal::make_view(soft.data(), p.n, p.k)), want, 1e-13));
}

TEST_CASE("bad input throws focal::error naming the argument, the expectation and what came") {
    problem<float> p(10, 4, 9);
    std::vector<float> small(12), g(p.logits.size());
    std::vector<std::int32_t> short_labels(7, -1);

    auto m = error_message([&] { focal::classification_loss(focal_loss, p.x(), focal::make_view(short_labels.data(), 7)); });
    CHECK(contains(m, "labels"));
    CHECK(contains(m, "10"));
    CHECK(contains(m, "[7]"));

    p.labels[3] = 4;  // == K
    m = error_message([&] { focal::classification_loss(focal_loss, p.x(), p.y()); });
    CHECK(contains(m, "labels"));
    CHECK(contains(m, "[-2, 4)"));
    CHECK(contains(m, "got 4 at anchor 3"));
    p.labels[3] = -3;
    CHECK(contains(error_message([&] { focal::classification_loss(focal_loss, p.x(), p.y()); }), "got -3 at anchor 3"));
    p.labels[3] = -1;

    m = error_message([&] { focal::classification_loss(focal::sigmoid_focal_loss{0.25f, -2.0f}, p.x(), p.y()); });
    CHECK(contains(m, "gamma"));
    m = error_message([&] { focal::classification_loss(focal::sigmoid_focal_loss{1.25f, 2.0f}, p.x(), p.y()); });
    CHECK(contains(m, "alpha"));

    m = error_message([&] {
        focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(), {.grad = focal::make_view(small.data(), 3, 4)});
    });
    CHECK(contains(m, "out.grad"));
    CHECK(contains(m, "[10 x 4]"));
    CHECK(contains(m, "[3 x 4]"));

    m = error_message([&] { focal::classification_loss(focal_loss, p.x(), focal::make_view(small.data(), 3, 4)); });
    CHECK(contains(m, "targets"));

    std::vector<float> soft(p.logits.size(), 0.5f);
    m = error_message([&] { focal::classification_loss(focal_loss, p.x(), focal::make_view(soft.data(), p.n, p.k)); });
    CHECK(contains(m, "0 or 1"));
    CHECK(contains(m, "0.5"));

    for (double bad : {0.0, -1.0, std::nan(""), double(INFINITY)}) {
        CAPTURE(bad);
        m = error_message([&] { focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::divide_by(bad)); });
        CHECK(contains(m, "normalizer"));
    }
    m = error_message([&] { focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::none()); });
    CHECK(contains(m, "out.values"));

    m = error_message([&] { focal::classification_loss(focal_loss, focal::make_view<const float>(nullptr, 10, 4), p.y()); });
    CHECK(contains(m, "logits"));
    CHECK(contains(m, "null"));

    m = error_message([&] { focal::classification_loss(focal_loss, focal::make_view<const float>(p.logits.data(), -10, 4), p.y()); });
    CHECK(contains(m, "non-negative"));
    // Output views whose elements overlap (stride 0, interleaved rows) would race between threads.
    m = error_message([&] {
        focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(),
                                   {.grad = focal::matrix_view<float>(g.data(), {10, 4}, {0, 1})});
    });
    CHECK(contains(m, "out.grad"));
    CHECK(contains(m, "overlap"));
    CHECK_THROWS_AS(focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(),
                                               {.values = focal::matrix_view<float>(g.data(), {10, 4}, {2, 1})}),
                    focal::error);
    CHECK_NOTHROW(focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(),
                                             {.grad = focal::matrix_view<float>(g.data(), {10, 4}, {1, 10})}));
    // A normalizer whose reciprocal is not a finite, non-zero float would zero or overflow every gradient.
    m = error_message([&] { focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::divide_by(1e-39)); });
    CHECK(contains(m, "scale"));
    CHECK_THROWS_AS(focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::divide_by(1e300)), focal::error);

    // Nothing was written before the error.
    std::fill(g.begin(), g.end(), 5.0f);
    p.labels[9] = 100;
    CHECK_THROWS_AS(focal::classification_loss(focal_loss, p.x(), p.y(), focal::reduction::sum(), {.grad = focal::make_view(g.data(), p.n, p.k)}),
                    focal::error);
    CHECK(g == std::vector<float>(p.logits.size(), 5.0f));
}
