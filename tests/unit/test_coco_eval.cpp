// COCO bbox evaluation: every case of tests/data/coco_eval (made by make_coco_references.py with
// pycocotools) read through focal's JSON readers and compared with pycocotools' numbers; the
// thresholds and IoU bit for bit; hand-checked tiny cases; bad input and malformed JSON.
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <limits>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <focal/eval/coco_eval.hpp>
#include <focal/eval/coco_json.hpp>

#include "support/fixtures.hpp"

using focal::coco_annotation;
using focal::coco_detection;
using focal::coco_ground_truth;
using focal::index_t;

namespace {

const std::filesystem::path& coco_dir() {
    static const std::filesystem::path dir = focal_test::data_dir() / "coco_eval";
    return dir;
}

const nlohmann::json& expected() {
    static const nlohmann::json doc = [] {
        std::ifstream in(coco_dir() / "expected.json");
        REQUIRE_MESSAGE(in.good(), "cannot open " << (coco_dir() / "expected.json").string());
        return nlohmann::json::parse(in);
    }();
    return doc;
}

// pycocotools' precision of a perfect list: tp / (fp + tp + eps) = 1 / (1 + eps), one ulp below 1.
const double perfect = 1.0 / (1.0 + std::numeric_limits<double>::epsilon());

// The task asks for agreement within 1e-6. focal does pycocotools' arithmetic operation for
// operation (numpy's pairwise sum included), so every number is checked for equality.
// Means of many equal values differ from the value by summation rounding.
bool near(double a, double b) { return std::abs(a - b) <= 1e-14; }

std::string summary_of(const focal::coco_eval_result& r) { return focal::coco_summary_text(r); }

// A small ground truth: images 1..n, categories 1..k.
coco_ground_truth make_gt(int images, int categories) {
    coco_ground_truth gt;
    for (int i = 1; i <= images; ++i) gt.images.push_back({i, 640, 480});
    for (int c = 1; c <= categories; ++c) gt.categories.push_back({c, std::to_string(c)});
    return gt;
}
void add_gt(coco_ground_truth& gt, focal::coco_id image, focal::coco_id category, focal::coco_box box,
            bool crowd = false, double area = -1) {
    coco_annotation a;
    a.id = static_cast<focal::coco_id>(gt.annotations.size()) + 1;
    a.image_id = image;
    a.category_id = category;
    a.bbox = box;
    a.area = area >= 0 ? area : box[2] * box[3];
    a.iscrowd = crowd;
    gt.annotations.push_back(a);
}

}  // namespace

TEST_CASE("thresholds are numpy.linspace's values bit for bit") {
    const focal::coco_eval_params p;
    const auto iou = expected().at("iou_thresholds").get<std::vector<double>>();
    const auto rec = expected().at("recall_thresholds").get<std::vector<double>>();
    REQUIRE(p.iou_thresholds.size() == iou.size());
    REQUIRE(p.recall_thresholds.size() == rec.size());
    for (std::size_t i = 0; i < iou.size(); ++i) CHECK(p.iou_thresholds[i] == iou[i]);
    for (std::size_t i = 0; i < rec.size(); ++i) CHECK(p.recall_thresholds[i] == rec[i]);
    CHECK(p.iou_thresholds[8] != 0.9);  // 0.8999999999999999, as in pycocotools
}

TEST_CASE("coco_iou is maskUtils.iou bit for bit (crowd and regular, touching boxes)") {
    const auto& c = expected().at("iou_pairs");
    const auto dt = c.at("dt").get<std::vector<focal::coco_box>>();
    const auto gt = c.at("gt").get<std::vector<focal::coco_box>>();
    const auto crowd = c.at("iscrowd").get<std::vector<int>>();
    const auto iou = c.at("iou").get<std::vector<std::vector<double>>>();
    int exact = 0;
    for (std::size_t d = 0; d < dt.size(); ++d)
        for (std::size_t g = 0; g < gt.size(); ++g) {
            const double v = focal::coco_iou(dt[d], gt[g], crowd[g] != 0);
            CHECK_MESSAGE(v == iou[d][g], "dt " << d << " gt " << g << ": " << v << " vs " << iou[d][g]);
            exact += v == iou[d][g];
        }
    CHECK(exact == static_cast<int>(dt.size() * gt.size()));
    CHECK(focal::coco_iou({0, 0, 10, 10}, {10, 0, 10, 10}, false) == 0.0);  // touching
    CHECK(focal::coco_iou({0, 0, 10, 10}, {0, 0, 20, 20}, true) == 1.0);    // inside a crowd
    CHECK(focal::coco_iou({0, 0, 10, 10}, {5, 0, 20, 20}, true) == 0.5);    // half inside
}

