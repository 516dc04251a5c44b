// Matcher and target builder: torchvision parity on every match_* fixture case (identical codes,
// bit-identical best IoU where the fixture has the IoU matrix), a brute-force reference written
// from torchvision's Matcher source (N x M IoU matrix, torch.max first-index ties, low-quality
// matches with ties), edge cases, execution policies, layouts and errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <focal/anchor/generate.hpp>
#include <focal/anchor/presets.hpp>
#include <focal/assign/match.hpp>
#include <focal/assign/max_iou_matcher.hpp>
#include <focal/assign/targets.hpp>
#include <focal/box/iou.hpp>
#include <focal/coder/box_coding.hpp>
#include <focal/coder/delta_xywh.hpp>
#include <focal/loss/box_regression_loss.hpp>
#include <focal/loss/classification_loss.hpp>
#include <focal/loss/reduction.hpp>
#include <focal/loss/sigmoid_focal.hpp>
#include <focal/loss/smooth_l1.hpp>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/fixtures.hpp"
#include "support/matcher_cases.hpp"

using focal::index_t;
using boxes = std::vector<float>;  // row-major n x 4
using focal_test_support::random_boxes;
using codes = std::vector<std::int64_t>;

namespace {

index_t rows(const boxes& b) { return static_cast<index_t>(b.size() / 4); }
focal::matrix_view<const float> view(const boxes& b) { return {b.data(), rows(b), 4}; }
focal::box4<float> box_at(const boxes& b, index_t i) { return {{b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]}}; }

// torchvision's Matcher, transcribed over an explicit IoU matrix, plus focal's documented extensions.
codes reference_match(const focal::max_iou_matcher& m, const boxes& anchors, const boxes& gt, const boxes& crowd = {}) {
    const index_t n = rows(anchors), g = rows(gt);
    codes out(static_cast<std::size_t>(n), focal::background_label);
    std::vector<std::vector<float>> iou(static_cast<std::size_t>(g), std::vector<float>(static_cast<std::size_t>(n)));
    auto overlap = [&](const focal::box4<float>& a, const focal::box4<float>& b) {
        return m.plus_one ? focal::detail::overlap<true>{}.iou(
                                a, b, focal::detail::overlap<true>{}.area(a),
                                focal::detail::overlap<true>{}.area(b))
                          : focal::iou(a, b);
    };
    for (index_t j = 0; j < g; ++j)
        for (index_t i = 0; i < n; ++i) iou[j][i] = overlap(box_at(gt, j), box_at(anchors, i));
    // Thresholds compared in float, as torchvision compares its float IoU tensor with a Python number.
    const auto positive = static_cast<float>(m.positive_iou_threshold), negative = static_cast<float>(m.negative_iou_threshold);
    const auto crowd_iof = static_cast<float>(m.crowd_iof_threshold), low_quality = static_cast<float>(m.low_quality_iou_threshold);
    std::vector<float> best(static_cast<std::size_t>(n), 0.0f);
    std::vector<std::int64_t> arg(static_cast<std::size_t>(n), 0);
    for (index_t i = 0; i < n; ++i) {
        if (g == 0) continue;
        best[i] = iou[0][i];
        for (index_t j = 1; j < g; ++j)
            if (iou[j][i] > best[i]) best[i] = iou[j][i], arg[i] = j;  // torch.max: first index on ties
        out[i] = best[i] >= positive ? arg[i] : (best[i] >= negative ? focal::ignored_label : focal::background_label);
    }
    for (index_t i = 0; i < n; ++i) {  // crowd: negatives near a crowd box become ignored
        const auto a = box_at(anchors, i);
        const float area = m.plus_one ? focal::detail::overlap<true>{}.area(a) : focal::area(a);
        for (index_t c = 0; c < rows(crowd) && out[i] == focal::background_label; ++c) {
            const float inter = m.plus_one
                                    ? focal::detail::overlap<true>{}.intersection(a, box_at(crowd, c))
                                    : focal::intersection_area(a, box_at(crowd, c));
            if (area > 0 && inter / area > crowd_iof) out[i] = focal::ignored_label;
        }
    }
    if (m.allow_low_quality_matches)
        for (index_t j = 0; j < g; ++j) {
            const float highest = *std::max_element(iou[j].begin(), iou[j].end());
            if (m.zero_iou_guard && highest == 0) continue;
            for (index_t i = 0; i < n; ++i)
                if (iou[j][i] == highest && best[i] >= low_quality) out[i] = arg[i];
        }
    return out;
}

template <class Exec>
codes run(const focal::max_iou_matcher& m, const boxes& anchors, const boxes& gt, const Exec& exec,
          const boxes& crowd = {}) {
    codes out(static_cast<std::size_t>(rows(anchors)), 99);
    const focal::matrix_view<const float> c = crowd.empty() ? focal::matrix_view<const float>{} : view(crowd);
    focal::match_anchors(m, view(anchors), view(gt), c, focal::match_output{focal::make_view(out.data(), rows(anchors))}, exec);
    return out;
}

// Every policy gives the same codes; returns them.
codes run_all(const focal::max_iou_matcher& m, const boxes& anchors, const boxes& gt, const boxes& crowd = {}) {
    const codes s = run(m, anchors, gt, focal::exec::scalar, crowd);
    CHECK(run(m, anchors, gt, focal::exec::simd, crowd) == s);
    CHECK(run(m, anchors, gt, focal::exec::parallel_policy{.threads = 3, .min_elements = 1}, crowd) == s);
    return s;
}

