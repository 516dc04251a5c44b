#include "winograd.hpp"

#include <algorithm>
#include <cstddef>

#include <Eigen/Core>

#include "gemm.hpp"
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

// The 2x2 output tiles of n images of h x w pixels: th x tw per image, the last row and column
// partial when h or w is odd.
struct tiling {
    int n, h, w, th, tw;
    tiling(int n_, int h_, int w_) : n(n_), h(h_), w(w_), th((h_ + 1) / 2), tw((w_ + 1) / 2) {}
    std::ptrdiff_t tiles() const { return static_cast<std::ptrdiff_t>(n) * th * tw; }

    // Pointers to the channel vectors of the 4x4 input pixels around tile `tile` (rows oy - 1 ...
    // oy + 2), `zeros` for those in the padding.
    template <class T>
    void input_pixels(const T* x, std::size_t channels, const T* zeros, std::ptrdiff_t tile, const T** d) const {
        int image, oy, ox;
        origin(tile, image, oy, ox);
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) {
                const int iy = oy - 1 + i, ix = ox - 1 + j;
                const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                d[4 * i + j] = inside ? x + pixel(image, iy, ix) * channels : zeros;
            }
    }
    // Pointers to the channel vectors of the tile's 2x2 output pixels, null outside the image.
    template <class T>
    void output_pixels(T* y, std::size_t channels, std::ptrdiff_t tile, T** d) const {
        int image, oy, ox;
        origin(tile, image, oy, ox);
        for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b)
                d[2 * a + b] = oy + a < h && ox + b < w ? y + pixel(image, oy + a, ox + b) * channels : nullptr;
    }

private:
    void origin(std::ptrdiff_t tile, int& image, int& oy, int& ox) const {
        const std::ptrdiff_t per_image = static_cast<std::ptrdiff_t>(th) * tw, r = tile % per_image;
        image = static_cast<int>(tile / per_image);
        oy = 2 * static_cast<int>(r / tw);
        ox = 2 * static_cast<int>(r % tw);
    }
    std::size_t pixel(int image, int y, int x) const { return (static_cast<std::size_t>(image) * h + y) * w + x; }
};

// fn.template operator()<Fixed>(c, len) over [0, channels) in chunks: Fixed = chunk for the full
// ones (the length known at compile time), 0 for the tail.
template <class Fn>
void for_each_chunk(std::size_t channels, const Fn& fn) {
    std::size_t c = 0;
    for (; c + chunk <= channels; c += chunk) fn.template operator()<chunk>(c, chunk);
    if (c < channels) fn.template operator()<0>(c, static_cast<int>(channels - c));
}

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

// The adjoint of transform_output: dm = A dy A^T, A = [1 0; 1 1; 1 -1; 0 -1], from the 2x2
// output gradients dy[2 a + b] (zeros outside the image) to the 16 rows dm[p].
template <int Fixed, class T>
void transform_output_gradient(const T* const* dy, T* const* dm, std::size_t o, int len) {
    if constexpr (Fixed > 0) len = Fixed;
    T x[4][chunk], r[8][chunk], out[positions][chunk];
    for (int k = 0; k < 4; ++k) std::copy_n(dy[k] + o, len, x[k]);
    for (int b = 0; b < 2; ++b)  // r = A dy (rows i = 0..3, column b): r[2 i + b]
        for (int l = 0; l < len; ++l) {
            r[0 + b][l] = x[b][l];
            r[2 + b][l] = x[b][l] + x[2 + b][l];
            r[4 + b][l] = x[b][l] - x[2 + b][l];
            r[6 + b][l] = -x[2 + b][l];
        }
    for (int i = 0; i < 4; ++i)  // r A^T
        for (int l = 0; l < len; ++l) {
            out[4 * i + 0][l] = r[2 * i][l];
            out[4 * i + 1][l] = r[2 * i][l] + r[2 * i + 1][l];
            out[4 * i + 2][l] = r[2 * i][l] - r[2 * i + 1][l];
            out[4 * i + 3][l] = -r[2 * i + 1][l];
        }
    for (int p = 0; p < positions; ++p) std::copy_n(out[p], len, dm[p] + o);
}

