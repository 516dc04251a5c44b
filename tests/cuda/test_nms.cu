// CUDA greedy and class-aware NMS against the host nms (nms/greedy.hpp, nms/batched.hpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <focal/cuda/nms.cuh>
#include <focal/nms.hpp>

#include "harness.cuh"

namespace {

using focal::index_t;

// Random xyxy boxes: centres in [0, extent), sizes in [1, 1 + size), with some exact duplicates,
// zero-area and inverted boxes when `odd` is set.
std::vector<float> random_boxes(index_t n, float extent, float size, unsigned seed, bool odd) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> c(0.0f, extent), s(1.0f, 1.0f + size), u(0.0f, 1.0f);
    std::vector<float> b(static_cast<std::size_t>(4 * n));
    for (index_t i = 0; i < n; ++i) {
        const float cx = c(rng), cy = c(rng), w = s(rng), h = s(rng);
        float* r = &b[static_cast<std::size_t>(4 * i)];
        r[0] = cx - w / 2, r[1] = cy - h / 2, r[2] = cx + w / 2, r[3] = cy + h / 2;
        if (!odd || i == 0) continue;
        const float p = u(rng);
        if (p < 0.05f) std::copy(r - 4, r, r);                     // duplicate of the previous box
        else if (p < 0.08f) r[2] = r[0];                           // zero width
        else if (p < 0.10f) std::swap(r[1], r[3]);                 // inverted
    }
    return b;
}

// Scores: uniform, or drawn from `levels` values (many ties), with NaN and -0 sprinkled in.
std::vector<float> random_scores(index_t n, unsigned seed, int levels, bool nan) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::uniform_int_distribution<int> q(0, std::max(levels - 1, 0));
    std::vector<float> s(static_cast<std::size_t>(n));
    for (auto& x : s) {
        x = levels > 0 ? static_cast<float>(q(rng)) / static_cast<float>(levels) : u(rng);
        const float p = u(rng);
        if (nan && p < 0.03f) x = std::numeric_limits<float>::quiet_NaN();
        else if (nan && p < 0.05f) x = -0.0f;
    }
    return s;
}

std::vector<std::int32_t> host_nms(const focal::greedy_nms& p, const std::vector<float>& boxes, const std::vector<float>& scores) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<std::int32_t> keep(static_cast<std::size_t>(n));
    const index_t count = focal::nms(p, focal::make_view(boxes.data(), n, index_t(4)), focal::make_view(scores.data(), n),
                                     focal::make_view(keep.data(), n));
    keep.resize(static_cast<std::size_t>(count));
    return keep;
}

std::vector<std::int32_t> host_batched(const focal::batched_nms& p, const std::vector<float>& boxes,
                                       const std::vector<float>& scores, const std::vector<std::int64_t>& classes) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<std::int32_t> keep(static_cast<std::size_t>(n));
    const index_t count = focal::nms(p, focal::make_view(boxes.data(), n, index_t(4)), focal::make_view(scores.data(), n),
                                     focal::make_view(classes.data(), n), focal::make_view(keep.data(), n));
    keep.resize(static_cast<std::size_t>(count));
    return keep;
}

struct device_inputs {
    index_t n;
    focal::cuda::device_buffer<float> boxes, scores;
    focal::cuda::device_buffer<std::int64_t> classes;
    focal::cuda::device_buffer<std::int32_t> keep, count;
    device_inputs(const std::vector<float>& b, const std::vector<float>& s, const std::vector<std::int64_t>& c)
        : n(static_cast<index_t>(s.size())), boxes(b), scores(s), classes(c), keep(std::max<std::size_t>(s.size(), 1)),
          count(1) {}
    std::vector<std::int32_t> result() const {
        const std::int32_t k = count.to_host()[0];
        std::vector<std::int32_t> all = keep.to_host();
        all.resize(static_cast<std::size_t>(std::max(k, 0)));
        return all;
    }
};

std::vector<std::int32_t> device_nms(const focal::greedy_nms& p, const std::vector<float>& boxes, const std::vector<float>& scores) {
    device_inputs d(boxes, scores, {});
    focal::cuda::device_buffer<unsigned char> ws(focal::cuda::nms_workspace_size(d.n));
    focal::cuda::nms(p, d.boxes.view(d.n, 4), d.scores.view(), focal::make_device_view(d.keep.data(), d.n), d.count.view(),
                     focal::cuda::workspace{ws.data(), ws.size()}, nullptr);
    focal::cuda::synchronize(nullptr);
    return d.result();
}