TEST_CASE("every reference case equals pycocotools (read through focal's JSON readers)") {
    for (const auto& item : expected().at("cases").items()) {
        const std::string name = item.key();  // (not a structured binding: clang 14 cannot capture one)
        const nlohmann::json& want = item.value();
        CAPTURE(name);
        const auto gt = focal::read_coco_ground_truth(coco_dir() / name / "gt.json");
        const auto dets = focal::read_coco_results(coco_dir() / name / "results.json");
        const auto res = focal::coco_evaluate(gt, dets, {}, focal::exec::scalar);

        CHECK(res.category_ids == want.at("category_ids").get<std::vector<focal::coco_id>>());
        const auto shape = want.at("shape").get<std::vector<index_t>>();
        CHECK(shape == std::vector<index_t>{res.num_iou_thresholds(), res.num_recall_thresholds(),
                                            res.num_categories(), res.num_area_ranges(), res.num_max_detections()});
        const auto stats = want.at("stats").get<std::vector<double>>();
        for (std::size_t i = 0; i < 12; ++i) {
            CAPTURE(focal::coco_stat_names[i]);
            CHECK(res.stats[i] == stats[i]);
        }
        // recall: every entry, exactly
        const auto recall = want.at("recall").get<std::vector<double>>();
        REQUIRE(recall.size() == res.recall.size());
        std::size_t recall_equal = 0;
        for (std::size_t i = 0; i < recall.size(); ++i) recall_equal += res.recall[i] == recall[i];
        CHECK(recall_equal == recall.size());
        // precision: the samples and whole curves, exactly
        for (const auto& s : want.at("precision_samples")) {
            const double got = res.precision_at(s[0], s[1], s[2], s[3], s[4]);
            CHECK_MESSAGE(got == s[5].get<double>(), "precision" << s.dump());
        }
        for (const auto& c : want.at("precision_curves")) {
            const auto curve = c[4].get<std::vector<double>>();
            for (index_t r = 0; r < static_cast<index_t>(curve.size()); ++r)
                CHECK_MESSAGE(res.precision_at(c[0], r, c[1], c[2], c[3]) == curve[static_cast<std::size_t>(r)],
                              "curve " << c[0] << "," << c[1] << "," << c[2] << "," << c[3] << " r " << r);
        }
        // per category AP (area all, 100 detections)
        const auto ap = want.at("category_ap").get<std::vector<double>>();
        for (index_t k = 0; k < res.num_categories(); ++k)
            CHECK(focal::coco_summarize(res, {.category = k}) == ap[static_cast<std::size_t>(k)]);
        CHECK(summary_of(res) == want.at("summary").get<std::string>());

        // exec::parallel (forced onto the pool even for small inputs) is bit-identical.
        for (std::size_t threads : {2u, 3u, 8u}) {
            const auto par = focal::coco_evaluate(gt, dets, {},
                                                  focal::exec::parallel_policy{.threads = threads, .min_elements = 0});
            CHECK(par.precision == res.precision);
            CHECK(par.recall == res.recall);
            CHECK(par.stats == res.stats);
        }
    }
}

