// The example RetinaNet on the CUDA backend: the architecture of model/retinanet_network.hpp on
// this folder's layers, its parameters mirroring a host model::retinanet_model's by name
// (parameter_store.hpp). Construction fails with focal::error when the two differ in any name or
// shape, so a checkpoint of either is a checkpoint of both. forward() returns the head outputs in
// focal's anchor order ([N][A][K] and [N][A][4], executor memory); backward() takes their gradients
// in the same layout.
#pragma once

#include "layers.hpp"
#include "model/retinanet_model.hpp"
#include "model/retinanet_network.hpp"

namespace retinanet::cuda {

using device_head_outputs = model::head_outputs_of<std::shared_ptr<float>>;

template <class Executor>
class network {
    static_assert(model::network_backend<backend<Executor>>);

public:
    network(Executor& executor, model::retinanet_model<float>& host)
        : host_(host), ctx_{executor, parameter_store<Executor>(executor, host.parameters()), true}, net_(backend_, host.config()) {
        ctx_.store.allocate();
    }
    network(const network&) = delete;  // the layers refer to this network's context
    network& operator=(const network&) = delete;

    // images: [N][H][W][3], normalized, H and W multiples of the anchors' size_divisibility.
    device_head_outputs forward(const device_tensor& images) { return net_.forward(images); }
    // d_cls [N][A][K], d_box [N][A][4] of the last forward; accumulates the parameters' gradients.
    void backward(const float* d_cls, const float* d_box) { net_.backward(d_cls, d_box); }

    // Training mode keeps what backward needs; inference keeps nothing.
    void set_grad_enabled(bool enabled) { ctx_.grad_enabled = enabled; }
    void zero_grad() { ctx_.store.zero_grad(); }
    void clear() { net_.clear(); }  // drops cached forward state (after an aborted step)
    parameter_store<Executor>& parameters() noexcept { return ctx_.store; }
    model::retinanet_model<float>& host() noexcept { return host_; }
    context<Executor>& ctx() noexcept { return ctx_; }

private:
    model::retinanet_model<float>& host_;
    context<Executor> ctx_;
    backend<Executor> backend_{ctx_};
    model::retinanet_network<backend<Executor>> net_;
};

}  // namespace retinanet::cuda
