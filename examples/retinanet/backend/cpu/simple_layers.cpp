#include "simple_layers.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include <focal/core/error.hpp>

#include "support/check.hpp"

namespace retinanet::cpu {
namespace {
template <class T>
void require_saved(const std::vector<T>& cache, const char* where) {
    require(!cache.empty(), where, "the layer", "a forward pass in training mode first", "no saved forward state");
}
std::string shape_text(int c, int n, int h, int w) {
    return concat("[", c, " x ", n, " x ", h, " x ", w, "]");
}

constexpr std::size_t elementwise_grain = std::size_t(1) << 16;  // elements per task of element-wise passes

// y = relu(x + b) (b null: relu(x)) over the whole tensor, with the mask when training.
template <class T>
buffer<std::uint8_t> relu_pass(const T* x, const T* b, T* y, std::size_t size) {
    buffer<std::uint8_t> positive(grad_enabled() ? size : 0);  // written whole below
    parallel_ranges(size, elementwise_grain, [&](std::size_t begin, std::size_t end) {
        if (b)
            for (std::size_t i = begin; i < end; ++i) y[i] = relu_value(x[i] + b[i]);
        else
            for (std::size_t i = begin; i < end; ++i) y[i] = relu_value(x[i]);
        if (!positive.empty()) relu_mask(y + begin, end - begin, positive.data() + begin);
    });
    return positive;
}
}  // namespace

template <class T>
tensor<T> relu<T>::forward(const tensor<T>& x) {
    tensor<T> y(x.c, x.n, x.h, x.w, uninitialized);
    auto positive = relu_pass(x.data.data(), static_cast<const T*>(nullptr), y.data.data(), x.size());
    if (grad_enabled()) cache_.push_back(std::move(positive));
    return y;
}

template <class T>
tensor<T> relu<T>::forward_sum(tensor<T> a, const tensor<T>& b) {
    require(a.same_shape(b) && b.data.size() == a.size(), "relu::forward_sum", "b", "the shape of a " + shape_text(a.c, a.n, a.h, a.w),
            shape_text(b.c, b.n, b.h, b.w));
    auto positive = relu_pass(a.data.data(), b.data.data(), a.data.data(), a.size());
    if (grad_enabled()) cache_.push_back(std::move(positive));
    return a;
}

template <class T>
tensor<T> relu<T>::backward(const tensor<T>& dy) {
    require_saved(cache_, "relu::backward");
    auto positive = std::move(cache_.back());
    cache_.pop_back();
    require(positive.size() == dy.size(), "relu::backward", "dy", "the forward output's size", dy.size());
    tensor<T> dx(dy.c, dy.n, dy.h, dy.w, uninitialized);
    parallel_ranges(dx.size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
        apply_relu_mask(positive.data() + begin, dy.data.data() + begin, dx.data.data() + begin, end - begin);
    });
    return dx;
}

