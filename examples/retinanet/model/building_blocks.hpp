// Small constructors shared by the backbone, FPN and heads: conv (+ norm) (+ ReLU) chains named
// as torchvision names them, and the initializations the paper and torchvision use.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "config.hpp"
#include "nn/conv2d.hpp"
#include "nn/norm.hpp"
#include "nn/sequential.hpp"
#include "nn/simple_layers.hpp"

namespace retinanet::model {

// Appends to seq a normalization layer of the configured kind named `name`, then `act`: fused into
// the normalization's pass, or a relu layer of its own for norm_kind::none. Returns the
// normalization (nullptr for norm_kind::none).
template <class T>
nn::layer<T>* add_norm(nn::sequential<T>& seq, norm_kind kind, const std::string& name, int channels, int groups,
                       nn::activation act = nn::activation::none);

// conv weights ~ N(0, std), bias 0 (the paper's head initialization).
template <class T>
void init_normal(nn::conv2d<T>& conv, double std, std::mt19937_64& rng);
// Kaiming normal, fan_out, ReLU gain (torchvision's ResNet): std = sqrt(2 / (C_out k k)).
template <class T>
void init_kaiming_fan_out(nn::conv2d<T>& conv, std::mt19937_64& rng);
// Kaiming uniform with a = 1 (torchvision's FPN): bound = sqrt(3 / (C_in k k)), bias 0.
template <class T>
void init_kaiming_uniform_a1(nn::conv2d<T>& conv, std::mt19937_64& rng);

}  // namespace retinanet::model
