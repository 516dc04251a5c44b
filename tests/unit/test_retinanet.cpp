// RetinaNet wiring: the training loss (torchvision's compute_loss, every retinanet_* case, the
// normalizers, gradients against finite differences) and post-processing (torchvision's
// postprocess_detections: same boxes, scores, labels, order; edge cases; every policy agrees).
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include <doctest/doctest.h>
#include <focal/anchor/generate.hpp>
#include <focal/anchor/presets.hpp>
#include <focal/retinanet/loss.hpp>
#include <focal/retinanet/postprocess.hpp>

#include "support/fixtures.hpp"

using focal::index_t;
using focal_test::close;

namespace {

struct retinanet_case {
    index_t batch, anchors, classes, height, width;
    std::vector<index_t> per_level;
    xt::xarray<float> cls, reg, anchor_boxes;
    std::vector<xt::xarray<float>> gt_boxes, det_boxes, det_scores;
    std::vector<xt::xarray<std::int64_t>> gt_labels, det_labels;
    std::vector<focal::ground_truth<float, std::int64_t>> targets;

    retinanet_case(const focal_test::fixture_set& fx, const std::string& c) {
        const auto& p = fx.params(c);
        per_level = p.at("anchors_per_level").get<std::vector<index_t>>();
        height = p.at("image_hw")[0];
        width = p.at("image_hw")[1];
        cls = fx.array<float>(c, "cls_logits");
        reg = fx.array<float>(c, "bbox_regression");
        batch = static_cast<index_t>(cls.shape(0));
        anchors = static_cast<index_t>(cls.shape(1));
        classes = static_cast<index_t>(cls.shape(2));
        // torchvision's anchors: from the fixture when it has them, else from focal's preset
        // (itself checked against every anchors_* case).
        if (fx.manifest.at("cases").at(c).at("arrays").contains("anchors")) {
            anchor_boxes = fx.array<float>(c, "anchors");
        } else {
            const auto a = focal::make_anchors(focal::anchor_presets::torchvision(), focal::size2d{height, width});
            anchor_boxes = xt::adapt(a, std::vector<std::size_t>{a.size() / 4, 4});
        }
        REQUIRE(static_cast<index_t>(anchor_boxes.shape(0)) == anchors);
        for (index_t b = 0; b < batch; ++b) {
            const auto s = std::to_string(b);
            gt_boxes.push_back(fx.array<float>(c, "gt_boxes_" + s));
            gt_labels.push_back(fx.array<std::int64_t>(c, "gt_labels_" + s));
            det_boxes.push_back(fx.array<float>(c, "det_boxes_" + s));
            det_scores.push_back(fx.array<float>(c, "det_scores_" + s));
            det_labels.push_back(fx.array<std::int64_t>(c, "det_labels_" + s));
        }
        for (index_t b = 0; b < batch; ++b)
            targets.push_back({focal::matrix_view<const float>(gt_boxes[b].data(), {static_cast<index_t>(gt_boxes[b].shape(0)), 4}, {4, 1}),
                               focal::make_view<const std::int64_t>(gt_labels[b].data(), static_cast<index_t>(gt_labels[b].size()))});
    }
    focal::matrix_view<const float> logits(index_t b) const { return focal::make_view(cls.data() + b * anchors * classes, anchors, classes); }
    focal::matrix_view<const float> deltas(index_t b) const { return focal::make_view(reg.data() + b * anchors * 4, anchors, index_t(4)); }
    focal::matrix_view<const float> anchor_view() const { return focal::make_view(anchor_boxes.data(), anchors, index_t(4)); }
};

}  // namespace

