#include "head.hpp"

namespace retinanet::model {

template <class T>
subnet<T>::subnet(const model_config& c, const std::string& name, const std::string& output_name, int outputs_per_anchor) {
    const int f = c.fpn_channels;
    const bool norm = c.head_norm != norm_kind::none;
    for (int i = 0; i < c.head_convs; ++i) {
        const std::string n = name + ".conv." + std::to_string(i);
        convs_.push_back(&body_.add(std::make_unique<cpu::conv2d<T>>(
            n + ".0", cpu::conv2d_options{.in_channels = f, .out_channels = f, .kernel = 3, .bias = !norm})));
        add_norm(body_, c.head_norm, n + ".1", f, c.norm_groups, cpu::activation::relu);
    }
    output_ = &body_.add(std::make_unique<cpu::conv2d<T>>(
        name + "." + output_name,
        cpu::conv2d_options{.in_channels = f, .out_channels = outputs_per_anchor * c.anchors_per_cell(), .kernel = 3}));
}

template <class T>
void subnet<T>::initialize(std::mt19937_64& rng, double output_bias) {
    for (auto* conv : convs_) init_normal(*conv, 0.01, rng);
    init_normal(*output_, 0.01, rng);
    std::fill(output_->bias.value.begin(), output_->bias.value.end(), static_cast<T>(output_bias));
}

template class subnet<float>;
template class subnet<double>;

}  // namespace retinanet::model
