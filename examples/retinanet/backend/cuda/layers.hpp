// The CUDA backend's layers over an executor (executor.hpp), with the contract of
// model/network_backend.hpp: forward(x) pushes what backward needs when the context is in training
// mode, backward(dy) pops it, accumulates the parameters' gradients and returns dx. Tensors share
// their memory (std::shared_ptr), so a saved input costs nothing; no layer writes into a tensor it
// did not create. The math is ops.hpp's, the GEMMs the executor's. context<Executor> at the end is
// the backend the architecture (model/) is built on.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <focal/core/error.hpp>

#include "executor.hpp"
#include "model/gradient_signal.hpp"
#include "model/network_backend.hpp"
#include "model/sequential.hpp"
#include "ops.hpp"
#include "parameter_store.hpp"
#include "support/check.hpp"

namespace retinanet::cuda {

// An activation, channels-last [N][H][W][C], in the executor's memory.
struct device_tensor {
    int c = 0, n = 0, h = 0, w = 0;
    std::shared_ptr<float> data;

    index size() const noexcept { return static_cast<index>(c) * n * h * w; }
    index pixels() const noexcept { return static_cast<index>(n) * h * w; }
    float* get() const noexcept { return data.get(); }
    bool empty() const noexcept { return data == nullptr; }
};

template <class Executor>
struct context {
    Executor& executor;
    parameter_store<Executor> store;
    bool grad_enabled = true;
    // Called during backward with each range of the store's slots whose gradients are final
    // (model/gradient_signal.hpp): the CUDA engine starts their allreduce meanwhile.
    model::gradients_ready_fn on_gradients_ready{};

    device_tensor tensor(int c, int n, int h, int w) {
        device_tensor t{c, n, h, w, nullptr};
        t.data = executor.template allocate<float>(static_cast<std::size_t>(t.size()));
        return t;
    }
    template <class T>
    std::shared_ptr<T> scratch(index count) {
        return executor.template allocate<T>(static_cast<std::size_t>(count));
    }
};

template <class Executor>
class layer {
public:
    virtual ~layer() = default;
    virtual device_tensor forward(const device_tensor& x) = 0;
    virtual device_tensor backward(const device_tensor& dy) = 0;
    virtual void clear() = 0;
};

// Backends that convolve directly (cuda_executor with cuDNN) provide direct_convolution() and
// conv_forward / conv_backward_data / conv_backward_filter over a conv_geometry.
template <class Executor>
concept direct_convolution_executor = requires(const Executor& b) { b.direct_convolution(); };

namespace detail {
template <class Saved>
Saved pop(std::vector<Saved>& cache, const char* where) {
    require(!cache.empty(), where, "a saved forward", "a forward in training mode before backward", "none pending");
    Saved s = std::move(cache.back());
    cache.pop_back();
    return s;
}
inline void require_channels(const device_tensor& x, int channels, const char* where) {
    require(x.c == channels && x.size() > 0, where, "x", std::to_string(channels) + " channels and data",
            concat(x.c, " channels, ", x.n, " x ", x.h, " x ", x.w));
}

// out[col] (+)= sum over rows of a[r][col] (times b[r][col]): per-channel sums.
template <class Executor>
void column_sums(context<Executor>& ctx, const float* a, const float* b, index rows, int cols, float* out, bool accumulate) {
    constexpr index chunk_rows = 256;
    const index chunks = std::max<index>(1, (rows + chunk_rows - 1) / chunk_rows);
    const auto partial = ctx.template scratch<double>(chunks * cols);
    ctx.executor.for_each(chunks * cols, column_partial_op{a, b, rows, chunk_rows, cols, partial.get()});
    ctx.executor.for_each(cols, column_finish_op{partial.get(), chunks, cols, out, accumulate});
}
}  // namespace detail

// 2-D convolution: Y = im2col(X) W^T + b with W [C_out][k k C_in]; backward dW += dY^T cols,
// db += column sums of dY, dX = col2im(dY W). 1x1 stride-1 convolutions use X as its own im2col.
// The columns are rebuilt in backward rather than kept (memory is the GPU's scarce resource). A
// executor with direct convolutions (cuDNN) computes Y, dW and dX itself instead.
template <class Executor>
class conv2d final : public layer<Executor> {
public:
    conv2d(context<Executor>& ctx, const std::string& name, model::conv_spec o) : ctx_(ctx), o_(o) {
        if (o_.padding < 0) o_.padding = o_.kernel / 2;
        const auto cout = static_cast<std::size_t>(o_.out_channels), cin = static_cast<std::size_t>(o_.in_channels),
                   k = static_cast<std::size_t>(o_.kernel);
        weight_ = ctx.store.add(name + ".weight", {cout, cin, k, k}, k == 1 ? parameter_layout::plain : parameter_layout::conv_weight);
        if (o_.bias) bias_ = ctx.store.add(name + ".bias", {cout}, parameter_layout::plain);
    }

