// The example RetinaNet on a backend: the CPU model's network (model/retinanet_model.hpp) built
// layer for layer from the same configuration, with the same names, mirroring a host
// model::retinanet_model's parameters (parameter_store.hpp). Construction fails with focal::error
// when the two networks' parameters differ in any name or shape, so a checkpoint of either is a
// checkpoint of both. forward() returns the head outputs in focal's anchor order ([N][A][K] and
// [N][A][4], backend memory); backward() takes their gradients in the same layout.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <focal/core/size2d.hpp>

#include "layers.hpp"
#include "model/retinanet_model.hpp"

namespace retinanet::cuda {

struct device_head_outputs {
    int batch = 0, classes = 0;
    index anchors = 0;                       // per image
    std::shared_ptr<float> cls_logits;       // [N][A][K]
    std::shared_ptr<float> bbox_regression;  // [N][A][4]
    std::vector<focal::size2d> grids;        // P3..P7
};

template <class Backend>
class network {
public:
    network(Backend& backend, model::retinanet_model<float>& host)
        : host_(host), ctx_{backend, parameter_store<Backend>(backend, host.parameters()), true} {
        const auto& c = host.config();
        build_backbone(c);
        build_fpn(c);
        build_head(cls_head_, c, "head.classification_head", "cls_logits", c.num_classes);
        build_head(box_head_, c, "head.regression_head", "bbox_reg", 4);
        ctx_.store.allocate();
    }

    // images: [N][H][W][3], normalized, H and W multiples of the anchors' size_divisibility.
    device_head_outputs forward(const device_tensor& images) {
        detail::require_channels(images, 3, "cuda::network::forward");
        auto p = fpn_forward(backbone_forward(images));
        const auto& c = host_.config();
        const int a = c.anchors_per_cell();
        device_head_outputs out;
        out.batch = images.n;
        out.classes = c.num_classes;
        for (const auto& level : p) {
            out.grids.push_back({level.h, level.w});
            out.anchors += static_cast<index>(level.h) * level.w * a;
        }
        out.cls_logits = ctx_.template scratch<float>(out.batch * out.anchors * out.classes);
        out.bbox_regression = ctx_.template scratch<float>(out.batch * out.anchors * 4);
        index offset = 0;
        for (const auto& level : p) {  // P3 first: backward unwinds the shared heads from P7
            const index cells = static_cast<index>(level.h) * level.w * a;
            const auto cls = cls_head_.forward(level);
            ctx_.backend.for_each(cls.size(), level_copy_op{cls.get(), out.cls_logits.get(), cells * out.classes, offset, out.anchors,
                                                            out.classes, true});
            const auto box = box_head_.forward(level);
            ctx_.backend.for_each(box.size(), level_copy_op{box.get(), out.bbox_regression.get(), cells * 4, offset, out.anchors, 4, true});
            offset += cells;
        }
        grids_ = out.grids;
        batch_ = out.batch;
        return out;
    }

    // d_cls [N][A][K], d_box [N][A][4] of the last forward; accumulates the parameters' gradients.
    void backward(const float* d_cls, const float* d_box) {
        focal::detail::require(!grids_.empty(), "cuda::network::backward", "a forward in training mode", "before backward", "none pending");
        const auto& c = host_.config();
        const int a = c.anchors_per_cell(), k = c.num_classes;
        index total = 0;
        for (const auto& g : grids_) total += g.height * g.width * a;
        std::array<device_tensor, 5> dp;
        index offset = total;
        for (int l = 4; l >= 0; --l) {
            const int h = static_cast<int>(grids_[l].height), w = static_cast<int>(grids_[l].width);
            const index cells = static_cast<index>(h) * w * a;
            offset -= cells;
            auto dbox = ctx_.tensor(4 * a, batch_, h, w), dcls = ctx_.tensor(k * a, batch_, h, w);
            ctx_.backend.for_each(dbox.size(), level_copy_op{d_box, dbox.get(), cells * 4, offset, total, 4, false});
            ctx_.backend.for_each(dcls.size(), level_copy_op{d_cls, dcls.get(), cells * k, offset, total, k, false});
            dp[l] = box_head_.backward(dbox);
            add(dp[l], cls_head_.backward(dcls));
        }
        backbone_backward(fpn_backward(dp));
        grids_.clear();
    }

    // Training mode keeps what backward needs; inference keeps nothing.
    void set_grad_enabled(bool enabled) { ctx_.grad_enabled = enabled; }
    void zero_grad() { ctx_.store.zero_grad(); }
    void clear() {  // drops cached forward state (after an aborted step)
        stem_.clear();
        for (auto& stage : stages_)
            for (auto& b : stage) b->main.clear(), b->shortcut.clear(), b->out->clear();
        for (auto& l : fpn_convs_) l->clear();
        p7_relu_->clear();
        cls_head_.clear();
        box_head_.clear();
        grids_.clear();
    }
    parameter_store<Backend>& parameters() noexcept { return ctx_.store; }
    model::retinanet_model<float>& host() noexcept { return host_; }
    context<Backend>& ctx() noexcept { return ctx_; }

private:
    struct block {
        sequential<Backend> main, shortcut;
        std::unique_ptr<relu<Backend>> out;
    };
    using conv = conv2d<Backend>;

