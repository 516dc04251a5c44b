// Small constructors shared by the backbone, FPN and heads: conv (+ norm) (+ ReLU) chains named
// as torchvision names them, and the initializations the paper and torchvision use.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "config.hpp"
#include "backend/cpu/conv2d.hpp"
#include "backend/cpu/norm.hpp"
#include "backend/cpu/sequential.hpp"
#include "backend/cpu/simple_layers.hpp"

namespace retinanet::model {

// Appends to seq a normalization layer of the configured kind named `name`, then `act`: fused into
// the normalization's pass, or a relu layer of its own for norm_kind::none. Returns the
// normalization (nullptr for norm_kind::none).
template <class T>
cpu::layer<T>* add_norm(cpu::sequential<T>& seq, norm_kind kind, const std::string& name, int channels, int groups,
                       cpu::activation act = cpu::activation::none);

// conv weights ~ N(0, std), bias 0 (the paper's head initialization).
template <class T>
void init_normal(cpu::conv2d<T>& conv, double std, std::mt19937_64& rng);
// Kaiming normal, fan_out, ReLU gain (torchvision's ResNet): std = sqrt(2 / (C_out k k)).
template <class T>
void init_kaiming_fan_out(cpu::conv2d<T>& conv, std::mt19937_64& rng);
// Kaiming uniform with a = 1 (torchvision's FPN): bound = sqrt(3 / (C_in k k)), bias 0.
template <class T>
void init_kaiming_uniform_a1(cpu::conv2d<T>& conv, std::mt19937_64& rng);

}  // namespace retinanet::model
