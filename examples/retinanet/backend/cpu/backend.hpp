// The CPU backend as the architecture sees it (model/network_backend.hpp): this folder's layers, created
// with their parameters registered in `parameters` (the host model's list, in creation order).
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "conv2d.hpp"
#include "model/gradient_signal.hpp"
#include "model/network_backend.hpp"
#include "model/sequential.hpp"
#include "norm.hpp"
#include "simple_layers.hpp"

namespace retinanet::cpu {

template <class T>
struct backend {
    using tensor = cpu::tensor<T>;
    using layer = cpu::layer<T>;
    using sequential = model::sequential<cpu::layer<T>, cpu::tensor<T>>;
    using relu_layer = cpu::relu<T>;
    using upsample_layer = upsample_nearest<T>;
    using head_storage = std::vector<T>;
    using head_gradient = std::span<const T>;

    parameter_list<T> parameters;
    // Called during backward as each layer's parameter gradients become final (model/gradient_signal.hpp).
    model::gradients_ready_fn on_gradients_ready;

    std::unique_ptr<layer> conv2d(const std::string& name, const model::conv_spec& spec) {
        return registered(std::make_unique<cpu::conv2d<T>>(name, spec));
    }
    std::unique_ptr<layer> group_norm(const std::string& name, int channels, int groups, bool relu_after) {
        return registered(std::make_unique<cpu::group_norm<T>>(name, channels, groups, act(relu_after)));
    }
    std::unique_ptr<layer> frozen_batch_norm(const std::string& name, int channels, bool relu_after) {
        return registered(std::make_unique<cpu::frozen_batch_norm<T>>(name, channels, act(relu_after)));
    }
    std::unique_ptr<relu_layer> relu() { return std::make_unique<cpu::relu<T>>(); }
    std::unique_ptr<layer> max_pool2d(int kernel, int stride, int padding) { return std::make_unique<cpu::max_pool2d<T>>(kernel, stride, padding); }
    std::unique_ptr<upsample_layer> upsample() { return std::make_unique<upsample_nearest<T>>(); }
    void add_in_place(tensor& a, const tensor& b) { cpu::add_in_place(a, b); }

    head_storage head_storage_of(std::size_t count) { return head_storage(count); }
    // Level [N][H][W][A P] <-> flat[n][offset + (y W + x) A + a][p]: per image one contiguous block
    // of H W A P values (channels-last is focal's anchor order already).
    void to_flat(const tensor& level, head_storage& flat, std::ptrdiff_t offset, std::ptrdiff_t total, int per_anchor) {
        const std::size_t block = level.image_size();
        for (int n = 0; n < level.n; ++n)
            std::copy(level.data.begin() + n * block, level.data.begin() + (n + 1) * block,
                      flat.begin() + (static_cast<std::ptrdiff_t>(n) * total + offset) * per_anchor);
    }
    tensor from_flat(head_gradient flat, int c, int n, int h, int w, std::ptrdiff_t offset, std::ptrdiff_t total, int per_anchor) {
        tensor level(c, n, h, w, uninitialized);
        const std::size_t block = level.image_size();
        for (int i = 0; i < n; ++i) {
            const auto at = flat.begin() + (static_cast<std::ptrdiff_t>(i) * total + offset) * per_anchor;
            std::copy(at, at + static_cast<std::ptrdiff_t>(block), level.data.begin() + i * block);
        }
        return level;
    }

private:
    static activation act(bool relu_after) { return relu_after ? activation::relu : activation::none; }
    // The layer's parameters appended to `parameters` (the only call of layer::parameters); a
    // layer that has some reports when their gradients are final.
    template <class L>
    std::unique_ptr<layer> registered(std::unique_ptr<L> l) {
        const std::size_t first = parameters.size();
        l->parameters(parameters);
        if (parameters.size() == first) return l;
        return std::make_unique<model::gradient_signal<layer, tensor>>(std::move(l), first, parameters.size() - first, on_gradients_ready,
                                                                        [] { return grad_enabled(); });
    }
};

static_assert(model::network_backend<backend<float>>);

}  // namespace retinanet::cpu