TEST_CASE("retinanet loss equals torchvision's compute_loss within 1e-5, every retinanet_* case") {
    const focal_test::fixture_set fx(focal_test::torchvision_fixtures());
    const auto cases = fx.cases("retinanet");
    REQUIRE(!cases.empty());
    for (const auto& c : cases) {
        CAPTURE(c);
        const retinanet_case rc(fx, c);
        const auto want_cls = fx.array<float>(c, "loss_classification")(), want_box = fx.array<float>(c, "loss_box_l1")();
        const auto loss = focal::retinanet_loss<>::torchvision();
        const auto r = focal::compute_retinanet_loss(loss, focal::tensor3_view<const float>(rc.cls.data(), rc.batch, rc.anchors, rc.classes),
                                                     focal::tensor3_view<const float>(rc.reg.data(), rc.batch, rc.anchors, index_t(4)),
                                                     rc.anchor_view(), std::span<const focal::ground_truth<float, std::int64_t>>(rc.targets));
        CHECK(close(r.classification, want_cls, 1e-5));
        CHECK(close(r.box, want_box, 1e-5));
        MESSAGE(c << ": classification " << r.classification << " (torchvision " << want_cls << "), box " << r.box << " (" << want_box
                  << "), positives " << r.positives);
    }
}

TEST_CASE("retinanet postprocess equals torchvision's postprocess_detections, every retinanet_* case") {
    const focal_test::fixture_set fx(focal_test::torchvision_fixtures());
    for (const auto& c : fx.cases("retinanet")) {
        CAPTURE(c);
        const retinanet_case rc(fx, c);
        const auto p = focal::retinanet_postprocess::torchvision();
        for (index_t b = 0; b < rc.batch; ++b) {
            CAPTURE(b);
            std::vector<float> boxes(300 * 4), scores(300);
            std::vector<std::int64_t> labels(300);
            const focal::detections_output<float, std::int64_t> out{focal::make_view(boxes.data(), 300, 4), focal::make_view(scores.data(), 300),
                                                                    focal::make_view(labels.data(), 300)};
            const index_t n = focal::postprocess(p, rc.logits(b), rc.deltas(b), rc.anchor_view(), std::span<const index_t>(rc.per_level),
                                                 focal::image_size{rc.height, rc.width}, out);
            REQUIRE(n == static_cast<index_t>(rc.det_scores[b].size()));
            for (index_t i = 0; i < n; ++i) {
                CAPTURE(i);
                CHECK(labels[i] == rc.det_labels[b](i));
                CHECK(close(scores[i], rc.det_scores[b](i), 1e-6));
                for (int k = 0; k < 4; ++k) CHECK(std::abs(boxes[i * 4 + k] - rc.det_boxes[b](i, k)) <= 1e-4f);  // pixels
            }
            // Every execution policy gives the same detections.
            std::vector<float> boxes2(300 * 4), scores2(300);
            std::vector<std::int64_t> labels2(300);
            const focal::detections_output<float, std::int64_t> out2{focal::make_view(boxes2.data(), 300, 4), focal::make_view(scores2.data(), 300),
                                                                     focal::make_view(labels2.data(), 300)};
            for (int run = 0; run < 2; ++run) {
                const index_t n2 = run == 0 ? focal::postprocess(p, rc.logits(b), rc.deltas(b), rc.anchor_view(), std::span<const index_t>(rc.per_level),
                                                                 focal::image_size{rc.height, rc.width}, out2, focal::exec::scalar)
                                            : focal::postprocess(p, rc.logits(b), rc.deltas(b), rc.anchor_view(), std::span<const index_t>(rc.per_level),
                                                                 focal::image_size{rc.height, rc.width}, out2,
                                                                 focal::exec::parallel_policy{.threads = 2, .min_elements = 0});
                CHECK(n2 == n);
                CHECK(labels2 == labels);
                CHECK(scores2 == scores);
                CHECK(boxes2 == boxes);
            }
        }
    }
}