boxes tv_anchors(focal::size2d image) {
    return focal::make_anchors<float>(focal::anchor_presets::torchvision(), image);
}

index_t count(const codes& c, std::int64_t v) { return static_cast<index_t>(std::count(c.begin(), c.end(), v)); }

}  // namespace

TEST_CASE("torchvision preset gives torchvision's codes on every match_* fixture case") {
    const focal_test::fixture_set fx(focal_test::torchvision_fixtures());
    const auto cases = fx.cases("match");
    REQUIRE(!cases.empty());
    for (const auto& c : cases) {
        CAPTURE(c);
        const auto& p = fx.params(c);
        const auto matcher = focal::matcher_presets::torchvision(p.at("high").get<double>(), p.at("low").get<double>(),
                                                                 p.at("allow_low_quality_matches").get<bool>());
        // The anchors: regenerated with the torchvision preset from the anchors case's parameters,
        // and equal to its stored array where the set has it.
        const auto anchors_case = p.at("anchors_case").get<std::string>();
        const auto& ap = fx.params(anchors_case);
        const auto hw = ap.at("image_hw").get<std::vector<index_t>>();
        const boxes anchors = focal::make_anchors<float>(
            focal::anchor_presets::torchvision(ap.at("base_sizes").get<std::vector<double>>()), {hw[0], hw[1]});
        if (std::filesystem::exists(fx.dir / anchors_case / "anchors.npy")) {
            const auto stored = fx.array<float>(anchors_case, "anchors");
            REQUIRE(stored.size() == anchors.size());
            CHECK(std::equal(anchors.begin(), anchors.end(), stored.begin()));
        }
        const auto gt_arr = fx.array<float>(c, "gt");
        const boxes gt(gt_arr.begin(), gt_arr.end());
        const auto want_arr = fx.array<std::int64_t>(c, "matches");
        const codes want(want_arr.begin(), want_arr.end());
        REQUIRE(want.size() == anchors.size() / 4);

        const codes got = run_all(matcher, anchors, gt);
        index_t mismatches = 0;
        for (std::size_t i = 0; i < want.size(); ++i) mismatches += got[i] != want[i];
        CHECK(mismatches == 0);
        CHECK(reference_match(matcher, anchors, gt) == want);
        // No fixture gt lies outside every anchor, so the guard changes nothing here.
        auto guarded = matcher;
        guarded.zero_iou_guard = true;
        CHECK(run(guarded, anchors, gt, focal::exec::parallel) == want);

        if (std::filesystem::exists(fx.dir / c / "iou.npy")) {  // full set: best IoU bit for bit
            const auto iou = fx.array<float>(c, "iou");
            const index_t g = rows(gt), n = rows(anchors);
            std::vector<float> best(static_cast<std::size_t>(n));
            codes out(static_cast<std::size_t>(n));
            focal::match_anchors(matcher, view(anchors), view(gt), focal::matrix_view<const float>{},
                                 focal::match_output{focal::make_view(out.data(), n), focal::make_view(best.data(), n)});
            index_t off = 0;
            for (index_t i = 0; i < n; ++i) {
                float tv = iou(0, i);
                for (index_t j = 1; j < g; ++j) tv = std::max(tv, static_cast<float>(iou(j, i)));
                off += best[i] != tv;
            }
            CHECK(off == 0);
        }
    }
}

TEST_CASE("random problems against the brute-force reference, every option") {
    std::mt19937 rng(7);
    const boxes anchors = tv_anchors({256, 320});
    for (int trial = 0; trial < 12; ++trial) {
        CAPTURE(trial);
        boxes gt = random_boxes(rng, 1 + trial * 3, 320, 256, 4, 200);
        if (trial % 3 == 1) gt.insert(gt.end(), gt.begin(), gt.begin() + 8);  // duplicated gts: ties
        if (trial % 4 == 2)
            gt.insert(gt.end(), anchors.begin() + 400, anchors.begin() + 404);  // an anchor itself: IoU 1
        const boxes crowd = trial % 2 ? random_boxes(rng, 3, 320, 256, 30, 120) : boxes{};
        for (const auto& m :
             {focal::max_iou_matcher{}, focal::matcher_presets::torchvision(),
              focal::matcher_presets::torchvision(0.5, 0.4, false), focal::matcher_presets::detectron(),
              focal::max_iou_matcher{.positive_iou_threshold = 0.6,
                                     .negative_iou_threshold = 0.3,
                                     .low_quality_iou_threshold = 0.2,
                                     .crowd_iof_threshold = 0.1}}) {
            CAPTURE(m.plus_one);
            CAPTURE(m.zero_iou_guard);
            CHECK(run_all(m, anchors, gt, crowd) == reference_match(m, anchors, gt, crowd));
        }
    }
}

TEST_CASE("empty ground truth: every anchor negative (crowd regions still ignored)") {
    const boxes anchors = tv_anchors({128, 128});
    for (const auto& m : {focal::max_iou_matcher{}, focal::matcher_presets::torchvision()}) {
        const codes c = run_all(m, anchors, {});
        CHECK(count(c, -1) == rows(anchors));
        const codes with_crowd = run_all(m, anchors, {}, {0, 0, 64, 64});
        CHECK(with_crowd == reference_match(m, anchors, {}, {0, 0, 64, 64}));
        CHECK(count(with_crowd, -2) > 0);
        CHECK(count(with_crowd, -2) + count(with_crowd, -1) == rows(anchors));
    }
    codes none;
    focal::match_anchors(focal::max_iou_matcher{}, focal::matrix_view<const float>(nullptr, 0, 4), view({1, 2, 3, 4}),
                         focal::match_output{focal::make_view(none.data(), 0)});  // no anchors: nothing to do
}

