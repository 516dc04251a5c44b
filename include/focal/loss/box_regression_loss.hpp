// focal/loss/box_regression_loss.hpp: a box loss over the positive anchors only.
//
//   double box_regression_loss(loss, predictions, targets, labels, reduction, out, exec)
//
// predictions and targets are N x 4 (encoded deltas for l1_loss / smooth_l1_loss, xyxy boxes for
// giou_loss); labels has one entry per anchor and anchors with label >= 0 are positive (a
// matcher's codes work as they are: background -1 and ignored -2 are skipped). The value is the
// sum over positive anchors of the per-box loss (the sum over coordinates for L1 types), reduced:
// mean divides by the number of positive anchors; divide_by(n) by n (torchvision: max(1,
// positives)); none returns the sum and writes each box's loss to out.values (required then).
// out.grad (optional, N x 4) receives d value / d predictions, 0 on rows that are not positive;
// out.values (optional, N) the unscaled per-box losses, 0 on those rows.
// Rows are cut into fixed blocks of 4096 that run concurrently under exec::parallel; each block's
// sum (double, in row order) is added in block order, so the value does not depend on the policy
// or the thread count.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../core/checks.hpp"
#include "../core/error.hpp"
#include "../core/execution.hpp"
#include "../core/labels.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "loss_output.hpp"
#include "reduction.hpp"
#include "value_grad.hpp"

namespace focal {

template <class Loss, class TP, class TT, class Label, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TP>> && std::same_as<std::remove_const_t<TP>, std::remove_const_t<TT>> &&
             std::integral<std::remove_const_t<Label>> && box_loss<Loss, std::remove_const_t<TP>> && exec::is_policy_v<Exec>
double box_regression_loss(const Loss& loss, matrix_view<TP> predictions, matrix_view<TT> targets,
                           vector_view<Label> labels, reduction r = reduction::sum(),
                           std::type_identity_t<box_loss_output<std::remove_const_t<TP>>> out = {}, const Exec& exec = {}) {
    using T = std::remove_const_t<TP>;
    constexpr const char* where = "focal::box_regression_loss";
    detail::validate_policy(loss, where);
    validate(r, where);
    const matrix_view<const T> pred = predictions, target = targets;
    detail::require_valid_extents(pred, where, "predictions");
    detail::require_extent(pred, 1, 4, where, "predictions");
    detail::require_same_shape(target, pred, where, "targets", "predictions");
    detail::require_extent(labels, 0, pred.extent(0), where, "labels (one per predictions row)");
    detail::require_data(pred, where, "predictions");
    detail::require_data(target, where, "targets");
    detail::require_data(labels, where, "labels");
    if (!out.grad.is_null()) {
        detail::require_same_shape(out.grad, pred, where, "out.grad", "predictions");
        detail::require_data(out.grad, where, "out.grad");
        detail::require_non_overlapping(out.grad, where, "out.grad");
    }
    if (!out.values.is_null()) {
        detail::require_extent(out.values, 0, pred.extent(0), where, "out.values (one per predictions row)");
        detail::require_data(out.values, where, "out.values");
        detail::require_distinct(out.values, where, "out.values");
    }
    detail::require(r.how != reduction::kind::none || !out.values.is_null() || pred.extent(0) == 0, where, "out.values",
                    "given for reduction::none (it receives the per-box losses)", "a null view");
    const index_t n = pred.extent(0);
    // A row is positive when its label, read as a signed 64-bit integer, is >= 0 (so an unsigned
    // type's -1 is background here exactly as in classification_loss).
    auto label_of = [&](index_t i) { return static_cast<std::int64_t>(labels(i)); };
    index_t positives = 0;
    for (index_t i = 0; i < n; ++i) {
        const std::int64_t l = label_of(i);
        detail::require(l >= ignored_label, where, "labels", ">= -2 (-2 ignored, -1 background, >= 0 positive)", l,
                        " at anchor ", i);
        if (!detail::is_positive_label(l)) continue;
        ++positives;
        if constexpr (requires { requires Loss::xyxy_targets; }) {
            // Targets must be real boxes. Predictions may be NaN (NaN out) but not inverted: an
            // inverted prediction would make GIoU negative, a silent wrong answer.
            const bool valid = target(i, 2) >= target(i, 0) && target(i, 3) >= target(i, 1) &&
                               target(i, 2) - target(i, 0) < T(INFINITY) && target(i, 3) - target(i, 1) < T(INFINITY);
            if (!valid)
                detail::fail(where, "targets", "finite xyxy boxes with x2 >= x1 and y2 >= y1", "[", target(i, 0), ", ",
                             target(i, 1), ", ", target(i, 2), ", ", target(i, 3), "] at anchor ", i);
            if (pred(i, 2) < pred(i, 0) || pred(i, 3) < pred(i, 1))
                detail::fail(where, "predictions", "xyxy boxes with x2 >= x1 and y2 >= y1", "[", pred(i, 0), ", ",
                             pred(i, 1), ", ", pred(i, 2), ", ", pred(i, 3), "] at anchor ", i);
        }
    }
    const double scale = r.scale(static_cast<double>(positives));
    detail::require_representable_scale<T>(scale, where);
    constexpr index_t block = 4096;
    const index_t blocks = (n + block - 1) / block;
    std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
    detail::for_each_block(exec, blocks, 1, block * 4, [&](index_t b, index_t) {
        double sum = 0;
        for (index_t i = b * block, end = std::min(n, i + block); i < end; ++i) {
            if (!detail::is_positive_label(label_of(i))) {
                if (!out.grad.is_null())
                    for (int c = 0; c < 4; ++c) out.grad(i, c) = T(0);
                if (!out.values.is_null()) out.values(i) = T(0);
                continue;
            }
            box4<T> p{}, g{};
            for (int c = 0; c < 4; ++c) {
                p[c] = pred(i, c);
                g[c] = target(i, c);
            }
            const box_value_grad<T> vg = loss.value_and_grad(p, g);
            sum += static_cast<double>(vg.value);
            if (!out.grad.is_null())
                for (int c = 0; c < 4; ++c) out.grad(i, c) = static_cast<T>(vg.grad[c] * scale);
            if (!out.values.is_null()) out.values(i) = vg.value;
        }
        partial[static_cast<std::size_t>(b)] = sum;
    });
    double total = 0;
    for (const double s : partial) total += s;
    return total * scale;
}

}  // namespace focal
