// focal/loss/classification_loss.hpp: a classification loss over an N x K logits view.
//
//   double classification_loss(loss, logits, targets, reduction, out, exec)   dense 0/1 targets, N x K
//   double classification_loss(loss, logits, labels,  reduction, out, exec)   labels, N
//
// Labels are per anchor (core/labels.hpp): k >= 0 is class k (target 1 in column k, 0 elsewhere),
// background_label (-1: all targets 0), ignored_label (-2: contributes nothing; gradient 0). One pass: each logit is read
// once and each gradient written once. Any strides are accepted; rows with unit stride run
// straight from the caller's memory, other layouts go through a small per-row buffer.
// out.grad may be the logits' own memory (same view): every element is read before written.
// On a thrown focal::error nothing has been written.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../core/checks.hpp"
#include "../core/error.hpp"
#include "../core/labels.hpp"
#include "../core/execution.hpp"
#include "../core/packet.hpp"
#include "../core/view.hpp"
#include "detail/loss_tile.hpp"
#include "detail/row_driver.hpp"
#include "loss_output.hpp"
#include "reduction.hpp"
#include "value_grad.hpp"

namespace focal {

namespace detail {

template <class T>
void check_outputs(const matrix_view<const T>& logits, const loss_output<T>& out, const reduction& r, const char* where) {
    validate(r, where);
    require_valid_extents(logits, where, "logits");
    require_data(logits, where, "logits");
    if (!out.grad.is_null()) {
        require_same_shape(out.grad, logits, where, "out.grad", "logits");
        require_data(out.grad, where, "out.grad");
        require_non_overlapping(out.grad, where, "out.grad");
    }
    if (!out.values.is_null()) {
        require_same_shape(out.values, logits, where, "out.values", "logits");
        require_data(out.values, where, "out.values");
        require_non_overlapping(out.values, where, "out.values");
    }
    require(r.how != reduction::kind::none || !out.values.is_null() || logits.empty(), where, "out.values",
            "given for reduction::none (it receives the elementwise losses)", "a null view");
}

}  // namespace detail

// Dense targets: targets has the logits' shape. Policies that need 0/1 targets
// (sigmoid_focal_loss) get them checked; binary_cross_entropy accepts any target in [0, 1].
template <class Loss, class TX, class TT, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TX>> && std::same_as<std::remove_const_t<TX>, std::remove_const_t<TT>> &&
             elementwise_loss<Loss, std::remove_const_t<TX>> && exec::is_policy_v<Exec>
double classification_loss(const Loss& loss, matrix_view<TX> logits, matrix_view<TT> targets,
                           reduction r = reduction::sum(),
                           std::type_identity_t<loss_output<std::remove_const_t<TX>>> out = {}, const Exec& exec = {}) {
    using T = std::remove_const_t<TX>;
    constexpr const char* where = "focal::classification_loss";
    detail::validate_policy(loss, where);
    matrix_view<const T> x = logits, t = targets;
    detail::check_outputs(x, out, r, where);
    detail::require_same_shape(t, x, where, "targets", "logits");
    detail::require_data(t, where, "targets");
    for (index_t i = 0; i < t.extent(0); ++i)
        for (index_t k = 0; k < t.extent(1); ++k) {
            const T tk = t(i, k);
            const bool ok = requires_binary_targets_v<Loss> ? (tk == T(0) || tk == T(1)) : (tk >= T(0) && tk <= T(1));
            if (!ok)
                detail::fail(where, "targets", requires_binary_targets_v<Loss> ? "0 or 1" : "in [0, 1]", tk,
                             " at (", i, ", ", k, ")");
        }

    // Elementwise, so a column-major set of views is processed as its row-major transpose.
    const bool all_column_major = !x.rows_contiguous() && x.stride(0) == 1 && t.stride(0) == 1 &&
                                  (out.grad.is_null() || out.grad.stride(0) == 1) &&
                                  (out.values.is_null() || out.values.stride(0) == 1);
    if (all_column_major) {
        x = x.transposed();
        t = t.transposed();
        if (!out.grad.is_null()) out.grad = out.grad.transposed();
        if (!out.values.is_null()) out.values = out.values.transposed();
    }
    const double scale = r.scale(static_cast<double>(x.size()));
    detail::require_representable_scale<T>(scale, where);
    const T scale_t = static_cast<T>(scale);
    const double sum = detail::run_rows<T>(exec, x.extent(0), x.extent(1), !out.grad.is_null(), !out.values.is_null(),
                                           [&]<class P, bool G, bool V>(index_t row) {
        T t_buf[detail::tile_elements];
        auto make_targets = [&](index_t i, index_t k0, index_t n) {
            return detail::dense_target_source<T>{detail::row_chunk(t, i, k0, n, t_buf)};
        };
        return detail::row_loss<P, G, V>(loss, x, out.grad, out.values, row, scale_t, make_targets);
    });
    return sum * scale;
}

// Integer labels, one per anchor: >= 0 class, -1 background, -2 ignored.
template <class Loss, class TX, class Label, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TX>> && std::integral<std::remove_const_t<Label>> &&
             elementwise_loss<Loss, std::remove_const_t<TX>> && exec::is_policy_v<Exec>
double classification_loss(const Loss& loss, matrix_view<TX> logits, vector_view<Label> labels,
                           reduction r = reduction::sum(),
                           std::type_identity_t<loss_output<std::remove_const_t<TX>>> out = {}, const Exec& exec = {}) {
    using T = std::remove_const_t<TX>;
    constexpr const char* where = "focal::classification_loss";
    detail::validate_policy(loss, where);
    const matrix_view<const T> x = logits;
    detail::check_outputs(x, out, r, where);
    detail::require_extent(labels, 0, x.extent(0), where, "labels (one per logits row)");
    detail::require_data(labels, where, "labels");
    const index_t classes = x.extent(1);
    // Class indices are compared in T: float represents every integer up to 2^24 exactly.
    detail::require(classes <= (index_t(1) << std::numeric_limits<T>::digits), where, "logits columns (classes)",
                    "at most 2^digits of the value type", classes);
    index_t ignored = 0;
    // Labels are read as signed 64-bit integers everywhere (an unsigned type's -1 is background).
    auto label_of = [&](index_t i) { return static_cast<std::int64_t>(labels(i)); };
    for (index_t i = 0; i < labels.extent(0); ++i) {
        const std::int64_t l = label_of(i);
        if (l < ignored_label || l >= classes)
            detail::fail(where, "labels", "in [-2, " + std::to_string(classes) + ") (-2 ignored, -1 background)", l,
                         " at anchor ", i);
        ignored += detail::is_ignored_label(l);
    }
    const double scale = r.scale(static_cast<double>((x.extent(0) - ignored) * classes));
    detail::require_representable_scale<T>(scale, where);
    const T scale_t = static_cast<T>(scale);
    const double sum = detail::run_rows<T>(exec, x.extent(0), classes, !out.grad.is_null(), !out.values.is_null(),
                                           [&]<class P, bool G, bool V>(index_t row) -> double {
        const std::int64_t label = label_of(row);
        if (detail::is_ignored_label(label)) {
            if (G) detail::fill_row(out.grad, row, T(0));
            if (V) detail::fill_row(out.values, row, T(0));
            return 0.0;
        }
        auto make_targets = [&](index_t, index_t k0, index_t) {
            return detail::row_label_target_source<T>{static_cast<T>(label), static_cast<T>(k0)};
        };
        return detail::row_loss<P, G, V>(loss, x, out.grad, out.values, row, scale_t, make_targets);
    });
    return sum * scale;
}

}  // namespace focal
