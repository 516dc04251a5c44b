// CUDA top_candidates and RetinaNet post-processing against the host (retinanet/postprocess.hpp,
// retinanet/detail/top_candidates.hpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include <focal/anchor/generate.hpp>
#include <focal/anchor/grid.hpp>
#include <focal/anchor/presets.hpp>
#include <focal/cuda/postprocess.cuh>
#include <focal/cuda/top_candidates.cuh>
#include <focal/retinanet/postprocess.hpp>

#include "harness.cuh"

namespace {

using focal::index_t;

// Logits on a grid of 1/32 (exact ties between equal logits, and distinct logits' scores far apart
// compared with an ulp), mostly low as a trained head's.
std::vector<float> quantized_logits(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(-4.0f, 1.5f);
    std::vector<float> v(n);
    for (auto& x : v) x = std::round(d(rng) * 32.0f) / 32.0f;
    return v;
}

struct detections {
    std::vector<float> boxes, scores;
    std::vector<std::int64_t> labels;
    std::vector<std::int32_t> counts;
};

void compare(const detections& got, const detections& want, index_t batch, index_t d, bool exact_order) {
    for (index_t b = 0; b < batch; ++b) {
        const auto n = static_cast<std::size_t>(want.counts[static_cast<std::size_t>(b)]);
        CHECK_EQ(got.counts[static_cast<std::size_t>(b)], want.counts[static_cast<std::size_t>(b)]);
        if (got.counts[static_cast<std::size_t>(b)] != want.counts[static_cast<std::size_t>(b)]) continue;
        using row = std::tuple<float, std::int64_t, float, float, float, float>;
        auto rows = [&](const detections& x) {
            std::vector<row> r;
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t at = static_cast<std::size_t>(b * d) + i;
                r.emplace_back(-x.scores[at], x.labels[at], x.boxes[4 * at], x.boxes[4 * at + 1], x.boxes[4 * at + 2],
                               x.boxes[4 * at + 3]);
            }
            if (!exact_order) std::sort(r.begin(), r.end());
            return r;
        };
        auto g = rows(got), w = rows(want);
        if (!exact_order && n > 0) {
            // torchvision mode above 1000 candidates: the host orders equal scores as std::sort
            // does, the device by candidate index, so when max_detections cuts through a
            // group of equal scores the two keep different members of it. Compare the rows above
            // the lowest kept score (less a few ulps: device and host scores may differ by one).
            float lowest = -std::get<0>(w.back());
            for (const auto& r : w) lowest = std::min(lowest, -std::get<0>(r));
            const float above = lowest * (1.0f + 1e-6f);
            auto strictly_above = [above](std::vector<row> r) {
                r.erase(std::remove_if(r.begin(), r.end(), [above](const row& x) { return -std::get<0>(x) <= above; }), r.end());
                return r;
            };
            g = strictly_above(std::move(g));
            w = strictly_above(std::move(w));
            CHECK_EQ(g.size(), w.size());
            if (g.size() != w.size()) continue;
        }
        const std::size_t m = w.size();
        std::vector<float> gs, ws, gb, wb;
        std::vector<std::int64_t> gl, wl;
        for (std::size_t i = 0; i < m; ++i) {
            gs.push_back(-std::get<0>(g[i])), ws.push_back(-std::get<0>(w[i]));
            gl.push_back(std::get<1>(g[i])), wl.push_back(std::get<1>(w[i]));
            for (float v : {std::get<2>(g[i]), std::get<3>(g[i]), std::get<4>(g[i]), std::get<5>(g[i])}) gb.push_back(v);
            for (float v : {std::get<2>(w[i]), std::get<3>(w[i]), std::get<4>(w[i]), std::get<5>(w[i])}) wb.push_back(v);
        }
        CHECK(gl == wl);
        CHECK_CLOSE(gs, ws, 1e-6, 0.0);
        CHECK_CLOSE(gb, wb, 1e-4, 1e-4);
    }
}

