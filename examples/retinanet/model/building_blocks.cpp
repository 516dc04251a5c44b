#include "building_blocks.hpp"

#include <algorithm>
#include <cmath>

namespace retinanet::model {

template <class T>
cpu::layer<T>* add_norm(cpu::sequential<T>& seq, norm_kind kind, const std::string& name, int channels, int groups, cpu::activation act) {
    switch (kind) {
        case norm_kind::group: {
            // The largest group count <= groups that divides the channels.
            int g = std::min(groups, channels);
            while (channels % g != 0) --g;
            return &seq.add(std::make_unique<cpu::group_norm<T>>(name, channels, g, act));
        }
        case norm_kind::frozen_batch: return &seq.add(std::make_unique<cpu::frozen_batch_norm<T>>(name, channels, act));
        case norm_kind::none: break;
    }
    if (act == cpu::activation::relu) seq.add(std::make_unique<cpu::relu<T>>());
    return nullptr;
}

template <class T>
void init_normal(cpu::conv2d<T>& conv, double std, std::mt19937_64& rng) {
    std::normal_distribution<double> d(0.0, std);
    for (auto& w : conv.weight.value) w = static_cast<T>(d(rng));
    std::fill(conv.bias.value.begin(), conv.bias.value.end(), T(0));
}

template <class T>
void init_kaiming_fan_out(cpu::conv2d<T>& conv, std::mt19937_64& rng) {
    const auto& o = conv.options();
    init_normal(conv, std::sqrt(2.0 / (o.out_channels * o.kernel * o.kernel)), rng);
}

template <class T>
void init_kaiming_uniform_a1(cpu::conv2d<T>& conv, std::mt19937_64& rng) {
    const auto& o = conv.options();
    const double bound = std::sqrt(3.0 / (o.in_channels * o.kernel * o.kernel));
    std::uniform_real_distribution<double> d(-bound, bound);
    for (auto& w : conv.weight.value) w = static_cast<T>(d(rng));
    std::fill(conv.bias.value.begin(), conv.bias.value.end(), T(0));
}

#define RETINANET_BLOCKS(T)                                                                                  \
    template cpu::layer<T>* add_norm<T>(cpu::sequential<T>&, norm_kind, const std::string&, int, int, cpu::activation); \
    template void init_normal<T>(cpu::conv2d<T>&, double, std::mt19937_64&);                                \
    template void init_kaiming_fan_out<T>(cpu::conv2d<T>&, std::mt19937_64&);                               \
    template void init_kaiming_uniform_a1<T>(cpu::conv2d<T>&, std::mt19937_64&);
RETINANET_BLOCKS(float)
RETINANET_BLOCKS(double)
#undef RETINANET_BLOCKS

}  // namespace retinanet::model
