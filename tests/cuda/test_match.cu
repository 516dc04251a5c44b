// focal::cuda pairwise_iou, match_anchors (single and batched), build_targets and assign_targets
// against the host library: identical IoU bits, identical codes and max_iou, identical labels and
// positive counts, box targets within float rounding; determinism; bad input throws focal::error.
#include <focal/anchor/generate.hpp>
#include <focal/anchor/presets.hpp>
#include <focal/assign/match.hpp>
#include <focal/assign/targets.hpp>
#include <focal/box/pairwise.hpp>
#include <focal/coder/delta_xywh.hpp>
#include <focal/core/labels.hpp>
#include <focal/cuda/match.cuh>
#include <focal/cuda/targets.cuh>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "harness.cuh"
#include "support/matcher_cases.hpp"

using focal::index_t;
using boxes = std::vector<float>;  // row-major n x 4
using focal_test_support::random_boxes;
using focal_test_support::every_matcher;
namespace fc = focal::cuda;

namespace {

index_t rows(const boxes& b) { return static_cast<index_t>(b.size() / 4); }

struct match_result {
    std::vector<std::int32_t> codes;
    std::vector<float> max_iou;
};

match_result host_match(const focal::max_iou_matcher& m, const boxes& anchors, const boxes& gt, const boxes& crowd) {
    const index_t n = rows(anchors);
    match_result r{std::vector<std::int32_t>(static_cast<std::size_t>(n)), std::vector<float>(static_cast<std::size_t>(n))};
    const focal::matrix_view<const float> c =
        crowd.empty() ? focal::matrix_view<const float>{} : focal::make_view(crowd.data(), rows(crowd), 4);
    focal::match_anchors(m, focal::make_view(anchors.data(), n, 4), focal::make_view(gt.data(), rows(gt), 4), c,
                         focal::match_output{focal::make_view(r.codes.data(), n), focal::make_view(r.max_iou.data(), n)},
                         focal::exec::scalar);
    return r;
}

// The device buffer of a (possibly empty) host vector.
template <class T>
fc::device_buffer<T> upload(const std::vector<T>& v) {
    return v.empty() ? fc::device_buffer<T>() : fc::device_buffer<T>(v);
}

match_result device_match(const focal::max_iou_matcher& m, const boxes& anchors, const boxes& gt, const boxes& crowd) {
    const index_t n = rows(anchors), g = rows(gt), c = rows(crowd);
    const auto da = upload(anchors), dg = upload(gt), dc = upload(crowd);
    fc::device_buffer<std::int32_t> codes(static_cast<std::size_t>(n));
    fc::device_buffer<float> iou(static_cast<std::size_t>(n));
    fc::device_buffer<unsigned char> ws(fc::match_anchors_workspace_size(n, g, c));
    const fc::device_matrix_view<const float> cv =
        crowd.empty() ? fc::device_matrix_view<const float>{} : focal::make_device_view<const float>(dc.data(), c, 4);
    fc::match_anchors(m, focal::make_device_view<const float>(da.data(), n, 4),
                      focal::make_device_view<const float>(dg.data(), g, 4), cv, focal::match_output{codes.view(), iou.view()},
                      fc::workspace{ws.data(), ws.size()}, nullptr);
    fc::synchronize(nullptr);
    return {codes.to_host(), iou.to_host()};
}

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
    return true;
}

index_t first_difference(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        if (a[i] != b[i]) return static_cast<index_t>(i);
    return -1;
}

void check_match(const focal::max_iou_matcher& m, const boxes& anchors, const boxes& gt, const boxes& crowd = {}) {
    const match_result want = host_match(m, anchors, gt, crowd), got = device_match(m, anchors, gt, crowd);
    CHECK_EQ(first_difference(got.codes, want.codes), index_t(-1));
    CHECK(got.codes == want.codes);
    CHECK(same_floats(got.max_iou, want.max_iou));
}

}  // namespace

