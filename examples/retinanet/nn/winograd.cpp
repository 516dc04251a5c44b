#include "winograd.hpp"

#include <algorithm>
#include <cstddef>

#include <Eigen/Core>

#include "tensor.hpp"

namespace retinanet::nn {
namespace {

constexpr int positions = 16;  // 4x4 transformed tile
// Channels per step of the tile transforms: the loops over a chunk run on local arrays, which
// the compiler vectorizes without alias checks between the 16 source and 16 destination rows.
constexpr int chunk = 32;
// The 16 transformed input matrices of a block take about this many bytes (Eigen re-packs U_p
// once per block, so bigger blocks amortize that; smaller ones stay in cache).
constexpr std::size_t block_bytes = std::size_t(4) << 20;
// A block holds a multiple of this many tiles (the float GEMM kernel's row block), and a layer
// has at least min_blocks blocks when its tiles allow, to feed the threads.
constexpr std::ptrdiff_t tile_align = 48, min_blocks = 16;

struct tiling {
    int n, h, w, th, tw;  // th x tw tiles of 2x2 outputs per image
    std::ptrdiff_t tiles() const { return static_cast<std::ptrdiff_t>(n) * th * tw; }
};

template <class T>
std::ptrdiff_t tiles_per_block(std::ptrdiff_t tiles, int in) {
    const auto round = [](std::ptrdiff_t t) { return std::max(tile_align, t / tile_align * tile_align); };
    const std::ptrdiff_t by_cache = round(static_cast<std::ptrdiff_t>(block_bytes / (positions * sizeof(T) * static_cast<std::size_t>(in))));
    const std::ptrdiff_t by_threads = round((tiles + min_blocks - 1) / min_blocks + tile_align - 1);
    return std::min(by_cache, by_threads);
}

// v = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], for channels [c, c + len) of one
// tile: d[4 i + j] points at input pixel (i, j) of the tile, v[p] at row p's destination.
// Fixed > 0: len == Fixed, known at compile time (full chunks: the copies become vector moves).
template <int Fixed, class T>
void transform_input(const T* const* d, T* const* v, std::size_t c, int len) {
    if constexpr (Fixed > 0) len = Fixed;
    T x[positions][chunk], t[positions][chunk];
    for (int k = 0; k < positions; ++k) std::copy_n(d[k] + c, len, x[k]);
    for (int j = 0; j < 4; ++j)  // t = B^T d (combines rows)
        for (int l = 0; l < len; ++l) {
            t[0 + j][l] = x[0 + j][l] - x[8 + j][l];
            t[4 + j][l] = x[4 + j][l] + x[8 + j][l];
            t[8 + j][l] = x[8 + j][l] - x[4 + j][l];
            t[12 + j][l] = x[4 + j][l] - x[12 + j][l];
        }
    for (int i = 0; i < 16; i += 4)  // x = t B (combines columns)
        for (int l = 0; l < len; ++l) {
            x[i + 0][l] = t[i + 0][l] - t[i + 2][l];
            x[i + 1][l] = t[i + 1][l] + t[i + 2][l];
            x[i + 2][l] = t[i + 2][l] - t[i + 1][l];
            x[i + 3][l] = t[i + 1][l] - t[i + 3][l];
        }
    for (int p = 0; p < positions; ++p) std::copy_n(x[p], len, v[p] + c);
}

// The 2x2 outputs A^T m A (+ bias), A^T = [1 1 1 0; 0 1 -1 -1], for channels [o, o + len):
// m[p] points at position p's GEMM row, y[2 a + b] at output pixel (a, b) (null: outside).
template <int Fixed, class T>
void transform_output(const T* const* m, const T* bias, T* const* y, std::size_t o, int len) {
    if constexpr (Fixed > 0) len = Fixed;
    T x[positions][chunk], s[8][chunk];
    for (int p = 0; p < positions; ++p) std::copy_n(m[p] + o, len, x[p]);
    for (int i = 0; i < 4; ++i)  // s = m A (combines columns): s[2 i + b]
        for (int l = 0; l < len; ++l) {
            s[2 * i + 0][l] = x[4 * i + 0][l] + x[4 * i + 1][l] + x[4 * i + 2][l];
            s[2 * i + 1][l] = x[4 * i + 1][l] - x[4 * i + 2][l] - x[4 * i + 3][l];
        }
    T out[4][chunk];
    for (int b = 0; b < 2; ++b)  // A^T s (combines rows)
        for (int l = 0; l < len; ++l) {
            const T base = bias ? bias[o + l] : T(0);
            out[0 + b][l] = base + (s[0 + b][l] + s[2 + b][l] + s[4 + b][l]);
            out[2 + b][l] = base + (s[2 + b][l] - s[4 + b][l] - s[6 + b][l]);
        }
    for (int k = 0; k < 4; ++k)
        if (y[k]) std::copy_n(out[k], len, y[k] + o);
}

template <class T>
using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Scratch of the calling thread, kept between calls (a block's buffers are megabytes).
template <class T>
std::vector<T>& scratch(int which) {
    thread_local std::vector<T> buffers[2];
    return buffers[which];
}

// One block of tiles [first, first + count): transform, 16 GEMMs, inverse transform.
template <class T>
void convolve_block(const T* x, const tiling& g, const winograd_filter<T>& f, const T* bias, const T* zeros, T* y,
                    std::ptrdiff_t first, std::ptrdiff_t count) {
    const std::size_t in = static_cast<std::size_t>(f.in), out = static_cast<std::size_t>(f.out);
    std::vector<T>& v = scratch<T>(0);
    std::vector<T>& m = scratch<T>(1);
    v.resize(positions * static_cast<std::size_t>(count) * in);
    m.resize(positions * static_cast<std::size_t>(count) * out);
    const auto tile_origin = [&](std::ptrdiff_t tile, int& image, int& oy, int& ox) {
        const std::ptrdiff_t per_image = static_cast<std::ptrdiff_t>(g.th) * g.tw;
        image = static_cast<int>(tile / per_image);
        const std::ptrdiff_t r = tile % per_image;
        oy = 2 * static_cast<int>(r / g.tw);
        ox = 2 * static_cast<int>(r % g.tw);
    };

    for (std::ptrdiff_t t = 0; t < count; ++t) {
        int image, oy, ox;
        tile_origin(first + t, image, oy, ox);
        const T* d[positions];
        T* dst[positions];
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) {
                const int iy = oy - 1 + i, ix = ox - 1 + j;
                const bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
                d[4 * i + j] = inside ? x + ((static_cast<std::size_t>(image) * g.h + iy) * g.w + ix) * in : zeros;
            }
        for (int p = 0; p < positions; ++p) dst[p] = v.data() + (static_cast<std::size_t>(p) * count + t) * in;
        std::size_t c = 0;
        for (; c + chunk <= in; c += chunk) transform_input<chunk>(d, dst, c, chunk);
        if (c < in) transform_input<0>(d, dst, c, static_cast<int>(in - c));
    }

    for (int p = 0; p < positions; ++p) {
        const Eigen::Map<const row_major<T>> vp(v.data() + static_cast<std::size_t>(p) * count * in, count, f.in);
        const Eigen::Map<const row_major<T>> up(f.u.data() + static_cast<std::size_t>(p) * in * out, f.in, f.out);
        Eigen::Map<row_major<T>> mp(m.data() + static_cast<std::size_t>(p) * count * out, count, f.out);
        mp.noalias() = vp * up;
    }

    for (std::ptrdiff_t t = 0; t < count; ++t) {
        int image, oy, ox;
        tile_origin(first + t, image, oy, ox);
        const T* src[positions];
        T* dst[4];
        for (int p = 0; p < positions; ++p) src[p] = m.data() + (static_cast<std::size_t>(p) * count + t) * out;
        for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b) {
                const int py = oy + a, px = ox + b;
                dst[2 * a + b] = py < g.h && px < g.w ? y + ((static_cast<std::size_t>(image) * g.h + py) * g.w + px) * out : nullptr;
            }
        std::size_t o = 0;
        for (; o + chunk <= out; o += chunk) transform_output<chunk>(src, bias, dst, o, chunk);
        if (o < out) transform_output<0>(src, bias, dst, o, static_cast<int>(out - o));
    }
}

}  // namespace

