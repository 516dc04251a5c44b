#include "winograd.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

#include <Eigen/Core>

#include <focal/core/error.hpp>

#include "support/check.hpp"
#include "tensor.hpp"
#include "winograd_transforms.hpp"

namespace retinanet::cpu {
namespace {

using winograd::chunk;
using winograd::kernel;
using winograd::sandwich;

// The transformed input matrices of a block take about this many bytes (Eigen re-packs U_p once
// per block, so bigger blocks amortize that; smaller ones stay in cache).
constexpr std::size_t block_bytes = std::size_t(4) << 20;
// A block holds a multiple of this many tiles (the float GEMM kernel's row block), and a layer
// has at least min_blocks blocks when its tiles allow, to feed the threads.
constexpr std::ptrdiff_t tile_align = 48, min_blocks = 16;
// Tiles per task of the input and output transforms on a map of one block.
constexpr std::ptrdiff_t small_map_tiles = 16;

// The m x m output tiles of n images of h x w pixels: th x tw per image, the last row and column
// partial when m does not divide h or w.
template <int M>
struct tiling {
    static constexpr int alpha = M + 2, positions = alpha * alpha;
    int n, h, w, th, tw;
    tiling(int n_, int h_, int w_) : n(n_), h(h_), w(w_), th((h_ + M - 1) / M), tw((w_ + M - 1) / M) {}
    std::ptrdiff_t tiles() const { return static_cast<std::ptrdiff_t>(n) * th * tw; }

