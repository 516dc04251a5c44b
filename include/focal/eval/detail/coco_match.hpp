// focal/eval/detail/coco_match.hpp: pycocotools' evaluateImg for one (image, category) pair, for
// every area range and IoU threshold at once.
//
// Detections: sorted by score, highest first, stably (np.argsort(-score, kind="mergesort")), the
// first max_kept kept. Ground truth, per area range: ignored when crowd or when its "area" is
// outside [min, max]; non-ignored first, each group in input order. Then, per threshold t and per
// detection in score order, the greedy match:
//   best = min(t, 1 - 1e-10), m = none
//   for each ground truth g in that order:
//     skip g if already matched and not a crowd (crowds match any number of times)
//     stop if m is a regular ground truth and g an ignored one
//     skip g if iou(d, g) < best;  else best = iou(d, g), m = g   (ties: the later g wins)
//   m found: d is matched, and ignored if m is; m is marked matched
// An unmatched detection whose w * h is outside the area range is ignored. A detection whose IoU
// with every ground truth is below the lowest threshold is unmatched at every threshold: it skips
// the loop (most detections).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "../../core/view.hpp"
#include "../coco_iou.hpp"
#include "../coco_params.hpp"
#include "../coco_types.hpp"
#include "coco_grouping.hpp"
#include "rounded.hpp"

namespace focal::detail {

// Bit t set: at iou_thresholds[t].
struct coco_flags {
    std::uint32_t matched = 0;  // matched to a ground truth (dtMatches != 0)
    std::uint32_t ignored = 0;  // dtIgnore: matched to an ignored ground truth, or unmatched outside the area range
};

// Per kept detection, slot = pair.kept_begin + rank.
struct coco_kept {
    std::vector<double> score;
    std::vector<std::uint32_t> rank;  // position in the pair's score order
    std::vector<coco_flags> flags;    // [slot * A + a]
};

// Parameters in the form the matcher uses them.
struct coco_match_setup {
    std::vector<double> thresholds;  // min(t, 1 - 1e-10)
    double lowest = 0;
    std::uint32_t all_bits = 0;
    std::vector<coco_area_range> areas;
    index_t max_kept = 0;

