// focal/nms/soft.hpp: Soft-NMS (Bodla et al., ICCV 2017) as a policy and driver.
//
//   index_t count = focal::nms(focal::soft_nms{.decay = focal::soft_decay::gaussian, .sigma = 0.5f},
//                              boxes /*N x 4 xyxy*/, scores /*N*/, keep /*>= N*/, kept_scores /*>= N*/, exec);
// Repeatedly: pick the box with the highest current score (equal scores: the lower index), output
// its index and that score, and multiply the score s of every remaining box b by
//   linear:    1 - IoU(picked, b)       where IoU > iou_threshold (strict; 1 elsewhere)
//   gaussian:  exp(-IoU^2 / sigma)      (the paper's and OpenCV's form, no 1/2)
// A box whose score falls below score_threshold (or starts below it, or is NaN) is dropped.
// Output scores are non-increasing. Stops after max_detections picks (-1: none left).
// Scores are expected to be probabilities; score_threshold >= 0 drops negative ones. Arithmetic is
// in the boxes' type. A decayed +inf score stays +inf (0 where the weight is 0, never NaN).
// Inert boxes (zero-area, inverted, NaN or infinite: IoU 0 or NaN with everything) keep their score
// and decay nothing. exec::scalar and exec::simd agree exactly for linear decay and within float
// rounding of exp for Gaussian; exec::parallel runs the SIMD kernel on the calling thread.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/execution.hpp"
#include "../core/math.hpp"
#include "../core/host_packet.hpp"
#include "../core/view.hpp"
#include "detail/box_chunks.hpp"
#include "detail/checks.hpp"
#include "detail/score_order.hpp"
#include "detail/soft_kernel.hpp"
#include "greedy.hpp"

namespace focal {

enum class soft_decay { linear, gaussian };

struct soft_nms {
    soft_decay decay = soft_decay::gaussian;
    float sigma = 0.5f;             // gaussian: exp(-IoU^2 / sigma), > 0
    double iou_threshold = 0.3;     // linear: decay where IoU > iou_threshold, in [0, 1]
    double score_threshold = 0.001; // drop boxes whose score falls below, finite and >= 0 (compared in the boxes' type)
    index_t max_detections = -1;        // at most this many picks, -1: no limit

    // The factor a score is multiplied by, for a (non-NaN) IoU with the picked box; t is
    // iou_threshold in T (for linear decay).
    template <class T>
    FOCAL_HD FOCAL_INLINE T weight(T iou, T t) const noexcept {
        const T one(1.0f);
        if (decay == soft_decay::linear) return math::select(iou > t, one - iou, one);
        return math::exp(-(iou * iou) / T(sigma));
    }
};

inline void validate(const soft_nms& p, const char* where = "focal::soft_nms") {
    detail::require(p.decay == soft_decay::linear || p.decay == soft_decay::gaussian, where, "decay",
                    "soft_decay::linear or soft_decay::gaussian", static_cast<int>(p.decay));
    detail::require(std::isfinite(p.sigma) && p.sigma > 0.0f, where, "sigma", "finite and > 0", p.sigma);
    detail::check_iou_threshold(p.iou_threshold, where);
    detail::require(std::isfinite(p.score_threshold) && p.score_threshold >= 0.0, where, "score_threshold",
                    "finite and >= 0", p.score_threshold);
    detail::check_max_detections(p.max_detections, where);
}

template <class TB, class TS, class TK, class TO, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TB>> && std::floating_point<std::remove_const_t<TS>> &&
             std::integral<TK> && (!std::is_const_v<TK>) && std::floating_point<TO> && (!std::is_const_v<TO>) &&
             exec::is_policy_v<Exec>
index_t nms(const soft_nms& policy, matrix_view<TB> boxes, vector_view<TS> scores, vector_view<TK> keep,
            vector_view<TO> kept_scores, const Exec& exec = {}) {
    (void)exec;
    constexpr const char* where = "focal::nms";
    validate(policy, where);
    detail::check_boxes_and_scores(boxes, scores, where);
    const index_t n = boxes.extent(0);
    const index_t capacity = detail::output_capacity(n, policy.max_detections);
    detail::check_keep(keep, capacity, n, where);
    detail::check_output(kept_scores, capacity, where, "kept_scores");

    using T = std::remove_const_t<TB>;
    constexpr bool simd = !std::is_same_v<Exec, exec::scalar_policy>;
    using P = host_packet_t<T, simd>;
    // A finite threshold above T's range admits only +inf scores (and converting it would be undefined).
    const T floor = policy.score_threshold > static_cast<double>(std::numeric_limits<T>::max())
                        ? std::numeric_limits<T>::infinity()
                        : static_cast<T>(policy.score_threshold);

    // Candidates: score not NaN and >= score_threshold, best first.
    std::vector<std::uint32_t> order = detail::score_order(scores);
    std::erase_if(order, [&](std::uint32_t i) { return !(static_cast<T>(scores(i)) >= floor); });
    const auto box_at = detail::box_reader<T>(boxes);
    const auto one_group = [](std::uint32_t) { return std::uint32_t(0); };
    detail::soft_boxes<T> sb{detail::make_box_chunks<T>(n, order, box_at, one_group, 1, packet_traits<P>::width), {}};
    sb.score.assign(sb.ch.box.size(), -std::numeric_limits<T>::infinity());
    for (std::size_t s = 0; s < sb.score.size(); ++s)
        if (sb.ch.box[s] != detail::box_chunks<T>::no_box) sb.score[s] = static_cast<T>(scores(sb.ch.box[s]));
    std::vector<std::uint32_t> inert;
    std::vector<T> inert_score;
    for (const std::uint32_t i : order)
        if (sb.ch.slot_of[i] < 0) inert.push_back(i);
    // Picks go by the score in T, ties in index order: distinct scores of another type (double
    // scores, float boxes) can round to one T score, so the score order alone is not enough.
    std::stable_sort(inert.begin(), inert.end(), [&](std::uint32_t a, std::uint32_t b) {
        const T sa = static_cast<T>(scores(a)), sb_ = static_cast<T>(scores(b));
        return sa > sb_ || (sa == sb_ && a < b);
    });
    for (const std::uint32_t i : inert) inert_score.push_back(static_cast<T>(scores(i)));

    const T t = detail::threshold_below<T>(policy.iou_threshold);
    index_t count = 0;
    detail::soft_nms_run<P>(sb, inert, inert_score, policy, t, policy.decay == soft_decay::linear ? t : T(0), floor,
                            policy.max_detections, [&](std::uint32_t i, T s) {
                                keep(count) = static_cast<TK>(i);
                                kept_scores(count) = static_cast<TO>(s);
                                ++count;
                            });
    return count;
}

}  // namespace focal
