// focal/anchor/anchor_spec.hpp: what the anchors of a feature pyramid are, as plain parameters.
//
// A level places A = |sizes| * |scales| * |ratios| anchors on every cell of its grid. Anchor
// side s = size * scale, aspect ratio r = height / width (torchvision, detectron2, Detectron and
// mmdet all use h / w). The conventions that differ between frameworks are the spec's members;
// anchor/presets.hpp fixes them to reproduce torchvision, detectron2 and Detectron.
// Output order everywhere: level, row (y), column (x), anchor within the cell.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/view.hpp"

namespace focal {

// The order of the A anchors of one cell.
enum class anchor_order {
    ratio_major,  // (r0, s0), (r0, s1), ..., (r1, s0), ...   torchvision, mmdet
    size_major,   // (s0, r0), (s0, r1), ..., (s1, r0), ...   detectron2, Detectron (octave-major)
};

// How a cell anchor's corners are made, given side s and ratio r (w, h: width and height).
enum class anchor_rounding {
    none,         // w = sqrt(s^2 / r), h = r w in double; corners +-w/2 rounded once to the
                  // output type (detectron2)
    corners,      // h = s sqrt(r), w = s / sqrt(r) in the output type, each corner +-w/2 then
                  // rounded half-to-even (torchvision: torch.round)
    base_window,  // Detectron: at the base window b = stride, w0 = round(sqrt(b^2 / r)),
                  // h0 = round(w0 r) (half-to-even, np.round), then w = w0 s / b, h = h0 s / b;
                  // everything in double, rounded once to the output type
};

// Where the distance between neighbouring cells comes from.
enum class stride_source {
    fixed,             // the level's stride (detectron2, Detectron, mmdet)
    padded_over_grid,  // padded image size / grid size, integer division, per axis (torchvision:
                       // an 800 x 1344 batch puts P6's 13 x 21 cells 61 px apart in y, 64 in x)
};

struct anchor_level {
    double stride = 8;                       // the level's nominal stride: grid = ceil(padded size / stride)
    std::vector<double> sizes{32};           // anchor sides for ratio 1, before scales
    std::vector<double> scales{1};           // every size times every scale (sizes outer)
    std::vector<double> ratios{0.5, 1, 2};   // aspect ratios, height / width
};

// Anchors per cell of one level.
inline index_t anchors_per_cell(const anchor_level& level) noexcept {
    return static_cast<index_t>(level.sizes.size() * level.scales.size() * level.ratios.size());
}

// The paper's pyramid (Lin et al. 2017, section 4): P3-P7, strides 8-128, sizes 32-512,
// scales 2^0, 2^(1/3), 2^(2/3), aspect ratios (h / w) 1:2, 1:1, 2:1 (here in that order).
inline std::vector<anchor_level> paper_levels(std::vector<double> ratios = {0.5, 1.0, 2.0}) {
    const std::vector<double> scales{1.0, std::pow(2.0, 1.0 / 3.0), std::pow(2.0, 2.0 / 3.0)};
    std::vector<anchor_level> levels;
    for (int l = 3; l <= 7; ++l) {
        const double stride = std::ldexp(1.0, l);
        levels.push_back({stride, {4.0 * stride}, scales, ratios});
    }
    return levels;
}

struct anchor_spec {
    std::vector<anchor_level> levels = paper_levels();
    anchor_order order = anchor_order::size_major;
    anchor_rounding rounding = anchor_rounding::none;
    double offset = 0.0;         // cell (i, j) is centred at ((j + offset) sx, (i + offset) sy)
    bool plus_one = false;       // +1 pixel convention: width = x2 - x1 + 1, centre shifted by -0.5
    stride_source strides = stride_source::fixed;
    index_t size_divisibility = 32;  // images are padded to a multiple of this before grids are taken
};

inline void validate(const anchor_spec& spec, const char* where = "focal::anchor_spec") {
    detail::require(!spec.levels.empty(), where, "levels", "non-empty", "no levels");
    auto positive_list = [&](const std::vector<double>& v, std::size_t l, const char* name) {
        const std::string what = "levels[" + std::to_string(l) + "]." + name;
        detail::require(!v.empty(), where, what, "non-empty", "an empty list");
        for (double x : v) detail::require(std::isfinite(x) && x > 0, where, what, "finite and > 0", x);
    };
    for (std::size_t l = 0; l < spec.levels.size(); ++l) {
        const anchor_level& level = spec.levels[l];
        // Bounded so that grid sizes (image / stride) and anchor counts stay far from index overflow.
        detail::require(level.stride >= 1e-3 && level.stride <= 1e6, where, "levels[" + std::to_string(l) + "].stride",
                        "in [1e-3, 1e6]", level.stride);
        positive_list(level.sizes, l, "sizes");
        positive_list(level.scales, l, "scales");
        positive_list(level.ratios, l, "ratios");
    }
    detail::require(std::isfinite(spec.offset), where, "offset", "finite", spec.offset);
    detail::require(spec.size_divisibility >= 1 && spec.size_divisibility <= (index_t(1) << 20), where, "size_divisibility",
                    "in [1, 2^20]", spec.size_divisibility);
}

}  // namespace focal
