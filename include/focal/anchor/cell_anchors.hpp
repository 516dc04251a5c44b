// focal/anchor/cell_anchors.hpp: the A anchors of one cell, in the arithmetic of each convention.
//
// A cell anchor is stored relative to its grid point (j sx, i sy). With rounding none / corners
// the corners are computed around 0 and the cell centre (offset s - plus_one / 2) goes into the
// shift, added in the output type T: anchor = T(shift) + T(corner) (torchvision, detectron2).
// With base_window everything stays in double until the end, centre included in the corner:
// anchor = T(corner + j s) (Detectron, numpy float64).
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "../core/view.hpp"
#include "anchor_spec.hpp"

namespace focal {

namespace detail::anchor_impl {

// Round half to even (torch.round, np.round), independent of the FPU rounding mode.
template <class T>
T round_half_even(T x) {
    const T r = std::round(x);  // half away from zero
    return std::abs(x - std::trunc(x)) == T(0.5) ? T(2) * std::round(x / T(2)) : r;
}

template <class T>
struct cell_corners {
    std::vector<T> t;       // A x 4 corners around 0, output type (rounding none / corners)
    std::vector<double> d;  // A x 4 corners, centre included, double (rounding base_window)
    bool in_double = false;
    double centre_x = 0, centre_y = 0;  // offset s - plus_one / 2: where the centre of cell (0, 0) is
};

// (size index, scale index, ratio index) of every anchor of a cell, in the spec's order.
struct cell_member {
    std::size_t size, scale, ratio;
};
inline std::vector<cell_member> cell_members(const anchor_spec& spec, const anchor_level& level) {
    std::vector<cell_member> m;
    const std::size_t ns = level.sizes.size(), nc = level.scales.size(), nr = level.ratios.size();
    if (spec.order == anchor_order::ratio_major) {
        for (std::size_t r = 0; r < nr; ++r)
            for (std::size_t s = 0; s < ns; ++s)
                for (std::size_t c = 0; c < nc; ++c) m.push_back({s, c, r});
    } else {
        for (std::size_t s = 0; s < ns; ++s)
            for (std::size_t c = 0; c < nc; ++c)
                for (std::size_t r = 0; r < nr; ++r) m.push_back({s, c, r});
    }
    return m;
}

template <class T>
cell_corners<T> make_cell_corners(const anchor_spec& spec, const anchor_level& level, double stride_y,
                                  double stride_x) {
    cell_corners<T> out;
    const double po = spec.plus_one ? 1.0 : 0.0;
    out.centre_x = spec.offset * stride_x - 0.5 * po;
    out.centre_y = spec.offset * stride_y - 0.5 * po;
    out.in_double = spec.rounding == anchor_rounding::base_window;
    for (const cell_member& m : cell_members(spec, level)) {
        const double s = level.sizes[m.size] * level.scales[m.scale];
        const double r = level.ratios[m.ratio];
        switch (spec.rounding) {
            case anchor_rounding::corners: {  // torchvision, in T: h = s sqrt(r), w = s (1 / sqrt(r))
                const T h_ratio = std::sqrt(static_cast<T>(r));
                const T w_ratio = T(1) / h_ratio;
                const T w = w_ratio * static_cast<T>(s) - static_cast<T>(po);
                const T h = h_ratio * static_cast<T>(s) - static_cast<T>(po);
                for (T v : {-w / T(2), -h / T(2), w / T(2), h / T(2)}) out.t.push_back(round_half_even(v));
                break;
            }
            case anchor_rounding::none: {  // detectron2, in double: w = sqrt(s^2 / r), h = r w
                const double w = std::sqrt(s * s / r);
                const double h = r * w;
                for (double v : {-(w - po) / 2.0, -(h - po) / 2.0, (w - po) / 2.0, (h - po) / 2.0})
                    out.t.push_back(static_cast<T>(v));
                break;
            }
            case anchor_rounding::base_window: {  // Detectron: integer shape at the base window, scaled
                const double base = level.stride;
                const double w0 = round_half_even(std::sqrt(base * base / r));
                const double h0 = round_half_even(w0 * r);
                const double scale = s / base;
                const double w = w0 * scale, h = h0 * scale;
                out.d.insert(out.d.end(), {out.centre_x - 0.5 * (w - po), out.centre_y - 0.5 * (h - po),
                                           out.centre_x + 0.5 * (w - po), out.centre_y + 0.5 * (h - po)});
                break;
            }
        }
    }
    return out;
}

}  // namespace detail::anchor_impl

// The anchors of cell (0, 0) of level `level` (A x 4, xyxy, row-major, in output order): every
// other cell's are these shifted by its grid point. Uses the level's fixed stride for the centre.
template <class T = float>
std::vector<T> cell_anchors(const anchor_spec& spec, std::size_t level) {
    validate(spec, "focal::cell_anchors");
    detail::require(level < spec.levels.size(), "focal::cell_anchors", "level",
                    "< " + std::to_string(spec.levels.size()), level);
    const anchor_level& lv = spec.levels[level];
    const auto c = detail::anchor_impl::make_cell_corners<T>(spec, lv, lv.stride, lv.stride);
    std::vector<T> out;
    const std::size_t n = static_cast<std::size_t>(anchors_per_cell(lv)) * 4;
    for (std::size_t k = 0; k < n; ++k) {
        if (c.in_double) {
            out.push_back(static_cast<T>(c.d[k]));
        } else {
            out.push_back(static_cast<T>(k % 2 ? c.centre_y : c.centre_x) + c.t[k]);
        }
    }
    return out;
}

}  // namespace focal