TEST_CASE("one gt, identical gts, an anchor-sized gt") {
    const boxes anchors = tv_anchors({128, 128});
    const boxes one{30, 40, 90, 100};
    const codes c = run_all(focal::max_iou_matcher{}, anchors, one);
    CHECK(c == reference_match(focal::max_iou_matcher{}, anchors, one));
    CHECK(count(c, 0) > 0);
    // Five identical gts: torch.max keeps the first, so every positive is gt 0, with or without low-quality.
    boxes five;
    for (int k = 0; k < 5; ++k) five.insert(five.end(), one.begin(), one.end());
    for (const auto& m : {focal::max_iou_matcher{}, focal::matcher_presets::torchvision()}) {
        const codes c5 = run_all(m, anchors, five);
        CHECK(c5 == c);
    }
    // A gt equal to anchor 100: IoU 1, positive at positive_iou_threshold = 1.
    const boxes same(anchors.begin() + 400, anchors.begin() + 404);
    const focal::max_iou_matcher exact{.positive_iou_threshold = 1.0, .negative_iou_threshold = 1.0, .allow_low_quality_matches = false};
    const codes ce = run_all(exact, anchors, same);
    CHECK(ce[100] == 0);
    CHECK(count(ce, 0) == count(reference_match(exact, anchors, same), 0));
}

TEST_CASE("degenerate gts: zero area, inverted, outside every anchor — the zero-IoU guard") {
    const boxes anchors = tv_anchors({128, 128});
    const index_t n = rows(anchors);
    for (const boxes& bad : {boxes{50, 50, 50, 80}, boxes{60, 60, 40, 40}, boxes{5000, 5000, 5010, 5010}}) {
        CAPTURE(bad[0]);
        // guard on (default): the gt overlaps nothing and promotes nothing
        CHECK(count(run_all(focal::max_iou_matcher{}, anchors, bad), -1) == n);
        // torchvision (no guard): its highest IoU is 0, so every anchor ties it and becomes positive
        const codes tv = run_all(focal::matcher_presets::torchvision(), anchors, bad);
        CHECK(count(tv, 0) == n);
        CHECK(tv == reference_match(focal::matcher_presets::torchvision(), anchors, bad));
        // next to a real gt: guard on leaves the real gt's codes; torchvision promotes every anchor
        // to its own argmax (gt 0 where it overlaps nothing)
        boxes two{30, 40, 90, 100};
        two.insert(two.end(), bad.begin(), bad.end());
        CHECK(run_all(focal::max_iou_matcher{}, anchors, two) ==
              run(focal::max_iou_matcher{}, anchors, {30, 40, 90, 100}, focal::exec::simd));
        const codes tv2 = run_all(focal::matcher_presets::torchvision(), anchors, two);
        CHECK(count(tv2, -1) == 0);
        CHECK(tv2 == reference_match(focal::matcher_presets::torchvision(), anchors, two));
    }
}

TEST_CASE("a gt smaller than every anchor: its tiny best IoU is matched, ties included") {
    const boxes anchors = tv_anchors({128, 128});
    const boxes tiny{60.25f, 60.25f, 61.25f, 61.25f};  // 1 x 1 inside many 32 x 32 anchors: IoU 1/1024
    for (const auto& m : {focal::max_iou_matcher{}, focal::matcher_presets::torchvision()}) {
        const codes c = run_all(m, anchors, tiny);
        CHECK(c == reference_match(m, anchors, tiny));
        CHECK(count(c, 0) > 1);  // every 32 x 32 anchor covering it ties at 1/1024
        CHECK(count(c, -2) == 0);
    }
    auto strict = focal::max_iou_matcher{};
    strict.allow_low_quality_matches = false;
    CHECK(count(run_all(strict, anchors, tiny), -1) == rows(anchors));
    // Detectron keeps a low-quality match only at IoU >= 0.4: none here.
    CHECK(count(run_all(focal::matcher_presets::detectron(), anchors, tiny), -1) == rows(anchors));
}

