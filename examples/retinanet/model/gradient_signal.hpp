// Tells a listener when a layer's parameter gradients are final for the batch, so a data-parallel
// trainer reduces them while backward goes on with the layers below (PyTorch DDP's autograd
// hooks). A layer may run several times per batch (the RetinaNet heads run once per FPN level) and
// accumulates its gradients over those runs, so they are final when its backward has run as often
// as its forward did in training mode. Both backends wrap their layers that have parameters
// (after registering them) in it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace retinanet::model {

// Called from backward's thread with a range [first, first + count) of the backend's parameters.
using gradients_ready_fn = std::function<void(std::size_t first, std::size_t count)>;

// Layer: the backend's layer base class (forward, backward, clear); Tensor: its activation.
template <class Layer, class Tensor>
class gradient_signal final : public Layer {
public:
    // `listener` is read at each backward (it may be set after the network is built); `training`
    // says whether a forward keeps state for a backward.
    gradient_signal(std::unique_ptr<Layer> inner, std::size_t first, std::size_t count, const gradients_ready_fn& listener,
                    std::function<bool()> training)
        : inner_(std::move(inner)), first_(first), count_(count), listener_(listener), training_(std::move(training)) {}

    Tensor forward(const Tensor& x) override {
        if (training_()) ++pending_;
        return inner_->forward(x);
    }
    Tensor backward(const Tensor& dy) override {
        Tensor dx = inner_->backward(dy);
        if (pending_ > 0 && --pending_ == 0 && listener_) listener_(first_, count_);
        return dx;
    }
    void clear() override {
        pending_ = 0;
        inner_->clear();
    }

private:
    std::unique_ptr<Layer> inner_;
    std::size_t first_, count_;
    const gradients_ready_fn& listener_;
    std::function<bool()> training_;
    int pending_ = 0;  // forwards of this batch not yet matched by a backward
};

}  // namespace retinanet::model
