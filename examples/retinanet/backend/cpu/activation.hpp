// The ReLU, applied by its own layer (simple_layers.hpp) or fused into the pass of the layer
// before it: a normalization (norm.hpp) or the residual sum. Fused, the activations are written
// once instead of being read and written again by a separate layer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace retinanet::cpu {

// What a layer applies to its output in the same pass.
enum class activation { none, relu };

// torch's ReLU: max(0, v), and NaN stays NaN.
template <class T>
constexpr T relu_value(T v) noexcept {
    return v > T(0) || v != v ? v : T(0);
}

// The ReLU's backward mask of its outputs y[0, size): 1 where y > 0 (so 0 at 0 and at NaN, as
// torch's threshold_backward).
template <class T>
void relu_mask(const T* y, std::size_t size, std::uint8_t* mask) {
    for (std::size_t i = 0; i < size; ++i) mask[i] = y[i] > T(0);
}

// dx = dy where the mask is set, else 0.
template <class T>
void apply_relu_mask(const std::uint8_t* mask, const T* dy, T* dx, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) dx[i] = mask[i] ? dy[i] : T(0);
}

}  // namespace retinanet::cpu