// U = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], for tiles of 16 rows (filter in)
// x 32 columns (filter out): the taps are gathered into local arrays, transformed along the
// columns (vectorized) and stored as runs of 32. Stored element by element, the 16 U_p planes a
// power of two apart thrash one cache set, and the filter took as long as the convolution.
template <class T>
void winograd_transform_filter(const T* w, int out, int in, bool adjoint, winograd_filter<T>& filter) {
    filter.in = adjoint ? out : in;
    filter.out = adjoint ? in : out;
    const std::size_t rows = static_cast<std::size_t>(filter.in), cols = static_cast<std::size_t>(filter.out), plane = rows * cols;
    filter.u.resize(positions * plane);
    constexpr std::size_t tile_rows = 16;
    parallel_tasks((rows + tile_rows - 1) / tile_rows, [&](std::size_t task) {
        const T half = T(0.5);
        for (std::size_t c0 = 0; c0 < cols; c0 += chunk)
            for (std::size_t r = task * tile_rows; r < std::min(rows, (task + 1) * tile_rows); ++r) {
                const int len = static_cast<int>(std::min<std::size_t>(chunk, cols - c0));
                T g[9][chunk], gg[12][chunk], u[positions][chunk];
                for (int l = 0; l < len; ++l) {
                    const std::size_t col = c0 + static_cast<std::size_t>(l);
                    // w[o][c]: forward row c, column o; adjoint row o, column c, kernel turned 180 degrees
                    const T* k = adjoint ? w + (r * cols + col) * 9 : w + (col * rows + r) * 9;
                    for (int t = 0; t < 9; ++t) g[adjoint ? 8 - t : t][l] = k[t];
                }
                for (int j = 0; j < 3; ++j)  // G g, rows 3 i + j of g
                    for (int l = 0; l < len; ++l) {
                        gg[0 + j][l] = g[j][l];
                        gg[3 + j][l] = half * (g[j][l] + g[3 + j][l] + g[6 + j][l]);
                        gg[6 + j][l] = half * (g[j][l] - g[3 + j][l] + g[6 + j][l]);
                        gg[9 + j][l] = g[6 + j][l];
                    }
                for (int i = 0; i < 4; ++i)  // (G g) G^T
                    for (int l = 0; l < len; ++l) {
                        u[4 * i + 0][l] = gg[3 * i][l];
                        u[4 * i + 1][l] = half * (gg[3 * i][l] + gg[3 * i + 1][l] + gg[3 * i + 2][l]);
                        u[4 * i + 2][l] = half * (gg[3 * i][l] - gg[3 * i + 1][l] + gg[3 * i + 2][l]);
                        u[4 * i + 3][l] = gg[3 * i + 2][l];
                    }
                for (int p = 0; p < positions; ++p) std::copy_n(u[p], len, filter.u.data() + p * plane + r * cols + c0);
            }
    });
}