TEST_CASE("NaN and infinite coordinates") {
    boxes anchors = tv_anchors({128, 128});
    const index_t n = rows(anchors);
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const boxes gt{30, 40, 90, 100};
    // gt / crowd boxes must be finite: thrown before anything is written
    for (float bad : {nan, inf, -inf}) {
        codes out(static_cast<std::size_t>(n), 7);
        CHECK_THROWS_WITH_AS(focal::match_anchors(focal::max_iou_matcher{}, view(anchors), view({30, 40, bad, 100}),
                                                  focal::match_output{focal::make_view(out.data(), n)}),
                             doctest::Contains("focal::match_anchors: gt_boxes must be finite, got"), focal::error);
        CHECK(count(out, 7) == n);
        CHECK_THROWS_WITH_AS(focal::match_anchors(focal::max_iou_matcher{}, view(anchors), view(gt),
                                                  view({bad, 0, 1, 1}), focal::match_output{focal::make_view(out.data(), n)}),
                             doctest::Contains("crowd_boxes must be finite"), focal::error);
    }
    // a non-finite anchor is ignored (-2), never positive, and counts in no gt's highest IoU
    const codes clean = run_all(focal::matcher_presets::torchvision(), anchors, gt);
    const auto best = std::find(clean.begin(), clean.end(), 0) - clean.begin();
    anchors[10 * 4 + 2] = nan;
    anchors[11 * 4 + 0] = -inf;
    anchors[best * 4 + 3] = inf;  // one of gt 0's positives
    for (const auto& m : {focal::max_iou_matcher{}, focal::matcher_presets::torchvision()}) {
        const codes c = run_all(m, anchors, gt);
        CHECK(c[10] == -2);
        CHECK(c[11] == -2);
        CHECK(c[best] == -2);
        index_t changed = 0;
        for (index_t i = 0; i < n; ++i) changed += i != 10 && i != 11 && i != best && c[i] != clean[i];
        CHECK(changed == 0);
    }
    std::vector<float> iou(static_cast<std::size_t>(n));
    codes out(static_cast<std::size_t>(n));
    focal::match_anchors(focal::max_iou_matcher{}, view(anchors), view(gt), focal::matrix_view<const float>{},
                         focal::match_output{focal::make_view(out.data(), n), focal::make_view(iou.data(), n)});
    CHECK(std::isnan(iou[10]));
    CHECK(std::isnan(iou[best]));
    CHECK(iou[0] == 0.0f);
}

TEST_CASE("thresholds 0 and 1, and their validation") {
    std::mt19937 rng(3);
    const boxes anchors = tv_anchors({128, 160});
    const boxes gt = random_boxes(rng, 6, 160, 128, 10, 90);
    // negative = positive = 0: every anchor positive (its argmax; gt 0 where it overlaps nothing)
    const focal::max_iou_matcher all{.positive_iou_threshold = 0.0, .negative_iou_threshold = 0.0};
    const codes c0 = run_all(all, anchors, gt);
    CHECK(count(c0, -1) + count(c0, -2) == 0);
    CHECK(c0 == reference_match(all, anchors, gt));
    // negative = 0, positive = 1: nothing negative, positives only at IoU 1 or through low-quality matching
    for (bool lq : {false, true}) {
        const focal::max_iou_matcher one{.positive_iou_threshold = 1.0, .negative_iou_threshold = 0.0, .allow_low_quality_matches = lq};
        const codes c1 = run_all(one, anchors, gt);
        CHECK(count(c1, -1) == 0);
        CHECK(c1 == reference_match(one, anchors, gt));
    }
    codes out(static_cast<std::size_t>(rows(anchors)), 5);
    auto call = [&](focal::max_iou_matcher m) {
        focal::match_anchors(m, view(anchors), view(gt), focal::match_output{focal::make_view(out.data(), rows(anchors))});
    };
    CHECK_THROWS_WITH_AS(call({.positive_iou_threshold = 0.4, .negative_iou_threshold = 0.5}),
                         "focal::match_anchors: negative_iou_threshold must be <= positive_iou_threshold "
                         "(0.40000000000000002), got 0.5",
                         focal::error);
    CHECK_THROWS_WITH_AS(call({.positive_iou_threshold = 1.5}),
                         "focal::match_anchors: positive_iou_threshold must be in [0, 1], got 1.5", focal::error);
    CHECK_THROWS_WITH_AS(call({.negative_iou_threshold = -0.1}),
                         doctest::Contains("negative_iou_threshold must be in [0, 1]"), focal::error);
    CHECK_THROWS_AS(call({.positive_iou_threshold = std::nan("")}), focal::error);
    CHECK_THROWS_WITH_AS(call({.low_quality_iou_threshold = 2.0}),
                         doctest::Contains("low_quality_iou_threshold must be in [0, 1], got 2"), focal::error);
    CHECK_THROWS_WITH_AS(call({.crowd_iof_threshold = -1.0}), doctest::Contains("crowd_iof_threshold must be in [0, 1], got -1"),
                         focal::error);
    CHECK(count(out, 5) == rows(anchors));
}

TEST_CASE("201,600 anchors x 20 gt: every policy equals the reference; layouts") {
    std::mt19937 rng(11);
    const boxes anchors = tv_anchors({800, 1344});
    REQUIRE(rows(anchors) == 201600);
    const boxes gt = random_boxes(rng, 20, 1344, 800, 16, 400);
    const boxes crowd = random_boxes(rng, 2, 1344, 800, 100, 300);
    for (const auto& m : {focal::max_iou_matcher{}, focal::matcher_presets::torchvision()}) {
        const codes c = run_all(m, anchors, gt, crowd);
        CHECK(c == reference_match(m, anchors, gt, crowd));
        CHECK(count(c, -2) > 0);
        // column-major anchors, strided int32 codes
        const index_t n = rows(anchors);
        std::vector<float> cm(anchors.size());
        for (index_t i = 0; i < n; ++i)
            for (index_t k = 0; k < 4; ++k) cm[k * n + i] = anchors[i * 4 + k];
        std::vector<std::int32_t> strided(static_cast<std::size_t>(2 * n), 123);
        focal::match_anchors(m, focal::matrix_view<const float>(cm.data(), {n, 4}, {1, n}), view(gt), view(crowd),
                             focal::match_output{focal::vector_view<std::int32_t>(strided.data(), {n}, {2})}, focal::exec::parallel);
        index_t diff = 0;
        for (index_t i = 0; i < n; ++i) diff += strided[i * 2] != c[i] || strided[i * 2 + 1] != 123;
        CHECK(diff == 0);
        // double anchors and gts compute IoU in double: same codes for these boxes
        std::vector<double> ad(anchors.begin(), anchors.end()), gd(gt.begin(), gt.end()),
            cd(crowd.begin(), crowd.end());
        codes dc(static_cast<std::size_t>(n));
        focal::match_anchors(m, focal::matrix_view<const double>(ad.data(), n, 4),
                             focal::matrix_view<const double>(gd.data(), 20, 4),
                             focal::matrix_view<const double>(cd.data(), 2, 4), focal::match_output{focal::make_view(dc.data(), n)});
        CHECK(dc == c);
    }
}

