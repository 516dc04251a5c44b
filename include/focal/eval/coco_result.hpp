// focal/eval/coco_result.hpp: what COCO evaluation returns, and pycocotools' summaries of it.
//
//   precision [T][R][K][A][M]  eval["precision"]: interpolated precision at each recall threshold
//   recall    [T][K][A][M]     eval["recall"]: recall with all kept detections
// T IoU thresholds, R recall thresholds, K categories (sorted by id), A area ranges, M max
// detections, in params' order. An entry is -1 where the category has no non-ignored ground truth
// in that area range (no detection can change that); with ground truth but no detection it is 0.
//
// coco_summarize(result, query) is pycocotools' _summarize: the mean of the selected entries that
// are > -1 (np.mean's pairwise sum, so the stats are pycocotools' bit for bit), or -1 when there
// are none. stats are its 12 standard queries (summarize()):
//   AP       all IoU thresholds, area "all", 100 detections     AR1   all IoU, "all", max_detections[0]
//   AP50     IoU 0.5, "all", max_detections[2]                  AR10  ... max_detections[1]
//   AP75     IoU 0.75, "all", max_detections[2]                 AR100 ... max_detections[2]
//   APs/m/l  all IoU, "small" / "medium" / "large", [2]         ARs/m/l "small" / "medium" / "large", [2]
// IoU thresholds and area labels are found by equality, as pycocotools does: a query for a setting
// that params does not have gives -1.
#pragma once

#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "coco_params.hpp"
#include "coco_types.hpp"
#include "detail/numpy_arith.hpp"

