// focal/retinanet/postprocess.hpp: RetinaNet inference post-processing (the paper, section 4
// "Inference"; torchvision's RetinaNet.postprocess_detections).
//
//   index_t n = postprocess(p, logits /*A x K*/, deltas /*A x 4*/, anchors /*A x 4*/, anchors_per_level,
//                           size, detections_output{boxes, scores, labels}, exec);           one image
//   postprocess(p, logits /*B x A x K*/, deltas /*B x A x 4*/, anchors, anchors_per_level, sizes /*B*/,
//               batch_detections_output{boxes, scores, labels, counts}, exec);             a batch
//
// For one image, given the head outputs over all anchors (levels concatenated, in level order):
//   1. per level: the (anchor, class) pairs with sigmoid(logit) > score_threshold, at most
//      max_candidates_per_level of them, best first (detail/top_candidates.hpp);
//   2. decode their anchors' box deltas (coder) and clip them to the image;
//   3. merge the levels and run the nms policy (class-aware batched_nms, nms/batched.hpp);
//   4. keep the best max_detections (and at most nms.max_detections when that is set).
// retinanet_postprocess::torchvision() reproduces torchvision 0.14 result for result (its batched
// NMS order, 300 detections); the default keeps the paper's 100 and true per-class NMS.
// Scores are 1 / (1 + exp(-logit)) in float, as torch.sigmoid, and compared with
// float(score_threshold), as torch compares a float tensor with a Python number. Candidates are
// found in logit space (one compare per packet, against a threshold that rises to the k-th best
// seen), so sigmoid runs only on the few that survive.
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
#include "../core/host_packet.hpp"
#include "../core/parallel.hpp"
#include "../core/size2d.hpp"
#include "../core/view.hpp"
#include "../nms/batched.hpp"
#include "detail/candidates.hpp"
#include "detail/top_candidates.hpp"

namespace focal {

struct retinanet_postprocess {
    double score_threshold = 0.05;           // keep sigmoid(logit) > this
    index_t max_candidates_per_level = 1000; // top-k per pyramid level before NMS
    batched_nms nms{};                       // class-aware NMS at IoU 0.5, per class
    index_t max_detections = 100;            // per image: the paper's 100
    delta_xywh_coder coder{};
    bool clip_to_image = true;

    // torchvision 0.14's RetinaNet defaults: 300 detections, its batched_nms.
    static retinanet_postprocess torchvision() {
        retinanet_postprocess p;
        p.max_detections = 300;
        p.nms.mode = batched_mode::torchvision;
        return p;
    }

    // The detections an image can have: max_detections, or nms.max_detections when smaller.
    index_t capacity() const noexcept {
        return nms.max_detections >= 0 && nms.max_detections < max_detections ? nms.max_detections : max_detections;
    }
};

inline void validate(const retinanet_postprocess& p, const char* where = "focal::retinanet_postprocess") {
    detail::require(p.score_threshold >= 0.0 && p.score_threshold < 1.0, where, "score_threshold", "in [0, 1)",
                    p.score_threshold);
    detail::require(p.max_candidates_per_level >= 0, where, "max_candidates_per_level", ">= 0", p.max_candidates_per_level);
    detail::require(p.max_detections >= 0, where, "max_detections", ">= 0", p.max_detections);
    validate(p.nms, where, "nms.");
    validate(p.coder, where);
}

// {height, width} of an image, the same type the anchor generator takes.
using image_size = size2d;

// Where one image's detections go: boxes D x 4 (xyxy), scores D, labels D (class index), with
// D >= capacity() (max_detections); the first count rows are written, best first.
template <class T, class L>
struct detections_output {
    matrix_view<T> boxes;
    vector_view<T> scores;
    vector_view<L> labels;
};
// focal::detections_output{boxes, scores, labels} deduces T and L (clang 14 has no aggregate CTAD).
template <class T, class L>
detections_output(matrix_view<T>, vector_view<T>, vector_view<L>) -> detections_output<T, L>;

// A batch's: the single-image output with a leading image dimension (boxes B x D x 4, scores
// B x D, labels B x D), and counts (B): image b's number of detections.
// Space: host_space here; focal::cuda::postprocess takes the same struct over device memory.
template <class T, class L, class N, class Space = host_space>
struct batch_detections_output {
    tensor3_view<T, Space> boxes;
    matrix_view<T, Space> scores;
    matrix_view<L, Space> labels;
    vector_view<N, Space> counts;
};
template <class T, class L, class N, class S>
batch_detections_output(view<T, 3, S>, view<T, 2, S>, view<L, 2, S>, view<N, 1, S>) -> batch_detections_output<T, L, N, S>;

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
    const index_t capacity = p.capacity();
    detail::require(out.boxes.extent(0) >= capacity && out.boxes.extent(1) == 4, where, "out.boxes",
                    "[D x 4] with D >= capacity() = " + std::to_string(capacity), detail::shape_string(out.boxes));
    detail::require(out.scores.extent(0) >= capacity && out.labels.extent(0) >= capacity, where, "out.scores and out.labels",
                    "of length >= capacity() = " + std::to_string(capacity),
                    detail::shape_string(out.scores) + " and " + detail::shape_string(out.labels));
    detail::require_data(out.boxes, where, "out.boxes");
    detail::require_data(out.scores, where, "out.scores");
    detail::require_data(out.labels, where, "out.labels");
    // A class index that L cannot hold would be written wrapped.
    detail::require(k == 0 || static_cast<std::uintmax_t>(k - 1) <= static_cast<std::uintmax_t>(std::numeric_limits<L>::max()),
                    where, "out.labels", "of an integer type that holds the largest class index " + std::to_string(k - 1),
                    "a maximum of ", +std::numeric_limits<L>::max());

