// Boxes: formats, area, IoU / GIoU (bit-identical to torchvision for valid boxes), the pairwise
// matrix under every execution policy, and the edge cases.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <doctest/doctest.h>
#include <focal/box/format.hpp>
#include <focal/box/iou.hpp>
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