TEST_CASE("Detectron preset: +1 IoU and low-quality matches kept at IoU >= 0.4 only (hand-computed)") {
    // anchor [0, 0, 9, 9] (100 px with +1), gt [0, 0, 4, 9] (50 px): IoU 50 / 100 = 0.5 -> positive;
    // without +1: 36 / 81 = 0.444 -> ignored.
    const boxes anchors{0, 0, 9, 9, 20, 20, 29, 29};
    const boxes gt{0, 0, 4, 9};
    const auto strict = [](focal::max_iou_matcher m) {
        m.allow_low_quality_matches = false;
        return m;
    };
    CHECK(run_all(strict(focal::matcher_presets::detectron()), anchors, gt) == codes{0, -1});
    CHECK(run_all(strict(focal::matcher_presets::torchvision()), anchors, gt) == codes{-2, -1});
    // gt [0, 0, 2, 9]: +1 IoU 30 / 100 = 0.3: Detectron's low-quality match falls back to negative,
    // torchvision's (IoU 18 / 81 = 0.22) is promoted to positive.
    CHECK(run_all(focal::matcher_presets::detectron(), anchors, {0, 0, 2, 9}) == codes{-1, -1});
    CHECK(run_all(focal::matcher_presets::torchvision(), anchors, {0, 0, 2, 9}) == codes{0, -1});
    // gt [0, 0, 3, 9]: +1 IoU 0.4 -> ignored by threshold, promoted by low-quality (>= 0.4).
    CHECK(run_all(focal::matcher_presets::detectron(), anchors, {0, 0, 3, 9}) == codes{0, -1});
    CHECK(run_all(strict(focal::matcher_presets::detectron()), anchors, {0, 0, 3, 9}) == codes{-2, -1});
}

// ---- the matcher's rules, as members (what the host SIMD driver and the CUDA kernels both call) ----

TEST_CASE("max_iou_matcher rules on plain values: anchor_code, near_crowd, promotes, gt_promotes") {
    static_assert(focal::max_iou_matcher::negative == focal::background_label);
    static_assert(focal::max_iou_matcher::ignored == focal::ignored_label);
    const focal::max_iou_matcher m{};  // positive 0.5, negative 0.4, crowd iof 0.5, low-quality 0
    const float bg = focal::background_label, ig = focal::ignored_label;
    const float below_negative = std::nextafter(0.4f, 0.0f), above_crowd = std::nextafter(0.5f, 1.0f);

    // anchor_code(has_gt, best, argmax, near_crowd, finite): threshold rule, then crowd, then finiteness.
    struct anchor_case {
        bool has_gt;
        float best, argmax;
        bool near, finite;
        float code;
    };
    for (const anchor_case& c : std::vector<anchor_case>{
             {true, 0.9f, 3, false, true, 3},              // positive
             {true, 0.5f, 3, false, true, 3},              // best == positive threshold: positive (>=)
             {true, 0.5f, 3, true, true, 3},               // positives stay positive near a crowd box
             {true, 0.45f, 3, false, true, ig},            // between the thresholds
             {true, 0.4f, 3, false, true, ig},             // best == negative threshold: ignored (>=)
             {true, below_negative, 3, false, true, bg},   // just below: background
             {true, 0.1f, 3, true, true, ig},              // background near a crowd box: ignored
             {true, 0.9f, 3, false, false, ig},            // a non-finite anchor: ignored whatever its code
             {false, 0.9f, 3, false, true, bg},            // no ground truth: background
             {false, 0.0f, 0, true, true, ig},             // ... unless near a crowd box
             {false, 0.0f, 0, false, false, ig},           // ... or not finite
         }) {
        CAPTURE(c.has_gt);
        CAPTURE(c.best);
        CAPTURE(c.near);
        CAPTURE(c.finite);
        CHECK(m.anchor_code(c.has_gt, c.best, c.argmax, c.near, c.finite) == c.code);
        // the same rule in double
        CHECK(m.anchor_code(c.has_gt, double(c.best), double(c.argmax), c.near, c.finite) == double(c.code));
    }

    // near_crowd: iof > crowd_iof_threshold (strict).
    CHECK(!m.near_crowd(0.5f));
    CHECK(m.near_crowd(above_crowd));
    CHECK(!m.near_crowd(0.0f));
    CHECK(focal::max_iou_matcher{.crowd_iof_threshold = 0.0}.near_crowd(1e-30f));
    CHECK(!focal::max_iou_matcher{.crowd_iof_threshold = 1.0}.near_crowd(1.0f));

    // promotes(best, equals_target, finite): all three, best >= low_quality_iou_threshold.
    const focal::max_iou_matcher detectron = focal::matcher_presets::detectron();  // low-quality IoU >= 0.4
    struct promote_case {
        float best;
        bool equals_target, finite, want;
    };
    for (const promote_case& c : std::vector<promote_case>{{0.4f, true, true, true},
                                                           {below_negative, true, true, false},
                                                           {0.9f, false, true, false},
                                                           {0.9f, true, false, false},
                                                           {0.9f, true, true, true}}) {
        CAPTURE(c.best);
        CAPTURE(c.equals_target);
        CAPTURE(c.finite);
        CHECK(detectron.promotes(c.best, c.equals_target, c.finite) == c.want);
    }
    CHECK(m.promotes(0.0f, true, true));  // threshold 0: every tie promotes
    CHECK(!m.promotes(0.0f, false, true));

    // gt_promotes: a gt whose highest IoU is 0 promotes nothing under the guard; torchvision promotes.
    CHECK(!m.gt_promotes(0.0f));
    CHECK(m.gt_promotes(1e-30f));
    CHECK(!m.gt_promotes(std::numeric_limits<float>::quiet_NaN()));
    const auto tv = focal::matcher_presets::torchvision();
    CHECK(tv.gt_promotes(0.0f));
    CHECK(tv.gt_promotes(0.0));
    CHECK(tv.gt_promotes(0.25f));
}

