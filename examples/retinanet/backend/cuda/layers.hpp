// The example network's layers on a backend (backend.hpp), with the CPU layers' contract
// (nn/layer.hpp): forward(x) pushes what backward needs when the context is in training mode,
// backward(dy) pops it, accumulates the parameters' gradients and returns dx. Tensors share their
// memory (std::shared_ptr), so a saved input costs nothing; no layer writes into a tensor it did
// not create. The math is ops.hpp's, the GEMMs the backend's.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <focal/core/error.hpp>

#include "backend/cpu/conv2d.hpp"
#include "ops.hpp"
#include "parameter_store.hpp"

namespace retinanet::cuda {

// An activation, channels-last [N][H][W][C], in backend memory.
struct device_tensor {
    int c = 0, n = 0, h = 0, w = 0;
    std::shared_ptr<float> data;

    index size() const noexcept { return static_cast<index>(c) * n * h * w; }
    index pixels() const noexcept { return static_cast<index>(n) * h * w; }
    float* get() const noexcept { return data.get(); }
    bool empty() const noexcept { return data == nullptr; }
};

template <class Backend>
struct context {
    Backend& backend;
    parameter_store<Backend> store;
    bool grad_enabled = true;

    device_tensor tensor(int c, int n, int h, int w) {
        device_tensor t{c, n, h, w, nullptr};
        t.data = backend.template allocate<float>(static_cast<std::size_t>(t.size()));
        return t;
    }
    template <class T>
    std::shared_ptr<T> scratch(index count) {
        return backend.template allocate<T>(static_cast<std::size_t>(count));
    }
};

template <class Backend>
class layer {
public:
    virtual ~layer() = default;
    virtual device_tensor forward(const device_tensor& x) = 0;
    virtual device_tensor backward(const device_tensor& dy) = 0;
    virtual void clear() = 0;
};

// Backends that convolve directly (cuda_backend with cuDNN) provide direct_convolution() and
// conv_forward / conv_backward_data / conv_backward_filter over a conv_geometry.
template <class Backend>
concept direct_convolution_backend = requires(const Backend& b) { b.direct_convolution(); };

namespace detail {
template <class Saved>
Saved pop(std::vector<Saved>& cache, const char* where) {
    focal::detail::require(!cache.empty(), where, "a saved forward", "a forward in training mode before backward", "none pending");
    Saved s = std::move(cache.back());
    cache.pop_back();
    return s;
}
inline void require_channels(const device_tensor& x, int channels, const char* where) {
    focal::detail::require(x.c == channels && x.size() > 0, where, "x", std::to_string(channels) + " channels and data",
                           focal::detail::concat(x.c, " channels, ", x.n, " x ", x.h, " x ", x.w));
}

// out[col] (+)= sum over rows of a[r][col] (times b[r][col]): per-channel sums.
template <class Backend>
void column_sums(context<Backend>& ctx, const float* a, const float* b, index rows, int cols, float* out, bool accumulate) {
    constexpr index chunk_rows = 256;
    const index chunks = std::max<index>(1, (rows + chunk_rows - 1) / chunk_rows);
    const auto partial = ctx.template scratch<double>(chunks * cols);
    ctx.backend.for_each(chunks * cols, column_partial_op{a, b, rows, chunk_rows, cols, partial.get()});
    ctx.backend.for_each(cols, column_finish_op{partial.get(), chunks, cols, out, accumulate});
}
}  // namespace detail

// 2-D convolution: Y = im2col(X) W^T + b with W [C_out][k k C_in]; backward dW += dY^T cols,
// db += column sums of dY, dX = col2im(dY W). 1x1 stride-1 convolutions use X as its own im2col.
// The columns are rebuilt in backward rather than kept (memory is the GPU's scarce resource). A
// backend with direct convolutions (cuDNN) computes Y, dW and dX itself instead.
template <class Backend>
class conv2d final : public layer<Backend> {
public:
    conv2d(context<Backend>& ctx, const std::string& name, cpu::conv2d_options o) : ctx_(ctx), o_(o) {
        if (o_.padding < 0) o_.padding = o_.kernel / 2;
        const auto cout = static_cast<std::size_t>(o_.out_channels), cin = static_cast<std::size_t>(o_.in_channels),
                   k = static_cast<std::size_t>(o_.kernel);
        weight_ = ctx.store.add(name + ".weight", {cout, cin, k, k}, k == 1 ? parameter_layout::plain : parameter_layout::conv_weight);
        if (o_.bias) bias_ = ctx.store.add(name + ".bias", {cout}, parameter_layout::plain);
    }

