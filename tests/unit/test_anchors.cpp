// Anchors: torchvision parity on every anchors_* fixture case (float32, exact), detectron2 and
// Detectron presets against values computed by hand from their formulas
// (shared/reference-implementations.md b.0, b.2-b.4), layouts, execution policies, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <focal/anchor/cell_anchors.hpp>
#include <focal/anchor/generate.hpp>
#include <focal/anchor/grid.hpp>
#include <focal/anchor/presets.hpp>
#include <string>
#include <vector>

#include "support/fixtures.hpp"

using focal::index_t;
using focal::size2d;

namespace {

std::vector<float> generate(const focal::anchor_spec& spec, size2d image) {
    return focal::make_anchors<float>(spec, image);
}

// Row k of a row-major n x 4 buffer.
template <class T>
std::vector<T> row(const std::vector<T>& a, index_t k) {
    return {a[k * 4], a[k * 4 + 1], a[k * 4 + 2], a[k * 4 + 3]};
}

// got[first + k] == float(want[k]) within tol (0: exactly the double value rounded once).
void check_rows(const std::vector<float>& got, index_t first, const std::vector<std::vector<double>>& want,
                double tol) {
    for (std::size_t k = 0; k < want.size(); ++k) {
        CAPTURE(k);
        for (int c = 0; c < 4; ++c) {
            CAPTURE(c);
            CHECK(std::abs(got[(first + static_cast<index_t>(k)) * 4 + c] - static_cast<float>(want[k][c])) <= tol);
        }
    }
}

}  // namespace

TEST_CASE("torchvision preset reproduces every anchors_* fixture case exactly (float32)") {
    const focal_test::fixture_set fx(focal_test::torchvision_fixtures());
    const auto cases = fx.cases("anchors");
    REQUIRE(!cases.empty());
    for (const auto& c : cases) {
        CAPTURE(c);
        const auto& p = fx.params(c);
        const auto base = p.at("base_sizes").get<std::vector<double>>();
        const auto spec = focal::anchor_presets::torchvision(base);

        // The preset's truncated sizes are the manifest's.
        const auto sizes = p.at("sizes").get<std::vector<std::vector<double>>>();
        REQUIRE(sizes.size() == spec.levels.size());
        for (std::size_t l = 0; l < sizes.size(); ++l) CHECK(spec.levels[l].sizes == sizes[l]);

        const auto image_hw = p.at("image_hw").get<std::vector<index_t>>();
        const auto padded_hw = p.at("padded_hw").get<std::vector<index_t>>();
        const auto grid_hw = p.at("grid_hw").get<std::vector<std::vector<index_t>>>();
        const auto strides_hw = p.at("strides_hw").get<std::vector<std::vector<index_t>>>();
        const size2d image{image_hw[0], image_hw[1]};
        const size2d padded = focal::padded_size(spec, image);
        CHECK(padded.height == padded_hw[0]);
        CHECK(padded.width == padded_hw[1]);
        const auto grids = focal::feature_grids(spec, image);
        REQUIRE(grids.size() == grid_hw.size());
        const auto layout = focal::anchor_layout(spec, image);
        for (std::size_t l = 0; l < grids.size(); ++l) {
            CAPTURE(l);
            CHECK(grids[l].height == grid_hw[l][0]);
            CHECK(grids[l].width == grid_hw[l][1]);
            CHECK(layout[l].stride_y == static_cast<double>(strides_hw[l][0]));  // padded // grid
            CHECK(layout[l].stride_x == static_cast<double>(strides_hw[l][1]));
        }

        const auto want = fx.array<float>(c, "anchors");
        const auto n = static_cast<index_t>(want.shape()[0]);
        REQUIRE(want.shape()[1] == 4);
        CHECK(focal::anchor_count(spec, image) == n);
        CHECK(focal::anchor_count(spec, std::span<const size2d>(grids)) == n);

        auto exact = [&](const std::vector<float>& got, const char* how) {
            CAPTURE(how);
            REQUIRE(static_cast<index_t>(got.size()) == n * 4);
            index_t mismatches = 0;
            for (index_t i = 0; i < n * 4; ++i) mismatches += got[i] != want.data()[i];
            CHECK(mismatches == 0);
        };
        exact(generate(spec, image), "image size, simd");
        exact(focal::make_anchors<float>(spec, padded, focal::exec::scalar), "padded size, scalar");
        exact(focal::make_anchors<float>(spec, image, focal::exec::parallel_policy{.threads = 3, .min_elements = 1}),
              "parallel, 3 threads");
        {  // explicit feature-map sizes, given the padded batch size (torchvision's ImageList.tensors)
            std::vector<size2d> g;
            for (const auto& hw : grid_hw) g.push_back({hw[0], hw[1]});
            std::vector<float> out(static_cast<std::size_t>(n * 4));
            focal::generate_anchors(spec, padded, g, focal::make_view(out.data(), n, index_t(4)));
            exact(out, "explicit grids");
        }
        {  // double output (torchvision with float64 features): the same values
            const auto d = focal::make_anchors<double>(spec, image);
            index_t off = 0;
            for (index_t i = 0; i < n * 4; ++i) off += std::abs(d[i] - want.data()[i]) > 1e-4;
            CHECK(off == 0);
        }
    }
}

