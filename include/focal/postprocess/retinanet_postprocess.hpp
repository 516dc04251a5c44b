// focal/postprocess/retinanet_postprocess.hpp: RetinaNet inference post-processing (the paper,
// section 4 "Inference"; torchvision's RetinaNet.postprocess_detections).
//
// For one image, given the head outputs over all anchors (levels concatenated, in level order):
//   1. per level: the (anchor, class) pairs with sigmoid(logit) > score_threshold, at most
//      candidates_per_level of them, best first (top_candidates.hpp);
//   2. decode their anchors' box deltas (delta_xywh_coder) and clip to the image;
//   3. merge the levels and run class-aware NMS (nms/batched.hpp) at nms_threshold;
//   4. keep the best detections_per_image.
// retinanet_postprocess::torchvision() reproduces torchvision 0.14 result for result (its batched
// NMS order, 300 detections); the default keeps the paper's 100 and true per-class NMS.
// Scores are 1 / (1 + exp(-logit)) in float, as torch.sigmoid. Candidates are found in logit
// space (one compare per packet, against a threshold that rises to the k-th best seen), so
// sigmoid runs only on the few that survive.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../box/box4.hpp"
#include "../coder/delta_xywh.hpp"
#include "../config.hpp"
#include "../core/checks.hpp"
#include "../core/execution.hpp"
#include "../core/packet.hpp"
#include "../core/parallel.hpp"
#include "../core/size2d.hpp"
#include "../core/view.hpp"
#include "../nms/batched.hpp"
#include "top_candidates.hpp"

namespace focal {

struct retinanet_postprocess {
    float score_threshold = 0.05f;       // keep sigmoid(logit) > this
    index_t candidates_per_level = 1000; // top-k per pyramid level before NMS
    double nms_threshold = 0.5;          // class-aware NMS: suppress IoU > this
    index_t detections_per_image = 100;  // the paper's 100
    batched_mode nms_mode = batched_mode::per_class;
    delta_xywh_coder coder{};
    bool clip_to_image = true;

