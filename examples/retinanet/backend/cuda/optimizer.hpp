// train::sgd (SGD with momentum, weight decay and global-norm clipping) on the parameter store's
// flat buffers: three passes, no host round trip. The gradient norm before clipping stays in
// executor memory (norm()); a non-finite norm skips the update, as train::sgd::step.
#pragma once

#include <algorithm>
#include <memory>

#include "layers.hpp"
#include "train/optimizer.hpp"

namespace retinanet::cuda {

template <class Executor>
class device_sgd {
public:
    explicit device_sgd(context<Executor>& ctx) : ctx_(ctx) {
        chunks_ = std::max<index>(1, (ctx.store.size() + chunk - 1) / chunk);
        partial_ = ctx.template scratch<double>(chunks_);
        norm_ = ctx.template scratch<double>(1);
    }

    void step(const train::sgd& o, double lr) {
        auto& store = ctx_.store;
        ctx_.executor.for_each(chunks_, squares_partial_op{store.grads(), store.flags(), store.size(), chunk, partial_.get()});
        ctx_.executor.for_each(1, norm_finish_op{partial_.get(), chunks_, norm_.get()});
        ctx_.executor.for_each(store.size(), sgd_update_op{store.values(), store.grads(), store.velocity(), store.flags(), norm_.get(),
                                                          static_cast<float>(lr), static_cast<float>(o.momentum),
                                                          static_cast<float>(o.weight_decay), o.clip_norm});
    }
    // The last step's gradient norm before clipping (executor memory, one double).
    const double* norm() const noexcept { return norm_.get(); }

private:
    static constexpr index chunk = 4096;
    context<Executor>& ctx_;
    index chunks_ = 1;
    std::shared_ptr<double> partial_, norm_;
};

}  // namespace retinanet::cuda
