// The ResNet backbone (He et al. 2016) returning C3, C4, C5 (strides 8, 16, 32). Parameter names
// follow torchvision's state dicts (backbone.body.conv1, backbone.body.layer2.0.bn1, ...) whatever
// the normalization, so torchvision weights import by name.
#pragma once

#include <array>
#include <random>
#include <vector>

#include "building_blocks.hpp"

namespace retinanet::model {

// out = ReLU(main(x) + shortcut(x)); main = conv-norm-ReLU-conv-norm (basic) or
// 1x1-norm-ReLU-3x3(stride)-norm-ReLU-1x1-norm (bottleneck); shortcut = identity or 1x1 conv + norm.
template <class T>
class residual_block final : public cpu::layer<T> {
public:
    residual_block(const model_config& c, const std::string& name, int in_channels, int width, int stride);
    cpu::tensor<T> forward(const cpu::tensor<T>& x) override;
    cpu::tensor<T> backward(const cpu::tensor<T>& dy) override;
    void parameters(cpu::parameter_list<T>& out) override;
    void clear() override;
    void initialize(const model_config& c, std::mt19937_64& rng);
    int out_channels() const noexcept { return out_channels_; }

private:
    cpu::sequential<T> main_, shortcut_;
    cpu::relu<T> out_relu_;
    std::vector<cpu::conv2d<T>*> convs_;
    cpu::layer<T>* last_norm_ = nullptr;
    int out_channels_;
};

template <class T>
class resnet final {
public:
    explicit resnet(const model_config& c);
    std::array<cpu::tensor<T>, 3> forward(const cpu::tensor<T>& images);  // C3, C4, C5
    void backward(std::array<cpu::tensor<T>, 3>& grads);                  // dC3, dC4, dC5 (consumed)
    void parameters(cpu::parameter_list<T>& out);
    void clear();
    void initialize(const model_config& c, std::mt19937_64& rng);

private:
    cpu::sequential<T> stem_;
    cpu::conv2d<T>* stem_conv_ = nullptr;
    std::array<std::vector<std::unique_ptr<residual_block<T>>>, 4> stages_;
};

}  // namespace retinanet::model
