// Tells a listener when a layer's parameter gradients are final for the batch: a data-parallel
// trainer starts reducing them while backward goes on with the layers below (PyTorch DDP's
// autograd hooks). A layer may run several times per batch (the RetinaNet heads run once per FPN
// level) and accumulates its gradients over those runs, so they are final when its backward has
// run as often as its forward did.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "layer.hpp"

namespace retinanet::cpu {

// Called from backward's thread with the range [first, first + count) of the model's parameter list.
using gradients_ready_fn = std::function<void(std::size_t first, std::size_t count)>;

template <class T>
class gradient_signal final : public layer<T> {
public:
    // `listener` is read at each backward (it may be set after the network is built).
    gradient_signal(std::unique_ptr<layer<T>> inner, std::size_t first, std::size_t count, const gradients_ready_fn& listener)
        : inner_(std::move(inner)), first_(first), count_(count), listener_(listener) {}

    tensor<T> forward(const tensor<T>& x) override {
        if (grad_enabled()) ++pending_;
        return inner_->forward(x);
    }
    tensor<T> backward(const tensor<T>& dy) override {
        tensor<T> dx = inner_->backward(dy);
        if (pending_ > 0 && --pending_ == 0 && listener_) listener_(first_, count_);
        return dx;
    }
    void parameters(parameter_list<T>& list) override { inner_->parameters(list); }
    void clear() override {
        pending_ = 0;
        inner_->clear();
    }

private:
    std::unique_ptr<layer<T>> inner_;
    std::size_t first_, count_;
    const gradients_ready_fn& listener_;
    int pending_ = 0;  // forwards of this batch not yet matched by a backward
};

}  // namespace retinanet::cpu
