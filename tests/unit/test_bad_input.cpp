// The bad-input catalogue (docs/bad_input.md): for every public entry point, what empty input,
// mismatched shapes, NaN / Inf values, inverted or zero-area boxes, out-of-range labels or
// thresholds and huge sizes do. Each cell of the document names the test case here that shows it.
// Errors are checked by a distinctive part of the message (argument, expectation, what came);
// documented non-error results are checked exactly. "Huge" views claim extents over a one-element
// buffer: every such call is rejected before any element is read, so nothing large is allocated.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <doctest/doctest.h>
#include <focal/adapt/eigen.hpp>
#include <focal/adapt/xtensor.hpp>
#include <focal/eval/coco_json.hpp>
#include <focal/retinanet.hpp>

using doctest::Contains;
using focal::index_t;

namespace {

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();
constexpr float inf_f = std::numeric_limits<float>::infinity();
constexpr double nan_d = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_d = std::numeric_limits<double>::infinity();
constexpr index_t index_max = std::numeric_limits<index_t>::max();
constexpr index_t two_32 = index_t(1) << 32;  // two_32 * two_32 wraps index_t
constexpr index_t two_62 = index_t(1) << 62;  // two_62 * 4 wraps index_t

template <class T>
focal::matrix_view<const T> rows4(const std::vector<T>& v) {
    return focal::make_view(v.data(), static_cast<index_t>(v.size() / 4), index_t(4));
}
template <class T>
focal::vector_view<const T> vec(const std::vector<T>& v) {
    return focal::make_view(v.data(), static_cast<index_t>(v.size()));
}
template <class T>
focal::vector_view<T> out_vec(std::vector<T>& v) {
    return focal::make_view(v.data(), static_cast<index_t>(v.size()));
}
template <class T>
focal::matrix_view<T> out_rows4(std::vector<T>& v) {
    return focal::make_view(v.data(), static_cast<index_t>(v.size() / 4), index_t(4));
}

const focal::sigmoid_focal_loss focal_loss{};

}  // namespace

// ============================================================================ classification_loss (labels)

TEST_CASE("classification_loss (labels): empty input") {
    std::vector<float> none;
    std::vector<std::int64_t> no_labels;
    const auto empty = focal::make_view<const float>(none.data(), 0, 3);
    CHECK(focal::classification_loss(focal_loss, empty, vec(no_labels)) == 0.0);
    CHECK(focal::classification_loss(focal_loss, empty, vec(no_labels), focal::reduction::mean()) == 0.0);
    // No classes (K = 0): anchors may only be background or ignored, and nothing is summed.
    const std::vector<std::int64_t> background{-1, -2};
    CHECK(focal::classification_loss(focal_loss, focal::make_view<const float>(none.data(), 2, 0), vec(background),
                                     focal::reduction::mean()) == 0.0);
    // Every anchor ignored: mean over no contributing element is 0, not NaN.
    const std::vector<float> x(6, 1.0f);
    const std::vector<std::int64_t> ignored{-2, -2, -2};
    CHECK(focal::classification_loss(focal_loss, focal::make_view(x.data(), 3, 2), vec(ignored), focal::reduction::mean()) == 0.0);
}

TEST_CASE("classification_loss (labels): mismatched shapes") {
    const std::vector<float> x(6, 0.0f);
    std::vector<float> g(4);
    const auto logits = focal::make_view(x.data(), 3, 2);
    const std::vector<std::int64_t> two{0, 1}, three{0, 1, -1};
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, logits, vec(two)),
                         Contains("labels (one per logits row) must be of extent 3 in dimension 0, got [2]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, logits, vec(three), focal::reduction::sum(),
                                                    {.grad = focal::make_view(g.data(), 2, 2)}),
                         Contains("focal::classification_loss: out.grad must be of the shape of logits [3 x 2], got [2 x 2]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, logits, vec(three), focal::reduction::none()),
                         Contains("focal::classification_loss: out.values must be given for reduction::none"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::matrix_view<const float>(nullptr, 3, 2), vec(three)),
                         Contains("logits must be a non-null pointer when not empty, got a null pointer with shape [3 x 2]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::matrix_view<const float>(x.data(), -1, 2), vec(three)),
                         Contains("logits must be of non-negative extents, got [-1 x 2]"), focal::error);
    // Two rows of the gradient on the same memory (stride 0) would race.
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, logits, vec(three), focal::reduction::sum(),
                                                    {.grad = focal::matrix_view<float>(g.data(), {3, 2}, {0, 1})}),
                         Contains("focal::classification_loss: out.grad must be a view whose elements do not overlap"), focal::error);
}

TEST_CASE("classification_loss (labels): NaN and Inf values") {
    // Anchor 0 (class 0): a NaN logit; anchor 1 ignored with NaN logits; anchor 2 finite.
    const std::vector<float> x{nan_f, 0.0f, nan_f, nan_f, 1.0f, -1.0f};
    const std::vector<std::int64_t> labels{0, -2, 1};
    std::vector<float> g(6, 7.0f);
    const double v = focal::classification_loss(focal_loss, focal::make_view(x.data(), 3, 2), vec(labels),
                                                focal::reduction::sum(), {.grad = focal::make_view(g.data(), 3, 2)});
    CHECK(std::isnan(v));
    CHECK(std::isnan(g[0]));
    CHECK(std::isfinite(g[1]));
    CHECK(g[2] == 0.0f);  // ignored: gradient 0 even for NaN logits
    CHECK(g[3] == 0.0f);
    CHECK(std::isfinite(g[4]));
    // Without the NaN anchor the sum is finite: the ignored anchor's NaN logits contribute nothing.
    const std::vector<std::int64_t> no_nan{-2, -2, 1};
    CHECK(std::isfinite(focal::classification_loss(focal_loss, focal::make_view(x.data(), 3, 2), vec(no_nan))));
    // Infinite logits give the limits: a certain right answer costs 0 with gradient 0 ...
    const std::vector<float> right{-inf_f, inf_f}, wrong{inf_f, -inf_f};
    const std::vector<std::int64_t> class1{1};
    std::vector<float> gr(2, 7.0f);
    CHECK(focal::classification_loss(focal_loss, focal::make_view(right.data(), 1, 2), vec(class1), focal::reduction::sum(),
                                     {.grad = focal::make_view(gr.data(), 1, 2)}) == 0.0);
    CHECK(gr[0] == 0.0f);
    CHECK(gr[1] == 0.0f);
    // ... a certain wrong one costs inf with gradient +(1 - alpha) / -alpha.
    CHECK(focal::classification_loss(focal_loss, focal::make_view(wrong.data(), 1, 2), vec(class1), focal::reduction::sum(),
                                     {.grad = focal::make_view(gr.data(), 1, 2)}) == inf_d);
    CHECK(gr[0] == doctest::Approx(0.75));
    CHECK(gr[1] == doctest::Approx(-0.25));
    // A NaN or infinite normalizer is an error, and so is one whose reciprocal float cannot hold.
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::make_view(x.data(), 3, 2), vec(no_nan),
                                                    focal::reduction::divide_by(nan_d)),
                         Contains("reduction::divide_by(normalizer) must be finite and > 0, got nan"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::make_view(x.data(), 3, 2), vec(no_nan),
                                                    focal::reduction::divide_by(inf_d)),
                         Contains("reduction::divide_by(normalizer) must be finite and > 0, got inf"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::make_view(x.data(), 3, 2), vec(no_nan),
                                                    focal::reduction::divide_by(1e-39)),
                         Contains("the reduction's scale (1 / count or 1 / normalizer) must be representable in the value type"),
                         focal::error);
    // NaN policy parameters.
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal::sigmoid_focal_loss{.alpha = nan_f}, focal::make_view(x.data(), 3, 2), vec(no_nan)),
                         Contains("alpha must be in [0, 1] (or < 0 to disable the weighting), got nan"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal::sigmoid_focal_loss{.gamma = inf_f}, focal::make_view(x.data(), 3, 2), vec(no_nan)),
                         Contains("gamma must be finite and >= 0, got inf"), focal::error);
}

TEST_CASE("classification_loss (labels): out-of-range labels and parameters") {
    const std::vector<float> x(6, 0.0f);
    const auto logits = focal::make_view(x.data(), 2, 3);
    const std::vector<std::int64_t> too_big{0, 3}, too_small{-3, 0};
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, logits, vec(too_big)),
                         Contains("labels must be in [-2, 3) (-2 ignored, -1 background), got 3 at anchor 1"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, logits, vec(too_small)),
                         Contains("labels must be in [-2, 3) (-2 ignored, -1 background), got -3 at anchor 0"), focal::error);
    // Labels are read as signed 64-bit: uint64's maximum is -1 (background); uint32's is 4294967295.
    const std::vector<std::uint64_t> u64{std::numeric_limits<std::uint64_t>::max(), 0};
    const std::vector<std::int64_t> same{-1, 0};
    CHECK(focal::classification_loss(focal_loss, logits, vec(u64)) == focal::classification_loss(focal_loss, logits, vec(same)));
    const std::vector<std::uint32_t> u32{std::numeric_limits<std::uint32_t>::max(), 0};
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, logits, vec(u32)), Contains("got 4294967295 at anchor 0"),
                         focal::error);
    const std::vector<std::int64_t> ok{0, -1};
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal::sigmoid_focal_loss{.alpha = 1.5f}, logits, vec(ok)),
                         Contains("focal::classification_loss: alpha must be in [0, 1] (or < 0 to disable the weighting), got 1.5"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal::sigmoid_focal_loss{.gamma = -2.0f}, logits, vec(ok)),
                         Contains("gamma must be finite and >= 0, got -2"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal::binary_cross_entropy{.pos_weight = -1.0f}, logits, vec(ok)),
                         Contains("pos_weight must be finite and >= 0, got -1"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, logits, vec(ok), focal::reduction::divide_by(0.0)),
                         Contains("reduction::divide_by(normalizer) must be finite and > 0, got 0"), focal::error);
}

TEST_CASE("classification_loss (labels): huge sizes") {
    const double cell = 0.0;
    const float cell_f = 0.0f;
    const std::vector<std::int64_t> none, one{0};
    // 2^25 classes: float cannot represent every class index, checked before any logit is read.
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::matrix_view<const float>(&cell_f, 0, index_t(1) << 25), vec(none)),
                         Contains("logits columns (classes) must be at most 2^digits of the value type, got 33554432"),
                         focal::error);
    // N x K whose product wraps index_t.
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::matrix_view<const double>(&cell, two_32, two_32), vec(one)),
                         Contains("logits must be of extents whose product fits focal::index_t, got [4294967296 x 4294967296]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::matrix_view<const double>(&cell, index_t(2048), index_t(1) << 53),
                                                    vec(one)),
                         Contains("logits must be of extents whose product fits focal::index_t"), focal::error);
}

// ============================================================================ classification_loss (dense targets)

TEST_CASE("classification_loss (targets): empty input") {
    std::vector<float> none;
    const auto empty = focal::make_view<const float>(none.data(), 0, 2);
    CHECK(focal::classification_loss(focal_loss, empty, empty) == 0.0);
    CHECK(focal::classification_loss(focal::binary_cross_entropy{}, empty, empty, focal::reduction::mean()) == 0.0);
}

TEST_CASE("classification_loss (targets): mismatched shapes") {
    const std::vector<float> x(4, 0.0f), t(6, 0.0f);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::make_view(x.data(), 2, 2), focal::make_view(t.data(), 3, 2)),
                         Contains("targets must be of the shape of logits [2 x 2], got [3 x 2]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::make_view(x.data(), 2, 2),
                                                    focal::matrix_view<const float>(nullptr, 2, 2)),
                         Contains("targets must be a non-null pointer when not empty"), focal::error);
}

TEST_CASE("classification_loss (targets): NaN and Inf values") {
    const std::vector<float> x{0.0f, nan_f}, t{0.0f, 1.0f}, nan_t{0.0f, nan_f};
    CHECK(std::isnan(focal::classification_loss(focal_loss, focal::make_view(x.data(), 1, 2), focal::make_view(t.data(), 1, 2))));
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::make_view(t.data(), 1, 2), focal::make_view(nan_t.data(), 1, 2)),
                         Contains("targets must be 0 or 1, got nan at (0, 1)"), focal::error);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal::binary_cross_entropy{}, focal::make_view(t.data(), 1, 2),
                                                    focal::make_view(nan_t.data(), 1, 2)),
                         Contains("targets must be in [0, 1], got nan at (0, 1)"), focal::error);
    // BCE at infinite logits: the right answer costs 0, never 0 * inf.
    const std::vector<float> inf_x{-inf_f, inf_f};
    CHECK(focal::classification_loss(focal::binary_cross_entropy{}, focal::make_view(inf_x.data(), 1, 2), focal::make_view(t.data(), 1, 2)) ==
          0.0);
}

TEST_CASE("classification_loss (targets): out-of-range targets") {
    const std::vector<float> x(2, 0.0f), half{0.5f, 0.0f}, big{0.0f, 1.5f};
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, focal::make_view(x.data(), 1, 2), focal::make_view(half.data(), 1, 2)),
                         Contains("targets must be 0 or 1, got 0.5 at (0, 0)"), focal::error);
    // Soft targets are BCE's: 0.5 is fine there, 1.5 is not.
    CHECK(std::isfinite(focal::classification_loss(focal::binary_cross_entropy{}, focal::make_view(x.data(), 1, 2),
                                                   focal::make_view(half.data(), 1, 2))));
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal::binary_cross_entropy{}, focal::make_view(x.data(), 1, 2),
                                                    focal::make_view(big.data(), 1, 2)),
                         Contains("targets must be in [0, 1], got 1.5 at (0, 1)"), focal::error);
}

TEST_CASE("classification_loss (targets): huge sizes") {
    const double cell = 0.0;
    const focal::matrix_view<const double> huge(&cell, two_32, two_32);
    CHECK_THROWS_WITH_AS(focal::classification_loss(focal_loss, huge, huge),
                         Contains("logits must be of extents whose product fits focal::index_t"), focal::error);
}

// ============================================================================ box_regression_loss

TEST_CASE("box_regression_loss: empty input") {
    std::vector<float> none;
    std::vector<std::int64_t> no_labels;
    const auto empty = focal::make_view<const float>(none.data(), 0, 4);
    CHECK(focal::box_regression_loss(focal::l1_loss{}, empty, empty, vec(no_labels)) == 0.0);
    // No positive anchor: 0 for every reduction, and the gradient is zeroed.
    const std::vector<float> p{1, 2, 3, 4, 5, 6, 7, 8}, t(8, 0.0f);
    const std::vector<std::int64_t> negatives{-1, -2};
    std::vector<float> g(8, 7.0f), values(2, 7.0f);
    CHECK(focal::box_regression_loss(focal::smooth_l1_loss{}, rows4(p), rows4(t), vec(negatives), focal::reduction::mean(),
                                     {.grad = out_rows4(g), .values = out_vec(values)}) == 0.0);
    CHECK(std::all_of(g.begin(), g.end(), [](float v) { return v == 0.0f; }));
    CHECK(values == std::vector<float>{0.0f, 0.0f});
    // reduction::none: 0, and the per-box losses (all 0) in out.values; with N = 0 out.values may be null.
    values.assign(2, 7.0f);
    CHECK(focal::box_regression_loss(focal::smooth_l1_loss{}, rows4(p), rows4(t), vec(negatives), focal::reduction::none(),
                                     {.values = out_vec(values)}) == 0.0);
    CHECK(values == std::vector<float>{0.0f, 0.0f});
    CHECK(focal::box_regression_loss(focal::l1_loss{}, empty, empty, vec(no_labels), focal::reduction::none()) == 0.0);
}

TEST_CASE("box_regression_loss: mismatched shapes") {
    const std::vector<float> p(8, 0.0f), t(8, 0.0f);
    std::vector<float> g(4);
    const std::vector<std::int64_t> labels{0, 0}, one{0};
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, focal::make_view(p.data(), 2, 3), focal::make_view(t.data(), 2, 3),
                                                    vec(labels)),
                         Contains("predictions must be of extent 4 in dimension 1, got [2 x 3]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(p), focal::make_view(t.data(), 1, 4), vec(labels)),
                         Contains("targets must be of the shape of predictions [2 x 4], got [1 x 4]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(p), rows4(t), vec(one)),
                         Contains("labels (one per predictions row) must be of extent 2 in dimension 0, got [1]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(p), rows4(t), vec(labels), focal::reduction::sum(),
                                                    {.grad = out_rows4(g)}),
                         Contains("focal::box_regression_loss: out.grad must be of the shape of predictions [2 x 4], got [1 x 4]"),
                         focal::error);
    // out.values: one per predictions row, real memory, no two rows on the same element. Nothing is written.
    std::vector<float> g8(8, 7.0f), values(3, 7.0f);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(p), rows4(t), vec(labels), focal::reduction::sum(),
                                                    {.grad = out_rows4(g8), .values = out_vec(values)}),
                         Contains("focal::box_regression_loss: out.values (one per predictions row) must be of extent 2 in dimension 0, got [3]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(p), rows4(t), vec(labels), focal::reduction::none(),
                                                    {.values = focal::make_view(values.data(), 1)}),
                         Contains("out.values (one per predictions row) must be of extent 2 in dimension 0, got [1]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(p), rows4(t), vec(labels), focal::reduction::sum(),
                                                    {.grad = out_rows4(g8), .values = focal::vector_view<float>(values.data(), {2}, {0})}),
                         Contains("focal::box_regression_loss: out.values must be a view whose elements do not overlap, got stride 0 for shape [2]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(p), rows4(t), vec(labels), focal::reduction::sum(),
                                                    {.values = focal::vector_view<float>(nullptr, 2)}),
                         Contains("out.values must be a non-null pointer when not empty, got a null pointer with shape [2]"), focal::error);
    CHECK(g8 == std::vector<float>(8, 7.0f));
    CHECK(values == std::vector<float>(3, 7.0f));
    // A strided out.values is fine: every other element written, the others untouched.
    std::vector<float> strided(4, 7.0f);
    const std::vector<std::int64_t> mixed{0, -1};
    const std::vector<float> q{1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(focal::box_regression_loss(focal::l1_loss{}, rows4(q), rows4(t), vec(mixed), focal::reduction::none(),
                                     {.values = focal::vector_view<float>(strided.data(), {2}, {2})}) == 10.0);
    CHECK(strided == std::vector<float>{10.0f, 7.0f, 0.0f, 7.0f});
}

