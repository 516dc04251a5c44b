// The FOCAL_HD pieces of the CUDA NMS and post-processing (nms/detail/bitmask.hpp,
// retinanet/detail/candidates.hpp), run serially on the CPU against the host algorithms.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <focal/nms/detail/bitmask.hpp>
#include <focal/nms.hpp>
#include <focal/retinanet/detail/candidates.hpp>
#include <focal/retinanet/detail/top_candidates.hpp>
#include <focal/retinanet/postprocess.hpp>

namespace {

using focal::index_t;

std::vector<float> random_boxes(index_t n, unsigned seed, bool integer) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> c(0.0f, 60.0f), s(0.5f, 25.0f), u(0.0f, 1.0f);
    std::uniform_int_distribution<int> ci(0, 12), si(1, 6);
    std::vector<float> b;
    for (index_t i = 0; i < n; ++i) {
        float x1, y1, x2, y2;
        if (integer) {
            x1 = float(ci(rng)), y1 = float(ci(rng)), x2 = x1 + float(si(rng)), y2 = y1 + float(si(rng));
        } else {
            x1 = c(rng), y1 = c(rng), x2 = x1 + s(rng), y2 = y1 + s(rng);
        }
        const float p = u(rng);
        if (i > 0 && p < 0.08f) {  // duplicate
            b.insert(b.end(), b.end() - 4, b.end());
            continue;
        }
        if (p < 0.11f) x2 = x1;                          // zero area
        else if (p < 0.13f) std::swap(y1, y2);           // inverted
        else if (p < 0.14f) x1 = std::numeric_limits<float>::quiet_NaN();
        b.insert(b.end(), {x1, y1, x2, y2});
    }
    return b;
}

std::vector<float> random_scores(index_t n, unsigned seed, int levels) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::uniform_int_distribution<int> q(0, levels);
    std::vector<float> s(static_cast<std::size_t>(n));
    for (auto& x : s) {
        x = levels > 0 ? float(q(rng)) / float(levels) : u(rng);
        const float p = u(rng);
        if (p < 0.04f) x = std::numeric_limits<float>::quiet_NaN();
        else if (p < 0.07f) x = -0.0f;
    }
    return s;
}

// The device algorithm, serially: sort by score_sort_key (stable), mask words, word walk.
std::vector<std::int32_t> bitmask_nms(const std::vector<float>& boxes, const std::vector<float>& scores,
                                      const std::int64_t* classes, bool trick, double threshold, index_t max_detections) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<std::int32_t> order(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i);
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
        return focal::detail::score_sort_key(scores[static_cast<std::size_t>(a)]) <
               focal::detail::score_sort_key(scores[static_cast<std::size_t>(b)]);
    });
    float step = 0.0f;
    if (trick) {
        float m = -std::numeric_limits<float>::infinity();
        for (float v : boxes) m = focal::detail::max_coordinate_combine(m, v);
        step = m + 1.0f;
    }
    std::vector<focal::box4<float>> sorted(static_cast<std::size_t>(n));
    std::vector<std::int64_t> cls(static_cast<std::size_t>(n), 0);
    for (index_t r = 0; r < n; ++r) {
        const auto i = static_cast<std::size_t>(order[static_cast<std::size_t>(r)]);
        focal::box4<float> b{{boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]}};
        const std::int64_t c = classes ? classes[i] : 0;
        if (trick) b = focal::detail::offset_box(b, c, step);
        sorted[static_cast<std::size_t>(r)] = b;
        cls[static_cast<std::size_t>(r)] = trick ? 0 : c;
    }
    const float t = focal::detail::threshold_below<float>(threshold);
    const index_t words = focal::detail::mask_words(n);
    std::vector<std::uint64_t> mask(static_cast<std::size_t>(n * words), 0);
    for (index_t r = 0; r < n; ++r)
        for (index_t w = r / 64; w < words; ++w) {
            const int count = static_cast<int>(std::min<index_t>(64, n - 64 * w));
            mask[static_cast<std::size_t>(r * words + w)] = focal::detail::mask_word(
                r, sorted[static_cast<std::size_t>(r)], cls[static_cast<std::size_t>(r)], 64 * w, count,
                &sorted[static_cast<std::size_t>(64 * w)], classes ? &cls[static_cast<std::size_t>(64 * w)] : nullptr, t);
        }
    index_t valid = 0;
    while (valid < n && focal::detail::score_sort_key(scores[static_cast<std::size_t>(order[static_cast<std::size_t>(valid)])]) !=
                            focal::detail::nan_sort_key)
        ++valid;
    std::vector<std::uint64_t> removed(static_cast<std::size_t>(words), 0);
    std::vector<std::int32_t> keep;
    for (index_t w = 0; w < focal::detail::mask_words(valid); ++w) {
        const int rows = static_cast<int>(std::min<index_t>(64, valid - 64 * w));
        std::uint64_t diag[64];
        int kept_j[64];
        for (int j = 0; j < rows; ++j) diag[j] = mask[static_cast<std::size_t>((64 * w + j) * words + w)];
        const index_t left = max_detections < 0 ? 64 : max_detections - static_cast<index_t>(keep.size());
        const int kept = focal::detail::resolve_word(removed[static_cast<std::size_t>(w)], diag, rows, left, kept_j);
        for (int k = 0; k < kept; ++k) keep.push_back(order[static_cast<std::size_t>(64 * w + kept_j[k])]);
        if (max_detections >= 0 && static_cast<index_t>(keep.size()) >= max_detections) break;
        for (index_t v = w + 1; v < words; ++v)
            for (int k = 0; k < kept; ++k)
                removed[static_cast<std::size_t>(v)] |= mask[static_cast<std::size_t>((64 * w + kept_j[k]) * words + v)];
    }
    return keep;
}

