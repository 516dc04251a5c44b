#include "simple_layers.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include <focal/core/error.hpp>

namespace retinanet::nn {
namespace {
template <class T>
void require_saved(const std::vector<T>& cache, const char* where) {
    focal::detail::require(!cache.empty(), where, "the layer", "a forward pass in training mode first", "no saved forward state");
}
std::string shape_text(int c, int n, int h, int w) {
    return focal::detail::concat("[", c, " x ", n, " x ", h, " x ", w, "]");
}
}  // namespace

template <class T>
tensor<T> relu<T>::forward(const tensor<T>& x) {
    tensor<T> y(x.c, x.n, x.h, x.w, uninitialized);
    const T* in = x.data.data();
    T* out = y.data.data();
    const std::size_t size = x.size();
    for (std::size_t i = 0; i < size; ++i) out[i] = (in[i] > T(0) || in[i] != in[i]) ? in[i] : T(0);  // NaN propagates, as torch
    std::vector<std::uint8_t> positive(grad_enabled() ? size : 0);
    for (std::size_t i = 0; i < positive.size(); ++i) positive[i] = out[i] > T(0);
    if (grad_enabled()) cache_.push_back(std::move(positive));
    return y;
}

template <class T>
tensor<T> relu<T>::backward(const tensor<T>& dy) {
    require_saved(cache_, "relu::backward");
    auto positive = std::move(cache_.back());
    cache_.pop_back();
    focal::detail::require(positive.size() == dy.size(), "relu::backward", "dy", "the forward output's size", dy.size());
    tensor<T> dx(dy.c, dy.n, dy.h, dy.w, uninitialized);
    const std::uint8_t* mask = positive.data();
    const T* g = dy.data.data();
    T* out = dx.data.data();
    const std::size_t size = dx.size();
    for (std::size_t i = 0; i < size; ++i) out[i] = mask[i] ? g[i] : T(0);
    return dx;
}

template <class T>
tensor<T> max_pool2d<T>::forward(const tensor<T>& x) {
    const int ho = (x.h + 2 * padding_ - kernel_) / stride_ + 1, wo = (x.w + 2 * padding_ - kernel_) / stride_ + 1;
    focal::detail::require(ho > 0 && wo > 0, "max_pool2d::forward", "x", "at least one output pixel", shape_text(x.c, x.n, x.h, x.w));
    tensor<T> y(x.c, x.n, ho, wo, uninitialized);
    saved s{std::vector<std::uint32_t>(grad_enabled() ? y.size() : 0), x.n, x.h, x.w};
    parallel_tasks(static_cast<std::size_t>(x.c) * x.n, [&](std::size_t plane_index) {
        const T* in = x.data.data() + plane_index * x.plane();
        const std::size_t out_base = plane_index * y.plane();
        for (int oy = 0; oy < ho; ++oy)
            for (int ox = 0; ox < wo; ++ox) {
                T best = -std::numeric_limits<T>::infinity();
                std::uint32_t arg = 0;
                bool any = false;
                for (int i = 0; i < kernel_; ++i) {
                    const int iy = oy * stride_ - padding_ + i;
                    if (iy < 0 || iy >= x.h) continue;
                    for (int j = 0; j < kernel_; ++j) {
                        const int ix = ox * stride_ - padding_ + j;
                        if (ix < 0 || ix >= x.w) continue;
                        const T v = in[iy * x.w + ix];
                        if (!any || v > best || v != v) {  // NaN propagates, as torch
                            best = v, arg = static_cast<std::uint32_t>(iy * x.w + ix), any = true;
                            if (v != v) goto done;
                        }
                    }
                }
            done:
                y.data[out_base + static_cast<std::size_t>(oy) * wo + ox] = best;
                if (!s.argmax.empty()) s.argmax[out_base + static_cast<std::size_t>(oy) * wo + ox] = arg;
            }
    });
    if (grad_enabled()) cache_.push_back(std::move(s));
    return y;
}

template <class T>
tensor<T> max_pool2d<T>::backward(const tensor<T>& dy) {
    require_saved(cache_, "max_pool2d::backward");
    saved s = std::move(cache_.back());
    cache_.pop_back();
    focal::detail::require(s.argmax.size() == dy.size(), "max_pool2d::backward", "dy", "the forward output's size", dy.size());
    tensor<T> dx(dy.c, s.n, s.h, s.w);
    const std::size_t in_plane = dx.plane(), out_plane = dy.plane();
    parallel_tasks(static_cast<std::size_t>(dy.c) * dy.n, [&](std::size_t p) {
        for (std::size_t i = 0; i < out_plane; ++i) dx.data[p * in_plane + s.argmax[p * out_plane + i]] += dy.data[p * out_plane + i];
    });
    return dx;
}

namespace {
inline int nearest_source(int dst, int in, int out) {
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    return std::min(static_cast<int>(static_cast<float>(dst) * scale), in - 1);
}
}  // namespace

template <class T>
tensor<T> upsample_nearest<T>::forward(const tensor<T>& x) {
    focal::detail::require(out_h_ > 0 && out_w_ > 0, "upsample_nearest::forward", "output size", "set and positive",
                           std::to_string(out_h_) + "x" + std::to_string(out_w_));
    tensor<T> y(x.c, x.n, out_h_, out_w_, uninitialized);
    std::vector<int> cols(static_cast<std::size_t>(out_w_));
    for (int ox = 0; ox < out_w_; ++ox) cols[ox] = nearest_source(ox, x.w, out_w_);
    for (std::size_t p = 0; p < static_cast<std::size_t>(x.c) * x.n; ++p)
        for (int oy = 0; oy < out_h_; ++oy) {
            const T* src = x.data.data() + p * x.plane() + static_cast<std::size_t>(nearest_source(oy, x.h, out_h_)) * x.w;
            T* dst = y.data.data() + p * y.plane() + static_cast<std::size_t>(oy) * out_w_;
            for (int ox = 0; ox < out_w_; ++ox) dst[ox] = src[cols[ox]];
        }
    if (grad_enabled()) cache_.push_back({x.h, x.w});
    return y;
}

template <class T>
tensor<T> upsample_nearest<T>::backward(const tensor<T>& dy) {
    require_saved(cache_, "upsample_nearest::backward");
    const saved s = cache_.back();
    cache_.pop_back();
    tensor<T> dx(dy.c, dy.n, s.h, s.w);
    std::vector<int> cols(static_cast<std::size_t>(dy.w));
    for (int ox = 0; ox < dy.w; ++ox) cols[ox] = nearest_source(ox, s.w, dy.w);
    for (std::size_t p = 0; p < static_cast<std::size_t>(dy.c) * dy.n; ++p)
        for (int oy = 0; oy < dy.h; ++oy) {
            T* dst = dx.data.data() + p * dx.plane() + static_cast<std::size_t>(nearest_source(oy, s.h, dy.h)) * s.w;
            const T* src = dy.data.data() + p * dy.plane() + static_cast<std::size_t>(oy) * dy.w;
            for (int ox = 0; ox < dy.w; ++ox) dst[cols[ox]] += src[ox];
        }
    return dx;
}

template <class T>
void add_in_place(tensor<T>& a, const tensor<T>& b) {
    focal::detail::require(a.same_shape(b), "add_in_place", "b", "the shape of a " + shape_text(a.c, a.n, a.h, a.w),
                           shape_text(b.c, b.n, b.h, b.w));
    for (std::size_t i = 0; i < a.size(); ++i) a.data[i] += b.data[i];
}

template class relu<float>;
template class relu<double>;
template class max_pool2d<float>;
template class max_pool2d<double>;
template class upsample_nearest<float>;
template class upsample_nearest<double>;
template void add_in_place<float>(tensor<float>&, const tensor<float>&);
template void add_in_place<double>(tensor<double>&, const tensor<double>&);

}  // namespace retinanet::nn
