// The delta-xywh box coder: torchvision's BoxCoder (every coder_* case), round trips, the clamp
// modes, degenerate boxes, NaN, and bad input.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <doctest/doctest.h>
#include <focal/coder/box_coding.hpp>

#include "support/fixtures.hpp"

using focal::box4;
using focal::index_t;

namespace {
// |got - want| within rel of the row's magnitude: decoded corners near 0 come from differences of
// coordinates near the image size, so their error is relative to those, not to themselves.
double row_scale(const float* anchor) {
    return std::max({std::abs(anchor[0]), std::abs(anchor[1]), std::abs(anchor[2]), std::abs(anchor[3]), 1.0f});
}
}  // namespace

TEST_CASE("encode and decode equal torchvision's BoxCoder within 1e-5 relative, every coder_* case") {
    const focal_test::fixture_set fx(focal_test::torchvision_fixtures());
    const auto cases = fx.cases("coder");
    REQUIRE(!cases.empty());
    for (const auto& c : cases) {
        CAPTURE(c);
        const auto& p = fx.params(c);
        const auto w = p.at("weights").get<std::vector<float>>();
        const focal::delta_xywh_coder coder{w[0], w[1], w[2], w[3], p.at("clamp").get<float>()};
        const auto anchors = fx.array<float>(c, "anchors"), gt = fx.array<float>(c, "gt");
        const auto encoded = fx.array<float>(c, "encoded"), deltas = fx.array<float>(c, "deltas");
        const auto decoded = fx.array<float>(c, "decoded");
        const auto n = static_cast<index_t>(anchors.shape(0));
        for (auto run : {0, 1, 2}) {
            CAPTURE(run);
            std::vector<float> enc(static_cast<std::size_t>(n * 4)), dec(enc.size());
            const auto av = focal::make_view(anchors.data(), n, 4);
            auto go = [&](const auto& exec) {
                focal::encode_boxes(coder, focal::make_view(gt.data(), n, 4), av, focal::make_view(enc.data(), n, 4), exec);
                focal::decode_boxes(coder, focal::make_view(deltas.data(), n, 4), av, focal::make_view(dec.data(), n, 4), exec);
            };
            if (run == 0) go(focal::exec::scalar);
            if (run == 1) go(focal::exec::simd);
            if (run == 2) go(focal::exec::parallel_policy{.threads = 2, .min_elements = 0});
            for (index_t i = 0; i < n; ++i)
                for (int k = 0; k < 4; ++k) {
                    CAPTURE(i);
                    CAPTURE(k);
                    CHECK(focal_test::close(enc[i * 4 + k], encoded(i, k), 1e-5, 1e-6));
                    CHECK(std::abs(dec[i * 4 + k] - decoded(i, k)) <= 1e-5 * row_scale(&anchors(i, 0)));
                }
        }
    }
}

TEST_CASE("decode(encode(g)) recovers g; the clamp modes; degenerate boxes stay finite") {
    const focal::delta_xywh_coder coder{10, 10, 5, 5};
    const box4<double> anchor{{10, 20, 74, 52}}, g{{3, 25, 90, 41}};
    const auto back = coder.decode(coder.encode(g, anchor), anchor);
    for (int k = 0; k < 4; ++k) CHECK(back[k] == doctest::Approx(g[k]).epsilon(1e-12));

    const double c = std::log(1000.0 / 16.0);
    const focal::delta_xywh_coder upper{}, symmetric{.clamping = focal::delta_xywh_coder::clamp_mode::symmetric},
        none{.clamping = focal::delta_xywh_coder::clamp_mode::none};
    const box4<double> unit{{0, 0, 1, 1}}, huge{{0, 0, 50, -50}};
    const auto u = upper.decode(huge, unit), s = symmetric.decode(huge, unit), n = none.decode(huge, unit);
    CHECK(u[2] - u[0] == doctest::Approx(std::exp(c)));      // dw clamped from above
    CHECK(u[3] - u[1] == doctest::Approx(std::exp(-50.0)));   // upper only: dh = -50 kept
    CHECK(s[3] - s[1] == doctest::Approx(std::exp(-c)));      // symmetric bounds below too
    CHECK(n[2] - n[0] == doctest::Approx(std::exp(50.0)));    // none: unclamped

    // A zero-width box or anchor encodes to a large finite delta, never inf or NaN.
    for (const auto& [box, anc] : {std::pair{box4<float>{{5, 5, 5, 9}}, box4<float>{{0, 0, 8, 8}}},
                                   std::pair{box4<float>{{0, 0, 8, 8}}, box4<float>{{5, 5, 5, 9}}}}) {
        const auto d = upper.encode(box, anc);
        for (int k = 0; k < 4; ++k) CHECK(std::isfinite(d[k]));
    }
    // NaN deltas decode to NaN (the clamp does not hide them).
    const auto nan_box = upper.decode(box4<double>{{0, 0, std::nan(""), 0}}, unit);
    CHECK(std::isnan(nan_box[0]));
    CHECK(std::isnan(nan_box[2]));
}

TEST_CASE("box coding drivers: in place, empty, bad input") {
    std::vector<float> anchors = {0, 0, 10, 10, 5, 5, 25, 15}, boxes = {1, 1, 9, 12, 6, 4, 20, 18}, out(8);
    const focal::delta_xywh_coder coder{};
    focal::encode_boxes(coder, focal::make_view(boxes.data(), 2, 4), focal::make_view(anchors.data(), 2, 4), focal::make_view(out.data(), 2, 4));
    auto in_place = boxes;
    focal::encode_boxes(coder, focal::make_view(in_place.data(), 2, 4), focal::make_view(anchors.data(), 2, 4),
                        focal::make_view(in_place.data(), 2, 4));
    CHECK(in_place == out);
    focal::decode_boxes(coder, focal::make_view(out.data(), 0, 4), focal::make_view(anchors.data(), 0, 4), focal::make_view(out.data(), 0, 4));
    CHECK_THROWS_AS(focal::encode_boxes(coder, focal::make_view(boxes.data(), 2, 4), focal::make_view(anchors.data(), 1, 4),
                                        focal::make_view(out.data(), 2, 4)),
                    focal::error);
    CHECK_THROWS_AS(focal::encode_boxes(focal::delta_xywh_coder{.wx = 0}, focal::make_view(boxes.data(), 2, 4),
                                        focal::make_view(anchors.data(), 2, 4), focal::make_view(out.data(), 2, 4)),
                    focal::error);
}