std::vector<std::int32_t> device_batched(const focal::batched_nms& p, const std::vector<float>& boxes,
                                         const std::vector<float>& scores, const std::vector<std::int64_t>& classes) {
    device_inputs d(boxes, scores, classes);
    focal::cuda::device_buffer<unsigned char> ws(focal::cuda::batched_nms_workspace_size(d.n));
    focal::cuda::nms(p, d.boxes.view(d.n, 4), d.scores.view(), d.classes.view(), focal::make_device_view(d.keep.data(), d.n),
                     d.count.view(), focal::cuda::workspace{ws.data(), ws.size()}, nullptr);
    focal::cuda::synchronize(nullptr);
    return d.result();
}

std::vector<std::int64_t> random_classes(index_t n, int classes, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> c(0, classes - 1);
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = c(rng);
    return v;
}

}  // namespace

FOCAL_CUDA_TEST(cuda_nms_matches_host_on_random_boxes) {
    unsigned seed = 1;
    for (index_t n : {1, 2, 63, 64, 65, 500, 3000}) {
        for (int levels : {0, 7}) {
            for (double t : {0.0, 0.3, 0.5, 0.7, 1.0}) {
                const auto boxes = random_boxes(n, 100.0f, 30.0f, seed++, true);
                const auto scores = random_scores(n, seed++, levels, true);
                const focal::greedy_nms p{.iou_threshold = t};
                CHECK(device_nms(p, boxes, scores) == host_nms(p, boxes, scores));
            }
        }
    }
}

FOCAL_CUDA_TEST(cuda_nms_integer_boxes_iou_on_the_threshold) {
    // Integer coordinates: many IoUs are exactly 0.5, 1/3, ...: "> t" must decide as the host.
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> c(0, 20), s(1, 8);
    const index_t n = 2000;
    std::vector<float> boxes;
    for (index_t i = 0; i < n; ++i) {
        const float x = static_cast<float>(c(rng)), y = static_cast<float>(c(rng));
        boxes.insert(boxes.end(), {x, y, x + static_cast<float>(s(rng)), y + static_cast<float>(s(rng))});
    }
    const auto scores = random_scores(n, 8, 5, false);
    for (double t : {0.0, 1.0 / 3.0, 0.5, 0.6, 1.0}) {
        const focal::greedy_nms p{.iou_threshold = t};
        CHECK(device_nms(p, boxes, scores) == host_nms(p, boxes, scores));
    }
}

FOCAL_CUDA_TEST(cuda_nms_max_detections_empty_and_all_nan) {
    const auto boxes = random_boxes(1000, 200.0f, 40.0f, 3, true);
    const auto scores = random_scores(1000, 4, 0, true);
    for (index_t m : {0, 1, 10, 64, 65, 999, 5000}) {
        const focal::greedy_nms p{.iou_threshold = 0.5, .max_detections = m};
        CHECK(device_nms(p, boxes, scores) == host_nms(p, boxes, scores));
    }
    CHECK(device_nms({}, {}, {}).empty());
    const std::vector<float> nan_scores(100, std::numeric_limits<float>::quiet_NaN());
    CHECK(device_nms({}, random_boxes(100, 50.0f, 10.0f, 5, false), nan_scores).empty());
}

FOCAL_CUDA_TEST(cuda_nms_large_inputs) {
    for (index_t n : {20000, 100000}) {
        const auto boxes = random_boxes(n, 2000.0f, 100.0f, static_cast<unsigned>(n), true);
        const auto scores = random_scores(n, static_cast<unsigned>(n) + 1, 0, true);
        const focal::greedy_nms p{.iou_threshold = 0.5};
        const auto want = host_nms(p, boxes, scores);
        const auto got = device_nms(p, boxes, scores);
        CHECK_EQ(got.size(), want.size());
        CHECK(got == want);
    }
}