    device_tensor forward(const device_tensor& x) override {
        detail::require_channels(x, o_.in_channels, "cuda::conv2d::forward");
        const int ho = (x.h + 2 * o_.padding - o_.kernel) / o_.stride + 1, wo = (x.w + 2 * o_.padding - o_.kernel) / o_.stride + 1;
        focal::detail::require(ho > 0 && wo > 0, "cuda::conv2d::forward", "x", "at least one output pixel",
                               focal::detail::concat(x.h, " x ", x.w));
        device_tensor y = ctx_.tensor(o_.out_channels, x.n, ho, wo);
        const index rows = y.pixels(), cout = o_.out_channels;
        if (bias_ >= 0) ctx_.backend.for_each(rows * cout, broadcast_row_op{ctx_.store.value(bias_), y.get(), o_.out_channels});
        const float beta = bias_ >= 0 ? 1.0f : 0.0f;
        if (direct()) {
            if constexpr (direct_convolution_backend<Backend>)
                ctx_.backend.conv_forward(geometry(x, ho, wo), x.get(), ctx_.store.value(weight_), beta, y.get());
        } else {
            const auto cols = columns(x, ho, wo);
            ctx_.backend.gemm(false, true, rows, cout, depth(), 1.0f, cols.get(), depth(), ctx_.store.value(weight_), depth(), beta, y.get(),
                              cout);
        }
        if (ctx_.grad_enabled) cache_.push_back(x);
        return y;
    }

    device_tensor backward(const device_tensor& dy) override {
        const device_tensor x = detail::pop(cache_, "cuda::conv2d::backward");
        const int ho = dy.h, wo = dy.w;
        const index rows = dy.pixels(), cout = o_.out_channels;
        if (direct()) {
            if constexpr (direct_convolution_backend<Backend>) {
                const auto g = geometry(x, ho, wo);
                if (ctx_.store.trainable(weight_)) ctx_.backend.conv_backward_filter(g, x.get(), dy.get(), ctx_.store.grad(weight_));
                if (bias_ >= 0 && ctx_.store.trainable(bias_))
                    detail::column_sums(ctx_, dy.get(), nullptr, rows, o_.out_channels, ctx_.store.grad(bias_), true);
                if (!o_.input_grad) return {};
                device_tensor dx = ctx_.tensor(x.c, x.n, x.h, x.w);
                ctx_.backend.conv_backward_data(g, dy.get(), ctx_.store.value(weight_), dx.get());
                return dx;
            }
        }
        if (ctx_.store.trainable(weight_)) {
            const auto cols = columns(x, ho, wo);
            ctx_.backend.gemm(true, false, cout, depth(), rows, 1.0f, dy.get(), cout, cols.get(), depth(), 1.0f,
                              ctx_.store.grad(weight_), depth());
        }
        if (bias_ >= 0 && ctx_.store.trainable(bias_))
            detail::column_sums(ctx_, dy.get(), nullptr, rows, o_.out_channels, ctx_.store.grad(bias_), true);
        if (!o_.input_grad) return {};
        device_tensor dcols = ctx_.tensor(static_cast<int>(depth()), dy.n, ho, wo);
        ctx_.backend.gemm(false, false, rows, depth(), cout, 1.0f, dy.get(), cout, ctx_.store.value(weight_), depth(), 0.0f, dcols.get(),
                          depth());
        if (pointwise()) return device_tensor{x.c, x.n, x.h, x.w, dcols.data};
        device_tensor dx = ctx_.tensor(x.c, x.n, x.h, x.w);
        ctx_.backend.for_each(dx.size(), col2im_op{dcols.get(), dx.get(), x.h, x.w, x.c, o_.kernel, o_.stride, o_.padding, ho, wo});
        return dx;
    }

