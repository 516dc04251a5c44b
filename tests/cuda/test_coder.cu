// focal::cuda encode_boxes / decode_boxes against the host coder: random boxes, torchvision's and
// Faster R-CNN's weights, every clamp mode, degenerate and non-finite rows, in place, errors.
#include <focal/coder/box_coding.hpp>
#include <focal/coder/delta_xywh.hpp>
#include <focal/cuda/coder.cuh>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "harness.cuh"

using focal::index_t;
namespace fc = focal::cuda;

namespace {

std::vector<float> random_boxes(std::mt19937& rng, index_t n, float extent, float smin, float smax) {
    std::uniform_real_distribution<float> uc(0, extent), us(smin, smax);
    std::vector<float> b;
    for (index_t i = 0; i < n; ++i) {
        const float cx = uc(rng), cy = uc(rng), w = us(rng), h = us(rng);
        b.insert(b.end(), {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2});
    }
    return b;
}

struct coded {
    std::vector<float> host, device;
};

coded run(const focal::delta_xywh_coder& coder, bool encode, const std::vector<float>& in, const std::vector<float>& anchors) {
    const auto n = static_cast<index_t>(in.size() / 4);
    coded r{std::vector<float>(in.size()), {}};
    if (encode)
        focal::encode_boxes(coder, focal::make_view(in.data(), n, 4), focal::make_view(anchors.data(), n, 4),
                            focal::make_view(r.host.data(), n, 4), focal::exec::scalar);
    else
        focal::decode_boxes(coder, focal::make_view(in.data(), n, 4), focal::make_view(anchors.data(), n, 4),
                            focal::make_view(r.host.data(), n, 4), focal::exec::scalar);
    fc::device_buffer<float> din(in), da(anchors), dout(in.size());
    const auto iv = focal::make_device_view<const float>(din.data(), n, 4);
    const auto av = focal::make_device_view<const float>(da.data(), n, 4);
    if (encode) fc::encode_boxes(coder, iv, av, dout.view(n, 4), nullptr);
    else fc::decode_boxes(coder, iv, av, dout.view(n, 4), nullptr);
    r.device = dout.to_host();
    return r;
}

}  // namespace

FOCAL_CUDA_TEST(encode_and_decode_equal_the_host_within_float_rounding) {
    std::mt19937 rng(2);
    const index_t n = 201600;
    const auto anchors = random_boxes(rng, n, 1300, 8, 500), gt = random_boxes(rng, n, 1300, 2, 600);
    std::uniform_real_distribution<float> ud(-3, 3);
    std::vector<float> deltas(static_cast<std::size_t>(n * 4));
    for (auto& d : deltas) d = ud(rng);
    for (const auto& coder : {focal::delta_xywh_coder{}, focal::delta_xywh_coder{10, 10, 5, 5},
                              focal::delta_xywh_coder{.clamping = focal::delta_xywh_coder::clamp_mode::symmetric},
                              focal::delta_xywh_coder{.clamping = focal::delta_xywh_coder::clamp_mode::none}}) {
        const coded e = run(coder, true, gt, anchors);
        CHECK_CLOSE(e.device, e.host, 1e-5, 1e-5);
        const coded d = run(coder, false, deltas, anchors);
        CHECK_CLOSE(d.device, d.host, 1e-5, 2e-3);  // corners ~1e3: a few ulps of the image size
    }
}

FOCAL_CUDA_TEST(coder_degenerate_and_non_finite_rows) {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
    const std::vector<float> anchors = {0, 0, 10, 10, 5, 5, 5, 9, 0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16};
    const std::vector<float> boxes = {2, 2, 2, 8, 0, 0, 4, 4, nan, 0, 4, 4, 0, 0, inf, 4, -1, -1, 20, 20};
    const std::vector<float> deltas = {0, 0, 100, -100, 0, 0, 1, 1, nan, 0, 0, 0, 0, 0, inf, 0, 0.5f, -0.5f, 0.1f, -0.1f};
    for (const auto& coder : {focal::delta_xywh_coder{}, focal::delta_xywh_coder{10, 10, 5, 5}}) {
        const coded e = run(coder, true, boxes, anchors);
        CHECK_CLOSE(e.device, e.host, 1e-5, 1e-5);  // zero widths: large finite deltas on both; NaN stays NaN
        const coded d = run(coder, false, deltas, anchors);
        CHECK_CLOSE(d.device, d.host, 1e-5, 1e-4);  // clamped exp: finite
    }
}

FOCAL_CUDA_TEST(coder_in_place_and_errors) {
    std::mt19937 rng(8);
    const auto anchors = random_boxes(rng, 1000, 500, 8, 200), gt = random_boxes(rng, 1000, 500, 8, 200);
    const focal::delta_xywh_coder coder{};
    std::vector<float> want(gt.size());
    focal::encode_boxes(coder, focal::make_view(gt.data(), 1000, 4), focal::make_view(anchors.data(), 1000, 4),
                        focal::make_view(want.data(), 1000, 4), focal::exec::scalar);
    fc::device_buffer<float> buf(gt), da(anchors);
    const auto av = focal::make_device_view<const float>(da.data(), 1000, 4);
    fc::encode_boxes(coder, fc::device_matrix_view<const float>(buf.view(1000, 4)), av, buf.view(1000, 4), nullptr);
    CHECK_CLOSE(buf.to_host(), want, 1e-5, 1e-5);
    CHECK_THROWS_AS(fc::encode_boxes(coder, av, av, buf.view(250, 16), nullptr), focal::error);
    CHECK_THROWS_AS(fc::decode_boxes(coder, focal::make_device_view<const float>(da.data(), 999, 4), av,
                                     focal::make_device_view(buf.data(), 999, 4), nullptr),
                    focal::error);  // anchors not one per row
    CHECK_THROWS_AS(fc::decode_boxes(focal::delta_xywh_coder{.clamp = -1.0f}, av, av, buf.view(1000, 4), nullptr),
                    focal::error);
    CHECK_THROWS_AS(fc::encode_boxes(coder, av, av, fc::device_matrix_view<float>(buf.data(), {1000, 4}, {0, 1}), nullptr),
                    focal::error);  // overlapping output rows
    fc::encode_boxes(coder, focal::make_device_view<const float>(da.data(), 0, 4),
                     focal::make_device_view<const float>(da.data(), 0, 4), focal::make_device_view(buf.data(), 0, 4),
                     nullptr);  // nothing to do
    fc::synchronize(nullptr);
}
