// The FOCAL_HD pieces the CUDA matcher and target builder are made of (the max_iou_matcher rules,
// box/overlap.hpp's unfused overlaps, focal/assign/detail/match_anchor.hpp's bookkeeping), run on
// the CPU: the unfused IoU has the host IoU's bits,
// the integer keys order like the IoUs, and the device algorithm (pass 1 per anchor with per-tile
// gt maxima as keys, pass 2 max over tiles, pass 3 promotion in the tiles holding a maximum,
// emulated here loop for loop) gives focal::match_anchors' codes and max_iou bit for bit on every
// kind of problem; build_targets' per-anchor rule reproduces focal::build_targets.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <focal/anchor/generate.hpp>
#include <focal/anchor/presets.hpp>
#include <focal/assign/detail/match_anchor.hpp>
#include <focal/assign/match.hpp>
#include <focal/assign/targets.hpp>
#include <focal/box/iou.hpp>
#include <focal/box/overlap.hpp>
#include <focal/coder/delta_xywh.hpp>
#include <limits>
#include <random>
#include <vector>

#include "support/matcher_cases.hpp"

using focal::box4;
using focal::index_t;
namespace ai = focal::detail::assign_impl;
namespace fd = focal::detail;
using boxes = std::vector<float>;  // row-major n x 4
using focal_test_support::random_boxes;
using focal_test_support::every_matcher;

namespace {

constexpr index_t tile = 256;  // focal::cuda::detail::match::tile

index_t rows(const boxes& b) { return static_cast<index_t>(b.size() / 4); }
box4<float> box_at(const boxes& b, index_t i) { return {{b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]}}; }
std::uint32_t bits(float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    return u;
}

template <bool PlusOne>
void emulate_impl(const focal::max_iou_matcher& m, const boxes& anchors, const boxes& gt, const boxes& crowd,
                  std::vector<std::int32_t>& codes, std::vector<float>& max_iou) {
    using K = ai::key_t<float>;
    const index_t n = rows(anchors), g = rows(gt), nc = rows(crowd), tiles = (n + tile - 1) / tile;
    codes.assign(static_cast<std::size_t>(n), 99);
    max_iou.assign(static_cast<std::size_t>(n), -7.0f);
    std::vector<K> block_max(static_cast<std::size_t>(tiles * g), K(0));
    auto anchor = [&](index_t i) { return box_at(anchors, std::min(i, n - 1)); };
    std::vector<float> gt_area(static_cast<std::size_t>(g));
    for (index_t j = 0; j < g; ++j) gt_area[j] = fd::unfused_area<PlusOne>(box_at(gt, j));
    // pass 1
    for (index_t t = 0; t < tiles; ++t)
        for (index_t k = 0; k < tile; ++k) {
            const index_t i = t * tile + k;
            const bool valid = i < n;
            const box4<float> a = anchor(i);
            const float area_a = fd::unfused_area<PlusOne>(a);
            const bool finite = fd::finite_box(a);
            ai::best_match<float> best;
            for (index_t j = 0; j < g; ++j) {
                const float iou = fd::unfused_iou<PlusOne>(a, box_at(gt, j), area_a, gt_area[j]);
                best.consider(iou, static_cast<int>(j));
                if (m.allow_low_quality_matches) {
                    const K key = valid ? ai::max_key(iou) : K(0);
                    K& slot = block_max[t * g + j];
                    slot = std::max(slot, key);
                }
            }
            const float argmax = static_cast<float>(best.argmax);
            const bool negative = g == 0 || m.threshold_code(best.best, argmax) == float(focal::background_label);
            bool near = false;
            if (negative)
                for (index_t c = 0; c < nc && !near; ++c)
                    near = m.near_crowd(fd::unfused_iof<PlusOne>(a, box_at(crowd, c), area_a));
            if (valid) {
                codes[i] = static_cast<std::int32_t>(m.anchor_code(g > 0, best.best, argmax, near, finite));
                max_iou[i] = finite ? best.best : ai::quiet_nan<float>();
            }
        }
    if (!m.allow_low_quality_matches || g == 0) return;
    // pass 2
    std::vector<K> gt_max(static_cast<std::size_t>(g), K(0));
    for (index_t j = 0; j < g; ++j)
        for (index_t t = 0; t < tiles; ++t) gt_max[j] = std::max(gt_max[j], block_max[t * g + j]);
    // pass 3
    for (index_t t = 0; t < tiles; ++t) {
        std::vector<float> target(static_cast<std::size_t>(g));
        bool any = false;
        for (index_t j = 0; j < g; ++j) {
            const bool is = m.gt_promotes(ai::from_key<float>(gt_max[j])) && block_max[t * g + j] == gt_max[j];
            target[j] = is ? ai::from_key<float>(gt_max[j]) : ai::quiet_nan<float>();
            any = any || is;
        }
        if (!any) continue;
        for (index_t k = 0; k < tile; ++k) {
            const index_t i = t * tile + k;
            const box4<float> a = anchor(i);
            const float area_a = fd::unfused_area<PlusOne>(a);
            ai::best_match<float> best;
            bool equals = false;
            for (index_t j = 0; j < g; ++j) {
                const float iou = fd::unfused_iou<PlusOne>(a, box_at(gt, j), area_a, gt_area[j]);
                best.consider(iou, static_cast<int>(j));
                equals = equals || iou == target[j];
            }
            if (i < n && m.promotes(best.best, equals, fd::finite_box(a))) codes[i] = best.argmax;
        }
    }
}