TEST_CASE("hand-checked: one ground truth, one perfect detection") {
    auto gt = make_gt(1, 1);
    add_gt(gt, 1, 1, {10, 10, 50, 40});  // area 2000: medium
    const std::vector<coco_detection> dets{{1, 1, {10, 10, 50, 40}, 0.9}};
    const auto r = focal::coco_evaluate(gt, dets);
    const double p = perfect;
    const std::array<double, 12> want{p, p, p, -1, p, -1, 1, 1, 1, -1, 1, -1};
    for (std::size_t i = 0; i < 12; ++i) CHECK(near(r.stats[i], want[i]));
    for (index_t rr = 0; rr < r.num_recall_thresholds(); ++rr) CHECK(r.precision_at(9, rr, 0, 0, 2) == p);
    CHECK(r.recall_at(0, 0, 1, 2) == -1.0);  // small: no ground truth
}

TEST_CASE("hand-checked: a half-right detection list") {
    // Two ground truths; three detections: a false positive with the highest score, then the two hits.
    auto gt = make_gt(1, 1);
    add_gt(gt, 1, 1, {0, 0, 100, 100});
    add_gt(gt, 1, 1, {200, 200, 100, 100});
    const std::vector<coco_detection> dets{
        {1, 1, {400, 0, 50, 50}, 0.9}, {1, 1, {0, 0, 100, 100}, 0.8}, {1, 1, {200, 200, 100, 100}, 0.7}};
    const auto r = focal::coco_evaluate(gt, dets);
    // tp/fp: F T T -> precision 0, 1/2, 2/3; made non-increasing: 2/3 everywhere; recall 1.
    const double p = 2.0 / (1.0 + 2.0 + std::numeric_limits<double>::epsilon());
    for (index_t rr = 0; rr < 101; ++rr) CHECK(r.precision_at(0, rr, 0, 0, 2) == p);
    CHECK(near(r.stats[0], p));
    CHECK(r.stats[6] == 0.0);  // AR1: the top detection is the false positive
    CHECK(r.stats[7] == 1.0);  // AR10
    // "large": both ground truths (10000 > 96^2); the false positive (50 x 50) is outside the
    // range and unmatched, so it is ignored there: precision 1 / (1 + eps).
    CHECK(near(r.stats[5], perfect));
    CHECK(r.stats[3] == -1.0);
}

TEST_CASE("hand-checked: a crowd-only image ignores the detections inside its crowd") {
    auto gt = make_gt(2, 1);
    add_gt(gt, 1, 1, {0, 0, 100, 100});                              // image 1: one regular box
    add_gt(gt, 2, 1, {0, 0, 300, 300}, /*crowd*/ true, 50000);       // image 2: a crowd only
    std::vector<coco_detection> dets{{1, 1, {0, 0, 100, 100}, 0.5}};
    for (int i = 0; i < 5; ++i)  // inside the crowd (IoU = 1 by detection area), higher scores
        dets.push_back({2, 1, {10.0 * i, 10.0 * i, 50, 50}, 0.9 - 0.01 * i});
    auto r = focal::coco_evaluate(gt, dets);
    CHECK(near(r.stats[0], perfect));  // the crowd's matches are ignored, repeatedly
    CHECK(r.stats[8] == 1.0);
    // The crowd alone (no regular ground truth anywhere): nothing to evaluate, -1 everywhere.
    auto only = make_gt(1, 1);
    add_gt(only, 1, 1, {0, 0, 300, 300}, true, 50000);
    dets = {{1, 1, {0, 0, 50, 50}, 0.9}, {1, 1, {400, 400, 50, 50}, 0.8}};
    r = focal::coco_evaluate(only, dets);
    for (double s : r.stats) CHECK(s == -1.0);
    // A detection outside the crowd on the crowd-only image of the first dataset is a false positive.
    dets = {{1, 1, {0, 0, 100, 100}, 0.5}, {2, 1, {400, 400, 50, 50}, 0.95}};
    r = focal::coco_evaluate(gt, dets);
    CHECK(r.stats[1] == doctest::Approx(0.5));
}

