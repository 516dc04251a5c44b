// focal/loss/value_grad.hpp: what a loss policy returns, and the policy contracts.
#pragma once

#include <concepts>

#include "../box/box4.hpp"
#include "../config.hpp"

namespace focal {

// A loss value and its derivative with respect to the prediction.
template <class T>
struct value_grad {
    T value;
    T grad;
};

// A box loss value and its gradient with respect to the four predicted coordinates.
template <class T>
struct box_value_grad {
    T value;
    box4<T> grad;
};

// A classification loss policy maps (logit, target) to a value and d value / d logit,
// elementwise, for T = float, double, an xsimd batch or a device float.
template <class Policy, class T>
concept elementwise_loss = requires(const Policy& p, T x) {
    { p.value(x, x) } -> std::convertible_to<T>;
    { p.grad(x, x) } -> std::convertible_to<T>;
    { p.value_and_grad(x, x) } -> std::convertible_to<value_grad<T>>;
};

// A box loss policy maps (predicted box, target box) to a value and its gradient w.r.t. the
// predicted box.
template <class Policy, class T>
concept box_loss = requires(const Policy& p, box4<T> b) {
    { p.value(b, b) } -> std::convertible_to<T>;
    { p.value_and_grad(b, b) } -> std::convertible_to<box_value_grad<T>>;
};

// A policy defined only for targets 0 and 1 declares `static constexpr bool binary_targets = true;`
// and the dense-target driver then checks every target.
template <class Policy>
inline constexpr bool requires_binary_targets_v = requires { requires Policy::binary_targets; };

namespace detail {
// Checks a policy's parameters through its validate(policy, where) overload, found by ADL, when
// it has one (focal's policies all do; a user's policy may define one in its own namespace).
template <class Policy>
void validate_policy(const Policy& policy, const char* where) {
    if constexpr (requires { validate(policy, where); }) validate(policy, where);
}
}  // namespace detail

}  // namespace focal
