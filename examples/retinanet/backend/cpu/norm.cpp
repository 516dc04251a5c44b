#include "norm.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "backend/element_rules/group_norm.hpp"
#include "support/check.hpp"

namespace retinanet::cpu {
namespace {
template <class T>
void require_channels(const tensor<T>& x, int channels, const char* where, const std::string& name) {
    require(x.c == channels, where, name + " input channels", std::to_string(channels), x.c);
}
}  // namespace

template <class T>
group_norm<T>::group_norm(const std::string& name, int channels, int groups, activation act, double eps)
    : weight(name + ".weight", {static_cast<std::size_t>(channels)}, T(1)),
      bias(name + ".bias", {static_cast<std::size_t>(channels)}),
      channels_(channels),
      groups_(groups),
      act_(act),
      eps_(eps) {
    require(groups > 0 && channels > 0 && channels % groups == 0, "group_norm", name + " groups",
            "a positive divisor of the channel count " + std::to_string(channels), groups);
    weight.decay = bias.decay = false;
}

// Channels-last: every pass runs along whole pixel rows of C channels (vectorizable), keeping
// per-channel sums that are folded into group statistics. An image's pixels are cut into chunks
// of norm_chunk_pixels: per-channel sums in double per chunk (float partials over 64 pixels
// inside), then added in chunk order. The chunks depend on the size only, so the bits do not
// depend on the thread count; small maps (one chunk) run one task per image, large ones (paper
// inference at batch 1) one task per chunk.
namespace {
constexpr std::size_t norm_chunk_pixels = 4096;

// channel[k] = sum over pixels [begin, end) of value(x[p][k], k), float partials over 64 pixels.
template <class T, class Value>
void channel_sums(const T* in, std::size_t begin, std::size_t end, int c, double* channel, const Value& value) {
    std::vector<T> row_sum(static_cast<std::size_t>(c));
    std::fill(channel, channel + c, 0.0);
    for (std::size_t p0 = begin; p0 < end; p0 += 64) {
        std::fill(row_sum.begin(), row_sum.end(), T(0));
        for (std::size_t p = p0; p < std::min(end, p0 + 64); ++p)
            for (int k = 0; k < c; ++k) row_sum[k] += value(in[p * c + k], k);
        for (int k = 0; k < c; ++k) channel[k] += row_sum[k];
    }
}
}  // namespace

template <class T>
tensor<T> group_norm<T>::forward(const tensor<T>& x) {
    require_channels(x, channels_, "group_norm::forward", weight.name);
    const int per_group = channels_ / groups_, c = channels_;
    const std::size_t pixels = static_cast<std::size_t>(x.h) * x.w, images = static_cast<std::size_t>(x.n);
    const std::size_t chunks = std::max<std::size_t>(1, (pixels + norm_chunk_pixels - 1) / norm_chunk_pixels);
    const double count = static_cast<double>(per_group) * static_cast<double>(pixels);
    tensor<T> y(x.c, x.n, x.h, x.w, uninitialized);
    const bool relu = act_ == activation::relu;
    saved s{grad_enabled() ? buffer<T>(x.size()) : buffer<T>{}, std::vector<T>(images * groups_),
            buffer<std::uint8_t>(grad_enabled() && relu ? x.size() : 0), x.n, x.h, x.w};
    const auto chunk_range = [&](std::size_t chunk) {
        return std::pair{chunk * norm_chunk_pixels, std::min(pixels, (chunk + 1) * norm_chunk_pixels)};
    };
    // partial[(n chunks + chunk) c + k]: a chunk's channel sums; mean_c, scale, shift: per (n, k).
    std::vector<double> partial(images * chunks * c);
    std::vector<T> mean_c(images * c), inv_c(images * c), scale(images * c), shift(images * c);
    const auto chunk_sums = [&](std::size_t n, std::size_t chunk, bool centred) {
        const T* in = x.data.data() + n * x.image_size();
        const auto [begin, end] = chunk_range(chunk);
        double* out = partial.data() + (n * chunks + chunk) * c;
        if (!centred) channel_sums(in, begin, end, c, out, [](T v, int) { return v; });
        else {
            const T* m = mean_c.data() + n * c;
            channel_sums(in, begin, end, c, out, [m](T v, int k) { return (v - m[k]) * (v - m[k]); });
        }
    };
    // Group statistics of image n from its chunks' sums, in chunk order.
    const auto group_sum = [&](std::size_t n, int g) {
        double sum = 0;
        for (std::size_t chunk = 0; chunk < chunks; ++chunk) {
            double chunk_sum = 0;
            for (int k = 0; k < per_group; ++k) chunk_sum += partial[(n * chunks + chunk) * c + g * per_group + k];
            sum += chunk_sum;
        }
        return sum;
    };
    const auto set_means = [&](std::size_t n) {
        for (int g = 0; g < groups_; ++g) {
            const T mean = static_cast<T>(element_rules::group_mean(group_sum(n, g), count));
            for (int k = g * per_group; k < (g + 1) * per_group; ++k) mean_c[n * c + k] = mean;
        }
    };
    const auto set_scales = [&](std::size_t n) {  // centred squares (no cancellation) -> 1 / std
        for (int g = 0; g < groups_; ++g) {
            const T inv_std = static_cast<T>(element_rules::group_inv_std(group_sum(n, g), count, eps_));
            s.inv_std[n * groups_ + g] = inv_std;
            for (int k = g * per_group; k < (g + 1) * per_group; ++k) inv_c[n * c + k] = inv_std;
        }
        for (int k = 0; k < c; ++k) {
            const std::size_t i = n * c + k;
            const auto affine = element_rules::group_norm_affine(mean_c[i], inv_c[i], weight.value[k], bias.value[k]);
            scale[i] = affine.scale, shift[i] = affine.shift;
        }
    };
    const auto normalize = [&](std::size_t n, std::size_t chunk) {
        const auto [begin, end] = chunk_range(chunk);
        const T* sc = scale.data() + n * c;
        const T* sh = shift.data() + n * c;
        const T* m = mean_c.data() + n * c;
        const T* inv = inv_c.data() + n * c;
        const std::size_t base = n * x.image_size();
        T* xhat = s.normalized.empty() ? nullptr : s.normalized.data() + base;
        for (std::size_t p = begin; p < end; ++p) {
            const T* xi = x.data.data() + base + p * c;
            T* yo = y.data.data() + base + p * c;
            if (relu)
                for (int k = 0; k < c; ++k) yo[k] = relu_value(element_rules::affine(xi[k], sc[k], sh[k]));
            else
                for (int k = 0; k < c; ++k) yo[k] = element_rules::affine(xi[k], sc[k], sh[k]);
            if (xhat)
                for (int k = 0; k < c; ++k) xhat[p * c + k] = element_rules::group_norm_normalized(xi[k], m[k], inv[k]);
        }
        if (!s.positive.empty()) relu_mask(y.data.data() + base + begin * c, (end - begin) * c, s.positive.data() + base + begin * c);
    };
    if (chunks == 1) {  // one task per image, all passes
        parallel_tasks(images, [&](std::size_t n) {
            chunk_sums(n, 0, false);
            set_means(n);
            chunk_sums(n, 0, true);
            set_scales(n);
            normalize(n, 0);
        });
    } else {  // the same arithmetic, one task per chunk, statistics between the passes
        const std::size_t tasks = images * chunks;
        parallel_tasks(tasks, [&](std::size_t t) { chunk_sums(t / chunks, t % chunks, false); });
        for (std::size_t n = 0; n < images; ++n) set_means(n);
        parallel_tasks(tasks, [&](std::size_t t) { chunk_sums(t / chunks, t % chunks, true); });
        for (std::size_t n = 0; n < images; ++n) set_scales(n);
        parallel_tasks(tasks, [&](std::size_t t) { normalize(t / chunks, t % chunks); });
    }
    if (grad_enabled()) cache_.push_back(std::move(s));
    return y;
}

// dx = inv_std (g - mean(g) - xhat mean(g xhat)) with g = dy gamma, means over the group:
// per channel, dx = a dy + b + d xhat with a = inv_std gamma, b = -inv_std mean(g), d = -inv_std mean(g xhat).
template <class T>
tensor<T> group_norm<T>::backward(const tensor<T>& dy) {
    require(!cache_.empty(), "group_norm::backward", weight.name, "a forward pass in training mode first",
            "no saved forward state");
    saved s = std::move(cache_.back());
    cache_.pop_back();
    require_channels(dy, channels_, "group_norm::backward", weight.name);
    const bool relu = !s.positive.empty();
    tensor<T> masked;  // dy through the fused ReLU
    if (relu) masked = tensor<T>(dy.c, dy.n, dy.h, dy.w, uninitialized);
    const int per_group = channels_ / groups_, c = channels_;
    const std::size_t pixels = static_cast<std::size_t>(dy.h) * dy.w;
    const double count = static_cast<double>(per_group) * static_cast<double>(pixels);
    tensor<T> dx(dy.c, dy.n, dy.h, dy.w, uninitialized);
    // Per (image, channel) sums of dy and dy xhat, reduced over images afterwards.
    std::vector<double> sum_dy(static_cast<std::size_t>(s.n) * c), sum_dyx(static_cast<std::size_t>(s.n) * c);
    parallel_tasks(static_cast<std::size_t>(s.n), [&](std::size_t n) {
        const T* d = dy.data.data() + n * dy.image_size();
        if (relu) {
            T* m = masked.data.data() + n * dy.image_size();
            apply_relu_mask(s.positive.data() + n * dy.image_size(), d, m, dy.image_size());
            d = m;
        }
        const T* xhat = s.normalized.data() + n * dy.image_size();
        double* sd = sum_dy.data() + n * c;
        double* sdx = sum_dyx.data() + n * c;
        std::vector<T> part_d(static_cast<std::size_t>(c)), part_dx(static_cast<std::size_t>(c));
        for (std::size_t p0 = 0; p0 < pixels; p0 += 64) {
            std::fill(part_d.begin(), part_d.end(), T(0));
            std::fill(part_dx.begin(), part_dx.end(), T(0));
            for (std::size_t p = p0; p < std::min(pixels, p0 + 64); ++p)
                for (int k = 0; k < c; ++k) {
                    part_d[k] += d[p * c + k];
                    part_dx[k] += d[p * c + k] * xhat[p * c + k];
                }
            for (int k = 0; k < c; ++k) sd[k] += part_d[k], sdx[k] += part_dx[k];
        }
        std::vector<T> a(static_cast<std::size_t>(c)), b(static_cast<std::size_t>(c)), e(static_cast<std::size_t>(c));
        for (int g = 0; g < groups_; ++g) {
            double sum_g = 0, sum_gx = 0;
            for (int k = g * per_group; k < (g + 1) * per_group; ++k) {
                sum_g += weight.value[k] * sd[k];
                sum_gx += weight.value[k] * sdx[k];
            }
            const double inv_std = s.inv_std[n * groups_ + g];
            for (int k = g * per_group; k < (g + 1) * per_group; ++k) {
                const auto rule = element_rules::group_norm_backward<T>(inv_std, weight.value[k], sum_g, sum_gx, count);
                a[k] = rule.a, b[k] = rule.b, e[k] = rule.e;
            }
        }
        T* out = dx.data.data() + n * dy.image_size();
        for (std::size_t p = 0; p < pixels; ++p)
            for (int k = 0; k < c; ++k)
                out[p * c + k] = element_rules::group_norm_gradient<T>{a[k], b[k], e[k]}.dx(d[p * c + k], xhat[p * c + k]);
    });
    for (int ch = 0; ch < c; ++ch) {
        double sg = 0, sb = 0;
        for (int n = 0; n < s.n; ++n) sg += sum_dyx[static_cast<std::size_t>(n) * c + ch], sb += sum_dy[static_cast<std::size_t>(n) * c + ch];
        weight.grad[ch] += static_cast<T>(sg);
        bias.grad[ch] += static_cast<T>(sb);
    }
    return dx;
}

template <class T>
frozen_batch_norm<T>::frozen_batch_norm(const std::string& name, int channels, activation act, double eps)
    : weight(name + ".weight", {static_cast<std::size_t>(channels)}, T(1)),
      bias(name + ".bias", {static_cast<std::size_t>(channels)}),
      running_mean(name + ".running_mean", {static_cast<std::size_t>(channels)}),
      running_var(name + ".running_var", {static_cast<std::size_t>(channels)}, T(1)),
      channels_(channels),
      act_(act),
      eps_(eps) {
    for (auto* p : {&weight, &bias, &running_mean, &running_var}) p->trainable = p->decay = false;
}

namespace {
// torchvision's FrozenBatchNorm2d: scale = w * rsqrt(rv + eps), shift = b - rm * scale.
template <class T>
void frozen_scale_shift(const frozen_batch_norm<T>& bn, double eps, std::vector<T>& scale, std::vector<T>& shift) {
    const std::size_t c = bn.weight.size();
    scale.resize(c), shift.resize(c);
    for (std::size_t i = 0; i < c; ++i) {
        scale[i] = bn.weight.value[i] / std::sqrt(bn.running_var.value[i] + static_cast<T>(eps));
        shift[i] = bn.bias.value[i] - bn.running_mean.value[i] * scale[i];
    }
}
}  // namespace

template <class T>
tensor<T> frozen_batch_norm<T>::forward(const tensor<T>& x) {
    require_channels(x, channels_, "frozen_batch_norm::forward", weight.name);
    std::vector<T> scale, shift;
    frozen_scale_shift(*this, eps_, scale, shift);
    tensor<T> y(x.c, x.n, x.h, x.w, uninitialized);
    const std::size_t c = static_cast<std::size_t>(channels_);
    const bool relu = act_ == activation::relu;
    buffer<std::uint8_t> positive(grad_enabled() && relu ? x.size() : 0);
    parallel_tasks(static_cast<std::size_t>(x.n), [&](std::size_t n) {
        const T* in = x.data.data() + n * x.image_size();
        T* out = y.data.data() + n * x.image_size();
        for (std::size_t p = 0; p < static_cast<std::size_t>(x.h) * x.w; ++p)
            if (relu)
                for (std::size_t k = 0; k < c; ++k) out[p * c + k] = relu_value(in[p * c + k] * scale[k] + shift[k]);
            else
                for (std::size_t k = 0; k < c; ++k) out[p * c + k] = in[p * c + k] * scale[k] + shift[k];
        if (!positive.empty()) relu_mask(out, x.image_size(), positive.data() + n * x.image_size());
    });
    if (grad_enabled()) cache_.push_back(std::move(positive));
    return y;
}

template <class T>
tensor<T> frozen_batch_norm<T>::backward(const tensor<T>& dy) {
    require(!cache_.empty(), "frozen_batch_norm::backward", weight.name, "a forward pass in training mode first",
            "no saved forward state");
    const buffer<std::uint8_t> positive = std::move(cache_.back());
    cache_.pop_back();
    require_channels(dy, channels_, "frozen_batch_norm::backward", weight.name);
    std::vector<T> scale, shift;
    frozen_scale_shift(*this, eps_, scale, shift);
    tensor<T> dx(dy.c, dy.n, dy.h, dy.w, uninitialized);
    const std::size_t c = static_cast<std::size_t>(channels_);
    for (std::size_t i = 0; i < dy.size(); ++i) dx.data[i] = (positive.empty() || positive[i] ? dy.data[i] : T(0)) * scale[i % c];
    return dx;
}

template class group_norm<float>;
template class group_norm<double>;
template class frozen_batch_norm<float>;
template class frozen_batch_norm<double>;

}  // namespace retinanet::cpu