    // Pointers to the channel vectors of the alpha x alpha input pixels around tile `tile` (rows
    // oy - 1 ... oy + M), `zeros` for those in the padding.
    template <class T>
    void input_pixels(const T* x, std::size_t channels, const T* zeros, std::ptrdiff_t tile, const T** d) const {
        int image, oy, ox;
        origin(tile, image, oy, ox);
        for (int i = 0; i < alpha; ++i)
            for (int j = 0; j < alpha; ++j) {
                const int iy = oy - 1 + i, ix = ox - 1 + j;
                const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                d[alpha * i + j] = inside ? x + pixel(image, iy, ix) * channels : zeros;
            }
    }
    // Pointers to the channel vectors of the tile's M x M output pixels (of y, or of its
    // gradient: U = const T), null outside the image.
    template <class U>
    void output_pixels(U* y, std::size_t channels, std::ptrdiff_t tile, U** d) const {
        int image, oy, ox;
        origin(tile, image, oy, ox);
        for (int a = 0; a < M; ++a)
            for (int b = 0; b < M; ++b) d[M * a + b] = oy + a < h && ox + b < w ? y + pixel(image, oy + a, ox + b) * channels : nullptr;
    }

private:
    void origin(std::ptrdiff_t tile, int& image, int& oy, int& ox) const {
        const std::ptrdiff_t per_image = static_cast<std::ptrdiff_t>(th) * tw, r = tile % per_image;
        image = static_cast<int>(tile / per_image);
        oy = M * static_cast<int>(r / tw);
        ox = M * static_cast<int>(r % tw);
    }
    std::size_t pixel(int image, int y, int x) const { return (static_cast<std::size_t>(image) * h + y) * w + x; }
};

// fn.template operator()<Fixed>(c, len) over [0, channels) in chunks: Fixed = chunk for the full
// ones (the length known at compile time: the copies become vector moves), 0 for the tail.
template <class Fn>
void for_each_chunk(std::size_t channels, const Fn& fn) {
    std::size_t c = 0;
    for (; c + chunk <= channels; c += chunk) fn.template operator()<chunk>(c, chunk);
    if (c < channels) fn.template operator()<0>(c, static_cast<int>(channels - c));
}

template <int M, class T>
std::ptrdiff_t tiles_per_block(std::ptrdiff_t tiles, int in) {
    const auto round = [](std::ptrdiff_t t) { return std::max(tile_align, t / tile_align * tile_align); };
    const std::size_t bytes_per_tile = tiling<M>::positions * sizeof(T) * static_cast<std::size_t>(in);
    const std::ptrdiff_t by_cache = round(static_cast<std::ptrdiff_t>(block_bytes / bytes_per_tile));
    const std::ptrdiff_t by_threads = round((tiles + min_blocks - 1) / min_blocks + tile_align - 1);
    return std::min(by_cache, by_threads);
}

// Channels [c, c + len) of one tile through a transform: `from` rows in, `to` rows out
// (null destinations are skipped: output pixels outside the image). Fixed > 0: len == Fixed.
template <const auto& L, const auto& R, int Fixed, class T>
void transform_tile(const T* const* src, T* const* dst, std::size_t c, int len, const T* bias = nullptr) {
    if constexpr (Fixed > 0) len = Fixed;
    constexpr int from = L.cols * R.cols, to = L.rows * R.rows;
    T x[from][chunk], z[to][chunk];
    for (int k = 0; k < from; ++k) std::copy_n(src[k] + c, len, x[k]);
    sandwich<L, R>(x, z, len);
    for (int k = 0; k < to; ++k) {
        if (!dst[k]) continue;
        if (bias)
            for (int l = 0; l < len; ++l) z[k][l] = bias[c + l] + z[k][l];
        std::copy_n(z[k], len, dst[k] + c);
    }
}

template <class T>
using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Scratch of the calling thread, kept between calls (a block's buffers are megabytes).
template <class T>
buffer<T>& scratch(int which) {
    thread_local buffer<T> buffers[2];
    return buffers[which];
}

// V = B^T d B of tiles [first, first + count): position p's row for tile first + t at
// v + (p rows + row0 + t) channels (rows = count for a block's scratch, all tiles for a map).
template <int M, class T>
void transform_inputs(const T* x, const tiling<M>& g, std::size_t channels, const T* zeros, std::ptrdiff_t first, std::ptrdiff_t count,
                      std::ptrdiff_t rows, std::ptrdiff_t row0, T* v) {
    constexpr int positions = tiling<M>::positions;
    for (std::ptrdiff_t t = 0; t < count; ++t) {
        const T* d[positions];
        T* dst[positions];
        g.input_pixels(x, channels, zeros, first + t, d);
        for (int p = 0; p < positions; ++p) dst[p] = v + (static_cast<std::size_t>(p) * rows + row0 + t) * channels;
        for_each_chunk(channels, [&]<int Fixed>(std::size_t c, int len) {
            transform_tile<kernel<M>::bt, kernel<M>::bt, Fixed>(d, dst, c, len);
        });
    }
}

// M_p = V_p U_p for position p: rows tiles of V and M from row0 (of `rows` per position), the
// calling thread's GEMM.
template <class T>
void multiply_position(const T* v, const winograd_filter<T>& f, int p, std::ptrdiff_t rows, std::ptrdiff_t row0, std::ptrdiff_t count, T* m) {
    const std::size_t in = static_cast<std::size_t>(f.in), out = static_cast<std::size_t>(f.out);
    const Eigen::Map<const row_major<T>> vp(v + (static_cast<std::size_t>(p) * rows + row0) * in, count, f.in);
    const Eigen::Map<const row_major<T>> up(f.u.data() + static_cast<std::size_t>(p) * in * out, f.in, f.out);
    Eigen::Map<row_major<T>> mp(m + (static_cast<std::size_t>(p) * rows + row0) * out, count, f.out);
    mp.noalias() = vp * up;
}

// Y = A^T M A (+ bias) of tiles [first, first + count), M laid out as transform_inputs' V.
template <int M, class T>
void transform_outputs(const T* m, const tiling<M>& g, std::size_t out, const T* bias, std::ptrdiff_t first, std::ptrdiff_t count,
                       std::ptrdiff_t rows, std::ptrdiff_t row0, T* y) {
    constexpr int positions = tiling<M>::positions;
    for (std::ptrdiff_t t = 0; t < count; ++t) {
        const T* src[positions];
        T* dst[M * M];
        for (int p = 0; p < positions; ++p) src[p] = m + (static_cast<std::size_t>(p) * rows + row0 + t) * out;
        g.output_pixels(y, out, first + t, dst);
        for_each_chunk(out, [&]<int Fixed>(std::size_t o, int len) {
            transform_tile<kernel<M>::at, kernel<M>::at, Fixed>(src, dst, o, len, bias);
        });
    }
}

// One block of tiles [first, first + count) on the calling thread: transform, a GEMM per
// position, inverse transform.
template <int M, class T>
void convolve_block(const T* x, const tiling<M>& g, const winograd_filter<T>& f, const T* bias, const T* zeros, T* y,
                    std::ptrdiff_t first, std::ptrdiff_t count) {
    constexpr int positions = tiling<M>::positions;
    const std::size_t in = static_cast<std::size_t>(f.in), out = static_cast<std::size_t>(f.out);
    buffer<T>& v = scratch<T>(0);
    buffer<T>& m = scratch<T>(1);
    v.resize(positions * static_cast<std::size_t>(count) * in);
    m.resize(positions * static_cast<std::size_t>(count) * out);
    transform_inputs(x, g, in, zeros, first, count, count, 0, v.data());
    for (int p = 0; p < positions; ++p) multiply_position(v.data(), f, p, count, 0, count, m.data());
    transform_outputs(m.data(), g, out, bias, first, count, count, 0, y);
}

// U_p[row][col] = (G g G^T)_p with row = filter in, col = filter out, per row and chunk of 32
// columns: the 9 taps of each (row, col) are gathered, and the results stored as runs of 32.
// Stored element by element, the U_p planes a power of two apart thrash one cache set, and the
// filter took as long as the convolution.
template <int M, class T>
void transform_filter(const T* w, int out, int in, bool adjoint, winograd_filter<T>& filter) {
    constexpr int positions = tiling<M>::positions;
    const std::size_t rows = static_cast<std::size_t>(adjoint ? out : in), cols = static_cast<std::size_t>(adjoint ? in : out),
                      plane = rows * cols;
    filter.u.resize(positions * plane);
    constexpr std::size_t tile_rows = 16;
    parallel_tasks((rows + tile_rows - 1) / tile_rows, [&](std::size_t task) {
        for (std::size_t c0 = 0; c0 < cols; c0 += chunk)
            for (std::size_t r = task * tile_rows; r < std::min(rows, (task + 1) * tile_rows); ++r) {
                const int len = static_cast<int>(std::min<std::size_t>(chunk, cols - c0));
                T g[9][chunk], u[positions][chunk];
                for (int l = 0; l < len; ++l) {
                    const std::size_t col = c0 + static_cast<std::size_t>(l);
                    // w[o][c]: forward row c, column o; adjoint row o, column c, kernel turned 180 degrees
                    const T* k = adjoint ? w + (r * cols + col) * 9 : w + (col * rows + r) * 9;
                    for (int t = 0; t < 9; ++t) g[adjoint ? 8 - t : t][l] = k[t];
                }
                sandwich<kernel<M>::g, kernel<M>::g>(g, u, len);
                for (int p = 0; p < positions; ++p) std::copy_n(u[p], len, filter.u.data() + p * plane + r * cols + c0);
            }
    });
    filter.tile = M;  // described once its values are in place
    filter.adjoint = adjoint;
    filter.in = static_cast<int>(rows);
    filter.out = static_cast<int>(cols);
}

// dw[o][c] += (G^T dU_p G) for dU[p][c][o] and dw[o][c][3][3], per row c and chunk of 32 o's.
template <int M, class T>
void add_filter_gradient(const T* du, int out, int in, T* dw) {
    constexpr int positions = tiling<M>::positions;
    const std::size_t rows = static_cast<std::size_t>(in), cols = static_cast<std::size_t>(out), plane = rows * cols;
    parallel_tasks((cols + chunk - 1) / chunk, [&](std::size_t task) {
        const std::size_t o0 = task * chunk;
        const int len = static_cast<int>(std::min<std::size_t>(chunk, cols - o0));
        for (std::size_t c = 0; c < rows; ++c) {
            T x[positions][chunk], g[9][chunk];
            for (int p = 0; p < positions; ++p) std::copy_n(du + p * plane + c * cols + o0, len, x[p]);
            sandwich<kernel<M>::gt, kernel<M>::gt>(x, g, len);
            for (int l = 0; l < len; ++l) {
                T* k = dw + ((o0 + static_cast<std::size_t>(l)) * rows + c) * 9;
                for (int t = 0; t < 9; ++t) k[t] += g[t][l];
            }
        }
    });
}

template <int M, class T>
void convolve(const T* x, int n, int h, int w, const winograd_filter<T>& filter, const T* bias, T* y) {
    constexpr int positions = tiling<M>::positions;
    const tiling<M> g(n, h, w);
    const std::ptrdiff_t tiles = g.tiles();
    if (tiles == 0) return;
    const std::size_t in = static_cast<std::size_t>(filter.in), out = static_cast<std::size_t>(filter.out);
    const std::vector<T> zeros(in, T(0));  // the padding's pixels
    if (static_cast<std::size_t>(tiles) * positions * sizeof(T) * in <= block_bytes) {
        // A map whose transformed input fits one block: each step is shared among the threads
        // instead of the tiles (the GEMMs by position), which balances few tiles better.
        buffer<T> v(positions * static_cast<std::size_t>(tiles) * in), m(positions * static_cast<std::size_t>(tiles) * out);
        const std::size_t tasks = static_cast<std::size_t>((tiles + small_map_tiles - 1) / small_map_tiles);
        const auto range = [&](std::size_t task) {
            const std::ptrdiff_t first = static_cast<std::ptrdiff_t>(task) * small_map_tiles;
            return std::pair{first, std::min(tiles, first + small_map_tiles) - first};
        };
        parallel_tasks(tasks, [&](std::size_t task) {
            const auto [first, count] = range(task);
            transform_inputs(x, g, in, zeros.data(), first, count, tiles, first, v.data());
        });
        parallel_tasks(positions, [&](std::size_t p) { multiply_position(v.data(), filter, static_cast<int>(p), tiles, 0, tiles, m.data()); });
        parallel_tasks(tasks, [&](std::size_t task) {
            const auto [first, count] = range(task);
            transform_outputs(m.data(), g, out, bias, first, count, tiles, first, y);
        });
        return;
    }
    const std::ptrdiff_t block = tiles_per_block<M, T>(tiles, filter.in);
    parallel_tasks(static_cast<std::size_t>((tiles + block - 1) / block), [&](std::size_t b) {
        const std::ptrdiff_t first = static_cast<std::ptrdiff_t>(b) * block;
        convolve_block(x, g, filter, bias, zeros.data(), y, first, std::min(tiles, first + block) - first);
    });
}

template <int M, class T>
void weight_gradient(const T* x, const T* dy, int n, int h, int w, int in, int out, T* dw) {
    constexpr int positions = tiling<M>::positions;
    const tiling<M> g(n, h, w);
    const std::ptrdiff_t tiles = g.tiles();
    if (tiles == 0) return;
    const std::size_t cin = static_cast<std::size_t>(in), cout = static_cast<std::size_t>(out), rows = static_cast<std::size_t>(tiles);
    buffer<T> v(positions * rows * cin), dm(positions * rows * cout), du(positions * cin * cout);
    const std::vector<T> zeros(std::max(cin, cout), T(0));
    const std::ptrdiff_t block = tiles_per_block<M, T>(tiles, in);
    parallel_tasks(static_cast<std::size_t>((tiles + block - 1) / block), [&](std::size_t b) {
        const std::ptrdiff_t first = static_cast<std::ptrdiff_t>(b) * block, count = std::min(tiles, first + block) - first;
        transform_inputs(x, g, cin, zeros.data(), first, count, tiles, first, v.data());
        for (std::ptrdiff_t t = first; t < first + count; ++t) {  // dM = A dY A^T, zeros outside the image
            const T* pixels[M * M];
            const T* src[M * M];
            T* dst[positions];
            g.output_pixels(dy, cout, t, pixels);
            for (int k = 0; k < M * M; ++k) src[k] = pixels[k] ? pixels[k] : zeros.data();
            for (int p = 0; p < positions; ++p) dst[p] = dm.data() + (static_cast<std::size_t>(p) * rows + static_cast<std::size_t>(t)) * cout;
            for_each_chunk(cout, [&]<int Fixed>(std::size_t o, int len) {
                transform_tile<kernel<M>::a, kernel<M>::a, Fixed>(src, dst, o, len);
            });
        }
    });
    // dU_p = V_p^T dM_p, one position per task (16 or 36 tasks: enough to share even small
    // products among a few threads); each on one thread, so the bits do not depend on the thread count.
    parallel_tasks(positions, [&](std::size_t p) {
        const Eigen::Map<const row_major<T>> vp(v.data() + p * rows * cin, tiles, in), dmp(dm.data() + p * rows * cout, tiles, out);
        Eigen::Map<row_major<T>> dup(du.data() + p * cin * cout, in, out);
        dup.noalias() = vp.transpose() * dmp;
    });
    add_filter_gradient<M>(du.data(), out, in, dw);
}

void require_tile(int tile, const char* where) {
    require(tile == 2 || tile == 4, where, "tile", "2 or 4 (F(2x2, 3x3) or F(4x4, 3x3))", tile);
}

}  // namespace

template <class T>
void winograd_transform_filter(const T* w, int out, int in, bool adjoint, int tile, winograd_filter<T>& filter) {
    require_tile(tile, "winograd_transform_filter");
    if (tile == 2) transform_filter<2>(w, out, in, adjoint, filter);
    else transform_filter<4>(w, out, in, adjoint, filter);
}

template <class T>
void winograd_conv3x3(const T* x, int n, int h, int w, const winograd_filter<T>& filter, const T* bias, T* y) {
    require_tile(filter.tile, "winograd_conv3x3");
    if (filter.tile == 2) convolve<2>(x, n, h, w, filter, bias, y);
    else convolve<4>(x, n, h, w, filter, bias, y);
}

template <class T>
void winograd_weight_gradient(const T* x, const T* dy, int n, int h, int w, int in, int out, int tile, T* dw) {
    require_tile(tile, "winograd_weight_gradient");
    if (tile == 2) weight_gradient<2>(x, dy, n, h, w, in, out, dw);
    else weight_gradient<4>(x, dy, n, h, w, in, out, dw);
}

#define RETINANET_WINOGRAD(T)                                                                                      \
    template void winograd_transform_filter<T>(const T*, int, int, bool, int, winograd_filter<T>&);              \
    template void winograd_conv3x3<T>(const T*, int, int, int, const winograd_filter<T>&, const T*, T*);         \
    template void winograd_weight_gradient<T>(const T*, const T*, int, int, int, int, int, int, T*);
RETINANET_WINOGRAD(float)
RETINANET_WINOGRAD(double)
#undef RETINANET_WINOGRAD

}  // namespace retinanet::cpu
