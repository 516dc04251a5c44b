// RetinaNet's class and box subnets (Lin et al. 2017, section 4), over any backend: shared across
// pyramid levels, head_convs x (3x3 conv [+ norm] + ReLU) then a 3x3 conv to K A (class) or 4 A
// (box) outputs. Init: N(0, 0.01) weights, 0 bias, class bias -log((1 - pi) / pi) so every anchor
// starts at foreground probability pi (equation (5)'s stability argument).
// Names: head.classification_head.conv.i.0 (conv) / .i.1 (norm), .cls_logits; head.regression_head.*, .bbox_reg.
#pragma once

#include <string>
#include <vector>

#include "building_blocks.hpp"

namespace retinanet::model {

template <network_backend B>
class subnet {
public:
    using tensor = typename B::tensor;

    subnet(B& b, const model_config& c, const std::string& name, const std::string& output_name, int outputs_per_anchor) {
        const int f = c.fpn_channels;
        const bool norm = c.head_norm != norm_kind::none;
        for (int i = 0; i < c.head_convs; ++i) {
            const std::string n = name + ".conv." + std::to_string(i);
            body_.add(b.conv2d(n + ".0", {.in_channels = f, .out_channels = f, .kernel = 3, .bias = !norm}));
            convs_.push_back(n + ".0");
            add_norm(b, body_, c.head_norm, n + ".1", f, c.norm_groups, true);
        }
        output_ = name + "." + output_name;
        body_.add(b.conv2d(output_, {.in_channels = f, .out_channels = outputs_per_anchor * c.anchors_per_cell(), .kernel = 3}));
    }
    tensor forward(const tensor& x) { return body_.forward(x); }
    tensor backward(const tensor& dy) { return body_.backward(dy); }
    void clear() { body_.clear(); }
    template <class Initializer>
    void initialize(Initializer& init, double output_bias) const {
        for (const auto& conv : convs_) init.normal(conv, 0.01);
        init.normal(output_, 0.01);
        init.fill(output_ + ".bias", output_bias);
    }

private:
    typename B::sequential body_;
    std::vector<std::string> convs_;
    std::string output_;
};

}  // namespace retinanet::model
