// NMS: greedy (torchvision.ops.nms), class-aware (batched_nms, both modes) and Soft-NMS.
// Every nms_* case of the fixture manifest must give torchvision's keep lists exactly; random
// inputs (ties, degenerate, NaN and infinite boxes and scores) must match a brute-force reference
// written from torchvision's CPU kernel; exec::scalar, simd and parallel must agree.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <focal/nms.hpp>

#include "support/fixtures.hpp"

using focal::index_t;

namespace {

constexpr double nan_d = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_d = std::numeric_limits<double>::infinity();

// torchvision's nms_kernel.cpp, one pair at a time: unclamped areas, std::max / std::min, the
// float IoU compared with the double threshold. NaN scores are dropped (focal's rule).
template <class T>
std::vector<index_t> reference_nms(const std::vector<T>& boxes, const std::vector<T>& scores, double threshold,
                                   const std::vector<std::int64_t>* classes = nullptr) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<index_t> order;
    for (index_t i = 0; i < n; ++i)
        if (!std::isnan(scores[i])) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return scores[a] > scores[b]; });
    auto area = [&](index_t i) { return (boxes[4 * i + 2] - boxes[4 * i]) * (boxes[4 * i + 3] - boxes[4 * i + 1]); };
    std::vector<char> suppressed(static_cast<std::size_t>(n), 0);
    std::vector<index_t> keep;
    for (std::size_t a = 0; a < order.size(); ++a) {
        const index_t i = order[a];
        if (suppressed[i]) continue;
        keep.push_back(i);
        const T* bi = &boxes[4 * i];
        const T ai = area(i);
        for (std::size_t b = a + 1; b < order.size(); ++b) {
            const index_t j = order[b];
            if (suppressed[j] || (classes && (*classes)[i] != (*classes)[j])) continue;
            const T* bj = &boxes[4 * j];
            const T xx1 = std::max(bi[0], bj[0]), yy1 = std::max(bi[1], bj[1]);
            const T xx2 = std::min(bi[2], bj[2]), yy2 = std::min(bi[3], bj[3]);
            const T w = std::max(T(0), xx2 - xx1), h = std::max(T(0), yy2 - yy1);
            const T inter = w * h;
            const T ovr = inter / (ai + area(j) - inter);
            if (static_cast<double>(ovr) > threshold) suppressed[j] = 1;
        }
    }
    return keep;
}

// The same rule for finite, valid boxes, faster: IoU > t >= 0 needs overlapping x ranges, so box j
// can only be suppressed by a kept box i with x1_i in (x1_j - max width, x2_j).
std::vector<index_t> reference_nms_windowed(const std::vector<float>& boxes, const std::vector<float>& scores,
                                            double threshold) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<index_t> order(static_cast<std::size_t>(n)), by_x(order.size()), rank(order.size());
    for (index_t i = 0; i < n; ++i) order[i] = by_x[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return scores[a] > scores[b]; });
    for (index_t r = 0; r < n; ++r) rank[order[r]] = r;
    std::sort(by_x.begin(), by_x.end(), [&](index_t a, index_t b) { return boxes[4 * a] < boxes[4 * b]; });
    float max_w = 0;
    for (index_t i = 0; i < n; ++i) max_w = std::max(max_w, boxes[4 * i + 2] - boxes[4 * i]);
    std::vector<char> suppressed(static_cast<std::size_t>(n), 0);
    std::vector<index_t> keep;
    for (const index_t i : order) {
        if (suppressed[i]) continue;
        keep.push_back(i);
        const float* bi = &boxes[4 * i];
        const auto first = std::lower_bound(by_x.begin(), by_x.end(), bi[0] - max_w,
                                            [&](index_t j, float x) { return boxes[4 * j] < x; });
        for (auto it = first; it != by_x.end() && boxes[4 * *it] < bi[2]; ++it) {
            const index_t j = *it;
            if (rank[j] <= rank[i] || suppressed[j]) continue;
            const float* bj = &boxes[4 * j];
            const float w = std::max(0.0f, std::min(bi[2], bj[2]) - std::max(bi[0], bj[0]));
            const float h = std::max(0.0f, std::min(bi[3], bj[3]) - std::max(bi[1], bj[1]));
            const float inter = w * h;
            const float ai = (bi[2] - bi[0]) * (bi[3] - bi[1]), aj = (bj[2] - bj[0]) * (bj[3] - bj[1]);
            if (static_cast<double>(inter / (ai + aj - inter)) > threshold) suppressed[j] = 1;
        }
    }
    return keep;
}

// Per-class reference, ordered as focal's per_class mode: score descending, ties in index order.
template <class T>
std::vector<index_t> reference_per_class(const std::vector<T>& boxes, const std::vector<T>& scores, double threshold,
                                         const std::vector<std::int64_t>& classes) {
    std::vector<index_t> keep = reference_nms(boxes, scores, threshold, &classes);
    std::stable_sort(keep.begin(), keep.end(), [&](index_t a, index_t b) { return scores[a] > scores[b]; });
    return keep;
}

template <class Policy, class T, class Exec>
std::vector<index_t> run_nms(const Policy& p, const std::vector<T>& boxes, const std::vector<T>& scores, const Exec& exec) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<index_t> keep(scores.size());
    const index_t count = focal::nms(p, focal::make_view(boxes.data(), n, 4), focal::make_view(scores.data(), n),
                                     focal::make_view(keep.data(), n), exec);
    keep.resize(static_cast<std::size_t>(count));
    return keep;
}

