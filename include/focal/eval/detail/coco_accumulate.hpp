// focal/eval/detail/coco_accumulate.hpp: pycocotools' accumulate() for one category.
//
// pycocotools, per (category, area range a, max detections m, threshold t): the first m kept
// detections of every image, concatenated in image order and stably sorted by score; ignored ones
// dropped from the counts; tp / fp cumulative sums; rc = tp / npig (npig: non-ignored ground
// truths), pr = tp / (fp + tp + eps) with eps = np.spacing(1); pr made non-increasing from the
// right; for each recall threshold r, the precision at the first position with rc >= r (0 when
// there is none); recall = the last rc (0 without detections).
//
// The same numbers here, from the true positives alone: rc only grows at a true positive, so the
// first position with rc >= r is the j-th true positive for the least j with j / npig >= r, and
// the running maximum from the right of pr at any position is its maximum over the true positives
// from there on (an ignored detection repeats the previous pr, a false positive only lowers it).
// One pass over the category's detections in score order records, for every (m, t), the false
// positive count before each true positive; then each curve costs O(true positives + R).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "../coco_params.hpp"
#include "../coco_result.hpp"
#include "../coco_types.hpp"
#include "coco_grouping.hpp"
#include "coco_match.hpp"

namespace focal::detail {

// Non-ignored ground truths (npig) per (category, area range): not crowd, "area" in the range.
inline std::vector<std::size_t> coco_count_regular_gt(const coco_ground_truth& gt, const coco_groups& g,
                                                      const coco_eval_params& p) {
    const std::size_t A = p.area_ranges.size();
    std::vector<std::size_t> npig(g.category_ids.size() * A, 0);
    for (std::size_t i = 0; i < gt.annotations.size(); ++i) {
        const coco_annotation& ann = gt.annotations[i];
        if (ann.iscrowd) continue;
        for (std::size_t a = 0; a < A; ++a)
            npig[g.gt_category[i] * A + a] += !(ann.area < p.area_ranges[a].min_area || ann.area > p.area_ranges[a].max_area);
    }
    return npig;
}

struct coco_accumulate_scratch {
    struct scored {
        double score;
        std::uint32_t position;
    };
    std::vector<scored> order;
    std::vector<std::uint32_t> first_m, events, tp, delta, base;
    std::vector<coco_flags> flags;
    std::vector<double> pr;
};

inline void coco_accumulate_category(std::size_t k, const coco_groups& g, const coco_kept& kept,
                                     const std::vector<std::size_t>& regular_gt, coco_eval_result& res,
                                     coco_accumulate_scratch& s) {
    const coco_eval_params& p = res.params;
    const std::size_t T = p.iou_thresholds.size(), R = p.recall_thresholds.size();
    const std::size_t A = p.area_ranges.size(), M = p.max_detections.size();
    const std::uint32_t every_threshold = T >= 32 ? ~std::uint32_t(0) : (std::uint32_t(1) << T) - 1;
    constexpr double eps = std::numeric_limits<double>::epsilon();  // np.spacing(1)

    // This category's kept detections in score order; ties: image order, then rank (the order of
    // pycocotools' concatenation, kept by its stable sort).
    const std::size_t begin = g.category_kept[k], n = g.category_kept[k + 1] - begin;
    s.order.resize(n);
    for (std::size_t i = 0; i < n; ++i) s.order[i] = {kept.score[begin + i], static_cast<std::uint32_t>(i)};
    std::sort(s.order.begin(), s.order.end(), [](const auto& a, const auto& b) {
        return a.score > b.score || (a.score == b.score && a.position < b.position);
    });
    // Gathered in that order: the flags, and the first max-detections index that includes each one.
    s.flags.resize(n * A);
    s.first_m.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t slot = begin + s.order[i].position;
        std::copy_n(kept.flags.data() + slot * A, A, s.flags.data() + i * A);
        std::uint32_t m0 = 0;
        while (m0 < M && kept.rank[slot] >= static_cast<std::uint64_t>(p.max_detections[m0])) ++m0;
        s.first_m[i] = m0;
    }

    for (std::size_t a = 0; a < A; ++a) {
        const std::size_t npig = regular_gt[k * A + a];
        if (npig == 0) continue;  // precision and recall stay -1

        // events[(m * T + t) * npig + j]: false positives before the (j+1)-th true positive.
        // A true positive matches a distinct non-ignored ground truth, so there are at most npig.
        s.events.resize(M * T * npig);
        s.tp.assign(M * T, 0);
        s.delta.assign(M * T, 0);  // false positives at (m, t) beyond base[m]
        s.base.assign(M, 0);       // detections that were false positives at every threshold
        for (std::size_t i = 0; i < n; ++i) {
            const coco_flags f = s.flags[i * A + a];
            const std::size_t m0 = s.first_m[i];
            if (f.ignored == every_threshold) continue;
            if (f.matched == 0 && f.ignored == 0) {
                for (std::size_t m = m0; m < M; ++m) ++s.base[m];
                continue;
            }
            for (std::size_t t = 0; t < T; ++t) {
                const std::uint32_t bit = std::uint32_t(1) << t;
                if (f.ignored & bit) continue;
                if (f.matched & bit) {
                    for (std::size_t m = m0; m < M; ++m) {
                        const std::size_t c = m * T + t;
                        s.events[c * npig + s.tp[c]++] = s.base[m] + s.delta[c];
                    }
                } else {
                    for (std::size_t m = m0; m < M; ++m) ++s.delta[m * T + t];
                }
            }
        }

        const double npig_d = static_cast<double>(npig);
        for (std::size_t m = 0; m < M; ++m) {
            for (std::size_t t = 0; t < T; ++t) {
                const std::size_t c = m * T + t, n_tp = s.tp[c];
                const std::uint32_t* fp = s.events.data() + c * npig;
                const auto ti = static_cast<index_t>(t), ai = static_cast<index_t>(a), mi = static_cast<index_t>(m);
                const auto ki = static_cast<index_t>(k);
                res.recall[res.recall_offset(ti, ki, ai, mi)] = static_cast<double>(n_tp) / npig_d;
                s.pr.resize(n_tp);
                for (std::size_t j = 0; j < n_tp; ++j) {
                    const double tp = static_cast<double>(j + 1);
                    s.pr[j] = tp / ((static_cast<double>(fp[j]) + tp) + eps);
                }
                for (std::size_t j = n_tp; j-- > 1;)
                    if (s.pr[j] > s.pr[j - 1]) s.pr[j - 1] = s.pr[j];
                std::size_t j = 0;
                for (std::size_t r = 0; r < R; ++r) {
                    const double thr = p.recall_thresholds[r];
                    while (j < n_tp && static_cast<double>(j + 1) / npig_d < thr) ++j;
                    res.precision[res.precision_offset(ti, static_cast<index_t>(r), ki, ai, mi)] = j < n_tp ? s.pr[j] : 0.0;
                }
            }
        }
    }
}

}  // namespace focal::detail