TEST_CASE("torchvision preset: P3 cell anchors as in the reference (ratio-major, rounded half-to-even)") {
    const auto a = focal::cell_anchors<float>(focal::anchor_presets::torchvision(), 0);
    const std::vector<float> want{-23, -11, 23, 11, -28, -14, 28, 14, -35, -18, 35, 18,   // r = 0.5
                                  -16, -16, 16, 16, -20, -20, 20, 20, -25, -25, 25, 25,   // r = 1
                                  -11, -23, 11, 23, -14, -28, 14, 28, -18, -35, 18, 35};  // r = 2
    CHECK(a == want);
    // 800 x 1344: 201,600 anchors; P6 13 x 21 cells at strides (61, 64), P7 7 x 11 at (114, 122).
    const auto spec = focal::anchor_presets::torchvision();
    CHECK(focal::anchor_count(spec, {800, 1344}) == 201600);
    CHECK(focal::anchor_count(spec, {800, 1333}) == 201600);
    const auto layout = focal::anchor_layout(spec, {800, 1344});
    CHECK(layout[3].stride_y == 61);
    CHECK(layout[3].stride_x == 64);
    CHECK(layout[4].stride_y == 114);
    CHECK(layout[4].stride_x == 122);
    const auto anchors = generate(spec, {800, 1344});
    // P7 cell (1, 1), first anchor (r 0.5, size 512: w/2 = 362, h/2 = 181).
    const index_t p7 = 201600 - 7 * 11 * 9;
    CHECK(row(anchors, p7 + (11 + 1) * 9) == std::vector<float>{122 - 362, 114 - 181, 122 + 362, 114 + 181});
}

TEST_CASE("detectron2 preset: size-major float sizes, offset, fixed strides (hand-computed)") {
    const auto spec = focal::anchor_presets::detectron2();
    const double s0 = 32, s1 = 32 * std::pow(2.0, 1.0 / 3.0);
    const auto a = focal::cell_anchors<float>(spec, 0);
    REQUIRE(a.size() == 36);
    // w = sqrt(s^2 / r), h = r w; corners +-w/2, +-h/2. Order: (s0: r 0.5, 1, 2), (s1: ...), ...
    const double w05 = std::sqrt(s0 * s0 / 0.5), w2 = std::sqrt(s0 * s0 / 2.0), w1s1 = s1;
    const std::vector<std::vector<double>> want{
        {-w05 / 2, -0.5 * w05 / 2, w05 / 2, 0.5 * w05 / 2},  // 45.2548 x 22.6274
        {-16, -16, 16, 16},
        {-w2 / 2, -2 * w2 / 2, w2 / 2, 2 * w2 / 2},
        {-w1s1 / 2 * std::sqrt(2.0), -w1s1 / 2 / std::sqrt(2.0), w1s1 / 2 * std::sqrt(2.0), w1s1 / 2 / std::sqrt(2.0)},
        {-w1s1 / 2, -w1s1 / 2, w1s1 / 2, w1s1 / 2}};  // 40.3175 square
    check_rows(a, 0, want, 2e-5);
    CHECK(a[0] == static_cast<float>(-std::sqrt(2048.0) / 2));  // rounded once from double: -22.627417
    CHECK(a[16] == static_cast<float>(-s1 / 2));                // -20.158737

    // Whole pyramid: 800 x 1344 has torchvision's count, but P6 / P7 keep strides 64 / 128.
    CHECK(focal::anchor_count(spec, {800, 1344}) == 201600);
    const auto anchors = generate(spec, {800, 1344});
    const index_t p6 = 201600 - (13 * 21 + 7 * 11) * 9;
    // P6 cell (1, 2), size 256 ratio 1 (2nd anchor of the cell): centre (128, 64).
    CHECK(row(anchors, p6 + (21 + 2) * 9 + 1) == std::vector<float>{0, -64, 256, 192});
    // P3 cell (2, 3), ratio 1 size 32: centre (24, 16).
    CHECK(row(anchors, (2 * 168 + 3) * 9 + 1) == std::vector<float>{8, 0, 40, 32});

    // OFFSET = 0.5: centres at (j + 0.5) stride.
    const auto half = generate(focal::anchor_presets::detectron2(0.5), {64, 64});
    CHECK(row(half, 1) == std::vector<float>{-12, -12, 20, 20});
    CHECK(row(half, (8 + 1) * 9 + 1) == std::vector<float>{-4, -4, 28, 28});  // cell (1, 1): centre (12, 12)
}