void run_case(index_t batch, index_t classes, focal::size2d image, const focal::retinanet_postprocess& p, unsigned seed) {
    const auto spec = focal::anchor_presets::torchvision();
    const auto anchors = focal::make_anchors(spec, image);
    const auto a = static_cast<index_t>(anchors.size() / 4);
    std::vector<index_t> per_level;
    for (const auto& l : focal::anchor_layout(spec, image)) per_level.push_back(l.count);
    const auto logits = quantized_logits(static_cast<std::size_t>(batch * a * classes), seed);
    const auto deltas = focal_test::uniform(static_cast<std::size_t>(batch * a * 4), -1.0f, 1.0f, seed + 1);
    std::vector<focal::image_size> sizes;
    for (index_t b = 0; b < batch; ++b) sizes.push_back({image.height - 7 * b, image.width - 5 * b});
    const index_t d = p.capacity();

    detections want{std::vector<float>(static_cast<std::size_t>(batch * d * 4)), std::vector<float>(static_cast<std::size_t>(batch * d)),
                    std::vector<std::int64_t>(static_cast<std::size_t>(batch * d)), std::vector<std::int32_t>(static_cast<std::size_t>(batch))};
    focal::postprocess(p, focal::tensor3_view<const float>(logits.data(), batch, a, classes),
                       focal::tensor3_view<const float>(deltas.data(), batch, a, index_t(4)),
                       focal::make_view(anchors.data(), a, index_t(4)), std::span<const index_t>(per_level),
                       std::span<const focal::image_size>(sizes),
                       focal::batch_detections_output{focal::tensor3_view<float>(want.boxes.data(), batch, d, index_t(4)),
                                                      focal::make_view(want.scores.data(), batch, d),
                                                      focal::make_view(want.labels.data(), batch, d),
                                                      focal::make_view(want.counts.data(), batch)});

    focal::cuda::device_buffer<float> dl(logits), dd(deltas), da(anchors), ob(static_cast<std::size_t>(batch * d * 4)),
        os(static_cast<std::size_t>(batch * d));
    focal::cuda::device_buffer<std::int64_t> ol(static_cast<std::size_t>(batch * d));
    focal::cuda::device_buffer<std::int32_t> oc(static_cast<std::size_t>(batch));
    focal::cuda::device_buffer<unsigned char> ws(focal::cuda::postprocess_workspace_size(p, batch, a, classes, per_level));
    focal::cuda::postprocess(p, focal::make_device_view<const float>(dl.data(), batch, a, classes),
                             focal::make_device_view<const float>(dd.data(), batch, a, index_t(4)),
                             focal::make_device_view<const float>(da.data(), a, index_t(4)), std::span<const index_t>(per_level),
                             std::span<const focal::image_size>(sizes),
                             focal::batch_detections_output{focal::make_device_view(ob.data(), batch, d, index_t(4)),
                                                            focal::make_device_view(os.data(), batch, d),
                                                            focal::make_device_view(ol.data(), batch, d), oc.view()},
                             focal::cuda::workspace{ws.data(), ws.size()}, nullptr);
    focal::cuda::synchronize(nullptr);
    const detections got{ob.to_host(), os.to_host(), ol.to_host(), oc.to_host()};
    compare(got, want, batch, d, p.nms.mode == focal::batched_mode::per_class);
}

}  // namespace

FOCAL_CUDA_TEST(cuda_top_candidates_matches_host) {
    const index_t a = 5000, k = 9;
    const std::vector<index_t> per_level{3000, 1500, 400, 100, 0};
    const auto logits = quantized_logits(static_cast<std::size_t>(a * k), 11);
    focal::cuda::device_buffer<float> dl(logits);
    for (index_t top : {0, 1, 100, 1000, 50000}) {
        for (float threshold : {-1e30f, -4.0f, -2.5f}) {
            const std::size_t bytes = focal::cuda::top_candidates_workspace_size(a, k, per_level, top);
            focal::cuda::device_buffer<unsigned char> ws(bytes);
            index_t slots = 0;
            for (index_t n : per_level) slots += std::min(top, n * k);
            focal::cuda::device_buffer<std::int64_t> flat(static_cast<std::size_t>(std::max<index_t>(slots, 1)));
            focal::cuda::device_buffer<float> lg(static_cast<std::size_t>(std::max<index_t>(slots, 1)));
            focal::cuda::device_buffer<std::int32_t> counts(per_level.size());
            focal::cuda::top_candidates(focal::make_device_view<const float>(dl.data(), a, k), per_level, threshold, top,
                                        flat.view(), lg.view(), counts.view(), focal::cuda::workspace{ws.data(), ws.size()}, nullptr);
            focal::cuda::synchronize(nullptr);
            const auto f = flat.to_host();
            const auto l = lg.to_host();
            const auto c = counts.to_host();
            index_t begin = 0, slot = 0;
            for (std::size_t v = 0; v < per_level.size(); ++v) {
                std::vector<focal::detail::candidate> want;
                focal::detail::top_candidates<float>(focal::matrix_view<const float>(logits.data() + begin * k, per_level[v], k),
                                                     threshold, top, want);
                CHECK_EQ(static_cast<std::size_t>(c[v]), want.size());
                for (std::size_t i = 0; i < want.size() && i < static_cast<std::size_t>(c[v]); ++i) {
                    CHECK_EQ(f[static_cast<std::size_t>(slot) + i], want[i].flat);
                    CHECK_EQ(l[static_cast<std::size_t>(slot) + i], want[i].logit);
                }
                begin += per_level[v];
                slot += std::min(top, per_level[v] * k);
            }
        }
    }
}