TEST_CASE("max_iou_matcher thresholds are compared in the IoU's type (torchvision: float tensor >= Python 0.7)") {
    const focal::max_iou_matcher m{.positive_iou_threshold = 0.7, .negative_iou_threshold = 0.3, .allow_low_quality_matches = false};
    CHECK(focal::max_iou_matcher::in<float>(0.7) == 0.7f);
    CHECK(focal::max_iou_matcher::in<double>(0.7) == 0.7);
    REQUIRE(double(0.7f) < 0.7);  // float(0.7) is below the double 0.7
    // A float IoU equal to float(0.7) is positive: it equals the threshold in float.
    CHECK(m.threshold_code(0.7f, 2.0f) == 2.0f);
    CHECK(m.anchor_code(true, 0.7f, 2.0f, false, true) == 2.0f);
    CHECK(m.threshold_code(std::nextafter(0.7f, 0.0f), 2.0f) == float(focal::ignored_label));
    // The same value in double is below 0.7.
    CHECK(m.threshold_code(double(0.7f), 2.0) == double(focal::ignored_label));
    // float(0.3) counts as >= negative_iou_threshold = 0.3 in float (double(0.3f) > 0.3, so both agree there).
    CHECK(m.threshold_code(0.3f, 2.0f) == float(focal::ignored_label));
    // low_quality_iou_threshold and crowd_iof_threshold likewise.
    const focal::max_iou_matcher q{.low_quality_iou_threshold = 0.7, .crowd_iof_threshold = 0.3};
    CHECK(q.promotes(0.7f, true, true));
    CHECK(!q.promotes(double(0.7f), true, true));
    CHECK(!q.near_crowd(0.3f));  // float(0.3) is not > float(0.3)
    CHECK(q.near_crowd(double(0.3f)));  // double(0.3f) > 0.3

    // End to end: anchor [0, 0, 10, 10] and gt [0, 0, 7, 10] have float IoU 70 / 100 = float(0.7).
    const boxes anchors{0, 0, 10, 10, 50, 50, 60, 60};
    const boxes gt{0, 0, 7, 10};
    REQUIRE(focal::iou(box_at(anchors, 0), box_at(gt, 0)) == 0.7f);
    CHECK(run_all(m, anchors, gt) == codes{0, focal::background_label});
    CHECK(reference_match(m, anchors, gt) == codes{0, focal::background_label});
    // and with the low-quality IoU threshold at 0.7: a promotion keeps that anchor positive
    const focal::max_iou_matcher lq{.positive_iou_threshold = 0.9, .negative_iou_threshold = 0.3, .low_quality_iou_threshold = 0.7};
    CHECK(run_all(lq, anchors, gt) == codes{0, focal::background_label});
}

TEST_CASE("match_anchors errors") {
    const boxes anchors = tv_anchors({64, 64});
    const index_t n = rows(anchors);
    const boxes gt{1, 2, 30, 40};
    codes out(static_cast<std::size_t>(n), 5);
    const focal::max_iou_matcher m{};
    CHECK_THROWS_WITH_AS(focal::match_anchors(m, view(anchors), view(gt), focal::match_output{focal::make_view(out.data(), n - 1)}),
                         ("focal::match_anchors: out.matches must be of extent N = " + std::to_string(n) +
                          " (one per anchor), got [" + std::to_string(n - 1) + "]")
                             .c_str(),
                         focal::error);
    CHECK_THROWS_WITH_AS(focal::match_anchors(m, focal::matrix_view<const float>(anchors.data(), n, 3), view(gt),
                                              focal::match_output{focal::make_view(out.data(), n)}),
                         doctest::Contains("anchors (N x 4) must be of extent 4 in dimension 1"), focal::error);
    CHECK_THROWS_AS(focal::match_anchors(m, view(anchors), view(gt), focal::match_output{focal::vector_view<std::int64_t>(nullptr, n)}),
                    focal::error);
    CHECK_THROWS_WITH_AS(
        focal::match_anchors(m, view(anchors), view(gt), focal::match_output{focal::vector_view<std::int64_t>(out.data(), {n}, {0})}),
        doctest::Contains("out.matches must be a view whose elements do not overlap"), focal::error);
    std::vector<float> iou(3);
    CHECK_THROWS_WITH_AS(focal::match_anchors(m, view(anchors), view(gt), focal::matrix_view<const float>{},
                                              focal::match_output{focal::make_view(out.data(), n), focal::make_view(iou.data(), 3)}),
                         doctest::Contains("out.max_iou must be null or of extent N"), focal::error);
    std::vector<std::int8_t> small(static_cast<std::size_t>(n));
    std::mt19937 rng(1);
    const boxes many = random_boxes(rng, 200, 64, 64, 4, 30);
    CHECK_THROWS_WITH_AS(
        focal::match_anchors(m, view(anchors), view(many), focal::match_output{focal::make_view(small.data(), n)}),
        doctest::Contains("gt_boxes must be at most min(2^24, the largest value of out.matches' type) rows, got 200"),
        focal::error);
    CHECK(count(out, 5) == n);
}

