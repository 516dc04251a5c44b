// focal/anchor/generate.hpp: write every anchor of a feature pyramid into caller memory.
//
//   index_t n = anchor_count(spec, image);                  // query, then allocate n x 4
//   generate_anchors(spec, image, out /*n x 4 xyxy*/, exec);
//   generate_anchors(spec, image, grids, out, exec);        // explicit feature-map sizes
//   std::vector<float> a = make_anchors(spec, image);       // allocating helper, row-major n x 4
// Order: level, row, column, cell anchor (torchvision's and everyone's). Each level's first row is
// built once as a template; row i is that template with i sy added to the y coordinates, so a
// contiguous output is written at streaming speed (SIMD; rows spread over threads).
#pragma once

#include <algorithm>
#include <concepts>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/checks.hpp"
#include "../core/execution.hpp"
#include "../core/host_packet.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "anchor_spec.hpp"
#include "cell_anchors.hpp"
#include "grid.hpp"

namespace focal {

namespace detail::anchor_impl {

// Row 0 of one level: x coordinates final, y coordinates without the row's shift.
template <class T>
struct level_template {
    std::vector<T> t;       // rounding none / corners: T(shift) + T(corner)
    std::vector<double> d;  // base_window: corner + j sx, in double
    bool in_double = false;
    double centre_y = 0;
};

template <class T>
level_template<T> make_level_template(const anchor_spec& spec, const anchor_level& level,
                                      const anchor_level_layout& lay) {
    const cell_corners<T> c = make_cell_corners<T>(spec, level, lay.stride_y, lay.stride_x);
    const index_t a = anchors_per_cell(level), w = lay.grid.width;
    level_template<T> out;
    out.in_double = c.in_double;
    out.centre_y = c.centre_y;
    if (c.in_double)
        out.d.resize(static_cast<std::size_t>(w * a * 4));
    else
        out.t.resize(static_cast<std::size_t>(w * a * 4));
    for (index_t j = 0; j < w; ++j) {
        const double jx = static_cast<double>(j) * lay.stride_x;
        const T shift_x = static_cast<T>(c.centre_x + jx);  // torch.arange(offset s, W s, s): start + i step
        for (index_t k = 0; k < a * 4; ++k) {
            const std::size_t e = static_cast<std::size_t>(j * a * 4 + k);
            if (c.in_double) {
                out.d[e] = c.d[static_cast<std::size_t>(k)] + (k % 2 ? 0.0 : jx);
            } else {
                out.t[e] = k % 2 ? c.t[static_cast<std::size_t>(k)] : shift_x + c.t[static_cast<std::size_t>(k)];
            }
        }
    }
    return out;
}

// Writes row i of a level (n = width * A * 4 values) to contiguous memory.
template <class P, class T>
void write_anchor_row_contiguous(const level_template<T>& tpl, double row_shift, T* dst, index_t n) {
    if (tpl.in_double) {  // y: T(corner + i sy) in double, as numpy then .astype(float32)
        const double* src = tpl.d.data();
        for (index_t e = 0; e < n; e += 2) {
            dst[e] = static_cast<T>(src[e]);
            dst[e + 1] = static_cast<T>(src[e + 1] + row_shift);
        }
        return;
    }
    const T sy = static_cast<T>(tpl.centre_y + row_shift);  // y: T(shift) + T(corner)
    const T* src = tpl.t.data();
    using tr = packet_traits<P>;
    constexpr index_t width = tr::width;
    index_t e = 0;
    if constexpr (width > 1 && width % 2 == 0) {
        alignas(64) T pattern[width];
        for (index_t k = 0; k < width; ++k) pattern[k] = k % 2 ? sy : T(0);
        const P add = tr::load(pattern);
        for (; e + width <= n; e += width) tr::store(dst + e, tr::load(src + e) + add);
    }
    for (; e < n; e += 2) {
        dst[e] = src[e];
        dst[e + 1] = src[e + 1] + sy;
    }
}

template <class T, class Exec>
void generate_anchors_impl(const anchor_spec& spec, const std::vector<anchor_level_layout>& layout, matrix_view<T> out,
                           const Exec& exec, const char* where) {
    index_t total = 0, rows = 0, widest = 1;
    for (std::size_t l = 0; l < layout.size(); ++l) {
        total += layout[l].count;
        rows += layout[l].count > 0 ? layout[l].grid.height : 0;
        widest = std::max(widest, layout[l].grid.width * anchors_per_cell(spec.levels[l]) * 4);
    }
    require_valid_extents(out, where, "out");
    require(out.extent(0) == total && out.extent(1) == 4, where, "out",
            "of shape [anchor_count x 4] = [" + std::to_string(total) + " x 4]", shape_string(out));
    require_data(out, where, "out");
    require_non_overlapping(out, where, "out");
    if (total == 0) return;

    std::vector<level_template<T>> templates;
    std::vector<std::pair<std::size_t, index_t>> row_of;  // (level, grid row i) of every output row
    for (std::size_t l = 0; l < layout.size(); ++l) {
        templates.push_back(layout[l].count > 0 ? make_level_template<T>(spec, spec.levels[l], layout[l])
                                                : level_template<T>{});
        if (layout[l].count > 0)
            for (index_t i = 0; i < layout[l].grid.height; ++i) row_of.emplace_back(l, i);
    }
    constexpr bool simd = !std::is_same_v<Exec, exec::scalar_policy>;
    using P = host_packet_t<T, simd>;
    const bool contiguous = out.stride(1) == 1 && out.stride(0) == 4;
    const index_t rows_per_task = std::max<index_t>(1, 65536 / widest);  // ~256 KB of floats per task
    for_each_block(exec, rows, rows_per_task, std::max<index_t>(1, total * 4 / rows), [&](index_t begin, index_t end) {
        std::vector<T> staged;
        for (index_t r = begin; r < end; ++r) {
            const auto [l, i] = row_of[static_cast<std::size_t>(r)];
            const anchor_level_layout& lay = layout[l];
            const index_t n = lay.grid.width * anchors_per_cell(spec.levels[l]) * 4;
            const index_t first = lay.first + i * (n / 4);
            const double row_shift = static_cast<double>(i) * lay.stride_y;
            if (contiguous) {
                write_anchor_row_contiguous<P>(templates[l], row_shift, &out(first, 0), n);
            } else {
                staged.resize(static_cast<std::size_t>(n));
                write_anchor_row_contiguous<P>(templates[l], row_shift, staged.data(), n);
                for (index_t k = 0; k < n / 4; ++k)
                    for (index_t c = 0; c < 4; ++c) out(first + k, c) = staged[static_cast<std::size_t>(k * 4 + c)];
            }
        }
    });
}

}  // namespace detail::anchor_impl

// All anchors for an image of size `image` (grids from the padded size, see grid.hpp).
template <class T, class Exec = exec::default_policy>
    requires std::floating_point<T> && exec::is_policy_v<Exec>
void generate_anchors(const anchor_spec& spec, size2d image, matrix_view<T> out, const Exec& exec = {}) {
    constexpr const char* where = "focal::generate_anchors";
    const auto layout = detail::anchor_impl::layout(spec, image, {}, false, where);
    detail::anchor_impl::generate_anchors_impl(spec, layout, out, exec, where);
}

// All anchors for explicit feature-map grids (one per level). `image` is the batch's image size;
// only stride_source::padded_over_grid reads it (its padded size over each grid).
template <class T, class Exec = exec::default_policy>
    requires std::floating_point<T> && exec::is_policy_v<Exec>
void generate_anchors(const anchor_spec& spec, size2d image, std::span<const size2d> grids, matrix_view<T> out,
                      const Exec& exec = {}) {
    constexpr const char* where = "focal::generate_anchors";
    const auto layout = detail::anchor_impl::layout(spec, image, grids, true, where);
    detail::anchor_impl::generate_anchors_impl(spec, layout, out, exec, where);
}

// The allocating helper: anchor_count(spec, image) x 4 values, row-major.
template <class T = float, class Exec = exec::default_policy>
    requires std::floating_point<T> && exec::is_policy_v<Exec>
std::vector<T> make_anchors(const anchor_spec& spec, size2d image, const Exec& exec = {}) {
    std::vector<T> out(static_cast<std::size_t>(anchor_count(spec, image) * 4));
    generate_anchors(spec, image, make_view(out.data(), static_cast<index_t>(out.size() / 4), index_t(4)), exec);
    return out;
}

}  // namespace focal