template <class T, class Exec>
std::vector<index_t> run_batched(const focal::batched_nms& p, const std::vector<T>& boxes, const std::vector<T>& scores,
                                 const std::vector<std::int64_t>& classes, const Exec& exec) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<index_t> keep(scores.size());
    const index_t count = focal::nms(p, focal::make_view(boxes.data(), n, 4), focal::make_view(scores.data(), n),
                                     focal::make_view(classes.data(), n), focal::make_view(keep.data(), n), exec);
    keep.resize(static_cast<std::size_t>(count));
    return keep;
}

// Clusters of jittered boxes with 2-decimal scores, as tools/make_fixtures.py; `special` adds
// degenerate boxes, NaN / inf coordinates and scores, exact duplicates.
template <class T>
struct problem {
    std::vector<T> boxes, scores;
    std::vector<std::int64_t> classes;
};

template <class T>
problem<T> clustered(index_t n, std::uint32_t seed, bool special, int n_classes = 5) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    std::normal_distribution<double> jitter(0, 6);
    const index_t m = std::max<index_t>(1, n / 20);
    std::vector<double> centres(static_cast<std::size_t>(4 * m));
    for (index_t c = 0; c < m; ++c) {
        const double cx = 1000 * u(rng), cy = 800 * u(rng), w = 16 + 284 * u(rng), h = w * (0.5 + 1.5 * u(rng));
        centres[4 * c] = cx - w / 2, centres[4 * c + 1] = cy - h / 2, centres[4 * c + 2] = cx + w / 2, centres[4 * c + 3] = cy + h / 2;
    }
    problem<T> p;
    p.boxes.resize(static_cast<std::size_t>(4 * n));
    p.scores.resize(static_cast<std::size_t>(n));
    p.classes.resize(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) {
        const auto c = static_cast<index_t>(u(rng) * static_cast<double>(m)) % m;
        for (int k = 0; k < 4; ++k) p.boxes[4 * i + k] = static_cast<T>(centres[4 * c + k] + jitter(rng));
        p.boxes[4 * i + 2] = std::max(p.boxes[4 * i + 2], static_cast<T>(p.boxes[4 * i] + 1));
        p.boxes[4 * i + 3] = std::max(p.boxes[4 * i + 3], static_cast<T>(p.boxes[4 * i + 1] + 1));
        p.scores[i] = static_cast<T>(std::round(u(rng) * 100) / 100);
        p.classes[i] = static_cast<std::int64_t>(u(rng) * n_classes);
    }
    if (special && n >= 40) {
        auto set = [&](index_t i, double a, double b, double c, double d) {
            p.boxes[4 * i] = T(a), p.boxes[4 * i + 1] = T(b), p.boxes[4 * i + 2] = T(c), p.boxes[4 * i + 3] = T(d);
        };
        set(0, 10, 10, 10, 50);           // zero width
        set(1, 50, 50, 20, 20);           // inverted
        set(2, nan_d, 10, 100, 100);      // NaN coordinate
        set(3, -inf_d, 0, inf_d, 100);    // infinite width
        set(4, 0, 0, inf_d, inf_d);       // infinite area
        set(5, 10, 10, 60, nan_d);
        set(6, 100, 100, 50, nan_d);      // inverted and NaN
        for (index_t k = 7; k < 12; ++k)  // exact duplicates of box 20, same score
            for (int c = 0; c < 4; ++c) p.boxes[4 * k + c] = p.boxes[80 + c], p.scores[k] = p.scores[20];
        p.scores[12] = T(nan_d);
        p.scores[13] = T(inf_d);
        p.scores[14] = T(-inf_d);
        p.scores[15] = T(-0.0);
        p.scores[16] = T(0.0);
        p.scores[2] = T(nan_d);           // NaN box, NaN score
    }
    return p;
}

}  // namespace

TEST_CASE("nms and batched nms equal torchvision's keep lists, every nms_* case") {
    const focal_test::fixture_set fx(focal_test::torchvision_fixtures());
    const auto cases = fx.cases("nms");
    REQUIRE(!cases.empty());
    for (const auto& c : cases) {
        CAPTURE(c);
        const double threshold = fx.params(c).at("iou_threshold").get<double>();
        const auto boxes_a = fx.array<float>(c, "boxes");
        const auto scores_a = fx.array<float>(c, "scores");
        const auto classes_a = fx.array<std::int64_t>(c, "classes");
        const auto want = fx.array<std::int64_t>(c, "keep");
        const auto want_batched = fx.array<std::int64_t>(c, "batched_keep");
        const std::vector<float> boxes(boxes_a.begin(), boxes_a.end()), scores(scores_a.begin(), scores_a.end());
        const std::vector<std::int64_t> classes(classes_a.begin(), classes_a.end());
        const std::vector<index_t> keep_tv(want.begin(), want.end()), batched_tv(want_batched.begin(), want_batched.end());
        const focal::greedy_nms greedy{.iou_threshold = threshold};
        const focal::batched_nms tv{.iou_threshold = threshold, .mode = focal::batched_mode::torchvision};
        CHECK(run_nms(greedy, boxes, scores, focal::exec::scalar) == keep_tv);
        CHECK(run_nms(greedy, boxes, scores, focal::exec::simd) == keep_tv);
        CHECK(run_nms(greedy, boxes, scores, focal::exec::parallel) == keep_tv);
        CHECK(run_batched(tv, boxes, scores, classes, focal::exec::scalar) == batched_tv);
        CHECK(run_batched(tv, boxes, scores, classes, focal::exec::simd) == batched_tv);
        CHECK(run_batched(tv, boxes, scores, classes, focal::exec::parallel) == batched_tv);
        // The default mode is true per-class NMS: the reference's lists.
        const focal::batched_nms per_class{.iou_threshold = threshold};
        const auto want_pc = reference_per_class(boxes, scores, threshold, classes);
        CHECK(run_batched(per_class, boxes, scores, classes, focal::exec::simd) == want_pc);
        CHECK(run_batched(per_class, boxes, scores, classes, focal::exec::parallel) == want_pc);
        CHECK(reference_nms(boxes, scores, threshold) == keep_tv);  // the reference is torchvision's too
    }
}