std::vector<std::int32_t> host_greedy(const std::vector<float>& boxes, const std::vector<float>& scores, double t, index_t m) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<std::int32_t> keep(static_cast<std::size_t>(n));
    const index_t count = focal::nms(focal::greedy_nms{.iou_threshold = t, .max_detections = m},
                                     focal::make_view(boxes.data(), n, index_t(4)), focal::make_view(scores.data(), n),
                                     focal::make_view(keep.data(), n));
    keep.resize(static_cast<std::size_t>(count));
    return keep;
}

std::vector<std::int32_t> host_batched(const std::vector<float>& boxes, const std::vector<float>& scores,
                                       const std::vector<std::int64_t>& classes, const focal::batched_nms& p) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<std::int32_t> keep(static_cast<std::size_t>(n));
    const index_t count = focal::nms(p, focal::make_view(boxes.data(), n, index_t(4)), focal::make_view(scores.data(), n),
                                     focal::make_view(classes.data(), n), focal::make_view(keep.data(), n));
    keep.resize(static_cast<std::size_t>(count));
    return keep;
}

}  // namespace

TEST_CASE("score_sort_key is radix_sort.hpp's descending_key, NaN last, and inverts") {
    const float values[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 1e-30f, -1e-30f, 3e38f, -3e38f,
                            std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::denorm_min()};
    for (float x : values) {
        CHECK(focal::detail::score_sort_key(x) == focal::detail::descending_key(x));
        CHECK(focal::detail::score_sort_key(x) != focal::detail::nan_sort_key);
        CHECK(focal::detail::score_from_key(focal::detail::score_sort_key(x)) == x);
    }
    CHECK(focal::detail::score_sort_key(std::numeric_limits<float>::quiet_NaN()) == focal::detail::nan_sort_key);
    CHECK(focal::detail::score_sort_key(-std::numeric_limits<float>::quiet_NaN()) == focal::detail::nan_sort_key);
}

TEST_CASE("the bitmask walk reproduces host greedy nms on random boxes") {
    unsigned seed = 1;
    for (index_t n : {0, 1, 2, 63, 64, 65, 130, 700}) {
        for (int levels : {0, 4}) {
            for (bool integer : {false, true}) {
                const auto boxes = random_boxes(n, seed++, integer);
                const auto scores = random_scores(n, seed++, levels);
                for (double t : {0.0, 0.3, 0.5, 1.0}) {
                    for (index_t m : {index_t(-1), index_t(0), index_t(3), index_t(64), index_t(100)}) {
                        CAPTURE(n);
                        CAPTURE(t);
                        CAPTURE(m);
                        CHECK(bitmask_nms(boxes, scores, nullptr, false, t, m) == host_greedy(boxes, scores, t, m));
                    }
                }
            }
        }
    }
}

