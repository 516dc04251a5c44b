// RetinaNet's class and box subnets (Lin et al. 2017, section 4): shared across pyramid levels,
// head_convs x (3x3 conv [+ norm] + ReLU) then a 3x3 conv to K A (class) or 4 A (box) outputs.
// Init: N(0, 0.01) weights, 0 bias, class bias -log((1 - pi) / pi) so every anchor starts at
// foreground probability pi (equation (5)'s stability argument).
// Names: head.classification_head.conv.i.0 (conv) / .i.1 (norm), .cls_logits; head.regression_head.*, .bbox_reg.
#pragma once

#include <memory>
#include <random>
#include <vector>

#include "building_blocks.hpp"

namespace retinanet::model {

template <class T>
class subnet final {
public:
    subnet(const model_config& c, const std::string& name, const std::string& output_name, int outputs_per_anchor);
    cpu::tensor<T> forward(const cpu::tensor<T>& x) { return body_.forward(x); }
    cpu::tensor<T> backward(const cpu::tensor<T>& dy) { return body_.backward(dy); }
    void parameters(cpu::parameter_list<T>& out) { body_.parameters(out); }
    void clear() { body_.clear(); }
    void initialize(std::mt19937_64& rng, double output_bias);

private:
    cpu::sequential<T> body_;
    std::vector<cpu::conv2d<T>*> convs_;
    cpu::conv2d<T>* output_ = nullptr;
};

}  // namespace retinanet::model