namespace {
// A small random problem in double: 2 images, 3 levels' worth of anchors, 4 classes.
struct small_problem {
    index_t batch = 2, anchors = 0, classes = 4;
    std::vector<double> anchor_boxes, cls, reg;
    std::vector<std::vector<double>> gt_boxes;
    std::vector<std::vector<std::int32_t>> gt_labels;
    std::vector<focal::ground_truth<double, std::int32_t>> targets;
    small_problem() {
        std::mt19937 rng(9);
        std::normal_distribution<double> n01(0, 1);
        for (double y = 0; y < 64; y += 8)
            for (double x = 0; x < 64; x += 8)
                for (double s : {12.0, 20.0}) anchor_boxes.insert(anchor_boxes.end(), {x - s / 2 + 4, y - s / 2 + 4, x + s / 2 + 4, y + s / 2 + 4});
        anchors = static_cast<index_t>(anchor_boxes.size() / 4);
        cls.resize(static_cast<std::size_t>(batch * anchors * classes));
        reg.resize(static_cast<std::size_t>(batch * anchors * 4));
        for (auto& v : cls) v = n01(rng) * 2 - 2;
        for (auto& v : reg) v = n01(rng) * 0.3;
        gt_boxes = {{6, 7, 22, 25, 30, 30, 50, 44}, {}};  // image 1 has no ground truth
        gt_labels = {{1, 3}, {}};
        for (index_t b = 0; b < batch; ++b)
            targets.push_back({focal::matrix_view<const double>(gt_boxes[b].data(), {static_cast<index_t>(gt_boxes[b].size() / 4), 4}, {4, 1}),
                               focal::make_view<const std::int32_t>(gt_labels[b].data(), static_cast<index_t>(gt_labels[b].size()))});
    }
    template <class BoxLoss>
    focal::retinanet_loss_value run(const focal::retinanet_loss<BoxLoss>& loss, const focal::retinanet_gradients<double>& g = {},
                                    focal::retinanet_loss_state* state = nullptr) const {
        return focal::compute_retinanet_loss(loss, focal::tensor3_view<const double>(cls.data(), batch, anchors, classes),
                                             focal::tensor3_view<const double>(reg.data(), batch, anchors, index_t(4)),
                                             focal::make_view<const double>(anchor_boxes.data(), anchors, 4),
                                             std::span<const focal::ground_truth<double, std::int32_t>>(targets), g, state);
    }
};
}  // namespace

TEST_CASE("retinanet loss: normalizers as documented, gradients equal finite differences") {
    small_problem p;
    auto loss = focal::retinanet_loss<focal::smooth_l1_loss>{};
    loss.box.beta = 0.11f;
    const auto per_image = p.run(loss);
    REQUIRE(per_image.positives > 0);
    // Image 1 has no ground truth: every anchor negative, normalizer max(1, 0) = 1 there.
    const double cls1 = focal::classification_loss(loss.classification,
                                                   focal::matrix_view<const double>(p.cls.data() + p.anchors * p.classes, {p.anchors, p.classes}, {p.classes, 1}),
                                                   focal::make_view(std::vector<std::int32_t>(static_cast<std::size_t>(p.anchors), -1).data(), p.anchors));
    loss.normalizer = focal::loss_normalizer::batch_plus_one;
    const auto plus_one = p.run(loss);
    // batch_plus_one divides the batch sum by P + B; per_image divides image i by B max(1, P_i).
    const double image0_cls_sum = (per_image.classification - cls1 / 2.0) * 2.0 * static_cast<double>(per_image.positives);
    CHECK(close(plus_one.classification, (image0_cls_sum + cls1) / static_cast<double>(per_image.positives + 2), 1e-12));
    loss.normalizer = focal::loss_normalizer::batch_ema;
    focal::retinanet_loss_state state;
    const auto ema = p.run(loss, {}, &state);
    CHECK(state.ema == doctest::Approx(0.9 * 100 + 0.1 * static_cast<double>(per_image.positives)));
    CHECK(close(ema.classification, (image0_cls_sum + cls1) / state.ema, 1e-12));
    CHECK_THROWS_AS(p.run(loss), focal::error);  // batch_ema without a state

    // Gradients of classification + box against central differences.
    loss.normalizer = focal::loss_normalizer::per_image;
    std::vector<double> g_cls(p.cls.size()), g_reg(p.reg.size());
    p.run(loss, {focal::tensor3_view<double>(g_cls.data(), p.batch, p.anchors, p.classes), focal::tensor3_view<double>(g_reg.data(), p.batch, p.anchors, index_t(4))});
    auto total = [&](const small_problem& q) {
        const auto r = q.run(loss);
        return r.classification + r.box;
    };
    // Central difference of the total loss in one element of cls (or reg); FD rounding is ~eps |loss| / h.
    auto check_fd = [&](std::vector<double> small_problem::*values, std::size_t e, double grad) {
        auto moved = p;
        const double h = 1e-5, x = (p.*values)[e];
        (moved.*values)[e] = x + h;
        const double up = total(moved);
        (moved.*values)[e] = x - h;
        const double down = total(moved);
        CAPTURE(e);
        CAPTURE(grad);
        CAPTURE((up - down) / (2 * h));
        CHECK(close(grad, (up - down) / (2 * h), 1e-5, 10 * DBL_EPSILON * std::abs(up) / h));
    };
    for (std::size_t e = 0; e < p.cls.size(); e += 37) check_fd(&small_problem::cls, e, g_cls[e]);
    int box_checked = 0;
    for (std::size_t e = 0; e < p.reg.size(); ++e) {
        if (g_reg[e] == 0.0) continue;  // not a positive anchor
        check_fd(&small_problem::reg, e, g_reg[e]);
        ++box_checked;
    }
    CHECK(box_checked > 0);
}

