// Formula weights for torchvision's retinanet_resnet50_fpn state dict: every entry is a function
// of its name and shape, computed bit for bit as tests/data/retinanet/make_torchvision_import_fixture.py
// computes it (see there for the table), so the import test needs no 130 MB weights file.
//
//   h   = FNV-1a 64 of the name;  z_i = splitmix64(h + (i + 1) * 0x9E3779B97F4A7C15)
//   r_i = (2 (z_i >> 40) + 1) / 2^24 - 1 in (-1, 1);  value_i = float(center + s r_i)
//
// with center and s by entry as tabled there (BatchNorm near identity, damped bn3, convs
// s = sqrt(g / fan_in), cls_logits bias -8.5 +- 1.5). s is rounded to float first, so s r_i
// (24 x 25 bits) is exact in double: no result depends on FMA contraction or on libm (sqrt is
// correctly rounded). FOCAL_TORCHVISION_NPZ in test_torchvision_import.cpp checks the two agree.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace focal_test {

inline std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h;
}

// r_i in (-1, 1), exactly (2 u + 1) / 2^24 - 1 for a 24-bit u.
inline double formula_uniform(std::uint64_t name_hash, std::uint64_t i) {
    std::uint64_t z = name_hash + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (2.0 * static_cast<double>(z >> 40) + 1.0) / 16777216.0 - 1.0;
}

inline bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}
inline bool starts_with(std::string_view s, std::string_view head) { return s.substr(0, head.size()) == head; }

// Gain g of a conv weight: s = sqrt(g / fan_in).
inline double formula_conv_gain(std::string_view name) {
    if (ends_with(name, "cls_logits.weight")) return 3.0;
    if (ends_with(name, "bbox_reg.weight")) return 0.03;
    if (starts_with(name, "backbone.fpn.layer_blocks.2.")) return 12.0;
    if (starts_with(name, "backbone.fpn.extra_blocks.p6.")) return 90.0;
    if (starts_with(name, "backbone.fpn.extra_blocks.p7.")) return 1200.0;
    if (starts_with(name, "backbone.fpn.")) return 3.0;
    return 6.0;  // backbone.body and the head towers: a ReLU follows
}

// The values of state-dict entry `name` of `shape`, row-major.
inline std::vector<float> formula_values(const std::string& name, const std::vector<std::size_t>& shape) {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    const std::uint64_t h = fnv1a64(name);
    std::vector<float> out(n);
    if (ends_with(name, ".running_var")) {
        for (std::size_t i = 0; i < n; ++i) {
            const double r = formula_uniform(h, i);
            out[i] = static_cast<float>(1.0 + 0.5 * (r * r));
        }
        return out;
    }
    double center = 0.0, s = 0.02;  // conv biases
    if (ends_with(name, ".running_mean")) {
        s = 0.1;
    } else if (starts_with(name, "backbone.body.") && shape.size() == 1) {  // BatchNorm
        if (ends_with(name, ".bn3.weight")) center = 0.25, s = 0.05;
        else if (ends_with(name, ".weight")) center = 1.0, s = 0.1;
        else s = 0.1;
    } else if (shape.size() == 4) {
        s = std::sqrt(formula_conv_gain(name) / static_cast<double>(shape[1] * shape[2] * shape[3]));
    } else if (ends_with(name, "cls_logits.bias")) {
        center = -8.5, s = 1.5;
    }
    const double s32 = static_cast<double>(static_cast<float>(s));
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(center + s32 * formula_uniform(h, i));
    return out;
}

}  // namespace focal_test