    device_tensor forward(const device_tensor& x) override {
        detail::require_channels(x, o_.in_channels, "cuda::conv2d::forward");
        const int ho = (x.h + 2 * o_.padding - o_.kernel) / o_.stride + 1, wo = (x.w + 2 * o_.padding - o_.kernel) / o_.stride + 1;
        require(ho > 0 && wo > 0, "cuda::conv2d::forward", "x", "at least one output pixel",
                concat(x.h, " x ", x.w));
        device_tensor y = ctx_.tensor(o_.out_channels, x.n, ho, wo);
        const index rows = y.pixels(), cout = o_.out_channels;
        if (bias_ >= 0) ctx_.executor.for_each(rows * cout, broadcast_row_op{ctx_.store.value(bias_), y.get(), o_.out_channels});
        const float beta = bias_ >= 0 ? 1.0f : 0.0f;
        if (direct()) {
            if constexpr (direct_convolution_executor<Executor>)
                ctx_.executor.conv_forward(geometry(x, ho, wo), x.get(), ctx_.store.value(weight_), beta, y.get());
        } else {
            const auto cols = columns(x, ho, wo);
            ctx_.executor.gemm(false, true, rows, cout, depth(), 1.0f, cols.get(), depth(), ctx_.store.value(weight_), depth(), beta, y.get(),
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
            if constexpr (direct_convolution_executor<Executor>) {
                const auto g = geometry(x, ho, wo);
                if (ctx_.store.trainable(weight_)) ctx_.executor.conv_backward_filter(g, x.get(), dy.get(), ctx_.store.grad(weight_));
                if (bias_ >= 0 && ctx_.store.trainable(bias_))
                    detail::column_sums(ctx_, dy.get(), nullptr, rows, o_.out_channels, ctx_.store.grad(bias_), true);
                if (!o_.input_grad) return {};
                device_tensor dx = ctx_.tensor(x.c, x.n, x.h, x.w);
                ctx_.executor.conv_backward_data(g, dy.get(), ctx_.store.value(weight_), dx.get());
                return dx;
            }
        }
        if (ctx_.store.trainable(weight_)) {
            const auto cols = columns(x, ho, wo);
            ctx_.executor.gemm(true, false, cout, depth(), rows, 1.0f, dy.get(), cout, cols.get(), depth(), 1.0f,
                              ctx_.store.grad(weight_), depth());
        }
        if (bias_ >= 0 && ctx_.store.trainable(bias_))
            detail::column_sums(ctx_, dy.get(), nullptr, rows, o_.out_channels, ctx_.store.grad(bias_), true);
        if (!o_.input_grad) return {};
        device_tensor dcols = ctx_.tensor(static_cast<int>(depth()), dy.n, ho, wo);
        ctx_.executor.gemm(false, false, rows, depth(), cout, 1.0f, dy.get(), cout, ctx_.store.value(weight_), depth(), 0.0f, dcols.get(),
                          depth());
        if (pointwise()) return device_tensor{x.c, x.n, x.h, x.w, dcols.data};
        device_tensor dx = ctx_.tensor(x.c, x.n, x.h, x.w);
        ctx_.executor.for_each(dx.size(), col2im_op{dcols.get(), dx.get(), x.h, x.w, x.c, o_.kernel, o_.stride, o_.padding, ho, wo});
        return dx;
    }

    void clear() override { cache_.clear(); }

private:
    bool direct() const {
        if constexpr (direct_convolution_executor<Executor>) return ctx_.executor.direct_convolution();
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
        ctx_.executor.for_each(count, im2col_op{x.get(), cols.get(), x.h, x.w, x.c, o_.kernel, o_.stride, o_.padding, ho, wo});
        return cols;
    }

    context<Executor>& ctx_;
    model::conv_spec o_;
    int weight_ = -1, bias_ = -1;
    std::vector<device_tensor> cache_;
};

// GroupNorm (cpu::group_norm): statistics per (image, group) from double sums, the ReLU fused.
template <class Executor>
class group_norm final : public layer<Executor> {
public:
    group_norm(context<Executor>& ctx, const std::string& name, int channels, int groups, bool relu, double eps = 1e-5)
        : ctx_(ctx), channels_(channels), groups_(groups), relu_(relu), eps_(eps) {
        const auto c = static_cast<std::size_t>(channels);
        weight_ = ctx.store.add(name + ".weight", {c}, parameter_layout::plain);
        bias_ = ctx.store.add(name + ".bias", {c}, parameter_layout::plain);
    }

