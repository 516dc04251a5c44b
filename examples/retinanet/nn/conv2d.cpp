#include "conv2d.hpp"

#include <algorithm>
#include <string>

#include <focal/core/error.hpp>

#include "gemm.hpp"

namespace retinanet::nn {
namespace {

struct geometry {
    int c, n, h, w, k, s, p, ho, wo;
    std::size_t columns() const { return static_cast<std::size_t>(n) * ho * wo; }
};

// Output columns ox whose input column ox*s - p + j lies in [0, w): [lo, hi).
inline void valid_range(const geometry& g, int j, int& lo, int& hi) {
    const int first = g.p - j, last = g.w - 1 + g.p - j;  // ox s must lie in [first, last]
    lo = first > 0 ? (first + g.s - 1) / g.s : 0;
    hi = last < 0 ? 0 : std::min(g.wo, last / g.s + 1);
    hi = std::max(hi, lo);
}

// cols[(c k + i) k + j][n ho wo + oy wo + ox] = x[c][n][oy s - p + i][ox s - p + j] (0 outside).
template <class T>
void im2col(const T* x, T* cols, const geometry& g) {
    const std::size_t m = g.columns(), plane = static_cast<std::size_t>(g.h) * g.w;
    parallel_tasks(static_cast<std::size_t>(g.c), [&](std::size_t c) {
        for (int i = 0; i < g.k; ++i)
            for (int j = 0; j < g.k; ++j) {
                T* row = cols + ((c * g.k + i) * g.k + j) * m;
                int lo, hi;
                valid_range(g, j, lo, hi);
                for (int n = 0; n < g.n; ++n) {
                    const T* src = x + (c * g.n + n) * plane;
                    for (int oy = 0; oy < g.ho; ++oy) {
                        T* dst = row + (static_cast<std::size_t>(n) * g.ho + oy) * g.wo;
                        const int iy = oy * g.s - g.p + i;
                        if (iy < 0 || iy >= g.h) {
                            std::fill(dst, dst + g.wo, T(0));
                            continue;
                        }
                        std::fill(dst, dst + lo, T(0));
                        const T* in = src + static_cast<std::size_t>(iy) * g.w - g.p + j;
                        if (g.s == 1) std::copy(in + lo, in + hi, dst + lo);
                        else
                            for (int ox = lo; ox < hi; ++ox) dst[ox] = in[ox * g.s];
                        std::fill(dst + hi, dst + g.wo, T(0));
                    }
                }
            }
    });
}

// The adjoint of im2col: dx[c][n][iy][ix] += dcols[...]; one task per channel, so no races.
template <class T>
void col2im(const T* dcols, T* dx, const geometry& g) {
    const std::size_t m = g.columns(), plane = static_cast<std::size_t>(g.h) * g.w;
    parallel_tasks(static_cast<std::size_t>(g.c), [&](std::size_t c) {
        for (int i = 0; i < g.k; ++i)
            for (int j = 0; j < g.k; ++j) {
                const T* row = dcols + ((c * g.k + i) * g.k + j) * m;
                int lo, hi;
                valid_range(g, j, lo, hi);
                for (int n = 0; n < g.n; ++n) {
                    T* dst_plane = dx + (c * g.n + n) * plane;
                    for (int oy = 0; oy < g.ho; ++oy) {
                        const int iy = oy * g.s - g.p + i;
                        if (iy < 0 || iy >= g.h) continue;
                        const T* src = row + (static_cast<std::size_t>(n) * g.ho + oy) * g.wo;
                        T* out = dst_plane + static_cast<std::size_t>(iy) * g.w - g.p + j;
                        if (g.s == 1)
                            for (int ox = lo; ox < hi; ++ox) out[ox] += src[ox];
                        else
                            for (int ox = lo; ox < hi; ++ox) out[ox * g.s] += src[ox];
                    }
                }
            }
    });
}

}  // namespace

template <class T>
conv2d<T>::conv2d(const std::string& name, const conv2d_options& options) : name_(name), opt_(options) {
    if (opt_.padding < 0) opt_.padding = opt_.kernel / 2;
    const char* where = "conv2d";
    focal::detail::require(opt_.in_channels > 0 && opt_.out_channels > 0, where, name + " channels", "positive",
                           std::to_string(opt_.in_channels) + " -> " + std::to_string(opt_.out_channels));
    focal::detail::require(opt_.kernel > 0 && opt_.stride > 0, where, name + " kernel and stride", "positive",
                           std::to_string(opt_.kernel) + ", " + std::to_string(opt_.stride));
    const auto out = static_cast<std::size_t>(opt_.out_channels), in = static_cast<std::size_t>(opt_.in_channels),
               k = static_cast<std::size_t>(opt_.kernel);
    weight = parameter<T>(name + ".weight", {out, in, k, k});
    if (opt_.bias) bias = parameter<T>(name + ".bias", {out});
}

template <class T>
tensor<T> conv2d<T>::forward(const tensor<T>& x) {
    focal::detail::require(x.c == opt_.in_channels, "conv2d::forward", name_ + " input channels",
                           std::to_string(opt_.in_channels), x.c);
    const int ho = output_size(x.h), wo = output_size(x.w);
    focal::detail::require(ho > 0 && wo > 0, "conv2d::forward", name_ + " input size",
                           "at least the kernel after padding", std::to_string(x.h) + "x" + std::to_string(x.w));
    const geometry g{x.c, x.n, x.h, x.w, opt_.kernel, opt_.stride, opt_.padding, ho, wo};
    const auto m = static_cast<std::ptrdiff_t>(g.columns());
    const auto kdim = static_cast<std::ptrdiff_t>(x.c) * opt_.kernel * opt_.kernel;

    saved s{{}, x.n, x.h, x.w, ho, wo};
    if (pointwise()) s.cols = x.data;
    else {
        s.cols.resize(static_cast<std::size_t>(kdim) * m);
        im2col(x.data.data(), s.cols.data(), g);
    }
    tensor<T> y(opt_.out_channels, x.n, ho, wo, uninitialized);
    if (opt_.bias)
        for (int o = 0; o < opt_.out_channels; ++o) std::fill_n(y.data.begin() + o * m, m, bias.value[o]);
    gemm_nn(weight.value.data(), s.cols.data(), y.data.data(), opt_.out_channels, m, kdim, opt_.bias);
    if (grad_enabled()) cache_.push_back(std::move(s));
    return y;
}

template <class T>
tensor<T> conv2d<T>::backward(const tensor<T>& dy) {
    focal::detail::require(!cache_.empty(), "conv2d::backward", name_, "a forward pass in training mode first",
                           "no saved forward state");
    saved s = std::move(cache_.back());
    cache_.pop_back();
    focal::detail::require(dy.c == opt_.out_channels && dy.n == s.n && dy.h == s.ho && dy.w == s.wo, "conv2d::backward",
                           name_ + " dy", "the forward output's shape", "another shape");
    const geometry g{opt_.in_channels, s.n, s.h, s.w, opt_.kernel, opt_.stride, opt_.padding, s.ho, s.wo};
    const auto m = static_cast<std::ptrdiff_t>(g.columns());
    const auto kdim = static_cast<std::ptrdiff_t>(opt_.in_channels) * opt_.kernel * opt_.kernel;
    if (opt_.bias && bias.trainable)
        for (int o = 0; o < opt_.out_channels; ++o) {
            T sum = 0;
            const T* row = dy.data.data() + o * m;
            for (std::ptrdiff_t i = 0; i < m; ++i) sum += row[i];
            bias.grad[o] += sum;
        }
    if (weight.trainable) gemm_nt_accumulate(dy.data.data(), s.cols.data(), weight.grad.data(), opt_.out_channels, kdim, m);
    if (!opt_.input_grad) return {};
    if (pointwise()) {
        tensor<T> dx(opt_.in_channels, s.n, s.h, s.w, uninitialized);
        gemm_tn(weight.value.data(), dy.data.data(), dx.data.data(), kdim, m, opt_.out_channels, false);
        return dx;
    }
    tensor<T> dx(opt_.in_channels, s.n, s.h, s.w);  // col2im accumulates
    s.cols.resize(static_cast<std::size_t>(kdim) * m);  // reuse the buffer for dcols
    gemm_tn(weight.value.data(), dy.data.data(), s.cols.data(), kdim, m, opt_.out_channels, false);
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

}  // namespace retinanet::nn