    void add(device_tensor& a, const device_tensor& b) { ctx_.backend.for_each(a.size(), add_op{a.get(), b.get()}); }

    conv& add_conv(sequential<Backend>& seq, const std::string& name, cpu::conv2d_options o) {
        return seq.add(std::make_unique<conv>(ctx_, name, o));
    }
    // model::add_norm's choices: the largest group count <= groups dividing the channels.
    void add_norm(sequential<Backend>& seq, model::norm_kind kind, const std::string& name, int channels, int groups, bool relu_after) {
        switch (kind) {
            case model::norm_kind::group: {
                int g = std::min(groups, channels);
                while (channels % g != 0) --g;
                seq.add(std::make_unique<group_norm<Backend>>(ctx_, name, channels, g, relu_after));
                return;
            }
            case model::norm_kind::frozen_batch: seq.add(std::make_unique<frozen_batch_norm<Backend>>(ctx_, name, channels, relu_after)); return;
            case model::norm_kind::none: break;
        }
        if (relu_after) seq.add(std::make_unique<relu<Backend>>(ctx_));
    }

    // ---- ResNet (model/resnet.cpp) ----
    void build_backbone(const model::model_config& c) {
        const std::string base = "backbone.body";
        add_conv(stem_, base + ".conv1",
                 {.in_channels = 3, .out_channels = c.stem_channels, .kernel = c.stem_kernel, .stride = 2, .bias = false, .input_grad = false});
        add_norm(stem_, c.backbone_norm, base + ".bn1", c.stem_channels, c.norm_groups, true);
        if (c.stem_pool) stem_.add(std::make_unique<max_pool2d<Backend>>(ctx_, 3, 2, 1));
        int in = c.stem_channels;
        for (int s = 0; s < 4; ++s)
            for (int b = 0; b < c.blocks[s]; ++b) {
                const int stride = (b == 0 && (s > 0 || !c.stem_pool)) ? 2 : 1;
                stages_[s].push_back(make_block(c, base + ".layer" + std::to_string(s + 1) + "." + std::to_string(b), in, c.widths[s], stride));
                in = c.block == model::block_kind::bottleneck ? 4 * c.widths[s] : c.widths[s];
            }
    }
    std::unique_ptr<block> make_block(const model::model_config& c, const std::string& name, int in, int width, int stride) {
        auto b = std::make_unique<block>();
        b->out = std::make_unique<relu<Backend>>(ctx_);
        const auto norm = [&](sequential<Backend>& seq, const std::string& n, int ch, bool r) {
            add_norm(seq, c.backbone_norm, n, ch, c.norm_groups, r);
        };
        const auto conv_options = [](int i, int o, int k, int s) {
            return cpu::conv2d_options{.in_channels = i, .out_channels = o, .kernel = k, .stride = s, .bias = false};
        };
        int out = width;
        if (c.block == model::block_kind::bottleneck) {
            out = 4 * width;
            add_conv(b->main, name + ".conv1", conv_options(in, width, 1, 1));
            norm(b->main, name + ".bn1", width, true);
            add_conv(b->main, name + ".conv2", conv_options(width, width, 3, stride));
            norm(b->main, name + ".bn2", width, true);
            add_conv(b->main, name + ".conv3", conv_options(width, out, 1, 1));
            norm(b->main, name + ".bn3", out, false);
        } else {
            add_conv(b->main, name + ".conv1", conv_options(in, width, 3, stride));
            norm(b->main, name + ".bn1", width, true);
            add_conv(b->main, name + ".conv2", conv_options(width, width, 3, 1));
            norm(b->main, name + ".bn2", width, false);
        }
        if (stride != 1 || in != out) {
            add_conv(b->shortcut, name + ".downsample.0", conv_options(in, out, 1, stride));
            norm(b->shortcut, name + ".downsample.1", out, false);
        }
        return b;
    }
    std::array<device_tensor, 3> backbone_forward(const device_tensor& images) {
        device_tensor x = stem_.forward(images);
        std::array<device_tensor, 3> c;
        for (int s = 0; s < 4; ++s) {
            for (auto& b : stages_[s]) {
                device_tensor y = b->main.forward(x);
                x = b->out->forward_sum(y, b->shortcut.empty() ? x : b->shortcut.forward(x));
            }
            if (s >= 1) c[s - 1] = x;
        }
        return c;
    }
    void backbone_backward(std::array<device_tensor, 3> grads) {
        device_tensor d = grads[2];
        for (int s = 3; s >= 0; --s) {
            if (s < 3 && s >= 1) add(d, grads[s - 1]);  // C_{s+2} feeds the FPN too
            for (auto it = stages_[s].rbegin(); it != stages_[s].rend(); ++it) {
                const device_tensor dsum = (*it)->out->backward(d);
                device_tensor dx = (*it)->main.backward(dsum);
                add(dx, (*it)->shortcut.backward(dsum));
                d = dx;
            }
        }
        stem_.backward(d);
    }