// ---- target builder ----

namespace {

struct targets {
    std::vector<std::int32_t> labels;
    std::vector<float> box;
    index_t positives;
};

template <class Exec>
targets build(const codes& matches, const boxes& anchors, const boxes& gt, const std::vector<std::int64_t>& gt_labels,
              const Exec& exec) {
    const index_t n = rows(anchors);
    targets t{std::vector<std::int32_t>(static_cast<std::size_t>(n), 77), std::vector<float>(anchors.size(), 77.0f), 0};
    t.positives = focal::build_targets(
        focal::delta_xywh_coder{}, focal::vector_view<const std::int64_t>(matches.data(), n), view(anchors), view(gt),
        focal::vector_view<const std::int64_t>(gt_labels.data(), rows(gt)), focal::make_view(t.labels.data(), n),
        focal::make_view(t.box.data(), n, 4), exec);
    return t;
}

}  // namespace

TEST_CASE("build_targets against a brute-force reference; assign_targets; ready for the losses") {
    std::mt19937 rng(5);
    const boxes anchors = tv_anchors({320, 448});
    const index_t n = rows(anchors);
    const boxes gt = random_boxes(rng, 9, 448, 320, 16, 220);
    const std::vector<std::int64_t> gt_labels{3, 0, 7, 7, 1, 9, 2, 5, 4};
    const boxes crowd{200, 100, 300, 180};
    const auto matcher = focal::matcher_presets::torchvision();
    codes matches(static_cast<std::size_t>(n));
    focal::match_anchors(matcher, view(anchors), view(gt), view(crowd), focal::match_output{focal::make_view(matches.data(), n)});

    // Reference: the definition, one anchor at a time, scalar coder.
    const focal::delta_xywh_coder coder{};
    std::vector<std::int32_t> want_labels(static_cast<std::size_t>(n));
    std::vector<float> want_box(anchors.size(), 0.0f);
    index_t want_pos = 0;
    for (index_t i = 0; i < n; ++i) {
        const auto m = matches[i];
        want_labels[i] = m >= 0 ? static_cast<std::int32_t>(gt_labels[m]) : static_cast<std::int32_t>(m);
        if (m >= 0) {
            ++want_pos;
            const auto e = coder.encode(box_at(gt, m), box_at(anchors, i));
            for (int c = 0; c < 4; ++c) want_box[i * 4 + c] = e[c];
        }
    }
    REQUIRE(want_pos > 20);
    REQUIRE(count(matches, -2) > 0);

    const targets s = build(matches, anchors, gt, gt_labels, focal::exec::scalar);
    CHECK(s.positives == want_pos);
    CHECK(s.labels == want_labels);
    CHECK(s.box == want_box);  // scalar path: the same arithmetic, exactly
    for (const targets& t :
         {build(matches, anchors, gt, gt_labels, focal::exec::simd),
          build(matches, anchors, gt, gt_labels, focal::exec::parallel_policy{.threads = 3, .min_elements = 1})}) {
        CHECK(t.positives == want_pos);
        CHECK(t.labels == want_labels);
        index_t off = 0;
        for (std::size_t k = 0; k < want_box.size(); ++k)
            off += !focal_test::close(t.box[k], want_box[k], 1e-6, 1e-6);  // SIMD log: ulps
        CHECK(off == 0);
    }
    // SIMD rows equal encode_boxes of the matched gts (same packet code)
    {
        std::vector<float> matched(anchors.size()), enc(anchors.size());
        for (index_t i = 0; i < n; ++i)
            for (int c = 0; c < 4; ++c) matched[i * 4 + c] = gt[std::max<std::int64_t>(matches[i], 0) * 4 + c];
        focal::encode_boxes(coder, focal::matrix_view<const float>(matched.data(), n, 4), view(anchors),
                            focal::make_view(enc.data(), n, 4), focal::exec::simd);
        const targets t = build(matches, anchors, gt, gt_labels, focal::exec::simd);
        index_t off = 0;
        for (index_t i = 0; i < n; ++i)
            for (int c = 0; c < 4; ++c) off += matches[i] >= 0 && t.box[i * 4 + c] != enc[i * 4 + c];
        CHECK(off == 0);
    }
    // assign_targets = match_anchors + build_targets
    {
        std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
        std::vector<float> box(anchors.size());
        const index_t pos = focal::assign_targets(matcher, coder, view(anchors), view(gt), view(crowd),
                                                  focal::vector_view<const std::int64_t>(gt_labels.data(), 9),
                                                  focal::make_view(labels.data(), n),
                                                  focal::make_view(box.data(), n, 4), focal::exec::scalar);
        CHECK(pos == want_pos);
        CHECK(std::equal(labels.begin(), labels.end(), want_labels.begin()));
        CHECK(box == want_box);
    }
    // The outputs go straight into the losses, normalized by the positive count.
    {
        const index_t k = 10;
        std::vector<float> logits(static_cast<std::size_t>(n * k), -2.0f), deltas(anchors.size(), 0.1f);
        const auto norm = focal::reduction::divide_by(std::max<double>(1.0, static_cast<double>(s.positives)));
        const double cls =
            focal::classification_loss(focal::sigmoid_focal_loss{}, focal::make_view(logits.data(), n, k),
                                       focal::vector_view<const std::int32_t>(s.labels.data(), n), norm);
        const double reg =
            focal::box_regression_loss(focal::smooth_l1_loss{}, focal::matrix_view<const float>(deltas.data(), n, 4),
                                       focal::matrix_view<const float>(s.box.data(), n, 4),
                                       focal::vector_view<const std::int32_t>(s.labels.data(), n), norm);
        CHECK(std::isfinite(cls));
        CHECK(cls > 0);
        CHECK(std::isfinite(reg));
    }
}