TEST_CASE("box_regression_loss: NaN and Inf values") {
    const std::vector<float> good{0, 0, 2, 2}, nan_box{nan_f, 0, 2, 2}, inf_box{0, 0, inf_f, 2};
    const std::vector<std::int64_t> positive{0}, negative{-1};
    // Deltas: NaN in, NaN out (in out.values too).
    CHECK(std::isnan(focal::box_regression_loss(focal::l1_loss{}, rows4(nan_box), rows4(good), vec(positive))));
    std::vector<float> values(1, 7.0f);
    CHECK(std::isnan(focal::box_regression_loss(focal::l1_loss{}, rows4(nan_box), rows4(good), vec(positive), focal::reduction::none(),
                                                {.values = out_vec(values)})));
    CHECK(std::isnan(values[0]));
    CHECK(std::isnan(focal::box_regression_loss(focal::smooth_l1_loss{}, rows4(good), rows4(nan_box), vec(positive))));
    // GIoU: targets must be finite boxes; a NaN prediction gives NaN.
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::giou_loss{}, rows4(good), rows4(nan_box), vec(positive)),
                         Contains("targets must be finite xyxy boxes with x2 >= x1 and y2 >= y1, got [nan, 0, 2, 2] at anchor 0"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::giou_loss{}, rows4(good), rows4(inf_box), vec(positive)),
                         Contains("targets must be finite xyxy boxes with x2 >= x1 and y2 >= y1, got [0, 0, inf, 2] at anchor 0"),
                         focal::error);
    CHECK(std::isnan(focal::box_regression_loss(focal::giou_loss{}, rows4(nan_box), rows4(good), vec(positive))));
    // Rows that are not positive are never read into the sum (nor checked).
    CHECK(focal::box_regression_loss(focal::giou_loss{}, rows4(nan_box), rows4(nan_box), vec(negative)) == 0.0);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::smooth_l1_loss{.beta = nan_f}, rows4(good), rows4(good), vec(positive)),
                         Contains("beta must be finite and >= 0, got nan"), focal::error);
}

TEST_CASE("box_regression_loss: inverted and zero-area boxes") {
    const std::vector<float> good{0, 0, 2, 2}, inverted{2, 0, 0, 2}, point{1, 1, 1, 1};
    const std::vector<std::int64_t> positive{0};
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::giou_loss{}, rows4(good), rows4(inverted), vec(positive)),
                         Contains("targets must be finite xyxy boxes with x2 >= x1 and y2 >= y1, got [2, 0, 0, 2] at anchor 0"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::giou_loss{}, rows4(inverted), rows4(good), vec(positive)),
                         Contains("predictions must be xyxy boxes with x2 >= x1 and y2 >= y1, got [2, 0, 0, 2] at anchor 0"),
                         focal::error);
    // Two empty boxes: GIoU loss 1, never NaN.
    CHECK(focal::box_regression_loss(focal::giou_loss{}, rows4(point), rows4(point), vec(positive)) == 1.0);
    // L1 types read deltas, not boxes: an "inverted" row is just four numbers.
    CHECK(focal::box_regression_loss(focal::l1_loss{}, rows4(inverted), rows4(good), vec(positive)) == 4.0);
}

TEST_CASE("box_regression_loss: out-of-range labels and parameters") {
    const std::vector<float> b{0, 0, 2, 2};
    const std::vector<std::int64_t> bad{-3}, big{std::int64_t(1) << 40}, positive{0};
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(b), rows4(b), vec(bad)),
                         Contains("labels must be >= -2 (-2 ignored, -1 background, >= 0 positive), got -3 at anchor 0"), focal::error);
    // Any label >= 0 is a positive (the driver does not know the number of classes).
    CHECK(focal::box_regression_loss(focal::l1_loss{}, rows4(b), rows4(b), vec(big), focal::reduction::mean()) == 0.0);
    // reduction::none returns the sum and needs out.values for the per-box losses.
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(b), rows4(b), vec(positive), focal::reduction::none()),
                         Contains("focal::box_regression_loss: out.values must be given for reduction::none (it receives the per-box "
                                  "losses), got a null view"),
                         focal::error);
    std::vector<float> g(4, 7.0f);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(b), rows4(b), vec(positive), focal::reduction::none(),
                                                    {.grad = out_rows4(g)}),
                         Contains("out.values must be given for reduction::none"), focal::error);
    CHECK(g == std::vector<float>(4, 7.0f));
    const std::vector<float> shifted{1, 0, 2, 4};
    std::vector<float> values(1, 7.0f);
    CHECK(focal::box_regression_loss(focal::l1_loss{}, rows4(shifted), rows4(b), vec(positive), focal::reduction::none(),
                                     {.grad = out_rows4(g), .values = out_vec(values)}) == 3.0);
    CHECK(values[0] == 3.0f);
    CHECK(g == std::vector<float>{1.0f, 0.0f, 0.0f, 1.0f});  // unscaled
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::smooth_l1_loss{.beta = -0.1f}, rows4(b), rows4(b), vec(positive)),
                         Contains("beta must be finite and >= 0, got -0.1"), focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::giou_loss{.eps = 0.0f}, rows4(b), rows4(b), vec(positive)),
                         Contains("eps must be in (0, 1), got 0"), focal::error);
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, rows4(b), rows4(b), vec(positive), focal::reduction::divide_by(-1)),
                         Contains("reduction::divide_by(normalizer) must be finite and > 0, got -1"), focal::error);
}

TEST_CASE("box_regression_loss: huge sizes") {
    const float cell = 0.0f;
    const std::int64_t label = 0;
    const focal::matrix_view<const float> huge(&cell, two_62, index_t(4));
    CHECK_THROWS_WITH_AS(focal::box_regression_loss(focal::l1_loss{}, huge, huge, focal::vector_view<const std::int64_t>(&label, two_62)),
                         Contains("predictions must be of extents whose product fits focal::index_t, got [4611686018427387904 x 4]"),
                         focal::error);
}

// ============================================================================ compute_retinanet_loss

namespace {

// One or more images of 4 anchors (a 2 x 2 grid of 10 px cells) and 2 classes; one gt box per image.
struct retina_problem {
    index_t batch, a = 4, k = 2;
    std::vector<float> cls, reg, anchors{0, 0, 10, 10, 10, 0, 20, 10, 0, 10, 10, 20, 10, 10, 20, 20};
    std::vector<float> gt_boxes{0, 0, 10, 10};
    std::vector<std::int64_t> gt_labels{1};

    explicit retina_problem(index_t b = 1)
        : batch(b), cls(static_cast<std::size_t>(b * 4 * 2), 0.0f), reg(static_cast<std::size_t>(b * 4 * 4), 0.0f) {}
    std::vector<focal::ground_truth<float, std::int64_t>> targets() const {
        return std::vector<focal::ground_truth<float, std::int64_t>>(static_cast<std::size_t>(batch),
                                                                     {rows4(gt_boxes), vec(gt_labels)});
    }
    template <class BoxLoss>
    focal::retinanet_loss_value run(const focal::retinanet_loss<BoxLoss>& loss, const focal::retinanet_gradients<float>& g = {},
                                    focal::retinanet_loss_state* state = nullptr) const {
        return focal::compute_retinanet_loss(loss, focal::tensor3_view<const float>(cls.data(), batch, a, k),
                                             focal::tensor3_view<const float>(reg.data(), batch, a, index_t(4)), rows4(anchors), targets(), g,
                                             state);
    }
    focal::retinanet_loss_value run() const { return run(focal::retinanet_loss<>{}); }
};

}  // namespace

TEST_CASE("compute_retinanet_loss: empty input") {
    // No image.
    const retina_problem none(0);
    const auto r0 = none.run();
    CHECK(r0.classification == 0.0);
    CHECK(r0.box == 0.0);
    CHECK(r0.positives == 0);
    // No ground truth: every anchor negative, box loss 0.
    retina_problem p;
    p.gt_boxes.clear();
    p.gt_labels.clear();
    const auto r1 = p.run();
    CHECK(r1.positives == 0);
    CHECK(r1.box == 0.0);
    CHECK(r1.classification > 0.0);
    CHECK(std::isfinite(r1.classification));
    // No anchors: nothing to match or sum.
    const std::vector<float> no_anchors;
    const retina_problem q;
    const auto r2 = focal::compute_retinanet_loss(focal::retinanet_loss<>{}, focal::tensor3_view<const float>(q.cls.data(), 1, 0, 2),
                                                  focal::tensor3_view<const float>(q.reg.data(), 1, 0, 4), rows4(no_anchors), q.targets());
    CHECK(r2.classification == 0.0);
    CHECK(r2.box == 0.0);
    CHECK(r2.positives == 0);
}

