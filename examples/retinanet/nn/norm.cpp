#include "norm.hpp"

#include <cmath>
#include <string>

#include <focal/core/error.hpp>

namespace retinanet::nn {
namespace {
template <class T>
void require_channels(const tensor<T>& x, int channels, const char* where, const std::string& name) {
    focal::detail::require(x.c == channels, where, name + " input channels", std::to_string(channels), x.c);
}
}  // namespace

template <class T>
group_norm<T>::group_norm(const std::string& name, int channels, int groups, double eps)
    : weight(name + ".weight", {static_cast<std::size_t>(channels)}, T(1)),
      bias(name + ".bias", {static_cast<std::size_t>(channels)}),
      channels_(channels),
      groups_(groups),
      eps_(eps) {
    focal::detail::require(groups > 0 && channels > 0 && channels % groups == 0, "group_norm", name + " groups",
                           "a positive divisor of the channel count " + std::to_string(channels), groups);
    weight.decay = bias.decay = false;
}

template <class T>
tensor<T> group_norm<T>::forward(const tensor<T>& x) {
    require_channels(x, channels_, "group_norm::forward", weight.name);
    const int per_group = channels_ / groups_;
    const std::size_t plane = x.plane(), cstride = x.channel_stride();
    const double count = static_cast<double>(per_group) * static_cast<double>(plane);
    tensor<T> y(x.c, x.n, x.h, x.w, uninitialized);
    saved s{grad_enabled() ? buffer<T>(x.size()) : buffer<T>{}, std::vector<T>(static_cast<std::size_t>(x.n) * groups_), x.n,
            x.h, x.w};
    parallel_tasks(static_cast<std::size_t>(x.n) * groups_, [&](std::size_t task) {
        const std::size_t n = task / groups_, g = task % groups_;
        // Two passes in double: mean, then the centred sum of squares (no cancellation).
        double sum = 0;
        for (int c = 0; c < per_group; ++c) {
            const T* p = x.data.data() + (g * per_group + c) * cstride + n * plane;
            for (std::size_t i = 0; i < plane; ++i) sum += p[i];
        }
        const double mean = sum / count;
        double sq = 0;
        for (int c = 0; c < per_group; ++c) {
            const T* p = x.data.data() + (g * per_group + c) * cstride + n * plane;
            for (std::size_t i = 0; i < plane; ++i) sq += (p[i] - mean) * (p[i] - mean);
        }
        const T inv_std = static_cast<T>(1.0 / std::sqrt(sq / count + eps_));
        s.inv_std[task] = inv_std;
        for (int c = 0; c < per_group; ++c) {
            const std::size_t ch = g * per_group + c, off = ch * cstride + n * plane;
            const T gamma = weight.value[ch], beta = bias.value[ch], m = static_cast<T>(mean);
            for (std::size_t i = 0; i < plane; ++i) {
                const T xhat = (x.data[off + i] - m) * inv_std;
                if (!s.normalized.empty()) s.normalized[off + i] = xhat;
                y.data[off + i] = xhat * gamma + beta;
            }
        }
    });
    if (grad_enabled()) cache_.push_back(std::move(s));
    return y;
}

// dx = inv_std (g - mean(g) - xhat mean(g xhat)) with g = dy gamma, means over the group.
template <class T>
tensor<T> group_norm<T>::backward(const tensor<T>& dy) {
    focal::detail::require(!cache_.empty(), "group_norm::backward", weight.name, "a forward pass in training mode first",
                           "no saved forward state");
    saved s = std::move(cache_.back());
    cache_.pop_back();
    require_channels(dy, channels_, "group_norm::backward", weight.name);
    const int per_group = channels_ / groups_;
    const std::size_t plane = dy.plane(), cstride = dy.channel_stride();
    const double count = static_cast<double>(per_group) * static_cast<double>(plane);
    tensor<T> dx(dy.c, dy.n, dy.h, dy.w, uninitialized);
    // Parameter gradients: per channel, so one task per channel.
    parallel_tasks(static_cast<std::size_t>(channels_), [&](std::size_t ch) {
        double dgamma = 0, dbeta = 0;
        for (int n = 0; n < s.n; ++n) {
            const std::size_t off = ch * cstride + n * plane;
            for (std::size_t i = 0; i < plane; ++i) {
                dgamma += static_cast<double>(dy.data[off + i]) * s.normalized[off + i];
                dbeta += dy.data[off + i];
            }
        }
        weight.grad[ch] += static_cast<T>(dgamma);
        bias.grad[ch] += static_cast<T>(dbeta);
    });
    parallel_tasks(static_cast<std::size_t>(s.n) * groups_, [&](std::size_t task) {
        const std::size_t n = task / groups_, g = task % groups_;
        double mean_g = 0, mean_gx = 0;
        for (int c = 0; c < per_group; ++c) {
            const std::size_t ch = g * per_group + c, off = ch * cstride + n * plane;
            const double gamma = weight.value[ch];
            for (std::size_t i = 0; i < plane; ++i) {
                const double gi = dy.data[off + i] * gamma;
                mean_g += gi;
                mean_gx += gi * s.normalized[off + i];
            }
        }
        mean_g /= count;
        mean_gx /= count;
        const double inv_std = s.inv_std[task];
        for (int c = 0; c < per_group; ++c) {
            const std::size_t ch = g * per_group + c, off = ch * cstride + n * plane;
            const double gamma = weight.value[ch];
            for (std::size_t i = 0; i < plane; ++i)
                dx.data[off + i] = static_cast<T>(inv_std * (dy.data[off + i] * gamma - mean_g - s.normalized[off + i] * mean_gx));
        }
    });
    return dx;
}

template <class T>
frozen_batch_norm<T>::frozen_batch_norm(const std::string& name, int channels, double eps)
    : weight(name + ".weight", {static_cast<std::size_t>(channels)}, T(1)),
      bias(name + ".bias", {static_cast<std::size_t>(channels)}),
      running_mean(name + ".running_mean", {static_cast<std::size_t>(channels)}),
      running_var(name + ".running_var", {static_cast<std::size_t>(channels)}, T(1)),
      channels_(channels),
      eps_(eps) {
    for (auto* p : {&weight, &bias, &running_mean, &running_var}) p->trainable = p->decay = false;
}

template <class T>
tensor<T> frozen_batch_norm<T>::forward(const tensor<T>& x) {
    require_channels(x, channels_, "frozen_batch_norm::forward", weight.name);
    tensor<T> y(x.c, x.n, x.h, x.w, uninitialized);
    const std::size_t cstride = x.channel_stride();
    for (int c = 0; c < channels_; ++c) {
        // torchvision: scale = w * rsqrt(rv + eps), computed in the parameters' precision.
        const T scale = weight.value[c] / std::sqrt(running_var.value[c] + static_cast<T>(eps_));
        const T shift = bias.value[c] - running_mean.value[c] * scale;
        const T* in = x.data.data() + c * cstride;
        T* out = y.data.data() + c * cstride;
        for (std::size_t i = 0; i < cstride; ++i) out[i] = in[i] * scale + shift;
    }
    if (grad_enabled()) ++cache_;
    return y;
}

template <class T>
tensor<T> frozen_batch_norm<T>::backward(const tensor<T>& dy) {
    focal::detail::require(cache_ > 0, "frozen_batch_norm::backward", weight.name, "a forward pass in training mode first",
                           "no saved forward state");
    --cache_;
    require_channels(dy, channels_, "frozen_batch_norm::backward", weight.name);
    tensor<T> dx(dy.c, dy.n, dy.h, dy.w, uninitialized);
    const std::size_t cstride = dy.channel_stride();
    for (int c = 0; c < channels_; ++c) {
        const T scale = weight.value[c] / std::sqrt(running_var.value[c] + static_cast<T>(eps_));
        for (std::size_t i = 0; i < cstride; ++i) dx.data[c * cstride + i] = dy.data[c * cstride + i] * scale;
    }
    return dx;
}

template class group_norm<float>;
template class group_norm<double>;
template class frozen_batch_norm<float>;
template class frozen_batch_norm<double>;

}  // namespace retinanet::nn