    void clear() override { cache_.clear(); }

private:
    bool direct() const {
        if constexpr (direct_convolution_backend<Backend>) return ctx_.backend.direct_convolution();
        else return false;
    }
    conv_geometry geometry(const device_tensor& x, int ho, int wo) const {
        return {x.n, x.h, x.w, x.c, o_.out_channels, o_.kernel, o_.stride, o_.padding, ho, wo};
    }
    bool pointwise() const noexcept { return o_.kernel == 1 && o_.stride == 1 && o_.padding == 0; }
    index depth() const noexcept { return static_cast<index>(o_.kernel) * o_.kernel * o_.in_channels; }
    std::shared_ptr<float> columns(const device_tensor& x, int ho, int wo) {
        if (pointwise()) return x.data;
        const index count = static_cast<index>(x.n) * ho * wo * depth();
        auto cols = ctx_.template scratch<float>(count);
        ctx_.backend.for_each(count, im2col_op{x.get(), cols.get(), x.h, x.w, x.c, o_.kernel, o_.stride, o_.padding, ho, wo});
        return cols;
    }

    context<Backend>& ctx_;
    cpu::conv2d_options o_;
    int weight_ = -1, bias_ = -1;
    std::vector<device_tensor> cache_;
};

// GroupNorm (cpu::group_norm): statistics per (image, group) from double sums, the ReLU fused.
template <class Backend>
class group_norm final : public layer<Backend> {
public:
    group_norm(context<Backend>& ctx, const std::string& name, int channels, int groups, bool relu, double eps = 1e-5)
        : ctx_(ctx), channels_(channels), groups_(groups), relu_(relu), eps_(eps) {
        const auto c = static_cast<std::size_t>(channels);
        weight_ = ctx.store.add(name + ".weight", {c}, parameter_layout::plain);
        bias_ = ctx.store.add(name + ".bias", {c}, parameter_layout::plain);
    }

    device_tensor forward(const device_tensor& x) override {
        detail::require_channels(x, channels_, "cuda::group_norm::forward");
        const index hw = static_cast<index>(x.h) * x.w, ng = static_cast<index>(x.n) * groups_;
        const auto mean = ctx_.template scratch<float>(ng), rstd = ctx_.template scratch<float>(ng);
        group_sums(x.get(), nullptr, nullptr, x.n, hw, [&](const double* partial, index chunks) {
            ctx_.backend.for_each(ng, group_stats_finish_op{partial, chunks, static_cast<double>(hw * (channels_ / groups_)), eps_, mean.get(),
                                                            rstd.get()});
        });
        device_tensor y = ctx_.tensor(x.c, x.n, x.h, x.w);
        saved s{{}, {}, rstd, x.n, x.h, x.w};
        if (ctx_.grad_enabled) {
            s.xhat = ctx_.template scratch<float>(x.size());
            if (relu_) s.mask = ctx_.template scratch<std::uint8_t>(x.size());
        }
        ctx_.backend.for_each(x.size(), group_norm_forward_op{x.get(), mean.get(), rstd.get(), ctx_.store.value(weight_), ctx_.store.value(bias_),
                                                              s.xhat.get(), y.get(), s.mask.get(), hw, channels_, groups_, relu_});
        if (ctx_.grad_enabled) cache_.push_back(std::move(s));
        return y;
    }

    device_tensor backward(const device_tensor& dy) override {
        const saved s = detail::pop(cache_, "cuda::group_norm::backward");
        const index hw = static_cast<index>(s.h) * s.w, size = dy.size(), ng = static_cast<index>(s.n) * groups_;
        std::shared_ptr<float> masked = dy.data;
        if (relu_) {
            masked = ctx_.template scratch<float>(size);
            ctx_.backend.for_each(size, masked_scale_op{dy.get(), s.mask.get(), nullptr, masked.get(), channels_});
        }
        const float* g = masked.get();
        if (ctx_.store.trainable(weight_)) detail::column_sums(ctx_, g, s.xhat.get(), dy.pixels(), channels_, ctx_.store.grad(weight_), true);
        if (ctx_.store.trainable(bias_)) detail::column_sums(ctx_, g, nullptr, dy.pixels(), channels_, ctx_.store.grad(bias_), true);
        const auto m1 = ctx_.template scratch<float>(ng), m2 = ctx_.template scratch<float>(ng);
        group_sums(g, ctx_.store.value(weight_), s.xhat.get(), s.n, hw, [&](const double* partial, index chunks) {
            ctx_.backend.for_each(ng, group_means_finish_op{partial, chunks, static_cast<double>(hw * (channels_ / groups_)), m1.get(), m2.get()});
        });
        device_tensor dx = ctx_.tensor(channels_, s.n, s.h, s.w);
        ctx_.backend.for_each(size, group_norm_backward_op{g, s.xhat.get(), ctx_.store.value(weight_), m1.get(), m2.get(), s.rstd.get(),
                                                           dx.get(), hw, channels_, groups_});
        return dx;
    }

