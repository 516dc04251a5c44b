// focal/loss/detail/loss_tile.hpp: the one inner loop every host classification driver runs.
//
// loss_tile evaluates a policy over n contiguous logits, takes each target from a target source,
// writes grad * scale and the values when asked, and returns the sum of the values. It is written
// once against packet_traits<P>: P = float runs one element at a time, P = xsimd::batch<float>
// runs width elements at a time and finishes the tail one element at a time.
#pragma once

#include "../../config.hpp"
#include "../../core/labels.hpp"
#include "../../core/math.hpp"
#include "../../core/packet.hpp"
#include "../../core/view.hpp"
#include "../value_grad.hpp"

namespace focal::detail {

// Dense targets: target i of the tile is t[i].
template <class T>
struct dense_target_source {
    const T* t;
    template <class P>
    FOCAL_INLINE P get(index_t i) const noexcept {
        return packet_traits<P>::load(t + i);
    }
};

// One anchor's row of classes: target k is 1 when k equals the anchor's label, else 0
// (label -1, background, matches no class). first_class is the class of the tile's element 0.
template <class T>
struct row_label_target_source {
    T label;
    T first_class;
    template <class P>
    FOCAL_INLINE P get(index_t i) const noexcept {
        const P cls = packet_traits<P>::lane_index() + P(first_class + static_cast<T>(i));
        return one_hot_target<P>(cls, P(label));
    }
};

// Sum of the policy's values over x[0, n); grad[i] = scale * d value_i / d x_i and values[i] =
// value_i where WriteGrad / WriteValues. With a SIMD packet the last n % width elements run
// through the same SIMD code on a padded copy, so an element's result never depends on its
// position in the tile (or on the layout that put it there).
template <class P, bool WriteGrad, bool WriteValues, class Policy, class T, class Targets>
FOCAL_INLINE double loss_tile(const Policy& policy_in, const T* x, T* grad, T* values, index_t n, const Targets& targets,
                              T scale) noexcept {
    // A local copy: the stores to grad could alias the caller's policy object, which would make
    // the compiler reload its parameters (and redo their branches) for every packet.
    const Policy policy = policy_in;
    using traits = packet_traits<P>;
    constexpr index_t width = traits::width;
    P acc(T(0));
    const P scale_p(scale);
    index_t i = 0;
    for (; i + width <= n; i += width) {
        const value_grad<P> r = policy.value_and_grad(traits::load(x + i), targets.template get<P>(i));
        acc += r.value;
        if constexpr (WriteGrad) traits::store(grad + i, r.grad * scale_p);
        if constexpr (WriteValues) traits::store(values + i, r.value);
    }
    double total = traits::sum(acc);
    if constexpr (width > 1) {
        if (i < n) {
            const index_t rest = n - i;
            T x_pad[width] = {}, t_pad[width] = {}, v_pad[width], g_pad[width];
            for (index_t j = 0; j < rest; ++j) {
                x_pad[j] = x[i + j];
                t_pad[j] = targets.template get<T>(i + j);
            }
            const value_grad<P> r = policy.value_and_grad(traits::load(x_pad), traits::load(t_pad));
            traits::store(v_pad, r.value);
            traits::store(g_pad, r.grad * scale_p);
            T tail(0);
            for (index_t j = 0; j < rest; ++j) {
                tail += v_pad[j];
                if constexpr (WriteGrad) grad[i + j] = g_pad[j];
                if constexpr (WriteValues) values[i + j] = v_pad[j];
            }
            total += static_cast<double>(tail);
        }
    }
    return total;
}

}  // namespace focal::detail