TEST_CASE("loss normalizers from counts: torchvision's, detectron2's and Detectron's formulas, also for externally reduced counts") {
    using kind = focal::loss_normalizer;
    double ema = 100.0;
    // Three images with 0, 7 and 2 positives.
    CHECK(focal::batch_normalizer(kind::per_image, 9, 3, 0.9, ema) == 0.0);
    CHECK(ema == 100.0);  // only batch_ema moves it
    CHECK(focal::image_normalizer(kind::per_image, 0, 3, 0.0) == 3.0);  // B max(1, P_i)
    CHECK(focal::image_normalizer(kind::per_image, 7, 3, 0.0) == 21.0);
    CHECK(focal::batch_normalizer(kind::batch_plus_one, 9, 3, 0.9, ema) == 12.0);  // P + B
    CHECK(focal::image_normalizer(kind::batch_plus_one, 7, 3, 12.0) == 12.0);
    CHECK(focal::batch_normalizer(kind::batch_ema, 9, 3, 0.9, ema) == doctest::Approx(0.9 * 100.0 + 0.1 * 9.0).epsilon(1e-15));
    CHECK(ema == doctest::Approx(90.9).epsilon(1e-15));
    CHECK(focal::batch_normalizer(kind::batch_ema, 0, 3, 0.9, ema) == doctest::Approx(0.9 * 90.9 + 0.1 * 1.0).epsilon(1e-15));  // max(1, P)
    // Counts summed over 4 processes of 2 images each: the same formulas on the totals.
    CHECK(focal::batch_normalizer(kind::batch_plus_one, 30, 8, 0.9, ema) == 38.0);
}

