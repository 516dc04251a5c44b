// focal/anchor/presets.hpp: anchor specs that reproduce a framework number for number.
//
//   torchvision()  AnchorGenerator as RetinaNet builds it: sizes (x, int(x 2^(1/3)), int(x 2^(2/3)))
//                  = 32, 40, 50 | 64, 80, 101 | ..., ratios 0.5, 1, 2 ratio-major, corners rounded
//                  half-to-even, centre j * stride (no offset), stride = padded // grid, padding 32
//   detectron2()   DefaultAnchorGenerator: float sizes x 2^(k/3), size-major, no rounding,
//                  centre (j + offset) stride (OFFSET, default 0.0), fixed strides, padding 32
//   detectron()    Detectron (caffe2), the paper's released code: sizes 4 stride 2^(k/3),
//                  octave-major with ratios 1, 2, 0.5, Detectron's rounded base-window shapes,
//                  +1 pixel convention, centre j stride + (stride - 1) / 2, padding 128
//   paper()        = detectron()
// All use the paper's P3-P7 pyramid (paper_levels()); a default anchor_spec{} is detectron2().
#pragma once

#include <cmath>
#include <vector>

#include "anchor_spec.hpp"

namespace focal::anchor_presets {

// base_sizes: one per level, P3 first (torchvision's fixtures also use 16, 32, ..., 256).
inline anchor_spec torchvision(const std::vector<double>& base_sizes = {32, 64, 128, 256, 512}) {
    anchor_spec spec;
    spec.levels.clear();
    int l = 3;
    for (double x : base_sizes) {
        // int() truncation as torchvision's RetinaNet: 32 * 2^(1/3) = 40.3 -> 40.
        spec.levels.push_back({std::ldexp(1.0, l++),
                               {x, std::trunc(x * std::pow(2.0, 1.0 / 3.0)), std::trunc(x * std::pow(2.0, 2.0 / 3.0))},
                               {1.0},
                               {0.5, 1.0, 2.0}});
    }
    spec.order = anchor_order::ratio_major;
    spec.rounding = anchor_rounding::corners;
    spec.offset = 0.0;
    spec.plus_one = false;
    spec.strides = stride_source::padded_over_grid;
    spec.size_divisibility = 32;
    return spec;
}

inline anchor_spec detectron2(double offset = 0.0) {
    anchor_spec spec;
    spec.levels = paper_levels({0.5, 1.0, 2.0});
    spec.order = anchor_order::size_major;
    spec.rounding = anchor_rounding::none;
    spec.offset = offset;
    spec.plus_one = false;
    spec.strides = stride_source::fixed;
    spec.size_divisibility = 32;
    return spec;
}

inline anchor_spec detectron() {
    anchor_spec spec;
    spec.levels = paper_levels({1.0, 2.0, 0.5});
    spec.order = anchor_order::size_major;
    spec.rounding = anchor_rounding::base_window;
    spec.offset = 0.5;     // with plus_one: centre (j + 0.5) stride - 0.5 = j stride + (stride - 1) / 2
    spec.plus_one = true;
    spec.strides = stride_source::fixed;
    spec.size_divisibility = 128;  // FPN.COARSEST_STRIDE
    return spec;
}

inline anchor_spec paper() { return detectron(); }

}  // namespace focal::anchor_presets
