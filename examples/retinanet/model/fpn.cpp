#include "fpn.hpp"

namespace retinanet::model {

template <class T>
fpn<T>::fpn(const model_config& c) : p6_from_p5_(c.p6_from_p5) {
    const int f = c.fpn_channels;
    const std::string base = "backbone.fpn";
    for (int i = 0; i < 3; ++i) {
        const std::string n = std::to_string(i);
        inner_[i] = std::make_unique<cpu::conv2d<T>>(base + ".inner_blocks." + n + ".0",
                                                    cpu::conv2d_options{.in_channels = c.stage_channels(i + 1), .out_channels = f, .kernel = 1});
        layer_[i] = std::make_unique<cpu::conv2d<T>>(base + ".layer_blocks." + n + ".0",
                                                    cpu::conv2d_options{.in_channels = f, .out_channels = f, .kernel = 3});
    }
    const int p6_in = c.p6_from_p5 ? f : c.c5_channels();
    p6_ = std::make_unique<cpu::conv2d<T>>(base + ".extra_blocks.p6", cpu::conv2d_options{.in_channels = p6_in, .out_channels = f, .kernel = 3, .stride = 2});
    p7_ = std::make_unique<cpu::conv2d<T>>(base + ".extra_blocks.p7", cpu::conv2d_options{.in_channels = f, .out_channels = f, .kernel = 3, .stride = 2});
}

template <class T>
std::array<cpu::tensor<T>, 5> fpn<T>::forward(const std::array<cpu::tensor<T>, 3>& c) {
    std::array<cpu::tensor<T>, 5> p;
    cpu::tensor<T> inner = inner_[2]->forward(c[2]);
    p[2] = layer_[2]->forward(inner);
    for (int i = 1; i >= 0; --i) {
        cpu::tensor<T> lateral = inner_[i]->forward(c[i]);
        up_[i].set_output_size(lateral.h, lateral.w);
        cpu::add_in_place(lateral, up_[i].forward(inner));
        inner = std::move(lateral);
        p[i] = layer_[i]->forward(inner);
    }
    p[3] = p6_->forward(p6_from_p5_ ? p[2] : c[2]);
    p[4] = p7_->forward(p7_relu_.forward(p[3]));
    return p;
}

template <class T>
std::array<cpu::tensor<T>, 3> fpn<T>::backward(std::array<cpu::tensor<T>, 5>& dp) {
    std::array<cpu::tensor<T>, 3> dc;
    cpu::add_in_place(dp[3], p7_relu_.backward(p7_->backward(dp[4])));
    cpu::tensor<T> d_p6_input = p6_->backward(dp[3]);
    if (p6_from_p5_) cpu::add_in_place(dp[2], d_p6_input);
    // Reverse of the top-down pass: P3's branch ran last, so it unwinds first.
    cpu::tensor<T> d_inner = layer_[0]->backward(dp[0]);
    for (int i = 0; i < 2; ++i) {
        dc[i] = inner_[i]->backward(d_inner);
        cpu::tensor<T> d_upper = up_[i].backward(d_inner);
        cpu::add_in_place(d_upper, layer_[i + 1]->backward(dp[i + 1]));
        d_inner = std::move(d_upper);
    }
    dc[2] = inner_[2]->backward(d_inner);
    if (!p6_from_p5_) cpu::add_in_place(dc[2], d_p6_input);
    return dc;
}

template <class T>
void fpn<T>::parameters(cpu::parameter_list<T>& out) {
    for (int i = 0; i < 3; ++i) inner_[i]->parameters(out);
    for (int i = 0; i < 3; ++i) layer_[i]->parameters(out);
    p6_->parameters(out);
    p7_->parameters(out);
}

template <class T>
void fpn<T>::clear() {
    for (int i = 0; i < 3; ++i) inner_[i]->clear(), layer_[i]->clear();
    for (auto& u : up_) u.clear();
    p6_->clear();
    p7_->clear();
    p7_relu_.clear();
}

template <class T>
void fpn<T>::initialize(std::mt19937_64& rng) {
    for (int i = 0; i < 3; ++i) init_kaiming_uniform_a1(*inner_[i], rng), init_kaiming_uniform_a1(*layer_[i], rng);
    init_kaiming_uniform_a1(*p6_, rng);
    init_kaiming_uniform_a1(*p7_, rng);
}

template class fpn<float>;
template class fpn<double>;

}  // namespace retinanet::model