// Two processes with one image each, counts summed through retinanet_loss_state::sum_counts: the
// mean of their losses and their gradients over 2 equal the one-process loss and gradients of the
// two-image batch, for every normalizer; batch_ema's running value is the whole batch's.
TEST_CASE("retinanet loss split over processes with summed counts equals the whole batch's") {
    small_problem p;
    REQUIRE(p.batch == 2);
    const auto elements = [&](index_t per_anchor) { return static_cast<std::size_t>(p.anchors * per_anchor); };
    for (const auto kind : {focal::loss_normalizer::per_image, focal::loss_normalizer::batch_ema, focal::loss_normalizer::batch_plus_one}) {
        CAPTURE(static_cast<int>(kind));
        auto loss = focal::retinanet_loss<focal::smooth_l1_loss>{};
        loss.normalizer = kind;
        std::vector<double> g_cls(p.cls.size()), g_reg(p.reg.size());
        focal::retinanet_loss_state whole_state;
        const auto whole = p.run(loss, {focal::tensor3_view<double>(g_cls.data(), p.batch, p.anchors, p.classes),
                                        focal::tensor3_view<double>(g_reg.data(), p.batch, p.anchors, index_t(4))},
                                 &whole_state);
        // Each process's {positives, images}, found by a first pass; sum_counts returns their sums.
        std::int64_t positives[2] = {};
        const auto one_image = [&](index_t i, focal::retinanet_loss_state* state, double* gc, double* gr) {
            const focal::retinanet_gradients<double> g{focal::tensor3_view<double>(gc, 1, p.anchors, p.classes), focal::tensor3_view<double>(gr, 1, p.anchors, index_t(4))};
            return focal::compute_retinanet_loss(loss, focal::tensor3_view<const double>(p.cls.data() + i * elements(p.classes), 1, p.anchors, p.classes),
                                                 focal::tensor3_view<const double>(p.reg.data() + i * elements(4), 1, p.anchors, index_t(4)),
                                                 focal::make_view<const double>(p.anchor_boxes.data(), p.anchors, 4),
                                                 std::span<const focal::ground_truth<double, std::int32_t>>(&p.targets[static_cast<std::size_t>(i)], 1), g,
                                                 state);
        };
        std::vector<double> scratch_c(elements(p.classes)), scratch_r(elements(4));
        for (index_t i = 0; i < 2; ++i) {
            focal::retinanet_loss_state counting;
            positives[i] = one_image(i, &counting, scratch_c.data(), scratch_r.data()).positives;
        }
        double cls_mean = 0, box_mean = 0;
        std::vector<double> split_cls(p.cls.size()), split_reg(p.reg.size());
        for (index_t i = 0; i < 2; ++i) {
            focal::retinanet_loss_state state;
            state.processes = 2;
            int calls = 0;
            state.sum_counts = [&](std::span<std::int64_t, 2> counts) {
                CHECK(counts[0] == positives[i]);
                CHECK(counts[1] == 1);
                counts[0] = positives[0] + positives[1], counts[1] = 2;
                ++calls;
            };
            const auto r = one_image(i, &state, split_cls.data() + i * elements(p.classes), split_reg.data() + i * elements(4));
            CHECK(calls == 1);
            CHECK(r.positives == positives[i]);  // this process's own
            cls_mean += r.classification / 2, box_mean += r.box / 2;
            if (kind == focal::loss_normalizer::batch_ema) CHECK(state.ema == doctest::Approx(whole_state.ema).epsilon(1e-15));
        }
        CHECK(close(cls_mean, whole.classification, 1e-12));
        CHECK(close(box_mean, whole.box, 1e-12));
        for (std::size_t e = 0; e < g_cls.size(); ++e) REQUIRE(close(split_cls[e] / 2, g_cls[e], 1e-12));
        for (std::size_t e = 0; e < g_reg.size(); ++e) REQUIRE(close(split_reg[e] / 2, g_reg[e], 1e-12));
    }
    // A sum_counts that returns less than this process's own counts is an error.
    auto loss = focal::retinanet_loss<focal::smooth_l1_loss>{};
    focal::retinanet_loss_state state;
    state.sum_counts = [](std::span<std::int64_t, 2> counts) { counts[1] = 0; };
    CHECK_THROWS_WITH_AS(p.run(loss, {}, &state), doctest::Contains("state->sum_counts"), focal::error);
    state.sum_counts = [](std::span<std::int64_t, 2>) {};
    state.processes = 0;
    CHECK_THROWS_WITH_AS(p.run(loss, {}, &state), doctest::Contains("state->processes"), focal::error);
}