template <class T>
using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Scratch of the calling thread, kept between calls (a block's buffers are megabytes).
template <class T>
std::vector<T>& scratch(int which) {
    thread_local std::vector<T> buffers[2];
    return buffers[which];
}

// The 16 transformed matrices of tiles [first, first + count): position p's row t at
// v + (p rows + t) channels, rows = count for a block's scratch, all tiles for a whole map.
template <class T>
void transform_inputs(const T* x, const tiling& g, std::size_t channels, const T* zeros, std::ptrdiff_t first, std::ptrdiff_t count,
                      std::ptrdiff_t rows, std::ptrdiff_t row0, T* v) {
    for (std::ptrdiff_t t = 0; t < count; ++t) {
        const T* d[positions];
        T* dst[positions];
        g.input_pixels(x, channels, zeros, first + t, d);
        for (int p = 0; p < positions; ++p) dst[p] = v + (static_cast<std::size_t>(p) * rows + row0 + t) * channels;
        for_each_chunk(channels, [&]<int Fixed>(std::size_t c, int len) { transform_input<Fixed>(d, dst, c, len); });
    }
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
    transform_inputs(x, g, in, zeros, first, count, count, 0, v.data());
    for (int p = 0; p < positions; ++p) {
        const Eigen::Map<const row_major<T>> vp(v.data() + static_cast<std::size_t>(p) * count * in, count, f.in);
        const Eigen::Map<const row_major<T>> up(f.u.data() + static_cast<std::size_t>(p) * in * out, f.in, f.out);
        Eigen::Map<row_major<T>> mp(m.data() + static_cast<std::size_t>(p) * count * out, count, f.out);
        mp.noalias() = vp * up;
    }
    for (std::ptrdiff_t t = 0; t < count; ++t) {
        const T* src[positions];
        T* dst[4];
        for (int p = 0; p < positions; ++p) src[p] = m.data() + (static_cast<std::size_t>(p) * count + t) * out;
        g.output_pixels(y, out, first + t, dst);
        for_each_chunk(out, [&]<int Fixed>(std::size_t o, int len) { transform_output<Fixed>(src, bias, dst, o, len); });
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

// dw += G^T dU_p G, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1] (the adjoint of U = G g G^T),
// for dU[p][c][o] and dw[o][c][3][3]: per row c and chunk of 32 o's, the 16 dU runs are read into
// local arrays and the 9 taps of each (o, c) added as one run of 9.
template <class T>
void add_filter_gradient(const T* du, int out, int in, T* dw) {
    const std::size_t rows = static_cast<std::size_t>(in), cols = static_cast<std::size_t>(out), plane = rows * cols;
    parallel_tasks((cols + chunk - 1) / chunk, [&](std::size_t task) {
        const std::size_t o0 = task * chunk;
        const int len = static_cast<int>(std::min<std::size_t>(chunk, cols - o0));
        const T half = T(0.5);
        for (std::size_t c = 0; c < rows; ++c) {
            T x[positions][chunk], left[12][chunk], g[9][chunk];
            for (int p = 0; p < positions; ++p) std::copy_n(du + p * plane + c * cols + o0, len, x[p]);
            for (int j = 0; j < 4; ++j)  // left = G^T dU (rows i = 0..2, column j): left[4 i + j]
                for (int l = 0; l < len; ++l) {
                    left[0 + j][l] = x[j][l] + half * (x[4 + j][l] + x[8 + j][l]);
                    left[4 + j][l] = half * (x[4 + j][l] - x[8 + j][l]);
                    left[8 + j][l] = half * (x[4 + j][l] + x[8 + j][l]) + x[12 + j][l];
                }
            for (int i = 0; i < 3; ++i)  // left G
                for (int l = 0; l < len; ++l) {
                    g[3 * i + 0][l] = left[4 * i][l] + half * (left[4 * i + 1][l] + left[4 * i + 2][l]);
                    g[3 * i + 1][l] = half * (left[4 * i + 1][l] - left[4 * i + 2][l]);
                    g[3 * i + 2][l] = half * (left[4 * i + 1][l] + left[4 * i + 2][l]) + left[4 * i + 3][l];
                }
            for (int l = 0; l < len; ++l) {
                T* k = dw + ((o0 + static_cast<std::size_t>(l)) * rows + c) * 9;
                for (int t = 0; t < 9; ++t) k[t] += g[t][l];
            }
        }
    });
}

template <class T>
void winograd_conv3x3(const T* x, int n, int h, int w, const winograd_filter<T>& filter, const T* bias, T* y) {
    const tiling g(n, h, w);
    const std::ptrdiff_t tiles = g.tiles();
    if (tiles == 0) return;
    const std::ptrdiff_t block = tiles_per_block<T>(tiles, filter.in);
    const std::vector<T> zeros(static_cast<std::size_t>(filter.in), T(0));  // the padding's pixels
    parallel_tasks(static_cast<std::size_t>((tiles + block - 1) / block), [&](std::size_t b) {
        const std::ptrdiff_t first = static_cast<std::ptrdiff_t>(b) * block;
        convolve_block(x, g, filter, bias, zeros.data(), y, first, std::min(tiles, first + block) - first);
    });
}

template <class T>
void winograd_weight_gradient(const T* x, const T* dy, int n, int h, int w, int in, int out, T* dw) {
    const tiling g(n, h, w);
    const std::ptrdiff_t tiles = g.tiles();
    if (tiles == 0) return;
    const std::size_t cin = static_cast<std::size_t>(in), cout = static_cast<std::size_t>(out), rows = static_cast<std::size_t>(tiles);
    buffer<T> v(positions * rows * cin), dm(positions * rows * cout), du(positions * cin * cout);
    const std::vector<T> zeros(std::max(cin, cout), T(0));
    const std::ptrdiff_t block = tiles_per_block<T>(tiles, in);
    parallel_tasks(static_cast<std::size_t>((tiles + block - 1) / block), [&](std::size_t b) {
        const std::ptrdiff_t first = static_cast<std::ptrdiff_t>(b) * block, count = std::min(tiles, first + block) - first;
        transform_inputs(x, g, cin, zeros.data(), first, count, tiles, first, v.data());
        for (std::ptrdiff_t t = first; t < first + count; ++t) {
            T* grad[4];
            const T* src[4];
            T* dst[positions];
            g.output_pixels(const_cast<T*>(dy), cout, t, grad);
            for (int k = 0; k < 4; ++k) src[k] = grad[k] ? grad[k] : zeros.data();
            for (int p = 0; p < positions; ++p) dst[p] = dm.data() + (static_cast<std::size_t>(p) * rows + static_cast<std::size_t>(t)) * cout;
            for_each_chunk(cout, [&]<int Fixed>(std::size_t o, int len) { transform_output_gradient<Fixed>(src, dst, o, len); });
        }
    });
    // dU_p = V_p^T dM_p: gemm_tn sums over the tiles in slices fixed by the sizes, so the bits do
    // not depend on the thread count.
    for (std::size_t p = 0; p < positions; ++p)
        gemm_tn(v.data() + p * rows * cin, dm.data() + p * rows * cout, du.data() + p * cin * cout, in, out, tiles, false);
    add_filter_gradient(du.data(), out, in, dw);
}

template void winograd_transform_filter<float>(const float*, int, int, bool, winograd_filter<float>&);
template void winograd_transform_filter<double>(const double*, int, int, bool, winograd_filter<double>&);
template void winograd_conv3x3<float>(const float*, int, int, int, const winograd_filter<float>&, const float*, float*);
template void winograd_weight_gradient<float>(const float*, const float*, int, int, int, int, int, float*);
template void winograd_weight_gradient<double>(const double*, const double*, int, int, int, int, int, double*);
template void winograd_conv3x3<double>(const double*, int, int, int, const winograd_filter<double>&, const double*, double*);

}  // namespace retinanet::nn
