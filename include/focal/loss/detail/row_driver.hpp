// focal/loss/detail/row_driver.hpp: how the host classification drivers walk an N x K view.
//
// Rows are grouped in blocks of about block_elements elements (a size that depends on K only);
// a block is the unit of threading and of summation order. Each row runs loss_tile over chunks
// of at most tile_elements, straight from the caller's memory when the row is contiguous and
// through a small buffer otherwise.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "../../config.hpp"
#include "../../core/execution.hpp"
#include "../../core/parallel.hpp"
#include "../../core/host_packet.hpp"
#include "../../core/view.hpp"
#include "loss_tile.hpp"

namespace focal::detail {

inline constexpr index_t tile_elements = 256;      // float partial sums go to double every tile
inline constexpr index_t block_elements = 1 << 14;  // a block is the unit of threading and of summation order

inline index_t rows_per_block(index_t cols) { return std::max<index_t>(1, block_elements / std::max<index_t>(cols, 1)); }

// Runs block(b) for b in [0, n_blocks) and returns the partial sums added in block order, so the
// result does not depend on the thread count.
template <class Exec, class Block>
double sum_over_blocks(const Exec& exec, index_t n_blocks, index_t elements, const Block& block) {
    std::vector<double> partial(static_cast<std::size_t>(n_blocks), 0.0);
    const index_t elements_per_block = n_blocks > 0 ? elements / n_blocks : 0;
    for_each_block(exec, n_blocks, 1, elements_per_block, [&](index_t b, index_t) { partial[b] = block(b); });
    double total = 0;
    for (double p : partial) total += p;  // in block order, whatever thread ran which block
    return total;
}

template <class T>
void fill_row(const matrix_view<T>& v, index_t row, T value) {
    for (index_t k = 0; k < v.extent(1); ++k) v(row, k) = value;
}

// A row's chunk [k0, k0 + n) of a view: the caller's memory when rows are contiguous, else a copy.
template <class T>
FOCAL_INLINE const T* row_chunk(const matrix_view<const T>& v, index_t row, index_t k0, index_t n, T* buffer) {
    if (v.rows_contiguous()) return &v(row, k0);
    for (index_t k = 0; k < n; ++k) buffer[k] = v(row, k0 + k);
    return buffer;
}

// One row of the loss, chunk by chunk; make_targets(row, k0, n) gives the chunk's target source.
template <class P, bool G, bool V, class Policy, class T, class MakeTargets>
FOCAL_INLINE double row_loss(const Policy& policy, const matrix_view<const T>& x, const matrix_view<T>& g,
                const matrix_view<T>& v, index_t row, T scale, MakeTargets& make_targets) {
    T x_buf[tile_elements], g_buf[tile_elements], v_buf[tile_elements];
    double total = 0;
    const index_t cols = x.extent(1);
    for (index_t k0 = 0; k0 < cols; k0 += tile_elements) {
        const index_t n = std::min(tile_elements, cols - k0);
        const T* xp = row_chunk(x, row, k0, n, x_buf);
        T* gp = G && g.rows_contiguous() ? &g(row, k0) : g_buf;
        T* vp = V && v.rows_contiguous() ? &v(row, k0) : v_buf;
        total += loss_tile<P, G, V>(policy, xp, gp, vp, n, make_targets(row, k0, n), scale);
        if (G && !g.rows_contiguous())
            for (index_t k = 0; k < n; ++k) g(row, k0 + k) = g_buf[k];
        if (V && !v.rows_contiguous())
            for (index_t k = 0; k < n; ++k) v(row, k0 + k) = v_buf[k];
    }
    return total;
}

// Picks the packet from the execution policy and the output flags at compile time, then runs
// rows in blocks. row_fn<P, G, V>(row) returns the row's sum.
template <class T, class Exec, class RowFn>
double run_rows(const Exec& exec, index_t rows, index_t cols, bool write_grad, bool write_values, const RowFn& row_fn) {
    constexpr bool simd = !std::is_same_v<Exec, exec::scalar_policy>;
    using P = host_packet_t<T, simd>;
    const index_t per_block = rows_per_block(cols);
    const index_t n_blocks = (rows + per_block - 1) / per_block;
    auto run = [&]<bool G, bool V>() {
        return sum_over_blocks(exec, n_blocks, rows * cols, [&](index_t b) {
            double total = 0;
            const index_t end = std::min(rows, (b + 1) * per_block);
            for (index_t row = b * per_block; row < end; ++row) total += row_fn.template operator()<P, G, V>(row);
            return total;
        });
    };
    if (write_grad) return write_values ? run.template operator()<true, true>() : run.template operator()<true, false>();
    return write_values ? run.template operator()<false, true>() : run.template operator()<false, false>();
}

}  // namespace focal::detail