TEST_CASE("hand-checked: no detections gives 0 where there is ground truth, -1 elsewhere") {
    auto gt = make_gt(3, 2);
    add_gt(gt, 1, 1, {0, 0, 20, 20});   // small
    add_gt(gt, 2, 1, {0, 0, 50, 50});   // medium
    const std::vector<coco_detection> none;
    auto r = focal::coco_evaluate(gt, none);
    const std::array<double, 12> want{0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, -1};
    CHECK(r.stats == want);
    CHECK(r.recall_at(0, 1, 0, 2) == -1.0);  // category 2: no ground truth
    CHECK(r.precision_at(0, 0, 0, 0, 2) == 0.0);
    // No ground truth at all: every stat -1, detections or not.
    const auto empty = make_gt(2, 2);
    const std::vector<coco_detection> dets{{1, 1, {0, 0, 10, 10}, 0.5}};
    r = focal::coco_evaluate(empty, dets);
    for (double s : r.stats) CHECK(s == -1.0);
    // No images, no categories.
    r = focal::coco_evaluate(coco_ground_truth{}, none);
    CHECK(r.precision.empty());
    for (double s : r.stats) CHECK(s == -1.0);
}

TEST_CASE("hand-checked: max detections count per image and category; score ties keep input order") {
    auto gt = make_gt(1, 2);
    add_gt(gt, 1, 1, {0, 0, 100, 100});
    add_gt(gt, 1, 2, {0, 0, 100, 100});
    std::vector<coco_detection> dets;
    for (int i = 0; i < 150; ++i) dets.push_back({1, 1, {500, 500, 10, 10}, 0.9});  // 150 tied false positives
    dets.push_back({1, 1, {0, 0, 100, 100}, 0.9});    // tied, but after them: beyond the top 100
    dets.push_back({1, 2, {0, 0, 100, 100}, 0.1});    // the other category's top 1 (its own budget)
    auto r = focal::coco_evaluate(gt, dets);
    CHECK(r.recall_at(0, 0, 0, 2) == 0.0);
    CHECK(r.recall_at(0, 1, 0, 0) == 1.0);
    // The same hit first in the file wins the tie.
    std::rotate(dets.begin(), dets.begin() + 150, dets.begin() + 151);
    r = focal::coco_evaluate(gt, dets);
    CHECK(r.recall_at(0, 0, 0, 0) == 1.0);
    CHECK(r.precision_at(0, 100, 0, 0, 2) == perfect);
}

TEST_CASE("custom parameters and coco_summarize queries") {
    auto gt = make_gt(1, 1);
    add_gt(gt, 1, 1, {0, 0, 100, 100});
    const std::vector<coco_detection> dets{{1, 1, {0, 0, 100, 80}, 0.9}};  // IoU 0.8
    focal::coco_eval_params p;
    p.iou_thresholds = {0.5, 0.85};
    p.max_detections = {5};
    p.area_ranges = {{"all", 0, 1e10}};
    const auto r = focal::coco_evaluate(gt, dets, p);
    CHECK(near(focal::coco_summarize(r, {.iou_threshold = 0.5, .max_detections = 5}), perfect));
    CHECK(focal::coco_summarize(r, {.iou_threshold = 0.85, .max_detections = 5}) == 0.0);
    CHECK(focal::coco_summarize(r, {.precision = false, .max_detections = 5}) == 0.5);
    CHECK(focal::coco_summarize(r, {.max_detections = 100}) == -1.0);  // not a parameter value
    CHECK(r.stats[0] == -1.0);                                         // summarize()'s maxDets=100
    CHECK_THROWS_WITH_AS(r.precision_at(0, 0, 1, 0, 0),
                         "focal::coco_eval_result::precision_at: k (category index) must be in [0, 1), got 1",
                         focal::error);
}