FOCAL_CUDA_TEST(pairwise_iou_has_the_host_bits) {
    std::mt19937 rng(1);
    const boxes a = random_boxes(rng, 1000, 500, 400, 0, 120), b = random_boxes(rng, 37, 500, 400, 0, 200);
    std::vector<float> want(1000 * 37);
    focal::pairwise_iou(focal::make_view(a.data(), 1000, 4), focal::make_view(b.data(), 37, 4),
                        focal::make_view(want.data(), 1000, 37), focal::exec::scalar);
    const auto da = upload(a), db = upload(b);
    fc::device_buffer<float> out(want.size());
    fc::pairwise_iou(focal::make_device_view<const float>(da.data(), 1000, 4),
                     focal::make_device_view<const float>(db.data(), 37, 4), out.view(1000, 37), nullptr);
    CHECK(same_floats(out.to_host(), want));
    // Empty shapes launch nothing; bad shapes throw.
    fc::pairwise_iou(focal::make_device_view<const float>(da.data(), 0, 4),
                     focal::make_device_view<const float>(db.data(), 37, 4), out.view(0, 37), nullptr);
    CHECK_THROWS_AS(fc::pairwise_iou(focal::make_device_view<const float>(da.data(), 1000, 4),
                                     focal::make_device_view<const float>(db.data(), 37, 4), out.view(37, 1000), nullptr),
                    focal::error);
    CHECK_THROWS_AS(fc::pairwise_iou(focal::make_device_view<const float>(da.data(), 1000, 3),
                                     focal::make_device_view<const float>(db.data(), 37, 4), out.view(1000, 37), nullptr),
                    focal::error);
}

FOCAL_CUDA_TEST(match_anchors_random_problems_every_option) {
    std::mt19937 rng(11);
    for (const auto& m : every_matcher())
        for (int rep = 0; rep < 6; ++rep) {
            const index_t n = std::uniform_int_distribution<index_t>(1, 3000)(rng);
            const index_t g = std::uniform_int_distribution<index_t>(0, 300)(rng);  // > 256: two gt chunks
            const boxes anchors = random_boxes(rng, n, 300, 200, 4, 60), gt = random_boxes(rng, g, 300, 200, 2, 80);
            check_match(m, anchors, gt, rep % 2 ? random_boxes(rng, 3, 300, 200, 20, 100) : boxes{});
        }
}

FOCAL_CUDA_TEST(match_anchors_edge_cases) {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
    const auto anchors = focal::make_anchors<float>(focal::anchor_presets::torchvision(), focal::size2d{128, 160});
    std::mt19937 rng(5);
    boxes grid;
    for (int y = 0; y < 20; ++y)
        for (int x = 0; x < 20; ++x) grid.insert(grid.end(), {x * 8.0f, y * 8.0f, x * 8.0f + 16, y * 8.0f + 16});
    boxes odd = random_boxes(rng, 300, 100, 100, 5, 30);
    odd[4 * 3 + 0] = nan;
    odd[4 * 7 + 2] = inf;
    odd[4 * 9 + 0] = -inf;
    odd[4 * 9 + 2] = inf;
    odd[4 * 11 + 1] = -inf;
    for (int c = 0; c < 4; ++c) odd[4 * 13 + c] = 50;  // a point
    odd[4 * 15 + 2] = odd[4 * 15 + 0] - 3;             // inverted
    const boxes odd_gt = random_boxes(rng, 7, 100, 100, 5, 40);
    for (const auto& m : every_matcher()) {
        check_match(m, anchors, {});                                // no gt: every anchor background (-1)
        check_match(m, anchors, {}, {10, 10, 60, 60});              // no gt, a crowd region: ignored (-2) near it
        check_match(m, anchors, {30, 30, 90, 80});                  // one gt
        check_match(m, anchors, {30, 30, 90, 80, 30, 30, 90, 80});  // identical gts: the first wins
        // degenerate gts: zero area, inverted, outside every anchor (the zero-IoU guard)
        check_match(m, anchors, {0, 0, 8, 8, 50, 50, 50, 90, 70, 70, 60, 60, 1000, 1000, 1010, 1010});
        check_match(m, anchors, {2, 2, 3, 3});                      // tiny gt: its small best IoU, ties
        check_match(m, grid, {8, 8, 24, 24, 4, 4, 20, 20, 40, 40, 52, 56, 0, 0, 160, 160});  // exact ties
        check_match(m, odd, odd_gt, {0, 0, 30, 30});                // NaN / inf / point / inverted anchors
        check_match(m, {1, 1, 5, 5}, {0, 0, 4, 4});                 // one anchor
    }
    // No anchors: nothing to do, nothing launched.
    check_match(focal::max_iou_matcher{}, {}, {0, 0, 4, 4});
    // A box between the thresholds: IoU 0.45 -> -2; exactly at positive_iou_threshold -> positive.
    check_match(focal::max_iou_matcher{.allow_low_quality_matches = false}, {0, 0, 10, 10, 0, 0, 10, 10},
                {0, 0, 10, 4.5f, 0, 0, 10, 5});
}