void emulate(const focal::max_iou_matcher& m, const boxes& anchors, const boxes& gt, const boxes& crowd,
             std::vector<std::int32_t>& codes, std::vector<float>& max_iou) {
    if (m.plus_one) emulate_impl<true>(m, anchors, gt, crowd, codes, max_iou);
    else emulate_impl<false>(m, anchors, gt, crowd, codes, max_iou);
}

// The emulation equals focal::match_anchors (scalar and default policies): codes and max_iou bits.
void check_against_host(const focal::max_iou_matcher& m, const boxes& anchors, const boxes& gt,
                        const boxes& crowd = {}) {
    const index_t n = rows(anchors);
    std::vector<std::int32_t> codes, host_codes(static_cast<std::size_t>(n)), simd_codes(host_codes.size());
    std::vector<float> iou, host_iou(host_codes.size()), simd_iou(host_codes.size());
    emulate(m, anchors, gt, crowd, codes, iou);
    const focal::matrix_view<const float> c =
        crowd.empty() ? focal::matrix_view<const float>{} : focal::make_view(crowd.data(), rows(crowd), 4);
    const auto av = focal::make_view(anchors.data(), n, 4);
    const auto gv = focal::make_view(gt.data(), rows(gt), 4);
    focal::match_anchors(m, av, gv, c,
                         focal::match_output{focal::make_view(host_codes.data(), n), focal::make_view(host_iou.data(), n)},
                         focal::exec::scalar);
    focal::match_anchors(m, av, gv, c,
                         focal::match_output{focal::make_view(simd_codes.data(), n), focal::make_view(simd_iou.data(), n)});
    CHECK(codes == host_codes);
    CHECK(codes == simd_codes);
    index_t differing_iou = 0;
    for (std::size_t i = 0; i < iou.size(); ++i) {
        const bool same = (std::isnan(iou[i]) && std::isnan(host_iou[i])) || iou[i] == host_iou[i];
        const bool same_simd = (std::isnan(iou[i]) && std::isnan(simd_iou[i])) || iou[i] == simd_iou[i];
        differing_iou += !same || !same_simd;
    }
    CHECK(differing_iou == 0);
}

}  // namespace