TEST_CASE("Detectron / paper preset: octave-major, ratios 1, 2, 0.5, base-window rounding, +1 (hand-computed)") {
    const auto spec = focal::anchor_presets::detectron();
    CHECK(focal::anchor_presets::paper().rounding == spec.rounding);
    const auto a = focal::cell_anchors<float>(spec, 0);
    REQUIRE(a.size() == 36);
    // P3, stride 8, base window [0, 0, 7, 7], centre 3.5. Octave 0 (size 32, scale 4):
    //   r 1:   w0 = h0 = 8                      -> 32 x 32   -> [-12, -12, 19, 19]
    //   r 2:   w0 = round(sqrt(32)) = 6, h0 = 12 -> 24 x 48   -> [-8, -20, 15, 27]
    //   r 0.5: w0 = round(sqrt(128)) = 11, h0 = round(5.5) = 6 -> 44 x 24 -> [-18, -8, 25, 15]
    // Octave 1, r 1: w = 8 * 4 * 2^(1/3) = 40.3175 -> 3.5 -+ 0.5 (w - 1) = -16.1587, 23.1587
    const double w1 = 32 * std::pow(2.0, 1.0 / 3.0);
    check_rows(a, 0,
               {{-12, -12, 19, 19},
                {-8, -20, 15, 27},
                {-18, -8, 25, 15},
                {3.5 - 0.5 * (w1 - 1), 3.5 - 0.5 * (w1 - 1), 3.5 + 0.5 * (w1 - 1), 3.5 + 0.5 * (w1 - 1)}},
               0.0);
    // +1 convention widths of the ratio-1 anchors: 32, 40.32, 50.80.
    for (int o = 0; o < 3; ++o)
        CHECK(a[(o * 3) * 4 + 2] - a[(o * 3) * 4] + 1 == doctest::Approx(32 * std::pow(2.0, o / 3.0)));
    // P5 (stride 32), r 0.5: w0 = round(sqrt(2048)) = 45, h0 = round(22.5) = 22 (half to even, not 23);
    // scale 128 / 32 = 4 -> 180 x 88 around 15.5 -> [-74, -28, 105, 59].
    const auto p5 = focal::cell_anchors<float>(spec, 2);
    CHECK(row(p5, 2) == std::vector<float>{-74, -28, 105, 59});

    // Padding to 128 and fixed strides: a 100 x 130 image is padded to 128 x 256.
    CHECK(focal::feature_grids(spec, {100, 130})[0].height == 16);
    CHECK(focal::feature_grids(spec, {100, 130})[0].width == 32);
    const auto anchors = generate(spec, {100, 130});
    CHECK(row(anchors, (32 + 2) * 9) == std::vector<float>{-12 + 16, -12 + 8, 19 + 16, 19 + 8});  // cell (1, 2)
}

TEST_CASE("anchor order, scales and a custom level") {
    focal::anchor_spec spec;  // default = detectron2 conventions
    spec.levels = {{16, {10, 20}, {1, 2}, {1, 4}}};
    spec.rounding = focal::anchor_rounding::none;
    // size-major: (10: r1, r4), (20: ...), (40), (20 * 2... sides are sizes x scales = 10, 20, 20, 40.
    auto a = focal::cell_anchors<double>(spec, 0);
    REQUIRE(a.size() == 32);
    CHECK(a[0] == -5);    // side 10, r 1
    CHECK(a[4] == -2.5);  // side 10, r 4: w = 5, h = 20
    CHECK(a[5] == -10);
    CHECK(a[8] == -10);  // side 20 (10 x scale 2), r 1
    spec.order = focal::anchor_order::ratio_major;
    a = focal::cell_anchors<double>(spec, 0);
    CHECK(a[0] == -5);
    CHECK(a[4] == -10);    // r 1, side 20
    CHECK(a[16] == -2.5);  // r 4, side 10
    // plus_one without base-window rounding: x2 - x1 + 1 = w.
    spec.plus_one = true;
    a = focal::cell_anchors<double>(spec, 0);
    CHECK(a[2] - a[0] + 1 == 10);
    CHECK(a[0] == -0.5 - 4.5);  // centre offset 0 - 0.5, half width (10 - 1) / 2
}