FOCAL_CUDA_TEST(match_anchors_120000_anchors_x_50_gt_and_determinism) {
    auto anchors = focal::make_anchors<float>(focal::anchor_presets::torchvision(), focal::size2d{800, 1344});
    anchors.resize(120000 * 4);
    std::mt19937 rng(9);
    const boxes gt = random_boxes(rng, 50, 1344, 800, 8, 400), crowd = random_boxes(rng, 2, 1344, 800, 40, 120);
    for (const auto& m : {focal::max_iou_matcher{}, focal::matcher_presets::torchvision(), focal::matcher_presets::detectron()})
        check_match(m, anchors, gt, crowd);
    const match_result a = device_match(focal::max_iou_matcher{}, anchors, gt, crowd);
    const match_result b = device_match(focal::max_iou_matcher{}, anchors, gt, crowd);
    CHECK(a.codes == b.codes);
    CHECK(std::memcmp(a.max_iou.data(), b.max_iou.data(), a.max_iou.size() * sizeof(float)) == 0);
}

FOCAL_CUDA_TEST(match_anchors_int64_codes_strided_views_double_anchors) {
    std::mt19937 rng(4);
    const boxes anchors = random_boxes(rng, 900, 200, 200, 4, 50), gt = random_boxes(rng, 12, 200, 200, 4, 80);
    const match_result want = host_match(focal::max_iou_matcher{}, anchors, gt, {});
    // int64 codes written with stride 2; anchors as double.
    std::vector<double> anchors_d(anchors.begin(), anchors.end());
    const auto da = upload(anchors_d);
    const auto dg = upload(gt);
    fc::device_buffer<std::int64_t> codes(1800);
    fc::device_buffer<unsigned char> ws(fc::match_anchors_workspace_size(900, 12));
    const fc::device_vector_view<std::int64_t> strided(codes.data(), {900}, {2});
    fc::match_anchors(focal::max_iou_matcher{}, focal::make_device_view<const double>(da.data(), 900, 4),
                      focal::make_device_view<const float>(dg.data(), 12, 4), fc::device_matrix_view<const float>{},
                      focal::match_output{strided}, fc::workspace{ws.data(), ws.size()}, nullptr);
    const auto got = codes.to_host();
    // double IoU: compare with the host in double
    std::vector<std::int64_t> want_d(900);
    focal::match_anchors(focal::max_iou_matcher{}, focal::make_view(anchors_d.data(), 900, 4),
                         focal::make_view(gt.data(), 12, 4), focal::match_output{focal::make_view(want_d.data(), 900)},
                         focal::exec::scalar);
    bool same = true;
    for (index_t i = 0; i < 900; ++i) same = same && got[2 * i] == want_d[i];
    CHECK(same);
    (void)want;
}

