// A chain of layers over any backend's layer interface (network_backend.hpp): forward in order,
// backward in reverse. An empty chain is the identity.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace retinanet::model {

// Layer: the backend's layer base class (forward, backward, clear); Tensor: its activation.
template <class Layer, class Tensor>
class sequential final : public Layer {
public:
    template <class L>
    L& add(std::unique_ptr<L> l) {
        L& ref = *l;
        layers_.push_back(std::move(l));
        return ref;
    }
    bool empty() const noexcept { return layers_.empty(); }

    Tensor forward(const Tensor& x) override {
        if (layers_.empty()) return x;
        Tensor y = layers_.front()->forward(x);
        for (std::size_t i = 1; i < layers_.size(); ++i) y = layers_[i]->forward(y);
        return y;
    }
    Tensor backward(const Tensor& dy) override {
        if (layers_.empty()) return dy;
        Tensor d = layers_.back()->backward(dy);
        for (std::size_t i = layers_.size() - 1; i-- > 0;) d = layers_[i]->backward(d);
        return d;
    }
    void clear() override {
        for (auto& l : layers_) l->clear();
    }

private:
    std::vector<std::unique_ptr<Layer>> layers_;
};

}  // namespace retinanet::model