    void clear() override { cache_.clear(); }

private:
    struct saved {
        std::shared_ptr<float> xhat;
        std::shared_ptr<std::uint8_t> mask;
        std::shared_ptr<float> rstd;
        int n, h, w;
    };
    template <class Finish>
    void group_sums(const float* a, const float* gamma, const float* b, int n, index hw, Finish finish) {
        constexpr index chunk_pixels = 128;
        const index chunks = std::max<index>(1, (hw + chunk_pixels - 1) / chunk_pixels);
        const index tasks = static_cast<index>(n) * groups_ * chunks;
        const auto partial = ctx_.template scratch<double>(2 * tasks);
        ctx_.backend.for_each(tasks, group_partial_op{a, gamma, b, hw, chunk_pixels, chunks, channels_, groups_, partial.get()});
        finish(partial.get(), chunks);
    }

    context<Backend>& ctx_;
    int channels_, groups_;
    bool relu_;
    double eps_;
    int weight_ = -1, bias_ = -1;
    std::vector<saved> cache_;
};

// FrozenBatchNorm2d (cpu::frozen_batch_norm): y = x scale + shift, never trained; the ReLU fused.
template <class Backend>
class frozen_batch_norm final : public layer<Backend> {
public:
    frozen_batch_norm(context<Backend>& ctx, const std::string& name, int channels, bool relu, float eps = 1e-5f)
        : ctx_(ctx), channels_(channels), relu_(relu), eps_(eps) {
        const auto c = static_cast<std::size_t>(channels);
        for (const char* part : {"weight", "bias", "running_mean", "running_var"})
            slots_.push_back(ctx.store.add(name + "." + part, {c}, parameter_layout::plain));
    }

    device_tensor forward(const device_tensor& x) override {
        detail::require_channels(x, channels_, "cuda::frozen_batch_norm::forward");
        saved s{ctx_.template scratch<float>(2 * channels_), {}};
        float* scale = s.scale_shift.get();
        ctx_.backend.for_each(channels_, frozen_scale_op{ctx_.store.value(slots_[0]), ctx_.store.value(slots_[1]), ctx_.store.value(slots_[2]),
                                                         ctx_.store.value(slots_[3]), eps_, scale, scale + channels_});
        if (ctx_.grad_enabled && relu_) s.mask = ctx_.template scratch<std::uint8_t>(x.size());
        device_tensor y = ctx_.tensor(x.c, x.n, x.h, x.w);
        ctx_.backend.for_each(x.size(), channel_affine_op{x.get(), scale, scale + channels_, y.get(), s.mask.get(), channels_, relu_});
        if (ctx_.grad_enabled) cache_.push_back(std::move(s));
        return y;
    }

    device_tensor backward(const device_tensor& dy) override {
        const saved s = detail::pop(cache_, "cuda::frozen_batch_norm::backward");
        device_tensor dx = ctx_.tensor(dy.c, dy.n, dy.h, dy.w);
        ctx_.backend.for_each(dy.size(), masked_scale_op{dy.get(), s.mask.get(), s.scale_shift.get(), dx.get(), channels_});
        return dx;
    }

