// A chain of layers: forward in order, backward in reverse.
#pragma once

#include <memory>
#include <vector>

#include "layer.hpp"

namespace retinanet::cpu {

template <class T>
class sequential final : public layer<T> {
public:
    template <class L>
    L& add(std::unique_ptr<L> l) {
        L& ref = *l;
        layers_.push_back(std::move(l));
        return ref;
    }
    bool empty() const noexcept { return layers_.empty(); }

    tensor<T> forward(const tensor<T>& x) override {
        if (layers_.empty()) return x;
        tensor<T> y = layers_.front()->forward(x);
        for (std::size_t i = 1; i < layers_.size(); ++i) y = layers_[i]->forward(y);
        return y;
    }
    tensor<T> backward(const tensor<T>& dy) override {
        if (layers_.empty()) return dy;
        tensor<T> d = layers_.back()->backward(dy);
        for (std::size_t i = layers_.size() - 1; i-- > 0;) d = layers_[i]->backward(d);
        return d;
    }
    void parameters(parameter_list<T>& out) override {
        for (auto& l : layers_) l->parameters(out);
    }
    void clear() override {
        for (auto& l : layers_) l->clear();
    }

private:
    std::vector<std::unique_ptr<layer<T>>> layers_;
};

}  // namespace retinanet::cpu