template <class T>
void winograd_conv3x3(const T* x, int n, int h, int w, const winograd_filter<T>& filter, const T* bias, T* y) {
    const tiling g{n, h, w, (h + 1) / 2, (w + 1) / 2};
    const std::ptrdiff_t tiles = g.tiles();
    if (tiles == 0) return;
    const std::ptrdiff_t block = tiles_per_block<T>(tiles, filter.in);
    const std::vector<T> zeros(static_cast<std::size_t>(filter.in), T(0));  // the padding's pixels
    parallel_tasks(static_cast<std::size_t>((tiles + block - 1) / block), [&](std::size_t b) {
        const std::ptrdiff_t first = static_cast<std::ptrdiff_t>(b) * block;
        convolve_block(x, g, filter, bias, zeros.data(), y, first, std::min(tiles, first + block) - first);
    });
}

template void winograd_transform_filter<float>(const float*, int, int, bool, winograd_filter<float>&);
template void winograd_transform_filter<double>(const double*, int, int, bool, winograd_filter<double>&);
template void winograd_conv3x3<float>(const float*, int, int, int, const winograd_filter<float>&, const float*, float*);
template void winograd_conv3x3<double>(const double*, int, int, int, const winograd_filter<double>&, const double*, double*);

}  // namespace retinanet::nn