TEST_CASE("unfused<float> IoU, area and intersection have the host formulas' bits") {
    std::mt19937 rng(7);
    const boxes a = random_boxes(rng, 2000, 100, 100, 0, 40), b = random_boxes(rng, 2000, 100, 100, 0, 40);
    index_t differ = 0;
    for (index_t i = 0; i < 2000; ++i) {
        const auto x = box_at(a, i), y = box_at(b, i);
        differ += bits(fd::unfused_iou<false>(x, y, fd::unfused_area<false>(x), fd::unfused_area<false>(y))) !=
                  bits(focal::iou(x, y));
        const fd::overlap<true> ov;
        differ += bits(fd::unfused_iou<true>(x, y, fd::unfused_area<true>(x), fd::unfused_area<true>(y))) !=
                  bits(ov.iou(x, y, ov.area(x), ov.area(y)));
        differ += bits(fd::unfused_area<false>(x)) != bits(focal::area(x));
    }
    CHECK(differ == 0);
    // Empty boxes: 0, not NaN; NaN coordinates: NaN.
    const box4<float> e{{1, 1, 1, 1}}, nan_box{{0, 0, std::nanf(""), 1}};
    CHECK(fd::unfused_iou<false>(e, e, 0.0f, 0.0f) == 0.0f);
    CHECK(std::isnan(fd::unfused_iou<false>(nan_box, e, fd::unfused_area<false>(nan_box), 0.0f)));
    CHECK(fd::unfused_iof<false>(e, e, 0.0f) == 0.0f);
    CHECK(fd::unfused_iof<false>(box4<float>{{0, 0, 2, 2}}, box4<float>{{1, 0, 3, 2}}, 4.0f) == 0.5f);
}

TEST_CASE("keys order like the IoUs; NaN, 0 and -0 are key 0; finite_box; target_code") {
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (int k = 0; k < 1000; ++k) {
        const float x = u(rng), y = u(rng);
        CHECK((ai::max_key(x) < ai::max_key(y)) == (x < y));
        CHECK(ai::from_key<float>(ai::max_key(x)) == x);
    }
    CHECK(ai::max_key(std::nanf("")) == 0u);
    CHECK(ai::max_key(-0.0f) == 0u);
    CHECK(ai::max_key(0.0f) == 0u);
    CHECK(ai::from_key<float>(0u) == 0.0f);
    CHECK(ai::max_key(1.0) == [] {
        double one = 1.0;
        unsigned long long u64;
        std::memcpy(&u64, &one, 8);
        return u64;
    }());
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(fd::finite_box(box4<float>{{0, 0, 1, 1}}));
    CHECK(!fd::finite_box(box4<float>{{0, 0, inf, 1}}));
    CHECK(!fd::finite_box(box4<float>{{0, std::nanf(""), 1, 1}}));
    CHECK(ai::target_code(focal::ignored_label, 3) == focal::ignored_label);
    CHECK(ai::target_code(focal::background_label, 3) == focal::background_label);
    CHECK(ai::target_code(2, 3) == 2);
    CHECK(ai::target_code(3, 3) == focal::ignored_label);
    CHECK(ai::target_code(-3, 3) == focal::ignored_label);
    CHECK(std::isnan(ai::quiet_nan<float>()));
    CHECK(std::isnan(ai::quiet_nan<double>()));
}

TEST_CASE("the device algorithm, emulated, gives match_anchors' codes: random problems, every option") {
    std::mt19937 rng(11);
    for (const auto& m : every_matcher())
        for (int rep = 0; rep < 6; ++rep) {
            CAPTURE(rep);
            CAPTURE(m.plus_one);
            CAPTURE(m.zero_iou_guard);
            const index_t n = std::uniform_int_distribution<index_t>(1, 1500)(rng);
            const index_t g = std::uniform_int_distribution<index_t>(0, 300)(rng);  // > 256: two gt chunks
            const boxes anchors = random_boxes(rng, n, 300, 200, 4, 60);
            const boxes gt = random_boxes(rng, g, 300, 200, 2, 80);
            const boxes crowd = rep % 2 ? random_boxes(rng, 3, 300, 200, 20, 100) : boxes{};
            check_against_host(m, anchors, gt, crowd);
        }
}