TEST_CASE("bad inputs to coco_evaluate throw focal::error before any work") {
    auto gt = make_gt(2, 2);
    add_gt(gt, 1, 1, {0, 0, 10, 10});
    const auto eval_error = [&](const coco_ground_truth& g, std::vector<coco_detection> d,
                                const focal::coco_eval_params& p = {}) -> std::string {
        try {
            (void)focal::coco_evaluate(g, d, p);
        } catch (const focal::error& e) {
            return e.what();
        }
        return "no error";
    };
    CHECK(eval_error(gt, {{7, 1, {0, 0, 1, 1}, 0.5}}) ==
          "focal::coco_evaluate: detections[0].image_id must be the id of an image in ground_truth.images, got 7");
    CHECK(eval_error(gt, {{1, 1, {0, 0, 1, 1}, 0.5}, {1, 0, {0, 0, 1, 1}, 0.5}}) ==
          "focal::coco_evaluate: detections[1].category_id must be the id of a category in ground_truth.categories, got 0");
    CHECK(eval_error(gt, {{1, 1, {0, 0, 1, 1}, std::nan("")}}) ==
          "focal::coco_evaluate: detections[0].score must be finite, got nan");
    CHECK(eval_error(gt, {{1, 1, {0, 0, INFINITY, 1}, 0.5}}) ==
          "focal::coco_evaluate: detections[0].bbox must be 4 finite numbers, got [0, 0, inf, 1]");
    auto dup = gt;
    dup.images.push_back({1, 0, 0});
    CHECK(eval_error(dup, {}) ==
          "focal::coco_evaluate: ground_truth.images[2].id must be unique, got 1 again (ground_truth.images[0].id)");
    auto orphan = gt;
    add_gt(orphan, 1, 5, {0, 0, 1, 1});
    CHECK(eval_error(orphan, {}) == "focal::coco_evaluate: ground_truth.annotations[1].category_id must be the id "
                                    "of a category in ground_truth.categories, got 5");
    focal::coco_eval_params p;
    p.max_detections = {10, 1};
    CHECK(eval_error(gt, {}, p) == "focal::coco_evaluate: params.max_detections must be strictly increasing, got 1 after 10");
    p = {};
    p.iou_thresholds.assign(33, 0.5);
    CHECK(eval_error(gt, {}, p) == "focal::coco_evaluate: params.iou_thresholds must be 1 to 32 values, got 33 values");
    p = {};
    p.area_ranges[2].label = "small";
    CHECK(eval_error(gt, {}, p) == "focal::coco_evaluate: params.area_ranges[2].label must be unique, got \"small\" again");
}

