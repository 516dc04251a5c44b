// Parameter-free layers: ReLU, max-pooling, nearest-neighbour upsampling, and the sum of two
// activations (a function: its backward passes dy to both inputs unchanged).
#pragma once

#include <cstdint>
#include <vector>

#include "activation.hpp"
#include "layer.hpp"

namespace retinanet::cpu {

template <class T>
class relu final : public layer<T> {
public:
    tensor<T> forward(const tensor<T>& x) override;
    // relu(a + b) in a's memory, one pass (the residual join); backward as forward's (dy passes to
    // both summands).
    tensor<T> forward_sum(tensor<T> a, const tensor<T>& b);
    tensor<T> backward(const tensor<T>& dy) override;  // dx = dy where y > 0 (0 at x = 0, as torch)
    void clear() override { cache_.clear(); }

private:
    std::vector<buffer<std::uint8_t>> cache_;  // the masks of pending backward calls
};

// Max-pooling with implicit -inf padding (torch's MaxPool2d). Ties go to the first maximum in
// row-major window order, as torch; backward routes dy to that element.
template <class T>
class max_pool2d final : public layer<T> {
public:
    max_pool2d(int kernel = 3, int stride = 2, int padding = 1) : kernel_(kernel), stride_(stride), padding_(padding) {}
    tensor<T> forward(const tensor<T>& x) override;
    tensor<T> backward(const tensor<T>& dy) override;
    void clear() override { cache_.clear(); }

private:
    struct saved {
        std::vector<std::uint32_t> argmax;  // offset of each output's maximum within its input image
        int n, h, w;
    };
    int kernel_, stride_, padding_;
    std::vector<saved> cache_;
};

// Nearest-neighbour resize to (height, width), torch's F.interpolate(mode="nearest"):
// src = min(floor(dst * (in / out)), in - 1) with the scale in float.
template <class T>
class upsample_nearest final : public layer<T> {
public:
    void set_output_size(int height, int width) { out_h_ = height, out_w_ = width; }
    tensor<T> forward(const tensor<T>& x) override;
    tensor<T> backward(const tensor<T>& dy) override;
    void clear() override { cache_.clear(); }

private:
    struct saved {
        int h, w;
    };
    int out_h_ = 0, out_w_ = 0;
    std::vector<saved> cache_;
};

// a += b (same shape), the residual and FPN top-down sums.
template <class T>
void add_in_place(tensor<T>& a, const tensor<T>& b);

}  // namespace retinanet::cpu
