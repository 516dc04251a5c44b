// One training step's gradient: forward, focal's RetinaNet loss (target assignment included) and
// backward, shared by the trainer and the benchmarks.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include <focal/retinanet/loss.hpp>
#include <focal/loss/smooth_l1.hpp>

#include "model/retinanet_model.hpp"

namespace retinanet::train {

using detection_loss = focal::retinanet_loss<focal::smooth_l1_loss>;

// Anchors per padded batch size (height, width): generated once, reused by every later step.
using anchor_cache = std::map<std::pair<int, int>, std::vector<float>>;

// Accumulates the parameters' gradients of the loss of one batch (zero them first) and returns
// the loss. boxes[i] is image i's G x 4 ground truth (row-major, network pixels), labels[i] its G
// classes.
focal::retinanet_loss_value forward_backward(model::retinanet_model<float>& net, const cpu::tensor<float>& images,
                                             const std::vector<std::vector<float>>& boxes,
                                             const std::vector<std::vector<std::int64_t>>& labels, const detection_loss& loss,
                                             focal::retinanet_loss_state& state, anchor_cache& anchors);

}  // namespace retinanet::train
