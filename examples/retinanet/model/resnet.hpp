// The ResNet backbone (He et al. 2016) returning C3, C4, C5 (strides 8, 16, 32), over any backend
// (backend.hpp). Parameter names follow torchvision's state dicts (backbone.body.conv1,
// backbone.body.layer2.0.bn1, ...) whatever the normalization, so torchvision weights import by name.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "building_blocks.hpp"

namespace retinanet::model {

// out = ReLU(main(x) + shortcut(x)); main = conv-norm-ReLU-conv-norm (basic) or
// 1x1-norm-ReLU-3x3(stride)-norm-ReLU-1x1-norm (bottleneck); shortcut = identity or 1x1 conv + norm.
template <network_backend B>
class residual_block {
public:
    using tensor = typename B::tensor;

    residual_block(B& b, const model_config& c, const std::string& name, int in_channels, int width, int stride)
        : b_(b), out_relu_(b.relu()) {
        const bool bottleneck = c.block == block_kind::bottleneck;
        out_channels_ = bottleneck ? 4 * width : width;
        if (bottleneck) {
            conv(main_, name + ".conv1", in_channels, width, 1, 1);
            norm(main_, c, name + ".bn1", width, true);
            conv(main_, name + ".conv2", width, width, 3, stride);
            norm(main_, c, name + ".bn2", width, true);
            conv(main_, name + ".conv3", width, out_channels_, 1, 1);
            if (norm(main_, c, name + ".bn3", out_channels_, false)) last_norm_ = name + ".bn3";
        } else {
            conv(main_, name + ".conv1", in_channels, width, 3, stride);
            norm(main_, c, name + ".bn1", width, true);
            conv(main_, name + ".conv2", width, width, 3, 1);
            if (norm(main_, c, name + ".bn2", width, false)) last_norm_ = name + ".bn2";
        }
        if (stride != 1 || in_channels != out_channels_) {
            conv(shortcut_, name + ".downsample.0", in_channels, out_channels_, 1, stride);
            norm(shortcut_, c, name + ".downsample.1", out_channels_, false);
        }
    }

    tensor forward(const tensor& x) {
        tensor y = main_.forward(x);
        if (shortcut_.empty()) return out_relu_->forward_sum(std::move(y), x);
        return out_relu_->forward_sum(std::move(y), shortcut_.forward(x));
    }
    tensor backward(const tensor& dy) {
        const tensor d = out_relu_->backward(dy);
        tensor dx = main_.backward(d);
        b_.add_in_place(dx, shortcut_.backward(d));  // an empty shortcut returns d itself
        return dx;
    }
    void clear() {
        main_.clear();
        shortcut_.clear();
        out_relu_->clear();
    }
    // He initialization; the last norm's gain 0 with zero_init_residual (Goyal et al. 2017: every
    // block starts as the identity). GroupNorm only: a frozen BatchNorm keeps imported statistics.
    template <class Initializer>
    void initialize(const model_config& c, Initializer& init) const {
        for (const auto& name : convs_) init.kaiming_normal_fan_out(name);
        if (c.zero_init_residual && c.backbone_norm == norm_kind::group && !last_norm_.empty()) init.fill(last_norm_ + ".weight", 0.0);
    }
    int out_channels() const noexcept { return out_channels_; }

private:
    void conv(typename B::sequential& seq, const std::string& name, int in, int out, int kernel, int stride) {
        seq.add(b_.conv2d(name, {.in_channels = in, .out_channels = out, .kernel = kernel, .stride = stride, .bias = false}));
        convs_.push_back(name);
    }
    bool norm(typename B::sequential& seq, const model_config& c, const std::string& name, int channels, bool relu_after) {
        return add_norm(b_, seq, c.backbone_norm, name, channels, c.norm_groups, relu_after);
    }

    B& b_;
    typename B::sequential main_, shortcut_;
    std::unique_ptr<typename B::relu_layer> out_relu_;
    std::vector<std::string> convs_;  // main's, then the shortcut's
    std::string last_norm_;           // main's last normalization, if any
    int out_channels_ = 0;
};

// Stem conv (kernel, stride 2) + norm + ReLU [+ 3x3/2 max-pool], then four stages of blocks (C2..C5).
template <network_backend B>
class resnet {
public:
    using tensor = typename B::tensor;

    resnet(B& b, const model_config& c) : b_(b) {
        const std::string base = "backbone.body";
        stem_.add(b.conv2d(base + ".conv1", {.in_channels = 3, .out_channels = c.stem_channels, .kernel = c.stem_kernel,
                                                           .stride = 2, .bias = false, .input_grad = false}));
        add_norm(b, stem_, c.backbone_norm, base + ".bn1", c.stem_channels, c.norm_groups, true);
        if (c.stem_pool) stem_.add(b.max_pool2d(3, 2, 1));
        int in = c.stem_channels;
        for (int s = 0; s < 4; ++s) {
            require(c.blocks[s] > 0 && c.widths[s] > 0, "resnet", "blocks and widths of stage " + std::to_string(s + 1), "positive",
                    concat(c.blocks[s], " blocks of width ", c.widths[s]));
            for (int k = 0; k < c.blocks[s]; ++k) {
                const int stride = (k == 0 && (s > 0 || !c.stem_pool)) ? 2 : 1;
                stages_[s].push_back(std::make_unique<residual_block<B>>(
                    b, c, base + ".layer" + std::to_string(s + 1) + "." + std::to_string(k), in, c.widths[s], stride));
                in = stages_[s].back()->out_channels();
            }
        }
    }

    std::array<tensor, 3> forward(const tensor& images) {  // C3, C4, C5
        tensor x = stem_.forward(images);
        for (auto& block : stages_[0]) x = block->forward(x);
        std::array<tensor, 3> c;
        for (int s = 1; s < 4; ++s) {
            for (auto& block : stages_[s]) x = block->forward(x);
            c[s - 1] = x;
        }
        return c;
    }
    void backward(std::array<tensor, 3>& grads) {  // dC3, dC4, dC5 (consumed)
        tensor d = std::move(grads[2]);
        for (int s = 3; s >= 0; --s) {
            if (s < 3 && s >= 1) b_.add_in_place(d, grads[s - 1]);  // C_{s+2} feeds the FPN too
            for (auto it = stages_[s].rbegin(); it != stages_[s].rend(); ++it) d = (*it)->backward(d);
        }
        stem_.backward(d);
    }
    void clear() {
        stem_.clear();
        for (auto& stage : stages_)
            for (auto& block : stage) block->clear();
    }
    template <class Initializer>
    void initialize(const model_config& c, Initializer& init) const {
        init.kaiming_normal_fan_out("backbone.body.conv1");
        for (const auto& stage : stages_)
            for (const auto& block : stage) block->initialize(c, init);
    }

private:
    B& b_;
    typename B::sequential stem_;
    std::array<std::vector<std::unique_ptr<residual_block<B>>>, 4> stages_;
};

}  // namespace retinanet::model