TEST_CASE("postprocess edge cases: no candidates, empty levels, score threshold 0, bad input") {
    const index_t a = 6, k = 3;
    std::vector<float> logits(a * k, -20.0f), deltas(a * 4, 0.0f), anchors;
    for (index_t i = 0; i < a; ++i) anchors.insert(anchors.end(), {float(i * 10), 0, float(i * 10 + 8), 8});
    std::vector<index_t> per_level = {4, 0, 2};
    std::vector<float> boxes(100 * 4), scores(100);
    std::vector<std::int32_t> labels(100);
    const focal::detections_output<float, std::int32_t> out{focal::make_view(boxes.data(), 100, 4), focal::make_view(scores.data(), 100),
                                                            focal::make_view(labels.data(), 100)};
    auto run = [&](const focal::retinanet_postprocess& p) {
        return focal::postprocess(p, focal::make_view(logits.data(), a, k), focal::make_view(deltas.data(), a, 4),
                                  focal::make_view(anchors.data(), a, 4), std::span<const index_t>(per_level), focal::image_size{8, 60}, out);
    };
    CHECK(run(focal::retinanet_postprocess{}) == 0);  // every score ~2e-9 < 0.05
    logits[5 * k + 2] = 3.0f;                         // anchor 5 (level 2), class 2
    logits[1 * k + 0] = 0.5f;
    CHECK(run(focal::retinanet_postprocess{}) == 2);
    CHECK(labels[0] == 2);
    CHECK(scores[0] == doctest::Approx(1.0 / (1.0 + std::exp(-3.0))));
    CHECK(boxes[0] == 50.0f);
    CHECK(boxes[2] == 58.0f);
    CHECK(labels[1] == 0);
    // Threshold 0 keeps every pair (sigmoid(-20) > 0), then class-aware NMS of disjoint boxes.
    focal::retinanet_postprocess all;
    all.score_threshold = 0.0;
    CHECK(run(all) == a * k);
    // Boxes are clipped to the image (width 60): anchor 5 decoded with a large dw.
    deltas[5 * 4 + 2] = 2.0f;
    run(focal::retinanet_postprocess{});
    CHECK(boxes[2] == 60.0f);
    // Bad input.
    per_level = {4, 1};
    CHECK_THROWS_AS(run(focal::retinanet_postprocess{}), focal::error);
    per_level = {6};
    focal::retinanet_postprocess bad;
    bad.score_threshold = 1.0;
    CHECK_THROWS_AS(run(bad), focal::error);
    bad = {};
    bad.max_detections = 101;  // more than the output holds
    CHECK_THROWS_AS(run(bad), focal::error);
    // NaN logits are never candidates.
    std::fill(logits.begin(), logits.end(), std::nanf(""));
    CHECK(run(focal::retinanet_postprocess{}) == 0);
}

TEST_CASE("batch postprocess equals postprocess image by image, under every policy") {
    const focal_test::fixture_set fx(focal_test::torchvision_fixtures());
    for (const auto& c : fx.cases("retinanet")) {
        CAPTURE(c);
        const retinanet_case rc(fx, c);
        const auto p = focal::retinanet_postprocess::torchvision();
        const index_t d = p.max_detections;
        std::vector<focal::image_size> sizes(static_cast<std::size_t>(rc.batch), focal::image_size{rc.height, rc.width});
        std::vector<float> boxes(static_cast<std::size_t>(rc.batch * d * 4)), scores(static_cast<std::size_t>(rc.batch * d));
        std::vector<std::int64_t> labels(scores.size());
        std::vector<std::int32_t> counts(static_cast<std::size_t>(rc.batch));
        auto run = [&](const auto& exec) {
            focal::postprocess(p, focal::tensor3_view<const float>(rc.cls.data(), rc.batch, rc.anchors, rc.classes),
                               focal::tensor3_view<const float>(rc.reg.data(), rc.batch, rc.anchors, index_t(4)), rc.anchor_view(),
                               std::span<const index_t>(rc.per_level), std::span<const focal::image_size>(sizes),
                               focal::batch_detections_output{focal::tensor3_view<float>(boxes.data(), rc.batch, d, index_t(4)),
                                                              focal::make_view(scores.data(), rc.batch, d),
                                                              focal::make_view(labels.data(), rc.batch, d),
                                                              focal::make_view(counts.data(), rc.batch)},
                               exec);
        };
        for (int policy = 0; policy < 2; ++policy) {
            if (policy == 0) run(focal::exec::simd);
            else run(focal::exec::parallel_policy{.threads = 2, .min_elements = 0});
            for (index_t b = 0; b < rc.batch; ++b) {
                CHECK(counts[b] == static_cast<std::int32_t>(rc.det_scores[b].size()));
                for (index_t i = 0; i < counts[b]; ++i) {
                    CHECK(labels[b * d + i] == rc.det_labels[b](i));
                    CHECK(close(scores[b * d + i], rc.det_scores[b](i), 1e-6));
                }
            }
        }
    }
}