    device_tensor forward(const device_tensor& x) override {
        detail::require_channels(x, channels_, "cuda::group_norm::forward");
        const index hw = static_cast<index>(x.h) * x.w, ng = static_cast<index>(x.n) * groups_, nc = static_cast<index>(x.n) * channels_;
        const double count = static_cast<double>(hw * (channels_ / groups_));
        const auto mean = ctx_.template scratch<float>(ng), inv_std = ctx_.template scratch<float>(ng);
        const auto sums = group_sums(x.get(), nullptr, nullptr, nullptr, x.n, hw);
        ctx_.executor.for_each(ng, group_statistic_op{sums.get(), count, eps_, false, mean.get()});
        const auto centred = group_sums(x.get(), nullptr, nullptr, mean.get(), x.n, hw);  // two passes, as the CPU's
        ctx_.executor.for_each(ng, group_statistic_op{centred.get(), count, eps_, true, inv_std.get()});
        const auto affine = ctx_.template scratch<float>(2 * nc);  // scales, then shifts
        ctx_.executor.for_each(nc, group_affine_op{mean.get(), inv_std.get(), ctx_.store.value(weight_), ctx_.store.value(bias_), channels_,
                                                   groups_, affine.get(), affine.get() + nc});
        device_tensor y = ctx_.tensor(x.c, x.n, x.h, x.w);
        saved s{{}, {}, inv_std, x.n, x.h, x.w};
        if (ctx_.grad_enabled) {
            s.xhat = ctx_.template scratch<float>(x.size());
            if (relu_) s.mask = ctx_.template scratch<std::uint8_t>(x.size());
        }
        ctx_.executor.for_each(x.size(), group_norm_forward_op{x.get(), mean.get(), inv_std.get(), affine.get(), affine.get() + nc, s.xhat.get(),
                                                               y.get(), s.mask.get(), hw, channels_, groups_, relu_});
        if (ctx_.grad_enabled) cache_.push_back(std::move(s));
        return y;
    }

    device_tensor backward(const device_tensor& dy) override {
        const saved s = detail::pop(cache_, "cuda::group_norm::backward");
        const index hw = static_cast<index>(s.h) * s.w, size = dy.size(), nc = static_cast<index>(s.n) * channels_;
        std::shared_ptr<float> masked = dy.data;
        if (relu_) {
            masked = ctx_.template scratch<float>(size);
            ctx_.executor.for_each(size, masked_scale_op{dy.get(), s.mask.get(), nullptr, masked.get(), channels_});
        }
        const float* g = masked.get();
        if (ctx_.store.trainable(weight_)) detail::column_sums(ctx_, g, s.xhat.get(), dy.pixels(), channels_, ctx_.store.grad(weight_), true);
        if (ctx_.store.trainable(bias_)) detail::column_sums(ctx_, g, nullptr, dy.pixels(), channels_, ctx_.store.grad(bias_), true);
        const auto sums = group_sums(g, ctx_.store.value(weight_), s.xhat.get(), nullptr, s.n, hw);
        const auto rules = ctx_.template scratch<element_rules::group_norm_gradient<float>>(nc);
        ctx_.executor.for_each(nc, group_gradient_op{sums.get(), s.inv_std.get(), ctx_.store.value(weight_),
                                                     static_cast<double>(hw * (channels_ / groups_)), channels_, groups_, rules.get()});
        device_tensor dx = ctx_.tensor(channels_, s.n, s.h, s.w);
        ctx_.executor.for_each(size, group_norm_backward_op{g, s.xhat.get(), rules.get(), dx.get(), hw, channels_});
        return dx;
    }

