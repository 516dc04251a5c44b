// Feature Pyramid Network (Lin et al. 2017) with RetinaNet's P6 and P7:
//   inner_i = 1x1 conv(C_i),  top-down: inner_i += nearest-upsample(inner_{i+1}),  P_i = 3x3 conv(inner_i)
//   P6 = 3x3/2 conv(C5, or P5 in torchvision v1),  P7 = 3x3/2 conv(ReLU(P6))
// Names follow torchvision: backbone.fpn.inner_blocks.i.0, layer_blocks.i.0, extra_blocks.p6/p7.
#pragma once

#include <array>
#include <memory>
#include <random>

#include "building_blocks.hpp"

namespace retinanet::model {

template <class T>
class fpn final {
public:
    explicit fpn(const model_config& c);
    std::array<cpu::tensor<T>, 5> forward(const std::array<cpu::tensor<T>, 3>& c);  // P3..P7
    std::array<cpu::tensor<T>, 3> backward(std::array<cpu::tensor<T>, 5>& dp);      // dC3..dC5 (dp consumed)
    void parameters(cpu::parameter_list<T>& out);
    void clear();
    void initialize(std::mt19937_64& rng);

private:
    std::array<std::unique_ptr<cpu::conv2d<T>>, 3> inner_, layer_;
    std::array<cpu::upsample_nearest<T>, 2> up_;
    std::unique_ptr<cpu::conv2d<T>> p6_, p7_;
    cpu::relu<T> p7_relu_;
    bool p6_from_p5_;
};

}  // namespace retinanet::model
