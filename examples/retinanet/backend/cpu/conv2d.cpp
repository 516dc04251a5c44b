#include "conv2d.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include <Eigen/Core>

#include <focal/core/error.hpp>

#include "gemm.hpp"
#include "support/check.hpp"

namespace retinanet::cpu {
namespace {

struct geometry {
    int c, n, h, w, k, s, p, ho, wo;
    std::size_t rows() const { return static_cast<std::size_t>(n) * ho * wo; }
    std::size_t patch() const { return static_cast<std::size_t>(k) * k * c; }
};

// Row (n, oy, ox) of cols holds the k x k x C_in patch under output pixel (oy, ox) of image n:
// cols[row][(i k + j) C_in + c] = x[n][oy s - p + i][ox s - p + j][c], 0 outside the image.
template <class T>
void patch_row(const T* x, const geometry& g, int n, int oy, int ox, T* row) {
    const std::size_t cin = static_cast<std::size_t>(g.c);
    for (int i = 0; i < g.k; ++i) {
        const int iy = oy * g.s - g.p + i;
        for (int j = 0; j < g.k; ++j) {
            const int ix = ox * g.s - g.p + j;
            T* dst = row + (static_cast<std::size_t>(i) * g.k + j) * cin;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) std::fill(dst, dst + cin, T(0));
            else {
                const T* src = x + ((static_cast<std::size_t>(n) * g.h + iy) * g.w + ix) * cin;
                std::copy(src, src + cin, dst);
            }
        }
    }
}

template <class T>
void im2col(const T* x, T* cols, const geometry& g) {
    const std::size_t patch = g.patch();
    parallel_tasks(static_cast<std::size_t>(g.n) * g.ho, [&](std::size_t task) {
        const int n = static_cast<int>(task / g.ho), oy = static_cast<int>(task % g.ho);
        for (int ox = 0; ox < g.wo; ++ox) patch_row(x, g, n, oy, ox, cols + (task * g.wo + ox) * patch);
    });
}

// Inference's y = im2col(x) Wt (+ bias) in blocks of rows, each built in the calling thread's
// scratch and multiplied while it is in cache: the rows are never written out whole (a 7x7 stem
// at 800 x 1344 has 158 MB of them). Blocks: about im2col_block_bytes of rows, a multiple of 48
// (the GEMM kernel's rows), and no more than a 16th of the rows (down to 48); they depend on the sizes only,
// so the bits do not depend on the thread count. Each block repacks Wt: worth it while a block has
// at least as many rows as Wt has columns (conv2d::forward), so for the stem and the narrow
// strided convolutions, not for the wide ones.
constexpr std::size_t im2col_block_bytes = std::size_t(1) << 20;

std::size_t im2col_block_rows(const geometry& g, std::size_t element_size) {
    const auto round = [](std::size_t r) { return std::max<std::size_t>(48, r / 48 * 48); };
    return std::min(round(im2col_block_bytes / (g.patch() * element_size)), round((g.rows() + 15) / 16 + 47));
}

template <class T>
void im2col_product(const T* x, const geometry& g, const T* wt, const T* bias, int cout, T* y) {
    using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const std::size_t patch = g.patch(), rows = g.rows(), pixels = static_cast<std::size_t>(g.ho) * g.wo;
    const std::size_t block = im2col_block_rows(g, sizeof(T));
    parallel_tasks((rows + block - 1) / block, [&](std::size_t b) {
        const std::size_t first = b * block, count = std::min(rows, first + block) - first;
        thread_local buffer<T> scratch;  // 64-byte aligned (tensor.hpp): the same rounding on every thread
        scratch.resize(count * patch);
        for (std::size_t r = first; r < first + count; ++r) {
            const std::size_t n = r / pixels, pixel = r % pixels;
            const int image = static_cast<int>(n), oy = static_cast<int>(pixel / g.wo), ox = static_cast<int>(pixel % g.wo);
            patch_row(x, g, image, oy, ox, scratch.data() + (r - first) * patch);
        }
        const Eigen::Map<const row_major> cols(scratch.data(), static_cast<std::ptrdiff_t>(count), static_cast<std::ptrdiff_t>(patch));
        const Eigen::Map<const row_major> w(wt, static_cast<std::ptrdiff_t>(patch), cout);
        Eigen::Map<row_major> out(y + first * static_cast<std::size_t>(cout), static_cast<std::ptrdiff_t>(count), cout);
        if (bias) {
            for (std::size_t r = 0; r < count; ++r) std::copy(bias, bias + cout, y + (first + r) * static_cast<std::size_t>(cout));
            out.noalias() += cols * w;
        } else
            out.noalias() = cols * w;
    });
}

// The adjoint of im2col: dx[n][iy][ix][c] += dcols[...]; one task per image, so no races.
template <class T>
void col2im(const T* dcols, T* dx, const geometry& g) {
    const std::size_t patch = g.patch(), cin = static_cast<std::size_t>(g.c);
    parallel_tasks(static_cast<std::size_t>(g.n), [&](std::size_t n) {
        for (int oy = 0; oy < g.ho; ++oy)
            for (int ox = 0; ox < g.wo; ++ox) {
                const T* row = dcols + ((n * g.ho + oy) * g.wo + ox) * patch;
                for (int i = 0; i < g.k; ++i) {
                    const int iy = oy * g.s - g.p + i;
                    if (iy < 0 || iy >= g.h) continue;
                    for (int j = 0; j < g.k; ++j) {
                        const int ix = ox * g.s - g.p + j;
                        if (ix < 0 || ix >= g.w) continue;
                        const T* src = row + (static_cast<std::size_t>(i) * g.k + j) * cin;
                        T* dst = dx + ((n * g.h + iy) * g.w + ix) * cin;
                        for (std::size_t c = 0; c < cin; ++c) dst[c] += src[c];
                    }
                }
            }
    });
}

}  // namespace