    void clear() override { cache_.clear(); }

private:
    struct saved {
        std::shared_ptr<float> xhat;
        std::shared_ptr<std::uint8_t> mask;
        std::shared_ptr<float> inv_std;
        int n, h, w;
    };
    // group_partial_op's two sums per (image, group), reduced over chunks of pixels in a fixed order.
    std::shared_ptr<double> group_sums(const float* a, const float* gamma, const float* b, const float* centre, int n, index hw) {
        constexpr index chunk_pixels = 128;
        const index chunks = std::max<index>(1, (hw + chunk_pixels - 1) / chunk_pixels);
        const index ng = static_cast<index>(n) * groups_, tasks = ng * chunks;
        const auto partial = ctx_.template scratch<double>(2 * tasks);
        ctx_.executor.for_each(tasks, group_partial_op{a, gamma, b, centre, hw, chunk_pixels, chunks, channels_, groups_, partial.get()});
        auto sums = ctx_.template scratch<double>(2 * ng);
        ctx_.executor.for_each(ng, group_sums_finish_op{partial.get(), chunks, sums.get()});
        return sums;
    }

    context<Executor>& ctx_;
    int channels_, groups_;
    bool relu_;
    double eps_;
    int weight_ = -1, bias_ = -1;
    std::vector<saved> cache_;
};

// FrozenBatchNorm2d (cpu::frozen_batch_norm): y = x scale + shift, never trained; the ReLU fused.
template <class Executor>
class frozen_batch_norm final : public layer<Executor> {
public:
    frozen_batch_norm(context<Executor>& ctx, const std::string& name, int channels, bool relu, float eps = 1e-5f)
        : ctx_(ctx), channels_(channels), relu_(relu), eps_(eps) {
        const auto c = static_cast<std::size_t>(channels);
        for (const char* part : {"weight", "bias", "running_mean", "running_var"})
            slots_.push_back(ctx.store.add(name + "." + part, {c}, parameter_layout::plain));
    }

    device_tensor forward(const device_tensor& x) override {
        detail::require_channels(x, channels_, "cuda::frozen_batch_norm::forward");
        saved s{ctx_.template scratch<float>(2 * channels_), {}};
        float* scale = s.scale_shift.get();
        ctx_.executor.for_each(channels_, frozen_scale_op{ctx_.store.value(slots_[0]), ctx_.store.value(slots_[1]), ctx_.store.value(slots_[2]),
                                                         ctx_.store.value(slots_[3]), eps_, scale, scale + channels_});
        if (ctx_.grad_enabled && relu_) s.mask = ctx_.template scratch<std::uint8_t>(x.size());
        device_tensor y = ctx_.tensor(x.c, x.n, x.h, x.w);
        ctx_.executor.for_each(x.size(), channel_affine_op{x.get(), scale, scale + channels_, y.get(), s.mask.get(), channels_, relu_});
        if (ctx_.grad_enabled) cache_.push_back(std::move(s));
        return y;
    }

    device_tensor backward(const device_tensor& dy) override {
        const saved s = detail::pop(cache_, "cuda::frozen_batch_norm::backward");
        device_tensor dx = ctx_.tensor(dy.c, dy.n, dy.h, dy.w);
        ctx_.executor.for_each(dy.size(), masked_scale_op{dy.get(), s.mask.get(), s.scale_shift.get(), dx.get(), channels_});
        return dx;
    }

