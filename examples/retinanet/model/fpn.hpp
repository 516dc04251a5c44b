// Feature Pyramid Network (Lin et al. 2017) with RetinaNet's P6 and P7, over any backend:
//   inner_i = 1x1 conv(C_i),  top-down: inner_i += nearest-upsample(inner_{i+1}),  P_i = 3x3 conv(inner_i)
//   P6 = 3x3/2 conv(C5, or P5 in torchvision v1),  P7 = 3x3/2 conv(ReLU(P6))
// Names follow torchvision: backbone.fpn.inner_blocks.i.0, layer_blocks.i.0, extra_blocks.p6/p7.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <utility>

#include "building_blocks.hpp"

namespace retinanet::model {

template <network_backend B>
class fpn {
public:
    using tensor = typename B::tensor;

    fpn(B& b, const model_config& c) : b_(b), p6_from_p5_(c.p6_from_p5) {
        const int f = c.fpn_channels;
        for (int i = 0; i < 3; ++i)  // the inner blocks first, then the layer blocks: torchvision's parameter order
            inner_[i] = b.conv2d(inner_name(i), {.in_channels = c.stage_channels(i + 1), .out_channels = f, .kernel = 1});
        for (int i = 0; i < 3; ++i) layer_[i] = b.conv2d(layer_name(i), {.in_channels = f, .out_channels = f, .kernel = 3});
        const int p6_in = c.p6_from_p5 ? f : c.c5_channels();
        p6_ = b.conv2d(base + ".extra_blocks.p6", {.in_channels = p6_in, .out_channels = f, .kernel = 3, .stride = 2});
        p7_ = b.conv2d(base + ".extra_blocks.p7", {.in_channels = f, .out_channels = f, .kernel = 3, .stride = 2});
        for (auto& up : up_) up = b.upsample();
        p7_relu_ = b.relu();
    }

    std::array<tensor, 5> forward(const std::array<tensor, 3>& c) {  // P3..P7
        std::array<tensor, 5> p;
        tensor inner = inner_[2]->forward(c[2]);
        p[2] = layer_[2]->forward(inner);
        for (int i = 1; i >= 0; --i) {
            tensor lateral = inner_[i]->forward(c[i]);
            up_[i]->set_output_size(lateral.h, lateral.w);
            b_.add_in_place(lateral, up_[i]->forward(inner));
            inner = std::move(lateral);
            p[i] = layer_[i]->forward(inner);
        }
        p[3] = p6_->forward(p6_from_p5_ ? p[2] : c[2]);
        p[4] = p7_->forward(p7_relu_->forward(p[3]));
        return p;
    }
    std::array<tensor, 3> backward(std::array<tensor, 5>& dp) {  // dC3..dC5 (dp consumed)
        std::array<tensor, 3> dc;
        b_.add_in_place(dp[3], p7_relu_->backward(p7_->backward(dp[4])));
        tensor d_p6_input = p6_->backward(dp[3]);
        if (p6_from_p5_) b_.add_in_place(dp[2], d_p6_input);
        // Reverse of the top-down pass: P3's branch ran last, so it unwinds first.
        tensor d_inner = layer_[0]->backward(dp[0]);
        for (int i = 0; i < 2; ++i) {
            dc[i] = inner_[i]->backward(d_inner);
            tensor d_upper = up_[i]->backward(d_inner);
            b_.add_in_place(d_upper, layer_[i + 1]->backward(dp[i + 1]));
            d_inner = std::move(d_upper);
        }
        dc[2] = inner_[2]->backward(d_inner);
        if (!p6_from_p5_) b_.add_in_place(dc[2], d_p6_input);
        return dc;
    }
    void clear() {
        for (int i = 0; i < 3; ++i) inner_[i]->clear(), layer_[i]->clear();
        for (auto& up : up_) up->clear();
        p6_->clear();
        p7_->clear();
        p7_relu_->clear();
    }
    template <class Initializer>
    void initialize(Initializer& init) const {
        for (int i = 0; i < 3; ++i) init.kaiming_uniform_a1(inner_name(i)), init.kaiming_uniform_a1(layer_name(i));
        init.kaiming_uniform_a1(base + ".extra_blocks.p6");
        init.kaiming_uniform_a1(base + ".extra_blocks.p7");
    }

private:
    using layer_ptr = std::unique_ptr<typename B::layer>;
    static inline const std::string base = "backbone.fpn";
    static std::string inner_name(int i) { return base + ".inner_blocks." + std::to_string(i) + ".0"; }
    static std::string layer_name(int i) { return base + ".layer_blocks." + std::to_string(i) + ".0"; }

    B& b_;
    std::array<layer_ptr, 3> inner_, layer_;
    std::array<std::unique_ptr<typename B::upsample_layer>, 2> up_;
    layer_ptr p6_, p7_;
    std::unique_ptr<typename B::relu_layer> p7_relu_;
    bool p6_from_p5_;
};

}  // namespace retinanet::model
