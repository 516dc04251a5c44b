// Boxes: formats, area, IoU / GIoU (bit-identical to torchvision for valid boxes), the pairwise
// matrix under every execution policy, the matcher's overlaps (box/overlap.hpp: both pixel
// conventions, iof, finite_box, the unfused entry points) and the edge cases.
#include <cmath>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>
#include <focal/box/format.hpp>
#include <focal/box/iou.hpp>
#include <focal/box/overlap.hpp>
#include <focal/box/pairwise.hpp>

#include "support/fixtures.hpp"

using focal::box4;
using focal::index_t;

TEST_CASE("format conversions round-trip; area of inverted boxes is 0") {
    const box4<double> xyxy{{10, 20, 50, 80}};
    const auto xywh = focal::convert(xyxy, focal::box_format::xyxy, focal::box_format::xywh);
    CHECK(xywh[2] == 40);
    CHECK(xywh[3] == 60);
    const auto cxcywh = focal::convert(xyxy, focal::box_format::xyxy, focal::box_format::cxcywh);
    CHECK(cxcywh[0] == 30);
    CHECK(cxcywh[1] == 50);
    for (auto f : {focal::box_format::xywh, focal::box_format::cxcywh}) {
        const auto back = focal::convert(focal::convert(xyxy, focal::box_format::xyxy, f), f, focal::box_format::xyxy);
        for (int c = 0; c < 4; ++c) CHECK(back[c] == xyxy[c]);
    }
    CHECK(focal::area(xyxy) == 2400);
    CHECK(focal::area(box4<double>{{5, 5, 3, 9}}) == 0);  // inverted
    CHECK(focal::area(box4<double>{{5, 5, 5, 9}}) == 0);  // zero width
    CHECK(std::isnan(focal::area(box4<double>{{std::nan(""), 0, 1, 1}})));
}

TEST_CASE("iou and giou: hand-checked values, empty boxes 0 (not NaN), NaN in NaN out") {
    const box4<double> a{{0, 0, 2, 2}}, b{{1, 1, 3, 3}};
    CHECK(focal::iou(a, b) == doctest::Approx(1.0 / 7.0));
    CHECK(focal::giou(a, b) == doctest::Approx(1.0 / 7.0 - 2.0 / 9.0));
    CHECK(focal::iou(a, a) == 1.0);
    CHECK(focal::iou(a, box4<double>{{5, 5, 6, 6}}) == 0.0);
    const box4<double> empty{{3, 3, 3, 3}};
    CHECK(focal::iou(empty, empty) == 0.0);
    CHECK(focal::giou(empty, empty) == 0.0);
    CHECK(focal::iou(box4<double>{{4, 4, 1, 1}}, a) == 0.0);  // inverted counts as empty
    CHECK(std::isnan(focal::iou(box4<double>{{0, 0, std::nan(""), 2}}, a)));
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(focal::iou(box4<double>{{0, 0, inf, inf}}, a) == 0.0);  // infinite area: I / U = 4 / inf
}

TEST_CASE("pairwise IoU / GIoU equal torchvision's box_iou / generalized_box_iou bit for bit (float32)") {
    const focal_test::fixture_set fx(focal_test::data_dir() / "torch_box_losses");
    const auto cases = fx.cases("pairwise");
    REQUIRE(!cases.empty());
    for (const auto& c : cases) {
        const auto a = fx.array<float>(c, "a"), b = fx.array<float>(c, "b");
        const auto want_iou = fx.array<float>(c, "iou"), want_giou = fx.array<float>(c, "giou");
        const auto n = static_cast<index_t>(a.shape(0)), m = static_cast<index_t>(b.shape(0));
        std::vector<float> iou(static_cast<std::size_t>(n * m)), giou(iou.size());
        focal::pairwise_iou(focal::make_view(a.data(), n, 4), focal::make_view(b.data(), m, 4), focal::make_view(iou.data(), n, m));
        focal::pairwise_similarity(focal::giou_similarity{}, focal::make_view(a.data(), n, 4), focal::make_view(b.data(), m, 4),
                                   focal::make_view(giou.data(), n, m));
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < m; ++j) {
                CAPTURE(i);
                CAPTURE(j);
                CHECK(iou[i * m + j] == want_iou(i, j));
                CHECK(giou[i * m + j] == doctest::Approx(want_giou(i, j)).epsilon(1e-6));
            }
    }
}

