// focal/retinanet/loss.hpp: the RetinaNet training loss as wiring of focal's pieces.
//
// For a batch of B images sharing one anchor set (A x 4), with head outputs cls_logits B x A x K
// and bbox_regression B x A x 4 and each image's ground truth:
//   per image: match_anchors + build_targets (assign/targets.hpp) -> per-anchor labels and
//              encoded box targets, P_i positives;
//   classification = sum_i focal(cls_logits_i, labels_i) / n_i     (ignored anchors excluded)
//   box            = sum_i box_loss(bbox_regression_i, targets_i over positives) / n_i
// with the normalizer n_i chosen by `normalizer`:
//   per_image       B * max(1, P_i)                torchvision (per image, then mean over images)
//   batch_ema       ema <- m ema + (1 - m) max(1, sum P_i), n = ema; state carries ema (init 100)
//                                                  detectron2
//   batch_plus_one  sum_i (P_i + 1)                Detectron (the paper's code)
// Data-parallel training over W processes that average their gradients: give the state a
// `sum_counts` that sums {positives, images} over the processes (an allreduce) and W in
// `processes`; n_i is then the normalizer of the whole batch's counts divided by W, so the averaged
// gradient is the one a single process computes on the whole batch (mmdetection's
// reduce_mean(num_pos)), and batch_ema's running value is the same on every process.
// Gradients (optional) are those of classification + box with respect to the head outputs.
// The box loss works on encoded deltas (l1_loss: torchvision; smooth_l1_loss{1/9}: Detectron,
// detectron2 with beta 0.1 / 0).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "../assign/max_iou_matcher.hpp"
#include "../assign/targets.hpp"
#include "../coder/delta_xywh.hpp"
#include "../core/checks.hpp"
#include "../core/execution.hpp"
#include "../core/view.hpp"
#include "../loss/box_regression_loss.hpp"
#include "../loss/classification_loss.hpp"
#include "normalizer.hpp"
#include "../loss/sigmoid_focal.hpp"
#include "../loss/smooth_l1.hpp"

namespace focal {

template <class BoxLoss = l1_loss>
struct retinanet_loss {
    static_assert(!requires { requires BoxLoss::xyxy_targets; },
                  "retinanet_loss: the box loss runs on encoded deltas (l1_loss, smooth_l1_loss)");
    sigmoid_focal_loss classification{};
    BoxLoss box{};
    max_iou_matcher matcher{};
    delta_xywh_coder coder{};
    loss_normalizer normalizer = loss_normalizer::per_image;
    float ema_momentum = 0.9f;  // batch_ema only