TEST_CASE("malformed COCO JSON throws focal::error naming the element") {
    const auto gt_error = [](const std::string& text) -> std::string {
        std::istringstream in(text);
        try {
            (void)focal::read_coco_ground_truth(in);
        } catch (const focal::error& e) {
            return e.what();
        }
        return "no error";
    };
    const auto res_error = [](const std::string& text) -> std::string {
        std::istringstream in(text);
        try {
            (void)focal::read_coco_results(in);
        } catch (const focal::error& e) {
            return e.what();
        }
        return "no error";
    };
    const std::string head = R"({"images":[{"id":1}],"categories":[{"id":1,"name":"a"}],"annotations":[)";
    const std::string ann = R"({"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"area":1,"iscrowd":0})";
    CHECK(gt_error(head + ann + "]}") == "no error");
    CHECK(gt_error(R"({"images":[{"id":1}],"categories":[]})") == "no error");  // no "annotations": none
    CHECK(gt_error("[]") == "focal::read_coco_ground_truth: the ground truth must be a JSON object with \"images\", "
                            "\"categories\" and \"annotations\", got []");
    CHECK(gt_error(R"({"categories":[]})") ==
          "focal::read_coco_ground_truth: images must be present (an array), got a document without \"images\"");
    CHECK(gt_error(R"({"images":{},"categories":[]})") == "focal::read_coco_ground_truth: images must be an array, got {}");
    CHECK(gt_error(R"({"images":[{"id":"1"}],"categories":[]})") ==
          "focal::read_coco_ground_truth: images[0].id must be an integer (64-bit), got \"1\"");
    CHECK(gt_error(R"({"images":[{"id":1.5}],"categories":[]})") ==
          "focal::read_coco_ground_truth: images[0].id must be an integer (64-bit), got 1.5");
    CHECK(gt_error(R"({"images":[7],"categories":[]})") ==
          "focal::read_coco_ground_truth: images[0] must be a JSON object, got 7");
    CHECK(gt_error(head + R"({"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"iscrowd":0}]})") ==
          "focal::read_coco_ground_truth: annotations[0].area must be present, got an object without \"area\"");
    CHECK(gt_error(head + R"({"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1],"area":1,"iscrowd":0}]})") ==
          "focal::read_coco_ground_truth: annotations[0].bbox must be an array of 4 numbers [x, y, w, h], got [0,0,1]");
    CHECK(gt_error(head + R"({"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"area":1,"iscrowd":2}]})") ==
          "focal::read_coco_ground_truth: annotations[0].iscrowd must be 0, 1, true or false, got 2");
    CHECK(gt_error(head + ann + "," + ann + "]}") ==
          "focal::read_coco_ground_truth: annotations[1].id must be unique, got 1 again (annotations[0].id)");
    CHECK(gt_error(R"({"images":[}]})").rfind("focal::read_coco_ground_truth: input must be valid JSON, got "
                                              "[json.exception.parse_error.101] parse error at line 1",
                                              0) == 0);

    CHECK(res_error("[]") == "no error");  // pycocotools' loadRes fails here; focal evaluates it
    CHECK(res_error(R"({"image_id":1})") ==
          "focal::read_coco_results: the results must be a JSON array of detections, got {\"image_id\":1}");
    CHECK(res_error(R"([{"image_id":1,"category_id":1,"bbox":[0,0,1,1]}])") ==
          "focal::read_coco_results: results[0].score must be present, got an object without \"score\"");
    CHECK(res_error(R"([{"image_id":1,"category_id":1,"bbox":[0,0,1,1],"score":"high"}])") ==
          "focal::read_coco_results: results[0].score must be a number, got \"high\"");
    CHECK(res_error(R"([{"image_id":1,"category_id":1,"bbox":[0,0,1,1],"score":1e999}])")
              .rfind("focal::read_coco_results: input must be valid JSON, got [json.exception.out_of_range.406]", 0) == 0);
    CHECK(res_error(R"([{"image_id":1,"category_id":null,"bbox":[0,0,1,1],"score":1}])") ==
          "focal::read_coco_results: results[0].category_id must be an integer (64-bit), got null");
    CHECK(focal::read_coco_results(focal_test::data_dir() / "coco_eval" / "no_detections" / "results.json").empty());
    CHECK_THROWS_WITH_AS(focal::read_coco_results(std::filesystem::path("/nonexistent/results.json")),
                         "focal::read_coco_results: file must be readable, got \"/nonexistent/results.json\"",
                         focal::error);
}

TEST_CASE("JSON round trip: write then read gives the same structures and the same evaluation") {
    const auto gt = focal::read_coco_ground_truth(coco_dir() / "crowd" / "gt.json");
    const auto dets = focal::read_coco_results(coco_dir() / "crowd" / "results.json");
    std::stringstream g, d;
    focal::write_coco_ground_truth(g, gt);
    focal::write_coco_results(d, dets);
    const auto gt2 = focal::read_coco_ground_truth(g);
    const auto dets2 = focal::read_coco_results(d);
    REQUIRE(gt2.annotations.size() == gt.annotations.size());
    REQUIRE(dets2.size() == dets.size());
    for (std::size_t i = 0; i < dets.size(); ++i) {
        CHECK(dets2[i].bbox == dets[i].bbox);
        CHECK(dets2[i].score == dets[i].score);
    }
    for (std::size_t i = 0; i < gt.annotations.size(); ++i) {
        CHECK(gt2.annotations[i].bbox == gt.annotations[i].bbox);
        CHECK(gt2.annotations[i].area == gt.annotations[i].area);
        CHECK(gt2.annotations[i].iscrowd == gt.annotations[i].iscrowd);
    }
    const auto a = focal::coco_evaluate(gt, dets), b = focal::coco_evaluate(gt2, dets2);
    CHECK(a.precision == b.precision);
    const auto j = focal::coco_eval_result_to_json(a);
    CHECK(j.at("stats").at("AP").get<double>() == a.stats[0]);
    CHECK(j.at("categories").size() == gt.categories.size());
}