namespace focal {

inline constexpr std::array<std::string_view, 12> coco_stat_names = {
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

struct coco_eval_result {
    coco_eval_params params;
    std::vector<coco_id> image_ids;     // sorted: pycocotools' params.imgIds
    std::vector<coco_id> category_ids;  // sorted: the K axis (params.catIds)
    std::vector<double> precision;      // [T][R][K][A][M]
    std::vector<double> recall;         // [T][K][A][M]
    std::array<double, 12> stats{};     // in coco_stat_names order

    index_t num_iou_thresholds() const noexcept { return static_cast<index_t>(params.iou_thresholds.size()); }
    index_t num_recall_thresholds() const noexcept { return static_cast<index_t>(params.recall_thresholds.size()); }
    index_t num_categories() const noexcept { return static_cast<index_t>(category_ids.size()); }
    index_t num_area_ranges() const noexcept { return static_cast<index_t>(params.area_ranges.size()); }
    index_t num_max_detections() const noexcept { return static_cast<index_t>(params.max_detections.size()); }

    // Offsets into precision / recall (C order, as numpy's arrays).
    std::size_t precision_offset(index_t t, index_t r, index_t k, index_t a, index_t m) const noexcept {
        return static_cast<std::size_t>(
            (((t * num_recall_thresholds() + r) * num_categories() + k) * num_area_ranges() + a) * num_max_detections() + m);
    }
    std::size_t recall_offset(index_t t, index_t k, index_t a, index_t m) const noexcept {
        return static_cast<std::size_t>(((t * num_categories() + k) * num_area_ranges() + a) * num_max_detections() + m);
    }
    double precision_at(index_t t, index_t r, index_t k, index_t a, index_t m) const {
        check(t, r, k, a, m, "focal::coco_eval_result::precision_at");
        return precision[precision_offset(t, r, k, a, m)];
    }
    double recall_at(index_t t, index_t k, index_t a, index_t m) const {
        check(t, 0, k, a, m, "focal::coco_eval_result::recall_at");
        return recall[recall_offset(t, k, a, m)];
    }

private:
    void check(index_t t, index_t r, index_t k, index_t a, index_t m, const char* where) const {
        const auto in = [where](index_t v, index_t n, const char* what) {
            if (v < 0 || v >= n) detail::fail(where, what, "in [0, " + std::to_string(n) + ")", v);
        };
        in(t, num_iou_thresholds(), "t (IoU threshold index)");
        in(r, num_recall_thresholds(), "r (recall threshold index)");
        in(k, num_categories(), "k (category index)");
        in(a, num_area_ranges(), "a (area range index)");
        in(m, num_max_detections(), "m (max detections index)");
    }
};

// One of pycocotools' _summarize queries, optionally restricted to one category.
struct coco_query {
    bool precision = true;                 // false: recall
    std::optional<double> iou_threshold = std::nullopt;  // none: every threshold
    std::string area = "all";              // an area range label
    index_t max_detections = 100;          // a value of params.max_detections
    index_t category = -1;                 // an index into category_ids; -1: every category
};

inline double coco_summarize(const coco_eval_result& res, const coco_query& q) {
    const index_t R = res.num_recall_thresholds(), K = res.num_categories();
    if (q.category < -1 || q.category >= K)
        detail::fail("focal::coco_summarize", "query.category", "-1 (all) or in [0, " + std::to_string(K) + ")",
                     q.category);
    const auto pick = [](const auto& list, const auto& want) {
        std::vector<index_t> out;
        for (std::size_t i = 0; i < list.size(); ++i)
            if (want(list[i])) out.push_back(static_cast<index_t>(i));
        return out;
    };
    const auto ts = pick(res.params.iou_thresholds, [&](double t) { return !q.iou_threshold || t == *q.iou_threshold; });
    const auto as = pick(res.params.area_ranges, [&](const coco_area_range& a) { return a.label == q.area; });
    const auto ms = pick(res.params.max_detections, [&](index_t m) { return m == q.max_detections; });
    const index_t k0 = q.category < 0 ? 0 : q.category, k1 = q.category < 0 ? K : q.category + 1;
    // The entries > -1 in numpy's C order (t, r, k, a, m), then np.mean: pairwise sum / count.
    std::vector<double> v;
    const auto take = [&v](double x) {
        if (x > -1) v.push_back(x);
    };
    for (const index_t t : ts) {
        if (q.precision) {
            for (index_t r = 0; r < R; ++r)
                for (index_t k = k0; k < k1; ++k)
                    for (const index_t a : as)
                        for (const index_t m : ms) take(res.precision[res.precision_offset(t, r, k, a, m)]);
        } else {
            for (index_t k = k0; k < k1; ++k)
                for (const index_t a : as)
                    for (const index_t m : ms) take(res.recall[res.recall_offset(t, k, a, m)]);
        }
    }
    return v.empty() ? -1.0 : detail::numpy_pairwise_sum(v.data(), v.size()) / static_cast<double>(v.size());
}

// The 12 queries of summarize(); max_detections[i] beyond the list gives -1 for its stats.
inline std::array<coco_query, 12> coco_standard_queries(const coco_eval_params& p) {
    const auto md = [&p](std::size_t i) { return i < p.max_detections.size() ? p.max_detections[i] : index_t(-1); };
    return {{{true, std::nullopt, "all", 100},
             {true, 0.5, "all", md(2)},
             {true, 0.75, "all", md(2)},
             {true, std::nullopt, "small", md(2)},
             {true, std::nullopt, "medium", md(2)},
             {true, std::nullopt, "large", md(2)},
             {false, std::nullopt, "all", md(0)},
             {false, std::nullopt, "all", md(1)},
             {false, std::nullopt, "all", md(2)},
             {false, std::nullopt, "small", md(2)},
             {false, std::nullopt, "medium", md(2)},
             {false, std::nullopt, "large", md(2)}}};
}

inline std::array<double, 12> coco_stats(const coco_eval_result& res) {
    std::array<double, 12> s{};
    const auto queries = coco_standard_queries(res.params);
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = coco_summarize(res, queries[i]);
    return s;
}

// summarize()'s printout, line for line:
//  Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.372
inline std::string coco_summary_text(const coco_eval_result& res) {
    const auto queries = coco_standard_queries(res.params);
    const auto& thr = res.params.iou_thresholds;
    std::string out;
    char line[256], iou[64];
    for (std::size_t i = 0; i < queries.size(); ++i) {
        const coco_query& q = queries[i];
        if (q.iou_threshold) {
            std::snprintf(iou, sizeof iou, "%0.2f", *q.iou_threshold);
        } else {
            std::snprintf(iou, sizeof iou, "%0.2f:%0.2f", thr.front(), thr.back());
        }
        std::snprintf(line, sizeof line, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3lld ] = %0.3f\n",
                      q.precision ? "Average Precision" : "Average Recall", q.precision ? "(AP)" : "(AR)", iou,
                      q.area.c_str(), static_cast<long long>(q.max_detections), res.stats[i]);
        out += line;
    }
    return out;
}

}  // namespace focal