TEST_CASE("build_targets: empty gt, errors before writing") {
    const boxes anchors = tv_anchors({64, 64});
    const index_t n = rows(anchors);
    const codes negatives(static_cast<std::size_t>(n), -1);
    const targets t = build(negatives, anchors, {}, {}, focal::exec::simd);
    CHECK(t.positives == 0);
    CHECK(std::all_of(t.labels.begin(), t.labels.end(), [](auto v) { return v == -1; }));
    CHECK(std::all_of(t.box.begin(), t.box.end(), [](auto v) { return v == 0.0f; }));

    const boxes gt{1, 2, 30, 40};
    codes bad = negatives;
    bad[17] = 1;  // only gt 0 exists
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n), 9);
    std::vector<float> box(anchors.size(), 9.0f);
    const std::vector<std::int64_t> gt_labels{2};
    auto call = [&](const codes& m, const std::vector<std::int64_t>& gl) {
        return focal::build_targets(focal::delta_xywh_coder{}, focal::vector_view<const std::int64_t>(m.data(), n),
                                    view(anchors), view(gt), focal::vector_view<const std::int64_t>(gl.data(), 1),
                                    focal::make_view(labels.data(), n), focal::make_view(box.data(), n, 4));
    };
    CHECK_THROWS_WITH_AS(call(bad, gt_labels),
                         "focal::build_targets: matches must be in [-2, M) = [-2, 1), got 1 at anchor 17",
                         focal::error);
    CHECK_THROWS_WITH_AS(call(negatives, {-1}),
                         "focal::build_targets: gt_labels must be >= 0 (class indices), got -1 at gt 0", focal::error);
    CHECK_THROWS_AS(focal::build_targets(focal::delta_xywh_coder{.wx = 0},
                                         focal::vector_view<const std::int64_t>(negatives.data(), n), view(anchors),
                                         view(gt), focal::vector_view<const std::int64_t>(gt_labels.data(), 1),
                                         focal::make_view(labels.data(), n), focal::make_view(box.data(), n, 4)),
                    focal::error);
    CHECK_THROWS_WITH_AS(
        focal::build_targets(focal::delta_xywh_coder{}, focal::vector_view<const std::int64_t>(negatives.data(), n),
                             view(anchors), view(gt), focal::vector_view<const std::int64_t>(gt_labels.data(), 1),
                             focal::make_view(labels.data(), n), focal::make_view(box.data(), n - 1, 4)),
        doctest::Contains("box_targets must be of shape [N x 4]"), focal::error);
    CHECK(std::all_of(labels.begin(), labels.end(), [](auto v) { return v == 9; }));
    CHECK(std::all_of(box.begin(), box.end(), [](auto v) { return v == 9.0f; }));
}

TEST_CASE("build_targets may write the labels over the matches (same memory)") {
    const std::vector<float> anchors = {0, 0, 10, 10, 20, 20, 30, 30, 50, 50, 60, 60};
    const std::vector<float> gt = {1, 1, 10, 10};
    const std::vector<std::int64_t> gt_labels = {7};
    std::vector<std::int64_t> codes = {0, -1, -2}, separate_labels(3);
    std::vector<float> t1(12), t2(12);
    const focal::delta_xywh_coder coder{};
    const auto a = focal::make_view(anchors.data(), 3, 4);
    const auto g = focal::make_view(gt.data(), 1, 4);
    const auto l = focal::make_view(gt_labels.data(), 1);
    const auto p1 = focal::build_targets(coder, focal::make_view<const std::int64_t>(codes.data(), 3), a, g, l,
                                         focal::make_view(separate_labels.data(), 3), focal::make_view(t1.data(), 3, 4));
    const auto p2 = focal::build_targets(coder, focal::make_view<const std::int64_t>(codes.data(), 3), a, g, l,
                                         focal::make_view(codes.data(), 3), focal::make_view(t2.data(), 3, 4));
    CHECK(p1 == 1);
    CHECK(p2 == 1);
    CHECK(codes == separate_labels);
    CHECK(codes == std::vector<std::int64_t>{7, -1, -2});
    CHECK(t1 == t2);
}