template <class T>
conv2d<T>::conv2d(const std::string& name, const model::conv_spec& spec, const winograd_options& winograd)
    : name_(name), opt_(spec), winograd_(winograd) {
    if (opt_.padding < 0) opt_.padding = opt_.kernel / 2;
    const char* where = "conv2d";
    require(opt_.in_channels > 0 && opt_.out_channels > 0, where, name + " channels", "positive",
            std::to_string(opt_.in_channels) + " -> " + std::to_string(opt_.out_channels));
    require(opt_.kernel > 0 && opt_.stride > 0, where, name + " kernel and stride", "positive",
            std::to_string(opt_.kernel) + ", " + std::to_string(opt_.stride));
    require(winograd_.max_tile == 0 || winograd_.max_tile == 2 || winograd_.max_tile == 4, where, name + " Winograd tile",
            "0 (off), 2 or 4", winograd_.max_tile);
    const auto out = static_cast<std::size_t>(opt_.out_channels), in = static_cast<std::size_t>(opt_.in_channels),
               k = static_cast<std::size_t>(opt_.kernel);
    weight = parameter<T>(name + ".weight", {out, in, k, k});
    if (opt_.bias) bias = parameter<T>(name + ".bias", {out});
}

template <class T>
int conv2d<T>::winograd_tile(int n, int h, int w) const noexcept {
    if (winograd_.max_tile == 0 || !same_3x3()) return 0;
    const std::ptrdiff_t f4_tiles = static_cast<std::ptrdiff_t>(n) * ((h + 3) / 4) * ((w + 3) / 4);
    return winograd_.max_tile == 4 && f4_tiles >= winograd_.min_tiles ? 4 : 2;
}