TEST_CASE("retinanet loss checks everything before writing: labels >= K, overlapping gradient images") {
    small_problem p;
    auto loss = focal::retinanet_loss<>{};
    loss.normalizer = focal::loss_normalizer::batch_ema;
    focal::retinanet_loss_state state;
    std::vector<double> g_cls(p.cls.size(), 7.0), g_reg(p.reg.size(), 7.0);
    const focal::retinanet_gradients<double> grads{focal::tensor3_view<double>(g_cls.data(), p.batch, p.anchors, p.classes),
                                                   focal::tensor3_view<double>(g_reg.data(), p.batch, p.anchors, index_t(4))};
    p.gt_labels[0][1] = static_cast<std::int32_t>(p.classes);  // == K
    try {
        p.run(loss, grads, &state);
        FAIL("expected focal::error");
    } catch (const focal::error& e) {
        const std::string m = e.what();
        CHECK(m.find("targets[0].labels") != std::string::npos);
        CHECK(m.find("ground-truth box 1") != std::string::npos);
    }
    CHECK(state.ema == 100.0);                                 // untouched
    CHECK(g_cls == std::vector<double>(p.cls.size(), 7.0));    // untouched
    p.gt_labels[0][1] = 3;
    // Both images' gradients in the same memory (batch stride 0) would overwrite each other.
    const focal::retinanet_gradients<double> shared{focal::tensor3_view<double>(g_cls.data(), {p.batch, p.anchors, p.classes}, {0, p.classes, 1}), {}};
    CHECK_THROWS_AS(p.run(loss, shared, &state), focal::error);
}

TEST_CASE("batch postprocess rejects deltas or boxes whose last extent is not 4") {
    const index_t b = 2, a = 3, k = 2, d = 100;
    std::vector<float> logits(b * a * k, 0.0f), deltas(b * a * 4, 0.0f), anchors(a * 4, 1.0f), boxes(b * d * 4), scores(b * d);
    std::vector<std::int64_t> labels(b * d);
    std::vector<std::int32_t> counts(b);
    std::vector<index_t> per_level = {a};
    std::vector<focal::image_size> sizes(b, focal::image_size{10, 10});
    auto run = [&](index_t delta_cols, index_t box_cols) {
        focal::postprocess(focal::retinanet_postprocess{}, focal::tensor3_view<const float>(logits.data(), b, a, k),
                           focal::tensor3_view<const float>(deltas.data(), b, a, delta_cols), focal::make_view<const float>(anchors.data(), a, 4),
                           std::span<const index_t>(per_level), std::span<const focal::image_size>(sizes),
                           focal::batch_detections_output{focal::tensor3_view<float>(boxes.data(), b, d, box_cols),
                                                          focal::make_view(scores.data(), b, d), focal::make_view(labels.data(), b, d),
                                                          focal::make_view(counts.data(), b)});
    };
    CHECK_NOTHROW(run(4, 4));
    CHECK_THROWS_WITH_AS(run(2, 4), "focal::postprocess: deltas and out.boxes must be of last extent 4, got [2 x 3 x 2] and [2 x 100 x 4]",
                         focal::error);
    CHECK_THROWS_WITH_AS(run(4, 2), "focal::postprocess: deltas and out.boxes must be of last extent 4, got [2 x 3 x 4] and [2 x 100 x 2]",
                         focal::error);
}