namespace {

template <class T>
std::vector<T> flat(std::initializer_list<std::initializer_list<double>> rows) {
    std::vector<T> out;
    for (const auto& r : rows)
        for (double v : r) out.push_back(static_cast<T>(v));
    return out;
}

std::vector<index_t> greedy(const std::vector<float>& boxes, const std::vector<float>& scores, double t,
                            index_t max_detections = -1) {
    const focal::greedy_nms p{.iou_threshold = t, .max_detections = max_detections};
    const auto a = run_nms(p, boxes, scores, focal::exec::scalar);
    CHECK(run_nms(p, boxes, scores, focal::exec::simd) == a);
    CHECK(run_nms(p, boxes, scores, focal::exec::parallel) == a);
    return a;
}

using keep_list = std::vector<index_t>;

}  // namespace

TEST_CASE("greedy nms: hand-checked cases") {
    // b0 and b1: IoU 50 / 150 = 1/3; b2 apart; b3 == b0.
    const auto boxes = flat<float>({{0, 0, 10, 10}, {5, 0, 15, 10}, {20, 20, 30, 30}, {0, 0, 10, 10}});
    const std::vector<float> scores{0.9f, 0.8f, 0.7f, 0.6f};
    CHECK(greedy(boxes, scores, 0.5) == keep_list{0, 1, 2});   // 1/3 <= 0.5; b3 duplicates b0
    CHECK(greedy(boxes, scores, 0.3) == keep_list{0, 2});      // 1/3 > 0.3
    // The float IoU against the double threshold, as torchvision: float(50 / 150) = 0.33333334 > 1/3.
    CHECK(greedy(boxes, scores, 1.0 / 3.0) == keep_list{0, 2});
    CHECK(greedy(boxes, scores, double(50.0f / 150.0f)) == keep_list{0, 1, 2});
    // IoU 3 / 10 = 0.3f = 0.30000001 > 0.3: suppressed at threshold 0.3 (torchvision: [0]), not at 0.3f.
    const auto b3 = flat<float>({{0, 0, 6.5, 1}, {3.5, 0, 10, 1}});
    CHECK(greedy(b3, {0.9f, 0.8f}, 0.3) == keep_list{0});
    CHECK(greedy(b3, {0.9f, 0.8f}, double(0.3f)) == keep_list{0, 1});
    CHECK(greedy(boxes, scores, 0.0) == keep_list{0, 2});
    CHECK(greedy(boxes, scores, 1.0) == keep_list{0, 1, 2, 3});  // nothing exceeds 1
    CHECK(greedy(boxes, scores, 0.5, 2) == keep_list{0, 1});     // max_detections
    CHECK(greedy(boxes, scores, 0.5, 0).empty());
    // Threshold 0: touching edges (intersection 0) never suppress.
    CHECK(greedy(flat<float>({{0, 0, 10, 10}, {10, 0, 20, 10}}), {0.5f, 0.4f}, 0.0) == keep_list{0, 1});
    CHECK(greedy(flat<float>({{0, 0, 10, 10}, {9.5, 0, 20, 10}}), {0.5f, 0.4f}, 0.0) == keep_list{0});
}

TEST_CASE("greedy nms: ties keep input order, NaN scores are never kept and never suppress") {
    const auto same = flat<float>({{0, 0, 10, 10}, {0, 0, 10, 10}, {0, 0, 10, 10}, {1, 1, 11, 11}});
    CHECK(greedy(same, {0.5f, 0.7f, 0.7f, 0.7f}, 0.5) == keep_list{1});        // first of the 0.7s
    CHECK(greedy(same, {0.5f, 0.5f, 0.5f, 0.5f}, 0.5) == keep_list{0});
    CHECK(greedy(same, {0.5f, 0.5f, 0.5f, 0.5f}, 1.0) == keep_list{0, 1, 2, 3});
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    CHECK(greedy(same, {nan, 0.8f, nan, nan}, 0.5) == keep_list{1});           // NaN suppresses nothing
    CHECK(greedy(same, {nan, nan, nan, nan}, 0.5).empty());
    CHECK(greedy(same, {0.1f, -inf, inf, 0.2f}, 0.5) == keep_list{2});          // inf first
    CHECK(greedy(flat<float>({{0, 0, 1, 1}, {5, 5, 6, 6}, {9, 9, 10, 10}}), {-inf, 0.f, -0.f}, 0.5) == keep_list{1, 2, 0});
}

