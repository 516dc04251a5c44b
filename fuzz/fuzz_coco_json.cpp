// fuzz/fuzz_coco_json.cpp: the COCO JSON readers (eval/coco_json.hpp) and, on what they accept,
// COCO evaluation (eval/coco_eval.hpp).
//
// Input: a ground-truth document, a NUL byte, a results document. Without a NUL byte the whole
// input is tried as both (mutations of one file still reach each reader).
//
// Checked beyond "no crash":
//   * each reader returns or throws focal::error (never another exception);
//   * an accepted ground truth has unique annotation ids, an accepted results list one entry per
//     element of the JSON array; writing either back and reading it again gives the same values;
//   * when both are accepted, coco_evaluate (default parameters and an edge-case set: IoU
//     thresholds 0 and 1, max detections 1 and 3) returns or throws focal::error; a result has
//     sorted unique image and category ids (those of the ground truth), precision and recall
//     entries that are -1 or in [0, 1], the 12 stats -1 or in [0, 1] (and equal to
//     coco_summarize of their queries), per-category JSON values likewise, and is bit-identical
//     under exec::scalar and exec::parallel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <focal/eval/coco_eval.hpp>
#include <focal/eval/coco_json.hpp>

#include "byte_reader.hpp"
#include "reference.hpp"