    void clear() override { cache_.clear(); }

private:
    struct saved {
        std::shared_ptr<float> scale_shift;  // C scales, then C shifts
        std::shared_ptr<std::uint8_t> mask;  // ReLU only
    };
    context<Executor>& ctx_;
    int channels_;
    bool relu_;
    float eps_;
    std::vector<int> slots_;
    std::vector<saved> cache_;
};

// ReLU on its own (norm_kind::none) and the residual join relu(a + b).
template <class Executor>
class relu final : public layer<Executor> {
public:
    explicit relu(context<Executor>& ctx) : ctx_(ctx) {}
    device_tensor forward(const device_tensor& x) override { return run(x, nullptr); }
    device_tensor forward_sum(const device_tensor& a, const device_tensor& b) {
        require(a.c == b.c && a.n == b.n && a.h == b.h && a.w == b.w, "cuda::relu::forward_sum", "b", "a's shape",
                concat(b.c, " x ", b.n, " x ", b.h, " x ", b.w));
        return run(a, b.get());
    }
    device_tensor backward(const device_tensor& dy) override {
        const auto mask = detail::pop(cache_, "cuda::relu::backward");
        device_tensor dx = ctx_.tensor(dy.c, dy.n, dy.h, dy.w);
        ctx_.executor.for_each(dy.size(), masked_scale_op{dy.get(), mask.get(), nullptr, dx.get(), dy.c});
        return dx;
    }
    void clear() override { cache_.clear(); }

private:
    device_tensor run(const device_tensor& a, const float* b) {
        device_tensor y = ctx_.tensor(a.c, a.n, a.h, a.w);
        std::shared_ptr<std::uint8_t> mask;
        if (ctx_.grad_enabled) mask = ctx_.template scratch<std::uint8_t>(a.size());
        ctx_.executor.for_each(a.size(), relu_op{a.get(), b, y.get(), mask.get()});
        if (ctx_.grad_enabled) cache_.push_back(std::move(mask));
        return y;
    }
    context<Executor>& ctx_;
    std::vector<std::shared_ptr<std::uint8_t>> cache_;
};

// Max-pooling with -inf padding (cpu::max_pool2d).
template <class Executor>
class max_pool2d final : public layer<Executor> {
public:
    max_pool2d(context<Executor>& ctx, int kernel, int stride, int padding) : ctx_(ctx), k_(kernel), s_(stride), p_(padding) {}
    device_tensor forward(const device_tensor& x) override {
        const int ho = (x.h + 2 * p_ - k_) / s_ + 1, wo = (x.w + 2 * p_ - k_) / s_ + 1;
        require(ho > 0 && wo > 0 && x.size() > 0, "cuda::max_pool2d::forward", "x", "at least one output pixel",
                concat(x.h, " x ", x.w));
        device_tensor y = ctx_.tensor(x.c, x.n, ho, wo);
        saved s{{}, x.h, x.w};
        if (ctx_.grad_enabled) s.argmax = ctx_.template scratch<std::int32_t>(y.size());
        ctx_.executor.for_each(y.size(), max_pool_op{x.get(), y.get(), s.argmax.get(), x.h, x.w, x.c, k_, s_, p_, ho, wo});
        if (ctx_.grad_enabled) cache_.push_back(std::move(s));
        return y;
    }
    device_tensor backward(const device_tensor& dy) override {
        const saved s = detail::pop(cache_, "cuda::max_pool2d::backward");
        device_tensor dx = ctx_.tensor(dy.c, dy.n, s.h, s.w);
        ctx_.executor.for_each(dx.size(), max_pool_backward_op{dy.get(), s.argmax.get(), dx.get(), s.h, s.w, dy.c, k_, s_, p_, dy.h, dy.w});
        return dx;
    }
    void clear() override { cache_.clear(); }

private:
    struct saved {
        std::shared_ptr<std::int32_t> argmax;
        int h, w;
    };
    context<Executor>& ctx_;
    int k_, s_, p_;
    std::vector<saved> cache_;
};

// Nearest upsampling to a set size (cpu::upsample_nearest): the FPN's top-down path.
template <class Executor>
class upsample_nearest final : public layer<Executor> {
public:
    explicit upsample_nearest(context<Executor>& ctx) : ctx_(ctx) {}
    void set_output_size(int height, int width) { out_h_ = height, out_w_ = width; }
    device_tensor forward(const device_tensor& x) override {
        require(out_h_ > 0 && out_w_ > 0 && x.size() > 0, "cuda::upsample_nearest::forward", "output size", "set and positive",
                concat(out_h_, " x ", out_w_));
        device_tensor y = ctx_.tensor(x.c, x.n, out_h_, out_w_);
        ctx_.executor.for_each(y.size(), upsample_op{x.get(), y.get(), x.h, x.w, out_h_, out_w_, x.c, false});
        if (ctx_.grad_enabled) cache_.push_back({x.h, x.w});
        return y;
    }
    device_tensor backward(const device_tensor& dy) override {
        const auto s = detail::pop(cache_, "cuda::upsample_nearest::backward");
        device_tensor dx = ctx_.tensor(dy.c, dy.n, s[0], s[1]);
        ctx_.executor.for_each(dx.size(), upsample_backward_op{dy.get(), dx.get(), s[0], s[1], dy.h, dy.w, dy.c});
        return dx;
    }
    void clear() override { cache_.clear(); }

private:
    context<Executor>& ctx_;
    int out_h_ = 0, out_w_ = 0;
    std::vector<std::array<int, 2>> cache_;  // the input sizes of pending backward calls
};

// The CUDA backend as the architecture sees it (model/network_backend.hpp): these layers on one
// context, their parameters registered in its store under the names the architecture gives.
template <class Executor>
struct backend {
    using tensor = device_tensor;
    using layer = cuda::layer<Executor>;
    using sequential = model::sequential<cuda::layer<Executor>, device_tensor>;
    using relu_layer = cuda::relu<Executor>;
    using upsample_layer = upsample_nearest<Executor>;
    using head_storage = std::shared_ptr<float>;
    using head_gradient = const float*;