TEST_CASE("execution policies and output layouts give identical anchors") {
    for (const auto& spec : {focal::anchor_presets::torchvision(), focal::anchor_presets::detectron2(0.5),
                             focal::anchor_presets::detectron()}) {
        const size2d image{333, 517};
        const index_t n = focal::anchor_count(spec, image);
        REQUIRE(n > 0);
        const auto ref = focal::make_anchors<float>(spec, image, focal::exec::scalar);
        CHECK(focal::make_anchors<float>(spec, image, focal::exec::simd) == ref);
        CHECK(focal::make_anchors<float>(spec, image, focal::exec::parallel_policy{.threads = 4, .min_elements = 1}) ==
              ref);
        // column-major output
        std::vector<float> cm(static_cast<std::size_t>(n * 4));
        focal::generate_anchors(spec, image, focal::matrix_view<float>(cm.data(), {n, 4}, {1, n}),
                                focal::exec::parallel);
        index_t diff = 0;
        for (index_t i = 0; i < n; ++i)
            for (index_t c = 0; c < 4; ++c) diff += cm[c * n + i] != ref[i * 4 + c];
        CHECK(diff == 0);
        // the levels' rows tile the output
        index_t next = 0;
        for (const auto& l : focal::anchor_layout(spec, image)) {
            CHECK(l.first == next);
            next += l.count;
        }
        CHECK(next == n);
    }
    // an empty image has no anchors; writing into an empty view is fine
    const auto spec = focal::anchor_presets::torchvision();
    CHECK(focal::anchor_count(spec, {0, 0}) == 0);
    focal::generate_anchors(spec, {0, 100}, focal::matrix_view<float>(nullptr, 0, 4));
}

TEST_CASE("anchor errors are thrown before anything is written") {
    auto spec = focal::anchor_presets::torchvision();
    std::vector<float> out(16, 7.0f);
    auto small = focal::make_view(out.data(), index_t(4), index_t(4));
    CHECK_THROWS_WITH_AS(focal::generate_anchors(spec, {64, 64}, small),
                         doctest::Contains("focal::generate_anchors: out must be of shape [anchor_count x 4]"),
                         focal::error);
    CHECK(out == std::vector<float>(16, 7.0f));
    CHECK_THROWS_WITH_AS(focal::anchor_count(spec, {-1, 64}),
                         "focal::anchor_count: image must be of height and width in [0, 2^24], got [-1 x 64]",
                         focal::error);
    std::vector<size2d> grids(2);
    CHECK_THROWS_WITH_AS(focal::anchor_count(spec, std::span<const size2d>(grids)),
                         "focal::anchor_count: grids must be one per level (5), got 2 grids", focal::error);
    auto bad = spec;
    bad.levels[1].ratios = {1.0, 0.0};
    CHECK_THROWS_WITH_AS(focal::anchor_count(bad, {64, 64}),
                         "focal::anchor_count: levels[1].ratios must be finite and > 0, got 0", focal::error);
    bad = spec;
    bad.levels[0].sizes.clear();
    CHECK_THROWS_WITH_AS(focal::make_anchors(bad, {64, 64}),
                         "focal::anchor_count: levels[0].sizes must be non-empty, got an empty list", focal::error);
    bad = spec;
    bad.levels.clear();
    CHECK_THROWS_AS(focal::anchor_count(bad, {64, 64}), focal::error);
    bad = spec;
    bad.offset = std::nan("");
    CHECK_THROWS_AS(focal::anchor_count(bad, {64, 64}), focal::error);
    bad = spec;
    bad.size_divisibility = 0;
    CHECK_THROWS_AS(focal::anchor_count(bad, {64, 64}), focal::error);
    bad = spec;
    bad.levels[2].stride = -8;
    CHECK_THROWS_AS(focal::anchor_count(bad, {64, 64}), focal::error);
    const index_t n = focal::anchor_count(spec, {64, 64});
    CHECK_THROWS_WITH_AS(focal::generate_anchors(spec, {64, 64}, focal::matrix_view<float>(nullptr, n, 4)),
                         doctest::Contains("out must be a non-null pointer when not empty"), focal::error);
    std::vector<float> big(static_cast<std::size_t>(n * 4));
    CHECK_THROWS_WITH_AS(focal::generate_anchors(spec, {64, 64}, focal::matrix_view<float>(big.data(), {n, 4}, {1, 1})),
                         doctest::Contains("out must be a view whose elements do not overlap"), focal::error);
    CHECK_THROWS_AS(focal::cell_anchors<float>(spec, 5), focal::error);
}
