// Normalization layers.
//   group_norm (Wu & He 2018): per image and group of C/G channels,
//     y = (x - mean) / sqrt(var + eps) * gamma_c + beta_c    (biased variance, as torch)
//   frozen_batch_norm (torchvision's FrozenBatchNorm2d, for imported weights):
//     y = x * scale_c + shift_c,  scale = gamma / sqrt(running_var + eps),  shift = beta - mean scale
// Both may apply the ReLU that follows them in the same pass (activation::relu): y = max(0, .),
// the same bits as a separate relu layer after them, without its pass over the activations.
#pragma once

#include <cstdint>
#include <vector>

#include "activation.hpp"
#include "layer.hpp"

namespace retinanet::cpu {

template <class T>
class group_norm final : public layer<T> {
public:
    group_norm(const std::string& name, int channels, int groups, activation act = activation::none, double eps = 1e-5);
    tensor<T> forward(const tensor<T>& x) override;
    tensor<T> backward(const tensor<T>& dy) override;
    void parameters(parameter_list<T>& out) override { out.insert(out.end(), {&weight, &bias}); }
    void clear() override { cache_.clear(); }

    parameter<T> weight, bias;  // gamma (init 1), beta (init 0); no weight decay

private:
    struct saved {
        buffer<T> normalized;  // x hat
        std::vector<T> inv_std;     // per (image, group)
        buffer<std::uint8_t> positive;  // the ReLU's mask (activation::relu)
        int n, h, w;
    };
    int channels_, groups_;
    activation act_;
    double eps_;
    std::vector<saved> cache_;
};

template <class T>
class frozen_batch_norm final : public layer<T> {
public:
    frozen_batch_norm(const std::string& name, int channels, activation act = activation::none, double eps = 1e-5);
    tensor<T> forward(const tensor<T>& x) override;
    tensor<T> backward(const tensor<T>& dy) override;
    // Listed (so checkpoints and imports carry them) but never trained.
    void parameters(parameter_list<T>& out) override { out.insert(out.end(), {&weight, &bias, &running_mean, &running_var}); }
    void clear() override { cache_.clear(); }

    parameter<T> weight, bias, running_mean, running_var;

private:
    int channels_;
    activation act_;
    double eps_;
    std::vector<buffer<std::uint8_t>> cache_;  // per pending backward call: the ReLU's mask (empty without)
};

}  // namespace retinanet::cpu