FOCAL_CUDA_TEST(cuda_postprocess_small_matches_host) {
    focal::retinanet_postprocess p;
    run_case(3, 4, {256, 320}, p, 1);
    p.max_candidates_per_level = 50;
    p.max_detections = 30;
    run_case(2, 7, {200, 300}, p, 2);
    run_case(10, 3, {128, 128}, p, 3);  // two passes of images
    p.nms.max_detections = 12;          // capacity() = min(max_detections, nms.max_detections)
    run_case(2, 7, {200, 300}, p, 5);
    run_case(2, 4, {256, 320}, focal::retinanet_postprocess::torchvision(), 4);
}

FOCAL_CUDA_TEST(cuda_postprocess_91_classes_800x1344_matches_host) {
    run_case(2, 91, {800, 1344}, focal::retinanet_postprocess{}, 21);
    run_case(2, 91, {800, 1344}, focal::retinanet_postprocess::torchvision(), 22);
}

FOCAL_CUDA_TEST(cuda_postprocess_bad_input_throws) {
    const focal::retinanet_postprocess p;
    const std::vector<index_t> per_level{10, 6};
    const std::vector<focal::image_size> sizes{{100, 100}};
    focal::cuda::device_buffer<float> l(16 * 3), d(16 * 4), a(16 * 4), ob(100 * 4), os(100);
    focal::cuda::device_buffer<std::int64_t> ol(100);
    focal::cuda::device_buffer<std::int32_t> oc(1);
    focal::cuda::device_buffer<unsigned char> ws(focal::cuda::postprocess_workspace_size(p, 1, 16, 3, per_level));
    const focal::cuda::workspace w{ws.data(), ws.size()};
    auto run = [&](const focal::retinanet_postprocess& q, std::span<const index_t> levels, index_t anchors_rows,
                   const focal::cuda::workspace& space) {
        focal::cuda::postprocess(q, focal::make_device_view<const float>(l.data(), index_t(1), index_t(16), index_t(3)),
                                 focal::make_device_view<const float>(d.data(), index_t(1), index_t(16), index_t(4)),
                                 focal::make_device_view<const float>(a.data(), anchors_rows, index_t(4)), levels,
                                 std::span<const focal::image_size>(sizes),
                                 focal::batch_detections_output{
                                     focal::make_device_view(ob.data(), index_t(1), index_t(100), index_t(4)),
                                     focal::make_device_view(os.data(), index_t(1), index_t(100)),
                                     focal::make_device_view(ol.data(), index_t(1), index_t(100)), oc.view()},
                                 space, nullptr);
    };
    focal::retinanet_postprocess bad = p;
    bad.score_threshold = 1.5;
    CHECK_THROWS_AS(run(bad, per_level, 16, w), focal::error);
    const std::vector<index_t> wrong_levels{10, 5};
    CHECK_THROWS_AS(run(p, wrong_levels, 16, w), focal::error);
    CHECK_THROWS_AS(run(p, per_level, 15, w), focal::error);
    CHECK_THROWS_AS(run(p, per_level, 16, focal::cuda::workspace{ws.data(), 8}), focal::error);
    bad = p;
    bad.max_detections = 101;
    CHECK_THROWS_AS(run(bad, per_level, 16, w), focal::error);
}