FOCAL_CUDA_TEST(match_anchors_batched_equals_one_image_at_a_time) {
    std::mt19937 rng(21);
    const auto anchors = focal::make_anchors<float>(focal::anchor_presets::torchvision(), focal::size2d{256, 320});
    const index_t n = rows(anchors), b = 4, gmax = 40, cmax = 2;
    const std::vector<int> counts = {40, 0, 17, 300}, crowd_counts = {0, 2, 1, -5};  // clamped to [0, max]
    boxes gt(static_cast<std::size_t>(b * gmax * 4), std::nanf("")), crowd(static_cast<std::size_t>(b * cmax * 4), std::nanf(""));
    std::vector<boxes> gt_of(b), crowd_of(b);
    for (index_t k = 0; k < b; ++k) {
        const index_t g = std::clamp<index_t>(counts[k], 0, gmax), c = std::clamp<index_t>(crowd_counts[k], 0, cmax);
        gt_of[k] = random_boxes(rng, g, 320, 256, 4, 150);
        crowd_of[k] = random_boxes(rng, c, 320, 256, 20, 80);
        std::copy(gt_of[k].begin(), gt_of[k].end(), gt.begin() + k * gmax * 4);  // NaN padding is never read
        std::copy(crowd_of[k].begin(), crowd_of[k].end(), crowd.begin() + k * cmax * 4);
    }
    const auto da = upload(anchors), dg = upload(gt), dc = upload(crowd);
    const auto dn = upload(counts), dcn = upload(crowd_counts);
    for (const auto& m : every_matcher()) {
        fc::device_buffer<std::int32_t> codes(static_cast<std::size_t>(b * n));
        fc::device_buffer<float> iou(static_cast<std::size_t>(b * n));
        fc::device_buffer<unsigned char> ws(fc::match_anchors_batched_workspace_size(b, n, gmax, cmax));
        fc::match_anchors_batched(m, focal::make_device_view<const float>(da.data(), n, 4),
                                  focal::make_device_view<const float>(dg.data(), b, gmax, 4),
                                  focal::make_device_view<const int>(dn.data(), b),
                                  focal::make_device_view<const float>(dc.data(), b, cmax, 4),
                                  focal::make_device_view<const int>(dcn.data(), b),
                                  focal::batch_match_output{codes.view(b, n), iou.view(b, n)},
                                  fc::workspace{ws.data(), ws.size()}, nullptr);
        const auto got = codes.to_host();
        const auto got_iou = iou.to_host();
        for (index_t k = 0; k < b; ++k) {
            const match_result want = host_match(m, anchors, gt_of[k], crowd_of[k]);
            CHECK(std::vector<std::int32_t>(got.begin() + k * n, got.begin() + (k + 1) * n) == want.codes);
            CHECK(same_floats(std::vector<float>(got_iou.begin() + k * n, got_iou.begin() + (k + 1) * n), want.max_iou));
        }
    }
}

FOCAL_CUDA_TEST(match_anchors_bad_input_throws_before_launch) {
    fc::device_buffer<float> a(40), g(8);
    fc::device_buffer<std::int32_t> codes(10);
    fc::device_buffer<unsigned char> ws(fc::match_anchors_workspace_size(10, 2));
    const fc::workspace w{ws.data(), ws.size()};
    const auto av = focal::make_device_view<const float>(a.data(), 10, 4);
    const auto gv = focal::make_device_view<const float>(g.data(), 2, 4);
    const fc::device_matrix_view<const float> none;
    CHECK_THROWS_AS(fc::match_anchors(focal::max_iou_matcher{}, av, gv, none, focal::match_output{codes.view()}, fc::workspace{ws.data(), 1}, nullptr),
                    focal::error);  // small workspace
    CHECK_THROWS_AS(fc::match_anchors(focal::max_iou_matcher{.positive_iou_threshold = 0.3, .negative_iou_threshold = 0.4},
                                      av, gv, none, focal::match_output{codes.view()}, w, nullptr),
                    focal::error);  // negative_iou_threshold > positive_iou_threshold
    CHECK_THROWS_AS(fc::match_anchors(focal::max_iou_matcher{}, av, focal::make_device_view<const float>(g.data(), 2, 3),
                                      none, focal::match_output{codes.view()}, w, nullptr),
                    focal::error);  // gt not x 4
    CHECK_THROWS_AS(fc::match_anchors(focal::max_iou_matcher{}, av, gv, none,
                                      focal::match_output{focal::make_device_view(codes.data(), 9)}, w, nullptr),
                    focal::error);  // matches of the wrong extent
    CHECK_THROWS_AS(fc::match_anchors(focal::max_iou_matcher{}, av, gv, none,
                                      focal::match_output{fc::device_vector_view<std::int32_t>(codes.data(), {10}, {0})}, w, nullptr),
                    focal::error);  // stride 0
    CHECK_THROWS_AS(fc::match_anchors(focal::max_iou_matcher{}, av, gv, none,
                                      focal::match_output{codes.view(), focal::make_device_view(g.data(), 3)}, w, nullptr),
                    focal::error);  // max_iou of the wrong extent
    fc::device_buffer<std::int8_t> small(10);
    fc::device_buffer<float> many(4 * 200);
    fc::device_buffer<unsigned char> ws2(fc::match_anchors_workspace_size(10, 200));
    CHECK_THROWS_AS(fc::match_anchors(focal::max_iou_matcher{}, av, focal::make_device_view<const float>(many.data(), 200, 4),
                                      none, focal::match_output{small.view()}, fc::workspace{ws2.data(), ws2.size()}, nullptr),
                    focal::error);  // 200 gt do not fit int8 codes
    fc::device_buffer<int> counts(3);
    fc::device_buffer<unsigned char> ws3(fc::match_anchors_batched_workspace_size(2, 10, 1));
    CHECK_THROWS_AS(fc::match_anchors_batched(focal::max_iou_matcher{}, av, focal::make_device_view<const float>(g.data(), 2, 1, 4),
                                              focal::make_device_view<const int>(counts.data(), 3),
                                              focal::batch_match_output{focal::make_device_view(codes.data(), 2, 5)},
                                              fc::workspace{ws3.data(), ws3.size()},
                                              nullptr),
                    focal::error);  // counts for 3 images, 2 images; matches 2 x 5
    fc::synchronize(nullptr);
}