template <class T>
tensor<T> max_pool2d<T>::forward(const tensor<T>& x) {
    const int ho = (x.h + 2 * padding_ - kernel_) / stride_ + 1, wo = (x.w + 2 * padding_ - kernel_) / stride_ + 1;
    require(ho > 0 && wo > 0, "max_pool2d::forward", "x", "at least one output pixel", shape_text(x.c, x.n, x.h, x.w));
    tensor<T> y(x.c, x.n, ho, wo, uninitialized);
    saved s{std::vector<std::uint32_t>(grad_enabled() ? y.size() : 0), x.n, x.h, x.w};
    const std::size_t c = static_cast<std::size_t>(x.c);
    // Taps outer, channels inner (contiguous, channels-last): the compiler vectorizes the select.
    // A tap replaces the running maximum when it is larger or NaN, unless that maximum is NaN
    // already: the first maximum wins and the first NaN propagates, as torch.
    parallel_tasks(static_cast<std::size_t>(x.n) * ho, [&](std::size_t task) {
        const std::size_t n = task / ho;
        const int oy = static_cast<int>(task % ho);
        const T* in = x.data.data() + n * x.image_size();
        for (int ox = 0; ox < wo; ++ox) {
            const std::size_t out = ((n * ho + oy) * wo + ox) * c;
            T* best = y.data.data() + out;
            std::uint32_t* arg = s.argmax.empty() ? nullptr : s.argmax.data() + out;
            bool any = false;
            for (int i = 0; i < kernel_; ++i) {
                const int iy = oy * stride_ - padding_ + i;
                if (iy < 0 || iy >= x.h) continue;
                for (int j = 0; j < kernel_; ++j) {
                    const int ix = ox * stride_ - padding_ + j;
                    if (ix < 0 || ix >= x.w) continue;
                    const auto base = static_cast<std::uint32_t>((static_cast<std::size_t>(iy) * x.w + ix) * c);
                    const T* v = in + base;
                    if (!any) {
                        std::copy(v, v + c, best);
                        if (arg)
                            for (std::size_t k = 0; k < c; ++k) arg[k] = base + static_cast<std::uint32_t>(k);
                        any = true;
                        continue;
                    }
                    const auto take = [&](std::size_t k) { return (v[k] > best[k] || v[k] != v[k]) && best[k] == best[k]; };
                    if (arg)
                        for (std::size_t k = 0; k < c; ++k) {
                            const bool t = take(k);
                            arg[k] = t ? base + static_cast<std::uint32_t>(k) : arg[k];
                            best[k] = t ? v[k] : best[k];
                        }
                    else
                        for (std::size_t k = 0; k < c; ++k) best[k] = take(k) ? v[k] : best[k];
                }
            }
            if (!any) {  // a window entirely in the padding
                std::fill(best, best + c, -std::numeric_limits<T>::infinity());
                if (arg) std::fill(arg, arg + c, 0u);
            }
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
    require(s.argmax.size() == dy.size(), "max_pool2d::backward", "dy", "the forward output's size", dy.size());
    tensor<T> dx(dy.c, s.n, s.h, s.w);
    const std::size_t in_image = dx.image_size(), out_image = dy.image_size();
    parallel_tasks(static_cast<std::size_t>(dy.n), [&](std::size_t n) {
        for (std::size_t i = 0; i < out_image; ++i) dx.data[n * in_image + s.argmax[n * out_image + i]] += dy.data[n * out_image + i];
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
    require(out_h_ > 0 && out_w_ > 0, "upsample_nearest::forward", "output size", "set and positive",
            std::to_string(out_h_) + "x" + std::to_string(out_w_));
    tensor<T> y(x.c, x.n, out_h_, out_w_, uninitialized);
    const std::size_t c = static_cast<std::size_t>(x.c);
    for (int n = 0; n < x.n; ++n)
        for (int oy = 0; oy < out_h_; ++oy) {
            const int iy = nearest_source(oy, x.h, out_h_);
            for (int ox = 0; ox < out_w_; ++ox) {
                const T* src = &x.at(0, n, iy, nearest_source(ox, x.w, out_w_));
                std::copy(src, src + c, &y.at(0, n, oy, ox));
            }
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
    const std::size_t c = static_cast<std::size_t>(dy.c);
    for (int n = 0; n < dy.n; ++n)
        for (int oy = 0; oy < dy.h; ++oy) {
            const int iy = nearest_source(oy, s.h, dy.h);
            for (int ox = 0; ox < dy.w; ++ox) {
                const T* src = &dy.at(0, n, oy, ox);
                T* dst = &dx.at(0, n, iy, nearest_source(ox, s.w, dy.w));
                for (std::size_t k = 0; k < c; ++k) dst[k] += src[k];
            }
        }
    return dx;
}

template <class T>
void add_in_place(tensor<T>& a, const tensor<T>& b) {
    require(a.same_shape(b), "add_in_place", "b", "the shape of a " + shape_text(a.c, a.n, a.h, a.w),
            shape_text(b.c, b.n, b.h, b.w));
    parallel_ranges(a.size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) a.data[i] += b.data[i];
    });
}

template class relu<float>;
template class relu<double>;
template class max_pool2d<float>;
template class max_pool2d<double>;
template class upsample_nearest<float>;
template class upsample_nearest<double>;
template void add_in_place<float>(tensor<float>&, const tensor<float>&);
template void add_in_place<double>(tensor<double>&, const tensor<double>&);

}  // namespace retinanet::cpu