TEST_CASE("greedy nms: empty input, one box, identical, degenerate, NaN and infinite boxes") {
    CHECK(greedy({}, {}, 0.5).empty());
    {  // empty views with null pointers
        std::vector<index_t> keep;
        CHECK(focal::nms(focal::greedy_nms{}, focal::make_view(static_cast<const float*>(nullptr), 0, 4),
                         focal::make_view(static_cast<const float*>(nullptr), 0), focal::make_view(keep.data(), 0)) == 0);
    }
    CHECK(greedy(flat<float>({{1, 2, 3, 4}}), {0.3f}, 0.5) == keep_list{0});
    CHECK(greedy(flat<float>({{1, 2, 3, 4}}), {std::numeric_limits<float>::quiet_NaN()}, 0.5).empty());
    std::vector<float> same_boxes;
    for (int i = 0; i < 100; ++i) same_boxes.insert(same_boxes.end(), {3, 3, 8, 9});
    CHECK(greedy(same_boxes, std::vector<float>(100, 0.25f), 0.5) == keep_list{0});
    CHECK(greedy(same_boxes, std::vector<float>(100, 0.25f), 0.0) == keep_list{0});
    CHECK(greedy(same_boxes, std::vector<float>(100, 0.25f), 1.0).size() == 100);
    // Zero-area and inverted boxes: IoU 0 with everything, so always kept, never suppressing, even
    // when identical or lying on a kept box.
    const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
    const auto degenerate = flat<float>({{0, 0, 10, 10},   // 0: a normal box
                                         {0, 0, 0, 10},    // 1: zero width
                                         {0, 0, 0, 10},    // 2: its duplicate
                                         {10, 10, 0, 0},   // 3: inverted (both axes: tv's area is +100)
                                         {10, 10, 0, 0},   // 4: its duplicate
                                         {5, 0, 2, 10},    // 5: inverted in x, inside box 0
                                         {nan, 0, 10, 10}, // 6: NaN coordinate
                                         {nan, 0, 10, 10}, // 7: its duplicate
                                         {0, 0, 10, nan},  // 8
                                         {-inf, 0, inf, 10},  // 9: infinite width: IoU 0 with finite boxes,
                                         {-inf, 0, inf, 10},  // 10: NaN (inf - inf) with its duplicate
                                         {0, 0, inf, inf},    // 11: infinite area
                                         {0, 0, 10, 10}});    // 12: duplicate of 0: suppressed by 0
    std::vector<float> s(13);
    for (int i = 0; i < 13; ++i) s[i] = 1.0f - 0.05f * static_cast<float>(i);
    for (double t : {0.0, 0.5, 0.99}) {
        CAPTURE(t);
        CHECK(greedy(degenerate, s, t) == keep_list{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
        // the reverse order: the same boxes, the degenerate ones first
        std::vector<float> r(s.rbegin(), s.rend());
        CHECK(greedy(degenerate, r, t) == keep_list{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1});
        CHECK(reference_nms(degenerate, s, t) == keep_list{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    }
}

TEST_CASE("greedy nms equals the brute-force reference on random inputs, every exec policy, float and double") {
    for (std::uint32_t seed = 1; seed <= 12; ++seed) {
        for (index_t n : {3, 40, 257, 1500}) {
            for (double t : {0.0, 0.3, 0.5, 0.7, 1.0}) {
                CAPTURE(seed);
                CAPTURE(n);
                CAPTURE(t);
                const auto pf = clustered<float>(n, seed, seed % 2 == 0);
                const auto want = reference_nms(pf.boxes, pf.scores, t);
                const focal::greedy_nms g{.iou_threshold = t};
                CHECK(run_nms(g, pf.boxes, pf.scores, focal::exec::scalar) == want);
                CHECK(run_nms(g, pf.boxes, pf.scores, focal::exec::simd) == want);
                CHECK(run_nms(g, pf.boxes, pf.scores, focal::exec::parallel) == want);
                const index_t k = static_cast<index_t>(want.size()) / 2;
                CHECK(run_nms(focal::greedy_nms{.iou_threshold = t, .max_detections = k}, pf.boxes, pf.scores,
                              focal::exec::simd) == keep_list(want.begin(), want.begin() + k));
                const auto pd = clustered<double>(n, seed, seed % 2 == 1);
                const auto want_d = reference_nms(pd.boxes, pd.scores, t);
                CHECK(run_nms(g, pd.boxes, pd.scores, focal::exec::scalar) == want_d);
                CHECK(run_nms(g, pd.boxes, pd.scores, focal::exec::simd) == want_d);
            }
        }
    }
}

TEST_CASE("greedy nms on 120,000 boxes equals the reference") {
    const auto p = clustered<float>(120000, 99, true);
    const auto want = reference_nms(p.boxes, p.scores, 0.5);
    CHECK(want.size() > 5000);
    CHECK(run_nms(focal::greedy_nms{.iou_threshold = 0.5}, p.boxes, p.scores, focal::exec::simd) == want);
    CHECK(run_nms(focal::greedy_nms{.iou_threshold = 0.5}, p.boxes, p.scores, focal::exec::scalar) == want);
    // Spread out, hardly overlapping: almost every box is kept.
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(0, 20000);
    std::vector<float> boxes, scores;
    for (int i = 0; i < 100000; ++i) {
        const float x = u(rng), y = u(rng);
        boxes.insert(boxes.end(), {x, y, x + 30, y + 30});
        scores.push_back(std::round(u(rng)) / 20000);
    }
    const auto want_spread = reference_nms_windowed(boxes, scores, 0.5);
    CHECK(want_spread.size() > 90000);
    CHECK(run_nms(focal::greedy_nms{.iou_threshold = 0.5}, boxes, scores, focal::exec::simd) == want_spread);
}

TEST_CASE("nms reads any layout: strided boxes, scores and keep") {
    const auto p = clustered<float>(500, 5, true);
    const auto want = reference_nms(p.boxes, p.scores, 0.5);
    const index_t n = 500;
    std::vector<float> col_major(static_cast<std::size_t>(4 * n)), scores2(static_cast<std::size_t>(2 * n));
    for (index_t i = 0; i < n; ++i) {
        for (int c = 0; c < 4; ++c) col_major[c * n + i] = p.boxes[4 * i + c];
        scores2[2 * i] = p.scores[i];
    }
    std::vector<std::int32_t> keep(static_cast<std::size_t>(3 * n), -7);
    const focal::matrix_view<const float> boxes(col_major.data(), {n, 4}, {1, n});
    const focal::vector_view<const float> scores(scores2.data(), {n}, {2});
    const focal::vector_view<std::int32_t> out(keep.data(), {n}, {3});
    const index_t count = focal::nms(focal::greedy_nms{}, boxes, scores, out);
    REQUIRE(count == static_cast<index_t>(want.size()));
    for (index_t k = 0; k < count; ++k) CHECK(keep[3 * k] == want[k]);
    CHECK(keep[1] == -7);
}

TEST_CASE("batched nms, per_class mode: the per-class reference, any class type, no suppression across classes") {
    for (std::uint32_t seed = 1; seed <= 8; ++seed) {
        for (index_t n : {2, 50, 700, 3000}) {
            for (double t : {0.0, 0.5, 0.8, 1.0}) {
                CAPTURE(seed);
                CAPTURE(n);
                CAPTURE(t);
                const auto p = clustered<float>(n, seed, seed % 2 == 0, 1 + static_cast<int>(seed % 6));
                const auto want = reference_per_class(p.boxes, p.scores, t, p.classes);
                const focal::batched_nms b{.iou_threshold = t};
                CHECK(run_batched(b, p.boxes, p.scores, p.classes, focal::exec::scalar) == want);
                CHECK(run_batched(b, p.boxes, p.scores, p.classes, focal::exec::simd) == want);
                CHECK(run_batched(b, p.boxes, p.scores, p.classes, focal::exec::parallel) == want);
                CHECK(run_batched(b, p.boxes, p.scores, p.classes, focal::exec::parallel_policy{.threads = 2, .min_elements = 1}) == want);
                const index_t k = static_cast<index_t>(want.size()) / 3;
                CHECK(run_batched(focal::batched_nms{.iou_threshold = t, .max_detections = k}, p.boxes, p.scores, p.classes,
                                  focal::exec::parallel) == keep_list(want.begin(), want.begin() + k));
                // Sparse, negative and huge labels give the same grouping.
                std::vector<std::int64_t> relabel(p.classes);
                for (auto& c : relabel) c = c * 1000000000000LL - 5;
                CHECK(run_batched(b, p.boxes, p.scores, relabel, focal::exec::simd) == want);
            }
        }
    }
    // Other integer types.
    const auto boxes = flat<float>({{0, 0, 10, 10}, {0, 0, 10, 10}, {0, 0, 10, 10}, {1, 0, 11, 10}});
    const std::vector<float> scores{0.9f, 0.8f, 0.7f, 0.6f};
    const std::vector<std::uint8_t> c8{3, 200, 3, 200};
    std::vector<int> keep(4);
    const index_t count = focal::nms(focal::batched_nms{}, focal::make_view(boxes.data(), 4, 4), focal::make_view(scores.data(), 4),
                                     focal::make_view(c8.data(), 4), focal::make_view(keep.data(), 4));
    CHECK(count == 2);
    CHECK(keep[0] == 0);
    CHECK(keep[1] == 1);
}

TEST_CASE("batched nms, torchvision mode: its coordinate trick up to 1000 boxes, its per-class loop above") {
    // Negative coordinates: class 1's box shifted by 1 * (max + 1) = 11 lands on class 0's box, so
    // torchvision suppresses it (checked against torchvision 0.14: batched_nms -> [0]).
    const auto boxes = flat<float>({{-100, -100, 10, 10}, {-111, -111, -1, -1}});
    const std::vector<float> scores{0.9f, 0.8f};
    const std::vector<std::int64_t> classes{0, 1};
    const focal::batched_nms tv{.iou_threshold = 0.5, .mode = focal::batched_mode::torchvision};
    CHECK(run_batched(tv, boxes, scores, classes, focal::exec::simd) == keep_list{0});
    CHECK(run_batched(focal::batched_nms{.iou_threshold = 0.5}, boxes, scores, classes, focal::exec::simd) == keep_list{0, 1});
    // The shift rounds: pairs with IoU near the threshold decide differently (torchvision 0.14's
    // batched_nms gives the tv lists below, its nms per class the per-class ones).
    const std::vector<std::int64_t> c101{1, 1, 0};
    const std::vector<float> s3{0.9f, 0.8f, 0.1f};
    const auto near1 = flat<float>({{31.455408096313477, 46.35772705078125, 51.86860656738281, 84.76839447021484},
                                    {38.25979232788086, 46.35772705078125, 58.67299270629883, 84.76839447021484},
                                    {0.0, 0.0, 1000.2999877929688, 1000.7000122070312}});
    CHECK(run_batched(tv, near1, s3, c101, focal::exec::simd) == keep_list{0, 1, 2});
    CHECK(run_batched(focal::batched_nms{}, near1, s3, c101, focal::exec::simd) == keep_list{0, 2});
    const auto near2 = flat<float>({{26.193864822387695, 6.7419610023498535, 34.57040023803711, 16.666044235229492},
                                    {28.986055374145508, 6.7419610023498535, 37.36259460449219, 16.666044235229492},
                                    {0.0, 0.0, 1000.2999877929688, 1000.7000122070312}});
    CHECK(run_batched(tv, near2, s3, c101, focal::exec::scalar) == keep_list{0, 2});
    CHECK(run_batched(focal::batched_nms{}, near2, s3, c101, focal::exec::scalar) == keep_list{0, 1, 2});
    // A NaN coordinate makes the maximum, so every shift, NaN: nothing is suppressed (torchvision: [0, 1, 2]).
    const auto with_nan = flat<float>({{0, 0, 10, 10}, {0, 0, 10, 10}, {std::nan(""), 0, 5, 5}});
    const std::vector<std::int64_t> c3{0, 0, 1};
    CHECK(run_batched(tv, with_nan, {0.9f, 0.8f, 0.7f}, c3, focal::exec::simd) == keep_list{0, 1, 2});
    CHECK(run_batched(focal::batched_nms{}, with_nan, {0.9f, 0.8f, 0.7f}, c3, focal::exec::simd) == keep_list{0, 2});
    // Above the trick's limit: the per-class sets, in torch's (unstable) sort order; as a set, per_class's.
    for (std::uint32_t seed = 1; seed <= 4; ++seed) {
        const auto p = clustered<float>(2500, seed, false);
        const auto pc = reference_per_class(p.boxes, p.scores, 0.5, p.classes);
        auto got = run_batched(tv, p.boxes, p.scores, p.classes, focal::exec::parallel);
        CHECK(got.size() == pc.size());
        for (std::size_t k = 1; k < got.size(); ++k) CHECK(p.scores[got[k - 1]] >= p.scores[got[k]]);
        std::sort(got.begin(), got.end());
        auto pc_sorted = pc;
        std::sort(pc_sorted.begin(), pc_sorted.end());
        CHECK(got == pc_sorted);
        // The limit is a parameter: 0 always loops per class; a large one always uses the trick.
        const auto loop = run_batched(focal::batched_nms{.iou_threshold = 0.5, .mode = focal::batched_mode::torchvision,
                                                         .torchvision_trick_max_boxes = 0},
                                      p.boxes, p.scores, p.classes, focal::exec::simd);
        CHECK(loop == run_batched(tv, p.boxes, p.scores, p.classes, focal::exec::simd));
    }
}

namespace {

struct soft_result {
    std::vector<index_t> keep;
    std::vector<double> scores;
};

// Soft-NMS one pair at a time: pick the best current score (ties: lower index), decay the rest
// with focal::iou (NaN counts as 0), drop scores below the threshold.
template <class T>
soft_result reference_soft(const std::vector<T>& boxes, const std::vector<T>& scores, const focal::soft_nms& p) {
    const auto n = static_cast<index_t>(scores.size());
    const T floor = static_cast<T>(p.score_threshold);
    std::vector<T> cur(scores);
    std::vector<char> alive(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) alive[i] = !std::isnan(cur[i]) && cur[i] >= floor;
    auto box = [&](index_t i) { return focal::box4<T>{{boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]}}; };
    soft_result r;
    while (p.max_detections < 0 || static_cast<index_t>(r.keep.size()) < p.max_detections) {
        index_t best = -1;
        for (index_t i = 0; i < n; ++i)
            if (alive[i] && (best < 0 || cur[i] > cur[best])) best = i;
        if (best < 0) break;
        r.keep.push_back(best);
        r.scores.push_back(static_cast<double>(cur[best]));
        alive[best] = 0;
        for (index_t j = 0; j < n; ++j) {
            if (!alive[j]) continue;
            T iou = focal::iou(box(best), box(j));
            if (std::isnan(iou)) iou = 0;
            T w = 1;
            if (p.decay == focal::soft_decay::linear) {
                if (static_cast<double>(iou) > p.iou_threshold) w = 1 - iou;
            } else {
                w = std::exp(-(iou * iou) / static_cast<T>(p.sigma));
            }
            cur[j] = w == 0 ? T(0) : cur[j] * w;
            if (cur[j] < floor) alive[j] = 0;
        }
    }
    return r;
}

template <class T, class Exec>
soft_result run_soft(const focal::soft_nms& p, const std::vector<T>& boxes, const std::vector<T>& scores, const Exec& exec) {
    const auto n = static_cast<index_t>(scores.size());
    std::vector<index_t> keep(scores.size());
    std::vector<double> kept(scores.size());
    const index_t count = focal::nms(p, focal::make_view(boxes.data(), n, 4), focal::make_view(scores.data(), n),
                                     focal::make_view(keep.data(), n), focal::make_view(kept.data(), n), exec);
    keep.resize(static_cast<std::size_t>(count));
    kept.resize(keep.size());
    return {keep, kept};
}

}  // namespace

TEST_CASE("soft nms: hand-checked linear and Gaussian decay") {
    // b0, b1: IoU 50 / 100 = 0.5; b2 apart.
    const auto boxes = flat<float>({{0, 0, 10, 10}, {0, 0, 10, 5}, {20, 20, 30, 30}});
    const std::vector<float> scores{0.9f, 0.8f, 0.7f};
    for (auto exec : {0, 1}) {
        auto run = [&](const focal::soft_nms& p) {
            return exec ? run_soft(p, boxes, scores, focal::exec::simd) : run_soft(p, boxes, scores, focal::exec::scalar);
        };
        const auto lin = run({.decay = focal::soft_decay::linear, .iou_threshold = 0.3});
        CHECK(lin.keep == keep_list{0, 2, 1});
        CHECK(lin.scores[0] == doctest::Approx(0.9));
        CHECK(lin.scores[1] == doctest::Approx(0.7));
        CHECK(lin.scores[2] == doctest::Approx(0.4));  // 0.8 * (1 - 0.5)
        const auto lin_hi = run({.decay = focal::soft_decay::linear, .iou_threshold = 0.5});  // 0.5 is not > 0.5
        CHECK(lin_hi.keep == keep_list{0, 1, 2});
        CHECK(lin_hi.scores[1] == doctest::Approx(0.8));
        const auto gauss = run({.decay = focal::soft_decay::gaussian, .sigma = 0.5f});
        CHECK(gauss.keep == keep_list{0, 2, 1});
        CHECK(gauss.scores[2] == doctest::Approx(0.8 * std::exp(-0.25 / 0.5)));
        const auto cut = run({.decay = focal::soft_decay::gaussian, .sigma = 0.5f, .score_threshold = 0.5});
        CHECK(cut.keep == keep_list{0, 2});  // 0.485 < 0.5: dropped
        const auto two = run({.max_detections = 2});
        CHECK(two.keep == keep_list{0, 2});
        const auto none = run({.score_threshold = 0.95});
        CHECK(none.keep.empty());
    }
    // Identical boxes with +inf scores: linear weight 0 gives 0, never inf * 0 = NaN.
    const auto same = flat<float>({{0, 0, 1, 1}, {0, 0, 1, 1}});
    const float inf = std::numeric_limits<float>::infinity();
    const auto r = run_soft(focal::soft_nms{.decay = focal::soft_decay::linear, .score_threshold = 0.0}, same,
                            std::vector<float>{inf, inf}, focal::exec::simd);
    CHECK(r.keep == keep_list{0, 1});
    CHECK(r.scores[0] == inf);
    CHECK(r.scores[1] == 0.0);
    // Empty input, NaN scores, degenerate boxes (kept with their score, decaying nothing).
    CHECK(run_soft(focal::soft_nms{}, std::vector<float>{}, std::vector<float>{}, focal::exec::simd).keep.empty());
    const auto deg = flat<float>({{0, 0, 10, 10}, {5, 5, 5, 9}, {std::nan(""), 0, 10, 10}, {0, 0, 10, 10}});
    const auto d = run_soft(focal::soft_nms{.score_threshold = 0.0}, deg,
                            std::vector<float>{0.5f, 0.7f, 0.6f, std::nanf("")}, focal::exec::simd);
    CHECK(d.keep == keep_list{1, 2, 0});
    CHECK(d.scores == std::vector<double>{0.7f, 0.6f, 0.5f});
}

TEST_CASE("soft nms equals the reference on random inputs; scalar exactly, SIMD within exp's rounding") {
    for (std::uint32_t seed = 1; seed <= 6; ++seed) {
        for (index_t n : {5, 90, 600}) {
            for (const focal::soft_nms p : {focal::soft_nms{.decay = focal::soft_decay::linear, .iou_threshold = 0.3},
                                            focal::soft_nms{.decay = focal::soft_decay::linear, .iou_threshold = 0.0,
                                                            .score_threshold = 0.05},
                                            focal::soft_nms{.decay = focal::soft_decay::gaussian, .sigma = 0.5f},
                                            focal::soft_nms{.decay = focal::soft_decay::gaussian, .sigma = 0.1f,
                                                            .score_threshold = 0.2, .max_detections = 40}}) {
                CAPTURE(seed);
                CAPTURE(n);
                CAPTURE(static_cast<int>(p.decay));
                const auto pr = clustered<float>(n, seed, seed % 2 == 0);
                const auto want = reference_soft(pr.boxes, pr.scores, p);
                const auto scalar = run_soft(p, pr.boxes, pr.scores, focal::exec::scalar);
                CHECK(scalar.keep == want.keep);
                CHECK(scalar.scores == want.scores);
                const auto simd = run_soft(p, pr.boxes, pr.scores, focal::exec::simd);
                CHECK(run_soft(p, pr.boxes, pr.scores, focal::exec::parallel).keep == simd.keep);
                if (p.decay == focal::soft_decay::linear) {
                    CHECK(simd.keep == want.keep);
                    CHECK(simd.scores == want.scores);
                } else {  // xsimd's exp vs libm's: equal lists here, scores within a few ulps
                    CHECK(simd.keep == want.keep);
                    REQUIRE(simd.scores.size() == want.scores.size());
                    for (std::size_t k = 0; k < want.scores.size(); ++k)
                        CHECK(focal_test::close(simd.scores[k], want.scores[k], 1e-5));
                }
                for (std::size_t k = 1; k < scalar.scores.size(); ++k) CHECK(scalar.scores[k] <= scalar.scores[k - 1]);
                const auto pd = clustered<double>(n, seed + 100, seed % 2 == 1);  // double boxes and scores
                const auto want_d = reference_soft(pd.boxes, pd.scores, p);
                const auto scalar_d = run_soft(p, pd.boxes, pd.scores, focal::exec::scalar);
                CHECK(scalar_d.keep == want_d.keep);
                CHECK(scalar_d.scores == want_d.scores);
                CHECK(run_soft(p, pd.boxes, pd.scores, focal::exec::simd).keep == want_d.keep);
            }
        }
    }
}

TEST_CASE("bad input throws focal::error naming the argument, before anything is written") {
    const auto boxes = flat<float>({{0, 0, 1, 1}, {0, 0, 2, 2}, {5, 5, 6, 6}});
    const std::vector<float> scores{0.1f, 0.2f, 0.3f};
    const std::vector<std::int64_t> classes{0, 1, 0};
    std::vector<index_t> keep(3, -9);
    std::vector<float> kept(3, -9.0f);
    const auto b = focal::make_view(boxes.data(), 3, 4);
    const auto s = focal::make_view(scores.data(), 3);
    const auto c = focal::make_view(classes.data(), 3);
    const auto k = focal::make_view(keep.data(), 3);
    const auto ks = focal::make_view(kept.data(), 3);
    auto message = [](auto&& f) {
        try {
            f();
        } catch (const focal::error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(message([&] { focal::nms(focal::greedy_nms{.iou_threshold = 1.5}, b, s, k); }) ==
          "focal::nms: iou_threshold must be in [0, 1], got 1.5");
    CHECK(message([&] { focal::nms(focal::greedy_nms{.iou_threshold = -0.1}, b, s, k); }).find("iou_threshold") != std::string::npos);
    CHECK(message([&] { focal::nms(focal::greedy_nms{.iou_threshold = std::nan("")}, b, s, k); }).find("iou_threshold") != std::string::npos);
    CHECK(message([&] { focal::nms(focal::greedy_nms{.max_detections = -2}, b, s, k); }) ==
          "focal::nms: max_detections must be >= 0, or -1 for no limit, got -2");
    CHECK(message([&] { focal::nms(focal::greedy_nms{}, focal::make_view(boxes.data(), 4, 3), s, k); }) ==
          "focal::nms: boxes (N x 4, xyxy) must be of extent 4 in dimension 1, got [4 x 3]");
    CHECK(message([&] { focal::nms(focal::greedy_nms{}, b, focal::make_view(scores.data(), 2), k); }) ==
          "focal::nms: scores must be of extent N = 3 (one per box), got [2]");
    CHECK(message([&] { focal::nms(focal::greedy_nms{}, b, s, focal::make_view(keep.data(), 2)); }) ==
          "focal::nms: keep must be of extent >= 3 (one per box that may be kept), got [2]");
    std::vector<index_t> two(2);  // with max_detections, max_detections slots are enough
    CHECK(message([&] { focal::nms(focal::greedy_nms{.max_detections = 2}, b, s, focal::make_view(two.data(), 2)); }) == "no error");
    CHECK(message([&] { focal::nms(focal::greedy_nms{}, b, s, focal::vector_view<index_t>(keep.data(), {3}, {0})); })
              .find("do not overlap") != std::string::npos);
    CHECK(message([&] { focal::nms(focal::greedy_nms{}, focal::make_view(static_cast<const float*>(nullptr), 3, 4), s, k); })
              .find("boxes must be a non-null pointer") != std::string::npos);
    {
        std::vector<std::int8_t> small(300);
        std::vector<float> many_boxes(1200, 0.0f), many_scores(300, 0.5f);
        CHECK(message([&] {
                  focal::nms(focal::greedy_nms{}, focal::make_view(many_boxes.data(), 300, 4),
                             focal::make_view(many_scores.data(), 300), focal::make_view(small.data(), 300));
              }).find("keep must be of an integer type that holds the largest box index 299") != std::string::npos);
    }
    CHECK(message([&] { focal::nms(focal::batched_nms{}, b, s, focal::make_view(classes.data(), 2), k); }) ==
          "focal::nms: classes must be of extent N = 3 (one per box), got [2]");
    CHECK(message([&] { focal::nms(focal::batched_nms{.iou_threshold = 2}, b, s, c, k); }).find("iou_threshold") != std::string::npos);
    CHECK(message([&] { focal::nms(focal::batched_nms{.mode = focal::batched_mode(7)}, b, s, c, k); }).find("mode") != std::string::npos);
    CHECK(message([&] { focal::nms(focal::soft_nms{.sigma = 0.0f}, b, s, k, ks); }) ==
          "focal::nms: sigma must be finite and > 0, got 0");
    CHECK(message([&] { focal::nms(focal::soft_nms{.score_threshold = -1.0}, b, s, k, ks); }).find("score_threshold") != std::string::npos);
    CHECK(message([&] { focal::nms(focal::soft_nms{.score_threshold = NAN}, b, s, k, ks); }).find("score_threshold") != std::string::npos);
    CHECK(message([&] { focal::nms(focal::soft_nms{.iou_threshold = 1.01}, b, s, k, ks); }).find("iou_threshold") != std::string::npos);
    CHECK(message([&] { focal::nms(focal::soft_nms{}, b, s, k, focal::make_view(kept.data(), 1)); }) ==
          "focal::nms: kept_scores must be of extent >= 3 (one per box that may be kept), got [1]");
    CHECK(message([&] { focal::validate(focal::greedy_nms{.iou_threshold = 3}); }) ==
          "focal::greedy_nms: iou_threshold must be in [0, 1], got 3");
    // Nothing was written by any failing call.
    CHECK(std::all_of(keep.begin(), keep.end(), [](index_t v) { return v == -9; }));
    CHECK(std::all_of(kept.begin(), kept.end(), [](float v) { return v == -9.0f; }));
}
