// The SGD update's element rules (torch.optim.SGD after torch.nn.utils.clip_grad_norm_), one
// definition for the CPU optimizer (train/optimizer.cpp) and the CUDA one (backend/cuda/optimizer.hpp).
#pragma once

#include <focal/config.hpp>

namespace retinanet::element_rules {

// The factor clip_grad_norm_ scales every gradient by: clip / (norm + 1e-6) (torch's 1e-6) when
// clipping is on (clip > 0) and the global norm exceeds it, else 1.
FOCAL_HD inline double clip_scale(double norm, double clip_norm) {
    return clip_norm > 0.0 && norm > clip_norm ? clip_norm / (norm + 1e-6) : 1.0;
}

// Whether a gradient norm lets the step happen: NaN and infinity skip it (norm - norm is NaN for both).
FOCAL_HD inline bool finite_norm(double norm) { return norm - norm == 0.0; }

// One element: g = grad scale + weight_decay value, velocity = momentum velocity + g,
// value -= lr velocity (weight_decay 0 for parameters without decay).
template <class T>
FOCAL_HD void sgd_update(T& value, T& velocity, T grad, T scale, T weight_decay, T momentum, T lr) {
    const T g = grad * scale + weight_decay * value;
    velocity = momentum * velocity + g;
    value -= lr * velocity;
}

}  // namespace retinanet::element_rules
