// focal/anchor/grid.hpp: feature-map grids, strides and anchor counts for an image size.
//
//   padded = ceil(image / size_divisibility) * size_divisibility       (per axis)
//   grid_l = ceil(padded / stride_l)      what stride-2 3x3 convolutions with padding 1 produce
//   count  = sum_l grid_l.height * grid_l.width * anchors_per_cell(level l)
// The image is the batch's (padded) tensor size; every image of a batch shares its anchors.
// anchor_layout() gives each level's grid, cell spacing (stride_source) and place in the output.
#pragma once

#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "../core/size2d.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "anchor_spec.hpp"

namespace focal {

inline size2d padded_size(const anchor_spec& spec, size2d image) {
    const index_t d = spec.size_divisibility;
    return {(image.height + d - 1) / d * d, (image.width + d - 1) / d * d};
}

namespace detail::anchor_impl {

inline void require_size(size2d s, const char* where, const std::string& what) {
    detail::require(s.height >= 0 && s.width >= 0 && s.height <= (index_t(1) << 24) && s.width <= (index_t(1) << 24), where, what,
                    "of height and width in [0, 2^24]",
                    "[", s.height, " x ", s.width, "]");
}

// ceil(n / stride) for a positive stride; exact for the integer quotients of practical sizes.
inline index_t grid_extent(index_t n, double stride) {
    return static_cast<index_t>(std::ceil(static_cast<double>(n) / stride));
}

}  // namespace detail::anchor_impl

// One level's place in the pyramid: its grid, the spacing of its cells, its rows in the output.
struct anchor_level_layout {
    size2d grid;
    double stride_y = 0, stride_x = 0;
    index_t first = 0, count = 0;  // rows [first, first + count) of generate_anchors' output
};

namespace detail::anchor_impl {

// The layout of every level for an image and (optionally) explicit grids; checks both.
inline std::vector<anchor_level_layout> layout(const anchor_spec& spec, size2d image, std::span<const size2d> grids,
                                               bool explicit_grids, const char* where) {
    validate(spec, where);
    require_size(image, where, "image");
    if (explicit_grids)
        detail::require(grids.size() == spec.levels.size(), where, "grids",
                        "one per level (" + std::to_string(spec.levels.size()) + ")", grids.size(), " grids");
    const size2d padded = padded_size(spec, image);
    std::vector<anchor_level_layout> out(spec.levels.size());
    index_t first = 0;
    for (std::size_t l = 0; l < spec.levels.size(); ++l) {
        const anchor_level& level = spec.levels[l];
        anchor_level_layout& o = out[l];
        if (explicit_grids) {
            require_size(grids[l], where, "grids[" + std::to_string(l) + "]");
            o.grid = grids[l];
        } else {
            o.grid = {grid_extent(padded.height, level.stride), grid_extent(padded.width, level.stride)};
        }
        if (spec.strides == stride_source::fixed) {
            o.stride_y = o.stride_x = level.stride;
        } else {  // torchvision: image_size // grid_size (integer division), per axis
            o.stride_y = o.grid.height > 0 ? static_cast<double>(padded.height / o.grid.height) : 0.0;
            o.stride_x = o.grid.width > 0 ? static_cast<double>(padded.width / o.grid.width) : 0.0;
        }
        // Products are formed only when they fit with 4 coordinates per anchor (make_anchors
        // allocates count * 4): a wrapped count would size the output wrongly. -1: too many.
        constexpr index_t max_count = std::numeric_limits<index_t>::max() / 4;
        const auto times = [](index_t x, index_t y) { return x < 0 || (y != 0 && x > max_count / y) ? index_t(-1) : x * y; };
        const index_t per_cell = times(times(static_cast<index_t>(level.sizes.size()), static_cast<index_t>(level.scales.size())),
                                       static_cast<index_t>(level.ratios.size()));
        const index_t per_row = times(o.grid.width, per_cell), count = times(o.grid.height, per_row);
        if (per_row < 0 || count < 0 || count > max_count - first)
            detail::fail(where, explicit_grids ? "grids[" + std::to_string(l) + "]" : std::string("image"),
                         "of a size whose anchor count fits focal::index_t with 4 coordinates per anchor", "a ",
                         o.grid.height, " x ", o.grid.width, " grid of ", level.sizes.size(), " x ", level.scales.size(),
                         " x ", level.ratios.size(), " anchors per cell at level ", l, " after ", first, " anchors");
        o.first = first;
        o.count = count;
        first += o.count;
    }
    return out;
}

}  // namespace detail::anchor_impl

// Every level's layout for an image (padded per spec.size_divisibility, grids ceil(padded / stride)).
inline std::vector<anchor_level_layout> anchor_layout(const anchor_spec& spec, size2d image) {
    return detail::anchor_impl::layout(spec, image, {}, false, "focal::anchor_layout");
}

// ... for explicit feature-map grids (one per level); `image` only matters to padded_over_grid.
inline std::vector<anchor_level_layout> anchor_layout(const anchor_spec& spec, size2d image,
                                                      std::span<const size2d> grids) {
    return detail::anchor_impl::layout(spec, image, grids, true, "focal::anchor_layout");
}

// The grid of every level for an image.
inline std::vector<size2d> feature_grids(const anchor_spec& spec, size2d image) {
    std::vector<size2d> grids;
    for (const auto& l : detail::anchor_impl::layout(spec, image, {}, false, "focal::feature_grids"))
        grids.push_back(l.grid);
    return grids;
}

// Total anchors for an image: the rows generate_anchors writes.
inline index_t anchor_count(const anchor_spec& spec, size2d image) {
    index_t n = 0;
    for (const auto& l : detail::anchor_impl::layout(spec, image, {}, false, "focal::anchor_count")) n += l.count;
    return n;
}

// Total anchors for explicit feature-map grids (one per level).
inline index_t anchor_count(const anchor_spec& spec, std::span<const size2d> grids) {
    index_t n = 0;
    for (const auto& l : detail::anchor_impl::layout(spec, {}, grids, true, "focal::anchor_count")) n += l.count;
    return n;
}

}  // namespace focal
