// Small pieces the backbone, FPN and heads share: the normalization the configuration asks for,
// and the initializations the paper and torchvision use, applied to the host parameters by name.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>

#include "network_backend.hpp"
#include "backend/cpu/tensor.hpp"
#include "config.hpp"
#include "support/check.hpp"

namespace retinanet::model {

// Appends to seq a normalization of `kind` named `name`, then a ReLU when relu_after: fused into the
// normalization's pass, or a relu layer of its own for norm_kind::none. GroupNorm takes the largest
// group count <= groups that divides the channels. Returns whether a normalization was added.
template <network_backend B>
bool add_norm(B& b, typename B::sequential& seq, norm_kind kind, const std::string& name, int channels, int groups, bool relu_after) {
    switch (kind) {
        case norm_kind::group: {
            int g = std::min(groups, channels);
            while (channels % g != 0) --g;
            seq.add(b.group_norm(name, channels, g, relu_after));
            return true;
        }
        case norm_kind::frozen_batch: seq.add(b.frozen_batch_norm(name, channels, relu_after)); return true;
        case norm_kind::none: break;
    }
    if (relu_after) seq.add(b.relu());
    return false;
}

// The host model's parameters initialized by name, from one random stream in call order (so an
// initialization is a pure function of the seed and of the order the architecture calls these in).
template <class T>
class initializer {
public:
    initializer(const cpu::parameter_list<T>& parameters, std::uint64_t seed) : rng_(seed) {
        for (auto* p : parameters) by_name_[p->name] = p;
    }
    // <conv>.weight ~ N(0, std), <conv>.bias = 0 (the paper's head initialization).
    void normal(const std::string& conv, double std) {
        std::normal_distribution<double> d(0.0, std);
        for (auto& w : find(conv + ".weight").value) w = static_cast<T>(d(rng_));
        zero_bias(conv);
    }
    // Kaiming normal, fan_out, ReLU gain (torchvision's ResNet): std = sqrt(2 / (C_out k k)).
    void kaiming_normal_fan_out(const std::string& conv) {
        const auto& s = find(conv + ".weight").shape;
        normal(conv, std::sqrt(2.0 / static_cast<double>(s[0] * s[2] * s[3])));
    }
    // Kaiming uniform with a = 1 (torchvision's FPN): bound = sqrt(3 / (C_in k k)), bias 0.
    void kaiming_uniform_a1(const std::string& conv) {
        auto& weight = find(conv + ".weight");
        const double bound = std::sqrt(3.0 / static_cast<double>(weight.shape[1] * weight.shape[2] * weight.shape[3]));
        std::uniform_real_distribution<double> d(-bound, bound);
        for (auto& w : weight.value) w = static_cast<T>(d(rng_));
        zero_bias(conv);
    }
    void fill(const std::string& parameter, double value) {
        auto& p = find(parameter);
        std::fill(p.value.begin(), p.value.end(), static_cast<T>(value));
    }

private:
    cpu::parameter<T>& find(const std::string& name) {
        const auto it = by_name_.find(name);
        require(it != by_name_.end(), "model::initializer", "parameter '" + name + "'", "one of the model's parameters", "no such name");
        return *it->second;
    }
    void zero_bias(const std::string& conv) {
        if (by_name_.count(conv + ".bias") != 0) fill(conv + ".bias", 0.0);
    }

    std::mt19937_64 rng_;
    std::map<std::string, cpu::parameter<T>*> by_name_;
};

}  // namespace retinanet::model