TEST_CASE("retinanet_postprocess::capacity(): max_detections, capped by a smaller nms.max_detections") {
    focal::retinanet_postprocess p;
    CHECK(p.capacity() == 100);
    CHECK(p.nms.max_detections == -1);
    CHECK(focal::retinanet_postprocess::torchvision().capacity() == 300);
    p.nms.max_detections = 5;
    CHECK(p.capacity() == 5);
    p.nms.max_detections = 100;
    CHECK(p.capacity() == 100);
    p.nms.max_detections = 500;
    CHECK(p.capacity() == 100);
    p.nms.max_detections = 0;
    CHECK(p.capacity() == 0);
    p.nms.max_detections = -1;
    p.max_detections = 0;
    CHECK(p.capacity() == 0);
    p.max_detections = 7;
    CHECK(p.capacity() == 7);

    // Six disjoint anchors x 3 classes, every score sigmoid(2..): 18 detections survive NMS.
    const index_t a = 6, k = 3;
    std::vector<float> logits(a * k), deltas(a * 4, 0.0f), anchors;
    for (index_t i = 0; i < a * k; ++i) logits[i] = 2.0f + 0.1f * static_cast<float>(i);
    for (index_t i = 0; i < a; ++i) anchors.insert(anchors.end(), {float(i * 10), 0, float(i * 10 + 8), 8});
    const std::vector<index_t> per_level = {4, 2};
    auto run = [&](const focal::retinanet_postprocess& q, index_t d, std::vector<float>& scores, std::vector<std::int32_t>& labels,
                   const auto& exec) {
        std::vector<float> boxes(static_cast<std::size_t>(d * 4));
        scores.assign(static_cast<std::size_t>(d), -1.0f);
        labels.assign(static_cast<std::size_t>(d), -1);
        return focal::postprocess(q, focal::make_view<const float>(logits.data(), a, k), focal::make_view<const float>(deltas.data(), a, 4),
                                  focal::make_view<const float>(anchors.data(), a, 4), std::span<const index_t>(per_level),
                                  focal::image_size{8, 60},
                                  focal::detections_output{focal::make_view(boxes.data(), d, 4), focal::make_view(scores.data(), d),
                                                           focal::make_view(labels.data(), d)},
                                  exec);
    };
    std::vector<float> all_scores, scores;
    std::vector<std::int32_t> all_labels, labels;
    REQUIRE(run(focal::retinanet_postprocess{}, 100, all_scores, all_labels, focal::exec::simd) == a * k);
    for (const index_t cap : {index_t(0), index_t(1), index_t(5), index_t(17)}) {
        CAPTURE(cap);
        focal::retinanet_postprocess q;
        q.nms.max_detections = cap;
        REQUIRE(q.capacity() == cap);
        // An output of capacity() rows is enough, and the best `cap` detections are written.
        CHECK(run(q, cap, scores, labels, focal::exec::scalar) == cap);
        CHECK(std::equal(scores.begin(), scores.end(), all_scores.begin()));
        CHECK(std::equal(labels.begin(), labels.end(), all_labels.begin()));
        CHECK(run(q, cap, scores, labels, focal::exec::parallel_policy{.threads = 2, .min_elements = 0}) == cap);
        CHECK(std::equal(scores.begin(), scores.end(), all_scores.begin()));
        // max_detections caps as well, whichever is smaller
        q.max_detections = 3;
        CHECK(run(q, 100, scores, labels, focal::exec::simd) == std::min<index_t>(cap, 3));
    }
    // Fewer rows than capacity() is an error that names max_detections.
    focal::retinanet_postprocess q;
    q.nms.max_detections = 5;
    CHECK_THROWS_WITH_AS(run(q, 4, scores, labels, focal::exec::simd),
                         "focal::postprocess: out.boxes must be [D x 4] with D >= capacity() = 5, got [4 x 4]", focal::error);

    // The batch form: counts capped too, D = capacity() rows per image.
    const index_t b = 2, d = 4;
    std::vector<float> batch_logits, batch_deltas;
    for (index_t i = 0; i < b; ++i) {
        batch_logits.insert(batch_logits.end(), logits.begin(), logits.end());
        batch_deltas.insert(batch_deltas.end(), deltas.begin(), deltas.end());
    }
    std::vector<float> boxes(b * d * 4), batch_scores(b * d);
    std::vector<std::int32_t> batch_labels(b * d);
    std::vector<std::int64_t> counts(b, -1);
    const std::vector<focal::image_size> sizes(b, focal::image_size{8, 60});
    q.nms.max_detections = d;
    focal::postprocess(q, focal::tensor3_view<const float>(batch_logits.data(), b, a, k),
                       focal::tensor3_view<const float>(batch_deltas.data(), b, a, index_t(4)),
                       focal::make_view<const float>(anchors.data(), a, 4), std::span<const index_t>(per_level),
                       std::span<const focal::image_size>(sizes),
                       focal::batch_detections_output{focal::tensor3_view<float>(boxes.data(), b, d, index_t(4)),
                                                      focal::make_view(batch_scores.data(), b, d),
                                                      focal::make_view(batch_labels.data(), b, d), focal::make_view(counts.data(), b)},
                       focal::exec::parallel_policy{.threads = 2, .min_elements = 0});
    CHECK(counts == std::vector<std::int64_t>{d, d});
    for (index_t i = 0; i < b; ++i)
        for (index_t j = 0; j < d; ++j) {
            CHECK(batch_scores[i * d + j] == all_scores[j]);
            CHECK(batch_labels[i * d + j] == all_labels[j]);
        }
}