    // torchvision 0.14's RetinaNet defaults: 300 detections, its batched_nms.
    static retinanet_postprocess torchvision() {
        retinanet_postprocess p;
        p.detections_per_image = 300;
        p.nms_mode = batched_mode::torchvision;
        return p;
    }
};

inline void validate(const retinanet_postprocess& p, const char* where = "focal::retinanet_postprocess") {
    detail::require(p.score_threshold >= 0.0f && p.score_threshold < 1.0f, where, "score_threshold", "in [0, 1)",
                    p.score_threshold);
    detail::require(p.candidates_per_level >= 0, where, "candidates_per_level", ">= 0", p.candidates_per_level);
    detail::require(p.nms_threshold >= 0.0 && p.nms_threshold <= 1.0, where, "nms_threshold", "in [0, 1]", p.nms_threshold);
    detail::require(p.detections_per_image >= 0, where, "detections_per_image", ">= 0", p.detections_per_image);
    validate(p.coder, where);
}

// {height, width} of an image, the same type the anchor generator takes.
using image_size = size2d;

// Where one image's detections go: boxes D x 4 (xyxy), scores D, labels D (class index), with
// D >= detections_per_image; the first count() rows are written, best first.
template <class T, class L>
struct detections_output {
    matrix_view<T> boxes;
    vector_view<T> scores;
    vector_view<L> labels;
};
// focal::detections_output{boxes, scores, labels} deduces T and L (clang 14 has no aggregate CTAD).
template <class T, class L>
detections_output(matrix_view<T>, vector_view<T>, vector_view<L>) -> detections_output<T, L>;

namespace detail {

// The logit whose sigmoid is t, less a margin so that no logit whose float sigmoid exceeds t is
// missed; the exact test on the score follows.
inline float logit_threshold(float t) {
    if (t <= 0.0f) return -std::numeric_limits<float>::infinity();
    return static_cast<float>(std::log(double(t) / (1.0 - double(t))) - 1e-4);
}

inline float sigmoid_score(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Top candidates of one level. The k best pairs under a total order are unique, so however the
// anchors are split the result is the same: one scan with one rising threshold on a single
// thread, one contiguous share per thread under exec::parallel, then a merge.
template <class P, class Exec, class T>
std::vector<candidate> level_candidates(const Exec& exec, const matrix_view<const T>& logits, float logit_min, index_t k) {
    const index_t anchors = logits.extent(0);
    k = std::min<index_t>(k, logits.size());
    if (k <= 0) return {};  // nothing to find (and no row to point at when there are no classes)
    index_t parts = 1;
    if constexpr (std::is_same_v<Exec, exec::parallel_policy>)
        if (static_cast<std::size_t>(logits.size()) >= exec.min_elements)
            parts = std::min<index_t>(static_cast<index_t>(exec.thread_count()), std::max<index_t>(1, anchors / 1024));
    const index_t share = parts > 0 ? (anchors + parts - 1) / parts : 0;
    std::vector<std::vector<candidate>> found(static_cast<std::size_t>(parts));
    for_each_block(exec, parts, 1, share * logits.extent(1), [&](index_t part, index_t) {
        const index_t a0 = part * share, a1 = std::min(anchors, a0 + share);
        if (a1 <= a0) return;
        const matrix_view<const T> rows(&logits(a0, 0), {a1 - a0, logits.extent(1)}, {logits.stride(0), logits.stride(1)});
        auto& out = found[static_cast<std::size_t>(part)];
        top_candidates<P>(rows, static_cast<T>(logit_min), k, out);
        for (auto& c : out) c.flat += a0 * logits.extent(1);
    });
    if (parts == 1) return std::move(found[0]);
    std::vector<candidate> all;
    for (auto& f : found) all.insert(all.end(), f.begin(), f.end());
    if (static_cast<index_t>(all.size()) > k) {
        std::nth_element(all.begin(), all.begin() + (k - 1), all.end(), better);
        all.resize(static_cast<std::size_t>(k));
    }
    std::sort(all.begin(), all.end(), better);
    return all;
}

}  // namespace detail

// One image. logits A x K, deltas A x 4, anchors A x 4 (xyxy), anchors_per_level sums to A.
// Returns the number of detections written.
template <class TL, class TD, class TA, class T, class L, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TL>> && std::floating_point<T> && std::integral<L> &&
             exec::is_policy_v<Exec>
index_t postprocess(const retinanet_postprocess& p, matrix_view<TL> logits, matrix_view<TD> deltas, matrix_view<TA> anchors,
                    std::span<const index_t> anchors_per_level, image_size size, const detections_output<T, L>& out,
                    const Exec& exec = {}) {
    constexpr const char* where = "focal::postprocess";
    validate(p, where);
    const index_t a = logits.extent(0), k = logits.extent(1);
    detail::require_valid_extents(logits, where, "logits");
    detail::require_data(logits, where, "logits");
    detail::require(deltas.extent(0) == a && deltas.extent(1) == 4, where, "deltas",
                    "of shape [A x 4] with A = " + std::to_string(a), detail::shape_string(deltas));
    detail::require(anchors.extent(0) == a && anchors.extent(1) == 4, where, "anchors",
                    "of shape [A x 4] with A = " + std::to_string(a), detail::shape_string(anchors));
    detail::require_data(deltas, where, "deltas");
    detail::require_data(anchors, where, "anchors");
    index_t total = 0;
    for (index_t n : anchors_per_level) {
        detail::require(n >= 0, where, "anchors_per_level", "non-negative counts", n);
        // Compared before adding: a sum of huge counts could wrap around to A.
        detail::require(n <= a - total, where, "anchors_per_level", "counts summing to the logits' rows " + std::to_string(a),
                        "counts exceeding it: ", total, " + ", n);
        total += n;
    }
    detail::require(total == a, where, "anchors_per_level", "counts summing to the logits' rows " + std::to_string(a), total);
    detail::require(size.height >= 0 && size.width >= 0, where, "image size", "non-negative",
                    std::to_string(size.height) + " x " + std::to_string(size.width));
    const index_t capacity = p.detections_per_image;
    detail::require(out.boxes.extent(0) >= capacity && out.boxes.extent(1) == 4, where, "out.boxes",
                    "[D x 4] with D >= detections_per_image = " + std::to_string(capacity), detail::shape_string(out.boxes));
    detail::require(out.scores.extent(0) >= capacity && out.labels.extent(0) >= capacity, where, "out.scores and out.labels",
                    "of length >= detections_per_image = " + std::to_string(capacity),
                    detail::shape_string(out.scores) + " and " + detail::shape_string(out.labels));
    detail::require_data(out.boxes, where, "out.boxes");
    detail::require_data(out.scores, where, "out.scores");
    detail::require_data(out.labels, where, "out.labels");
    // A class index that L cannot hold would be written wrapped.
    detail::require(k == 0 || static_cast<std::uintmax_t>(k - 1) <= static_cast<std::uintmax_t>(std::numeric_limits<L>::max()),
                    where, "out.labels", "of an integer type that holds the largest class index " + std::to_string(k - 1),
                    "a maximum of ", +std::numeric_limits<L>::max());

    using P = host_packet_t<std::remove_const_t<TL>, !std::is_same_v<Exec, exec::scalar_policy>>;
    const float logit_min = detail::logit_threshold(p.score_threshold);
    std::vector<float> boxes, scores;
    std::vector<std::int64_t> labels;
    index_t level_begin = 0;
    for (index_t level_anchors : anchors_per_level) {
        const matrix_view<const std::remove_const_t<TL>> level(level_anchors && k ? &logits(level_begin, 0) : logits.data_handle(),
                                                               {level_anchors, k}, {logits.stride(0), logits.stride(1)});
        for (const auto& c : detail::level_candidates<P>(exec, level, logit_min, p.candidates_per_level)) {
            const float score = detail::sigmoid_score(c.logit);
            if (!(score > p.score_threshold)) continue;
            const index_t anchor = level_begin + static_cast<index_t>(c.flat / k);
            const box4<float> d{{float(deltas(anchor, 0)), float(deltas(anchor, 1)), float(deltas(anchor, 2)), float(deltas(anchor, 3))}};
            const box4<float> an{{float(anchors(anchor, 0)), float(anchors(anchor, 1)), float(anchors(anchor, 2)), float(anchors(anchor, 3))}};
            box4<float> b = p.coder.decode(d, an);
            if (p.clip_to_image) {  // torchvision's clip_boxes_to_image: clamp(0, size)
                const float w = float(size.width), h = float(size.height);
                for (int i : {0, 2}) b[i] = std::min(std::max(b[i], 0.0f), w);
                for (int i : {1, 3}) b[i] = std::min(std::max(b[i], 0.0f), h);
            }
            boxes.insert(boxes.end(), {b[0], b[1], b[2], b[3]});
            scores.push_back(score);
            labels.push_back(c.flat % k);
        }
        level_begin += level_anchors;
    }
    const auto n = static_cast<index_t>(scores.size());
    std::vector<std::int64_t> keep(static_cast<std::size_t>(n));
    const batched_nms nms_policy{.iou_threshold = p.nms_threshold, .max_output = capacity, .mode = p.nms_mode};
    const index_t kept = nms(nms_policy, make_view(boxes.data(), n, 4), make_view(scores.data(), n),
                             make_view(labels.data(), n), make_view(keep.data(), n), exec);
    for (index_t i = 0; i < kept; ++i) {
        const auto j = static_cast<std::size_t>(keep[static_cast<std::size_t>(i)]);
        for (int c = 0; c < 4; ++c) out.boxes(i, c) = static_cast<T>(boxes[j * 4 + static_cast<std::size_t>(c)]);
        out.scores(i) = static_cast<T>(scores[j]);
        out.labels(i) = static_cast<L>(labels[j]);
    }
    return kept;
}

// A batch: logits B x A x K, deltas B x A x 4, one anchor set A x 4 shared by the images, one size
// per image; out_boxes B x D x 4, out_scores B x D, out_labels B x D; counts[b] receives image b's
// number of detections. Under exec::parallel the images run concurrently (each on one thread,
// SIMD); an error in one image is rethrown after the others finish (their outputs are written).
template <class TL, class TD, class TA, class T, class L, class TN, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TL>> && std::floating_point<T> && std::integral<L> &&
             std::integral<TN> && exec::is_policy_v<Exec>
void postprocess_batch(const retinanet_postprocess& p, view<TL, 3> logits, view<TD, 3> deltas, matrix_view<TA> anchors,
                       std::span<const index_t> anchors_per_level, std::span<const image_size> sizes, view<T, 3> out_boxes,
                       matrix_view<T> out_scores, matrix_view<L> out_labels, vector_view<TN> counts, const Exec& exec = {}) {
    constexpr const char* where = "focal::postprocess_batch";
    detail::require_valid_extents(logits, where, "logits");
    const index_t batch = logits.extent(0);
    detail::require(deltas.extent(0) == batch && static_cast<index_t>(sizes.size()) == batch && out_boxes.extent(0) == batch &&
                        out_scores.extent(0) == batch && out_labels.extent(0) == batch && counts.extent(0) == batch,
                    where, "deltas, sizes, outputs and counts", "one entry per image (" + std::to_string(batch) + ")",
                    "deltas " + detail::shape_string(deltas) + ", " + std::to_string(sizes.size()) + " sizes, boxes " +
                        detail::shape_string(out_boxes) + ", counts " + detail::shape_string(counts));
    detail::require(deltas.extent(2) == 4 && out_boxes.extent(2) == 4, where, "deltas and out_boxes", "of last extent 4",
                    detail::shape_string(deltas) + " and " + detail::shape_string(out_boxes));
    // A count that TN cannot hold would be written wrapped (a negative detections_per_image is
    // reported by postprocess).
    detail::require(p.detections_per_image < 0 || static_cast<std::uintmax_t>(p.detections_per_image) <=
                                                      static_cast<std::uintmax_t>(std::numeric_limits<TN>::max()),
                    where, "counts", "of an integer type that holds detections_per_image = " + std::to_string(p.detections_per_image),
                    "a maximum of ", +std::numeric_limits<TN>::max());
    auto one = [&](index_t b, const auto& inner_exec) {
        auto slice2 = [&](const auto& v, index_t cols) {
            using E = std::remove_reference_t<decltype(*v.data_handle())>;
            return matrix_view<E>(v.size() ? &v(b, 0, 0) : v.data_handle(), {v.extent(1), cols}, {v.stride(1), v.stride(2)});
        };
        auto row = [&](const auto& m) {
            using E = std::remove_reference_t<decltype(*m.data_handle())>;
            return vector_view<E>(m.size() ? &m(b, 0) : m.data_handle(), {m.extent(1)}, {m.stride(1)});
        };
        const detections_output<T, L> out{slice2(out_boxes, 4), row(out_scores), row(out_labels)};
        counts(b) = static_cast<TN>(postprocess(p, slice2(logits, logits.extent(2)), slice2(deltas, 4), anchors, anchors_per_level,
                                                sizes[static_cast<std::size_t>(b)], out, inner_exec));
    };
    if constexpr (std::is_same_v<Exec, exec::parallel_policy>) {
        if (batch > 1) {
            detail::for_each_block(exec, batch, 1, logits.extent(1) * logits.extent(2),
                                   [&](index_t b, index_t) { one(b, exec::simd); });
            return;
        }
    }
    for (index_t b = 0; b < batch; ++b) one(b, exec);
}

}  // namespace focal
