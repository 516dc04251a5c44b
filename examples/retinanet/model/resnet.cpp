#include "resnet.hpp"

#include <focal/core/error.hpp>

namespace retinanet::model {
namespace {
template <class T>
cpu::conv2d<T>& add_conv(cpu::sequential<T>& seq, std::vector<cpu::conv2d<T>*>& convs, const std::string& name, int in, int out, int kernel,
                        int stride, bool input_grad = true) {
    auto& conv = seq.add(std::make_unique<cpu::conv2d<T>>(
        name, cpu::conv2d_options{.in_channels = in, .out_channels = out, .kernel = kernel, .stride = stride, .bias = false,
                                 .input_grad = input_grad}));
    convs.push_back(&conv);
    return conv;
}
template <class T>
cpu::layer<T>* add_backbone_norm(cpu::sequential<T>& seq, const model_config& c, const std::string& name, int channels,
                                cpu::activation act = cpu::activation::none) {
    return model::add_norm(seq, c.backbone_norm, name, channels, c.norm_groups, act);
}
constexpr auto fused_relu = cpu::activation::relu;
template <class T>
void run_blocks(std::vector<std::unique_ptr<residual_block<T>>>& blocks, cpu::tensor<T>& x) {
    for (auto& b : blocks) x = b->forward(x);
}
}  // namespace

template <class T>
residual_block<T>::residual_block(const model_config& c, const std::string& name, int in_channels, int width, int stride) {
    const bool bottleneck = c.block == block_kind::bottleneck;
    out_channels_ = bottleneck ? 4 * width : width;
    if (bottleneck) {
        add_conv(main_, convs_, name + ".conv1", in_channels, width, 1, 1);
        add_backbone_norm(main_, c, name + ".bn1", width, fused_relu);
        add_conv(main_, convs_, name + ".conv2", width, width, 3, stride);
        add_backbone_norm(main_, c, name + ".bn2", width, fused_relu);
        add_conv(main_, convs_, name + ".conv3", width, out_channels_, 1, 1);
        last_norm_ = add_backbone_norm(main_, c, name + ".bn3", out_channels_);
    } else {
        add_conv(main_, convs_, name + ".conv1", in_channels, width, 3, stride);
        add_backbone_norm(main_, c, name + ".bn1", width, fused_relu);
        add_conv(main_, convs_, name + ".conv2", width, width, 3, 1);
        last_norm_ = add_backbone_norm(main_, c, name + ".bn2", width);
    }
    if (stride != 1 || in_channels != out_channels_) {
        add_conv(shortcut_, convs_, name + ".downsample.0", in_channels, out_channels_, 1, stride);
        add_backbone_norm(shortcut_, c, name + ".downsample.1", out_channels_);
    }
}

template <class T>
cpu::tensor<T> residual_block<T>::forward(const cpu::tensor<T>& x) {
    cpu::tensor<T> y = main_.forward(x);
    if (shortcut_.empty()) return out_relu_.forward_sum(std::move(y), x);
    return out_relu_.forward_sum(std::move(y), shortcut_.forward(x));
}

template <class T>
cpu::tensor<T> residual_block<T>::backward(const cpu::tensor<T>& dy) {
    const cpu::tensor<T> d = out_relu_.backward(dy);
    cpu::tensor<T> dx = main_.backward(d);
    cpu::add_in_place(dx, shortcut_.backward(d));  // an empty shortcut returns d itself
    return dx;
}

template <class T>
void residual_block<T>::parameters(cpu::parameter_list<T>& out) {
    main_.parameters(out);
    shortcut_.parameters(out);
}

template <class T>
void residual_block<T>::clear() {
    main_.clear();
    shortcut_.clear();
    out_relu_.clear();
}

template <class T>
void residual_block<T>::initialize(const model_config& c, std::mt19937_64& rng) {
    for (auto* conv : convs_) init_kaiming_fan_out(*conv, rng);
    // Zero-initialized residual branches make every block start as the identity (Goyal et al. 2017).
    if (c.zero_init_residual && last_norm_ != nullptr)
        if (auto* gn = dynamic_cast<cpu::group_norm<T>*>(last_norm_)) std::fill(gn->weight.value.begin(), gn->weight.value.end(), T(0));
}

template <class T>
resnet<T>::resnet(const model_config& c) {
    const std::string base = "backbone.body";
    std::vector<cpu::conv2d<T>*> stem_convs;
    stem_conv_ = &add_conv(stem_, stem_convs, base + ".conv1", 3, c.stem_channels, c.stem_kernel, 2, false);
    add_backbone_norm(stem_, c, base + ".bn1", c.stem_channels, fused_relu);
    if (c.stem_pool) stem_.add(std::make_unique<cpu::max_pool2d<T>>(3, 2, 1));
    int in = c.stem_channels;
    for (int s = 0; s < 4; ++s) {
        focal::detail::require(c.blocks[s] > 0 && c.widths[s] > 0, "resnet", "blocks and widths of stage " + std::to_string(s + 1),
                               "positive", std::to_string(c.blocks[s]) + " blocks of width " + std::to_string(c.widths[s]));
        for (int b = 0; b < c.blocks[s]; ++b) {
            const int stride = (b == 0 && (s > 0 || !c.stem_pool)) ? 2 : 1;
            stages_[s].push_back(std::make_unique<residual_block<T>>(
                c, base + ".layer" + std::to_string(s + 1) + "." + std::to_string(b), in, c.widths[s], stride));
            in = stages_[s].back()->out_channels();
        }
    }
}

template <class T>
std::array<cpu::tensor<T>, 3> resnet<T>::forward(const cpu::tensor<T>& images) {
    cpu::tensor<T> x = stem_.forward(images);
    run_blocks(stages_[0], x);
    std::array<cpu::tensor<T>, 3> c;
    for (int s = 1; s < 4; ++s) {
        run_blocks(stages_[s], x);
        c[s - 1] = x;
    }
    return c;
}

template <class T>
void resnet<T>::backward(std::array<cpu::tensor<T>, 3>& grads) {
    cpu::tensor<T> d = std::move(grads[2]);
    for (int s = 3; s >= 0; --s) {
        if (s < 3 && s >= 1) cpu::add_in_place(d, grads[s - 1]);  // C_{s+2} feeds the FPN too
        for (auto it = stages_[s].rbegin(); it != stages_[s].rend(); ++it) d = (*it)->backward(d);
    }
    stem_.backward(d);
}

template <class T>
void resnet<T>::parameters(cpu::parameter_list<T>& out) {
    stem_.parameters(out);
    for (auto& stage : stages_)
        for (auto& b : stage) b->parameters(out);
}

template <class T>
void resnet<T>::clear() {
    stem_.clear();
    for (auto& stage : stages_)
        for (auto& b : stage) b->clear();
}

template <class T>
void resnet<T>::initialize(const model_config& c, std::mt19937_64& rng) {
    init_kaiming_fan_out(*stem_conv_, rng);
    for (auto& stage : stages_)
        for (auto& b : stage) b->initialize(c, rng);
}

template class residual_block<float>;
template class residual_block<double>;
template class resnet<float>;
template class resnet<double>;

}  // namespace retinanet::model