    using P = host_packet_t<std::remove_const_t<TL>, !std::is_same_v<Exec, exec::scalar_policy>>;
    const float score_threshold = static_cast<float>(p.score_threshold);
    const float logit_min = detail::logit_threshold(score_threshold);
    std::vector<float> boxes, scores;
    std::vector<std::int64_t> labels;
    index_t level_begin = 0;
    for (index_t level_anchors : anchors_per_level) {
        const auto level = leading_range(matrix_view<const std::remove_const_t<TL>>(logits), level_begin, level_begin + level_anchors);
        for (const auto& c : detail::level_candidates<P>(exec, level, logit_min, p.max_candidates_per_level)) {
            const float score = detail::sigmoid_score(c.logit);
            if (!(score > score_threshold)) continue;
            const index_t anchor = level_begin + static_cast<index_t>(c.flat / k);
            const box4<float> d{{float(deltas(anchor, 0)), float(deltas(anchor, 1)), float(deltas(anchor, 2)), float(deltas(anchor, 3))}};
            const box4<float> an{{float(anchors(anchor, 0)), float(anchors(anchor, 1)), float(anchors(anchor, 2)), float(anchors(anchor, 3))}};
            box4<float> b = p.coder.decode(d, an);
            if (p.clip_to_image) b = detail::clip_box(b, float(size.width), float(size.height));
            boxes.insert(boxes.end(), {b[0], b[1], b[2], b[3]});
            scores.push_back(score);
            labels.push_back(c.flat % k);
        }
        level_begin += level_anchors;
    }
    const auto n = static_cast<index_t>(scores.size());
    std::vector<std::int64_t> keep(static_cast<std::size_t>(n));
    batched_nms nms_policy = p.nms;
    nms_policy.max_detections = capacity;
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

// A batch: the single-image form with a leading image dimension. logits B x A x K, deltas B x A x 4,
// one anchor set A x 4 shared by the images, one size per image. Under exec::parallel the images
// run concurrently (each on one thread, SIMD); an error in one image is rethrown after the others
// finish (their outputs are written).
template <class TL, class TD, class TA, class T, class L, class N, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TL>> && std::floating_point<T> && std::integral<L> &&
             std::integral<N> && exec::is_policy_v<Exec>
void postprocess(const retinanet_postprocess& p, tensor3_view<TL> logits, tensor3_view<TD> deltas, matrix_view<TA> anchors,
                 std::span<const index_t> anchors_per_level, std::span<const image_size> sizes,
                 const batch_detections_output<T, L, N, host_space>& out, const Exec& exec = {}) {
    constexpr const char* where = "focal::postprocess";
    detail::require_valid_extents(logits, where, "logits");
    const index_t batch = logits.extent(0);
    detail::require(deltas.extent(0) == batch && static_cast<index_t>(sizes.size()) == batch && out.boxes.extent(0) == batch &&
                        out.scores.extent(0) == batch && out.labels.extent(0) == batch && out.counts.extent(0) == batch,
                    where, "deltas, sizes and out", "one entry per image (" + std::to_string(batch) + ")",
                    "deltas " + detail::shape_string(deltas) + ", " + std::to_string(sizes.size()) + " sizes, out.boxes " +
                        detail::shape_string(out.boxes) + ", out.counts " + detail::shape_string(out.counts));
    detail::require(deltas.extent(2) == 4 && out.boxes.extent(2) == 4, where, "deltas and out.boxes", "of last extent 4",
                    detail::shape_string(deltas) + " and " + detail::shape_string(out.boxes));
    // A count that N cannot hold would be written wrapped (a negative max_detections is reported
    // by the single-image form).
    detail::require(p.max_detections < 0 || static_cast<std::uintmax_t>(p.max_detections) <=
                                                static_cast<std::uintmax_t>(std::numeric_limits<N>::max()),
                    where, "out.counts", "of an integer type that holds max_detections = " + std::to_string(p.max_detections),
                    "a maximum of ", +std::numeric_limits<N>::max());
    auto one = [&](index_t b, const auto& inner_exec) {
        const detections_output<T, L> image_out{slice(out.boxes, b), slice(out.scores, b), slice(out.labels, b)};
        out.counts(b) = static_cast<N>(postprocess(p, slice(logits, b), slice(deltas, b), anchors, anchors_per_level,
                                                   sizes[static_cast<std::size_t>(b)], image_out, inner_exec));
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