    explicit coco_match_setup(const coco_eval_params& p)
        : areas(p.area_ranges), max_kept(p.max_detections.back()) {
        for (const double t : p.iou_thresholds) thresholds.push_back(std::min(t, 1 - 1e-10));
        lowest = *std::min_element(thresholds.begin(), thresholds.end());
        const std::size_t n = thresholds.size();
        all_bits = n >= 32 ? ~std::uint32_t(0) : (std::uint32_t(1) << n) - 1;
    }
};

// Reused across the pairs of a block: no allocation per pair once warm.
struct coco_match_scratch {
    std::vector<std::uint32_t> order, candidates, gt_perm;
    std::vector<double> score, iou, reach, dt_area;
    std::vector<unsigned char> gt_ignored, gt_crowd, gt_taken;
    std::vector<coco_flags> matches;       // [area][kept], before the detection-area rule
    std::vector<std::uint64_t> signature;  // per area: bit g set when ground truth g is ignored
};

// Asks for the detections of a later pair to be loaded into cache: pairs are visited image by
// image, but a pair's detections are scattered over its image's (and random reads of 500,000
// detections otherwise stall the matcher on every one).
inline void coco_prefetch_pair(const coco_pair& p, std::span<const coco_detection> dets, const coco_groups& groups) {
#if defined(__GNUC__)
    const std::uint32_t end = std::min(p.dt_end, p.dt_begin + 8);
    for (std::uint32_t j = p.dt_begin; j < end; ++j) __builtin_prefetch(&dets[groups.dt_order[j]]);
#else
    (void)p, (void)dets, (void)groups;
#endif
}

inline void coco_match_pair(const coco_pair& p, const coco_ground_truth& gt, std::span<const coco_detection> dets,
                            const coco_groups& groups, const coco_match_setup& setup, coco_kept& out,
                            coco_match_scratch& s) {
    const std::size_t n_dt = p.dt_end - p.dt_begin, n_gt = p.gt_end - p.gt_begin;
    const std::size_t kept = std::min<std::size_t>(n_dt, static_cast<std::size_t>(setup.max_kept));
    const std::size_t n_area = setup.areas.size();
    if (kept == 0) return;  // ground truth only: nothing is written (it counts in the accumulation)

    // Score order; ties keep input order (positions in dt_order are input order within the pair).
    // Detector output usually comes sorted already: then there is nothing to sort.
    const std::uint32_t* dt_index = groups.dt_order.data() + p.dt_begin;
    s.score.resize(n_dt);
    for (std::size_t j = 0; j < n_dt; ++j) s.score[j] = dets[dt_index[j]].score;
    s.order.resize(n_dt);
    std::iota(s.order.begin(), s.order.end(), 0u);
    const double* score = s.score.data();
    const auto by_score = [score](std::uint32_t a, std::uint32_t b) {
        return score[a] > score[b] || (score[a] == score[b] && a < b);
    };
    if (!std::is_sorted(s.order.begin(), s.order.end(), by_score)) {
        if (kept < n_dt) {
            std::partial_sort(s.order.begin(), s.order.begin() + static_cast<std::ptrdiff_t>(kept), s.order.end(),
                              by_score);
        } else {
            std::sort(s.order.begin(), s.order.end(), by_score);
        }
    }
    s.dt_area.resize(kept);
    for (std::size_t j = 0; j < kept; ++j) {
        const coco_detection& d = dets[dt_index[s.order[j]]];
        const std::size_t slot = p.kept_begin + j;
        out.score[slot] = score[s.order[j]];
        out.rank[slot] = static_cast<std::uint32_t>(j);
        s.dt_area[j] = rounded(d.bbox[2] * d.bbox[3]);  // loadRes: area = w * h
    }

    // IoU of every kept detection with every ground truth (input order); candidates can match.
    const std::uint32_t* gt_index = groups.gt_order.data() + p.gt_begin;
    s.iou.resize(kept * n_gt);
    s.reach.resize(kept);
    s.candidates.clear();
    for (std::size_t j = 0; j < kept; ++j) {
        const coco_box& db = dets[dt_index[s.order[j]]].bbox;
        double reach = -1;  // the highest IoU (a NaN one counts as infinite: it passes every test)
        for (std::size_t g = 0; g < n_gt; ++g) {
            const coco_annotation& a = gt.annotations[gt_index[g]];
            const double v = coco_iou(db, a.bbox, a.iscrowd);
            s.iou[j * n_gt + g] = v;
            reach = v != v ? HUGE_VAL : std::max(reach, v);
        }
        s.reach[j] = reach;
        if (!(reach < setup.lowest)) s.candidates.push_back(static_cast<std::uint32_t>(j));
    }

    s.gt_perm.resize(n_gt);
    s.gt_ignored.resize(n_gt);
    s.gt_crowd.resize(n_gt);
    s.gt_taken.resize(n_gt);
    s.matches.assign(n_area * kept, coco_flags{});
    s.signature.resize(n_area);
    for (std::size_t ar = 0; ar < n_area; ++ar) {
        const coco_area_range& range = setup.areas[ar];
        coco_flags* matches = s.matches.data() + ar * kept;
        if (!s.candidates.empty()) {
            // Matching depends on the range only through which ground truths it ignores: a range
            // that ignores the same ones as an earlier range (often: "all" and the range that
            // holds every box of the pair) reuses its matches.
            const auto ignored = [&range](const coco_annotation& a) {
                return a.iscrowd || a.area < range.min_area || a.area > range.max_area;
            };
            std::uint64_t signature = 0;
            for (std::size_t g = 0; g < n_gt && n_gt <= 64; ++g)
                signature |= std::uint64_t(ignored(gt.annotations[gt_index[g]])) << g;
            s.signature[ar] = signature;
            std::size_t same = ar;
            for (std::size_t prev = 0; prev < ar && n_gt <= 64; ++prev)
                if (s.signature[prev] == signature) {
                    same = prev;
                    break;
                }
            if (same != ar) {
                std::copy_n(s.matches.data() + same * kept, kept, matches);
            } else {
                // Ground truth order for this range: regular first, then ignored, each in input order.
                std::size_t at = 0;
                for (int pass = 0; pass < 2; ++pass) {
                    for (std::size_t g = 0; g < n_gt; ++g) {
                        const coco_annotation& a = gt.annotations[gt_index[g]];
                        if (ignored(a) != (pass == 1)) continue;
                        s.gt_perm[at] = static_cast<std::uint32_t>(g);
                        s.gt_ignored[at] = pass == 1;
                        s.gt_crowd[at] = a.iscrowd;
                        ++at;
                    }
                }
                for (std::size_t t = 0; t < setup.thresholds.size(); ++t) {
                    const std::uint32_t bit = std::uint32_t(1) << t;
                    std::fill(s.gt_taken.begin(), s.gt_taken.end(), 0);
                    const double threshold = setup.thresholds[t];
                    for (const std::uint32_t j : s.candidates) {
                        if (s.reach[j] < threshold) continue;  // no ground truth close enough: unmatched
                        const double* iou = s.iou.data() + j * n_gt;
                        double best = threshold;
                        std::ptrdiff_t m = -1;
                        for (std::size_t gi = 0; gi < n_gt; ++gi) {
                            if (s.gt_taken[gi] && !s.gt_crowd[gi]) continue;
                            if (m > -1 && !s.gt_ignored[m] && s.gt_ignored[gi]) break;
                            const double v = iou[s.gt_perm[gi]];
                            if (v < best) continue;
                            best = v;
                            m = static_cast<std::ptrdiff_t>(gi);
                        }
                        if (m == -1) continue;
                        matches[j].matched |= bit;
                        if (s.gt_ignored[m]) matches[j].ignored |= bit;
                        s.gt_taken[m] = 1;
                    }
                }
            }
        }
        // Unmatched and outside the range: ignored.
        coco_flags* flags = out.flags.data() + p.kept_begin * n_area + ar;
        for (std::size_t j = 0; j < kept; ++j) {
            coco_flags f = matches[j];
            const double area = s.dt_area[j];
            if (area < range.min_area || area > range.max_area) f.ignored |= ~f.matched & setup.all_bits;
            flags[j * n_area] = f;
        }
    }
}

}  // namespace focal::detail