template <class T>
void conv2d<T>::refresh_weight_forms() {
    const std::vector<T>& w = weight.value;
    const std::size_t expected = static_cast<std::size_t>(opt_.out_channels) * opt_.in_channels * opt_.kernel * opt_.kernel;
    require(w.size() == expected, "conv2d", name_ + ".weight size", std::to_string(expected) + " (out x in x k x k)", w.size());
    if (w.size() == weights_seen_.size() && std::memcmp(w.data(), weights_seen_.data(), w.size() * sizeof(T)) == 0) return;
    weights_seen_ = w;
    wt_.clear();
    for (auto& f : filters_) f.u.clear();
}

template <class T>
const winograd_filter<T>& conv2d<T>::filter(int tile, bool adjoint) {
    winograd_filter<T>& f = filters_[tile == 4 ? 1 : 0];
    if (f.u.empty() || f.adjoint != adjoint) winograd_transform_filter(weight.value.data(), opt_.out_channels, opt_.in_channels, adjoint, tile, f);
    return f;
}

// For each tap t = i k + j, a transpose of the [C_out x C_in] slice, in 16 x 16 tiles: an element
// at a time, one side is always strided by a whole row (C_out or C_in k k floats), and the
// untiled loop took 6% of paper-config inference.
template <class T>
const std::vector<T>& conv2d<T>::transposed_weight() {
    if (!wt_.empty()) return wt_;
    const std::size_t taps = static_cast<std::size_t>(opt_.kernel) * opt_.kernel, cin = static_cast<std::size_t>(opt_.in_channels),
                      cout = static_cast<std::size_t>(opt_.out_channels);
    constexpr std::size_t tile = 16;
    wt_.resize(weight.value.size());
    const T* w = weight.value.data();
    for (std::size_t t = 0; t < taps; ++t)
        for (std::size_t o0 = 0; o0 < cout; o0 += tile)
            for (std::size_t c0 = 0; c0 < cin; c0 += tile) {
                const std::size_t o1 = std::min(cout, o0 + tile), c1 = std::min(cin, c0 + tile);
                for (std::size_t c = c0; c < c1; ++c)
                    for (std::size_t o = o0; o < o1; ++o) wt_[(t * cin + c) * cout + o] = w[(o * cin + c) * taps + t];
            }
    return wt_;
}

template <class T>
tensor<T> conv2d<T>::forward(const tensor<T>& x) {
    require(x.c == opt_.in_channels, "conv2d::forward", name_ + " input channels", std::to_string(opt_.in_channels), x.c);
    const int ho = output_size(x.h), wo = output_size(x.w);
    require(ho > 0 && wo > 0, "conv2d::forward", name_ + " input size", "at least the kernel after padding",
            std::to_string(x.h) + "x" + std::to_string(x.w));
    const geometry g{x.c, x.n, x.h, x.w, opt_.kernel, opt_.stride, opt_.padding, ho, wo};
    const auto rows = static_cast<std::ptrdiff_t>(g.rows()), patch = static_cast<std::ptrdiff_t>(g.patch());
    const int cout = opt_.out_channels;

    saved s{{}, x.n, x.h, x.w, ho, wo};
    tensor<T> y(cout, x.n, ho, wo, uninitialized);
    refresh_weight_forms();
    const int tile = winograd_tile(x.n, x.h, x.w);
    if (tile != 0) {
        winograd_conv3x3(x.data.data(), x.n, x.h, x.w, filter(tile, false), opt_.bias ? bias.value.data() : nullptr, y.data.data());
    } else if (!pointwise() && !grad_enabled() && im2col_block_rows(g, sizeof(T)) >= static_cast<std::size_t>(cout)) {
        im2col_product(x.data.data(), g, transposed_weight().data(), opt_.bias ? bias.value.data() : nullptr, cout, y.data.data());
    } else {
        const T* cols = x.data.data();
        if (!pointwise()) {
            s.cols.resize(static_cast<std::size_t>(rows) * patch);
            im2col(x.data.data(), s.cols.data(), g);
            cols = s.cols.data();
        }
        if (opt_.bias)
            for (std::ptrdiff_t r = 0; r < rows; ++r) std::copy(bias.value.begin(), bias.value.end(), y.data.begin() + r * cout);
        gemm_nn(cols, transposed_weight().data(), y.data.data(), rows, cout, patch, opt_.bias);
    }
    if (!grad_enabled()) return y;
    if (tile != 0 || pointwise()) s.cols = x.data;  // Winograd's gradients and 1x1's take the input; else im2col's rows
    cache_.push_back(std::move(s));
    return y;
}