TEST_CASE("pairwise matrix: scalar, SIMD and threads identical; any output layout; bad shapes rejected") {
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> xy(0, 500), wh(0, 120);
    auto random_boxes = [&](index_t n) {
        std::vector<float> v(static_cast<std::size_t>(n * 4));
        for (index_t i = 0; i < n; ++i) {
            const float x = xy(rng), y = xy(rng);
            v[i * 4] = x;
            v[i * 4 + 1] = y;
            v[i * 4 + 2] = x + wh(rng);
            v[i * 4 + 3] = y + wh(rng);
        }
        return v;
    };
    const index_t n = 21, m = 9001;  // m not a multiple of any packet width or of the column block
    const auto a = random_boxes(n), b = random_boxes(m);
    std::vector<float> scalar(static_cast<std::size_t>(n * m)), simd(scalar.size()), par(scalar.size()), col(scalar.size());
    const auto av = focal::make_view(a.data(), n, 4), bv = focal::make_view(b.data(), m, 4);
    focal::pairwise_iou(av, bv, focal::make_view(scalar.data(), n, m), focal::exec::scalar);
    focal::pairwise_iou(av, bv, focal::make_view(simd.data(), n, m), focal::exec::simd);
    focal::pairwise_iou(av, bv, focal::make_view(par.data(), n, m), focal::exec::parallel_policy{.threads = 2, .min_elements = 0});
    focal::pairwise_iou(av, bv, focal::matrix_view<float>(col.data(), {n, m}, {1, n}));
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < m; ++j) {
            const float want = focal::iou(box4<float>{{a[i * 4], a[i * 4 + 1], a[i * 4 + 2], a[i * 4 + 3]}},
                                          box4<float>{{b[j * 4], b[j * 4 + 1], b[j * 4 + 2], b[j * 4 + 3]}});
            CHECK(scalar[i * m + j] == want);
            CHECK(simd[i * m + j] == want);
            CHECK(par[i * m + j] == want);
            CHECK(col[j * n + i] == want);
        }
    std::vector<float> wrong(static_cast<std::size_t>(n * (m - 1)));
    CHECK_THROWS_AS(focal::pairwise_iou(av, bv, focal::make_view(wrong.data(), n, m - 1)), focal::error);
    std::vector<float> three(12);
    CHECK_THROWS_AS(focal::pairwise_iou(focal::make_view(three.data(), 4, 3), bv, focal::make_view(scalar.data(), 4, m)), focal::error);
    // Empty sets give an empty matrix.
    focal::pairwise_iou(focal::make_view(a.data(), 0, 4), bv, focal::make_view(scalar.data(), 0, m));
    focal::pairwise_iou(av, focal::make_view(b.data(), 0, 4), focal::make_view(scalar.data(), n, 0));
}

TEST_CASE("box/overlap.hpp: overlap<PlusOne> area / intersection / iou / iof, finite_box, the unfused entry points") {
    const focal::detail::overlap<false> ov;
    const focal::detail::overlap<true> ov1;
    const box4<float> anchor{{0, 0, 10, 10}}, crowd{{5, 0, 20, 10}}, apart{{30, 30, 40, 40}}, inverted{{10, 10, 0, 0}};
    // Widths x2 - x1: box/iou.hpp's functions, bit for bit.
    CHECK(ov.area(anchor) == focal::area(anchor));
    CHECK(ov.intersection(anchor, crowd) == focal::intersection_area(anchor, crowd));
    CHECK(ov.iou(anchor, crowd, ov.area(anchor), ov.area(crowd)) == focal::iou(anchor, crowd));
    // iof: intersection over the first box's area (50 / 100), 0 when that box is empty.
    CHECK(ov.iof(anchor, crowd, ov.area(anchor)) == 0.5f);
    CHECK(ov.iof(crowd, anchor, ov.area(crowd)) == 50.0f / 150.0f);
    CHECK(ov.iof(anchor, apart, ov.area(anchor)) == 0.0f);
    CHECK(ov.iof(inverted, anchor, ov.area(inverted)) == 0.0f);  // empty: 0, not NaN
    CHECK(ov.iof(box4<float>{{3, 3, 3, 3}}, anchor, 0.0f) == 0.0f);
    // Widths x2 - x1 + 1 (Detectron): [0, 0, 9, 9] is 100 px, [0, 0, 4, 9] 50 px, IoU 0.5.
    const box4<double> a{{0, 0, 9, 9}}, g{{0, 0, 4, 9}};
    CHECK(ov1.area(a) == 100.0);
    CHECK(ov1.intersection(a, g) == 50.0);
    CHECK(ov1.iou(a, g, ov1.area(a), ov1.area(g)) == 0.5);
    CHECK(ov1.iof(g, a, ov1.area(g)) == 1.0);
    CHECK(ov1.iof(a, g, ov1.area(a)) == 0.5);
    CHECK(ov1.area(box4<double>{{3, 3, 3, 3}}) == 1.0);  // a point is one pixel
    CHECK(ov1.area(box4<double>{{3, 3, 1.5, 9}}) == 0.0);  // inverted by more than a pixel
    CHECK(ov1.iof(box4<double>{{3, 3, 1.5, 9}}, a, 0.0) == 0.0);
    // finite_box: every coordinate finite (a bool for plain values).
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    static_assert(std::is_same_v<decltype(focal::detail::finite_box(anchor)), bool>);
    CHECK(focal::detail::finite_box(anchor));
    CHECK(focal::detail::finite_box(inverted));
    CHECK(focal::detail::finite_box(box4<double>{{-1e308, 0, 1e308, 1}}));
    for (int c = 0; c < 4; ++c)
        for (const float bad : {nan, inf, -inf}) {
            box4<float> b = anchor;
            b[c] = bad;
            CAPTURE(c);
            CAPTURE(bad);
            CHECK(!focal::detail::finite_box(b));
        }
    // The unfused entry points (the device's) equal plain-T evaluation on the host, bit for bit.
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(0, 100), s(0.1f, 60);
    for (int trial = 0; trial < 500; ++trial) {
        const float x = u(rng), y = u(rng), x2 = u(rng), y2 = u(rng);
        const box4<float> p{{x, y, x + s(rng), y + s(rng)}}, q{{x2, y2, x2 + s(rng), y2 + s(rng)}};
        const float ap = focal::detail::unfused_area<false>(p), aq = focal::detail::unfused_area<false>(q);
        CHECK(ap == ov.area(p));
        CHECK(focal::detail::unfused_iou<false>(p, q, ap, aq) == focal::iou(p, q));
        CHECK(focal::detail::unfused_iof<false>(p, q, ap) == ov.iof(p, q, ap));
        const float ap1 = focal::detail::unfused_area<true>(p), aq1 = focal::detail::unfused_area<true>(q);
        CHECK(ap1 == ov1.area(p));
        CHECK(focal::detail::unfused_iou<true>(p, q, ap1, aq1) == ov1.iou(p, q, ap1, aq1));
        CHECK(focal::detail::unfused_iof<true>(p, q, ap1) == ov1.iof(p, q, ap1));
    }
}
