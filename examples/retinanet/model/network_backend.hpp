// What the architecture (resnet.hpp, fpn.hpp, head.hpp, retinanet_network.hpp) asks of a backend:
// the layers it is made of and a few tensor operations. The architecture is written once over this
// contract; backend/cpu (cpu::backend<T>) and backend/cuda (cuda::context<Executor>) supply it.
//
// Layers keep the contract of backend/cpu/layer.hpp: forward(x) pushes what backward needs (in
// training mode), backward(dy) pops it, accumulates the parameters' gradients and returns dx, so a
// layer applied several times (the heads, once per pyramid level) unwinds in reverse order.
// Activations are channels-last [N][H][W][C] with fields c, n, h, w. A backend registers each
// layer's parameters when it creates the layer, under the name given (torchvision's names), in
// creation order: the architecture creates its layers in its parameters' order.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <string>

namespace retinanet::model {

// A 2-D convolution as the architecture states it; each backend adds its own tuning.
struct conv_spec {
    int in_channels = 0, out_channels = 0;
    int kernel = 3, stride = 1;
    int padding = -1;        // -1: kernel / 2 ("same" for odd kernels at stride 1)
    bool bias = true;
    bool input_grad = true;  // false for the first layer: no dX needed
};

// A backend B provides:
//   B::tensor          an activation (c, n, h, w)
//   B::layer           the layer interface: forward, backward, clear
//   B::sequential      a chain of layers (model::sequential over B::layer): add(std::unique_ptr<L>) -> L&, empty()
//   B::relu_layer      a layer with forward_sum(a, b) = relu(a + b) too (the residual join)
//   B::upsample_layer  nearest upsampling: set_output_size(h, w), then a layer's calls
//   B::head_storage    one head output of a batch, flat ([N][A][K] or [N][A][4])
//   B::head_gradient   how backward receives a head output's gradient (a span, a device pointer)
//   conv2d(name, conv_spec), group_norm(name, channels, groups, relu_after),
//   frozen_batch_norm(name, channels, relu_after), relu(), max_pool2d(kernel, stride, padding),
//   upsample()                                         -> std::unique_ptr of a layer
//   add_in_place(a, b)                                 a += b
//   head_storage_of(count)                             count values of a head output
//   to_flat(level, flat, offset, total, per_anchor)    a level's [N][H][W][A P] head output into
//                                                      anchors [offset, offset + H W A) of flat [N][total][P]
//   from_flat(flat, c, n, h, w, offset, total, per_anchor) -> tensor: the reverse
template <class B>
concept network_backend = requires(B& b, typename B::tensor& t, const typename B::tensor& ct, const std::string& name,
                                   const conv_spec& spec, typename B::head_storage& flat, typename B::head_gradient grad) {
    typename B::layer;
    typename B::sequential;
    { b.conv2d(name, spec) } -> std::convertible_to<std::unique_ptr<typename B::layer>>;
    { b.group_norm(name, 8, 2, true) } -> std::convertible_to<std::unique_ptr<typename B::layer>>;
    { b.frozen_batch_norm(name, 8, true) } -> std::convertible_to<std::unique_ptr<typename B::layer>>;
    { b.relu() } -> std::same_as<std::unique_ptr<typename B::relu_layer>>;
    { b.max_pool2d(3, 2, 1) } -> std::convertible_to<std::unique_ptr<typename B::layer>>;
    { b.upsample() } -> std::same_as<std::unique_ptr<typename B::upsample_layer>>;
    b.add_in_place(t, ct);
    { b.head_storage_of(std::size_t{1}) } -> std::same_as<typename B::head_storage>;
    b.to_flat(ct, flat, std::ptrdiff_t{0}, std::ptrdiff_t{1}, 1);
    { b.from_flat(grad, 1, 1, 1, 1, std::ptrdiff_t{0}, std::ptrdiff_t{1}, 1) } -> std::same_as<typename B::tensor>;
};

}  // namespace retinanet::model
