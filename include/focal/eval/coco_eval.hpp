// focal/eval/coco_eval.hpp: COCO bbox evaluation with pycocotools' rules, number for number.
//
//   coco_eval_result coco_evaluate(ground_truth, detections, params = {}, exec = exec::default_policy)
//
// The result holds pycocotools' eval["precision"] / eval["recall"] arrays and its 12 summary
// stats (coco_result.hpp). The rules (COCOeval with iouType "bbox", useCats 1):
//   * images and categories in id order; every (image, category) pair evaluated on its own;
//   * detections of a pair sorted by score, stable, the top max_detections.back() kept (maxDets
//     counts per image and category);
//   * IoU as maskApi's bbIou (coco_iou.hpp); a crowd ground truth is always ignored, matched by
//     intersection / detection area, any number of times;
//   * per area range, ground truth is ignored when crowd or its "area" field is outside the range
//     (inclusive bounds), sorted regular first; greedy matching per threshold (coco_match.hpp);
//     unmatched detections whose w * h is outside the range are ignored;
//   * accumulation with 101-point interpolation (coco_accumulate.hpp); -1 where there is no
//     non-ignored ground truth.
//
// Inputs pycocotools treats differently, on purpose:
//   * a detection whose image id is not in the ground truth throws focal::error (pycocotools'
//     loadRes asserts "Results do not correspond to current coco set");
//   * a detection or annotation whose category (or an annotation whose image) is not in the ground
//     truth throws (pycocotools drops it silently: usually a label-mapping bug);
//   * repeated image or category ids, non-finite boxes, areas or scores throw;
//   * an empty detection list is evaluated (AP 0 where there is ground truth); pycocotools'
//     loadRes fails on it;
//   * annotation ids are not used: pycocotools stores the matched ground truth's id and reads 0 as
//     "unmatched", so it scores a match with an annotation of id 0 as a false positive; focal
//     counts it as a true positive. (The JSON reader rejects repeated annotation ids.)
//
// Execution: pairs, then categories, are split into blocks on the pool (exec::parallel); every
// block writes only its own slots, so results are bit-identical for every policy and thread count.
#pragma once

#include <algorithm>
#include <span>
#include <vector>

#include "../core/execution.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "coco_params.hpp"
#include "coco_result.hpp"
#include "coco_types.hpp"
#include "detail/coco_accumulate.hpp"
#include "detail/coco_grouping.hpp"
#include "detail/coco_match.hpp"

namespace focal {

template <class Exec = exec::default_policy>
    requires exec::is_policy_v<Exec>
coco_eval_result coco_evaluate(const coco_ground_truth& ground_truth, std::span<const coco_detection> detections,
                               const coco_eval_params& params = {}, const Exec& exec = {}) {
    constexpr const char* where = "focal::coco_evaluate";
    validate(params, where);
    const detail::coco_groups groups = detail::group_coco(ground_truth, detections, params.max_detections.back(), where);

    coco_eval_result res;
    res.params = params;
    res.image_ids = groups.image_ids;
    res.category_ids = groups.category_ids;
    const std::size_t T = params.iou_thresholds.size(), R = params.recall_thresholds.size();
    const std::size_t K = groups.category_ids.size(), A = params.area_ranges.size(), M = params.max_detections.size();
    res.precision.assign(T * R * K * A * M, -1.0);
    res.recall.assign(T * K * A * M, -1.0);

    // evaluateImg for every (image, category) pair with a ground truth or a detection.
    detail::coco_kept kept;
    kept.score.resize(groups.kept);
    kept.rank.resize(groups.kept);
    kept.flags.resize(groups.kept * A);
    const detail::coco_match_setup setup(params);
    const auto n_pairs = static_cast<index_t>(groups.pairs.size());
    detail::for_each_block(exec, n_pairs, 512, 64, [&](index_t begin, index_t end) {
        detail::coco_match_scratch scratch;
        constexpr index_t ahead = 8;  // pairs
        for (index_t i = begin; i < end; ++i) {
            if (i + ahead < end)
                detail::coco_prefetch_pair(groups.pairs[static_cast<std::size_t>(i + ahead)], detections, groups);
            detail::coco_match_pair(groups.pairs[static_cast<std::size_t>(i)], ground_truth, detections, groups, setup,
                                    kept, scratch);
        }
    });

    // accumulate() per category.
    const std::vector<std::size_t> regular_gt = detail::coco_count_regular_gt(ground_truth, groups, params);
    const index_t per_category = static_cast<index_t>(groups.kept / std::max<std::size_t>(K, 1)) + 1;
    detail::for_each_block(exec, static_cast<index_t>(K), 1, 64 * per_category, [&](index_t begin, index_t end) {
        detail::coco_accumulate_scratch scratch;
        for (index_t k = begin; k < end; ++k)
            detail::coco_accumulate_category(static_cast<std::size_t>(k), groups, kept, regular_gt, res, scratch);
    });

    res.stats = coco_stats(res);
    return res;
}

}  // namespace focal