TEST_CASE("the class-restricted walk reproduces host batched nms (per_class and torchvision's trick)") {
    unsigned seed = 500;
    for (index_t n : {1, 64, 200, 900}) {
        for (int k : {1, 3, 20}) {
            auto boxes = random_boxes(n, seed++, k == 3);
            for (std::size_t i = 0; i < boxes.size(); i += 29) boxes[i] = -boxes[i];
            const auto scores = random_scores(n, seed++, k == 3 ? 5 : 0);
            std::mt19937 rng(seed++);
            std::uniform_int_distribution<int> c(0, k - 1);
            std::vector<std::int64_t> classes(static_cast<std::size_t>(n));
            for (auto& x : classes) x = c(rng);
            for (index_t m : {index_t(-1), index_t(7)}) {
                CAPTURE(n);
                CAPTURE(k);
                CAPTURE(m);
                const focal::batched_nms per_class{.iou_threshold = 0.5, .max_detections = m};
                CHECK(bitmask_nms(boxes, scores, classes.data(), false, 0.5, m) == host_batched(boxes, scores, classes, per_class));
                const focal::batched_nms tv{.iou_threshold = 0.5, .max_detections = m, .mode = focal::batched_mode::torchvision};
                CHECK(bitmask_nms(boxes, scores, classes.data(), true, 0.5, m) == host_batched(boxes, scores, classes, tv));
            }
        }
    }
}

TEST_CASE("offset_box is the host's offset_boxes") {
    const auto boxes = random_boxes(300, 77, false);
    std::vector<std::int64_t> classes(300);
    for (std::size_t i = 0; i < classes.size(); ++i) classes[i] = static_cast<std::int64_t>((i * 37) % 91);
    std::vector<float> finite = boxes;
    for (auto& v : finite)
        if (std::isnan(v)) v = 1.0f;
    const auto want = focal::detail::offset_boxes<float>(focal::make_view(finite.data(), index_t(300), index_t(4)),
                                                         focal::make_view(classes.data(), index_t(300)));
    float m = -std::numeric_limits<float>::infinity();
    for (float v : finite) m = focal::detail::max_coordinate_combine(m, v);
    for (std::size_t i = 0; i < 300; ++i) {
        const focal::box4<float> b{{finite[4 * i], finite[4 * i + 1], finite[4 * i + 2], finite[4 * i + 3]}};
        const auto got = focal::detail::offset_box(b, classes[i], m + 1.0f);
        for (int c = 0; c < 4; ++c) CHECK(got[c] == want[4 * i + static_cast<std::size_t>(c)]);
    }
}

TEST_CASE("candidate keys sort as top_candidates.hpp's order; bins are monotone") {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> q(-40, 40);
    const index_t anchors = 300, classes = 7;
    std::vector<float> logits(static_cast<std::size_t>(anchors * classes));
    for (auto& x : logits) x = float(q(rng)) / 8.0f;  // many ties
    logits[5] = std::numeric_limits<float>::quiet_NaN();
    logits[6] = -0.0f;
    for (index_t k : {1, 10, 100, 2100}) {
        for (float threshold : {-std::numeric_limits<float>::infinity(), -1.0f, 2.0f}) {
            std::vector<focal::detail::candidate> want;
            focal::detail::top_candidates<float>(focal::matrix_view<const float>(logits.data(), anchors, classes), threshold, k, want);
            std::vector<std::uint64_t> keys;
            for (std::size_t f = 0; f < logits.size(); ++f)
                if (focal::detail::is_candidate(logits[f], threshold))
                    keys.push_back(focal::detail::candidate_key(logits[f], static_cast<std::uint32_t>(f)));
            std::sort(keys.begin(), keys.end());
            keys.resize(std::min(keys.size(), static_cast<std::size_t>(k)));
            REQUIRE(keys.size() == want.size());
            for (std::size_t i = 0; i < keys.size(); ++i) {
                CHECK(focal::detail::candidate_flat(keys[i]) == want[i].flat);
                CHECK(focal::detail::candidate_logit(keys[i]) == want[i].logit);
            }
        }
    }
    float prev = std::numeric_limits<float>::infinity();
    for (float x = 20.0f; x > -20.0f; x -= 0.37f) {
        CHECK(focal::detail::candidate_bin(x) >= focal::detail::candidate_bin(prev));
        prev = x;
    }
}

TEST_CASE("clip_box is the host's std::min(std::max(v, 0), limit), NaN included") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (float v : {-5.0f, 0.0f, -0.0f, 3.5f, 640.0f, 700.0f, nan, std::numeric_limits<float>::infinity()}) {
        const float want = std::min(std::max(v, 0.0f), 640.0f), got = focal::detail::clip_coordinate(v, 640.0f);
        CHECK((got == want || (std::isnan(got) && std::isnan(want))));
    }
}