FOCAL_CUDA_TEST(build_and_assign_targets_equal_the_host) {
    std::mt19937 rng(31);
    const auto anchors = focal::make_anchors<float>(focal::anchor_presets::torchvision(), focal::size2d{256, 320});
    const index_t n = rows(anchors);
    const boxes gt = random_boxes(rng, 13, 320, 256, 8, 150), crowd = random_boxes(rng, 1, 320, 256, 40, 80);
    const index_t g = rows(gt);
    std::vector<std::int64_t> gt_labels(static_cast<std::size_t>(g));
    for (index_t j = 0; j < g; ++j) gt_labels[j] = (7 * j) % 80;
    const focal::delta_xywh_coder coder{10, 10, 5, 5};
    const focal::max_iou_matcher m{};
    // host
    std::vector<std::int64_t> want_labels(static_cast<std::size_t>(n));
    std::vector<float> want_targets(static_cast<std::size_t>(n * 4));
    const index_t want_pos = focal::assign_targets(
        m, coder, focal::make_view(anchors.data(), n, 4), focal::make_view(gt.data(), g, 4),
        focal::make_view(crowd.data(), 1, 4), focal::vector_view<const std::int64_t>(gt_labels.data(), g),
        focal::make_view(want_labels.data(), n), focal::make_view(want_targets.data(), n, 4), focal::exec::scalar);
    REQUIRE(want_pos > 0);
    // device assign_targets
    const auto da = upload(anchors), dg = upload(gt), dc = upload(crowd);
    const auto dl = upload(gt_labels);
    fc::device_buffer<std::int64_t> labels(static_cast<std::size_t>(n)), positives(1);
    fc::device_buffer<float> targets(static_cast<std::size_t>(n * 4));
    fc::device_buffer<unsigned char> ws(fc::assign_targets_workspace_size(n, g, 1));
    const auto av = focal::make_device_view<const float>(da.data(), n, 4);
    const auto gv = focal::make_device_view<const float>(dg.data(), g, 4);
    fc::assign_targets(m, coder, av, gv, focal::make_device_view<const float>(dc.data(), 1, 4),
                       focal::make_device_view<const std::int64_t>(dl.data(), g), labels.view(), targets.view(n, 4),
                       positives.view(), fc::workspace{ws.data(), ws.size()}, nullptr);
    CHECK(labels.to_host() == want_labels);
    CHECK_EQ(positives.to_host()[0], static_cast<std::int64_t>(want_pos));
    CHECK_CLOSE(targets.to_host(), want_targets, 1e-5, 1e-4);

    // build_targets writing labels over the matches (same int32 memory), count as int32.
    std::vector<std::int32_t> codes(static_cast<std::size_t>(n));
    focal::match_anchors(m, focal::make_view(anchors.data(), n, 4), focal::make_view(gt.data(), g, 4),
                         focal::make_view(crowd.data(), 1, 4), focal::match_output{focal::make_view(codes.data(), n)});
    fc::device_buffer<std::int32_t> inout(codes), pos32(1);
    fc::device_buffer<unsigned char> tws(fc::build_targets_workspace_size(n));
    fc::build_targets(coder, fc::device_vector_view<const std::int32_t>(inout.data(), n), av, gv,
                      focal::make_device_view<const std::int64_t>(dl.data(), g), inout.view(), targets.view(n, 4),
                      pos32.view(), fc::workspace{tws.data(), tws.size()}, nullptr);
    const auto in_place = inout.to_host();
    bool same = true;
    for (index_t i = 0; i < n; ++i) same = same && in_place[i] == want_labels[i];
    CHECK(same);
    CHECK_EQ(pos32.to_host()[0], static_cast<std::int32_t>(want_pos));

    // Codes out of [-2, G): -2, zero targets, not counted (the host would throw).
    std::vector<std::int32_t> bad = {0, 13, -3, 99, -1, -2, 12};
    const boxes few(anchors.begin(), anchors.begin() + 7 * 4);
    const auto dbad = upload(bad);
    const auto dfew = upload(few);
    fc::device_buffer<std::int64_t> bl(7), bp(1);
    fc::device_buffer<float> bt(28);
    fc::device_buffer<unsigned char> bws(fc::build_targets_workspace_size(7));
    fc::build_targets(coder, focal::make_device_view<const std::int32_t>(dbad.data(), 7),
                      focal::make_device_view<const float>(dfew.data(), 7, 4), gv,
                      focal::make_device_view<const std::int64_t>(dl.data(), g), bl.view(), bt.view(7, 4), bp.view(),
                      fc::workspace{bws.data(), bws.size()}, nullptr);
    constexpr std::int64_t ignored = focal::ignored_label, background = focal::background_label;
    CHECK(bl.to_host() ==
          (std::vector<std::int64_t>{gt_labels[0], ignored, ignored, ignored, background, ignored, gt_labels[12]}));
    CHECK_EQ(bp.to_host()[0], std::int64_t(2));
    const auto btv = bt.to_host();
    CHECK(std::all_of(btv.begin() + 4, btv.begin() + 24, [](float v) { return v == 0.0f; }));

    // Errors before launch.
    CHECK_THROWS_AS(fc::build_targets(coder, fc::device_vector_view<const std::int32_t>(inout.data(), n), av, gv,
                                      focal::make_device_view<const std::int64_t>(dl.data(), g - 1), inout.view(),
                                      targets.view(n, 4), pos32.view(), fc::workspace{tws.data(), tws.size()}, nullptr),
                    focal::error);  // gt_labels short
    CHECK_THROWS_AS(fc::build_targets(focal::delta_xywh_coder{0, 1, 1, 1}, fc::device_vector_view<const std::int32_t>(inout.data(), n),
                                      av, gv, focal::make_device_view<const std::int64_t>(dl.data(), g), inout.view(),
                                      targets.view(n, 4), pos32.view(), fc::workspace{tws.data(), tws.size()}, nullptr),
                    focal::error);  // bad coder weights
    CHECK_THROWS_AS(fc::assign_targets(m, coder, av, gv, fc::device_matrix_view<const float>{},
                                       focal::make_device_view<const std::int64_t>(dl.data(), g), labels.view(),
                                       targets.view(n, 4), focal::make_device_view(positives.data(), 0),
                                       fc::workspace{ws.data(), ws.size()}, nullptr),
                    focal::error);  // no room for the count
    {  // batched: column-major images that overlap the next one; one count shared by two images
        fc::device_buffer<float> wide(static_cast<std::size_t>(8 * n));
        fc::device_buffer<std::int64_t> labels2(static_cast<std::size_t>(2 * n)), pos2(2);
        fc::device_buffer<unsigned char> ws2(fc::build_targets_workspace_size(n, 2));
        const fc::device_matrix_view<const std::int32_t> m2(inout.data(), {2, n}, {0, 1});
        const fc::device_tensor3_view<const float> g2(dg.data(), {2, g, 4}, {0, 4, 1});
        const fc::device_matrix_view<const std::int64_t> gl2(dl.data(), {2, g}, {0, 1});
        const fc::device_tensor3_view<float> column_major(wide.data(), {2, n, 4}, {n, 1, n});
        const fc::device_tensor3_view<float> packed(wide.data(), {2, n, 4}, {4 * n, 4, 1});
        const fc::workspace w2{ws2.data(), ws2.size()};
        CHECK_THROWS_AS(fc::build_targets_batched(coder, m2, av, g2, fc::device_vector_view<const int>{}, gl2, labels2.view(2, n),
                                                  column_major, pos2.view(), w2, nullptr),
                        focal::error);  // image 0 spans 4n elements, stride(0) is n
        CHECK_THROWS_AS(fc::build_targets_batched(coder, m2, av, g2, fc::device_vector_view<const int>{}, gl2, labels2.view(2, n),
                                                  packed, fc::device_vector_view<std::int64_t>(pos2.data(), {2}, {0}), w2, nullptr),
                        focal::error);  // both images' counts in one element
    }
    fc::synchronize(nullptr);
}

