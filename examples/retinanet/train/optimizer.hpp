// SGD with momentum and weight decay (torch.optim.SGD's form):
//   g = grad + weight_decay * w   (decayed parameters only),   v = momentum v + g,   w -= lr v
// with optional clipping of the global gradient norm (torch.nn.utils.clip_grad_norm_) before it,
// and the learning-rate schedule the paper uses: linear warmup, then steps or a cosine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/cpu/tensor.hpp"

namespace retinanet::train {

enum class decay_kind { step, cosine };

struct lr_schedule {
    double base_lr = 0.01;
    std::int64_t warmup_iterations = 300;
    double warmup_factor = 1.0 / 3.0;  // lr at iteration 0 is base_lr * warmup_factor (Detectron)
    decay_kind decay = decay_kind::step;
    std::vector<double> steps{0.8};  // step: fractions of the run where lr is multiplied by gamma
    double gamma = 0.1;
    double final_factor = 0.0;  // cosine: lr falls to base_lr * final_factor at the end

    double at(std::int64_t iteration, std::int64_t total_iterations) const;
};

struct sgd {
    double momentum = 0.9;
    double weight_decay = 1e-4;
    double clip_norm = 0;  // > 0: scale gradients so their global L2 norm is at most this

    // One update of every trainable parameter; returns the gradient norm before clipping.
    // Non-finite gradients skip the update (nothing changes) and return the non-finite norm.
    template <class T>
    double step(const cpu::parameter_list<T>& params, std::vector<std::vector<T>>& velocity, double lr) const;
};

}  // namespace retinanet::train