    void clear() override { cache_.clear(); }

private:
    struct saved {
        std::shared_ptr<float> scale_shift;  // C scales, then C shifts
        std::shared_ptr<std::uint8_t> mask;  // ReLU only
    };
    context<Backend>& ctx_;
    int channels_;
    bool relu_;
    float eps_;
    std::vector<int> slots_;
    std::vector<saved> cache_;
};

// ReLU on its own (norm_kind::none) and the residual join relu(a + b).
template <class Backend>
class relu final : public layer<Backend> {
public:
    explicit relu(context<Backend>& ctx) : ctx_(ctx) {}
    device_tensor forward(const device_tensor& x) override { return run(x, nullptr); }
    device_tensor forward_sum(const device_tensor& a, const device_tensor& b) {
        focal::detail::require(a.c == b.c && a.n == b.n && a.h == b.h && a.w == b.w, "cuda::relu::forward_sum", "b", "a's shape",
                               focal::detail::concat(b.c, " x ", b.n, " x ", b.h, " x ", b.w));
        return run(a, b.get());
    }
    device_tensor backward(const device_tensor& dy) override {
        const auto mask = detail::pop(cache_, "cuda::relu::backward");
        device_tensor dx = ctx_.tensor(dy.c, dy.n, dy.h, dy.w);
        ctx_.backend.for_each(dy.size(), masked_scale_op{dy.get(), mask.get(), nullptr, dx.get(), dy.c});
        return dx;
    }
    void clear() override { cache_.clear(); }

private:
    device_tensor run(const device_tensor& a, const float* b) {
        device_tensor y = ctx_.tensor(a.c, a.n, a.h, a.w);
        std::shared_ptr<std::uint8_t> mask;
        if (ctx_.grad_enabled) mask = ctx_.template scratch<std::uint8_t>(a.size());
        ctx_.backend.for_each(a.size(), relu_op{a.get(), b, y.get(), mask.get()});
        if (ctx_.grad_enabled) cache_.push_back(std::move(mask));
        return y;
    }
    context<Backend>& ctx_;
    std::vector<std::shared_ptr<std::uint8_t>> cache_;
};

// Max-pooling with -inf padding (cpu::max_pool2d).
template <class Backend>
class max_pool2d final : public layer<Backend> {
public:
    max_pool2d(context<Backend>& ctx, int kernel, int stride, int padding) : ctx_(ctx), k_(kernel), s_(stride), p_(padding) {}
    device_tensor forward(const device_tensor& x) override {
        const int ho = (x.h + 2 * p_ - k_) / s_ + 1, wo = (x.w + 2 * p_ - k_) / s_ + 1;
        focal::detail::require(ho > 0 && wo > 0 && x.size() > 0, "cuda::max_pool2d::forward", "x", "at least one output pixel",
                               focal::detail::concat(x.h, " x ", x.w));
        device_tensor y = ctx_.tensor(x.c, x.n, ho, wo);
        saved s{{}, x.h, x.w};
        if (ctx_.grad_enabled) s.argmax = ctx_.template scratch<std::int32_t>(y.size());
        ctx_.backend.for_each(y.size(), max_pool_op{x.get(), y.get(), s.argmax.get(), x.h, x.w, x.c, k_, s_, p_, ho, wo});
        if (ctx_.grad_enabled) cache_.push_back(std::move(s));
        return y;
    }
    device_tensor backward(const device_tensor& dy) override {
        const saved s = detail::pop(cache_, "cuda::max_pool2d::backward");
        device_tensor dx = ctx_.tensor(dy.c, dy.n, s.h, s.w);
        ctx_.backend.for_each(dx.size(), max_pool_backward_op{dy.get(), s.argmax.get(), dx.get(), s.h, s.w, dy.c, k_, s_, p_, dy.h, dy.w});
        return dx;
    }
    void clear() override { cache_.clear(); }

private:
    struct saved {
        std::shared_ptr<std::int32_t> argmax;
        int h, w;
    };
    context<Backend>& ctx_;
    int k_, s_, p_;
    std::vector<saved> cache_;
};

// A chain of layers: forward in order, backward in reverse (cpu::sequential).
template <class Backend>
class sequential final : public layer<Backend> {
public:
    template <class L>
    L& add(std::unique_ptr<L> l) {
        L& ref = *l;
        layers_.push_back(std::move(l));
        return ref;
    }
    bool empty() const noexcept { return layers_.empty(); }
    device_tensor forward(const device_tensor& x) override {
        device_tensor y = x;
        for (auto& l : layers_) y = l->forward(y);
        return y;
    }
    device_tensor backward(const device_tensor& dy) override {
        device_tensor d = dy;
        for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) d = (*it)->backward(d);
        return d;
    }
    void clear() override {
        for (auto& l : layers_) l->clear();
    }

private:
    std::vector<std::unique_ptr<layer<Backend>>> layers_;
};

}  // namespace retinanet::cuda