template <class T>
tensor<T> conv2d<T>::backward(const tensor<T>& dy) {
    require(!cache_.empty(), "conv2d::backward", name_, "a forward pass in training mode first", "no saved forward state");
    saved s = std::move(cache_.back());
    cache_.pop_back();
    require(dy.c == opt_.out_channels && dy.n == s.n && dy.h == s.ho && dy.w == s.wo, "conv2d::backward", name_ + " dy",
            "the forward output's shape", "another shape");
    const geometry g{opt_.in_channels, s.n, s.h, s.w, opt_.kernel, opt_.stride, opt_.padding, s.ho, s.wo};
    const auto rows = static_cast<std::ptrdiff_t>(g.rows()), patch = static_cast<std::ptrdiff_t>(g.patch());
    const int cout = opt_.out_channels, cin = opt_.in_channels, k = opt_.kernel;
    if (opt_.bias && bias.trainable) {
        std::vector<double> sums(static_cast<std::size_t>(cout), 0.0);
        for (std::ptrdiff_t r = 0; r < rows; ++r) {
            const T* row = dy.data.data() + r * cout;
            for (int o = 0; o < cout; ++o) sums[o] += row[o];
        }
        for (int o = 0; o < cout; ++o) bias.grad[o] += static_cast<T>(sums[o]);
    }
    const int tile = winograd_tile(s.n, s.h, s.w);  // forward's: then s.cols holds the input
    if (tile != 0 && weight.trainable) winograd_weight_gradient(s.cols.data(), dy.data.data(), s.n, s.h, s.w, cin, cout, tile, weight.grad.data());
    else if (weight.trainable) {
        std::vector<T> dwt(static_cast<std::size_t>(patch) * cout);
        gemm_tn(s.cols.data(), dy.data.data(), dwt.data(), patch, cout, rows, false);
        for (int o = 0; o < cout; ++o)
            for (int c = 0; c < cin; ++c)
                for (int i = 0; i < k; ++i)
                    for (int j = 0; j < k; ++j)
                        weight.grad[((static_cast<std::size_t>(o) * cin + c) * k + i) * k + j] +=
                            dwt[((static_cast<std::size_t>(i) * k + j) * cin + c) * cout + o];
    }
    if (!opt_.input_grad) return {};
    refresh_weight_forms();  // parameters change only between steps: normally the forward's forms
    if (tile != 0) {
        tensor<T> dx(cin, s.n, s.h, s.w, uninitialized);
        winograd_conv3x3(dy.data.data(), s.n, s.h, s.w, filter(tile, true), static_cast<const T*>(nullptr), dx.data.data());
        return dx;
    }
    if (pointwise()) {
        tensor<T> dx(cin, s.n, s.h, s.w, uninitialized);
        gemm_nt(dy.data.data(), transposed_weight().data(), dx.data.data(), rows, patch, cout, false);
        return dx;
    }
    tensor<T> dx(cin, s.n, s.h, s.w);  // col2im accumulates
    gemm_nt(dy.data.data(), transposed_weight().data(), s.cols.data(), rows, patch, cout, false);  // reuse the buffer for dcols
    col2im(s.cols.data(), dx.data.data(), g);
    return dx;
}

template <class T>
void conv2d<T>::parameters(parameter_list<T>& out) {
    out.push_back(&weight);
    if (opt_.bias) out.push_back(&bias);
}

template class conv2d<float>;
template class conv2d<double>;

}  // namespace retinanet::cpu