    // torchvision 0.14's RetinaNet.compute_loss, number for number.
    static retinanet_loss torchvision() {
        retinanet_loss r;
        r.matcher = matcher_presets::torchvision();
        return r;
    }
};

// What a training run carries from batch to batch; keep one per run.
struct retinanet_loss_state {
    double ema = 100.0;  // loss_normalizer::batch_ema's running normalizer (detectron2's initial value)
    // Data-parallel training (optional): called once per batch, after target assignment, with this
    // process's {positives, images}; replaces them by their sums over the `processes` processes
    // whose gradients are averaged. Left empty, each process normalizes by its own counts
    // (detectron2's per-process running average).
    std::function<void(std::span<std::int64_t, 2>)> sum_counts;
    int processes = 1;
};

// One image's ground truth: boxes G x 4 (xyxy) and class labels G.
template <class T, class L>
struct ground_truth {
    matrix_view<const T> boxes;
    vector_view<const L> labels;
};

// Where gradients go (optional): B x A x K and B x A x 4, the shapes of the head outputs.
template <class T>
struct retinanet_gradients {
    tensor3_view<T> cls_logits{};
    tensor3_view<T> bbox_regression{};
};

struct retinanet_loss_value {
    double classification = 0, box = 0;
    index_t positives = 0;  // over the batch
};


template <class BoxLoss, class TC, class TR, class TA, class T, class L, class Exec = exec::default_policy>
    requires std::floating_point<T> && exec::is_policy_v<Exec>
retinanet_loss_value compute_retinanet_loss(const retinanet_loss<BoxLoss>& loss, tensor3_view<TC> cls_logits,
                                            tensor3_view<TR> bbox_regression, matrix_view<TA> anchors,
                                            std::span<const ground_truth<T, L>> targets,
                                            const retinanet_gradients<T>& grads = {},
                                            retinanet_loss_state* state = nullptr, const Exec& exec = {}) {
    constexpr const char* where = "focal::compute_retinanet_loss";
    // Extents first: B * A sizes the label buffers below.
    detail::require_valid_extents(cls_logits, where, "cls_logits");
    const index_t batch = cls_logits.extent(0), a = cls_logits.extent(1), k = cls_logits.extent(2);
    detail::require(static_cast<index_t>(targets.size()) == batch, where, "targets", "one per image (" + std::to_string(batch) + ")",
                    targets.size());
    detail::require(bbox_regression.extent(0) == batch && bbox_regression.extent(1) == a && bbox_regression.extent(2) == 4, where,
                    "bbox_regression", "of shape [B x A x 4] = [" + std::to_string(batch) + " x " + std::to_string(a) + " x 4]",
                    detail::shape_string(bbox_regression));
    detail::require(anchors.extent(0) == a && anchors.extent(1) == 4, where, "anchors", "of shape [A x 4] with A = " + std::to_string(a),
                    detail::shape_string(anchors));
    const bool want_cls_grad = !grads.cls_logits.is_null(), want_box_grad = !grads.bbox_regression.is_null();
    if (want_cls_grad) detail::require_same_shape(grads.cls_logits, tensor3_view<T>(nullptr, {batch, a, k}, {a * k, k, 1}), where,
                                                  "grads.cls_logits", "cls_logits");
    if (want_box_grad) detail::require_same_shape(grads.bbox_regression, tensor3_view<T>(nullptr, {batch, a, 4}, {a * 4, 4, 1}), where,
                                                  "grads.bbox_regression", "bbox_regression");
    detail::require(loss.normalizer != loss_normalizer::batch_ema || state != nullptr, where, "state",
                    "given for loss_normalizer::batch_ema (it carries the running normalizer)", "nullptr");
    detail::require_data(cls_logits, where, "cls_logits");
    detail::require_data(bbox_regression, where, "bbox_regression");
    // The policies and the running normalizer are checked here too: the drivers would only see them
    // after state->ema is updated. With ema > 0 and momentum in [0, 1] the new ema stays > 0.
    detail::validate_policy(loss.classification, where);
    detail::validate_policy(loss.box, where);
    if (state != nullptr && state->sum_counts)
        detail::require(state->processes >= 1, where, "state->processes", ">= 1 (the processes sum_counts sums over)", state->processes);
    if (loss.normalizer == loss_normalizer::batch_ema) {
        detail::require(loss.ema_momentum >= 0.0f && loss.ema_momentum <= 1.0f, where, "ema_momentum", "in [0, 1]",
                        loss.ema_momentum);
        detail::require(std::isfinite(state->ema) && state->ema > 0.0, where, "state->ema", "finite and > 0", state->ema);
    }
    // Everything that could fail later is checked here, before any output or state is written.
    for (index_t i = 0; i < batch; ++i) {
        const auto& gt = targets[static_cast<std::size_t>(i)];
        detail::require_data(gt.labels, where, ("targets[" + std::to_string(i) + "].labels").c_str());
        for (index_t g = 0; g < gt.labels.extent(0); ++g) {
            const auto l = static_cast<std::int64_t>(gt.labels(g));
            if (l < 0 || l >= k)
                detail::fail(where, "targets[" + std::to_string(i) + "].labels", "in [0, " + std::to_string(k) + ") (the classes)", l,
                             " for ground-truth box ", g);
        }
    }
    if (want_cls_grad) detail::require_disjoint_images(grads.cls_logits, where, "grads.cls_logits");
    if (want_box_grad) detail::require_disjoint_images(grads.bbox_regression, where, "grads.bbox_regression");

    // 1. Targets for every image (the batch normalizers need every image's positives first).
    std::vector<std::int64_t> labels(static_cast<std::size_t>(batch * a));
    std::vector<T> box_targets(static_cast<std::size_t>(batch * a * 4));
    std::vector<index_t> positives(static_cast<std::size_t>(batch));
    retinanet_loss_value result;
    for (index_t i = 0; i < batch; ++i) {
        const auto& gt = targets[static_cast<std::size_t>(i)];
        positives[i] = assign_targets(loss.matcher, loss.coder, anchors, gt.boxes, gt.labels, make_view(labels.data() + i * a, a),
                                      make_view(box_targets.data() + i * a * 4, a, 4), exec);
        result.positives += positives[i];
    }
    // 2. Normalizers (normalizer.hpp), of every process's counts when they are summed.
    std::int64_t counts[2] = {result.positives, batch};
    double share = 1.0;  // this process's share of the averaged gradient
    if (state != nullptr && state->sum_counts) {
        state->sum_counts(std::span<std::int64_t, 2>(counts));
        detail::require(counts[0] >= result.positives && counts[1] >= batch, where, "state->sum_counts",
                        "sums over the processes, at least this process's counts (" + std::to_string(result.positives) + " positives, " +
                            std::to_string(batch) + " images)",
                        std::to_string(counts[0]) + " positives, " + std::to_string(counts[1]) + " images");
        share = static_cast<double>(state->processes);
    }
    std::vector<double> norm(static_cast<std::size_t>(batch));
    double unused_ema = 0;
    const double batch_norm = batch_normalizer(loss.normalizer, counts[0], counts[1], loss.ema_momentum,
                                               state != nullptr ? state->ema : unused_ema);
    for (index_t i = 0; i < batch; ++i) norm[i] = image_normalizer(loss.normalizer, positives[i], counts[1], batch_norm) / share;
    // 3. Losses and gradients, image by image (each driver threads within the image).
    for (index_t i = 0; i < batch; ++i) {
        const matrix_view<const std::remove_const_t<TC>> logits_i = slice(cls_logits, i);
        const matrix_view<const std::remove_const_t<TR>> deltas_i = slice(bbox_regression, i);
        const vector_view<const std::int64_t> labels_i(labels.data() + i * a, a);
        loss_output<T> cls_out;
        if (want_cls_grad) cls_out.grad = slice(grads.cls_logits, i);
        result.classification += classification_loss(loss.classification, logits_i, labels_i, reduction::divide_by(norm[i]), cls_out, exec);
        box_loss_output<T> box_out;
        if (want_box_grad) box_out.grad = slice(grads.bbox_regression, i);
        result.box += box_regression_loss(loss.box, deltas_i, matrix_view<const T>(box_targets.data() + i * a * 4, a, 4), labels_i,
                                          reduction::divide_by(norm[i]), box_out, exec);
    }
    return result;
}

// The same with the ground truth in a std::vector.
template <class BoxLoss, class TC, class TR, class TA, class T, class L, class Exec = exec::default_policy>
    requires std::floating_point<T> && exec::is_policy_v<Exec>
retinanet_loss_value compute_retinanet_loss(const retinanet_loss<BoxLoss>& loss, tensor3_view<TC> cls_logits,
                                            tensor3_view<TR> bbox_regression, matrix_view<TA> anchors,
                                            const std::vector<ground_truth<T, L>>& targets,
                                            const retinanet_gradients<T>& grads = {},
                                            retinanet_loss_state* state = nullptr, const Exec& exec = {}) {
    return compute_retinanet_loss(loss, cls_logits, bbox_regression, anchors, std::span<const ground_truth<T, L>>(targets), grads,
                                  state, exec);
}

}  // namespace focal
