// focal/loss/loss_output.hpp: where a loss driver writes, besides the value it returns.
//
// Every member is optional: a default (null) view means "not wanted". grad receives
// d(returned value) / d input (so it carries the reduction's scale); values receives the unscaled
// per-element (classification) or per-box (box regression) losses, and is required for
// reduction::none.
#pragma once

#include "../core/view.hpp"

namespace focal {

// classification_loss: both the logits' shape (N x K).
template <class T>
struct loss_output {
    matrix_view<T> grad{};
    matrix_view<T> values{};
};

// box_regression_loss: grad N x 4 (0 on rows that are not positive), values N (0 on those rows).
template <class T>
struct box_loss_output {
    matrix_view<T> grad{};
    vector_view<T> values{};
};

}  // namespace focal