TEST_CASE("compute_retinanet_loss: mismatched shapes") {
    const retina_problem p(2);
    const focal::retinanet_loss<> loss{};
    const auto cls = focal::tensor3_view<const float>(p.cls.data(), 2, 4, 2);
    const auto reg = focal::tensor3_view<const float>(p.reg.data(), 2, 4, 4);
    auto one_target = p.targets();
    one_target.pop_back();
    CHECK_THROWS_WITH_AS(focal::compute_retinanet_loss(loss, cls, reg, rows4(p.anchors), one_target),
                         Contains("targets must be one per image (2), got 1"), focal::error);
    CHECK_THROWS_WITH_AS(focal::compute_retinanet_loss(loss, cls, focal::tensor3_view<const float>(p.reg.data(), 2, 4, 3), rows4(p.anchors),
                                                       p.targets()),
                         Contains("bbox_regression must be of shape [B x A x 4] = [2 x 4 x 4], got [2 x 4 x 3]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::compute_retinanet_loss(loss, cls, reg, focal::make_view(p.anchors.data(), 3, 4), p.targets()),
                         Contains("anchors must be of shape [A x 4] with A = 4, got [3 x 4]"), focal::error);
    std::vector<float> g(2 * 4 * 3);
    CHECK_THROWS_WITH_AS(focal::compute_retinanet_loss(loss, cls, reg, rows4(p.anchors), p.targets(),
                                                       {.cls_logits = focal::tensor3_view<float>(g.data(), 2, 4, 3)}),
                         Contains("grads.cls_logits must be of the shape of cls_logits [2 x 4 x 2], got [2 x 4 x 3]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::compute_retinanet_loss(loss, focal::tensor3_view<const float>(p.cls.data(), 2, -1, 2),
                                                       focal::tensor3_view<const float>(p.reg.data(), 2, -1, 4),
                                                       focal::make_view(p.anchors.data(), -1, 4), p.targets()),
                         Contains("cls_logits must be of non-negative extents, got [2 x -1 x 2]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::compute_retinanet_loss(loss, cls, focal::tensor3_view<const float>(nullptr, 2, 4, 4), rows4(p.anchors), p.targets()),
                         Contains("bbox_regression must be a non-null pointer when not empty"), focal::error);
    // A gt label list longer than the gt boxes is build_targets' error.
    retina_problem q(2);
    q.gt_labels = {1, 0};
    CHECK_THROWS_WITH_AS(q.run(), Contains("gt_labels (one per gt box) must be of extent 1 in dimension 0, got [2]"), focal::error);
    // Null gt labels are rejected before anything (state, gradients) is written.
    auto loss_ema = focal::retinanet_loss<>{};
    loss_ema.normalizer = focal::loss_normalizer::batch_ema;
    focal::retinanet_loss_state state;
    std::vector<float> gc(p.cls.size(), 7.0f);
    auto null_labels = p.targets();
    null_labels[1].labels = focal::vector_view<const std::int64_t>(nullptr, 1);
    CHECK_THROWS_WITH_AS(focal::compute_retinanet_loss(loss_ema, cls, reg, rows4(p.anchors), null_labels,
                                                       {.cls_logits = focal::tensor3_view<float>(gc.data(), 2, 4, 2)}, &state),
                         Contains("targets[1].labels must be a non-null pointer when not empty"), focal::error);
    CHECK(state.ema == 100.0);
    CHECK(std::all_of(gc.begin(), gc.end(), [](float v) { return v == 7.0f; }));
    CHECK_THROWS_WITH_AS(p.run(loss_ema), Contains("state must be given for loss_normalizer::batch_ema"), focal::error);
}

TEST_CASE("compute_retinanet_loss: NaN and Inf values") {
    retina_problem p;
    p.cls[1] = nan_f;  // anchor 0 (the positive), class 1
    const auto r = p.run();
    CHECK(std::isnan(r.classification));
    CHECK(std::isfinite(r.box));
    // NaN outputs of a negative anchor's box regression are never read.
    retina_problem q;
    q.reg[4] = nan_f;  // anchor 1 is negative
    CHECK(std::isfinite(q.run().box));
    // A NaN anchor is ignored (-2): its NaN logits contribute nothing.
    retina_problem n;
    n.anchors[12] = nan_f;  // anchor 3
    n.cls[6] = n.cls[7] = nan_f;
    const auto rn = n.run();
    CHECK(std::isfinite(rn.classification));
    CHECK(rn.positives == 1);
    // A non-finite gt box is match_anchors' error, thrown before any state or gradient is written.
    retina_problem g;
    g.gt_boxes[2] = inf_f;
    auto loss = focal::retinanet_loss<>{};
    loss.normalizer = focal::loss_normalizer::batch_ema;
    focal::retinanet_loss_state state;
    std::vector<float> gc(g.cls.size(), 7.0f);
    CHECK_THROWS_WITH_AS(g.run(loss, {.cls_logits = focal::tensor3_view<float>(gc.data(), 1, 4, 2)}, &state),
                         Contains("focal::match_anchors: gt_boxes must be finite, got inf at row 0, column 2"), focal::error);
    CHECK(state.ema == 100.0);
    CHECK(std::all_of(gc.begin(), gc.end(), [](float v) { return v == 7.0f; }));
    // A NaN running normalizer is refused (it would stay NaN for the rest of training).
    state.ema = nan_d;
    CHECK_THROWS_WITH_AS(p.run(loss, {}, &state), Contains("state->ema must be finite and > 0, got nan"), focal::error);
}

TEST_CASE("compute_retinanet_loss: inverted and zero-area boxes") {
    retina_problem p;
    p.gt_boxes = {5, 5, 5, 5};  // zero area: IoU 0 with every anchor
    auto loss = focal::retinanet_loss<>{};
    CHECK(p.run(loss).positives == 0);  // max_iou_matcher{}: the zero-IoU guard promotes nothing
    // torchvision's Matcher promotes every anchor tying the gt's best IoU, 0: all become positive.
    CHECK(p.run(focal::retinanet_loss<>::torchvision()).positives == 4);
    p.gt_boxes = {10, 10, 0, 0};  // inverted: empty, the same
    CHECK(p.run(loss).positives == 0);
    CHECK(std::isfinite(p.run(loss).classification));
}

TEST_CASE("compute_retinanet_loss: out-of-range labels and parameters") {
    retina_problem p;
    p.gt_labels = {2};  // K = 2
    CHECK_THROWS_WITH_AS(p.run(), Contains("targets[0].labels must be in [0, 2) (the classes), got 2 for ground-truth box 0"), focal::error);
    p.gt_labels = {-1};
    CHECK_THROWS_WITH_AS(p.run(), Contains("targets[0].labels must be in [0, 2) (the classes), got -1 for ground-truth box 0"), focal::error);
    p.gt_labels = {1};
    // Policies and the running normalizer are checked before the state moves.
    auto loss = focal::retinanet_loss<focal::smooth_l1_loss>{};
    loss.normalizer = focal::loss_normalizer::batch_ema;
    focal::retinanet_loss_state state;
    loss.classification.alpha = 2.0f;
    CHECK_THROWS_WITH_AS(p.run(loss, {}, &state),
                         Contains("focal::compute_retinanet_loss: alpha must be in [0, 1] (or < 0 to disable the weighting), got 2"),
                         focal::error);
    loss.classification.alpha = 0.25f;
    loss.box.beta = -1.0f;
    CHECK_THROWS_WITH_AS(p.run(loss, {}, &state), Contains("beta must be finite and >= 0, got -1"), focal::error);
    loss.box.beta = 0.1f;
    loss.ema_momentum = 1.5f;
    CHECK_THROWS_WITH_AS(p.run(loss, {}, &state), Contains("ema_momentum must be in [0, 1], got 1.5"), focal::error);
    loss.ema_momentum = nan_f;
    CHECK_THROWS_WITH_AS(p.run(loss, {}, &state), Contains("ema_momentum must be in [0, 1], got nan"), focal::error);
    CHECK(state.ema == 100.0);
    loss.ema_momentum = 0.9f;
    state.ema = -5.0;
    CHECK_THROWS_WITH_AS(p.run(loss, {}, &state), Contains("state->ema must be finite and > 0, got -5"), focal::error);
    state.ema = 100.0;
    loss.matcher.positive_iou_threshold = 1.5;
    CHECK_THROWS_WITH_AS(p.run(loss, {}, &state), Contains("focal::match_anchors: positive_iou_threshold must be in [0, 1], got 1.5"),
                         focal::error);
    CHECK(state.ema == 100.0);
}

TEST_CASE("compute_retinanet_loss: huge sizes") {
    const float cell = 0.0f;
    const std::vector<focal::ground_truth<float, std::int64_t>> one(1);
    const index_t huge = index_t(1) << 40;
    CHECK_THROWS_WITH_AS(focal::compute_retinanet_loss(focal::retinanet_loss<>{}, focal::tensor3_view<const float>(&cell, 1, huge, huge),
                                                       focal::tensor3_view<const float>(&cell, 1, huge, 4),
                                                       focal::matrix_view<const float>(&cell, huge, 4), one),
                         Contains("cls_logits must be of extents whose product fits focal::index_t, got [1 x 1099511627776 x 1099511627776]"),
                         focal::error);
}

// ============================================================================ iou / giou / area (box4)

TEST_CASE("box functions: NaN and Inf coordinates") {
    const focal::box4<float> a{{0, 0, 2, 2}}, with_nan{{nan_f, 0, 2, 2}}, unbounded{{0, 0, inf_f, inf_f}};
    CHECK(std::isnan(focal::area(with_nan)));
    CHECK(std::isnan(focal::iou(a, with_nan)));
    CHECK(std::isnan(focal::giou(a, with_nan)));
    CHECK(focal::area(unbounded) == inf_f);
    CHECK(focal::iou(a, unbounded) == 0.0f);  // a finite intersection over an infinite union
    CHECK(std::isnan(focal::giou(a, unbounded)));  // (C - U) / C = inf / inf
    const auto c = focal::convert(with_nan, focal::box_format::xyxy, focal::box_format::cxcywh);
    CHECK(std::isnan(c[0]));
    CHECK(std::isnan(c[2]));
    CHECK(c[1] == 1.0f);
}

TEST_CASE("box functions: inverted and zero-area boxes") {
    const focal::box4<float> a{{0, 0, 2, 2}}, inverted{{2, 2, 0, 0}}, point{{1, 1, 1, 1}}, line{{0, 0, 2, 0}};
    CHECK(focal::area(inverted) == 0.0f);
    CHECK(focal::area(point) == 0.0f);
    CHECK(focal::iou(a, inverted) == 0.0f);
    CHECK(focal::iou(a, point) == 0.0f);
    CHECK(focal::iou(a, line) == 0.0f);
    CHECK(focal::iou(point, point) == 0.0f);  // two empty boxes: 0, not 0 / 0
    CHECK(focal::giou(point, point) == 0.0f);
    CHECK(focal::iou(inverted, inverted) == 0.0f);
}

TEST_CASE("box functions: huge coordinates") {
    // An area beyond float's range is inf, and inf / (inf + inf - inf) is NaN (torchvision's too).
    const focal::box4<float> big{{0, 0, 1e20f, 1e20f}};
    CHECK(focal::area(big) == inf_f);
    CHECK(std::isnan(focal::iou(big, big)));
    const focal::box4<double> big_d{{0, 0, 1e20, 1e20}};
    CHECK(focal::iou(big_d, big_d) == 1.0);  // double holds 1e40
}

// ============================================================================ pairwise_iou / pairwise_similarity

TEST_CASE("pairwise_iou: empty input") {
    const std::vector<float> none, b{0, 0, 1, 1, 0, 0, 2, 2};
    std::vector<float> out(2, 7.0f);
    focal::pairwise_iou(rows4(none), rows4(b), focal::make_view(out.data(), 0, 2));
    focal::pairwise_iou(rows4(b), rows4(none), focal::make_view(out.data(), 2, 0));
    CHECK(out == std::vector<float>{7.0f, 7.0f});  // nothing written
}

TEST_CASE("pairwise_iou: mismatched shapes") {
    const std::vector<float> a(8, 0.0f), b(12, 0.0f);
    std::vector<float> out(6);
    CHECK_THROWS_WITH_AS(focal::pairwise_iou(focal::make_view(a.data(), 2, 3), rows4(b), focal::make_view(out.data(), 2, 3)),
                         Contains("a (boxes, N x 4) must be of extent 4 in dimension 1, got [2 x 3]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::pairwise_iou(rows4(a), rows4(b), focal::make_view(out.data(), 2, 2)),
                         Contains("out must be of shape [N x M] = [2 x 3], got [2 x 2]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::pairwise_iou(rows4(a), rows4(b), focal::matrix_view<float>(out.data(), {2, 3}, {0, 1})),
                         Contains("out must be a view whose elements do not overlap"), focal::error);
    CHECK_THROWS_WITH_AS(focal::pairwise_iou(rows4(a), focal::matrix_view<const float>(nullptr, 3, 4), focal::make_view(out.data(), 2, 3)),
                         Contains("b (boxes, M x 4) must be a non-null pointer when not empty"), focal::error);
}

TEST_CASE("pairwise_iou: NaN and Inf values") {
    const std::vector<float> a{0, 0, 2, 2, nan_f, 0, 2, 2}, b{0, 0, 2, 2, 0, 0, inf_f, inf_f};
    std::vector<float> out(4);
    focal::pairwise_iou(rows4(a), rows4(b), focal::make_view(out.data(), 2, 2));
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == 0.0f);  // finite intersection, infinite union
    CHECK(std::isnan(out[2]));
    CHECK(std::isnan(out[3]));
}

TEST_CASE("pairwise_iou: inverted and zero-area boxes") {
    const std::vector<float> a{0, 0, 2, 2, 1, 1, 1, 1}, b{2, 2, 0, 0, 1, 1, 1, 1, 0, 0, 2, 2};
    std::vector<float> out(6, 7.0f);
    focal::pairwise_iou(rows4(a), rows4(b), focal::make_view(out.data(), 2, 3));
    CHECK(out == std::vector<float>{0, 0, 1, 0, 0, 0});
}

TEST_CASE("pairwise_iou: huge sizes") {
    // 2^33 x 2^33 entries wrap index_t: rejected before either box list is read.
    const float cell = 0.0f;
    const focal::matrix_view<const float> boxes(&cell, index_t(1) << 33, index_t(4));
    float out_cell = 0.0f;
    CHECK_THROWS_WITH_AS(focal::pairwise_iou(boxes, boxes, focal::matrix_view<float>(&out_cell, index_t(1) << 33, index_t(1) << 33)),
                         Contains("out must be of extents whose product fits focal::index_t, got [8589934592 x 8589934592]"),
                         focal::error);
}

// ============================================================================ anchors

TEST_CASE("anchors: empty input") {
    const auto spec = focal::anchor_presets::torchvision();
    CHECK(focal::anchor_count(spec, focal::size2d{0, 0}) == 0);
    CHECK(focal::anchor_count(spec, focal::size2d{0, 640}) == 0);
    CHECK(focal::make_anchors(spec, focal::size2d{0, 640}).empty());
    focal::generate_anchors(spec, focal::size2d{0, 0}, focal::matrix_view<float>(nullptr, 0, 4));
    // Explicit empty grids: no anchors on those levels.
    const std::vector<focal::size2d> grids(5, focal::size2d{0, 3});
    CHECK(focal::anchor_count(spec, std::span<const focal::size2d>(grids)) == 0);
    focal::anchor_spec no_levels;
    no_levels.levels.clear();
    CHECK_THROWS_WITH_AS(focal::anchor_count(no_levels, focal::size2d{64, 64}), Contains("levels must be non-empty, got no levels"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::cell_anchors<float>(no_levels, 0), Contains("focal::cell_anchors: levels must be non-empty"), focal::error);
    focal::anchor_spec no_sizes;
    no_sizes.levels[0].sizes.clear();
    CHECK_THROWS_WITH_AS(focal::anchor_count(no_sizes, focal::size2d{64, 64}), Contains("levels[0].sizes must be non-empty, got an empty list"),
                         focal::error);
}

TEST_CASE("anchors: mismatched shapes") {
    const auto spec = focal::anchor_presets::torchvision();
    const index_t n = focal::anchor_count(spec, focal::size2d{64, 64});
    std::vector<float> out(static_cast<std::size_t>(n * 4), 7.0f);
    CHECK_THROWS_WITH_AS(focal::generate_anchors(spec, focal::size2d{64, 64}, focal::make_view(out.data(), n - 1, 4)),
                         Contains(("out must be of shape [anchor_count x 4] = [" + std::to_string(n) + " x 4], got [" +
                                   std::to_string(n - 1) + " x 4]")
                                      .c_str()),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::generate_anchors(spec, focal::size2d{64, 64}, focal::make_view(out.data(), n, 3)),
                         Contains("out must be of shape [anchor_count x 4]"), focal::error);
    const std::vector<focal::size2d> two(2, focal::size2d{4, 4});
    CHECK_THROWS_WITH_AS(focal::generate_anchors(spec, focal::size2d{64, 64}, std::span<const focal::size2d>(two),
                                                 focal::make_view(out.data(), n, 4)),
                         Contains("grids must be one per level (5), got 2 grids"), focal::error);
    CHECK(std::all_of(out.begin(), out.end(), [](float v) { return v == 7.0f; }));
}

TEST_CASE("anchors: NaN and Inf parameters") {
    auto check = [](auto edit, const char* message) {
        focal::anchor_spec spec = focal::anchor_presets::detectron2();
        edit(spec);
        CHECK_THROWS_WITH_AS(focal::anchor_count(spec, focal::size2d{64, 64}), Contains(message), focal::error);
    };
    check([](focal::anchor_spec& s) { s.levels[0].stride = nan_d; }, "levels[0].stride must be in [1e-3, 1e6], got nan");
    check([](focal::anchor_spec& s) { s.levels[1].sizes[0] = inf_d; }, "levels[1].sizes must be finite and > 0, got inf");
    check([](focal::anchor_spec& s) { s.levels[2].scales[1] = nan_d; }, "levels[2].scales must be finite and > 0, got nan");
    check([](focal::anchor_spec& s) { s.levels[0].ratios[2] = inf_d; }, "levels[0].ratios must be finite and > 0, got inf");
    check([](focal::anchor_spec& s) { s.offset = nan_d; }, "offset must be finite, got nan");
    focal::anchor_spec spec = focal::anchor_presets::detectron2();
    spec.levels[3].sizes[0] = nan_d;
    CHECK_THROWS_WITH_AS(focal::cell_anchors<float>(spec, 0), Contains("focal::cell_anchors: levels[3].sizes must be finite and > 0, got nan"),
                         focal::error);
}

TEST_CASE("anchors: out-of-range sizes and parameters") {
    const auto spec = focal::anchor_presets::torchvision();
    CHECK_THROWS_WITH_AS(focal::anchor_count(spec, focal::size2d{-1, 64}), Contains("image must be of height and width in [0, 2^24], got [-1 x 64]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::anchor_count(spec, focal::size2d{64, (index_t(1) << 24) + 1}),
                         Contains("image must be of height and width in [0, 2^24], got [64 x 16777217]"), focal::error);
    std::vector<focal::size2d> grids(5, focal::size2d{4, 4});
    grids[3] = {4, -4};
    CHECK_THROWS_WITH_AS(focal::anchor_count(spec, std::span<const focal::size2d>(grids)),
                         Contains("grids[3] must be of height and width in [0, 2^24], got [4 x -4]"), focal::error);
    auto bad = spec;
    bad.size_divisibility = 0;
    CHECK_THROWS_WITH_AS(focal::anchor_count(bad, focal::size2d{64, 64}), Contains("size_divisibility must be in [1, 2^20], got 0"),
                         focal::error);
    bad = spec;
    bad.levels[4].stride = 1e7;
    CHECK_THROWS_WITH_AS(focal::anchor_count(bad, focal::size2d{64, 64}), Contains("levels[4].stride must be in [1e-3, 1e6], got 10000000"),
                         focal::error);
    bad = spec;
    bad.levels[0].ratios[0] = 0.0;
    CHECK_THROWS_WITH_AS(focal::make_anchors(bad, focal::size2d{64, 64}), Contains("levels[0].ratios must be finite and > 0, got 0"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::cell_anchors<float>(spec, 5), Contains("focal::cell_anchors: level must be < 5, got 5"), focal::error);
}

TEST_CASE("anchors: huge sizes") {
    // A 1e-3 px stride on a 2^24 px image: 1.7e10 x 1.7e10 cells, more anchors than index_t holds.
    focal::anchor_spec fine;
    fine.levels = {{1e-3, {32}, {1}, {1}}};
    CHECK_THROWS_WITH_AS(focal::anchor_count(fine, focal::size2d{index_t(1) << 24, index_t(1) << 24}),
                         Contains("image must be of a size whose anchor count fits focal::index_t with 4 coordinates per anchor, "
                                  "got a 16777216000 x 16777216000 grid of 1 x 1 x 1 anchors per cell at level 0"),
                         focal::error);
    CHECK_THROWS_AS(focal::make_anchors(fine, focal::size2d{index_t(1) << 24, index_t(1) << 24}), focal::error);
    // 8000 anchors per cell on 2^24 x 2^24 grids: each level fits, their sum does not.
    focal::anchor_spec many;
    const std::vector<double> twenty(20, 1.0);
    many.levels = {{8, twenty, twenty, twenty}, {8, twenty, twenty, twenty}};
    const std::vector<focal::size2d> grids(2, focal::size2d{index_t(1) << 24, index_t(1) << 24});
    CHECK_THROWS_WITH_AS(focal::anchor_count(many, std::span<const focal::size2d>(grids)),
                         Contains("grids[1] must be of a size whose anchor count fits focal::index_t with 4 coordinates per anchor, "
                                  "got a 16777216 x 16777216 grid of 20 x 20 x 20 anchors per cell at level 1 after "
                                  "2251799813685248000 anchors"),
                         focal::error);
    float cell = 0.0f;
    CHECK_THROWS_AS(focal::generate_anchors(many, focal::size2d{64, 64}, std::span<const focal::size2d>(grids),
                                            focal::matrix_view<float>(&cell, 1, 4)),
                    focal::error);
}

// ============================================================================ match_anchors

namespace {
// A 2 x 2 grid of 10 px anchors; gt 0 equals anchor 0.
const std::vector<float> grid_anchors{0, 0, 10, 10, 10, 0, 20, 10, 0, 10, 10, 20, 10, 10, 20, 20};
}  // namespace

TEST_CASE("match_anchors: empty input") {
    const std::vector<float> none;
    std::vector<std::int64_t> matches(4, 7);
    std::vector<float> best(4, 7.0f);
    focal::match_anchors(focal::max_iou_matcher{}, rows4(grid_anchors), rows4(none), focal::matrix_view<const float>{},
                         focal::match_output{out_vec(matches), out_vec(best)});
    CHECK(matches == std::vector<std::int64_t>(4, focal::background_label));  // no ground truth: every anchor background
    CHECK(best == std::vector<float>{0, 0, 0, 0});
    const std::vector<float> gt{0, 0, 10, 10};
    std::vector<std::int64_t> no_matches;
    focal::match_anchors(focal::max_iou_matcher{}, rows4(none), rows4(gt), focal::match_output{out_vec(no_matches)});  // no anchors: nothing to do
}

TEST_CASE("match_anchors: mismatched shapes") {
    const std::vector<float> gt{0, 0, 10, 10};
    std::vector<std::int64_t> matches(4, 7);
    std::vector<float> best(3);
    const focal::max_iou_matcher m{};
    CHECK_THROWS_WITH_AS(focal::match_anchors(m, rows4(grid_anchors), rows4(gt), focal::match_output{focal::make_view(matches.data(), 3)}),
                         Contains("focal::match_anchors: out.matches must be of extent N = 4 (one per anchor), got [3]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::match_anchors(m, focal::make_view(grid_anchors.data(), 4, 3), rows4(gt), focal::match_output{out_vec(matches)}),
                         Contains("anchors (N x 4) must be of extent 4 in dimension 1, got [4 x 3]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::match_anchors(m, rows4(grid_anchors), rows4(gt), focal::matrix_view<const float>{},
                                              focal::match_output{out_vec(matches), out_vec(best)}),
                         Contains("focal::match_anchors: out.max_iou must be null or of extent N = 4 (one per anchor), got [3]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::match_anchors(m, rows4(grid_anchors), rows4(gt), focal::match_output{focal::vector_view<std::int64_t>(matches.data(), {4}, {0})}),
                         Contains("out.matches must be a view whose elements do not overlap"), focal::error);
    CHECK_THROWS_WITH_AS(focal::match_anchors(m, rows4(grid_anchors), focal::matrix_view<const float>(nullptr, 2, 4), focal::match_output{out_vec(matches)}),
                         Contains("gt_boxes (M x 4) must be a non-null pointer when not empty"), focal::error);
    CHECK(matches == std::vector<std::int64_t>(4, 7));
}

TEST_CASE("match_anchors: NaN and Inf values") {
    std::vector<std::int64_t> matches(4, 7);
    const std::vector<float> nan_gt{0, 0, nan_f, 10}, crowd{-inf_f, 0, 5, 5}, gt{0, 0, 10, 10};
    CHECK_THROWS_WITH_AS(focal::match_anchors(focal::max_iou_matcher{}, rows4(grid_anchors), rows4(nan_gt), focal::match_output{out_vec(matches)}),
                         Contains("gt_boxes must be finite, got nan at row 0, column 2"), focal::error);
    CHECK_THROWS_WITH_AS(focal::match_anchors(focal::max_iou_matcher{}, rows4(grid_anchors), rows4(gt), rows4(crowd), focal::match_output{out_vec(matches)}),
                         Contains("crowd_boxes must be finite, got -inf at row 0, column 0"), focal::error);
    CHECK(matches == std::vector<std::int64_t>(4, 7));
    // A non-finite anchor is ignored (-2) and has max_iou NaN; the others match as usual.
    auto anchors = grid_anchors;
    anchors[4 * 2 + 1] = nan_f;
    anchors[4 * 3 + 2] = inf_f;
    std::vector<float> best(4);
    focal::match_anchors(focal::max_iou_matcher{}, rows4(anchors), rows4(gt), focal::matrix_view<const float>{},
                         focal::match_output{out_vec(matches), out_vec(best)});
    CHECK(matches == std::vector<std::int64_t>{0, -1, -2, -2});
    CHECK(best[0] == 1.0f);
    CHECK(std::isnan(best[2]));
    CHECK(std::isnan(best[3]));
}

TEST_CASE("match_anchors: inverted and zero-area boxes") {
    std::vector<std::int64_t> matches(4, 7);
    const std::vector<float> point{5, 5, 5, 5}, inverted{10, 10, 0, 0};
    // The zero-IoU guard (on by default): a gt whose best IoU is 0 promotes nothing.
    focal::match_anchors(focal::max_iou_matcher{}, rows4(grid_anchors), rows4(point), focal::match_output{out_vec(matches)});
    CHECK(matches == std::vector<std::int64_t>{-1, -1, -1, -1});
    focal::match_anchors(focal::max_iou_matcher{}, rows4(grid_anchors), rows4(inverted), focal::match_output{out_vec(matches)});
    CHECK(matches == std::vector<std::int64_t>{-1, -1, -1, -1});
    // torchvision's Matcher (no guard): every anchor ties that 0 and becomes positive.
    focal::match_anchors(focal::matcher_presets::torchvision(), rows4(grid_anchors), rows4(point), focal::match_output{out_vec(matches)});
    CHECK(matches == std::vector<std::int64_t>{0, 0, 0, 0});
    // An inverted anchor has IoU 0 with everything.
    auto anchors = grid_anchors;
    std::swap(anchors[4], anchors[6]);  // anchor 1: x2 < x1
    const std::vector<float> gt{10, 0, 20, 10};
    focal::match_anchors(focal::max_iou_matcher{}, rows4(anchors), rows4(gt), focal::match_output{out_vec(matches)});
    CHECK(matches[1] == -1);
}

TEST_CASE("match_anchors: out-of-range thresholds and types") {
    const std::vector<float> gt{0, 0, 10, 10};
    std::vector<std::int64_t> matches(4);
    auto call = [&](const focal::max_iou_matcher& m) { focal::match_anchors(m, rows4(grid_anchors), rows4(gt), focal::match_output{out_vec(matches)}); };
    CHECK_THROWS_WITH_AS(call({.positive_iou_threshold = 1.5}), Contains("positive_iou_threshold must be in [0, 1], got 1.5"), focal::error);
    CHECK_THROWS_WITH_AS(call({.positive_iou_threshold = nan_d}), Contains("positive_iou_threshold must be in [0, 1], got nan"), focal::error);
    CHECK_THROWS_WITH_AS(call({.positive_iou_threshold = 0.5, .negative_iou_threshold = 0.6}),
                         Contains("negative_iou_threshold must be <= positive_iou_threshold (0.5), got 0.59999999999999998"), focal::error);
    CHECK_THROWS_WITH_AS(call({.negative_iou_threshold = inf_d}), Contains("negative_iou_threshold must be in [0, 1], got inf"), focal::error);
    CHECK_THROWS_WITH_AS(call({.low_quality_iou_threshold = -0.5}), Contains("low_quality_iou_threshold must be in [0, 1], got -0.5"),
                         focal::error);
    CHECK_THROWS_WITH_AS(call({.crowd_iof_threshold = 2.0}), Contains("crowd_iof_threshold must be in [0, 1], got 2"), focal::error);
    // Codes must fit the matches' type: int8 holds gt indices up to 127.
    const std::vector<float> many_gt(200 * 4, 1.0f);
    std::vector<std::int8_t> small(4);
    CHECK_THROWS_WITH_AS(focal::match_anchors(focal::max_iou_matcher{}, rows4(grid_anchors), rows4(many_gt), focal::match_output{out_vec(small)}),
                         Contains("gt_boxes must be at most min(2^24, the largest value of out.matches' type) rows, got 200"),
                         focal::error);
    // Thresholds 0 and 1 are valid: negative = positive = 0 makes every anchor positive to its argmax.
    call({.positive_iou_threshold = 0.0, .negative_iou_threshold = 0.0, .allow_low_quality_matches = false});
    CHECK(matches == std::vector<std::int64_t>{0, 0, 0, 0});
}

TEST_CASE("match_anchors: huge sizes") {
    const float cell = 0.0f;
    std::vector<std::int64_t> matches(4);
    // More than 2^24 gt boxes: the argmax travels as a float. Checked before any box is read.
    CHECK_THROWS_WITH_AS(focal::match_anchors(focal::max_iou_matcher{}, rows4(grid_anchors),
                                              focal::matrix_view<const float>(&cell, (index_t(1) << 24) + 1, 4), focal::match_output{out_vec(matches)}),
                         Contains("gt_boxes must be at most min(2^24, the largest value of out.matches' type) rows, got 16777217"),
                         focal::error);
    std::int64_t code = 0;
    CHECK_THROWS_WITH_AS(focal::match_anchors(focal::max_iou_matcher{}, focal::matrix_view<const float>(&cell, two_62, 4), rows4(grid_anchors),
                                              focal::match_output{focal::vector_view<std::int64_t>(&code, two_62)}),
                         Contains("anchors (N x 4) must be of extents whose product fits focal::index_t"), focal::error);
}

// ============================================================================ build_targets / assign_targets

TEST_CASE("build_targets: empty input") {
    const std::vector<float> none;
    const std::vector<std::int32_t> no_matches;
    const std::vector<std::int64_t> no_gt_labels;
    std::vector<std::int64_t> labels;
    std::vector<float> targets;
    CHECK(focal::build_targets(focal::delta_xywh_coder{}, vec(no_matches), rows4(none), rows4(none), vec(no_gt_labels), out_vec(labels),
                               out_rows4(targets)) == 0);
    // No ground truth: codes pass through as labels, targets 0.
    const std::vector<std::int32_t> codes{-1, -2, -1, -1};
    labels.assign(4, 7);
    targets.assign(16, 7.0f);
    CHECK(focal::build_targets(focal::delta_xywh_coder{}, vec(codes), rows4(grid_anchors), rows4(none), vec(no_gt_labels), out_vec(labels),
                               out_rows4(targets)) == 0);
    CHECK(labels == std::vector<std::int64_t>{-1, -2, -1, -1});
    CHECK(std::all_of(targets.begin(), targets.end(), [](float v) { return v == 0.0f; }));
}

TEST_CASE("build_targets: mismatched shapes") {
    const std::vector<std::int32_t> codes{0, -1, -1, -1};
    const std::vector<float> gt{0, 0, 10, 10};
    const std::vector<std::int64_t> gt_labels{1}, two_labels{1, 2};
    std::vector<std::int64_t> labels(4, 7);
    std::vector<float> targets(16, 7.0f);
    const focal::delta_xywh_coder c{};
    CHECK_THROWS_WITH_AS(focal::build_targets(c, vec(codes), focal::make_view(grid_anchors.data(), 3, 4), rows4(gt), vec(gt_labels),
                                              out_vec(labels), out_rows4(targets)),
                         Contains("anchors (one per match) must be of extent 4 in dimension 0, got [3 x 4]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::build_targets(c, vec(codes), rows4(grid_anchors), rows4(gt), vec(two_labels), out_vec(labels),
                                              out_rows4(targets)),
                         Contains("gt_labels (one per gt box) must be of extent 1 in dimension 0, got [2]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::build_targets(c, vec(codes), rows4(grid_anchors), rows4(gt), vec(gt_labels), focal::make_view(labels.data(), 3),
                                              out_rows4(targets)),
                         Contains("labels (one per anchor) must be of extent 4 in dimension 0, got [3]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::build_targets(c, vec(codes), rows4(grid_anchors), rows4(gt), vec(gt_labels), out_vec(labels),
                                              focal::make_view(targets.data(), 4, 3)),
                         Contains("box_targets must be of shape [N x 4] = [4 x 4], got [4 x 3]"), focal::error);
    CHECK(labels == std::vector<std::int64_t>(4, 7));
}

TEST_CASE("build_targets: NaN and Inf values") {
    // build_targets encodes what it is given: a NaN gt box gives NaN targets on its positives
    // (assign_targets cannot get there: match_anchors rejects non-finite gt boxes).
    const std::vector<std::int32_t> codes{0, -1, -1, -1};
    const std::vector<float> gt{0, 0, nan_f, 10};
    const std::vector<std::int64_t> gt_labels{1};
    std::vector<std::int64_t> labels(4);
    std::vector<float> targets(16, 7.0f);
    CHECK(focal::build_targets(focal::delta_xywh_coder{}, vec(codes), rows4(grid_anchors), rows4(gt), vec(gt_labels), out_vec(labels),
                               out_rows4(targets)) == 1);
    CHECK(labels == std::vector<std::int64_t>{1, -1, -1, -1});
    CHECK(std::isnan(targets[0]));
    CHECK(std::isnan(targets[2]));
    CHECK(targets[1] == 0.0f);  // dy: the y coordinates are finite
    CHECK(targets[4] == 0.0f);  // negatives: 0
}

TEST_CASE("build_targets: inverted and zero-area boxes") {
    // A positive matched to a zero-area or inverted gt gets large finite deltas (widths floored at min_size).
    const std::vector<std::int32_t> codes{0, 1, -1, -1};
    const std::vector<float> gt{5, 5, 5, 5, 20, 10, 10, 0};
    const std::vector<std::int64_t> gt_labels{0, 1};
    std::vector<std::int64_t> labels(4);
    std::vector<float> targets(16);
    CHECK(focal::build_targets(focal::delta_xywh_coder{}, vec(codes), rows4(grid_anchors), rows4(gt), vec(gt_labels), out_vec(labels),
                               out_rows4(targets)) == 2);
    CHECK(std::all_of(targets.begin(), targets.begin() + 8, [](float v) { return std::isfinite(v); }));
    CHECK(targets[2] == doctest::Approx(std::log(1e-6 / 10.0)).epsilon(1e-5));
}

TEST_CASE("build_targets: out-of-range codes and labels") {
    const std::vector<float> gt{0, 0, 10, 10};
    const std::vector<std::int64_t> gt_labels{1};
    std::vector<std::int64_t> labels(4, 7);
    std::vector<float> targets(16, 7.0f);
    auto call = [&](const std::vector<std::int32_t>& codes, const std::vector<std::int64_t>& gl) {
        return focal::build_targets(focal::delta_xywh_coder{}, vec(codes), rows4(grid_anchors), rows4(gt), vec(gl), out_vec(labels),
                                    out_rows4(targets));
    };
    CHECK_THROWS_WITH_AS(call({0, 1, -1, -1}, gt_labels), Contains("matches must be in [-2, M) = [-2, 1), got 1 at anchor 1"), focal::error);
    CHECK_THROWS_WITH_AS(call({0, -3, -1, -1}, gt_labels), Contains("matches must be in [-2, M) = [-2, 1), got -3 at anchor 1"), focal::error);
    CHECK_THROWS_WITH_AS(call({0, -1, -1, -1}, {-1}), Contains("gt_labels must be >= 0 (class indices), got -1 at gt 0"), focal::error);
    CHECK(labels == std::vector<std::int64_t>(4, 7));
    // A class the output labels' type cannot hold would be written wrapped.
    const std::vector<std::int32_t> codes{0, -1, -1, -1};
    const std::vector<std::int64_t> big{300};
    std::vector<std::int8_t> small(4, 7);
    CHECK_THROWS_WITH_AS(focal::build_targets(focal::delta_xywh_coder{}, vec(codes), rows4(grid_anchors), rows4(gt), vec(big), out_vec(small),
                                              out_rows4(targets)),
                         Contains("gt_labels must be at most the largest value of labels' type (127), got 300 at gt 0"), focal::error);
    CHECK(small == std::vector<std::int8_t>(4, 7));
    CHECK_THROWS_WITH_AS(focal::build_targets(focal::delta_xywh_coder{.ww = 0.0f}, vec(codes), rows4(grid_anchors), rows4(gt), vec(gt_labels),
                                              out_vec(labels), out_rows4(targets)),
                         Contains("focal::build_targets: weights (wx, wy, ww, wh) must be finite and > 0, got 0"), focal::error);
}

TEST_CASE("build_targets: huge sizes") {
    const float cell = 0.0f;
    const std::int32_t code = 0;
    const std::int64_t label = 0;
    std::int64_t out_label = 0;
    float out_target = 0.0f;
    CHECK_THROWS_WITH_AS(focal::build_targets(focal::delta_xywh_coder{}, focal::vector_view<const std::int32_t>(&code, two_62),
                                              focal::matrix_view<const float>(&cell, two_62, 4), focal::matrix_view<const float>(&cell, 1, 4),
                                              focal::vector_view<const std::int64_t>(&label, 1),
                                              focal::vector_view<std::int64_t>(&out_label, two_62),
                                              focal::matrix_view<float>(&out_target, two_62, 4)),
                         Contains("anchors (N x 4) must be of extents whose product fits focal::index_t, got [4611686018427387904 x 4]"),
                         focal::error);
}

TEST_CASE("assign_targets: empty input and errors from its two steps") {
    const std::vector<float> none, gt{0, 0, 10, 10};
    const std::vector<std::int64_t> gt_labels{1};
    std::vector<std::int64_t> labels;
    std::vector<float> targets;
    CHECK(focal::assign_targets(focal::max_iou_matcher{}, focal::delta_xywh_coder{}, rows4(none), rows4(gt), vec(gt_labels), out_vec(labels),
                                out_rows4(targets)) == 0);
    labels.assign(4, 7);
    targets.assign(16, 7.0f);
    const std::vector<float> nan_gt{0, 0, 10, nan_f};
    CHECK_THROWS_WITH_AS(focal::assign_targets(focal::max_iou_matcher{}, focal::delta_xywh_coder{}, rows4(grid_anchors), rows4(nan_gt),
                                               vec(gt_labels), out_vec(labels), out_rows4(targets)),
                         Contains("focal::match_anchors: gt_boxes must be finite, got nan at row 0, column 3"), focal::error);
    CHECK_THROWS_WITH_AS(focal::assign_targets(focal::max_iou_matcher{}, focal::delta_xywh_coder{}, rows4(grid_anchors), rows4(gt),
                                               vec(gt_labels), focal::make_view(labels.data(), 3), out_rows4(targets)),
                         Contains("focal::build_targets: labels (one per anchor) must be of extent 4 in dimension 0, got [3]"),
                         focal::error);
    CHECK(labels == std::vector<std::int64_t>(4, 7));
    CHECK(std::all_of(targets.begin(), targets.end(), [](float v) { return v == 7.0f; }));
}

// ============================================================================ encode_boxes / decode_boxes

TEST_CASE("encode_boxes / decode_boxes: empty input") {
    const std::vector<float> none;
    std::vector<float> out;
    focal::encode_boxes(focal::delta_xywh_coder{}, rows4(none), rows4(none), out_rows4(out));
    focal::decode_boxes(focal::delta_xywh_coder{}, rows4(none), rows4(none), out_rows4(out));
    CHECK(out.empty());
}

TEST_CASE("encode_boxes / decode_boxes: mismatched shapes") {
    const std::vector<float> boxes(8, 1.0f), one(4, 1.0f);
    std::vector<float> out(8, 7.0f);
    const focal::delta_xywh_coder c{};
    CHECK_THROWS_WITH_AS(focal::encode_boxes(c, rows4(boxes), rows4(one), out_rows4(out)),
                         Contains("focal::encode_boxes: anchors (one per row) must be of extent 2 in dimension 0, got [1 x 4]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::decode_boxes(c, rows4(boxes), rows4(boxes), focal::make_view(out.data(), 1, 4)),
                         Contains("focal::decode_boxes: out (one row per input row) must be of extent 2 in dimension 0, got [1 x 4]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::encode_boxes(c, focal::make_view(boxes.data(), 2, 3), rows4(boxes), out_rows4(out)),
                         Contains("boxes must be of extent 4 in dimension 1, got [2 x 3]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::decode_boxes(c, focal::make_view(boxes.data(), 2, 3), rows4(boxes), out_rows4(out)),
                         Contains("deltas must be of extent 4 in dimension 1, got [2 x 3]"), focal::error);
    CHECK(std::all_of(out.begin(), out.end(), [](float v) { return v == 7.0f; }));
}

TEST_CASE("encode_boxes / decode_boxes: NaN and Inf values") {
    const std::vector<float> anchor{0, 0, 10, 10}, nan_row{nan_f, 0, 10, 10};
    std::vector<float> out(4);
    const focal::delta_xywh_coder c{};
    focal::encode_boxes(c, rows4(nan_row), rows4(anchor), out_rows4(out));
    CHECK(std::isnan(out[0]));  // dx; dw = log(gw / aw) with gw NaN
    CHECK(std::isnan(out[2]));
    CHECK(out[1] == 0.0f);
    const std::vector<float> nan_delta{0, 0, nan_f, 0};
    focal::decode_boxes(c, rows4(nan_delta), rows4(anchor), out_rows4(out));
    CHECK(std::isnan(out[0]));
    CHECK(std::isnan(out[2]));
    CHECK(out[1] == 0.0f);
    CHECK(out[3] == 10.0f);
    // +inf dw is clamped to log(1000 / 16) before exp: a finite box 62.5 anchors wide.
    const std::vector<float> big{0, 0, inf_f, 0};
    focal::decode_boxes(c, rows4(big), rows4(anchor), out_rows4(out));
    CHECK(out[2] - out[0] == doctest::Approx(625.0).epsilon(1e-5));
    // -inf dw: exp(-inf) = 0, a zero-width box at the anchor's centre.
    const std::vector<float> tiny{0, 0, -inf_f, 0};
    focal::decode_boxes(c, rows4(tiny), rows4(anchor), out_rows4(out));
    CHECK(out[0] == 5.0f);
    CHECK(out[2] == 5.0f);
    CHECK_THROWS_WITH_AS(focal::decode_boxes(focal::delta_xywh_coder{.clamp = nan_f}, rows4(tiny), rows4(anchor), out_rows4(out)),
                         Contains("clamp must be finite and > 0, got nan"), focal::error);
    CHECK_THROWS_WITH_AS(focal::encode_boxes(focal::delta_xywh_coder{.wx = inf_f}, rows4(tiny), rows4(anchor), out_rows4(out)),
                         Contains("weights (wx, wy, ww, wh) must be finite and > 0, got inf"), focal::error);
}

TEST_CASE("encode_boxes / decode_boxes: inverted and zero-area boxes") {
    const std::vector<float> anchor{0, 0, 10, 10};
    std::vector<float> out(4);
    const focal::delta_xywh_coder c{};
    // Zero-width and inverted boxes (and anchors) are floored at min_size when encoding: large, finite.
    const std::vector<float> line{5, 0, 5, 10}, inverted{10, 0, 0, 10};
    focal::encode_boxes(c, rows4(line), rows4(anchor), out_rows4(out));
    CHECK(out[2] == doctest::Approx(std::log(1e-6 / 10.0)).epsilon(1e-5));
    focal::encode_boxes(c, rows4(inverted), rows4(anchor), out_rows4(out));
    CHECK(std::all_of(out.begin(), out.end(), [](float v) { return std::isfinite(v); }));
    focal::encode_boxes(c, rows4(anchor), rows4(line), out_rows4(out));
    CHECK(std::all_of(out.begin(), out.end(), [](float v) { return std::isfinite(v); }));
    // Decoding is not checked: an inverted anchor decodes to an inverted box (as torchvision).
    const std::vector<float> zero(4, 0.0f);
    focal::decode_boxes(c, rows4(zero), rows4(inverted), out_rows4(out));
    CHECK(out == std::vector<float>{10, 0, 0, 10});
    focal::decode_boxes(c, rows4(zero), rows4(line), out_rows4(out));
    CHECK(out == std::vector<float>{5, 0, 5, 10});
}

TEST_CASE("encode_boxes / decode_boxes: out-of-range parameters") {
    const std::vector<float> b{0, 0, 10, 10};
    std::vector<float> out(4);
    CHECK_THROWS_WITH_AS(focal::encode_boxes(focal::delta_xywh_coder{.wh = -1.0f}, rows4(b), rows4(b), out_rows4(out)),
                         Contains("focal::encode_boxes: weights (wx, wy, ww, wh) must be finite and > 0, got -1"), focal::error);
    CHECK_THROWS_WITH_AS(focal::decode_boxes(focal::delta_xywh_coder{.clamp = 0.0f}, rows4(b), rows4(b), out_rows4(out)),
                         Contains("clamp must be finite and > 0, got 0"), focal::error);
    CHECK_THROWS_WITH_AS(focal::encode_boxes(focal::delta_xywh_coder{.min_size = 0.0f}, rows4(b), rows4(b), out_rows4(out)),
                         Contains("min_size must be finite and > 0, got 0"), focal::error);
}

TEST_CASE("encode_boxes / decode_boxes: huge sizes") {
    const float cell = 0.0f;
    float out_cell = 0.0f;
    const focal::matrix_view<const float> huge(&cell, two_62, 4);
    CHECK_THROWS_WITH_AS(focal::encode_boxes(focal::delta_xywh_coder{}, huge, huge, focal::matrix_view<float>(&out_cell, two_62, 4)),
                         Contains("boxes must be of extents whose product fits focal::index_t, got [4611686018427387904 x 4]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::decode_boxes(focal::delta_xywh_coder{}, huge, huge, focal::matrix_view<float>(&out_cell, two_62, 4)),
                         Contains("deltas must be of extents whose product fits focal::index_t"), focal::error);
}

// ============================================================================ nms (greedy_nms)

namespace {
// Boxes 0 and 1 overlap (IoU 81 / 119 = 0.68); box 2 is apart.
const std::vector<float> nms_boxes{0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30};

template <class Policy>
std::vector<index_t> run_nms(const Policy& p, const std::vector<float>& boxes, const std::vector<float>& scores) {
    std::vector<index_t> keep(scores.size(), -9);
    keep.resize(static_cast<std::size_t>(focal::nms(p, rows4(boxes), vec(scores), out_vec(keep))));
    return keep;
}
}  // namespace

TEST_CASE("nms (greedy): empty input") {
    const std::vector<float> none;
    std::vector<index_t> keep;
    CHECK(focal::nms(focal::greedy_nms{}, rows4(none), vec(none), out_vec(keep)) == 0);
    CHECK(focal::nms(focal::greedy_nms{}, rows4(none), vec(none), focal::vector_view<index_t>{}) == 0);
    // max_detections 0 keeps nothing and needs no output.
    const std::vector<float> scores{0.9f, 0.8f, 0.7f};
    CHECK(focal::nms(focal::greedy_nms{.max_detections = 0}, rows4(nms_boxes), vec(scores), focal::vector_view<index_t>{}) == 0);
}

TEST_CASE("nms (greedy): mismatched shapes") {
    const std::vector<float> scores{0.9f, 0.8f, 0.7f}, two{0.9f, 0.8f};
    std::vector<index_t> keep(3, -9);
    CHECK_THROWS_WITH_AS(focal::nms(focal::greedy_nms{}, rows4(nms_boxes), vec(two), out_vec(keep)),
                         Contains("scores must be of extent N = 3 (one per box), got [2]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::nms(focal::greedy_nms{}, rows4(nms_boxes), vec(scores), focal::make_view(keep.data(), 2)),
                         Contains("keep must be of extent >= 3 (one per box that may be kept), got [2]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::nms(focal::greedy_nms{}, focal::make_view(nms_boxes.data(), 2, 6), vec(two), out_vec(keep)),
                         Contains("boxes (N x 4, xyxy) must be of extent 4 in dimension 1, got [2 x 6]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::nms(focal::greedy_nms{}, rows4(nms_boxes), vec(scores), focal::vector_view<index_t>(keep.data(), {3}, {0})),
                         Contains("keep must be a view whose elements do not overlap"), focal::error);
    CHECK(keep == std::vector<index_t>(3, -9));
}

TEST_CASE("nms (greedy): NaN and Inf values") {
    // A NaN score is never kept and suppresses nothing (torchvision would keep it first).
    CHECK(run_nms(focal::greedy_nms{}, nms_boxes, {nan_f, 0.8f, 0.7f}) == std::vector<index_t>{1, 2});
    CHECK(run_nms(focal::greedy_nms{}, nms_boxes, {0.9f, 0.8f, 0.7f}) == std::vector<index_t>{0, 2});
    // +-inf scores sort as numbers.
    CHECK(run_nms(focal::greedy_nms{}, nms_boxes, {0.5f, inf_f, -inf_f}) == std::vector<index_t>{1, 2});
    // A NaN or infinite box is kept and suppresses nothing.
    auto boxes = nms_boxes;
    boxes[0] = nan_f;
    CHECK(run_nms(focal::greedy_nms{}, boxes, {0.9f, 0.8f, 0.7f}) == std::vector<index_t>{0, 1, 2});
    boxes[0] = -inf_f;
    CHECK(run_nms(focal::greedy_nms{}, boxes, {0.9f, 0.8f, 0.7f}) == std::vector<index_t>{0, 1, 2});
    CHECK_THROWS_WITH_AS(run_nms(focal::greedy_nms{.iou_threshold = nan_d}, nms_boxes, {0.9f, 0.8f, 0.7f}),
                         Contains("iou_threshold must be in [0, 1], got nan"), focal::error);
}

TEST_CASE("nms (greedy): inverted and zero-area boxes") {
    // Zero-area and inverted boxes have IoU 0 with everything: kept, suppressing nothing.
    const std::vector<float> boxes{0, 0, 0, 0, 0, 0, 10, 10, 10, 10, 0, 0, 10, 10, 0, 0};
    CHECK(run_nms(focal::greedy_nms{.iou_threshold = 0.0}, boxes, {0.9f, 0.8f, 0.7f, 0.6f}) == std::vector<index_t>{0, 1, 2, 3});
}

TEST_CASE("nms (greedy): out-of-range thresholds and types") {
    const std::vector<float> scores{0.9f, 0.8f, 0.7f};
    CHECK_THROWS_WITH_AS(run_nms(focal::greedy_nms{.iou_threshold = 1.5}, nms_boxes, scores),
                         Contains("focal::nms: iou_threshold must be in [0, 1], got 1.5"), focal::error);
    CHECK_THROWS_WITH_AS(run_nms(focal::greedy_nms{.iou_threshold = -0.1}, nms_boxes, scores),
                         Contains("iou_threshold must be in [0, 1], got -0.10000000000000001"), focal::error);
    CHECK_THROWS_WITH_AS(run_nms(focal::greedy_nms{.max_detections = -2}, nms_boxes, scores),
                         Contains("max_detections must be >= 0, or -1 for no limit, got -2"), focal::error);
    // The ends of the range: 0 suppresses any overlap, 1 nothing (an IoU is never above 1).
    CHECK(run_nms(focal::greedy_nms{.iou_threshold = 0.0}, nms_boxes, scores) == std::vector<index_t>{0, 2});
    const std::vector<float> same{0, 0, 10, 10, 0, 0, 10, 10};
    CHECK(run_nms(focal::greedy_nms{.iou_threshold = 1.0}, same, {0.9f, 0.8f}) == std::vector<index_t>{0, 1});
    // keep's type must hold every box index.
    const std::vector<float> many(200 * 4, 1.0f), many_scores(200, 0.5f);
    std::vector<std::int8_t> small(200);
    CHECK_THROWS_WITH_AS(focal::nms(focal::greedy_nms{}, rows4(many), vec(many_scores), out_vec(small)),
                         Contains("keep must be of an integer type that holds the largest box index 199, got a maximum of 127"),
                         focal::error);
}

TEST_CASE("nms (greedy): huge sizes") {
    // Box indices travel as 32-bit: 2^31 boxes are refused before any is read.
    const float cell = 0.0f;
    index_t k = 0;
    const focal::matrix_view<const float> boxes(&cell, index_t(1) << 31, 4);
    const focal::vector_view<const float> scores(&cell, index_t(1) << 31);
    CHECK_THROWS_WITH_AS(focal::nms(focal::greedy_nms{}, boxes, scores, focal::vector_view<index_t>(&k, index_t(1) << 31)),
                         Contains("boxes must be at most 2147483647 rows, got 2147483648"), focal::error);
    // max_detections beyond N is no limit.
    CHECK(run_nms(focal::greedy_nms{.max_detections = index_max}, nms_boxes, {0.9f, 0.8f, 0.7f}) == std::vector<index_t>{0, 2});
}

// ============================================================================ nms (batched_nms)

namespace {
std::vector<index_t> run_batched(const focal::batched_nms& p, const std::vector<float>& boxes, const std::vector<float>& scores,
                                 const std::vector<std::int64_t>& classes) {
    std::vector<index_t> keep(scores.size(), -9);
    keep.resize(static_cast<std::size_t>(focal::nms(p, rows4(boxes), vec(scores), vec(classes), out_vec(keep))));
    return keep;
}
constexpr focal::batched_nms per_class{};
constexpr focal::batched_nms tv_mode{.mode = focal::batched_mode::torchvision};
}  // namespace

TEST_CASE("nms (batched): empty input") {
    const std::vector<float> none;
    const std::vector<std::int64_t> no_classes;
    CHECK(run_batched(per_class, none, none, no_classes).empty());
    CHECK(run_batched(tv_mode, none, none, no_classes).empty());
}

TEST_CASE("nms (batched): mismatched shapes") {
    const std::vector<float> scores{0.9f, 0.8f, 0.7f};
    CHECK_THROWS_WITH_AS(run_batched(per_class, nms_boxes, scores, {0, 1}), Contains("classes must be of extent N = 3 (one per box), got [2]"),
                         focal::error);
    std::vector<index_t> keep(3);
    CHECK_THROWS_WITH_AS(focal::nms(per_class, rows4(nms_boxes), vec(scores), focal::vector_view<const std::int64_t>(nullptr, 3), out_vec(keep)),
                         Contains("classes must be a non-null pointer when not empty"), focal::error);
}

TEST_CASE("nms (batched): NaN and Inf values") {
    const std::vector<std::int64_t> classes{0, 0, 1};
    CHECK(run_batched(per_class, nms_boxes, {nan_f, 0.8f, 0.7f}, classes) == std::vector<index_t>{1, 2});
    CHECK(run_batched(tv_mode, nms_boxes, {nan_f, 0.8f, 0.7f}, classes) == std::vector<index_t>{1, 2});
    // A NaN coordinate: per class it is one inert box; torchvision's coordinate trick (N <= 1000)
    // shifts every box by NaN, so nothing is suppressed.
    auto boxes = nms_boxes;
    boxes[8] = nan_f;  // box 2
    CHECK(run_batched(per_class, boxes, {0.9f, 0.8f, 0.7f}, classes) == std::vector<index_t>{0, 2});
    CHECK(run_batched(tv_mode, boxes, {0.9f, 0.8f, 0.7f}, classes) == std::vector<index_t>{0, 1, 2});
}

TEST_CASE("nms (batched): inverted and zero-area boxes") {
    const std::vector<float> boxes{0, 0, 0, 0, 10, 10, 0, 0, 0, 0, 10, 10};
    CHECK(run_batched(per_class, boxes, {0.9f, 0.8f, 0.7f}, {0, 0, 0}) == std::vector<index_t>{0, 1, 2});
}

TEST_CASE("nms (batched): out-of-range classes and thresholds") {
    // Any integer is a class, the extremes included: different classes never suppress each other.
    constexpr std::int64_t lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
    const std::vector<float> boxes{0, 0, 10, 10, 1, 1, 11, 11, 0, 0, 10, 10};
    CHECK(run_batched(per_class, boxes, {0.9f, 0.8f, 0.7f}, {lo, hi, lo}) == std::vector<index_t>{0, 1});
    const std::vector<std::uint64_t> unsigned_classes{0, std::numeric_limits<std::uint64_t>::max(), 0};
    std::vector<index_t> keep(3);
    const std::vector<float> scores{0.9f, 0.8f, 0.7f};
    CHECK(focal::nms(per_class, rows4(boxes), vec(scores), vec(unsigned_classes), out_vec(keep)) == 2);
    CHECK_THROWS_WITH_AS(run_batched(focal::batched_nms{.iou_threshold = 2.0}, boxes, scores, {0, 0, 0}),
                         Contains("iou_threshold must be in [0, 1], got 2"), focal::error);
    CHECK_THROWS_WITH_AS(run_batched(focal::batched_nms{.mode = static_cast<focal::batched_mode>(7)}, boxes, scores, {0, 0, 0}),
                         Contains("mode must be per_class or torchvision, got 7"), focal::error);
    CHECK_THROWS_WITH_AS(run_batched(focal::batched_nms{.torchvision_trick_max_boxes = -1}, boxes, scores, {0, 0, 0}),
                         Contains("torchvision_trick_max_boxes must be >= 0, got -1"), focal::error);
}

TEST_CASE("nms (batched): huge sizes") {
    const float cell = 0.0f;
    const std::int64_t cls = 0;
    index_t k = 0;
    const index_t n = index_t(1) << 31;
    CHECK_THROWS_WITH_AS(focal::nms(per_class, focal::matrix_view<const float>(&cell, n, 4), focal::vector_view<const float>(&cell, n),
                                    focal::vector_view<const std::int64_t>(&cls, n), focal::vector_view<index_t>(&k, n)),
                         Contains("boxes must be at most 2147483647 rows, got 2147483648"), focal::error);
}

// ============================================================================ nms (soft_nms)

namespace {
struct soft_result {
    std::vector<index_t> keep;
    std::vector<float> scores;
};
soft_result run_soft(const focal::soft_nms& p, const std::vector<float>& boxes, const std::vector<float>& scores) {
    soft_result r{std::vector<index_t>(scores.size(), -9), std::vector<float>(scores.size(), -9.0f)};
    const index_t n = focal::nms(p, rows4(boxes), vec(scores), out_vec(r.keep), out_vec(r.scores));
    r.keep.resize(static_cast<std::size_t>(n));
    r.scores.resize(static_cast<std::size_t>(n));
    return r;
}
}  // namespace

TEST_CASE("nms (soft): empty input") {
    const std::vector<float> none;
    CHECK(run_soft(focal::soft_nms{}, none, none).keep.empty());
    // Every score below score_threshold: nothing picked.
    CHECK(run_soft(focal::soft_nms{}, nms_boxes, {0.0005f, 0.0f, -1.0f}).keep.empty());
}

TEST_CASE("nms (soft): mismatched shapes") {
    const std::vector<float> scores{0.9f, 0.8f, 0.7f};
    std::vector<index_t> keep(3);
    std::vector<float> kept(1);
    CHECK_THROWS_WITH_AS(focal::nms(focal::soft_nms{}, rows4(nms_boxes), vec(scores), out_vec(keep), out_vec(kept)),
                         Contains("kept_scores must be of extent >= 3 (one per box that may be kept), got [1]"), focal::error);
}

TEST_CASE("nms (soft): NaN and Inf values") {
    const auto nan_first = run_soft(focal::soft_nms{}, nms_boxes, {nan_f, 0.8f, 0.7f});
    CHECK(nan_first.keep == std::vector<index_t>{1, 2});  // dropped, decays nothing
    CHECK(nan_first.scores == std::vector<float>{0.8f, 0.7f});
    // An infinite score decayed stays infinite (inf * w, never inf * 0 = NaN).
    const auto infinite = run_soft(focal::soft_nms{}, nms_boxes, {inf_f, inf_f, 0.7f});
    CHECK(infinite.keep == std::vector<index_t>{0, 1, 2});
    CHECK(infinite.scores == std::vector<float>{inf_f, inf_f, 0.7f});
    auto boxes = nms_boxes;
    boxes[0] = nan_f;  // box 0 inert: keeps its score, decays nothing
    const auto inert = run_soft(focal::soft_nms{}, boxes, {0.9f, 0.8f, 0.7f});
    CHECK(inert.keep == std::vector<index_t>{0, 1, 2});
    CHECK(inert.scores == std::vector<float>{0.9f, 0.8f, 0.7f});
    CHECK_THROWS_WITH_AS(run_soft(focal::soft_nms{.sigma = nan_f}, nms_boxes, {0.9f, 0.8f, 0.7f}), Contains("sigma must be finite and > 0, got nan"),
                         focal::error);
    CHECK_THROWS_WITH_AS(run_soft(focal::soft_nms{.score_threshold = inf_f}, nms_boxes, {0.9f, 0.8f, 0.7f}),
                         Contains("score_threshold must be finite and >= 0, got inf"), focal::error);
}

TEST_CASE("nms (soft): inverted and zero-area boxes") {
    const std::vector<float> boxes{0, 0, 0, 0, 10, 10, 0, 0, 0, 0, 10, 10};
    const auto r = run_soft(focal::soft_nms{}, boxes, {0.9f, 0.8f, 0.7f});
    CHECK(r.keep == std::vector<index_t>{0, 1, 2});
    CHECK(r.scores == std::vector<float>{0.9f, 0.8f, 0.7f});
}

TEST_CASE("nms (soft): out-of-range parameters and scores") {
    const std::vector<float> scores{0.9f, 0.8f, 0.7f};
    CHECK_THROWS_WITH_AS(run_soft(focal::soft_nms{.sigma = 0.0f}, nms_boxes, scores), Contains("sigma must be finite and > 0, got 0"),
                         focal::error);
    CHECK_THROWS_WITH_AS(run_soft(focal::soft_nms{.score_threshold = -1.0f}, nms_boxes, scores),
                         Contains("score_threshold must be finite and >= 0, got -1"), focal::error);
    CHECK_THROWS_WITH_AS(run_soft(focal::soft_nms{.decay = static_cast<focal::soft_decay>(5)}, nms_boxes, scores),
                         Contains("decay must be soft_decay::linear or soft_decay::gaussian, got 5"), focal::error);
    CHECK_THROWS_WITH_AS(run_soft(focal::soft_nms{.iou_threshold = 1.01}, nms_boxes, scores), Contains("iou_threshold must be in [0, 1]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(run_soft(focal::soft_nms{.max_detections = -5}, nms_boxes, scores), Contains("max_detections must be >= 0, or -1 for no limit"),
                         focal::error);
    // Negative scores and scores below the threshold are dropped, not errors.
    const auto r = run_soft(focal::soft_nms{}, nms_boxes, {-0.5f, 0.8f, 0.0001f});
    CHECK(r.keep == std::vector<index_t>{1});
}

TEST_CASE("nms (soft): huge sizes") {
    const float cell = 0.0f;
    index_t k = 0;
    float s = 0.0f;
    const index_t n = index_t(1) << 31;
    CHECK_THROWS_WITH_AS(focal::nms(focal::soft_nms{}, focal::matrix_view<const float>(&cell, n, 4), focal::vector_view<const float>(&cell, n),
                                    focal::vector_view<index_t>(&k, n), focal::vector_view<float>(&s, n)),
                         Contains("boxes must be at most 2147483647 rows, got 2147483648"), focal::error);
}

// ============================================================================ top candidates (retinanet/detail/top_candidates.hpp)

namespace {
std::vector<focal::detail::candidate> top(const std::vector<float>& logits, index_t anchors, index_t classes, float threshold, index_t k) {
    std::vector<focal::detail::candidate> out;
    focal::detail::top_candidates<focal::host_packet_t<float, true>>(focal::make_view(logits.data(), anchors, classes), threshold, k, out);
    return out;
}
}  // namespace

TEST_CASE("top_candidates: empty input, NaN and Inf logits, k out of range") {
    const std::vector<float> none;
    CHECK(top(none, 0, 3, -inf_f, 10).empty());
    CHECK(top(none, 3, 0, -inf_f, 10).empty());
    const std::vector<float> logits{1.0f, nan_f, inf_f, -inf_f, 0.5f, 2.0f};  // 2 x 3
    // NaN is never a candidate (NaN > t is false), nor is -inf (the compare is strict); +inf is the best.
    const auto all = top(logits, 2, 3, -inf_f, 100);
    REQUIRE(all.size() == 4);
    CHECK(all[0].flat == 2);
    CHECK(all[1].flat == 5);
    CHECK(all[2].flat == 0);
    CHECK(all[3].flat == 4);
    // k <= 0 gives nothing; k beyond A x K (index_t's maximum too: no 4k overflow) gives every pair.
    CHECK(top(logits, 2, 3, -inf_f, 0).empty());
    CHECK(top(logits, 2, 3, -inf_f, -5).empty());
    CHECK(top(logits, 2, 3, -inf_f, index_max).size() == 4);
    CHECK(top(logits, 2, 3, 1.5f, index_max).size() == 2);
}

// ============================================================================ postprocess

namespace {
// Two anchors (apart) and three classes; every logit -20 (score ~2e-9, below 0.05) unless set.
struct post_problem {
    index_t a = 2, k = 3;
    std::vector<float> logits = std::vector<float>(6, -20.0f), deltas = std::vector<float>(8, 0.0f);
    std::vector<float> anchors{0, 0, 10, 10, 20, 20, 30, 30};
    std::vector<index_t> per_level{2};
    focal::image_size size{40, 40};
    std::vector<float> boxes = std::vector<float>(400, -9.0f), scores = std::vector<float>(100, -9.0f);
    std::vector<std::int64_t> labels = std::vector<std::int64_t>(100, -9);

    index_t run(const focal::retinanet_postprocess& p = {}, index_t out_rows = 100, index_t out_scores = 100) {
        return focal::postprocess(p, focal::make_view<const float>(logits.data(), a, k), focal::make_view<const float>(deltas.data(), a, 4),
                                  focal::make_view<const float>(anchors.data(), a, 4), std::span<const index_t>(per_level), size,
                                  focal::detections_output{focal::make_view(boxes.data(), out_rows, 4), focal::make_view(scores.data(), out_scores),
                                                           focal::make_view(labels.data(), index_t(100))});
    }
};
}  // namespace

TEST_CASE("postprocess: empty input") {
    post_problem p;
    p.a = 0;
    p.per_level = {};
    CHECK(p.run() == 0);
    p.per_level = {0, 0};
    CHECK(p.run() == 0);
    post_problem no_classes;
    no_classes.k = 0;
    CHECK(no_classes.run() == 0);
    post_problem q;
    q.logits[1] = 3.0f;
    CHECK(q.run() == 1);
    focal::retinanet_postprocess none;
    none.max_detections = 0;
    CHECK(q.run(none, 0, 0) == 0);
    none = {};
    none.nms.max_detections = 0;  // the nested NMS's cap: capacity() 0, no output rows needed either
    CHECK(q.run(none, 0, 0) == 0);
    none = {};
    none.max_candidates_per_level = 0;
    CHECK(q.run(none) == 0);
}

TEST_CASE("postprocess: mismatched shapes") {
    post_problem p;
    const auto logits = focal::make_view<const float>(p.logits.data(), 2, 3);
    const focal::detections_output out{focal::make_view(p.boxes.data(), 100, 4), focal::make_view(p.scores.data(), 100),
                                       focal::make_view(p.labels.data(), 100)};
    const std::span<const index_t> levels(p.per_level);
    CHECK_THROWS_WITH_AS(focal::postprocess(focal::retinanet_postprocess{}, logits, focal::make_view<const float>(p.deltas.data(), 1, 4),
                                            focal::make_view<const float>(p.anchors.data(), 2, 4), levels, p.size, out),
                         Contains("deltas must be of shape [A x 4] with A = 2, got [1 x 4]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::postprocess(focal::retinanet_postprocess{}, logits, focal::make_view<const float>(p.deltas.data(), 2, 4),
                                            focal::make_view<const float>(p.anchors.data(), 2, 3), levels, p.size, out),
                         Contains("anchors must be of shape [A x 4] with A = 2, got [2 x 3]"), focal::error);
    p.per_level = {1};
    CHECK_THROWS_WITH_AS(p.run(), Contains("anchors_per_level must be counts summing to the logits' rows 2, got 1"), focal::error);
    p.per_level = {1, 2};
    CHECK_THROWS_WITH_AS(p.run(), Contains("anchors_per_level must be counts summing to the logits' rows 2, got counts exceeding it: 1 + 2"),
                         focal::error);
    p.per_level = {-1, 3};
    CHECK_THROWS_WITH_AS(p.run(), Contains("anchors_per_level must be non-negative counts, got -1"), focal::error);
    p.per_level = {2};
    CHECK_THROWS_WITH_AS(p.run({}, 99), Contains("focal::postprocess: out.boxes must be [D x 4] with D >= capacity() = 100, got [99 x 4]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(p.run({}, 100, 50),
                         Contains("out.scores and out.labels must be of length >= capacity() = 100, got [50] and [100]"), focal::error);
    // The rows needed are capacity(): a smaller nms.max_detections lowers them.
    focal::retinanet_postprocess capped;
    capped.nms.max_detections = 10;
    CHECK_THROWS_WITH_AS(p.run(capped, 9), Contains("out.boxes must be [D x 4] with D >= capacity() = 10, got [9 x 4]"), focal::error);
    CHECK_THROWS_WITH_AS(p.run(capped, 10, 9), Contains("out.scores and out.labels must be of length >= capacity() = 10, got [9] and [100]"),
                         focal::error);
    CHECK(std::all_of(p.scores.begin(), p.scores.end(), [](float v) { return v == -9.0f; }));
}

TEST_CASE("postprocess: NaN and Inf values") {
    post_problem p;
    std::fill(p.logits.begin(), p.logits.end(), nan_f);
    CHECK(p.run() == 0);  // NaN logits are never candidates
    post_problem q;
    q.logits[1] = inf_f;  // anchor 0, class 1: score 1
    REQUIRE(q.run() == 1);
    CHECK(q.scores[0] == 1.0f);
    CHECK(q.labels[0] == 1);
    CHECK(std::vector<float>(q.boxes.begin(), q.boxes.begin() + 4) == std::vector<float>{0, 0, 10, 10});
    // NaN deltas (or anchors) decode to a NaN box; NMS treats it as inert, so it is kept.
    post_problem n;
    n.logits[1] = 3.0f;
    n.logits[3] = 2.0f;  // anchor 1, class 0
    std::fill(n.deltas.begin(), n.deltas.begin() + 4, nan_f);
    REQUIRE(n.run() == 2);
    CHECK(std::all_of(n.boxes.begin(), n.boxes.begin() + 4, [](float v) { return std::isnan(v); }));
    CHECK(n.scores[0] == doctest::Approx(1.0 / (1.0 + std::exp(-3.0))));
    CHECK(std::vector<float>(n.boxes.begin() + 4, n.boxes.begin() + 8) == std::vector<float>{20, 20, 30, 30});
    // +inf dw is clamped before exp; the box is then clipped to the image.
    post_problem c;
    c.logits[1] = 3.0f;
    c.deltas[2] = inf_f;
    REQUIRE(c.run() == 1);
    CHECK(c.boxes[0] == 0.0f);
    CHECK(c.boxes[2] == 40.0f);
    focal::retinanet_postprocess bad;
    bad.score_threshold = nan_d;
    CHECK_THROWS_WITH_AS(p.run(bad), Contains("score_threshold must be in [0, 1), got nan"), focal::error);
    bad = {};
    bad.nms.iou_threshold = nan_d;
    CHECK_THROWS_WITH_AS(p.run(bad), Contains("focal::postprocess: nms.iou_threshold must be in [0, 1], got nan"), focal::error);
}

TEST_CASE("postprocess: inverted and zero-area boxes") {
    // Decoding does not check anchors: an inverted anchor gives an inverted box, a zero-area one a
    // zero-area box; both are kept (IoU 0 with everything) and clipping leaves them as they are.
    post_problem p;
    p.anchors = {10, 10, 0, 0, 25, 25, 25, 25};
    p.logits[0] = 3.0f;
    p.logits[3] = 2.0f;
    REQUIRE(p.run() == 2);
    CHECK(std::vector<float>(p.boxes.begin(), p.boxes.begin() + 8) == std::vector<float>{10, 10, 0, 0, 25, 25, 25, 25});
}

TEST_CASE("postprocess: out-of-range thresholds, sizes and label types") {
    post_problem p;
    auto expect = [&p](auto edit, const char* message) {
        focal::retinanet_postprocess bad;
        edit(bad);
        CHECK_THROWS_WITH_AS(p.run(bad), Contains(message), focal::error);
    };
    expect([](focal::retinanet_postprocess& b) { b.score_threshold = 1.0; }, "score_threshold must be in [0, 1), got 1");
    expect([](focal::retinanet_postprocess& b) { b.score_threshold = -0.5; }, "score_threshold must be in [0, 1), got -0.5");
    expect([](focal::retinanet_postprocess& b) { b.nms.iou_threshold = 1.5; }, "nms.iou_threshold must be in [0, 1], got 1.5");
    expect([](focal::retinanet_postprocess& b) { b.max_candidates_per_level = -1; }, "max_candidates_per_level must be >= 0, got -1");
    expect([](focal::retinanet_postprocess& b) { b.max_detections = -1; }, ": max_detections must be >= 0, got -1");
    expect([](focal::retinanet_postprocess& b) { b.nms.max_detections = -2; }, "nms.max_detections must be >= 0, or -1 for no limit, got -2");
    expect([](focal::retinanet_postprocess& b) { b.coder.wx = 0.0f; }, "weights (wx, wy, ww, wh) must be finite and > 0, got 0");
    expect([](focal::retinanet_postprocess& b) { b.nms.mode = static_cast<focal::batched_mode>(3); }, "nms.mode must be per_class or torchvision, got 3");
    p.size = {-1, 40};
    CHECK_THROWS_WITH_AS(p.run(), Contains("image size must be non-negative, got -1 x 40"), focal::error);
    // The labels' type must hold every class index, or labels would wrap (int8 and 200 classes).
    const index_t classes = 200;
    std::vector<float> logits(static_cast<std::size_t>(classes), -20.0f), deltas(4, 0.0f), anchors{0, 0, 10, 10}, boxes(400), scores(100);
    logits[150] = 5.0f;
    std::vector<std::int8_t> small(100);
    const std::vector<index_t> one_level{1};
    auto run_small = [&](index_t k) {
        return focal::postprocess(focal::retinanet_postprocess{}, focal::make_view<const float>(logits.data(), 1, k),
                                  focal::make_view<const float>(deltas.data(), 1, 4), focal::make_view<const float>(anchors.data(), 1, 4),
                                  std::span<const index_t>(one_level), focal::image_size{10, 10},
                                  focal::detections_output{focal::make_view(boxes.data(), 100, 4), focal::make_view(scores.data(), 100),
                                                           focal::make_view(small.data(), 100)});
    };
    CHECK_THROWS_WITH_AS(run_small(classes), Contains("out.labels must be of an integer type that holds the largest class index 199, got a maximum of 127"),
                         focal::error);
    logits[100] = 5.0f;
    CHECK(run_small(128) == 1);  // 128 classes: index 127 fits
    CHECK(small[0] == 100);
}

TEST_CASE("postprocess: huge sizes") {
    // Level counts whose sum wraps index_t back to A: refused before any level is sliced.
    post_problem p;
    p.a = 0;
    p.per_level = {index_max, index_max, 2};
    CHECK_THROWS_WITH_AS(p.run(), Contains("anchors_per_level must be counts summing to the logits' rows 0, got counts exceeding it: 0 + 9223372036854775807"),
                         focal::error);
    // max_candidates_per_level beyond A x K is no limit.
    post_problem q;
    q.logits[1] = 3.0f;
    q.logits[5] = 2.0f;
    focal::retinanet_postprocess all;
    all.max_candidates_per_level = index_max;
    CHECK(q.run(all) == 2);
    const float cell = 0.0f;
    const index_t huge = index_t(1) << 40;
    CHECK_THROWS_WITH_AS(focal::postprocess(focal::retinanet_postprocess{}, focal::matrix_view<const float>(&cell, huge, huge),
                                            focal::matrix_view<const float>(&cell, huge, 4), focal::matrix_view<const float>(&cell, huge, 4),
                                            std::span<const index_t>(q.per_level), q.size,
                                            focal::detections_output{focal::make_view(q.boxes.data(), 100, 4), focal::make_view(q.scores.data(), 100),
                                                                     focal::make_view(q.labels.data(), 100)}),
                         Contains("logits must be of extents whose product fits focal::index_t, got [1099511627776 x 1099511627776]"),
                         focal::error);
}

// ============================================================================ postprocess (batch)

namespace {
struct batch_problem {
    index_t b = 2, a = 2, k = 3, d = 100;
    std::vector<float> logits, deltas, anchors{0, 0, 10, 10, 20, 20, 30, 30}, boxes, scores;
    std::vector<std::int64_t> labels;
    std::vector<std::int32_t> counts;
    std::vector<index_t> per_level{2};
    std::vector<focal::image_size> sizes;

    explicit batch_problem(index_t images = 2)
        : b(images),
          logits(static_cast<std::size_t>(images * 6), -20.0f),
          deltas(static_cast<std::size_t>(images * 8), 0.0f),
          boxes(static_cast<std::size_t>(images * 400), -9.0f),
          scores(static_cast<std::size_t>(images * 100), -9.0f),
          labels(static_cast<std::size_t>(images * 100), -9),
          counts(static_cast<std::size_t>(images), -9),
          sizes(static_cast<std::size_t>(images), focal::image_size{40, 40}) {}
    template <class Exec = focal::exec::simd_policy>
    void run(const focal::retinanet_postprocess& p = {}, index_t delta_cols = 4, const Exec& exec = {}, index_t count_rows = -1) {
        focal::postprocess(p, focal::tensor3_view<const float>(logits.data(), b, a, k),
                           focal::tensor3_view<const float>(deltas.data(), b, a, delta_cols), focal::make_view<const float>(anchors.data(), a, 4),
                           std::span<const index_t>(per_level), std::span<const focal::image_size>(sizes),
                           focal::batch_detections_output{focal::tensor3_view<float>(boxes.data(), b, d, index_t(4)),
                                                          focal::make_view(scores.data(), b, d), focal::make_view(labels.data(), b, d),
                                                          focal::make_view(counts.data(), count_rows < 0 ? b : count_rows)},
                           exec);
    }
};
}  // namespace

TEST_CASE("postprocess (batch): empty input") {
    batch_problem none(0);
    none.run();
    none.run({}, 4, focal::exec::parallel);
    batch_problem p;
    p.run();
    CHECK(p.counts == std::vector<std::int32_t>{0, 0});  // no score above 0.05
}

TEST_CASE("postprocess (batch): mismatched shapes") {
    batch_problem p;
    p.sizes.pop_back();
    CHECK_THROWS_WITH_AS(p.run(),
                         Contains("focal::postprocess: deltas, sizes and out must be one entry per image (2), got deltas [2 x 2 x 4], 1 sizes"),
                         focal::error);
    // out.counts must have one entry per image too (nothing is written otherwise).
    batch_problem c;
    CHECK_THROWS_WITH_AS(c.run({}, 4, focal::exec::simd, 1),
                         Contains("focal::postprocess: deltas, sizes and out must be one entry per image (2), got deltas [2 x 2 x 4], 2 sizes, "
                                  "out.boxes [2 x 100 x 4], out.counts [1]"),
                         focal::error);
    CHECK(c.counts == std::vector<std::int32_t>{-9, -9});
    CHECK(std::all_of(c.scores.begin(), c.scores.end(), [](float v) { return v == -9.0f; }));
    batch_problem q;
    CHECK_THROWS_WITH_AS(q.run({}, 3), Contains("deltas and out.boxes must be of last extent 4, got [2 x 2 x 3] and [2 x 100 x 4]"), focal::error);
    q.d = 50;  // rows per image fewer than max_detections: the single-image form's error
    CHECK_THROWS_WITH_AS(q.run(), Contains("focal::postprocess: out.boxes must be [D x 4] with D >= capacity() = 100, got [50 x 4]"),
                         focal::error);
    // ... unless nms.max_detections caps the detections at 50.
    focal::retinanet_postprocess capped;
    capped.nms.max_detections = 50;
    q.logits[1] = 3.0f;
    CHECK_NOTHROW(q.run(capped));
    CHECK(q.counts == std::vector<std::int32_t>{1, 0});
}

TEST_CASE("postprocess (batch): NaN and Inf values") {
    batch_problem p;
    p.logits[1] = 3.0f;                                  // image 0: one detection
    std::fill(p.logits.begin() + 6, p.logits.end(), nan_f);  // image 1: NaN logits, none
    p.run();
    CHECK(p.counts == std::vector<std::int32_t>{1, 0});
    p.run({}, 4, focal::exec::parallel_policy{.threads = 2, .min_elements = 0});
    CHECK(p.counts == std::vector<std::int32_t>{1, 0});
}

TEST_CASE("postprocess (batch): out-of-range sizes and count types") {
    // out.counts' type must hold max_detections, or counts would wrap (int8 and 300).
    batch_problem p;
    std::vector<std::int8_t> small(2);
    std::vector<float> boxes(2 * 300 * 4), scores(2 * 300);
    std::vector<std::int64_t> labels(2 * 300);
    CHECK_THROWS_WITH_AS(focal::postprocess(focal::retinanet_postprocess::torchvision(), focal::tensor3_view<const float>(p.logits.data(), 2, 2, 3),
                                            focal::tensor3_view<const float>(p.deltas.data(), 2, 2, 4),
                                            focal::make_view<const float>(p.anchors.data(), 2, 4), std::span<const index_t>(p.per_level),
                                            std::span<const focal::image_size>(p.sizes),
                                            focal::batch_detections_output{focal::tensor3_view<float>(boxes.data(), 2, 300, 4),
                                                                           focal::make_view(scores.data(), 2, 300),
                                                                           focal::make_view(labels.data(), 2, 300), focal::make_view(small.data(), 2)}),
                         Contains("focal::postprocess: out.counts must be of an integer type that holds max_detections = 300, got a maximum of 127"),
                         focal::error);
    // A bad image size in image 1 is reported; image 0's results are written first (serial) or
    // alongside (parallel: the error is rethrown after the other images finish).
    p.logits[1] = 3.0f;
    p.sizes[1] = {-1, 40};
    CHECK_THROWS_WITH_AS(p.run(), Contains("image size must be non-negative, got -1 x 40"), focal::error);
    CHECK(p.counts[0] == 1);
    p.counts = {-9, -9};
    CHECK_THROWS_WITH_AS(p.run({}, 4, focal::exec::parallel_policy{.threads = 2, .min_elements = 0}),
                         Contains("image size must be non-negative, got -1 x 40"), focal::error);
    CHECK(p.counts[0] == 1);
}

TEST_CASE("postprocess (batch): huge sizes") {
    batch_problem p(1);
    const float cell = 0.0f;
    const index_t huge = index_t(1) << 40;
    CHECK_THROWS_WITH_AS(focal::postprocess(focal::retinanet_postprocess{}, focal::tensor3_view<const float>(&cell, 1, huge, huge),
                                            focal::tensor3_view<const float>(&cell, 1, huge, 4), focal::matrix_view<const float>(&cell, huge, 4),
                                            std::span<const index_t>(p.per_level), std::span<const focal::image_size>(p.sizes),
                                            focal::batch_detections_output{focal::tensor3_view<float>(p.boxes.data(), 1, 100, 4),
                                                                           focal::make_view(p.scores.data(), 1, 100),
                                                                           focal::make_view(p.labels.data(), 1, 100), focal::make_view(p.counts.data(), 1)},
                                            focal::exec::parallel),
                         Contains("focal::postprocess: logits must be of extents whose product fits focal::index_t, got [1 x 1099511627776 x 1099511627776]"),
                         focal::error);
}

// ============================================================================ coco_evaluate

namespace {
// One image, one category, one 10 x 10 ground-truth box.
focal::coco_ground_truth one_gt() {
    focal::coco_ground_truth gt;
    gt.images = {{1, 100, 100}};
    gt.categories = {{1, "thing"}};
    gt.annotations = {{.id = 1, .image_id = 1, .category_id = 1, .bbox = {0, 0, 10, 10}, .area = 100}};
    return gt;
}
focal::coco_detection det(focal::coco_box box, double score = 0.9, focal::coco_id image = 1, focal::coco_id category = 1) {
    return {.image_id = image, .category_id = category, .bbox = box, .score = score};
}
double ap(const focal::coco_ground_truth& gt, const std::vector<focal::coco_detection>& dets, const focal::coco_eval_params& params = {}) {
    return focal::coco_evaluate(gt, dets, params).stats[0];
}
}  // namespace

TEST_CASE("coco_evaluate: empty input") {
    // Nothing at all: no category, every stat -1.
    const auto r = focal::coco_evaluate(focal::coco_ground_truth{}, std::vector<focal::coco_detection>{});
    CHECK(r.precision.empty());
    CHECK(std::all_of(r.stats.begin(), r.stats.end(), [](double s) { return s == -1.0; }));
    // Ground truth without detections: AP and AR 0 (pycocotools' loadRes would fail on the empty list).
    const auto none = focal::coco_evaluate(one_gt(), std::vector<focal::coco_detection>{});
    CHECK(none.stats[0] == 0.0);
    CHECK(none.stats[8] == 0.0);
    // Detections without ground truth: -1 (no recall to speak of).
    auto gt = one_gt();
    gt.annotations.clear();
    CHECK(ap(gt, {det({0, 0, 10, 10})}) == -1.0);
}

TEST_CASE("coco_evaluate: mismatched ids") {
    const auto gt = one_gt();
    CHECK_THROWS_WITH_AS(ap(gt, {det({0, 0, 10, 10}, 0.9, 2)}),
                         Contains("detections[0].image_id must be the id of an image in ground_truth.images, got 2"), focal::error);
    CHECK_THROWS_WITH_AS(ap(gt, {det({0, 0, 10, 10}, 0.9, 1, 7)}),
                         Contains("detections[0].category_id must be the id of a category in ground_truth.categories, got 7"), focal::error);
    auto bad = gt;
    bad.annotations[0].image_id = 9;
    CHECK_THROWS_WITH_AS(ap(bad, {}), Contains("ground_truth.annotations[0].image_id must be the id of an image in ground_truth.images, got 9"),
                         focal::error);
    bad = gt;
    bad.annotations[0].category_id = 9;
    CHECK_THROWS_WITH_AS(ap(bad, {}),
                         Contains("ground_truth.annotations[0].category_id must be the id of a category in ground_truth.categories, got 9"),
                         focal::error);
    bad = gt;
    bad.images.push_back({1, 5, 5});
    CHECK_THROWS_WITH_AS(ap(bad, {}), Contains("ground_truth.images[1].id must be unique, got 1 again (ground_truth.images[0].id)"),
                         focal::error);
    bad = gt;
    bad.categories.push_back({1, "again"});
    CHECK_THROWS_WITH_AS(ap(bad, {}), Contains("ground_truth.categories[1].id must be unique, got 1 again"), focal::error);
}

TEST_CASE("coco_evaluate: NaN and Inf values") {
    const auto gt = one_gt();
    CHECK_THROWS_WITH_AS(ap(gt, {det({0, 0, 10, 10}, nan_d)}), Contains("detections[0].score must be finite, got nan"), focal::error);
    CHECK_THROWS_WITH_AS(ap(gt, {det({0, 0, 10, 10}, inf_d)}), Contains("detections[0].score must be finite, got inf"), focal::error);
    CHECK_THROWS_WITH_AS(ap(gt, {det({0, 0, inf_d, 10})}), Contains("detections[0].bbox must be 4 finite numbers, got [0, 0, inf, 10]"),
                         focal::error);
    auto bad = gt;
    bad.annotations[0].bbox[0] = nan_d;
    CHECK_THROWS_WITH_AS(ap(bad, {}), Contains("ground_truth.annotations[0].bbox must be 4 finite numbers, got [nan, 0, 10, 10]"), focal::error);
    bad = gt;
    bad.annotations[0].area = nan_d;
    CHECK_THROWS_WITH_AS(ap(bad, {}), Contains("ground_truth.annotations[0].area must be finite, got nan"), focal::error);
    focal::coco_eval_params params;
    params.iou_thresholds[3] = nan_d;
    CHECK_THROWS_WITH_AS(ap(gt, {}, params), Contains("params.iou_thresholds[3] must be in [0, 1], got nan"), focal::error);
    params = {};
    params.area_ranges[1].max_area = nan_d;
    CHECK_THROWS_WITH_AS(ap(gt, {}, params), Contains("params.area_ranges[1] must be a range with min_area <= max_area (no NaN), got [0, nan]"),
                         focal::error);
    params = {};
    params.recall_thresholds[0] = nan_d;
    CHECK_THROWS_WITH_AS(ap(gt, {}, params), Contains("params.recall_thresholds[0] must be in [0, 1], got nan"), focal::error);
}

TEST_CASE("coco_evaluate: inverted and zero-area boxes") {
    // pycocotools' bbIou: a zero or negative width or height gives IoU 0, so such a detection is a
    // false positive, and a zero-area ground truth is never matched.
    CHECK(focal::coco_iou({0, 0, 0, 0}, {0, 0, 0, 0}, false) == 0.0);
    CHECK(focal::coco_iou({10, 10, -10, -10}, {0, 0, 10, 10}, false) == 0.0);
    CHECK(focal::coco_iou({0, 0, 0, 10}, {0, 0, 10, 10}, true) == 0.0);
    const auto gt = one_gt();
    CHECK(ap(gt, {det({0, 0, 0, 0})}) == 0.0);
    CHECK(ap(gt, {det({10, 10, -10, -10})}) == 0.0);
    CHECK(ap(gt, {det({0, 0, 10, 10})}) == doctest::Approx(1.0));  // the valid box, for contrast
    auto flat = gt;
    flat.annotations[0].bbox = {0, 0, 0, 10};
    flat.annotations[0].area = 0;
    CHECK(ap(flat, {det({0, 0, 0, 10})}) == 0.0);
}

TEST_CASE("coco_evaluate: out-of-range parameters and queries") {
    const auto gt = one_gt();
    auto expect = [&gt](auto edit, const char* message) {
        focal::coco_eval_params p;
        edit(p);
        CHECK_THROWS_WITH_AS(ap(gt, {}, p), Contains(message), focal::error);
    };
    expect([](focal::coco_eval_params& p) { p.iou_thresholds = {1.5}; }, "params.iou_thresholds[0] must be in [0, 1], got 1.5");
    expect([](focal::coco_eval_params& p) { p.iou_thresholds.assign(33, 0.5); }, "params.iou_thresholds must be 1 to 32 values, got 33 values");
    expect([](focal::coco_eval_params& p) { p.iou_thresholds.clear(); }, "params.iou_thresholds must be 1 to 32 values, got 0 values");
    expect([](focal::coco_eval_params& p) { p.recall_thresholds = {0.5, 0.2}; },
           "params.recall_thresholds must be non-decreasing, got 0.20000000000000001 after 0.5");
    expect([](focal::coco_eval_params& p) { p.recall_thresholds.clear(); }, "params.recall_thresholds must be non-empty, got none");
    expect([](focal::coco_eval_params& p) { p.max_detections = {0}; }, "params.max_detections[0] must be in [1, 2^31], got 0");
    expect([](focal::coco_eval_params& p) { p.max_detections = {10, 1}; }, "params.max_detections must be strictly increasing, got 1 after 10");
    expect([](focal::coco_eval_params& p) { p.max_detections.clear(); }, "params.max_detections must be non-empty, got none");
    expect([](focal::coco_eval_params& p) { p.area_ranges[2].min_area = 1e6; },
           "params.area_ranges[2] must be a range with min_area <= max_area (no NaN), got [1000000, 9216]");
    expect([](focal::coco_eval_params& p) { p.area_ranges[1].label = "all"; }, "params.area_ranges[1].label must be unique, got \"all\" again");
    expect([](focal::coco_eval_params& p) { p.area_ranges.clear(); }, "params.area_ranges must be non-empty, got none");
    // Queries on the result: indices are checked; a setting params does not have gives -1.
    const auto r = focal::coco_evaluate(gt, std::vector<focal::coco_detection>{det({0, 0, 10, 10})});
    CHECK_THROWS_WITH_AS(focal::coco_summarize(r, {.category = 1}), Contains("query.category must be -1 (all) or in [0, 1), got 1"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::coco_summarize(r, {.category = -2}), Contains("query.category must be -1 (all) or in [0, 1), got -2"),
                         focal::error);
    CHECK_THROWS_WITH_AS(r.recall_at(10, 0, 0, 0), Contains("focal::coco_eval_result::recall_at: t (IoU threshold index) must be in [0, 10), got 10"),
                         focal::error);
    CHECK_THROWS_WITH_AS(r.precision_at(0, 101, 0, 0, 0), Contains("r (recall threshold index) must be in [0, 101), got 101"), focal::error);
    CHECK(focal::coco_summarize(r, {.iou_threshold = 0.3}) == -1.0);
    CHECK(focal::coco_summarize(r, {.area = "tiny"}) == -1.0);
    CHECK(focal::coco_summarize(r, {.max_detections = 7}) == -1.0);
}

TEST_CASE("coco_evaluate: huge sizes and ids") {
    const auto gt = one_gt();
    focal::coco_eval_params p;
    p.max_detections = {(index_t(1) << 31) + 1};
    CHECK_THROWS_WITH_AS(ap(gt, {}, p), Contains("params.max_detections[0] must be in [1, 2^31], got 2147483649"), focal::error);
    p.max_detections = {1, 10, index_t(1) << 31};
    const auto r_max = focal::coco_evaluate(gt, std::vector<focal::coco_detection>{det({0, 0, 10, 10})}, p);
    CHECK(focal::coco_summarize(r_max, {.max_detections = index_t(1) << 31}) == doctest::Approx(1.0));
    // Ids at both ends of int64: their span overflows any table, lookups fall back to a search.
    constexpr focal::coco_id lo = std::numeric_limits<focal::coco_id>::min(), hi = std::numeric_limits<focal::coco_id>::max();
    focal::coco_ground_truth wide;
    wide.images = {{hi, 100, 100}, {lo, 100, 100}};
    wide.categories = {{hi, "a"}, {lo, "b"}};
    wide.annotations = {{.id = hi, .image_id = lo, .category_id = hi, .bbox = {0, 0, 10, 10}, .area = 100}};
    const auto r = focal::coco_evaluate(wide, std::vector<focal::coco_detection>{det({0, 0, 10, 10}, 0.9, lo, hi), det({0, 0, 10, 10}, 0.8, hi, hi)});
    CHECK(r.image_ids == std::vector<focal::coco_id>{lo, hi});
    CHECK(r.category_ids == std::vector<focal::coco_id>{lo, hi});
    CHECK(focal::coco_summarize(r, {.iou_threshold = 0.5, .category = 1}) == doctest::Approx(1.0));
    CHECK(focal::coco_summarize(r, {.iou_threshold = 0.5, .category = 0}) == -1.0);  // category lo: no ground truth
}

// ============================================================================ COCO JSON readers

namespace {
focal::coco_ground_truth gt_from(const std::string& text) {
    std::istringstream in(text);
    return focal::read_coco_ground_truth(in);
}
std::vector<focal::coco_detection> results_from(const std::string& text) {
    std::istringstream in(text);
    return focal::read_coco_results(in);
}
const std::string image_and_category = R"("images": [{"id": 1}], "categories": [{"id": 1}])";
}  // namespace

TEST_CASE("coco JSON readers: empty input") {
    CHECK_THROWS_WITH_AS(results_from(""), Contains("focal::read_coco_results: input must be valid JSON"), focal::error);
    CHECK_THROWS_WITH_AS(gt_from(""), Contains("focal::read_coco_ground_truth: input must be valid JSON"), focal::error);
    CHECK(results_from("[]").empty());
    const auto gt = gt_from(R"({"images": [], "categories": []})");  // "annotations" may be absent
    CHECK(gt.images.empty());
    CHECK(gt.annotations.empty());
    CHECK_THROWS_WITH_AS(gt_from("{}"), Contains("images must be present (an array), got a document without \"images\""), focal::error);
    CHECK_THROWS_WITH_AS(focal::read_coco_ground_truth(std::filesystem::path("/nonexistent/gt.json")),
                         Contains("focal::read_coco_ground_truth: file must be readable, got \"/nonexistent/gt.json\""), focal::error);
}

TEST_CASE("coco JSON readers: mismatched shapes") {
    CHECK_THROWS_WITH_AS(results_from(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}])"),
                         Contains("results[0].bbox must be an array of 4 numbers [x, y, w, h], got [0,0,1]"), focal::error);
    CHECK_THROWS_WITH_AS(results_from(R"({"a": 1})"), Contains("the results must be a JSON array of detections, got {\"a\":1}"), focal::error);
    CHECK_THROWS_WITH_AS(results_from(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}])"),
                         Contains("results[0].score must be present, got an object without \"score\""), focal::error);
    CHECK_THROWS_WITH_AS(results_from("[5]"), Contains("results[0] must be a JSON object, got 5"), focal::error);
    CHECK_THROWS_WITH_AS(gt_from("[]"), Contains("the ground truth must be a JSON object with \"images\", \"categories\" and \"annotations\", got []"),
                         focal::error);
    CHECK_THROWS_WITH_AS(gt_from(R"({"images": {}, "categories": []})"), Contains("images must be an array, got {}"), focal::error);
}

TEST_CASE("coco JSON readers: NaN and Inf values") {
    // JSON has no NaN or infinity: such text, and numbers beyond double, are not valid JSON.
    CHECK_THROWS_WITH_AS(results_from(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": NaN}])"),
                         Contains("focal::read_coco_results: input must be valid JSON"), focal::error);
    CHECK_THROWS_WITH_AS(results_from(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1e400, 1], "score": 0.5}])"),
                         Contains("focal::read_coco_results: input must be valid JSON"), focal::error);
    CHECK_THROWS_WITH_AS(results_from(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": null}])"),
                         Contains("results[0].score must be a number, got null"), focal::error);
    CHECK_THROWS_WITH_AS(results_from(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}])"),
                         Contains("results[0].score must be a number, got \"high\""), focal::error);
}

TEST_CASE("coco JSON readers: inverted and zero-area boxes") {
    // Read as given (pycocotools reads them too); evaluation gives them IoU 0.
    const auto r = results_from(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, -5, 0], "score": 0.5}])");
    REQUIRE(r.size() == 1);
    CHECK(r[0].bbox == focal::coco_box{0, 0, -5, 0});
}

TEST_CASE("coco JSON readers: out-of-range values") {
    CHECK_THROWS_WITH_AS(gt_from("{" + image_and_category +
                                 R"(, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 2}]})"),
                         Contains("annotations[0].iscrowd must be 0, 1, true or false, got 2"), focal::error);
    CHECK_THROWS_WITH_AS(gt_from(R"({"images": [{"id": 1.5}], "categories": []})"), Contains("images[0].id must be an integer (64-bit), got 1.5"),
                         focal::error);
    CHECK_THROWS_WITH_AS(gt_from(R"({"images": [], "categories": [{"id": 1, "name": 5}]})"), Contains("categories[0].name must be a string, got 5"),
                         focal::error);
    CHECK_THROWS_WITH_AS(
        gt_from("{" + image_and_category +
                R"(, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0},)"
                R"( {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": false}]})"),
        Contains("annotations[1].id must be unique, got 1 again (annotations[0].id)"), focal::error);
}

TEST_CASE("coco JSON readers: huge ids") {
    CHECK_THROWS_WITH_AS(gt_from(R"({"images": [{"id": 18446744073709551615}], "categories": []})"),
                         Contains("images[0].id must be an integer (64-bit), got 18446744073709551615"), focal::error);
    CHECK_THROWS_WITH_AS(gt_from(R"({"images": [{"id": 1e300}], "categories": []})"), Contains("images[0].id must be an integer (64-bit)"),
                         focal::error);
    const auto gt = gt_from(R"({"images": [{"id": 9223372036854775807}, {"id": -9223372036854775808}], "categories": []})");
    CHECK(gt.images[0].id == std::numeric_limits<focal::coco_id>::max());
    CHECK(gt.images[1].id == std::numeric_limits<focal::coco_id>::min());
}

// ============================================================================ COCO JSON writers

TEST_CASE("coco JSON writers: empty input") {
    CHECK(focal::coco_results_to_json(std::vector<focal::coco_detection>{}).dump() == "[]");
    std::ostringstream out;
    focal::write_coco_ground_truth(out, focal::coco_ground_truth{});
    const auto back = gt_from(out.str());
    CHECK(back.images.empty());
    CHECK(back.categories.empty());
    CHECK(back.annotations.empty());
}

TEST_CASE("coco JSON writers: NaN and Inf values") {
    // JSON would get null for them, which no reader takes back: refused when writing.
    const std::vector<focal::coco_detection> dets{det({0, 0, 1, 1}), det({0, 0, 1, 1}, nan_d)};
    CHECK_THROWS_WITH_AS(focal::coco_results_to_json(dets),
                         Contains("focal::coco_results_to_json: detections[1].score must be finite (JSON has no NaN or infinity), got nan"),
                         focal::error);
    std::ostringstream out;
    CHECK_THROWS_WITH_AS(focal::write_coco_results(out, dets), Contains("detections[1].score must be finite"), focal::error);
    CHECK(out.str().empty());  // nothing written
    auto gt = one_gt();
    gt.annotations[0].bbox[2] = inf_d;
    CHECK_THROWS_WITH_AS(focal::write_coco_ground_truth(out, gt),
                         Contains("focal::coco_ground_truth_to_json: gt.annotations[0].bbox must be finite numbers (JSON has no NaN or "
                                  "infinity), got inf at index 2"),
                         focal::error);
    gt = one_gt();
    gt.annotations[0].area = -inf_d;
    CHECK_THROWS_WITH_AS(focal::coco_ground_truth_to_json(gt), Contains("gt.annotations[0].area must be finite (JSON has no NaN or infinity), got -inf"),
                         focal::error);
    CHECK(out.str().empty());
}

TEST_CASE("coco JSON writers: huge ids and inverted boxes round trip") {
    constexpr focal::coco_id lo = std::numeric_limits<focal::coco_id>::min(), hi = std::numeric_limits<focal::coco_id>::max();
    std::ostringstream out;
    focal::write_coco_results(out, std::vector<focal::coco_detection>{det({0, 0, 1, 1}, 0.5, lo, hi), det({5, 5, -3, 0}, 0.25)});
    const auto back = results_from(out.str());
    REQUIRE(back.size() == 2);
    CHECK(back[0].image_id == lo);
    CHECK(back[0].category_id == hi);
    CHECK(back[1].bbox == focal::coco_box{5, 5, -3, 0});  // written as given
}

// ============================================================================ views and adapters

TEST_CASE("views: empty input") {
    const auto none = focal::make_view(std::span<float>());
    CHECK(none.is_null());
    CHECK(focal::matrix_view<float>{}.is_null());
    std::vector<float> empty;
    const auto m = focal::make_view(std::span<float>(empty), 0, 5);
    CHECK(m.extent(0) == 0);
    CHECK(m.extent(1) == 5);
    CHECK(m.empty());
    const auto e = focal::as_eigen(m);
    CHECK(e.rows() == 0);
    CHECK(e.cols() == 5);
    const auto x = focal::as_xtensor(m);
    CHECK(x.size() == 0);
    // Empty Eigen and xtensor objects give empty views.
    Eigen::MatrixXf em(0, 3);
    const auto ev = focal::as_view(em);
    CHECK(ev.extent(0) == 0);
    CHECK(ev.extent(1) == 3);
    xt::xtensor<float, 2> xm = xt::zeros<float>({0, 3});
    const auto xv = focal::as_view(xm);
    CHECK(xv.extent(0) == 0);
    CHECK(xv.extent(1) == 3);
}

TEST_CASE("views: mismatched shapes") {
    std::vector<float> data(6);
    CHECK_THROWS_WITH_AS(focal::make_view(std::span<float>(data), 4, 2), Contains("focal::make_view: span size must be rows * cols = 4 * 2, got 6"),
                         focal::error);
    std::vector<float> two(2);
    CHECK_THROWS_WITH_AS(focal::make_view(std::span<float>(two), -1, -2), Contains("span size must be rows * cols = -1 * -2, got 2"),
                         focal::error);
    // Raw-pointer views are not checked when made (they are constexpr, noexcept and device-safe);
    // every driver checks them: see "classification_loss (labels): mismatched shapes".
    const focal::matrix_view<float> negative(data.data(), -1, 4);
    CHECK(negative.extent(0) == -1);
    CHECK_THROWS_WITH_AS(focal::as_eigen(negative), Contains("focal::as_eigen: view must be of non-negative extents, got [-1 x 4]"), focal::error);
    CHECK_THROWS_WITH_AS(focal::as_eigen(focal::vector_view<float>(data.data(), -3)), Contains("focal::as_eigen: view must be of non-negative extents, got [-3]"),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::as_xtensor(focal::matrix_view<float>(data.data(), 3, -1)),
                         Contains("focal::as_xtensor: view must be of non-negative extents, got [3 x -1]"), focal::error);
    xt::xarray<float> cube = xt::zeros<float>({2, 3, 4});
    CHECK_THROWS_WITH_AS(focal::as_view<2>(cube), Contains("focal::as_view: the xtensor expression's rank must be 2, got 3"), focal::error);
}

TEST_CASE("views: huge sizes") {
    // rows * cols wrapping to the span's size used to pass: 2^32 * 2^32 and 2^62 * 4 both wrap to 0.
    CHECK_THROWS_WITH_AS(focal::make_view(std::span<float>(), two_32, two_32),
                         Contains("span size must be rows * cols = 4294967296 * 4294967296, got 0"), focal::error);
    CHECK_THROWS_WITH_AS(focal::make_view(std::span<float>(), two_62, 4), Contains("span size must be rows * cols = 4611686018427387904 * 4, got 0"),
                         focal::error);
    float cell = 0.0f;
    const focal::matrix_view<float> huge(&cell, two_32, two_32);
    CHECK_THROWS_WITH_AS(focal::as_eigen(huge), Contains("focal::as_eigen: view must be of extents whose product fits focal::index_t"), focal::error);
    CHECK_THROWS_WITH_AS(focal::as_xtensor(huge), Contains("focal::as_xtensor: view must be of extents whose product fits focal::index_t"),
                         focal::error);
    // A zero extent does not excuse the others: [0 x 2^62 x 2^62] is refused too (size() would wrap
    // on the way to 0 in another order).
    const focal::view<float, 3> zero_first(&cell, 0, two_62, two_62);
    CHECK_THROWS_WITH_AS(focal::as_xtensor(zero_first), Contains("view must be of extents whose product fits focal::index_t, got [0 x 4611686018427387904 x 4611686018427387904]"),
                         focal::error);
}