FOCAL_CUDA_TEST(assign_targets_batched_equals_the_host_per_image) {
    std::mt19937 rng(41);
    const auto anchors = focal::make_anchors<float>(focal::anchor_presets::torchvision(), focal::size2d{192, 256});
    const index_t n = rows(anchors), b = 3, gmax = 8;
    const std::vector<int> counts = {8, 0, 5};
    boxes gt(static_cast<std::size_t>(b * gmax * 4), 0.0f);
    std::vector<std::int64_t> labels_in(static_cast<std::size_t>(b * gmax), 0);
    std::vector<boxes> gt_of(b);
    for (index_t k = 0; k < b; ++k) {
        gt_of[k] = random_boxes(rng, counts[k], 256, 192, 8, 120);
        std::copy(gt_of[k].begin(), gt_of[k].end(), gt.begin() + k * gmax * 4);
        for (index_t j = 0; j < gmax; ++j) labels_in[k * gmax + j] = k * 10 + j;
    }
    const focal::delta_xywh_coder coder{};
    const auto da = upload(anchors), dg = upload(gt);
    const auto dn = upload(counts);
    const auto dl = upload(labels_in);
    fc::device_buffer<std::int64_t> labels(static_cast<std::size_t>(b * n)), positives(b);
    fc::device_buffer<float> targets(static_cast<std::size_t>(b * n * 4));
    fc::device_buffer<unsigned char> ws(fc::assign_targets_batched_workspace_size(b, n, gmax));
    fc::assign_targets_batched(focal::max_iou_matcher{}, coder, focal::make_device_view<const float>(da.data(), n, 4),
                               focal::make_device_view<const float>(dg.data(), b, gmax, 4),
                               focal::make_device_view<const int>(dn.data(), b), fc::device_tensor3_view<const float>{},
                               fc::device_vector_view<const int>{},
                               focal::make_device_view<const std::int64_t>(dl.data(), b, gmax), labels.view(b, n),
                               focal::make_device_view(targets.data(), b, n, 4), positives.view(),
                               fc::workspace{ws.data(), ws.size()}, nullptr);
    const auto got_labels = labels.to_host();
    const auto got_targets = targets.to_host();
    const auto got_pos = positives.to_host();
    for (index_t k = 0; k < b; ++k) {
        const index_t g = counts[k];
        std::vector<std::int64_t> want_labels(static_cast<std::size_t>(n));
        std::vector<float> want_targets(static_cast<std::size_t>(n * 4));
        const index_t pos = focal::assign_targets(
            focal::max_iou_matcher{}, coder, focal::make_view(anchors.data(), n, 4), focal::make_view(gt_of[k].data(), g, 4),
            focal::vector_view<const std::int64_t>(labels_in.data() + k * gmax, g), focal::make_view(want_labels.data(), n),
            focal::make_view(want_targets.data(), n, 4), focal::exec::scalar);
        CHECK(std::vector<std::int64_t>(got_labels.begin() + k * n, got_labels.begin() + (k + 1) * n) == want_labels);
        CHECK_EQ(got_pos[k], static_cast<std::int64_t>(pos));
        CHECK_CLOSE(std::vector<float>(got_targets.begin() + k * n * 4, got_targets.begin() + (k + 1) * n * 4), want_targets,
                    1e-5, 1e-4);
    }
}