FOCAL_CUDA_TEST(cuda_batched_nms_per_class_matches_host) {
    unsigned seed = 100;
    for (index_t n : {1, 64, 300, 1500, 5000}) {
        for (int classes : {1, 3, 91}) {
            for (index_t m : {-1, 5, 100}) {
                const auto boxes = random_boxes(n, 100.0f, 40.0f, seed++, true);
                const auto scores = random_scores(n, seed++, classes == 3 ? 6 : 0, true);
                const auto cls = random_classes(n, classes, seed++);
                const focal::batched_nms p{.iou_threshold = 0.5, .max_detections = m};
                CHECK(device_batched(p, boxes, scores, cls) == host_batched(p, boxes, scores, cls));
            }
        }
    }
}

FOCAL_CUDA_TEST(cuda_batched_nms_torchvision_trick_matches_host) {
    unsigned seed = 200;
    for (index_t n : {1, 100, 1000}) {
        for (int classes : {2, 91}) {
            auto boxes = random_boxes(n, 300.0f, 60.0f, seed++, true);
            for (std::size_t i = 0; i < boxes.size(); i += 37) boxes[i] = -boxes[i];  // negative coordinates overlap
            const auto scores = random_scores(n, seed++, 0, true);
            const auto cls = random_classes(n, classes, seed++);
            const focal::batched_nms p{.iou_threshold = 0.5, .mode = focal::batched_mode::torchvision};
            CHECK(device_batched(p, boxes, scores, cls) == host_batched(p, boxes, scores, cls));
        }
    }
}

FOCAL_CUDA_TEST(cuda_batched_nms_torchvision_large_matches_host_with_distinct_scores) {
    // Above the trick's limit the host orders kept boxes with std::sort (unstable); with distinct
    // scores the order is unique.
    const index_t n = 4000;
    const auto boxes = random_boxes(n, 300.0f, 60.0f, 300, false);
    std::vector<float> scores(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) scores[static_cast<std::size_t>(i)] = static_cast<float>((i * 7919) % n) / static_cast<float>(n);
    const auto cls = random_classes(n, 10, 301);
    for (index_t m : {-1, 300}) {
        const focal::batched_nms p{.iou_threshold = 0.5, .max_detections = m, .mode = focal::batched_mode::torchvision};
        CHECK(device_batched(p, boxes, scores, cls) == host_batched(p, boxes, scores, cls));
    }
}

FOCAL_CUDA_TEST(cuda_nms_bad_input_throws) {
    focal::cuda::device_buffer<float> boxes(40), scores(10), wrong(9);
    focal::cuda::device_buffer<std::int32_t> keep(10), count(1), classes(10);
    focal::cuda::device_buffer<unsigned char> ws(focal::cuda::batched_nms_workspace_size(10));
    const focal::cuda::workspace w{ws.data(), ws.size()};
    const focal::cuda::workspace small{ws.data(), 16};
    CHECK_THROWS_AS(focal::cuda::nms(focal::greedy_nms{.iou_threshold = 1.5}, boxes.view(10, 4), scores.view(), keep.view(),
                                     count.view(), w, nullptr),
                    focal::error);
    CHECK_THROWS_AS(focal::cuda::nms(focal::greedy_nms{}, boxes.view(10, 4), wrong.view(), keep.view(), count.view(), w, nullptr),
                    focal::error);
    CHECK_THROWS_AS(focal::cuda::nms(focal::greedy_nms{}, boxes.view(20, 2), scores.view(), keep.view(), count.view(), w, nullptr),
                    focal::error);
    CHECK_THROWS_AS(focal::cuda::nms(focal::greedy_nms{}, boxes.view(10, 4), scores.view(),
                                     focal::make_device_view(keep.data(), index_t(5)), count.view(), w, nullptr),
                    focal::error);
    CHECK_THROWS_AS(focal::cuda::nms(focal::greedy_nms{}, boxes.view(10, 4), scores.view(), keep.view(), count.view(), small, nullptr),
                    focal::error);
    CHECK_THROWS_AS(focal::cuda::nms(focal::batched_nms{}, boxes.view(10, 4), scores.view(),
                                     focal::make_device_view(classes.data(), index_t(9)), keep.view(), count.view(), w, nullptr),
                    focal::error);
    CHECK_THROWS_AS(focal::cuda::nms_workspace_size(-1), focal::error);
}