    // ---- FPN (model/fpn.cpp) ----
    void build_fpn(const model::model_config& c) {
        const int f = c.fpn_channels;
        const std::string base = "backbone.fpn";
        for (int i = 0; i < 3; ++i) {
            const std::string n = std::to_string(i);
            inner_[i] = &fpn_layer(base + ".inner_blocks." + n + ".0", {.in_channels = c.stage_channels(i + 1), .out_channels = f, .kernel = 1});
            layer_[i] = &fpn_layer(base + ".layer_blocks." + n + ".0", {.in_channels = f, .out_channels = f, .kernel = 3});
        }
        p6_from_p5_ = c.p6_from_p5;
        p6_ = &fpn_layer(base + ".extra_blocks.p6", {.in_channels = c.p6_from_p5 ? f : c.c5_channels(), .out_channels = f, .kernel = 3, .stride = 2});
        p7_ = &fpn_layer(base + ".extra_blocks.p7", {.in_channels = f, .out_channels = f, .kernel = 3, .stride = 2});
        p7_relu_ = std::make_unique<relu<Backend>>(ctx_);
    }
    conv& fpn_layer(const std::string& name, cpu::conv2d_options o) {
        fpn_convs_.push_back(std::make_unique<conv>(ctx_, name, o));
        return *fpn_convs_.back();
    }
    std::array<device_tensor, 5> fpn_forward(const std::array<device_tensor, 3>& c) {
        std::array<device_tensor, 5> p;
        device_tensor inner = inner_[2]->forward(c[2]);
        p[2] = layer_[2]->forward(inner);
        for (int i = 1; i >= 0; --i) {
            device_tensor lateral = inner_[i]->forward(c[i]);
            ctx_.backend.for_each(lateral.size(), upsample_op{inner.get(), lateral.get(), inner.h, inner.w, lateral.h, lateral.w, lateral.c, true});
            upper_[i] = {inner.h, inner.w};
            inner = lateral;
            p[i] = layer_[i]->forward(inner);
        }
        p[3] = p6_->forward(p6_from_p5_ ? p[2] : c[2]);
        p[4] = p7_->forward(p7_relu_->forward(p[3]));
        return p;
    }
    std::array<device_tensor, 3> fpn_backward(std::array<device_tensor, 5>& dp) {
        std::array<device_tensor, 3> dc;
        add(dp[3], p7_relu_->backward(p7_->backward(dp[4])));
        const device_tensor d_p6_input = p6_->backward(dp[3]);
        if (p6_from_p5_) add(dp[2], d_p6_input);
        device_tensor d_inner = layer_[0]->backward(dp[0]);
        for (int i = 0; i < 2; ++i) {
            dc[i] = inner_[i]->backward(d_inner);
            device_tensor d_upper = ctx_.tensor(d_inner.c, d_inner.n, upper_[i][0], upper_[i][1]);
            ctx_.backend.for_each(d_upper.size(), upsample_backward_op{d_inner.get(), d_upper.get(), d_upper.h, d_upper.w, d_inner.h, d_inner.w,
                                                                       d_inner.c});
            add(d_upper, layer_[i + 1]->backward(dp[i + 1]));
            d_inner = d_upper;
        }
        dc[2] = inner_[2]->backward(d_inner);
        if (!p6_from_p5_) add(dc[2], d_p6_input);
        return dc;
    }

    // ---- heads (model/head.cpp) ----
    void build_head(sequential<Backend>& head, const model::model_config& c, const std::string& name, const std::string& output_name,
                    int outputs_per_anchor) {
        const int f = c.fpn_channels;
        const bool norm = c.head_norm != model::norm_kind::none;
        for (int i = 0; i < c.head_convs; ++i) {
            const std::string n = name + ".conv." + std::to_string(i);
            add_conv(head, n + ".0", {.in_channels = f, .out_channels = f, .kernel = 3, .bias = !norm});
            add_norm(head, c.head_norm, n + ".1", f, c.norm_groups, true);
        }
        add_conv(head, name + "." + output_name, {.in_channels = f, .out_channels = outputs_per_anchor * c.anchors_per_cell(), .kernel = 3});
    }

    model::retinanet_model<float>& host_;
    context<Backend> ctx_;
    sequential<Backend> stem_;
    std::array<std::vector<std::unique_ptr<block>>, 4> stages_;
    std::vector<std::unique_ptr<conv>> fpn_convs_;
    std::array<conv*, 3> inner_{}, layer_{};
    conv* p6_ = nullptr;
    conv* p7_ = nullptr;
    std::unique_ptr<relu<Backend>> p7_relu_;
    bool p6_from_p5_ = false;
    std::array<std::array<int, 2>, 2> upper_{};  // the upsampled maps' sizes of the last forward
    sequential<Backend> cls_head_, box_head_;
    std::vector<focal::size2d> grids_;
    int batch_ = 0;
};

}  // namespace retinanet::cuda