namespace {

using namespace focal_fuzz;

bool in_unit_or_minus_one(double v) { return v == -1.0 || (v >= 0.0 && v <= 1.0); }

bool same_box(const focal::coco_box& a, const focal::coco_box& b) {
    return std::memcmp(a.data(), b.data(), sizeof(double) * 4) == 0;  // every bit, -0 included
}
bool same_double(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void check_ground_truth(const focal::coco_ground_truth& gt) {
    std::set<focal::coco_id> ids;
    for (const auto& a : gt.annotations) FUZZ_CHECKF(ids.insert(a.id).second, "annotation id %lld twice\n", static_cast<long long>(a.id));
    // Written and read back: the same values (numbers as the shortest text that reads back).
    std::stringstream text;
    focal::write_coco_ground_truth(text, gt);
    const focal::coco_ground_truth back = focal::read_coco_ground_truth(text);
    FUZZ_CHECK(back.images.size() == gt.images.size() && back.categories.size() == gt.categories.size() &&
               back.annotations.size() == gt.annotations.size());
    for (std::size_t i = 0; i < gt.images.size(); ++i)
        FUZZ_CHECK(back.images[i].id == gt.images[i].id && back.images[i].width == gt.images[i].width &&
                   back.images[i].height == gt.images[i].height);
    for (std::size_t i = 0; i < gt.categories.size(); ++i)
        FUZZ_CHECK(back.categories[i].id == gt.categories[i].id && back.categories[i].name == gt.categories[i].name);
    for (std::size_t i = 0; i < gt.annotations.size(); ++i) {
        const auto& a = gt.annotations[i];
        const auto& b = back.annotations[i];
        FUZZ_CHECK(a.id == b.id && a.image_id == b.image_id && a.category_id == b.category_id && a.iscrowd == b.iscrowd);
        FUZZ_CHECKF(same_box(a.bbox, b.bbox) && same_double(a.area, b.area), "annotation %zu changed on a round trip\n", i);
    }
}

void check_results(const std::vector<focal::coco_detection>& dets, const std::string& text) {
    // One detection per element of the top-level array.
    const auto doc = nlohmann::json::parse(text);
    FUZZ_CHECK(doc.is_array() && doc.size() == dets.size());
    std::stringstream out;
    focal::write_coco_results(out, dets);
    const auto back = focal::read_coco_results(out);
    FUZZ_CHECK(back.size() == dets.size());
    for (std::size_t i = 0; i < dets.size(); ++i)
        FUZZ_CHECKF(back[i].image_id == dets[i].image_id && back[i].category_id == dets[i].category_id &&
                        same_box(back[i].bbox, dets[i].bbox) && same_double(back[i].score, dets[i].score),
                    "detection %zu changed on a round trip\n", i);
}

void check_evaluation(const focal::coco_ground_truth& gt, const std::vector<focal::coco_detection>& dets,
                      const focal::coco_eval_params& params) {
    focal::coco_eval_result res;
    if (!succeeds([&] { res = focal::coco_evaluate(gt, std::span<const focal::coco_detection>(dets), params, focal::exec::scalar); }))
        return;
    std::vector<focal::coco_id> images, categories;
    for (const auto& i : gt.images) images.push_back(i.id);
    for (const auto& c : gt.categories) categories.push_back(c.id);
    std::sort(images.begin(), images.end());
    std::sort(categories.begin(), categories.end());
    FUZZ_CHECK(res.image_ids == images && res.category_ids == categories);
    FUZZ_CHECK(std::adjacent_find(images.begin(), images.end()) == images.end());
    FUZZ_CHECK(std::adjacent_find(categories.begin(), categories.end()) == categories.end());
    const std::size_t t = params.iou_thresholds.size(), r = params.recall_thresholds.size(), k = categories.size();
    const std::size_t a = params.area_ranges.size(), m = params.max_detections.size();
    FUZZ_CHECK(res.precision.size() == t * r * k * a * m && res.recall.size() == t * k * a * m);
    for (const double v : res.precision) FUZZ_CHECKF(in_unit_or_minus_one(v), "precision %g\n", v);
    for (const double v : res.recall) FUZZ_CHECKF(in_unit_or_minus_one(v), "recall %g\n", v);
    const auto queries = focal::coco_standard_queries(res.params);
    for (std::size_t i = 0; i < res.stats.size(); ++i) {
        FUZZ_CHECKF(in_unit_or_minus_one(res.stats[i]), "stat %zu: %g\n", i, res.stats[i]);
        FUZZ_CHECK(same_double(res.stats[i], focal::coco_summarize(res, queries[i])));
    }
    const auto summary = focal::coco_eval_result_to_json(res);
    FUZZ_CHECK(summary["categories"].size() == k);
    for (const auto& c : summary["categories"])
        for (const auto& item : c.items())
            if (item.key() != "id") FUZZ_CHECK(in_unit_or_minus_one(item.value().get<double>()));
    FUZZ_CHECK(!focal::coco_summary_text(res).empty());

    focal::coco_eval_result again;
    FUZZ_CHECK(succeeds([&] { again = focal::coco_evaluate(gt, std::span<const focal::coco_detection>(dets), params, parallel()); }));
    FUZZ_CHECK(again.precision.size() == res.precision.size() && again.recall.size() == res.recall.size());
    FUZZ_CHECK(std::memcmp(again.precision.data(), res.precision.data(), res.precision.size() * sizeof(double)) == 0);
    FUZZ_CHECK(std::memcmp(again.recall.data(), res.recall.data(), res.recall.size() * sizeof(double)) == 0);
    FUZZ_CHECK(std::memcmp(again.stats.data(), res.stats.data(), sizeof res.stats) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    const std::size_t nul = input.find('\0');
    const std::string gt_text = nul == std::string::npos ? input : input.substr(0, nul);
    const std::string results_text = nul == std::string::npos ? input : input.substr(nul + 1);

    focal::coco_ground_truth gt;
    std::istringstream gt_stream(gt_text);
    const bool gt_ok = succeeds([&] { gt = focal::read_coco_ground_truth(gt_stream); });
    if (gt_ok) check_ground_truth(gt);

    std::vector<focal::coco_detection> dets;
    std::istringstream results_stream(results_text);
    const bool results_ok = succeeds([&] { dets = focal::read_coco_results(results_stream); });
    if (results_ok) check_results(dets, results_text);

    if (!gt_ok || !results_ok) return 0;
    // Keep runs short: evaluation holds O(categories) precision curves and visits image x category pairs.
    if (gt.categories.size() > 200 || gt.images.size() * std::max<std::size_t>(gt.categories.size(), 1) > 20000) return 0;
    check_evaluation(gt, dets, {});
    focal::coco_eval_params edge;
    edge.iou_thresholds = {0.0, 0.5, 1.0};
    edge.recall_thresholds = {0.0, 0.5, 1.0};
    edge.max_detections = {1, 3};
    edge.area_ranges = {{"all", 0.0, 1e10}, {"small", 0.0, 1024.0}, {"zero", 0.0, 0.0}};
    check_evaluation(gt, dets, edge);
    return 0;
}