    context<Executor>& ctx;

    std::unique_ptr<layer> conv2d(const std::string& name, const model::conv_spec& spec) {
        const std::size_t first = ctx.store.slot_count();
        return signalled(first, std::make_unique<cuda::conv2d<Executor>>(ctx, name, spec));
    }
    std::unique_ptr<layer> group_norm(const std::string& name, int channels, int groups, bool relu_after) {
        const std::size_t first = ctx.store.slot_count();
        return signalled(first, std::make_unique<cuda::group_norm<Executor>>(ctx, name, channels, groups, relu_after));
    }
    std::unique_ptr<layer> frozen_batch_norm(const std::string& name, int channels, bool relu_after) {
        const std::size_t first = ctx.store.slot_count();
        return signalled(first, std::make_unique<cuda::frozen_batch_norm<Executor>>(ctx, name, channels, relu_after));
    }
    std::unique_ptr<relu_layer> relu() { return std::make_unique<relu_layer>(ctx); }
    std::unique_ptr<layer> max_pool2d(int kernel, int stride, int padding) {
        return std::make_unique<cuda::max_pool2d<Executor>>(ctx, kernel, stride, padding);
    }
    std::unique_ptr<upsample_layer> upsample() { return std::make_unique<upsample_layer>(ctx); }
    void add_in_place(tensor& a, const tensor& b) {
        require(a.c == b.c && a.n == b.n && a.h == b.h && a.w == b.w, "cuda::add_in_place", "b", "a's shape",
                concat(b.c, " x ", b.n, " x ", b.h, " x ", b.w));
        ctx.executor.for_each(a.size(), add_op{a.get(), b.get()});
    }

    head_storage head_storage_of(std::size_t count) { return ctx.template scratch<float>(static_cast<index>(count)); }
    void to_flat(const tensor& level, head_storage& flat, index offset, index total, int per_anchor) {
        const index block = static_cast<index>(level.h) * level.w * level.c;
        ctx.executor.for_each(level.size(), level_copy_op{level.get(), flat.get(), block, offset, total, per_anchor, true});
    }
    tensor from_flat(head_gradient flat, int c, int n, int h, int w, index offset, index total, int per_anchor) {
        tensor level = ctx.tensor(c, n, h, w);
        const index block = static_cast<index>(h) * w * c;
        ctx.executor.for_each(level.size(), level_copy_op{flat, level.get(), block, offset, total, per_anchor, false});
        return level;
    }

private:
    // A layer that registered the store's slots [first, now) reports when their gradients are final.
    std::unique_ptr<layer> signalled(std::size_t first, std::unique_ptr<layer> l) {
        const std::size_t count = ctx.store.slot_count() - first;
        if (count == 0) return l;
        return std::make_unique<model::gradient_signal<layer, device_tensor>>(std::move(l), first, count, ctx.on_gradients_ready,
                                                                              [c = &ctx] { return c->grad_enabled; });
    }
};

}  // namespace retinanet::cuda