TEST_CASE("emulation: edge cases (no gt, one gt, ties, between thresholds, degenerate, NaN, crowd)") {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
    const auto anchors = focal::make_anchors<float>(focal::anchor_presets::torchvision(), focal::size2d{128, 160});
    std::mt19937 rng(5);
    for (const auto& m : every_matcher()) {
        CAPTURE(m.plus_one);
        check_against_host(m, anchors, {});                                  // no gt: -1 everywhere
        check_against_host(m, anchors, {}, {10, 10, 60, 60});                // no gt, a crowd region
        check_against_host(m, anchors, {30, 30, 90, 80});                    // one gt
        check_against_host(m, anchors, {30, 30, 90, 80, 30, 30, 90, 80});    // identical gts: first wins
        check_against_host(m, anchors, {0, 0, 8, 8, 50, 50, 50, 90, 70, 70, 60, 60, 1000, 1000, 1010, 1010});
        check_against_host(m, anchors, {2, 2, 3, 3});                        // tiny: low-quality ties
        // Anchors in a grid with exact ties and boxes between the thresholds.
        boxes grid;
        for (int y = 0; y < 20; ++y)
            for (int x = 0; x < 20; ++x) grid.insert(grid.end(), {x * 8.0f, y * 8.0f, x * 8.0f + 16, y * 8.0f + 16});
        check_against_host(m, grid, {8, 8, 24, 24, 4, 4, 20, 20, 40, 40, 52, 56, 0, 0, 160, 160});
        // Non-finite and degenerate anchors.
        boxes odd = random_boxes(rng, 300, 100, 100, 5, 30);
        odd[4 * 3 + 0] = nan;
        odd[4 * 7 + 2] = inf;
        odd[4 * 9 + 0] = -inf;
        odd[4 * 9 + 2] = inf;
        odd[4 * 11 + 1] = -inf;
        for (int c = 0; c < 4; ++c) odd[4 * 13 + c] = 50;      // a point
        odd[4 * 15 + 2] = odd[4 * 15 + 0] - 3;                 // inverted
        check_against_host(m, odd, random_boxes(rng, 7, 100, 100, 5, 40), {0, 0, 30, 30});
    }
}

TEST_CASE("emulation: 20,000 anchors of a real pyramid x 50 gt, several tiles holding one gt's maximum") {
    const auto anchors = focal::make_anchors<float>(focal::anchor_presets::torchvision(), focal::size2d{320, 416});
    REQUIRE(rows(anchors) > 20000);
    std::mt19937 rng(17);
    for (const auto& m : {focal::max_iou_matcher{}, focal::matcher_presets::torchvision()})
        check_against_host(m, anchors, random_boxes(rng, 50, 416, 320, 4, 200), random_boxes(rng, 2, 416, 320, 30, 60));
}

TEST_CASE("build_targets' per-anchor rule (target_code, the coder's encode) reproduces focal::build_targets") {
    std::mt19937 rng(23);
    const boxes anchors = random_boxes(rng, 700, 200, 200, 4, 50), gt = random_boxes(rng, 9, 200, 200, 4, 80);
    const index_t n = rows(anchors), g = rows(gt);
    std::vector<std::int32_t> codes(static_cast<std::size_t>(n));
    focal::match_anchors(focal::max_iou_matcher{}, focal::make_view(anchors.data(), n, 4),
                         focal::make_view(gt.data(), g, 4), focal::match_output{focal::make_view(codes.data(), n)});
    std::vector<std::int64_t> gt_labels(static_cast<std::size_t>(g));
    for (index_t j = 0; j < g; ++j) gt_labels[j] = 3 * j + 1;
    const focal::delta_xywh_coder coder{10, 10, 5, 5};
    std::vector<std::int64_t> labels(codes.size());
    std::vector<float> targets(codes.size() * 4);
    const index_t positives = focal::build_targets(
        coder, focal::vector_view<const std::int32_t>(codes.data(), n), focal::make_view(anchors.data(), n, 4),
        focal::make_view(gt.data(), g, 4), focal::vector_view<const std::int64_t>(gt_labels.data(), g),
        focal::make_view(labels.data(), n), focal::make_view(targets.data(), n, 4), focal::exec::scalar);
    index_t count = 0, differ = 0;
    for (index_t i = 0; i < n; ++i) {
        const std::int64_t code = ai::target_code(codes[i], g);
        std::int64_t label = code;
        box4<float> d{{0, 0, 0, 0}};
        if (code >= 0) {
            ++count;
            label = gt_labels[code];
            d = coder.encode(box_at(gt, code), box_at(anchors, i));
        }
        differ += label != labels[i];
        for (int c = 0; c < 4; ++c) differ += bits(d[c]) != bits(targets[i * 4 + c]);
    }
    CHECK(count == positives);
    CHECK(count > 0);
    CHECK(differ == 0);
}
